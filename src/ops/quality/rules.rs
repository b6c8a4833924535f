//! What the rule-based quality filters share: per-language parameters picked
//! by the `lang` column, and the loop that applies a per-document rule.
//!
//! A filter's parameters are its step's keys (defaults: the published ones),
//! then built-in overrides for languages written without spaces (Chinese,
//! Japanese, Thai, …), then the user's `[step.languages.<code>]` tables.
//!
//! `mode = "annotate"` keeps every document and writes what each rule
//! measured as columns (RedPajama v2's quality signals), for a `select`
//! step to decide on. A filter states each rule once, to a [`Verdict`]:
//! its signal, and whether the document fails it at the step's thresholds;
//! dropping stops at the first failure, annotating records every signal.
//! So the signals are the very numbers the dropping filter compares.

use std::collections::{BTreeMap, HashMap};
use std::ops::ControlFlow;
use std::sync::Arc;

use anyhow::{bail, Result};
use arrow::array::{Array, ArrayRef, BooleanArray, Float64Array, Int64Array, StringArray};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::ops::{with_column, BuildCtx, DocBatch, DropMark, OpOutput, ParamDoc};
use crate::pipeline::spec::SpecError;
pub use crate::stats::profile::Threshold;
use crate::text::words::Segmenter;

/// The keys every rule filter takes besides its own parameters.
#[derive(Debug, Default, Deserialize)]
pub struct LanguageKeys {
    /// Column holding each document's language (as the `lang` op writes it).
    #[serde(default)]
    pub lang_column: Option<String>,
    /// Parameter overrides per language code.
    #[serde(default)]
    pub languages: BTreeMap<String, toml::Table>,
    #[serde(default)]
    pub mode: Mode,
}

/// What a rule filter does with the rules' outcome.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Drop a document at the first rule it fails (the published filters).
    #[default]
    Drop,
    /// Keep every document and write each rule's signal as a column.
    Annotate,
}

/// The `mode` key, as every rule filter documents it.
pub const MODE_PARAM: ParamDoc = ParamDoc {
    name: "mode",
    kind: "string",
    default: "\"drop\"",
    doc: "\"annotate\": keep every document, write the signals as columns (for `select`)",
};

/// The shape of a rule filter's keys: its own parameters (`T`) and the
/// keys every rule filter takes (`LanguageKeys`).
pub fn shape<T: DeserializeOwned + serde::Serialize + Default>() -> crate::ops::ConfigShape {
    let mut s = crate::ops::shape::<T>();
    s.keys.extend(
        ["lang_column", "languages", "mode"]
            .iter()
            .map(|k| k.to_string()),
    );
    s.defaults
        .insert("lang_column".into(), DEFAULT_LANG_COLUMN.into());
    s.defaults.insert("mode".into(), "drop".into());
    s
}

/// The column a rule filter reads languages from unless `lang_column` says.
const DEFAULT_LANG_COLUMN: &str = "lang";

/// A filter's parameters for each language.
pub struct LanguageRules<T> {
    pub default: T,
    pub by_lang: HashMap<String, T>,
    pub lang_column: String,
    pub mode: Mode,
}

impl<T: DeserializeOwned> LanguageRules<T> {
    /// Builds the parameters from the step's table. `builtin` gives, per
    /// language, TOML overrides that make the published rules sensible for it.
    pub fn build(
        ctx: &BuildCtx<'_>,
        builtin: &[(&str, &str)],
    ) -> Result<LanguageRules<T>, SpecError> {
        let mut base = ctx.step.params.clone();
        let keys = LanguageKeys {
            lang_column: match base.remove("lang_column") {
                Some(toml::Value::String(s)) => Some(s),
                Some(_) => {
                    return Err(ctx.error("lang_column", "lang_column must be a string".into()))
                }
                None => None,
            },
            languages: match base.remove("languages") {
                Some(v) => v.try_into().map_err(|e| {
                    ctx.error(
                        "languages",
                        format!("`languages` must be tables of overrides: {e}"),
                    )
                })?,
                None => BTreeMap::new(),
            },
            mode: match base.remove("mode") {
                Some(v) => v.try_into().map_err(|_| {
                    ctx.error("mode", "mode must be \"drop\" or \"annotate\"".into())
                })?,
                None => Mode::Drop,
            },
        };
        let decode = |table: toml::Table| -> Result<T, SpecError> {
            ctx.spec.decode(
                crate::pipeline::spec::Section::Step(ctx.step.index),
                toml::Value::Table(table),
            )
        };
        let default = decode(base.clone())?;
        let mut by_lang = HashMap::new();
        let mut codes: Vec<String> = builtin.iter().map(|(c, _)| c.to_string()).collect();
        codes.extend(keys.languages.keys().cloned());
        for code in codes {
            let mut table = base.clone();
            if let Some((_, src)) = builtin.iter().find(|(c, _)| *c == code) {
                let over: toml::Table =
                    toml::from_str(src).expect("built-in language rules are valid TOML");
                table.extend(over);
            }
            if let Some(over) = keys.languages.get(&code) {
                table.extend(over.clone());
            }
            by_lang.insert(code, decode(table)?);
        }
        Ok(LanguageRules {
            default,
            by_lang,
            lang_column: keys
                .lang_column
                .unwrap_or_else(|| DEFAULT_LANG_COLUMN.into()),
            mode: keys.mode,
        })
    }

