//! `embed`: a dense vector per document, for `cluster` and semantic dedup.
//! Backend `static` (the CPU path at scale): a static token-embedding model
//! such as wordllama (`src/models/static_embed.rs`), in parallel over the
//! batch. Backend `transformer`: a BERT sentence-transformers model (e.g.
//! all-MiniLM-L6-v2) run by candle (`src/models/transformer_embed.rs`). Or vectors computed elsewhere: `column` names an existing list
//! column, checked and copied. Writes `embedding`, a fixed-size list of f32
//! (a document that yields none is dropped as `embed:no_vector`).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Result};
use arrow::array::{Array, ArrayRef, FixedSizeListArray, Float32Array, ListArray};
use arrow::datatypes::{DataType, Field};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::models::static_embed::StaticEmbedder;
use crate::models::transformer_embed::TransformerEmbedder;
use crate::ops::{
    shape, with_column, BuildCtx, DocBatch, DropMark, Op, OpInfo, OpKind, OpOutput, ParamDoc,
    StreamOp,
};
use crate::pipeline::spec::SpecError;

/// The column every vector op reads.
pub const EMBEDDING: &str = "embedding";

/// Where the vectors come from when `model` is given.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
enum Backend {
    /// A static token-embedding model folder (wordllama, model2vec).
    #[default]
    Static,
    /// A sentence-transformer folder (BERT-family, safetensors).
    Transformer,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
struct Config {
    backend: Backend,
    model: Option<PathBuf>,
    column: Option<String>,
    /// The vectors' length, with `column`.
    dim: Option<usize>,
    /// The default, 8: on CPU small forward passes win: candle materialises
    /// attention (batch × heads × length²) and the batches run in parallel;
    /// measured fastest at 4–8 on MiniLM (docs/benchmarks.md). A GPU wants more.
    batch_size: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            backend: Backend::Static,
            model: Default::default(),
            column: Default::default(),
            dim: Default::default(),
            batch_size: 8,
        }
    }
}

