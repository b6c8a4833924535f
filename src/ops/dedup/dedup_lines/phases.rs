//! The phases of `dedup_lines`: observe, find (exact) or bloom, filter.
//!
//! A unit's position is `row << 24 | index`: a document's units past the
//! 2²⁴th (a 16-million-line document) are never hashed, so never cut.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use arrow::array::{Array, StringArray};
use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};

use super::units::{rebuild, split};
use super::{DedupLines, Method, Scope};
use crate::io::partfile::{put_u64, read_part, records, PartWriter};
use crate::io::sorter::{ExternalSorter, Sorted};
use crate::io::store;
use crate::ops::{
    with_texts, DocBatch, DropMark, GlobalCtx, GlobalOp, Observer, OpOutput, PhaseSpec, Phased,
    RowFilter,
};
use crate::text::ccnet::normalize_for_dedup;

const UNIT_BITS: u32 = 24;
const MAX_UNITS: usize = 1 << UNIT_BITS;

impl DedupLines {
    fn partitions(&self, ctx: &GlobalCtx) -> usize {
        match self.method {
            // The bloom phase reads every task's units in input order.
            Method::Bloom => 1,
            Method::Exact => self
                .partitions
                .unwrap_or_else(|| ((ctx.input_bytes >> 28) as usize).clamp(4, 4096)),
        }
    }
    fn budget(&self, ctx: &GlobalCtx) -> u64 {
        ctx.task_budget(self.memory_budget.0)
    }
    /// Files of removals, each partitioned by input task.
    fn removal_files(&self, ctx: &GlobalCtx) -> Vec<PathBuf> {
        match self.method {
            Method::Bloom => vec![ctx.work.join("bloom").join("removals.part")],
            Method::Exact => (0..self.partitions(ctx))
                .map(|p| ctx.work.join("find").join(format!("{p:05}.part")))
                .collect(),
        }
    }
}

fn observe_file(ctx: &GlobalCtx, task: usize) -> PathBuf {
    ctx.work.join("observe").join(format!("{task:05}.part"))
}
fn count_file(ctx: &GlobalCtx, task: usize) -> PathBuf {
    ctx.work.join("observe").join(format!("{task:05}.units"))
}
fn bloom_report(ctx: &GlobalCtx) -> PathBuf {
    ctx.work.join("bloom").join("report.json")
}

struct UnitObserver {
    op: Arc<DedupLinesView>,
    /// `(hash, position)` per hashed unit, in its partition.
    out: PartWriter,
    partitions: u64,
    units: u64,
    count_path: PathBuf,
    norm: String,
}

/// What the observer and filter need of the op's config.
struct DedupLinesView {
    unit: super::Unit,
    min_chars: usize,
    min_doc_chars: usize,
    scope: Scope,
    source_column: String,
}

impl DedupLines {
    fn view(&self) -> Arc<DedupLinesView> {
        Arc::new(DedupLinesView {
            unit: self.unit,
            min_chars: self.min_chars,
            min_doc_chars: self.min_doc_chars,
            scope: self.scope,
            source_column: self.source_column.clone(),
        })
    }
}

impl DedupLinesView {
    /// The hash seed of each row: one for the whole corpus, or its source's.
    fn seeds(&self, batch: &DocBatch) -> Result<Option<StringArray>> {
        if self.scope == Scope::Corpus {
            return Ok(None);
        }
        let name = &self.source_column;
        let col = batch.data.column_by_name(name).ok_or_else(|| {
            anyhow::anyhow!(
                "dedup_lines: scope = \"source\" needs the source column `{name}` \
                 ([input.sources], or the input's source_column)"
            )
        })?;
        let col = arrow::compute::cast(col, &arrow::datatypes::DataType::Utf8)
            .with_context(|| format!("dedup_lines: source column `{name}`"))?;
        Ok(Some(
            col.as_any()
                .downcast_ref::<StringArray>()
                .expect("cast to Utf8")
                .clone(),
        ))
    }
}

