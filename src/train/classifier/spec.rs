//! The classifier spec (`sluice train-classifier spec.toml`): `[train]`,
//! optional `[model]` and `[text]`, `[output]`. Errors name the file, line
//! and key, as the pipeline spec's do.

use std::path::PathBuf;

use serde::Deserialize;

use crate::models::quality_text::QualityText;
use crate::pipeline::spec::{need_section, read_sections, Format, Section, Spec, SpecError};

fn d_text() -> String {
    "text".into()
}
fn d_holdout() -> f64 {
    0.1
}
fn d_seed() -> u64 {
    1
}

/// `[train]`: where the examples come from and how they are split.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainSection {
    /// Shards of good text (label `__label__positive`).
    #[serde(default)]
    pub positive: Vec<String>,
    /// Shards of text to tell apart from it (`__label__negative`).
    #[serde(default)]
    pub negative: Vec<String>,
    /// At most this many positive (negative) documents, chosen by a hash of
    /// the id: a sample spread over all the shards.
    #[serde(default)]
    pub max_positive: Option<u64>,
    #[serde(default)]
    pub max_negative: Option<u64>,
    /// Or: shards with a label column; rows whose value is
    /// `positive_value` are positive, the others negative.
    #[serde(default)]
    pub paths: Vec<String>,
    #[serde(default)]
    pub label_column: Option<String>,
    #[serde(default)]
    pub positive_value: Option<String>,
    #[serde(default = "d_text")]
    pub text_column: String,
    #[serde(default)]
    pub format: Option<Format>,
    /// Share of the documents (by a hash of the id) kept out of training
    /// to evaluate the model on.
    #[serde(default = "d_holdout")]
    pub holdout_fraction: f64,
    /// Picks the held-out documents, the samples and the training order.
    #[serde(default = "d_seed")]
    pub seed: u64,
}

/// `[model]`: fastText's supervised training parameters, its own names.
#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ModelParams {
    #[serde(default = "d_dim")]
    pub dim: i32,
    #[serde(default = "d_epoch")]
    pub epoch: i32,
    #[serde(default = "d_lr")]
    pub lr: f64,
    #[serde(default = "d_word_ngrams")]
    pub word_ngrams: i32,
    #[serde(default = "d_min_count")]
    pub min_count: i32,
    /// Character n-grams (0: none, fastText's supervised default).
    #[serde(default)]
    pub minn: i32,
    #[serde(default)]
    pub maxn: i32,
    #[serde(default = "d_bucket")]
    pub bucket: i32,
    /// Training threads. fastText's threads update the model without locks
    /// (Hogwild): more than one is faster but not reproducible.
    #[serde(default = "d_threads")]
    pub threads: i32,
    /// `softmax`, `hs` (hierarchical softmax), `ns` or `ova`.
    #[serde(default = "d_loss")]
    pub loss: String,
}

fn d_dim() -> i32 {
    100
}
fn d_epoch() -> i32 {
    5
}
fn d_lr() -> f64 {
    0.1
}
fn d_word_ngrams() -> i32 {
    2
}
fn d_min_count() -> i32 {
    1
}
fn d_bucket() -> i32 {
    2_000_000
}
fn d_threads() -> i32 {
    1
}
fn d_loss() -> String {
    "softmax".into()
}

