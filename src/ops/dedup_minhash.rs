//! `dedup_minhash`: near-duplicate removal with MinHash LSH, as a global op:
//!
//! 1. observe (per input task): shingles of each document (word n-grams, or
//!    character n-grams for Chinese and Japanese), a MinHash signature of
//!    `bands × rows` 64-bit values, one key per band written to a partition
//!    per (band, key range); each row's id, and with `verify_jaccard` its
//!    shingle hashes, in per-task files indexed by row;
//! 2. buckets (per partition): the keys sorted (externally past the memory
//!    budget); documents sharing a band key are candidates, joined by an
//!    edge (after checking their true Jaccard when verifying);
//! 3. components (one task): union-find over the edges gives the components
//!    (`dup_cluster`, `dup_count`); members go to the partition of their
//!    component's root;
//! 4. clusters (per partition): within each component, documents are taken
//!    in keep order (first in input order, or largest value of a column) and
//!    a document is removed when it is within the threshold of one already
//!    kept (with verification; without it, one per component stays), which
//!    its `drop_detail` names;
//! 5. filter (per input task): the decisions applied to every row.
//!
//! Memory: records are fixed-size (ids stay in the per-task id files), every
//! writer spills past its share of `memory_budget`, and sorts are external.
//! Only the components phase holds something that grows with the corpus: the
//! documents that have a candidate edge, about 40 bytes each.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Result;
use arrow::array::{Array, StringArray};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use serde::Deserialize;
use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};

use super::dup::{put_decision, read_decisions, Decision, DecisionFilter, KeepScores};
use super::{
    BuildCtx, DocBatch, GlobalCtx, GlobalOp, Observer, Op, OpInfo, ParamDoc, PhaseSpec, RowFilter,
};
use crate::io::partfile::{put_record, put_u64, read_part, records, PartWriter};
use crate::io::rowstore::{RowStore, RowStoreWriter};
use crate::io::sorter::ExternalSorter;
use crate::io::store;
use crate::io::writer::write_atomic;
use crate::pipeline::bytesize::ByteSize;
use crate::pipeline::spec::SpecError;
use crate::text::words::UNSPACED_LANGS;

/// How documents are cut into shingles.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ShingleMode {
    /// Words, or characters for languages written without spaces (by `lang`).
    #[default]
    Auto,
    Words,
    Chars,
}

