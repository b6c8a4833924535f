//! `dedup_exact`: removes documents whose text is byte-identical to an earlier
//! one (input order), as a global op in three phases:
//!
//! 1. observe (per input task): xxh3-128 of each text, written to a file per
//!    task grouped by hash partition;
//! 2. find (per partition): all hashes of the partition sorted by
//!    (hash, task, row); every repeat after the first is a drop, written to a
//!    file per partition grouped by task;
//! 3. filter (per input task): the task's drops from every partition, applied.
//!
//! No task holds more than one partition or one task's worth of hashes.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use serde::Deserialize;
use xxhash_rust::xxh3::xxh3_128;

use super::{
    BuildCtx, DocBatch, DropMark, GlobalCtx, GlobalOp, Observer, Op, OpInfo, OpOutput, ParamDoc,
    PhaseSpec, RowFilter,
};
use crate::io::partfile::{put_str, put_u128, put_u64, read_part, Cursor, PartWriter};
use crate::pipeline::spec::SpecError;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DedupExact {
    /// Hash partitions of the find phase; derived from the input size when absent.
    #[serde(default)]
    pub partitions: Option<usize>,
}

pub const INFO: OpInfo = OpInfo {
    name: "dedup_exact",
    global: true,
    summary: "Removes documents whose text is identical to an earlier one (xxh3-128 of the text); \
              keeps the first in input order. Removed documents go to excluded/ with the kept \
              document's id in drop_detail.",
    params: &[ParamDoc {
        name: "partitions",
        kind: "integer",
        default: "derived",
        doc: "hash partitions (tasks of the find phase): input bytes / 256 MiB, at least 4",
    }],
    drop_reasons: &["dedup_exact"],
    build,
};

fn build(ctx: &BuildCtx) -> Result<Op, SpecError> {
    let d: DedupExact = ctx.config()?;
    if d.partitions.is_some_and(|p| p == 0 || p > 65_536) {
        return Err(ctx.error(
            "partitions",
            "partitions must be between 1 and 65536".into(),
        ));
    }
    Ok(Op::Global(Arc::new(d)))
}

impl DedupExact {
    fn partitions(&self, ctx: &GlobalCtx) -> usize {
        self.partitions
            .unwrap_or_else(|| ((ctx.input_bytes >> 28) as usize).clamp(4, 4096))
    }
}

fn observe_file(ctx: &GlobalCtx, task: usize) -> PathBuf {
    ctx.work.join("observe").join(format!("{task:05}.part"))
}
fn drops_file(ctx: &GlobalCtx, partition: usize) -> PathBuf {
    ctx.work.join("find").join(format!("{partition:05}.part"))
}

struct HashObserver {
    out: PartWriter,
    partitions: u64,
}

impl Observer for HashObserver {
    fn observe(&mut self, batch: &DocBatch, first_row: u64) -> Result<()> {
        for (i, (text, id)) in batch.texts().iter().zip(batch.ids().iter()).enumerate() {
            let h = xxh3_128(text.unwrap_or("").as_bytes());
            let p = ((h >> 64) as u64 % self.partitions) as usize;
            let buf = self.out.part(p);
            put_u128(buf, h);
            put_u64(buf, first_row + i as u64);
            put_str(buf, id.unwrap_or(""));
        }
        Ok(())
    }
    fn finish(self: Box<Self>) -> Result<()> {
        self.out.finish()
    }
}

struct DropFilter {
    /// (row, kept id), sorted by row.
    drops: Vec<(u64, String)>,
    next: usize,
}

impl RowFilter for DropFilter {
    fn apply(&mut self, batch: DocBatch, first_row: u64) -> Result<OpOutput> {
        let end = first_row + batch.num_rows() as u64;
        let mut drops = vec![];
        while self.next < self.drops.len() && self.drops[self.next].0 < end {
            if drops.is_empty() {
                drops = vec![None; batch.num_rows()];
            }
            let (row, kept) = &self.drops[self.next];
            drops[(row - first_row) as usize] = Some(DropMark {
                reason: "dedup_exact".into(),
                detail: Some(kept.clone()),
            });
            self.next += 1;
        }
        Ok(OpOutput { batch, drops })
    }

    fn finish(&mut self, rows: u64) -> Result<()> {
        if self.next < self.drops.len() {
            anyhow::bail!(
                "dedup_exact holds {} decisions for rows past this task's {rows} rows: the intermediate \
                 files do not match the shards; rerun with --force",
                self.drops.len() - self.next
            );
        }
        Ok(())
    }
}

impl GlobalOp for DedupExact {
    fn phases(&self, ctx: &GlobalCtx) -> Vec<PhaseSpec> {
        vec![PhaseSpec {
            name: "find".into(),
            tasks: self.partitions(ctx),
        }]
    }

    fn observer(&self, ctx: &GlobalCtx, task: usize) -> Result<Box<dyn Observer>> {
        let partitions = self.partitions(ctx);
        Ok(Box::new(HashObserver {
            out: PartWriter::new(&observe_file(ctx, task), partitions),
            partitions: partitions as u64,
        }))
    }

    fn run_phase(&self, ctx: &GlobalCtx, _phase: usize, partition: usize) -> Result<()> {
        let slices: Vec<Vec<u8>> = (0..ctx.tasks)
            .map(|t| read_part(&observe_file(ctx, t), partition))
            .collect::<Result<_>>()?;
        let corrupt = |t: usize| {
            format!(
                "intermediate file {} is corrupt",
                observe_file(ctx, t).display()
            )
        };
        // (hash, task, row, id)
        let mut entries: Vec<(u128, u32, u64, &str)> = vec![];
        for (t, slice) in slices.iter().enumerate() {
            let mut c = Cursor::new(slice);
            while !c.done() {
                let h = c.u128().with_context(|| corrupt(t))?;
                let row = c.u64().with_context(|| corrupt(t))?;
                entries.push((h, t as u32, row, c.str().with_context(|| corrupt(t))?));
            }
        }
        entries.sort_unstable_by_key(|e| (e.0, e.1, e.2));
        let mut out = PartWriter::new(&drops_file(ctx, partition), ctx.tasks);
        let mut per_task: Vec<Vec<(u64, &str)>> = vec![vec![]; ctx.tasks];
        let mut kept: Option<&(u128, u32, u64, &str)> = None;
        for e in &entries {
            match kept {
                Some(k) if k.0 == e.0 => per_task[e.1 as usize].push((e.2, k.3)),
                _ => kept = Some(e),
            }
        }
        for (t, mut drops) in per_task.into_iter().enumerate() {
            drops.sort_unstable();
            let buf = out.part(t);
            for (row, kept_id) in drops {
                put_u64(buf, row);
                put_str(buf, kept_id);
            }
        }
        out.finish()
    }

    fn filter(&self, ctx: &GlobalCtx, task: usize) -> Result<Box<dyn RowFilter>> {
        let mut drops = vec![];
        for p in 0..self.partitions(ctx) {
            let path = drops_file(ctx, p);
            let slice = read_part(&path, task)?;
            let corrupt = || format!("intermediate file {} is corrupt", path.display());
            let mut c = Cursor::new(&slice);
            while !c.done() {
                let row = c.u64().with_context(corrupt)?;
                drops.push((row, c.str().with_context(corrupt)?.to_string()));
            }
        }
        drops.sort_unstable();
        Ok(Box::new(DropFilter { drops, next: 0 }))
    }
}
