//! `sluice inspect`: what a folder of shards holds, reading only the columns
//! it summarises (Arrow, not polars: polars cannot take every column type a
//! shard holds, e.g. `embed`'s fixed-size lists, and panicked on them):
//! rows, columns and types, sizes, text-length quantiles, counts by `lang`,
//! `source` and `drop_reason`, and the drop reasons of the run's `stats.json`.
//! Megatron `.bin`/`.idx` shards: documents, sequences, tokens, dtype, and
//! one document decoded with a tokenizer.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;

use crate::io::store;
use crate::stats::RunStats;

/// Columns whose value counts are shown when present.
const COUNT_COLUMNS: &[&str] = &["lang", "source", "drop_reason"];
const QUANTILES: &[f64] = &[0.0, 0.1, 0.5, 0.9, 0.99, 1.0];

fn parquet_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|e| e == "parquet")
                && !p
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with('.'))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// What to show of tokenized shards.
#[derive(Default)]
pub struct TokenOptions {
    /// A tokenizer.json to decode with.
    pub tokenizer: Option<PathBuf>,
    /// The document to decode (0-based, within the shard).
    pub doc: Option<usize>,
}

fn is_indexed(p: &Path) -> bool {
    p.extension().is_some_and(|e| e == "idx" || e == "bin")
}

/// Describes Megatron shards: one (`x.bin`, `x.idx` or a folder's `*.idx`).
fn describe_indexed(files: &[PathBuf], opt: &TokenOptions, out: &mut String) -> Result<()> {
    use crate::io::megatron::IndexedDataset;
    let (mut docs, mut seqs, mut tokens) = (0usize, 0usize, 0u64);
    let tok = match &opt.tokenizer {
        Some(p) => Some((crate::tokenizer::load::TextEncoder::load(p)?, p)),
        None => None,
    };
    for f in files {
        let ds = IndexedDataset::open(&f.with_extension(""))?;
        writeln!(
            out,
            "{}: {} documents, {} sequences, {} tokens, {}",
            f.with_extension("").display(),
            ds.documents(),
            ds.lengths.len(),
            ds.tokens(),
            ds.dtype.name()
        )?;
        docs += ds.documents();
        seqs += ds.lengths.len();
        tokens += ds.tokens();
        if let Some(d) = opt.doc {
            if d >= ds.documents() {
                bail!(
                    "{}: no document {d} (it has {})",
                    f.display(),
                    ds.documents()
                );
            }
            let ids = ds.document(d)?;
            writeln!(out, "document {d}: {} tokens: {:?}", ids.len(), ids)?;
            if let Some((tok, p)) = &tok {
                let text = tok.decode(&ids, false).map_err(|e| {
                    anyhow::anyhow!("{} cannot decode document {d}: {e}", p.display())
                })?;
                writeln!(out, "{text}")?;
            }
        }
    }
    if files.len() > 1 {
        writeln!(
            out,
            "total: {} shards, {docs} documents, {seqs} sequences, {tokens} tokens",
            files.len()
        )?;
    }
    Ok(())
}

/// Describes the shards of `path` (a folder or one file): Parquet with, for a
/// run folder, its `excluded/` shards and `stats.json`; or Megatron
/// `.bin`/`.idx`. An `s3://` path is first copied to the scratch folder
/// (what `inspect` reads of it: the shards, `excluded/`, `stats.json`):
/// polars and the Megatron reader read local files.
pub fn inspect(path: &Path, text_column: &str, tokens: &TokenOptions) -> Result<String> {
    if !store::is_remote(path) {
        return inspect_local(path, text_column, tokens);
    }
    let url = path.to_string_lossy().trim_end_matches('/').to_string();
    let local = store::local_for(Path::new(&url));
    let wanted = |rel: &str| {
        let name = rel.rsplit('/').next().unwrap_or(rel);
        let shard = [".parquet", ".idx", ".bin"]
            .iter()
            .any(|e| name.ends_with(e))
            && !name.starts_with('.');
        let top = !rel.contains('/');
        (top && (shard || name == "stats.json"))
            || (rel.starts_with("excluded/") && rel.matches('/').count() == 1 && shard)
    };
    if store::exists(path)? {
        // One object.
        store::copy(path, &local)?;
        let out = inspect_local(&local, text_column, tokens)?;
        return Ok(out.replace(&local.display().to_string(), &url));
    }
    let mut found = false;
    for p in store::list(path)? {
        let rel = p.to_string_lossy()[url.len()..]
            .trim_start_matches('/')
            .to_string();
        if wanted(&rel) {
            store::copy(&p, &local.join(&rel))?;
            found = true;
        }
    }
    if !found {
        bail!("{url} holds no shards (nothing under it, or no .parquet/.idx files)");
    }
    let out = inspect_local(&local, text_column, tokens)?;
    Ok(out.replace(&local.display().to_string(), &url))
}

