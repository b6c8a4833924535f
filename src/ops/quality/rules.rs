//! What the rule-based quality filters share: per-language parameters picked
//! by the `lang` column, and the loop that applies a per-document rule.
//!
//! A filter's parameters are its step's keys (defaults: the published ones),
//! then built-in overrides for languages written without spaces (Chinese,
//! Japanese, Thai, …), then the user's `[step.languages.<code>]` tables.

use std::collections::{BTreeMap, HashMap};

use anyhow::Result;
use arrow::array::{Array, StringArray};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::ops::{BuildCtx, DocBatch, DropMark, OpOutput};
use crate::pipeline::spec::SpecError;
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
}

/// The shape of a rule filter's keys: its own parameters (`T`) and the
/// keys every rule filter takes (`LanguageKeys`).
pub fn shape<T: DeserializeOwned + serde::Serialize + Default>() -> crate::ops::ConfigShape {
    let mut s = crate::ops::shape::<T>();
    s.keys
        .extend(["lang_column".to_string(), "languages".to_string()]);
    s.defaults
        .insert("lang_column".into(), DEFAULT_LANG_COLUMN.into());
    s
}

/// The column a rule filter reads languages from unless `lang_column` says.
const DEFAULT_LANG_COLUMN: &str = "lang";

/// A filter's parameters for each language.
pub struct LanguageRules<T> {
    pub default: T,
    pub by_lang: HashMap<String, T>,
    pub lang_column: String,
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
        })
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

    /// Applies `judge(text, segmenter, params)` to every row.
    pub fn apply(
        &self,
        batch: DocBatch,
        judge: impl Fn(&str, &Segmenter, &T) -> Option<String>,
    ) -> Result<OpOutput> {
        let rows = self.per_row(&batch);
        let texts = batch.texts();
        let mut drops = Vec::with_capacity(texts.len());
        for (text, (params, seg)) in texts.iter().zip(&rows) {
            drops.push(judge(text.unwrap_or(""), seg, params).map(DropMark::new));
        }
        Ok(OpOutput::new(batch, drops))
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
