//! `gopher_quality` and `gopher_repetition`: the quality and repetition rules
//! of Gopher (Rae et al. 2021, MassiveText, table A1), with datatrove's
//! definitions and defaults, reproduced decision for decision on English.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::ops::ControlFlow;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::ops::quality::rules::{
    find_duplicates, ratio, LanguageRules, Signal, SignalKind, Signals, Threshold, Verdict,
    MODE_PARAM,
};
use crate::ops::{BuildCtx, DocBatch, Op, OpInfo, OpKind, OpOutput, ParamDoc, StreamOp};
use crate::pipeline::spec::SpecError;
use crate::text::punct::is_punctuation;
use crate::text::pystr;
use crate::text::words::Segmenter;

// ---------------------------------------------------------------- quality

#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct GopherQualityParams {
    pub min_doc_words: usize,
    pub max_doc_words: usize,
    pub min_avg_word_length: f64,
    pub max_avg_word_length: f64,
    pub max_symbol_word_ratio: f64,
    pub max_bullet_lines_ratio: f64,
    pub max_ellipsis_lines_ratio: f64,
    pub max_non_alpha_words_ratio: f64,
    pub min_stop_words: usize,
    pub stop_words: Vec<String>,
    /// Line endings that are ordinary punctuation in the language, not a
    /// truncated teaser: lines ending so do not count as ellipsis lines.
    pub prose_ellipses: Vec<String>,
}

impl Default for GopherQualityParams {
    fn default() -> Self {
        Self {
            min_doc_words: 50,
            max_doc_words: 100_000,
            min_avg_word_length: 3.0,
            max_avg_word_length: 10.0,
            max_symbol_word_ratio: 0.1,
            max_bullet_lines_ratio: 0.9,
            max_ellipsis_lines_ratio: 0.3,
            max_non_alpha_words_ratio: 0.8,
            min_stop_words: 2,
            stop_words: ["the", "be", "to", "of", "and", "that", "have", "with"]
                .map(String::from)
                .to_vec(),
            prose_ellipses: Default::default(),
        }
    }
}

/// Chinese words are single characters here (see `text::words`): their mean
/// length is about 1, and full-width punctuation and numbers are "words"
/// without letters. The stop words are the 30 most frequent characters of
/// modern Chinese (Jun Da's frequency list), the counterpart of Gopher's
/// eight most frequent English words: nearly every sentence of prose has two
/// of them, lists of names and keyword spam do not. "……" is the Chinese
/// ellipsis (GB/T 15834), ordinary punctuation in prose, unlike the "..."
/// and "…" of truncated teasers.
const QUALITY_ZH: &str = r#"
min_avg_word_length = 1
max_avg_word_length = 10
max_non_alpha_words_ratio = 0.65
stop_words = ["的", "一", "是", "不", "了", "在", "人", "有", "我", "他", "这", "个", "们", "中", "来",
              "上", "大", "为", "和", "国", "地", "到", "以", "说", "时", "要", "就", "出", "会", "可"]
prose_ellipses = ["……"]
"#;

/// Japanese: character words too; the stop words are its commonest particles
/// and endings, written in kana.
const QUALITY_JA: &str = r#"
min_avg_word_length = 1
max_avg_word_length = 10
max_non_alpha_words_ratio = 0.65
stop_words = ["の", "に", "は", "を", "た", "が", "で", "て", "と", "し", "れ", "さ", "な", "も", "る"]
prose_ellipses = ["……"]
"#;

/// Thai, Lao, Khmer, Burmese and Tibetan: character words too, but no stop
/// word list of ours yet, so that rule is off for them.
const QUALITY_UNSPACED_NO_STOP: &str = r#"
min_avg_word_length = 1
max_avg_word_length = 10
max_non_alpha_words_ratio = 0.65
min_stop_words = 0
"#;

pub const QUALITY_LANGS: &[(&str, &str)] = &[
    ("zh", QUALITY_ZH),
    ("ja", QUALITY_JA),
    ("yue", QUALITY_ZH),
    ("wuu", QUALITY_ZH),
    ("th", QUALITY_UNSPACED_NO_STOP),
    ("lo", QUALITY_UNSPACED_NO_STOP),
    ("km", QUALITY_UNSPACED_NO_STOP),
    ("my", QUALITY_UNSPACED_NO_STOP),
    ("bo", QUALITY_UNSPACED_NO_STOP),
];

