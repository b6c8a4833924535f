//! External sort of fixed-size records: what lets a phase sort more than its
//! memory budget. Records accumulate in memory up to the budget; past it the
//! buffer is sorted and written as a run, and the runs are merged at the end.
//! The order is the full lexicographic order of the record, so the result is
//! the same however many runs there were. At most `MAX_RUNS` runs are kept:
//! reaching it, they are merged into one, so that the final merge (and
//! each intermediate one) holds a bounded number of files and read buffers
//! whatever the input's size.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

pub struct ExternalSorter<const N: usize> {
    dir: PathBuf,
    capacity: usize,
    buf: Vec<[u64; N]>,
    runs: Vec<PathBuf>,
    /// Runs written from memory, for the reports.
    written: usize,
    /// Files written so far (runs and merges), for their names.
    files: usize,
}

/// The most runs merged at once: 64 open files and read buffers of
/// `READ_BUFFER` (8 MiB) a merge.
const MAX_RUNS: usize = 64;
const READ_BUFFER: usize = 128 << 10;

impl<const N: usize> ExternalSorter<N> {
    /// Runs go to `dir`, which the sorter owns: whatever an earlier,
    /// interrupted attempt left there is removed.
    pub fn new(dir: &Path, budget_bytes: u64) -> Result<Self> {
        let dir = &super::store::local_for(dir);
        if dir.exists() {
            std::fs::remove_dir_all(dir)
                .with_context(|| format!("cannot clear {}", dir.display()))?;
        }
        let capacity = (budget_bytes as usize / (8 * N)).max(1024);
        Ok(ExternalSorter {
            dir: dir.to_path_buf(),
            capacity,
            buf: Vec::new(),
            runs: vec![],
            written: 0,
            files: 0,
        })
    }

    pub fn push(&mut self, record: [u64; N]) -> Result<()> {
        if self.buf.len() >= self.capacity {
            self.write_run()?;
        }
        self.buf.push(record);
        Ok(())
    }

    fn write_run(&mut self) -> Result<()> {
        self.buf.sort_unstable();
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("cannot create {}", self.dir.display()))?;
        let path = self.next_file();
        let mut w = BufWriter::with_capacity(
            1 << 20,
            File::create(&path).with_context(|| format!("cannot create {}", path.display()))?,
        );
        for r in &self.buf {
            for x in r {
                w.write_all(&x.to_le_bytes())?;
            }
        }
        w.flush()
            .with_context(|| format!("cannot write {}", path.display()))?;
        self.runs.push(path);
        self.buf.clear();
        self.written += 1;
        if self.runs.len() >= MAX_RUNS {
            self.merge_runs()?;
        }
        Ok(())
    }

    fn next_file(&mut self) -> PathBuf {
        self.files += 1;
        self.dir.join(format!("run-{:06}.bin", self.files))
    }

    /// Merges the runs on disk into one.
    fn merge_runs(&mut self) -> Result<()> {
        let runs = std::mem::take(&mut self.runs);
        let path = self.next_file();
        let mut w = BufWriter::with_capacity(
            1 << 20,
            File::create(&path).with_context(|| format!("cannot create {}", path.display()))?,
        );
        let mut merge = Merge::<N>::open(&runs, &self.dir, false)?;
        while let Some(r) = merge.pop()? {
            for x in r {
                w.write_all(&x.to_le_bytes())?;
            }
        }
        w.flush()
            .with_context(|| format!("cannot write {}", path.display()))?;
        drop(merge);
        for r in &runs {
            std::fs::remove_file(r).with_context(|| format!("cannot remove {}", r.display()))?;
        }
        self.runs.push(path);
        Ok(())
    }

    /// How many runs went to disk so far (0: everything fitted in memory).
    pub fn runs(&self) -> usize {
        self.written
    }

    /// The records in order.
    pub fn finish(mut self) -> Result<Sorted<N>> {
        if self.runs.is_empty() {
            self.buf.sort_unstable();
            return Ok(Sorted::Memory(std::mem::take(&mut self.buf).into_iter()));
        }
        if !self.buf.is_empty() {
            self.write_run()?;
        }
        self.buf = Vec::new();
        Ok(Sorted::Runs(Merge::open(&self.runs, &self.dir, true)?))
    }
}