fn seed_of(seeds: &Option<StringArray>, i: usize) -> u64 {
    match seeds {
        None => 0,
        Some(s) if s.is_null(i) => xxh3_64(b"\0null source"),
        Some(s) => xxh3_64(s.value(i).as_bytes()),
    }
}

impl Observer for UnitObserver {
    fn observe(&mut self, batch: &DocBatch, first_row: u64) -> Result<()> {
        let texts = batch.texts();
        let seeds = self.op.seeds(batch)?;
        for i in 0..batch.num_rows() {
            let row = first_row + i as u64;
            let text = texts.value(i);
            let seed = seed_of(&seeds, i);
            for (k, &(s, e)) in split(text, self.op.unit).iter().enumerate().take(MAX_UNITS) {
                let unit = &text[s..e];
                if self.op.min_chars > 0 && unit.trim().chars().count() < self.op.min_chars {
                    continue;
                }
                normalize_for_dedup(unit, &mut self.norm);
                if self.norm.is_empty() {
                    continue;
                }
                let h = xxh3_64_with_seed(self.norm.as_bytes(), seed);
                let buf = self.out.part((h % self.partitions) as usize);
                put_u64(buf, h);
                put_u64(buf, (row << UNIT_BITS) | k as u64);
                self.units += 1;
            }
        }
        Ok(())
    }
    fn finish(self: Box<Self>) -> Result<()> {
        store::write_atomic(&self.count_path, self.units.to_string().as_bytes())?;
        self.out.finish()
    }
}

/// The Bloom filter's shape and what it held, for the run's summary.
#[derive(Serialize, Deserialize)]
struct BloomReport {
    bits: u64,
    hashes: u32,
    units: u64,
    inserted: u64,
    estimated_rate: f64,
}

impl DedupLines {
    fn find(&self, ctx: &GlobalCtx, partition: usize) -> Result<()> {
        let budget = self.budget(ctx);
        // Sorted by (hash, task, position): a group's first entry is the
        // unit's first occurrence in input order.
        let mut sorter = ExternalSorter::<3>::new(
            &ctx.work.join("sort").join(format!("find-{partition:05}")),
            budget / 2,
        )?;
        for t in 0..ctx.tasks {
            let path = observe_file(ctx, t);
            for [h, pos] in records::<2>(&read_part(&path, partition)?, &path)? {
                sorter.push([h, t as u64, pos])?;
            }
        }
        let mut out = PartWriter::with_spill(
            &self.removal_files(ctx)[partition],
            ctx.tasks,
            (budget / 4) as usize,
        );
        let mut last = None;
        for r in sorter.finish()? {
            let [h, t, pos] = r?;
            if last == Some(h) {
                put_u64(out.part(t as usize), pos);
            }
            last = Some(h);
        }
        out.finish()
    }