pub const QUALITY_INFO: OpInfo = OpInfo {
    name: "gopher_quality",
    kind: OpKind::Stream,
    summary: "Gopher quality rules (datatrove's GopherQualityFilter, its defaults): word count, mean word \
              length, # and ellipsis per word, bullet and ellipsis lines, words with letters, stop words. \
              Per-language overrides in [step.languages.<code>]; zh and ja have built-in ones.",
    params: &[
        ParamDoc { name: "min_doc_words", kind: "integer", default: "50", doc: "fewer non-symbol words: drop" },
        ParamDoc { name: "max_doc_words", kind: "integer", default: "100000", doc: "more non-symbol words: drop" },
        ParamDoc { name: "min_avg_word_length", kind: "float", default: "3", doc: "mean non-symbol word length below: drop" },
        ParamDoc { name: "max_avg_word_length", kind: "float", default: "10", doc: "mean non-symbol word length above: drop" },
        ParamDoc { name: "max_symbol_word_ratio", kind: "float", default: "0.1", doc: "'#' or ellipses per word above: drop" },
        ParamDoc { name: "max_bullet_lines_ratio", kind: "float", default: "0.9", doc: "share of lines starting with • or -" },
        ParamDoc { name: "max_ellipsis_lines_ratio", kind: "float", default: "0.3", doc: "share of lines ending with ... or …" },
        ParamDoc { name: "max_non_alpha_words_ratio", kind: "float", default: "0.8", doc: "share of words with a letter below: drop" },
        ParamDoc { name: "min_stop_words", kind: "integer", default: "2", doc: "distinct stop words needed" },
        ParamDoc { name: "stop_words", kind: "list", default: "[\"the\", \"be\", \"to\", \"of\", \"and\", \"that\", \"have\", \"with\"]", doc: "case-sensitive" },
        ParamDoc { name: "prose_ellipses", kind: "list", default: "[]", doc: "line endings that do not count as ellipsis lines (zh, ja: [\"……\"])" },
        ParamDoc { name: "lang_column", kind: "string", default: "\"lang\"", doc: "column picking per-language rules" },
        ParamDoc { name: "languages", kind: "table", default: "zh, ja built in", doc: "[step.languages.<code>] overrides" },
        MODE_PARAM,
    ],
    drop_reasons: &[
        "gopher_quality:short_doc", "gopher_quality:long_doc", "gopher_quality:below_avg_threshold",
        "gopher_quality:above_avg_threshold", "gopher_quality:too_many_hashes", "gopher_quality:too_many_ellipsis",
        "gopher_quality:too_many_bullets", "gopher_quality:too_many_end_ellipsis",
        "gopher_quality:below_alpha_threshold", "gopher_quality:stop_words",
    ],
    outputs: &[],
    build: build_quality,
    config: crate::ops::quality::rules::shape::<GopherQualityParams>,
    example: r#"
[[step]]
op = "gopher_quality"
min_doc_words = 20
"#,
    about: r#"
Gopher's quality rules (Rae et al. 2021) with datatrove 0.10.1's exact
definitions and defaults: word count, mean word length, `#` and ellipses
per word, bullet and ellipsis lines, words with letters, stop words (by
default the eight commonest English words: the be to of and that have
with). Per-language overrides in `[step.languages.<code>]`; Chinese and
Japanese have built-in ones. See
[spec.md, The rule filters](spec.md#the-rule-filters).

`mode = "annotate"` keeps every document and writes the signals the rules
compare (the row's language's parameters apply): `gopher_word_count`
(words with a character that is not punctuation; `min_doc_words`,
`max_doc_words`), `gopher_mean_word_length` (their mean length;
`min_avg_word_length`, `max_avg_word_length`), `gopher_hash_word_ratio`
and `gopher_ellipsis_word_ratio` (`#`, and `...` or `…`, per word;
`max_symbol_word_ratio`), `gopher_frac_lines_bullet` (lines starting with
• or -; `max_bullet_lines_ratio`), `gopher_frac_lines_end_ellipsis`
(`max_ellipsis_lines_ratio`), `gopher_frac_alpha_words` (words with a
letter: dropped below `max_non_alpha_words_ratio`) and `gopher_stop_words`
(distinct stop words present; `min_stop_words`).
"#,
};

pub struct GopherQuality {
    rules: LanguageRules<GopherQualityParams>,
    signals: Signals,
}

fn build_quality(ctx: &BuildCtx<'_>) -> Result<Op, SpecError> {
    Ok(Op::Stream(Box::new(GopherQuality {
        rules: LanguageRules::build(ctx, QUALITY_LANGS)?,
        signals: Signals::new(QUALITY_SIGNALS),
    })))
}

/// The signals of `gopher_quality`, numbered as its rules report them.
pub const QUALITY_SIGNALS: &[(&str, SignalKind)] = &[
    ("gopher_word_count", SignalKind::Count),
    ("gopher_mean_word_length", SignalKind::Ratio),
    ("gopher_hash_word_ratio", SignalKind::Ratio),
    ("gopher_ellipsis_word_ratio", SignalKind::Ratio),
    ("gopher_frac_lines_bullet", SignalKind::Ratio),
    ("gopher_frac_lines_end_ellipsis", SignalKind::Ratio),
    ("gopher_frac_alpha_words", SignalKind::Ratio),
    ("gopher_stop_words", SignalKind::Count),
];

/// The rule a document fails, or `None` to keep it.
pub fn gopher_quality(text: &str, seg: &Segmenter, p: &GopherQualityParams) -> Option<String> {
    gopher_quality_rules(text, seg, p, &mut Verdict::Drop).break_value()
}

/// Gopher's quality rules in the reference's order, each to `v`.
pub fn gopher_quality_rules(
    text: &str,
    seg: &Segmenter,
    p: &GopherQualityParams,
    v: &mut Verdict<'_>,
) -> ControlFlow<String> {
    fn why(r: &'static str) -> impl FnOnce() -> String {
        move || format!("gopher_quality:{r}")
    }
    let words = seg.words(text);
    let n_words = words.len();
    let non_symbol: Vec<&str> = words
        .iter()
        .copied()
        .filter(|w| w.chars().any(|c| !is_punctuation(c)))
        .collect();
    let n = non_symbol.len();
    v.rule(0, Signal::Count(n), n < p.min_doc_words, why("short_doc"))?;
    v.rule(0, Signal::Count(n), n > p.max_doc_words, why("long_doc"))?;
    let mean = non_symbol.iter().map(|w| pystr::len(w)).sum::<usize>() as f64 / n.max(1) as f64;
    let m = Signal::Ratio(mean);
    v.rule(
        1,
        m,
        mean < p.min_avg_word_length,
        why("below_avg_threshold"),
    )?;
    v.rule(
        1,
        m,
        mean > p.max_avg_word_length,
        why("above_avg_threshold"),
    )?;
    let hashes = ratio(text.matches('#').count(), n_words);
    let fails = hashes > p.max_symbol_word_ratio;
    v.rule(2, Signal::Ratio(hashes), fails, why("too_many_hashes"))?;
    let dots = text.matches("...").count() + text.matches('…').count();
    let dots = ratio(dots, n_words);
    let fails = dots > p.max_symbol_word_ratio;
    v.rule(3, Signal::Ratio(dots), fails, why("too_many_ellipsis"))?;
    let lines = pystr::splitlines(text);
    let bullets = lines
        .iter()
        .filter(|l| {
            let l = l.trim_start_matches(pystr::is_space);
            l.starts_with('•') || l.starts_with('-')
        })
        .count();
    let bullets = ratio(bullets, lines.len());
    let fails = bullets > p.max_bullet_lines_ratio;
    v.rule(4, Signal::Ratio(bullets), fails, why("too_many_bullets"))?;
    let ellipsis = lines
        .iter()
        .filter(|l| {
            let l = l.trim_end_matches(pystr::is_space);
            (l.ends_with("...") || l.ends_with('…'))
                && !p.prose_ellipses.iter().any(|e| l.ends_with(e.as_str()))
        })
        .count();
    let ellipsis = ratio(ellipsis, lines.len());
    let fails = ellipsis > p.max_ellipsis_lines_ratio;
    v.rule(
        5,
        Signal::Ratio(ellipsis),
        fails,
        why("too_many_end_ellipsis"),
    )?;
    let alpha = words
        .iter()
        .filter(|w| w.chars().any(char::is_alphabetic))
        .count();
    let alpha = ratio(alpha, n_words);
    let fails = alpha < p.max_non_alpha_words_ratio;
    v.rule(6, Signal::Ratio(alpha), fails, why("below_alpha_threshold"))?;
    let present: HashSet<&str> = words.iter().copied().collect();
    let stop: HashSet<&str> = p.stop_words.iter().map(String::as_str).collect();
    let found = stop.iter().filter(|s| present.contains(*s)).count();
    v.rule(
        7,
        Signal::Count(found),
        found < p.min_stop_words,
        why("stop_words"),
    )
}

impl StreamOp for GopherQuality {
    fn apply(&self, batch: DocBatch) -> Result<OpOutput> {
        self.rules.apply(batch, &self.signals, gopher_quality_rules)
    }

    fn thresholds(&self) -> Vec<Threshold> {
        self.rules.thresholds(|p| {
            let t = |c: usize, keep: &str, v: f64| Threshold::new(QUALITY_SIGNALS[c].0, keep, v);
            vec![
                t(0, ">=", p.min_doc_words as f64),
                t(0, "<=", p.max_doc_words as f64),
                t(1, ">=", p.min_avg_word_length),
                t(1, "<=", p.max_avg_word_length),
                t(2, "<=", p.max_symbol_word_ratio),
                t(3, "<=", p.max_symbol_word_ratio),
                t(4, "<=", p.max_bullet_lines_ratio),
                t(5, "<=", p.max_ellipsis_lines_ratio),
                t(6, ">=", p.max_non_alpha_words_ratio),
                t(7, ">=", p.min_stop_words as f64),
            ]
        })
    }
}

// ------------------------------------------------------------- repetition

#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct GopherRepetitionParams {
    pub dup_line_frac: f64,
    pub dup_para_frac: f64,
    pub dup_line_char_frac: f64,
    pub dup_para_char_frac: f64,
    /// `[[n, fraction], …]`: the most frequent n-gram's characters over the text's.
    pub top_n_grams: Vec<(usize, f64)>,
    /// `[[n, fraction], …]`: characters of repeated n-grams over the text's.
    pub dup_n_grams: Vec<(usize, f64)>,
    /// The reference counts the top n-gram even when it occurs once, so every
    /// short document fails (one 4-gram covers a 20-word text). 2 counts only
    /// n-grams that repeat: the fix, opt-in for the reference's languages.
    pub top_n_gram_min_count: usize,
}

