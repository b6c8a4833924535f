//! Operators: each module owns its config struct, its docs and its tests.
//!
//! A *streaming* op turns a batch into a batch (new columns and/or drops), with
//! no state across batches. A *global* op sees the whole corpus through phases
//! of independent tasks that talk only through files in the work folder.
//! A *sink* is the last step and writes the run's output itself.
//!
//! Adding an op: a file (or folder) in the group that fits, its `mod` line
//! in the group's `mod.rs`, and one line in [`REGISTRY`]. The op's file
//! holds its config (`#[serde(default)]` + `Default`: each default written
//! once), its `OpInfo` (docs, drop reasons, an example that the compliance
//! test runs), its build (validation, `SpecError`s) and its unit tests.

pub mod dedup;
pub mod mix;
pub mod privacy;
pub mod quality;
pub mod sinks;
pub mod text;
pub mod vectors;
pub mod web;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;

use arrow::datatypes::SchemaRef;
use serde::de::DeserializeOwned;
use serde::Serialize;

pub use crate::batch::{with_column, with_fields, with_texts, DocBatch, DropMark, OpOutput};
use crate::pipeline::spec::{Section, Spec, SpecError, StepSpec};

pub trait StreamOp: Send + Sync {
    fn apply(&self, batch: DocBatch) -> Result<OpOutput>;

    /// The thresholds the step applies to the columns it writes (or would
    /// apply, annotating), marked in `sluice report`.
    fn thresholds(&self) -> Vec<crate::stats::profile::Threshold> {
        vec![]
    }
}

/// One phase of a global op or sink between its observe and filter steps:
/// its name (in task markers and logs), its number of tasks, and what a
/// task does. An op declares its phases as one list, in order.
#[derive(Clone)]
pub struct PhaseSpec {
    pub name: String,
    pub tasks: usize,
    pub run: PhaseRun,
}

/// What a phase's task `index` runs.
pub type PhaseRun = Arc<dyn Fn(&GlobalCtx, usize) -> Result<()> + Send + Sync>;

impl PhaseSpec {
    /// A phase whose task `index` runs `f(op, ctx, index)`.
    pub fn new<T: Send + Sync + 'static>(
        op: &Arc<T>,
        name: &str,
        tasks: usize,
        f: fn(&T, &GlobalCtx, usize) -> Result<()>,
    ) -> PhaseSpec {
        let op = op.clone();
        PhaseSpec {
            name: name.to_string(),
            tasks,
            run: Arc::new(move |ctx, index| f(&op, ctx, index)),
        }
    }
}

impl std::fmt::Debug for PhaseSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({} tasks)", self.name, self.tasks)
    }
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

/// What global ops and sinks share: they observe every kept row, then
/// run their phases.
pub trait Phased: Send + Sync {
    /// The phases, in order, each with its tasks and handler. Takes the
    /// op's `Arc` so that handlers can hold it.
    fn phases(self: Arc<Self>, ctx: &GlobalCtx) -> Vec<PhaseSpec>;
    fn observer(&self, ctx: &GlobalCtx, task: usize) -> Result<Box<dyn Observer>>;
    /// Text the op adds to the run's summary (read after its phases).
    fn summary(&self, _ctx: &GlobalCtx) -> Option<String> {
        None
    }
}

