//! Web archives as documents: WARC files as crawlers write them (Common
//! Crawl's `.warc.gz`, gzip per record or over the whole file, or plain) and
//! Common Crawl's WET text extracts.
//!
//! A document is a `response` or `resource` record (a page: its `html`,
//! decoded to UTF-8, for the `extract` step) or a WET `conversion` record
//! (its `text`). Other record types (`warcinfo`, `request`, `metadata`,
//! `revisit`) are not documents: they are counted by type in the read
//! step's `skipped`. A record that is damaged or not a page is a document
//! dropped with a `read:warc_*` reason that names the file and where in it.

mod members;
mod payload;
mod records;

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{Context, Result};
use arrow::array::{ArrayRef, Int32Builder, RecordBatch, StringBuilder};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use super::discover::InputTask;
use super::reader::BatchIter;
use super::store;
use crate::batch::{DocBatch, DropMark, OpOutput};
use crate::pipeline::spec::InputSpec;
use records::{Item, Record, Records};

/// The column that holds a page's HTML until `extract` turns it into text.
pub const HTML_COLUMN: &str = "html";

/// A record block larger than this is skipped unread (`read:warc_too_large`):
/// Common Crawl cuts payloads at 1 MiB, so only a damaged length gets here.
const MAX_RECORD_BYTES: u64 = 64 << 20;
/// Page bytes after which a batch is closed whatever its row count: pages
/// are large, and a batch is in memory per worker.
const MAX_BATCH_BYTES: usize = 32 << 20;

/// The columns of a WARC task, in order; `id` and `text` take the spec's names.
pub fn schema(spec: &InputSpec) -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new(&spec.id_column, DataType::Utf8, false),
        Field::new("url", DataType::Utf8, true),
        Field::new("date", DataType::Utf8, true),
        Field::new("content_type", DataType::Utf8, true),
        Field::new("charset", DataType::Utf8, true),
        Field::new("status", DataType::Int32, true),
        Field::new(HTML_COLUMN, DataType::Utf8, true),
        Field::new(&spec.text_column, DataType::Utf8, false),
    ]))
}

/// An empty batch of the WARC columns.
pub fn empty_batch(spec: &InputSpec) -> Result<OpOutput> {
    let data = RecordBatch::new_empty(schema(spec));
    Ok(OpOutput::new(
        DocBatch {
            data,
            text: 7,
            id: 0,
        },
        vec![],
    ))
}

pub fn open(task: &InputTask, spec: &InputSpec) -> Result<BatchIter> {
    let path = &task.file.path;
    let file = store::open(path)?;
    let records = Records::new(
        std::io::BufReader::with_capacity(1 << 20, file),
        MAX_RECORD_BYTES,
    )
    .with_context(|| format!("{}: cannot read", path.display()))?;
    Ok(Box::new(WarcReader {
        records,
        schema: schema(spec),
        file: path.display().to_string(),
        batch_rows: spec.batch_rows,
        done: false,
    }))
}

struct WarcReader {
    records: Records<std::io::BufReader<store::Source>>,
    schema: SchemaRef,
    file: String,
    batch_rows: usize,
    done: bool,
}

/// One row under construction.
#[derive(Default)]
struct Row {
    id: String,
    url: Option<String>,
    date: Option<String>,
    content_type: Option<String>,
    charset: Option<String>,
    status: Option<i32>,
    html: Option<String>,
    text: String,
    drop: Option<DropMark>,
}

struct Rows {
    id: StringBuilder,
    url: StringBuilder,
    date: StringBuilder,
    content_type: StringBuilder,
    charset: StringBuilder,
    status: Int32Builder,
    html: StringBuilder,
    text: StringBuilder,
    drops: Vec<Option<DropMark>>,
    bytes: usize,
}

impl Rows {
    fn new() -> Rows {
        Rows {
            id: StringBuilder::new(),
            url: StringBuilder::new(),
            date: StringBuilder::new(),
            content_type: StringBuilder::new(),
            charset: StringBuilder::new(),
            status: Int32Builder::new(),
            html: StringBuilder::new(),
            text: StringBuilder::new(),
            drops: vec![],
            bytes: 0,
        }
    }

    fn push(&mut self, r: Row) {
        self.bytes += r.html.as_ref().map_or(0, String::len) + r.text.len();
        self.id.append_value(&r.id);
        self.url.append_option(r.url);
        self.date.append_option(r.date);
        self.content_type.append_option(r.content_type);
        self.charset.append_option(r.charset);
        self.status.append_option(r.status);
        self.html.append_option(r.html);
        self.text.append_value(&r.text);
        self.drops.push(r.drop);
    }

    fn finish(mut self, schema: &SchemaRef, skipped: BTreeMap<String, u64>) -> Result<OpOutput> {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.id.finish()),
            Arc::new(self.url.finish()),
            Arc::new(self.date.finish()),
            Arc::new(self.content_type.finish()),
            Arc::new(self.charset.finish()),
            Arc::new(self.status.finish()),
            Arc::new(self.html.finish()),
            Arc::new(self.text.finish()),
        ];
        let data = RecordBatch::try_new(schema.clone(), columns)?;
        let mut out = OpOutput::new(
            DocBatch {
                data,
                text: 7,
                id: 0,
            },
            self.drops,
        );
        out.skipped = skipped;
        Ok(out)
    }
}

