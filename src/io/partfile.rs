//! Partitioned record files: how the tasks of a global op's phases talk.
//!
//! A task writes one file holding its records grouped by partition; a task of
//! the next phase reads its partition's slice from each file. The writer keeps
//! at most `spill_at` bytes in memory: past that it appends what it holds as
//! one segment per partition, so a partition's slice may be several segments
//! in the file. The index lists them with an xxh3 checksum of each, so a
//! corrupt or truncated intermediate file is an error, not silently wrong
//! output.
//!
//! Layout: segments; then the index, per partition `nseg: u64` and `nseg` ×
//! `(offset: u64, len: u64, xxh3: u64)`; then `index_offset: u64`,
//! `count: u64`, `b"SLPF0002"`.

use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use xxhash_rust::xxh3::xxh3_64;

const MAGIC: &[u8; 8] = b"SLPF0002";

/// Buffered bytes past which a writer spills, unless told otherwise.
pub const DEFAULT_SPILL: usize = 64 << 20;

/// Collects records per partition, spilling to the file past a memory cap.
pub struct PartWriter {
    path: PathBuf,
    tmp: PathBuf,
    parts: Vec<Vec<u8>>,
    segments: Vec<Vec<(u64, u64, u64)>>,
    file: Option<BufWriter<File>>,
    written: u64,
    buffered: usize,
    /// The partition handed out last and its length then: its growth is
    /// counted at the next call, so `part` stays O(1).
    last: Option<(usize, usize)>,
    spill_at: usize,
    error: Option<std::io::Error>,
}

impl PartWriter {
    pub fn new(path: &Path, partitions: usize) -> Self {
        Self::with_spill(path, partitions, DEFAULT_SPILL)
    }

    pub fn with_spill(path: &Path, partitions: usize, spill_at: usize) -> Self {
        PartWriter {
            path: path.to_path_buf(),
            tmp: super::store::staging(path),
            parts: vec![vec![]; partitions],
            segments: vec![vec![]; partitions],
            file: None,
            written: 0,
            buffered: 0,
            last: None,
            spill_at: spill_at.max(1),
            error: None,
        }
    }

    fn tmp(&self) -> PathBuf {
        self.tmp.clone()
    }

    fn count_last(&mut self) {
        if let Some((p, len)) = self.last.take() {
            self.buffered += self.parts[p].len() - len;
        }
    }

    /// The buffer of partition `p`; callers append whole encoded records
    /// (a spill happens only between calls, never inside a record).
    pub fn part(&mut self, p: usize) -> &mut Vec<u8> {
        self.count_last();
        if self.buffered >= self.spill_at && self.error.is_none() {
            if let Err(e) = self.spill() {
                self.error = Some(e);
            }
        }
        self.last = Some((p, self.parts[p].len()));
        &mut self.parts[p]
    }

    fn spill(&mut self) -> std::io::Result<()> {
        if self.file.is_none() {
            if let Some(dir) = self.tmp.parent() {
                std::fs::create_dir_all(dir)?;
            }
            self.file = Some(BufWriter::with_capacity(1 << 20, File::create(self.tmp())?));
        }
        let file = self.file.as_mut().expect("just opened");
        for (p, buf) in self.parts.iter_mut().enumerate() {
            if buf.is_empty() {
                continue;
            }
            file.write_all(buf)?;
            self.segments[p].push((self.written, buf.len() as u64, xxh3_64(buf)));
            self.written += buf.len() as u64;
            buf.clear();
        }
        self.buffered = 0;
        Ok(())
    }

