//! `cluster`: k-means over the `embedding` column. Fitted on a sample (the
//! `fit_sample` documents of lowest xxh3(seed, id), the same whatever the
//! tasks and workers), then every document is assigned to its nearest
//! centroid in the next streaming pass: adds `cluster_id` and
//! `cluster_dist` (cosine distance 1 − cos, or L2 distance).
//!
//! Phases: each task keeps its `fit_sample` lowest-hash vectors (a bounded
//! heap) and writes them; `fit` merges them into the global sample,
//! seeds k-means++ with a seeded generator and runs Lloyd iterations
//! (spherical for cosine: centroids renormalised) until no assignment
//! changes or `max_iter`; the filter assigns every row, comparing it with
//! every centroid or, for large k (`assign`), searching an HNSW graph of
//! the centroids (`crate::vector::ann`). Sums run in a fixed order and the graph is
//! built in centroid order, so the output is the same bytes for any number
//! of threads.

use std::collections::BinaryHeap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::{bail, Result};
use arrow::array::{Float32Array, UInt32Array};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_64_with_seed;

use crate::ops::vectors::vector_column::VectorColumn;
use crate::ops::{
    shape, with_column, BuildCtx, DocBatch, GlobalCtx, GlobalOp, Observer, Op, OpInfo, OpKind,
    OpOutput, ParamDoc, PhaseSpec, Phased, RowFilter,
};
use crate::pipeline::spec::SpecError;
use crate::vector::ann::{graph_from, Ann, AnnParams, GraphUse};
use crate::vector::kmeans::{Fit, KMeans};
use crate::vector::vecmath::normalize;

/// From this many centroids on, `assign = "auto"` searches an HNSW graph
/// of the centroids instead of comparing with all of them (measured in
/// docs/benchmarks.md: the scan is faster at k = 5,000; parity extrapolated).
const HNSW_MIN_K: usize = 20_000;

#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
struct Config {
    k: usize,
    seed: u64,
    metric: Metric,
    fit_sample: usize,
    max_iter: usize,
    n_init: usize,
    column: String,
    assign: GraphUse,
    hnsw_min_k: usize,
    hnsw_m: usize,
    hnsw_ef_construction: usize,
    hnsw_ef: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            // Required (its ParamDoc says so): checked by BuildCtx::config.
            k: Default::default(),
            seed: 1,
            metric: Metric::Cosine,
            fit_sample: 50_000,
            max_iter: 50,
            n_init: 1,
            column: crate::ops::vectors::embed::EMBEDDING.into(),
            assign: GraphUse::Auto,
            hnsw_min_k: HNSW_MIN_K,
            hnsw_m: crate::vector::ann::default_m(),
            hnsw_ef_construction: crate::vector::ann::default_ef_construction(),
            hnsw_ef: crate::vector::ann::default_ef(),
        }
    }
}

