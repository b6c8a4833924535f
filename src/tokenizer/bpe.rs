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
use super::wordcount::WordCounts;

pub type Pair = (u32, u32);

/// A trained model: every token's bytes (specials excluded) and the merges.
#[derive(Debug, Clone)]
pub struct Bpe {
    /// Number of special tokens, which take ids 0..n_special.
    pub n_special: u32,
    /// Bytes of token `n_special + i`.
    pub tokens: Vec<Vec<u8>>,
    /// Merge `k` made token `n_special + base + k` from this pair, `base`
    /// being the size of the alphabet (256 for the bytes).
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

/// The words, their symbols in one arena in word order: a merge walks its
/// words in ascending order, so memory is read forward, not chased.
struct Words<S> {
    syms: Vec<S>,
    start: Vec<usize>,
    len: Vec<u32>,
    count: Vec<u64>,
}

/// Pair counts and the words holding each pair. A pair that can never reach
/// `min_frequency` is dropped from both: after the merge that creates it, a
/// pair's count only falls.
struct Pairs {
    counts: HashMap<Pair, i64, FxBuild>,
    index: HashMap<Pair, Vec<u32>, FxBuild>,
    min_frequency: i64,
    /// Only pairs counted at least this often are indexed and in the heap:
    /// the long tail of rare pairs (most pairs) is never merged before the
    /// vocabulary is full, and indexing it would take most of the memory.
    /// When no indexed pair is left the floor is lowered and the index
    /// rebuilt from the words, so the merges are exactly those of a full
    /// index.
    floor: i64,
}

/// A symbol in the words' arena: two bytes while the vocabulary fits, four
/// past 65,536 tokens.
trait Sym: Copy + Eq {
    fn id(self) -> u32;
    fn of(id: u32) -> Self;
}

impl Sym for u16 {
    #[inline]
    fn id(self) -> u32 {
        self as u32
    }
    #[inline]
    fn of(id: u32) -> Self {
        id as u16
    }
}

impl Sym for u32 {
    #[inline]
    fn id(self) -> u32 {
        self
    }
    #[inline]
    fn of(id: u32) -> Self {
        id
    }
}

/// Learns merges from `(word bytes, count)`; words are pre-tokenised pieces.
pub fn train(input: Vec<(Vec<u8>, u64)>, opt: &TrainOptions) -> Bpe {
    let mut counts = WordCounts::default();
    for (w, c) in &input {
        counts.add(w, *c);
    }
    drop(input);
    train_counts(counts, opt)
}

/// Learns merges from counted words (consumed: their memory goes before
/// the pairs are indexed).
pub fn train_counts(counts: WordCounts, opt: &TrainOptions) -> Bpe {
    let n_special = opt.n_special as u32;
    let split = |w: &[u8], out: &mut Vec<u32>| out.extend(w.iter().map(|&b| n_special + b as u32));
    let bytes = Alphabet {
        tokens: (0..=255u8).map(|b| vec![b]).collect(),
        split: &split,
        allow: &|_, _| true,
        forced: vec![],
        unique: false,
    };
    train_alphabet(counts, opt, &bytes)
}

/// What the merge loop starts from when it is not the 256 bytes (a
/// SentencePiece-style model starts from characters), and what it may merge.
pub struct Alphabet<'a> {
    /// The bytes of each base token: ids `n_special`, `n_special + 1`, ….
    pub tokens: Vec<Vec<u8>>,
    /// A word's base token ids (with the `n_special` offset).
    pub split: &'a dyn Fn(&[u8], &mut Vec<u32>),
    /// Whether two tokens (their bytes) may be merged; a pair refused is
    /// never counted again.
    pub allow: &'a dyn Fn(&[u8], &[u8]) -> bool,
    /// Merges made before any other (after `required`), in order: the bytes
    /// of the left and right tokens, each a base token or made by an
    /// earlier forced merge.
    pub forced: Vec<(Vec<u8>, Vec<u8>)>,
    /// No two tokens with the same bytes: a pair that would make a token
    /// already there ("aa" + "a" after "a" + "aa") is refused, as
    /// SentencePiece's trainer does.
    pub unique: bool,
}

