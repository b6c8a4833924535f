//! Reads one input task as batches of documents. Parquet is read row group by
//! row group; JSONL line by line into Arrow. Rows that cannot be documents
//! (null or empty text, a broken JSON line, invalid UTF-8) are kept in the
//! batch with a drop mark, so they are counted and reach `excluded/`.

use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use arrow::array::{Array, ArrayRef, RecordBatch, StringArray, StringBuilder};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::{Map, Value};

use super::discover::{Compression, InputTask, Piece};
use super::store;
use crate::batch::{with_column, DocBatch, DropMark, OpOutput};
use crate::pipeline::spec::{Format, InputSpec};

/// Lines read to infer a JSONL file's columns.
const SCHEMA_SAMPLE_LINES: usize = 1000;
/// Line bytes after which a JSONL batch is closed whatever its row count.
const MAX_BATCH_BYTES: usize = 256 << 20;

pub type BatchIter = Box<dyn Iterator<Item = Result<OpOutput>> + Send>;

/// Integer columns of a JSONL file read as floats (see [`Widen`]).
pub type Widened = std::collections::BTreeSet<String>;

/// A JSONL line held a number that an integer column inferred from the
/// file's first lines cannot hold (a fraction, or past its range) but a
/// float column holds exactly. The task is read again with that column as
/// Float64 (its shards are written anew): a value is never changed to fit.
#[derive(Debug)]
pub struct Widen(pub String);

impl std::fmt::Display for Widen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "column `{}` must widen to floats", self.0)
    }
}

impl std::error::Error for Widen {}

/// Opens a task for reading. Errors name the file. With `widen`, the
/// columns it names are read as floats, and a [`Widen`] error asks for the
/// task to be read again with one more; without, a number an integer
/// column cannot hold drops its row (for readers that keep only the text).
pub fn open(task: &InputTask, spec: &InputSpec, widen: Option<&Widened>) -> Result<BatchIter> {
    let batches = match task.file.format {
        Format::Parquet => open_parquet(task, spec)?,
        Format::Jsonl => open_jsonl(task, spec, widen)?,
        Format::Warc => super::warc::open(task, spec)?,
    };
    let Some(source) = task.file.source.clone() else {
        return Ok(batches);
    };
    // Input groups name the source of every row of their files.
    let column = spec.source_column.clone();
    Ok(Box::new(batches.map(move |out| {
        let out = out?;
        let n = out.batch.num_rows();
        let values: ArrayRef = Arc::new(StringArray::from(vec![source.as_str(); n]));
        Ok(OpOutput {
            batch: with_column(out.batch, &column, values)?,
            ..out
        })
    })))
}

fn open_parquet(task: &InputTask, spec: &InputSpec) -> Result<BatchIter> {
    let path = task.file.path.clone();
    let file = store::open(&path)?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .with_context(|| format!("{}: not a readable Parquet file", path.display()))?;
    let schema = builder.schema().clone();
    check_text_column(&schema, &spec.text_column, &path.display().to_string())?;
    let (builder, first_row) = match &task.piece {
        Piece::RowGroups { groups, first_row } => {
            (builder.with_row_groups(groups.clone()), *first_row)
        }
        _ => (builder, 0),
    };
    let reader = builder
        .with_batch_size(spec.batch_rows)
        .build()
        .with_context(|| format!("{}: cannot read", path.display()))?;
    let text_column = spec.text_column.clone();
    let id_column = spec.id_column.clone();
    let where_ = task.describe();
    let mut row = first_row;
    let display = path.display().to_string();
    Ok(Box::new(reader.map(move |batch| {
        let batch = batch.with_context(|| format!("{where_}: corrupt data near row {row}"))?;
        let start = row;
        row += batch.num_rows() as u64;
        let file = display.clone();
        let out = to_docs(batch, &text_column, &id_column, |i| {
            format!("{file}:{}", start + i as u64)
        })
        .with_context(|| format!("{where_}: rows from {start}"))?;
        Ok(out)
    })))
}

