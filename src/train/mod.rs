//! The commands that read a corpus outside a pipeline: `sluice
//! train-tokenizer`, `prune-tokenizer`, `train-classifier`, `train-lm` and
//! `contamination`. Each has its own spec with an `[input]`; the models
//! they write are read at run time by `tokenizer` and `models`, which know
//! nothing of training.

pub mod classifier;
pub mod contamination;
pub mod lm;
pub mod tokenizer;

use anyhow::Result;

use crate::io::discover::{discover, InputTask};
use crate::pipeline::spec::InputSpec;
use tokenizer::spec::TokInput;

/// One input task of a training command's `[input]`, with its source's
/// per-task byte budget and sampling fraction.
pub struct TextJob {
    pub task: InputTask,
    pub input: InputSpec,
    pub budget: u64,
    pub fraction: Option<f64>,
}

fn input_spec(input: &TokInput, paths: &[String]) -> InputSpec {
    InputSpec {
        paths: paths.to_vec(),
        text_column: input.text_column.clone(),
        id_column: "id".into(),
        format: input.format,
        batch_rows: 4096,
        max_task_bytes: 256 << 20,
        sources: Default::default(),
        source_column: "source".into(),
    }
}

/// The tasks of every source of `[input]`, in order: `paths` first, then
/// each `[[input.sources]]`. A source's `max_bytes` is shared evenly among
/// its tasks.
pub fn text_jobs(spec_file: &str, input: &TokInput, quiet: bool) -> Result<Vec<TextJob>> {
    let mut jobs = vec![];
    for (k, source) in input.all_sources().iter().enumerate() {
        let spec = input_spec(input, &source.paths);
        let tasks = discover(&spec)?;
        anyhow::ensure!(
            !tasks.is_empty(),
            "{spec_file}: no input files matched the paths of source {} ({:?})",
            k + 1,
            source.paths
        );
        let budget = source
            .max_bytes
            .map_or(u64::MAX, |b| (b.0 / tasks.len() as u64).max(1));
        let n = tasks.len();
        jobs.extend(tasks.into_iter().map(|task| TextJob {
            task,
            input: spec.clone(),
            budget,
            fraction: source.fraction,
        }));
        if !quiet {
            crate::msg::info(format!(
                "source {}: {n} tasks{}{}",
                k + 1,
                source
                    .max_bytes
                    .map_or(String::new(), |b| format!(", at most {} bytes", b.0)),
                source
                    .fraction
                    .map_or(String::new(), |f| format!(", fraction {f}"))
            ));
        }
    }
    Ok(jobs)
}

impl TextJob {
    /// Calls `f` with each text of the task, in order, until the budget of
    /// bytes is spent; with a fraction, only the documents a hash of the id
    /// picks (the same ones whatever the order of the tasks or the number
    /// of workers).
    pub fn for_each_text(&self, mut f: impl FnMut(&str) -> Result<()>) -> Result<()> {
        self.for_each_doc(|_, text| f(text))
    }

    /// [`TextJob::for_each_text`] with each document's id.
    pub fn for_each_doc(&self, mut f: impl FnMut(&str, &str) -> Result<()>) -> Result<()> {
        let mut bytes = 0;
        for out in crate::io::reader::open(&self.task, &self.input, None)? {
            let out = out?;
            let ids = out.batch.ids().clone();
            for (i, text) in out.batch.texts().iter().enumerate() {
                let Some(text) = text else { continue };
                if bytes >= self.budget {
                    return Ok(());
                }
                if let Some(fr) = self.fraction {
                    if crate::seeded::id_unit(ids.value(i).as_bytes(), 0x5eed) >= fr {
                        continue;
                    }
                }
                bytes += text.len() as u64;
                f(ids.value(i), text)?;
            }
        }
        Ok(())
    }
}

/// This process's peak resident memory (Linux), for the reports.
pub fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}
