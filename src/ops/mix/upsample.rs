//! `upsample`: repeats documents by a factor per source, LLaMA-style epochs in
//! one line of config. A factor of 2.5 writes every document twice and half
//! of them (chosen by a hash of the id) a third time; 0.5 keeps half
//! (`upsample:downsampled`). Copies follow their original, each with its
//! number in `upsample_copy` (0 for the original), so later steps can tell
//! them apart; the run's accounting counts them as added documents.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Result;
use arrow::array::{Array, StringArray, UInt32Array};
use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_64_with_seed;

use crate::ops::{
    shape, with_column, BuildCtx, DocBatch, DropMark, Op, OpInfo, OpKind, OpOutput, ParamDoc,
    StreamOp,
};
use crate::pipeline::spec::SpecError;

#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Upsample {
    pub column: String,
    pub factors: BTreeMap<String, f64>,
    /// For sources not in `factors` (and rows without a source).
    pub default: f64,
    pub seed: u64,
    /// The drop reason of a document written zero times (`mixture` uses
    /// its own).
    #[serde(skip)]
    pub reason: &'static str,
}

impl Default for Upsample {
    fn default() -> Self {
        Self {
            column: "source".into(),
            // Required (its ParamDoc says so): checked by BuildCtx::config.
            factors: Default::default(),
            default: 1.0,
            seed: 1,
            reason: "upsample:downsampled",
        }
    }
}

pub const INFO: OpInfo = OpInfo {
    name: "upsample",
    kind: OpKind::Stream,
    summary:
        "Repeats each document by its source's factor (2.5 = twice, half of them three times; \
              0.5 = half kept), the fraction decided by xxh3(seed, id); adds `upsample_copy`.",
    params: &[
        ParamDoc {
            name: "column",
            kind: "string",
            default: "\"source\"",
            doc: "the column naming each document's source",
        },
        ParamDoc {
            name: "factors",
            kind: "table",
            default: "required",
            doc: "source = factor, e.g. { books = 2.0, web = 1.0 }",
        },
        ParamDoc {
            name: "default",
            kind: "float",
            default: "1.0",
            doc: "factor of sources not listed and of rows without a source",
        },
        ParamDoc {
            name: "seed",
            kind: "integer",
            default: "1",
            doc: "another seed picks other documents for the fractional copy",
        },
    ],
    drop_reasons: &["upsample:downsampled"],
    outputs: &[],
    build,
    config: shape::<Upsample>,
    example: r#"
[[step]]
op = "upsample"
factors = { books = 2.5, web = 0.5 }
"#,
    about: r#"
Repeats each document by its source's factor (`factors`, source = factor,
e.g. `{ books = 2.5, wiki = 2.0, web = 1.0 }`; `default` for sources not
listed and rows without a source). Each document is written ⌊factor⌋
times, plus once more when xxh3(seed, id) in [0, 1) falls below the
fraction: 2.5 = every document twice, half of them three times; 0.5 = half
kept (the others dropped as `upsample:downsampled`).

Copies follow their original with `upsample_copy` = 1, 2, … (0 for the
original). The run counts them as *added* (`input + added = kept +
dropped`, in the summary and `stats.json`). Put it after dedup: copies
share their original's id and text.
"#,
};

/// Larger factors are almost surely a typo (and would blow up the output).
pub const MAX_FACTOR: f64 = 1000.0;

fn build(ctx: &BuildCtx<'_>) -> Result<Op, SpecError> {
    let u: Upsample = ctx.config()?;
    let bad = |f: f64| !(0.0..=MAX_FACTOR).contains(&f) || f.is_nan();
    if let Some((k, f)) = u.factors.iter().find(|(_, f)| bad(**f)) {
        return Err(ctx.error(
            "factors",
            format!("factor of `{k}` is {f}: it must be between 0 and {MAX_FACTOR}"),
        ));
    }
    if bad(u.default) {
        return Err(ctx.error(
            "default",
            format!(
                "default is {}: it must be between 0 and {MAX_FACTOR}",
                u.default
            ),
        ));
    }
    Ok(Op::Stream(Box::new(u)))
}

