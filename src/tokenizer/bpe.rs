//! Byte-level BPE: training from word counts, and encoding.
//!
//! Training is the classic algorithm with incremental updates: pair counts
//! (64-bit, signed for the updates), an index from each pair to the words
//! that contain it, and a max-heap of pairs with lazy invalidation, so a
//! merge touches only the words it changes. Ties between pairs of equal
//! count go to the pair whose (left, right) ids are smallest: the result does
//! not depend on thread count or hash order.
//!
//! Ids: the special tokens first, then the 256 bytes in byte order, then one
//! token per merge in the order learnt.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use super::fxhash::FxBuild;

pub type Pair = (u32, u32);

/// A trained model: every token's bytes (specials excluded) and the merges.
#[derive(Debug, Clone)]
pub struct Bpe {
    /// Number of special tokens, which take ids 0..n_special.
    pub n_special: u32,
    /// Bytes of token `n_special + i`.
    pub tokens: Vec<Vec<u8>>,
    /// Merge `k` made token `n_special + 256 + k` from this pair.
    pub merges: Vec<Pair>,
}

impl Bpe {
    fn byte_id(&self, b: u8) -> u32 {
        self.n_special + b as u32
    }

    pub fn token_bytes(&self, id: u32) -> Option<&[u8]> {
        id.checked_sub(self.n_special)
            .and_then(|i| self.tokens.get(i as usize))
            .map(Vec::as_slice)
    }
}

pub struct TrainOptions {
    /// Total vocabulary, special tokens included.
    pub vocab_size: usize,
    pub n_special: usize,
    /// Pairs seen fewer times are never merged.
    pub min_frequency: u64,
    /// Byte strings that must become tokens: their merges come first.
    pub required: Vec<Vec<u8>>,
    /// Longest token in bytes (0: no limit).
    pub max_token_bytes: usize,
}

struct Word {
    symbols: Vec<u32>,
    count: u64,
}

/// Learns merges from `(word bytes, count)`; words are pre-tokenised pieces.
pub fn train(words: Vec<(Vec<u8>, u64)>, opt: &TrainOptions) -> Bpe {
    let n_special = opt.n_special as u32;
    let mut bpe = Bpe {
        n_special,
        tokens: (0..=255u8).map(|b| vec![b]).collect(),
        merges: vec![],
    };
    let mut words: Vec<Word> = words
        .into_iter()
        .filter(|(w, c)| !w.is_empty() && *c > 0)
        .map(|(w, count)| Word {
            symbols: w.iter().map(|&b| n_special + b as u32).collect(),
            count,
        })
        .collect();
    // Sorted words: the same index whatever order the counts came in.
    words.sort_unstable_by(|a, b| a.symbols.cmp(&b.symbols));

    let mut counts: HashMap<Pair, i64, FxBuild> = HashMap::default();
    let mut index: HashMap<Pair, Vec<u32>, FxBuild> = HashMap::default();
    for (wi, w) in words.iter().enumerate() {
        for p in w.symbols.windows(2) {
            let pair = (p[0], p[1]);
            *counts.entry(pair).or_insert(0) += w.count as i64;
            let list = index.entry(pair).or_default();
            if list.last() != Some(&(wi as u32)) {
                list.push(wi as u32);
            }
        }
    }
    let target = opt.vocab_size.saturating_sub(opt.n_special + 256);
    let mut ids: HashMap<Vec<u8>, u32, FxBuild> = HashMap::default();
    for (i, t) in bpe.tokens.iter().enumerate() {
        ids.insert(t.clone(), n_special + i as u32);
    }

    // Required tokens first: each built left to right from its bytes.
    for req in &opt.required {
        if bpe.merges.len() >= target || req.len() < 2 || ids.contains_key(req) {
            continue;
        }
        let mut left = bpe.byte_id(req[0]);
        for end in 2..=req.len() {
            let right = bpe.byte_id(req[end - 1]);
            let prefix = &req[..end];
            left = match ids.get(prefix) {
                Some(&id) => id,
                None => {
                    if bpe.merges.len() >= target {
                        break;
                    }
                    let id = apply_merge(
                        &mut bpe,
                        &mut words,
                        &mut counts,
                        &mut index,
                        (left, right),
                        None,
                    );
                    ids.insert(prefix.to_vec(), id);
                    id
                }
            };
        }
    }

    let mut heap: BinaryHeap<(i64, Reverse<Pair>)> =
        counts.iter().map(|(p, c)| (*c, Reverse(*p))).collect();
    let mut changed: Vec<Pair> = vec![];
    while bpe.merges.len() < target {
        let Some((c, Reverse(pair))) = heap.pop() else {
            break;
        };
        let now = counts.get(&pair).copied().unwrap_or(0);
        if now != c {
            if now > 0 {
                heap.push((now, Reverse(pair)));
            }
            continue;
        }
        if (c as u64) < opt.min_frequency.max(1) {
            break;
        }
        let len = bpe.tokens[(pair.0 - n_special) as usize].len()
            + bpe.tokens[(pair.1 - n_special) as usize].len();
        if opt.max_token_bytes > 0 && len > opt.max_token_bytes {
            counts.remove(&pair); // never merged; its count no longer matters
            continue;
        }
        changed.clear();
        apply_merge(
            &mut bpe,
            &mut words,
            &mut counts,
            &mut index,
            pair,
            Some(&mut changed),
        );
        changed.sort_unstable();
        changed.dedup();
        for p in &changed {
            if let Some(&c) = counts.get(p) {
                if c > 0 {
                    heap.push((c, Reverse(*p)));
                }
            }
        }
    }
    bpe
}