/// The documents' columns a task will give, as a batch of no rows: what
/// the steps can be checked against before any task runs.
pub fn empty_batch(task: &InputTask, spec: &InputSpec) -> Result<OpOutput> {
    let schema: SchemaRef = match task.file.format {
        Format::Parquet => {
            let path = &task.file.path;
            let builder = ParquetRecordBatchReaderBuilder::try_new(store::open(path)?)
                .with_context(|| format!("{}: not a readable Parquet file", path.display()))?;
            let schema = builder.schema().clone();
            check_text_column(&schema, &spec.text_column, &path.display().to_string())?;
            schema
        }
        Format::Jsonl => jsonl_schema(task, spec, &Widened::new())?,
        Format::Warc => {
            let out = super::warc::empty_batch(spec)?;
            return match &task.file.source {
                None => Ok(out),
                Some(_) => {
                    let values: ArrayRef = Arc::new(StringArray::from(Vec::<&str>::new()));
                    Ok(OpOutput {
                        batch: with_column(out.batch, &spec.source_column, values)?,
                        ..out
                    })
                }
            };
        }
    };
    let out = to_docs(
        RecordBatch::new_empty(schema),
        &spec.text_column,
        &spec.id_column,
        |_| String::new(),
    )?;
    match &task.file.source {
        None => Ok(out),
        Some(_) => {
            let values: ArrayRef = Arc::new(StringArray::from(Vec::<&str>::new()));
            Ok(OpOutput {
                batch: with_column(out.batch, &spec.source_column, values)?,
                ..out
            })
        }
    }
}

fn check_text_column(schema: &Schema, text: &str, file: &str) -> Result<()> {
    // Two columns of one name would pass through into shards that other
    // tools cannot read (and which of the two is the text is a guess).
    let mut seen = std::collections::HashSet::new();
    if let Some(dup) = schema
        .fields()
        .iter()
        .map(|f| f.name())
        .find(|n| !seen.insert(n.as_str()))
    {
        bail!(
            "{file}: two columns are named `{dup}`; sluice cannot tell them apart (and Parquet \
             readers refuse such output): rename one in the input"
        );
    }
    let field = schema.field_with_name(text).map_err(|_| {
        let names: Vec<String> = schema
            .fields()
            .iter()
            .map(|f| format!("{} ({})", f.name(), f.data_type()))
            .collect();
        anyhow!(
            "{file}: no text column `{text}`; the columns are: {}. Set `text_column` in [input]",
            names.join(", ")
        )
    })?;
    if !is_string_type(field.data_type()) {
        bail!(
            "{file}: text column `{text}` holds {}, not strings; point `text_column` in [input] at a string column",
            field.data_type()
        );
    }
    Ok(())
}

fn is_string_type(t: &DataType) -> bool {
    match t {
        // A column of nulls only (how pyarrow stores an all-None column):
        // every row is counted as read:null_text.
        DataType::Null => true,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        DataType::Dictionary(_, v) => is_string_type(v),
        _ => false,
    }
}

fn as_utf8(col: &ArrayRef) -> Result<StringArray> {
    let c = if col.data_type() == &DataType::Utf8 {
        col.clone()
    } else {
        cast(col, &DataType::Utf8)?
    };
    Ok(c.as_any()
        .downcast_ref::<StringArray>()
        .expect("cast to Utf8")
        .clone())
}

/// Makes a raw batch into documents: the text column as non-null Utf8 (nulls
/// become "" with a drop mark), the id column as Utf8 (synthesised where absent
/// or null, inserted first when the input has none).
fn to_docs(
    batch: RecordBatch,
    text_column: &str,
    id_column: &str,
    synth: impl Fn(usize) -> String,
) -> Result<OpOutput> {
    let schema = batch.schema();
    let text_idx = schema.index_of(text_column)?;
    let texts = as_utf8(batch.column(text_idx))?;
    let mut drops: Vec<Option<DropMark>> = Vec::with_capacity(batch.num_rows());
    for i in 0..texts.len() {
        drops.push(if texts.is_null(i) {
            Some(DropMark {
                reason: "read:null_text".into(),
                detail: Some(format!("{}: the text is null", synth(i))),
            })
        } else if texts.value(i).is_empty() {
            Some(DropMark::new("read:empty_text"))
        } else {
            None
        });
    }
    let texts = if texts.null_count() > 0 {
        let mut b = StringBuilder::with_capacity(texts.len(), texts.value_data().len());
        for t in texts.iter() {
            b.append_value(t.unwrap_or(""));
        }
        b.finish()
    } else {
        texts
    };
    let mut fields: Vec<Arc<Field>> = schema.fields().iter().cloned().collect();
    let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
    fields[text_idx] = Arc::new(Field::new(text_column, DataType::Utf8, true));
    columns[text_idx] = Arc::new(texts);
    let (text, id) = match schema.index_of(id_column) {
        Ok(id_idx) => {
            let ids = as_utf8(batch.column(id_idx))?;
            let ids = if ids.null_count() > 0 {
                let mut b = StringBuilder::new();
                for (i, v) in ids.iter().enumerate() {
                    match v {
                        Some(v) => b.append_value(v),
                        None => b.append_value(synth(i)),
                    }
                }
                b.finish()
            } else {
                ids
            };
            fields[id_idx] = Arc::new(Field::new(id_column, DataType::Utf8, true));
            columns[id_idx] = Arc::new(ids);
            (text_idx, id_idx)
        }
        Err(_) => {
            let mut b = StringBuilder::new();
            for i in 0..batch.num_rows() {
                b.append_value(synth(i));
            }
            fields.insert(0, Arc::new(Field::new(id_column, DataType::Utf8, true)));
            columns.insert(0, Arc::new(b.finish()));
            (text_idx + 1, 0)
        }
    };
    let schema = Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()));
    let data = RecordBatch::try_new(schema, columns)?;
    Ok(OpOutput::new(DocBatch { data, text, id }, drops))
}

