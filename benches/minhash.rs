//! dedup_minhash: documents/s and MB/s per phase and end to end, one worker,
//! on the planted near-duplicate set of ../shared/data/dedup/ (1x, and 8x by
//! linking the file eight times), with peak memory. Compare with
//! benches/datatrove_minhash.py on the same file.
//!
//!   cargo bench --bench minhash

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

fn main() {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let docs = repo.join("../shared/data/dedup/neardup_en/docs.parquet");
    if !docs.exists() {
        eprintln!("!!! SKIPPED: {} is missing", docs.display());
        return;
    }
    let work = repo.join("target/bench-minhash");
    let _ = std::fs::remove_dir_all(&work);
    for copies in [1usize, 8] {
        let input = work.join(format!("in-{copies}"));
        std::fs::create_dir_all(&input).unwrap();
        for k in 0..copies {
            std::fs::hard_link(&docs, input.join(format!("{k:02}.parquet"))).unwrap();
        }
        let out = work.join(format!("out-{copies}"));
        let spec = work.join(format!("minhash-{copies}.toml"));
        std::fs::write(
            &spec,
            format!("[input]\npaths = [{input:?}]\n\n[[step]]\nop = \"dedup_minhash\"\n\n[output]\ndir = {out:?}\n"),
        )
        .unwrap();
        let report = work.join("time.txt");
        let start = Instant::now();
        let status = Command::new("/usr/bin/time")
            .args(["-f", "%M", "-o"])
            .arg(&report)
            .arg(env!("CARGO_BIN_EXE_sluice"))
            .args(["run", "--workers", "1", "-q", "--force"])
            .arg(&spec)
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        let secs = start.elapsed().as_secs_f64();
        assert!(status.success());
        let rss: f64 = std::fs::read_to_string(&report)
            .unwrap()
            .trim()
            .lines()
            .last()
            .unwrap()
            .parse::<f64>()
            .unwrap()
            / 1024.0;
        let stats: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("stats.json")).unwrap()).unwrap();
        let mb = stats["input"]["bytes"].as_f64().unwrap() / 1e6;
        let n = stats["input"]["docs"].as_u64().unwrap();
        println!(
            "{copies}x: {n} docs, {mb:.1} MB: {secs:.2} s end to end, {:.0} docs/s, {:.1} MB/s, removed {}, peak RSS {rss:.0} MB",
            n as f64 / secs,
            mb / secs,
            stats["dropped"]["dedup_minhash"]["docs"]
        );
        for p in stats["phases"].as_array().unwrap() {
            println!(
                "    {:<32} {:>4} tasks {:>8.2} s",
                p["phase"].as_str().unwrap(),
                p["tasks"],
                p["seconds"].as_f64().unwrap()
            );
        }
    }
}
