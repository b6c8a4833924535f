//! `dedup_lines`: CCNet's paragraph deduplication. A line (or paragraph)
//! seen before anywhere in the corpus, in input order, is cut from its
//! document; a document left with nothing is dropped. A global op:
//!
//! 1. observe (per input task): each unit's xxh3-64 of its CCNet
//!    normalisation, with its position (row, unit), in its hash partition
//!    (`method = "exact"`) or in input order (`"bloom"`);
//! 2. find (per partition, exact): the partition's entries sorted by
//!    (hash, task, position), externally past the memory budget; every
//!    entry of a group but the first is a removal, written per task. Or
//!    bloom (one task): every task's units in input order through one
//!    Bloom filter; a unit already in it is a removal;
//! 3. filter (per input task): the task's removals sorted by position
//!    (externally past the budget) and applied row by row.
//!
//! The units, their normalisation and the rebuilt text are in `units`;
//! the phases in `phases`.

mod phases;
pub mod units;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::ops::{shape, BuildCtx, Op, OpInfo, OpKind, ParamDoc};
use crate::pipeline::bytesize::ByteSize;
use crate::pipeline::spec::SpecError;

/// What is deduplicated.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// Each non-blank line.
    #[default]
    Line,
    /// Each run of non-blank lines between blank lines.
    Paragraph,
}

/// Where a unit must have been seen before to be removed.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Anywhere in the corpus.
    #[default]
    Corpus,
    /// In a document of the same source (the input's `source_column`).
    Source,
}

/// How the units seen are remembered.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Hash partitions, sorted: exact up to 64-bit hash collisions.
    #[default]
    Exact,
    /// One Bloom filter of fixed size: a unit never seen is removed with
    /// the filter's false-positive rate.
    Bloom,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DedupLines {
    pub unit: Unit,
    /// Units with fewer characters (trimmed) are never removed.
    pub min_chars: usize,
    /// A document this op cut down to fewer characters is dropped.
    pub min_doc_chars: usize,
    pub scope: Scope,
    pub method: Method,
    /// The Bloom filter's rate when it is sized from the unit count.
    pub false_positive_rate: f64,
    /// A fixed Bloom filter size instead of one derived from the units.
    pub bloom_size: Option<ByteSize>,
    /// Hash partitions of the find phase; derived from the input size when absent.
    pub partitions: Option<usize>,
    /// Memory for the op's tasks running at once on this machine.
    pub memory_budget: ByteSize,
    /// Filled in at build: the input's source column (for `scope = "source"`).
    #[serde(skip)]
    source_column: String,
}

impl Default for DedupLines {
    fn default() -> Self {
        Self {
            unit: Unit::Line,
            min_chars: 0,
            min_doc_chars: 0,
            scope: Scope::Corpus,
            method: Method::Exact,
            false_positive_rate: 1e-4,
            bloom_size: None,
            partitions: None,
            memory_budget: ByteSize(2 << 30),
            source_column: String::new(),
        }
    }
}

