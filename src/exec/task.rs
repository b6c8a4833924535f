//! One task of a streaming phase, the path of a batch from its reader (or
//! the previous segment's rows through a global op's filter) through the
//! segment's ops to the shard writer, the excluded sink and the observer
//! of the next global op; and the test hooks that act inside a task.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use arrow::array::BooleanArray;
use arrow::compute::filter_record_batch;
use arrow::datatypes::{Field, Schema, SchemaRef};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::excluded::{Excluded, DROP_COLUMNS};
use super::plan::{Phase, Segment};
use super::profile::profile;
use super::progress::Progress;
use super::Runner;
use crate::io::writer::{write_atomic, ShardPolicy, ShardWriter};
use crate::io::{reader, store};
use crate::ops::{DocBatch, Observer, OpOutput, RowFilter};
use crate::stats::{Count, OpStats, TaskStats};

/// Test hooks, each `<phase>/<task>`, acting inside that task after it has
/// written part of its output: `SLUICE_TEST_ABORT` aborts the process, as a
/// crash would; `SLUICE_TEST_PAUSE` holds the task for ten minutes (or the
/// seconds after an `@`: `s0/1@3`), so that a test can kill it or change
/// its input mid-task; `SLUICE_TEST_FAIL` fails the task with an error and
/// `SLUICE_TEST_PANIC` makes it panic, as a fault in an op would.
pub(super) fn maybe_abort(phase: &str, task: usize) -> Result<()> {
    let here = format!("{phase}/{task}");
    let hook = |name: &str| std::env::var(name).ok();
    if hook("SLUICE_TEST_ABORT").as_deref() == Some(here.as_str()) {
        crate::msg::info(format!("SLUICE_TEST_ABORT: aborting in {here}"));
        std::process::abort();
    }
    if let Some(v) = hook("SLUICE_TEST_PAUSE") {
        let (at, secs) = v.split_once('@').unwrap_or((v.as_str(), "600"));
        if at == here {
            crate::msg::info(format!("SLUICE_TEST_PAUSE: holding {here}"));
            std::thread::sleep(std::time::Duration::from_secs_f64(
                secs.parse().unwrap_or(600.0),
            ));
        }
    }
    if hook("SLUICE_TEST_FAIL").as_deref() == Some(here.as_str()) {
        bail!("SLUICE_TEST_FAIL: failing {here}");
    }
    if hook("SLUICE_TEST_PANIC").as_deref() == Some(here.as_str()) {
        panic!("SLUICE_TEST_PANIC: panicking in {here}");
    }
    Ok(())
}

