//! The first passes of `train-lm`: the text becomes word ids, and the
//! corpus's n-grams of the model's order are counted.
//!
//! Tokenizing runs in parallel, one input task per job: each task writes its
//! words as ids of its own vocabulary (in the order it first met them) to
//! a file, and the vocabulary beside it. The vocabularies are then merged
//! in task order, so that a word's id is its rank of first appearance in
//! the whole input read in order, as `lmplz` numbers words reading the same
//! text: the same ids, and so the same n-gram order, for any number of
//! workers. Counting reads the id files again, in parallel, into a hash
//! table per worker that is emptied into sorted runs, one sorter per range
//! of last words, whenever it reaches its share of the memory budget.

use std::collections::HashMap;
use std::fs::File;
use std::hash::BuildHasherDefault;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, Result};
use rayon::prelude::*;

use super::ngram::{record, suffix_key, Record, BOS, EOS};
use super::spec::MAX_ORDER;
use crate::io::sorter::ExternalSorter;
use crate::tokenizer::fxhash::FxHasher;
use crate::tokenizer::lm::{LineNormalize, LmTokenizer};
use crate::train::TextJob;

type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// Ends a sentence in an id file.
const SENTENCE_END: u32 = u32::MAX;

/// KenLM's reserved words: in the text they are skipped, as `lmplz
/// --skip_symbols` treats them.
const RESERVED: [&str; 3] = ["<unk>", "<s>", "</s>"];

/// What tokenizing saw.
#[derive(Default, Clone, Copy)]
pub struct Totals {
    pub docs: u64,
    pub bytes: u64,
    /// Lines with at least one word: KenLM's sentences.
    pub sentences: u64,
    pub tokens: u64,
    /// `<s>`, `</s>` and `<unk>` met in the text and skipped.
    pub reserved_skipped: u64,
}

impl Totals {
    fn add(&mut self, o: &Totals) {
        self.docs += o.docs;
        self.bytes += o.bytes;
        self.sentences += o.sentences;
        self.tokens += o.tokens;
        self.reserved_skipped += o.reserved_skipped;
    }
}

/// The words by id: `<unk>`, `<s>`, `</s>`, then the text's words in the
/// order they first appear. `counts` are occurrences (`</s>`: sentences).
pub struct Vocab {
    pub words: Vec<Box<str>>,
    pub counts: Vec<u64>,
}

/// The corpus as id files, one per task, and how each task's ids map to
/// the vocabulary's.
pub struct Tokenized {
    pub vocab: Vocab,
    pub totals: Totals,
    files: Vec<PathBuf>,
    maps: Vec<Vec<u32>>,
}

/// One task's words, numbered as it met them.
#[derive(Default)]
struct LocalVocab {
    ids: FxMap<Box<str>, u32>,
    words: Vec<Box<str>>,
    counts: Vec<u64>,
}

fn tokenize_task(
    job: &TextJob,
    tokenizer: &LmTokenizer,
    normalize: LineNormalize,
    ids_path: &Path,
    vocab_path: &Path,
) -> Result<Totals> {
    let mut out = BufWriter::with_capacity(
        1 << 20,
        File::create(ids_path).with_context(|| format!("cannot create {}", ids_path.display()))?,
    );
    let mut vocab = LocalVocab::default();
    let mut totals = Totals::default();
    let mut line_ids: Vec<u32> = vec![];
    job.for_each_text(|text| {
        totals.docs += 1;
        totals.bytes += text.len() as u64;
        for line in text.split('\n') {
            let line = normalize.apply(line);
            line_ids.clear();
            tokenizer
                .tokens(&line, |w| {
                    if RESERVED.contains(&w) {
                        totals.reserved_skipped += 1;
                        return;
                    }
                    let id = match vocab.ids.get(w) {
                        Some(&id) => id,
                        None => {
                            let id = vocab.words.len() as u32;
                            vocab.ids.insert(w.into(), id);
                            vocab.words.push(w.into());
                            vocab.counts.push(0);
                            id
                        }
                    };
                    vocab.counts[id as usize] += 1;
                    line_ids.push(id);
                })
                .with_context(|| job.task.describe())?;
            if line_ids.is_empty() {
                continue;
            }
            totals.sentences += 1;
            totals.tokens += line_ids.len() as u64;
            for id in line_ids.iter().chain([&SENTENCE_END]) {
                out.write_all(&id.to_le_bytes())?;
            }
        }
        Ok(())
    })?;
    out.flush()
        .with_context(|| format!("cannot write {}", ids_path.display()))?;
    let mut v = BufWriter::new(
        File::create(vocab_path)
            .with_context(|| format!("cannot create {}", vocab_path.display()))?,
    );
    // Words hold no whitespace (they are split on it), so a tab and a
    // newline delimit them.
    for (w, c) in vocab.words.iter().zip(&vocab.counts) {
        writeln!(v, "{w}\t{c}")?;
    }
    v.flush()
        .with_context(|| format!("cannot write {}", vocab_path.display()))?;
    Ok(totals)
}