impl Default for GopherRepetitionParams {
    fn default() -> Self {
        Self {
            dup_line_frac: 0.3,
            dup_para_frac: 0.3,
            dup_line_char_frac: 0.2,
            dup_para_char_frac: 0.2,
            top_n_grams: vec![(2, 0.2), (3, 0.18), (4, 0.16)],
            dup_n_grams: vec![
                (5, 0.15),
                (6, 0.14),
                (7, 0.13),
                (8, 0.12),
                (9, 0.11),
                (10, 0.10),
            ],
            top_n_gram_min_count: 1,
        }
    }
}

/// With one character per word, n-grams of Chinese are n characters: the
/// n-gram rules are those of the Gopher paper with n doubled (a Chinese word
/// is about two characters). A top n-gram counts from its third occurrence:
/// prose names its subject twice in a paragraph ("在南非的华人华侨" twice in
/// 77 characters is 41%), spam repeats it many times.
const REPETITION_UNSPACED: &str = r#"
top_n_gram_min_count = 3
top_n_grams = [[4, 0.2], [6, 0.18], [8, 0.16]]
dup_n_grams = [[10, 0.15], [12, 0.14], [14, 0.13], [16, 0.12], [18, 0.11], [20, 0.10]]
"#;

pub const REPETITION_LANGS: &[(&str, &str)] = &[
    ("zh", REPETITION_UNSPACED),
    ("ja", REPETITION_UNSPACED),
    ("yue", REPETITION_UNSPACED),
    ("wuu", REPETITION_UNSPACED),
    ("th", REPETITION_UNSPACED),
    ("lo", REPETITION_UNSPACED),
    ("km", REPETITION_UNSPACED),
    ("my", REPETITION_UNSPACED),
    ("bo", REPETITION_UNSPACED),
];