/// Learns merges from counted words over any alphabet. `opt.required`
/// needs the byte alphabet; `opt.vocab_size` counts the specials, the
/// alphabet and the merges.
pub fn train_alphabet(counts: WordCounts, opt: &TrainOptions, alphabet: &Alphabet<'_>) -> Bpe {
    if opt.vocab_size <= 1 << 16 {
        train_with::<u16>(counts, opt, alphabet)
    } else {
        train_with::<u32>(counts, opt, alphabet)
    }
}

fn train_with<S: Sym>(counts: WordCounts, opt: &TrainOptions, alphabet: &Alphabet<'_>) -> Bpe {
    let n_special = opt.n_special as u32;
    let mut bpe = Bpe {
        n_special,
        tokens: alphabet.tokens.clone(),
        merges: vec![],
    };
    let n_base = bpe.tokens.len();
    let (total, n) = (counts.total_bytes(), counts.len());
    let mut words = Words {
        syms: Vec::with_capacity(total),
        start: Vec::with_capacity(n),
        len: Vec::with_capacity(n),
        count: Vec::with_capacity(n),
    };
    // In byte order of the words: the same result whatever order the counts
    // came in.
    let mut base: Vec<u32> = vec![];
    counts.for_each_sorted(|w, c| {
        if w.is_empty() || c == 0 {
            return;
        }
        base.clear();
        (alphabet.split)(w, &mut base);
        words.start.push(words.syms.len());
        words.len.push(base.len() as u32);
        words.count.push(c);
        words.syms.extend(base.iter().map(|&b| S::of(b)));
    });
    // The words' own allocations are gone: give their pages back before the
    // pair index takes its share.
    super::release_freed_memory();
    let mut pairs = Pairs {
        counts: HashMap::default(),
        index: HashMap::default(),
        min_frequency: opt.min_frequency.max(1) as i64,
        floor: opt.min_frequency.max(1) as i64,
    };
    for wi in 0..words.len.len() {
        let (st, ln) = (words.start[wi], words.len[wi] as usize);
        for p in words.syms[st..st + ln].windows(2) {
            *pairs.counts.entry((p[0].id(), p[1].id())).or_insert(0) += words.count[wi] as i64;
        }
    }
    // The forced merges of required tokens need only the first pair of each
    // indexed (the later pairs of a chain are made by its merges); the
    // index proper is built after them, above the floor.
    let mut ids: HashMap<Vec<u8>, u32, FxBuild> = HashMap::default();
    for (i, t) in bpe.tokens.iter().enumerate() {
        ids.insert(t.clone(), n_special + i as u32);
    }
    let first_pairs: std::collections::HashSet<Pair> = opt
        .required
        .iter()
        .filter(|r| r.len() >= 2)
        .map(|r| (bpe.byte_id(r[0]), bpe.byte_id(r[1])))
        .chain(
            alphabet
                .forced
                .iter()
                .filter_map(|(l, r)| Some((*ids.get(l)?, *ids.get(r)?))),
        )
        .collect();
    if !first_pairs.is_empty() {
        for wi in 0..words.len.len() {
            let (st, ln) = (words.start[wi], words.len[wi] as usize);
            for p in words.syms[st..st + ln].windows(2) {
                let pair = (p[0].id(), p[1].id());
                if first_pairs.contains(&pair) {
                    add_holder(&mut pairs.index, pair, wi as u32);
                }
            }
        }
    }
    let target = opt.vocab_size.saturating_sub(opt.n_special + n_base);

    // Required tokens first: each built left to right from its bytes, with
    // every pair still indexed (a forced merge may have a count of one).
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
                    let id =
                        apply_merge(&mut bpe, &mut words, &mut pairs, (left, right), None, false);
                    ids.insert(prefix.to_vec(), id);
                    id
                }
            };
        }
    }
    for (l, r) in &alphabet.forced {
        let (Some(&left), Some(&right)) = (ids.get(l), ids.get(r)) else {
            continue;
        };
        let joined = [l.as_slice(), r].concat();
        if bpe.merges.len() >= target || ids.contains_key(&joined) {
            continue;
        }
        let id = apply_merge(&mut bpe, &mut words, &mut pairs, (left, right), None, false);
        ids.insert(joined, id);
    }
    if !alphabet.unique {
        ids = HashMap::default();
    }
    let min_frequency = pairs.min_frequency;
    pairs.counts.retain(|_, c| *c >= min_frequency);
    let top = pairs.counts.values().copied().max().unwrap_or(0);
    pairs.floor = (top / 64).max(pairs.min_frequency);
    let mut heap = rebuild_index(&mut pairs, &words);
    let mut changed: Vec<Pair> = vec![];
    while bpe.merges.len() < target {
        let Some((c, Reverse(pair))) = heap.pop() else {
            if pairs.floor <= pairs.min_frequency {
                break;
            }
            pairs.floor = (pairs.floor / 8).max(pairs.min_frequency);
            heap = rebuild_index(&mut pairs, &words);
            continue;
        };
        let now = pairs.counts.get(&pair).copied().unwrap_or(0);
        if now != c {
            if now >= pairs.floor {
                heap.push((now, Reverse(pair)));
            }
            continue;
        }
        let (left, right) = (
            &bpe.tokens[(pair.0 - n_special) as usize],
            &bpe.tokens[(pair.1 - n_special) as usize],
        );
        let len = left.len() + right.len();
        if (opt.max_token_bytes > 0 && len > opt.max_token_bytes)
            || !(alphabet.allow)(left, right)
            || (alphabet.unique && ids.contains_key(&[left.as_slice(), right].concat()))
        {
            // Never merged: forget it.
            pairs.counts.remove(&pair);
            pairs.index.remove(&pair);
            continue;
        }
        changed.clear();
        let id = apply_merge(
            &mut bpe,
            &mut words,
            &mut pairs,
            pair,
            Some(&mut changed),
            true,
        );
        if alphabet.unique {
            ids.insert(bpe.tokens[(id - n_special) as usize].clone(), id);
        }
        for p in &changed {
            if let Some(&c) = pairs.counts.get(p) {
                heap.push((c, Reverse(*p)));
            }
        }
        if heap.len() > 2 * pairs.index.len() + 1024 {
            // Mostly stale entries: start again from the live counts.
            heap = indexed_heap(&pairs);
        }
    }
    bpe
}

