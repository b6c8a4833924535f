//! KenLM n-gram language models, read natively: ARPA text and KenLM's
//! binary "probing" format, scored as KenLM's `Model.score` does.
//!
//! Both formats load into the probing layout KenLM itself keeps in memory
//! (and writes verbatim to a binary file): a vocabulary hash table from
//! MurmurHash64A of a word to its id, the unigrams by id, and one linear-
//! probing hash table per higher order keyed by a hash of the ids. A binary
//! file is mapped, not copied; an ARPA file is built into the same tables.
//! The values carry KenLM's flags in their signs (the sign bit of a
//! probability: no longer n-gram ends with this one; a backoff of +0.0 as
//! opposed to -0.0: some longer n-gram starts with this one), and scoring
//! follows `GenericModel::FullScore` step for step in f32, so that scores
//! equal KenLM's bit for bit.

mod arpa;
pub(crate) mod binary;
mod murmur;
mod table;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

pub use murmur::murmur_hash_64a;
use table::Table;

/// What `<unk>` scores when the ARPA file has none (KenLM's default,
/// `build_binary -u`).
const UNKNOWN_MISSING_LOGPROB: f32 = -100.0;
/// The probing tables' size factor (`build_binary -p`, default 1.5).
const PROBING_MULTIPLIER: f32 = 1.5;
/// KenLM's default `KENLM_MAX_ORDER`, the state's size.
pub const MAX_ORDER: usize = 6;

/// A loaded model.
pub struct Model {
    order: usize,
    /// The n-grams per order, as the file's header gives them (the tables
    /// are sized from these).
    counts: Vec<u64>,
    vocab: Table,
    /// `(prob, backoff)` per word id; id 0 is `<unk>`.
    unigrams: Table,
    /// Orders 2..N-1: `(key, prob, backoff)`.
    middle: Vec<Table>,
    /// Order N: `(key, prob)`.
    longest: Table,
    bos: u32,
    eos: u32,
    path: PathBuf,
    /// How many words the vocabulary holds (ids 0..bound).
    bound: u32,
    /// The last id the unigram array holds.
    max_id: u32,
}

/// The history a score depends on: the most recent words first, with the
/// backoffs of the n-grams they end.
#[derive(Clone, Copy, Debug)]
pub struct State {
    words: [u32; MAX_ORDER - 1],
    backoff: [f32; MAX_ORDER - 1],
    length: usize,
}

impl State {
    const EMPTY: State = State {
        words: [0; MAX_ORDER - 1],
        backoff: [0.0; MAX_ORDER - 1],
        length: 0,
    };
}

/// `HasExtension`: every backoff but -0.0 means a longer n-gram starts with
/// this one.
fn has_extension(b: f32) -> bool {
    b.to_bits() != (-0.0f32).to_bits()
}

/// KenLM's `CombineWordHash`: the key of an n-gram grows from its last word
/// back into its history.
#[inline]
fn combine(current: u64, next: u32) -> u64 {
    current.wrapping_mul(8_978_948_897_894_561_157)
        ^ (1 + next as u64).wrapping_mul(17_894_857_484_156_487_943)
}

/// The number of buckets of a probing table for `entries` (KenLM's
/// `ProbingHashTable::Size`, with its f32 product).
fn buckets(entries: u64, multiplier: f32) -> u64 {
    entries
        .saturating_add(1)
        .max((multiplier * entries as f32) as u64)
}

impl Model {
    /// Loads an ARPA file (plain or gzip) or a KenLM probing binary,
    /// whichever the file holds.
    pub fn load(path: &Path) -> Result<Model> {
        let mut model = if binary::is_binary(path)? {
            binary::load(path)
        } else {
            arpa::load(path)
        }
        .with_context(|| format!("cannot load the language model {}", path.display()))?;
        model.path = path.to_path_buf();
        Ok(model)
    }

    pub fn order(&self) -> usize {
        self.order
    }

    /// Writes the model as KenLM's probing binary (what `build_binary
    /// model.arpa model.binary` writes), `words` being the vocabulary's
    /// strings by id, `<unk>` first, as the ARPA file lists them.
    pub fn write_binary(&self, words: &[&str], path: &Path) -> Result<()> {
        binary::write(self, words, path)
    }
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// Words in the vocabulary, `<unk>` included.
    pub fn vocab_size(&self) -> u32 {
        self.bound
    }

    /// The id of a word (0, `<unk>`, when the model does not know it).
    pub fn index(&self, word: &[u8]) -> u32 {
        self.index_of_hash(murmur_hash_64a(word, 0))
    }

