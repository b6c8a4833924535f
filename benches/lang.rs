//! Language identification: accuracy and speed of the `lang` op, both
//! backends, through the whole engine (Parquet in and out), one worker, on
//! the labelled sets of ../shared/data/lid/.
//!
//!   cargo bench --bench lang
//!
//! Accuracy is the share of documents whose predicted code equals the `lang`
//! label, over the ten major languages (en zh fr de es ru ja ar pt it) and
//! over every label. Record the figures in docs/benchmarks.md.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use arrow::array::{Array, StringArray};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

const MAJOR: &[&str] = &["en", "zh", "fr", "de", "es", "ru", "ja", "ar", "pt", "it"];

fn read_pairs(dir: &Path) -> Vec<(String, String)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    files.sort();
    let mut out = vec![];
    for f in files {
        let r = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(f).unwrap())
            .unwrap()
            .build()
            .unwrap();
        for b in r {
            let b = b.unwrap();
            let get = |n: &str| {
                b.column_by_name(n)
                    .unwrap()
                    .as_any()
                    .downcast_ref::<StringArray>()
                    .unwrap()
                    .clone()
            };
            let (gold, pred) = (get("lang"), get("pred"));
            for i in 0..b.num_rows() {
                let p = if pred.is_null(i) {
                    "?".to_string()
                } else {
                    pred.value(i).to_string()
                };
                // whatlang's examples are labelled in ISO 639-3.
                out.push((
                    sluice::ops::quality::lang::iso639_1(gold.value(i)).to_string(),
                    p,
                ));
            }
        }
    }
    out
}

fn main() {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let data = repo.join("../shared/data/lid");
    if !data.is_dir() {
        eprintln!("!!! SKIPPED: {} is missing", data.display());
        return;
    }
    let work = repo.join("target/bench-lang");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    let model = repo.join("fixtures/models/lid.176.ftz");
    println!(
        "{:<28} {:<9} {:>8} {:>9} {:>10} {:>9} {:>9}",
        "set", "backend", "docs", "MB", "docs/s", "MB/s", "acc top10 / all"
    );
    for set in [
        "lingua_paragraphs",
        "lingua_sentences",
        "fortunes",
        "whatlang_examples",
    ] {
        let input = data.join(format!("{set}.parquet"));
        for backend in ["fasttext", "whatlang"] {
            let out = work.join(format!("{set}-{backend}"));
            let spec = work.join(format!("{set}-{backend}.toml"));
            let model_line = if backend == "fasttext" {
                format!("model = {model:?}\n")
            } else {
                String::new()
            };
            std::fs::write(
                &spec,
                format!(
                    "[input]\npaths = [{input:?}]\n\n[[step]]\nop = \"lang\"\nbackend = \"{backend}\"\n{model_line}column = \"pred\"\n\n[output]\ndir = {out:?}\n"
                ),
            )
            .unwrap();
            let start = Instant::now();
            let status = Command::new(env!("CARGO_BIN_EXE_sluice"))
                .args(["run", "--workers", "1", "-q", "--force"])
                .arg(&spec)
                .stdout(std::process::Stdio::null())
                .status()
                .unwrap();
            let secs = start.elapsed().as_secs_f64();
            assert!(status.success());
            let stats: serde_json::Value =
                serde_json::from_slice(&std::fs::read(out.join("stats.json")).unwrap()).unwrap();
            let text_mb = stats["input"]["bytes"].as_f64().unwrap() / 1e6;
            let pairs = read_pairs(&out);
            let acc = |filter: &dyn Fn(&str) -> bool| {
                let sel: Vec<_> = pairs.iter().filter(|(g, _)| filter(g)).collect();
                sel.iter().filter(|(g, p)| g == p).count() as f64 / sel.len().max(1) as f64
            };
            let top = acc(&|g| MAJOR.contains(&g));
            let all = acc(&|_| true);
            println!(
                "{set:<28} {backend:<9} {:>8} {text_mb:>9.1} {:>10.0} {:>9.2} {:>9.3} / {:.3}",
                pairs.len(),
                pairs.len() as f64 / secs,
                text_mb / secs,
                top,
                all
            );
            if set == "lingua_paragraphs" {
                let mut per: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
                for (g, p) in &pairs {
                    if MAJOR.contains(&g.as_str()) {
                        let e = per.entry(g.as_str()).or_default();
                        e.0 += (g == p) as usize;
                        e.1 += 1;
                    }
                }
                let line: Vec<String> = per
                    .iter()
                    .map(|(l, (ok, n))| format!("{l} {:.3}", *ok as f64 / *n as f64))
                    .collect();
                println!("    per language: {}", line.join(", "));
            }
        }
    }
}
