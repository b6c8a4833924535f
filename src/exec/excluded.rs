//! The excluded sink of a task: every dropped row with why.

use std::sync::Arc;

use anyhow::Result;
use arrow::array::{ArrayRef, BooleanArray, RecordBatch, StringArray};
use arrow::compute::filter_record_batch;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use super::Layout;
use crate::io::writer::{ShardPolicy, ShardWriter};
use crate::ops::DocBatch;

pub(super) const DROP_COLUMNS: &[&str] = &["drop_op", "drop_reason", "drop_detail"];

/// The excluded sink of one task: dropped rows with `drop_op`, `drop_reason`
/// and `drop_detail`, in the columns the task's first dropped batch had.
pub(super) struct Excluded {
    writer: Option<ShardWriter>,
    pub(super) schema: Option<SchemaRef>,
}

impl Excluded {
    pub(super) fn new(
        layout: &Layout,
        enabled: bool,
        prefix: &str,
        policy: &ShardPolicy,
    ) -> Result<Excluded> {
        let writer = if enabled {
            Some(ShardWriter::new(&layout.excluded, prefix, policy.clone())?)
        } else {
            None
        };
        Ok(Excluded {
            writer,
            schema: None,
        })
    }

    pub(super) fn write(
        &mut self,
        batch: &DocBatch,
        drops: &[Option<crate::ops::DropMark>],
        step: &str,
    ) -> Result<()> {
        let Some(writer) = self.writer.as_mut() else {
            return Ok(());
        };
        let mask: BooleanArray = drops.iter().map(|d| Some(d.is_some())).collect();
        let dropped = filter_record_batch(&batch.data, &mask)?;
        let marks: Vec<&crate::ops::DropMark> = drops.iter().flatten().collect();
        let base = self
            .schema
            .clone()
            .ok_or_else(|| anyhow::anyhow!("the excluded sink has no schema"))?;
        // Rows dropped before an op added its columns get nulls there.
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(base.fields().len() + 3);
        for f in base.fields() {
            let col = match dropped.schema().index_of(f.name()) {
                Ok(i) => dropped.column(i).clone(),
                Err(_) => arrow::array::new_null_array(f.data_type(), dropped.num_rows()),
            };
            columns.push(col);
        }
        columns.push(Arc::new(StringArray::from(vec![step; marks.len()])));
        columns.push(Arc::new(
            marks
                .iter()
                .map(|m| Some(m.reason.as_str()))
                .collect::<StringArray>(),
        ));
        columns.push(Arc::new(
            marks
                .iter()
                .map(|m| m.detail.as_deref())
                .collect::<StringArray>(),
        ));
        let mut fields: Vec<Field> = base
            .fields()
            .iter()
            .map(|f| f.as_ref().clone().with_nullable(true))
            .collect();
        fields.push(Field::new("drop_op", DataType::Utf8, false));
        fields.push(Field::new("drop_reason", DataType::Utf8, false));
        fields.push(Field::new("drop_detail", DataType::Utf8, true));
        let out = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?;
        let text_name = batch.data.schema().field(batch.text).name().clone();
        let text = out.schema().index_of(&text_name).unwrap_or(0);
        writer.write(&out, text)
    }

    pub(super) fn finish(self) -> Result<()> {
        if let Some(w) = self.writer {
            w.finish()?;
        }
        Ok(())
    }
}
