//! Parquet shard writer: rotates shards by rows or text bytes, writes each
//! under a temporary name and renames it when complete, so a crash never
//! leaves a half shard that looks whole.

use std::fs::File;
use std::path::{Path, PathBuf};

use super::store;

use anyhow::{Context, Result};
use arrow::array::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

/// How shards are cut and compressed.
#[derive(Clone, Debug)]
pub struct ShardPolicy {
    pub rows_per_shard: usize,
    pub bytes_per_shard: Option<u64>,
    pub compression: Compression,
}

impl ShardPolicy {
    fn properties(&self) -> WriterProperties {
        WriterProperties::builder()
            .set_compression(self.compression)
            .set_max_row_group_row_count(Some(self.rows_per_shard.clamp(1, 65_536)))
            // The open row group is buffered in memory: bound it for long documents.
            .set_max_row_group_bytes(Some(64 << 20))
            .set_created_by("sluice".to_string())
            .build()
    }
}

struct OpenShard {
    writer: ArrowWriter<File>,
    tmp: PathBuf,
    path: PathBuf,
    rows: usize,
    bytes: u64,
}

/// Writes `{dir}/{prefix}-{NNNN}.parquet`, numbering shards from 0.
pub struct ShardWriter {
    dir: PathBuf,
    prefix: String,
    policy: ShardPolicy,
    open: Option<OpenShard>,
    next: usize,
    written: Vec<PathBuf>,
}

impl ShardWriter {
    /// Removes what an interrupted attempt of the same task may have left,
    /// then starts writing.
    pub fn new(dir: &Path, prefix: &str, policy: ShardPolicy) -> Result<Self> {
        store::create_dir_all(dir)?;
        // A redo writes the same names again, from 0, over what an
        // interrupted attempt left: only shards past its last (and the
        // temporary of the shard it was writing) can be left, which
        // `finish` removes by name. Listing the folder here instead made
        // every task pay for all the shards of the tasks before it.
        Ok(ShardWriter {
            dir: dir.to_path_buf(),
            prefix: prefix.to_string(),
            policy,
            open: None,
            next: 0,
            written: vec![],
        })
    }

    /// Appends rows; `text_bytes(batch)` measures the byte limit.
    pub fn write(&mut self, batch: &RecordBatch, text_col: usize) -> Result<()> {
        let mut rest = batch.clone();
        while rest.num_rows() > 0 {
            if self.open.is_none() {
                self.start(&rest)?;
            }
            let shard = self.open.as_mut().expect("just opened");
            let room = self.policy.rows_per_shard - shard.rows;
            let take = room.min(rest.num_rows());
            let part = rest.slice(0, take);
            let bytes = text_bytes(&part, text_col);
            shard
                .writer
                .write(&part)
                .with_context(|| format!("writing {}", shard.tmp.display()))?;
            shard.rows += take;
            shard.bytes += bytes;
            rest = rest.slice(take, rest.num_rows() - take);
            let full = shard.rows >= self.policy.rows_per_shard
                || self
                    .policy
                    .bytes_per_shard
                    .is_some_and(|b| shard.bytes >= b);
            if full {
                self.close_open()?;
            }
        }
        Ok(())
    }

    fn start(&mut self, batch: &RecordBatch) -> Result<()> {
        let name = format!("{}-{:04}.parquet", self.prefix, self.next);
        self.next += 1;
        let path = self.dir.join(&name);
        let tmp = store::staging(&path);
        let file =
            File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
        let writer = ArrowWriter::try_new(file, batch.schema(), Some(self.policy.properties()))?;
        self.open = Some(OpenShard {
            writer,
            tmp,
            path,
            rows: 0,
            bytes: 0,
        });
        Ok(())
    }

    fn close_open(&mut self) -> Result<()> {
        if let Some(shard) = self.open.take() {
            let file = shard
                .writer
                .into_inner()
                .with_context(|| format!("finishing {}", shard.tmp.display()))?;
            file.sync_all()?;
            drop(file);
            store::commit(&shard.tmp, &shard.path)?;
            self.written.push(shard.path);
        }
        Ok(())
    }

    /// Closes the last shard; returns every shard written.
    pub fn finish(mut self) -> Result<Vec<PathBuf>> {
        self.close_open()?;
        let remote = store::is_remote(&self.dir);
        loop {
            let name = format!("{}-{:04}.parquet", self.prefix, self.next);
            let stale = self.dir.join(&name);
            let mut found = false;
            if store::exists(&stale)? {
                store::remove_file(&stale)?;
                found = true;
            }
            // In a bucket nothing half-written is ever visible.
            if !remote {
                let tmp = store::staged_name(&stale);
                found |= std::fs::remove_file(&tmp).is_ok();
            }
            if !found {
                break;
            }
            self.next += 1;
        }
        Ok(std::mem::take(&mut self.written))
    }
}

fn text_bytes(batch: &RecordBatch, col: usize) -> u64 {
    use arrow::array::{Array, StringArray};
    batch
        .column(col)
        .as_any()
        .downcast_ref::<StringArray>()
        .map(|t| (t.value_offsets()[t.len()] - t.value_offsets()[0]) as u64)
        .unwrap_or(0)
}

/// True for the names this writer gives shards of `prefix`:
/// `{prefix}-NNNN.parquet` and its temporary `.{prefix}-NNNN.parquet.tmp`.
pub fn is_shard_name(name: &str, prefix: &str) -> bool {
    let rest = name
        .strip_prefix('.')
        .and_then(|n| n.strip_suffix(".tmp"))
        .unwrap_or(name);
    rest.strip_prefix(prefix)
        .and_then(|r| r.strip_prefix('-'))
        .and_then(|r| r.strip_suffix(".parquet"))
        .is_some_and(|n| n.len() >= 4 && n.bytes().all(|b| b.is_ascii_digit()))
}

/// A JSON file a global op wrote to its work folder; a damaged one says
/// how to recover.
pub fn read_work_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = store::read(path)?;
    serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is damaged; rerun with --force", path.display()))
}

pub use super::store::write_atomic;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_only_its_own_shard_names() {
        assert!(is_shard_name("part-00012-0003.parquet", "part-00012"));
        assert!(is_shard_name(".part-00012-0003.parquet.tmp", "part-00012"));
        assert!(!is_shard_name(
            "part-00012-1a2b3c4d-snappy.parquet",
            "part-00012"
        ));
        assert!(!is_shard_name("part-00012-0003.parquet", "part-00001"));
        assert!(!is_shard_name("part-000120-0003.parquet", "part-00012"));
    }
}
