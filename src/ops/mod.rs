//! Operators: each module owns its config struct, its docs and its tests.
//!
//! A *streaming* op turns a batch into a batch (new columns and/or drops), with
//! no state across batches. A *global* op sees the whole corpus through phases
//! of independent tasks that talk only through files in the work folder.
//! Adding an op: a module here and one line in [`REGISTRY`].

pub mod c4;
pub mod cluster;
pub mod cluster_sample;
pub mod dedup_exact;
pub mod dedup_minhash;
pub mod dedup_semantic;
pub mod dup;
pub mod embed;
pub mod fineweb;
pub mod gopher;
pub mod lang;
pub mod length_filter;
pub mod mixture;
pub mod mixture_report;
pub mod normalize;
pub mod quality_model;
pub mod rules;
pub mod sample;
pub mod tokenize;
pub mod upsample;
pub mod vector_column;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;

use arrow::datatypes::SchemaRef;
use serde::de::DeserializeOwned;

pub use crate::batch::{with_column, with_fields, with_texts, DocBatch, DropMark, OpOutput};
use crate::pipeline::spec::{Section, Spec, SpecError, StepSpec};

pub trait StreamOp: Send + Sync {
    fn apply(&self, batch: DocBatch) -> Result<OpOutput>;
}

/// One phase of a global op between its observe and filter steps.
#[derive(Clone, Debug)]
pub struct PhaseSpec {
    pub name: String,
    pub tasks: usize,
}

/// What a global op knows of the run it is part of.
#[derive(Clone, Debug)]
pub struct GlobalCtx {
    /// This op's own folder inside the work folder.
    pub work: PathBuf,
    /// The run's output folder (where a sink writes).
    pub output: PathBuf,
    /// Number of tasks of the streaming phases (input tasks).
    pub tasks: usize,
    /// Total input size in bytes (as discovered), to size partitions.
    pub input_bytes: u64,
    /// Tasks that run at once on this machine: an op's memory budget is
    /// shared among them. Never changes what a task writes, only how.
    pub workers: usize,
}

impl GlobalCtx {
    /// One task's share of a memory budget for the whole op.
    pub fn task_budget(&self, budget: u64) -> u64 {
        budget / self.workers.max(1) as u64
    }
}

/// Sees every kept row of one task, in order, before the middle phases.
pub trait Observer: Send {
    fn observe(&mut self, batch: &DocBatch, first_row: u64) -> Result<()>;
    fn finish(self: Box<Self>) -> Result<()>;
}

/// Applies a global op's decisions to one task's rows, in the order observed.
pub trait RowFilter: Send {
    fn apply(&mut self, batch: DocBatch, first_row: u64) -> Result<OpOutput>;
    /// Called after the last batch with the number of rows seen: a filter
    /// holding decisions for rows that never came reports the mismatch.
    fn finish(&mut self, _rows: u64) -> Result<()> {
        Ok(())
    }
}

pub trait GlobalOp: Send + Sync {
    fn phases(&self, ctx: &GlobalCtx) -> Vec<PhaseSpec>;
    fn observer(&self, ctx: &GlobalCtx, task: usize) -> Result<Box<dyn Observer>>;
    fn run_phase(&self, ctx: &GlobalCtx, phase: usize, index: usize) -> Result<()>;
    fn filter(&self, ctx: &GlobalCtx, task: usize) -> Result<Box<dyn RowFilter>>;
    /// A sink (the last step) writes the run's output itself: the rows it
    /// observes are not written as Parquet shards and no filter follows.
    fn is_sink(&self) -> bool {
        false
    }
    /// A sink's accounting for the whole run (input, written, dropped),
    /// read after its phases.
    fn sink_stats(&self, _ctx: &GlobalCtx) -> Result<crate::stats::OpStats> {
        anyhow::bail!("not a sink")
    }
    /// Text the op adds to the run's summary (read after its phases).
    fn summary(&self, _ctx: &GlobalCtx) -> Option<String> {
        None
    }
    /// Whether the op's filter adds `dup_count` (a dedup op): the executor
    /// then counts the documents by duplicate-group size for the op's
    /// stats. Another op passes an earlier dedup's `dup_count` through, and
    /// must not report that histogram as its own.
    fn reports_group_sizes(&self) -> bool {
        false
    }
    /// Checks the columns this op needs in the rows it will observe (their
    /// schema, known before any task runs), and returns the schema of the
    /// rows its filter passes on where the op knows it; None stops the
    /// check there (the steps after it are checked when they run).
    fn check_input(&self, _schema: &SchemaRef) -> Result<Option<SchemaRef>> {
        Ok(None)
    }
}

