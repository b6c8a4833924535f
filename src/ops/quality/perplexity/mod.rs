//! `perplexity`: CCNet's document score. Each line of a document is scored
//! by a KenLM n-gram model (ARPA or KenLM's probing binary, read natively
//! by `models::kenlm`) as KenLM's `Model.score(line, bos=True, eos=True)`
//! does, and the document's perplexity is 10^(−Σ log10 p / N), N the
//! tokens plus one end of sentence per line. One model, or a folder with
//! one per language (chosen by the `lang` column). With `buckets` the op
//! is global (`buckets`): the per-language percentiles of the corpus's
//! perplexities are its cut-offs.

mod buckets;
mod cutoffs;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Result;
use arrow::array::{Array, Float64Array, StringArray};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::models::kenlm::Model;
use crate::ops::{
    shape, with_column, BuildCtx, DocBatch, Op, OpInfo, OpKind, OpOutput, ParamDoc, StreamOp,
};
use crate::pipeline::spec::SpecError;
use crate::tokenizer::lm::{LineNormalize, LmTokenizer};

#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
struct Config {
    model: PathBuf,
    tokenizer: Option<PathBuf>,
    normalize: LineNormalize,
    lang_column: String,
    column: String,
    /// Two percentiles (0..1) whose perplexities split each language into
    /// head / middle / tail.
    buckets: Option<Vec<f64>>,
    /// Fixed cut-offs per language instead of the corpus's percentiles, or
    /// CCNet's `cutoff.csv` holding them per percentile.
    cutoffs: Option<Cutoffs>,
    bucket_column: String,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(untagged)]
enum Cutoffs {
    Table(BTreeMap<String, Vec<f64>>),
    File(PathBuf),
}

impl Default for Config {
    fn default() -> Self {
        Self {
            // Required (its ParamDoc says so): checked by BuildCtx::config.
            model: Default::default(),
            tokenizer: None,
            normalize: LineNormalize::None,
            lang_column: "lang".into(),
            column: "perplexity".into(),
            buckets: None,
            cutoffs: None,
            bucket_column: "ppl_bucket".into(),
        }
    }
}

