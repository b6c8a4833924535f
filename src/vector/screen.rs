//! An integer screen for "is the cosine of these two unit vectors at least
//! `threshold`?", used by `dedup_semantic`'s exact scan. Vectors of a
//! cluster are quantised to bytes (a scale per side: see `Screen`); the integer dot product
//! of two quantised vectors, plus a proven bound on its error, tells which
//! pairs cannot reach the threshold. Only the others get the float `dot`,
//! so decisions are exactly those of comparing every pair with `dot`: the
//! screen only saves work, it never decides.
//!
//! Why integers: with AVX-512 VNNI one instruction does 64 multiply-adds of
//! bytes (16 kept vectors × 4 dimensions), where the float scan does 8 per
//! multiply and add pair, and a byte vector is a quarter of the memory.
//! With AVX2 only, three instructions do 32 (`screen_avx2`). Without
//! either there is no screen (`Screen::new` is `None`) and the scan
//! compares floats, with the same results.
//!
//! The bound: write the document a = sd·qa + ea and the kept vector
//! b = sk·qb + eb (s the scales, q the integers, e the rounding left over).
//! Then a·b − sd·sk(qa·qb) = ea·b + sd·qa·eb, at most |ea|·|b| + |sd·qa|·|eb|
//! (Cauchy–Schwarz), and `dot` (floats, d products summed in any order)
//! lies within γ_d·|a|·|b| of a·b, γ_d = d·u/(1 − d·u), u = 2⁻²⁴. With Rd
//! and Rk the largest |e| as document and as kept vector, N the largest
//! |v| and M the largest |sd·q| of the cluster:
//! dot(a, b) ≤ sd·sk(qa·qb) + Rd·N + M·Rk + γ_d·N². A pair whose integer
//! product is below (threshold − that) / (sd·sk) is left out; the cut is
//! rounded down, so rounding in computing it can only let more through.

/// Kept vectors per tile: one 64-byte register holds 4 dimensions of 16.
pub const TILE: usize = 16;
/// Documents screened against a tile at once (independent accumulators,
/// enough to hide the instruction's latency).
pub const DOCS: usize = 8;
/// Longer vectors are compared in floats only (see `Screen::with_kernel`).
const MAX_DIM: usize = 16_384;

/// The instructions a screen runs on, chosen from the CPU: all give the
/// same masks (exact integer sums).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kernel {
    /// AVX-512 VNNI: 64 byte products an instruction.
    Vnni,
    /// AVX2: 32 byte products in three instructions.
    Avx2,
}

impl Kernel {
    /// The fastest kernel this CPU runs, if any is faster than floats.
    pub fn best() -> Option<Kernel> {
        Kernel::available().into_iter().next()
    }

    /// The kernels this CPU runs, fastest first.
    pub fn available() -> Vec<Kernel> {
        let mut out = vec![];
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            if has!("avx512f") && has!("avx512vnni") {
                out.push(Kernel::Vnni);
            }
            if has!("avx2") {
                out.push(Kernel::Avx2);
            }
        }
        out
    }
}

/// Kept vectors are bytes of ±127 at one scale (the cluster's largest
/// component / 127) and documents bytes of ±127 (VNNI) or ±63 (AVX2, see
/// `screen_avx2`) at another.
pub struct Screen {
    kernel: Kernel,
    /// Dimensions, padded to a multiple of 4 (the pad is zeros).
    padded: usize,
    /// Integer products below this cannot reach the threshold.
    cut: i64,
}

/// A cluster's vectors, quantised: as documents (`padded` signed bytes
/// each, and each one's sum: kept vectors are stored offset by 128, so the
/// offset's share, 128·Σq, comes off) and, where the scales differ, as
/// kept vectors.
pub struct Quantised {
    padded: usize,
    docs: Vec<i8>,
    pub sums: Vec<i64>,
    kept: Option<Vec<i8>>,
}

impl Quantised {
    /// Vector `i` as a document is screened.
    pub fn doc(&self, i: usize) -> &[i8] {
        &self.docs[i * self.padded..(i + 1) * self.padded]
    }

    /// Vector `i` as it joins the tiles when kept.
    pub fn kept(&self, i: usize) -> &[i8] {
        let bytes = self.kept.as_ref().unwrap_or(&self.docs);
        &bytes[i * self.padded..(i + 1) * self.padded]
    }
}

