//! What the dedup ops share: the keep-by-column scores, the decision records
//! their middle phases write, and the filter that applies them.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use arrow::array::{Array, ArrayRef, Float64Array, UInt32Array, UInt64Array};
use arrow::compute::cast;
use arrow::datatypes::{DataType, SchemaRef};

use crate::io::partfile::{put_str, put_u64, read_part, Cursor};
use crate::ops::{with_column, DocBatch, DropMark, OpOutput, RowFilter};

/// Per-row scores of the `keep` column (None for "first"): the document
/// with the largest score of a group is kept.
pub struct KeepScores(Option<Float64Array>);

impl KeepScores {
    pub fn read(batch: &DocBatch, keep: Option<&str>, op: &str) -> Result<KeepScores> {
        let Some(name) = keep else {
            return Ok(KeepScores(None));
        };
        let col = batch.data.column_by_name(name).ok_or_else(|| {
            anyhow::anyhow!(
                "{op}: no column `{name}` to choose the kept document by (`keep` of the step)"
            )
        })?;
        check_keep_type(name, col.data_type(), op)?;
        let col = cast(col, &DataType::Float64)
            .with_context(|| format!("{op}: `keep` column `{name}` is not numeric"))?;
        Ok(KeepScores(Some(
            col.as_any()
                .downcast_ref::<Float64Array>()
                .expect("cast to Float64")
                .clone(),
        )))
    }

    /// The row's score: 0 under "first" (input order decides), -inf when null or NaN.
    pub fn get(&self, i: usize) -> f64 {
        match &self.0 {
            Some(s) if !s.is_null(i) && !s.value(i).is_nan() => s.value(i),
            Some(_) => f64::NEG_INFINITY,
            None => 0.0,
        }
    }
}

/// A `keep` column must hold numbers: strings would cast to nulls (every
/// document the same score) without a word.
fn check_keep_type(name: &str, t: &DataType, op: &str) -> Result<()> {
    let t = match t {
        DataType::Dictionary(_, v) => v.as_ref(),
        t => t,
    };
    if !(t.is_numeric() || t == &DataType::Boolean) {
        bail!("{op}: `keep` column `{name}` holds {t}, not numbers: name a numeric column (the largest value is kept) or \"first\"");
    }
    Ok(())
}

/// Checks a `keep` column (None: "first") against the schema of the rows
/// the op will see.
pub fn check_keep(schema: &SchemaRef, keep: Option<&str>, op: &str) -> Result<()> {
    let Some(name) = keep else { return Ok(()) };
    let field = schema.field_with_name(name).map_err(|_| {
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        anyhow::anyhow!(
            "{op}: no column `{name}` to choose the kept document by (`keep` of the step); the \
             rows will have: {}",
            names.join(", ")
        )
    })?;
    check_keep_type(name, field.data_type(), op)
}

/// The schema after [`with_dup_columns`].
pub fn with_dup_fields(schema: &SchemaRef) -> SchemaRef {
    use arrow::datatypes::Field;
    crate::ops::with_fields(
        schema,
        &[
            Field::new("dup_cluster", DataType::UInt64, true),
            Field::new("dup_count", DataType::UInt32, true),
        ],
    )
}

/// Adds `dup_cluster` (the group's id) and `dup_count` (its size).
pub fn with_dup_columns(batch: DocBatch, clusters: Vec<u64>, counts: Vec<u32>) -> Result<DocBatch> {
    let batch = with_column(
        batch,
        "dup_cluster",
        Arc::new(UInt64Array::from(clusters)) as ArrayRef,
    )?;
    with_column(
        batch,
        "dup_count",
        Arc::new(UInt32Array::from(counts)) as ArrayRef,
    )
}

/// What a dedup op decided for one row: its group, the group's size, and
/// for a duplicate the kept document's id.
pub struct Decision {
    pub row: u64,
    pub cluster: u64,
    pub count: u32,
    pub kept: Option<String>,
}

