//! `pii`: finds e-mail addresses, public IP addresses, phone numbers,
//! mainland China identity numbers, payment card numbers, IBANs and
//! secrets (API keys, private keys) in the text, and replaces them with a
//! placeholder, tags their spans in a column, or drops the document.
//!
//! Each kind has a candidate finder and the checks of the real thing
//! (`detect.rs`): boundaries, checksums where the number has one (Luhn,
//! mod 97, ISO 7064 MOD 11-2 — `validate.rs`), and context (`ISBN`,
//! `version`). Per-kind counts go to the step's counters in `stats.json`.

mod detect;
mod validate;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Result;
use arrow::array::{ArrayRef, Int64Builder, ListBuilder, StringBuilder, StructBuilder};
use arrow::datatypes::{DataType, Field, Fields};
use serde::{Deserialize, Serialize};

pub use detect::{Detector, Kind, Span};

use crate::ops::{
    shape, with_column, with_texts, BuildCtx, DocBatch, DropMark, Op, OpInfo, OpKind, OpOutput,
    ParamDoc, StreamOp,
};
use crate::pipeline::spec::SpecError;

#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Each finding becomes its kind's placeholder (`<EMAIL>`).
    #[default]
    Replace,
    /// The text is kept; the findings go to a list column.
    Tag,
    /// A document with any finding is dropped.
    Drop,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Pii {
    pub kinds: Vec<Kind>,
    pub mode: Mode,
    /// Flag private, loopback and documentation IP addresses too.
    pub private_ips: bool,
    /// `mode = "tag"`: the list column of spans.
    pub column: String,
    /// Placeholders other than the built-in ones, by kind.
    pub placeholders: BTreeMap<String, String>,
}

impl Default for Pii {
    fn default() -> Self {
        Pii {
            kinds: Kind::ALL.to_vec(),
            mode: Mode::Replace,
            private_ips: false,
            column: "pii_spans".into(),
            placeholders: BTreeMap::new(),
        }
    }
}

