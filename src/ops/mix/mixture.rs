//! `mixture`: a token budget split among sources by weight ("1B tokens:
//! web 60%, code 20%, books 10%, wiki 10%"). A counting pass encodes every
//! document with the tokenizer (the tokenize step's, unless one is named)
//! and counts tokens per source; each source's factor is then its target
//! (`total_tokens` × its weight share) over what it holds, and documents are
//! repeated or sampled by that factor as `upsample` does: the fraction goes
//! to the documents of lowest id hash, as many as make the fraction's
//! tokens (`by_tokens`). Tokens are those the tokenize step after it
//! writes: the text's plus its BOS/EOS (none for an empty text, which it
//! drops).
//!
//! Phases: each task spills `[source, id hash, tokens]` per document and
//! writes its totals; `plan` sums them and fixes the factors; `count` (one
//! task per input task) replays the copies over the spills, so the report
//! gives what will be written, not an estimate; `report` writes
//! `mixture_report.json` and `mixture_report.txt` (computed with polars) to
//! the output folder. The next segment applies the factors row by row.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use arrow::array::{Array, StringArray};
use serde::{Deserialize, Serialize};

use crate::io::partfile::{put_record, read_part, records, PartWriter};
use crate::io::writer::write_atomic;
use crate::ops::mix::upsample::{copies_for, id_hash, Upsample};
use crate::ops::{
    shape, BuildCtx, DocBatch, GlobalCtx, GlobalOp, Observer, Op, OpInfo, OpKind, OpOutput,
    ParamDoc, PhaseSpec, Phased, RowFilter, StreamOp,
};
use crate::pipeline::spec::SpecError;
use crate::tokenizer::load::TextEncoder;

#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
struct Config {
    total_tokens: u64,
    weights: BTreeMap<String, f64>,
    column: String,
    tokenizer: Option<PathBuf>,
    max_epochs: Option<f64>,
    seed: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            // Required (its ParamDoc says so): checked by BuildCtx::config.
            total_tokens: Default::default(),
            // Required (its ParamDoc says so): checked by BuildCtx::config.
            weights: Default::default(),
            column: "source".into(),
            tokenizer: Default::default(),
            max_epochs: Default::default(),
            seed: 1,
        }
    }
}

pub const INFO: OpInfo = OpInfo {
    name: "mixture",
    kind: OpKind::Global,
    summary: "Splits a token budget among sources by weight: counts each source's tokens, \
              then repeats or samples its documents by target / available (as `upsample`); \
              writes mixture_report.json/.txt with documents, tokens and epochs per source.",
    params: &[
        ParamDoc {
            name: "total_tokens",
            kind: "integer",
            default: "required",
            doc: "tokens in the mixture, all sources together",
        },
        ParamDoc {
            name: "weights",
            kind: "table",
            default: "required",
            doc: "source = share, e.g. { web = 0.6, code = 0.2 } (normalised to sum 1; 0 drops it)",
        },
        ParamDoc {
            name: "column",
            kind: "string",
            default: "\"source\"",
            doc: "the column naming each document's source ([input.sources] fills it)",
        },
        ParamDoc {
            name: "tokenizer",
            kind: "path",
            default: "tokenize's",
            doc: "tokenizer.json that counts tokens (default: the tokenize step's)",
        },
        ParamDoc {
            name: "max_epochs",
            kind: "float",
            default: "none",
            doc: "cap on a source's factor; a capped source falls short of its share",
        },
        ParamDoc {
            name: "seed",
            kind: "integer",
            default: "1",
            doc: "another seed picks other documents for fractional copies",
        },
    ],
    drop_reasons: &["mixture:downsampled"],
    outputs: &["mixture_report.json", "mixture_report.txt"],
    build,
    config: shape::<Config>,
    example: r#"
[[step]]
op = "mixture"
total_tokens = 2000
weights = { web = 0.7, books = 0.3 }
tokenizer = "fixtures/models/wordllama-l2-64/l2_supercat_tokenizer_config.json"
"#,
    about: r#"
Splits a token budget among sources by weight: `weights` (source = share,
e.g. `{ web = 0.6, code = 0.2, books = 0.1, wiki = 0.1 }`) are normalised
to sum 1. Counts every source's tokens (with the tokenize step's tokenizer
unless `tokenizer` names one), then repeats or samples its documents to
reach `total_tokens` × its share; writes `mixture_report.json` and
`mixture_report.txt`. How the factors, the fractional part and the report
work: [tokenizers.md, Epochs and mixtures](tokenizers.md#epochs-and-mixtures).
"#,
};