    /// Annotating, the thresholds `of(params)` for the default parameters,
    /// then those of each language that differ (in code order).
    pub fn thresholds(&self, of: impl Fn(&T) -> Vec<Threshold>) -> Vec<Threshold> {
        if self.mode != Mode::Annotate {
            return vec![];
        }
        let default = of(&self.default);
        let mut out = default.clone();
        let mut codes: Vec<&String> = self.by_lang.keys().collect();
        codes.sort();
        for code in codes {
            for mut t in of(&self.by_lang[code]) {
                if !default.contains(&t) {
                    t.lang = Some(code.clone());
                    out.push(t);
                }
            }
        }
        out
    }

    /// The parameters of every language, the default first.
    pub fn all(&self) -> impl Iterator<Item = &T> {
        std::iter::once(&self.default).chain(self.by_lang.values())
    }

    /// The parameters and segmenter of each row; the language comes from
    /// the lang column when the batch has one.
    pub fn per_row(&self, batch: &DocBatch) -> Vec<(&T, Segmenter)> {
        let langs = batch
            .data
            .column_by_name(&self.lang_column)
            .and_then(|c| arrow::compute::cast(c, &arrow::datatypes::DataType::Utf8).ok())
            .and_then(|c| c.as_any().downcast_ref::<StringArray>().cloned());
        (0..batch.num_rows())
            .map(|i| {
                let lang = langs
                    .as_ref()
                    .and_then(|l| (!l.is_null(i)).then(|| l.value(i)));
                let params = lang
                    .and_then(|l| self.by_lang.get(l))
                    .unwrap_or(&self.default);
                (params, Segmenter::for_lang(lang))
            })
            .collect()
    }

    /// Runs `rules(text, segmenter, params, verdict)` on every row: drops
    /// the rows that fail, or writes the `signals` of every row.
    pub fn apply(
        &self,
        batch: DocBatch,
        signals: &Signals,
        rules: impl Fn(&str, &Segmenter, &T, &mut Verdict<'_>) -> ControlFlow<String>,
    ) -> Result<OpOutput> {
        let rows = self.per_row(&batch);
        let texts = batch.texts();
        match self.mode {
            Mode::Drop => {
                let mut drops = Vec::with_capacity(texts.len());
                for (text, (params, seg)) in texts.iter().zip(&rows) {
                    drops.push(
                        match rules(text.unwrap_or(""), seg, params, &mut Verdict::Drop) {
                            ControlFlow::Break(reason) => Some(DropMark::new(reason)),
                            ControlFlow::Continue(()) => None,
                        },
                    );
                }
                Ok(OpOutput::new(batch, drops))
            }
            Mode::Annotate => {
                let mut table = signals.table(texts.len());
                for (i, (text, (params, seg))) in texts.iter().zip(&rows).enumerate() {
                    // A document that cannot be measured ends its rules
                    // early: what it did not reach stays null.
                    let _ = rules(text.unwrap_or(""), seg, params, &mut table.row(i));
                }
                let n = texts.len();
                let batch = signals.write(batch, table)?;
                Ok(OpOutput::new(batch, vec![None; n]))
            }
        }
    }
}

/// A measured signal.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Signal {
    Count(usize),
    Ratio(f64),
    Flag(bool),
}

/// Where a filter's rules report, one after the other.
pub enum Verdict<'a> {
    /// Stop at the first rule the document fails, naming it.
    Drop,
    /// Record every signal of the document (its row of the table).
    Annotate(&'a mut [Option<Signal>]),
}

impl Verdict<'_> {
    /// A rule: the signal it measured (the `signal`-th column) and whether
    /// the document fails it; `reason` names the drop.
    pub fn rule(
        &mut self,
        signal: usize,
        value: Signal,
        fails: bool,
        reason: impl FnOnce() -> String,
    ) -> ControlFlow<String> {
        match self {
            Verdict::Drop if fails => ControlFlow::Break(reason()),
            Verdict::Drop => ControlFlow::Continue(()),
            Verdict::Annotate(row) => {
                row[signal] = Some(value);
                ControlFlow::Continue(())
            }
        }
    }

    /// A document the rules cannot measure (no text): dropped as
    /// `reason`, or annotated with nulls.
    pub fn unmeasurable(&mut self, reason: &str) -> ControlFlow<String> {
        ControlFlow::Break(reason.to_string())
    }
}

