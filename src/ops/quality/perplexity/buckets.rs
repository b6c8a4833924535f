//! `perplexity` with `buckets`: a global op. The observe step scores every
//! row (its perplexities kept per task, in row order, so that the filter
//! does not score again) and writes `(language, perplexity)` for the
//! percentiles; one task sorts them (externally past the budget) and finds
//! each language's cut-offs; the filter adds both columns.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use arrow::array::Array;
use xxhash_rust::xxh3::xxh3_64;

use super::{Perplexity, ANY_LANG};
use crate::io::partfile::{put_u64, read_part, records, PartWriter};
use crate::io::sorter::ExternalSorter;
use crate::io::store;
use crate::ops::{DocBatch, GlobalCtx, GlobalOp, Observer, OpOutput, PhaseSpec, Phased, RowFilter};

/// The memory of the sort of the cut-offs phase.
const SORT_BUDGET: u64 = 512 << 20;
/// A null perplexity in the per-task file (no real one has these bits:
/// perplexities are positive).
const NONE: u64 = u64::MAX;

pub struct PerplexityBuckets {
    op: Arc<Perplexity>,
    percentiles: [f64; 2],
}

impl PerplexityBuckets {
    pub fn new(op: Perplexity, percentiles: [f64; 2]) -> Self {
        PerplexityBuckets {
            op: Arc::new(op),
            percentiles,
        }
    }
}

fn values_file(ctx: &GlobalCtx, task: usize) -> PathBuf {
    ctx.work.join("observe").join(format!("{task:05}.part"))
}
fn langs_file(ctx: &GlobalCtx, task: usize) -> PathBuf {
    ctx.work
        .join("observe")
        .join(format!("{task:05}.langs.json"))
}
fn cutoffs_file(ctx: &GlobalCtx) -> PathBuf {
    ctx.work.join("cutoffs.json")
}

struct ScoreObserver {
    op: Arc<Perplexity>,
    /// Partition 0: every row's perplexity bits, in row order; partition
    /// 1: `(language hash, perplexity bits)` of the rows that have one.
    out: PartWriter,
    langs: BTreeMap<u64, String>,
    path: PathBuf,
}

impl Observer for ScoreObserver {
    fn observe(&mut self, batch: &DocBatch, _first_row: u64) -> Result<()> {
        let langs = self.op.langs(batch)?;
        let values = self.op.perplexities(batch, &langs)?;
        for (i, v) in values.iter().enumerate() {
            put_u64(self.out.part(0), v.map_or(NONE, f64::to_bits));
            let Some(v) = v else { continue };
            let lang = match &langs {
                Some(l) if !l.is_null(i) => l.value(i),
                _ => ANY_LANG,
            };
            let h = xxh3_64(lang.as_bytes());
            self.langs.entry(h).or_insert_with(|| lang.to_string());
            let buf = self.out.part(1);
            put_u64(buf, h);
            put_u64(buf, v.to_bits());
        }
        Ok(())
    }
    fn finish(self: Box<Self>) -> Result<()> {
        store::write_atomic(&self.path, &serde_json::to_vec(&self.langs)?)?;
        self.out.finish()
    }
}

impl PerplexityBuckets {
    /// Per language, the perplexities at the percentiles: the value at
    /// index ⌊q·n⌋ of its n sorted perplexities, so that a share of about
    /// q is below it.
    fn cutoffs(&self, ctx: &GlobalCtx, _task: usize) -> Result<()> {
        let mut names: BTreeMap<u64, String> = BTreeMap::new();
        let mut counts: BTreeMap<u64, u64> = BTreeMap::new();
        let mut sorter =
            ExternalSorter::<2>::new(&ctx.work.join("sort").join("cutoffs"), SORT_BUDGET)?;
        for t in 0..ctx.tasks {
            let bytes = store::read(&langs_file(ctx, t))?;
            let langs: BTreeMap<u64, String> =
                serde_json::from_slice(&bytes).with_context(|| {
                    format!(
                        "{} is corrupt; rerun with --force",
                        langs_file(ctx, t).display()
                    )
                })?;
            names.extend(langs);
            let path = values_file(ctx, t);
            for [h, v] in records::<2>(&read_part(&path, 1)?, &path)? {
                *counts.entry(h).or_default() += 1;
                sorter.push([h, v])?;
            }
        }
        let mut cutoffs: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        let (mut lang, mut index) = (None, 0u64);
        for r in sorter.finish()? {
            let [h, v] = r?;
            if lang != Some(h) {
                lang = Some(h);
                index = 0;
            }
            let n = counts[&h];
            for q in self.percentiles {
                if index == ((q * n as f64).floor() as u64).min(n - 1) {
                    let name = names.get(&h).cloned().unwrap_or_default();
                    cutoffs.entry(name).or_default().push(f64::from_bits(v));
                }
            }
            index += 1;
        }
        store::write_atomic(&cutoffs_file(ctx), &serde_json::to_vec_pretty(&cutoffs)?)
    }
}

