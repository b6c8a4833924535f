//! `quality_model`: scores each document with a fastText classifier (one
//! trained by `sluice train-classifier`, or a user's, e.g. a DCLM-style
//! model) and adds `quality_score`, the probability of `label`; with
//! `min_score`, drops documents below it. The model is read once, when the
//! pipeline is built (before any data), by sluice's own fastText reader
//! (`src/models/fasttext.rs`, tested against the C++ library), and shared by
//! every worker. The text is prepared as at training time
//! (`src/models/quality_text.rs`): with the settings in the `report.json`
//! that `train-classifier` wrote beside the model, unless the step sets them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Result;
use arrow::array::Float32Array;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::models::fasttext::FastTextModel;
use crate::models::quality_text::QualityText;
use crate::ops::{
    shape, with_column, BuildCtx, DocBatch, DropMark, Op, OpInfo, OpKind, OpOutput, ParamDoc,
    StreamOp,
};
use crate::pipeline::spec::SpecError;

#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
struct Config {
    model: PathBuf,
    label: String,
    min_score: Option<f32>,
    column: String,
    /// Unset: as the model was trained (its `report.json`), else the
    /// defaults of `QualityText`.
    lowercase: Option<bool>,
    split_cjk: Option<bool>,
    max_chars: Option<usize>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            // Required (its ParamDoc says so): checked by BuildCtx::config.
            model: Default::default(),
            label: "__label__positive".into(),
            min_score: Default::default(),
            column: "quality_score".into(),
            lowercase: Default::default(),
            split_cjk: Default::default(),
            max_chars: Default::default(),
        }
    }
}

/// The text settings a model was trained with, from the `report.json`
/// that `sluice train-classifier` writes beside it.
fn trained_text(model: &std::path::Path) -> Option<QualityText> {
    let report = model.parent()?.join("report.json");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(report).ok()?).ok()?;
    let same_model = Path::new(json["model"].as_str()?).file_name() == model.file_name();
    same_model
        .then(|| serde_json::from_value(json["text"].clone()).ok())
        .flatten()
}

pub const INFO: OpInfo = OpInfo {
    name: "quality_model",
    kind: OpKind::Stream,
    summary: "Scores documents with a fastText classifier: adds the probability of `label` \
              (quality_score); drops below `min_score` when set.",
    params: &[
        ParamDoc {
            name: "model",
            kind: "path",
            default: "required",
            doc: "a fastText classifier (.bin or .ftz)",
        },
        ParamDoc {
            name: "label",
            kind: "string",
            default: "\"__label__positive\"",
            doc: "the label whose probability is the score",
        },
        ParamDoc {
            name: "min_score",
            kind: "float",
            default: "none",
            doc: "drop documents scoring below it (without it the step only scores)",
        },
        ParamDoc {
            name: "column",
            kind: "string",
            default: "\"quality_score\"",
            doc: "the column the score goes to",
        },
        ParamDoc {
            name: "lowercase",
            kind: "bool",
            default: "as trained",
            doc: "lowercase the text before scoring (default: the model's report.json, else true)",
        },
        ParamDoc {
            name: "split_cjk",
            kind: "bool",
            default: "as trained",
            doc: "every Chinese/Japanese/Thai character a token of its own (else true)",
        },
        ParamDoc {
            name: "max_chars",
            kind: "integer",
            default: "as trained",
            doc: "characters of the document that are scored (else 10000)",
        },
    ],
    drop_reasons: &["quality_model:low_score"],
    outputs: &[],
    build,
    config: shape::<Config>,
    example: r#"
[[step]]
op = "quality_model"
model = "fixtures/models/lid.176.ftz"   # any fastText classifier
label = "__label__en"
min_score = 0.5
"#,
    about: r#"
Scores documents with a fastText classifier (`.bin`/`.ftz`), ours
(`sluice train-classifier`) or a user's such as a DCLM-style model. Adds
the probability of `label` to `column` (`quality_score`); without
`min_score` the step only scores, with it it drops the documents below
(`quality_model:low_score`).

The text is prepared as the model was trained: `lowercase`, `split_cjk`
and `max_chars` default to the settings in the `report.json` beside the
model, else `true`, `true`, `10000`; for a user's model set them to match
how it was trained. See [classifiers.md](classifiers.md).
"#,
};

