//! Vector arithmetic shared by `cluster`, `dedup_semantic` and the
//! neighbour index: dot products and distances in a fixed summation order,
//! so a result is the same bits whatever the thread count.

/// Sums in eight lanes, which the compiler turns into SIMD; the order of
/// additions is fixed, so results do not depend on threads.
#[inline(always)]
fn lanes(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            acc[l] += f(x[l], y[l]);
        }
    }
    let mut s = acc.iter().sum::<f32>();
    for (x, y) in ra.iter().zip(rb) {
        s += f(*x, *y);
    }
    s
}

/// The same lanes compiled for AVX: one 8-wide instruction where baseline
/// x86-64 needs two 4-wide ones. Multiplies and adds stay separate (no
/// FMA, which rounds once instead of twice), so the bits are those of the
/// baseline code and a run gives the same output on any x86-64 machine.
#[cfg(target_arch = "x86_64")]
mod avx {
    #[target_feature(enable = "avx")]
    pub unsafe fn dot(a: &[f32], b: &[f32]) -> f32 {
        super::lanes(a, b, |x, y| x * y)
    }
    #[target_feature(enable = "avx")]
    pub unsafe fn add(acc: &mut [f32], v: &[f32]) {
        super::add(acc, v)
    }
    #[target_feature(enable = "avx")]
    pub unsafe fn l2sq(a: &[f32], b: &[f32]) -> f32 {
        super::lanes(a, b, |x, y| (x - y) * (x - y))
    }

    /// Four vectors' dot products with two others: each 8-value chunk of
    /// the two is loaded once for four products (the scan is load-bound).
    /// Each product is `lanes`' arithmetic: 8 lanes of separate multiply
    /// and add, then the lanes summed in order, then the remainder.
    #[target_feature(enable = "avx")]
    pub unsafe fn dots4x2(a: [&[f32]; 4], b: [&[f32]; 2]) -> [[f32; 2]; 4] {
        use std::arch::x86_64::*;
        let n = b[0].len();
        assert!(
            a.iter().chain(&b).all(|v| v.len() == n),
            "vectors of one length"
        );
        let full = n / 8 * 8;
        let mut acc = [_mm256_setzero_ps(); 8];
        let mut o = 0;
        while o < full {
            // SAFETY: o + 8 <= full <= n, the length of every vector.
            let (b0, b1) = (
                _mm256_loadu_ps(b[0].as_ptr().add(o)),
                _mm256_loadu_ps(b[1].as_ptr().add(o)),
            );
            for i in 0..4 {
                let x = _mm256_loadu_ps(a[i].as_ptr().add(o));
                acc[2 * i] = _mm256_add_ps(acc[2 * i], _mm256_mul_ps(x, b0));
                acc[2 * i + 1] = _mm256_add_ps(acc[2 * i + 1], _mm256_mul_ps(x, b1));
            }
            o += 8;
        }
        let mut out = [[0f32; 2]; 4];
        for i in 0..4 {
            for j in 0..2 {
                let mut lanes = [0f32; 8];
                _mm256_storeu_ps(lanes.as_mut_ptr(), acc[2 * i + j]);
                let mut s = lanes.iter().sum::<f32>();
                for t in full..n {
                    s += a[i][t] * b[j][t];
                }
                out[i][j] = s;
            }
        }
        out
    }
}

/// `acc[i] += v[i]`: each element on its own, so any width gives the same bits.
#[inline(always)]
fn add(acc: &mut [f32], v: &[f32]) {
    for (a, x) in acc.iter_mut().zip(v) {
        *a += x;
    }
}

pub fn add_assign(acc: &mut [f32], v: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    if has_avx() {
        // SAFETY: the CPU has AVX (checked above).
        return unsafe { avx::add(acc, v) };
    }
    add(acc, v)
}

#[cfg(target_arch = "x86_64")]
fn has_avx() -> bool {
    std::arch::is_x86_feature_detected!("avx")
}

pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if has_avx() {
        // SAFETY: the CPU has AVX (checked above).
        return unsafe { avx::dot(a, b) };
    }
    lanes(a, b, |x, y| x * y)
}

/// `[[dot(a[i], b[j]) for j] for i]`, faster than eight `dot`s.
pub fn dots4x2(a: [&[f32]; 4], b: [&[f32]; 2]) -> [[f32; 2]; 4] {
    #[cfg(target_arch = "x86_64")]
    if has_avx() {
        // SAFETY: the CPU has AVX (checked above).
        return unsafe { avx::dots4x2(a, b) };
    }
    a.map(|a| [dot(a, b[0]), dot(a, b[1])])
}