impl Default for ModelParams {
    fn default() -> Self {
        ModelParams {
            dim: d_dim(),
            epoch: d_epoch(),
            lr: d_lr(),
            word_ngrams: d_word_ngrams(),
            min_count: d_min_count(),
            minn: 0,
            maxn: 0,
            bucket: d_bucket(),
            threads: d_threads(),
            loss: d_loss(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClsOutput {
    pub dir: PathBuf,
}

pub struct ClassifierSpec {
    pub file: String,
    pub train: TrainSection,
    pub model: ModelParams,
    pub text: QualityText,
    pub output: ClsOutput,
}

const TOP_KEYS: &[&str] = &["train", "model", "text", "output"];

impl ClassifierSpec {
    pub fn load(path: &std::path::Path) -> Result<Self, SpecError> {
        let (shell, table) = read_sections(path, "classifier", TOP_KEYS)?;
        let file = shell.file.clone();
        let need = |name: &'static str, hint: &str| need_section(&file, &table, name, hint);
        let train: TrainSection = shell.decode(
            Section::Table("train"),
            need("train", "`positive = [...]` and `negative = [...]`")?,
        )?;
        let model: ModelParams = match table.get("model") {
            Some(v) => shell.decode(Section::Table("model"), v.clone())?,
            None => ModelParams::default(),
        };
        let text: QualityText = match table.get("text") {
            Some(v) => shell.decode(Section::Table("text"), v.clone())?,
            None => QualityText::default(),
        };
        let output: ClsOutput =
            shell.decode(Section::Output, need("output", "`dir = \"...\"`")?)?;
        let spec = ClassifierSpec {
            file,
            train,
            model,
            text,
            output,
        };
        spec.validate(&shell)?;
        Ok(spec)
    }

    fn validate(&self, shell: &Spec) -> Result<(), SpecError> {
        let t = &self.train;
        let sec = Section::Table("train");
        let by_side = !t.positive.is_empty() || !t.negative.is_empty();
        let by_column = !t.paths.is_empty() || t.label_column.is_some();
        if by_side && by_column {
            return Err(shell.error(
                sec,
                Some("paths"),
                "give either `positive` and `negative`, or `paths` with `label_column`, not both"
                    .into(),
            ));
        }
        if by_column {
            if t.paths.is_empty() || t.label_column.is_none() || t.positive_value.is_none() {
                return Err(shell.error(
                    sec,
                    Some("label_column"),
                    "a label column needs `paths`, `label_column` and `positive_value`".into(),
                ));
            }
        } else if t.positive.is_empty() || t.negative.is_empty() {
            return Err(shell.error(
                sec,
                Some(if t.positive.is_empty() { "positive" } else { "negative" }),
                "name shards for both `positive` and `negative` (or use `paths` with `label_column`)"
                    .into(),
            ));
        }
        if !(t.holdout_fraction > 0.0 && t.holdout_fraction < 1.0) {
            return Err(shell.error(
                sec,
                Some("holdout_fraction"),
                format!(
                    "`holdout_fraction` must be between 0 and 1 (exclusive), not {}",
                    t.holdout_fraction
                ),
            ));
        }
        let m = &self.model;
        let msec = Section::Table("model");
        for (key, v) in [
            ("dim", m.dim),
            ("epoch", m.epoch),
            ("word_ngrams", m.word_ngrams),
            ("min_count", m.min_count),
            ("bucket", m.bucket),
            ("threads", m.threads),
        ] {
            if v < 1 {
                return Err(shell.error(
                    msec,
                    Some(key),
                    format!("`{key}` must be at least 1, not {v}"),
                ));
            }
        }
        if m.lr.is_nan() || m.lr <= 0.0 {
            return Err(shell.error(
                msec,
                Some("lr"),
                format!("`lr` must be above 0, not {}", m.lr),
            ));
        }
        if m.minn < 0 || m.maxn < m.minn {
            return Err(shell.error(
                msec,
                Some("maxn"),
                format!(
                    "need 0 <= minn <= maxn, not minn {} maxn {}",
                    m.minn, m.maxn
                ),
            ));
        }
        if !["softmax", "hs", "ns", "ova"].contains(&m.loss.as_str()) {
            return Err(shell.error(
                msec,
                Some("loss"),
                format!("unknown loss `{}` (softmax, hs, ns or ova)", m.loss),
            ));
        }
        if self.text.max_chars == 0 {
            return Err(shell.error(
                Section::Table("text"),
                Some("max_chars"),
                "`max_chars` must be above 0".into(),
            ));
        }
        Ok(())
    }
}
