//! Partitioned record files: how the tasks of a global op's phases talk.
//!
//! A task writes one file holding its records grouped by partition; a task of
//! the next phase reads its partition's slice from each file. The footer
//! indexes the slices and carries an xxh3 checksum of each, so a corrupt or
//! truncated intermediate file is an error, not silently wrong output.
//!
//! Layout: the partitions' bytes in order, then per partition
//! `(offset: u64, len: u64, xxh3: u64)`, then `count: u64`, then `b"SLPF0001"`.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use xxhash_rust::xxh3::xxh3_64;

const MAGIC: &[u8; 8] = b"SLPF0001";

/// Collects records per partition in memory (one task's worth) and writes them at `finish`.
pub struct PartWriter {
    path: PathBuf,
    parts: Vec<Vec<u8>>,
}

impl PartWriter {
    pub fn new(path: &Path, partitions: usize) -> Self {
        PartWriter {
            path: path.to_path_buf(),
            parts: vec![vec![]; partitions],
        }
    }

    /// The buffer of partition `p`; callers append encoded records.
    pub fn part(&mut self, p: usize) -> &mut Vec<u8> {
        &mut self.parts[p]
    }

    pub fn finish(self) -> Result<()> {
        let mut out = Vec::with_capacity(
            self.parts.iter().map(Vec::len).sum::<usize>() + 24 * self.parts.len() + 16,
        );
        let mut index = Vec::with_capacity(self.parts.len());
        for p in &self.parts {
            index.push((out.len() as u64, p.len() as u64, xxh3_64(p)));
            out.extend_from_slice(p);
        }
        for (off, len, sum) in index {
            out.extend_from_slice(&off.to_le_bytes());
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(&sum.to_le_bytes());
        }
        out.extend_from_slice(&(self.parts.len() as u64).to_le_bytes());
        out.extend_from_slice(MAGIC);
        crate::io::writer::write_atomic(&self.path, &out)
    }
}

/// Reads one partition's slice of a partitioned file, checking it.
pub fn read_part(path: &Path, p: usize) -> Result<Vec<u8>> {
    let corrupt = |what: &str| {
        anyhow::anyhow!(
            "intermediate file {} is corrupt ({what}); remove the run's _work folder or rerun with --force",
            path.display()
        )
    };
    let mut f = File::open(path)
        .with_context(|| format!("cannot open intermediate file {}", path.display()))?;
    let size = f.metadata()?.len();
    if size < 16 {
        return Err(corrupt("too short"));
    }
    let mut tail = [0u8; 16];
    f.seek(SeekFrom::Start(size - 16))?;
    f.read_exact(&mut tail)?;
    if &tail[8..] != MAGIC {
        return Err(corrupt("bad footer"));
    }
    let count = u64::from_le_bytes(tail[..8].try_into().unwrap()) as usize;
    if p >= count {
        bail!(
            "intermediate file {} has {count} partitions, not {}",
            path.display(),
            p + 1
        );
    }
    let index_start = (count as u64)
        .checked_mul(24)
        .and_then(|n| size.checked_sub(16 + n))
        .ok_or_else(|| corrupt("index larger than the file"))?;
    let mut entry = [0u8; 24];
    f.seek(SeekFrom::Start(index_start + 24 * p as u64))?;
    f.read_exact(&mut entry)?;
    let off = u64::from_le_bytes(entry[..8].try_into().unwrap());
    let len = u64::from_le_bytes(entry[8..16].try_into().unwrap());
    let sum = u64::from_le_bytes(entry[16..].try_into().unwrap());
    if off.checked_add(len).is_none_or(|end| end > index_start) {
        return Err(corrupt("slice past the data"));
    }
    let mut buf = vec![0u8; len as usize];
    f.seek(SeekFrom::Start(off))?;
    f.read_exact(&mut buf)?;
    if xxh3_64(&buf) != sum {
        return Err(corrupt(&format!("checksum mismatch in partition {p}")));
    }
    Ok(buf)
}

/// A cursor over little-endian records in a byte slice.
pub struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Cursor { buf, pos: 0 }
    }
    pub fn done(&self) -> bool {
        self.pos >= self.buf.len()
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.pos + n > self.buf.len() {
            bail!("intermediate record cut short");
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    pub fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }
    pub fn u128(&mut self) -> Result<u128> {
        Ok(u128::from_le_bytes(self.take(16)?.try_into().unwrap()))
    }
    pub fn str(&mut self) -> Result<&'a str> {
        let n = u32::from_le_bytes(self.take(4)?.try_into().unwrap()) as usize;
        Ok(std::str::from_utf8(self.take(n)?)?)
    }
}

pub fn put_u64(buf: &mut Vec<u8>, v: u64) {
    buf.extend_from_slice(&v.to_le_bytes());
}
pub fn put_u128(buf: &mut Vec<u8>, v: u128) {
    buf.extend_from_slice(&v.to_le_bytes());
}
pub fn put_str(buf: &mut Vec<u8>, s: &str) {
    buf.extend_from_slice(&(s.len() as u32).to_le_bytes());
    buf.extend_from_slice(s.as_bytes());
}

/// Writes `bytes` at `offset` (tests corrupt files on purpose with it).
#[cfg(test)]
fn overwrite_at(path: &Path, offset: u64, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().write(true).open(path)?;
    f.seek(SeekFrom::Start(offset))?;
    f.write_all(bytes)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_detects_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.part");
        let mut w = PartWriter::new(&path, 3);
        put_u64(w.part(0), 7);
        put_str(w.part(2), "hello");
        w.finish().unwrap();
        assert_eq!(read_part(&path, 1).unwrap(), Vec::<u8>::new());
        let p2 = read_part(&path, 2).unwrap();
        assert_eq!(Cursor::new(&p2).str().unwrap(), "hello");
        overwrite_at(&path, 9, b"J").unwrap();
        let err = read_part(&path, 2).unwrap_err().to_string();
        assert!(err.contains("checksum"), "{err}");
        assert!(read_part(&path, 0).is_ok());
    }
}
