//! `dedup_exact`: removes documents whose key (the text, normalised or not,
//! or another column such as `url`) is identical to another's, keeping one per
//! group: the first in input order, or the one with the largest value of a
//! column. A global op in three phases:
//!
//! 1. observe (per input task): xxh3-128 of each key, with the row and the
//!    keep score (fixed-size records), written to a file per task grouped by
//!    hash partition; the ids to a per-task file indexed by row;
//! 2. find (per partition): all entries of the partition sorted by
//!    (hash, task, row), externally past the memory budget; per group of
//!    equal hashes the kept document is chosen, and every entry gets a
//!    decision (its group id and size, and for a duplicate the kept
//!    document's id), written to a file per partition grouped by task;
//! 3. filter (per input task): the task's decisions from every partition,
//!    applied in row order: `dup_cluster` and `dup_count` on every row,
//!    duplicates dropped.
//!
//! No task holds more than its share of `memory_budget`, except that a
//! filter task holds its own rows' decisions.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use arrow::array::{Array, StringArray};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;
use xxhash_rust::xxh3::xxh3_128;

use crate::io::partfile::{put_u64, read_part, records, PartWriter};
use crate::io::rowstore::{RowStore, RowStoreWriter};
use crate::io::sorter::ExternalSorter;
use crate::ops::dedup::dup::{put_decision, read_decisions, DecisionFilter, KeepScores};
use crate::ops::{
    shape, BuildCtx, DocBatch, GlobalCtx, GlobalOp, Observer, Op, OpInfo, OpKind, ParamDoc,
    PhaseSpec, Phased, RowFilter,
};
use crate::pipeline::bytesize::ByteSize;
use crate::pipeline::spec::SpecError;

/// How the key is normalised before hashing.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Normalization {
    /// Byte-identical keys only.
    #[default]
    None,
    /// Lowercased, runs of whitespace made one space, ends trimmed.
    WhitespaceCase,
    /// datatrove's MinHash normalisation: lowercase, accents stripped, digits
    /// to 0, punctuation removed, whitespace collapsed.
    Minhash,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DedupExact {
    /// Hash partitions of the find phase; derived from the input size when absent.
    pub partitions: Option<usize>,
    /// The column whose value is the key; the text column when absent.
    pub column: Option<String>,
    pub normalize: Normalization,
    /// `"first"` (input order) or a numeric column: the largest value is kept.
    pub keep: String,
    /// Memory for the op's tasks running at once on this machine.
    pub memory_budget: ByteSize,
}

impl Default for DedupExact {
    fn default() -> Self {
        Self {
            partitions: Default::default(),
            column: Default::default(),
            normalize: Default::default(),
            keep: "first".into(),
            memory_budget: ByteSize(2 << 30),
        }
    }
}

