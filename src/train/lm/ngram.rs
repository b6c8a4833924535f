//! N-grams as sortable records: up to six word ids packed two to a `u64`,
//! most significant first, then one `u64` of payload. Sorting the records
//! as arrays sorts the n-grams in the order their packing gives: the
//! suffix order (last word first, as KenLM's `SuffixOrder`) or the context
//! order (the context's words last first, then the predicted word, as
//! `ContextOrder`). Id 0 (`<unk>`) is never part of an n-gram of order 2 or
//! more, so the zero padding of a short n-gram never ties with a word.

use super::spec::MAX_ORDER;

pub type Words = [u32; MAX_ORDER];
/// Three `u64`s of packed words and one of payload.
pub type Record = [u64; 4];

pub const UNK: u32 = 0;
pub const BOS: u32 = 1;
pub const EOS: u32 = 2;

/// Packs the ids in the order given.
fn pack(ids: impl Iterator<Item = u32>) -> [u64; 3] {
    let mut key = [0u64; 3];
    for (i, id) in ids.enumerate() {
        key[i / 2] |= (id as u64) << (if i.is_multiple_of(2) { 32 } else { 0 });
    }
    key
}

fn unpacked(key: &[u64], i: usize) -> u32 {
    (key[i / 2] >> (if i.is_multiple_of(2) { 32 } else { 0 })) as u32
}

/// The suffix-order key of `w`: its words from the last back.
pub fn suffix_key(w: &[u32]) -> [u64; 3] {
    pack(w.iter().rev().copied())
}

/// The words of a suffix-order key of order `k`, first word first.
pub fn from_suffix_key(key: &[u64], k: usize) -> Words {
    let mut w = [0; MAX_ORDER];
    for (i, x) in w[..k].iter_mut().enumerate() {
        *x = unpacked(key, k - 1 - i);
    }
    w
}

/// The context-order key of `w` (order 2 or more): the context's words
/// from its last back, then the predicted word.
pub fn context_key(w: &[u32]) -> [u64; 3] {
    let k = w.len();
    pack(w[..k - 1].iter().rev().copied().chain([w[k - 1]]))
}

/// The words of a context-order key of order `k`, first word first.
pub fn from_context_key(key: &[u64], k: usize) -> Words {
    let mut w = [0; MAX_ORDER];
    for (i, x) in w[..k - 1].iter_mut().enumerate() {
        *x = unpacked(key, k - 2 - i);
    }
    w[k - 1] = unpacked(key, k - 1);
    w
}

pub fn record(key: [u64; 3], payload: u64) -> Record {
    [key[0], key[1], key[2], payload]
}

/// The high bit of a count: the n-gram is pruned (KenLM's `Mark`).
pub const MARK: u64 = 1 << 63;

/// Two `f32`s in one payload.
pub fn pair(a: f32, b: f32) -> u64 {
    ((a.to_bits() as u64) << 32) | b.to_bits() as u64
}

pub fn unpair(p: u64) -> (f32, f32) {
    (f32::from_bits((p >> 32) as u32), f32::from_bits(p as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_sort_as_kenlm() {
        let a = [5u32, 9, 3];
        assert_eq!(&from_suffix_key(&suffix_key(&a), 3)[..3], &a);
        assert_eq!(&from_context_key(&context_key(&a), 3)[..3], &a);
        let six = [7u32, 1, 2, 3, 4, 5];
        assert_eq!(from_suffix_key(&suffix_key(&six), 6), six);
        assert_eq!(from_context_key(&context_key(&six), 6), six);
        // Suffix order: by the last word, then the one before.
        assert!(suffix_key(&[9, 3]) < suffix_key(&[1, 4]));
        assert!(suffix_key(&[2, 3]) < suffix_key(&[9, 3]));
        // Context order: by the context (last word first), then the word.
        assert!(context_key(&[3, 5, 9]) < context_key(&[4, 9, 1]));
        assert!(context_key(&[3, 9, 1]) < context_key(&[3, 9, 2]));
        assert_eq!(unpair(pair(0.25, -1.5)), (0.25, -1.5));
    }
}