impl Runner<'_> {
    /// Runs task `t` of streaming phase `k`. A JSONL line that needs an
    /// integer column widened to floats ([`reader::Widen`]) makes the task
    /// start over with that column widened: its shards are written anew, so
    /// no value is changed to fit and the output is the same however often
    /// it ran.
    pub(super) fn run_stream_task(&self, k: usize, t: usize, progress: &Progress) -> Result<()> {
        let mut widen = reader::Widened::new();
        loop {
            let err = match self.stream_attempt(k, t, progress, &widen) {
                Err(e) if k == 0 => e,
                done => return done,
            };
            match err.downcast_ref::<reader::Widen>() {
                Some(reader::Widen(column)) if !widen.contains(column) => {
                    progress.println(&format!(
                        "note: {}: a line holds a number the integer column `{column}` cannot \
                         hold; the task is read again with `{column}` as floats",
                        self.tasks[t].describe()
                    ));
                    widen.insert(column.clone());
                }
                _ => return Err(err),
            }
        }
    }

    fn stream_attempt(
        &self,
        k: usize,
        t: usize,
        progress: &Progress,
        widen: &reader::Widened,
    ) -> Result<()> {
        let seg: &Segment<'_> = &self.plan.segments[k];
        let last = k + 1 == self.plan.segments.len();
        let prefix = format!("part-{t:05}");
        // Each item: the rows and what came in (before a global op's filter
        // added copies; the reader's rows are what came in).
        // And the columns the rows had before a global op's filter (none
        // for the reader's rows).
        type Source = Box<dyn Iterator<Item = Result<(OpOutput, Count, Option<SchemaRef>)>> + Send>;
        let (mut source, mut first, where_): (Source, OpStats, String) = if k == 0 {
            let task = &self.tasks[t];
            (
                Box::new(reader::open(task, &self.spec.input, Some(widen))?.map(|r| {
                    r.map(|o| {
                        let c = count_of(&o.batch);
                        (o, c, None)
                    })
                })),
                OpStats::new("read"),
                task.describe(),
            )
        } else {
            let g = seg
                .opened_by
                .as_ref()
                .expect("segments after the first open with a global op");
            let filter =
                g.op.filter(&g.ctx, t)
                    .with_context(|| format!("{} task {t}", g.label))?;
            let dir = self.layout.intermediate(k - 1);
            let batches = read_intermediate(
                &dir,
                &prefix,
                &self.spec.input.text_column,
                &self.spec.input.id_column,
            )?;
            (
                Box::new(FilteredIter {
                    inner: batches,
                    filter,
                    row: 0,
                    finished: false,
                }),
                OpStats::new(g.label.clone()),
                format!("task {t}"),
            )
        };
        let mut stats: Vec<OpStats> = vec![];
        let to_sink = seg
            .observed_by
            .as_ref()
            .is_some_and(|g| matches!(g.op, super::plan::Observing::Sink(_)));
        let mut sink = if to_sink {
            None
        } else if last {
            Some(ShardWriter::new(
                &self.layout.out,
                &prefix,
                self.policy.clone(),
            )?)
        } else {
            // Work files are read once and deleted: fast compression beats small.
            let policy = ShardPolicy {
                rows_per_shard: usize::MAX,
                bytes_per_shard: None,
                compression: parquet::basic::Compression::LZ4_RAW,
            };
            Some(ShardWriter::new(
                &self.layout.intermediate(k),
                &prefix,
                policy,
            )?)
        };
        let mut observer: Option<Box<dyn Observer>> = match &seg.observed_by {
            Some(g) => Some(g.op.phased().observer(&g.ctx, t)?),
            None => None,
        };
        let mut excluded = Excluded::new(
            self.layout,
            self.spec.output.excluded,
            &format!("s{k}-{prefix}"),
            &self.policy,
        )?;
        let mut op_stats: Vec<OpStats> = seg
            .ops
            .iter()
            .map(|s| {
                let mut st = OpStats::new(s.label);
                st.profile.thresholds = s.op.thresholds();
                st
            })
            .collect();
        let mut out_rows = 0u64;
        let mut batches = 0usize;
        // Dropped texts go to stats.json only where they may be kept at
        // all: `excluded = false` (for space, or for what `pii` dropped)
        // keeps them out of the report too.
        let samples = self.spec.output.excluded;
        for item in source.by_ref() {
            let (out, input, before) = match item {
                Ok(item) => item,
                // A file rewritten under the reader reads as corrupt: say why.
                Err(e) if k == 0 => return Err(self.input_changed(t).unwrap_or(e)),
                Err(e) => return Err(e.context(where_.clone())),
            };
            if excluded.schema.is_none() {
                excluded.schema = Some(segment_schema(&out.batch, seg)?);
            }
            progress.add(input.docs, input.bytes);
            if seg
                .opened_by
                .as_ref()
                .is_some_and(|g| g.op.reports_group_sizes())
            {
                count_group_sizes(&out.batch, &mut first);
            }
            profile(before.as_deref(), &out, samples, &mut first.profile)?;
            let mut batch = settle(out, input, &mut first, &mut excluded)?;
            for (step, st) in seg.ops.iter().zip(op_stats.iter_mut()) {
                let Some(b) = batch.take() else { break };
                let input = count_of(&b);
                let before = b.data.schema();
                let out = step
                    .op
                    .apply(b)
                    .with_context(|| format!("{} in {where_}", step.label))?;
                profile(Some(&before), &out, samples, &mut st.profile)?;
                batch = settle(out, input, st, &mut excluded)?;
            }
            if let Some(batch) = batch {
                if let Some(obs) = observer.as_mut() {
                    obs.observe(&batch, out_rows)?;
                }
                out_rows += batch.num_rows() as u64;
                if let Some(sink) = sink.as_mut() {
                    sink.write(&batch.data, batch.text)?;
                }
            }
            batches += 1;
            if batches == 1 {
                maybe_abort(&Phase::Stream(k).name(), t)?;
            }
        }
        if k == 0 {
            if let Some(e) = self.input_changed(t) {
                return Err(e);
            }
        }
        stats.push(first);
        stats.extend(op_stats);
        if let Some(sink) = sink {
            sink.finish()?;
        }
        excluded.finish()?;
        if let Some(obs) = observer {
            obs.finish()?;
        }
        let marker = TaskStats { steps: stats };
        write_atomic(
            &self.layout.marker(&Phase::Stream(k).name(), t),
            &serde_json::to_vec(&marker)?,
        )
    }
}