/// Merges `pair` into a new token in every word that has it, updating the
/// counts and the index; returns the new id.
fn apply_merge(
    bpe: &mut Bpe,
    words: &mut [Word],
    counts: &mut HashMap<Pair, i64, FxBuild>,
    index: &mut HashMap<Pair, Vec<u32>, FxBuild>,
    pair: Pair,
    mut changed: Option<&mut Vec<Pair>>,
) -> u32 {
    let n_special = bpe.n_special;
    let new = n_special + bpe.tokens.len() as u32;
    let mut bytes = bpe.tokens[(pair.0 - n_special) as usize].clone();
    bytes.extend_from_slice(&bpe.tokens[(pair.1 - n_special) as usize]);
    bpe.tokens.push(bytes);
    bpe.merges.push(pair);
    let holders = index.remove(&pair).unwrap_or_default();
    let mut merged: Vec<u32> = Vec::with_capacity(16);
    let mut delta: HashMap<Pair, i64, FxBuild> = HashMap::default();
    for wi in holders {
        let w = &mut words[wi as usize];
        if !w.symbols.windows(2).any(|p| (p[0], p[1]) == pair) {
            continue; // a stale entry: an earlier merge took the pair away
        }
        let count = w.count as i64;
        merged.clear();
        let mut i = 0;
        while i < w.symbols.len() {
            if i + 1 < w.symbols.len() && (w.symbols[i], w.symbols[i + 1]) == pair {
                merged.push(new);
                i += 2;
            } else {
                merged.push(w.symbols[i]);
                i += 1;
            }
        }
        // The word's pairs before and after; counts move by the difference,
        // summed over the words first so that a pair whose count did not
        // change is not touched.
        for p in w.symbols.windows(2) {
            *delta.entry((p[0], p[1])).or_insert(0) -= count;
        }
        for p in merged.windows(2) {
            let p = (p[0], p[1]);
            *delta.entry(p).or_insert(0) += count;
            if p.0 == new || p.1 == new {
                let list = index.entry(p).or_default();
                if list.last() != Some(&wi) {
                    list.push(wi);
                }
            }
        }
        std::mem::swap(&mut w.symbols, &mut merged);
    }
    for (p, d) in delta {
        if d == 0 || p == pair {
            continue;
        }
        let c = counts.entry(p).or_insert(0);
        *c += d;
        // Only a count that grew needs a new heap entry: a smaller one is
        // found stale when its old entry comes up, and pushed again then.
        if d > 0 {
            if let Some(ch) = changed.as_deref_mut() {
                ch.push(p);
            }
        }
    }
    counts.remove(&pair);
    new
}

