//! `lang`: language identification. Adds `lang` (ISO 639-1 where one exists,
//! else 639-3; the same codes from both backends) and `lang_score`, and
//! optionally keeps only some languages or confident predictions.
//!
//! Backends: `whatlang` (built in, no model) and `fasttext` (a local model
//! such as lid.176.ftz/.bin or GlotLID, read by `models::fasttext`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;
use arrow::array::{Float32Array, StringArray};
use serde::{Deserialize, Serialize};

use crate::models::fasttext::{load_fasttext, FastTextModel};
use crate::ops::{
    shape, with_column, BuildCtx, DocBatch, DropMark, Op, OpInfo, OpKind, OpOutput, ParamDoc,
    StreamOp,
};
use crate::pipeline::spec::SpecError;

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Whatlang,
    Fasttext,
}

/// `min_score = 0.5`, or per language as FineWeb-2 sets it:
/// `min_score = { en = 0.65, zh = 0.5, "*" = 0.3 }` (`"*"`: the languages
/// not named; without it they have no threshold).
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum MinScore {
    All(f32),
    PerLanguage(BTreeMap<String, f32>),
}

impl<'de> Deserialize<'de> for MinScore {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            All(f32),
            PerLanguage(BTreeMap<String, f32>),
        }
        match Raw::deserialize(d) {
            Ok(Raw::All(s)) => Ok(MinScore::All(s)),
            Ok(Raw::PerLanguage(m)) => Ok(MinScore::PerLanguage(m)),
            Err(_) => Err(serde::de::Error::custom(
                "expected a number from 0 to 1, or a table of language = number \
                 (e.g. { en = 0.65, zh = 0.5, \"*\" = 0.3 })",
            )),
        }
    }
}

impl MinScore {
    fn for_language(&self, code: &str) -> Option<f32> {
        match self {
            MinScore::All(s) => Some(*s),
            MinScore::PerLanguage(m) => m.get(code).or_else(|| m.get("*")).copied(),
        }
    }

