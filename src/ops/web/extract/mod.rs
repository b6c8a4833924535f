//! `extract`: the main text of a web page, boilerplate (menus, footers,
//! cookie banners, related links, comments) left out. It reads the `html`
//! column the WARC reader fills and writes the text, the page `title` and
//! the `<html lang>` hint (`html_lang`).
//!
//! Our own parser and extractor (`html.rs`, `main_text.rs`), not a crate:
//! the Rust ports we measured (`trafilatura` 0.6, `rs-trafilatura` 0.2,
//! `dom_smoothie` 0.19) were both less accurate than Python trafilatura on
//! its evaluation pages and far from ten times its speed; html5ever's tree
//! alone costs more than the whole budget (docs/benchmarks.md has the table).

mod html;
mod main_text;

use std::sync::Arc;

use anyhow::{bail, Result};
use arrow::array::{Array, ArrayRef, RecordBatch, StringArray, StringBuilder};
use arrow::datatypes::Schema;
use serde::{Deserialize, Serialize};

use crate::batch::with_column;
use crate::ops::{
    shape, BuildCtx, DocBatch, DropMark, Op, OpInfo, OpKind, OpOutput, ParamDoc, StreamOp,
};
use crate::pipeline::spec::SpecError;

pub use main_text::{extract, Extracted, Favour, Options, OutputFormat};

/// The side of the precision/recall trade-off, as a user names it.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum FavourKey {
    Precision,
    Recall,
    #[default]
    Balanced,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum OutputKey {
    #[default]
    Text,
    Markdown,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub favour: FavourKey,
    pub include_tables: bool,
    pub include_lists: bool,
    pub output: OutputKey,
    /// The column holding the HTML.
    pub column: String,
    /// Keep the HTML column in the output (it is most of the bytes).
    pub keep_html: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            favour: FavourKey::Balanced,
            include_tables: true,
            include_lists: true,
            output: OutputKey::Text,
            column: "html".into(),
            keep_html: false,
        }
    }
}

pub const INFO: OpInfo = OpInfo {
    name: "extract",
    kind: OpKind::Stream,
    summary: "HTML → main text: boilerplate (menus, footers, cookie banners, related links, \
              comments) out; adds `title` and `html_lang`.",
    params: &[
        ParamDoc {
            name: "favour",
            kind: "string",
            default: "\"balanced\"",
            doc: "\"precision\" (less boilerplate, may lose some text), \"recall\" (more text, \
                  more boilerplate) or \"balanced\"",
        },
        ParamDoc {
            name: "include_tables",
            kind: "bool",
            default: "true",
            doc: "keep the text of data tables (a row per line, cells joined by ` | `)",
        },
        ParamDoc {
            name: "include_lists",
            kind: "bool",
            default: "true",
            doc: "keep list items in the main text",
        },
        ParamDoc {
            name: "output",
            kind: "string",
            default: "\"text\"",
            doc: "\"text\" (a block per line) or \"markdown\" (`#` headings, `- ` items, tables, \
                  fenced code)",
        },
        ParamDoc {
            name: "column",
            kind: "string",
            default: "\"html\"",
            doc: "the string column holding the HTML (the WARC reader's `html`); when it is \
                  [input]'s `text_column`, the main text replaces it",
        },
        ParamDoc {
            name: "keep_html",
            kind: "bool",
            default: "false",
            doc: "keep the HTML column in the output",
        },
    ],
    drop_reasons: &["extract:empty"],
    outputs: &[],
    build,
    config: shape::<Config>,
    example: r#"
[[step]]
op = "extract"
favour = "balanced"
"#,
    about: "A row whose HTML is null (a WET record, which is text already) passes unchanged. A \
            page with no main text is dropped (`extract:empty`). Pages are read as the WARC \
            reader decoded them (see docs/web.md).",
};

pub struct Extract {
    opts: Options,
    column: String,
    keep_html: bool,
}