    fn bloom(&self, ctx: &GlobalCtx, _task: usize) -> Result<()> {
        let mut units = 0u64;
        for t in 0..ctx.tasks {
            let path = count_file(ctx, t);
            let text = String::from_utf8(store::read(&path)?).unwrap_or_default();
            units += text.trim().parse::<u64>().with_context(|| {
                format!(
                    "intermediate file {} is corrupt; rerun with --force",
                    path.display()
                )
            })?;
        }
        // m = -n ln p / (ln 2)², k = (m / n) ln 2, as a whole number of
        // 64-bit words.
        let ln2 = std::f64::consts::LN_2;
        let bits = match self.bloom_size {
            Some(size) => size.0 * 8,
            None => {
                let n = units.max(1) as f64;
                ((-n * self.false_positive_rate.ln() / (ln2 * ln2)).ceil() as u64).max(1024)
            }
        };
        let words = bits.div_ceil(64);
        let bits = words * 64;
        let hashes = ((bits as f64 / units.max(1) as f64) * ln2)
            .round()
            .clamp(1.0, 30.0) as u32;
        let mut filter = vec![0u64; usize::try_from(words).context("bloom filter too large")?];
        let mut out = PartWriter::with_spill(
            &self.removal_files(ctx)[0],
            ctx.tasks,
            (self.memory_budget.0 / 4) as usize,
        );
        let mut inserted = 0u64;
        for t in 0..ctx.tasks {
            let path = observe_file(ctx, t);
            for [h, pos] in records::<2>(&read_part(&path, 0)?, &path)? {
                // Kirsch–Mitzenmacher: k indexes from two hashes.
                let h2 = splitmix(h) | 1;
                let mut seen = true;
                for i in 0..hashes as u64 {
                    let bit = h.wrapping_add(i.wrapping_mul(h2)) % bits;
                    let (w, b) = ((bit / 64) as usize, bit % 64);
                    if filter[w] & (1 << b) == 0 {
                        seen = false;
                        filter[w] |= 1 << b;
                    }
                }
                if seen {
                    put_u64(out.part(t), pos);
                } else {
                    inserted += 1;
                }
            }
        }
        out.finish()?;
        let ones: u64 = filter.iter().map(|w| w.count_ones() as u64).sum();
        let report = BloomReport {
            bits,
            hashes,
            units,
            inserted,
            estimated_rate: (ones as f64 / bits as f64).powi(hashes as i32),
        };
        store::write_atomic(&bloom_report(ctx), &serde_json::to_vec(&report)?)
    }
}

fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Phased for DedupLines {
    fn phases(self: Arc<Self>, ctx: &GlobalCtx) -> Vec<PhaseSpec> {
        match self.method {
            Method::Exact => vec![PhaseSpec::new(
                &self,
                "find",
                self.partitions(ctx),
                Self::find,
            )],
            Method::Bloom => vec![PhaseSpec::new(&self, "bloom", 1, Self::bloom)],
        }
    }

    fn observer(&self, ctx: &GlobalCtx, task: usize) -> Result<Box<dyn Observer>> {
        let partitions = self.partitions(ctx);
        Ok(Box::new(UnitObserver {
            op: self.view(),
            out: PartWriter::with_spill(
                &observe_file(ctx, task),
                partitions,
                (self.budget(ctx) / 2) as usize,
            ),
            partitions: partitions as u64,
            units: 0,
            count_path: count_file(ctx, task),
            norm: String::new(),
        }))
    }

    fn summary(&self, ctx: &GlobalCtx) -> Option<String> {
        if self.method != Method::Bloom {
            return None;
        }
        let r: BloomReport = serde_json::from_slice(&store::read(&bloom_report(ctx)).ok()?).ok()?;
        Some(format!(
            "dedup_lines: Bloom filter of {:.1} MiB, {} hashes, {} units ({} distinct by the filter): \
             estimated false-positive rate {:.2e}\n",
            r.bits as f64 / 8.0 / (1 << 20) as f64,
            r.hashes,
            r.units,
            r.inserted,
            r.estimated_rate
        ))
    }
}

impl GlobalOp for DedupLines {
    fn check_input(
        &self,
        schema: &arrow::datatypes::SchemaRef,
    ) -> Result<Option<arrow::datatypes::SchemaRef>> {
        if self.scope == Scope::Source && schema.field_with_name(&self.source_column).is_err() {
            bail!(
                "dedup_lines: scope = \"source\" needs the source column `{}` \
                 ([input.sources], or the input's source_column)",
                self.source_column
            );
        }
        Ok(Some(schema.clone()))
    }

    fn filter(&self, ctx: &GlobalCtx, task: usize) -> Result<Box<dyn RowFilter>> {
        let mut sorter = ExternalSorter::<1>::new(
            &ctx.work.join("sort").join(format!("filter-{task:05}")),
            self.budget(ctx) / 2,
        )?;
        for path in self.removal_files(ctx) {
            for [pos] in records::<1>(&read_part(&path, task)?, &path)? {
                sorter.push([pos])?;
            }
        }
        Ok(Box::new(LineFilter {
            op: self.view(),
            removals: sorter.finish()?,
            next: None,
        }))
    }
}

