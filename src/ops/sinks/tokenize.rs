//! `tokenize` (sink, last step): encodes every document with a
//! `tokenizer.json` (sluice's encoder for every BPE file, the `tokenizers`
//! crate for the rest: `tokenizer::load::TextEncoder`; batch by batch, in
//! parallel across tasks and within a batch), adds BOS/EOS, and writes training
//! shards: Megatron's `.bin`/`.idx` (`src/io/megatron.rs`) or a flat `.bin`
//! of ids with an `.offsets` file. Each input task writes its own shards,
//! closed at `tokens_per_shard`; a document longer than `max_doc_tokens` is
//! cut into pieces written as documents of their own (so no shard exceeds
//! its size by more than one piece), the first with BOS, the last with EOS.
//! A document that encodes to no token is skipped as `tokenize:empty`.
//! With `shuffle` (the default), every piece gets a key, a hash of (seed,
//! task, piece); pieces are spilled in input order and their keys
//! partitioned by range; one task per partition writes its pieces in key
//! order. Without it, each input task writes its own shards, in input order.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use arrow::array::{Array, StringArray};
use serde::{Deserialize, Serialize};

use crate::io::megatron::{Dtype, IndexedWriter};
use crate::io::partfile::{put_record, read_part, records, PartWriter};
use crate::io::store;
use crate::ops::{
    shape, BuildCtx, DocBatch, GlobalCtx, Observer, Op, OpInfo, OpKind, ParamDoc, PhaseSpec,
    Phased, SinkOp,
};
use crate::pipeline::spec::SpecError;
use crate::stats::{Count, OpStats};
use crate::tokenizer::load::{load_tokenizer, token_id, TextEncoder};
use xxhash_rust::xxh3::xxh3_64_with_seed;

/// `max_doc_tokens` when the step leaves it out (or `tokens_per_shard`,
/// when that is smaller).
const MAX_DOC_TOKENS: u64 = 1 << 20;

#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
struct Config {
    tokenizer: PathBuf,
    bos: Option<String>,
    eos: Option<String>,
    format: Format,
    tokens_per_shard: u64,
    /// Default: 1 Mi tokens, or `tokens_per_shard` when smaller.
    max_doc_tokens: Option<u64>,
    source_column: String,
    shuffle: bool,
    seed: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            // Required (its ParamDoc says so): checked by BuildCtx::config.
            tokenizer: Default::default(),
            bos: Default::default(),
            eos: Default::default(),
            format: Format::Megatron,
            tokens_per_shard: 1_000_000_000,
            max_doc_tokens: Default::default(),
            source_column: "source".into(),
            shuffle: true,
            seed: 1,
        }
    }
}