/// Every dot product of four vectors with `n` others (`b(j)`), two of
/// those at a time (`dots4x2`), handed to `f(i, j, dot)` in the order of
/// j: each product the bits of `dot`.
pub fn dots4xn<'b>(
    a: [&[f32]; 4],
    n: usize,
    b: impl Fn(usize) -> &'b [f32],
    mut f: impl FnMut(usize, usize, f32),
) {
    let mut j = 0;
    while j + 2 <= n {
        let d = dots4x2(a, [b(j), b(j + 1)]);
        for (i, d) in d.iter().enumerate() {
            f(i, j, d[0]);
            f(i, j + 1, d[1]);
        }
        j += 2;
    }
    if j < n {
        for (i, v) in a.iter().enumerate() {
            f(i, j, dot(v, b(j)));
        }
    }
}

/// Squared Euclidean distance.
pub fn l2sq(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if has_avx() {
        // SAFETY: the CPU has AVX (checked above).
        return unsafe { avx::l2sq(a, b) };
    }
    lanes(a, b, |x, y| (x - y) * (x - y))
}

/// Scales to unit length; a zero vector stays zero.
pub fn normalize(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
}

/// The index of the first non-finite value, if any: such a vector cannot be
/// clustered or compared, so the ops stop with the document named.
pub fn first_non_finite(v: &[f32]) -> Option<usize> {
    v.iter().position(|x| !x.is_finite())
}

/// Seeded values in [-0.5, 0.5) for the vector code's tests (a linear
/// congruential generator: the same vectors on every machine).
#[cfg(test)]
pub(crate) fn test_values(seed: u64) -> impl FnMut() -> f32 {
    let mut state = seed;
    move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as f32 / (1u64 << 31) as f32 - 0.5
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lanes_cover_the_remainder() {
        let a: Vec<f32> = (0..13).map(|i| i as f32).collect();
        let b = vec![1.0; 13];
        assert_eq!(dot(&a, &b), 78.0);
        assert_eq!(l2sq(&a, &a), 0.0);
        assert_eq!(l2sq(&[0.0, 3.0], &[4.0, 0.0]), 25.0);
    }

    /// The AVX path must give the baseline path's bits: decisions at a
    /// threshold must not depend on the machine.
    #[test]
    fn avx_gives_the_baseline_bits() {
        let mut x = 0x9e37_79b9_u32;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x as f32 / u32::MAX as f32) - 0.5
        };
        for n in [3, 8, 13, 384, 1000] {
            let a: Vec<f32> = (0..n).map(|_| next()).collect();
            let b: Vec<f32> = (0..n).map(|_| next()).collect();
            let plain_dot = lanes(&a, &b, |x, y| x * y);
            let plain_l2 = lanes(&a, &b, |x, y| (x - y) * (x - y));
            assert_eq!(dot(&a, &b).to_bits(), plain_dot.to_bits(), "dot, n = {n}");
            assert_eq!(l2sq(&a, &b).to_bits(), plain_l2.to_bits(), "l2sq, n = {n}");
            let (mut x, mut y) = (a.clone(), a.clone());
            add_assign(&mut x, &b);
            add(&mut y, &b);
            assert_eq!(x, y, "add, n = {n}");
            let c: Vec<Vec<f32>> = (0..4).map(|_| (0..n).map(|_| next()).collect()).collect();
            let block = dots4x2([&c[0], &c[1], &c[2], &c[3]], [&a, &b]);
            for (i, ci) in c.iter().enumerate() {
                let want = [lanes(ci, &a, |x, y| x * y), lanes(ci, &b, |x, y| x * y)];
                assert_eq!(
                    block[i].map(f32::to_bits),
                    want.map(f32::to_bits),
                    "n = {n}"
                );
            }
        }
    }

    #[test]
    fn normalize_leaves_zero_alone() {
        let mut z = vec![0.0; 4];
        normalize(&mut z);
        assert_eq!(z, vec![0.0; 4]);
        let mut v = vec![3.0, 4.0];
        normalize(&mut v);
        assert_eq!(v, vec![0.6, 0.8]);
        assert_eq!(first_non_finite(&[1.0, f32::NAN]), Some(1));
        assert_eq!(first_non_finite(&v), None);
    }
}