impl Screen {
    /// The screen for these vectors at `threshold` and the vectors in its
    /// bytes, or `None` where the CPU cannot run one or the vectors give no
    /// scale (all zero).
    pub fn new<'a>(
        vectors: impl Iterator<Item = &'a [f32]> + Clone,
        dim: usize,
        threshold: f32,
    ) -> Option<(Screen, Quantised)> {
        Screen::with_kernel(Kernel::best()?, vectors, dim, threshold)
    }

    /// As `new`, on a given kernel (which the CPU must run).
    pub fn with_kernel<'a>(
        kernel: Kernel,
        vectors: impl Iterator<Item = &'a [f32]> + Clone,
        dim: usize,
        threshold: f32,
    ) -> Option<(Screen, Quantised)> {
        assert!(
            Kernel::available().contains(&kernel),
            "{kernel:?} on this CPU"
        );
        // Past this the byte sums could leave 32 bits (127·255 a dimension).
        if dim == 0 || dim > MAX_DIM {
            return None;
        }
        let max = vectors
            .clone()
            .flat_map(|v| v.iter())
            .fold(0f32, |m, x| m.max(x.abs()));
        if !(max.is_finite() && max > 0.0) {
            return None;
        }
        let doc_limit = match kernel {
            Kernel::Vnni => 127.0,
            Kernel::Avx2 => 63.0,
        };
        let (kept_scale, doc_scale) = (max as f64 / 127.0, max as f64 / doc_limit);
        let padded = dim.div_ceil(4) * 4;
        let mut q = Quantised {
            padded,
            docs: vec![],
            sums: vec![],
            kept: (doc_limit != 127.0).then(Vec::new),
        };
        // The largest rounding left over as a document (rd) and as a kept
        // vector (rk), the largest length (n) and quantised length (md).
        let (mut rd, mut rk, mut n, mut md) = (0f64, 0f64, 0f64, 0f64);
        for v in vectors {
            assert_eq!(v.len(), dim, "vectors of one length");
            let (mut ed2, mut ek2, mut n2, mut md2) = (0f64, 0f64, 0f64, 0f64);
            let mut sum = 0i64;
            for &x in v {
                let x64 = x as f64;
                let qd = quantise(x, doc_scale, doc_limit);
                q.docs.push(qd);
                sum += qd as i64;
                let d = qd as f64 * doc_scale;
                ed2 += (x64 - d).powi(2);
                md2 += d * d;
                n2 += x64 * x64;
                let k = match &mut q.kept {
                    Some(kept) => {
                        let qk = quantise(x, kept_scale, 127.0);
                        kept.push(qk);
                        qk as f64 * kept_scale
                    }
                    None => d,
                };
                ek2 += (x64 - k).powi(2);
            }
            q.docs.resize(q.docs.len() + padded - dim, 0);
            if let Some(kept) = &mut q.kept {
                kept.resize(kept.len() + padded - dim, 0);
            }
            q.sums.push(sum);
            rd = rd.max(ed2.sqrt());
            rk = rk.max(ek2.sqrt());
            n = n.max(n2.sqrt());
            md = md.max(md2.sqrt());
        }
        let u = 2f64.powi(-24); // f32's unit roundoff
        let d = dim as f64;
        let gamma = d * u / (1.0 - d * u);
        // a·b − sd·sk(qa·qb) = ea·b + sd·qa·eb (a the document, b the kept
        // vector); slack for the f64 arithmetic (relative 1e-15 near 1).
        let bound = rd * n + md * rk + gamma * n * n + 1e-9;
        let cut = ((threshold as f64 - bound) / (doc_scale * kept_scale)).floor() - 1.0;
        let screen = Screen {
            kernel,
            padded,
            cut: cut.clamp(i32::MIN as f64 / 2.0, i32::MAX as f64 / 2.0) as i64,
        };
        Some((screen, q))
    }

    pub fn padded(&self) -> usize {
        self.padded
    }

    /// For each of `docs` (padded quantised vectors, `sums` their byte
    /// sums), the lanes of tile `t` whose integer product reaches the cut,
    /// as a bit mask (bit j: kept vector 16·t + j): the pairs worth a float
    /// `dot`. Lanes past the kept count may be set.
    pub fn pass(
        &self,
        tiles: &Tiles,
        t: usize,
        docs: [&[i8]; DOCS],
        sums: [i64; DOCS],
    ) -> [u16; DOCS] {
        let tile = tiles.tile(t);
        for d in docs {
            assert_eq!(d.len(), self.padded, "a quantised vector");
        }
        // Both kernels multiply the kept bytes as stored (q + 128), so the
        // offset's share comes onto the cut.
        let cuts =
            sums.map(|s| (self.cut + 128 * s).clamp(i32::MIN as i64, i32::MAX as i64) as i32);
        match self.kernel {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `with_kernel` checked the CPU runs the kernel; the
            // lengths were checked above.
            Kernel::Vnni => unsafe { screen_vnni(tile, docs, cuts) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above; documents are within ±63 (`doc_limit`).
            Kernel::Avx2 => unsafe { screen_avx2(tile, docs, cuts) },
            #[cfg(not(target_arch = "x86_64"))]
            _ => unreachable!("no kernel is available off x86-64"),
        }
    }
}

