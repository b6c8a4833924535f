//! An integer screen for "is the cosine of these two unit vectors at least
//! `threshold`?", used by `dedup_semantic`'s exact scan. Vectors of a
//! cluster are quantised to 8 bits with one scale; the integer dot product
//! of two quantised vectors, plus a proven bound on its error, tells which
//! pairs cannot reach the threshold. Only the others get the float `dot`,
//! so decisions are exactly those of comparing every pair with `dot`: the
//! screen only saves work, it never decides.
//!
//! Why integers: with AVX-512 VNNI one instruction does 64 multiply-adds of
//! bytes (16 kept vectors × 4 dimensions), where the float scan does 8 per
//! multiply and add pair, and a byte vector is a quarter of the memory.
//! With AVX2 only, four instructions do 32 (`screen_avx2`). Without
//! either there is no screen (`Screen::new` is `None`) and the scan
//! compares floats, with the same results.
//!
//! The bound: write a = s·qa + ea, b = s·qb + eb (s the scale, q the
//! integers, e the rounding left over). Then
//! a·b − s²(qa·qb) = ea·b + s·qa·eb, at most |ea|·|b| + |s·qa|·|eb|
//! (Cauchy–Schwarz), and `dot` (floats, d products summed in any order)
//! lies within γ_d·|a|·|b| of a·b, γ_d = d·u/(1 − d·u), u = 2⁻²⁴. With R
//! the largest |e|, N the largest |v| and M the largest |s·q| of the
//! cluster: dot(a, b) ≤ s²(qa·qb) + R·N + M·R + γ_d·N². A pair whose
//! integer product is below (threshold − that) / s² is left out; the cut
//! is rounded down, so rounding in computing it can only let more through.

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
    /// AVX2: 32 byte products in four instructions.
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

pub struct Screen {
    kernel: Kernel,
    scale: f64,
    /// Dimensions, padded to a multiple of 4 (the pad is zeros).
    padded: usize,
    dim: usize,
    /// Integer products below this cannot reach the threshold.
    cut: i64,
}

/// A cluster's documents, quantised: `padded` signed bytes each, and each
/// one's sum (VNNI multiplies unsigned by signed bytes, so kept vectors
/// are stored offset by 128 and the offset's share, 128·Σq, comes off).
pub struct Quantised {
    pub bytes: Vec<i8>,
    pub sums: Vec<i64>,
}

impl Screen {
    /// The screen for these vectors at `threshold`, or `None` where the
    /// CPU cannot run one or the vectors give no scale (all zero).
    pub fn new<'a>(
        vectors: impl Iterator<Item = &'a [f32]> + Clone,
        dim: usize,
        threshold: f32,
    ) -> Option<Screen> {
        Screen::with_kernel(Kernel::best()?, vectors, dim, threshold)
    }

    /// As `new`, on a given kernel (which the CPU must run).
    pub fn with_kernel<'a>(
        kernel: Kernel,
        vectors: impl Iterator<Item = &'a [f32]> + Clone,
        dim: usize,
        threshold: f32,
    ) -> Option<Screen> {
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
        let scale = max as f64 / 127.0;
        let (mut r, mut n, mut m) = (0f64, 0f64, 0f64);
        for v in vectors {
            let (mut e2, mut n2, mut m2) = (0f64, 0f64, 0f64);
            for &x in v {
                let q = quantise(x, scale) as f64 * scale;
                e2 += (x as f64 - q).powi(2);
                n2 += (x as f64).powi(2);
                m2 += q * q;
            }
            r = r.max(e2.sqrt());
            n = n.max(n2.sqrt());
            m = m.max(m2.sqrt());
        }
        let u = 2f64.powi(-24); // f32's unit roundoff
        let d = dim as f64;
        let gamma = d * u / (1.0 - d * u);
        // Slack for the f64 arithmetic above (relative 1e-15 on values near 1).
        let bound = r * n + m * r + gamma * n * n + 1e-9;
        let cut = ((threshold as f64 - bound) / (scale * scale)).floor() - 1.0;
        Some(Screen {
            kernel,
            scale,
            padded: dim.div_ceil(4) * 4,
            dim,
            cut: cut.clamp(i32::MIN as f64 / 2.0, i32::MAX as f64 / 2.0) as i64,
        })
    }

    pub fn quantise<'a>(&self, vectors: impl Iterator<Item = &'a [f32]>) -> Quantised {
        let mut bytes = vec![];
        let mut sums = vec![];
        for v in vectors {
            assert_eq!(v.len(), self.dim, "vectors of one length");
            let start = bytes.len();
            bytes.extend(v.iter().map(|&x| quantise(x, self.scale)));
            bytes.resize(start + self.padded, 0);
            sums.push(bytes[start..].iter().map(|&q| q as i64).sum());
        }
        Quantised { bytes, sums }
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
        let clamp = |c: i64| c.clamp(i32::MIN as i64, i32::MAX as i64) as i32;
        match self.kernel {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `with_kernel` checked the CPU runs the kernel; the
            // lengths were checked above. VNNI multiplies the kept bytes as
            // stored (q + 128), so the offset's share comes onto the cut.
            Kernel::Vnni => unsafe {
                screen_vnni(tile, docs, sums.map(|s| clamp(self.cut + 128 * s)))
            },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above.
            Kernel::Avx2 => unsafe { screen_avx2(tile, docs, clamp(self.cut)) },
            #[cfg(not(target_arch = "x86_64"))]
            _ => unreachable!("no kernel is available off x86-64"),
        }
    }
}

