//! `tokenize` (sink, last step): encodes every document with a
//! `tokenizer.json` (the `tokenizers` crate, batch by batch, in parallel
//! across tasks and within a batch), adds BOS/EOS, and writes training
//! shards: Megatron's `.bin`/`.idx` (`src/io/megatron.rs`) or a flat `.bin`
//! of ids with an `.offsets` file. Each input task writes its own shards,
//! closed at `tokens_per_shard`; a document longer than `max_doc_tokens` is
//! cut into pieces written as documents of their own (so no shard exceeds
//! its size by more than one piece), the first with BOS, the last with EOS.
//! A document that encodes to no token is skipped as `tokenize:empty`.
//! Documents stay in input order (no shuffle yet).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use arrow::array::{Array, StringArray};
use serde::{Deserialize, Serialize};

use super::{
    BuildCtx, DocBatch, GlobalCtx, GlobalOp, Observer, Op, OpInfo, ParamDoc, PhaseSpec, RowFilter,
};
use crate::io::megatron::{Dtype, IndexedWriter};
use crate::pipeline::spec::SpecError;
use crate::stats::{Count, OpStats};
use crate::tokenizer::load::{load_tokenizer, token_id};

fn d_format() -> String {
    "megatron".into()
}
fn d_tokens_per_shard() -> u64 {
    1_000_000_000
}
fn d_max_doc_tokens() -> u64 {
    1 << 20
}
fn d_source_column() -> String {
    "source".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    tokenizer: PathBuf,
    #[serde(default)]
    bos: Option<String>,
    #[serde(default)]
    eos: Option<String>,
    #[serde(default = "d_format")]
    format: String,
    #[serde(default = "d_tokens_per_shard")]
    tokens_per_shard: u64,
    #[serde(default = "d_max_doc_tokens")]
    max_doc_tokens: u64,
    #[serde(default = "d_source_column")]
    source_column: String,
}

pub const INFO: OpInfo = OpInfo {
    name: "tokenize",
    global: true,
    summary: "Sink (the last step): encodes with a tokenizer.json and writes training shards \
              (Megatron .bin/.idx or flat ids + offsets) of tokens_per_shard, with a report per source.",
    params: &[
        ParamDoc { name: "tokenizer", kind: "path", default: "required", doc: "a Hugging Face tokenizer.json" },
        ParamDoc { name: "bos", kind: "string", default: "none", doc: "token put before each document" },
        ParamDoc { name: "eos", kind: "string", default: "none", doc: "token put after each document" },
        ParamDoc { name: "format", kind: "string", default: "megatron", doc: "`megatron` (.bin/.idx) or `flat` (.bin of ids + .offsets)" },
        ParamDoc { name: "tokens_per_shard", kind: "integer", default: "1000000000", doc: "a shard is closed before it would pass this" },
        ParamDoc { name: "max_doc_tokens", kind: "integer", default: "1048576", doc: "longer documents are cut into pieces of this size" },
        ParamDoc { name: "source_column", kind: "string", default: "source", doc: "column the report groups by (when present)" },
    ],
    drop_reasons: &["tokenize:empty"],
    build,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Megatron,
    Flat,
}

pub struct Tokenize {
    tokenizer: Arc<tokenizers::Tokenizer>,
    bos: Option<u32>,
    eos: Option<u32>,
    format: Format,
    dtype: Dtype,
    tokens_per_shard: u64,
    max_doc_tokens: u64,
    source_column: String,
}

fn build(ctx: &BuildCtx) -> Result<Op, SpecError> {
    let c: Config = ctx.config()?;
    let format = match c.format.as_str() {
        "megatron" => Format::Megatron,
        "flat" => Format::Flat,
        other => {
            return Err(ctx.error(
                "format",
                format!("unknown format `{other}` (megatron or flat)"),
            ))
        }
    };
    if c.tokens_per_shard == 0 {
        return Err(ctx.error("tokens_per_shard", "must be above 0".into()));
    }
    if c.max_doc_tokens == 0 || c.max_doc_tokens > c.tokens_per_shard {
        return Err(ctx.error(
            "max_doc_tokens",
            format!(
                "must be between 1 and tokens_per_shard ({}), not {}",
                c.tokens_per_shard, c.max_doc_tokens
            ),
        ));
    }
    // Relative paths are relative to where sluice runs, as every path of
    // the spec; the model is loaded before any data is read.
    let tokenizer =
        load_tokenizer(&c.tokenizer).map_err(|e| ctx.error("tokenizer", format!("{e:#}")))?;
    let id = |key: &str, t: &Option<String>| -> Result<Option<u32>, SpecError> {
        t.as_ref()
            .map(|t| {
                token_id(&tokenizer, t, &c.tokenizer).map_err(|e| ctx.error(key, format!("{e:#}")))
            })
            .transpose()
    };
    let bos = id("bos", &c.bos)?;
    let eos = id("eos", &c.eos)?;
    let vocab = tokenizer.get_vocab_size(true);
    let dtype = match format {
        Format::Megatron => Dtype::for_vocab(vocab),
        // Flat files: two bytes whenever every id fits.
        Format::Flat if vocab <= 1 << 16 => Dtype::U16,
        Format::Flat => Dtype::I32,
    };
    Ok(Op::Global(Arc::new(Tokenize {
        tokenizer: Arc::new(tokenizer),
        bos,
        eos,
        format,
        dtype,
        tokens_per_shard: c.tokens_per_shard,
        max_doc_tokens: c.max_doc_tokens,
        source_column: c.source_column,
    })))
}

