//! `perplexity`: CCNet's document score. Each line of a document is scored
//! by a KenLM n-gram model (ARPA or KenLM's probing binary, read natively
//! by `models::kenlm`) as KenLM's `Model.score(line, bos=True, eos=True)`
//! does, and the document's perplexity is 10^(−Σ log10 p / N), N the
//! tokens plus one end of sentence per line. One model, or a folder with
//! one per language (chosen by the `lang` column).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Result;
use arrow::array::{Array, Float64Array, StringArray};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;

use crate::models::kenlm::Model;
use crate::ops::{
    shape, with_column, BuildCtx, DocBatch, Op, OpInfo, OpKind, OpOutput, ParamDoc, StreamOp,
};
use crate::pipeline::spec::SpecError;

/// How a line is normalised before it is tokenized and scored.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Normalize {
    /// As it is (the text is what the model was trained on).
    #[default]
    None,
    /// CCNet's `text_normalizer.normalize`: lower case, accents stripped,
    /// digits to 0, its Unicode punctuation mapped, control characters
    /// removed.
    Ccnet,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
struct Config {
    model: PathBuf,
    tokenizer: Option<PathBuf>,
    normalize: Normalize,
    lang_column: String,
    column: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            // Required (its ParamDoc says so): checked by BuildCtx::config.
            model: Default::default(),
            tokenizer: None,
            normalize: Normalize::None,
            lang_column: "lang".into(),
            column: "perplexity".into(),
        }
    }
}