fn inspect_local(path: &Path, text_column: &str, tokens: &TokenOptions) -> Result<String> {
    let mut out = String::new();
    if path.is_file() && is_indexed(path) {
        describe_indexed(&[path.to_path_buf()], tokens, &mut out)?;
        return Ok(out);
    }
    if path.is_dir() {
        let mut idx: Vec<PathBuf> = std::fs::read_dir(path)
            .with_context(|| format!("cannot list {}", path.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "idx"))
            .filter(|p| {
                !p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            })
            .collect();
        idx.sort();
        if !idx.is_empty() && parquet_files(path)?.is_empty() {
            describe_indexed(&idx, tokens, &mut out)?;
            return Ok(out);
        }
    }
    if path.is_file() {
        describe(&[path.to_path_buf()], text_column, &mut out)?;
        return Ok(out);
    }
    if !path.is_dir() {
        bail!("{} is neither a folder nor a file", path.display());
    }
    let files = parquet_files(path)?;
    if files.is_empty() {
        writeln!(out, "{}: no Parquet shards", path.display())?;
    } else {
        writeln!(out, "== {}", path.display())?;
        describe(&files, text_column, &mut out)?;
    }
    let excluded = path.join("excluded");
    if excluded.is_dir() {
        let files = parquet_files(&excluded)?;
        if !files.is_empty() {
            writeln!(out, "\n== {} (dropped documents)", excluded.display())?;
            describe(&files, text_column, &mut out)?;
        }
    }
    let stats = path.join("stats.json");
    if let Ok(bytes) = std::fs::read(&stats) {
        let s: RunStats = serde_json::from_slice(&bytes)
            .with_context(|| format!("reading {}", stats.display()))?;
        writeln!(out, "\n== {}", stats.display())?;
        writeln!(
            out,
            "input {} docs{} = kept {} + dropped {}",
            s.input.docs,
            if s.added.docs > 0 {
                format!(" + added {}", s.added.docs)
            } else {
                String::new()
            },
            s.kept.docs,
            s.dropped.values().map(|c| c.docs).sum::<u64>()
        )?;
        for (reason, c) in &s.dropped {
            writeln!(
                out,
                "  {reason:<40} {:>10} docs {:>10.2} MB",
                c.docs,
                c.bytes as f64 / 1e6
            )?;
        }
    }
    Ok(out)
}

/// A column type as a short name (polars' names for the common ones, which
/// earlier versions printed), whatever the type: nothing in a shard makes
/// `inspect` fail.
fn type_name(t: &arrow::datatypes::DataType) -> String {
    use arrow::datatypes::DataType as T;
    match t {
        T::Utf8 | T::LargeUtf8 | T::Utf8View => "str".into(),
        T::Boolean => "bool".into(),
        T::Int8 => "i8".into(),
        T::Int16 => "i16".into(),
        T::Int32 => "i32".into(),
        T::Int64 => "i64".into(),
        T::UInt8 => "u8".into(),
        T::UInt16 => "u16".into(),
        T::UInt32 => "u32".into(),
        T::UInt64 => "u64".into(),
        T::Float16 => "f16".into(),
        T::Float32 => "f32".into(),
        T::Float64 => "f64".into(),
        T::Binary | T::LargeBinary | T::BinaryView => "binary".into(),
        T::Null => "null".into(),
        T::List(f) | T::LargeList(f) | T::ListView(f) | T::LargeListView(f) => {
            format!("list[{}]", type_name(f.data_type()))
        }
        T::FixedSizeList(f, n) => format!("fixed_size_list<{}, {n}>", type_name(f.data_type())),
        T::Struct(fields) => {
            let inner: Vec<String> = fields
                .iter()
                .map(|f| format!("{}: {}", f.name(), type_name(f.data_type())))
                .collect();
            format!("struct{{{}}}", inner.join(", "))
        }
        T::Dictionary(_, v) => format!("dictionary<{}>", type_name(v)),
        T::Decimal32(p, s) | T::Decimal64(p, s) => format!("decimal({p}, {s})"),
        T::Decimal128(p, s) | T::Decimal256(p, s) => format!("decimal({p}, {s})"),
        other => other.to_string().to_lowercase(),
    }
}

