//! `cluster_sample`: balances topics after `cluster`. `max_per_cluster`
//! keeps at most N documents of each cluster (those of lowest xxh3(seed,
//! id): an exact cap); `inverse_power` α keeps a document of a cluster of
//! size s with probability min(1, (m / s)^α), m the median cluster size
//! (or `reference_size`), so over-represented topics shrink and small ones
//! stay (D4-style). Both can be set; decisions depend on the id hash only.
//!
//! Phases: each task counts its documents per cluster and keeps, per
//! cluster, its N lowest hashes; `plan` merges them into each cluster's
//! size and cap threshold; the filter decides row by row.

use std::collections::{BTreeMap, BinaryHeap};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use arrow::array::{Array, UInt32Array};
use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_64_with_seed;

use crate::ops::{
    shape, BuildCtx, DocBatch, DropMark, GlobalCtx, GlobalOp, Observer, Op, OpInfo, OpKind,
    OpOutput, ParamDoc, PhaseSpec, Phased, RowFilter,
};
use crate::pipeline::spec::SpecError;

#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
struct Config {
    max_per_cluster: Option<u64>,
    inverse_power: Option<f64>,
    reference_size: Option<u64>,
    seed: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_per_cluster: Default::default(),
            inverse_power: Default::default(),
            reference_size: Default::default(),
            seed: 1,
        }
    }
}