pub const INFO: OpInfo = OpInfo {
    name: "cluster",
    kind: OpKind::Global,
    summary: "k-means on the embeddings (k-means++ seeding, Lloyd iterations, cosine or L2), \
              fitted on a hash sample, then every document assigned: adds cluster_id and \
              cluster_dist.",
    params: &[
        ParamDoc {
            name: "k",
            kind: "integer",
            default: "required",
            doc: "number of clusters",
        },
        ParamDoc {
            name: "seed",
            kind: "integer",
            default: "1",
            doc: "picks the sample and the k-means++ seeds",
        },
        ParamDoc {
            name: "metric",
            kind: "string",
            default: "\"cosine\"",
            doc: "`cosine` (spherical k-means) or `l2`",
        },
        ParamDoc {
            name: "fit_sample",
            kind: "integer",
            default: "50000",
            doc: "documents the centroids are fitted on (all when fewer)",
        },
        ParamDoc {
            name: "max_iter",
            kind: "integer",
            default: "50",
            doc: "Lloyd iterations at most (1–100,000)",
        },
        ParamDoc {
            name: "n_init",
            kind: "integer",
            default: "1",
            doc: "k-means++ starts (1–1,000); the one of lowest inertia is kept",
        },
        ParamDoc {
            name: "column",
            kind: "string",
            default: "\"embedding\"",
            doc: "the vectors (a fixed-size list of f32, as `embed` writes)",
        },
        ParamDoc {
            name: "assign",
            kind: "string",
            default: "\"auto\"",
            doc: "how documents find their centroid: `exact` (all k compared), `hnsw` \
                  (an HNSW graph of the centroids: approximate, faster for large k) or \
                  `auto` (hnsw from `hnsw_min_k` centroids on)",
        },
        ParamDoc {
            name: "hnsw_min_k",
            kind: "integer",
            default: "20000",
            doc: "with `assign = \"auto\"`, the k from which the graph is used",
        },
        ParamDoc {
            name: "hnsw_m",
            kind: "integer",
            default: "16",
            doc: "graph links per node (2-256)",
        },
        ParamDoc {
            name: "hnsw_ef_construction",
            kind: "integer",
            default: "100",
            doc: "candidates examined when building the graph",
        },
        ParamDoc {
            name: "hnsw_ef",
            kind: "integer",
            default: "64",
            doc: "candidates examined per search (higher: closer to exact, slower)",
        },
    ],
    drop_reasons: &[],
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
"#,
    about: r#"
k-means over the embeddings, fitted on a hash sample, then every document
assigned: adds `cluster_id` and `cluster_dist`. How a document finds its
centroid (`assign`: `exact`, `hnsw` or `auto`, and the `hnsw_*` settings)
is under [embeddings.md, Clusters](embeddings.md#clusters).
"#,
};

/// The distance k-means uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
enum Metric {
    /// 1 - cosine similarity (vectors normalised).
    #[default]
    Cosine,
    /// Squared Euclidean distance.
    L2,
}

#[derive(Clone)]
pub struct Cluster {
    k: usize,
    seed: u64,
    cosine: bool,
    fit_sample: usize,
    max_iter: usize,
    n_init: usize,
    column: String,
    /// The graph's settings when assignment searches one.
    ann: Option<AnnParams>,
    /// The centroids (and graph), loaded once per process for all tasks.
    model: Arc<Mutex<Option<Arc<Model>>>>,
}

/// What assignment needs: the centroids and, for `hnsw`, their graph.
struct Model {
    centroids: Centroids,
    graph: Option<Ann>,
}

fn build(ctx: &BuildCtx<'_>) -> Result<Op, SpecError> {
    let c: Config = ctx.config()?;
    if c.k == 0 {
        return Err(ctx.error("k", "`k` must be at least 1".into()));
    }
    let cosine = c.metric == Metric::Cosine;
    if c.fit_sample < c.k {
        return Err(ctx.error(
            "fit_sample",
            format!(
                "`fit_sample` ({}) must be at least k ({})",
                c.fit_sample, c.k
            ),
        ));
    }
    // Each start and iteration is a pass over the sample: past these, a
    // run would not end in any useful time (a typo, not a setting).
    if !(1..=100_000).contains(&c.max_iter) {
        return Err(ctx.error(
            "max_iter",
            format!(
                "`max_iter` must be between 1 and 100000, not {}",
                c.max_iter
            ),
        ));
    }
    if !(1..=1000).contains(&c.n_init) {
        return Err(ctx.error(
            "n_init",
            format!("`n_init` must be between 1 and 1000, not {}", c.n_init),
        ));
    }
    let params = AnnParams {
        m: c.hnsw_m,
        ef_construction: c.hnsw_ef_construction,
        ef: c.hnsw_ef,
    };
    if let Some((key, msg)) = params.problem() {
        return Err(ctx.error(key, msg));
    }
    let from = graph_from(c.assign, c.hnsw_min_k);
    let ann = (c.k >= from).then_some(params);
    Ok(Op::Global(Arc::new(Cluster {
        k: c.k,
        seed: c.seed,
        cosine,
        fit_sample: c.fit_sample,
        max_iter: c.max_iter,
        n_init: c.n_init,
        column: c.column,
        ann,
        model: Arc::default(),
    })))
}

/// The vectors of a batch.
fn vectors<'a>(batch: &'a DocBatch, column: &str) -> Result<VectorColumn<'a>> {
    VectorColumn::read(batch, column, "cluster", VECTORS_BEFORE)
}

/// What a missing vector column asks for.
const VECTORS_BEFORE: &str = "put an `embed` step before `cluster`";

fn sample_path(ctx: &GlobalCtx, task: usize) -> PathBuf {
    ctx.work.join("sample").join(format!("{task:05}.bin"))
}
fn centroids_path(ctx: &GlobalCtx) -> PathBuf {
    ctx.work.join("centroids.json")
}

/// Entry of the sample heap: the largest hash on top, to be evicted. Equal
/// hashes (repeated ids) are ordered by the vector, so the sample never
/// depends on the order documents arrive in.
struct Entry(u64, Vec<f32>);
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.cmp(&other.0).then_with(|| {
            self.1
                .iter()
                .zip(&other.1)
                .map(|(a, b)| a.total_cmp(b))
                .find(|o| o.is_ne())
                .unwrap_or(std::cmp::Ordering::Equal)
        })
    }
}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}
impl Eq for Entry {}

/// Keeps the `max` lowest-hash vectors.
struct Sample {
    heap: BinaryHeap<Entry>,
    max: usize,
    dim: usize,
}