fn d_threshold() -> f64 {
    0.8
}
fn d_ngram() -> usize {
    5
}
fn yes() -> bool {
    true
}
fn first() -> String {
    "first".into()
}
fn d_seed() -> u64 {
    1
}
fn d_lang() -> String {
    "lang".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DedupMinhashConfig {
    #[serde(default = "d_threshold")]
    pub threshold: f64,
    #[serde(default = "d_ngram")]
    pub ngram: usize,
    #[serde(default)]
    pub bands: Option<usize>,
    #[serde(default)]
    pub rows: Option<usize>,
    #[serde(default = "yes")]
    pub verify_jaccard: bool,
    #[serde(default = "first")]
    pub keep: String,
    #[serde(default)]
    pub shingle: ShingleMode,
    #[serde(default = "d_lang")]
    pub lang_column: String,
    #[serde(default = "d_seed")]
    pub seed: u64,
    /// Key ranges per band (tasks of the buckets phase = bands × this).
    #[serde(default)]
    pub partitions_per_band: Option<usize>,
    /// Indexes of earlier runs (`save_index` folders): documents near one of
    /// theirs are removed; theirs are never touched.
    #[serde(default)]
    pub index: Vec<PathBuf>,
    /// Write this run's kept documents as an index there, for later runs.
    #[serde(default)]
    pub save_index: Option<PathBuf>,
    /// Memory for the op's tasks running at once on this machine, shared
    /// among the workers: past it, writers spill and sorts go external.
    #[serde(default = "d_budget")]
    pub memory_budget: ByteSize,
}

fn d_budget() -> ByteSize {
    ByteSize(2 << 30)
}

/// Version of the index layout (ids in their own files since 2).
const INDEX_FORMAT: u32 = 2;

/// What must match between an index and the run that reads it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, Deserialize)]
struct IndexMeta {
    bands: usize,
    rows: usize,
    seed: u64,
    ngram: usize,
    shingle: String,
    verify_jaccard: bool,
    /// Tasks of the run that wrote the index: its parts are 0..tasks (a
    /// folder reused by a smaller run may hold stale higher-numbered parts).
    #[serde(default)]
    tasks: usize,
    #[serde(default)]
    format: u32,
}

/// One task of an earlier run's index.
struct IndexTask {
    parts: PathBuf,
    ids: PathBuf,
    shingles: PathBuf,
}

pub const INFO: OpInfo = OpInfo {
    name: "dedup_minhash",
    global: true,
    summary: "Near-duplicate removal: MinHash signatures over word 5-grams (character 5-grams for zh/ja), \
              LSH bands, verification of the true Jaccard (optional), union-find. A document is removed \
              when it is within the threshold of a kept one (named in drop_detail); every document gets \
              dup_cluster and dup_count (its component).",
    params: &[
        ParamDoc { name: "threshold", kind: "float", default: "0.8", doc: "target Jaccard similarity" },
        ParamDoc { name: "ngram", kind: "integer", default: "5", doc: "shingle length in words (characters for zh/ja)" },
        ParamDoc { name: "bands", kind: "integer", default: "derived", doc: "LSH bands; with rows, overrides the derivation" },
        ParamDoc { name: "rows", kind: "integer", default: "derived", doc: "minhashes per band" },
        ParamDoc { name: "verify_jaccard", kind: "bool", default: "true", doc: "join candidates only at true Jaccard >= threshold" },
        ParamDoc { name: "keep", kind: "string", default: "\"first\"", doc: "\"first\" or a numeric column (largest kept)" },
        ParamDoc { name: "shingle", kind: "string", default: "\"auto\"", doc: "\"auto\" (by lang), \"words\" or \"chars\"" },
        ParamDoc { name: "lang_column", kind: "string", default: "\"lang\"", doc: "column read by shingle = \"auto\"" },
        ParamDoc { name: "seed", kind: "integer", default: "1", doc: "seed of the hash functions" },
        ParamDoc { name: "partitions_per_band", kind: "integer", default: "derived", doc: "key ranges per band" },
        ParamDoc { name: "index", kind: "list", default: "[]", doc: "save_index folders of earlier runs to dedup against" },
        ParamDoc { name: "save_index", kind: "path", default: "none", doc: "write the kept documents' signatures there" },
        ParamDoc { name: "memory_budget", kind: "size", default: "\"2GiB\"", doc: "memory of the op's tasks at once (\"1GB\", \"512MiB\"); past it they spill to the work folder" },
    ],
    drop_reasons: &["dedup_minhash"],
    outputs: &[],
    build,
};

/// Probability that two documents of Jaccard `s` share at least one band.
pub fn candidate_probability(s: f64, bands: usize, rows: usize) -> f64 {
    1.0 - (1.0 - s.powi(rows as i32)).powi(bands as i32)
}

fn integrate(f: impl Fn(f64) -> f64, a: f64, b: f64) -> f64 {
    let n = 200;
    let h = (b - a) / n as f64;
    (0..n).map(|i| f(a + (i as f64 + 0.5) * h) * h).sum()
}

/// The (bands, rows) with at most `max_hashes` minhashes for `threshold`.
/// Without verification: the least false-positive plus false-negative area
/// around the threshold (as datasketch does). With verification false
/// positives only cost a check, so: the least false-positive area among the
/// choices that make a pair at the threshold a candidate with probability
/// 0.95 or more.
pub fn derive_bands_rows(threshold: f64, max_hashes: usize, verify: bool) -> (usize, usize) {
    let mut best = (1, 1, f64::MAX);
    let mut fallback = (1, 1, -1.0);
    for b in 1..=max_hashes {
        for r in 1..=max_hashes / b {
            let fp = integrate(|s| candidate_probability(s, b, r), 0.0, threshold);
            let fneg = integrate(|s| 1.0 - candidate_probability(s, b, r), threshold, 1.0);
            let at = candidate_probability(threshold, b, r);
            let err = if verify {
                if at < 0.95 {
                    if at > fallback.2 {
                        fallback = (b, r, at);
                    }
                    continue;
                }
                fp
            } else {
                fp + fneg
            };
            if err < best.2 {
                best = (b, r, err);
            }
        }
    }
    if best.2 == f64::MAX {
        return (fallback.0, fallback.1);
    }
    (best.0, best.1)
}

pub struct DedupMinhash {
    config: DedupMinhashConfig,
    bands: usize,
    rows: usize,
    /// Seeds of the bands × rows hash functions.
    seeds: Vec<u64>,
    meta: IndexMeta,
    /// Earlier runs' documents: (band-partitioned entries, shingles) per
    /// task of theirs. They count as tasks numbered after this run's.
    index_tasks: Vec<IndexTask>,
}

fn build(ctx: &BuildCtx<'_>) -> Result<Op, SpecError> {
    let config: DedupMinhashConfig = ctx.config()?;
    if !(0.0 < config.threshold && config.threshold <= 1.0) {
        return Err(ctx.error(
            "threshold",
            format!("threshold must be in (0, 1], not {}", config.threshold),
        ));
    }
    if config.ngram == 0 {
        return Err(ctx.error("ngram", "ngram must be at least 1".into()));
    }
    if config
        .partitions_per_band
        .is_some_and(|p| p == 0 || p > 4096)
    {
        return Err(ctx.error(
            "partitions_per_band",
            "partitions_per_band must be between 1 and 4096".into(),
        ));
    }
    if config.memory_budget.0 < 4096 {
        return Err(ctx.error(
            "memory_budget",
            format!(
                "memory_budget of {} bytes is too small: give at least 4096 (\"1GB\" is typical)",
                config.memory_budget.0
            ),
        ));
    }
    if let Some(save) = &config.save_index {
        if config.index.contains(save) {
            return Err(ctx.error(
                "save_index",
                format!(
                    "save_index {} is also read as an index: write a new folder",
                    save.display()
                ),
            ));
        }
    }
    let (bands, rows) = match (config.bands, config.rows) {
        (Some(b), Some(r)) if b > 0 && r > 0 && b.checked_mul(r).is_some_and(|n| n <= 1024) => {
            (b, r)
        }
        (Some(_), Some(_)) => {
            return Err(ctx.error(
                "bands",
                "bands and rows must be at least 1, with bands × rows <= 1024".into(),
            ))
        }
        (None, None) => derive_bands_rows(config.threshold, 112, config.verify_jaccard),
        _ => return Err(ctx.error("bands", "give both bands and rows, or neither".into())),
    };
    let mut state = config.seed;
    let seeds = (0..bands * rows).map(|_| splitmix(&mut state)).collect();
    let meta = IndexMeta {
        bands,
        rows,
        seed: config.seed,
        ngram: config.ngram,
        shingle: format!("{:?}", config.shingle).to_lowercase(),
        verify_jaccard: config.verify_jaccard,
        tasks: 0,
        format: INDEX_FORMAT,
    };
    let mut index_tasks = vec![];
    for dir in &config.index {
        let path = dir.join("meta.json");
        let theirs: IndexMeta = store::read(&path)
            .map_err(|e| ctx.error("index", format!("{e:#}")))
            .and_then(|b| {
                serde_json::from_slice(&b).map_err(|e| {
                    ctx.error(
                        "index",
                        format!("{} is not a sluice index: {e}", path.display()),
                    )
                })
            })?;
        if (IndexMeta {
            tasks: 0,
            ..theirs.clone()
        }) != meta
        {
            return Err(ctx.error(
                "index",
                format!(
                    "the index {} was made with other settings ({theirs:?}) than this step ({meta:?}); \
                     use the same bands, rows, seed, ngram, shingle and verify_jaccard",
                    dir.display()
                ),
            ));
        }
        let mut files: Vec<PathBuf> = store::list_files(&dir.join("parts"))
            .map_err(|e| ctx.error("index", format!("{e:#}")))?
            .into_iter()
            .filter(|p| p.extension().is_some_and(|x| x == "part"))
            .filter(|p| {
                p.file_stem()
                    .and_then(|s| s.to_str())
                    .and_then(|s| s.parse::<usize>().ok())
                    .is_some_and(|t| t < theirs.tasks)
            })
            .collect();
        files.sort();
        if files.len() != theirs.tasks {
            return Err(ctx.error(
                "index",
                format!(
                    "the index {} is incomplete: {} of its {} task files are there (was its run finished?)",
                    dir.display(),
                    files.len(),
                    theirs.tasks
                ),
            ));
        }
        index_tasks.extend(files.into_iter().map(|parts| {
            let stem = parts.file_stem().unwrap_or_default().to_owned();
            let file = |sub: &str| dir.join(sub).join(&stem).with_extension("bin");
            IndexTask {
                ids: file("ids"),
                shingles: file("shingles"),
                parts,
            }
        }));
    }
    eprintln!(
        "[sluice] {}: {bands} bands × {rows} rows for Jaccard {}: a pair at {:.2} becomes a candidate with \
         probability {:.3}, at {:.2} with {:.3}, at {:.2} with {:.3}{}",
        ctx.step.label(),
        config.threshold,
        (config.threshold - 0.1).max(0.0),
        candidate_probability((config.threshold - 0.1).max(0.0), bands, rows),
        config.threshold,
        candidate_probability(config.threshold, bands, rows),
        (config.threshold + 0.1).min(1.0),
        candidate_probability((config.threshold + 0.1).min(1.0), bands, rows),
        if config.verify_jaccard { "; candidates are verified" } else { "" }
    );
    Ok(Op::Global(Arc::new(DedupMinhash {
        config,
        bands,
        rows,
        seeds,
        meta,
        index_tasks,
    })))
}

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A strong 64-bit mixer (murmur3's finaliser), for the hash functions' constants.
fn mix(x: u64) -> u64 {
    let mut z = x;
    z = (z ^ (z >> 33)).wrapping_mul(0xff51_afd7_ed55_8ccd);
    z = (z ^ (z >> 33)).wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    z ^ (z >> 33)
}

/// Shingle hashes of a text, as the near-duplicate ground truth defines them:
/// words: lowercased, characters other than letters, digits and whitespace
/// made spaces, split on whitespace, n-grams of words; chars: letters and
/// digits only, n-grams of characters. Fewer tokens than `n` make one
/// shingle of them all; no token, no shingle. An n-gram is hashed from its
/// tokens' hashes: the same sets as hashing the joined strings, without
/// building them.
pub fn shingles(text: &str, n: usize, chars: bool) -> Vec<u64> {
    let mut tokens: Vec<u64> = vec![];
    if chars {
        for c in text.chars().filter(|c| c.is_alphanumeric()) {
            for l in c.to_lowercase() {
                tokens.push(l as u64);
            }
        }
    } else {
        let mut word = String::new();
        let flush = |word: &mut String, tokens: &mut Vec<u64>| {
            if !word.is_empty() {
                tokens.push(xxh3_64(word.as_bytes()));
                word.clear();
            }
        };
        for c in text.chars() {
            if c.is_ascii_alphanumeric() {
                word.push(c.to_ascii_lowercase());
            } else if !c.is_ascii() && c.is_alphanumeric() {
                word.extend(c.to_lowercase());
            } else {
                // Whitespace and everything else (punctuation) separate words.
                flush(&mut word, &mut tokens);
            }
        }
        flush(&mut word, &mut tokens);
    }
    let gram = |t: &[u64]| {
        let bytes: Vec<u8> = t.iter().flat_map(|x| x.to_le_bytes()).collect();
        xxh3_64(&bytes)
    };
    let mut out: Vec<u64> = if tokens.len() < n {
        if tokens.is_empty() {
            vec![]
        } else {
            vec![gram(&tokens)]
        }
    } else {
        tokens.windows(n).map(gram).collect()
    };
    out.sort_unstable();
    out.dedup();
    out
}

/// Jaccard similarity of two sorted, deduplicated hash lists.
pub fn jaccard(a: &[u64], b: &[u64]) -> f64 {
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    let (mut i, mut j, mut common) = (0, 0, 0usize);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                common += 1;
                i += 1;
                j += 1;
            }
        }
    }
    common as f64 / (a.len() + b.len() - common) as f64
}