pub const REPETITION_INFO: OpInfo = OpInfo {
    name: "gopher_repetition",
    kind: OpKind::Stream,
    summary: "Gopher repetition rules (datatrove's GopherRepetitionFilter, its defaults): duplicate lines and \
              paragraphs, the top 2/3/4-gram, duplicated 5…10-grams, as shares of the text's characters. \
              Linear in the document length (hashed n-grams).",
    params: &[
        ParamDoc { name: "dup_line_frac", kind: "float", default: "0.3", doc: "share of lines that repeat" },
        ParamDoc { name: "dup_para_frac", kind: "float", default: "0.3", doc: "share of paragraphs that repeat" },
        ParamDoc { name: "dup_line_char_frac", kind: "float", default: "0.2", doc: "characters in repeated lines" },
        ParamDoc { name: "dup_para_char_frac", kind: "float", default: "0.2", doc: "characters in repeated paragraphs" },
        ParamDoc { name: "top_n_grams", kind: "list", default: "[[2,0.2],[3,0.18],[4,0.16]]", doc: "" },
        ParamDoc { name: "dup_n_grams", kind: "list", default: "[[5,0.15],…,[10,0.10]]", doc: "" },
        ParamDoc { name: "top_n_gram_min_count", kind: "integer", default: "1", doc: "2: only repeated n-grams count (fix)" },
        ParamDoc { name: "lang_column", kind: "string", default: "\"lang\"", doc: "column picking per-language rules" },
        ParamDoc { name: "languages", kind: "table", default: "zh, ja built in", doc: "[step.languages.<code>] overrides" },
        MODE_PARAM,
    ],
    drop_reasons: &[
        "gopher_repetition:empty", "gopher_repetition:dup_para_frac", "gopher_repetition:dup_para_char_frac",
        "gopher_repetition:dup_line_frac", "gopher_repetition:dup_line_char_frac", "gopher_repetition:top_<n>_gram",
        "gopher_repetition:duplicated_<n>_n_grams",
    ],
    outputs: &[],
    build: build_repetition,
    config: crate::ops::quality::rules::shape::<GopherRepetitionParams>,
    example: r#"
[[step]]
op = "gopher_repetition"
"#,
    about: r#"
Gopher's repetition rules (Rae et al. 2021) with datatrove 0.10.1's exact
definitions and defaults: duplicate lines and paragraphs, the top 2/3/4-gram,
duplicated 5…10-grams, as shares of the text's characters. Linear in the
document length (hashed n-grams). Reads `lang` (`lang_column`) for
per-language rules; Chinese and Japanese have built-in ones.

The default reproduces a defect of the reference: the top n-gram counts
even when it occurs once, so every short document fails;
`top_n_gram_min_count = 2` is the fix. See
[spec.md, The rule filters](spec.md#the-rule-filters).

`mode = "annotate"` keeps every document and writes the shares the rules
compare: `gopher_frac_dup_paras` and `gopher_frac_dup_lines` (paragraphs
and lines that repeat an earlier one; `dup_para_frac`, `dup_line_frac`),
`gopher_frac_chars_dup_paras` and `gopher_frac_chars_dup_lines` (their
characters over the text's; `dup_para_char_frac`, `dup_line_char_frac`),
`gopher_frac_chars_top_<n>gram` (`top_n_grams`) and
`gopher_frac_chars_dup_<n>grams` (`dup_n_grams`), one column for every n
any language's rules use (with the built-in Chinese rules: top 2, 3, 4, 6,
8 and duplicated 5…10, 12…20), each measured on every document with its
language's segmentation and `top_n_gram_min_count`. An empty text has null
signals.
"#,
};

pub struct GopherRepetition {
    rules: LanguageRules<GopherRepetitionParams>,
    ngrams: NgramSignals,
    signals: Signals,
}

fn build_repetition(ctx: &BuildCtx<'_>) -> Result<Op, SpecError> {
    let rules = LanguageRules::build(ctx, REPETITION_LANGS)?;
    let ngrams = NgramSignals::of(rules.all());
    let signals = ngrams.signals();
    Ok(Op::Stream(Box::new(GopherRepetition {
        rules,
        ngrams,
        signals,
    })))
}

/// The n-gram signals of `gopher_repetition`: one for every n any
/// language's rules use, after the four line and paragraph shares.
pub struct NgramSignals {
    top: Vec<usize>,
    dup: Vec<usize>,
}

impl NgramSignals {
    pub fn of<'a>(params: impl Iterator<Item = &'a GopherRepetitionParams>) -> NgramSignals {
        let (mut top, mut dup) = (BTreeSet::new(), BTreeSet::new());
        for p in params {
            top.extend(p.top_n_grams.iter().map(|r| r.0).filter(|&n| n > 0));
            dup.extend(p.dup_n_grams.iter().map(|r| r.0).filter(|&n| n > 0));
        }
        NgramSignals {
            top: top.into_iter().collect(),
            dup: dup.into_iter().collect(),
        }
    }

    pub fn signals(&self) -> Signals {
        let mut columns: Vec<(String, SignalKind)> = [
            "gopher_frac_dup_paras",
            "gopher_frac_chars_dup_paras",
            "gopher_frac_dup_lines",
            "gopher_frac_chars_dup_lines",
        ]
        .iter()
        .map(|c| (c.to_string(), SignalKind::Ratio))
        .collect();
        for n in &self.top {
            columns.push((format!("gopher_frac_chars_top_{n}gram"), SignalKind::Ratio));
        }
        for n in &self.dup {
            columns.push((format!("gopher_frac_chars_dup_{n}grams"), SignalKind::Ratio));
        }
        Signals { columns }
    }

    /// The column of a rule (every rule's n is among them).
    fn column(&self, top: bool, n: usize) -> usize {
        let (list, start) = if top {
            (&self.top, 4)
        } else {
            (&self.dup, 4 + self.top.len())
        };
        start + list.iter().position(|&m| m == n).unwrap_or(0)
    }
}

