//! The rows every layer passes around, at the bottom of the crate: a batch
//! of documents, why a row was dropped, and what an op returns. The readers
//! (`io`) make them, the ops (`ops`) transform them, the executor (`exec`)
//! settles them; none of those layers is below this one.

use std::sync::Arc;

use anyhow::Result;
use arrow::array::{Array, RecordBatch, StringArray};
use arrow::datatypes::SchemaRef;

/// A batch of documents: every input column, with the text and id columns
/// guaranteed to be non-null `Utf8`.
#[derive(Clone, Debug)]
pub struct DocBatch {
    pub data: RecordBatch,
    pub text: usize,
    pub id: usize,
}

impl DocBatch {
    pub fn texts(&self) -> &StringArray {
        self.data
            .column(self.text)
            .as_any()
            .downcast_ref::<StringArray>()
            .expect("the reader guarantees a Utf8 text column")
    }
    pub fn ids(&self) -> &StringArray {
        self.data
            .column(self.id)
            .as_any()
            .downcast_ref::<StringArray>()
            .expect("the reader guarantees a Utf8 id column")
    }
    pub fn num_rows(&self) -> usize {
        self.data.num_rows()
    }
    pub fn text_bytes(&self) -> u64 {
        let t = self.texts();
        (t.value_offsets()[t.len()] - t.value_offsets()[0]) as u64
    }
}

/// Why one row was dropped: `reason` is `op:rule` (counted), `detail` is
/// free text for the excluded sink (e.g. the id of the kept duplicate).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DropMark {
    pub reason: String,
    pub detail: Option<String>,
}

impl DropMark {
    pub fn new(reason: impl Into<String>) -> Self {
        DropMark {
            reason: reason.into(),
            detail: None,
        }
    }
}

/// What an op did to a batch: the rows (with any new or changed columns), and
/// for each row either `None` (kept) or why it was dropped. `drops` is empty
/// when nothing was dropped. `added` is the number of rows the op made
/// beyond those it received (copies, for `upsample`); other ops keep the
/// rows one for one.
pub struct OpOutput {
    pub batch: DocBatch,
    pub drops: Vec<Option<DropMark>>,
    pub added: u64,
    /// Input units that are not documents (a WARC file's `request` and
    /// `metadata` records), by kind: reported, never counted as input.
    pub skipped: std::collections::BTreeMap<String, u64>,
    /// What an op did inside the documents it kept (lines removed, bytes
    /// cut), by name: summed over tasks into the step's `counters`.
    pub counters: std::collections::BTreeMap<String, u64>,
}

impl OpOutput {
    /// The output with one mark per row; a list without any drop is stored
    /// empty, which the engine takes as "all kept" without building a mask.
    pub fn new(batch: DocBatch, drops: Vec<Option<DropMark>>) -> Self {
        let drops = if drops.iter().any(Option::is_some) {
            drops
        } else {
            vec![]
        };
        OpOutput {
            batch,
            drops,
            added: 0,
            skipped: Default::default(),
            counters: Default::default(),
        }
    }

    pub fn with_added(self, added: u64) -> Self {
        OpOutput { added, ..self }
    }

    /// Adds `n` to the counter `name` (see [`OpOutput::counters`]).
    pub fn count(&mut self, name: &str, n: u64) {
        *self.counters.entry(name.to_string()).or_default() += n;
    }
}

/// `schema` with `fields` set (replaced where present, else appended), as
/// [`with_column`] sets a column.
pub fn with_fields(schema: &SchemaRef, fields: &[arrow::datatypes::Field]) -> SchemaRef {
    let mut out: Vec<arrow::datatypes::Field> =
        schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    for f in fields {
        match out.iter().position(|o| o.name() == f.name()) {
            Some(i) => out[i] = f.clone(),
            None => out.push(f.clone()),
        }
    }
    Arc::new(arrow::datatypes::Schema::new_with_metadata(
        out,
        schema.metadata().clone(),
    ))
}

/// Sets a column by name: replaces it if the batch has it, else appends it.
pub fn with_column(
    batch: DocBatch,
    name: &str,
    values: arrow::array::ArrayRef,
) -> Result<DocBatch> {
    use arrow::datatypes::{Field, Schema};
    let schema = batch.data.schema();
    let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    let mut columns = batch.data.columns().to_vec();
    let field = Field::new(name, values.data_type().clone(), true);
    match schema.index_of(name) {
        Ok(i) => {
            fields[i] = field;
            columns[i] = values;
        }
        Err(_) => {
            fields.push(field);
            columns.push(values);
        }
    }
    let schema = Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()));
    let data = RecordBatch::try_new(schema, columns)?;
    Ok(DocBatch { data, ..batch })
}

/// Replaces the text column of a batch with new values (same rows).
pub fn with_texts(batch: DocBatch, texts: StringArray) -> Result<DocBatch> {
    let mut columns = batch.data.columns().to_vec();
    columns[batch.text] = Arc::new(texts);
    let data = RecordBatch::try_new(batch.data.schema(), columns)?;
    Ok(DocBatch { data, ..batch })
}
