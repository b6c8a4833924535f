//! Approximate nearest neighbours on an HNSW graph (`hnsw_rs`), for
//! `cluster` (nearest centroid when k is large) and `dedup_semantic`
//! (nearest kept document in large clusters).
//!
//! Reproducible: hnsw_rs draws node levels from a generator seeded with a
//! constant, so a graph built from the same vectors inserted in the same
//! order, from one thread, is the same graph, and a search on it gives the
//! same answer whatever thread runs it. Callers therefore insert serially,
//! in a fixed order, and parallelise over independent graphs or queries.

use hnsw_rs::prelude::{Distance, Hnsw};

use crate::vector::vecmath::{dot, l2sq};

/// Layers of the graph (hnsw_rs's maximum); levels above the data's
/// needs are simply empty.
const MAX_LAYERS: usize = 16;

/// The graph's settings, as the ops' `hnsw_m`, `hnsw_ef_construction` and
/// `hnsw_ef` keys give them.
#[derive(Clone, Copy, Debug)]
pub struct AnnParams {
    /// Links per node and layer (twice that on the bottom layer).
    pub m: usize,
    /// Candidates examined when linking a new node.
    pub ef_construction: usize,
    /// Candidates examined per search.
    pub ef: usize,
}

/// The defaults of `hnsw_m`, `hnsw_ef_construction` and `hnsw_ef`, for
/// every op with a graph. Lighter graphs (12 / 48 / 32) run twice as fast
/// but miss 2% of the exact removals in 10k-document clusters of synthetic
/// vectors (docs/benchmarks.md).
pub fn default_m() -> usize {
    16
}
pub fn default_ef_construction() -> usize {
    100
}
pub fn default_ef() -> usize {
    64
}

impl AnnParams {
    /// Why the settings cannot build a graph, naming the key.
    pub fn problem(&self) -> Option<(&'static str, String)> {
        if !(2..=256).contains(&self.m) {
            return Some((
                "hnsw_m",
                format!("`hnsw_m` must be between 2 and 256, not {}", self.m),
            ));
        }
        if self.ef_construction == 0 {
            return Some((
                "hnsw_ef_construction",
                "`hnsw_ef_construction` must be at least 1".into(),
            ));
        }
        if self.ef == 0 {
            return Some(("hnsw_ef", "`hnsw_ef` must be at least 1".into()));
        }
        None
    }
}

/// Whether an op compares exactly or searches a graph (`assign`,
/// `neighbours`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GraphUse {
    /// The graph from a size on (`auto_from` of [`graph_from`]).
    #[default]
    Auto,
    Exact,
    Hnsw,
}

/// From which size (k centroids, documents in a cluster) an op searches a
/// graph; `usize::MAX` is never.
pub fn graph_from(mode: GraphUse, auto_from: usize) -> usize {
    match mode {
        GraphUse::Exact => usize::MAX,
        GraphUse::Hnsw => 0,
        GraphUse::Auto => auto_from,
    }
}

/// Cosine distance (1 − dot, for unit vectors) or squared L2, with the
/// same kernels as the exact paths.
#[derive(Clone, Copy)]
struct Metric {
    cosine: bool,
}

impl Distance<f32> for Metric {
    fn eval(&self, a: &[f32], b: &[f32]) -> f32 {
        let d = if self.cosine {
            1.0 - dot(a, b)
        } else {
            l2sq(a, b)
        };
        // hnsw_rs panics on NaN and expects no negative distance; rounding
        // makes 1 − dot a hair below zero for equal unit vectors.
        if d.is_nan() {
            f32::INFINITY
        } else {
            d.max(0.0)
        }
    }
}

pub struct Ann {
    graph: Hnsw<'static, f32, Metric>,
    ef: usize,
    len: usize,
}

impl Ann {
    /// An empty graph for about `capacity` vectors.
    pub fn new(cosine: bool, capacity: usize, params: &AnnParams) -> Ann {
        Ann {
            graph: Hnsw::new(
                params.m,
                capacity.max(1),
                MAX_LAYERS,
                params.ef_construction,
                Metric { cosine },
            ),
            ef: params.ef,
            len: 0,
        }
    }

    /// Adds `v` under `id`. The graph depends on the order of insertions,
    /// so they must come in a fixed order from one thread.
    pub fn insert(&mut self, v: &[f32], id: usize) {
        self.graph.insert_slice((v, id));
        self.len += 1;
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Up to `k` indexed vectors near `v`, as (id, distance), nearest first
    /// (ties by id). Approximate: the true nearest may be missed.
    pub fn search(&self, v: &[f32], k: usize) -> Vec<(usize, f32)> {
        if self.len == 0 || k == 0 {
            return vec![];
        }
        let mut out: Vec<(usize, f32)> = self
            .graph
            .search(v, k, self.ef.max(k))
            .into_iter()
            .map(|n| (n.d_id, n.distance))
            .collect();
        out.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vector::vecmath::normalize;

    fn vectors(n: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
        let mut next = crate::vector::vecmath::test_values(seed);
        (0..n)
            .map(|_| {
                let mut v: Vec<f32> = (0..dim).map(|_| next()).collect();
                normalize(&mut v);
                v
            })
            .collect()
    }

    fn exact(data: &[Vec<f32>], q: &[f32]) -> usize {
        let mut best = (0, f32::NEG_INFINITY);
        for (i, v) in data.iter().enumerate() {
            let s = dot(q, v);
            if s > best.1 {
                best = (i, s);
            }
        }
        best.0
    }

    const P: AnnParams = AnnParams {
        m: 16,
        ef_construction: 100,
        ef: 64,
    };

    #[test]
    fn finds_the_exact_nearest_almost_always() {
        let data = vectors(3000, 32, 1);
        let mut ann = Ann::new(true, data.len(), &P);
        for (i, v) in data.iter().enumerate() {
            ann.insert(v, i);
        }
        assert_eq!(ann.len(), 3000);
        let queries = vectors(500, 32, 2);
        let hits = queries
            .iter()
            .filter(|q| ann.search(q, 1)[0].0 == exact(&data, q))
            .count();
        assert!(hits >= 495, "{hits} of 500");
        // A stored vector finds itself at distance 0.
        let me = ann.search(&data[17], 3);
        assert_eq!(me[0], (17, 0.0));
        assert!(me[1].1 >= me[0].1 && me.len() == 3);
    }

    #[test]
    fn the_same_insertions_give_the_same_answers() {
        let data = vectors(2000, 16, 3);
        let queries = vectors(300, 16, 4);
        let answers = || {
            let mut ann = Ann::new(true, data.len(), &P);
            for (i, v) in data.iter().enumerate() {
                ann.insert(v, i);
            }
            queries.iter().map(|q| ann.search(q, 5)).collect::<Vec<_>>()
        };
        let a = answers();
        let b = std::thread::scope(|s| s.spawn(answers).join().unwrap());
        assert_eq!(a, b);
    }

    #[test]
    fn empty_graphs_and_bad_settings() {
        let ann = Ann::new(false, 0, &P);
        assert!(ann.is_empty() && ann.search(&[1.0, 2.0], 4).is_empty());
        let bad = AnnParams { m: 1, ..P };
        assert_eq!(bad.problem().unwrap().0, "hnsw_m");
        let bad = AnnParams { ef: 0, ..P };
        assert_eq!(bad.problem().unwrap().0, "hnsw_ef");
        assert!(P.problem().is_none());
    }
}