/// The task's bytes as lines, and the file offset of the first line it yields.
fn open_stream(task: &InputTask) -> Result<(Box<dyn BufRead + Send>, u64)> {
    let path = &task.file.path;
    let mut file = store::open(path)?;
    let stream: Box<dyn BufRead + Send> = match task.file.compression {
        Compression::None => {
            if let Piece::Lines { start, .. } = task.piece {
                if start > 0 {
                    // Start after the line holding byte start-1: that line
                    // belongs to the previous piece.
                    file.seek(SeekFrom::Start(start - 1))?;
                    let mut r = BufReader::with_capacity(1 << 20, file);
                    let mut skip = vec![];
                    let skipped = r.read_until(b'\n', &mut skip)? as u64;
                    return Ok((Box::new(r), start - 1 + skipped));
                }
            }
            Box::new(BufReader::with_capacity(1 << 20, file))
        }
        Compression::Gzip => Box::new(BufReader::with_capacity(
            1 << 20,
            flate2::read::MultiGzDecoder::new(file),
        )),
        Compression::Zstd => Box::new(BufReader::with_capacity(
            1 << 20,
            zstd::stream::read::Decoder::new(file)
                .with_context(|| format!("{}: not zstd data", path.display()))?,
        )),
    };
    Ok((stream, 0))
}

/// The columns of a JSONL file, inferred from its first lines, with the text
/// and id columns forced to strings.
fn jsonl_schema(task: &InputTask, spec: &InputSpec, widen: &Widened) -> Result<SchemaRef> {
    let head_task = InputTask {
        piece: Piece::Lines {
            start: 0,
            end: u64::MAX,
            whole: true,
        },
        ..task.clone()
    };
    let (mut reader, _) = open_stream(&head_task)?;
    let mut values = vec![];
    let mut line = vec![];
    let mut seen = 0;
    let mut text_seen = false;
    while values.len() < SCHEMA_SAMPLE_LINES && seen < 10 * SCHEMA_SAMPLE_LINES {
        line.clear();
        if reader
            .read_until(b'\n', &mut line)
            .with_context(|| format!("{}: read error", task.file.path.display()))?
            == 0
        {
            break;
        }
        let body = if seen == 0 {
            strip_bom(&line)
        } else {
            &line[..]
        };
        seen += 1;
        if let Ok(Value::Object(mut m)) = serde_json::from_slice::<Value>(body) {
            // The text is forced to a string below; keeping it would hold
            // up to a thousand documents in memory for nothing.
            text_seen |= m.remove(&spec.text_column).is_some();
            values.push(Value::Object(m));
        }
    }
    let inferred = arrow_json::reader::infer_json_schema_from_iterator(values.iter().map(Ok))
        .with_context(|| {
            format!(
                "{}: cannot infer columns from the first lines",
                task.file.path.display()
            )
        })?;
    if !text_seen && !values.is_empty() {
        let names: Vec<&str> = inferred
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect();
        bail!(
            "{}: no text key `{}` in the first {} lines; the keys are: {}. Set `text_column` in [input]",
            task.file.path.display(),
            spec.text_column,
            values.len(),
            names.join(", ")
        );
    }
    let mut fields: Vec<Field> = vec![Field::new(&spec.text_column, DataType::Utf8, true)];
    for f in inferred.fields() {
        match f.data_type() {
            _ if f.name() == &spec.id_column => {
                fields.push(Field::new(f.name(), DataType::Utf8, true))
            }
            // Only nulls in the sample: strings take any later scalar.
            DataType::Null => fields.push(Field::new(f.name(), DataType::Utf8, true)),
            // Parquet cannot store an empty struct; such a key is left out.
            DataType::Struct(children) if children.is_empty() => {}
            t if t.is_integer() && widen.contains(f.name()) => {
                fields.push(Field::new(f.name(), DataType::Float64, true))
            }
            _ => fields.push(f.as_ref().clone()),
        }
    }
    Ok(Arc::new(Schema::new(fields)))
}