pub struct QualityModel {
    model: Arc<FastTextModel>,
    label: String,
    min_score: Option<f32>,
    column: String,
    text: QualityText,
}

fn build(ctx: &BuildCtx<'_>) -> Result<Op, SpecError> {
    let c: Config = ctx.config()?;
    if let Some(s) = c.min_score {
        if !(0.0..=1.0).contains(&s) {
            return Err(ctx.error(
                "min_score",
                format!("`min_score` must be between 0 and 1, not {s}"),
            ));
        }
    }
    let trained = trained_text(&c.model).unwrap_or_default();
    let text = QualityText {
        lowercase: c.lowercase.unwrap_or(trained.lowercase),
        split_cjk: c.split_cjk.unwrap_or(trained.split_cjk),
        max_chars: c.max_chars.unwrap_or(trained.max_chars),
    };
    if text.max_chars == 0 {
        return Err(ctx.error("max_chars", "`max_chars` must be above 0".into()));
    }
    if !c.model.exists() {
        return Err(ctx.error(
            "model",
            format!(
                "cannot read the model {}: it does not exist; train one with `sluice train-classifier <spec>` \
                 (pipelines/quality-classifier.toml writes out/quality-model/model.bin), or name \
                 a fastText classifier",
                c.model.display()
            ),
        ));
    }
    let model =
        crate::models::fasttext::load_fasttext(&c.model).map_err(|e| ctx.error("model", e))?;
    // The reader names labels without fastText's prefix.
    let label = c
        .label
        .strip_prefix(crate::models::fasttext::LABEL_PREFIX)
        .unwrap_or(&c.label)
        .to_string();
    if !model.labels().contains(&label) {
        return Err(ctx.error(
            "label",
            format!(
                "the model {} has no label `{}`; its labels: {}",
                c.model.display(),
                c.label,
                model
                    .labels()
                    .iter()
                    .take(20)
                    .map(|l| format!("{}{l}", crate::models::fasttext::LABEL_PREFIX))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    Ok(Op::Stream(Box::new(QualityModel {
        model: Arc::new(model),
        label,
        min_score: c.min_score,
        column: c.column,
        text,
    })))
}

impl QualityModel {
    /// The probability of the label for one document.
    pub fn score(&self, text: &str) -> f32 {
        let line = self.text.prepare(text);
        let k = self.model.labels().len();
        self.model
            .predict(&line, k, 0.0)
            .into_iter()
            .find(|(l, _)| *l == self.label)
            .map_or(0.0, |(_, p)| p)
    }
}

impl StreamOp for QualityModel {
    fn apply(&self, batch: DocBatch) -> Result<OpOutput> {
        let texts = batch.texts();
        let scores: Vec<f32> = (0..batch.num_rows())
            .into_par_iter()
            .with_min_len(64)
            .map(|i| self.score(texts.value(i)))
            .collect();
        let drops = scores
            .iter()
            .map(|s| {
                self.min_score
                    .filter(|m| s < m)
                    .map(|_| DropMark::new("quality_model:low_score"))
            })
            .collect();
        let out = with_column(batch, &self.column, Arc::new(Float32Array::from(scores)))?;
        Ok(OpOutput::new(out, drops))
    }

    fn thresholds(&self) -> Vec<crate::stats::profile::Threshold> {
        self.min_score
            .map(|v| crate::stats::profile::Threshold::new(&self.column, ">=", v as f64))
            .into_iter()
            .collect()
    }
}