/// Documents by the size of their duplicate group, from the `dup_count`
/// column the dedup op that opens the segment adds, for its histogram.
pub(super) fn count_group_sizes(batch: &DocBatch, stats: &mut OpStats) {
    let counts = batch.data.column_by_name("dup_count").and_then(|c| {
        c.as_any()
            .downcast_ref::<arrow::array::UInt32Array>()
            .cloned()
    });
    if let Some(counts) = counts {
        for v in counts.values() {
            *stats.docs_by_group_size.entry(*v).or_default() += 1;
        }
    }
}

pub(super) fn count_of(batch: &DocBatch) -> Count {
    Count {
        docs: batch.num_rows() as u64,
        bytes: batch.text_bytes(),
    }
}

/// Counts what an op received (`input`, measured before it ran: ops may
/// rewrite the text) and what it kept or dropped, sends its drops to the
/// excluded sink, and returns the kept rows (`None` when none are left).
pub(super) fn settle(
    out: OpOutput,
    input: Count,
    stats: &mut OpStats,
    excluded: &mut Excluded,
) -> Result<Option<DocBatch>> {
    let OpOutput {
        batch,
        drops,
        added,
        skipped,
        counters,
    } = out;
    for (kind, n) in skipped {
        *stats.skipped.entry(kind).or_default() += n;
    }
    for (name, n) in counters {
        *stats.counters.entry(name).or_default() += n;
    }
    let texts = batch.texts();
    let n = batch.num_rows();
    if n as u64 != input.docs + added {
        bail!(
            "step {} returned {n} rows for {} and {added} added (an op must not lose rows)",
            stats.step,
            input.docs
        );
    }
    stats.input.add(input);
    if added > 0 {
        stats.added.add(Count {
            docs: added,
            bytes: batch.text_bytes().saturating_sub(input.bytes),
        });
    }
    if drops.is_empty() {
        stats.kept.add(Count {
            docs: n as u64,
            bytes: batch.text_bytes(),
        });
        return Ok((n > 0).then_some(batch));
    }
    if drops.len() != n {
        bail!("an op returned {} drop marks for {n} rows", drops.len());
    }
    let mut kept_bytes = 0u64;
    for (i, d) in drops.iter().enumerate() {
        let len = texts.value(i).len();
        match d {
            Some(mark) => stats.drop_one(&mark.reason, len),
            None => kept_bytes += len as u64,
        }
    }
    let keep: BooleanArray = drops.iter().map(|d| Some(d.is_none())).collect();
    let kept = filter_record_batch(&batch.data, &keep)?;
    stats.kept.add(Count {
        docs: kept.num_rows() as u64,
        bytes: kept_bytes,
    });
    excluded.write(&batch, &drops, &stats.step)?;
    Ok((kept.num_rows() > 0).then(|| DocBatch {
        data: kept,
        ..batch
    }))
}