pub struct Merge<const N: usize> {
    readers: Vec<BufReader<File>>,
    heap: BinaryHeap<Reverse<([u64; N], usize)>>,
    dir: PathBuf,
    /// The final merge removes the sorter's folder when dropped.
    owns_dir: bool,
}

impl<const N: usize> Merge<N> {
    fn open(runs: &[PathBuf], dir: &Path, owns_dir: bool) -> Result<Self> {
        let mut readers = vec![];
        for path in runs {
            let f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
            readers.push(BufReader::with_capacity(READ_BUFFER, f));
        }
        let mut merge = Merge {
            readers,
            heap: BinaryHeap::new(),
            dir: dir.to_path_buf(),
            owns_dir,
        };
        for i in 0..merge.readers.len() {
            if let Some(r) = merge.read(i)? {
                merge.heap.push(Reverse((r, i)));
            }
        }
        Ok(merge)
    }

    /// The smallest record left.
    fn pop(&mut self) -> Result<Option<[u64; N]>> {
        let Some(Reverse((r, i))) = self.heap.pop() else {
            return Ok(None);
        };
        if let Some(next) = self.read(i)? {
            self.heap.push(Reverse((next, i)));
        }
        Ok(Some(r))
    }

    fn read(&mut self, i: usize) -> Result<Option<[u64; N]>> {
        let mut bytes = [0u8; 8];
        let mut r = [0u64; N];
        for (k, x) in r.iter_mut().enumerate() {
            match self.readers[i].read_exact(&mut bytes) {
                Ok(()) => *x = u64::from_le_bytes(bytes),
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && k == 0 => {
                    return Ok(None)
                }
                Err(e) => {
                    return Err(e).with_context(|| {
                        format!("sort run in {} is cut short", self.dir.display())
                    })
                }
            }
        }
        Ok(Some(r))
    }
}

impl<const N: usize> Drop for Merge<N> {
    fn drop(&mut self) {
        if self.owns_dir {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

pub enum Sorted<const N: usize> {
    Memory(std::vec::IntoIter<[u64; N]>),
    Runs(Merge<N>),
}

impl<const N: usize> Iterator for Sorted<N> {
    type Item = Result<[u64; N]>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Sorted::Memory(it) => it.next().map(Ok),
            Sorted::Runs(m) => m.pop().transpose(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spilled_and_in_memory_sorts_agree() {
        let dir = tempfile::tempdir().unwrap();
        let mut state = 7u64;
        let records: Vec<[u64; 2]> = (0..10_000)
            .map(|i| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                [state >> 54, i]
            })
            .collect();
        let mut small = ExternalSorter::<2>::new(&dir.path().join("small"), 16 * 1024).unwrap();
        let mut big = ExternalSorter::<2>::new(&dir.path().join("big"), 1 << 30).unwrap();
        for r in &records {
            small.push(*r).unwrap();
            big.push(*r).unwrap();
        }
        assert!(small.runs() >= 9, "{} runs", small.runs());
        // Past MAX_RUNS runs they are merged as they come: the sort holds
        // at most that many files, and the order is the same.
        let mut many = ExternalSorter::<2>::new(&dir.path().join("many"), 0).unwrap();
        for r in records.iter().cycle().take(200_000) {
            many.push(*r).unwrap();
        }
        assert!(many.runs() > 2 * MAX_RUNS, "{} runs", many.runs());
        let files = std::fs::read_dir(dir.path().join("many")).unwrap().count();
        assert!(files <= MAX_RUNS, "{files} files on disk");
        let got: Vec<[u64; 2]> = many.finish().unwrap().map(|r| r.unwrap()).collect();
        let mut want_many: Vec<[u64; 2]> = records.iter().cycle().take(200_000).copied().collect();
        want_many.sort_unstable();
        assert_eq!(got, want_many);
        assert_eq!(big.runs(), 0);
        let a: Vec<[u64; 2]> = small.finish().unwrap().map(|r| r.unwrap()).collect();
        let b: Vec<[u64; 2]> = big.finish().unwrap().map(|r| r.unwrap()).collect();
        let mut want = records.clone();
        want.sort_unstable();
        assert_eq!(a, want);
        assert_eq!(b, want);
        assert!(
            !dir.path().join("small").exists(),
            "runs are removed after the merge"
        );
    }
}