/// Splits on runs of two or more `\n` (datatrove's paragraph regex).
fn paragraphs(text: &str) -> Vec<&str> {
    let mut out = vec![];
    let mut start = 0;
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\n' && b.get(i + 1) == Some(&b'\n') {
            let mut j = i;
            while j < b.len() && b[j] == b'\n' {
                j += 1;
            }
            out.push(&text[start..i]);
            start = j;
            i = j;
        } else {
            i += 1;
        }
    }
    out.push(&text[start..]);
    out
}

/// Splits on runs of one or more `\n`; leading and trailing runs give empty pieces.
fn lines(text: &str) -> Vec<&str> {
    let mut out = vec![];
    let mut start = 0;
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\n' {
            out.push(&text[start..i]);
            while i < b.len() && b[i] == b'\n' {
                i += 1;
            }
            start = i;
        } else {
            i += 1;
        }
    }
    out.push(&text[start..]);
    out
}

/// Polynomial hashing modulo the Mersenne prime 2^61 - 1: n-gram keys in
/// O(n) per position without building strings.
const MERSENNE: u64 = (1 << 61) - 1;
const BYTE_BASE: u64 = 0x1f3d_5b79_a0c2_e4d1 % MERSENNE;
const WORD_BASE: u64 = 0x2545_f491_4f6c_dd1d % MERSENNE;