/// A document's place in the corpus: task and row, in input order.
fn global(task: usize, row: u64) -> u64 {
    ((task as u64) << 40) | row
}
fn task_of(g: u64) -> usize {
    (g >> 40) as usize
}
fn row_of(g: u64) -> u64 {
    g & ((1 << 40) - 1)
}

impl DedupMinhash {
    fn per_band(&self, ctx: &GlobalCtx) -> usize {
        self.config
            .partitions_per_band
            .unwrap_or_else(|| ((ctx.input_bytes >> 30) as usize).clamp(1, 256))
    }
    /// Tasks of the buckets phase, and of the clusters phase.
    fn partitions(&self, ctx: &GlobalCtx) -> usize {
        self.bands * self.per_band(ctx)
    }
    fn budget(&self, ctx: &GlobalCtx) -> u64 {
        ctx.task_budget(self.config.memory_budget.0)
    }
    fn observe_file(ctx: &GlobalCtx, task: usize) -> PathBuf {
        ctx.work.join("observe").join(format!("{task:05}.part"))
    }
    fn shingle_file(ctx: &GlobalCtx, task: usize) -> PathBuf {
        ctx.work.join("shingles").join(format!("{task:05}.bin"))
    }
    fn id_file(ctx: &GlobalCtx, task: usize) -> PathBuf {
        ctx.work.join("ids").join(format!("{task:05}.bin"))
    }
    fn edge_file(ctx: &GlobalCtx, partition: usize) -> PathBuf {
        ctx.work
            .join("buckets")
            .join(format!("{partition:05}.part"))
    }
    fn component_file(ctx: &GlobalCtx) -> PathBuf {
        ctx.work.join("components").join("members.part")
    }
    fn decision_file(ctx: &GlobalCtx, partition: usize) -> PathBuf {
        ctx.work
            .join("clusters")
            .join(format!("{partition:05}.part"))
    }
    fn sort_dir(ctx: &GlobalCtx, phase: &str, index: usize) -> PathBuf {
        ctx.work.join("sort").join(format!("{phase}-{index:05}"))
    }
    /// Shingles of this run's tasks, then of the index's.
    fn shingle_store(&self, ctx: &GlobalCtx) -> RowStore {
        RowStore::new(
            (0..ctx.tasks)
                .map(|t| Self::shingle_file(ctx, t))
                .chain(self.index_tasks.iter().map(|t| t.shingles.clone()))
                .collect(),
        )
    }
    fn id_store(&self, ctx: &GlobalCtx) -> RowStore {
        RowStore::new(
            (0..ctx.tasks)
                .map(|t| Self::id_file(ctx, t))
                .chain(self.index_tasks.iter().map(|t| t.ids.clone()))
                .collect(),
        )
    }
}