pub const INFO: OpInfo = OpInfo {
    name: "cluster_sample",
    kind: OpKind::Global,
    summary: "Balances clusters (after `cluster`): caps documents per cluster and/or samples \
              a cluster of size s at (median / s)^power, by id hash.",
    params: &[
        ParamDoc {
            name: "max_per_cluster",
            kind: "integer",
            default: "none",
            doc: "keep at most this many documents of each cluster (lowest id hashes)",
        },
        ParamDoc {
            name: "inverse_power",
            kind: "float",
            default: "none",
            doc: "keep with probability min(1, (reference / size)^power)",
        },
        ParamDoc {
            name: "reference_size",
            kind: "integer",
            default: "median",
            doc: "the size below which `inverse_power` keeps everything",
        },
        ParamDoc {
            name: "seed",
            kind: "integer",
            default: "1",
            doc: "another seed, other documents",
        },
    ],
    drop_reasons: &["cluster_sample:capped", "cluster_sample:sampled"],
    outputs: &[],
    build,
    config: shape::<Config>,
    example: r#"
[[step]]
op = "embed"
model = "fixtures/models/wordllama-l2-64"

[[step]]
op = "cluster"
k = 2

[[step]]
op = "cluster_sample"
max_per_cluster = 3
"#,
    about: r#"
After `cluster`: caps each cluster at its N lowest id hashes
(`max_per_cluster`, drops `cluster_sample:capped`), and/or keeps a cluster
of size s at min(1, (reference / s)^power) by id hash (`inverse_power`;
`reference_size` defaults to the median cluster size; drops
`cluster_sample:sampled`). At least one of the two must be given. See
[embeddings.md, Balancing clusters](embeddings.md#balancing-clusters).
"#,
};

#[derive(Clone)]
pub struct ClusterSample {
    max_per_cluster: Option<u64>,
    inverse_power: Option<f64>,
    reference_size: Option<u64>,
    seed: u64,
}

fn build(ctx: &BuildCtx<'_>) -> Result<Op, SpecError> {
    let c: Config = ctx.config()?;
    if c.max_per_cluster.is_none() && c.inverse_power.is_none() {
        return Err(ctx.error(
            "max_per_cluster",
            "set `max_per_cluster`, `inverse_power`, or both".into(),
        ));
    }
    if c.max_per_cluster == Some(0) {
        return Err(ctx.error("max_per_cluster", "must be at least 1".into()));
    }
    if let Some(p) = c.inverse_power {
        if !(p > 0.0 && p <= 10.0) {
            return Err(ctx.error(
                "inverse_power",
                format!("`inverse_power` must be above 0 and at most 10, not {p}"),
            ));
        }
    }
    Ok(Op::Global(Arc::new(ClusterSample {
        max_per_cluster: c.max_per_cluster,
        inverse_power: c.inverse_power,
        reference_size: c.reference_size,
        seed: c.seed,
    })))
}

/// Per cluster: its documents, and its lowest hashes (at most the cap).
#[derive(Default, Serialize, Deserialize)]
struct Counts {
    clusters: BTreeMap<u32, (u64, Vec<u64>)>,
}

#[derive(Serialize, Deserialize)]
struct Plan {
    /// Cluster → (size, cap threshold: keep hashes at most this, keep probability).
    clusters: BTreeMap<u32, (u64, u64, f64)>,
    reference_size: u64,
}

fn counts_path(ctx: &GlobalCtx, t: usize) -> PathBuf {
    ctx.work.join("counts").join(format!("{t:05}.json"))
}
fn plan_path(ctx: &GlobalCtx) -> PathBuf {
    ctx.work.join("plan.json")
}

fn cluster_ids(batch: &DocBatch) -> Result<&UInt32Array> {
    batch
        .data
        .column_by_name("cluster_id")
        .and_then(|c| c.as_any().downcast_ref::<UInt32Array>())
        .context("cluster_sample: no `cluster_id` column (put a `cluster` step before it)")
}

struct Counter {
    op: ClusterSample,
    heaps: BTreeMap<u32, (u64, BinaryHeap<u64>)>,
    path: PathBuf,
}

impl Observer for Counter {
    fn observe(&mut self, batch: &DocBatch, _first_row: u64) -> Result<()> {
        let clusters = cluster_ids(batch)?;
        let ids = batch.ids();
        for i in 0..batch.num_rows() {
            if !clusters.is_valid(i) {
                continue;
            }
            let (n, heap) = self.heaps.entry(clusters.value(i)).or_default();
            *n += 1;
            if let Some(cap) = self.op.max_per_cluster {
                let h = xxh3_64_with_seed(ids.value(i).as_bytes(), self.op.seed);
                if (heap.len() as u64) < cap {
                    heap.push(h);
                } else if heap.peek().is_some_and(|top| h < *top) {
                    heap.pop();
                    heap.push(h);
                }
            }
        }
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<()> {
        let counts = Counts {
            clusters: self
                .heaps
                .into_iter()
                .map(|(c, (n, h))| (c, (n, h.into_sorted_vec())))
                .collect(),
        };
        crate::io::writer::write_atomic(&self.path, &serde_json::to_vec(&counts)?)
    }
}

impl ClusterSample {
    fn plan(&self, ctx: &GlobalCtx) -> Result<()> {
        let mut all: BTreeMap<u32, (u64, Vec<u64>)> = BTreeMap::new();
        for t in 0..ctx.tasks {
            let c: Counts = crate::io::writer::read_work_json(&counts_path(ctx, t))?;
            for (k, (n, h)) in c.clusters {
                let e = all.entry(k).or_default();
                e.0 += n;
                e.1.extend(h);
            }
        }
        let mut sizes: Vec<u64> = all.values().map(|v| v.0).collect();
        sizes.sort_unstable();
        let median = sizes.get(sizes.len() / 2).copied().unwrap_or(0);
        let reference = self.reference_size.unwrap_or(median);
        let clusters = all
            .into_iter()
            .map(|(k, (n, mut hashes))| {
                let threshold = match self.max_per_cluster {
                    Some(cap) if n > cap => {
                        hashes.sort_unstable();
                        hashes[cap as usize - 1]
                    }
                    _ => u64::MAX,
                };
                let p = match self.inverse_power {
                    Some(a) if n > 0 => (reference as f64 / n as f64).powf(a).min(1.0),
                    _ => 1.0,
                };
                (k, (n, threshold, p))
            })
            .collect();
        let plan = Plan {
            clusters,
            reference_size: reference,
        };
        crate::io::writer::write_atomic(&plan_path(ctx), &serde_json::to_vec(&plan)?)
    }
}

impl Phased for ClusterSample {
    fn phases(self: Arc<Self>, _ctx: &GlobalCtx) -> Vec<PhaseSpec> {
        vec![PhaseSpec::new(&self, "plan", 1, |op, ctx, _| op.plan(ctx))]
    }

    fn observer(&self, ctx: &GlobalCtx, task: usize) -> Result<Box<dyn Observer>> {
        crate::io::store::create_dir_all(&ctx.work.join("counts"))?;
        Ok(Box::new(Counter {
            op: self.clone(),
            heaps: BTreeMap::new(),
            path: counts_path(ctx, task),
        }))
    }
}

impl GlobalOp for ClusterSample {
    fn filter(&self, ctx: &GlobalCtx, _task: usize) -> Result<Box<dyn RowFilter>> {
        let plan: Plan = crate::io::writer::read_work_json(&plan_path(ctx))?;
        Ok(Box::new(Sampler {
            seed: self.seed,
            plan,
        }))
    }
}

struct Sampler {
    seed: u64,
    plan: Plan,
}

/// The salt of the inverse-size draw: independent of the cap's hash.
const SALT_SAMPLE: u64 = 0x5a4d_504c;

impl RowFilter for Sampler {
    fn apply(&mut self, batch: DocBatch, _first_row: u64) -> Result<OpOutput> {
        let clusters = cluster_ids(&batch)?;
        let ids = batch.ids();
        let drops = (0..batch.num_rows())
            .map(|i| {
                if !clusters.is_valid(i) {
                    return None;
                }
                let &(_, threshold, p) = self.plan.clusters.get(&clusters.value(i))?;
                let id = ids.value(i).as_bytes();
                if xxh3_64_with_seed(id, self.seed) > threshold {
                    return Some(DropMark::new("cluster_sample:capped"));
                }
                let u = crate::seeded::id_unit(id, self.seed ^ SALT_SAMPLE);
                (u >= p).then(|| DropMark::new("cluster_sample:sampled"))
            })
            .collect();
        Ok(OpOutput::new(batch, drops))
    }
}
