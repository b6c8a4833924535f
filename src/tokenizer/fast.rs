//! sluice's encoder for any BPE `tokenizer.json`: the byte-level ones (GPT-2,
//! Llama 3, Qwen 2, one trained by Hugging Face or by sluice, with a preset
//! or a custom split regex) and the SentencePiece-style ones (Llama 2,
//! Baichuan, Mistral: `▁` for spaces, byte fallback). It reads the file the
//! way the `tokenizers` crate does and gives its ids (tested on text in
//! many scripts and on random text), at the speed of sluice's own encoder:
//! the GPT-2, Llama 3 and Qwen 2 patterns run as hand-written scanners
//! (`pretok.rs`), and the merges as one table of id pairs.
//!
//! What it does not read (WordPiece, Unigram, a normaliser or pre-tokenizer
//! outside the list below, BPE dropout, subword prefixes, added tokens with
//! `lstrip`/`rstrip`/`single_word`) makes [`FastTokenizer::from_json`]
//! return [`Unsupported`], and the caller uses the `tokenizers` crate.
//!
//! Read: normalisers `NFC`, `NFKC`, `Prepend`, `Replace` (a string pattern)
//! and a `Sequence` of them; pre-tokenizers `ByteLevel` (with or without
//! its regex, `add_prefix_space`), `Split` (a regex or string, `Isolated`),
//! `Digits`, `Metaspace`, and a `Sequence` of them in the orders models
//! use; the model `BPE` with `byte_fallback`, `fuse_unk`, `ignore_merges`;
//! decoders `ByteLevel`, `Metaspace`, and Llama 2's `Sequence` (`Replace`,
//! `ByteFallback`, `Fuse`, `Strip`).

use std::collections::HashMap;

use aho_corasick::{AhoCorasick, MatchKind};
use serde_json::Value;

use super::bpe::Merges;
use super::fxhash::FxBuild;
use super::hf::{byte_chars, Normalization};
use super::pretok::{pieces, PreTokenizer, Preset, GPT2, LLAMA3, QWEN2};
use super::spm_bpe::WS;

/// Why a `tokenizer.json` is left to the `tokenizers` crate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported(pub String);

impl std::fmt::Display for Unsupported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn no<T>(what: impl Into<String>) -> Result<T, Unsupported> {
    Err(Unsupported(what.into()))
}

/// One step of the normaliser.
#[derive(Debug, Clone, PartialEq)]
enum Norm {
    Nfc,
    Nfkc,
    /// Put in front of a non-empty text.
    Prepend(String),
    Replace(String, String),
}

/// When Metaspace puts its mark in front.
#[derive(Debug, Clone, Copy, PartialEq)]
enum PrependScheme {
    Always,
    First,
    Never,
}