/// The MinHash signature: per hash function, the least hash of any shingle.
/// Shingle hashes are xxh3 outputs (uniform), so each function can be an
/// affine map x·a + b mod 2^64 with a random odd `a` (seed | 1) and b = the
/// mixed seed: one multiply-add per function, which the compiler vectorises.
fn signature(seeds: &[u64], shingles: &[u64]) -> Vec<u64> {
    let mults: Vec<u64> = seeds.iter().map(|s| s | 1).collect();
    let adds: Vec<u64> = seeds.iter().map(|s| mix(*s)).collect();
    let mut sig = vec![u64::MAX; seeds.len()];
    for &s in shingles {
        for ((slot, a), b) in sig.iter_mut().zip(&mults).zip(&adds) {
            *slot = (*slot).min(s.wrapping_mul(*a).wrapping_add(*b));
        }
    }
    sig
}

struct MinhashObserver {
    op: Arc<DedupMinhashView>,
    /// Band keys: `(key, row, score)` per band, in the band's partition.
    out: PartWriter,
    /// Every row's id, read back only for kept documents that others
    /// duplicate, so ids never travel through the sort.
    ids: RowStoreWriter,
    /// Every row's shingle hashes, when verifying.
    shingles: Option<RowStoreWriter>,
}

/// What an observer needs of the op (cheap to share).
struct DedupMinhashView {
    seeds: Vec<u64>,
    bands: usize,
    rows: usize,
    per_band: usize,
    ngram: usize,
    mode: ShingleMode,
    lang_column: String,
    keep: Option<String>,
}

