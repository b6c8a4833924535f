//! `decontaminate`: removes the documents (or the spans) that contain text
//! of users' evaluation sets, the n-gram overlap test of GPT-3, LLaMA 2 and
//! datatrove. A global op:
//!
//! 0. when the pipeline is built (in every process that runs it): the
//!    benchmarks' index (`models::contamination`: memory in proportion to
//!    the benchmarks, not the corpus); a bad benchmark file stops the run
//!    before any task;
//! 1. observe (per input task): each document's n-grams are looked up;
//!    the documents with a hit are written to a small file per task;
//! 2. report (one task): the hits of every task, in input order, make
//!    `decontamination_report.json`: per benchmark, the rows found in the
//!    corpus and the documents hit;
//! 3. filter (per input task): the task's hits applied in row order: the
//!    document dropped (`decontaminate:<benchmark>`) or its spans removed.
//!
//! The index, the scan and the report's tally are `models::contamination`'s:
//! `sluice contamination` (src/train/contamination.rs) runs the same scan
//! over a finished corpus and writes only the report.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;
use arrow::array::StringBuilder;
use serde::{Deserialize, Serialize};

use crate::io::writer::{read_work_json, write_atomic};
use crate::models::contamination::{remove_spans, scan, Benchmarks, Index, Tally};
use crate::ops::{
    shape, with_texts, BuildCtx, DocBatch, DropMark, GlobalCtx, GlobalOp, Observer, Op, OpInfo,
    OpKind, OpOutput, ParamDoc, PhaseSpec, Phased, RowFilter,
};
use crate::pipeline::spec::SpecError;

#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    #[default]
    Drop,
    Mask,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Decontaminate {
    pub benchmarks: BTreeMap<String, String>,
    pub fields: Vec<String>,
    pub id_field: String,
    pub ngram: usize,
    pub ngram_cjk: Option<usize>,
    pub mode: Mode,
}

impl Default for Decontaminate {
    fn default() -> Self {
        // The benchmark keys' defaults are `Benchmarks`'s.
        let b = Benchmarks::default();
        Decontaminate {
            benchmarks: b.benchmarks,
            fields: b.fields,
            id_field: b.id_field,
            ngram: b.ngram,
            ngram_cjk: b.ngram_cjk,
            mode: Mode::default(),
        }
    }
}

impl Decontaminate {
    fn split(self) -> (Benchmarks, Mode) {
        (
            Benchmarks {
                benchmarks: self.benchmarks,
                fields: self.fields,
                id_field: self.id_field,
                ngram: self.ngram,
                ngram_cjk: self.ngram_cjk,
            },
            self.mode,
        )
    }
}