/// How a normalised segment becomes words.
enum Pre {
    /// Byte-level: regex pieces (or the whole segment), then digits alone,
    /// each piece's bytes the model's symbols.
    ByteLevel {
        split: Option<PreTokenizer>,
        digits: bool,
        /// A space in front of each segment (`ByteLevel` with its regex) or
        /// of each piece (after a `Split`) that does not start with one.
        prefix_segment: bool,
        prefix_piece: bool,
    },
    /// Characters are the symbols: the whole segment one word (Llama 2's
    /// layout, where the normaliser did the `▁`), or Metaspace's words.
    Chars {
        metaspace: Option<(char, PrependScheme, bool)>,
        digits: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Decoder {
    ByteLevel,
    /// `mark` → space, `<0xNN>` → the byte (with `ByteFallback`), and at
    /// most `strip` leading spaces cut.
    Chars {
        mark: char,
        bytes: bool,
        strip: usize,
    },
}

/// A `tokenizer.json` read for encoding and decoding.
pub struct FastTokenizer {
    /// Added tokens matched in the raw text (leftmost, then longest).
    added: Option<AhoCorasick>,
    added_ids: Vec<u32>,
    norm: Vec<Norm>,
    pre: Pre,
    merges: Merges,
    /// The id of each byte (byte-level) or of its `<0xNN>` token (byte
    /// fallback); `u32::MAX` where there is none.
    byte_ids: [u32; 256],
    char_ids: HashMap<char, u32, FxBuild>,
    /// With `ignore_merges`: a word that is a token is that token.
    words: Option<HashMap<Vec<u8>, u32, FxBuild>>,
    unk: Option<u32>,
    fuse_unk: bool,
    byte_fallback: bool,
    /// Every id's text, as the model writes it (for decoding).
    tokens: Vec<Option<String>>,
    special: Vec<bool>,
    decoder: Option<Decoder>,
}

/// Parses a merge: `"a b"` or `["a", "b"]`.
pub(crate) fn merge_parts(m: &Value) -> Option<(&str, &str)> {
    match m {
        Value::String(s) => s.split_once(' '),
        Value::Array(v) if v.len() == 2 => Some((v[0].as_str()?, v[1].as_str()?)),
        _ => None,
    }
}

fn is_null_or_false(v: &Value) -> bool {
    v.is_null() || v == &Value::Bool(false)
}

fn read_norm(v: &Value, out: &mut Vec<Norm>) -> Result<(), Unsupported> {
    match v["type"].as_str() {
        None if v.is_null() => Ok(()),
        Some("Sequence") => {
            for n in v["normalizers"].as_array().into_iter().flatten() {
                read_norm(n, out)?;
            }
            Ok(())
        }
        Some("NFC") => {
            out.push(Norm::Nfc);
            Ok(())
        }
        Some("NFKC") => {
            out.push(Norm::Nfkc);
            Ok(())
        }
        Some("Prepend") => {
            out.push(Norm::Prepend(
                v["prepend"].as_str().unwrap_or_default().to_string(),
            ));
            Ok(())
        }
        Some("Replace") => match (v["pattern"]["String"].as_str(), v["content"].as_str()) {
            (Some(p), Some(c)) if !p.is_empty() => {
                out.push(Norm::Replace(p.to_string(), c.to_string()));
                Ok(())
            }
            _ => no("a Replace normaliser with a regex"),
        },
        other => no(format!("the normaliser {other:?}")),
    }
}

fn scheme(v: &Value) -> Result<PrependScheme, Unsupported> {
    match v["prepend_scheme"].as_str() {
        Some("always") => Ok(PrependScheme::Always),
        Some("first") => Ok(PrependScheme::First),
        Some("never") => Ok(PrependScheme::Never),
        // Files from before prepend_scheme: add_prefix_space.
        None if v["add_prefix_space"] == false => Ok(PrependScheme::Never),
        None => Ok(PrependScheme::Always),
        Some(o) => no(format!("Metaspace prepend_scheme {o}")),
    }
}

fn metaspace_char(v: &Value) -> Result<char, Unsupported> {
    let s = v["replacement"].as_str().unwrap_or("▁");
    let mut cs = s.chars();
    match (cs.next(), cs.next()) {
        (Some(c), None) => Ok(c),
        _ => no("a Metaspace replacement of more than one character"),
    }
}

/// The split regex of a `Split` or `ByteLevel` pre-tokenizer: one of the
/// presets when it is one of their patterns, else the regex compiled with
/// fancy-regex, the engine the `tokenizers` crate is built with here.
fn split_of(v: &Value) -> Result<PreTokenizer, Unsupported> {
    if v["behavior"].as_str() != Some("Isolated") || v["invert"] != false {
        return no("a Split other than Isolated");
    }
    let pattern = match (
        v["pattern"]["Regex"].as_str(),
        v["pattern"]["String"].as_str(),
    ) {
        (Some(r), _) => r.to_string(),
        (None, Some(s)) => fancy_regex::escape(s).into_owned(),
        _ => return no("a Split without a pattern"),
    };
    Ok(match pattern.as_str() {
        GPT2 => PreTokenizer::Preset(Preset::Gpt2),
        LLAMA3 => PreTokenizer::Preset(Preset::Llama3),
        QWEN2 => PreTokenizer::Preset(Preset::Qwen2),
        p => PreTokenizer::Custom(
            fancy_regex::Regex::new(p).map_err(|e| Unsupported(format!("the regex: {e}")))?,
        ),
    })
}

fn read_pre(v: &Value) -> Result<Pre, Unsupported> {
    let steps: Vec<&Value> = match v["type"].as_str() {
        None if v.is_null() => vec![],
        Some("Sequence") => v["pretokenizers"]
            .as_array()
            .into_iter()
            .flatten()
            .collect(),
        Some(_) => vec![v],
        None => return no("a pre-tokenizer without a type"),
    };
    let kinds: Vec<&str> = steps
        .iter()
        .map(|s| s["type"].as_str().unwrap_or(""))
        .collect();
    let digits_ok = |d: &Value| d["individual_digits"] == true;
    match kinds.as_slice() {
        [] => Ok(Pre::Chars {
            metaspace: None,
            digits: false,
        }),
        // GPT-2: the ByteLevel regex.
        ["ByteLevel"] | ["Digits", "ByteLevel"] => {
            let b = steps[kinds.len() - 1];
            if kinds.len() == 2 && !digits_ok(steps[0]) {
                return no("Digits without individual_digits");
            }
            if kinds.len() == 2 && b["use_regex"] != false {
                return no("Digits before the ByteLevel regex");
            }
            let regex = b["use_regex"] != false;
            Ok(Pre::ByteLevel {
                split: regex.then_some(PreTokenizer::Preset(Preset::Gpt2)),
                digits: kinds.len() == 2,
                prefix_segment: b["add_prefix_space"] == true && regex,
                prefix_piece: false,
            })
        }
        // Llama 3, Qwen 2, sluice: a Split, digits alone, bytes.
        ["Split", "ByteLevel"] | ["Split", "Digits", "ByteLevel"] => {
            let b = steps[kinds.len() - 1];
            if b["use_regex"] != false {
                return no("a Split before a ByteLevel with its own regex");
            }
            if kinds.len() == 3 && !digits_ok(steps[1]) {
                return no("Digits without individual_digits");
            }
            Ok(Pre::ByteLevel {
                split: Some(split_of(steps[0])?),
                digits: kinds.len() == 3,
                prefix_segment: false,
                prefix_piece: b["add_prefix_space"] == true,
            })
        }
        ["Metaspace"] | ["Metaspace", "Digits"] | ["Digits", "Metaspace"] => {
            let m = steps[kinds.iter().position(|k| *k == "Metaspace").unwrap()];
            if kinds.len() == 2 {
                let d = steps[kinds.iter().position(|k| *k == "Digits").unwrap()];
                if !digits_ok(d) {
                    return no("Digits without individual_digits");
                }
                if kinds[0] == "Digits" {
                    return no("Digits before Metaspace");
                }
            }
            Ok(Pre::Chars {
                metaspace: Some((metaspace_char(m)?, scheme(m)?, m["split"] != false)),
                digits: kinds.len() == 2,
            })
        }
        ["Digits"] => {
            if !digits_ok(steps[0]) {
                return no("Digits without individual_digits");
            }
            Ok(Pre::Chars {
                metaspace: None,
                digits: true,
            })
        }
        other => no(format!("the pre-tokenizers {other:?}")),
    }
}

fn read_decoder(v: &Value) -> Option<Decoder> {
    match v["type"].as_str()? {
        "ByteLevel" => Some(Decoder::ByteLevel),
        "Metaspace" => Some(Decoder::Chars {
            mark: metaspace_char(v).ok()?,
            bytes: false,
            strip: usize::from(scheme(v).ok()? != PrependScheme::Never),
        }),
        "Sequence" => {
            // Llama 2's: Replace(▁, " "), ByteFallback, Fuse, Strip(" ", n, 0).
            let ds = v["decoders"].as_array()?;
            let kinds: Vec<&str> = ds.iter().filter_map(|d| d["type"].as_str()).collect();
            match kinds.as_slice() {
                ["Replace", "ByteFallback", "Fuse", "Strip"]
                | ["Replace", "ByteFallback", "Fuse"] => {
                    let mark = ds[0]["pattern"]["String"].as_str()?;
                    let mut cs = mark.chars();
                    let mark = match (cs.next(), cs.next()) {
                        (Some(c), None) => c,
                        _ => return None,
                    };
                    if ds[0]["content"] != " " {
                        return None;
                    }
                    let strip = match ds.get(3) {
                        Some(s) if s["content"] == " " && s["stop"] == 0 => s["start"].as_u64()?,
                        Some(_) => return None,
                        None => 0,
                    };
                    Some(Decoder::Chars {
                        mark,
                        bytes: true,
                        strip: strip as usize,
                    })
                }
                _ => None,
            }
        }
        _ => None,
    }
}

impl FastTokenizer {
    /// Reads a `tokenizer.json`; [`Unsupported`] says what in it sluice does
    /// not read (the `tokenizers` crate encodes those).
    pub fn from_json(json: &Value) -> Result<FastTokenizer, Unsupported> {
        let model = &json["model"];
        if model["type"] != "BPE" {
            return no(format!("the model {}", model["type"]));
        }
        for key in ["dropout", "continuing_subword_prefix", "end_of_word_suffix"] {
            if !model[key].is_null() && model[key] != "" {
                return no(format!("BPE {key}"));
            }
        }
        let mut norm = vec![];
        read_norm(&json["normalizer"], &mut norm)?;
        let pre = read_pre(&json["pre_tokenizer"])?;
        let byte_level = matches!(pre, Pre::ByteLevel { .. });
        let vocab = model["vocab"]
            .as_object()
            .ok_or_else(|| Unsupported("no vocab".into()))?;
        // Ids index tables here: a file whose ids lie far beyond its number
        // of tokens (a hand-made or damaged one) is left to the crate
        // rather than sized by its largest id.
        let entries = vocab.len() + json["added_tokens"].as_array().map_or(0, Vec::len);
        let max_id = vocab
            .values()
            .chain(
                json["added_tokens"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|t| &t["id"]),
            )
            .filter_map(Value::as_u64)
            .max()
            .unwrap_or(0);
        if max_id >= 2 * entries as u64 + 1024 {
            return no(format!(
                "ids up to {max_id} for {entries} tokens (sluice's tables are sized by the largest id)"
            ));
        }
        let mut tokens: Vec<Option<String>> = vec![];
        let mut id_of: HashMap<&str, u32> = HashMap::with_capacity(vocab.len());
        let put = |tokens: &mut Vec<Option<String>>, id: u32, s: &str| {
            let i = id as usize;
            if tokens.len() <= i {
                tokens.resize(i + 1, None);
            }
            tokens[i] = Some(s.to_string());
        };
        for (s, id) in vocab {
            let id = id
                .as_u64()
                .filter(|&i| i < u32::MAX as u64 / 2)
                .ok_or_else(|| Unsupported("a vocab id that is not a number".into()))?
                as u32;
            put(&mut tokens, id, s);
            id_of.insert(s.as_str(), id);
        }
        // Added tokens: matched in the raw text before anything else.
        let mut contents = vec![];
        let mut added_ids = vec![];
        let mut special = vec![];
        for t in json["added_tokens"].as_array().into_iter().flatten() {
            let (Some(c), Some(id)) = (t["content"].as_str(), t["id"].as_u64()) else {
                return no("an added token without content or id");
            };
            for key in ["lstrip", "rstrip", "single_word"] {
                if !is_null_or_false(&t[key]) {
                    return no(format!("an added token with {key}"));
                }
            }
            if t["normalized"] == true && !norm.is_empty() {
                return no("an added token matched in the normalised text");
            }
            let id = id as u32;
            put(&mut tokens, id, c);
            if !c.is_empty() {
                contents.push(c.to_string());
                added_ids.push(id);
            }
            if special.len() <= id as usize {
                special.resize(id as usize + 1, false);
            }
            special[id as usize] = t["special"] == true;
        }
        special.resize(tokens.len(), false);
        let added = if contents.is_empty() {
            None
        } else {
            Some(
                AhoCorasick::builder()
                    .match_kind(MatchKind::LeftmostLongest)
                    .build(&contents)
                    .map_err(|e| Unsupported(format!("added tokens: {e}")))?,
            )
        };
        let unk = match model["unk_token"].as_str() {
            Some(u) => Some(
                *id_of
                    .get(u)
                    .ok_or_else(|| Unsupported("an unk_token outside the vocab".into()))?,
            ),
            None => None,
        };
        let byte_fallback = model["byte_fallback"] == true;
        let mut byte_ids = [u32::MAX; 256];
        let chars = byte_chars();
        for b in 0..256 {
            let key = if byte_level {
                chars[b].to_string()
            } else {
                format!("<0x{b:02X}>")
            };
            if let Some(&id) = id_of.get(key.as_str()) {
                byte_ids[b] = id;
            } else if byte_level {
                return no("a byte-level vocab without every byte");
            }
        }
        let mut char_ids: HashMap<char, u32, FxBuild> = HashMap::default();
        if !byte_level {
            for (s, &id) in &id_of {
                let mut cs = s.chars();
                if let (Some(c), None) = (cs.next(), cs.next()) {
                    char_ids.insert(c, id);
                }
            }
        }
        let mut merges = Merges::default();
        let mut joined = String::new();
        for (rank, m) in model["merges"].as_array().into_iter().flatten().enumerate() {
            let (a, b) = merge_parts(m).ok_or_else(|| Unsupported(format!("merge {rank}")))?;
            joined.clear();
            joined.push_str(a);
            joined.push_str(b);
            let (Some(&ia), Some(&ib), Some(&made)) =
                (id_of.get(a), id_of.get(b), id_of.get(joined.as_str()))
            else {
                return no(format!("merge {rank} of tokens outside the vocab"));
            };
            merges.insert((ia, ib), rank as u32, made);
        }
        let words = (model["ignore_merges"] == true).then(|| {
            let byte_of: HashMap<char, u8> = chars
                .iter()
                .enumerate()
                .map(|(b, c)| (*c, b as u8))
                .collect();
            id_of
                .iter()
                .filter_map(|(s, &id)| {
                    let key = if byte_level {
                        s.chars()
                            .map(|c| byte_of.get(&c).copied())
                            .collect::<Option<Vec<u8>>>()?
                    } else {
                        s.as_bytes().to_vec()
                    };
                    Some((key, id))
                })
                .collect()
        });
        Ok(FastTokenizer {
            added,
            added_ids,
            norm,
            pre,
            merges,
            byte_ids,
            char_ids,
            words,
            unk,
            fuse_unk: model["fuse_unk"] == true,
            byte_fallback,
            special,
            tokens,
            decoder: read_decoder(&json["decoder"]),
        })
    }

    /// One more than the largest id.
    pub fn vocab_size(&self) -> usize {
        self.tokens.len()
    }

    /// The ids of a text, no BOS or EOS (`add_special_tokens = false`).
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let mut out = Vec::with_capacity(text.len() / 3);
        let mut first = true;
        let mut last = 0;
        if let Some(ac) = &self.added {
            for m in ac.find_iter(text) {
                self.encode_segment(&text[last..m.start()], first, &mut out);
                out.push(self.added_ids[m.pattern().as_usize()]);
                first = false;
                last = m.end();
            }
        }
        self.encode_segment(&text[last..], first, &mut out);
        out
    }

    /// A stretch of text between added tokens: each of its words merged.
    fn encode_segment(&self, text: &str, first: bool, out: &mut Vec<u32>) {
        self.segment_words(text, first, false, &mut |w| self.encode_word(w, out));
    }

    /// The words of a stretch of text between added tokens: normalised,
    /// cut by the pre-tokenizer, in the model's symbols (bytes for a
    /// byte-level model, characters' UTF-8 otherwise). `first`: the stretch
    /// starts the text (Metaspace's `first` scheme marks only that one).
    /// `at_marks`: a character model without a pre-tokenizer (Llama 2) has
    /// the whole stretch as one word; for training it is cut before each
    /// run of `▁` instead, which changes no encoding: no piece holds a `▁`
    /// after another character (SentencePiece's rule, and the trainer's).
    fn segment_words(&self, text: &str, first: bool, at_marks: bool, f: &mut dyn FnMut(&str)) {
        if text.is_empty() {
            return;
        }
        let normed;
        let text = if self.norm.is_empty() {
            text
        } else {
            normed = self.normalize(text);
            if normed.is_empty() {
                return;
            }
            normed.as_str()
        };
        match &self.pre {
            Pre::ByteLevel {
                split,
                digits,
                prefix_segment,
                prefix_piece,
            } => {
                let spaced;
                let text = if *prefix_segment && !text.starts_with(' ') {
                    spaced = format!(" {text}");
                    spaced.as_str()
                } else {
                    text
                };
                let mut buf = String::new();
                let mut word = |p: &str| {
                    if *prefix_piece && !p.starts_with(' ') {
                        buf.clear();
                        buf.push(' ');
                        buf.push_str(p);
                        f(&buf);
                    } else {
                        f(p);
                    }
                };
                match split {
                    Some(pre) => pieces(pre, *digits, text, word),
                    None if *digits => split_digits(text, word),
                    None => word(text),
                }
            }
            Pre::Chars { metaspace, digits } => {
                let mut word = |w: &str| {
                    if *digits {
                        split_digits(w, &mut *f)
                    } else {
                        f(w)
                    }
                };
                match metaspace {
                    None if at_marks => split_before_runs(text, WS, word),
                    None => word(text),
                    Some((mark, scheme, split)) => {
                        let mut s = String::with_capacity(text.len() + 3);
                        let prepend = match scheme {
                            PrependScheme::Always => true,
                            PrependScheme::First => first,
                            PrependScheme::Never => false,
                        };
                        // After the spaces became marks, as `tokenizers`
                        // checks it.
                        if prepend && !text.starts_with([' ', *mark]) {
                            s.push(*mark);
                        }
                        s.extend(text.chars().map(|c| if c == ' ' { *mark } else { c }));
                        if !split {
                            if at_marks {
                                split_before_runs(&s, *mark, word)
                            } else {
                                word(&s)
                            }
                        } else {
                            // Each word starts at a mark (MergedWithNext).
                            let mut start = 0;
                            for (i, c) in s.char_indices() {
                                if c == *mark && i > start {
                                    word(&s[start..i]);
                                    start = i;
                                }
                            }
                            word(&s[start..]);
                        }
                    }
                }
            }
        }
    }

    /// Whether the model's symbols are bytes (GPT-2's byte-level map).
    pub fn is_byte_level(&self) -> bool {
        matches!(self.pre, Pre::ByteLevel { .. })
    }

    /// Calls `f` on each word of `text` as a trainer extending this model
    /// counts them: added tokens left out, normalised, pre-tokenized (a
    /// Llama 2-style stretch cut before each run of `▁`). Encoding each
    /// word with [`Self::encode_word`] and joining gives [`Self::encode`]
    /// less the added tokens.
    pub fn for_each_word(&self, text: &str, f: &mut dyn FnMut(&str)) {
        let (mut first, mut last) = (true, 0);
        if let Some(ac) = &self.added {
            for m in ac.find_iter(text) {
                self.segment_words(&text[last..m.start()], first, true, f);
                first = false;
                last = m.end();
            }
        }
        self.segment_words(&text[last..], first, true, f);
    }

    /// The ids of one word (from [`Self::for_each_word`]), appended.
    pub fn encode_word(&self, word: &str, out: &mut Vec<u32>) {
        if self.is_byte_level() {
            self.encode_bytes(word.as_bytes(), out)
        } else {
            self.encode_chars(word, out)
        }
    }

    /// A token's text as the vocab writes it (GPT-2's characters for a
    /// byte-level model), added tokens included.
    pub fn token(&self, id: u32) -> Option<&str> {
        self.tokens.get(id as usize)?.as_deref()
    }

    /// Whether a character model has `c` as a token of its own (else it
    /// falls back to bytes or `<unk>`).
    pub fn has_char(&self, c: char) -> bool {
        self.char_ids.contains_key(&c)
    }

    /// Whether `id` is an added token (special or not): matched in the raw
    /// text, never merged.
    pub fn is_added(&self, id: u32) -> bool {
        self.added_ids.contains(&id)
    }

    fn normalize(&self, text: &str) -> String {
        let mut s = text.to_string();
        for n in &self.norm {
            s = match n {
                Norm::Nfc => Normalization::Nfc.apply(&s).into_owned(),
                Norm::Nfkc => Normalization::Nfkc.apply(&s).into_owned(),
                Norm::Prepend(p) if !s.is_empty() => format!("{p}{s}"),
                Norm::Prepend(_) => s,
                Norm::Replace(a, b) => s.replace(a.as_str(), b),
            };
        }
        s
    }

    /// A byte-level word.
    fn encode_bytes(&self, word: &[u8], out: &mut Vec<u32>) {
        if let Some(words) = &self.words {
            if let Some(&id) = words.get(word) {
                out.push(id);
                return;
            }
        }
        let start = out.len();
        out.extend(word.iter().map(|&b| self.byte_ids[b as usize]));
        self.merges.apply(out, start);
    }

    /// A word of characters: each its token, else its bytes' `<0xNN>`
    /// tokens (byte fallback), else `<unk>` (consecutive ones fused with
    /// `fuse_unk`), else nothing, as the `tokenizers` crate does.
    fn encode_chars(&self, word: &str, out: &mut Vec<u32>) {
        if word.is_empty() {
            return;
        }
        if let Some(words) = &self.words {
            if let Some(&id) = words.get(word.as_bytes()) {
                out.push(id);
                return;
            }
        }
        let start = out.len();
        let mut last_unk = false;
        for c in word.chars() {
            if let Some(&id) = self.char_ids.get(&c) {
                out.push(id);
                last_unk = false;
                continue;
            }
            if self.byte_fallback {
                let mut buf = [0u8; 4];
                let bytes = c.encode_utf8(&mut buf).as_bytes();
                if bytes.iter().all(|&b| self.byte_ids[b as usize] != u32::MAX) {
                    out.extend(bytes.iter().map(|&b| self.byte_ids[b as usize]));
                    last_unk = false;
                    continue;
                }
            }
            if let Some(unk) = self.unk {
                if !(self.fuse_unk && last_unk) {
                    out.push(unk);
                }
                last_unk = true;
            }
        }
        self.merges.apply(out, start);
    }

    /// Whether decoding runs here (a decoder sluice reads); otherwise the
    /// `tokenizers` crate decodes.
    pub fn can_decode(&self) -> bool {
        self.decoder.is_some()
    }

    /// The text of ids, added tokens included unless `skip_special` and
    /// special. None when the decoder is not one sluice reads.
    pub fn decode(&self, ids: &[u32], skip_special: bool) -> Option<String> {
        let decoder = self.decoder?;
        let mut bytes: Vec<u8> = vec![];
        let mut byte_of = [0u16; 0x180];
        if decoder == Decoder::ByteLevel {
            for (b, c) in byte_chars().iter().enumerate() {
                byte_of[*c as usize] = b as u16 + 1;
            }
        }
        for &id in ids {
            let i = id as usize;
            if skip_special && self.special.get(i).copied().unwrap_or(false) {
                continue;
            }
            let Some(Some(tok)) = self.tokens.get(i) else {
                continue;
            };
            match decoder {
                // A token with a character outside the byte map (an added
                // token in another script) is its own UTF-8, as in
                // `tokenizers`.
                Decoder::ByteLevel => {
                    let at = bytes.len();
                    for c in tok.chars() {
                        match byte_of.get(c as usize).copied().filter(|&b| b > 0) {
                            Some(b) => bytes.push((b - 1) as u8),
                            None => {
                                bytes.truncate(at);
                                bytes.extend_from_slice(tok.as_bytes());
                                break;
                            }
                        }
                    }
                }
                Decoder::Chars {
                    mark,
                    bytes: fallback,
                    ..
                } => {
                    if let Some(b) = byte_token(tok).filter(|_| fallback) {
                        bytes.push(b);
                    } else {
                        for c in tok.chars() {
                            let c = if c == mark { ' ' } else { c };
                            let mut buf = [0u8; 4];
                            bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                        }
                    }
                }
            }
        }
        let mut s = String::from_utf8_lossy(&bytes).into_owned();
        if let Decoder::Chars { strip, .. } = decoder {
            let cut = s.chars().take(strip).take_while(|&c| c == ' ').count();
            s.drain(..cut);
        }
        Some(s)
    }
}

/// `<0xNN>`: the byte.
pub(crate) fn byte_token(tok: &str) -> Option<u8> {
    let hex = tok.strip_prefix("<0x")?.strip_suffix('>')?;
    (hex.len() == 2).then(|| u8::from_str_radix(hex, 16).ok())?
}

/// Calls `f` on the pieces of `text` cut before each run of `mark` (a run
/// joins the word after it), as SentencePiece's trainer splits a sentence.
fn split_before_runs<'a>(text: &'a str, mark: char, mut f: impl FnMut(&'a str)) {
    let (mut start, mut prev_mark) = (0, false);
    for (i, c) in text.char_indices() {
        let is_mark = c == mark;
        if is_mark && !prev_mark && i > start {
            f(&text[start..i]);
            start = i;
        }
        prev_mark = is_mark;
    }
    if start < text.len() {
        f(&text[start..]);
    }
}

/// Hugging Face's `Digits(individual_digits)`: each number character alone.
fn split_digits<'a>(text: &'a str, mut f: impl FnMut(&'a str)) {
    let mut start = 0;
    for (j, c) in text.char_indices() {
        if c.is_numeric() {
            if start < j {
                f(&text[start..j]);
            }
            f(&text[j..j + c.len_utf8()]);
            start = j + c.len_utf8();
        }
    }
    if start < text.len() {
        f(&text[start..]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tiny(vocab: Value, added: Value) -> Value {
        json!({"added_tokens": added, "normalizer": null, "pre_tokenizer": null, "decoder": null,
               "model": {"type": "BPE", "vocab": vocab, "merges": [], "unk_token": null}})
    }

    #[test]
    fn what_it_does_not_read_is_named() {
        let e = FastTokenizer::from_json(&json!({"model": {"type": "WordPiece"}}))
            .err()
            .unwrap();
        assert!(e.0.contains("WordPiece"), "{e}");
        // Sparse ids: not sized by the largest one.
        let e = FastTokenizer::from_json(&tiny(json!({"a": 0, "b": 4_000_000_000u64}), json!([])))
            .err()
            .unwrap();
        assert!(e.0.contains("vocab id") || e.0.contains("ids up to"), "{e}");
        let e = FastTokenizer::from_json(&tiny(
            json!({"a": 0}),
            json!([{"id": 90_000_000, "content": "x"}]),
        ))
        .err()
        .unwrap();
        assert!(e.0.contains("ids up to"), "{e}");
        let t = FastTokenizer::from_json(&tiny(json!({"a": 0, "b": 1}), json!([]))).unwrap();
        assert_eq!(t.encode("ab"), vec![0, 1]);
    }
}