    fn values(&self) -> Vec<(String, f32)> {
        match self {
            MinScore::All(s) => vec![(String::new(), *s)],
            MinScore::PerLanguage(m) => {
                m.iter().map(|(k, v)| (format!(" for `{k}`"), *v)).collect()
            }
        }
    }
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LangConfig {
    pub backend: Backend,
    /// The fastText model file (fasttext backend only).
    pub model: Option<PathBuf>,
    /// Keep only these languages (codes as the op writes them).
    pub keep: Option<Vec<String>>,
    /// Drop predictions scoring below this (one value, or per language).
    pub min_score: Option<MinScore>,
    /// The column the code is written to; the score goes to `<column>_score`.
    pub column: String,
    /// Only the first this many characters are used for prediction.
    pub max_chars: usize,
    /// Japanese is written with kana: a text without any that the model
    /// calls Japanese is Chinese (its probability goes to `zh`).
    pub ja_needs_kana: bool,
    /// A text written in Han characters (no kana, no Hangul, hardly any
    /// other letters) is Chinese: what the model gives to languages of other
    /// scripts goes to `zh`.
    pub han_text_is_chinese: bool,
}

impl Default for LangConfig {
    fn default() -> Self {
        Self {
            backend: Backend::Whatlang,
            model: Default::default(),
            keep: Default::default(),
            min_score: Default::default(),
            column: "lang".into(),
            max_chars: 10_000,
            ja_needs_kana: true,
            han_text_is_chinese: true,
        }
    }
}

fn is_han(c: char) -> bool {
    matches!(c, '\u{3400}'..='\u{4DBF}' | '\u{4E00}'..='\u{9FFF}' | '\u{F900}'..='\u{FAFF}' | '\u{20000}'..='\u{2FA1F}')
}

/// Letters of the text are Han but for a few (Latin names, units): at least
/// nine Han characters in ten letters, and no kana or Hangul. ASCII text
/// (most of a web crawl) is answered from its bytes.
fn is_han_text(text: &str) -> bool {
    if text.is_ascii() {
        return false;
    }
    let (mut han, mut other) = (0usize, 0usize);
    for c in text.chars() {
        if c.is_ascii() {
            other += c.is_ascii_alphabetic() as usize;
        } else if is_han(c) {
            han += 1;
        } else if is_kana(c)
            || matches!(c, '\u{AC00}'..='\u{D7AF}' | '\u{1100}'..='\u{11FF}' | '\u{3130}'..='\u{318F}')
        {
            return false; // Japanese or Korean
        } else if c.is_alphabetic() {
            other += 1;
        }
    }
    han > 0 && other * 9 <= han
}

/// Hiragana, katakana (and their extensions), half-width katakana.
fn is_kana(c: char) -> bool {
    matches!(c, '\u{3041}'..='\u{309F}' | '\u{30A0}'..='\u{30FF}' | '\u{31F0}'..='\u{31FF}' | '\u{FF66}'..='\u{FF9F}')
}

fn has_kana(text: &str) -> bool {
    !text.is_ascii() && text.chars().any(is_kana)
}

pub const INFO: OpInfo = OpInfo {
    name: "lang",
    kind: OpKind::Stream,
    summary: "Language identification: adds `lang` (ISO 639-1 where one exists, else 639-3) and \
              `lang_score`. With `keep` and/or `min_score` it also filters. The text is cleaned for \
              prediction (newlines to spaces, cut to `max_chars`) without changing the stored text.",
    params: &[
        ParamDoc { name: "backend", kind: "string", default: "\"whatlang\"", doc: "\"whatlang\" (built in) or \"fasttext\"" },
        ParamDoc { name: "model", kind: "path", default: "none", doc: "fastText model (lid.176.ftz/.bin, GlotLID); fasttext only" },
        ParamDoc { name: "keep", kind: "list", default: "all", doc: "languages to keep, e.g. [\"en\", \"zh\"]" },
        ParamDoc { name: "min_score", kind: "float or table", default: "none", doc: "drop predictions scoring below this; per language as a table, e.g. { en = 0.65, zh = 0.5, \"*\" = 0.3 } (\"*\": the others; unnamed languages without it: no threshold)" },
        ParamDoc { name: "column", kind: "string", default: "\"lang\"", doc: "output column; the score goes to <column>_score" },
        ParamDoc { name: "max_chars", kind: "integer", default: "10000", doc: "characters of the text used for prediction" },
        ParamDoc { name: "ja_needs_kana", kind: "bool", default: "true", doc: "a text without kana is not Japanese: `ja` goes to `zh`" },
        ParamDoc { name: "han_text_is_chinese", kind: "bool", default: "true", doc: "a text of Han characters (no kana, no Hangul): other scripts' languages go to `zh`" },
    ],
    drop_reasons: &["lang:<code>", "lang:low_score", "lang:unknown"],
    outputs: &[],
    build,
    config: shape::<LangConfig>,
    example: r#"
[[step]]
op = "lang"
keep = ["en", "zh"]
min_score = { en = 0.5, "*" = 0.3 }
"#,
    about: r#"
Language identification. Adds the language code (ISO 639-1 where one
exists, else 639-3; the same codes from both backends) to `column`
(`lang`) and its probability to `<column>_score`. With `keep` it drops the
other languages (`lang:<code>`), with `min_score` the predictions below it
(`lang:low_score`); with either set, a text no language is found for is
dropped as `lang:unknown` (without them it is kept).
`min_score` is one value, or per language as FineWeb-2 sets them:
`{ en = 0.65, zh = 0.5, "*" = 0.3 }`, `"*"` for the languages not named,
which otherwise have no threshold.

The backends: `whatlang` is built in; `fasttext` reads a fastText model
(`model`: lid.176.ftz/.bin, GlotLID). The text is cleaned for prediction
(newlines to spaces, cut to `max_chars`) without changing the stored text.
fastText models are read by sluice's own Rust reader (`.bin` and quantised
`.ftz`, all four losses), tested to give the C++ library's labels and
probabilities (within 1e-4) on 5,971 texts in 75 languages; it caches each
distinct word's vector per thread, which is where its speed comes from.

`ja_needs_kana` and `han_text_is_chinese` correct lid.176 on short Chinese
text: [spec.md, The rule filters, Languages](spec.md#the-rule-filters).
"#,
};

/// A prediction backend, shared by every task.
enum Model {
    Whatlang,
    Fasttext(Arc<FastTextModel>),
}

pub struct Lang {
    config: LangConfig,
    model: Model,
}

fn build(ctx: &BuildCtx<'_>) -> Result<Op, SpecError> {
    let config: LangConfig = ctx.config()?;
    let model = match config.backend {
        Backend::Whatlang => {
            if config.model.is_some() {
                return Err(ctx.error(
                    "model",
                    "the whatlang backend takes no model; set backend = \"fasttext\"".into(),
                ));
            }
            Model::Whatlang
        }
        Backend::Fasttext => {
            let path = config.model.as_ref().ok_or_else(|| {
                ctx.error(
                    "backend",
                    "the fasttext backend needs `model = \"path/to/lid.176.ftz\"`".into(),
                )
            })?;
            Model::Fasttext(Arc::new(
                load_fasttext(path).map_err(|e| ctx.error("model", e))?,
            ))
        }
    };
    if config.max_chars == 0 {
        return Err(ctx.error("max_chars", "max_chars must be at least 1".into()));
    }
    for (which, s) in config.min_score.iter().flat_map(MinScore::values) {
        if !(0.0..=1.0).contains(&s) {
            return Err(ctx.error(
                "min_score",
                format!("min_score{which} must be between 0 and 1, not {s}"),
            ));
        }
    }
    Ok(Op::Stream(Box::new(Lang { config, model })))
}

/// The text as the models expect it: one line, NUL-free, at most `max_chars` characters.
pub fn clean_for_prediction(text: &str, max_chars: usize) -> String {
    let end = text
        .char_indices()
        .nth(max_chars)
        .map_or(text.len(), |(i, _)| i);
    text[..end]
        .chars()
        .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
        .filter(|c| *c != '\0')
        .collect()
}

/// whatlang's ISO 639-3 codes as ISO 639-1 where one exists, spelt as lid.176 spells them.
pub fn iso639_1(code: &str) -> &str {
    match code {
        "epo" => "eo",
        "eng" => "en",
        "rus" => "ru",
        "cmn" => "zh",
        "spa" => "es",
        "por" => "pt",
        "ita" => "it",
        "ben" => "bn",
        "fra" => "fr",
        "deu" => "de",
        "ukr" => "uk",
        "kat" => "ka",
        "ara" => "ar",
        "hin" => "hi",
        "jpn" => "ja",
        "heb" => "he",
        "yid" => "yi",
        "pol" => "pl",
        "amh" => "am",
        "jav" => "jv",
        "kor" => "ko",
        "nob" => "no",
        "dan" => "da",
        "swe" => "sv",
        "fin" => "fi",
        "tur" => "tr",
        "nld" => "nl",
        "hun" => "hu",
        "ces" => "cs",
        "ell" => "el",
        "bul" => "bg",
        "bel" => "be",
        "mar" => "mr",
        "kan" => "kn",
        "ron" => "ro",
        "slv" => "sl",
        "hrv" => "hr",
        "srp" => "sr",
        "mkd" => "mk",
        "lit" => "lt",
        "lav" => "lv",
        "est" => "et",
        "tam" => "ta",
        "vie" => "vi",
        "urd" => "ur",
        "tha" => "th",
        "guj" => "gu",
        "uzb" => "uz",
        "pan" => "pa",
        "aze" => "az",
        "ind" => "id",
        "tel" => "te",
        "pes" => "fa",
        "mal" => "ml",
        "ori" => "or",
        "mya" => "my",
        "nep" => "ne",
        "sin" => "si",
        "khm" => "km",
        "tuk" => "tk",
        "aka" => "ak",
        "zul" => "zu",
        "sna" => "sn",
        "afr" => "af",
        "lat" => "la",
        "slk" => "sk",
        "cat" => "ca",
        "tgl" => "tl",
        "hye" => "hy",
        "cym" => "cy",
        other => other,
    }
}

impl Lang {
    /// The top language and its score, or `None` when the backend has no answer.
    pub fn predict(&self, text: &str) -> Result<Option<(String, f32)>> {
        match &self.model {
            Model::Whatlang => {
                let clean = clean_for_prediction(text, self.config.max_chars);
                Ok(whatlang::detect(&clean).map(|info| {
                    let code = iso639_1(info.lang().code());
                    let code = if code == "ja" && self.config.ja_needs_kana && !has_kana(&clean) {
                        "zh"
                    } else {
                        code
                    };
                    (code.to_string(), info.confidence() as f32)
                }))
            }
            Model::Fasttext(model) => {
                // The Rust reader splits on newlines like on spaces and reads
                // the whole text as one line, which is what the cleaning is
                // for with the C++ library: only the cut is needed.
                let end = text
                    .char_indices()
                    .nth(self.config.max_chars)
                    .map_or(text.len(), |(i, _)| i);
                let text = &text[..end];
                // Kana and Han are three-byte UTF-8 led by 0xE3..=0xE9 (or
                // 0xEF, 0xF0 for half-width and rare forms): a text without
                // such a byte (most of a crawl) skips both checks.
                let cjk = text
                    .bytes()
                    .any(|b| (0xE3..=0xE9).contains(&b) || b == 0xEF || b == 0xF0);
                let fold = self.config.ja_needs_kana && cjk && !has_kana(text);
                let han = self.config.han_text_is_chinese && cjk && is_han_text(text);
                let mut preds: Vec<(String, f32)> = model
                    .predict(
                        text,
                        if han {
                            8
                        } else if fold {
                            4
                        } else {
                            1
                        },
                        0.0,
                    )
                    .into_iter()
                    // lid.176: `en`; GlotLID: `cmn_Hani`.
                    .map(|(label, p)| {
                        (
                            iso639_1(label.split('_').next().unwrap_or(&label)).to_string(),
                            p,
                        )
                    })
                    .collect();
                // lid.176 takes short kana-less Chinese for Japanese, and
                // some pure-Han text for Hungarian or Korean: the share of
                // a language the text cannot be in is Chinese's.
                let impossible = |code: &str| {
                    (fold && code == "ja") || (han && !matches!(code, "zh" | "yue" | "wuu" | "ja"))
                };
                let moved: f32 = preds.iter().filter(|p| impossible(&p.0)).map(|p| p.1).sum();
                if moved > 0.0 {
                    preds.retain(|p| !impossible(&p.0));
                    match preds.iter_mut().find(|p| p.0 == "zh") {
                        Some(zh) => zh.1 += moved,
                        None => preds.push(("zh".into(), moved)),
                    }
                    preds.sort_by(|a, b| b.1.total_cmp(&a.1));
                }
                Ok(preds.into_iter().next())
            }
        }
    }