pub struct Mixture {
    tokenizer: Arc<TextEncoder>,
    /// BOS/EOS the tokenize step puts around each non-empty document.
    added_per_doc: u64,
    total_tokens: u64,
    weights: BTreeMap<String, f64>,
    column: String,
    max_epochs: Option<f64>,
    seed: u64,
}

/// The first `tokenize` step after this one, if any.
fn tokenize_step<'a>(ctx: &BuildCtx<'a>) -> Option<&'a crate::pipeline::spec::StepSpec> {
    ctx.spec
        .steps
        .iter()
        .skip(ctx.step.index + 1)
        .find(|s| s.op == "tokenize")
}

/// The tokenizer of the tokenize step after this one.
fn tokenize_tokenizer(ctx: &BuildCtx<'_>) -> Option<PathBuf> {
    tokenize_step(ctx)
        .and_then(|s| s.params.get("tokenizer"))
        .and_then(|v| v.as_str())
        .map(PathBuf::from)
}

/// Tokens the tokenize step after this one adds to each document it
/// writes (BOS, EOS): they count against the budget as the text's do.
fn added_per_doc(ctx: &BuildCtx<'_>) -> u64 {
    tokenize_step(ctx).map_or(0, |s| {
        ["bos", "eos"]
            .iter()
            .filter(|k| s.params.get(**k).is_some_and(|v| v.is_str()))
            .count() as u64
    })
}

fn build(ctx: &BuildCtx<'_>) -> Result<Op, SpecError> {
    let c: Config = ctx.config()?;
    if c.total_tokens == 0 {
        return Err(ctx.error("total_tokens", "must be above 0".into()));
    }
    if c.weights.is_empty() {
        return Err(ctx.error("weights", "name at least one source".into()));
    }
    if let Some((k, w)) = c.weights.iter().find(|(_, w)| !w.is_finite() || **w < 0.0) {
        return Err(ctx.error(
            "weights",
            format!("weight of `{k}` is {w}: weights are shares, 0 or more"),
        ));
    }
    if c.weights.values().sum::<f64>() <= 0.0 {
        return Err(ctx.error("weights", "all weights are 0".into()));
    }
    if let Some(m) = c.max_epochs {
        if !(m > 0.0 && m <= 1000.0) {
            return Err(ctx.error(
                "max_epochs",
                format!("is {m}: it must be above 0 and at most 1000"),
            ));
        }
    }
    let path = c.tokenizer.or_else(|| tokenize_tokenizer(ctx)).ok_or_else(|| {
        ctx.error(
            "tokenizer",
            "tokens are counted with a tokenizer: set `tokenizer` or put a tokenize step after this one"
                .into(),
        )
    })?;
    let tokenizer =
        TextEncoder::load(&path).map_err(|e| ctx.error("tokenizer", format!("{e:#}")))?;
    Ok(Op::Global(Arc::new(Mixture {
        tokenizer: Arc::new(tokenizer),
        added_per_doc: added_per_doc(ctx),
        total_tokens: c.total_tokens,
        weights: c.weights,
        column: c.column,
        max_epochs: c.max_epochs,
        seed: c.seed,
    })))
}

/// Documents, text bytes and tokens.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
struct Tally {
    docs: u64,
    bytes: u64,
    tokens: u64,
}

impl crate::ops::mix::mixture_report::Tallied for Tally {
    fn docs(&self) -> u64 {
        self.docs
    }
    fn tokens(&self) -> u64 {
        self.tokens
    }
}

impl Tally {
    fn add(&mut self, o: &Tally) {
        self.docs += o.docs;
        self.bytes += o.bytes;
        self.tokens += o.tokens;
    }
}