    pub fn finish(mut self) -> Result<()> {
        self.count_last();
        if let Some(e) = self.error.take() {
            return Err(e).with_context(|| format!("cannot write {}", self.tmp().display()));
        }
        self.spill()
            .with_context(|| format!("cannot write {}", self.tmp().display()))?;
        let mut index = vec![];
        for segs in &self.segments {
            index.extend_from_slice(&(segs.len() as u64).to_le_bytes());
            for (off, len, sum) in segs {
                index.extend_from_slice(&off.to_le_bytes());
                index.extend_from_slice(&len.to_le_bytes());
                index.extend_from_slice(&sum.to_le_bytes());
            }
        }
        index.extend_from_slice(&self.written.to_le_bytes());
        index.extend_from_slice(&(self.parts.len() as u64).to_le_bytes());
        index.extend_from_slice(MAGIC);
        let tmp = self.tmp();
        let mut file = self.file.take().expect("opened by the spill");
        file.write_all(&index)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        let file = file.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        drop(file);
        super::store::commit(&tmp, &self.path)
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
    let mut f = super::store::open(path)
        .with_context(|| format!("cannot open intermediate file {}", path.display()))?;
    let size = f.size()?;
    if size < 24 {
        return Err(corrupt("too short"));
    }
    let mut tail = [0u8; 24];
    f.seek(SeekFrom::Start(size - 24))?;
    f.read_exact(&mut tail)?;
    if &tail[16..] != MAGIC {
        return Err(corrupt("bad footer"));
    }
    let index_start = u64::from_le_bytes(tail[..8].try_into().unwrap());
    let count = u64::from_le_bytes(tail[8..16].try_into().unwrap()) as usize;
    if p >= count {
        bail!(
            "intermediate file {} has {count} partitions, not {}",
            path.display(),
            p + 1
        );
    }
    if index_start > size - 24 {
        return Err(corrupt("index past the end"));
    }
    let mut index = vec![0u8; (size - 24 - index_start) as usize];
    f.seek(SeekFrom::Start(index_start))?;
    f.read_exact(&mut index)?;
    let mut c = Cursor::new(&index);
    let mut segs = vec![];
    for q in 0..=p {
        let n = c.u64().map_err(|_| corrupt("index cut short"))?;
        for _ in 0..n {
            let seg = (
                c.u64().map_err(|_| corrupt("index cut short"))?,
                c.u64().map_err(|_| corrupt("index cut short"))?,
                c.u64().map_err(|_| corrupt("index cut short"))?,
            );
            if q == p {
                segs.push(seg);
            }
        }
    }
    let total: u64 = segs.iter().map(|s| s.1).sum();
    let mut buf = Vec::with_capacity(total as usize);
    for (off, len, sum) in segs {
        if off.checked_add(len).is_none_or(|end| end > index_start) {
            return Err(corrupt("slice past the data"));
        }
        let start = buf.len();
        buf.resize(start + len as usize, 0);
        f.seek(SeekFrom::Start(off))?;
        f.read_exact(&mut buf[start..])?;
        if xxh3_64(&buf[start..]) != sum {
            return Err(corrupt(&format!("checksum mismatch in partition {p}")));
        }
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

/// Fixed-size records of `N` little-endian u64s, as the dedup ops write them.
pub fn records<const N: usize>(slice: &[u8], path: &Path) -> Result<Vec<[u64; N]>> {
    if !slice.len().is_multiple_of(8 * N) {
        bail!(
            "intermediate file {} is corrupt (a record is cut short); rerun with --force",
            path.display()
        );
    }
    Ok(slice
        .chunks_exact(8 * N)
        .map(|c| {
            std::array::from_fn(|k| u64::from_le_bytes(c[8 * k..8 * k + 8].try_into().unwrap()))
        })
        .collect())
}

pub fn put_record(buf: &mut Vec<u8>, r: &[u64]) {
    for x in r {
        put_u64(buf, *x);
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

    #[test]
    fn spilled_segments_read_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.part");
        let mut w = PartWriter::with_spill(&path, 3, 64);
        for i in 0..100u64 {
            put_u64(w.part((i % 3) as usize), i);
        }
        w.finish().unwrap();
        for p in 0..3u64 {
            let slice = read_part(&path, p as usize).unwrap();
            let mut c = Cursor::new(&slice);
            let mut got = vec![];
            while !c.done() {
                got.push(c.u64().unwrap());
            }
            let want: Vec<u64> = (0..100).filter(|i| i % 3 == p).collect();
            assert_eq!(got, want);
        }
        // The cap was honoured: the file holds many segments per partition.
        let index_entries = (std::fs::metadata(&path).unwrap().len() - 800 - 24) / 24;
        assert!(index_entries > 9, "{index_entries}");
    }
}