impl Observer for MinhashObserver {
    fn observe(&mut self, batch: &DocBatch, first_row: u64) -> Result<()> {
        let v = &self.op;
        let langs = batch
            .data
            .column_by_name(&v.lang_column)
            .and_then(|c| cast(c, &DataType::Utf8).ok())
            .and_then(|c| c.as_any().downcast_ref::<StringArray>().cloned());
        let scores = KeepScores::read(batch, v.keep.as_deref(), "dedup_minhash")?;
        let mut blob = vec![];
        for (i, (text, id)) in batch.texts().iter().zip(batch.ids().iter()).enumerate() {
            let row = first_row + i as u64;
            let chars = match v.mode {
                ShingleMode::Chars => true,
                ShingleMode::Words => false,
                ShingleMode::Auto => langs
                    .as_ref()
                    .is_some_and(|l| !l.is_null(i) && UNSPACED_LANGS.contains(&l.value(i))),
            };
            let sh = shingles(text.unwrap_or(""), v.ngram, chars);
            self.ids.push(id.unwrap_or("").as_bytes())?;
            if let Some(store) = &mut self.shingles {
                blob.clear();
                blob.extend(sh.iter().flat_map(|s| s.to_le_bytes()));
                store.push(&blob)?;
            }
            if sh.is_empty() {
                continue; // nothing to compare: never a duplicate
            }
            let score = scores.get(i);
            let sig = signature(&v.seeds, &sh);
            for band in 0..v.bands {
                let bytes: Vec<u8> = sig[band * v.rows..(band + 1) * v.rows]
                    .iter()
                    .flat_map(|x| x.to_le_bytes())
                    .collect();
                let key = xxh3_64_with_seed(&bytes, band as u64);
                let p = band * v.per_band + (key % v.per_band as u64) as usize;
                let buf = self.out.part(p);
                put_u64(buf, key);
                put_u64(buf, row);
                put_u64(buf, score.to_bits());
            }
        }
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<()> {
        if let Some(s) = self.shingles {
            s.finish()?;
        }
        self.ids.finish()?;
        self.out.finish()
    }
}

impl GlobalOp for DedupMinhash {
    fn reports_group_sizes(&self) -> bool {
        true
    }

    fn check_input(
        &self,
        schema: &arrow::datatypes::SchemaRef,
    ) -> Result<Option<arrow::datatypes::SchemaRef>> {
        let keep = &self.config.keep;
        super::dup::check_keep(schema, (keep != "first").then_some(keep), "dedup_minhash")?;
        Ok(Some(super::dup::with_dup_fields(schema)))
    }

    fn phases(&self, ctx: &GlobalCtx) -> Vec<PhaseSpec> {
        vec![
            PhaseSpec {
                name: "buckets".into(),
                tasks: self.partitions(ctx),
            },
            PhaseSpec {
                name: "components".into(),
                tasks: 1,
            },
            PhaseSpec {
                name: "clusters".into(),
                tasks: self.partitions(ctx),
            },
        ]
    }