/// An op that sees the whole corpus before deciding about any row: its
/// filter then applies the decisions, and the steps after it go on.
pub trait GlobalOp: Phased {
    fn filter(&self, ctx: &GlobalCtx, task: usize) -> Result<Box<dyn RowFilter>>;
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

/// The last step, which writes the run's output itself: the rows it
/// observes are not written as Parquet shards and no filter follows.
pub trait SinkOp: Phased {
    /// The sink's accounting for the whole run (input, written, dropped),
    /// read after its phases.
    fn stats(&self, ctx: &GlobalCtx) -> Result<crate::stats::OpStats>;
}

pub enum Op {
    Stream(Box<dyn StreamOp>),
    Global(Arc<dyn GlobalOp>),
    Sink(Arc<dyn SinkOp>),
}

/// An op's kind as the registry and the docs show it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpKind {
    Stream,
    Global,
    Sink,
    /// Streaming, but global when a parameter asks for a pass over the
    /// corpus (the text says which).
    StreamOrGlobal(&'static str),
}

impl Op {
    pub fn kind(&self) -> OpKind {
        match self {
            Op::Stream(_) => OpKind::Stream,
            Op::Global(_) => OpKind::Global,
            Op::Sink(_) => OpKind::Sink,
        }
    }
}

/// A built step: its label (`2:length_filter`) and the op.
pub struct Step {
    pub label: String,
    pub op: Op,
}

/// One parameter as `sluice ops` shows it. The value a parameter takes
/// when the step leaves it out is the op config's `Default` (its struct is
/// `#[serde(default)]`); `default` shows it, and a test holds the two
/// together for every op (`params_match_their_configs`).
pub struct ParamDoc {
    pub name: &'static str,
    pub kind: &'static str,
    /// The default as a TOML value (`0.8`, `"first"`, `[]`), which must be
    /// the config's; or, where the config has no value to show, words: a
    /// parameter whose default is `"required"` must be given (checked by
    /// [`BuildCtx::config`]), and an optional one says what leaving it out
    /// means (`none`, `derived`). Lists too long for the table (stop words,
    /// punctuation sets) are described in words too.
    pub default: &'static str,
    pub doc: &'static str,
}

impl ParamDoc {
    pub fn required(&self) -> bool {
        self.default == "required"
    }
}

/// The keys of an op's config and the values of its `Default`, for the
/// docs and for the test that holds them to the `ParamDoc`s.
pub struct ConfigShape {
    /// Every key the config takes, in declaration order.
    pub keys: Vec<String>,
    /// The `Default` as TOML (keys whose default is no value are absent).
    pub defaults: toml::Table,
}

/// The shape of config `T`: its keys, read from the error serde gives for
/// an unknown key (every op config denies unknown keys), and its defaults.
pub fn shape<T: DeserializeOwned + Serialize + Default>() -> ConfigShape {
    let mut probe = toml::Table::new();
    probe.insert("\u{1}".into(), toml::Value::Boolean(true));
    let keys = match T::deserialize(toml::Value::Table(probe)) {
        Err(e) => crate::pipeline::spec::quoted(&e.to_string(), "unknown field `")
            .map(|(_, keys)| keys.into_iter().map(str::to_string).collect())
            .unwrap_or_default(),
        Ok(_) => vec![],
    };
    let defaults = match toml::Value::try_from(T::default()) {
        Ok(toml::Value::Table(t)) => t,
        _ => toml::Table::new(),
    };
    ConfigShape { keys, defaults }
}

/// An operator's entry in the registry.
pub struct OpInfo {
    pub name: &'static str,
    pub kind: OpKind,
    pub summary: &'static str,
    pub params: &'static [ParamDoc],
    pub drop_reasons: &'static [&'static str],
    /// Files the op writes into the output folder beside the shards (glob
    /// patterns of names, e.g. `tokens-*.bin`): a new run (or `--force`)
    /// removes them, and their temporaries (`.<name>.tmp`), with the
    /// shards, whichever ops the last run had.
    pub outputs: &'static [&'static str],
    pub build: fn(&BuildCtx<'_>) -> Result<Op, SpecError>,
    /// The config's keys and defaults: `shape::<TheConfig>`.
    pub config: fn() -> ConfigShape,
    /// Steps that use the op (with any it needs before it), as a spec
    /// holds them; paths are the repository's fixtures. The reference
    /// shows it, and the compliance test (tests/ops_compliance.rs) runs it.
    pub example: &'static str,
    /// What the reference (`sluice ops --markdown`, docs/ops.md) says of
    /// the op beyond its summary and parameters: markdown paragraphs.
    pub about: &'static str,
}

/// What an op's `build` gets: the step and the spec (for errors that point at it).
pub struct BuildCtx<'a> {
    pub spec: &'a Spec,
    pub step: &'a StepSpec,
    /// The op's registry entry: which of its keys are required.
    pub info: &'a OpInfo,
}

