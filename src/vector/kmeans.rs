//! k-means on unit or plain vectors: greedy k-means++ seeding (as
//! scikit-learn) and Lloyd iterations, every sum in a fixed order so a fit
//! is the same bits whatever the thread count. The `cluster` op samples the
//! points, runs this, and assigns every document.

use rayon::prelude::*;

use crate::seeded::SplitMix64;
use crate::vector::vecmath::{dot, dots4xn, l2sq, normalize};

/// One k-means run's result.
pub struct Fit {
    /// Sum over the points of the distance to the nearest centroid.
    pub inertia: f64,
    pub iterations: usize,
    /// Points per cluster.
    pub sizes: Vec<u64>,
    pub centroids: Vec<Vec<f32>>,
}

/// The settings of a fit.
#[derive(Clone, Copy, Debug)]
pub struct KMeans {
    pub k: usize,
    pub max_iter: usize,
    /// Cosine distance (1 - dot) on unit vectors; else squared L2.
    pub cosine: bool,
}

impl KMeans {
    pub fn dist(&self, a: &[f32], c: &[f32]) -> f32 {
        if self.cosine {
            1.0 - dot(a, c)
        } else {
            l2sq(a, c)
        }
    }

    /// The nearest centroid (lowest index on ties) and the distance to it
    /// (squared for L2).
    pub fn nearest(&self, v: &[f32], centroids: &[Vec<f32>]) -> (usize, f32) {
        let mut best = (0, f32::INFINITY);
        for (j, c) in centroids.iter().enumerate() {
            let d = self.dist(v, c);
            if d < best.1 {
                best = (j, d);
            }
        }
        best
    }

    /// `nearest` for each of `vs`, the same answers: for cosine, four
    /// documents against two centroids a pass (`dots4x2`: each product the
    /// bits of `dot`), centroids still met in index order.
    pub fn nearest_all(&self, vs: &[&[f32]], centroids: &[Vec<f32>]) -> Vec<(usize, f32)> {
        let mut out = Vec::with_capacity(vs.len());
        let mut quads = vs.chunks_exact(4);
        if self.cosine {
            for q in quads.by_ref() {
                let q = [q[0], q[1], q[2], q[3]];
                let mut best = [(0usize, f32::INFINITY); 4];
                dots4xn(
                    q,
                    centroids.len(),
                    |j| &centroids[j],
                    |i, j, s| {
                        let d = 1.0 - s;
                        if d < best[i].1 {
                            best[i] = (j, d);
                        }
                    },
                );
                out.extend(best);
            }
        }
        let rest = if self.cosine { quads.remainder() } else { vs };
        out.extend(rest.iter().map(|v| self.nearest(v, centroids)));
        out
    }

