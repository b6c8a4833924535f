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
//!
//! Files: `signature` (shingles, MinHash, the LSH maths), `phases` (the
//! observer and phases 1–4), `index` (saved indexes for later runs); this
//! file holds the config, the build and the op's wiring.

mod index;
mod phases;
mod signature;

pub use signature::{candidate_probability, derive_bands_rows, jaccard, shingles};

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Result;
use arrow::array::{Array, StringArray};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_64_with_seed;

use crate::io::partfile::{put_record, put_u64, read_part, records, PartWriter};
use crate::io::rowstore::{RowStore, RowStoreWriter};
use crate::io::sorter::ExternalSorter;
use crate::io::store;
use crate::io::writer::write_atomic;
use crate::ops::dedup::dup::{put_decision, read_decisions, Decision, DecisionFilter, KeepScores};
use crate::ops::{
    shape, BuildCtx, DocBatch, GlobalCtx, GlobalOp, Observer, Op, OpInfo, OpKind, ParamDoc,
    PhaseSpec, Phased, RowFilter,
};
use crate::pipeline::bytesize::ByteSize;
use crate::pipeline::spec::SpecError;
use crate::text::words::UNSPACED_LANGS;
use index::{IndexMeta, IndexTask, INDEX_FORMAT};
use phases::{DedupMinhashView, MinhashObserver};

/// How documents are cut into shingles.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ShingleMode {
    /// Words, or characters for languages written without spaces (by `lang`).
    #[default]
    Auto,
    Words,
    Chars,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DedupMinhashConfig {
    pub threshold: f64,
    pub ngram: usize,
    pub bands: Option<usize>,
    pub rows: Option<usize>,
    pub verify_jaccard: bool,
    pub keep: String,
    pub shingle: ShingleMode,
    pub lang_column: String,
    pub seed: u64,
    /// Key ranges per band (tasks of the buckets phase = bands × this).
    pub partitions_per_band: Option<usize>,
    /// Indexes of earlier runs (`save_index` folders): documents near one of
    /// theirs are removed; theirs are never touched.
    pub index: Vec<PathBuf>,
    /// Write this run's kept documents as an index there, for later runs.
    pub save_index: Option<PathBuf>,
    /// Memory for the op's tasks running at once on this machine, shared
    /// among the workers: past it, writers spill and sorts go external.
    pub memory_budget: ByteSize,
}

impl Default for DedupMinhashConfig {
    fn default() -> Self {
        Self {
            threshold: 0.8,
            ngram: 5,
            bands: Default::default(),
            rows: Default::default(),
            verify_jaccard: true,
            keep: "first".into(),
            shingle: Default::default(),
            lang_column: "lang".into(),
            seed: 1,
            partitions_per_band: Default::default(),
            index: Default::default(),
            save_index: Default::default(),
            memory_budget: ByteSize(2 << 30),
        }
    }
}

pub const INFO: OpInfo = OpInfo {
    name: "dedup_minhash",
    kind: OpKind::Global,
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
    config: shape::<DedupMinhashConfig>,
    example: r#"
[[step]]
op = "dedup_minhash"
threshold = 0.7
"#,
    about: r#"
Near-duplicate removal. Shingles: lowercased, punctuation made spaces, word
n-grams (`ngram`, 5), or character n-grams (letters and digits only) where
`shingle = "auto"` finds `lang` (`lang_column`) to be zh/ja/th/… (or
`"words"`, `"chars"` for every document). MinHash signatures (64-bit), LSH
bands, candidates verified against their true Jaccard, union-find
components. Bands and rows are derived from the threshold and printed at
start; give both to override.

Within a component documents are taken in keep order (`"first"`, or a
numeric column) and one is removed when its true Jaccard with a document
already kept reaches the threshold (that document's id in `drop_detail`);
without verification (`verify_jaccard = false`) one document per component
stays, as in datatrove. Every document gets `dup_cluster` and `dup_count`
(its component).

Across runs: `save_index` (a folder) keeps this run's kept documents' band
keys and shingles; `index` (`save_index` folders of earlier runs) removes a
new document within the threshold of an old one, with the old id in
`drop_detail`. The old data is not read again, and the index must have been
made with the same bands, rows, seed, ngram, shingle and verify_jaccard.

`partitions_per_band` defaults to the input's size in GB (1–256);
`memory_budget`: see [spec.md, Memory](spec.md#memory-memory_budget). The
phases: observe (per input task) → buckets (per band and key range) →
components (one task: union-find over the candidate edges) → clusters (per
partition of components: the keep decisions and their verification, spread
over all cores) → filter (per input task).
"#,
};

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
    crate::ops::dedup::dup::check_memory_budget(ctx, config.memory_budget)?;
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
    let mut rng = crate::seeded::SplitMix64(config.seed);
    let seeds = (0..bands * rows).map(|_| rng.next_u64()).collect();
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
    crate::msg::info(format!(
        "{}: {bands} bands × {rows} rows for Jaccard {}: a pair at {:.2} becomes a candidate with \
         probability {:.3}, at {:.2} with {:.3}, at {:.2} with {:.3}{}",
        ctx.step.label(),
        config.threshold,
        (config.threshold - 0.1).max(0.0),
        candidate_probability((config.threshold - 0.1).max(0.0), bands, rows),
        config.threshold,
        candidate_probability(config.threshold, bands, rows),
        (config.threshold + 0.1).min(1.0),
        candidate_probability((config.threshold + 0.1).min(1.0), bands, rows),
        if config.verify_jaccard {
            "; candidates are verified"
        } else {
            ""
        }
    ));
    Ok(Op::Global(Arc::new(DedupMinhash {
        config,
        bands,
        rows,
        seeds,
        meta,
        index_tasks,
    })))
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

impl Phased for DedupMinhash {
    fn phases(self: Arc<Self>, ctx: &GlobalCtx) -> Vec<PhaseSpec> {
        vec![
            PhaseSpec::new(&self, "buckets", self.partitions(ctx), Self::buckets),
            PhaseSpec::new(&self, "components", 1, |op, ctx, _| op.components(ctx)),
            PhaseSpec::new(&self, "clusters", self.partitions(ctx), Self::clusters),
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
        crate::ops::dedup::dup::check_keep(
            schema,
            (keep != "first").then_some(keep),
            "dedup_minhash",
        )?;
        Ok(Some(crate::ops::dedup::dup::with_dup_fields(schema)))
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