/// Cuts a task's removed units from its rows, in row order.
struct LineFilter {
    op: Arc<DedupLinesView>,
    removals: Sorted<1>,
    /// The next removal, read ahead.
    next: Option<u64>,
}

impl LineFilter {
    fn peek(&mut self) -> Result<Option<u64>> {
        if self.next.is_none() {
            self.next = self.removals.next().transpose()?.map(|[p]| p);
        }
        Ok(self.next)
    }
}

impl RowFilter for LineFilter {
    fn apply(&mut self, batch: DocBatch, first_row: u64) -> Result<OpOutput> {
        let n = batch.num_rows();
        let texts = batch.texts().clone();
        let mut out_texts: Vec<Option<String>> = vec![None; n];
        let mut drops = vec![None; n];
        let (mut units, mut removed_units, mut removed_bytes) = (0u64, 0u64, 0u64);
        let mut removed: Vec<u32> = vec![];
        for (i, (out, drop)) in out_texts.iter_mut().zip(drops.iter_mut()).enumerate() {
            let row = first_row + i as u64;
            removed.clear();
            while let Some(pos) = self.peek()? {
                if pos >> UNIT_BITS != row {
                    if pos >> UNIT_BITS < row {
                        bail!(
                            "dedup_lines holds a removal for row {} that never came: the \
                             intermediate files do not match the shards; rerun with --force",
                            pos >> UNIT_BITS
                        );
                    }
                    break;
                }
                removed.push((pos & (MAX_UNITS as u64 - 1)) as u32);
                self.next = None;
            }
            let text = texts.value(i);
            let spans = split(text, self.op.unit);
            units += spans.len() as u64;
            if removed.is_empty() {
                continue;
            }
            removed.dedup();
            if removed.last().is_some_and(|&k| k as usize >= spans.len()) {
                bail!(
                    "dedup_lines: row {row} has {} units but a removal names unit {}: the \
                     intermediate files do not match the shards; rerun with --force",
                    spans.len(),
                    removed.last().unwrap_or(&0)
                );
            }
            removed_units += removed.len() as u64;
            removed_bytes += removed
                .iter()
                .map(|&k| (spans[k as usize].1 - spans[k as usize].0) as u64)
                .sum::<u64>();
            let new = rebuild(text, &spans, &removed);
            let left = new.trim();
            if left.is_empty() || left.chars().count() < self.op.min_doc_chars {
                // The document goes to excluded/ as it came.
                *drop = Some(DropMark {
                    reason: "dedup_lines:empty".into(),
                    detail: Some(format!(
                        "{} of {} {}s cut, {} characters left",
                        removed.len(),
                        spans.len(),
                        match self.op.unit {
                            super::Unit::Line => "line",
                            super::Unit::Paragraph => "paragraph",
                        },
                        left.chars().count()
                    )),
                });
            } else {
                *out = Some(new);
            }
        }
        let changed = out_texts.iter().any(Option::is_some);
        let batch = if changed {
            let values: StringArray = out_texts
                .iter()
                .enumerate()
                .map(|(i, t)| Some(t.as_deref().unwrap_or(texts.value(i))))
                .collect();
            with_texts(batch, values)?
        } else {
            batch
        };
        let mut output = OpOutput::new(batch, drops);
        output.count("units", units);
        output.count("units_removed", removed_units);
        output.count("unit_bytes_removed", removed_bytes);
        Ok(output)
    }

    fn finish(&mut self, rows: u64) -> Result<()> {
        if let Some(pos) = self.peek()? {
            bail!(
                "dedup_lines holds a removal for row {} of a task with {rows} rows: the \
                 intermediate files do not match the shards; rerun with --force",
                pos >> UNIT_BITS
            );
        }
        Ok(())
    }
}