/// Tokenizes every job into `dir`, and merges the vocabularies in job order.
pub fn tokenize(
    jobs: &[TextJob],
    tokenizer: &LmTokenizer,
    normalize: LineNormalize,
    dir: &Path,
) -> Result<Tokenized> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let files: Vec<(PathBuf, PathBuf)> = (0..jobs.len())
        .map(|i| {
            (
                dir.join(format!("task-{i:05}.ids")),
                dir.join(format!("task-{i:05}.vocab")),
            )
        })
        .collect();
    let totals: Vec<Totals> = jobs
        .par_iter()
        .zip(&files)
        .map(|(job, (ids, vocab))| tokenize_task(job, tokenizer, normalize, ids, vocab))
        .collect::<Result<_>>()?;
    let mut sum = Totals::default();
    for t in &totals {
        sum.add(t);
    }
    let mut ids: FxMap<Box<str>, u32> = FxMap::default();
    let mut vocab = Vocab {
        words: RESERVED.iter().map(|&w| w.into()).collect(),
        counts: vec![0, 0, sum.sentences],
    };
    let mut maps = Vec::with_capacity(jobs.len());
    for (_, path) in &files {
        let f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let mut map = vec![];
        for line in BufReader::new(f).lines() {
            let line = line.with_context(|| format!("cannot read {}", path.display()))?;
            let (w, c) = line
                .rsplit_once('\t')
                .and_then(|(w, c)| Some((w, c.parse::<u64>().ok()?)))
                .with_context(|| {
                    format!("{} is damaged (a bug: sluice wrote it)", path.display())
                })?;
            let id = match ids.get(w) {
                Some(&id) => id,
                None => {
                    let id = vocab.words.len() as u32;
                    anyhow::ensure!(
                        id < SENTENCE_END,
                        "the vocabulary passed {} words",
                        SENTENCE_END
                    );
                    ids.insert(w.into(), id);
                    vocab.words.push(w.into());
                    vocab.counts.push(0);
                    id
                }
            };
            vocab.counts[id as usize] += c;
            map.push(id);
        }
        maps.push(map);
        std::fs::remove_file(path).ok();
    }
    Ok(Tokenized {
        vocab,
        totals: sum,
        files: files.into_iter().map(|(ids, _)| ids).collect(),
        maps,
    })
}

/// Contiguous ranges of word ids, balanced by how many n-grams end with
/// their words: an n-gram goes to the range of its last word (counting,
/// adjusting, interpolating) or of its context's last word (the context
/// pass). Concatenated in order, the ranges' outputs are the whole model
/// in suffix order, so the model does not depend on their number.
pub struct Partitions {
    /// Partition `p` holds ids `bounds[p]..bounds[p + 1]`.
    pub bounds: Vec<u32>,
    of: Vec<u16>,
}

impl Partitions {
    pub fn new(counts: &[u64], wanted: usize) -> Partitions {
        let wanted = wanted.clamp(1, counts.len().min(u16::MAX as usize));
        let total: u64 = counts.iter().sum::<u64>().max(1);
        let mut bounds = vec![0u32];
        let mut cum = 0u64;
        for (id, &c) in counts.iter().enumerate() {
            let next = bounds.len() as u64;
            if id > 0 && next < wanted as u64 && cum >= total * next / wanted as u64 {
                bounds.push(id as u32);
            }
            cum += c;
        }
        bounds.push(counts.len() as u32);
        let mut of = vec![0u16; counts.len()];
        for p in 0..bounds.len() - 1 {
            for x in &mut of[bounds[p] as usize..bounds[p + 1] as usize] {
                *x = p as u16;
            }
        }
        Partitions { bounds, of }
    }

    pub fn len(&self) -> usize {
        self.bounds.len() - 1
    }

    pub fn of(&self, id: u32) -> usize {
        self.of[id as usize] as usize
    }
}

