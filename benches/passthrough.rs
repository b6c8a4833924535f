//! Engine overhead: a pass-through pipeline (read → normalize → write) against
//! a plain arrow-rs Parquet read + write of the same files, one core each,
//! at 1x and 8x the data, with wall time and peak memory (max RSS).
//!
//!   cargo bench --bench passthrough                 # data from ../shared/data
//!   cargo bench --bench passthrough -- DIR 1 8      # another folder, other sizes
//!
//! Needs /usr/bin/time for peak memory. Record the figures in docs/benchmarks.md.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use arrow::array::RecordBatchReader;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

fn parquet_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            parquet_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "parquet") {
            out.push(p);
        }
    }
}

/// The baseline: every file read as Arrow batches and written back with zstd.
fn baseline(input: &Path, output: &Path) {
    std::fs::create_dir_all(output).unwrap();
    let mut files = vec![];
    parquet_files(input, &mut files);
    files.sort();
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3).unwrap()))
        .build();
    for (i, f) in files.iter().enumerate() {
        let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(f).unwrap())
            .unwrap()
            .with_batch_size(4096)
            .build()
            .unwrap();
        let out = std::fs::File::create(output.join(format!("{i:05}.parquet"))).unwrap();
        let mut w = ArrowWriter::try_new(out, reader.schema(), Some(props.clone())).unwrap();
        for b in reader {
            w.write(&b.unwrap()).unwrap();
        }
        w.close().unwrap();
    }
}

/// Runs a command under /usr/bin/time; returns (seconds, max RSS in MB).
fn measure(cmd: &mut Command) -> (f64, f64) {
    let report = std::env::temp_dir().join(format!("sluice-bench-time-{}", std::process::id()));
    let mut timed = Command::new("/usr/bin/time");
    timed.arg("-f").arg("%M").arg("-o").arg(&report);
    timed.arg(cmd.get_program()).args(cmd.get_args());
    let start = Instant::now();
    let status = timed.status().expect("/usr/bin/time runs");
    let secs = start.elapsed().as_secs_f64();
    assert!(status.success(), "{cmd:?} failed");
    let kb: f64 = std::fs::read_to_string(&report)
        .unwrap()
        .trim()
        .lines()
        .last()
        .unwrap()
        .parse()
        .unwrap();
    (secs, kb / 1024.0)
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if args.first().map(String::as_str) == Some("--baseline") {
        baseline(Path::new(&args[1]), Path::new(&args[2]));
        return;
    }
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let data = args
        .first()
        .map(PathBuf::from)
        .unwrap_or_else(|| repo.join("../shared/data"));
    if !data.is_dir() {
        eprintln!(
            "!!! SKIPPED: {} is missing; pass a folder of Parquet files",
            data.display()
        );
        return;
    }
    let copies: Vec<usize> = if args.len() > 1 {
        args[1..].iter().map(|a| a.parse().unwrap()).collect()
    } else {
        vec![1, 8]
    };
    let mut files = vec![];
    parquet_files(&data, &mut files);
    files.sort();
    // Document files only: those with a string `text` column.
    files.retain(|f| {
        let r = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(f).unwrap()).unwrap();
        r.schema()
            .field_with_name("text")
            .is_ok_and(|t| t.data_type() == &arrow::datatypes::DataType::Utf8)
    });
    let work = repo.join("target/bench-passthrough");
    let _ = std::fs::remove_dir_all(&work);
    let text_mb: f64 = files
        .iter()
        .map(|f| {
            let r =
                ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(f).unwrap()).unwrap();
            let idx = r.schema().index_of("text").ok();
            r.build()
                .unwrap()
                .map(|b| {
                    let b = b.unwrap();
                    idx.map(|i| {
                        b.column(i)
                            .to_data()
                            .buffers()
                            .get(1)
                            .map_or(0, |v| v.len())
                    })
                    .unwrap_or(0) as f64
                })
                .sum::<f64>()
        })
        .sum::<f64>()
        / 1e6;
    println!(
        "{} Parquet files, {:.1} MB of text per copy, one worker each\n",
        files.len(),
        text_mb
    );
    println!(
        "{:>6} {:>10} {:>12} {:>10} {:>12} {:>10} {:>10}",
        "copies", "text MB", "arrow-rs s", "MB/s", "sluice s", "MB/s", "overhead"
    );
    for &n in &copies {
        let input = work.join(format!("in-{n}"));
        std::fs::create_dir_all(&input).unwrap();
        for k in 0..n {
            for (i, f) in files.iter().enumerate() {
                std::fs::hard_link(f, input.join(format!("{k:02}-{i:03}.parquet")))
                    .or_else(|_| {
                        std::fs::copy(f, input.join(format!("{k:02}-{i:03}.parquet"))).map(|_| ())
                    })
                    .unwrap();
            }
        }
        // Warm the page cache so both read from memory.
        baseline(&input, &work.join("warm"));
        let (bs, bmem) = measure(
            Command::new(std::env::current_exe().unwrap())
                .arg("--baseline")
                .arg(&input)
                .arg(work.join(format!("base-{n}"))),
        );
        let out = work.join(format!("sluice-{n}"));
        let spec = work.join(format!("passthrough-{n}.toml"));
        std::fs::write(
            &spec,
            format!(
                "[input]\npaths = [{:?}]\n\n[[step]]\nop = \"normalize\"\n\n[output]\ndir = {:?}\n",
                input, out
            ),
        )
        .unwrap();
        let (ss, smem) = measure(
            Command::new(env!("CARGO_BIN_EXE_sluice"))
                .args(["run", "--workers", "1", "-q", "--force"])
                .arg(&spec),
        );
        let mb = text_mb * n as f64;
        println!(
            "{n:>6} {mb:>10.1} {bs:>12.2} {:>10.1} {ss:>12.2} {:>10.1} {:>9.1}%   peak RSS: arrow-rs {bmem:.0} MB, sluice {smem:.0} MB",
            mb / bs,
            mb / ss,
            (ss / bs - 1.0) * 100.0
        );
    }
}