fn quantise(x: f32, scale: f64) -> i8 {
    (x as f64 / scale).round().clamp(-127.0, 127.0) as i8
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
fn screen_plain(tile: &[u8], docs: [&[i8]; DOCS], cut: i32) -> [u16; DOCS] {
    let mut out = [0u16; DOCS];
    for (i, d) in docs.iter().enumerate() {
        for lane in 0..TILE {
            let mut acc = 0i32;
            for (g, four) in d.chunks_exact(4).enumerate() {
                for (o, &x) in four.iter().enumerate() {
                    acc += (tile[g * TILE * 4 + lane * 4 + o] ^ 0x80) as i8 as i32 * x as i32;
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
/// unsigned by signed bytes into pairs summed to 16 bits (saturating), so
/// the document's sign moves onto the kept byte and its magnitude (≤ 127)
/// is the unsigned side: each pair sum is at most 2·127·127 < 2¹⁵, exact.
/// Then `madd` with ones sums pairs into 32 bits. A 64-byte group of the
/// tile is two registers: lanes 0–7 and 8–15.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn screen_avx2(tile: &[u8], docs: [&[i8]; DOCS], cut: i32) -> [u16; DOCS] {
    use std::arch::x86_64::*;
    let groups = docs[0].len() / 4;
    let (flip, ones) = (_mm256_set1_epi8(-128), _mm256_set1_epi16(1));
    let below = _mm256_set1_epi32(cut.saturating_sub(1));
    let mut out = [0u16; DOCS];
    for half in 0..2 {
        let mut acc = [_mm256_setzero_si256(); DOCS];
        for g in 0..groups {
            // SAFETY: the tile holds groups × 64 bytes; each document 4·groups.
            let at = tile.as_ptr().add(g * 64 + half * 32) as *const __m256i;
            let k = _mm256_xor_si256(_mm256_loadu_si256(at), flip);
            for i in 0..DOCS {
                let four = (docs[i].as_ptr().add(g * 4) as *const i32).read_unaligned();
                let d = _mm256_set1_epi32(four);
                let pairs = _mm256_maddubs_epi16(_mm256_abs_epi8(d), _mm256_sign_epi8(k, d));
                acc[i] = _mm256_add_epi32(acc[i], _mm256_madd_epi16(pairs, ones));
            }
        }
        for i in 0..DOCS {
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
    use crate::vecmath::{dot, normalize};

    fn vectors(n: usize, dim: usize, seed: u64, spike: bool) -> Vec<Vec<f32>> {
        let mut rnd = crate::vecmath::test_values(seed);
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
                    let screen =
                        Screen::with_kernel(kernel, vs.iter().map(|v| &v[..]), dim, threshold)
                            .unwrap();
                    let qs = screen.quantise(vs.iter().map(|v| &v[..]));
                    let p = screen.padded();
                    let doc = |i: usize| &qs.bytes[i * p..(i + 1) * p];
                    let mut tiles = Tiles::new(p);
                    for i in 0..vs.len() {
                        tiles.push(doc(i));
                    }
                    let (mut passed, mut needed) = (0, 0);
                    for start in (0..vs.len()).step_by(DOCS) {
                        let idx: [usize; DOCS] =
                            std::array::from_fn(|i| (start + i).min(vs.len() - 1));
                        let docs = idx.map(doc);
                        let sums = idx.map(|i| qs.sums[i]);
                        for t in 0..vs.len().div_ceil(TILE) {
                            let masks = screen.pass(&tiles, t, docs, sums);
                            let plain = screen_plain(tiles.tile(t), docs, screen.cut as i32);
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
