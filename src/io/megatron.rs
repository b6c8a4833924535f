//! Megatron-LM's indexed dataset (`.bin` + `.idx`), the files GPT trainers
//! memory-map: written as Megatron's own `IndexedDatasetBuilder` writes them
//! (byte for byte: tests/shards.rs builds the same arrays with Megatron and
//! compares), and read back for `inspect` and the tests.
//!
//! `.bin`: the token ids of every sequence, concatenated. `.idx`, little
//! endian: `MMIDIDX\0\0`, u64 version 1, u8 dtype code, u64 sequence count S,
//! u64 D (documents + 1), i32[S] sequence lengths, i64[S] byte offsets into
//! `.bin`, i64[D] document indices (in sequences, from 0). A document split
//! into pieces is several consecutive sequences of one document.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};

const MAGIC: &[u8; 9] = b"MMIDIDX\x00\x00";

/// The id type on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dtype {
    U16,
    I32,
}

impl Dtype {
    /// What Megatron's preprocessing picks (`DType.optimal_dtype`): two
    /// bytes when the vocabulary is under 65,500 tokens.
    pub fn for_vocab(vocab_size: usize) -> Dtype {
        if vocab_size < 65_500 {
            Dtype::U16
        } else {
            Dtype::I32
        }
    }
    fn code(self) -> u8 {
        match self {
            Dtype::U16 => 8,
            Dtype::I32 => 4,
        }
    }
    fn of_code(code: u8) -> Option<Dtype> {
        match code {
            8 => Some(Dtype::U16),
            4 => Some(Dtype::I32),
            _ => None,
        }
    }
    pub fn size(self) -> usize {
        match self {
            Dtype::U16 => 2,
            Dtype::I32 => 4,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Dtype::U16 => "uint16",
            Dtype::I32 => "int32",
        }
    }
}

/// Writes one `.bin`/`.idx` pair under temporary names; `finish` renames
/// them into place, so a crash never leaves a half-written shard behind.
pub struct IndexedWriter {
    prefix: PathBuf,
    tmp: PathBuf,
    bin: BufWriter<File>,
    dtype: Dtype,
    lengths: Vec<i32>,
    offsets: Vec<i64>,
    doc_index: Vec<i64>,
    bytes: i64,
    tokens: u64,
}

impl IndexedWriter {
    /// `prefix` without extension: writes `prefix.bin` and `prefix.idx`.
    pub fn create(prefix: &Path, dtype: Dtype) -> Result<IndexedWriter> {
        let bin_path = prefix.with_extension("bin");
        let tmp = crate::io::store::staging(&bin_path);
        let f = File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
        Ok(IndexedWriter {
            prefix: prefix.to_path_buf(),
            tmp,
            bin: BufWriter::with_capacity(1 << 20, f),
            dtype,
            lengths: vec![],
            offsets: vec![],
            doc_index: vec![0],
            bytes: 0,
            tokens: 0,
        })
    }

    /// Appends one document made of `sequences` (one, or the pieces of a
    /// split document). An id that does not fit the dtype is an error.
    pub fn add_document(&mut self, sequences: &[&[u32]]) -> Result<()> {
        let mut buf: Vec<u8> = vec![];
        for seq in sequences {
            ensure!(
                seq.len() <= i32::MAX as usize,
                "a sequence of {} tokens does not fit Megatron's 32-bit lengths",
                seq.len()
            );
            buf.clear();
            match self.dtype {
                Dtype::U16 => {
                    for &id in *seq {
                        let v = u16::try_from(id).map_err(|_| {
                            anyhow::anyhow!("token id {id} does not fit uint16 (vocabulary too large for this dtype)")
                        })?;
                        buf.extend_from_slice(&v.to_le_bytes());
                    }
                }
                Dtype::I32 => {
                    for &id in *seq {
                        let v = i32::try_from(id)
                            .map_err(|_| anyhow::anyhow!("token id {id} does not fit int32"))?;
                        buf.extend_from_slice(&v.to_le_bytes());
                    }
                }
            }
            self.bin.write_all(&buf)?;
            self.lengths.push(seq.len() as i32);
            self.offsets.push(self.bytes);
            self.bytes += buf.len() as i64;
            self.tokens += seq.len() as u64;
        }
        self.doc_index.push(self.lengths.len() as i64);
        Ok(())
    }

