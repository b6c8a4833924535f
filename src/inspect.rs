//! `sluice inspect`: what a folder of shards holds, by a lazy polars scan:
//! rows, columns and types, sizes, text-length quantiles, counts by `lang`,
//! `source` and `drop_reason`, and the drop reasons of the run's `stats.json`.
//! Megatron `.bin`/`.idx` shards: documents, sequences, tokens, dtype, and
//! one document decoded with a tokenizer.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use polars::prelude::*;

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
        Some(p) => Some((crate::tokenizer::load::load_tokenizer(p)?, p)),
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

fn describe(files: &[PathBuf], text_column: &str, out: &mut String) -> Result<()> {
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
    let paths: Vec<PlRefPath> = files
        .iter()
        .map(|p| PlRefPath::new(p.to_string_lossy().as_ref()))
        .collect();
    // Shards of one folder may differ in columns (inputs with different
    // columns): scan them under the union of their schemas.
    let mut union = Schema::default();
    for p in &paths {
        let s = LazyFrame::scan_parquet(p.clone(), ScanArgsParquet::default())?.collect_schema()?;
        for (name, dtype) in s.iter() {
            if union.get(name).is_none() {
                union.with_column(name.clone(), dtype.clone());
            }
        }
    }
    let args = ScanArgsParquet {
        allow_missing_columns: true,
        schema: Some(Arc::new(union)),
        ..Default::default()
    };
    let lf = anyhow::Context::context(
        LazyFrame::scan_parquet_files(paths.into_iter().collect(), args),
        "cannot scan the Parquet shards",
    )?;
    let schema = anyhow::Context::context(
        lf.clone().collect_schema(),
        "cannot read the shards' schema",
    )?;
    let rows = lf.clone().select([len().alias("rows")]).collect()?;
    let rows = rows.column("rows")?.get(0)?.try_extract::<u64>()?;
    writeln!(out, "rows: {rows}")?;
    writeln!(out, "columns:")?;
    for (name, dtype) in schema.iter() {
        writeln!(out, "  {name:<24} {dtype}")?;
    }
    if schema.get(text_column).is_some() && rows > 0 {
        let len = col(text_column).str().len_chars();
        let mut exprs: Vec<Expr> = QUANTILES
            .iter()
            .map(|q| {
                len.clone()
                    .quantile(lit(*q), QuantileMethod::Nearest)
                    .alias(format!("q{q}"))
            })
            .collect();
        exprs.push(len.clone().mean().alias("mean"));
        exprs.push(len.sum().alias("total"));
        let q = lf.clone().select(exprs).collect()?;
        let value =
            |name: &str| -> Result<f64> { Ok(q.column(name)?.get(0)?.try_extract::<f64>()?) };
        writeln!(out, "text length (characters):")?;
        let mut line = String::new();
        for qv in QUANTILES {
            write!(
                line,
                "  p{:<4} {:>10.0}",
                qv * 100.0,
                value(&format!("q{qv}"))?
            )?;
        }
        writeln!(out, "{line}")?;
        writeln!(
            out,
            "  mean {:>10.1}  total {:>14.0}",
            value("mean")?,
            value("total")?
        )?;
    }
    for name in COUNT_COLUMNS {
        if schema.get(name).is_none() {
            continue;
        }
        let counts = lf
            .clone()
            .group_by([col(*name)])
            .agg([len().alias("n")])
            .sort(
                ["n", *name],
                SortMultipleOptions::default().with_order_descending_multi([true, false]),
            )
            .limit(20)
            .collect()?;
        writeln!(out, "by {name} (top 20):")?;
        let keys = counts.column(name)?.cast(&DataType::String)?;
        let keys = keys.str()?;
        let ns = counts.column("n")?.cast(&DataType::UInt64)?;
        let ns = ns.u64()?;
        for (k, n) in keys.iter().zip(ns.iter()) {
            writeln!(
                out,
                "  {:<40} {:>10}",
                k.unwrap_or("(null)"),
                n.unwrap_or(0)
            )?;
        }
    }
    Ok(())
}