pub const INFO: OpInfo = OpInfo {
    name: "perplexity",
    kind: OpKind::Stream,
    summary: "Scores documents with a KenLM n-gram model (ARPA or KenLM probing binary), as CCNet did for \
              LLaMA's web data: adds `perplexity`, 10^(-sum of log10 p / tokens), each line scored with \
              <s> and </s> exactly as KenLM's Model.score.",
    params: &[
        ParamDoc { name: "model", kind: "path", default: "required", doc: "a KenLM model (.arpa, .arpa.gz, or a probing binary), or a folder of <lang>.arpa / <lang>.arpa.bin / <lang>.binary, one per language" },
        ParamDoc { name: "tokenizer", kind: "path", default: "none", doc: "the tokenizer.json the model's text was tokenized with; none: the text's own whitespace-separated words" },
        ParamDoc { name: "normalize", kind: "string", default: "\"none\"", doc: "\"none\", or \"ccnet\": CCNet's normalisation of each line before tokenizing" },
        ParamDoc { name: "lang_column", kind: "string", default: "\"lang\"", doc: "with a folder of models: the column whose value picks the model" },
        ParamDoc { name: "column", kind: "string", default: "\"perplexity\"", doc: "the column the perplexity goes to" },
    ],
    drop_reasons: &[],
    outputs: &[],
    build,
    config: shape::<Config>,
    example: r#"
[[step]]
op = "perplexity"
model = "fixtures/models/kenlm/en.arpa"   # lower-case words, as the speeches it was trained on
"#,
    about: r#"
The score of CCNet (Wenzek et al. 2020) with which LLaMA's Common Crawl data
was split into head, middle and tail. Each non-blank line of a document is
normalised (`normalize`), tokenized (`tokenizer`, else split on
whitespace) and scored by the n-gram model from `<s>` to `</s>`; the
document's perplexity is 10^(−Σ log10 p / N), N the tokens plus one `</s>`
per line (CCNet's `DocLM`). A line's score equals KenLM's
`Model.score(line, bos=True, eos=True)` bit for bit: the model is read as
KenLM reads it (its probing hash tables, f32 arithmetic, the same back-off
walk), from an ARPA file or KenLM's probing binary (`build_binary`, as
CCNet publishes its models), mapped rather than copied; trie binaries are
refused with the command that converts them. Words the model does not know
score as `<unk>`.

`model` may be a folder holding one model per language, named
`<lang>.arpa`, `<lang>.arpa.gz`, `<lang>.arpa.bin`, `<lang>.binary` or
`<lang>.bin` (CCNet's naming); the value of `lang_column` picks it, and a
document in a language without a model, or with no text, gets a null
perplexity. `normalize = "ccnet"` applies CCNet's `normalize` to each
line (lower case, accents stripped, digits to 0, its Unicode punctuation
mapped, control characters removed); CCNet itself normalised a whole
document at once, which removes its newlines and scores it as one line.
See [lm.md](lm.md).
"#,
};

pub struct Perplexity {
    /// One model, or one per language.
    models: Models,
    tokenizer: Option<Arc<tokenizers::Tokenizer>>,
    normalize: Normalize,
    lang_column: String,
    column: String,
}

enum Models {
    One(Arc<Model>),
    ByLang(BTreeMap<String, Arc<Model>>),
}

const MODEL_SUFFIXES: [&str; 5] = [".arpa", ".arpa.gz", ".arpa.bin", ".binary", ".bin"];

fn load_folder(dir: &Path) -> Result<BTreeMap<String, Arc<Model>>, String> {
    let mut out = BTreeMap::new();
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    let mut files: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    files.sort();
    for f in files {
        let name = f
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let Some(suffix) = MODEL_SUFFIXES.iter().find(|s| name.ends_with(*s)) else {
            continue;
        };
        let lang = name[..name.len() - suffix.len()].to_string();
        if lang.is_empty() || lang.contains('.') {
            continue;
        }
        if out.contains_key(&lang) {
            return Err(format!(
                "{} holds two models for `{lang}`: keep one",
                dir.display()
            ));
        }
        let m = Model::load(&f).map_err(|e| format!("{e:#}"))?;
        out.insert(lang, Arc::new(m));
    }
    if out.is_empty() {
        return Err(format!(
            "{} holds no model: name them <lang>.arpa, <lang>.arpa.bin or <lang>.binary",
            dir.display()
        ));
    }
    Ok(out)
}

fn build(ctx: &BuildCtx<'_>) -> Result<Op, SpecError> {
    let c: Config = ctx.config()?;
    let models = if c.model.is_dir() {
        Models::ByLang(load_folder(&c.model).map_err(|e| ctx.error("model", e))?)
    } else if c.model.exists() {
        Models::One(Arc::new(
            Model::load(&c.model).map_err(|e| ctx.error("model", format!("{e:#}")))?,
        ))
    } else {
        return Err(ctx.error(
            "model",
            format!(
                "cannot read the model {}: it does not exist; train one with `sluice train-lm <spec>`, \
                 or name a KenLM ARPA or binary file",
                c.model.display()
            ),
        ));
    };
    let tokenizer = match &c.tokenizer {
        None => None,
        Some(p) if p.extension().is_some_and(|e| e == "model") => {
            return Err(ctx.error(
                "tokenizer",
                format!(
                    "{} is a SentencePiece model: sluice reads tokenizers as tokenizer.json; convert it \
                     with transformers (`LlamaTokenizerFast(vocab_file=...).save_pretrained(dir)`) and name \
                     the tokenizer.json it writes",
                    p.display()
                ),
            ))
        }
        Some(p) => Some(Arc::new(
            crate::tokenizer::load::load_tokenizer(p)
                .map_err(|e| ctx.error("tokenizer", format!("{e:#}")))?,
        )),
    };
    Ok(Op::Stream(Box::new(Perplexity {
        models,
        tokenizer,
        normalize: c.normalize,
        lang_column: c.lang_column,
        column: c.column,
    })))
}

/// CCNet's `text_normalizer.normalize(line)` (accent, case, numbers, punct=1).
pub fn ccnet_normalize(line: &str) -> String {
    let line = line.trim();
    let mut out = String::with_capacity(line.len());
    // Lower case first, then NFD without nonspacing marks (CCNet keeps the
    // decomposed form), digits to 0, its punctuation table, no controls.
    let lower = line.to_lowercase();
    for c in lower.nfd() {
        use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
        match c.general_category() {
            GeneralCategory::NonspacingMark => continue,
            GeneralCategory::DecimalNumber => {
                out.push('0');
                continue;
            }
            _ => {}
        }
        if matches!(c as u32, 0..=31 | 127..=159) {
            continue;
        }
        match c {
            '，' | '、' => out.push(','),
            '。' => out.push('.'),
            '„' | '”' | '“' | '«' | '»' | '」' | '「' | '《' | '》' => out.push('"'),
            '´' | '’' => out.push('\''),
            '∶' | '：' => out.push(':'),
            '？' => out.push('?'),
            '！' => out.push('!'),
            '（' => out.push('('),
            '）' => out.push(')'),
            '；' => out.push(';'),
            '–' | '━' | '►' => out.push('-'),
            '—' => out.push_str(" - "),
            '．' => out.push_str(". "),
            '～' => out.push('~'),
            '…' => out.push_str("..."),
            '〈' => out.push('<'),
            '〉' => out.push('>'),
            '【' => out.push('['),
            '】' => out.push(']'),
            '％' => out.push('%'),
            c => out.push(c),
        }
    }
    out
}

impl Perplexity {
    /// (Σ log10 p, tokens + ends of sentence) of one document.
    fn score(&self, model: &Model, text: &str) -> Result<(f64, u64)> {
        let (mut logp, mut n) = (0f64, 0u64);
        for line in text.split('\n') {
            if line.trim().is_empty() {
                continue;
            }
            let line = match self.normalize {
                Normalize::None => std::borrow::Cow::Borrowed(line),
                Normalize::Ccnet => std::borrow::Cow::Owned(ccnet_normalize(line)),
            };
            let (score, tokens) = match &self.tokenizer {
                None => (
                    model.score(&line, true, true),
                    line.split_ascii_whitespace().count(),
                ),
                Some(t) => {
                    let enc = t
                        .encode(line.as_ref(), false)
                        .map_err(|e| anyhow::anyhow!("perplexity: cannot tokenize a line: {e}"))?;
                    let pieces = enc.get_tokens().join(" ");
                    (
                        model.score(&pieces, true, true),
                        pieces.split_ascii_whitespace().count(),
                    )
                }
            };
            logp += score as f64;
            n += tokens as u64 + 1;
        }
        Ok((logp, n))
    }
}

impl StreamOp for Perplexity {
    fn apply(&self, batch: DocBatch) -> Result<OpOutput> {
        let texts = batch.texts();
        let langs: Option<StringArray> = match &self.models {
            Models::One(_) => None,
            Models::ByLang(_) => {
                let col = batch
                    .data
                    .column_by_name(&self.lang_column)
                    .ok_or_else(|| {
                        anyhow::anyhow!(
                            "perplexity: a folder of models needs the language in column `{}` \
                         (run `lang` before, or set lang_column)",
                            self.lang_column
                        )
                    })?;
                let col = arrow::compute::cast(col, &arrow::datatypes::DataType::Utf8)?;
                Some(
                    col.as_any()
                        .downcast_ref::<StringArray>()
                        .expect("Utf8")
                        .clone(),
                )
            }
        };
        let values: Vec<Option<f64>> = (0..batch.num_rows())
            .into_par_iter()
            .with_min_len(16)
            .map(|i| {
                let model = match (&self.models, &langs) {
                    (Models::One(m), _) => Some(m),
                    (Models::ByLang(ms), Some(l)) if !l.is_null(i) => ms.get(l.value(i)),
                    _ => None,
                };
                let Some(model) = model else {
                    return Ok(None);
                };
                let (logp, n) = self.score(model, texts.value(i))?;
                Ok((n > 0).then(|| 10f64.powf(-logp / n as f64)))
            })
            .collect::<Result<_>>()?;
        let out = with_column(batch, &self.column, Arc::new(Float64Array::from(values)))?;
        Ok(OpOutput::new(out, vec![]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ccnet_normalisation() {
        // As cc_net's text_normalizer.normalize: lower, NFD without marks
        // (kept decomposed), digits 0, punctuation mapped, controls gone.
        assert_eq!(
            ccnet_normalize("  Été 2024 — «Paris»！\t"),
            "ete 0000  -  \"paris\"!"
        );
        assert_eq!(ccnet_normalize("第１２章：你好。"), "第00章:你好.");
        assert_eq!(ccnet_normalize("한"), "\u{1112}\u{1161}\u{11ab}");
    }
}
