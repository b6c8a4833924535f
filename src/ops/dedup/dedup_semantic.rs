//! `dedup_semantic` (SemDeDup, Abbas et al. 2023): within each cluster
//! (`cluster_id`, from the `cluster` step), documents are ranked (`keep`)
//! and taken in that order; one whose cosine similarity to an already kept
//! document is at least `1 - eps` is removed as `dedup_semantic`, with the
//! id of the most similar kept document. So every removed document has a
//! kept near-duplicate.
//!
//! Phases: each task writes `[cluster, rank, task, row, id, vector]` for its
//! rows, partitioned by cluster; one task per partition takes its clusters
//! one at a time and writes a decision per row, grouped by task; the filter
//! applies them in row order (with `dup_cluster`/`dup_count` as the other
//! dedup steps). A cluster is compared exactly (each document against every
//! kept one) or, when large (`neighbours`), through an HNSW graph of its
//! kept documents (`crate::vector::ann`): each document asks the graph for its
//! nearest kept one and joins the graph if it is not a duplicate. The graph
//! is built in rank order from one thread, so decisions are reproducible.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use arrow::array::{Array, Float32Array, UInt32Array};
use serde::{Deserialize, Serialize};

use crate::io::partfile::{put_str, put_u64, read_part, PartWriter};
use crate::ops::dedup::dup::{put_decision, read_decisions, DecisionFilter, KeepScores};
use crate::ops::vectors::vector_column::VectorColumn;
use crate::ops::{
    shape, BuildCtx, DocBatch, GlobalCtx, GlobalOp, Observer, Op, OpInfo, OpKind, ParamDoc,
    PhaseSpec, Phased, RowFilter,
};
use crate::pipeline::spec::SpecError;
use crate::vector::ann::{graph_from, Ann, AnnParams, GraphUse};
use crate::vector::screen::{Quantised, Screen, Tiles, DOCS as SCREEN_DOCS, TILE as SCREEN_TILE};
use crate::vector::vecmath::{dot, dots4xn, normalize};

/// From this cluster size on, `neighbours = "auto"` searches an HNSW graph
/// (docs/benchmarks.md: below it the exact scan is faster; parity extrapolated
/// from 10,000-document clusters, where the graph is ~11x slower).
const HNSW_MIN_CLUSTER: usize = 150_000;

#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
struct Config {
    eps: f64,
    keep: String,
    column: String,
    neighbours: GraphUse,
    hnsw_min_cluster: usize,
    hnsw_m: usize,
    hnsw_ef_construction: usize,
    hnsw_ef: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            eps: 0.05,
            keep: "hard".into(),
            column: crate::ops::vectors::embed::EMBEDDING.into(),
            neighbours: GraphUse::Auto,
            hnsw_min_cluster: HNSW_MIN_CLUSTER,
            hnsw_m: crate::vector::ann::default_m(),
            hnsw_ef_construction: crate::vector::ann::default_ef_construction(),
            hnsw_ef: crate::vector::ann::default_ef(),
        }
    }
}

