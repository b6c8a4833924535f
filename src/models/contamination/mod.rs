//! The evaluation sets a corpus is checked against: their rows read from
//! JSONL, JSON or Parquet, their n-grams in an index (`index.rs`), a
//! document's overlaps with them and the tally a report is made of
//! (`scan.rs`). The `decontaminate` op and `sluice contamination` share it.

mod index;
mod scan;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use anyhow::Result;
use serde::{Deserialize, Serialize};

pub use index::{benchmark_files, is_cjk, ngrams, tokens, Benchmark, Index, Row, Source, Window};
pub use scan::{remove_spans, scan, DocHits, Tally};

/// The n of GPT-3's and the lm-evaluation-harness's overlap test.
pub const DEFAULT_NGRAM: usize = 13;

/// CJK characters standing for a word in an n-gram when `ngram_cjk` is
/// not given.
pub const CJK_CHARS_PER_WORD: usize = 2;

/// The benchmarks and how their text is read: shared by the op and
/// `sluice contamination`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Benchmarks {
    /// Name → a file or glob of benchmark rows.
    pub benchmarks: BTreeMap<String, String>,
    /// The fields of a row that are its text; empty: every string field.
    pub fields: Vec<String>,
    /// The field that names a row in the report.
    pub id_field: String,
    /// Words per n-gram.
    pub ngram: usize,
    /// CJK characters per n-gram; derived from `ngram` when absent.
    pub ngram_cjk: Option<usize>,
}

impl Default for Benchmarks {
    fn default() -> Self {
        Benchmarks {
            benchmarks: BTreeMap::new(),
            fields: vec![],
            id_field: "id".into(),
            ngram: DEFAULT_NGRAM,
            ngram_cjk: None,
        }
    }
}

impl Benchmarks {
    /// Checks the keys; `error(key, message)` builds the caller's error.
    pub fn check<E>(&self, error: impl Fn(&str, String) -> E) -> Result<(), E> {
        if self.benchmarks.is_empty() {
            return Err(error(
                "benchmarks",
                "benchmarks is empty: name at least one, e.g. { gsm8k = \"evals/gsm8k.jsonl\" }"
                    .into(),
            ));
        }
        for (name, pattern) in &self.benchmarks {
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
            {
                return Err(error(
                    "benchmarks",
                    format!(
                        "benchmark name `{name}`: use letters, digits, `_`, `-` and `.` \
                         (it becomes the drop reason decontaminate:{name})"
                    ),
                ));
            }
            if let Err(e) = index::benchmark_files(pattern) {
                return Err(error("benchmarks", format!("benchmark `{name}`: {e:#}")));
            }
        }
        if self.ngram_cjk.is_some_and(|n| !(1..=128).contains(&n)) {
            return Err(error(
                "ngram_cjk",
                "ngram_cjk must be between 1 and 128".into(),
            ));
        }
        if !(1..=64).contains(&self.ngram) {
            return Err(error(
                "ngram",
                format!("ngram must be between 1 and 64, not {}", self.ngram),
            ));
        }
        Ok(())
    }

    /// The n-gram's length in words and in CJK characters.
    pub fn window(&self) -> Window {
        Window {
            words: self.ngram,
            cjk: self
                .ngram_cjk
                .unwrap_or_else(|| self.ngram * CJK_CHARS_PER_WORD),
        }
    }

    pub fn build_index(&self) -> Result<Index> {
        let sources: Vec<Source<'_>> = self
            .benchmarks
            .iter()
            .map(|(name, pattern)| Source { name, pattern })
            .collect();
        Index::build(&sources, &self.fields, &self.id_field, self.window())
    }
}