/// Keys of `m` (and, inside objects the columns hold as structs, their
/// keys, as `outer.inner`) that have no field: their values would be lost.
/// Keys holding nothing (null, {}) lose nothing and are not listed.
fn unknown_keys(
    m: &Map<String, Value>,
    fields: &arrow::datatypes::Fields,
    prefix: &str,
    out: &mut Vec<String>,
) {
    for (k, v) in m {
        if v.is_null() || v.as_object().is_some_and(|o| o.is_empty()) {
            continue;
        }
        match fields.find(k) {
            None => out.push(format!("{prefix}{k}")),
            Some((_, f)) => {
                if let (DataType::Struct(children), Value::Object(inner)) = (f.data_type(), v) {
                    unknown_keys(inner, children, &format!("{prefix}{k}."), out);
                }
            }
        }
    }
}

struct JsonlReader {
    lines: Box<dyn BufRead + Send>,
    schema: SchemaRef,
    text_column: String,
    id_column: String,
    batch_rows: usize,
    file: String,
    /// Byte offset of the next line from the file start (uncompressed data);
    /// synthesised ids are `file@offset`, the same however the file is split.
    offset: u64,
    end: u64,
    whole: bool,
    line_no: u64,
    done: bool,
    /// Keys met that are not columns: each is named once (see `note_unknown_keys`).
    named: std::collections::HashSet<String>,
    /// Whether any column holds numbers (which `misfit` checks).
    has_ints: bool,
    /// Whether a line may ask for a column to be widened (see [`Widen`]).
    widen_allowed: bool,
    /// A column a line needs widened to floats.
    widen_needed: Option<String>,
}

impl JsonlReader {
    /// A key first seen after the lines the columns were inferred from has
    /// no column: its values cannot be kept, and that must not go unsaid.
    /// Keys holding nothing (null, {}) lose nothing and are not named.
    fn note_unknown_keys(&mut self, row: &Value, location: &str) {
        let Value::Object(m) = row else { return };
        let mut unknown = vec![];
        unknown_keys(m, self.schema.fields(), "", &mut unknown);
        for k in unknown {
            if self.named.contains(&k) {
                continue;
            }
            crate::msg::warning(format!(
                "{location}: key `{k}` is not among the columns inferred from the first \
                 {SCHEMA_SAMPLE_LINES} lines of {}; its values are left out of the output \
                 (put a line with it among the first)",
                self.file
            ));
            self.named.insert(k);
        }
    }

    /// Where a line is, for messages: `file:line` when the task started at
    /// the file's beginning, `file@byte` for a later piece.
    fn location(&self, line_no: u64, offset: u64) -> String {
        if self.whole {
            format!("{}:{}", self.file, line_no)
        } else {
            format!("{}@{}", self.file, offset)
        }
    }

