//! What the dedup ops share: the keep-by-column scores and the columns they
//! add to every document.

use std::sync::Arc;

use anyhow::{Context, Result};
use arrow::array::{Array, ArrayRef, Float64Array, UInt32Array, UInt64Array};
use arrow::compute::cast;
use arrow::datatypes::DataType;

use super::{with_column, DocBatch};

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