pub const INFO: OpInfo = OpInfo {
    name: "perplexity",
    kind: OpKind::StreamOrGlobal("with `buckets`"),
    summary: "Scores documents with a KenLM n-gram model (ARPA or KenLM probing binary), as CCNet did for \
              LLaMA's web data: adds `perplexity`, 10^(-sum of log10 p / tokens), each line scored with \
              <s> and </s> exactly as KenLM's Model.score. With `buckets` the step runs as a global op \
              (a pass over the corpus for the percentiles) and adds ppl_bucket.",
    params: &[
        ParamDoc { name: "model", kind: "path", default: "required", doc: "a KenLM model (.arpa, .arpa.gz, or a probing binary), or a folder of <lang>.arpa / <lang>.arpa.bin / <lang>.binary, one per language" },
        ParamDoc { name: "tokenizer", kind: "path", default: "none", doc: "the tokenization the model's text had: a SentencePiece unigram .model (CCNet's) or a tokenizer.json; none: the text's own words (split on ASCII whitespace, each Chinese, Japanese or Thai character a word), as train-lm's default" },
        ParamDoc { name: "normalize", kind: "string", default: "\"none\"", doc: "\"none\", or \"ccnet\": CCNet's normalisation of each line before tokenizing" },
        ParamDoc { name: "lang_column", kind: "string", default: "\"lang\"", doc: "with a folder of models: the column whose value picks the model" },
        ParamDoc { name: "column", kind: "string", default: "\"perplexity\"", doc: "the column the perplexity goes to" },
        ParamDoc { name: "buckets", kind: "list", default: "none", doc: "two percentiles, e.g. [0.3, 0.6]: per language, below the first's perplexity is head, below the second's middle, else tail (a global pass)" },
        ParamDoc { name: "cutoffs", kind: "table or path", default: "none", doc: "fixed cut-offs instead, per language: { en = [340.0, 590.0], \"*\" = [...] }, or CCNet's cutoff.csv, read at the percentiles of buckets (default [0.3, 0.6]) (a streaming op)" },
        ParamDoc { name: "bucket_column", kind: "string", default: "\"ppl_bucket\"", doc: "the column the bucket goes to (with buckets or cutoffs)" },
    ],
    drop_reasons: &[],
    outputs: &[],
    build,
    config: shape::<Config>,
    example: r#"
[[step]]
op = "perplexity"
model = "fixtures/models/kenlm/en.arpa"   # speeches, CCNet-normalised: add normalize = "ccnet"
"#,
    about: r#"
The score of CCNet (Wenzek et al. 2020) with which LLaMA's Common Crawl data
was split into head, middle and tail. Each non-blank line of a document is
normalised (`normalize`), tokenized (`tokenizer`, else split on ASCII
whitespace as KenLM splits, each character of a script written without
spaces, such as Chinese, a word of its own: the words `sluice train-lm`
counts by default) and scored by the n-gram model from `<s>` to `</s>`; the
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
`<lang>.bin` (CCNet's naming), each with its SentencePiece model as
`<lang>.sp.model` beside it when its text was tokenized (CCNet's
`lm_sp/` layout; used when `tokenizer` is not set), or subfolders
`<lang>/` each holding a `model.binary` or `model.arpa` (what `sluice
train-lm` writes with `dir = "models/<lang>"`; the binary is loaded when
both are there) and perhaps an `sp.model`; the value of
`lang_column` picks them, and a
document in a language without a model, or with no text, gets a null
perplexity. `normalize = "ccnet"` applies CCNet's `normalize` to each
line (lower case, accents stripped, digits to 0, its Unicode punctuation
mapped, control characters removed); `tokenizer` a SentencePiece unigram
`.model` such as CCNet's `<lang>.sp.model` (segmented as sentencepiece
segments, see lm.md) or a `tokenizer.json`, whose pieces, space-separated, are
what is scored. CCNet itself normalised a whole
document at once, which removes its newlines and scores it as one line.

`buckets = [0.3, 0.6]` splits each language as CCNet split LLaMA's data:
the step becomes global, scores every document, finds per value of
`lang_column` (or over all documents when the rows have no such column)
the perplexities at those percentiles of the corpus, and writes
`ppl_bucket`: `head` below the first, `middle` below the second, `tail`
from it on. `cutoffs = { en = [340.0, 590.0], zh = [...] }` gives the
cut-offs instead, or `cutoffs = "cutoff.csv"` reads them from CCNet's file
(a row per percentile 0 to 100, a column per language) at the percentiles
of `buckets` (CCNet's 30 and 60 when it is not set); the step then stays
streaming. The key `"*"` holds the cut-offs of every language
without its own, and of rows without a language; a language with no
cut-offs at all gets a null bucket, as does a document without a
perplexity. See [lm.md](lm.md).
"#,
};

pub struct Perplexity {
    /// One model, or one per language.
    models: Models,
    /// The model's tokenization: `tokenizer`, else the text's own words.
    tokenizer: Arc<LmTokenizer>,
    /// With a folder of models and no `tokenizer`: each language's
    /// `<lang>.sp.model` beside its model (CCNet's layout).
    lang_tokenizers: BTreeMap<String, Arc<LmTokenizer>>,
    normalize: LineNormalize,
    lang_column: String,
    column: String,
    cutoffs: Option<BTreeMap<String, Vec<f64>>>,
    bucket_column: String,
}

enum Models {
    One(Arc<Model>),
    ByLang(BTreeMap<String, Arc<Model>>),
}

/// The cut-offs key of every language without its own (and of rows with
/// no language column, or a null language).
const ANY_LANG: &str = "*";

const MODEL_SUFFIXES: [&str; 5] = [".arpa", ".arpa.gz", ".arpa.bin", ".binary", ".bin"];

/// A `<lang>/` subfolder's model, the first of these it holds.
const SUBFOLDER_MODELS: [&str; 5] = [
    "model.binary",
    "model.arpa.bin",
    "model.bin",
    "model.arpa",
    "model.arpa.gz",
];

/// A folder's models by language: files `<lang>.arpa` (and the other
/// suffixes), or subfolders `<lang>/` holding `model.arpa` (what `sluice
/// train-lm` writes with `dir = ".../<lang>"`). Each with the path of its
/// SentencePiece model when there is one: `<lang>.sp.model` beside a file,
/// `sp.model` in a subfolder.
/// A language's model, and its SentencePiece model when it has one.
type LangModel = (Arc<Model>, Option<PathBuf>);

fn load_folder(dir: &Path) -> Result<BTreeMap<String, LangModel>, String> {
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
        let (lang, model, tokenizer) = if f.is_dir() {
            // train-lm writes model.arpa and model.binary: the binary,
            // mapped rather than parsed, is the one loaded.
            let Some(model) = SUBFOLDER_MODELS
                .iter()
                .map(|m| f.join(m))
                .find(|p| p.exists())
            else {
                continue;
            };
            (name.clone(), model, f.join("sp.model"))
        } else {
            let Some(suffix) = MODEL_SUFFIXES.iter().find(|s| name.ends_with(*s)) else {
                continue;
            };
            let lang = name[..name.len() - suffix.len()].to_string();
            let sp = dir.join(format!("{lang}.sp.model"));
            (lang, f.clone(), sp)
        };
        if lang.is_empty() || lang.contains('.') {
            continue;
        }
        if out.contains_key(&lang) {
            return Err(format!(
                "{} holds two models for `{lang}`: keep one",
                dir.display()
            ));
        }
        let m = Model::load(&model).map_err(|e| format!("{e:#}"))?;
        out.insert(lang, (Arc::new(m), tokenizer.exists().then_some(tokenizer)));
    }
    if out.is_empty() {
        return Err(format!(
            "{} holds no model: name them <lang>.arpa, <lang>.arpa.bin or <lang>.binary, \
             or <lang>/model.arpa (sluice train-lm with dir = \"{}/<lang>\")",
            dir.display(),
            dir.display()
        ));
    }
    Ok(out)
}

