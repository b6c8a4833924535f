//! `c4_quality`: the C4 line rules (Raffel et al. 2020), with datatrove's
//! C4QualityFilter definitions and defaults. Works line by line and rewrites
//! the text to the lines it keeps, as datatrove does.

use std::ops::ControlFlow;

use anyhow::Result;
use arrow::array::{Array, StringBuilder};
use serde::{Deserialize, Serialize};

use crate::ops::quality::rules::{
    LanguageRules, Mode, Signal, SignalKind, Signals, Threshold, Verdict, MODE_PARAM,
};
use crate::ops::{
    with_texts, BuildCtx, DocBatch, DropMark, Op, OpInfo, OpKind, OpOutput, ParamDoc, StreamOp,
};
use crate::pipeline::spec::SpecError;
use crate::text::pystr;
use crate::text::words::Segmenter;

#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct C4Params {
    pub remove_citations: bool,
    pub filter_no_terminal_punct: bool,
    pub min_num_sentences: usize,
    pub min_words_per_line: usize,
    pub max_word_length: usize,
    pub filter_lorem_ipsum: bool,
    pub filter_javascript: bool,
    pub filter_curly_bracket: bool,
    pub filter_policy: bool,
    /// A kept line must end with one of these (and not with "...").
    pub end_punctuation: Vec<String>,
    pub policy_phrases: Vec<String>,
}

impl Default for C4Params {
    fn default() -> Self {
        Self {
            remove_citations: true,
            filter_no_terminal_punct: true,
            min_num_sentences: 5,
            min_words_per_line: 3,
            max_word_length: 1000,
            filter_lorem_ipsum: true,
            filter_javascript: true,
            filter_curly_bracket: true,
            filter_policy: true,
            end_punctuation: [".", "?", "!", "\"", "'"].map(String::from).to_vec(),
            policy_phrases: [
                "terms of use",
                "privacy policy",
                "cookie policy",
                "uses cookies",
                "use of cookies",
                "use cookies",
            ]
            .map(String::from)
            .to_vec(),
        }
    }
}

/// Chinese and Japanese lines end with full-width punctuation and closing
/// quotes. A Chinese sentence carries as much as two or three English ones,
/// and Chinese corpora often come as paragraphs (People's Daily: median 101
/// characters, 2 sentences): five sentences would drop most of them, so the
/// line rules decide alone.
const UNSPACED: &str = r#"
min_num_sentences = 1
end_punctuation = [".", "?", "!", "\"", "'", "。", "！", "？", "”", "’", "」", "』", "）", "…"]
"#;

/// Thai, Lao, Khmer, Burmese and Tibetan end sentences with a space or their
/// own marks, not C4's: the line-ending rule is off for them.
const UNSPACED_NO_PUNCT: &str = r#"
min_num_sentences = 1
filter_no_terminal_punct = false
"#;

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
    name: "c4_quality",
    kind: OpKind::Stream,
    summary: "C4 rules per line (datatrove's C4QualityFilter, its defaults): drops lines without terminal \
              punctuation, with fewer than 3 words, a word over 1000 characters, 'javascript' or policy \
              phrases; removes citations; drops the document on 'lorem ipsum' or '{', or with fewer than \
              5 sentences left. Rewrites the text to the kept lines.",
    params: &[
        ParamDoc { name: "remove_citations", kind: "bool", default: "true", doc: "delete [1], [edit], [citation needed]" },
        ParamDoc { name: "filter_no_terminal_punct", kind: "bool", default: "true", doc: "drop lines not ending in end_punctuation" },
        ParamDoc { name: "min_num_sentences", kind: "integer", default: "5", doc: "fewer sentences kept: drop the document" },
        ParamDoc { name: "min_words_per_line", kind: "integer", default: "3", doc: "shorter lines are dropped" },
        ParamDoc { name: "max_word_length", kind: "integer", default: "1000", doc: "lines with a longer word are dropped" },
        ParamDoc { name: "filter_lorem_ipsum", kind: "bool", default: "true", doc: "drop documents with lorem ipsum" },
        ParamDoc { name: "filter_javascript", kind: "bool", default: "true", doc: "drop lines mentioning javascript" },
        ParamDoc { name: "filter_curly_bracket", kind: "bool", default: "true", doc: "drop documents with '{'" },
        ParamDoc { name: "filter_policy", kind: "bool", default: "true", doc: "drop lines with policy phrases" },
        ParamDoc { name: "end_punctuation", kind: "list", default: "[\".\", \"?\", \"!\", '\"', \"'\"]", doc: "zh/ja add full-width marks" },
        ParamDoc { name: "policy_phrases", kind: "list", default: "terms of use, …", doc: "lowercase phrases" },
        ParamDoc { name: "lang_column", kind: "string", default: "\"lang\"", doc: "column picking per-language rules" },
        ParamDoc { name: "languages", kind: "table", default: "zh, ja built in", doc: "[step.languages.<code>] overrides" },
        MODE_PARAM,
    ],
    drop_reasons: &["c4:lorem_ipsum", "c4:curly_bracket", "c4:too_few_sentences"],
    outputs: &[],
    build,
    config: crate::ops::quality::rules::shape::<C4Params>,
    example: r#"