/// Per source, what went in and what was written.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct SourceCount {
    docs: u64,
    bytes: u64,
    tokens: u64,
    /// Documents cut into pieces, and the pieces written for them.
    split_docs: u64,
    pieces: u64,
    empty_docs: u64,
}

/// One task's record, read by the report phase.
#[derive(Debug, Default, Serialize, Deserialize)]
struct TaskRecord {
    stats: OpStats,
    sources: BTreeMap<String, SourceCount>,
    shards: Vec<ShardRecord>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct ShardRecord {
    name: String,
    documents: u64,
    tokens: u64,
}

/// The flat format: ids as they are, plus u64 token offsets of every
/// document start and the total (documents + 1 values).
struct FlatWriter {
    prefix: PathBuf,
    bin: std::io::BufWriter<std::fs::File>,
    dtype: Dtype,
    offsets: Vec<u64>,
    tokens: u64,
}

fn tmp_name(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp"))
}

impl FlatWriter {
    fn create(prefix: &Path, dtype: Dtype) -> Result<FlatWriter> {
        let tmp = tmp_name(&prefix.with_extension("bin"));
        let f = std::fs::File::create(&tmp)
            .with_context(|| format!("cannot create {}", tmp.display()))?;
        Ok(FlatWriter {
            prefix: prefix.to_path_buf(),
            bin: std::io::BufWriter::with_capacity(1 << 20, f),
            dtype,
            offsets: vec![0],
            tokens: 0,
        })
    }
    fn add_document(&mut self, ids: &[u32]) -> Result<()> {
        for &id in ids {
            match self.dtype {
                Dtype::U16 => self.bin.write_all(&(id as u16).to_le_bytes())?,
                Dtype::I32 => self.bin.write_all(&id.to_le_bytes())?,
            }
        }
        self.tokens += ids.len() as u64;
        self.offsets.push(self.tokens);
        Ok(())
    }
    fn finish(self) -> Result<()> {
        let bin = self.prefix.with_extension("bin");
        let f = self
            .bin
            .into_inner()
            .map_err(|e| anyhow::anyhow!("cannot write {}: {}", bin.display(), e.error()))?;
        f.sync_all()?;
        let bytes: Vec<u8> = self.offsets.iter().flat_map(|o| o.to_le_bytes()).collect();
        crate::io::writer::write_atomic(&self.prefix.with_extension("offsets"), &bytes)?;
        std::fs::rename(tmp_name(&bin), &bin)
            .with_context(|| format!("cannot move {} into place", bin.display()))?;
        Ok(())
    }
}

enum ShardWriter {
    Megatron(IndexedWriter),
    Flat(FlatWriter),
}

/// One task's encoder and shard writer.
struct TaskSink {
    op: Tokenize,
    out: PathBuf,
    record_path: PathBuf,
    task: usize,
    writer: Option<(ShardWriter, u64, u64)>,
    record: TaskRecord,
}

impl Clone for Tokenize {
    fn clone(&self) -> Self {
        Tokenize {
            tokenizer: self.tokenizer.clone(),
            source_column: self.source_column.clone(),
            ..*self
        }
    }
}

impl TaskSink {
    fn shard_name(&self) -> String {
        format!("tokens-{:05}-{:04}", self.task, self.record.shards.len())
    }

    fn close_shard(&mut self) -> Result<()> {
        if let Some((w, docs, tokens)) = self.writer.take() {
            match w {
                ShardWriter::Megatron(w) => w.finish()?,
                ShardWriter::Flat(w) => w.finish()?,
            }
            let name = self.shard_name();
            self.record.shards.push(ShardRecord {
                name,
                documents: docs,
                tokens,
            });
        }
        Ok(())
    }