fn quantise(x: f32, scale: f64, limit: f64) -> i8 {
    (x as f64 / scale).round().clamp(-limit, limit) as i8
}

/// Kept vectors, 16 to a tile, laid out so one 64-byte load holds four
/// dimensions of all 16 (as unsigned bytes, q + 128): a tile's products
/// with one document come out one per lane, with no sums across lanes.
pub struct Tiles {
    padded: usize,
    bytes: Vec<u8>,
    len: usize,
}

impl Tiles {
    pub fn new(padded: usize) -> Tiles {
        Tiles {
            padded,
            bytes: vec![],
            len: 0,
        }
    }

    pub fn push(&mut self, q: &[i8]) {
        assert_eq!(q.len(), self.padded, "a quantised vector");
        let (tile, lane) = (self.len / TILE, self.len % TILE);
        if lane == 0 {
            self.bytes.resize((tile + 1) * TILE * self.padded, 128);
        }
        let base = tile * TILE * self.padded + lane * 4;
        for (g, four) in q.chunks_exact(4).enumerate() {
            let at = base + g * TILE * 4;
            for (o, &x) in four.iter().enumerate() {
                self.bytes[at + o] = (x as u8) ^ 0x80;
            }
        }
        self.len += 1;
    }

    fn tile(&self, t: usize) -> &[u8] {
        let size = TILE * self.padded;
        &self.bytes[t * size..(t + 1) * size]
    }
}

