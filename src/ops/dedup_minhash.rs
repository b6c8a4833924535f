//! `dedup_minhash`: near-duplicate removal with MinHash LSH, as a global op:
//!
//! 1. observe (per input task): shingles of each document (word n-grams, or
//!    character n-grams for Chinese and Japanese), a MinHash signature of
//!    `bands × rows` 64-bit values, one key per band written to a partition
//!    per (band, key range); with `verify_jaccard`, the document's shingle
//!    hashes too, in a per-task file indexed by row;
//! 2. buckets (per partition): entries sorted by (key, task, row); documents
//!    sharing a band key are candidates, joined by an edge (after checking
//!    their true Jaccard when verifying);
//! 3. clusters (one task): union-find over the edges gives the components
//!    (`dup_cluster`, `dup_count`); within one, documents are taken in keep
//!    order (first in input order, or largest value of a column) and a
//!    document is removed when it has an edge to one already kept, so with
//!    verification every removed document is within the threshold of the
//!    kept document named in its `drop_detail`;
//! 4. filter (per input task): the decisions applied to every row.
//!
//! Memory: a task holds one partition of band keys, or the duplicates' edges
//! (union-find), never the corpus.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use arrow::array::{Array, StringArray};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use serde::Deserialize;
use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};

use super::dup::{with_dup_columns, KeepScores};
use super::{
    BuildCtx, DocBatch, DropMark, GlobalCtx, GlobalOp, Observer, Op, OpInfo, OpOutput, ParamDoc,
    PhaseSpec, RowFilter,
};
use crate::io::partfile::{put_str, put_u64, read_part, Cursor, PartWriter};
use crate::io::writer::write_atomic;
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
}

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
    ],
    drop_reasons: &["dedup_minhash"],
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
    index_tasks: Vec<(PathBuf, PathBuf)>,
}