pub const INFO: OpInfo = OpInfo {
    name: "embed",
    kind: OpKind::Stream,
    summary: "Adds `embedding`, an L2-normalised vector per document: from a static \
              token-embedding model (backend `static`, e.g. wordllama), a sentence-transformer \
              (backend `transformer`), or an existing column of vectors computed elsewhere (`column`).",
    params: &[
        ParamDoc {
            name: "backend",
            kind: "string",
            default: "\"static\"",
            doc: "`static`: mean of the tokens' rows of a static table (wordllama); `transformer`: a BERT sentence-transformers model run by candle",
        },
        ParamDoc {
            name: "model",
            kind: "path",
            default: "none",
            doc: "the model folder (a .safetensors table + a tokenizer .json)",
        },
        ParamDoc {
            name: "column",
            kind: "string",
            default: "none",
            doc: "instead of a model: a list column of vectors computed elsewhere",
        },
        ParamDoc {
            name: "dim",
            kind: "integer",
            default: "none",
            doc: "with `column`: the vectors' length (required, at most 65,536)",
        },
        ParamDoc {
            name: "batch_size",
            kind: "integer",
            default: "8",
            doc: "documents per forward pass (transformer; forward passes run in parallel; on CPU 4–8 is fastest, a GPU wants more) or per parallel work item (static)",
        },
    ],
    drop_reasons: &["embed:no_vector"],
    outputs: &[],
    build,
    config: shape::<Config>,
    example: r#"
[[step]]
op = "embed"
model = "fixtures/models/wordllama-l2-64"
"#,
    about: r#"
Adds `embedding`, a fixed-size list of f32, L2-normalised, per document:
from a static token-embedding model (`backend = "static"`, a model folder),
a transformer (`backend = "transformer"`), or vectors computed elsewhere
(`column` + `dim`, `dim` at most 65,536). A document without a vector is
dropped as `embed:no_vector`. See [embeddings.md](embeddings.md#embeddings).
"#,
};

enum Source {
    Static(Box<StaticEmbedder>),
    Transformer(Box<TransformerEmbedder>),
    Column(String, usize),
}

pub struct Embed {
    source: Source,
    batch_size: usize,
}

/// The longest vectors a `column` may hold (the largest models' are 4,096
/// to 8,192; a larger `dim` is a typo, and Arrow's sizes would overflow).
const MAX_DIM: usize = 65_536;

fn build(ctx: &BuildCtx<'_>) -> Result<Op, SpecError> {
    let c: Config = ctx.config()?;
    if c.batch_size == 0 {
        return Err(ctx.error("batch_size", "`batch_size` must be above 0".into()));
    }
    let source = match (&c.model, &c.column) {
        (Some(_), Some(_)) => {
            return Err(ctx.error(
                "column",
                "give either `model` (to compute vectors) or `column` (vectors computed elsewhere), not both".into(),
            ))
        }
        (None, Some(col)) => match c.dim {
            Some(d) if d > MAX_DIM => {
                return Err(ctx.error(
                    "dim",
                    format!("`dim` must be at most {MAX_DIM}, not {d}: no embedding is that long"),
                ))
            }
            Some(d) if d > 0 => Source::Column(col.clone(), d),
            _ => {
                return Err(ctx.error(
                    "dim",
                    "with `column`, set `dim`, the length of its vectors (e.g. 384)".into(),
                ))
            }
        },
        (None, None) => {
            return Err(ctx.error(
                "model",
                "needs `model` (a model folder) or `column` (a column of vectors)".into(),
            ))
        }
        (Some(m), None) => match c.backend {
            Backend::Static => Source::Static(Box::new(
                StaticEmbedder::load(m).map_err(|e| ctx.error("model", format!("{e:#}")))?,
            )),
            Backend::Transformer => Source::Transformer(Box::new(
                TransformerEmbedder::load(m, c.batch_size)
                    .map_err(|e| ctx.error("model", format!("{e:#}")))?,
            )),
        },
    };
    Ok(Op::Stream(Box::new(Embed {
        source,
        batch_size: c.batch_size,
    })))
}

/// Vectors as a fixed-size list column; `None` rows become nulls.
fn to_column(dim: usize, rows: &[Option<Vec<f32>>]) -> Result<ArrayRef> {
    let mut values = Vec::with_capacity(rows.len() * dim);
    let mut valid = Vec::with_capacity(rows.len());
    for r in rows {
        match r {
            Some(v) => values.extend_from_slice(v),
            None => values.extend(std::iter::repeat_n(0.0, dim)),
        }
        valid.push(r.is_some());
    }
    let field = Arc::new(Field::new("item", DataType::Float32, false));
    Ok(Arc::new(FixedSizeListArray::try_new(
        field,
        dim as i32,
        Arc::new(Float32Array::from(values)),
        Some(valid.into()),
    )?))
}

/// The vectors of a column computed elsewhere (`None`: a null or empty row).
fn column_vectors(batch: &DocBatch, name: &str) -> Result<Vec<Option<Vec<f32>>>> {
    let col = batch
        .data
        .column_by_name(name)
        .ok_or_else(|| anyhow::anyhow!("embed: no column `{name}` of vectors in this batch"))?;
    let list_type = DataType::List(Arc::new(Field::new("item", DataType::Float32, true)));
    let list = arrow::compute::cast(col, &list_type).map_err(|e| {
        anyhow::anyhow!(
            "embed: column `{name}` ({}) is not a list of numbers: {e}",
            col.data_type()
        )
    })?;
    let list = list
        .as_any()
        .downcast_ref::<ListArray>()
        .expect("cast to List");
    let mut out = Vec::with_capacity(list.len());
    for i in 0..list.len() {
        if list.is_null(i) {
            out.push(None);
            continue;
        }
        let v = list.value(i);
        let v = v
            .as_any()
            .downcast_ref::<Float32Array>()
            .expect("List<Float32>");
        if v.is_empty() || v.null_count() > 0 {
            out.push(None);
        } else {
            out.push(Some(v.values().to_vec()));
        }
    }
    Ok(out)
}

impl StreamOp for Embed {
    fn apply(&self, batch: DocBatch) -> Result<OpOutput> {
        let (dim, rows): (usize, Vec<Option<Vec<f32>>>) = match &self.source {
            Source::Static(m) => {
                let texts = batch.texts();
                let rows = (0..batch.num_rows())
                    .into_par_iter()
                    .with_min_len(self.batch_size)
                    .map(|i| {
                        let mut v = vec![0f32; m.dim];
                        m.embed(texts.value(i), &mut v)?;
                        // A text without a token has no direction.
                        Ok(v.iter().any(|x| *x != 0.0).then_some(v))
                    })
                    .collect::<Result<Vec<_>>>()?;
                (m.dim, rows)
            }
            Source::Transformer(m) => {
                let texts = batch.texts();
                let all: Vec<&str> = (0..batch.num_rows()).map(|i| texts.value(i)).collect();
                let rows = m.embed(&all)?.into_iter().map(Some).collect();
                (m.dim, rows)
            }
            Source::Column(name, dim) => {
                let dim = *dim;
                let rows = column_vectors(&batch, name)?;
                if let Some((i, v)) = rows
                    .iter()
                    .enumerate()
                    .find_map(|(i, r)| r.as_ref().filter(|v| v.len() != dim).map(|v| (i, v)))
                {
                    bail!(
                        "embed: column `{name}`: document {} has {} numbers, not `dim` = {dim}",
                        batch.ids().value(i),
                        v.len()
                    );
                }
                (dim, rows)
            }
        };
        let drops = rows
            .iter()
            .map(|r| r.is_none().then(|| DropMark::new("embed:no_vector")))
            .collect();
        let out = with_column(batch, EMBEDDING, to_column(dim, &rows)?)?;
        Ok(OpOutput::new(out, drops))
    }
}