    fn next_batch(&mut self) -> Result<Option<OpOutput>> {
        let mut rows: Vec<Value> = Vec::with_capacity(self.batch_rows);
        let mut marks: Vec<Option<DropMark>> = Vec::with_capacity(self.batch_rows);
        let mut ids: Vec<String> = Vec::with_capacity(self.batch_rows);
        let mut locations: Vec<String> = Vec::with_capacity(self.batch_rows);
        // The lines as read, so that a row the columns cannot hold reaches
        // `excluded/` as it was written (keys in order, numbers unrounded).
        let mut raw = RawLines::default();
        let mut buf = vec![];
        let mut batch_bytes = 0usize;
        // Rows and bytes both bound a batch: Arrow strings hold at most 2 GiB.
        while rows.len() < self.batch_rows && batch_bytes < MAX_BATCH_BYTES && !self.done {
            if !self.whole && self.offset >= self.end {
                self.done = true;
                break;
            }
            buf.clear();
            let n = self.lines.read_until(b'\n', &mut buf).with_context(|| {
                format!("{}: read error after line {}", self.file, self.line_no)
            })?;
            if n == 0 {
                self.done = true;
                break;
            }
            let (line_no, offset) = (self.line_no + 1, self.offset);
            self.line_no += 1;
            self.offset += n as u64;
            batch_bytes += n;
            let body = trim_newline(&buf);
            let body = if offset == 0 { strip_bom(body) } else { body };
            if body.iter().all(u8::is_ascii_whitespace) {
                continue; // a blank line holds no document
            }
            let location = self.location(line_no, offset);
            raw.push(body);
            let (row, mark) = self.parse_line(body, &location);
            if let Some(column) = self.widen_needed.take() {
                return Err(anyhow::Error::new(Widen(column)));
            }
            if mark.is_none() {
                self.note_unknown_keys(&row, &location);
            }
            rows.push(row);
            marks.push(mark);
            locations.push(location);
            ids.push(format!("{}@{offset}", self.file));
        }
        if rows.is_empty() {
            return Ok(None);
        }
        let batch = self.decode(&mut rows, &mut marks, &locations, &raw)?;
        let mut out = to_docs(batch, &self.text_column, &self.id_column, |i| {
            ids[i].clone()
        })?;
        merge_marks(&mut out.drops, marks);
        Ok(Some(out))
    }

    /// A line as a JSON object for the decoder, and its drop mark if it cannot be a document.
    fn parse_line(&mut self, body: &[u8], location: &str) -> (Value, Option<DropMark>) {
        let raw = |text: String| {
            let mut m = Map::new();
            m.insert(self.text_column.clone(), Value::String(text));
            Value::Object(m)
        };
        let s = match std::str::from_utf8(body) {
            Ok(s) => s,
            Err(e) => {
                // The text column can only hold the line with U+FFFD in
                // place of the bad bytes: the bytes themselves go in the
                // detail, so that the line can be recovered.
                use base64::Engine as _;
                let mark = DropMark {
                    reason: "read:invalid_utf8".into(),
                    detail: Some(format!(
                        "{location}: the line is not valid UTF-8 (at byte {}); the line as base64: {}",
                        e.valid_up_to(),
                        base64::engine::general_purpose::STANDARD.encode(body)
                    )),
                };
                return (raw(String::from_utf8_lossy(body).into_owned()), Some(mark));
            }
        };
        let mut obj = match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(m)) => m,
            Ok(_) => {
                let mark = DropMark {
                    reason: "read:invalid_json".into(),
                    detail: Some(format!("{location}: the line is JSON but not an object")),
                };
                return (raw(s.to_string()), Some(mark));
            }
            Err(e) => {
                let mark = DropMark {
                    reason: "read:invalid_json".into(),
                    detail: Some(format!("{location}: {e}")),
                };
                return (raw(s.to_string()), Some(mark));
            }
        };
        let mark = match obj.get(&self.text_column) {
            None => Some(DropMark {
                reason: "read:missing_text".into(),
                detail: Some(format!("{location}: no key `{}`", self.text_column)),
            }),
            Some(Value::Null) => None, // counted as read:null_text by to_docs
            Some(Value::String(_)) => None,
            Some(other) => {
                let mark = DropMark {
                    reason: "read:text_not_string".into(),
                    detail: Some(format!(
                        "{location}: `{}` is {}",
                        self.text_column,
                        json_kind(other)
                    )),
                };
                obj.insert(self.text_column.clone(), Value::String(other.to_string()));
                Some(mark)
            }
        };
        if mark.is_some() && !obj.contains_key(&self.text_column) {
            obj.insert(self.text_column.clone(), Value::String(String::new()));
        }
        if mark.is_none() && self.has_ints {
            if let Some(why) = misfit(&obj, self.schema.fields()) {
                // Only a line that misfits can ask for a wider column.
                if self.widen_allowed {
                    self.widen_needed = widenable(&obj, self.schema.fields());
                }
                // The decoder would round or wrap it without a word.
                let mark = DropMark {
                    reason: "read:invalid_json".into(),
                    detail: Some(format!(
                        "{location}: {why}, which its column cannot hold exactly"
                    )),
                };
                return (raw(s.to_string()), Some(mark));
            }
        }
        (Value::Object(obj), mark)
    }

    /// Decodes rows into a batch of the file's schema. A row whose values do
    /// not fit the schema (e.g. a string where the first lines had numbers)
    /// is dropped as `read:invalid_json`, with the decoder's complaint.
    fn decode(
        &self,
        rows: &mut [Value],
        marks: &mut [Option<DropMark>],
        ids: &[String],
        raw: &RawLines,
    ) -> Result<RecordBatch> {
        let decode = |rows: &[Value]| -> Result<Option<RecordBatch>> {
            let mut d = arrow_json::ReaderBuilder::new(self.schema.clone())
                .with_coerce_primitive(true)
                .with_batch_size(rows.len().max(1))
                .build_decoder()?;
            d.serialize(rows)?;
            Ok(d.flush()?)
        };
        if let Ok(Some(b)) = decode(rows) {
            return Ok(b);
        }
        for i in 0..rows.len() {
            if let Err(e) = decode(&rows[i..i + 1]) {
                let text = String::from_utf8_lossy(raw.get(i)).into_owned();
                let mut m = Map::new();
                m.insert(self.text_column.clone(), Value::String(text));
                rows[i] = Value::Object(m);
                marks[i] = Some(DropMark {
                    reason: "read:invalid_json".into(),
                    detail: Some(format!(
                        "{}: does not fit the columns inferred from the file's first lines: {e}",
                        ids[i]
                    )),
                });
            }
        }
        decode(rows)?.ok_or_else(|| anyhow!("{}: decoder returned no rows", self.file))
    }
}