pub const INFO: OpInfo = OpInfo {
    name: "dedup_semantic",
    kind: OpKind::Global,
    summary: "SemDeDup: within each cluster (after `cluster`), removes documents whose cosine \
              similarity to a kept, higher-ranked one is at least 1 - eps.",
    params: &[
        ParamDoc {
            name: "eps",
            kind: "float",
            default: "0.05",
            doc: "remove at cosine similarity >= 1 - eps",
        },
        ParamDoc {
            name: "keep",
            kind: "string",
            default: "\"hard\"",
            doc: "which goes first: `hard` (farthest from the centroid), `easy` (nearest), \
                  `first` (input order) or a numeric column (largest)",
        },
        ParamDoc {
            name: "column",
            kind: "string",
            default: "\"embedding\"",
            doc: "the vectors",
        },
        ParamDoc {
            name: "neighbours",
            kind: "string",
            default: "\"auto\"",
            doc: "how a document finds its nearest kept one: `exact` (compared with all), \
                  `hnsw` (an HNSW graph: approximate, faster only in very large clusters) or \
                  `auto` (hnsw in clusters of `hnsw_min_cluster` documents or more)",
        },
        ParamDoc {
            name: "hnsw_min_cluster",
            kind: "integer",
            default: "150000",
            doc: "with `neighbours = \"auto\"`, the cluster size from which the graph is used",
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
            doc: "candidates examined when adding a document to the graph",
        },
        ParamDoc {
            name: "hnsw_ef",
            kind: "integer",
            default: "64",
            doc: "candidates examined per search (higher: closer to exact, slower)",
        },
    ],
    drop_reasons: &["dedup_semantic"],
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
op = "dedup_semantic"
eps = 0.1
"#,
    about: r#"
SemDeDup within each `cluster_id` (a `cluster` step must come before):
removes a document at cosine ≥ 1 − eps to a kept one (the kept neighbour's
id in `drop_detail`). `keep` orders each cluster: `"hard"`, farthest from
the centroid first (the default); `"easy"`, nearest first; `"first"`, input
order; or a numeric column, largest first. Adds `dup_cluster` and
`dup_count`. See [embeddings.md, Semantic dedup](embeddings.md#semantic-dedup).
"#,
};

#[derive(Clone)]
enum Keep {
    Hard,
    Easy,
    First,
    Column(String),
}

#[derive(Clone)]
pub struct DedupSemantic {
    eps: f64,
    keep: Keep,
    column: String,
    /// Clusters of at least this size use the graph (`usize::MAX`: never).
    hnsw_min_cluster: usize,
    ann: AnnParams,
}

fn build(ctx: &BuildCtx<'_>) -> Result<Op, SpecError> {
    let c: Config = ctx.config()?;
    if !(0.0..=2.0).contains(&c.eps) {
        return Err(ctx.error(
            "eps",
            format!("`eps` must be between 0 and 2, not {}", c.eps),
        ));
    }
    let keep = match c.keep.as_str() {
        "hard" => Keep::Hard,
        "easy" => Keep::Easy,
        "first" => Keep::First,
        col => Keep::Column(col.to_string()),
    };
    let ann = AnnParams {
        m: c.hnsw_m,
        ef_construction: c.hnsw_ef_construction,
        ef: c.hnsw_ef,
    };
    if let Some((key, msg)) = ann.problem() {
        return Err(ctx.error(key, msg));
    }
    let hnsw_min_cluster = graph_from(c.neighbours, c.hnsw_min_cluster);
    Ok(Op::Global(Arc::new(DedupSemantic {
        eps: c.eps,
        keep,
        column: c.column,
        hnsw_min_cluster,
        ann,
    })))
}

fn parts_path(ctx: &GlobalCtx, task: usize) -> PathBuf {
    ctx.work.join("vectors").join(format!("{task:05}.part"))
}
fn decisions_path(ctx: &GlobalCtx, p: usize) -> PathBuf {
    ctx.work.join("decisions").join(format!("{p:05}.part"))
}
fn partitions(ctx: &GlobalCtx) -> usize {
    ctx.tasks.max(1)
}

struct Spiller {
    op: DedupSemantic,
    task: usize,
    parts: PartWriter,
    partitions: usize,
}

/// What a missing vector column asks for.
const VECTORS_BEFORE: &str = "put `embed` and `cluster` before it";
const NO_CLUSTERS: &str = "dedup_semantic: no `cluster_id` column (put a `cluster` step before it)";

impl Observer for Spiller {
    fn observe(&mut self, batch: &DocBatch, first_row: u64) -> Result<()> {
        let vecs = VectorColumn::read(batch, &self.op.column, "dedup_semantic", VECTORS_BEFORE)?;
        let clusters = batch
            .data
            .column_by_name("cluster_id")
            .and_then(|c| c.as_any().downcast_ref::<UInt32Array>())
            .context(NO_CLUSTERS)?;
        let dist = batch
            .data
            .column_by_name("cluster_dist")
            .and_then(|c| c.as_any().downcast_ref::<Float32Array>());
        let scores = match &self.op.keep {
            Keep::Column(c) => Some(KeepScores::read(batch, Some(c), "dedup_semantic")?),
            _ => None,
        };
        if matches!(self.op.keep, Keep::Hard | Keep::Easy) && dist.is_none() {
            bail!("dedup_semantic: `keep = hard/easy` needs `cluster_dist` (from `cluster`)");
        }
        let ids = batch.ids();
        for i in 0..batch.num_rows() {
            let Some(v) = vecs.get(i).filter(|_| clusters.is_valid(i)) else {
                continue;
            };
            // Lower rank goes first.
            let rank: f64 = match &self.op.keep {
                Keep::Hard => -(dist.map_or(0.0, |d| d.value(i)) as f64),
                Keep::Easy => dist.map_or(0.0, |d| d.value(i)) as f64,
                Keep::First => 0.0,
                Keep::Column(_) => -scores.as_ref().map_or(0.0, |s| s.get(i)),
            };
            let cluster = clusters.value(i) as u64;
            let p = (cluster % self.partitions as u64) as usize;
            let buf = self.parts.part(p);
            put_u64(buf, cluster);
            put_u64(buf, rank.to_bits());
            put_u64(buf, self.task as u64);
            put_u64(buf, first_row + i as u64);
            put_str(buf, ids.value(i));
            put_u64(buf, v.len() as u64);
            for x in v {
                buf.extend(x.to_le_bytes());
            }
        }
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<()> {
        self.parts.finish()
    }
}

struct Doc {
    cluster: u64,
    rank: f64,
    task: u64,
    row: u64,
    id: String,
    vector: Vec<f32>,
}

fn parse(slice: &[u8], path: &std::path::Path) -> Result<Vec<Doc>> {
    let corrupt = || format!("intermediate file {} is corrupt", path.display());
    let mut docs = vec![];
    let mut at = 0;
    let u64_at = |at: &mut usize| -> Result<u64> {
        let b = slice.get(*at..*at + 8).with_context(corrupt)?;
        *at += 8;
        Ok(u64::from_le_bytes(b.try_into()?))
    };
    while at < slice.len() {
        let cluster = u64_at(&mut at)?;
        let rank = f64::from_bits(u64_at(&mut at)?);
        let task = u64_at(&mut at)?;
        let row = u64_at(&mut at)?;
        // put_str: a u32 length, then the bytes.
        let len = slice.get(at..at + 4).with_context(corrupt)?;
        let n = u32::from_le_bytes(len.try_into()?) as usize;
        at += 4;
        let id = std::str::from_utf8(slice.get(at..at + n).with_context(corrupt)?)
            .with_context(corrupt)?
            .to_string();
        at += n;
        let dim = u64_at(&mut at)? as usize;
        let raw = slice.get(at..at + 4 * dim).with_context(corrupt)?;
        at += 4 * dim;
        let mut vector: Vec<f32> = raw
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        normalize(&mut vector);
        docs.push(Doc {
            cluster,
            rank,
            task,
            row,
            id,
            vector,
        });
    }
    Ok(docs)
}

/// Documents compared at once with the kept set, and kept documents read
/// per pass: each kept vector then comes from memory once per block of
/// documents instead of once per document (the scan is memory-bound).
const BLOCK: usize = 32;
const TILE: usize = 64;

/// Keeps the most similar kept document at or above the threshold (the
/// first in kept order on ties).
fn better(best: &mut Option<(f32, usize)>, s: f32, k: usize, threshold: f32) {
    if s >= threshold && best.is_none_or(|(bs, _)| s > bs) {
        *best = Some((s, k));
    }
}

/// For each document of a cluster (in rank order), the kept document it
/// duplicates, if any: compared with every kept document, the most similar
/// one named (the first in kept order on ties). A block of documents is
/// compared with the documents kept before it, then each with those kept
/// within the block, in order: the same decisions as one document at a
/// time. Where the CPU can, an integer screen (`crate::vector::screen`)
/// first rules out the pairs that cannot reach the threshold; the rest are
/// compared as without it, so the decisions do not depend on the CPU.
fn by_scan(cluster: &[Doc], threshold: f32) -> Vec<Option<usize>> {
    let dim = cluster.first().map_or(0, |d| d.vector.len());
    let screen = Screen::new(cluster.iter().map(|d| &d.vector[..]), dim, threshold);
    scan(cluster, threshold, screen.as_ref().map(|(s, q)| (s, q)))
}

fn scan(
    cluster: &[Doc],
    threshold: f32,
    screen: Option<(&Screen, &Quantised)>,
) -> Vec<Option<usize>> {
    let dim = cluster.first().map_or(0, |d| d.vector.len());
    let mut kept: Vec<usize> = vec![];
    // The kept vectors side by side, in kept order: a tile is one run of
    // memory, streamed without a pointer per document.
    let mut kept_vecs: Vec<f32> = vec![];
    let mut screened = screen.map(|(s, q)| (s, q, Tiles::new(s.padded())));
    let mut of: Vec<Option<usize>> = vec![None; cluster.len()];
    for start in (0..cluster.len()).step_by(BLOCK) {
        let block = &cluster[start..(start + BLOCK).min(cluster.len())];
        let before = kept.len();
        let mut best: Vec<Option<(f32, usize)>> = vec![None; block.len()];
        match &screened {
            Some((s, q, tiles)) => screened_pass(
                block,
                start,
                &kept[..before],
                &kept_vecs,
                s,
                q,
                tiles,
                threshold,
                &mut best,
            ),
            None => float_pass(block, &kept[..before], &kept_vecs, threshold, &mut best),
        }
        for (i, (mut b, d)) in best.into_iter().zip(block).enumerate() {
            for (j, &k) in kept.iter().enumerate().skip(before) {
                let kvec = &kept_vecs[j * dim..(j + 1) * dim];
                better(&mut b, dot(&d.vector, kvec), k, threshold);
            }
            match b {
                Some((_, k)) => of[start + i] = Some(k),
                None => {
                    kept.push(start + i);
                    kept_vecs.extend_from_slice(&d.vector);
                    if let Some((_, q, tiles)) = &mut screened {
                        tiles.push(q.kept(start + i));
                    }
                }
            }
        }
    }
    of
}

/// A block against the kept documents before it, every pair in floats.
fn float_pass(
    block: &[Doc],
    kept: &[usize],
    kept_vecs: &[f32],
    threshold: f32,
    best: &mut [Option<(f32, usize)>],
) {
    let dim = block[0].vector.len();
    for (t, tile) in kept.chunks(TILE).enumerate() {
        let tile_vecs = &kept_vecs[t * TILE * dim..(t * TILE + tile.len()) * dim];
        let v = |j: usize| &tile_vecs[j * dim..(j + 1) * dim];
        // Four documents against two kept ones at a time; each document
        // still meets the kept ones in kept order.
        let mut i = 0;
        while i + 4 <= block.len() {
            let a = [0, 1, 2, 3].map(|r| &block[i + r].vector[..]);
            let quad = &mut best[i..i + 4];
            dots4xn(a, tile.len(), v, |r, j, s| {
                better(&mut quad[r], s, tile[j], threshold)
            });
            i += 4;
        }
        for (b, d) in best[i..].iter_mut().zip(&block[i..]) {
            for (j, &k) in tile.iter().enumerate() {
                better(b, dot(&d.vector, v(j)), k, threshold);
            }
        }
    }
}

/// A block against the kept documents before it: the integer screen over
/// 16 kept a tile and 8 documents at a time, then the float `dot` for the
/// pairs it lets through, in kept order.
#[allow(clippy::too_many_arguments)]
fn screened_pass(
    block: &[Doc],
    start: usize,
    kept: &[usize],
    kept_vecs: &[f32],
    screen: &Screen,
    q: &Quantised,
    tiles: &Tiles,
    threshold: f32,
    best: &mut [Option<(f32, usize)>],
) {
    let dim = block[0].vector.len();
    let doc = |i: usize| q.doc(start + i);
    for t in 0..kept.len().div_ceil(SCREEN_TILE) {
        let lanes = (kept.len() - t * SCREEN_TILE).min(SCREEN_TILE);
        let valid = (1u32 << lanes) - 1;
        for g in (0..block.len()).step_by(SCREEN_DOCS) {
            // Short of 8 documents, the last one fills the rest (ignored).
            let idx: [usize; SCREEN_DOCS] = std::array::from_fn(|i| (g + i).min(block.len() - 1));
            let sums = idx.map(|i| q.sums[start + i]);
            let masks = screen.pass(tiles, t, idx.map(doc), sums);
            for (i, m) in masks.into_iter().enumerate().take(block.len() - g) {
                let mut m = m as u32 & valid;
                while m != 0 {
                    let j = t * SCREEN_TILE + m.trailing_zeros() as usize;
                    m &= m - 1;
                    let kvec = &kept_vecs[j * dim..(j + 1) * dim];
                    better(
                        &mut best[g + i],
                        dot(&block[g + i].vector, kvec),
                        kept[j],
                        threshold,
                    );
                }
            }
        }
    }
}

impl DedupSemantic {
    /// As `by_scan`, but each document asks an HNSW graph of the kept ones
    /// for its nearest and joins the graph when it is kept.
    fn by_graph(&self, cluster: &[Doc], threshold: f32) -> Vec<Option<usize>> {
        let mut graph = Ann::new(true, cluster.len(), &self.ann);
        let mut of: Vec<Option<usize>> = vec![None; cluster.len()];
        for (i, d) in cluster.iter().enumerate() {
            let near = graph.search(&d.vector, 1).first().map(|&(k, _)| k);
            match near {
                Some(k) if dot(&d.vector, &cluster[k].vector) >= threshold => of[i] = Some(k),
                _ => graph.insert(&d.vector, i),
            }
        }
        of
    }

    fn dedup_partition(&self, ctx: &GlobalCtx, p: usize) -> Result<()> {
        let mut docs = vec![];
        for t in 0..ctx.tasks {
            let path = parts_path(ctx, t);
            docs.extend(parse(&read_part(&path, p)?, &path)?);
        }
        docs.sort_by(|a, b| {
            a.cluster
                .cmp(&b.cluster)
                .then(a.rank.total_cmp(&b.rank))
                .then((a.task, a.row).cmp(&(b.task, b.row)))
        });
        let threshold = (1.0 - self.eps) as f32;
        let mut out = PartWriter::new(&decisions_path(ctx, p), ctx.tasks);
        let mut start = 0;
        while start < docs.len() {
            let end = start
                + docs[start..]
                    .iter()
                    .take_while(|d| d.cluster == docs[start].cluster)
                    .count();
            let cluster = &docs[start..end];
            let of = if cluster.len() >= self.hnsw_min_cluster {
                self.by_graph(cluster, threshold)
            } else {
                by_scan(cluster, threshold)
            };
            let mut size = vec![1u64; cluster.len()];
            for k in of.iter().flatten() {
                size[*k] += 1;
            }
            for (i, d) in cluster.iter().enumerate() {
                let head = of[i].unwrap_or(i);
                let h = &cluster[head];
                let group = (h.task << 40) | h.row;
                put_decision(
                    out.part(d.task as usize),
                    d.row,
                    group,
                    size[head],
                    of[i].map(|k| cluster[k].id.as_str()),
                );
            }
            start = end;
        }
        out.finish()
    }
}

impl Phased for DedupSemantic {
    fn phases(self: Arc<Self>, ctx: &GlobalCtx) -> Vec<PhaseSpec> {
        vec![PhaseSpec::new(
            &self,
            "dedup",
            partitions(ctx),
            |op, ctx, index| {
                crate::io::store::create_dir_all(&ctx.work.join("decisions"))?;
                op.dedup_partition(ctx, index)
            },
        )]
    }

    fn observer(&self, ctx: &GlobalCtx, task: usize) -> Result<Box<dyn Observer>> {
        crate::io::store::create_dir_all(&ctx.work.join("vectors"))?;
        Ok(Box::new(Spiller {
            op: self.clone(),
            task,
            parts: PartWriter::with_spill(
                &parts_path(ctx, task),
                partitions(ctx),
                ctx.task_budget(256 << 20) as usize,
            ),
            partitions: partitions(ctx),
        }))
    }
}

impl GlobalOp for DedupSemantic {
    fn reports_group_sizes(&self) -> bool {
        true
    }

    fn check_input(
        &self,
        schema: &arrow::datatypes::SchemaRef,
    ) -> Result<Option<arrow::datatypes::SchemaRef>> {
        crate::ops::vectors::vector_column::check(
            schema,
            &self.column,
            "dedup_semantic",
            VECTORS_BEFORE,
        )?;
        if schema.field_with_name("cluster_id").is_err() {
            bail!("{NO_CLUSTERS}");
        }
        if let Keep::Column(c) = &self.keep {
            crate::ops::dedup::dup::check_keep(schema, Some(c), "dedup_semantic")?;
        }
        Ok(Some(crate::ops::dedup::dup::with_dup_fields(schema)))
    }

    fn filter(&self, ctx: &GlobalCtx, task: usize) -> Result<Box<dyn RowFilter>> {
        let paths = (0..partitions(ctx)).map(|p| decisions_path(ctx, p));
        let t = task as u64;
        // Rows without a vector or cluster are their own group.
        let alone = move |row: u64| (1u64 << 63) | (t << 40) | row;
        Ok(Box::new(DecisionFilter::new(
            "dedup_semantic",
            read_decisions(paths, task)?,
            Some(Box::new(alone)),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vector::screen::Kernel;

    /// One document at a time against every kept one: what `by_scan`
    /// must decide, block by block.
    fn one_at_a_time(cluster: &[Doc], threshold: f32) -> Vec<Option<usize>> {
        let mut kept: Vec<usize> = vec![];
        let mut of = vec![None; cluster.len()];
        for (i, d) in cluster.iter().enumerate() {
            let mut best: Option<(f32, usize)> = None;
            for &k in &kept {
                let s = dot(&d.vector, &cluster[k].vector);
                if s >= threshold && best.is_none_or(|(bs, _)| s > bs) {
                    best = Some((s, k));
                }
            }
            match best {
                Some((_, k)) => of[i] = Some(k),
                None => kept.push(i),
            }
        }
        of
    }

    #[test]
    fn blocks_decide_as_one_document_at_a_time() {
        let mut rnd = crate::vector::vecmath::test_values(3);
        // 16 dimensions: whole 8-value chunks; 19: a remainder too.
        for dim in [16, 19] {
            let mut bases: Vec<Vec<f32>> = vec![];
            let mut cluster = vec![];
            for i in 0..700 {
                // Every third document copies (exactly, or nudged) an earlier base,
                // so blocks hold duplicates of each other and of older documents,
                // with ties between exact copies.
                let mut v: Vec<f32> = if i % 3 == 2 && !bases.is_empty() {
                    let b = &bases[(rnd().abs() * bases.len() as f32) as usize % bases.len()];
                    let nudge = if i % 2 == 0 { 0.0 } else { 0.02 };
                    b.iter().map(|x| x + rnd() * nudge).collect()
                } else {
                    (0..dim).map(|_| rnd()).collect()
                };
                normalize(&mut v);
                bases.push(v.clone());
                cluster.push(Doc {
                    cluster: 0,
                    rank: 0.0,
                    task: 0,
                    row: i,
                    id: format!("d{i}"),
                    vector: v,
                });
            }
            for threshold in [0.9f32, 0.99, 0.5] {
                let want = one_at_a_time(&cluster, threshold);
                assert!(want.iter().filter(|o| o.is_some()).count() > 100);
                assert_eq!(
                    scan(&cluster, threshold, None),
                    want,
                    "floats, at {threshold}, {dim} dimensions"
                );
                let vecs = || cluster.iter().map(|d| &d.vector[..]);
                for kernel in Kernel::available() {
                    let (screen, q) = Screen::with_kernel(kernel, vecs(), dim, threshold).unwrap();
                    assert_eq!(
                        scan(&cluster, threshold, Some((&screen, &q))),
                        want,
                        "screened ({kernel:?}), at {threshold}, {dim} dimensions"
                    );
                }
            }
        }
    }
}