    fn judge(&self, pred: &Option<(String, f32)>) -> Option<DropMark> {
        let (code, score) = match pred {
            Some((c, s)) => (c.as_str(), *s),
            None => {
                return (self.config.keep.is_some() || self.config.min_score.is_some())
                    .then(|| DropMark::new("lang:unknown"))
            }
        };
        if let Some(keep) = &self.config.keep {
            if !keep.iter().any(|k| k == code) {
                return Some(DropMark::new(format!("lang:{code}")));
            }
        }
        let min = self
            .config
            .min_score
            .as_ref()
            .and_then(|m| m.for_language(code));
        if min.is_some_and(|m| score < m) {
            return Some(DropMark::new("lang:low_score"));
        }
        None
    }
}

impl StreamOp for Lang {
    fn apply(&self, batch: DocBatch) -> Result<OpOutput> {
        let preds: Vec<Option<(String, f32)>> = batch
            .texts()
            .iter()
            .map(|t| self.predict(t.unwrap_or("")))
            .collect::<Result<_>>()?;
        let drops: Vec<Option<DropMark>> = preds.iter().map(|p| self.judge(p)).collect();
        let codes: StringArray = preds
            .iter()
            .map(|p| p.as_ref().map(|(c, _)| c.as_str()))
            .collect();
        let scores: Float32Array = preds.iter().map(|p| p.as_ref().map(|(_, s)| *s)).collect();
        let batch = with_column(batch, &self.config.column, Arc::new(codes))?;
        let batch = with_column(
            batch,
            &format!("{}_score", self.config.column),
            Arc::new(scores),
        )?;
        Ok(OpOutput::new(batch, drops))
    }

