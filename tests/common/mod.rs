//! Helpers shared by the end-to-end tests: run the binary, write small
//! Parquet/JSONL inputs, read shards back.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `../shared/<rel>` when it is there. Where it is not, the test skips,
/// loudly, on a clone without `../shared`; under `SLUICE_REQUIRE_SHARED`
/// (CI, which has it) it fails instead: a skip must not pass for a check.
pub fn shared(rel: &str) -> Option<PathBuf> {
    let p = repo().join("../shared").join(rel);
    if p.exists() {
        return Some(p);
    }
    assert!(
        std::env::var_os("SLUICE_REQUIRE_SHARED").is_none(),
        "SLUICE_REQUIRE_SHARED is set but {} is missing",
        p.display()
    );
    eprintln!(
        "!!! SKIPPED: {} is missing; what needs it did not run",
        p.display()
    );
    None
}

/// Runs `sluice` with `args` in `cwd`.
pub fn sluice(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sluice"));
    cmd.current_dir(cwd).args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("the sluice binary runs")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Runs and requires success, printing what sluice said otherwise.
pub fn run_ok(cwd: &Path, args: &[&str]) -> Output {
    let o = sluice(cwd, args, &[]);
    assert!(
        o.status.success(),
        "sluice {args:?} failed:\n{}\n{}",
        stdout(&o),
        stderr(&o)
    );
    o
}

/// Writes a spec file and returns its path.
pub fn write_spec(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p
}

/// Writes a Parquet file with `id` and `text` columns (None = null text).
pub fn write_docs(path: &Path, docs: &[(&str, Option<&str>)], row_group_rows: usize) {
    let ids: ArrayRef = Arc::new(StringArray::from(
        docs.iter().map(|d| Some(d.0)).collect::<Vec<_>>(),
    ));
    let texts: ArrayRef = Arc::new(StringArray::from(
        docs.iter().map(|d| d.1).collect::<Vec<_>>(),
    ));
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, true),
        Field::new("text", DataType::Utf8, true),
    ]));
    write_batch(
        path,
        RecordBatch::try_new(schema, vec![ids, texts]).unwrap(),
        row_group_rows,
    );
}

pub fn write_batch(path: &Path, batch: RecordBatch, row_group_rows: usize) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(row_group_rows))
        .build();
    let f = std::fs::File::create(path).unwrap();
    let mut w = ArrowWriter::try_new(f, batch.schema(), Some(props)).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

/// A Parquet file whose `text` column holds integers.
pub fn write_int_text(path: &Path) {
    let schema = Arc::new(Schema::new(vec![Field::new(
        "text",
        DataType::Int64,
        false,
    )]));
    let col: ArrayRef = Arc::new(Int64Array::from(vec![1, 2, 3]));
    write_batch(path, RecordBatch::try_new(schema, vec![col]).unwrap(), 10);
}

/// Every row of the Parquet files directly in `dir` whose name starts with `prefix`, in file order.
pub fn read_rows(dir: &Path, prefix: &str) -> Vec<BTreeMap<String, String>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| {
        let n = p.file_name().unwrap().to_string_lossy().into_owned();
        n.starts_with(prefix) && n.ends_with(".parquet")
    });
    files.sort();
    let mut rows = vec![];
    for f in files {
        let r = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&f).unwrap())
            .unwrap()
            .build()
            .unwrap();
        for b in r {
            let b = b.unwrap();
            for i in 0..b.num_rows() {
                let mut row = BTreeMap::new();
                for (field, col) in b.schema().fields().iter().zip(b.columns()) {
                    let v = if col.is_null(i) {
                        "<null>".to_string()
                    } else {
                        arrow::util::display::array_value_to_string(col, i).unwrap()
                    };
                    row.insert(field.name().clone(), v);
                }
                rows.push(row);
            }
        }
    }
    rows
}

