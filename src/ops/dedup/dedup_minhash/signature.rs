//! Shingles, MinHash signatures and the LSH maths (band/row choice from
//! the threshold): pure functions of a document's text and the seeds.

use xxhash_rust::xxh3::xxh3_64;

/// Probability that two documents of Jaccard `s` share at least one band.
pub fn candidate_probability(s: f64, bands: usize, rows: usize) -> f64 {
    1.0 - (1.0 - s.powi(rows as i32)).powi(bands as i32)
}

pub(super) fn integrate(f: impl Fn(f64) -> f64, a: f64, b: f64) -> f64 {
    let n = 200;
    let h = (b - a) / n as f64;
    (0..n).map(|i| f(a + (i as f64 + 0.5) * h) * h).sum()
}

/// The (bands, rows) with at most `max_hashes` minhashes for `threshold`.
/// Without verification: the least false-positive plus false-negative area
/// around the threshold (as datasketch does). With verification false
/// positives only cost a check, so: the least false-positive area among the
/// choices that make a pair at the threshold a candidate with probability
/// 0.95 or more.
pub fn derive_bands_rows(threshold: f64, max_hashes: usize, verify: bool) -> (usize, usize) {
    let mut best = (1, 1, f64::MAX);
    let mut fallback = (1, 1, -1.0);
    for b in 1..=max_hashes {
        for r in 1..=max_hashes / b {
            let fp = integrate(|s| candidate_probability(s, b, r), 0.0, threshold);
            let fneg = integrate(|s| 1.0 - candidate_probability(s, b, r), threshold, 1.0);
            let at = candidate_probability(threshold, b, r);
            let err = if verify {
                if at < 0.95 {
                    if at > fallback.2 {
                        fallback = (b, r, at);
                    }
                    continue;
                }
                fp
            } else {
                fp + fneg
            };
            if err < best.2 {
                best = (b, r, err);
            }
        }
    }
    if best.2 == f64::MAX {
        return (fallback.0, fallback.1);
    }
    (best.0, best.1)
}

/// A strong 64-bit mixer (murmur3's finaliser), for the hash functions' constants.
pub(super) fn mix(x: u64) -> u64 {
    let mut z = x;
    z = (z ^ (z >> 33)).wrapping_mul(0xff51_afd7_ed55_8ccd);
    z = (z ^ (z >> 33)).wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    z ^ (z >> 33)
}

/// Shingle hashes of a text, as the near-duplicate ground truth defines them:
/// words: lowercased, characters other than letters, digits and whitespace
/// made spaces, split on whitespace, n-grams of words; chars: letters and
/// digits only, n-grams of characters. Fewer tokens than `n` make one
/// shingle of them all; no token, no shingle. An n-gram is hashed from its
/// tokens' hashes: the same sets as hashing the joined strings, without
/// building them.
pub fn shingles(text: &str, n: usize, chars: bool) -> Vec<u64> {
    let mut tokens: Vec<u64> = vec![];
    if chars {
        for c in text.chars().filter(|c| c.is_alphanumeric()) {
            for l in c.to_lowercase() {
                tokens.push(l as u64);
            }
        }
    } else {
        let mut word = String::new();
        let flush = |word: &mut String, tokens: &mut Vec<u64>| {
            if !word.is_empty() {
                tokens.push(xxh3_64(word.as_bytes()));
                word.clear();
            }
        };
        for c in text.chars() {
            if c.is_ascii_alphanumeric() {
                word.push(c.to_ascii_lowercase());
            } else if !c.is_ascii() && c.is_alphanumeric() {
                word.extend(c.to_lowercase());
            } else {
                // Whitespace and everything else (punctuation) separate words.
                flush(&mut word, &mut tokens);
            }
        }
        flush(&mut word, &mut tokens);
    }
    let gram = |t: &[u64]| {
        let bytes: Vec<u8> = t.iter().flat_map(|x| x.to_le_bytes()).collect();
        xxh3_64(&bytes)
    };
    let mut out: Vec<u64> = if tokens.len() < n {
        if tokens.is_empty() {
            vec![]
        } else {
            vec![gram(&tokens)]
        }
    } else {
        tokens.windows(n).map(gram).collect()
    };
    out.sort_unstable();
    out.dedup();
    out
}

/// Jaccard similarity of two sorted, deduplicated hash lists.
pub fn jaccard(a: &[u64], b: &[u64]) -> f64 {
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    let (mut i, mut j, mut common) = (0, 0, 0usize);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                common += 1;
                i += 1;
                j += 1;
            }
        }
    }
    common as f64 / (a.len() + b.len() - common) as f64
}

/// The MinHash signature: per hash function, the least hash of any shingle.
/// Shingle hashes are xxh3 outputs (uniform), so each function can be an
/// affine map x·a + b mod 2^64 with a random odd `a` (seed | 1) and b = the
/// mixed seed: one multiply-add per function, which the compiler vectorises.
pub(super) fn signature(seeds: &[u64], shingles: &[u64]) -> Vec<u64> {
    let mults: Vec<u64> = seeds.iter().map(|s| s | 1).collect();
    let adds: Vec<u64> = seeds.iter().map(|s| mix(*s)).collect();
    let mut sig = vec![u64::MAX; seeds.len()];
    for &s in shingles {
        for ((slot, a), b) in sig.iter_mut().zip(&mults).zip(&adds) {
            *slot = (*slot).min(s.wrapping_mul(*a).wrapping_add(*b));
        }
    }
    sig
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shingles_follow_the_ground_truth_definition() {
        let a = shingles("The quick, brown fox jumps over the lazy dog", 5, false);
        let b = shingles("the QUICK brown fox -- jumps over the lazy dog!", 5, false);
        assert_eq!(a, b);
        assert_eq!(a.len(), 5);
        assert_eq!(shingles("short text", 5, false).len(), 1);
        assert_eq!(shingles("人民日报社论，今天", 5, true).len(), 4);
        assert!((jaccard(&[1, 2, 3], &[2, 3, 4]) - 0.5).abs() < 1e-12);
    }

    #[test]
    fn derived_bands_rows_put_the_threshold_on_the_s_curve() {
        let (b, r) = derive_bands_rows(0.8, 112, false);
        assert!(b * r <= 112);
        assert!(candidate_probability(0.9, b, r) > 0.9, "{b}x{r}");
        assert!(candidate_probability(0.5, b, r) < 0.05, "{b}x{r}");
        let (b, r) = derive_bands_rows(0.8, 112, true);
        assert!(candidate_probability(0.8, b, r) >= 0.95, "{b}x{r}");
        assert!(candidate_probability(0.5, b, r) < 0.3, "{b}x{r}");
    }

    #[test]
    fn signatures_estimate_jaccard() {
        let seeds: Vec<u64> = (0..256u64)
            .map(|i| crate::seeded::SplitMix64(i + 7).next_u64())
            .collect();
        let a: Vec<u64> = (0..400).collect();
        let b: Vec<u64> = (100..500).collect(); // Jaccard 300/500 = 0.6
        let (sa, sb) = (signature(&seeds, &a), signature(&seeds, &b));
        let same = sa.iter().zip(&sb).filter(|(x, y)| x == y).count() as f64 / sa.len() as f64;
        assert!((same - 0.6).abs() < 0.1, "estimated {same}");
    }
}