pub enum Op {
    Stream(Box<dyn StreamOp>),
    Global(Arc<dyn GlobalOp>),
}

/// A built step: its label (`2:length_filter`) and the op.
pub struct Step {
    pub label: String,
    pub op: Op,
}

/// One parameter as `sluice ops` shows it.
pub struct ParamDoc {
    pub name: &'static str,
    pub kind: &'static str,
    pub default: &'static str,
    pub doc: &'static str,
}

/// An operator's entry in the registry.
pub struct OpInfo {
    pub name: &'static str,
    pub global: bool,
    pub summary: &'static str,
    pub params: &'static [ParamDoc],
    pub drop_reasons: &'static [&'static str],
    /// Files the op writes into the output folder beside the shards (glob
    /// patterns of names, e.g. `tokens-*.bin`): a new run (or `--force`)
    /// removes them, and their temporaries (`.<name>.tmp`), with the
    /// shards, whichever ops the last run had.
    pub outputs: &'static [&'static str],
    pub build: fn(&BuildCtx<'_>) -> Result<Op, SpecError>,
}

/// What an op's `build` gets: the step and the spec (for errors that point at it).
pub struct BuildCtx<'a> {
    pub spec: &'a Spec,
    pub step: &'a StepSpec,
}

impl BuildCtx<'_> {
    /// The step's parameters as the op's config struct.
    pub fn config<T: DeserializeOwned>(&self) -> Result<T, SpecError> {
        self.spec.decode(
            Section::Step(self.step.index),
            toml::Value::Table(self.step.params.clone()),
        )
    }
    /// An error about one of this step's keys.
    pub fn error(&self, key: &str, message: String) -> SpecError {
        self.spec.error(
            Section::Step(self.step.index),
            Some(key),
            format!("op `{}`: {message}", self.step.op),
        )
    }
}

/// Every operator sluice knows, in the order `sluice ops` lists them.
pub const REGISTRY: &[&OpInfo] = &[
    &normalize::INFO,
    &length_filter::INFO,
    &sample::INFO,
    &upsample::INFO,
    &mixture::INFO,
    &lang::INFO,
    &gopher::REPETITION_INFO,
    &gopher::QUALITY_INFO,
    &c4::INFO,
    &fineweb::INFO,
    &quality_model::INFO,
    &dedup_exact::INFO,
    &dedup_minhash::INFO,
    &embed::INFO,
    &cluster::INFO,
    &dedup_semantic::INFO,
    &cluster_sample::INFO,
    &tokenize::INFO,
];

/// Builds every step of a spec, failing on the first unknown op or bad parameter.
pub fn build_steps(spec: &Spec) -> Result<Vec<Step>, SpecError> {
    let names: Vec<&str> = REGISTRY.iter().map(|i| i.name).collect();
    spec.steps
        .iter()
        .map(|step| {
            let info = REGISTRY.iter().find(|i| i.name == step.op).ok_or_else(|| {
                spec.error(
                    Section::Step(step.index),
                    Some("op"),
                    format!(
                        "unknown op `{}`{} (known ops: {}; `sluice ops` describes them)",
                        step.op,
                        crate::pipeline::spec::suggest(&step.op, &names),
                        names.join(", ")
                    ),
                )
            })?;
            let op = (info.build)(&BuildCtx { spec, step })?;
            Ok(Step {
                label: step.label(),
                op,
            })
        })
        .collect()
}

/// The text `sluice ops` prints.
pub fn describe_all() -> String {
    let mut out = String::new();
    for info in REGISTRY {
        out.push_str(&format!(
            "{}{}\n  {}\n",
            info.name,
            if info.global { "  (global)" } else { "" },
            info.summary
        ));
        for p in info.params {
            out.push_str(&format!(
                "    {:<18} {:<12} default {:<10} {}\n",
                p.name, p.kind, p.default, p.doc
            ));
        }
        if !info.drop_reasons.is_empty() {
            out.push_str(&format!(
                "    drop reasons: {}\n",
                info.drop_reasons.join(", ")
            ));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The executor compiles every op's declared output files as glob
    /// patterns when it clears an output folder.
    #[test]
    fn every_op_declares_its_outputs_as_glob_patterns() {
        for op in REGISTRY {
            for p in op.outputs {
                assert!(glob::Pattern::new(p).is_ok(), "{}: {p}", op.name);
            }
        }
    }
}