pub const INFO: OpInfo = OpInfo {
    name: "decontaminate",
    kind: OpKind::Global,
    summary: "Drops the documents that share an n-gram (13 words; 26 characters of Chinese or Japanese) with a row \
              of the named evaluation sets, or removes the overlapping spans; writes \
              decontamination_report.json: per benchmark, the rows found in the corpus and the \
              documents hit.",
    params: &[
        ParamDoc {
            name: "benchmarks",
            kind: "table",
            default: "required",
            doc: "name = a file or glob of benchmark rows (.jsonl, .json, .parquet; .gz/.zst for JSON)",
        },
        ParamDoc {
            name: "fields",
            kind: "list",
            default: "[]",
            doc: "the fields of a row that are its text, joined in this order (strings or lists of \
                  strings); [] = every string field but `id_field`, in the order of their names",
        },
        ParamDoc {
            name: "id_field",
            kind: "string",
            default: "\"id\"",
            doc: "the field that names a row in the report; a row without it is `file:row`",
        },
        ParamDoc {
            name: "ngram",
            kind: "integer",
            default: "13",
            doc: "words per n-gram",
        },
        ParamDoc {
            name: "ngram_cjk",
            kind: "integer",
            default: "derived",
            doc: "CJK characters per n-gram (Chinese and Japanese have no spaces between words): \
                  2 × ngram when absent",
        },
        ParamDoc {
            name: "mode",
            kind: "string",
            default: "\"drop\"",
            doc: "\"drop\" the document, or \"mask\": remove the overlapping spans",
        },
    ],
    drop_reasons: &["decontaminate:<benchmark>"],
    outputs: &["decontamination_report.json"],
    build,
    config: shape::<Decontaminate>,
    example: r#"
[[step]]
op = "decontaminate"
benchmarks = { quickstart_qa = "fixtures/evals/quickstart_qa.jsonl" }
fields = ["question", "answer"]
"#,
    about: r#"
Text is compared as tokens: runs of letters and digits, lowercased,
accents removed, full-width forms made ASCII; punctuation, symbols and
whitespace only separate them. Chinese and Japanese text (CJK ideographs
and kana) has no spaces between words, so each character is one token,
and an n-gram is `ngram_cjk` of them (by default twice `ngram`: 26
characters, some 16 Chinese words); in mixed text a word counts as
`ngram_cjk / ngram` characters. Thirteen characters are too few: stock
phrases of Chinese news (`以江泽民同志为核心的党中央` is 13) made 27 of 6,150
clean documents contaminated in tests/privacy.rs; 20 made 2, 26 none. A
benchmark row's text is its `fields`
joined in order (so n-grams spanning a question and its answer count); a
row with fewer than `ngram` tokens can match nothing and is counted as too
short in the report (a common phrase shorter than an n-gram never
triggers).

The index of the benchmarks' n-grams is a hash set of 64-bit hashes,
built from the benchmark files when the pipeline is (memory in proportion to
the benchmarks: some 40 bytes an n-gram); an n-gram that is in no
benchmark matches by accident with odds (n-grams in the index) / 2⁶⁴ per
lookup. `mode = "drop"` drops every document with any overlap, reason
`decontaminate:<benchmark>` of its first, detail the row id and the
overlapping text. `mode = "mask"` removes the overlapping spans instead,
with the text between two of them when it is at most 200 bytes (GPT-3
removed 200 characters either side of an overlap; sluice removes no text
beyond the overlaps and what lies between them); a document left without
a letter or digit is dropped with the same reason.

`decontamination_report.json` in the output folder: per benchmark its
files, rows, rows too short, the rows found in the corpus (`found`: row
id, documents hit, the first such document's id) and the documents hit.
`sluice contamination spec.toml` writes the same report for a finished
corpus without writing any output (docs/privacy.md).
"#,
};

fn build(ctx: &BuildCtx<'_>) -> Result<Op, SpecError> {
    let d: Decontaminate = ctx.config()?;
    let (benchmarks, mode) = d.split();
    benchmarks.check(|k, m| ctx.error(k, m))?;
    // Built when the pipeline is: a bad benchmark file stops the run
    // before any task starts, and the index is small.
    let index = benchmarks
        .build_index()
        .map_err(|e| ctx.error("benchmarks", format!("{e:#}")))?;
    Ok(Op::Global(Arc::new(DecontOp {
        index: Arc::new(index),
        mode,
    })))
}

pub struct DecontOp {
    index: Arc<Index>,
    mode: Mode,
}

/// A document with hits, as the observer saw it.
#[derive(Debug, Deserialize, Serialize)]
struct HitRecord {
    row: u64,
    id: String,
    /// Every benchmark row it overlaps (index rows, ascending).
    rows: Vec<u32>,
    benchmark: String,
    row_id: String,
    /// The first overlapping text, as the document has it.
    text: String,
    /// Byte ranges to remove (mask mode).
    spans: Vec<(usize, usize)>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
struct TaskHits {
    documents: u64,
    hits: Vec<HitRecord>,
}

fn hits_file(ctx: &GlobalCtx, task: usize) -> PathBuf {
    ctx.work.join("hits").join(format!("{task:05}.json"))
}

struct HitObserver {
    index: Arc<Index>,
    out: TaskHits,
    path: PathBuf,
    mask: bool,
}

impl Observer for HitObserver {
    fn observe(&mut self, batch: &DocBatch, first_row: u64) -> Result<()> {
        let ids = batch.ids();
        for (i, text) in batch.texts().iter().enumerate() {
            self.out.documents += 1;
            let Some(text) = text else { continue };
            let Some(h) = scan(&self.index, text, self.mask) else {
                continue;
            };
            let first = &self.index.rows[h.first.0 as usize];
            self.out.hits.push(HitRecord {
                row: first_row + i as u64,
                id: ids.value(i).to_string(),
                rows: h.rows,
                benchmark: self.index.benchmarks[first.benchmark as usize].name.clone(),
                row_id: first.id.clone(),
                text: text[h.first.1..h.first.2].to_string(),
                spans: h.spans,
            });
        }
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<()> {
        write_atomic(&self.path, &serde_json::to_vec(&self.out)?)
    }
}

impl DecontOp {
    fn report(&self, ctx: &GlobalCtx, _task: usize) -> Result<()> {
        let index = &self.index;
        let mut tally = Tally::new(index);
        for t in 0..ctx.tasks {
            let hits: TaskHits = read_work_json(&hits_file(ctx, t))?;
            tally.documents += hits.documents;
            for h in &hits.hits {
                tally.add(index, &h.id, &h.rows);
            }
        }
        write_atomic(
            &ctx.output.join("decontamination_report.json"),
            &serde_json::to_vec_pretty(&tally.json(index))?,
        )?;
        write_atomic(
            &ctx.work.join("summary.txt"),
            tally.summary(index).as_bytes(),
        )
    }
}

impl Phased for DecontOp {
    fn phases(self: Arc<Self>, _ctx: &GlobalCtx) -> Vec<PhaseSpec> {
        vec![PhaseSpec::new(&self, "report", 1, Self::report)]
    }

    fn observer(&self, ctx: &GlobalCtx, task: usize) -> Result<Box<dyn Observer>> {
        Ok(Box::new(HitObserver {
            index: self.index.clone(),
            out: TaskHits::default(),
            path: hits_file(ctx, task),
            mask: self.mode == Mode::Mask,
        }))
    }

    fn summary(&self, ctx: &GlobalCtx) -> Option<String> {
        let bytes = crate::io::store::read(&ctx.work.join("summary.txt")).ok()?;
        String::from_utf8(bytes).ok()
    }
}

impl GlobalOp for DecontOp {
    fn filter(&self, ctx: &GlobalCtx, task: usize) -> Result<Box<dyn RowFilter>> {
        let hits: TaskHits = read_work_json(&hits_file(ctx, task))?;
        Ok(Box::new(HitFilter {
            hits: hits.hits.into_iter().map(|h| (h.row, h)).collect(),
            mode: self.mode,
        }))
    }

    fn check_input(
        &self,
        schema: &arrow::datatypes::SchemaRef,
    ) -> Result<Option<arrow::datatypes::SchemaRef>> {
        Ok(Some(schema.clone()))
    }
}

struct HitFilter {
    hits: BTreeMap<u64, HitRecord>,
    mode: Mode,
}

impl RowFilter for HitFilter {
    fn finish(&mut self, rows: u64) -> Result<()> {
        if let Some((&row, h)) = self.hits.range(rows..).next() {
            anyhow::bail!(
                "bug: decontaminate has a hit for row {row} (document {}) of a task that saw \
                 {rows} rows: its work files do not match this input; rerun with --force",
                h.id
            );
        }
        Ok(())
    }

    fn apply(&mut self, batch: DocBatch, first_row: u64) -> Result<OpOutput> {
        let n = batch.data.num_rows() as u64;
        let mine: Vec<(u64, &HitRecord)> = self
            .hits
            .range(first_row..first_row + n)
            .map(|(r, h)| (*r, h))
            .collect();
        if mine.is_empty() {
            return Ok(OpOutput::new(batch, vec![]));
        }
        let texts = batch.texts().clone();
        let mut drops: Vec<Option<DropMark>> = vec![None; n as usize];
        let mark = |h: &HitRecord| DropMark {
            reason: format!("decontaminate:{}", h.benchmark),
            detail: Some(format!("{} row {}: \"{}\"", h.benchmark, h.row_id, h.text)),
        };
        match self.mode {
            Mode::Drop => {
                for (r, h) in &mine {
                    drops[(r - first_row) as usize] = Some(mark(h));
                }
                Ok(OpOutput::new(batch, drops))
            }
            Mode::Mask => {
                let (mut docs, mut bytes) = (0u64, 0u64);
                let mut b = StringBuilder::with_capacity(
                    arrow::array::Array::len(&texts),
                    texts.value_data().len(),
                );
                let mut next = mine.iter().peekable();
                for i in 0..n {
                    let t = (!arrow::array::Array::is_null(&texts, i as usize))
                        .then(|| texts.value(i as usize));
                    match (t, next.peek()) {
                        (Some(t), Some((r, h))) if *r == first_row + i => {
                            let m = remove_spans(t, &h.spans);
                            docs += 1;
                            bytes += (t.len() - m.len()) as u64;
                            if !m.chars().any(char::is_alphanumeric) {
                                drops[i as usize] = Some(mark(h));
                            }
                            b.append_value(m);
                            next.next();
                        }
                        (Some(t), _) => b.append_value(t),
                        (None, _) => b.append_null(),
                    }
                }
                let mut out = OpOutput::new(with_texts(batch, b.finish())?, drops);
                out.count("documents_masked", docs);
                out.count("bytes_masked", bytes);
                Ok(out)
            }
        }
    }
}