pub const INFO: OpInfo = OpInfo {
    name: "tokenize",
    kind: OpKind::Sink,
    summary: "Sink (the last step): encodes with a tokenizer.json and writes training shards \
              (Megatron .bin/.idx or flat ids + offsets) of tokens_per_shard, with a report per source.",
    params: &[
        ParamDoc { name: "tokenizer", kind: "path", default: "required", doc: "a Hugging Face tokenizer.json" },
        ParamDoc { name: "bos", kind: "string", default: "none", doc: "token put before each document" },
        ParamDoc { name: "eos", kind: "string", default: "none", doc: "token put after each document" },
        ParamDoc { name: "format", kind: "string", default: "\"megatron\"", doc: "`megatron` (.bin/.idx) or `flat` (.bin of ids + .offsets)" },
        ParamDoc { name: "tokens_per_shard", kind: "integer", default: "1000000000", doc: "a shard is closed before it would pass this" },
        ParamDoc { name: "max_doc_tokens", kind: "integer", default: "1048576 or tokens_per_shard, the smaller", doc: "longer documents are cut into pieces of this size (at most tokens_per_shard)" },
        ParamDoc { name: "source_column", kind: "string", default: "\"source\"", doc: "column the report groups by (when present)" },
        ParamDoc { name: "shuffle", kind: "bool", default: "true", doc: "a seeded global shuffle of the documents (`sluice run --no-shuffle`, i.e. `--set tokenize.shuffle=false`, turns it off)" },
        ParamDoc { name: "seed", kind: "integer", default: "1", doc: "another seed, another order" },
    ],
    drop_reasons: &["tokenize:empty"],
    outputs: &[
        "tokens-*.bin",
        "tokens-*.idx",
        "tokens-*.offsets",
        "tokenize_report.json",
    ],
    build,
    config: shape::<Config>,
    example: r#"
[[step]]
op = "tokenize"
tokenizer = "fixtures/models/wordllama-l2-64/l2_supercat_tokenizer_config.json"
"#,
    about: r#"
A sink: the last step. Encodes with a `tokenizer.json` and writes token
shards (Megatron `.bin`/`.idx` or flat) instead of Parquet, with
`tokenize_report.json`; a document that encodes to nothing is dropped as
`tokenize:empty`. See [tokenizers.md, Tokenized shards](tokenizers.md#tokenized-shards).
"#,
};

/// How token shards are laid out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
enum Format {
    /// Megatron-LM's indexed dataset (`.bin` + `.idx`).
    #[default]
    Megatron,
    /// Token ids (`.bin`) and document offsets (`.offsets`).
    Flat,
}

pub struct Tokenize {
    tokenizer: Arc<TextEncoder>,
    bos: Option<u32>,
    eos: Option<u32>,
    format: Format,
    dtype: Dtype,
    tokens_per_shard: u64,
    max_doc_tokens: u64,
    source_column: String,
    shuffle: bool,
    seed: u64,
}

fn build(ctx: &BuildCtx<'_>) -> Result<Op, SpecError> {
    let c: Config = ctx.config()?;
    let format = c.format;
    if c.tokens_per_shard == 0 {
        return Err(ctx.error("tokens_per_shard", "must be above 0".into()));
    }
    let max_doc_tokens = c
        .max_doc_tokens
        .unwrap_or(MAX_DOC_TOKENS.min(c.tokens_per_shard));
    if max_doc_tokens == 0 || max_doc_tokens > c.tokens_per_shard {
        return Err(ctx.error(
            "max_doc_tokens",
            format!(
                "`max_doc_tokens` must be between 1 and `tokens_per_shard` ({}), not {}",
                c.tokens_per_shard, max_doc_tokens
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
    Ok(Op::Sink(Arc::new(Tokenize {
        tokenizer: Arc::new(TextEncoder::with(&c.tokenizer, tokenizer)),
        bos,
        eos,
        format,
        dtype,
        tokens_per_shard: c.tokens_per_shard,
        max_doc_tokens,
        source_column: c.source_column,
        shuffle: c.shuffle,
        seed: c.seed,
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
    tmp: PathBuf,
    bin: std::io::BufWriter<std::fs::File>,
    dtype: Dtype,
    offsets: Vec<u64>,
    tokens: u64,
}

impl FlatWriter {
    fn create(prefix: &Path, dtype: Dtype) -> Result<FlatWriter> {
        let tmp = store::staging(&prefix.with_extension("bin"));
        let f = std::fs::File::create(&tmp)
            .with_context(|| format!("cannot create {}", tmp.display()))?;
        Ok(FlatWriter {
            prefix: prefix.to_path_buf(),
            tmp,
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
        store::commit(&self.tmp, &bin)?;
        Ok(())
    }
}

enum ShardWriter {
    Megatron(IndexedWriter),
    Flat(FlatWriter),
}

/// A sequence of output shards `tokens-<group>-<n>`, each closed before a
/// piece would take it past `tokens_per_shard`.
struct ShardSeq {
    op: Tokenize,
    out: PathBuf,
    group: usize,
    writer: Option<(ShardWriter, u64, u64)>,
    shards: Vec<ShardRecord>,
}

impl ShardSeq {
    fn new(op: &Tokenize, out: &Path, group: usize) -> ShardSeq {
        ShardSeq {
            op: op.clone(),
            out: out.to_path_buf(),
            group,
            writer: None,
            shards: vec![],
        }
    }

    fn shard_name(&self) -> String {
        format!("tokens-{:05}-{:04}", self.group, self.shards.len())
    }

    fn close(&mut self) -> Result<()> {
        if let Some((w, docs, tokens)) = self.writer.take() {
            match w {
                ShardWriter::Megatron(w) => w.finish()?,
                ShardWriter::Flat(w) => w.finish()?,
            }
            let name = self.shard_name();
            self.shards.push(ShardRecord {
                name,
                documents: docs,
                tokens,
            });
        }
        Ok(())
    }

    fn write(&mut self, ids: &[u32]) -> Result<()> {
        let n = ids.len() as u64;
        if self
            .writer
            .as_ref()
            .is_some_and(|(_, _, t)| *t > 0 && t + n > self.op.tokens_per_shard)
        {
            self.close()?;
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

/// Where a task's pieces go: straight into output shards (no shuffle), or
/// into a spill of ids in input order plus, per output partition, records
/// `[key, task, byte offset, tokens]` (with shuffle).
enum Dest {
    Shards(ShardSeq),
    Spill {
        ids: FlatWriter,
        keys: PartWriter,
        bytes: u64,
        pieces: u64,
    },
}

/// One task's encoder and destination.
struct TaskSink {
    op: Tokenize,
    record_path: PathBuf,
    task: usize,
    partitions: usize,
    dest: Dest,
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
    fn write_piece(&mut self, ids: &[u32]) -> Result<()> {
        match &mut self.dest {
            Dest::Shards(seq) => seq.write(ids),
            Dest::Spill {
                ids: spill,
                keys,
                bytes,
                pieces,
            } => {
                let mut h = [0u8; 16];
                h[..8].copy_from_slice(&(self.task as u64).to_le_bytes());
                h[8..].copy_from_slice(&pieces.to_le_bytes());
                let key = xxh3_64_with_seed(&h, self.op.seed);
                let p = ((key as u128 * self.partitions as u128) >> 64) as usize;
                put_record(
                    keys.part(p),
                    &[key, self.task as u64, *bytes, ids.len() as u64],
                );
                spill.add_document(ids)?;
                *bytes += (ids.len() * self.op.dtype.size()) as u64;
                *pieces += 1;
                Ok(())
            }
        }
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
            .encode_batch(&inputs)
            .context("tokenize")?;
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
            if enc.is_empty() {
                sc.empty_docs += 1;
                self.record.stats.drop_one("tokenize:empty", bytes);
                continue;
            }
            ids.clear();
            ids.extend(self.op.bos);
            ids.extend_from_slice(enc);
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

    fn finish(self: Box<Self>) -> Result<()> {
        let TaskSink {
            dest,
            mut record,
            record_path,
            ..
        } = *self;
        match dest {
            Dest::Shards(mut seq) => {
                seq.close()?;
                record.shards = seq.shards;
            }
            Dest::Spill { ids, keys, .. } => {
                ids.finish()?;
                keys.finish()?;
            }
        }
        crate::io::writer::write_atomic(&record_path, &serde_json::to_vec(&record)?)
    }
}

fn record_path(ctx: &GlobalCtx, task: usize) -> PathBuf {
    ctx.work.join("tasks").join(format!("{task:05}.json"))
}

/// Output partitions of the shuffle: one per input task (never the number
/// of workers: the output must not depend on it), each a range of keys.
fn partitions(ctx: &GlobalCtx) -> usize {
    ctx.tasks.max(1)
}

fn shards_path(ctx: &GlobalCtx, p: usize) -> PathBuf {
    ctx.work.join("shards").join(format!("{p:05}.json"))
}

impl Tokenize {
    /// Writes partition `p` of the shuffled output: its pieces from every
    /// task's spill, in key order. Keys are uniform hashes and partitions
    /// ranges of keys, so the shards in name order are one uniformly
    /// shuffled sequence; memory holds one partition's records (32 bytes
    /// a piece), not its tokens.
    fn write_partition(&self, ctx: &GlobalCtx, p: usize) -> Result<()> {
        let mut recs: Vec<[u64; 4]> = vec![];
        for t in 0..ctx.tasks {
            let path = ctx.work.join("spill").join(format!("{t:05}.keys"));
            recs.extend(records::<4>(&read_part(&path, p)?, &path)?);
        }
        recs.sort_unstable();
        let mut files: BTreeMap<u64, store::Source> = BTreeMap::new();
        let mut seq = ShardSeq::new(self, &ctx.output, p);
        let size = self.dtype.size();
        let mut buf: Vec<u8> = vec![];
        let mut ids: Vec<u32> = vec![];
        for [_, task, offset, n] in recs {
            let f = match files.entry(task) {
                std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::btree_map::Entry::Vacant(e) => {
                    let path = ctx.work.join("spill").join(format!("{task:05}.bin"));
                    // Pieces are read at random: from a local copy when the
                    // work folder is in S3.
                    e.insert(store::open(&store::local_copy(&path)?)?)
                }
            };
            buf.resize(n as usize * size, 0);
            f.read_exact_at(&mut buf, offset)
                .with_context(|| format!("spill of task {task} is truncated"))?;
            ids.clear();
            match self.dtype {
                Dtype::U16 => ids.extend(
                    buf.chunks_exact(2)
                        .map(|c| u16::from_le_bytes([c[0], c[1]]) as u32),
                ),
                Dtype::I32 => ids.extend(
                    buf.chunks_exact(4)
                        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])),
                ),
            }
            seq.write(&ids)?;
        }
        seq.close()?;
        crate::io::writer::write_atomic(&shards_path(ctx, p), &serde_json::to_vec(&seq.shards)?)
    }
}

fn read_records(ctx: &GlobalCtx) -> Result<Vec<TaskRecord>> {
    (0..ctx.tasks)
        .map(|t| crate::io::writer::read_work_json(&record_path(ctx, t)))
        .collect()
}

impl Tokenize {
    /// The last phase: `tokenize_report.json` from every task's records.
    fn report(&self, ctx: &GlobalCtx) -> Result<()> {
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
        if self.shuffle {
            for p in 0..partitions(ctx) {
                let list: Vec<ShardRecord> =
                    crate::io::writer::read_work_json(&shards_path(ctx, p))?;
                shards.extend(list);
            }
        }
        let tokens: u64 = shards.iter().map(|s| s.tokens).sum();
        let report = serde_json::json!({
            "format": match self.format { Format::Megatron => "megatron", Format::Flat => "flat" },
            "dtype": self.dtype.name(),
            "encoder": self.tokenizer.name(),
            "encoder_note": self.tokenizer.why_not_sluice(),
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
}

impl Phased for Tokenize {
    fn phases(self: Arc<Self>, ctx: &GlobalCtx) -> Vec<PhaseSpec> {
        let report = PhaseSpec::new(&self, "report", 1, |op, ctx, _| op.report(ctx));
        if self.shuffle {
            vec![
                PhaseSpec::new(&self, "shuffle", partitions(ctx), Self::write_partition),
                report,
            ]
        } else {
            vec![report]
        }
    }

    fn observer(&self, ctx: &GlobalCtx, task: usize) -> Result<Box<dyn Observer>> {
        let dest = if self.shuffle {
            let spill = ctx.work.join("spill").join(format!("{task:05}"));
            store::create_dir_all(&ctx.work.join("spill"))?;
            Dest::Spill {
                ids: FlatWriter::create(&spill, self.dtype)?,
                keys: PartWriter::with_spill(
                    &spill.with_extension("keys"),
                    partitions(ctx),
                    ctx.task_budget(256 << 20) as usize,
                ),
                bytes: 0,
                pieces: 0,
            }
        } else {
            Dest::Shards(ShardSeq::new(self, &ctx.output, task))
        };
        Ok(Box::new(TaskSink {
            op: self.clone(),
            record_path: record_path(ctx, task),
            task,
            partitions: partitions(ctx),
            dest,
            record: TaskRecord::default(),
        }))
    }
}

impl SinkOp for Tokenize {
    fn stats(&self, ctx: &GlobalCtx) -> Result<OpStats> {
        let mut all = OpStats::default();
        for r in read_records(ctx)? {
            all.merge(&r.stats);
        }
        Ok(all)
    }
}