    pub fn tokens(&self) -> u64 {
        self.tokens
    }

    pub fn documents(&self) -> usize {
        self.doc_index.len() - 1
    }

    /// Writes the index and moves both files into place.
    pub fn finish(self) -> Result<()> {
        let bin_path = self.prefix.with_extension("bin");
        let idx_path = self.prefix.with_extension("idx");
        let f = self
            .bin
            .into_inner()
            .map_err(|e| anyhow::anyhow!("cannot write {}: {}", bin_path.display(), e.error()))?;
        f.sync_all()?;
        let mut idx: Vec<u8> =
            Vec::with_capacity(34 + self.lengths.len() * 12 + self.doc_index.len() * 8);
        idx.extend_from_slice(MAGIC);
        idx.extend_from_slice(&1u64.to_le_bytes());
        idx.push(self.dtype.code());
        idx.extend_from_slice(&(self.lengths.len() as u64).to_le_bytes());
        idx.extend_from_slice(&(self.doc_index.len() as u64).to_le_bytes());
        for l in &self.lengths {
            idx.extend_from_slice(&l.to_le_bytes());
        }
        for o in &self.offsets {
            idx.extend_from_slice(&o.to_le_bytes());
        }
        for d in &self.doc_index {
            idx.extend_from_slice(&d.to_le_bytes());
        }
        // The index goes in first: a .bin in place always has its .idx.
        crate::io::writer::write_atomic(&idx_path, &idx)?;
        crate::io::store::commit(&self.tmp, &bin_path)?;
        Ok(())
    }
}

/// A `.bin`/`.idx` pair read into memory (for `inspect` and tests; trainers
/// memory-map them).
pub struct IndexedDataset {
    pub dtype: Dtype,
    pub lengths: Vec<i32>,
    pub offsets: Vec<i64>,
    pub doc_index: Vec<i64>,
    bin: PathBuf,
}

fn take<const N: usize>(b: &[u8], at: &mut usize, what: &str, path: &Path) -> Result<[u8; N]> {
    let s = b
        .get(*at..*at + N)
        .with_context(|| format!("{}: truncated index ({what})", path.display()))?;
    *at += N;
    Ok(s.try_into().expect("slice of N bytes"))
}

impl IndexedDataset {
    /// Opens `prefix.idx` (and checks it against `prefix.bin`'s size).
    pub fn open(prefix: &Path) -> Result<IndexedDataset> {
        let idx_path = prefix.with_extension("idx");
        let b = crate::io::store::read(&idx_path)?;
        let p = &idx_path;
        let mut at = 0;
        if take::<9>(&b, &mut at, "magic", p)? != *MAGIC {
            bail!("{}: not a Megatron index (no MMIDIDX header)", p.display());
        }
        let version = u64::from_le_bytes(take::<8>(&b, &mut at, "version", p)?);
        ensure!(
            version == 1,
            "{}: index version {version}, not 1",
            p.display()
        );
        let code = take::<1>(&b, &mut at, "dtype", p)?[0];
        let dtype = Dtype::of_code(code).with_context(|| {
            format!(
                "{}: dtype code {code} (sluice reads 8 uint16 and 4 int32)",
                p.display()
            )
        })?;
        let s = u64::from_le_bytes(take::<8>(&b, &mut at, "sequence count", p)?) as usize;
        let d = u64::from_le_bytes(take::<8>(&b, &mut at, "document count", p)?) as usize;
        ensure!(
            b.len() == at + s * 12 + d * 8,
            "{}: {} bytes, but {s} sequences and {d} document indices need {}",
            p.display(),
            b.len(),
            at + s * 12 + d * 8
        );
        let mut lengths = Vec::with_capacity(s);
        for _ in 0..s {
            lengths.push(i32::from_le_bytes(take::<4>(&b, &mut at, "lengths", p)?));
        }
        let mut offsets = Vec::with_capacity(s);
        for _ in 0..s {
            offsets.push(i64::from_le_bytes(take::<8>(&b, &mut at, "offsets", p)?));
        }
        let mut doc_index = Vec::with_capacity(d);
        for _ in 0..d {
            doc_index.push(i64::from_le_bytes(take::<8>(&b, &mut at, "documents", p)?));
        }
        let bin = prefix.with_extension("bin");
        let bin_len = crate::io::store::size(&bin)?
            .with_context(|| format!("{} is missing", bin.display()))?;
        let want: i64 = lengths.iter().map(|&l| l as i64).sum::<i64>() * dtype.size() as i64;
        ensure!(
            bin_len as i64 == want,
            "{}: {bin_len} bytes, but its index counts {want}",
            bin.display()
        );
        ensure!(
            doc_index.last().copied() == Some(s as i64),
            "{}: the last document index is not the sequence count {s}",
            p.display()
        );
        Ok(IndexedDataset {
            dtype,
            lengths,
            offsets,
            doc_index,
            bin,
        })
    }