    pub fn begin_sentence(&self) -> State {
        let mut s = State::EMPTY;
        s.words[0] = self.bos;
        s.backoff[0] = self.unigrams.unigram(self.bos).1;
        s.length = 1;
        s
    }

    pub fn null_context(&self) -> State {
        State::EMPTY
    }

    /// log10 p(word | state) and the state after it (`FullScore`).
    pub fn score_word(&self, state: &State, word: u32) -> (f32, State) {
        let mut out = State::EMPTY;
        let (uprob, ubackoff) = self.unigrams.unigram(word);
        let mut prob = -uprob.abs();
        let mut independent_left = uprob.is_sign_negative();
        let mut ngram_length = 1;
        out.backoff[0] = ubackoff;
        out.length = has_extension(ubackoff) as usize;
        out.words[0] = word;
        let mut node = word as u64;
        for i in 0..state.length {
            if independent_left {
                break;
            }
            node = combine(node, state.words[i]);
            if i == self.order - 2 {
                if let Some(p) = self.longest.longest(node) {
                    prob = -p.abs();
                    ngram_length = self.order;
                }
                break;
            }
            let Some((p, b)) = self.middle[i].middle(node) else {
                break;
            };
            out.backoff[i + 1] = b;
            prob = -p.abs();
            ngram_length = i + 2;
            independent_left = p.is_sign_negative();
            if has_extension(b) {
                out.length = i + 2;
            }
        }
        for k in 1..out.length {
            out.words[k] = state.words[k - 1];
        }
        // The backoffs of the contexts the match did not reach.
        for j in ngram_length - 1..state.length {
            prob += state.backoff[j];
        }
        (prob, out)
    }

    /// The log10 probability of a sentence of whitespace-separated words,
    /// after `<s>` (bos) and with `</s>` (eos), summed in f32: KenLM's
    /// `Model.score(sentence, bos, eos)`. Words split on ASCII whitespace
    /// (tab, newline, vertical tab, form feed, carriage return, space).
    pub fn score(&self, sentence: &str, bos: bool, eos: bool) -> f32 {
        self.score_words(sentence, bos, eos).0
    }

    /// `score`, and the number of words the sentence held (without `</s>`).
    pub fn score_words(&self, sentence: &str, bos: bool, eos: bool) -> (f32, usize) {
        let mut state = if bos {
            self.begin_sentence()
        } else {
            self.null_context()
        };
        // Ids first (their vocabulary buckets prefetched together), then
        // each word scored while the next one's n-gram buckets load.
        let words: Vec<&[u8]> = sentence
            .as_bytes()
            .split(|&b| matches!(b, b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | b' '))
            .filter(|w| !w.is_empty())
            .collect();
        let hashes: Vec<u64> = words.iter().map(|w| murmur_hash_64a(w, 0)).collect();
        for &h in &hashes {
            self.vocab.prefetch(h);
        }
        let mut ids: Vec<u32> = Vec::with_capacity(words.len() + 1);
        ids.extend(hashes.iter().map(|&h| self.index_of_hash(h)));
        if eos {
            ids.push(self.eos);
        }
        // The words' sum, then `</s>`'s, in f32 and in order, as KenLM adds.
        let mut total = 0.0f32;
        if let Some(&first) = ids.first() {
            self.prefetch_ngrams(first, &[], bos);
        }
        for i in 0..ids.len() {
            if let Some(&next) = ids.get(i + 1) {
                self.prefetch_ngrams(next, &ids[..=i], bos);
            }
            let (p, next_state) = self.score_word(&state, ids[i]);
            state = next_state;
            total += p;
        }
        (total, words.len())
    }

    /// Prefetches the buckets of the n-grams that end with `word` after
    /// `history` (oldest first; `<s>` before it when `bos`).
    fn prefetch_ngrams(&self, word: u32, history: &[u32], bos: bool) {
        let mut key = word as u64;
        let mut ctx = history.iter().rev().copied();
        for i in 0..self.order - 1 {
            let h = match ctx.next() {
                Some(h) => h,
                None if bos => self.bos,
                None => return,
            };
            key = combine(key, h);
            if i == self.order - 2 {
                self.longest.prefetch(key);
            } else {
                self.middle[i].prefetch(key);
            }
            if history.len() <= i {
                // The context reached <s>: nothing extends before it.
                return;
            }
        }
    }

    fn index_of_hash(&self, h: u64) -> u32 {
        let id = self.vocab.vocab_id(h);
        // A damaged binary's id past the unigrams reads as <unk>.
        if id > self.max_id {
            0
        } else {
            id
        }
    }
}

#[cfg(test)]
mod tests;
