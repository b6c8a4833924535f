//! `fineweb_quality`: the FineWeb line rules (Penedo et al. 2024), with
//! datatrove's FineWebQualityFilter definitions and defaults.

use std::ops::ControlFlow;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::ops::quality::rules::{
    find_duplicates, ratio, LanguageRules, Signal, SignalKind, Signals, Threshold, Verdict,
    MODE_PARAM,
};
use crate::ops::{BuildCtx, DocBatch, Op, OpInfo, OpKind, OpOutput, ParamDoc, StreamOp};
use crate::pipeline::spec::SpecError;
use crate::text::punct::is_terminal_punctuation;
use crate::text::pystr;
use crate::text::words::Segmenter;

#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct FineWebParams {
    pub line_punct_thr: f64,
    pub line_punct_exclude_zero: bool,
    /// Characters that end a line; default: datatrove's TERMINAL_PUNCTUATION.
    pub stop_chars: Option<Vec<String>>,
    pub short_line_thr: f64,
    pub short_line_length: usize,
    pub char_duplicates_ratio: f64,
    pub new_line_ratio: f64,
    /// The reference checks a line's very last character, so a line ending in
    /// ". " counts as unpunctuated (pre-tokenised text loses most lines).
    /// `true` strips trailing whitespace first. Off by default, as in the reference.
    pub strip_line_ends: bool,
}

impl Default for FineWebParams {
    fn default() -> Self {
        Self {
            line_punct_thr: 0.12,
            line_punct_exclude_zero: Default::default(),
            stop_chars: Default::default(),
            short_line_thr: 0.67,
            short_line_length: 30,
            char_duplicates_ratio: 0.01,
            new_line_ratio: 0.3,
            strip_line_ends: Default::default(),
        }
    }
}

/// Chinese and Japanese sentences often end inside closing quotes or
/// brackets (。” 。） 。」): a line ending in one of them counts as punctuated.
const UNSPACED: &str = r#"
stop_chars = ["。", "！", "？", "…", "”", "’", "」", "』", "）", "》", "】", ".", "!", "?", "\"", "'", ")"]
"#;

/// Thai, Lao, Khmer, Burmese and Tibetan lines seldom end in punctuation:
/// the line-ending rule is off for them.
const UNSPACED_NO_PUNCT: &str = "line_punct_thr = 0.0\n";

pub const LANGS: &[(&str, &str)] = &[
    ("zh", UNSPACED),
    ("ja", UNSPACED),
    ("yue", UNSPACED),
    ("wuu", UNSPACED),
    ("th", UNSPACED_NO_PUNCT),
    ("lo", UNSPACED_NO_PUNCT),
    ("km", UNSPACED_NO_PUNCT),
    ("my", UNSPACED_NO_PUNCT),
    ("bo", UNSPACED_NO_PUNCT),
];

