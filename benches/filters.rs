//! Rule filters: throughput per filter and for the chain, one worker, through
//! the whole engine (Parquet in and out), on the English prose of
//! ../shared/data/prose/; and the time of gopher_repetition on one 10 MB
//! document (linear-time check). Compare with benches/datatrove_filters.py on
//! the same files.
//!
//!   cargo bench --bench filters

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use sluice::ops::quality::gopher::{gopher_repetition, GopherRepetitionParams};
use sluice::text::words::Segmenter;

const FILES: &[&str] = &[
    "en_abc_news",
    "en_linux_kernel_docs",
    "en_python_docs",
    "en_speeches",
];

fn run(repo: &Path, name: &str, steps: &str) -> (f64, f64) {
    let work = repo.join("target/bench-filters");
    std::fs::create_dir_all(&work).unwrap();
    let paths: Vec<String> = FILES
        .iter()
        .map(|f| {
            format!(
                "{:?}",
                repo.join(format!("../shared/data/prose/{f}.parquet"))
            )
        })
        .collect();
    let out = work.join(name);
    let spec = work.join(format!("{name}.toml"));
    std::fs::write(
        &spec,
        format!(
            "[input]\npaths = [{}]\n\n{steps}\n[output]\ndir = {out:?}\n",
            paths.join(", ")
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
    assert!(status.success());
    let secs = start.elapsed().as_secs_f64();
    let stats: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("stats.json")).unwrap()).unwrap();
    (secs, stats["input"]["bytes"].as_f64().unwrap() / 1e6)
}

fn main() {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    if !repo.join("../shared/data/prose").is_dir() {
        eprintln!("!!! SKIPPED: ../shared/data/prose is missing");
        return;
    }
    let (io_secs, mb) = run(&repo, "passthrough", "");
    println!(
        "English prose: {mb:.1} MB of text, {} files, one worker",
        FILES.len()
    );
    println!(
        "{:<22} {:>8} {:>10} {:>16}",
        "pipeline", "s", "MB/s", "MB/s (op only)"
    );
    println!(
        "{:<22} {io_secs:>8.2} {:>10.1} {:>16}",
        "read + write",
        mb / io_secs,
        "-"
    );
    let chain = "[[step]]\nop = \"gopher_repetition\"\n\n[[step]]\nop = \"gopher_quality\"\n\n[[step]]\nop = \"c4_quality\"\n\n[[step]]\nop = \"fineweb_quality\"\n";
    for (name, steps) in [
        (
            "gopher_repetition",
            "[[step]]\nop = \"gopher_repetition\"\n".to_string(),
        ),
        (
            "gopher_quality",
            "[[step]]\nop = \"gopher_quality\"\n".to_string(),
        ),
        ("c4_quality", "[[step]]\nop = \"c4_quality\"\n".to_string()),
        (
            "fineweb_quality",
            "[[step]]\nop = \"fineweb_quality\"\n".to_string(),
        ),
        ("four filters", chain.to_string()),
    ] {
        let (secs, _) = run(&repo, name, &steps);
        let op = (secs - io_secs).max(1e-3);
        println!(
            "{name:<22} {secs:>8.2} {:>10.1} {:>16.1}",
            mb / secs,
            mb / op
        );
    }
    // One 10 MB document of real, varied prose (the kernel docs end to end):
    // repetition statistics stay linear in the length.
    let mut doc = String::new();
    let f = std::fs::File::open(repo.join("../shared/data/prose/en_linux_kernel_docs.parquet"))
        .unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f)
        .unwrap()
        .build()
        .unwrap();
    'fill: for b in reader {
        let b = b.unwrap();
        let texts = b
            .column_by_name("text")
            .unwrap()
            .as_any()
            .downcast_ref::<arrow::array::StringArray>()
            .unwrap()
            .clone();
        for t in texts.iter().flatten() {
            doc.push_str(t);
            doc.push_str("\n\n");
            if doc.len() >= 10_000_000 {
                break 'fill;
            }
        }
    }
    let params: GopherRepetitionParams = toml::from_str("").unwrap();
    let start = Instant::now();
    let verdict = gopher_repetition(&doc, &Segmenter::SpacyEnglish, &params);
    println!(
        "gopher_repetition on one {:.1} MB document: {:.2} s ({verdict:?})",
        doc.len() as f64 / 1e6,
        start.elapsed().as_secs_f64()
    );
}