    fn observer(&self, ctx: &GlobalCtx, task: usize) -> Result<Box<dyn Observer>> {
        let view = DedupMinhashView {
            seeds: self.seeds.clone(),
            bands: self.bands,
            rows: self.rows,
            per_band: self.per_band(ctx),
            ngram: self.config.ngram,
            mode: self.config.shingle,
            lang_column: self.config.lang_column.clone(),
            keep: (self.config.keep != "first").then(|| self.config.keep.clone()),
        };
        Ok(Box::new(MinhashObserver {
            out: PartWriter::with_spill(
                &Self::observe_file(ctx, task),
                self.partitions(ctx),
                (self.budget(ctx) / 2) as usize,
            ),
            op: Arc::new(view),
            ids: RowStoreWriter::create(&Self::id_file(ctx, task))?,
            shingles: if self.config.verify_jaccard {
                Some(RowStoreWriter::create(&Self::shingle_file(ctx, task))?)
            } else {
                None
            },
        }))
    }

    fn run_phase(&self, ctx: &GlobalCtx, phase: usize, index: usize) -> Result<()> {
        match phase {
            0 => self.buckets(ctx, index),
            1 => self.components(ctx),
            _ => self.clusters(ctx, index),
        }
    }

    fn filter(&self, ctx: &GlobalCtx, task: usize) -> Result<Box<dyn RowFilter>> {
        let paths = (0..self.partitions(ctx)).map(|p| Self::decision_file(ctx, p));
        let decisions = read_decisions(paths, task)?;
        if let Some(dir) = &self.config.save_index {
            self.save_index(ctx, task, dir, &decisions)?;
        }
        // A row in no component is its own cluster of one.
        Ok(Box::new(DecisionFilter::new(
            "dedup_minhash",
            decisions,
            Some(Box::new(move |row| global(task, row))),
        )))
    }
}

/// A document in the components phase: its place, its keep score.
#[derive(Clone, Copy)]
struct Doc {
    g: u64,
    score: u64,
}

impl DedupMinhash {
    /// Writes the kept documents of one task as index entries: their band
    /// keys (one partition per band), their ids and, when verifying, their
    /// shingles.
    fn save_index(
        &self,
        ctx: &GlobalCtx,
        task: usize,
        dir: &Path,
        decisions: &[Decision],
    ) -> Result<()> {
        let removed: std::collections::HashSet<u64> = decisions
            .iter()
            .filter(|d| d.kept.is_some())
            .map(|d| d.row)
            .collect();
        let per_band = self.per_band(ctx);
        let mut out = PartWriter::with_spill(
            &dir.join("parts").join(format!("{task:05}.part")),
            self.bands,
            (self.budget(ctx) / 2) as usize,
        );
        for p in 0..self.partitions(ctx) {
            let path = Self::observe_file(ctx, task);
            for r in records::<3>(&read_part(&path, p)?, &path)? {
                if !removed.contains(&r[1]) {
                    put_record(out.part(p / per_band), &r);
                }
            }
        }
        out.finish()?;
        let copy = |from: PathBuf, sub: &str| -> Result<()> {
            store::copy(&from, &dir.join(sub).join(format!("{task:05}.bin")))
        };
        copy(Self::id_file(ctx, task), "ids")?;
        if self.config.verify_jaccard {
            copy(Self::shingle_file(ctx, task), "shingles")?;
        }
        Ok(())
    }

    /// Phase 1, per (band, key range): documents sharing a key are
    /// candidates; edges join them. The keys are sorted externally, so a
    /// partition larger than the memory budget spills to sorted runs.
    fn buckets(&self, ctx: &GlobalCtx, partition: usize) -> Result<()> {
        let budget = self.budget(ctx);
        let mut sorter =
            ExternalSorter::<3>::new(&Self::sort_dir(ctx, "buckets", partition), budget / 2)?;
        for t in 0..ctx.tasks {
            let path = Self::observe_file(ctx, t);
            for [key, row, score] in records::<3>(&read_part(&path, partition)?, &path)? {
                sorter.push([key, global(t, row), score])?;
            }
        }
        // Earlier runs' documents of this band and key range, as tasks
        // numbered after this run's.
        let per_band = self.per_band(ctx);
        let (band, range) = (partition / per_band, (partition % per_band) as u64);
        for (i, old) in self.index_tasks.iter().enumerate() {
            for [key, row, score] in records::<3>(&read_part(&old.parts, band)?, &old.parts)? {
                if key % per_band as u64 == range {
                    sorter.push([key, global(ctx.tasks + i, row), score])?;
                }
            }
        }
        let mut store = self.shingle_store(ctx);
        let mut out =
            PartWriter::with_spill(&Self::edge_file(ctx, partition), 1, (budget / 8) as usize);
        let mut group: Vec<[u64; 3]> = vec![];
        let mut sorted = sorter.finish()?.peekable();
        while let Some(r) = sorted.next() {
            let r = r?;
            group.push(r);
            if let Some(Ok(next)) = sorted.peek() {
                if next[0] == r[0] {
                    continue;
                }
            }
            if group.len() > 1 {
                self.bucket_edges(&group, &mut store, &mut out)?;
            }
            group.clear();
        }
        out.finish()
    }