/// Encodes pieces with the merges, lowest rank first (as every BPE encoder
/// with a merge list does).
pub struct Encoder {
    bpe: Bpe,
    ranks: HashMap<Pair, u32, FxBuild>,
}

impl Encoder {
    pub fn new(bpe: Bpe) -> Self {
        let ranks = bpe
            .merges
            .iter()
            .enumerate()
            .map(|(r, p)| (*p, r as u32))
            .collect();
        Encoder { bpe, ranks }
    }

    pub fn bpe(&self) -> &Bpe {
        &self.bpe
    }

    /// The ids of one piece, appended to `out`.
    pub fn encode_piece(&self, piece: &[u8], out: &mut Vec<u32>) {
        let mut syms: Vec<u32> = piece.iter().map(|&b| self.bpe.byte_id(b)).collect();
        loop {
            let best = syms
                .windows(2)
                .enumerate()
                .filter_map(|(i, p)| self.ranks.get(&(p[0], p[1])).map(|r| (*r, i)))
                .min();
            let Some((rank, _)) = best else { break };
            let pair = self.bpe.merges[rank as usize];
            let new = self.bpe.n_special + 256 + rank;
            let mut merged = Vec::with_capacity(syms.len());
            let mut i = 0;
            while i < syms.len() {
                if i + 1 < syms.len() && (syms[i], syms[i + 1]) == pair {
                    merged.push(new);
                    i += 2;
                } else {
                    merged.push(syms[i]);
                    i += 1;
                }
            }
            syms = merged;
        }
        out.extend_from_slice(&syms);
    }

    /// The bytes of a sequence of (non-special) ids.
    pub fn decode(&self, ids: &[u32]) -> Vec<u8> {
        ids.iter()
            .filter_map(|&id| self.bpe.token_bytes(id))
            .flatten()
            .copied()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(vocab: usize) -> TrainOptions {
        TrainOptions {
            vocab_size: vocab,
            n_special: 1,
            min_frequency: 1,
            required: vec![],
            max_token_bytes: 0,
        }
    }

    #[test]
    fn learns_the_most_frequent_pairs_first() {
        let words = vec![
            (b"abab".to_vec(), 10),
            (b"ab".to_vec(), 5),
            (b"cd".to_vec(), 3),
        ];
        let bpe = train(words, &opts(1 + 256 + 3));
        let a = 1 + b'a' as u32;
        let b = 1 + b'b' as u32;
        assert_eq!(bpe.merges[0], (a, b)); // "ab": 25
        assert_eq!(bpe.merges[1], (257, 257)); // "abab": 10
        assert_eq!(bpe.token_bytes(258).unwrap(), b"abab");
        assert_eq!(bpe.merges[2], (1 + b'c' as u32, 1 + b'd' as u32));
        let enc = Encoder::new(bpe);
        let mut ids = vec![];
        enc.encode_piece(b"ababcdx", &mut ids);
        assert_eq!(enc.decode(&ids), b"ababcdx");
        assert_eq!(ids, vec![258, 259, 1 + b'x' as u32]);
    }

    #[test]
    fn required_tokens_come_first_and_encode_whole() {
        let mut o = opts(1 + 256 + 10);
        o.required = vec!["中国".as_bytes().to_vec()];
        let bpe = train(vec![(b"aaaa".to_vec(), 100)], &o);
        let enc = Encoder::new(bpe);
        let mut ids = vec![];
        enc.encode_piece("中国".as_bytes(), &mut ids);
        assert_eq!(ids.len(), 1);
        assert_eq!(enc.decode(&ids), "中国".as_bytes());
    }

    #[test]
    fn ties_break_on_the_smallest_pair() {
        let words = vec![(b"xy".to_vec(), 4), (b"ab".to_vec(), 4)];
        let bpe = train(words, &opts(1 + 256 + 1));
        assert_eq!(bpe.merges, vec![(1 + b'a' as u32, 1 + b'b' as u32)]);
    }
}