/// Buckets of the id hash (its top bits) over which tokens are counted, to
/// pick the documents of a fractional factor by tokens, not by chance.
const BUCKETS: usize = 256;

/// One task's counts: its sources in the order first seen (the spill's
/// source numbers index this list); `None` is a row without a source.
/// `buckets[s][b]`: tokens of source `s` whose id hash falls in bucket `b`.
#[derive(Debug, Default, Serialize, Deserialize)]
struct TaskCounts {
    sources: Vec<Option<String>>,
    tallies: Vec<Tally>,
    buckets: Vec<Vec<u64>>,
}

/// The factors, fixed by the plan phase.
#[derive(Debug, Serialize, Deserialize)]
struct Plan {
    factors: BTreeMap<String, f64>,
    before: BTreeMap<String, Tally>,
}

fn counts_path(ctx: &GlobalCtx, task: usize) -> PathBuf {
    ctx.work.join("tasks").join(format!("{task:05}.json"))
}
fn spill_path(ctx: &GlobalCtx, task: usize) -> PathBuf {
    ctx.work.join("spill").join(format!("{task:05}.recs"))
}
fn after_path(ctx: &GlobalCtx, task: usize) -> PathBuf {
    ctx.work.join("after").join(format!("{task:05}.json"))
}
fn plan_path(ctx: &GlobalCtx) -> PathBuf {
    ctx.work.join("plan.json")
}

use crate::io::writer::read_work_json as read_json;

struct Counter {
    tokenizer: Arc<TextEncoder>,
    added_per_doc: u64,
    column: String,
    seed: u64,
    index: HashMap<Option<String>, u64>,
    counts: TaskCounts,
    spill: PartWriter,
    path: PathBuf,
}