pub const INFO: OpInfo = OpInfo {
    name: "fineweb_quality",
    kind: OpKind::Stream,
    summary: "FineWeb rules (datatrove's FineWebQualityFilter, its defaults): share of lines ending in \
              terminal punctuation, share of short lines, characters in duplicated lines, newlines per word.",
    params: &[
        ParamDoc { name: "line_punct_thr", kind: "float", default: "0.12", doc: "lines ending in punctuation below: drop" },
        ParamDoc { name: "line_punct_exclude_zero", kind: "bool", default: "false", doc: "keep documents with no such line" },
        ParamDoc { name: "stop_chars", kind: "list", default: "terminal punct.", doc: "characters that end a line" },
        ParamDoc { name: "short_line_thr", kind: "float", default: "0.67", doc: "share of short lines above: drop" },
        ParamDoc { name: "short_line_length", kind: "integer", default: "30", doc: "a short line has at most this many characters" },
        ParamDoc { name: "char_duplicates_ratio", kind: "float", default: "0.01", doc: "characters in repeated lines above: drop" },
        ParamDoc { name: "new_line_ratio", kind: "float", default: "0.3", doc: "newlines per word above: drop" },
        ParamDoc { name: "strip_line_ends", kind: "bool", default: "false", doc: "fix: ignore trailing spaces when checking line ends" },
        ParamDoc { name: "lang_column", kind: "string", default: "\"lang\"", doc: "column picking per-language rules" },
        ParamDoc { name: "languages", kind: "table", default: "zh, ja built in", doc: "[step.languages.<code>] overrides" },
        MODE_PARAM,
    ],
    drop_reasons: &[
        "fineweb:empty", "fineweb:line_punct_ratio", "fineweb:short_line_ratio", "fineweb:char_dup_ratio",
        "fineweb:list_ratio",
    ],
    outputs: &[],
    build,
    config: crate::ops::quality::rules::shape::<FineWebParams>,
    example: r#"
[[step]]
op = "fineweb_quality"
"#,
    about: r#"
FineWeb's rules (Penedo et al. 2024) with datatrove 0.10.1's exact
definitions and defaults: the share of lines ending in terminal
punctuation (`stop_chars`: datatrove's 159 terminal punctuation marks),
the share of short lines, characters in duplicated lines, newlines per
word.

The default reproduces a defect of the reference: the line-end check looks
at the very last character, so lines ending in `". "` count as
unpunctuated; `strip_line_ends = true` ignores trailing spaces. See
[spec.md, The rule filters](spec.md#the-rule-filters).

`mode = "annotate"` keeps every document and writes the shares the rules
compare, over its non-blank lines: `fineweb_frac_lines_end_punct` (dropped
below `line_punct_thr`), `fineweb_frac_short_lines` (`short_line_thr`),
`fineweb_frac_chars_dup_lines` (characters of repeated lines over the
text's, newlines not counted; `char_duplicates_ratio`) and
`fineweb_newlines_per_word` (`new_line_ratio`). A text without a
non-blank line has null signals.
"#,
};

pub struct FineWebQuality {
    rules: LanguageRules<FineWebParams>,
    signals: Signals,
}

fn build(ctx: &BuildCtx<'_>) -> Result<Op, SpecError> {
    Ok(Op::Stream(Box::new(FineWebQuality {
        rules: LanguageRules::build(ctx, LANGS)?,
        signals: Signals::new(SIGNALS),
    })))
}

/// The signals of `fineweb_quality`, numbered as its rules report them.
pub const SIGNALS: &[(&str, SignalKind)] = &[
    ("fineweb_frac_lines_end_punct", SignalKind::Ratio),
    ("fineweb_frac_short_lines", SignalKind::Ratio),
    ("fineweb_frac_chars_dup_lines", SignalKind::Ratio),
    ("fineweb_newlines_per_word", SignalKind::Ratio),
];

/// The rule a document fails, or `None` to keep it.
pub fn fineweb_quality(text: &str, seg: &Segmenter, p: &FineWebParams) -> Option<String> {
    fineweb_rules(text, seg, p, &mut Verdict::Drop).break_value()
}

/// FineWeb's rules in the reference's order, each to `v`.
pub fn fineweb_rules(
    text: &str,
    seg: &Segmenter,
    p: &FineWebParams,
    v: &mut Verdict<'_>,
) -> ControlFlow<String> {
    fn why(r: &'static str) -> impl FnOnce() -> String {
        move || format!("fineweb:{r}")
    }
    let lines: Vec<&str> = text
        .split('\n')
        .filter(|l| !pystr::strip(l).is_empty())
        .collect();
    if lines.is_empty() {
        return v.unmeasurable("fineweb:empty");
    }
    let ends = |line: &str| {
        let line = if p.strip_line_ends {
            line.trim_end_matches(pystr::is_space)
        } else {
            line
        };
        match &p.stop_chars {
            Some(stops) => stops.iter().any(|s| line.ends_with(s.as_str())),
            None => line
                .chars()
                .next_back()
                .is_some_and(is_terminal_punctuation),
        }
    };
    let r = ratio(lines.iter().filter(|l| ends(l)).count(), lines.len());
    let fails = r < p.line_punct_thr && !(r == 0.0 && p.line_punct_exclude_zero);
    v.rule(0, Signal::Ratio(r), fails, why("line_punct_ratio"))?;
    let short = lines
        .iter()
        .filter(|l| pystr::len(l) <= p.short_line_length)
        .count();
    let short = ratio(short, lines.len());
    let fails = short > p.short_line_thr;
    v.rule(1, Signal::Ratio(short), fails, why("short_line_ratio"))?;
    let (_, dup_chars) = find_duplicates(lines.iter().copied());
    let chars_no_nl = pystr::len(text) - text.matches('\n').count();
    let dup = ratio(dup_chars, chars_no_nl);
    let fails = dup > p.char_duplicates_ratio;
    v.rule(2, Signal::Ratio(dup), fails, why("char_dup_ratio"))?;
    let words = seg.words(text).len();
    let newlines = ratio(text.matches('\n').count(), words);
    let fails = newlines > p.new_line_ratio;
    v.rule(3, Signal::Ratio(newlines), fails, why("list_ratio"))
}

impl StreamOp for FineWebQuality {
    fn apply(&self, batch: DocBatch) -> Result<OpOutput> {
        self.rules.apply(batch, &self.signals, fineweb_rules)
    }

    /// (`line_punct_exclude_zero` also keeps a share of 0: not a threshold.)
    fn thresholds(&self) -> Vec<Threshold> {
        self.rules.thresholds(|p| {
            let t = |c: usize, keep: &str, v: f64| Threshold::new(SIGNALS[c].0, keep, v);
            vec![
                t(0, ">=", p.line_punct_thr),
                t(1, "<=", p.short_line_thr),
                t(2, "<=", p.char_duplicates_ratio),
                t(3, "<=", p.new_line_ratio),
            ]
        })
    }
}