fn mulmod(a: u64, b: u64) -> u64 {
    let p = a as u128 * b as u128;
    let r = (p as u64 & MERSENNE) + (p >> 61) as u64;
    if r >= MERSENNE {
        r - MERSENNE
    } else {
        r
    }
}

/// a + b for a, b below the modulus (b may be up to 2^61).
fn addmod(a: u64, b: u64) -> u64 {
    let r = a + b;
    if r >= MERSENNE {
        r - MERSENNE
    } else {
        r
    }
}

fn submod(a: u64, b: u64) -> u64 {
    if a >= b {
        a - b
    } else {
        a + MERSENNE - b
    }
}

/// BYTE_BASE to the power k, for the byte lengths n-grams usually have.
static BYTE_POW: std::sync::LazyLock<Vec<u64>> = std::sync::LazyLock::new(|| {
    let mut p = vec![1u64; 4096];
    for k in 1..p.len() {
        p[k] = mulmod(p[k - 1], BYTE_BASE);
    }
    p
});

/// Per-document prefix hashes over the words.
struct NgramHashes {
    /// Hash of the concatenation of words 0..i (no separator).
    concat: Vec<u64>,
    /// Byte offset of word i in that concatenation.
    offset: Vec<usize>,
    /// BYTE_BASE to the byte length of word i.
    word_pow: Vec<u64>,
    /// Hash of the word sequence 0..i.
    seq: Vec<u64>,
}

impl NgramHashes {
    fn new(words: &[&str]) -> Self {
        let mut concat = Vec::with_capacity(words.len() + 1);
        let mut offset = Vec::with_capacity(words.len() + 1);
        offset.push(0);
        let mut word_pow = Vec::with_capacity(words.len());
        let mut seq = Vec::with_capacity(words.len() + 1);
        let (mut c, mut q) = (0u64, 0u64);
        concat.push(c);
        seq.push(q);
        for w in words {
            let mut h = 0u64;
            for &b in w.as_bytes() {
                h = addmod(mulmod(h, BYTE_BASE), b as u64 + 1);
            }
            let pw = match BYTE_POW.get(w.len()) {
                Some(&p) => p,
                None => (0..w.len()).fold(1, |acc, _| mulmod(acc, BYTE_BASE)),
            };
            c = addmod(mulmod(c, pw), h);
            q = addmod(
                mulmod(q, WORD_BASE),
                (xxhash_rust::xxh3::xxh3_64(w.as_bytes()) >> 4) % MERSENNE + 1,
            );
            concat.push(c);
            offset.push(offset.last().copied().unwrap_or(0) + w.len());
            word_pow.push(pw);
            seq.push(q);
        }
        NgramHashes {
            concat,
            offset,
            word_pow,
            seq,
        }
    }

    /// Key of the concatenation of words i..i+n (equal bytes, equal key).
    fn concat_key(&self, i: usize, n: usize) -> u64 {
        let bytes = self.offset[i + n] - self.offset[i];
        let pw = match BYTE_POW.get(bytes) {
            Some(&p) => p,
            None => self.word_pow[i..i + n]
                .iter()
                .fold(1, |acc, &p| mulmod(acc, p)),
        };
        submod(self.concat[i + n], mulmod(self.concat[i], pw))
    }

    /// Key of the word sequence i..i+n.
    fn seq_key(&self, i: usize, n: usize, pow_n: u64) -> u64 {
        submod(self.seq[i + n], mulmod(self.seq[i], pow_n))
    }
}

/// The keys are hashes already: use them as they are.
#[derive(Default)]
struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ b as u64;
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

type KeyBuild = std::hash::BuildHasherDefault<KeyHasher>;

/// Characters of the most frequent n-gram times its count; ties go to the
/// n-gram seen first. The reference joins words with a space (`sep` = 1);
/// text written without spaces gets no separator (`sep` = 0), or every
/// n-gram would count twice its real length.
fn top_ngram_chars(
    h: &NgramHashes,
    lens: &[usize],
    n: usize,
    sep: usize,
    min_count: usize,
) -> usize {
    let words = lens.len();
    if words < n {
        return 0;
    }
    let pow_n = (0..n).fold(1, |acc, _| mulmod(acc, WORD_BASE));
    // (count, first position) in 32 bits each: a smaller table, fewer cache
    // misses (4 billion words would be a text of over 8 GB).
    let mut counts: HashMap<u64, (u32, u32), KeyBuild> =
        HashMap::with_capacity_and_hasher(words, KeyBuild::default());
    for i in 0..=words - n {
        counts
            .entry(h.seq_key(i, n, pow_n))
            .or_insert((0, i as u32))
            .0 += 1;
    }
    let best = counts
        .values()
        .max_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
    best.filter(|(count, _)| *count as usize >= min_count)
        .map(|&(count, first)| {
            let first = first as usize;
            let chars: usize = lens[first..first + n].iter().sum::<usize>() + sep * (n - 1);
            chars * count as usize
        })
        .unwrap_or(0)
}

