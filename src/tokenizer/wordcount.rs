//! Word counts without an allocation per word: the distinct words' bytes in
//! one arena, their (offset, length, count) in one vector, and a hash table
//! of indices into it. About 30 bytes per distinct word besides the word's
//! bytes, where a `HashMap<Box<str>, u64>` takes over 100 with the
//! allocator's share, and nothing for the allocator to keep once dropped.

use std::hash::Hasher;

use hashbrown::HashTable;

use super::fxhash::FxHasher;

#[derive(Clone, Copy)]
struct Entry {
    off: u64,
    len: u32,
    count: u64,
}

#[derive(Default)]
pub struct WordCounts {
    bytes: Vec<u8>,
    entries: Vec<Entry>,
    table: HashTable<u32>,
}

fn hash(word: &[u8]) -> u64 {
    let mut h = FxHasher::default();
    h.write(word);
    h.write_usize(word.len());
    h.finish()
}

fn word<'a>(bytes: &'a [u8], e: &Entry) -> &'a [u8] {
    &bytes[e.off as usize..e.off as usize + e.len as usize]
}

impl WordCounts {
    pub fn add(&mut self, w: &[u8], n: u64) {
        let h = hash(w);
        let WordCounts {
            bytes,
            entries,
            table,
        } = self;
        if let Some(&i) = table.find(h, |&i| word(bytes, &entries[i as usize]) == w) {
            entries[i as usize].count += n;
            return;
        }
        entries.push(Entry {
            off: bytes.len() as u64,
            len: w.len() as u32,
            count: n,
        });
        bytes.extend_from_slice(w);
        let i = entries.len() as u32 - 1;
        table.insert_unique(h, i, |&i| hash(word(bytes, &entries[i as usize])));
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Words counted, with repeats.
    pub fn total(&self) -> u64 {
        self.entries.iter().map(|e| e.count).sum()
    }

    /// Bytes of all distinct words.
    pub fn total_bytes(&self) -> usize {
        self.bytes.len()
    }

    /// Adds another's counts to these.
    pub fn absorb(&mut self, other: &WordCounts) {
        for e in &other.entries {
            self.add(word(&other.bytes, e), e.count);
        }
    }

    /// Calls `f` on every word and its count, in no particular order.
    pub fn for_each(&self, mut f: impl FnMut(&[u8], u64)) {
        for e in &self.entries {
            f(word(&self.bytes, e), e.count);
        }
    }

    /// Forgets every word, keeping the allocations for reuse.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.entries.clear();
        self.table.clear();
    }

    /// Calls `f` on every word and its count, in byte order of the words.
    /// The hash table is dropped first: only the order (4 bytes a word)
    /// is added to what the counts hold.
    pub fn for_each_sorted(mut self, mut f: impl FnMut(&[u8], u64)) {
        self.table = HashTable::new();
        let mut order: Vec<u32> = (0..self.entries.len() as u32).collect();
        let (bytes, entries) = (&self.bytes, &self.entries);
        order.sort_unstable_by(|&a, &b| {
            word(bytes, &entries[a as usize]).cmp(word(bytes, &entries[b as usize]))
        });
        for i in order {
            let e = &entries[i as usize];
            f(word(bytes, e), e.count);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_absorbs_and_sorts() {
        let mut a = WordCounts::default();
        for w in ["the", "cat", "the", "中文", ""] {
            a.add(w.as_bytes(), 1);
        }
        let mut b = WordCounts::default();
        b.add(b"cat", 5);
        b.add(b"dog", 2);
        let mut m = a;
        m.absorb(&b);
        b.clear();
        assert!(b.is_empty());
        assert_eq!(m.len(), 5);
        assert_eq!(m.total(), 12);
        let mut seen = vec![];
        m.for_each_sorted(|w, c| seen.push((w.to_vec(), c)));
        let want: Vec<(Vec<u8>, u64)> = vec![
            (b"".to_vec(), 1),
            (b"cat".to_vec(), 6),
            (b"dog".to_vec(), 2),
            (b"the".to_vec(), 2),
            ("中文".as_bytes().to_vec(), 1),
        ];
        assert_eq!(seen, want);
    }
}
