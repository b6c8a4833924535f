//! KenLM's tables as bytes, laid out as its probing binary lays them out
//! (little-endian, packed entries): read from a mapped file, or built in
//! memory from an ARPA file by [`TableBuilder`].

use std::sync::Arc;

/// Bytes a table reads: a mapped file or a vector, shared.
pub type Backing = Arc<dyn AsRef<[u8]> + Send + Sync>;

/// The entry layouts (sizes in bytes; every entry starts with its key but
/// the unigrams', which are indexed by word id).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    /// `u64 key, u32 id` (ProbingVocabularyEntry, packed to 4).
    Vocab,
    /// `f32 prob, f32 backoff`, or with `f32 rest` (REST_PROBING).
    Unigram { rest: bool },
    /// `u64 key, f32 prob, f32 backoff`, or with `f32 rest`.
    Middle { rest: bool },
    /// `u64 key, f32 prob`.
    Longest,
}

impl EntryKind {
    pub fn size(self) -> usize {
        match self {
            EntryKind::Vocab => 12,
            EntryKind::Unigram { rest } => 8 + 4 * rest as usize,
            EntryKind::Middle { rest } => 16 + 4 * rest as usize,
            EntryKind::Longest => 12,
        }
    }
}

/// A table: `buckets` entries of one kind at `start` in `data`.
pub struct Table {
    /// Keeps the bytes alive (and in place: a map or a vector's buffer
    /// never moves) while `ptr` points into them.
    _data: Backing,
    /// The table's first byte, and its length: read directly, because
    /// going through `Backing`'s `as_ref` on every probe (a virtual call)
    /// cost a sixth of the scoring time.
    ptr: *const u8,
    len: usize,
    buckets: u64,
    kind: EntryKind,
}

// SAFETY: the bytes behind `ptr` are immutable and owned by `_data`, which
// is Send + Sync.
unsafe impl Send for Table {}
unsafe impl Sync for Table {}

#[inline]
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}
#[inline]
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
#[inline]
fn f32_at(b: &[u8], at: usize) -> f32 {
    f32::from_bits(u32_at(b, at))
}

/// Where `key` is in a probing table, or the empty bucket where it would go.
/// The table always has an empty bucket (it holds fewer entries than
/// buckets), so the walk ends.
fn probe(b: &[u8], entry: usize, buckets: u64, key: u64) -> Result<usize, usize> {
    let mut i = (key % buckets) as usize;
    // A damaged file's table may have no empty bucket: one full turn ends
    // the walk (a miss) instead of looping.
    for _ in 0..buckets {
        let at = i * entry;
        let k = u64_at(b, at);
        if k == key {
            return Ok(at);
        }
        if k == 0 {
            return Err(at);
        }
        i += 1;
        if i as u64 == buckets {
            i = 0;
        }
    }
    Err(usize::MAX)
}

impl Table {
    /// The table over `data[start..]`; the caller has checked that the
    /// bytes are there.
    pub fn new(data: Backing, start: usize, buckets: u64, kind: EntryKind) -> Table {
        let len = (buckets as usize) * kind.size();
        let all: &[u8] = (*data).as_ref();
        let ptr = all[start..start + len].as_ptr();
        Table {
            _data: data,
            ptr,
            len,
            buckets,
            kind,
        }
    }

    pub fn bytes_len(buckets: u64, kind: EntryKind) -> u64 {
        buckets.saturating_mul(kind.size() as u64)
    }

    #[inline]
    pub(crate) fn bytes(&self) -> &[u8] {
        // SAFETY: `new` took this range from the bytes `_data` holds.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    /// Asks the CPU to load `key`'s bucket: scoring issues these for the
    /// next word's n-grams while it probes the current one's, so that the
    /// cache misses of a large model overlap instead of queueing.
    #[inline]
    pub fn prefetch(&self, key: u64) {
        #[cfg(target_arch = "x86_64")]
        {
            let at = (key % self.buckets) as usize * self.kind.size();
            // SAFETY: `at` is inside the table (a bucket's offset); a
            // prefetch never faults anyway.
            unsafe {
                std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                    self.ptr.add(at) as *const i8,
                )
            };
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = key;
    }

    /// A word's id, 0 (`<unk>`) when absent.
    pub fn vocab_id(&self, hash: u64) -> u32 {
        let b = self.bytes();
        match probe(b, 12, self.buckets, hash) {
            Ok(at) => u32_at(b, at + 8),
            Err(_) => 0,
        }
    }

    /// `(prob, backoff)` of word `id` (ids are below the table's size).
    #[inline]
    pub fn unigram(&self, id: u32) -> (f32, f32) {
        let b = self.bytes();
        let at = id as usize * self.kind.size();
        (f32_at(b, at), f32_at(b, at + 4))
    }

    #[inline]
    pub fn middle(&self, key: u64) -> Option<(f32, f32)> {
        let b = self.bytes();
        probe(b, self.kind.size(), self.buckets, key)
            .ok()
            .map(|at| (f32_at(b, at + 8), f32_at(b, at + 12)))
    }

    #[inline]
    pub fn longest(&self, key: u64) -> Option<f32> {
        let b = self.bytes();
        probe(b, 12, self.buckets, key)
            .ok()
            .map(|at| f32_at(b, at + 8))
    }
}

/// A probing (or indexed) table being filled from an ARPA file.
pub struct TableBuilder {
    bytes: Vec<u8>,
    buckets: u64,
    kind: EntryKind,
    entries: u64,
}

impl TableBuilder {
    pub fn new(buckets: u64, kind: EntryKind) -> TableBuilder {
        TableBuilder {
            bytes: vec![0; (buckets as usize) * kind.size()],
            buckets,
            kind,
            entries: 0,
        }
    }

    /// The offset of `key`'s entry, inserting it (zeroed but for the key)
    /// when absent. Fails when the table is full.
    pub fn entry(&mut self, key: u64) -> Result<(usize, bool), String> {
        match probe(&self.bytes, self.kind.size(), self.buckets, key) {
            Ok(at) => Ok((at, false)),
            Err(usize::MAX) => Err(format!(
                "a probing table of {} buckets is full",
                self.buckets
            )),
            Err(at) => {
                self.entries += 1;
                if self.entries >= self.buckets {
                    return Err(format!(
                        "a probing table of {} buckets is full (more n-grams than the header's counts)",
                        self.buckets
                    ));
                }
                self.bytes[at..at + 8].copy_from_slice(&key.to_le_bytes());
                Ok((at, true))
            }
        }
    }

    pub fn find(&self, key: u64) -> Option<usize> {
        probe(&self.bytes, self.kind.size(), self.buckets, key).ok()
    }

    pub fn put_u32(&mut self, at: usize, v: u32) {
        self.bytes[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }
    pub fn put_f32(&mut self, at: usize, v: f32) {
        self.put_u32(at, v.to_bits());
    }
    pub fn f32_at(&self, at: usize) -> f32 {
        f32_at(&self.bytes, at)
    }

    pub fn finish(self) -> Table {
        let buckets = self.buckets;
        let kind = self.kind;
        Table::new(Arc::new(self.bytes), 0, buckets, kind)
    }
}