pub const INFO: OpInfo = OpInfo {
    name: "dedup_exact",
    kind: OpKind::Global,
    summary: "Removes documents whose key (xxh3-128 of the text, normalised or not, or of another column \
              such as url) equals another's; keeps the first in input order, or the largest value of a \
              column. Every kept document gets dup_cluster (its group's id) and dup_count (the group's \
              size); removed ones go to excluded/ with the kept document's id in drop_detail.",
    params: &[
        ParamDoc {
            name: "column",
            kind: "string",
            default: "the text column",
            doc: "key column (e.g. \"url\"); null keys are never duplicates",
        },
        ParamDoc {
            name: "normalize",
            kind: "string",
            default: "\"none\"",
            doc: "\"none\", \"whitespace_case\" or \"minhash\" (lowercase, no accents/punctuation, digits 0)",
        },
        ParamDoc {
            name: "keep",
            kind: "string",
            default: "\"first\"",
            doc: "\"first\" (input order) or a numeric column: its largest value wins, ties to the first",
        },
        ParamDoc {
            name: "partitions",
            kind: "integer",
            default: "derived",
            doc: "hash partitions (tasks of the find phase): input bytes / 256 MiB, at least 4",
        },
        ParamDoc {
            name: "memory_budget",
            kind: "size",
            default: "\"2GiB\"",
            doc: "memory of the op's tasks at once (\"1GB\", \"512MiB\"); past it they spill to the work folder",
        },
    ],
    drop_reasons: &["dedup_exact"],
    outputs: &[],
    build,
    config: shape::<DedupExact>,
    example: r#"
[[step]]
op = "dedup_exact"
normalize = "whitespace_case"
"#,
    about: r#"
Groups documents by xxh3-128 of a key: the text, or another column
(`column`, e.g. `"url"`: null keys are never duplicates), normalised or
not: `"whitespace_case"` lowercases and makes whitespace runs one space;
`"minhash"` is datatrove's MinHash normalisation: lowercase, accents
stripped, digits to 0, punctuation removed.

Within a group the kept document is the first in input order (file order,
then row), or with `keep` = a numeric column the one with the largest
value, ties to the first. Every kept document gets `dup_cluster` (its
group's id) and `dup_count` (the group's size, for upsampling by duplicate
count); the kept document's id is in a removed one's `drop_detail`. The
find phase has `partitions` hash partitions (by default input bytes /
256 MiB, at least 4); `memory_budget`: see
[spec.md, Memory](spec.md#memory-memory_budget).
"#,
};

fn build(ctx: &BuildCtx<'_>) -> Result<Op, SpecError> {
    let d: DedupExact = ctx.config()?;
    if d.partitions.is_some_and(|p| p == 0 || p > 65_536) {
        return Err(ctx.error(
            "partitions",
            "partitions must be between 1 and 65536".into(),
        ));
    }
    crate::ops::dedup::dup::check_memory_budget(ctx, d.memory_budget)?;
    if d.keep.is_empty() {
        return Err(ctx.error("keep", "keep must be \"first\" or a column name".into()));
    }
    Ok(Op::Global(Arc::new(d)))
}

impl DedupExact {
    fn partitions(&self, ctx: &GlobalCtx) -> usize {
        self.partitions
            .unwrap_or_else(|| ((ctx.input_bytes >> 28) as usize).clamp(4, 4096))
    }
    fn budget(&self, ctx: &GlobalCtx) -> u64 {
        ctx.task_budget(self.memory_budget.0)
    }
}

/// The key as the configured normalisation sees it.
pub fn normalize_key(s: &str, how: Normalization) -> std::borrow::Cow<'_, str> {
    match how {
        Normalization::None => s.into(),
        Normalization::WhitespaceCase => s
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase()
            .into(),
        Normalization::Minhash => {
            let mut out = String::with_capacity(s.len());
            let mut space = false;
            for c in s.nfd() {
                if unicode_normalization::char::is_combining_mark(c) {
                    continue; // accents stripped
                }
                let c = if c.is_numeric() { '0' } else { c };
                if c.is_alphanumeric() {
                    if space && !out.is_empty() {
                        out.push(' ');
                    }
                    space = false;
                    out.extend(c.to_lowercase());
                } else {
                    // Punctuation, symbols and whitespace separate words.
                    space = true;
                }
            }
            out.into()
        }
    }
}

fn observe_file(ctx: &GlobalCtx, task: usize) -> PathBuf {
    ctx.work.join("observe").join(format!("{task:05}.part"))
}
fn decisions_file(ctx: &GlobalCtx, partition: usize) -> PathBuf {
    ctx.work.join("find").join(format!("{partition:05}.part"))
}
fn id_file(ctx: &GlobalCtx, task: usize) -> PathBuf {
    ctx.work.join("ids").join(format!("{task:05}.bin"))
}

struct KeyObserver {
    /// `(hash high, hash low, row, score)` per row, in its hash partition.
    out: PartWriter,
    /// Every row's id, read back only for the kept documents of groups.
    ids: RowStoreWriter,
    partitions: u64,
    task: usize,
    column: Option<String>,
    normalize: Normalization,
    keep: Option<String>,
}

impl KeyObserver {
    fn key_column(&self, batch: &DocBatch) -> Result<StringArray> {
        match &self.column {
            None => Ok(batch.texts().clone()),
            Some(name) => {
                let col = batch.data.column_by_name(name).ok_or_else(|| {
                    anyhow::anyhow!(
                        "dedup_exact: no column `{name}` to use as the key (`column` of the step)"
                    )
                })?;
                let col = cast(col, &DataType::Utf8)
                    .with_context(|| format!("dedup_exact: column `{name}`"))?;
                Ok(col
                    .as_any()
                    .downcast_ref::<StringArray>()
                    .expect("cast to Utf8")
                    .clone())
            }
        }
    }
}

impl Observer for KeyObserver {
    fn observe(&mut self, batch: &DocBatch, first_row: u64) -> Result<()> {
        let keys = self.key_column(batch)?;
        let scores = KeepScores::read(batch, self.keep.as_deref(), "dedup_exact")?;
        for (i, id) in batch.ids().iter().enumerate() {
            let row = first_row + i as u64;
            let key = (!keys.is_null(i)).then(|| normalize_key(keys.value(i), self.normalize));
            let h = match key.as_deref() {
                Some(k) if !k.is_empty() => xxh3_128(k.as_bytes()),
                // A missing or empty key (no url; text all punctuation under
                // the minhash normalisation) makes no document a duplicate:
                // it gets a key of its own, from its task and row.
                _ => xxh3_128(format!("\0null\0{}\0{row}", self.task).as_bytes()),
            };
            let score = scores.get(i);
            let p = ((h >> 64) as u64 % self.partitions) as usize;
            let buf = self.out.part(p);
            put_u64(buf, (h >> 64) as u64);
            put_u64(buf, h as u64);
            put_u64(buf, row);
            put_u64(buf, score.to_bits());
            self.ids.push(id.unwrap_or("").as_bytes())?;
        }
        Ok(())
    }
    fn finish(self: Box<Self>) -> Result<()> {
        self.ids.finish()?;
        self.out.finish()
    }
}