impl Upsample {
    /// How many times a document is written: the factor's whole part, plus
    /// one when xxh3(seed, id) as a number in [0, 1) is below the fraction.
    pub fn copies(&self, source: Option<&str>, id: &str) -> u32 {
        let f = source
            .and_then(|s| self.factors.get(s))
            .copied()
            .unwrap_or(self.default);
        copies_for(f, id_hash(id, self.seed))
    }
}

/// The hash that picks a document for a fractional copy.
pub fn id_hash(id: &str, seed: u64) -> u64 {
    xxh3_64_with_seed(id.as_bytes(), seed)
}

/// Copies of a document with this id hash at factor `f`.
pub fn copies_for(f: f64, hash: u64) -> u32 {
    let whole = f.floor();
    let u = crate::seeded::unit(hash);
    whole as u32 + (u < f - whole) as u32
}

impl StreamOp for Upsample {
    fn apply(&self, batch: DocBatch) -> Result<OpOutput> {
        let n = batch.num_rows();
        let sources: Option<StringArray> = match batch.data.column_by_name(&self.column) {
            Some(c) => Some(
                arrow::compute::cast(c, &arrow::datatypes::DataType::Utf8)
                    .map_err(|e| anyhow::anyhow!("upsample: column `{}`: {e}", self.column))?
                    .as_any()
                    .downcast_ref::<StringArray>()
                    .expect("cast to Utf8")
                    .clone(),
            ),
            None => None,
        };
        let ids = batch.ids();
        let mut take: Vec<u32> = Vec::with_capacity(n);
        let mut copy: Vec<u32> = Vec::with_capacity(n);
        let mut drops: Vec<Option<DropMark>> = Vec::with_capacity(n);
        for i in 0..n {
            let source = sources
                .as_ref()
                .and_then(|s| s.is_valid(i).then(|| s.value(i)));
            let c = self.copies(source, ids.value(i));
            if c == 0 {
                // The row stays once, marked: the engine counts the drop.
                take.push(i as u32);
                copy.push(0);
                drops.push(Some(DropMark::new(self.reason)));
            }
            for k in 0..c {
                take.push(i as u32);
                copy.push(k);
                drops.push(None);
            }
        }
        let added = (take.len() - n) as u64;
        let indices = UInt32Array::from(take);
        let columns = batch
            .data
            .columns()
            .iter()
            .map(|c| arrow::compute::take(c.as_ref(), &indices, None))
            .collect::<Result<Vec<_>, _>>()?;
        let data = arrow::array::RecordBatch::try_new(batch.data.schema(), columns)?;
        let out = with_column(
            DocBatch { data, ..batch },
            "upsample_copy",
            Arc::new(UInt32Array::from(copy)),
        )?;
        Ok(OpOutput::new(out, drops).with_added(added))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(f: f64) -> Upsample {
        Upsample {
            column: "source".into(),
            factors: BTreeMap::from([("books".to_string(), f)]),
            default: 1.0,
            seed: 1,
            reason: "upsample:downsampled",
        }
    }

    #[test]
    fn fractional_factors_repeat_the_right_share() {
        let ids: Vec<String> = (0..20_000).map(|i| format!("doc-{i}")).collect();
        let total: u32 = ids.iter().map(|id| op(2.5).copies(Some("books"), id)).sum();
        assert!(
            (49_000..51_000).contains(&total),
            "{total} copies of 20000 at 2.5"
        );
        assert!(ids
            .iter()
            .all(|id| (2..=3).contains(&op(2.5).copies(Some("books"), id))));
        let kept = ids
            .iter()
            .filter(|id| op(0.5).copies(Some("books"), id) == 1)
            .count();
        assert!((9_700..10_300).contains(&kept), "{kept}");
        // Other sources and rows without one take the default.
        assert_eq!(op(3.0).copies(Some("web"), "x"), 1);
        assert_eq!(op(3.0).copies(None, "x"), 1);
        assert_eq!(op(3.0).copies(Some("books"), "x"), 3);
    }
}