    fn write_piece(&mut self, ids: &[u32]) -> Result<()> {
        let n = ids.len() as u64;
        if self
            .writer
            .as_ref()
            .is_some_and(|(_, _, t)| *t > 0 && t + n > self.op.tokens_per_shard)
        {
            self.close_shard()?;
        }
        if self.writer.is_none() {
            let prefix = self.out.join(self.shard_name());
            let w = match self.op.format {
                Format::Megatron => {
                    ShardWriter::Megatron(IndexedWriter::create(&prefix, self.op.dtype)?)
                }
                Format::Flat => ShardWriter::Flat(FlatWriter::create(&prefix, self.op.dtype)?),
            };
            self.writer = Some((w, 0, 0));
        }
        let (w, docs, tokens) = self.writer.as_mut().expect("opened above");
        match w {
            ShardWriter::Megatron(w) => w.add_document(&[ids])?,
            ShardWriter::Flat(w) => w.add_document(ids)?,
        }
        *docs += 1;
        *tokens += n;
        Ok(())
    }
}

impl Observer for TaskSink {
    fn observe(&mut self, batch: &DocBatch, _first_row: u64) -> Result<()> {
        let texts = batch.texts();
        let sources: Option<StringArray> = batch
            .data
            .column_by_name(&self.op.source_column)
            .and_then(|c| arrow::compute::cast(c, &arrow::datatypes::DataType::Utf8).ok())
            .and_then(|c| c.as_any().downcast_ref::<StringArray>().cloned());
        let inputs: Vec<&str> = texts.iter().map(|t| t.unwrap_or("")).collect();
        let encodings = self
            .op
            .tokenizer
            .encode_batch_fast(inputs, false)
            .map_err(|e| anyhow::anyhow!("tokenize: {e}"))?;
        let max = self.op.max_doc_tokens as usize;
        let mut ids: Vec<u32> = vec![];
        for (i, enc) in encodings.iter().enumerate() {
            let source = sources
                .as_ref()
                .and_then(|s| s.is_valid(i).then(|| s.value(i).to_string()))
                .unwrap_or_else(|| "(none)".into());
            let bytes = texts.value(i).len();
            self.record.stats.input.add(Count::one(bytes));
            let sc = self.record.sources.entry(source).or_default();
            sc.docs += 1;
            sc.bytes += bytes as u64;
            if enc.get_ids().is_empty() {
                sc.empty_docs += 1;
                self.record.stats.drop_one("tokenize:empty", bytes);
                continue;
            }
            ids.clear();
            ids.extend(self.op.bos);
            ids.extend_from_slice(enc.get_ids());
            ids.extend(self.op.eos);
            sc.tokens += ids.len() as u64;
            if ids.len() > max {
                sc.split_docs += 1;
                sc.pieces += ids.len().div_ceil(max) as u64;
            }
            self.record.stats.kept.add(Count::one(bytes));
            let pieces: Vec<Vec<u32>> = ids.chunks(max).map(<[u32]>::to_vec).collect();
            for p in &pieces {
                self.write_piece(p)?;
            }
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<()> {
        self.close_shard()?;
        crate::io::writer::write_atomic(&self.record_path, &serde_json::to_vec(&self.record)?)
    }
}

fn record_path(ctx: &GlobalCtx, task: usize) -> PathBuf {
    ctx.work.join("tasks").join(format!("{task:05}.json"))
}

fn read_records(ctx: &GlobalCtx) -> Result<Vec<TaskRecord>> {
    (0..ctx.tasks)
        .map(|t| {
            let p = record_path(ctx, t);
            let bytes =
                std::fs::read(&p).with_context(|| format!("cannot read {}", p.display()))?;
            serde_json::from_slice(&bytes)
                .with_context(|| format!("{} is damaged; rerun with --force", p.display()))
        })
        .collect()
}

impl GlobalOp for Tokenize {
    fn phases(&self, _ctx: &GlobalCtx) -> Vec<PhaseSpec> {
        vec![PhaseSpec {
            name: "report".into(),
            tasks: 1,
        }]
    }

    fn observer(&self, ctx: &GlobalCtx, task: usize) -> Result<Box<dyn Observer>> {
        Ok(Box::new(TaskSink {
            op: self.clone(),
            out: ctx.output.clone(),
            record_path: record_path(ctx, task),
            task,
            writer: None,
            record: TaskRecord::default(),
        }))
    }

    fn run_phase(&self, ctx: &GlobalCtx, _phase: usize, _index: usize) -> Result<()> {
        let records = read_records(ctx)?;
        let mut sources: BTreeMap<String, SourceCount> = BTreeMap::new();
        let mut shards = vec![];
        for r in &records {
            for (k, v) in &r.sources {
                let s = sources.entry(k.clone()).or_default();
                s.docs += v.docs;
                s.bytes += v.bytes;
                s.tokens += v.tokens;
                s.split_docs += v.split_docs;
                s.pieces += v.pieces;
                s.empty_docs += v.empty_docs;
            }
            shards.extend(r.shards.iter().cloned());
        }
        let tokens: u64 = shards.iter().map(|s| s.tokens).sum();
        let report = serde_json::json!({
            "format": match self.format { Format::Megatron => "megatron", Format::Flat => "flat" },
            "dtype": self.dtype.name(),
            "tokens": tokens,
            "documents": shards.iter().map(|s| s.documents).sum::<u64>(),
            "sources": sources,
            "shards": shards,
        });
        crate::io::writer::write_atomic(
            &ctx.output.join("tokenize_report.json"),
            &serde_json::to_vec_pretty(&report)?,
        )
    }

    fn filter(&self, _ctx: &GlobalCtx, _task: usize) -> Result<Box<dyn RowFilter>> {
        bail!("tokenize is a sink: no step can follow it")
    }

    fn is_sink(&self) -> bool {
        true
    }

    fn sink_stats(&self, ctx: &GlobalCtx) -> Result<OpStats> {
        let mut all = OpStats::default();
        for r in read_records(ctx)? {
            all.merge(&r.stats);
        }
        Ok(all)
    }
}
