//! `sluice contamination spec.toml`: how much of the named evaluation sets
//! a finished corpus holds — `decontaminate`'s scan, counting only: it
//! writes `decontamination_report.json` (and prints a line per benchmark),
//! never a corpus.
//!
//! ```toml
//! [input]
//! paths = ["out/web/*.parquet"]
//! [contamination]
//! benchmarks = { gsm8k = "evals/gsm8k.jsonl", mmlu = "evals/mmlu/*.parquet" }
//! fields = ["question", "answer"]
//! ngram = 13
//! [output]
//! dir = "out/contamination"
//! ```

use std::path::Path;

use anyhow::{Context, Result};
use rayon::prelude::*;

use super::tokenizer::spec::{TokInput, TokOutput};
use crate::io::writer::write_atomic;
use crate::models::contamination::{scan, Benchmarks, Tally};
use crate::pipeline::spec::{
    need_section, parse_sections, read_sections, Section, Spec, SpecError,
};

pub struct ContaminationSpec {
    pub file: String,
    pub input: TokInput,
    pub benchmarks: Benchmarks,
    pub output: TokOutput,
}

const TOP_KEYS: &[&str] = &["input", "contamination", "output"];

impl ContaminationSpec {
    pub fn load(path: &Path) -> Result<Self, SpecError> {
        let (shell, table) = read_sections(path, "contamination", TOP_KEYS)?;
        Self::from_table(shell, table)
    }

    pub fn parse(file: &str, source: &str) -> Result<Self, SpecError> {
        let (shell, table) = parse_sections(file, source, TOP_KEYS)?;
        Self::from_table(shell, table)
    }

    fn from_table(shell: Spec, table: toml::Table) -> Result<Self, SpecError> {
        let file = shell.file.clone();
        let need = |name: &'static str, hint: &str| need_section(&file, &table, name, hint);
        let input: TokInput = shell.decode(Section::Input, need("input", "`paths = [...]`")?)?;
        let benchmarks: Benchmarks = shell.decode(
            Section::Table("contamination"),
            need(
                "contamination",
                "`benchmarks = { name = \"evals/name.jsonl\" }`",
            )?,
        )?;
        let output: TokOutput =
            shell.decode(Section::Output, need("output", "`dir = \"...\"`")?)?;
        input.validate(&shell)?;
        benchmarks.check(|key, message| {
            shell.error(Section::Table("contamination"), Some(key), message)
        })?;
        Ok(ContaminationSpec {
            file,
            input,
            benchmarks,
            output,
        })
    }
}

pub fn run(spec_path: &Path, workers: usize, quiet: bool) -> Result<()> {
    let spec = ContaminationSpec::load(spec_path)?;
    let start = std::time::Instant::now();
    let index = spec
        .benchmarks
        .build_index()
        .map_err(|e| anyhow::anyhow!("{}: {e:#}", spec.file))?;
    let index_secs = start.elapsed().as_secs_f64();
    let jobs = crate::train::text_jobs(&spec.file, &spec.input, quiet)?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(workers.max(1))
        .build()
        .context("cannot start the worker pool")?;
    let scan_start = std::time::Instant::now();
    // One tally per task, merged in input order: the report names the
    // first document of each row whatever the number of workers.
    let tallies: Vec<(Tally, u64)> = pool.install(|| {
        jobs.par_iter()
            .map(|job| -> Result<(Tally, u64)> {
                let mut tally = Tally::new(&index);
                let mut bytes = 0u64;
                job.for_each_doc(|id, text| {
                    tally.documents += 1;
                    bytes += text.len() as u64;
                    if let Some(h) = scan(&index, text, false) {
                        tally.add(&index, id, &h.rows);
                    }
                    Ok(())
                })?;
                Ok((tally, bytes))
            })
            .collect::<Result<Vec<_>>>()
    })?;
    let mut total = Tally::new(&index);
    let mut bytes = 0;
    for (t, b) in tallies {
        total.merge(t);
        bytes += b;
    }
    let scan_secs = scan_start.elapsed().as_secs_f64();
    let mut report = total.json(&index);
    report["seconds"] = serde_json::json!({"index": index_secs, "scan": scan_secs});
    report["bytes"] = serde_json::json!(bytes);
    let dir = &spec.output.dir;
    crate::io::store::create_dir_all(dir)?;
    let path = dir.join("decontamination_report.json");
    write_atomic(&path, serde_json::to_string_pretty(&report)?.as_bytes())?;
    if !quiet {
        print!("{}", total.summary(&index));
        println!(
            "{} of {} documents overlap a benchmark ({:.1} MB scanned in {scan_secs:.1} s); report: {}",
            total.documents_hit,
            total.documents,
            bytes as f64 / 1e6,
            path.display()
        );
    }
    Ok(())
}