/// The columns a segment's rows end with: its input's, plus those its ops
/// add (found by running the ops on no rows), less any drop columns of the
/// input (a rerun over excluded/ gets them replaced, not duplicated).
pub(super) fn segment_schema(first: &DocBatch, seg: &Segment<'_>) -> Result<SchemaRef> {
    let mut batch = DocBatch {
        data: first.data.slice(0, 0),
        ..first.clone()
    };
    for step in &seg.ops {
        batch = step.op.apply(batch)?.batch;
    }
    let fields: Vec<Field> = batch
        .data
        .schema()
        .fields()
        .iter()
        .filter(|f| !DROP_COLUMNS.contains(&f.name().as_str()))
        .map(|f| f.as_ref().clone())
        .collect();
    Ok(Arc::new(Schema::new(fields)))
}

/// A global op's filter over the intermediate batches of one task.
pub(super) struct FilteredIter {
    inner: Box<dyn Iterator<Item = Result<DocBatch>> + Send>,
    filter: Box<dyn RowFilter>,
    row: u64,
    finished: bool,
}

impl Iterator for FilteredIter {
    type Item = Result<(OpOutput, Count, Option<SchemaRef>)>;
    fn next(&mut self) -> Option<Self::Item> {
        let batch = match self.inner.next() {
            Some(Ok(b)) => b,
            Some(Err(e)) => return Some(Err(e)),
            None if !self.finished => {
                self.finished = true;
                return self.filter.finish(self.row).err().map(Err);
            }
            None => return None,
        };
        let first = self.row;
        self.row += batch.num_rows() as u64;
        let input = count_of(&batch);
        let before = batch.data.schema();
        Some(
            self.filter
                .apply(batch, first)
                .map(|o| (o, input, Some(before))),
        )
    }
}

/// Reads the intermediate shards of one task, in order.
pub(super) fn read_intermediate(
    dir: &Path,
    prefix: &str,
    text_column: &str,
    id_column: &str,
) -> Result<Box<dyn Iterator<Item = Result<DocBatch>> + Send>> {
    // A task's shards are numbered from 0 without gaps: found by name, as a
    // listing of the folder would make every task pay for all the others.
    let mut files: Vec<PathBuf> = vec![];
    loop {
        let path = dir.join(format!("{prefix}-{:04}.parquet", files.len()));
        if !store::exists(&path)? {
            break;
        }
        files.push(path);
    }
    let text_column = text_column.to_string();
    let id_column = id_column.to_string();
    let iter = files.into_iter().flat_map(move |path| {
        let text_column = text_column.clone();
        let id_column = id_column.clone();
        let open = || -> Result<_> {
            let f = store::open(&path)?;
            let r = ParquetRecordBatchReaderBuilder::try_new(f)
                .with_context(|| format!("intermediate file {} is corrupt", path.display()))?
                .build()?;
            Ok(r)
        };
        let batches: Box<dyn Iterator<Item = Result<DocBatch>> + Send> = match open() {
            Ok(r) => {
                let path = path.clone();
                Box::new(r.map(move |b| {
                    let data = b.with_context(|| format!("reading {}", path.display()))?;
                    let text = data
                        .schema()
                        .index_of(&text_column)
                        .with_context(|| path.display().to_string())?;
                    let id = data
                        .schema()
                        .index_of(&id_column)
                        .with_context(|| path.display().to_string())?;
                    Ok(DocBatch { data, text, id })
                }))
            }
            Err(e) => Box::new(std::iter::once(Err(e))),
        };
        batches
    });
    Ok(Box::new(iter))
}