impl Phased for PerplexityBuckets {
    fn phases(self: Arc<Self>, _ctx: &GlobalCtx) -> Vec<PhaseSpec> {
        vec![PhaseSpec::new(&self, "cutoffs", 1, Self::cutoffs)]
    }

    fn observer(&self, ctx: &GlobalCtx, task: usize) -> Result<Box<dyn Observer>> {
        Ok(Box::new(ScoreObserver {
            op: self.op.clone(),
            out: PartWriter::with_spill(&values_file(ctx, task), 2, 64 << 20),
            langs: BTreeMap::new(),
            path: langs_file(ctx, task),
        }))
    }

    fn summary(&self, ctx: &GlobalCtx) -> Option<String> {
        let cuts: BTreeMap<String, Vec<f64>> =
            serde_json::from_slice(&store::read(&cutoffs_file(ctx)).ok()?).ok()?;
        let parts: Vec<String> = cuts
            .iter()
            .map(|(l, c)| {
                format!(
                    "{l} {}",
                    c.iter()
                        .map(|v| format!("{v:.1}"))
                        .collect::<Vec<_>>()
                        .join(" / ")
                )
            })
            .collect();
        Some(format!(
            "perplexity: cut-offs at percentiles {} / {}: {}\n",
            self.percentiles[0],
            self.percentiles[1],
            parts.join(", ")
        ))
    }
}

impl GlobalOp for PerplexityBuckets {
    fn filter(&self, ctx: &GlobalCtx, task: usize) -> Result<Box<dyn RowFilter>> {
        let path = values_file(ctx, task);
        let values = records::<1>(&read_part(&path, 0)?, &path)?;
        let cutoffs: BTreeMap<String, Vec<f64>> =
            serde_json::from_slice(&store::read(&cutoffs_file(ctx))?)
                .context("the cut-offs file is corrupt; rerun with --force")?;
        Ok(Box::new(BucketFilter {
            op: self.op.clone(),
            values,
            cutoffs,
        }))
    }
}

struct BucketFilter {
    op: Arc<Perplexity>,
    /// The task's perplexities, in row order.
    values: Vec<[u64; 1]>,
    cutoffs: BTreeMap<String, Vec<f64>>,
}

impl RowFilter for BucketFilter {
    fn apply(&mut self, batch: DocBatch, first_row: u64) -> Result<OpOutput> {
        let n = batch.num_rows();
        let start = first_row as usize;
        let Some(rows) = self.values.get(start..start + n) else {
            bail!(
                "perplexity holds {} values for this task, fewer than its rows: the intermediate \
                 files do not match the shards; rerun with --force",
                self.values.len()
            );
        };
        let values: Vec<Option<f64>> = rows
            .iter()
            .map(|[b]| (*b != NONE).then(|| f64::from_bits(*b)))
            .collect();
        let langs = self.op.langs(&batch)?;
        let out = self
            .op
            .with_columns(batch, values, &langs, Some(&self.cutoffs))?;
        Ok(OpOutput::new(out, vec![]))
    }

    fn finish(&mut self, rows: u64) -> Result<()> {
        if rows as usize != self.values.len() {
            bail!(
                "perplexity holds {} values for this task's {rows} rows: rerun with --force",
                self.values.len()
            );
        }
        Ok(())
    }
}