/// The Parquet shards' metadata: rows, and the union of their columns (shards
/// of one folder may differ: inputs with different columns).
fn shard_schemas(files: &[PathBuf]) -> Result<(u64, Vec<arrow::datatypes::FieldRef>)> {
    let mut rows = 0u64;
    let mut union: Vec<arrow::datatypes::FieldRef> = vec![];
    for f in files {
        // Through the store's reader, which stops a decoder that reads past
        // the end of a corrupt file for ever.
        let file = store::open(f)?;
        let b = ParquetRecordBatchReaderBuilder::try_new(file)
            .with_context(|| format!("{}: not a readable Parquet file", f.display()))?;
        rows += b.metadata().file_metadata().num_rows().max(0) as u64;
        for field in b.schema().fields() {
            if !union.iter().any(|u| u.name() == field.name()) {
                union.push(field.clone());
            }
        }
    }
    Ok((rows, union))
}

/// Calls `each` with every batch of `column` (as strings) in the shards that
/// have it, reading that column only.
fn scan_column(
    files: &[PathBuf],
    column: &str,
    mut each: impl FnMut(&arrow::array::StringArray),
) -> Result<()> {
    use arrow::array::Array as _;
    for f in files {
        // Through the store's reader, which stops a decoder that reads past
        // the end of a corrupt file for ever.
        let file = store::open(f)?;
        let b = ParquetRecordBatchReaderBuilder::try_new(file)
            .with_context(|| format!("{}: not a readable Parquet file", f.display()))?;
        let Some(i) = b.schema().fields().iter().position(|x| x.name() == column) else {
            continue;
        };
        let mask = ProjectionMask::roots(b.parquet_schema(), [i]);
        for batch in b.with_projection(mask).build()? {
            let batch =
                batch.with_context(|| format!("{}: cannot read `{column}`", f.display()))?;
            let col = batch.column(0);
            let strings = arrow::compute::cast(col, &arrow::datatypes::DataType::Utf8)
                .with_context(|| format!("{}: `{column}` is not text", f.display()))?;
            let strings = strings
                .as_any()
                .downcast_ref::<arrow::array::StringArray>()
                .ok_or_else(|| anyhow::anyhow!("internal error (a bug): cast to Utf8"))?;
            each(strings);
        }
    }
    Ok(())
}

fn describe(files: &[PathBuf], text_column: &str, out: &mut String) -> Result<()> {
    use arrow::array::Array as _;
    let bytes: u64 = files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    writeln!(
        out,
        "files: {}  size on disk: {:.2} MB",
        files.len(),
        bytes as f64 / 1e6
    )?;
    let (rows, fields) = shard_schemas(files)?;
    writeln!(out, "rows: {rows}")?;
    writeln!(out, "columns:")?;
    for f in &fields {
        writeln!(out, "  {:<24} {}", f.name(), type_name(f.data_type()))?;
    }
    let is_text = |name: &str| {
        fields.iter().any(|f| {
            f.name() == name
                && matches!(
                    f.data_type(),
                    arrow::datatypes::DataType::Utf8
                        | arrow::datatypes::DataType::LargeUtf8
                        | arrow::datatypes::DataType::Utf8View
                )
        })
    };
    if is_text(text_column) && rows > 0 {
        // One length per document: 4 bytes each, for exact quantiles.
        let mut lens: Vec<u32> = Vec::with_capacity(rows.min(1 << 28) as usize);
        scan_column(files, text_column, |texts| {
            for t in texts.iter().flatten() {
                lens.push(t.chars().count() as u32);
            }
        })?;
        lens.sort_unstable();
        if !lens.is_empty() {
            let total: u64 = lens.iter().map(|&l| l as u64).sum();
            // The nearest rank, as polars' `QuantileMethod::Nearest`.
            let q = |q: f64| lens[((lens.len() - 1) as f64 * q).round() as usize];
            writeln!(out, "text length (characters):")?;
            let mut line = String::new();
            for qv in QUANTILES {
                write!(line, "  p{:<4} {:>10.0}", qv * 100.0, q(*qv) as f64)?;
            }
            writeln!(out, "{line}")?;
            writeln!(
                out,
                "  mean {:>10.1}  total {:>14.0}",
                total as f64 / lens.len() as f64,
                total as f64
            )?;
        }
    }
    for name in COUNT_COLUMNS {
        if !fields.iter().any(|f| f.name() == name) {
            continue;
        }
        let mut counts: std::collections::HashMap<Option<String>, u64> = Default::default();
        scan_column(files, name, |values| {
            for i in 0..values.len() {
                let k = (!values.is_null(i)).then(|| values.value(i).to_string());
                *counts.entry(k).or_default() += 1;
            }
        })?;
        let mut counts: Vec<(Option<String>, u64)> = counts.into_iter().collect();
        counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        writeln!(out, "by {name} (top 20):")?;
        for (k, n) in counts.into_iter().take(20) {
            writeln!(out, "  {:<40} {:>10}", k.as_deref().unwrap_or("(null)"), n)?;
        }
    }
    Ok(())
}