/// Sorters that several workers fill, one per partition.
pub struct SharedSorters(pub Vec<Mutex<Option<ExternalSorter<4>>>>);

impl SharedSorters {
    pub fn new(dir: &Path, prefix: &str, n: usize, budget: u64) -> Result<SharedSorters> {
        Ok(SharedSorters(
            (0..n)
                .map(|p| {
                    ExternalSorter::new(&dir.join(format!("{prefix}-{p:04}")), budget)
                        .map(|s| Mutex::new(Some(s)))
                })
                .collect::<Result<_>>()?,
        ))
    }

    pub fn push_all(&self, p: usize, records: &mut Vec<Record>) -> Result<()> {
        let mut guard = self.0[p].lock().unwrap_or_else(|e| e.into_inner());
        let sorter = guard
            .as_mut()
            .context("a sorter was read before it was filled (a bug)")?;
        for r in records.drain(..) {
            sorter.push(r)?;
        }
        Ok(())
    }

    pub fn take(&self, p: usize) -> Result<ExternalSorter<4>> {
        self.0[p]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .context("a sorter was read twice (a bug)")
    }

    pub fn runs(&self) -> usize {
        self.0
            .iter()
            .map(|s| {
                s.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .as_ref()
                    .map_or(0, |s| s.runs())
            })
            .sum()
    }
}

/// Buffers records per partition and hands them to the shared sorters in
/// blocks, so that a worker takes a sorter's lock once per block.
pub struct Outbox<'a> {
    sorters: &'a SharedSorters,
    bufs: Vec<Vec<Record>>,
}

const OUTBOX_BLOCK: usize = 4096;

impl<'a> Outbox<'a> {
    pub fn new(sorters: &'a SharedSorters) -> Outbox<'a> {
        Outbox {
            sorters,
            bufs: vec![vec![]; sorters.0.len()],
        }
    }

    pub fn push(&mut self, p: usize, r: Record) -> Result<()> {
        self.bufs[p].push(r);
        if self.bufs[p].len() >= OUTBOX_BLOCK {
            self.sorters.push_all(p, &mut self.bufs[p])?;
        }
        Ok(())
    }

    pub fn flush(&mut self) -> Result<()> {
        for p in 0..self.bufs.len() {
            if !self.bufs[p].is_empty() {
                self.sorters.push_all(p, &mut self.bufs[p])?;
            }
        }
        Ok(())
    }
}

/// Counts the n-grams of `order` of every sentence, after `order - 1`
/// `<s>` and ending with `</s>` (lmplz's counting), into the sorters of
/// their last words' partitions. Each worker's table holds at most
/// `table_entries` n-grams before it is emptied into the sorters.
pub fn count(
    tok: &Tokenized,
    order: usize,
    parts: &Partitions,
    sorters: &SharedSorters,
    table_entries: usize,
) -> Result<()> {
    tok.files
        .par_iter()
        .zip(&tok.maps)
        .try_for_each(|(path, map)| -> Result<()> {
            let mut table: FxMap<[u64; 3], u64> = FxMap::default();
            let mut outbox = Outbox::new(sorters);
            let mut empty = |table: &mut FxMap<[u64; 3], u64>| -> Result<()> {
                for (key, c) in table.drain() {
                    outbox.push(parts.of((key[0] >> 32) as u32), record(key, c))?;
                }
                outbox.flush()
            };
            let f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
            let mut reader = BufReader::with_capacity(1 << 20, f);
            let mut gram = [BOS; MAX_ORDER];
            let mut bytes = [0u8; 4];
            loop {
                match reader.read_exact(&mut bytes) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
                    Err(e) => {
                        return Err(e).with_context(|| format!("cannot read {}", path.display()))
                    }
                }
                let local = u32::from_le_bytes(bytes);
                let id = if local == SENTENCE_END {
                    EOS
                } else {
                    *map.get(local as usize).with_context(|| {
                        format!("{} is damaged (a bug: sluice wrote it)", path.display())
                    })?
                };
                gram[order - 1] = id;
                *table.entry(suffix_key(&gram[..order])).or_insert(0) += 1;
                if id == EOS {
                    gram = [BOS; MAX_ORDER];
                } else {
                    gram.copy_within(1..order, 0);
                }
                if table.len() >= table_entries {
                    empty(&mut table)?;
                }
            }
            empty(&mut table)?;
            std::fs::remove_file(path).ok();
            Ok(())
        })
}