[[step]]
op = "c4_quality"
"#,
    about: r#"
C4's rules (Raffel et al. 2020) with datatrove 0.10.1's exact definitions
and defaults, per line and per document. Rewrites the text to the lines it
keeps, as the reference does. Per-language rules as for the Gopher filters
(full-width line endings and one sentence at least for Chinese). See
[spec.md, The rule filters](spec.md#the-rule-filters).

`mode = "annotate"` keeps every document, still rewritten to the lines the
line rules keep (those are edits, not a verdict on the document), and
writes `c4_lines` (lines of the text), `c4_lines_kept`, `c4_sentences`
(sentences in the kept lines: dropped below `min_num_sentences`),
`c4_lorem_ipsum` and `c4_curly_bracket` (true where a line the line rules
reach has "lorem ipsum" or `{`, with `filter_lorem_ipsum` and
`filter_curly_bracket`: dropped). The dropping filter keeps exactly the
documents where `not c4_lorem_ipsum and not c4_curly_bracket and
c4_sentences >= 5` (the row's language's `min_num_sentences`).
"#,
};

pub struct C4Quality {
    rules: LanguageRules<C4Params>,
    signals: Signals,
}

fn build(ctx: &BuildCtx<'_>) -> Result<Op, SpecError> {
    Ok(Op::Stream(Box::new(C4Quality {
        rules: LanguageRules::build(ctx, LANGS)?,
        signals: Signals::new(SIGNALS),
    })))
}

/// The signals of `c4_quality`, numbered as its rules report them.
pub const SIGNALS: &[(&str, SignalKind)] = &[
    ("c4_lines", SignalKind::Count),
    ("c4_lines_kept", SignalKind::Count),
    ("c4_sentences", SignalKind::Count),
    ("c4_lorem_ipsum", SignalKind::Flag),
    ("c4_curly_bracket", SignalKind::Flag),
];