fn build(ctx: &BuildCtx) -> Result<Op, SpecError> {
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
    };
    let mut index_tasks = vec![];
    for dir in &config.index {
        let path = dir.join("meta.json");
        let theirs: IndexMeta = std::fs::read(&path)
            .map_err(|e| ctx.error("index", format!("cannot read {}: {e}", path.display())))
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
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("parts"))
            .map_err(|e| {
                ctx.error(
                    "index",
                    format!("cannot list {}: {e}", dir.join("parts").display()),
                )
            })?
            .filter_map(|e| e.ok().map(|e| e.path()))
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
        index_tasks.extend(files.into_iter().map(|f| {
            let shingles = dir
                .join("shingles")
                .join(f.file_stem().unwrap_or_default())
                .with_extension("bin");
            (f, shingles)
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
    fn observe_file(ctx: &GlobalCtx, task: usize) -> PathBuf {
        ctx.work.join("observe").join(format!("{task:05}.part"))
    }
    fn shingle_file(ctx: &GlobalCtx, task: usize) -> PathBuf {
        ctx.work.join("shingles").join(format!("{task:05}.bin"))
    }
    fn edge_file(ctx: &GlobalCtx, partition: usize) -> PathBuf {
        ctx.work
            .join("buckets")
            .join(format!("{partition:05}.part"))
    }
    fn decision_file(ctx: &GlobalCtx) -> PathBuf {
        ctx.work.join("clusters").join("decisions.part")
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
    out: PartWriter,
    /// Shingle hashes go straight to a temporary file; only the row index
    /// (one offset per row) stays in memory.
    shingle_out: Option<std::io::BufWriter<File>>,
    shingle_written: u64,
    shingle_index: Vec<u64>,
    shingle_path: PathBuf,
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
    verify: bool,
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
            if v.verify {
                let out = self.shingle_out.as_mut().expect("opened when verifying");
                for s in &sh {
                    std::io::Write::write_all(out, &s.to_le_bytes())?;
                }
                self.shingle_written += 8 * sh.len() as u64;
                self.shingle_index.push(self.shingle_written);
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
                put_str(buf, id.unwrap_or(""));
            }
        }
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<()> {
        if let Some(mut out) = self.shingle_out {
            // Shingle hashes of every row, then the row index, then the row count.
            for off in &self.shingle_index {
                std::io::Write::write_all(&mut out, &off.to_le_bytes())?;
            }
            std::io::Write::write_all(&mut out, &(self.shingle_index.len() as u64).to_le_bytes())?;
            let file = out.into_inner().map_err(|e| e.into_error())?;
            file.sync_all()?;
            std::fs::rename(shingle_tmp(&self.shingle_path), &self.shingle_path)
                .with_context(|| format!("renaming to {}", self.shingle_path.display()))?;
        }
        self.out.finish()
    }
}

fn shingle_tmp(path: &std::path::Path) -> PathBuf {
    path.with_extension("bin.tmp")
}

/// Random access to the shingle hashes of any document, for verification.
struct ShingleStore {
    dir: Vec<PathBuf>,
    open: HashMap<usize, (File, Vec<u64>)>,
}

impl ShingleStore {
    fn get(&mut self, task: usize, row: u64) -> Result<Vec<u64>> {
        if !self.open.contains_key(&task) {
            let path = &self.dir[task];
            let mut f =
                File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
            let size = f.metadata()?.len();
            let corrupt = || {
                anyhow::anyhow!(
                    "intermediate file {} is corrupt; rerun with --force",
                    path.display()
                )
            };
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
            let mut ends: Vec<u64> = index
                .chunks_exact(8)
                .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
                .collect();
            ends.insert(0, 0);
            if self.open.len() > 64 {
                self.open.clear();
            }
            self.open.insert(task, (f, ends));
        }
        let (f, ends) = self.open.get_mut(&task).expect("just opened");
        let (start, end) = match (ends.get(row as usize), ends.get(row as usize + 1)) {
            (Some(&s), Some(&e)) if s <= e => (s, e),
            _ => bail!("no shingles for row {row} of task {task}; rerun with --force"),
        };
        let mut buf = vec![0u8; (end - start) as usize];
        f.seek(SeekFrom::Start(start))?;
        f.read_exact(&mut buf)?;
        Ok(buf
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
            .collect())
    }
}

/// A document in a bucket or an edge.
#[derive(Clone)]
struct Member<'a> {
    g: u64,
    score: f64,
    id: &'a str,
}

fn put_member(buf: &mut Vec<u8>, m: &Member) {
    put_u64(buf, m.g);
    put_u64(buf, m.score.to_bits());
    put_str(buf, m.id);
}

impl GlobalOp for DedupMinhash {
    fn phases(&self, ctx: &GlobalCtx) -> Vec<PhaseSpec> {
        vec![
            PhaseSpec {
                name: "buckets".into(),
                tasks: self.bands * self.per_band(ctx),
            },
            PhaseSpec {
                name: "clusters".into(),
                tasks: 1,
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
            verify: self.config.verify_jaccard,
        };
        Ok(Box::new(MinhashObserver {
            out: PartWriter::new(&Self::observe_file(ctx, task), self.bands * view.per_band),
            op: Arc::new(view),
            shingle_out: if self.config.verify_jaccard {
                let path = Self::shingle_file(ctx, task);
                std::fs::create_dir_all(path.parent().expect("in the work folder"))?;
                let file = File::create(shingle_tmp(&path))
                    .with_context(|| format!("cannot create {}", shingle_tmp(&path).display()))?;
                Some(std::io::BufWriter::with_capacity(1 << 20, file))
            } else {
                None
            },
            shingle_written: 0,
            shingle_index: vec![],
            shingle_path: Self::shingle_file(ctx, task),
        }))
    }

    fn run_phase(&self, ctx: &GlobalCtx, phase: usize, index: usize) -> Result<()> {
        match phase {
            0 => self.buckets(ctx, index),
            _ => self.clusters(ctx),
        }
    }

    fn filter(&self, ctx: &GlobalCtx, task: usize) -> Result<Box<dyn RowFilter>> {
        let path = Self::decision_file(ctx);
        let slice = read_part(&path, task)?;
        let corrupt = || format!("intermediate file {} is corrupt", path.display());
        let mut c = Cursor::new(&slice);
        let mut decisions = vec![];
        while !c.done() {
            let row = c.u64().with_context(corrupt)?;
            let cluster = c.u64().with_context(corrupt)?;
            let count = c.u64().with_context(corrupt)? as u32;
            let duplicate = c.u64().with_context(corrupt)? == 1;
            let kept = c.str().with_context(corrupt)?.to_string();
            decisions.push((row, cluster, count, duplicate.then_some(kept)));
        }
        decisions.sort_unstable_by_key(|d| d.0);
        if let Some(dir) = &self.config.save_index {
            self.save_index(ctx, task, dir, &decisions)?;
        }
        Ok(Box::new(ComponentFilter {
            task,
            decisions,
            next: 0,
        }))
    }
}

impl DedupMinhash {
    /// Writes the kept documents of one task as index entries: their band
    /// keys (one partition per band) and, when verifying, their shingles.
    fn save_index(
        &self,
        ctx: &GlobalCtx,
        task: usize,
        dir: &std::path::Path,
        decisions: &[Decision],
    ) -> Result<()> {
        let removed: std::collections::HashSet<u64> = decisions
            .iter()
            .filter(|d| d.3.is_some())
            .map(|d| d.0)
            .collect();
        let per_band = self.per_band(ctx);
        let mut out = PartWriter::new(
            &dir.join("parts").join(format!("{task:05}.part")),
            self.bands,
        );
        for p in 0..self.bands * per_band {
            let slice = read_part(&Self::observe_file(ctx, task), p)?;
            let mut c = Cursor::new(&slice);
            while !c.done() {
                let (key, row, score, id) = (c.u64()?, c.u64()?, c.u64()?, c.str()?);
                if !removed.contains(&row) {
                    let buf = out.part(p / per_band);
                    put_u64(buf, key);
                    put_u64(buf, row);
                    put_u64(buf, score);
                    put_str(buf, id);
                }
            }
        }
        out.finish()?;
        if self.config.verify_jaccard {
            let bytes = std::fs::read(Self::shingle_file(ctx, task))?;
            write_atomic(&dir.join("shingles").join(format!("{task:05}.bin")), &bytes)?;
        }
        Ok(())
    }

    fn buckets(&self, ctx: &GlobalCtx, partition: usize) -> Result<()> {
        let slices: Vec<Vec<u8>> = (0..ctx.tasks)
            .map(|t| read_part(&Self::observe_file(ctx, t), partition))
            .collect::<Result<_>>()?;
        let mut entries: Vec<(u64, Member)> = vec![];
        for (t, slice) in slices.iter().enumerate() {
            let corrupt = || {
                format!(
                    "intermediate file {} is corrupt",
                    Self::observe_file(ctx, t).display()
                )
            };
            let mut c = Cursor::new(slice);
            while !c.done() {
                let key = c.u64().with_context(corrupt)?;
                let row = c.u64().with_context(corrupt)?;
                let score = f64::from_bits(c.u64().with_context(corrupt)?);
                let id = c.str().with_context(corrupt)?;
                entries.push((
                    key,
                    Member {
                        g: global(t, row),
                        score,
                        id,
                    },
                ));
            }
        }
        // Earlier runs' documents of this band and key range, as tasks
        // numbered after this run's.
        let per_band = self.per_band(ctx);
        let (band, range) = (partition / per_band, (partition % per_band) as u64);
        let old_slices: Vec<Vec<u8>> = self
            .index_tasks
            .iter()
            .map(|(parts, _)| read_part(parts, band))
            .collect::<Result<_>>()?;
        for (i, slice) in old_slices.iter().enumerate() {
            let corrupt = || format!("index file {} is corrupt", self.index_tasks[i].0.display());
            let mut c = Cursor::new(slice);
            while !c.done() {
                let key = c.u64().with_context(corrupt)?;
                let row = c.u64().with_context(corrupt)?;
                let score = f64::from_bits(c.u64().with_context(corrupt)?);
                let id = c.str().with_context(corrupt)?;
                if key % per_band as u64 == range {
                    entries.push((
                        key,
                        Member {
                            g: global(ctx.tasks + i, row),
                            score,
                            id,
                        },
                    ));
                }
            }
        }
        entries.sort_unstable_by_key(|e| (e.0, e.1.g));
        let mut store = ShingleStore {
            dir: (0..ctx.tasks)
                .map(|t| Self::shingle_file(ctx, t))
                .chain(self.index_tasks.iter().map(|(_, s)| s.clone()))
                .collect(),
            open: HashMap::new(),
        };
        let mut out = PartWriter::new(&Self::edge_file(ctx, partition), 1);
        for group in entries.chunk_by(|a, b| a.0 == b.0) {
            if group.len() < 2 {
                continue;
            }
            if !self.config.verify_jaccard {
                // Unverified candidates: a star around the group's first.
                for e in &group[1..] {
                    let buf = out.part(0);
                    put_member(buf, &group[0].1);
                    put_member(buf, &e.1);
                }
                continue;
            }
            // Each member is joined to the most recent of the 64 before it
            // that it really resembles: enough to connect the component;
            // the clusters phase then decides on true similarity to the
            // documents it keeps. Only the window's shingles are held.
            let mut window: std::collections::VecDeque<(&Member, Vec<u64>)> = Default::default();
            for (_, b) in group {
                let sb = store.get(task_of(b.g), row_of(b.g))?;
                if let Some((a, _)) = window
                    .iter()
                    .rev()
                    .find(|(_, sa)| jaccard(sa, &sb) >= self.config.threshold)
                {
                    let buf = out.part(0);
                    put_member(buf, a);
                    put_member(buf, b);
                }
                window.push_back((b, sb));
                if window.len() > 64 {
                    window.pop_front();
                }
            }
        }
        out.finish()
    }

    fn clusters(&self, ctx: &GlobalCtx) -> Result<()> {
        let partitions = self.bands * self.per_band(ctx);
        // Union-find over the documents that have edges.
        let mut index: HashMap<u64, usize> = HashMap::new();
        let mut docs: Vec<(u64, f64, String)> = vec![];
        let mut parent: Vec<usize> = vec![];
        fn find(parent: &mut [usize], mut x: usize) -> usize {
            while parent[x] != x {
                parent[x] = parent[parent[x]];
                x = parent[x];
            }
            x
        }
        for p in 0..partitions {
            let path = Self::edge_file(ctx, p);
            let slice = read_part(&path, 0)?;
            let corrupt = || format!("intermediate file {} is corrupt", path.display());
            let mut c = Cursor::new(&slice);
            while !c.done() {
                let mut ends = [0usize; 2];
                for end in &mut ends {
                    let g = c.u64().with_context(corrupt)?;
                    let score = f64::from_bits(c.u64().with_context(corrupt)?);
                    let id = c.str().with_context(corrupt)?;
                    *end = *index.entry(g).or_insert_with(|| {
                        docs.push((g, score, id.to_string()));
                        parent.push(parent.len());
                        parent.len() - 1
                    });
                }
                let (ra, rb) = (find(&mut parent, ends[0]), find(&mut parent, ends[1]));
                if ra != rb {
                    // The root is the earlier document: components get stable ids.
                    let (lo, hi) = if docs[ra].0 < docs[rb].0 {
                        (ra, rb)
                    } else {
                        (rb, ra)
                    };
                    parent[hi] = lo;
                }
            }
        }
        let mut components: HashMap<usize, Vec<usize>> = HashMap::new();
        for i in 0..docs.len() {
            let r = find(&mut parent, i);
            components.entry(r).or_default().push(i);
        }
        let mut out = PartWriter::new(&Self::decision_file(ctx), ctx.tasks);
        let mut roots: Vec<usize> = components.keys().copied().collect();
        roots.sort_unstable_by_key(|r| docs[*r].0);
        if let Some(dir) = &self.config.save_index {
            // Written once, here; each filter task then writes its part. A
            // reader checks that all `tasks` parts are there.
            let meta = IndexMeta {
                tasks: ctx.tasks,
                ..self.meta.clone()
            };
            write_atomic(&dir.join("meta.json"), &serde_json::to_vec_pretty(&meta)?)?;
        }
        let mut store = ShingleStore {
            dir: (0..ctx.tasks)
                .map(|t| Self::shingle_file(ctx, t))
                .chain(self.index_tasks.iter().map(|(_, s)| s.clone()))
                .collect(),
            open: HashMap::new(),
        };
        for root in roots {
            let mut members = components[&root].clone();
            // Keep order: documents of earlier runs first (kept already),
            // then the largest score, then input order.
            let old = |i: &usize| task_of(docs[*i].0) >= ctx.tasks;
            members.sort_by(|a, b| {
                old(b)
                    .cmp(&old(a))
                    .then(docs[*b].1.total_cmp(&docs[*a].1))
                    .then(docs[*a].0.cmp(&docs[*b].0))
            });
            let cluster = docs[root].0;
            // With verification a document goes only when it is within the
            // threshold of a document already kept (checked on the shingles,
            // not on the bucket edges, which only say who is connected), so
            // every removal names a kept document it really resembles.
            // Without it, one document per component stays, as in datatrove.
            let mut kept_here: Vec<(usize, Vec<u64>)> = vec![];
            for &m in &members {
                if old(&m) {
                    let sh = if self.config.verify_jaccard {
                        store.get(task_of(docs[m].0), row_of(docs[m].0))?
                    } else {
                        vec![]
                    };
                    kept_here.push((m, sh));
                    continue; // not this run's to write
                }
                let partner = if !self.config.verify_jaccard {
                    kept_here.first().map(|k| k.0)
                } else {
                    let sh = store.get(task_of(docs[m].0), row_of(docs[m].0))?;
                    let found = kept_here
                        .iter()
                        .find(|(_, k)| jaccard(&sh, k) >= self.config.threshold)
                        .map(|k| k.0);
                    if found.is_none() {
                        kept_here.push((m, sh));
                    }
                    found
                };
                if partner.is_none() && !self.config.verify_jaccard {
                    kept_here.push((m, vec![]));
                }
                let buf = out.part(task_of(docs[m].0));
                put_u64(buf, row_of(docs[m].0));
                put_u64(buf, cluster);
                put_u64(buf, members.len() as u64);
                put_u64(buf, partner.is_some() as u64);
                put_str(buf, partner.map_or("", |p| docs[p].2.as_str()));
            }
        }
        out.finish()
    }
}

/// (row, cluster, count, kept id when a duplicate).
type Decision = (u64, u64, u32, Option<String>);

struct ComponentFilter {
    task: usize,
    /// Rows in duplicate components only.
    decisions: Vec<Decision>,
    next: usize,
}

impl RowFilter for ComponentFilter {
    fn apply(&mut self, batch: DocBatch, first_row: u64) -> Result<OpOutput> {
        let n = batch.num_rows();
        let mut clusters = Vec::with_capacity(n);
        let mut counts = Vec::with_capacity(n);
        let mut drops = Vec::with_capacity(n);
        for i in 0..n {
            let row = first_row + i as u64;
            match self.decisions.get(self.next).filter(|d| d.0 == row) {
                Some((_, cluster, count, kept)) => {
                    clusters.push(*cluster);
                    counts.push(*count);
                    drops.push(kept.as_ref().map(|k| DropMark {
                        reason: "dedup_minhash".into(),
                        detail: Some(k.clone()),
                    }));
                    self.next += 1;
                }
                None => {
                    // In no component: its own cluster of one.
                    clusters.push(global(self.task, row));
                    counts.push(1);
                    drops.push(None);
                }
            }
        }
        let batch = with_dup_columns(batch, clusters, counts)?;
        Ok(OpOutput::new(batch, drops))
    }

    fn finish(&mut self, rows: u64) -> Result<()> {
        if self.next != self.decisions.len() {
            bail!(
                "dedup_minhash holds decisions for rows past this task's {rows} rows: the intermediate files \
                 do not match the shards; rerun with --force"
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