/// The signal columns a filter writes in annotate mode, in the order its
/// rules number them.
pub struct Signals {
    pub columns: Vec<(String, SignalKind)>,
}

/// The type of a signal column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignalKind {
    /// Int64: a count.
    Count,
    /// Float64: a share, a mean, a ratio.
    Ratio,
    /// Boolean: whether something was found.
    Flag,
}

/// The signals of a batch, a row after the other.
pub struct SignalTable {
    width: usize,
    cells: Vec<Option<Signal>>,
}

impl SignalTable {
    pub fn row(&mut self, i: usize) -> Verdict<'_> {
        Verdict::Annotate(&mut self.cells[i * self.width..(i + 1) * self.width])
    }
}

impl Signals {
    pub fn new(columns: &[(&str, SignalKind)]) -> Signals {
        Signals {
            columns: columns.iter().map(|(n, k)| (n.to_string(), *k)).collect(),
        }
    }

    pub fn table(&self, rows: usize) -> SignalTable {
        SignalTable {
            width: self.columns.len(),
            cells: vec![None; rows * self.columns.len()],
        }
    }

    /// Adds the table's columns to the batch (replacing any of the same
    /// name).
    pub fn write(&self, mut batch: DocBatch, table: SignalTable) -> Result<DocBatch> {
        let rows = batch.num_rows();
        for (c, (name, kind)) in self.columns.iter().enumerate() {
            let cells = (0..rows).map(|r| table.cells[r * table.width + c]);
            let mut wrong = None;
            let array: ArrayRef = match kind {
                SignalKind::Count => Arc::new(
                    cells
                        .map(|v| match v {
                            Some(Signal::Count(n)) => Some(n as i64),
                            None => None,
                            other => {
                                wrong = Some(other);
                                None
                            }
                        })
                        .collect::<Int64Array>(),
                ),
                SignalKind::Ratio => Arc::new(
                    cells
                        .map(|v| match v {
                            Some(Signal::Ratio(x)) => Some(x),
                            None => None,
                            other => {
                                wrong = Some(other);
                                None
                            }
                        })
                        .collect::<Float64Array>(),
                ),
                SignalKind::Flag => Arc::new(
                    cells
                        .map(|v| match v {
                            Some(Signal::Flag(b)) => Some(b),
                            None => None,
                            other => {
                                wrong = Some(other);
                                None
                            }
                        })
                        .collect::<BooleanArray>(),
                ),
            };
            if let Some(v) = wrong {
                bail!("bug: signal `{name}` is a {kind:?} column but was given {v:?}");
            }
            batch = with_column(batch, name, array)?;
        }
        Ok(batch)
    }
}

/// Safe ratio: 0 when the denominator is 0.
pub fn ratio(num: usize, den: usize) -> f64 {
    if den == 0 {
        0.0
    } else {
        num as f64 / den as f64
    }
}

/// Counts elements that repeat an earlier identical one, and their total
/// length in characters (datatrove's `find_duplicates`).
pub fn find_duplicates<'a>(items: impl IntoIterator<Item = &'a str>) -> (usize, usize) {
    let mut seen = std::collections::HashSet::new();
    let (mut n, mut chars) = (0, 0);
    for it in items {
        if !seen.insert(it) {
            n += 1;
            chars += crate::text::pystr::len(it);
        }
    }
    (n, chars)
}

#[cfg(test)]
mod tests {
    use crate::text::words::UNSPACED_LANGS;

    /// Every language segmented per character has built-in rules in every
    /// filter: the English defaults would drop all of it.
    #[test]
    fn every_unspaced_language_has_built_in_rules() {
        let lists: [(&str, &[(&str, &str)]); 4] = [
            ("gopher_quality", crate::ops::quality::gopher::QUALITY_LANGS),
            (
                "gopher_repetition",
                crate::ops::quality::gopher::REPETITION_LANGS,
            ),
            ("c4_quality", crate::ops::quality::c4::LANGS),
            ("fineweb_quality", crate::ops::quality::fineweb::LANGS),
        ];
        for (op, list) in lists {
            for lang in UNSPACED_LANGS {
                let (_, src) = list
                    .iter()
                    .find(|(c, _)| c == lang)
                    .unwrap_or_else(|| panic!("{op} has no rules for {lang}"));
                assert!(toml::from_str::<toml::Table>(src).is_ok(), "{op} {lang}");
            }
        }
    }
}