/// Appends one decision to a partition of a decisions file.
pub fn put_decision(buf: &mut Vec<u8>, row: u64, cluster: u64, count: u64, kept: Option<&str>) {
    put_u64(buf, row);
    put_u64(buf, cluster);
    put_u64(buf, count);
    put_u64(buf, kept.is_some() as u64);
    put_str(buf, kept.unwrap_or(""));
}

/// Task `task`'s decisions from every decisions file, in row order.
pub fn read_decisions(paths: impl Iterator<Item = PathBuf>, task: usize) -> Result<Vec<Decision>> {
    let mut decisions = vec![];
    for path in paths {
        let slice = read_part(&path, task)?;
        let corrupt = || format!("intermediate file {} is corrupt", path.display());
        let mut c = Cursor::new(&slice);
        while !c.done() {
            let row = c.u64().with_context(corrupt)?;
            let cluster = c.u64().with_context(corrupt)?;
            let count = c.u64().with_context(corrupt)? as u32;
            let duplicate = c.u64().with_context(corrupt)? == 1;
            let kept = c.str().with_context(corrupt)?;
            decisions.push(Decision {
                row,
                cluster,
                count,
                kept: duplicate.then(|| kept.to_string()),
            });
        }
    }
    decisions.sort_unstable_by_key(|d| d.row);
    Ok(decisions)
}

/// Applies decisions to a task's rows in order: `dup_cluster` and
/// `dup_count` on every row, duplicates dropped with the kept id as detail.
pub struct DecisionFilter {
    op: &'static str,
    decisions: Vec<Decision>,
    next: usize,
    /// `Some(cluster of row)` when rows without a decision are groups of
    /// one (MinHash writes only rows in components); `None` when every row
    /// must have one (exact dedup).
    singleton: Option<Box<dyn Fn(u64) -> u64 + Send>>,
}

impl DecisionFilter {
    pub fn new(
        op: &'static str,
        decisions: Vec<Decision>,
        singleton: Option<Box<dyn Fn(u64) -> u64 + Send>>,
    ) -> Self {
        DecisionFilter {
            op,
            decisions,
            next: 0,
            singleton,
        }
    }
}

impl RowFilter for DecisionFilter {
    fn apply(&mut self, batch: DocBatch, first_row: u64) -> Result<OpOutput> {
        let n = batch.num_rows();
        let mut clusters = Vec::with_capacity(n);
        let mut counts = Vec::with_capacity(n);
        let mut drops = Vec::with_capacity(n);
        for i in 0..n {
            let row = first_row + i as u64;
            match self.decisions.get(self.next).filter(|d| d.row == row) {
                Some(d) => {
                    clusters.push(d.cluster);
                    counts.push(d.count);
                    drops.push(d.kept.as_ref().map(|k| DropMark {
                        reason: self.op.into(),
                        detail: Some(k.clone()),
                    }));
                    self.next += 1;
                }
                None => match &self.singleton {
                    Some(cluster_of) => {
                        clusters.push(cluster_of(row));
                        counts.push(1);
                        drops.push(None);
                    }
                    None => bail!(
                        "{} has no decision for row {row}; rerun with --force",
                        self.op
                    ),
                },
            }
        }
        let batch = with_dup_columns(batch, clusters, counts)?;
        Ok(OpOutput::new(batch, drops))
    }

    fn finish(&mut self, rows: u64) -> Result<()> {
        if self.next != self.decisions.len() {
            bail!(
                "{} holds {} decisions for this task's {rows} rows: the intermediate files do not \
                 match the shards; rerun with --force",
                self.op,
                self.decisions.len()
            );
        }
        Ok(())
    }
}

/// The check both hash-partitioned dedup ops make of `memory_budget`: at
/// least 4 KiB (a smaller number is most likely a unit left out).
pub fn check_memory_budget(
    ctx: &crate::ops::BuildCtx<'_>,
    budget: crate::pipeline::bytesize::ByteSize,
) -> Result<(), crate::pipeline::spec::SpecError> {
    if budget.0 < 4096 {
        return Err(ctx.error(
            "memory_budget",
            format!(
                "memory_budget of {} bytes is too small: give at least 4096 (\"1GB\" is typical)",
                budget.0
            ),
        ));
    }
    Ok(())
}