/// Deletes `[digits]`, `[edit]` and `[citation needed]`.
fn remove_citations(line: &str) -> std::borrow::Cow<'_, str> {
    if !line.contains('[') {
        return line.into();
    }
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(i) = rest.find('[') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let digits = tail[1..].find(|c: char| !c.is_numeric()).map(|j| j + 1);
        let skip = if let Some(j) = digits.filter(|&j| tail[j..].starts_with(']')) {
            Some(j + 1)
        } else if tail.starts_with("[edit]") {
            Some(6)
        } else if tail.starts_with("[citation needed]") {
            Some(17)
        } else {
            None
        };
        match skip {
            Some(n) => rest = &tail[n..],
            None => {
                out.push('[');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out.into()
}

/// The kept text, or the reason the document is dropped.
pub fn c4_quality(text: &str, seg: &Segmenter, p: &C4Params) -> Result<String, String> {
    let mut kept = String::new();
    match c4_rules(text, seg, p, &mut Verdict::Drop, &mut kept) {
        ControlFlow::Break(reason) => Err(reason),
        ControlFlow::Continue(()) => Ok(kept),
    }
}

/// C4's line and document rules, each to `v`; `out` gets the kept lines'
/// text unless the rules stop.
pub fn c4_rules(
    text: &str,
    seg: &Segmenter,
    p: &C4Params,
    v: &mut Verdict<'_>,
    out: &mut String,
) -> ControlFlow<String> {
    fn why(r: &'static str) -> impl FnOnce() -> String {
        move || format!("c4:{r}")
    }
    let mut sentences = 0;
    let (mut lines, mut lorem, mut curly) = (0, false, false);
    let mut kept: Vec<std::borrow::Cow<'_, str>> = vec![];
    for line in pystr::splitlines(text) {
        lines += 1;
        let line = pystr::strip(line);
        let n_words = match seg {
            Segmenter::Unspaced => seg.words(line).len(),
            Segmenter::SpacyEnglish => pystr::split(line).count(),
        };
        let too_long = match seg {
            Segmenter::Unspaced => seg
                .words(line)
                .iter()
                .any(|w| pystr::len(w) > p.max_word_length),
            Segmenter::SpacyEnglish => {
                pystr::split(line).any(|w| pystr::len(w) > p.max_word_length)
            }
        };
        if too_long {
            continue;
        }
        let line = if p.remove_citations {
            remove_citations(line)
        } else {
            line.into()
        };
        if p.filter_no_terminal_punct
            && (!p.end_punctuation.iter().any(|e| line.ends_with(e.as_str()))
                || line.ends_with("..."))
        {
            continue;
        }
        if n_words < p.min_words_per_line {
            continue;
        }
        let lower = line.to_lowercase();
        if p.filter_lorem_ipsum && lower.contains("lorem ipsum") {
            // Dropping stops here; annotating records it and goes on.
            lorem = true;
            v.rule(3, Signal::Flag(true), true, why("lorem_ipsum"))?;
        }
        if p.filter_javascript && lower.contains("javascript") {
            continue;
        }
        if p.filter_curly_bracket && line.contains('{') {
            curly = true;
            v.rule(4, Signal::Flag(true), true, why("curly_bracket"))?;
        }
        if p.filter_policy
            && p.policy_phrases
                .iter()
                .any(|ph| lower.contains(ph.as_str()))
        {
            continue;
        }
        sentences += seg.sentences(&line);
        kept.push(line);
    }
    v.rule(3, Signal::Flag(lorem), lorem, why("lorem_ipsum"))?;
    v.rule(4, Signal::Flag(curly), curly, why("curly_bracket"))?;
    v.rule(0, Signal::Count(lines), false, String::new)?;
    v.rule(1, Signal::Count(kept.len()), false, String::new)?;
    *out = pystr::strip(&kept.join("\n")).to_string();
    let few = sentences < p.min_num_sentences;
    v.rule(2, Signal::Count(sentences), few, why("too_few_sentences"))
}

impl StreamOp for C4Quality {
    fn apply(&self, batch: DocBatch) -> Result<OpOutput> {
        let rows = self.rules.per_row(&batch);
        let texts = batch.texts();
        let mut out = StringBuilder::with_capacity(texts.len(), texts.value_data().len());
        let mut drops = Vec::with_capacity(texts.len());
        let annotate = self.rules.mode == Mode::Annotate;
        let mut table = self.signals.table(if annotate { texts.len() } else { 0 });
        let mut kept = String::new();
        for (i, (text, (p, seg))) in texts.iter().zip(&rows).enumerate() {
            let text = text.unwrap_or("");
            let mut verdict = match annotate {
                true => table.row(i),
                false => Verdict::Drop,
            };
            match c4_rules(text, seg, p, &mut verdict, &mut kept) {
                ControlFlow::Continue(()) => {
                    out.append_value(&kept);
                    drops.push(None);
                }
                ControlFlow::Break(reason) => {
                    // The dropped document keeps its text for excluded/.
                    out.append_value(text);
                    drops.push(Some(DropMark::new(reason)));
                }
            }
        }
        let mut batch = with_texts(batch, out.finish())?;
        if annotate {
            batch = self.signals.write(batch, table)?;
        }
        Ok(OpOutput::new(batch, drops))
    }

    fn thresholds(&self) -> Vec<Threshold> {
        self.rules.thresholds(|p| {
            let mut out = vec![Threshold::new(
                SIGNALS[2].0,
                ">=",
                p.min_num_sentences as f64,
            )];
            if p.filter_lorem_ipsum {
                out.push(Threshold::new(SIGNALS[3].0, "false", 0.0));
            }
            if p.filter_curly_bracket {
                out.push(Threshold::new(SIGNALS[4].0, "false", 0.0));
            }
            out
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_citations_like_the_reference_regex() {
        assert_eq!(
            remove_citations("a[1] b[] c[edit] d[citation needed] e[x]"),
            "a b c d e[x]"
        );
    }
}