/// The bytes of every shard in `dir` and `dir/excluded`, by relative name.
pub fn shard_bytes(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for sub in ["", "excluded"] {
        let d = dir.join(sub);
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            if name.ends_with(".parquet") {
                out.insert(format!("{sub}/{name}"), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

pub fn stats_json(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("stats.json")).expect("stats.json written"))
        .unwrap()
}

/// Documents dropped for `reason` according to stats.json.
pub fn dropped(stats: &serde_json::Value, reason: &str) -> u64 {
    stats["dropped"][reason]["docs"].as_u64().unwrap_or(0)
}

/// One string column of a Parquet file, in row order (nulls skipped).
pub fn read_parquet_column(path: &Path, column: &str) -> Vec<String> {
    let r = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(path).unwrap())
        .unwrap()
        .build()
        .unwrap();
    let mut out = vec![];
    for b in r {
        let b = b.unwrap();
        let col = b
            .column_by_name(column)
            .unwrap()
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap()
            .clone();
        out.extend(col.iter().flatten().map(str::to_string));
    }
    out
}

/// A small quality classifier trained by `sluice train-classifier` on the
/// fixtures: documentation and speeches (positive) against web pages
/// (negative). Returns the output folder (model.bin, report.json).
pub fn train_fixture_classifier(dir: &Path, name: &str, extra: &str) -> PathBuf {
    let q = repo().join("fixtures/quickstart");
    let out = dir.join(name);
    let body = format!(
        "[train]\npositive = [{:?}, {:?}]\nnegative = [{:?}]\nholdout_fraction = 0.3\n{extra}\n\n[model]\ndim = 16\nbucket = 50000\nepoch = 10\n\n[output]\ndir = {out:?}\n",
        q.join("python_docs.jsonl.zst"),
        q.join("speeches.jsonl.gz"),
        q.join("web_pages.parquet"),
    );
    let spec = write_spec(dir, &format!("{name}.toml"), &body);
    run_ok(dir, &["train-classifier", spec.to_str().unwrap(), "-q"]);
    out
}

/// True where a Slurm node is up; otherwise says loudly that the Slurm
/// tests skip (or fails, under SLUICE_REQUIRE_SLURM: CI).
pub fn slurm_here() -> bool {
    let up = Command::new("sinfo")
        .args(["-h", "-o", "%T"])
        .output()
        .is_ok_and(|o| {
            o.status.success()
                && String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .any(|l| ["idle", "mixed", "allocated"].contains(&l.trim()))
        });
    if !up {
        assert!(
            std::env::var_os("SLUICE_REQUIRE_SLURM").is_none(),
            "SLUICE_REQUIRE_SLURM is set but no Slurm node is up (run .ci/slurm-up)"
        );
        eprintln!(
            "\n==================== SKIPPED: no Slurm cluster here ====================\n\
             run .ci/slurm-up (as root) to bring one up and test the Slurm executor\n\
             ========================================================================\n"
        );
    }
    up
}

/// One text for each script of Unicode (Latin, Han, Tifinagh, Cuneiform,
/// …; over 150): its first 60 assigned characters, a space every seventh.
/// UDHR translations in hundreds of scripts are not on this machine (nor
/// on PyPI); this reaches every script Unicode has, if not real prose in
/// each.
pub fn script_texts() -> Vec<String> {
    use unicode_script::{Script, UnicodeScript};
    let mut by: std::collections::BTreeMap<&'static str, String> = Default::default();
    for c in (0..=0x10ffffu32).filter_map(char::from_u32) {
        let script = c.script();
        if script == Script::Unknown || c.is_control() {
            continue;
        }
        let t = by.entry(script.full_name()).or_default();
        let n = t.chars().filter(|&c| c != ' ').count();
        if n < 60 {
            t.push(c);
            if n % 7 == 6 {
                t.push(' ');
            }
        }
    }
    assert!(by.len() > 150, "{} scripts", by.len());
    by.into_values().collect()
}
