//! Per-row blobs with random access: the shingles or the id of any document
//! of any task, for the phases that need them only for a few documents (the
//! verification of candidates, the id of a kept document). One file per
//! task: the blobs in row order, then one end offset per row, then the row
//! count. Written to a temporary name and renamed when complete.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::store;

pub struct RowStoreWriter {
    path: PathBuf,
    tmp: PathBuf,
    out: BufWriter<File>,
    written: u64,
    /// One end offset per row: 8 bytes per row is all that stays in memory.
    ends: Vec<u64>,
}

impl RowStoreWriter {
    pub fn create(path: &Path) -> Result<Self> {
        let tmp = store::staging(path);
        if let Some(dir) = tmp.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let file =
            File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
        Ok(RowStoreWriter {
            path: path.to_path_buf(),
            tmp,
            out: BufWriter::with_capacity(1 << 20, file),
            written: 0,
            ends: vec![],
        })
    }

    /// Appends the next row's blob.
    pub fn push(&mut self, blob: &[u8]) -> Result<()> {
        self.out.write_all(blob)?;
        self.written += blob.len() as u64;
        self.ends.push(self.written);
        Ok(())
    }

    pub fn finish(mut self) -> Result<()> {
        for end in &self.ends {
            self.out.write_all(&end.to_le_bytes())?;
        }
        self.out
            .write_all(&(self.ends.len() as u64).to_le_bytes())?;
        let file = self.out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        store::commit(&self.tmp, &self.path)
    }
}

/// Reads blobs of several tasks' files; keeps a bounded number open.
pub struct RowStore {
    paths: Vec<PathBuf>,
    open: HashMap<usize, (store::Source, Vec<u64>)>,
}

impl RowStore {
    /// `paths[task]` is the file of task `task`.
    pub fn new(paths: Vec<PathBuf>) -> Self {
        RowStore {
            paths,
            open: HashMap::new(),
        }
    }

    pub fn get(&mut self, task: usize, row: u64) -> Result<Vec<u8>> {
        if !self.open.contains_key(&task) {
            let Some(path) = self.paths.get(task) else {
                bail!("no row store for task {task}");
            };
            let corrupt = || {
                anyhow::anyhow!(
                    "intermediate file {} is corrupt; rerun with --force",
                    path.display()
                )
            };
            let mut f = store::open(&store::local_copy(path)?)?;
            let size = f.size()?;
            if size < 8 {
                return Err(corrupt());
            }
            let mut n = [0u8; 8];
            f.seek(SeekFrom::Start(size - 8))?;
            f.read_exact(&mut n)?;
            let rows = u64::from_le_bytes(n);
            let index_len = rows
                .checked_mul(8)
                .filter(|l| *l + 8 <= size)
                .ok_or_else(corrupt)?;
            let mut index = vec![0u8; index_len as usize];
            f.seek(SeekFrom::Start(size - 8 - index_len))?;
            f.read_exact(&mut index)?;
            let mut ends: Vec<u64> = Vec::with_capacity(rows as usize + 1);
            ends.push(0);
            ends.extend(
                index
                    .chunks_exact(8)
                    .map(|c| u64::from_le_bytes(c.try_into().unwrap())),
            );
            if ends.windows(2).any(|w| w[0] > w[1]) || ends[ends.len() - 1] > size - 8 - index_len {
                return Err(corrupt());
            }
            if self.open.len() >= 64 {
                self.open.clear();
            }
            self.open.insert(task, (f, ends));
        }
        let (f, ends) = self.open.get_mut(&task).expect("just opened");
        let (start, end) = match (ends.get(row as usize), ends.get(row as usize + 1)) {
            (Some(&s), Some(&e)) => (s, e),
            _ => bail!(
                "no row {row} in {}; rerun with --force",
                self.paths[task].display()
            ),
        };
        let mut buf = vec![0u8; (end - start) as usize];
        f.read_exact_at(&mut buf, start)?;
        Ok(buf)
    }

    /// A row's blob read as little-endian u64s (shingle hashes).
    pub fn get_u64s(&mut self, task: usize, row: u64) -> Result<Vec<u64>> {
        Ok(self
            .get(task, row)?
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
            .collect())
    }

    /// A row's blob as a string (document ids).
    pub fn get_str(&mut self, task: usize, row: u64) -> Result<String> {
        String::from_utf8(self.get(task, row)?)
            .with_context(|| format!("{} is corrupt", self.paths[task].display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_come_back_by_task_and_row() {
        let dir = tempfile::tempdir().unwrap();
        let paths: Vec<PathBuf> = (0..2)
            .map(|t| dir.path().join(format!("{t}.bin")))
            .collect();
        for (t, p) in paths.iter().enumerate() {
            let mut w = RowStoreWriter::create(p).unwrap();
            for row in 0..5 {
                w.push(format!("t{t}r{row}").repeat(row).as_bytes())
                    .unwrap();
            }
            w.finish().unwrap();
        }
        let mut s = RowStore::new(paths);
        assert_eq!(s.get_str(1, 3).unwrap(), "t1r3t1r3t1r3");
        assert_eq!(s.get_str(0, 0).unwrap(), "");
        assert_eq!(s.get_str(0, 4).unwrap(), "t0r4".repeat(4));
        assert!(s.get(0, 5).is_err());
    }
}