/// The heap of the indexed pairs.
fn indexed_heap(pairs: &Pairs) -> BinaryHeap<(i64, Reverse<Pair>)> {
    pairs
        .index
        .keys()
        .filter_map(|p| pairs.counts.get(p).map(|c| (*c, Reverse(*p))))
        .collect()
}

/// Indexes every pair counted at least `floor` times, from the words as
/// they are now; returns their heap.
fn rebuild_index<S: Sym>(pairs: &mut Pairs, words: &Words<S>) -> BinaryHeap<(i64, Reverse<Pair>)> {
    pairs.index = HashMap::default();
    // Two passes: how many words hold each pair, then the lists at their
    // exact size (grown by doubling they would take up to twice as much).
    let mut sizes: HashMap<Pair, (u32, u32), FxBuild> = HashMap::default();
    let each = |f: &mut dyn FnMut(Pair, u32)| {
        for wi in 0..words.len.len() {
            let (st, ln) = (words.start[wi], words.len[wi] as usize);
            for p in words.syms[st..st + ln].windows(2) {
                let pair = (p[0].id(), p[1].id());
                if pairs.counts.get(&pair).is_some_and(|c| *c >= pairs.floor) {
                    f(pair, wi as u32);
                }
            }
        }
    };
    each(&mut |pair, wi| {
        let e = sizes.entry(pair).or_insert((0, u32::MAX));
        if e.1 != wi {
            *e = (e.0 + 1, wi);
        }
    });
    let mut index: HashMap<Pair, Vec<u32>, FxBuild> =
        HashMap::with_capacity_and_hasher(sizes.len(), FxBuild::default());
    for (p, (n, _)) in sizes {
        index.insert(p, Vec::with_capacity(n as usize));
    }
    each(&mut |pair, wi| add_holder(&mut index, pair, wi));
    pairs.index = index;
    indexed_heap(pairs)
}