pub const INFO: OpInfo = OpInfo {
    name: "dedup_lines",
    kind: OpKind::Global,
    summary: "CCNet's line/paragraph dedup: a line (or paragraph) whose normalised text was seen earlier \
              in the corpus, in input order, is cut from its document; a document left with nothing \
              (or under min_doc_chars) is dropped. Units and bytes removed are in stats.json.",
    params: &[
        ParamDoc { name: "unit", kind: "string", default: "\"line\"", doc: "\"line\" (each non-blank line) or \"paragraph\" (lines between blank lines)" },
        ParamDoc { name: "min_chars", kind: "integer", default: "0", doc: "units with fewer characters (trimmed) are never removed" },
        ParamDoc { name: "min_doc_chars", kind: "integer", default: "0", doc: "a document this op cut to fewer characters (trimmed) is dropped; an empty one always is" },
        ParamDoc { name: "scope", kind: "string", default: "\"corpus\"", doc: "\"corpus\", or \"source\": only units seen before in the same source (the input's source_column)" },
        ParamDoc { name: "method", kind: "string", default: "\"exact\"", doc: "\"exact\" (hash partitions, sorted) or \"bloom\" (one Bloom filter, fixed memory)" },
        ParamDoc { name: "false_positive_rate", kind: "float", default: "0.0001", doc: "bloom: the rate the filter is sized for from the number of units" },
        ParamDoc { name: "bloom_size", kind: "size", default: "derived", doc: "bloom: a fixed filter size (\"1GiB\") instead; the summary gives its estimated rate" },
        ParamDoc { name: "partitions", kind: "integer", default: "derived", doc: "exact: hash partitions (tasks of the find phase): input bytes / 256 MiB, at least 4" },
        ParamDoc { name: "memory_budget", kind: "size", default: "\"2GiB\"", doc: "memory of the op's tasks at once; past it they spill to the work folder" },
    ],
    drop_reasons: &["dedup_lines:empty"],
    outputs: &[],
    build,
    config: shape::<DedupLines>,
    example: r#"
[[step]]
op = "dedup_lines"
unit = "paragraph"
min_chars = 10
"#,
    about: r#"
The Common Crawl pipeline of CCNet (Wenzek et al. 2020), which LLaMA's web
data went through: boilerplate lines (menus, cookie banners, "Share this")
and paragraphs repeated across pages are cut, the rest of each page stays.

A unit is a non-blank line (`unit = "line"`), or a run of non-blank lines
between blank lines (`"paragraph"`); whitespace-only lines are never units.
Each is normalised as CCNet's `normalize_for_dedup`: stripped, lower-cased,
decimal digits made `0`, control characters and CCNet's list of Unicode
punctuation (full-width CJK marks, typographic quotes and dashes) removed;
ASCII punctuation and accents stay. Its xxh3-64 is the key (a false
removal needs two distinct units to collide: about n²/2⁶⁵, 0.03 for a
billion distinct units). The first occurrence in input order (file order,
then row, then position in the document) stays, every later one is cut,
in the same document too; a unit that normalises to nothing, or with
fewer than `min_chars` characters, is never cut. A cut unit takes the
separator before it (the newline, or the blank lines before a paragraph)
along; a document with nothing cut is unchanged, byte for byte.

A document left empty, or cut to fewer than `min_doc_chars` characters, is
dropped as `dedup_lines:empty` (its original text goes to `excluded/`).
The step's `counters` in `stats.json` give `units` (units seen in the
documents it received), `units_removed` and `unit_bytes_removed` (their
bytes, separators not counted).

`scope = "source"` cuts a unit only when it was seen before in the same
source (`[input.sources]`, the column named by `source_column`), as CCNet
deduplicates within one crawl snapshot. `method = "exact"` finds repeats
by sorting hash partitions (`partitions`, `memory_budget`, as
`dedup_exact`). `method = "bloom"` sends every unit, in input order,
through one Bloom filter (Dolma's and BFF's approach): memory is the
filter's, sized for `false_positive_rate` from the number of units (about
19 bits a unit at 10⁻⁴) or fixed by `bloom_size`, and a unit seen for the
first time is cut with that probability; the run's summary gives the
filter's size, hash count and estimated rate. Both give the same output
for any number of workers.
"#,
};

fn build(ctx: &BuildCtx<'_>) -> Result<Op, SpecError> {
    let mut d: DedupLines = ctx.config()?;
    if d.partitions.is_some_and(|p| p == 0 || p > 65_536) {
        return Err(ctx.error(
            "partitions",
            "partitions must be between 1 and 65536".into(),
        ));
    }
    crate::ops::dedup::dup::check_memory_budget(ctx, d.memory_budget)?;
    if !(d.false_positive_rate > 0.0 && d.false_positive_rate < 0.5) {
        return Err(ctx.error(
            "false_positive_rate",
            format!(
                "false_positive_rate must be above 0 and below 0.5 (0.0001 is typical), not {}",
                d.false_positive_rate
            ),
        ));
    }
    if let Some(size) = d.bloom_size {
        if size.0 < 1024 || size.0 > 1 << 40 {
            return Err(ctx.error(
                "bloom_size",
                format!(
                    "bloom_size of {} bytes is out of range: give 1KiB to 1TiB (\"1GiB\" is typical)",
                    size.0
                ),
            ));
        }
        if d.method != Method::Bloom {
            return Err(ctx.error(
                "bloom_size",
                "bloom_size sizes the Bloom filter: set method = \"bloom\" too, or leave it out"
                    .into(),
            ));
        }
    }
    d.source_column = ctx.spec.input.source_column.clone();
    Ok(Op::Global(Arc::new(d)))
}