    fn thresholds(&self) -> Vec<crate::stats::profile::Threshold> {
        use crate::stats::profile::Threshold;
        let column = format!("{}_score", self.config.column);
        match &self.config.min_score {
            None => vec![],
            Some(MinScore::All(v)) => vec![Threshold::new(&column, ">=", *v as f64)],
            Some(MinScore::PerLanguage(m)) => m
                .iter()
                .map(|(code, v)| Threshold {
                    lang: (code != "*").then(|| code.clone()),
                    ..Threshold::new(&column, ">=", *v as f64)
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn han_text_is_told_from_other_scripts() {
        assert!(is_han_text(
            "汪道涵在《两岸关系》杂志发表新年祝辞一年春事早耕耘"
        ));
        assert!(is_han_text(
            "国务院总理李鹏今天上午来到北京石景山发电总厂考察，了解了全年的GDP数据。"
        ));
        assert!(!is_han_text("近些年来、生活の中で"));
        assert!(!is_han_text("한국어 텍스트 漢字"));
        assert!(!is_han_text("A long English sentence with one 字."));
    }

    #[test]
    fn kana_tells_japanese_from_chinese() {
        assert!(has_kana("近些年来、生活の中で"));
        assert!(has_kana("ｶﾀｶﾅ"));
        assert!(!has_kana("近些年来，生活中必不可少的便是逛农贸市场。"));
    }

    #[test]
    fn cleans_without_splitting_characters() {
        assert_eq!(clean_for_prediction("a\nb\r\nc", 100), "a b  c");
        assert_eq!(clean_for_prediction("中文文本", 2), "中文");
        assert_eq!(clean_for_prediction("x\0y", 10), "xy");
    }

    #[test]
    fn whatlang_codes_are_iso639_1() {
        let lang = Lang {
            config: LangConfig {
                backend: Backend::Whatlang,
                model: None,
                keep: Some(vec!["en".into()]),
                min_score: None,
                column: "lang".into(),
                max_chars: 10_000,
                ja_needs_kana: true,
                han_text_is_chinese: true,
            },
            model: Model::Whatlang,
        };
        let en = lang
            .predict("All human beings are born free and equal in dignity and rights.")
            .unwrap();
        assert_eq!(en.as_ref().unwrap().0, "en");
        let zh = lang
            .predict("人人生而自由，在尊严和权利上一律平等。他们赋有理性和良心。")
            .unwrap();
        assert_eq!(zh.as_ref().unwrap().0, "zh");
        assert_eq!(lang.judge(&zh), Some(DropMark::new("lang:zh")));
        assert_eq!(lang.judge(&en), None);
    }
}