fn add_holder(index: &mut HashMap<Pair, Vec<u32>, FxBuild>, p: Pair, wi: u32) {
    let list = index.entry(p).or_default();
    if list.last() != Some(&wi) {
        list.push(wi);
    }
}

/// Merges `pair` into a new token in every word that has it, updating the
/// counts and the index; returns the new id. The pairs created (those with
/// the new token) go to `changed` when they can still be merged; with
/// `prune`, pairs that fell below `min_frequency` are forgotten.
fn apply_merge<S: Sym>(
    bpe: &mut Bpe,
    words: &mut Words<S>,
    pairs: &mut Pairs,
    pair: Pair,
    mut changed: Option<&mut Vec<Pair>>,
    prune: bool,
) -> u32 {
    let n_special = bpe.n_special;
    let new = n_special + bpe.tokens.len() as u32;
    let mut bytes = bpe.tokens[(pair.0 - n_special) as usize].clone();
    bytes.extend_from_slice(&bpe.tokens[(pair.1 - n_special) as usize]);
    bpe.tokens.push(bytes);
    bpe.merges.push(pair);
    let holders = pairs.index.remove(&pair).unwrap_or_default();
    let mut delta: HashMap<Pair, i64, FxBuild> = HashMap::default();
    let mut created: Vec<(Pair, u32)> = vec![];
    for wi in holders {
        let (st, ln) = (words.start[wi as usize], words.len[wi as usize] as usize);
        let count = words.count[wi as usize] as i64;
        let w = &mut words.syms[st..st + ln];
        // In place: read at i, write at j <= i. Only the pairs next to each
        // merged occurrence change, read on the sequence as merged so far:
        // in "a b a b" the middle (b, a) goes, (new, a) comes and goes,
        // (new, new) comes.
        let (mut i, mut j) = (0, 0);
        let mut found = false;
        while i < ln {
            if i + 1 < ln && (w[i].id(), w[i + 1].id()) == pair {
                found = true;
                if j > 0 {
                    let prev = w[j - 1].id();
                    *delta.entry((prev, pair.0)).or_insert(0) -= count;
                    *delta.entry((prev, new)).or_insert(0) += count;
                    created.push(((prev, new), wi));
                }
                if i + 2 < ln {
                    let next = w[i + 2].id();
                    *delta.entry((pair.1, next)).or_insert(0) -= count;
                    *delta.entry((new, next)).or_insert(0) += count;
                    created.push(((new, next), wi));
                }
                w[j] = S::of(new);
                i += 2;
            } else {
                w[j] = w[i];
                i += 1;
            }
            j += 1;
        }
        if found {
            words.len[wi as usize] = j as u32;
        }
    }
    pairs.counts.remove(&pair);
    for (p, d) in delta {
        if d == 0 || p == pair {
            continue;
        }
        if d > 0 {
            // A pair with the new token: its count is final here.
            if !prune || d >= pairs.min_frequency {
                pairs.counts.insert(p, d);
                if !prune || d >= pairs.floor {
                    if let Some(ch) = changed.as_deref_mut() {
                        ch.push(p);
                    }
                }
            }
            continue;
        }
        if let Some(c) = pairs.counts.get_mut(&p) {
            *c += d;
            if *c <= 0 || (prune && *c < pairs.min_frequency) {
                pairs.counts.remove(&p);
                pairs.index.remove(&p);
            } else if prune && *c < pairs.floor {
                pairs.index.remove(&p);
            }
        }
    }
    for (p, wi) in created {
        if pairs
            .counts
            .get(&p)
            .is_some_and(|c| !prune || *c >= pairs.floor)
        {
            add_holder(&mut pairs.index, p, wi);
        }
    }
    new
}