fn build(ctx: &BuildCtx<'_>) -> Result<Op, SpecError> {
    let c: Config = ctx.config()?;
    if c.keep_html && ctx.spec.input.text_column == c.column {
        return Err(ctx.error(
            "keep_html",
            format!(
                "`column` = `{}` is the text column, which extract replaces by the main text: \
                 there is no HTML left to keep",
                c.column
            ),
        ));
    }
    Ok(Op::Stream(Box::new(Extract {
        opts: Options {
            favour: match c.favour {
                FavourKey::Precision => Favour::Precision,
                FavourKey::Recall => Favour::Recall,
                FavourKey::Balanced => Favour::Balanced,
            },
            include_tables: c.include_tables,
            include_lists: c.include_lists,
            output: match c.output {
                OutputKey::Text => OutputFormat::Text,
                OutputKey::Markdown => OutputFormat::Markdown,
            },
        },
        column: c.column,
        keep_html: c.keep_html,
    })))
}

impl StreamOp for Extract {
    fn apply(&self, batch: DocBatch) -> Result<OpOutput> {
        let Some(col) = batch.data.column_by_name(&self.column) else {
            bail!(
                "extract: the input has no column `{}`: read WARC files (format = \"warc\"), or \
                 name the column that holds the HTML with `column`",
                self.column
            );
        };
        let Some(pages) = col.as_any().downcast_ref::<StringArray>() else {
            bail!(
                "extract: column `{}` is {}, not a string",
                self.column,
                col.data_type()
            );
        };
        // HTML read as the text column (Parquet or JSONL of pages, with
        // `text_column = "html"`) is replaced in place by the main text.
        let in_place = batch.data.schema().index_of(&self.column).ok() == Some(batch.text);
        let texts = batch.texts();
        let n = batch.num_rows();
        let mut text = StringBuilder::with_capacity(n, n * 2048);
        let mut title = StringBuilder::with_capacity(n, n * 64);
        let mut lang = StringBuilder::with_capacity(n, n * 4);
        let mut drops: Vec<Option<DropMark>> = Vec::with_capacity(n);
        for i in 0..n {
            if pages.is_null(i) {
                text.append_value(texts.value(i));
                title.append_null();
                lang.append_null();
                drops.push(None);
                continue;
            }
            let page = extract(pages.value(i), &self.opts);
            drops.push(page.text.is_empty().then(|| DropMark::new("extract:empty")));
            text.append_value(&page.text);
            title.append_option((!page.title.is_empty()).then_some(&page.title));
            lang.append_option((!page.lang.is_empty()).then_some(&page.lang));
        }
        let batch = crate::batch::with_texts(batch, text.finish())?;
        let batch = with_column(batch, "title", Arc::new(title.finish()) as ArrayRef)?;
        let batch = with_column(batch, "html_lang", Arc::new(lang.finish()) as ArrayRef)?;
        let batch = if self.keep_html || in_place {
            batch
        } else {
            without_column(batch, &self.column)?
        };
        Ok(OpOutput::new(batch, drops))
    }
}

/// The batch less one column (the text and id columns stay where they point).
fn without_column(batch: DocBatch, name: &str) -> Result<DocBatch> {
    let schema = batch.data.schema();
    let Ok(i) = schema.index_of(name) else {
        return Ok(batch);
    };
    if i == batch.text || i == batch.id {
        bail!(
            "{}: extract would remove the text or id column",
            crate::msg::BUG
        );
    }
    let mut fields: Vec<_> = schema.fields().iter().cloned().collect();
    let mut columns = batch.data.columns().to_vec();
    fields.remove(i);
    columns.remove(i);
    let shift = |c: usize| if c > i { c - 1 } else { c };
    let data = RecordBatch::try_new(
        Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone())),
        columns,
    )?;
    Ok(DocBatch {
        data,
        text: shift(batch.text),
        id: shift(batch.id),
    })
}

#[cfg(test)]
mod tests;