/// The lines of one batch, end to end.
#[derive(Default)]
struct RawLines {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl RawLines {
    fn push(&mut self, line: &[u8]) {
        self.bytes.extend_from_slice(line);
        self.ends.push(self.bytes.len());
    }
    fn get(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.bytes[start..self.ends[i]]
    }
}

/// The first value of `m` that its column would not hold exactly: Arrow's
/// JSON decoder truncates a fraction into an integer column (0.5 becomes 0)
/// and saturates a number beyond it, where it should refuse.
fn misfit(m: &Map<String, Value>, fields: &arrow::datatypes::Fields) -> Option<String> {
    fields.iter().find_map(|f| {
        let v = m.get(f.name())?;
        misfit_value(v, f.data_type()).map(|why| format!("`{}` is {why}", f.name()))
    })
}

/// The integer column of `m` that holds a number it cannot (a fraction, or
/// past its range): the column to widen to floats. Values inside objects
/// and lists, and strings, are not widened (they are dropped as misfits).
fn widenable(m: &Map<String, Value>, fields: &arrow::datatypes::Fields) -> Option<String> {
    fields.iter().find_map(|f| {
        if !f.data_type().is_integer() {
            return None;
        }
        let Value::Number(n) = m.get(f.name())? else {
            return None;
        };
        misfit_value(&Value::Number(n.clone()), f.data_type())?;
        // A number the JSON parser read as a double (a fraction, an
        // exponent, a whole number past u64) is the double every JSON
        // reader takes it for; an integer that Float64 would round is
        // refused again, as a misfit, once the column is widened.
        n.as_f64()
            .is_some_and(f64::is_finite)
            .then(|| f.name().clone())
    })
}

fn schema_has_ints(schema: &Schema) -> bool {
    fn has(t: &DataType) -> bool {
        match t {
            DataType::Struct(c) => c.iter().any(|f| has(f.data_type())),
            DataType::List(f) | DataType::LargeList(f) => has(f.data_type()),
            t => t.is_integer() || t.is_floating(),
        }
    }
    schema.fields().iter().any(|f| has(f.data_type()))
}

fn misfit_value(v: &Value, t: &DataType) -> Option<String> {
    let int_range = |t: &DataType| -> Option<(i128, i128)> {
        Some(match t {
            DataType::Int8 => (i8::MIN as i128, i8::MAX as i128),
            DataType::Int16 => (i16::MIN as i128, i16::MAX as i128),
            DataType::Int32 => (i32::MIN as i128, i32::MAX as i128),
            DataType::Int64 => (i64::MIN as i128, i64::MAX as i128),
            DataType::UInt8 => (0, u8::MAX as i128),
            DataType::UInt16 => (0, u16::MAX as i128),
            DataType::UInt32 => (0, u32::MAX as i128),
            DataType::UInt64 => (0, u64::MAX as i128),
            _ => return None,
        })
    };
    match (v, t) {
        (Value::Null, _) => None,
        // An integer a float column would round (past 2^53 for f64).
        (Value::Number(n), DataType::Float16 | DataType::Float32 | DataType::Float64) => {
            let i: i128 = n
                .as_i64()
                .map(i128::from)
                .or_else(|| n.as_u64().map(i128::from))?;
            let exact = match t {
                DataType::Float64 => (i as f64) as i128 == i,
                DataType::Float32 => (i as f32) as i128 == i,
                _ => i.abs() <= 2048,
            };
            (!exact).then(|| format!("{v} (the column is {t}, which would round it)"))
        }
        (Value::Object(m), DataType::Struct(children)) => {
            misfit(m, children).map(|why| format!("an object whose {why}"))
        }
        (Value::Array(items), DataType::List(f) | DataType::LargeList(f)) => items
            .iter()
            .find_map(|x| misfit_value(x, f.data_type()))
            .map(|why| format!("a list holding {why}")),
        (Value::Number(_) | Value::String(_), t) => {
            let (lo, hi) = int_range(t)?;
            let exact: Option<i128> = match v {
                Value::Number(n) => n
                    .as_i64()
                    .map(i128::from)
                    .or_else(|| n.as_u64().map(i128::from))
                    .or_else(|| {
                        // A whole float below 2^53 is the integer it shows.
                        let x = n.as_f64()?;
                        (x.fract() == 0.0 && x.abs() <= 9_007_199_254_740_992.0)
                            .then_some(x as i128)
                    }),
                // The decoder parses strings into numbers; a string it
                // would round counts as a misfit like the number.
                Value::String(s) => match s.trim().parse::<i128>() {
                    Ok(x) => Some(x),
                    Err(_) if s.trim().parse::<f64>().is_ok() => None,
                    Err(_) => return None, // not a number: the decoder refuses it
                },
                _ => None,
            };
            match exact {
                Some(x) if (lo..=hi).contains(&x) => None,
                _ => Some(format!("{v} (the column is {t})")),
            }
        }
        _ => None,
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Combines the reader's marks with those of `to_docs` (the reader's first).
fn merge_marks(target: &mut Vec<Option<DropMark>>, first: Vec<Option<DropMark>>) {
    if first.iter().all(Option::is_none) {
        return;
    }
    if target.is_empty() {
        *target = first;
        return;
    }
    for (t, f) in target.iter_mut().zip(first) {
        if f.is_some() {
            *t = f;
        }
    }
}

fn strip_bom(b: &[u8]) -> &[u8] {
    b.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(b)
}

fn trim_newline(buf: &[u8]) -> &[u8] {
    let mut b = buf;
    while let Some((&last, rest)) = b.split_last() {
        if last == b'\n' || last == b'\r' {
            b = rest;
        } else {
            break;
        }
    }
    b
}

impl Iterator for JsonlReader {
    type Item = Result<OpOutput>;
    fn next(&mut self) -> Option<Self::Item> {
        match self.next_batch() {
            Ok(Some(b)) => Some(Ok(b)),
            Ok(None) => None,
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

fn open_jsonl(task: &InputTask, spec: &InputSpec, widen: Option<&Widened>) -> Result<BatchIter> {
    let schema = jsonl_schema(task, spec, widen.unwrap_or(&Widened::new()))?;
    let (end, whole) = match task.piece {
        Piece::Lines { end, whole, .. } => (end, whole),
        _ => (u64::MAX, true),
    };
    let (lines, offset) = open_stream(task)?;
    Ok(Box::new(JsonlReader {
        lines,
        text_column: spec.text_column.clone(),
        id_column: spec.id_column.clone(),
        batch_rows: spec.batch_rows,
        file: task.file.path.display().to_string(),
        offset,
        end,
        whole,
        line_no: 0,
        done: false,
        named: Default::default(),
        has_ints: schema_has_ints(&schema),
        schema,
        widen_allowed: widen.is_some(),
        widen_needed: None,
    }))
}