/// Encodes pieces with the merges, lowest rank first (as every BPE encoder
/// with a merge list does).
pub struct Encoder {
    bpe: Bpe,
    merges: Merges,
}

impl Encoder {
    pub fn new(bpe: Bpe) -> Self {
        let base = bpe.n_special + 256;
        let mut merges = Merges::default();
        for (r, p) in bpe.merges.iter().enumerate() {
            merges.insert(*p, r as u32, base + r as u32);
        }
        Encoder { bpe, merges }
    }

    pub fn bpe(&self) -> &Bpe {
        &self.bpe
    }

    /// The ids of one piece, appended to `out`.
    pub fn encode_piece(&self, piece: &[u8], out: &mut Vec<u32>) {
        let start = out.len();
        out.extend(piece.iter().map(|&b| self.bpe.byte_id(b)));
        self.merges.apply(out, start);
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

/// The merges of any BPE model at encoding time: each pair of ids gives
/// its rank and the id it makes. Applied as Hugging Face's `tokenizers`
/// applies them (`Word::merge_all`): the lowest rank first and, among
/// equals, the leftmost, until no pair of neighbours has a merge.
#[derive(Default)]
pub struct Merges {
    map: HashMap<Pair, (u32, u32), FxBuild>,
}

impl Merges {
    /// A later merge of the same pair replaces the earlier one, as in
    /// `tokenizers`.
    pub fn insert(&mut self, pair: Pair, rank: u32, made: u32) {
        self.map.insert(pair, (rank, made));
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    #[inline]
    pub fn get(&self, a: u32, b: u32) -> Option<(u32, u32)> {
        self.map.get(&(a, b)).copied()
    }

    /// Merges the symbols `syms[start..]` in place.
    pub fn apply(&self, syms: &mut Vec<u32>, start: usize) {
        if syms.len() - start > 48 {
            self.apply_long(syms, start)
        } else {
            self.apply_short(syms, start)
        }
    }

    /// Short pieces: merge the lowest-ranked pair everywhere, repeat.
    fn apply_short(&self, syms: &mut Vec<u32>, start: usize) {
        loop {
            let mut best: Option<(u32, u32, usize)> = None;
            for i in start..syms.len().saturating_sub(1) {
                if let Some((r, made)) = self.get(syms[i], syms[i + 1]) {
                    if best.is_none_or(|b| r < b.0) {
                        best = Some((r, made, i));
                    }
                }
            }
            let Some((rank, made, first)) = best else {
                break;
            };
            let (mut w, mut i) = (first, first);
            while i < syms.len() {
                if i + 1 < syms.len() && self.get(syms[i], syms[i + 1]).is_some_and(|m| m.0 == rank)
                {
                    syms[w] = made;
                    i += 2;
                } else {
                    syms[w] = syms[i];
                    i += 1;
                }
                w += 1;
            }
            syms.truncate(w);
        }
    }

    /// The same merges for a long piece (a run of Chinese characters, a
    /// megabyte without a space) in O(n log n): the symbols as a linked
    /// list, the candidate pairs in a heap by (rank, position), so the
    /// lowest rank goes first and, among equals, the leftmost, as above.
    fn apply_long(&self, syms: &mut Vec<u32>, start: usize) {
        let sym = &mut syms[start..];
        let n = sym.len();
        let mut next: Vec<usize> = (1..=n).collect();
        let mut prev: Vec<usize> = (0..n).map(|i| i.wrapping_sub(1)).collect();
        let mut alive = vec![true; n];
        let mut heap: BinaryHeap<Reverse<(u32, usize)>> = BinaryHeap::new();
        for i in 0..n.saturating_sub(1) {
            if let Some((r, _)) = self.get(sym[i], sym[i + 1]) {
                heap.push(Reverse((r, i)));
            }
        }
        while let Some(Reverse((r, i))) = heap.pop() {
            let j = next[i];
            // Stale: the left symbol went, or the pair is no longer this one.
            if !alive[i] || j >= n {
                continue;
            }
            let Some((r2, made)) = self.get(sym[i], sym[j]) else {
                continue;
            };
            if r2 != r {
                continue;
            }
            sym[i] = made;
            alive[j] = false;
            next[i] = next[j];
            if next[i] < n {
                prev[next[i]] = i;
            }
            let p = prev[i];
            if p < n {
                if let Some((r, _)) = self.get(sym[p], sym[i]) {
                    heap.push(Reverse((r, p)));
                }
            }
            if next[i] < n {
                if let Some((r, _)) = self.get(sym[i], sym[next[i]]) {
                    heap.push(Reverse((r, i)));
                }
            }
        }
        let (mut i, mut w) = (0, 0);
        while i < n {
            sym[w] = sym[i];
            w += 1;
            i = next[i];
        }
        syms.truncate(start + w);
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
    fn long_pieces_encode_as_short_ones_do() {
        let words: Vec<(Vec<u8>, u64)> = ["abcabcab", "aaaa", "中文中文", "abab", "ca"]
            .iter()
            .map(|w| (w.as_bytes().to_vec(), 7))
            .collect();
        let enc = Encoder::new(train(words, &opts(1 + 256 + 40)));
        let mut state = 12345u64;
        for _ in 0..200 {
            let mut piece = vec![];
            for _ in 0..(65 + state % 300) {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
                let choices: [&[u8]; 5] = [b"a", b"b", b"c", "中".as_bytes(), "文".as_bytes()];
                piece.extend_from_slice(choices[(state >> 60) as usize % 5]);
            }
            let mut long = vec![7];
            long.extend(piece.iter().map(|&b| enc.bpe.byte_id(b)));
            let mut short = long.clone();
            enc.merges.apply_long(&mut long, 1);
            enc.merges.apply_short(&mut short, 1);
            assert_eq!(long, short);
            assert_eq!(long[0], 7, "what comes before `start` is left alone");
            let long = long[1..].to_vec();
            assert_eq!(enc.decode(&long), piece);
        }
    }

    #[test]
    fn two_and_four_byte_symbols_learn_the_same_merges() {
        let words: Vec<(Vec<u8>, u64)> =
            ["low", "lower", "newest", "widest", "中文", "中国", "中文字"]
                .iter()
                .enumerate()
                .map(|(i, w)| (w.as_bytes().to_vec(), 3 + i as u64))
                .collect();
        let o = opts(1 + 256 + 30);
        let counts = |ws: &[(Vec<u8>, u64)]| {
            let mut c = WordCounts::default();
            for (w, n) in ws {
                c.add(w, *n);
            }
            c
        };
        let bytes = Alphabet {
            tokens: (0..=255u8).map(|b| vec![b]).collect(),
            split: &|w, out| out.extend(w.iter().map(|&b| 1 + b as u32)),
            allow: &|_, _| true,
            forced: vec![],
            unique: false,
        };
        let a = train_with::<u16>(counts(&words), &o, &bytes);
        let b = train_with::<u32>(counts(&words), &o, &bytes);
        assert_eq!(a.merges, b.merges);
        assert_eq!(a.tokens, b.tokens);
        assert!(a.merges.len() > 10);
    }

    #[test]
    fn ties_break_on_the_smallest_pair() {
        let words = vec![(b"xy".to_vec(), 4), (b"ab".to_vec(), 4)];
        let bpe = train(words, &opts(1 + 256 + 1));
        assert_eq!(bpe.merges, vec![(1 + b'a' as u32, 1 + b'b' as u32)]);
    }
}