impl Observer for Counter {
    fn observe(&mut self, batch: &DocBatch, _first_row: u64) -> Result<()> {
        let texts = batch.texts();
        let ids = batch.ids();
        let sources: Option<StringArray> = match batch.data.column_by_name(&self.column) {
            Some(c) => Some(
                arrow::compute::cast(c, &arrow::datatypes::DataType::Utf8)
                    .map_err(|e| anyhow::anyhow!("mixture: column `{}`: {e}", self.column))?
                    .as_any()
                    .downcast_ref::<StringArray>()
                    .expect("cast to Utf8")
                    .clone(),
            ),
            None => None,
        };
        let inputs: Vec<&str> = texts.iter().map(|t| t.unwrap_or("")).collect();
        let encodings = self
            .tokenizer
            .encode_batch(&inputs)
            .context("mixture: counting tokens")?;
        for (i, enc) in encodings.iter().enumerate() {
            let source = sources
                .as_ref()
                .and_then(|s| s.is_valid(i).then(|| s.value(i).to_string()));
            let next = self.index.len() as u64;
            let s = *self.index.entry(source.clone()).or_insert_with(|| {
                self.counts.sources.push(source);
                self.counts.tallies.push(Tally::default());
                self.counts.buckets.push(vec![0; BUCKETS]);
                next
            });
            let tokens = match enc.len() as u64 {
                0 => 0,
                n => n + self.added_per_doc,
            };
            let hash = id_hash(ids.value(i), self.seed);
            self.counts.buckets[s as usize][(hash >> 56) as usize] += tokens;
            let t = &mut self.counts.tallies[s as usize];
            t.docs += 1;
            t.bytes += texts.value(i).len() as u64;
            t.tokens += tokens;
            put_record(self.spill.part(0), &[s, hash, tokens]);
        }
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<()> {
        self.spill.finish()?;
        write_atomic(&self.path, &serde_json::to_vec(&self.counts)?)
    }
}

impl Mixture {
    /// Sums the tasks' counts and fixes each source's factor.
    fn plan(&self, ctx: &GlobalCtx) -> Result<()> {
        let mut before: BTreeMap<String, Tally> = BTreeMap::new();
        let mut buckets: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        let mut unnamed = Tally::default();
        for t in 0..ctx.tasks {
            let c: TaskCounts = read_json(&counts_path(ctx, t))?;
            for ((s, tally), b) in c.sources.iter().zip(&c.tallies).zip(&c.buckets) {
                match s {
                    Some(s) => {
                        before.entry(s.clone()).or_default().add(tally);
                        let sum = buckets.entry(s.clone()).or_insert(vec![0; BUCKETS]);
                        for (x, y) in sum.iter_mut().zip(b) {
                            *x += y;
                        }
                    }
                    None => unnamed.add(tally),
                }
            }
        }
        if unnamed.docs > 0 {
            bail!(
                "mixture: {} documents have no `{}`: every document needs a source \
                 (a column, or input groups in [input.sources])",
                unnamed.docs,
                self.column
            );
        }
        let found = || {
            let mut names: Vec<&str> = before.keys().map(String::as_str).take(10).collect();
            if before.len() > 10 {
                names.push("…");
            }
            format!("{} sources found: {}", before.len(), names.join(", "))
        };
        if let Some(s) = before.keys().find(|s| !self.weights.contains_key(*s)) {
            bail!(
                "mixture: source `{s}` ({} documents) has no weight; add it to `weights` \
                 (0 leaves it out); {}",
                before[s].docs,
                found()
            );
        }
        let sum: f64 = self.weights.values().sum();
        let mut factors = BTreeMap::new();
        for (s, w) in &self.weights {
            let have = before.get(s).map_or(0, |t| t.tokens);
            if have == 0 && *w > 0.0 {
                bail!(
                    "mixture: source `{s}` has weight {w} but no tokens in the input ({})",
                    found()
                );
            }
            let target = self.total_tokens as f64 * w / sum;
            let mut f = if have == 0 { 0.0 } else { target / have as f64 };
            if let Some(m) = self.max_epochs {
                f = f.min(m);
            }
            // As `upsample` refuses: past it, the output would not fit
            // anywhere (and writing it would not end).
            if f > crate::ops::mix::upsample::MAX_FACTOR {
                bail!(
                    "mixture: source `{s}` would be repeated {f:.0} times to give its share of \
                     total_tokens ({target:.0} tokens from {have}); at most {} is allowed: lower \
                     `total_tokens` or set `max_epochs`",
                    crate::ops::mix::upsample::MAX_FACTOR
                );
            }
            if let Some(b) = buckets.get(s) {
                f = by_tokens(f, have, b);
            }
            factors.insert(s.clone(), f);
        }
        write_atomic(
            &plan_path(ctx),
            &serde_json::to_vec(&Plan { factors, before })?,
        )
    }

    /// What task `t` will write: its spill replayed through the factors.
    fn count_after(&self, ctx: &GlobalCtx, t: usize) -> Result<()> {
        let plan: Plan = read_json(&plan_path(ctx))?;
        let c: TaskCounts = read_json(&counts_path(ctx, t))?;
        let factor: Vec<f64> = c
            .sources
            .iter()
            .map(|s| {
                s.as_ref()
                    .and_then(|s| plan.factors.get(s))
                    .copied()
                    .unwrap_or(0.0)
            })
            .collect();
        let path = spill_path(ctx, t);
        let mut after: BTreeMap<String, Tally> = BTreeMap::new();
        let mut tallies = vec![Tally::default(); c.sources.len()];
        for [s, hash, tokens] in records::<3>(&read_part(&path, 0)?, &path)? {
            let f = *factor
                .get(s as usize)
                .with_context(|| format!("{} is damaged; rerun with --force", path.display()))?;
            let n = copies_for(f, hash) as u64;
            let t = &mut tallies[s as usize];
            t.docs += n;
            t.tokens += n * tokens;
        }
        for (s, t) in c.sources.iter().zip(tallies) {
            if let Some(s) = s {
                after.entry(s.clone()).or_default().add(&t);
            }
        }
        write_atomic(&after_path(ctx, t), &serde_json::to_vec(&after)?)
    }