impl Sample {
    fn offer(&mut self, hash: u64, v: &[f32]) {
        if self.heap.len() < self.max {
            self.heap.push(Entry(hash, v.to_vec()));
        } else {
            let e = Entry(hash, v.to_vec());
            if self.heap.peek().is_some_and(|top| e < *top) {
                self.heap.pop();
                self.heap.push(e);
            }
        }
    }
    fn sorted(self) -> Vec<Entry> {
        self.heap.into_sorted_vec()
    }
}

struct Sampler {
    sample: Sample,
    seed: u64,
    column: String,
    path: PathBuf,
}

impl Observer for Sampler {
    fn observe(&mut self, batch: &DocBatch, _first_row: u64) -> Result<()> {
        let vecs = vectors(batch, &self.column)?;
        let dim = vecs.dim;
        if self.sample.dim == 0 {
            self.sample.dim = dim;
        } else if dim != self.sample.dim {
            bail!(
                "cluster: vectors of length {dim} after vectors of length {}",
                self.sample.dim
            );
        }
        let ids = batch.ids();
        for i in 0..batch.num_rows() {
            if let Some(v) = vecs.get(i) {
                let h = xxh3_64_with_seed(ids.value(i).as_bytes(), self.seed);
                self.sample.offer(h, v);
            }
        }
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<()> {
        let dim = self.sample.dim;
        let mut out = Vec::new();
        out.extend((dim as u64).to_le_bytes());
        for Entry(h, v) in self.sample.sorted() {
            out.extend(h.to_le_bytes());
            for x in v {
                out.extend(x.to_le_bytes());
            }
        }
        crate::io::writer::write_atomic(&self.path, &out)
    }
}

/// The fitted model: what the filter loads.
#[derive(Serialize, Deserialize)]
struct Centroids {
    k: usize,
    dim: usize,
    cosine: bool,
    sample: usize,
    iterations: usize,
    /// Sum over the sample of the distance to the nearest centroid.
    inertia: f64,
    /// Sample documents per cluster.
    sizes: Vec<u64>,
    centroids: Vec<Vec<f32>>,
}

impl Cluster {
    fn kmeans(&self) -> KMeans {
        KMeans {
            k: self.k,
            max_iter: self.max_iter,
            cosine: self.cosine,
        }
    }

    fn fit(&self, ctx: &GlobalCtx) -> Result<()> {
        // The global sample: the fit_sample lowest hashes of all tasks'.
        let mut sample = Sample {
            heap: BinaryHeap::new(),
            max: self.fit_sample,
            dim: 0,
        };
        for t in 0..ctx.tasks {
            let p = sample_path(ctx, t);
            let bytes = crate::io::store::read(&p)?;
            let dim = u64::from_le_bytes(bytes[..8].try_into()?) as usize;
            if dim == 0 {
                continue;
            }
            if sample.dim != 0 && sample.dim != dim {
                bail!("cluster: vectors of length {dim} and {}", sample.dim);
            }
            sample.dim = dim;
            let rec = 8 + 4 * dim;
            if (bytes.len() - 8) % rec != 0 {
                bail!("{} is damaged; rerun with --force", p.display());
            }
            for r in bytes[8..].chunks_exact(rec) {
                let h = u64::from_le_bytes(r[..8].try_into()?);
                let v: Vec<f32> = r[8..]
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect();
                sample.offer(h, &v);
            }
        }
        let dim = sample.dim;
        let mut points: Vec<Vec<f32>> = sample.sorted().into_iter().map(|e| e.1).collect();
        if points.len() < self.k {
            bail!(
                "cluster: k = {} but only {} documents have vectors",
                self.k,
                points.len()
            );
        }
        if self.cosine {
            points.iter_mut().for_each(|v| normalize(v));
        }
        let n = points.len();

        let mut best: Option<Fit> = None;
        for start in 0..self.n_init {
            // Start 0 draws from the seed itself (so n_init = 1 is the
            // plain seeded run); the others from seeds derived from it.
            let seed = if start == 0 {
                self.seed
            } else {
                xxh3_64_with_seed(&(start as u64).to_le_bytes(), self.seed)
            };
            let run = self.kmeans().run(&points, dim, seed);
            if best.as_ref().is_none_or(|b| run.inertia < b.inertia) {
                best = Some(run);
            }
        }
        let Fit {
            inertia,
            iterations,
            sizes,
            centroids,
        } = best.expect("n_init >= 1");
        let model = Centroids {
            k: self.k,
            dim,
            cosine: self.cosine,
            sample: n,
            iterations,
            inertia,
            sizes,
            centroids,
        };
        let mut f = Vec::new();
        serde_json::to_writer(&mut f, &model)?;
        f.flush()?;
        crate::io::writer::write_atomic(&centroids_path(ctx), &f)
    }
}

impl Phased for Cluster {
    fn phases(self: Arc<Self>, _ctx: &GlobalCtx) -> Vec<PhaseSpec> {
        vec![PhaseSpec::new(&self, "fit", 1, |op, ctx, _| op.fit(ctx))]
    }