fn build(ctx: &BuildCtx<'_>) -> Result<Op, SpecError> {
    let c: Config = ctx.config()?;
    // With a folder of models and no `tokenizer`: each language's
    // SentencePiece model beside its model (CCNet's layout).
    let mut lang_tokenizers = BTreeMap::new();
    let models = if c.model.is_dir() {
        let found = load_folder(&c.model).map_err(|e| ctx.error("model", e))?;
        for (lang, (_, sp)) in &found {
            if let (Some(p), None) = (sp, &c.tokenizer) {
                let m = LmTokenizer::load(p).map_err(|e| ctx.error("model", format!("{e:#}")))?;
                lang_tokenizers.insert(lang.clone(), Arc::new(m));
            }
        }
        Models::ByLang(found.into_iter().map(|(l, (m, _))| (l, m)).collect())
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
    let tokenizer = Arc::new(match &c.tokenizer {
        None => LmTokenizer::Words,
        Some(p) => LmTokenizer::load(p).map_err(|e| ctx.error("tokenizer", format!("{e:#}")))?,
    });
    if let Some(b) = &c.buckets {
        if b.len() != 2 || !(0.0 < b[0] && b[0] < b[1] && b[1] < 1.0) {
            return Err(ctx.error(
                "buckets",
                format!("buckets must be two percentiles between 0 and 1, the first the smaller (CCNet: [0.3, 0.6]), not {b:?}"),
            ));
        }
    }
    // Fixed cut-offs (given, or read from a file at the percentiles of
    // `buckets`) keep the step streaming; percentiles alone make it global.
    let (cutoffs, global) = match (c.cutoffs, c.buckets) {
        (Some(Cutoffs::File(path)), b) => {
            let q = b.map_or([0.3, 0.6], |b| [b[0], b[1]]);
            (
                Some(cutoffs::read(&path, q).map_err(|e| ctx.error("cutoffs", e))?),
                None,
            )
        }
        (Some(Cutoffs::Table(_)), Some(_)) => {
            return Err(ctx.error(
                "cutoffs",
                "give buckets (percentiles of this corpus) or cutoffs (fixed values), not both \
                 (with a cut-off file, buckets picks its percentiles)"
                    .into(),
            ))
        }
        (Some(Cutoffs::Table(cuts)), None) => {
            if let Some((lang, v)) = cuts
                .iter()
                .find(|(_, v)| v.len() != 2 || v.iter().any(|x| !x.is_finite()) || v[0] >= v[1])
            {
                return Err(ctx.error(
                    "cutoffs",
                    format!("the cut-offs of `{lang}` must be two perplexities, the first the smaller, not {v:?}"),
                ));
            }
            (Some(cuts), None)
        }
        (None, b) => (None, b),
    };
    let op = Perplexity {
        models,
        tokenizer,
        lang_tokenizers,
        normalize: c.normalize,
        lang_column: c.lang_column,
        column: c.column,
        cutoffs,
        bucket_column: c.bucket_column,
    };
    Ok(match global {
        None => Op::Stream(Box::new(op)),
        Some(b) => Op::Global(Arc::new(buckets::PerplexityBuckets::new(op, [b[0], b[1]]))),
    })
}

impl Perplexity {
    /// (Σ log10 p, tokens + ends of sentence) of one document.
    fn score(&self, model: &Model, tokenizer: &LmTokenizer, text: &str) -> Result<(f64, u64)> {
        let (mut logp, mut n) = (0f64, 0u64);
        for line in text.split('\n') {
            if line.trim().is_empty() {
                continue;
            }
            let line = self.normalize.apply(line);
            let words = tokenizer
                .joined(&line)
                .map_err(|e| anyhow::anyhow!("perplexity: {e:#}"))?;
            let (score, tokens) = model.score_words(&words, true, true);
            logp += score as f64;
            n += tokens as u64 + 1;
        }
        Ok((logp, n))
    }
}

impl Perplexity {
    /// The column of languages, when the rows have it.
    fn langs(&self, batch: &DocBatch) -> Result<Option<StringArray>> {
        let Some(col) = batch.data.column_by_name(&self.lang_column) else {
            if matches!(self.models, Models::ByLang(_)) {
                anyhow::bail!(
                    "perplexity: a folder of models needs the language in column `{}` \
                     (run `lang` before, or set lang_column)",
                    self.lang_column
                );
            }
            return Ok(None);
        };
        let col = arrow::compute::cast(col, &arrow::datatypes::DataType::Utf8)?;
        Ok(Some(
            col.as_any()
                .downcast_ref::<StringArray>()
                .expect("Utf8")
                .clone(),
        ))
    }

    /// Every row's perplexity (None: no model for its language, or no text).
    fn perplexities(
        &self,
        batch: &DocBatch,
        langs: &Option<StringArray>,
    ) -> Result<Vec<Option<f64>>> {
        let texts = batch.texts();
        (0..batch.num_rows())
            .into_par_iter()
            .with_min_len(16)
            .map(|i| {
                let (model, tokenizer) = match (&self.models, langs) {
                    (Models::One(m), _) => (Some(m), &self.tokenizer),
                    (Models::ByLang(ms), Some(l)) if !l.is_null(i) => {
                        let lang = l.value(i);
                        let own = self.lang_tokenizers.get(lang);
                        (ms.get(lang), own.unwrap_or(&self.tokenizer))
                    }
                    _ => (None, &self.tokenizer),
                };
                let Some(model) = model else {
                    return Ok(None);
                };
                let (logp, n) = self.score(model, tokenizer, texts.value(i))?;
                Ok((n > 0).then(|| 10f64.powf(-logp / n as f64)))
            })
            .collect()
    }

    /// The rows with `perplexity` and, given cut-offs per language (the
    /// key "" for all rows when there is no language column), `ppl_bucket`.
    fn with_columns(
        &self,
        batch: DocBatch,
        values: Vec<Option<f64>>,
        langs: &Option<StringArray>,
        cutoffs: Option<&BTreeMap<String, Vec<f64>>>,
    ) -> Result<DocBatch> {
        let buckets: Option<StringArray> = cutoffs.map(|cuts| {
            values
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    let lang = match langs {
                        Some(l) if !l.is_null(i) => l.value(i),
                        _ => ANY_LANG,
                    };
                    let v = v.as_ref()?;
                    let c = cuts.get(lang).or_else(|| cuts.get(ANY_LANG))?;
                    Some(if *v < c[0] {
                        "head"
                    } else if *v < c[1] {
                        "middle"
                    } else {
                        "tail"
                    })
                })
                .collect()
        });
        let mut batch = with_column(batch, &self.column, Arc::new(Float64Array::from(values)))?;
        if let Some(b) = buckets {
            batch = with_column(batch, &self.bucket_column, Arc::new(b))?;
        }
        Ok(batch)
    }
}

impl StreamOp for Perplexity {
    fn apply(&self, batch: DocBatch) -> Result<OpOutput> {
        let langs = self.langs(&batch)?;
        let values = self.perplexities(&batch, &langs)?;
        let out = self.with_columns(batch, values, &langs, self.cutoffs.as_ref())?;
        Ok(OpOutput::new(out, vec![]))
    }
}