/// datatrove's `find_all_duplicate`: scanning left to right, an n-gram seen
/// before adds its characters and skips n words (skipped n-grams are not
/// recorded). N-grams are compared as their words' concatenation, as the
/// reference does ("ab"+"c" equals "a"+"bc").
fn duplicated_ngram_chars(h: &NgramHashes, lens: &[usize], n: usize) -> usize {
    let words = lens.len();
    let mut seen: HashSet<u64, KeyBuild> =
        HashSet::with_capacity_and_hasher(words, KeyBuild::default());
    let (mut total, mut i) = (0, 0);
    while i + n <= words {
        if !seen.insert(h.concat_key(i, n)) {
            total += lens[i..i + n].iter().sum::<usize>();
            i += n;
        } else {
            i += 1;
        }
    }
    total
}

pub fn gopher_repetition(
    text: &str,
    seg: &Segmenter,
    p: &GopherRepetitionParams,
) -> Option<String> {
    let ngrams = NgramSignals::of(std::iter::once(p));
    gopher_repetition_rules(text, seg, p, &mut Verdict::Drop, &ngrams).break_value()
}

/// Gopher's repetition rules in the reference's order, each to `v`.
/// Annotating measures every n of `ngrams`, dropping the rules of `p`.
pub fn gopher_repetition_rules(
    text: &str,
    seg: &Segmenter,
    p: &GopherRepetitionParams,
    v: &mut Verdict<'_>,
    ngrams: &NgramSignals,
) -> ControlFlow<String> {
    if text.is_empty() {
        return v.unmeasurable("gopher_repetition:empty");
    }
    fn why(r: &'static str) -> impl FnOnce() -> String {
        move || format!("gopher_repetition:{r}")
    }
    let total = pystr::len(text) as f64;
    let paras = paragraphs(pystr::strip(text));
    let (dups, chars) = find_duplicates(paras.iter().copied());
    let share = ratio(dups, paras.len());
    v.rule(
        0,
        Signal::Ratio(share),
        share > p.dup_para_frac,
        why("dup_para_frac"),
    )?;
    let share = chars as f64 / total;
    let fails = share > p.dup_para_char_frac;
    v.rule(1, Signal::Ratio(share), fails, why("dup_para_char_frac"))?;
    let lines = lines(text);
    let (dups, chars) = find_duplicates(lines.iter().copied());
    let share = ratio(dups, lines.len());
    v.rule(
        2,
        Signal::Ratio(share),
        share > p.dup_line_frac,
        why("dup_line_frac"),
    )?;
    let share = chars as f64 / total;
    let fails = share > p.dup_line_char_frac;
    v.rule(3, Signal::Ratio(share), fails, why("dup_line_char_frac"))?;
    let words = seg.words(text);
    let lens: Vec<usize> = words.iter().map(|w| pystr::len(w)).collect();
    let hashes = NgramHashes::new(&words);
    let sep = usize::from(*seg != Segmenter::Unspaced);
    // The n-gram rules in the reference's order: (is top, n, fraction). A
    // rule whose n exceeds the words measures 0 and passes.
    let rules: Vec<(bool, usize, f64)> = match v {
        Verdict::Drop => p
            .top_n_grams
            .iter()
            .map(|&(n, f)| (true, n, f))
            .chain(p.dup_n_grams.iter().map(|&(n, f)| (false, n, f)))
            .filter(|&(_, n, _)| n > 0 && words.len() >= n)
            .collect(),
        Verdict::Annotate(_) => ngrams
            .top
            .iter()
            .map(|&n| (true, n, f64::INFINITY))
            .chain(ngrams.dup.iter().map(|&n| (false, n, f64::INFINITY)))
            .collect(),
    };
    let chars = |&(top, n, _): &(bool, usize, f64)| {
        if top {
            top_ngram_chars(&hashes, &lens, n, sep, p.top_n_gram_min_count)
        } else {
            duplicated_ngram_chars(&hashes, &lens, n)
        }
    };
    let report = |v: &mut Verdict<'_>, &(top, n, frac): &(bool, usize, f64), c: usize| {
        let share = c as f64 / total;
        v.rule(
            ngrams.column(top, n),
            Signal::Ratio(share),
            share > frac,
            || {
                if top {
                    format!("gopher_repetition:top_{n}_gram")
                } else {
                    format!("gopher_repetition:duplicated_{n}_n_grams")
                }
            },
        )
    };
    if words.len() < PARALLEL_WORDS {
        // Most documents: one rule after the other, stopping at the first.
        for r in &rules {
            report(v, r, chars(r))?;
        }
        return ControlFlow::Continue(());
    }
    // A very long document: its n-gram passes are independent, so they run
    // on every core (the first failing rule in order still names the drop).
    use rayon::prelude::*;
    let counts: Vec<usize> = rules.par_iter().map(chars).collect();
    for (r, c) in rules.iter().zip(counts) {
        report(v, r, c)?;
    }
    ControlFlow::Continue(())
}

