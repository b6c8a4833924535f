//! The vectors an `embed` step wrote (a fixed-size list of f32), as
//! `cluster` and `dedup_semantic` read them: the column checked once per
//! batch, with a vector holding NaN or infinity an error naming the
//! document (it cannot be clustered or compared).

use anyhow::{bail, Context, Result};
use arrow::array::{Array, FixedSizeListArray, Float32Array};

use crate::ops::DocBatch;
use crate::vector::vecmath::first_non_finite;

pub struct VectorColumn<'a> {
    list: &'a FixedSizeListArray,
    values: &'a [f32],
    pub dim: usize,
}

/// Checks that `schema` has `column` as vectors (`embed`'s fixed-size
/// list of f32), with the errors [`VectorColumn::read`] gives, so that a
/// step can be checked before any task runs.
pub fn check(
    schema: &arrow::datatypes::Schema,
    column: &str,
    op: &str,
    before: &str,
) -> Result<()> {
    use arrow::datatypes::DataType;
    let field = schema
        .field_with_name(column)
        .map_err(|_| anyhow::anyhow!("{op}: no column `{column}` ({before})"))?;
    match field.data_type() {
        DataType::FixedSizeList(f, _) if f.data_type() == &DataType::Float32 => Ok(()),
        DataType::FixedSizeList(..) => bail!("{op}: column `{column}` does not hold f32 values"),
        t => bail!(
            "{op}: column `{column}` is {t}, not a fixed-size list of f32 (as `embed` writes)"
        ),
    }
}

impl<'a> VectorColumn<'a> {
    /// `op` and `before` name the step and what must come before it, for
    /// the errors.
    pub fn read(batch: &'a DocBatch, column: &str, op: &str, before: &str) -> Result<Self> {
        check(&batch.data.schema(), column, op, before)?;
        let col = batch
            .data
            .column_by_name(column)
            .with_context(|| format!("{op}: no column `{column}` ({before})"))?;
        let list = col
            .as_any()
            .downcast_ref::<FixedSizeListArray>()
            .with_context(|| {
                format!(
                    "{op}: column `{column}` is {}, not a fixed-size list of f32 (as `embed` writes)",
                    col.data_type()
                )
            })?;
        let values = list
            .values()
            .as_any()
            .downcast_ref::<Float32Array>()
            .with_context(|| format!("{op}: column `{column}` does not hold f32 values"))?
            .values();
        let v = VectorColumn {
            list,
            values,
            dim: list.value_length() as usize,
        };
        for i in 0..list.len() {
            if let Some(at) = v.get(i).and_then(first_non_finite) {
                bail!(
                    "{op}: document `{}` has a non-finite value at position {at} of `{column}`",
                    batch.ids().value(i)
                );
            }
        }
        Ok(v)
    }

    /// Row `i`'s vector; `None` for a null row.
    pub fn get(&self, i: usize) -> Option<&'a [f32]> {
        self.list.is_valid(i).then(|| {
            let start = (self.list.offset() + i) * self.dim;
            &self.values[start..start + self.dim]
        })
    }
}
