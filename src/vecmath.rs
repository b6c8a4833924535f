//! Vector arithmetic shared by `cluster`, `dedup_semantic` and the
//! neighbour index: dot products and distances in a fixed summation order,
//! so a result is the same bits whatever the thread count.

/// Sums in eight lanes, which the compiler turns into SIMD; the order of
/// additions is fixed, so results do not depend on threads.
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

pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    lanes(a, b, |x, y| x * y)
}

/// Squared Euclidean distance.
pub fn l2sq(a: &[f32], b: &[f32]) -> f32 {
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