pub const INFO: OpInfo = OpInfo {
    name: "pii",
    kind: OpKind::Stream,
    summary: "Finds personal data and secrets — e-mail addresses, public IPv4/IPv6 addresses, phone \
              numbers (E.164, US, Chinese mobile and landline, European national forms), mainland \
              China identity numbers, payment card numbers, IBANs, API keys and private keys — checked \
              by checksum where the number has one, and replaces each with a placeholder, tags the \
              spans in a column, or drops the document.",
    params: &[
        ParamDoc {
            name: "kinds",
            kind: "list",
            default: r#"["email", "ip", "phone", "cn_id", "credit_card", "iban", "secret"]"#,
            doc: "what to find (any of the default's names)",
        },
        ParamDoc {
            name: "mode",
            kind: "string",
            default: "\"replace\"",
            doc: "\"replace\" (placeholders such as <EMAIL>), \"tag\" (spans in `column`) or \"drop\"",
        },
        ParamDoc {
            name: "private_ips",
            kind: "bool",
            default: "false",
            doc: "also flag private, loopback and documentation addresses (10.0.0.1, ::1, 192.0.2.1)",
        },
        ParamDoc {
            name: "column",
            kind: "string",
            default: "\"pii_spans\"",
            doc: "mode \"tag\": the list column of {start, end, kind} (character offsets, end exclusive)",
        },
        ParamDoc {
            name: "placeholders",
            kind: "table",
            default: "{}",
            doc: "mode \"replace\": other placeholders by kind, e.g. { email = \"[email]\" }",
        },
    ],
    drop_reasons: &["pii:<kind>"],
    outputs: &[],
    build,
    config: shape::<Pii>,
    example: r#"
[[step]]
op = "pii"
kinds = ["email", "ip", "phone", "cn_id", "credit_card", "iban", "secret"]
mode = "replace"
"#,
    about: r#"
Each kind is found by its shape and then checked as the real thing is:
boundaries (not inside a longer number or word), the checksum where the
number has one (Luhn for cards, mod 97 for IBANs, ISO 7064 MOD 11-2 and
the birth date for Chinese identity numbers), the address range for IPs
(public only unless `private_ips`), and the context (a number after
`ISBN` or `version` is neither a phone nor an IP). Placeholders:
`<EMAIL>`, `<IP_ADDRESS>`, `<PHONE>`, `<CN_ID>`, `<CREDIT_CARD>`,
`<IBAN>`, `<SECRET>`. [privacy.md](privacy.md#pii) lists the forms each
kind finds and the look-alikes it leaves alone.

Where two findings overlap, the more specific kind wins (secret, e-mail,
identity number, IBAN, card, IP, phone). `mode = "tag"` keeps the text and
writes `column`: a list of `{start, end, kind}` per document, in
characters (Unicode code points, as Python slices strings), end exclusive.
`mode = "drop"` drops a document with any finding, reason `pii:<kind>` of
the first, its offset in the detail. In every mode the step's counters in
`stats.json` (and the summary) give the findings per kind and
`documents_with_pii`.
"#,
};

fn build(ctx: &BuildCtx<'_>) -> Result<Op, SpecError> {
    let p: Pii = ctx.config()?;
    if p.kinds.is_empty() {
        return Err(ctx.error(
            "kinds",
            "kinds is empty: name at least one kind to find".into(),
        ));
    }
    let mut placeholders: BTreeMap<Kind, String> = Kind::ALL
        .iter()
        .map(|k| (*k, k.placeholder().to_string()))
        .collect();
    for (name, text) in &p.placeholders {
        let Some(kind) = Kind::ALL.iter().find(|k| k.name() == name) else {
            let names: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
            return Err(ctx.error(
                "placeholders",
                format!(
                    "placeholders: no kind `{name}` (kinds: {})",
                    names.join(", ")
                ),
            ));
        };
        placeholders.insert(*kind, text.clone());
    }
    if p.mode == Mode::Tag && p.column.is_empty() {
        return Err(ctx.error("column", "column must name the list column of spans".into()));
    }
    let mut kinds = p.kinds.clone();
    kinds.sort();
    kinds.dedup();
    Ok(Op::Stream(Box::new(PiiOp {
        detector: Arc::new(Detector::new(&kinds, p.private_ips)),
        kinds,
        mode: p.mode,
        column: p.column,
        placeholders,
    })))
}

struct PiiOp {
    detector: Arc<Detector>,
    kinds: Vec<Kind>,
    mode: Mode,
    column: String,
    placeholders: BTreeMap<Kind, String>,
}

/// The type of `mode = "tag"`'s column.
pub fn span_fields() -> Fields {
    Fields::from(vec![
        Field::new("start", DataType::Int64, false),
        Field::new("end", DataType::Int64, false),
        Field::new("kind", DataType::Utf8, false),
    ])
}

impl PiiOp {
    fn replaced(&self, text: &str, spans: &[Span]) -> String {
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        for s in spans {
            out.push_str(&text[at..s.start]);
            out.push_str(&self.placeholders[&s.kind]);
            at = s.end;
        }
        out.push_str(&text[at..]);
        out
    }

    fn tags(&self, texts: &arrow::array::StringArray, found: &[Vec<Span>]) -> ArrayRef {
        let fields = span_fields();
        let values = StructBuilder::from_fields(fields.clone(), 0);
        let mut list = ListBuilder::new(values).with_field(Arc::new(Field::new(
            "item",
            DataType::Struct(fields),
            false,
        )));
        for (text, spans) in texts.iter().zip(found) {
            let text = text.unwrap_or("");
            let b = list.values();
            let mut chars = 0i64;
            let mut at = 0;
            for s in spans {
                chars += text[at..s.start].chars().count() as i64;
                let len = text[s.start..s.end].chars().count() as i64;
                b.field_builder::<Int64Builder>(0)
                    .expect("start")
                    .append_value(chars);
                b.field_builder::<Int64Builder>(1)
                    .expect("end")
                    .append_value(chars + len);
                b.field_builder::<StringBuilder>(2)
                    .expect("kind")
                    .append_value(s.kind.name());
                b.append(true);
                chars += len;
                at = s.end;
            }
            list.append(true);
        }
        Arc::new(list.finish())
    }
}

impl StreamOp for PiiOp {
    fn apply(&self, batch: DocBatch) -> Result<OpOutput> {
        let texts = batch.texts().clone();
        let found: Vec<Vec<Span>> = texts
            .iter()
            .map(|t| t.map(|t| self.detector.find(t)).unwrap_or_default())
            .collect();
        let mut counts: BTreeMap<Kind, u64> = self.kinds.iter().map(|k| (*k, 0)).collect();
        for s in found.iter().flatten() {
            *counts.entry(s.kind).or_default() += 1;
        }
        let with_pii = found.iter().filter(|f| !f.is_empty()).count() as u64;
        let mut out = match self.mode {
            Mode::Replace => {
                if with_pii == 0 {
                    OpOutput::new(batch, vec![])
                } else {
                    let mut b = StringBuilder::with_capacity(
                        arrow::array::Array::len(&texts),
                        texts.value_data().len(),
                    );
                    for (t, spans) in texts.iter().zip(&found) {
                        match t {
                            None => b.append_null(),
                            Some(t) if spans.is_empty() => b.append_value(t),
                            Some(t) => b.append_value(self.replaced(t, spans)),
                        }
                    }
                    OpOutput::new(with_texts(batch, b.finish())?, vec![])
                }
            }
            Mode::Tag => {
                let column = self.tags(&texts, &found);
                OpOutput::new(with_column(batch, &self.column, column)?, vec![])
            }
            Mode::Drop => {
                let drops = texts
                    .iter()
                    .zip(&found)
                    .map(|(t, spans)| {
                        let s = spans.first()?;
                        let at = t.unwrap_or("")[..s.start].chars().count();
                        Some(DropMark {
                            reason: format!("pii:{}", s.kind.name()),
                            detail: Some(format!(
                                "{} at character {at} ({} finding{})",
                                s.kind.name(),
                                spans.len(),
                                if spans.len() == 1 { "" } else { "s" }
                            )),
                        })
                    })
                    .collect();
                OpOutput::new(batch, drops)
            }
        };
        for (k, n) in counts {
            out.count(k.name(), n);
        }
        out.count("documents_with_pii", with_pii);
        Ok(out)
    }
}