impl DedupExact {
    fn find(&self, ctx: &GlobalCtx, partition: usize) -> Result<()> {
        let budget = self.budget(ctx);
        // Sorted by (hash, task, row): groups of equal keys in input order.
        let mut sorter = ExternalSorter::<4>::new(
            &ctx.work.join("sort").join(format!("find-{partition:05}")),
            budget / 2,
        )?;
        for t in 0..ctx.tasks {
            let path = observe_file(ctx, t);
            for [hi, lo, row, score] in records::<4>(&read_part(&path, partition)?, &path)? {
                sorter.push([hi, lo, ((t as u64) << 40) | row, score])?;
            }
        }
        let mut ids = RowStore::new((0..ctx.tasks).map(|t| id_file(ctx, t)).collect());
        let mut out = PartWriter::with_spill(
            &decisions_file(ctx, partition),
            ctx.tasks,
            (budget / 4) as usize,
        );
        let mut group: Vec<[u64; 4]> = vec![];
        let mut sorted = sorter.finish()?.peekable();
        while let Some(r) = sorted.next() {
            let r = r?;
            group.push(r);
            if let Some(Ok(next)) = sorted.peek() {
                if next[..2] == r[..2] {
                    continue;
                }
            }
            // The largest score wins; among equals, the first in input order.
            let kept = group
                .iter()
                .enumerate()
                .max_by(|(i, a), (j, b)| {
                    f64::from_bits(a[3])
                        .total_cmp(&f64::from_bits(b[3]))
                        .then(j.cmp(i))
                })
                .map(|(i, _)| i)
                .unwrap_or(0);
            let cluster = group[0][1];
            let kept_id = if group.len() > 1 {
                let g = group[kept][2];
                Some(ids.get_str((g >> 40) as usize, g & ((1 << 40) - 1))?)
            } else {
                None
            };
            for (i, e) in group.iter().enumerate() {
                let kept_id = kept_id.as_deref().filter(|_| i != kept);
                put_decision(
                    out.part((e[2] >> 40) as usize),
                    e[2] & ((1 << 40) - 1),
                    cluster,
                    group.len() as u64,
                    kept_id,
                );
            }
            group.clear();
        }
        out.finish()
    }
}

impl Phased for DedupExact {
    fn phases(self: Arc<Self>, ctx: &GlobalCtx) -> Vec<PhaseSpec> {
        vec![PhaseSpec::new(
            &self,
            "find",
            self.partitions(ctx),
            Self::find,
        )]
    }

    fn observer(&self, ctx: &GlobalCtx, task: usize) -> Result<Box<dyn Observer>> {
        let partitions = self.partitions(ctx);
        Ok(Box::new(KeyObserver {
            out: PartWriter::with_spill(
                &observe_file(ctx, task),
                partitions,
                (self.budget(ctx) / 2) as usize,
            ),
            ids: RowStoreWriter::create(&id_file(ctx, task))?,
            partitions: partitions as u64,
            task,
            column: self.column.clone(),
            normalize: self.normalize,
            keep: (self.keep != "first").then(|| self.keep.clone()),
        }))
    }
}

impl GlobalOp for DedupExact {
    fn reports_group_sizes(&self) -> bool {
        true
    }

    fn check_input(
        &self,
        schema: &arrow::datatypes::SchemaRef,
    ) -> Result<Option<arrow::datatypes::SchemaRef>> {
        if let Some(name) = &self.column {
            if schema.field_with_name(name).is_err() {
                anyhow::bail!(
                    "dedup_exact: no column `{name}` to use as the key (`column` of the step)"
                );
            }
        }
        crate::ops::dedup::dup::check_keep(
            schema,
            (self.keep != "first").then_some(&self.keep),
            "dedup_exact",
        )?;
        Ok(Some(crate::ops::dedup::dup::with_dup_fields(schema)))
    }

    fn filter(&self, ctx: &GlobalCtx, task: usize) -> Result<Box<dyn RowFilter>> {
        let paths = (0..self.partitions(ctx)).map(|p| decisions_file(ctx, p));
        Ok(Box::new(DecisionFilter::new(
            "dedup_exact",
            read_decisions(paths, task)?,
            None,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisations() {
        assert_eq!(normalize_key(" A  b\n", Normalization::None), " A  b\n");
        assert_eq!(
            normalize_key(" A  b\n", Normalization::WhitespaceCase),
            "a b"
        );
        assert_eq!(
            normalize_key("Café, 2024!  Été", Normalization::Minhash),
            "cafe 0000 ete"
        );
    }
}
