//! WARC reading alone, one core: sluice's WARC reader in-process (records
//! found, HTTP heads parsed, bodies de-chunked and inflated, the charset
//! found and the page decoded to UTF-8, Arrow batches built), against
//! FastWARC and warcio on the same file, which
//! `benches/web/warc_read_speed.py --tool fastwarc warcio` times in the same
//! run (each from the file to every response's page as a decoded string).
//! Prints records/s of each and sluice's ratio to each peer.
//!
//!   cargo bench --bench warc_read                    # ../shared/data/web/html_pages.warc.gz
//!   cargo bench --bench warc_read -- FILE.warc.gz    # another file
//!
//! Needs target/web-venv (benches/web/README.md's set-up) for the peers.
//! This process and the peers are pinned to CPU 0. Record the figures in
//! docs/benchmarks.md.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use sluice::io::{discover, reader};
use sluice::pipeline::spec::Spec;

fn pin_to_cpu0() {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; the call only reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(0, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// Reads every task of `path` once; returns (documents, seconds).
fn read_once(path: &std::path::Path) -> (usize, f64) {
    let source =
        format!("[input]\npaths = [{path:?}]\nformat = \"warc\"\n[output]\ndir = \"unused\"\n");
    let spec = Spec::parse("bench.toml", &source).expect("a valid spec");
    let t = Instant::now();
    let tasks = discover::discover(&spec.input).expect("the file is found");
    let mut docs = 0;
    for task in &tasks {
        for batch in reader::open(task, &spec.input, None).expect("the file opens") {
            docs += batch.expect("the batch reads").batch.data.num_rows();
        }
    }
    (docs, t.elapsed().as_secs_f64())
}

fn main() {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let file = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .map(PathBuf::from)
        .unwrap_or_else(|| repo.join("../shared/data/web/html_pages.warc.gz"));
    pin_to_cpu0();
    let mb = std::fs::metadata(&file).expect("the WARC exists").len() as f64 / 1e6;
    let mut best = (0, f64::MAX);
    for _ in 0..5 {
        let r = read_once(&file);
        if r.1 < best.1 {
            best = r;
        }
    }
    let (docs, secs) = best;
    let ours = docs as f64 / secs;
    println!(
        "sluice reader: {docs} documents (records read, dropped ones included) in {secs:.3} s: {ours:.0} records/s, {:.1} MB/s compressed",
        mb / secs
    );
    let py = repo.join("target/web-venv/bin/python");
    let out = Command::new(&py)
        .arg(repo.join("benches/web/warc_read_speed.py"))
        .args([
            "--tool", "fastwarc", "warcio", "--repeat", "5", "--cpu", "0", "--warc",
        ])
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e} (see benches/web/README.md)", py.display()));
    let table = String::from_utf8_lossy(&out.stdout);
    print!("{table}");
    for line in table
        .lines()
        .filter(|l| l.starts_with("| fastwarc") || l.starts_with("| warcio"))
    {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if let Ok(rate) = cells[5].parse::<f64>() {
            println!("sluice / {}: {:.2}x", cells[1], ours / rate);
        }
    }
}