    fn report(&self, ctx: &GlobalCtx) -> Result<()> {
        let plan: Plan = read_json(&plan_path(ctx))?;
        let mut after: BTreeMap<String, Tally> = BTreeMap::new();
        for t in 0..ctx.tasks {
            let a: BTreeMap<String, Tally> = read_json(&after_path(ctx, t))?;
            for (s, v) in a {
                after.entry(s).or_default().add(&v);
            }
        }
        let report = crate::ops::mix::mixture_report::build(
            &self.weights,
            &plan.before,
            &after,
            &plan.factors,
            self.total_tokens,
        )?;
        let mut json = report.json;
        json["seed"] = self.seed.into();
        json["column"] = self.column.clone().into();
        if let Some(m) = self.max_epochs {
            json["max_epochs"] = m.into();
        }
        write_atomic(
            &ctx.output.join("mixture_report.json"),
            &serde_json::to_vec_pretty(&json)?,
        )?;
        write_atomic(
            &ctx.output.join("mixture_report.txt"),
            report.table.as_bytes(),
        )
    }
}

/// The factor whose fractional part takes, in id-hash order, the share of
/// the source's tokens that `f`'s fraction asks for: `copies_for` gives a
/// document its extra copy when its hash is below fraction × 2^64, so the
/// fraction is set where the source's tokens, cumulated over hash buckets,
/// reach the target (interpolated within the bucket). A coin per document
/// would miss by a few large documents on a small source.
fn by_tokens(f: f64, have: u64, buckets: &[u64]) -> f64 {
    let whole = f.floor();
    let need = (f - whole) * have as f64;
    if need <= 0.0 {
        return whole;
    }
    let mut cum = 0.0;
    for (b, &t) in buckets.iter().enumerate() {
        let t = t as f64;
        if t > 0.0 && cum + t >= need {
            let frac = (b as f64 + (need - cum) / t) / buckets.len() as f64;
            return whole + frac.clamp(0.0, 1.0);
        }
        cum += t;
    }
    whole + 1.0
}

impl Phased for Mixture {
    fn phases(self: Arc<Self>, ctx: &GlobalCtx) -> Vec<PhaseSpec> {
        vec![
            PhaseSpec::new(&self, "plan", 1, |op, ctx, _| op.plan(ctx)),
            PhaseSpec::new(&self, "count", ctx.tasks, |op, ctx, index| {
                crate::io::store::create_dir_all(&ctx.work.join("after"))?;
                op.count_after(ctx, index)
            }),
            PhaseSpec::new(&self, "report", 1, |op, ctx, _| op.report(ctx)),
        ]
    }

    fn observer(&self, ctx: &GlobalCtx, task: usize) -> Result<Box<dyn Observer>> {
        crate::io::store::create_dir_all(&ctx.work.join("spill"))?;
        crate::io::store::create_dir_all(&ctx.work.join("tasks"))?;
        Ok(Box::new(Counter {
            tokenizer: self.tokenizer.clone(),
            added_per_doc: self.added_per_doc,
            column: self.column.clone(),
            seed: self.seed,
            index: HashMap::new(),
            counts: TaskCounts::default(),
            spill: PartWriter::with_spill(
                &spill_path(ctx, task),
                1,
                ctx.task_budget(256 << 20) as usize,
            ),
            path: counts_path(ctx, task),
        }))
    }

    fn summary(&self, ctx: &GlobalCtx) -> Option<String> {
        let bytes = crate::io::store::read(&ctx.output.join("mixture_report.txt")).ok()?;
        String::from_utf8(bytes).ok()
    }
}

impl GlobalOp for Mixture {
    fn filter(&self, ctx: &GlobalCtx, _task: usize) -> Result<Box<dyn RowFilter>> {
        let plan: Plan = read_json(&plan_path(ctx))?;
        Ok(Box::new(Apply(Upsample {
            column: self.column.clone(),
            factors: plan.factors,
            // The plan phase fails on rows of a source without a weight.
            default: 0.0,
            seed: self.seed,
            reason: "mixture:downsampled",
        })))
    }
}

/// Applies the factors to a task's rows, as `upsample` would.
struct Apply(Upsample);

impl RowFilter for Apply {
    fn apply(&mut self, batch: DocBatch, _first_row: u64) -> Result<OpOutput> {
        self.0.apply(batch)
    }
}