    /// Edges of one bucket (documents sharing a band key), as
    /// `(g, score, g, score)`.
    fn bucket_edges(
        &self,
        group: &[[u64; 3]],
        store: &mut RowStore,
        out: &mut PartWriter,
    ) -> Result<()> {
        if !self.config.verify_jaccard {
            // Unverified candidates: a star around the group's first.
            for e in &group[1..] {
                put_record(out.part(0), &[group[0][1], group[0][2], e[1], e[2]]);
            }
            return Ok(());
        }
        // Each member is joined to the most recent of the 64 before it that
        // it really resembles: enough to connect the component; the clusters
        // phase then decides on true similarity to the documents it keeps.
        // Only the window's shingles are held.
        let mut window: std::collections::VecDeque<(&[u64; 3], Vec<u64>)> = Default::default();
        for b in group {
            let sb = store.get_u64s(task_of(b[1]), row_of(b[1]))?;
            if let Some((a, _)) = window
                .iter()
                .rev()
                .find(|(_, sa)| jaccard(sa, &sb) >= self.config.threshold)
            {
                put_record(out.part(0), &[a[1], a[2], b[1], b[2]]);
            }
            window.push_back((b, sb));
            if window.len() > 64 {
                window.pop_front();
            }
        }
        Ok(())
    }

    /// Phase 2, one task: union-find over every edge. Holds only the
    /// documents that have an edge (about 40 bytes each), never the corpus;
    /// writes each component's members to the clusters partition of its root.
    fn components(&self, ctx: &GlobalCtx) -> Result<()> {
        let mut index: HashMap<u64, u32> = HashMap::new();
        let mut docs: Vec<Doc> = vec![];
        let mut parent: Vec<u32> = vec![];
        fn find(parent: &mut [u32], mut x: u32) -> u32 {
            while parent[x as usize] != x {
                parent[x as usize] = parent[parent[x as usize] as usize];
                x = parent[x as usize];
            }
            x
        }
        for p in 0..self.partitions(ctx) {
            let path = Self::edge_file(ctx, p);
            for [ga, sa, gb, sb] in records::<4>(&read_part(&path, 0)?, &path)? {
                let mut ends = [0u32; 2];
                for (end, (g, score)) in ends.iter_mut().zip([(ga, sa), (gb, sb)]) {
                    *end = *index.entry(g).or_insert_with(|| {
                        docs.push(Doc { g, score });
                        parent.push(parent.len() as u32);
                        parent.len() as u32 - 1
                    });
                }
                let (ra, rb) = (find(&mut parent, ends[0]), find(&mut parent, ends[1]));
                if ra != rb {
                    // The root is the earlier document: components get stable ids.
                    let (lo, hi) = if docs[ra as usize].g < docs[rb as usize].g {
                        (ra, rb)
                    } else {
                        (rb, ra)
                    };
                    parent[hi as usize] = lo;
                }
            }
        }
        drop(index);
        let partitions = self.partitions(ctx);
        let mut out = PartWriter::with_spill(
            &Self::component_file(ctx),
            partitions,
            (self.budget(ctx) / 8) as usize,
        );
        for i in 0..docs.len() {
            let root = docs[find(&mut parent, i as u32) as usize].g;
            let p = (mix(root) % partitions as u64) as usize;
            put_record(out.part(p), &[root, docs[i].g, docs[i].score]);
        }
        if let Some(dir) = &self.config.save_index {
            // Written once, here; each filter task then writes its part. A
            // reader checks that all `tasks` parts are there.
            let meta = IndexMeta {
                tasks: ctx.tasks,
                ..self.meta.clone()
            };
            write_atomic(&dir.join("meta.json"), &serde_json::to_vec_pretty(&meta)?)?;
        }
        out.finish()
    }