/// Words past which a document's n-gram passes run in parallel.
const PARALLEL_WORDS: usize = 200_000;

impl StreamOp for GopherRepetition {
    fn apply(&self, batch: DocBatch) -> Result<OpOutput> {
        self.rules.apply(batch, &self.signals, |text, seg, p, v| {
            gopher_repetition_rules(text, seg, p, v, &self.ngrams)
        })
    }

    fn thresholds(&self) -> Vec<Threshold> {
        let names = &self.signals.columns;
        self.rules.thresholds(|p| {
            let t = |c: usize, v: f64| Threshold::new(&names[c].0, "<=", v);
            let mut out = vec![
                t(0, p.dup_para_frac),
                t(1, p.dup_para_char_frac),
                t(2, p.dup_line_frac),
                t(3, p.dup_line_char_frac),
            ];
            for &(n, f) in p.top_n_grams.iter().filter(|r| r.0 > 0) {
                out.push(t(self.ngrams.column(true, n), f));
            }
            for &(n, f) in p.dup_n_grams.iter().filter(|r| r.0 > 0) {
                out.push(t(self.ngrams.column(false, n), f));
            }
            out
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_python_regexes() {
        assert_eq!(paragraphs("a\n\nb\n\n\nc\nd"), vec!["a", "b", "c\nd"]);
        assert_eq!(lines("\na\n\nb\n"), vec!["", "a", "b", ""]);
    }

    #[test]
    fn duplicated_ngrams_skip_after_a_repeat() {
        let w = ["a", "b", "a", "b", "a", "b"];
        let h = NgramHashes::new(&w);
        let lens = [1; 6];
        // "ab" seen at 0, "ba" at 1, then "ab" at 2 repeats: +2, jump to 4: "ab" repeats: +2.
        assert_eq!(duplicated_ngram_chars(&h, &lens, 2), 4);
        assert_eq!(top_ngram_chars(&h, &lens, 2, 1, 1), 3 * 3);
        assert_eq!(top_ngram_chars(&h, &lens, 2, 0, 1), 2 * 3);
        let abc = NgramHashes::new(&["a", "b", "c"]);
        assert_eq!(top_ngram_chars(&abc, &[1; 3], 2, 1, 1), 3);
        assert_eq!(top_ngram_chars(&abc, &[1; 3], 2, 1, 2), 0);
        // Concatenations compare as strings: "ab"+"c" repeats "a"+"bc".
        let w = ["ab", "c", "x", "a", "bc"];
        assert_eq!(
            duplicated_ngram_chars(&NgramHashes::new(&w), &[2, 1, 1, 1, 2], 2),
            3
        );
    }

    #[test]
    fn chinese_ellipsis_is_prose_and_teasers_are_not() {
        let zh: GopherQualityParams = toml::from_str(QUALITY_ZH).unwrap();
        let body = "荣誉代表过去，科研没有止境。年逾花甲的刘光亮，又开始了新的跋涉。每天天不亮，他就蹲在培养钵前，一蹲就是十几个小时";
        let seg = Segmenter::Unspaced;
        assert_eq!(gopher_quality(&format!("{body}……"), &seg, &zh), None);
        assert_eq!(
            gopher_quality(&format!("{body}..."), &seg, &zh).as_deref(),
            Some("gopher_quality:too_many_end_ellipsis")
        );
        // A name list has none of the frequent characters.
        let names = "江泽民、李鹏、乔石、朱镕基、李瑞环、刘华清、尉健行、李岚清、荣毅仁、钱其琛、吴邦国、姜春云、迟浩田、丁关根、田纪云、李铁映、吴官正、罗干";
        assert_eq!(
            gopher_quality(names, &seg, &zh).as_deref(),
            Some("gopher_quality:stop_words")
        );
    }

    #[test]
    fn long_documents_name_the_first_failing_rule_as_short_ones_do() {
        let p: GopherRepetitionParams = toml::from_str("").unwrap();
        let seg = Segmenter::SpacyEnglish;
        // Distinct words, the second half a copy of the first: only the
        // duplicated n-gram rules fail, the first of them names the drop.
        let half: Vec<String> = (0..120_000).map(|i| format!("w{i}")).collect();
        let doc = format!("{} {}", half.join(" "), half.join(" "));
        assert_eq!(
            gopher_repetition(&doc, &seg, &p).as_deref(),
            Some("gopher_repetition:duplicated_5_n_grams")
        );
        // Both a top n-gram and duplicated n-grams fail: the top one is first.
        let doc = "a b ".repeat(120_000);
        assert_eq!(
            gopher_repetition(&doc, &seg, &p).as_deref(),
            Some("gopher_repetition:top_2_gram")
        );
    }
}
