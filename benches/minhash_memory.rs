//! dedup_minhash under a memory budget: an input ten times the budget
//! (default: 1 GB budget, 10 GB of text), peak RSS of the whole run.
//!
//!   cargo bench --bench minhash_memory
//!   SLUICE_MEM_BUDGET_MB=100 SLUICE_MEM_INPUT_MB=1000 cargo bench --bench minhash_memory
//!
//! The input is made from ../shared/data/dedup/neardup_en (8,070 documents,
//! planted near-duplicates) by writing it again and again, each copy with
//! its own edits: one copy in four replaces 2% of the words (its documents
//! stay near-duplicates of the original, Jaccard about 0.9), the others 15%
//! (Jaccard about 0.4: new documents). So the run finds real candidate
//! pairs and real components at every scale, as a crawl would. Generated
//! once into target/bench-memory/ and reused.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use arrow::array::{ArrayRef, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

fn env_mb(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn read_docs(path: &Path) -> Vec<String> {
    let r = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(path).unwrap())
        .unwrap()
        .build()
        .unwrap();
    let mut out = vec![];
    for b in r {
        let b = b.unwrap();
        let t = b
            .column_by_name("text")
            .unwrap()
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap()
            .clone();
        out.extend(t.iter().flatten().map(str::to_string));
    }
    out
}

fn splitmix(s: &mut u64) -> u64 {
    *s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *s;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Writes copies until `target` bytes of text; returns the bytes written.
fn generate(docs: &[String], dir: &Path, target: u64) -> u64 {
    std::fs::create_dir_all(dir).unwrap();
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("text", DataType::Utf8, false),
    ]));
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(1).unwrap()))
        .build();
    let (mut written, mut copy) = (0u64, 0u64);
    while written < target {
        let path = dir.join(format!("copy-{copy:05}.parquet"));
        let tmp = path.with_extension("tmp");
        let mut w = ArrowWriter::try_new(
            std::fs::File::create(&tmp).unwrap(),
            schema.clone(),
            Some(props.clone()),
        )
        .unwrap();
        let rate = if copy % 4 == 0 { 2 } else { 15 };
        let mut state = copy.wrapping_mul(0x2545_f491_4f6c_dd1d) ^ 7;
        for chunk in docs.chunks(2048) {
            let mut ids = vec![];
            let mut texts = vec![];
            for (i, d) in chunk.iter().enumerate() {
                let mut t = String::with_capacity(d.len() + 64);
                for w in d.split(' ') {
                    if !t.is_empty() {
                        t.push(' ');
                    }
                    if copy > 0 && splitmix(&mut state) % 100 < rate {
                        t.push_str(&format!("x{:x}", splitmix(&mut state) % 1_000_000));
                    } else {
                        t.push_str(w);
                    }
                }
                written += t.len() as u64;
                ids.push(format!("c{copy}-{i}-{}", ids.len()));
                texts.push(t);
            }
            let batch = RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(StringArray::from(ids)) as ArrayRef,
                    Arc::new(StringArray::from(texts)) as ArrayRef,
                ],
            )
            .unwrap();
            w.write(&batch).unwrap();
        }
        w.close().unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        copy += 1;
    }
    written
}

fn main() {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let source = repo.join("../shared/data/dedup/neardup_en/docs.parquet");
    if !source.exists() {
        eprintln!("!!! SKIPPED: {} is missing", source.display());
        return;
    }
    let budget_mb = env_mb("SLUICE_MEM_BUDGET_MB", 1000);
    let input_mb = env_mb("SLUICE_MEM_INPUT_MB", 10 * budget_mb);
    let work = repo.join("target/bench-memory");
    let input = work.join(format!("in-{input_mb}mb"));
    let marker = input.join("_bytes");
    let text_bytes = match std::fs::read_to_string(&marker) {
        Ok(s) => s.trim().parse::<u64>().unwrap(),
        Err(_) => {
            let _ = std::fs::remove_dir_all(&input);
            let start = Instant::now();
            let n = generate(&read_docs(&source), &input, input_mb * 1_000_000);
            std::fs::write(&marker, n.to_string()).unwrap();
            eprintln!(
                "generated {:.0} MB of text in {:.0} s",
                n as f64 / 1e6,
                start.elapsed().as_secs_f64()
            );
            n
        }
    };
    let out = work.join("out");
    let spec = work.join("minhash-memory.toml");
    std::fs::write(
        &spec,
        format!(
            "[input]\npaths = [\"{}/*.parquet\"]\n\n[[step]]\nop = \"dedup_minhash\"\nmemory_budget = \"{budget_mb}MB\"\n\n[output]\ndir = {out:?}\nexcluded = false\n",
            input.display()
        ),
    )
    .unwrap();
    let workers = env_mb("SLUICE_MEM_WORKERS", 2).to_string();
    let report = work.join("time.txt");
    let start = Instant::now();
    let status = Command::new("/usr/bin/time")
        .args(["-f", "%M", "-o"])
        .arg(&report)
        .arg(env!("CARGO_BIN_EXE_sluice"))
        .args(["run", "--workers", &workers, "--force"])
        .arg(&spec)
        .status()
        .unwrap();
    let secs = start.elapsed().as_secs_f64();
    assert!(status.success());
    let rss_mb = std::fs::read_to_string(&report)
        .unwrap()
        .trim()
        .lines()
        .last()
        .unwrap()
        .parse::<f64>()
        .unwrap()
        / 1024.0;
    println!(
        "budget {budget_mb} MB, input {:.0} MB of text, {workers} workers: {secs:.0} s ({:.1} MB/s), peak RSS {rss_mb:.0} MB",
        text_bytes as f64 / 1e6,
        text_bytes as f64 / 1e6 / secs
    );
}