impl BuildCtx<'_> {
    /// The step's parameters as the op's config struct; a key the op's
    /// docs mark required must be there (the config's `Default` fills in
    /// every other).
    pub fn config<T: DeserializeOwned>(&self) -> Result<T, SpecError> {
        if let Some(p) = self
            .info
            .params
            .iter()
            .find(|p| p.required() && !self.step.params.contains_key(p.name))
        {
            return Err(self.spec.error(
                Section::Step(self.step.index),
                None,
                format!("missing key `{}`", p.name),
            ));
        }
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
    &web::url_filter::INFO,
    &web::extract::INFO,
    &text::normalize::INFO,
    &text::length_filter::INFO,
    &text::regex_filter::INFO,
    &mix::sample::INFO,
    &mix::upsample::INFO,
    &mix::mixture::INFO,
    &quality::lang::INFO,
    &quality::gopher::REPETITION_INFO,
    &quality::gopher::QUALITY_INFO,
    &quality::c4::INFO,
    &quality::fineweb::INFO,
    &quality::quality_model::INFO,
    &quality::perplexity::INFO,
    &quality::select::INFO,
    &privacy::pii::INFO,
    &privacy::decontaminate::INFO,
    &dedup::dedup_exact::INFO,
    &dedup::dedup_lines::INFO,
    &dedup::dedup_minhash::INFO,
    &vectors::embed::INFO,
    &vectors::cluster::INFO,
    &dedup::dedup_semantic::INFO,
    &vectors::cluster_sample::INFO,
    &sinks::tokenize::INFO,
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
            let op = (info.build)(&BuildCtx { spec, step, info })?;
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
            match info.kind {
                OpKind::Stream => String::new(),
                OpKind::Global => "  (global)".into(),
                OpKind::Sink => "  (sink: the last step)".into(),
                OpKind::StreamOrGlobal(when) => format!("  (global {when})"),
            },
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

/// The operator reference (`sluice ops --markdown`), which docs/ops.md
/// holds: a test fails when the two differ.
pub fn describe_markdown() -> String {
    let mut out = String::from(
        "# Operators\n\n\
         <!-- Generated by `sluice ops --markdown` from each op's code \
         (src/ops/); do not edit: a test fails when this file differs. -->\n\n\
         A step is `op = \"…\"` and that op's keys; a key left out takes \
         the default shown. *Streaming* ops see one batch at a time; *global* \
         ops see the whole corpus in phases (docs/design.md); a *sink* is the \
         last step and writes the run's output itself.\n\n",
    );
    for info in REGISTRY {
        out.push_str(&format!("- [`{0}`](#{0})\n", info.name));
    }
    for info in REGISTRY {
        let kind = match info.kind {
            OpKind::Stream => "streaming".into(),
            OpKind::Global => "global".into(),
            OpKind::Sink => "sink (the last step)".into(),
            OpKind::StreamOrGlobal(when) => format!("streaming; global {when}"),
        };
        out.push_str(&format!(
            "\n## {}\n\n*{kind}.* {}\n\n",
            info.name,
            info.summary
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        ));
        if !info.about.is_empty() {
            out.push_str(info.about.trim());
            out.push_str("\n\n");
        }
        out.push_str(&format!("```toml\n{}\n```\n\n", info.example.trim()));
        if !info.params.is_empty() {
            out.push_str("| key | type | default | meaning |\n| --- | --- | --- | --- |\n");
            for p in info.params {
                let default = if toml_value(p.default).is_some() {
                    format!("`{}`", p.default)
                } else {
                    p.default.to_string()
                };
                out.push_str(&format!(
                    "| `{}` | {} | {} | {} |\n",
                    p.name,
                    p.kind,
                    default,
                    p.doc.replace('|', "\\|")
                ));
            }
            out.push('\n');
        }
        let reasons: Vec<String> = info.drop_reasons.iter().map(|r| format!("`{r}`")).collect();
        out.push_str(&format!(
            "Drop reasons: {}.\n",
            if reasons.is_empty() {
                "none".to_string()
            } else {
                reasons.join(", ")
            }
        ));
        if !info.outputs.is_empty() {
            let files: Vec<String> = info.outputs.iter().map(|r| format!("`{r}`")).collect();
            out.push_str(&format!(
                "Files it writes beside the shards: {}.\n",
                files.join(", ")
            ));
        }
    }
    out
}

/// A ParamDoc default that is a TOML value (rather than words).
fn toml_value(text: &str) -> Option<toml::Value> {
    let t: toml::Table = toml::from_str(&format!("v = {text}")).ok()?;
    t.get("v").cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Numbers compare by value (`3` documents a float default of 3.0).
    fn same(a: &toml::Value, b: &toml::Value) -> bool {
        use toml::Value::{Array, Float, Integer};
        match (a, b) {
            (Integer(x), Float(y)) | (Float(y), Integer(x)) => *x as f64 == *y,
            (Array(x), Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b)),
            _ => a == b,
        }
    }

    /// docs/ops.md is what `sluice ops --markdown` prints today.
    #[test]
    fn the_operator_reference_is_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/ops.md");
        let on_disk = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            on_disk == describe_markdown(),
            "docs/ops.md differs from the code's operator reference: \
             run `cargo run -- ops --markdown > docs/ops.md`"
        );
    }

    /// Every op's documented keys are its config's keys, and every default
    /// the docs show as a value is the one its `Default` gives: the
    /// parameter is written once (the config) and the docs cannot drift.
    #[test]
    fn params_match_their_configs() {
        let mut faults = vec![];
        for op in REGISTRY {
            let shape = (op.config)();
            assert!(
                !shape.keys.is_empty(),
                "{}: its config must deny unknown keys (the probe found no key list)",
                op.name
            );
            let documented: Vec<&str> = op.params.iter().map(|p| p.name).collect();
            for k in &shape.keys {
                if !documented.contains(&k.as_str()) {
                    faults.push(format!("{}: key `{k}` has no ParamDoc", op.name));
                }
            }
            for p in op.params {
                if !shape.keys.iter().any(|k| k == p.name) {
                    faults.push(format!(
                        "{}: ParamDoc `{}` is not a key of its config",
                        op.name, p.name
                    ));
                    continue;
                }
                if p.required() {
                    continue;
                }
                let actual = shape.defaults.get(p.name);
                match (toml_value(p.default), actual) {
                    (Some(doc), Some(actual)) if !same(&doc, actual) => faults.push(format!(
                        "{}: `{}` documented default {} but its Default is {actual}",
                        op.name, p.name, p.default
                    )),
                    (Some(_), None) => faults.push(format!(
                        "{}: `{}` documented default {} but its Default has no value",
                        op.name, p.name, p.default
                    )),
                    // Words stand for a value only where it is too long to show.
                    (None, Some(actual)) if actual.to_string().len() <= 60 => faults.push(format!(
                        "{}: `{}` documented default \"{}\" (words) but its Default is {actual}",
                        op.name, p.name, p.default
                    )),
                    _ => {}
                }
            }
        }
        assert!(faults.is_empty(), "{}", faults.join("\n"));
    }

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