    fn observer(&self, ctx: &GlobalCtx, task: usize) -> Result<Box<dyn Observer>> {
        crate::io::store::create_dir_all(&ctx.work.join("sample"))?;
        Ok(Box::new(Sampler {
            sample: Sample {
                heap: BinaryHeap::new(),
                max: self.fit_sample,
                dim: 0,
            },
            seed: self.seed,
            column: self.column.clone(),
            path: sample_path(ctx, task),
        }))
    }
}

impl GlobalOp for Cluster {
    fn check_input(
        &self,
        schema: &arrow::datatypes::SchemaRef,
    ) -> Result<Option<arrow::datatypes::SchemaRef>> {
        crate::ops::vectors::vector_column::check(schema, &self.column, "cluster", VECTORS_BEFORE)?;
        use arrow::datatypes::{DataType, Field};
        Ok(Some(crate::ops::with_fields(
            schema,
            &[
                Field::new("cluster_id", DataType::UInt32, true),
                Field::new("cluster_dist", DataType::Float32, true),
            ],
        )))
    }

    fn filter(&self, ctx: &GlobalCtx, _task: usize) -> Result<Box<dyn RowFilter>> {
        Ok(Box::new(Assign {
            op: self.clone(),
            model: self.model(ctx)?,
        }))
    }
}

impl Cluster {
    /// The fitted centroids and, when assignment uses one, their graph:
    /// built once per process (inserted in centroid order, so the same
    /// graph every time) and shared by all tasks.
    fn model(&self, ctx: &GlobalCtx) -> Result<Arc<Model>> {
        let mut slot = self.model.lock().expect("no panics while held");
        if let Some(m) = slot.as_ref() {
            return Ok(m.clone());
        }
        let centroids: Centroids = crate::io::writer::read_work_json(&centroids_path(ctx))?;
        let graph = self.ann.map(|params| {
            let mut g = Ann::new(self.cosine, centroids.centroids.len(), &params);
            for (j, c) in centroids.centroids.iter().enumerate() {
                g.insert(c, j);
            }
            g
        });
        let m = Arc::new(Model { centroids, graph });
        *slot = Some(m.clone());
        Ok(m)
    }
}

/// Assigns each row to its nearest centroid.
struct Assign {
    op: Cluster,
    model: Arc<Model>,
}

impl RowFilter for Assign {
    fn apply(&mut self, batch: DocBatch, _first_row: u64) -> Result<OpOutput> {
        let vecs = vectors(&batch, &self.op.column)?;
        let dim = vecs.dim;
        let model = &self.model;
        if dim != model.centroids.dim {
            bail!(
                "cluster: vectors of length {dim}, centroids of length {}",
                model.centroids.dim
            );
        }
        let rows: Vec<usize> = (0..batch.num_rows()).collect();
        let out: Vec<Option<(u32, f32)>> = rows
            .par_chunks(64)
            .flat_map_iter(|chunk| {
                let present: Vec<Vec<f32>> = chunk
                    .iter()
                    .filter_map(|&i| vecs.get(i))
                    .map(|v| {
                        let mut v = v.to_vec();
                        if self.op.cosine {
                            normalize(&mut v);
                        }
                        v
                    })
                    .collect();
                let refs: Vec<&[f32]> = present.iter().map(|v| &v[..]).collect();
                let near = match &model.graph {
                    Some(g) => refs.iter().map(|v| g.search(v, 1)[0]).collect(),
                    None => self
                        .op
                        .kmeans()
                        .nearest_all(&refs, &model.centroids.centroids),
                };
                let mut near = near.into_iter();
                let out: Vec<Option<(u32, f32)>> = chunk
                    .iter()
                    .map(|&i| {
                        vecs.get(i)?;
                        let (j, d) = near.next().expect("one answer per vector");
                        let d = if self.op.cosine { d } else { d.max(0.0).sqrt() };
                        Some((j as u32, d))
                    })
                    .collect();
                out
            })
            .collect();
        let ids: UInt32Array = out.iter().map(|o| o.map(|x| x.0)).collect();
        let dists: Float32Array = out.iter().map(|o| o.map(|x| x.1)).collect();
        let batch = with_column(batch, "cluster_id", Arc::new(ids))?;
        let batch = with_column(batch, "cluster_dist", Arc::new(dists))?;
        Ok(OpOutput::new(batch, vec![]))
    }
}