impl WarcReader {
    fn next_batch(&mut self) -> Option<Result<OpOutput>> {
        if self.done {
            return None;
        }
        let mut rows = Rows::new();
        let mut skipped: BTreeMap<String, u64> = BTreeMap::new();
        while rows.drops.len() < self.batch_rows && rows.bytes < MAX_BATCH_BYTES {
            let Some(item) = self.records.next() else {
                self.done = true;
                break;
            };
            let row = match item {
                Item::Record(r) => match document(&r, &self.file) {
                    Doc::Row(row) => row,
                    Doc::Skip(kind) => {
                        *skipped.entry(kind).or_default() += 1;
                        continue;
                    }
                },
                Item::Lost {
                    at,
                    fault,
                    detail,
                    headers,
                } => {
                    let get = |k| records::header(&headers, k).map(str::to_string);
                    Row {
                        id: get("WARC-Record-ID")
                            .unwrap_or_else(|| format!("{}@{}", self.file, at)),
                        url: get("WARC-Target-URI"),
                        date: get("WARC-Date"),
                        drop: Some(DropMark {
                            reason: fault.reason().into(),
                            detail: Some(format!("{}: {at}: {detail}", self.file)),
                        }),
                        ..Row::default()
                    }
                }
            };
            rows.push(row);
        }
        if rows.drops.is_empty() && skipped.is_empty() {
            return None;
        }
        Some(rows.finish(&self.schema, skipped))
    }
}

impl Iterator for WarcReader {
    type Item = Result<OpOutput>;
    fn next(&mut self) -> Option<Self::Item> {
        self.next_batch()
    }
}

enum Doc {
    Row(Row),
    /// Not a document: counted under this record type.
    Skip(String),
}

/// What a record becomes: a document (maybe dropped, with why), or a skip.
fn document(r: &Record, file: &str) -> Doc {
    let kind = r.header("WARC-Type").unwrap_or("").to_ascii_lowercase();
    if !matches!(kind.as_str(), "response" | "resource" | "conversion") {
        let kind = if kind.is_empty() {
            "untyped".to_string()
        } else {
            kind
        };
        return Doc::Skip(kind);
    }
    let url = r
        .header("WARC-Target-URI")
        .map(|u| u.trim_matches(['<', '>']).to_string());
    let mut row = Row {
        id: r
            .header("WARC-Record-ID")
            .map(str::to_string)
            .unwrap_or_else(|| format!("{file}@{}", r.at)),
        url: url.clone(),
        date: r.header("WARC-Date").map(str::to_string),
        ..Row::default()
    };
    let drop = |reason: &str, detail: String| {
        Some(DropMark {
            reason: reason.into(),
            detail: Some(format!("{file}: {}: {detail}", r.at)),
        })
    };
    if let Some(why) = r.header("WARC-Truncated") {
        row.drop = drop(
            "read:warc_truncated",
            format!("the crawler cut the payload (WARC-Truncated: {why})"),
        );
        return Doc::Row(row);
    }
    let record_type = r.header("Content-Type").unwrap_or("");
    let http = if kind == "response"
        && (record_type.starts_with("application/http") || r.block.starts_with(b"HTTP/"))
    {
        match payload::parse_http(&r.block) {
            Some(h) => Some(h),
            None => {
                row.drop = drop(
                    "read:warc_bad_http",
                    "the response has no HTTP status line".into(),
                );
                return Doc::Row(row);
            }
        }
    } else {
        None
    };
    let (content_type, body) = match &http {
        Some(h) => {
            row.status = Some(h.status as i32);
            let ct = records::header(&h.headers, "Content-Type")
                .unwrap_or("")
                .to_string();
            match payload::decoded_body(h) {
                Ok(body) => (ct, body),
                Err(what) => {
                    row.content_type = Some(payload::mime(&ct));
                    row.drop = drop("read:warc_undecodable", format!("{what} is not supported"));
                    return Doc::Row(row);
                }
            }
        }
        None => (
            record_type.to_string(),
            std::borrow::Cow::Borrowed(&r.block[..]),
        ),
    };
    let mime = payload::mime(&content_type);
    row.content_type = Some(mime.clone()).filter(|m| !m.is_empty());
    if let Some(status) = row.status.filter(|s| !(200..300).contains(s)) {
        row.drop = drop("read:warc_http_status", format!("HTTP status {status}"));
        return Doc::Row(row);
    }
    let is_html = match mime.as_str() {
        "text/html" | "application/xhtml+xml" => true,
        "" | "application/octet-stream" | "text/plain" if kind != "conversion" => {
            payload::sniff_html(&body)
        }
        _ => false,
    };
    let is_text = !is_html && (kind == "conversion" || mime == "text/plain");
    if !is_html && !is_text {
        row.drop = drop(
            "read:warc_not_html",
            format!(
                "payload of type `{}`",
                if mime.is_empty() { "unknown" } else { &mime }
            ),
        );
        return Doc::Row(row);
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        row.drop = drop("read:warc_empty", "the payload is empty".into());
        return Doc::Row(row);
    }
    let host = url
        .as_deref()
        .and_then(|u| url::Url::parse(u).ok())
        .and_then(|u| u.host_str().map(str::to_string));
    let (decoded, enc) = payload::decode_page(
        &body,
        payload::charset_param(&content_type),
        host.as_deref(),
        is_html,
    );
    row.charset = Some(enc.name().to_string());
    if is_html {
        row.html = Some(decoded);
    } else {
        row.text = decoded;
    }
    Doc::Row(row)
}

#[cfg(test)]
mod tests;
