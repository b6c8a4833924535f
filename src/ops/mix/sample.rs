//! `sample`: keeps a fraction of the documents, chosen by a hash of the id, so
//! the same documents are kept whatever the order, sharding or thread count.

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::ops::{
    shape, BuildCtx, DocBatch, DropMark, Op, OpInfo, OpKind, OpOutput, ParamDoc, StreamOp,
};
use crate::pipeline::spec::SpecError;

#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Sample {
    pub fraction: f64,
    pub seed: u64,
}

impl Default for Sample {
    fn default() -> Self {
        Self {
            // Required (its ParamDoc says so): checked by BuildCtx::config.
            fraction: Default::default(),
            seed: 1,
        }
    }
}

pub const INFO: OpInfo = OpInfo {
    name: "sample",
    kind: OpKind::Stream,
    summary: "Keeps each document with probability `fraction`, decided by xxh3(seed, id): deterministic, \
              and stable when the corpus is resharded.",
    params: &[
        ParamDoc { name: "fraction", kind: "float", default: "required", doc: "share to keep, 0.0–1.0" },
        ParamDoc { name: "seed", kind: "integer", default: "1", doc: "another seed keeps another sample" },
    ],
    drop_reasons: &["sample"],
    outputs: &[],
    build,
    config: shape::<Sample>,
    example: r#"
[[step]]
op = "sample"
fraction = 0.5
"#,
    about: "",
};

fn build(ctx: &BuildCtx<'_>) -> Result<Op, SpecError> {
    let s: Sample = ctx.config()?;
    if !(0.0..=1.0).contains(&s.fraction) {
        return Err(ctx.error(
            "fraction",
            format!("fraction must be between 0 and 1, not {}", s.fraction),
        ));
    }
    Ok(Op::Stream(Box::new(s)))
}

impl Sample {
    pub fn keeps(&self, id: &str) -> bool {
        // The top 53 bits as a uniform number in [0, 1).
        let u = crate::seeded::id_unit(id.as_bytes(), self.seed);
        u < self.fraction
    }
}

impl StreamOp for Sample {
    fn apply(&self, batch: DocBatch) -> Result<OpOutput> {
        let drops = batch
            .ids()
            .iter()
            .map(|id| (!self.keeps(id.unwrap_or(""))).then(|| DropMark::new("sample")))
            .collect();
        Ok(OpOutput::new(batch, drops))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_about_the_fraction_and_depends_on_the_seed() {
        let s = Sample {
            fraction: 0.3,
            seed: 1,
        };
        let ids: Vec<String> = (0..20_000).map(|i| format!("doc-{i}")).collect();
        let kept = ids.iter().filter(|id| s.keeps(id)).count();
        assert!(
            (5_700..6_300).contains(&kept),
            "kept {kept} of 20000 at 0.3"
        );
        let other = Sample {
            fraction: 0.3,
            seed: 2,
        };
        let same = ids
            .iter()
            .filter(|id| s.keeps(id) == other.keeps(id))
            .count();
        assert!(
            same < 19_000,
            "seeds 1 and 2 chose nearly the same documents"
        );
        assert!(ids.iter().all(|id| Sample {
            fraction: 1.0,
            seed: 1
        }
        .keeps(id)));
        assert!(!ids.iter().any(|id| Sample {
            fraction: 0.0,
            seed: 1
        }
        .keeps(id)));
    }
}