    /// One k-means++ start and its Lloyd iterations: (inertia, iterations,
    /// sample documents per cluster, centroids).
    pub fn run(&self, points: &[Vec<f32>], dim: usize, seed: u64) -> Fit {
        let n = points.len();
        // Greedy k-means++ (as scikit-learn): for each next seed, 2 + ln k
        // candidates drawn with probability ∝ distance; the one that
        // lowers the total distance most is taken. Plain k-means++ often
        // puts two seeds in one true cluster, which Lloyd cannot undo.
        let mut rng = SplitMix64(seed);
        let mut centroids: Vec<Vec<f32>> =
            vec![points[(rng.next_u64() % n as u64) as usize].clone()];
        let mut dmin: Vec<f32> = points
            .par_iter()
            .map(|p| self.dist(p, &centroids[0]).max(0.0))
            .collect();
        let trials = 2 + (self.k as f64).ln() as usize;
        while centroids.len() < self.k {
            let total: f64 = dmin.iter().map(|d| *d as f64).sum();
            if total <= 0.0 {
                // Fewer distinct points than k: take the next in order.
                let c = points[centroids.len()].clone();
                centroids.push(c);
                continue;
            }
            let mut targets: Vec<f64> = (0..trials).map(|_| rng.unit() * total).collect();
            targets.sort_by(f64::total_cmp);
            let mut candidates = Vec::with_capacity(trials);
            let (mut acc, mut t) = (0.0, 0);
            for (i, d) in dmin.iter().enumerate() {
                acc += *d as f64;
                while t < targets.len() && acc > targets[t] {
                    candidates.push(i);
                    t += 1;
                }
            }
            candidates.extend(std::iter::repeat_n(n - 1, targets.len() - t));
            // The candidate whose new distances sum lowest (first on ties).
            let mut best: Option<(f64, usize, Vec<f32>)> = None;
            for &c in &candidates {
                let cand = &points[c];
                let d: Vec<f32> = dmin
                    .par_iter()
                    .zip(points)
                    .map(|(d, p)| d.min(self.dist(p, cand).max(0.0)))
                    .collect();
                let sum: f64 = d.iter().map(|x| *x as f64).sum();
                if best.as_ref().is_none_or(|b| sum < b.0) {
                    best = Some((sum, c, d));
                }
            }
            let (_, c, d) = best.expect("at least two candidates");
            dmin = d;
            centroids.push(points[c].clone());
        }

        // Lloyd iterations.
        let mut assign: Vec<usize> = vec![usize::MAX; n];
        let mut iterations = 0;
        for _ in 0..self.max_iter {
            iterations += 1;
            let new: Vec<usize> = points
                .par_chunks(64)
                .flat_map_iter(|c| {
                    let refs: Vec<&[f32]> = c.iter().map(|p| &p[..]).collect();
                    self.nearest_all(&refs, &centroids).into_iter().map(|n| n.0)
                })
                .collect();
            let changed = new != assign;
            assign = new;
            if !changed {
                break;
            }
            let mut sums = vec![vec![0f64; dim]; self.k];
            let mut counts = vec![0u64; self.k];
            for (p, &a) in points.iter().zip(&assign) {
                counts[a] += 1;
                for (s, x) in sums[a].iter_mut().zip(p) {
                    *s += *x as f64;
                }
            }
            for j in 0..self.k {
                // An emptied cluster keeps its centroid.
                if counts[j] > 0 {
                    let mut c: Vec<f32> = sums[j]
                        .iter()
                        .map(|s| (s / counts[j] as f64) as f32)
                        .collect();
                    if self.cosine {
                        normalize(&mut c);
                    }
                    centroids[j] = c;
                }
            }
        }
        let mut sizes = vec![0u64; self.k];
        let mut inertia = 0f64;
        let refs: Vec<&[f32]> = points.iter().map(|p| &p[..]).collect();
        for (j, d) in self.nearest_all(&refs, &centroids) {
            sizes[j] += 1;
            inertia += d as f64;
        }
        Fit {
            inertia,
            iterations,
            sizes,
            centroids,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Four at a time must answer as one at a time: the same centroid
    /// (lowest index on ties) and the same distance bits.
    #[test]
    fn nearest_all_answers_as_nearest() {
        let mut rnd = crate::vector::vecmath::test_values(11);
        for (cosine, dim, k, n) in [(true, 16, 7, 10), (true, 19, 8, 13), (false, 16, 5, 6)] {
            let mut vector = || {
                let mut v: Vec<f32> = (0..dim).map(|_| rnd()).collect();
                normalize(&mut v);
                v
            };
            let mut centroids: Vec<Vec<f32>> = (0..k).map(|_| vector()).collect();
            // A repeated centroid: ties go to the lower index.
            centroids[k - 1] = centroids[1].clone();
            let mut docs: Vec<Vec<f32>> = (0..n).map(|_| vector()).collect();
            docs[2] = centroids[1].clone();
            let op = KMeans {
                k,
                max_iter: 1,
                cosine,
            };
            let refs: Vec<&[f32]> = docs.iter().map(|v| &v[..]).collect();
            let want: Vec<(usize, u32)> = refs
                .iter()
                .map(|v| op.nearest(v, &centroids))
                .map(|(j, d)| (j, d.to_bits()))
                .collect();
            let got: Vec<(usize, u32)> = op
                .nearest_all(&refs, &centroids)
                .into_iter()
                .map(|(j, d)| (j, d.to_bits()))
                .collect();
            assert_eq!(got, want, "cosine {cosine}, {dim} dims, k {k}");
            assert_eq!(want[2].0, 1, "the tie goes to the lower index");
        }
    }
}
