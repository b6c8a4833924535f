//! External sort of fixed-size records: what lets a phase sort more than its
//! memory budget. Records accumulate in memory up to the budget; past it the
//! buffer is sorted and written as a run, and the runs are merged at the end.
//! The order is the full lexicographic order of the record, so the result is
//! the same however many runs there were.

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
}

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
        let path = self.dir.join(format!("run-{:05}.bin", self.runs.len()));
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
        Ok(())
    }

    /// How many runs went to disk so far (0: everything fitted in memory).
    pub fn runs(&self) -> usize {
        self.runs.len()
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
        let mut readers = vec![];
        for path in &self.runs {
            let f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
            readers.push(BufReader::with_capacity(256 << 10, f));
        }
        let mut merge = Merge {
            readers,
            heap: BinaryHeap::new(),
            dir: self.dir.clone(),
        };
        for i in 0..merge.readers.len() {
            if let Some(r) = merge.read(i)? {
                merge.heap.push(Reverse((r, i)));
            }
        }
        Ok(Sorted::Runs(merge))
    }
}

pub struct Merge<const N: usize> {
    readers: Vec<BufReader<File>>,
    heap: BinaryHeap<Reverse<([u64; N], usize)>>,
    dir: PathBuf,
}

impl<const N: usize> Merge<N> {
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
        let _ = std::fs::remove_dir_all(&self.dir);
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
            Sorted::Runs(m) => {
                let Reverse((r, i)) = m.heap.pop()?;
                match m.read(i) {
                    Ok(Some(next)) => m.heap.push(Reverse((next, i))),
                    Ok(None) => {}
                    Err(e) => return Some(Err(e)),
                }
                Some(Ok(r))
            }
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
