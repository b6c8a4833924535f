//! A document against the index: its hits, and the tally of hits over a
//! corpus that the report is made of (the op's report phase and `sluice
//! contamination` share both).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use super::index::{ngrams, Index};

/// Spans closer than this are removed as one (GPT-3 removed 200
/// characters either side of an overlap).
const MERGE_GAP: usize = 200;

/// What a document shares with the benchmarks.
#[derive(Debug)]
pub struct DocHits {
    /// Every benchmark row it overlaps (index rows, ascending).
    pub rows: Vec<u32>,
    /// The first overlap: its row and the document's bytes holding it.
    pub first: (u32, usize, usize),
    /// The overlapping byte ranges, merged (only when asked for).
    pub spans: Vec<(usize, usize)>,
}

/// The document's overlaps with the benchmarks, or None.
pub fn scan(index: &Index, text: &str, want_spans: bool) -> Option<DocHits> {
    let mut rows: Vec<u32> = vec![];
    let mut first = None;
    let mut spans: Vec<(usize, usize)> = vec![];
    ngrams(text, index.window, |s, e, h| {
        let Some(r) = index.first_row(h) else {
            return;
        };
        if first.is_none() {
            first = Some((r, s, e));
        }
        rows.extend(index.rows_of(h));
        if want_spans {
            match spans.last_mut() {
                Some(last) if s <= last.1 + MERGE_GAP => last.1 = last.1.max(e),
                _ => spans.push((s, e)),
            }
        }
    });
    let first = first?;
    rows.sort_unstable();
    rows.dedup();
    Some(DocHits { rows, first, spans })
}

/// Hits over a corpus, in input order.
pub struct Tally {
    pub documents: u64,
    pub documents_hit: u64,
    /// Documents hitting each benchmark.
    bench_docs: Vec<u64>,
    /// Row → (documents hitting it, the first such document's id).
    found: BTreeMap<u32, (u64, String)>,
}

impl Tally {
    pub fn new(index: &Index) -> Tally {
        Tally {
            documents: 0,
            documents_hit: 0,
            bench_docs: vec![0; index.benchmarks.len()],
            found: BTreeMap::new(),
        }
    }

    /// A document `id` that overlaps `rows`.
    pub fn add(&mut self, index: &Index, id: &str, rows: &[u32]) {
        self.documents_hit += 1;
        let mut benches = BTreeSet::new();
        for &r in rows {
            self.found.entry(r).or_insert_with(|| (0, id.to_string())).0 += 1;
            benches.insert(index.rows[r as usize].benchmark);
        }
        for b in benches {
            self.bench_docs[b as usize] += 1;
        }
    }

    /// Adds a tally of documents that come after this one's.
    pub fn merge(&mut self, other: Tally) {
        self.documents += other.documents;
        self.documents_hit += other.documents_hit;
        for (a, b) in self.bench_docs.iter_mut().zip(other.bench_docs) {
            *a += b;
        }
        for (r, (n, id)) in other.found {
            self.found.entry(r).or_insert((0, id)).0 += n;
        }
    }

    /// `decontamination_report.json`.
    pub fn json(&self, index: &Index) -> Value {
        let mut benchmarks = serde_json::Map::new();
        for (b, bench) in index.benchmarks.iter().enumerate() {
            let found: Vec<Value> = self
                .found
                .iter()
                .filter(|(r, _)| index.rows[**r as usize].benchmark as usize == b)
                .map(|(r, (n, doc))| {
                    json!({"row": index.rows[*r as usize].id, "documents": n, "first_document": doc})
                })
                .collect();
            benchmarks.insert(
                bench.name.clone(),
                json!({
                    "files": bench.files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
                    "rows": bench.rows,
                    "rows_too_short": bench.too_short,
                    "rows_found": found.len(),
                    "documents_hit": self.bench_docs[b],
                    "found": found,
                }),
            );
        }
        json!({
            "ngram": index.window.words,
            "ngram_cjk": index.window.cjk,
            "documents": self.documents,
            "documents_hit": self.documents_hit,
            "index": {
                "ngrams": index.grams(),
                "bytes": index.bytes(),
                "false_match_odds_per_lookup": index.grams() as f64 / 2f64.powi(64),
            },
            "benchmarks": benchmarks,
        })
    }

    /// One line per benchmark, for the run's summary.
    pub fn summary(&self, index: &Index) -> String {
        let mut out = String::new();
        for (b, bench) in index.benchmarks.iter().enumerate() {
            let rows = self
                .found
                .keys()
                .filter(|r| index.rows[**r as usize].benchmark as usize == b)
                .count();
            out.push_str(&format!(
                "{}: {rows} of {} rows found in {} documents{}\n",
                bench.name,
                bench.rows,
                self.bench_docs[b],
                if bench.too_short > 0 {
                    format!(" ({} rows shorter than an n-gram)", bench.too_short)
                } else {
                    String::new()
                }
            ));
        }
        out
    }
}

/// The text with byte ranges `spans` (ascending, apart) removed.
pub fn remove_spans(text: &str, spans: &[(usize, usize)]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for &(s, e) in spans {
        out.push_str(&text[at..s]);
        at = e;
    }
    out.push_str(&text[at..]);
    out
}