/// What the kernels compute, one product at a time (for the tests: on a
/// CPU without them the float scan is faster).
#[cfg(test)]
fn screen_plain(tile: &[u8], docs: [&[i8]; DOCS], cut: i64) -> [u16; DOCS] {
    let mut out = [0u16; DOCS];
    for (i, d) in docs.iter().enumerate() {
        for lane in 0..TILE {
            let mut acc = 0i64;
            for (g, four) in d.chunks_exact(4).enumerate() {
                for (o, &x) in four.iter().enumerate() {
                    acc += (tile[g * TILE * 4 + lane * 4 + o] ^ 0x80) as i8 as i64 * x as i64;
                }
            }
            if acc >= cut {
                out[i] |= 1 << lane;
            }
        }
    }
    out
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vnni")]
unsafe fn screen_vnni(tile: &[u8], docs: [&[i8]; DOCS], cuts: [i32; DOCS]) -> [u16; DOCS] {
    use std::arch::x86_64::*;
    let groups = docs[0].len() / 4;
    let mut acc = [_mm512_setzero_si512(); DOCS];
    for g in 0..groups {
        // SAFETY: the tile holds groups × 64 bytes; each document 4·groups.
        let k = _mm512_loadu_si512(tile.as_ptr().add(g * 64) as *const _);
        for i in 0..DOCS {
            let four = (docs[i].as_ptr().add(g * 4) as *const i32).read_unaligned();
            acc[i] = _mm512_dpbusd_epi32(acc[i], k, _mm512_set1_epi32(four));
        }
    }
    let mut out = [0u16; DOCS];
    for i in 0..DOCS {
        out[i] = _mm512_cmpge_epi32_mask(acc[i], _mm512_set1_epi32(cuts[i]));
    }
    out
}

/// AVX2 has no byte dot product into 32 bits: `maddubs` multiplies
/// unsigned by signed bytes into pairs summed to 16 bits, saturating. The
/// kept bytes (q + 128 ≤ 255) are the unsigned side and documents are
/// quantised to ±63, so a pair sum is at most 2·255·63 < 2¹⁵: exact. Then
/// `madd` with ones sums pairs into 32 bits. A 64-byte group of the tile is
/// two registers: lanes 0–7 and 8–15.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn screen_avx2(tile: &[u8], docs: [&[i8]; DOCS], cuts: [i32; DOCS]) -> [u16; DOCS] {
    use std::arch::x86_64::*;
    let groups = docs[0].len() / 4;
    let ones = _mm256_set1_epi16(1);
    let mut out = [0u16; DOCS];
    for half in 0..2 {
        let mut acc = [_mm256_setzero_si256(); DOCS];
        for g in 0..groups {
            // SAFETY: the tile holds groups × 64 bytes; each document 4·groups.
            let at = tile.as_ptr().add(g * 64 + half * 32) as *const __m256i;
            let k = _mm256_loadu_si256(at);
            for i in 0..DOCS {
                let four = (docs[i].as_ptr().add(g * 4) as *const i32).read_unaligned();
                let pairs = _mm256_maddubs_epi16(k, _mm256_set1_epi32(four));
                acc[i] = _mm256_add_epi32(acc[i], _mm256_madd_epi16(pairs, ones));
            }
        }
        for i in 0..DOCS {
            let below = _mm256_set1_epi32(cuts[i].saturating_sub(1));
            let over = _mm256_cmpgt_epi32(acc[i], below);
            let bits = _mm256_movemask_ps(_mm256_castsi256_ps(over)) as u16;
            out[i] |= bits << (8 * half);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vector::vecmath::{dot, normalize};

    fn vectors(n: usize, dim: usize, seed: u64, spike: bool) -> Vec<Vec<f32>> {
        let mut rnd = crate::vector::vecmath::test_values(seed);
        (0..n)
            .map(|i| {
                let mut v: Vec<f32> = (0..dim).map(|_| rnd()).collect();
                // One large component makes the scale coarse for the rest.
                if spike && i % 7 == 0 {
                    v[i % dim] = 20.0;
                }
                normalize(&mut v);
                v
            })
            .collect()
    }

    /// Every pair whose float `dot` reaches the threshold passes the
    /// screen, however coarse the scale; most others do not.
    #[test]
    fn screen_never_drops_a_pair_at_the_threshold() {
        let kernels = Kernel::available();
        if kernels.is_empty() {
            eprintln!("SKIP: this CPU has neither AVX-512 VNNI nor AVX2; the scan compares floats");
        }
        for kernel in kernels {
            for (dim, spike) in [(384, false), (19, false), (64, true), (5, true)] {
                let vs = vectors(200, dim, dim as u64, spike);
                let mut dots: Vec<f32> = vec![];
                for a in &vs {
                    for b in &vs {
                        dots.push(dot(a, b));
                    }
                }
                let mut sorted = dots.clone();
                sorted.sort_by(f32::total_cmp);
                // Thresholds at pairs' own values: the hardest case for a cut.
                for q in [0.5, 0.9, 0.99, 0.999] {
                    let threshold = sorted[(q * (sorted.len() - 1) as f64) as usize];
                    let (screen, qs) =
                        Screen::with_kernel(kernel, vs.iter().map(|v| &v[..]), dim, threshold)
                            .unwrap();
                    let doc = |i: usize| qs.doc(i);
                    let mut tiles = Tiles::new(screen.padded());
                    for i in 0..vs.len() {
                        tiles.push(qs.kept(i));
                    }
                    let (mut passed, mut needed) = (0, 0);
                    for start in (0..vs.len()).step_by(DOCS) {
                        let idx: [usize; DOCS] =
                            std::array::from_fn(|i| (start + i).min(vs.len() - 1));
                        let docs = idx.map(doc);
                        let sums = idx.map(|i| qs.sums[i]);
                        for t in 0..vs.len().div_ceil(TILE) {
                            let masks = screen.pass(&tiles, t, docs, sums);
                            let plain = screen_plain(tiles.tile(t), docs, screen.cut);
                            assert_eq!(masks, plain, "{kernel:?}'s lanes");
                            for (i, &a) in idx.iter().enumerate() {
                                for lane in 0..TILE {
                                    let b = t * TILE + lane;
                                    if b >= vs.len() {
                                        continue;
                                    }
                                    let through = masks[i] & (1 << lane) != 0;
                                    let d = dots[a * vs.len() + b];
                                    assert!(
                                        through || d < threshold,
                                        "pair {a}, {b}: dot {d} >= {threshold} was screened out \
                                     ({dim} dims, {kernel:?})"
                                    );
                                    passed += through as usize;
                                    needed += (d >= threshold) as usize;
                                }
                            }
                        }
                    }
                    if dim == 384 {
                        // A useful screen lets little more through than it must.
                        assert!(
                            passed < needed * 2 + vs.len(),
                            "{passed} passed, {needed} needed at {threshold}"
                        );
                    }
                }
            }
        }
    }
}