    pub fn documents(&self) -> usize {
        self.doc_index.len().saturating_sub(1)
    }

    pub fn tokens(&self) -> u64 {
        self.lengths.iter().map(|&l| l as u64).sum()
    }

    /// The ids of sequence `i`.
    pub fn sequence(&self, i: usize) -> Result<Vec<u32>> {
        let f = crate::io::store::open(&self.bin)?;
        let mut b = vec![0u8; self.lengths[i] as usize * self.dtype.size()];
        f.read_exact_at(&mut b, self.offsets[i] as u64)
            .with_context(|| format!("{}: sequence {i} truncated", self.bin.display()))?;
        Ok(match self.dtype {
            Dtype::U16 => b
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]) as u32)
                .collect(),
            Dtype::I32 => b
                .chunks_exact(4)
                .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as u32)
                .collect(),
        })
    }

    /// The ids of document `d` (its sequences concatenated).
    pub fn document(&self, d: usize) -> Result<Vec<u32>> {
        let mut out = vec![];
        for s in self.doc_index[d]..self.doc_index[d + 1] {
            out.extend(self.sequence(s as usize)?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes Megatron's IndexedDatasetBuilder (megatron-core 0.16.1)
    /// wrote for documents [[1,2,3]], [[10,11],[12,13,14,15]], [[65000]].
    #[test]
    fn index_is_what_megatron_writes() {
        let dir = tempfile::tempdir().unwrap();
        let prefix = dir.path().join("x");
        let mut w = IndexedWriter::create(&prefix, Dtype::U16).unwrap();
        w.add_document(&[&[1, 2, 3]]).unwrap();
        w.add_document(&[&[10, 11], &[12, 13, 14, 15]]).unwrap();
        w.add_document(&[&[65000]]).unwrap();
        w.finish().unwrap();
        let idx = std::fs::read(prefix.with_extension("idx")).unwrap();
        let mut want: Vec<u8> = b"MMIDIDX\x00\x00".to_vec();
        want.extend(1u64.to_le_bytes());
        want.push(8);
        want.extend(4u64.to_le_bytes());
        want.extend(4u64.to_le_bytes());
        for l in [3i32, 2, 4, 1] {
            want.extend(l.to_le_bytes());
        }
        for o in [0i64, 6, 10, 18] {
            want.extend(o.to_le_bytes());
        }
        for d in [0i64, 1, 3, 4] {
            want.extend(d.to_le_bytes());
        }
        assert_eq!(idx.len(), 114);
        assert_eq!(idx, want);
        let ds = IndexedDataset::open(&prefix).unwrap();
        assert_eq!(ds.documents(), 3);
        assert_eq!(ds.tokens(), 10);
        assert_eq!(ds.document(1).unwrap(), vec![10, 11, 12, 13, 14, 15]);
        assert_eq!(ds.document(2).unwrap(), vec![65000]);
        // No temporary file is left behind.
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn ids_that_do_not_fit_are_errors_and_bad_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let prefix = dir.path().join("y");
        let mut w = IndexedWriter::create(&prefix, Dtype::U16).unwrap();
        let err = w.add_document(&[&[70_000]]).unwrap_err().to_string();
        assert!(err.contains("70000"), "{err}");
        std::fs::write(prefix.with_extension("idx"), b"MMIDIDX\x00\x00\x01").unwrap();
        std::fs::write(prefix.with_extension("bin"), b"").unwrap();
        let err = IndexedDataset::open(&prefix).err().unwrap().to_string();
        assert!(err.contains("y.idx") && err.contains("truncated"), "{err}");
        assert_eq!(Dtype::for_vocab(65_499), Dtype::U16);
        assert_eq!(Dtype::for_vocab(65_500), Dtype::I32);
    }
}