    /// Phase 3, per partition of components: which members go. Components
    /// are independent, so the greedy verification spreads over tasks.
    fn clusters(&self, ctx: &GlobalCtx, partition: usize) -> Result<()> {
        let path = Self::component_file(ctx);
        let mut sorter = ExternalSorter::<3>::new(
            &Self::sort_dir(ctx, "clusters", partition),
            self.budget(ctx) / 4,
        )?;
        for r in records::<3>(&read_part(&path, partition)?, &path)? {
            sorter.push(r)?;
        }
        let mut shingles = self.shingle_store(ctx);
        let mut ids = self.id_store(ctx);
        let mut out = PartWriter::with_spill(
            &Self::decision_file(ctx, partition),
            ctx.tasks,
            (self.budget(ctx) / 4) as usize,
        );
        let mut members: Vec<Doc> = vec![];
        let mut sorted = sorter.finish()?.peekable();
        while let Some(r) = sorted.next() {
            let [root, g, score] = r?;
            members.push(Doc { g, score });
            if let Some(Ok(next)) = sorted.peek() {
                if next[0] == root {
                    continue;
                }
            }
            self.decide(ctx, root, &mut members, &mut shingles, &mut ids, &mut out)?;
            members.clear();
        }
        out.finish()
    }

    /// Keeps and removes the members of one component (`root` = its first
    /// document, its id).
    fn decide(
        &self,
        ctx: &GlobalCtx,
        root: u64,
        members: &mut [Doc],
        shingles: &mut RowStore,
        ids: &mut RowStore,
        out: &mut PartWriter,
    ) -> Result<()> {
        // Keep order: documents of earlier runs first (kept already), then
        // the largest score, then input order.
        let old = |d: &Doc| task_of(d.g) >= ctx.tasks;
        members.sort_by(|a, b| {
            old(b)
                .cmp(&old(a))
                .then(f64::from_bits(b.score).total_cmp(&f64::from_bits(a.score)))
                .then(a.g.cmp(&b.g))
        });
        let verify = self.config.verify_jaccard;
        // With verification a document goes only when it is within the
        // threshold of a document already kept (checked on the shingles, not
        // on the bucket edges, which only say who is connected), so every
        // removal names a kept document it really resembles. Without it, one
        // document per component stays, as in datatrove.
        let mut kept: Vec<(u64, Vec<u64>, Option<String>)> = vec![];
        for m in members.iter() {
            let sh = if verify {
                shingles.get_u64s(task_of(m.g), row_of(m.g))?
            } else {
                vec![]
            };
            if old(m) {
                kept.push((m.g, sh, None));
                continue; // not this run's to write
            }
            let partner = if verify {
                kept.iter()
                    .position(|(_, k, _)| jaccard(&sh, k) >= self.config.threshold)
            } else {
                (!kept.is_empty()).then_some(0)
            };
            let kept_id = match partner {
                Some(i) => {
                    let (g, _, id) = &mut kept[i];
                    if id.is_none() {
                        *id = Some(ids.get_str(task_of(*g), row_of(*g))?);
                    }
                    id.clone()
                }
                None => {
                    kept.push((m.g, sh, None));
                    None
                }
            };
            put_decision(
                out.part(task_of(m.g)),
                row_of(m.g),
                root,
                members.len() as u64,
                kept_id.as_deref(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shingles_follow_the_ground_truth_definition() {
        let a = shingles("The quick, brown fox jumps over the lazy dog", 5, false);
        let b = shingles("the QUICK brown fox -- jumps over the lazy dog!", 5, false);
        assert_eq!(a, b);
        assert_eq!(a.len(), 5);
        assert_eq!(shingles("short text", 5, false).len(), 1);
        assert_eq!(shingles("人民日报社论，今天", 5, true).len(), 4);
        assert!((jaccard(&[1, 2, 3], &[2, 3, 4]) - 0.5).abs() < 1e-12);
    }

    #[test]
    fn derived_bands_rows_put_the_threshold_on_the_s_curve() {
        let (b, r) = derive_bands_rows(0.8, 112, false);
        assert!(b * r <= 112);
        assert!(candidate_probability(0.9, b, r) > 0.9, "{b}x{r}");
        assert!(candidate_probability(0.5, b, r) < 0.05, "{b}x{r}");
        let (b, r) = derive_bands_rows(0.8, 112, true);
        assert!(candidate_probability(0.8, b, r) >= 0.95, "{b}x{r}");
        assert!(candidate_probability(0.5, b, r) < 0.3, "{b}x{r}");
    }

    #[test]
    fn signatures_estimate_jaccard() {
        let seeds: Vec<u64> = (0..256u64).map(|i| splitmix(&mut (i + 7))).collect();
        let a: Vec<u64> = (0..400).collect();
        let b: Vec<u64> = (100..500).collect(); // Jaccard 300/500 = 0.6
        let (sa, sb) = (signature(&seeds, &a), signature(&seeds, &b));
        let same = sa.iter().zip(&sb).filter(|(x, y)| x == y).count() as f64 / sa.len() as f64;
        assert!((same - 0.6).abs() < 0.1, "estimated {same}");
    }
}
