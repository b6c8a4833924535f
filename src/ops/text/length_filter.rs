//! `length_filter`: drops documents outside a range of characters or words.

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::ops::{
    shape, BuildCtx, DocBatch, DropMark, Op, OpInfo, OpKind, OpOutput, ParamDoc, StreamOp,
};
use crate::pipeline::spec::SpecError;
use crate::text::count_words;

/// Bounds are inclusive; an absent bound does not apply.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LengthFilter {
    pub min_chars: Option<usize>,
    pub max_chars: Option<usize>,
    pub min_words: Option<usize>,
    pub max_words: Option<usize>,
}

pub const INFO: OpInfo = OpInfo {
    name: "length_filter",
    kind: OpKind::Stream,
    summary:
        "Drops documents with too few or too many characters (Unicode scalar values) or words \
              (whitespace-separated; each Chinese, Japanese, Thai, Lao, Khmer or Myanmar character counts as one word).",
    params: &[
        ParamDoc {
            name: "min_chars",
            kind: "integer",
            default: "none",
            doc: "drop below this many characters",
        },
        ParamDoc {
            name: "max_chars",
            kind: "integer",
            default: "none",
            doc: "drop above this many characters",
        },
        ParamDoc {
            name: "min_words",
            kind: "integer",
            default: "none",
            doc: "drop below this many words",
        },
        ParamDoc {
            name: "max_words",
            kind: "integer",
            default: "none",
            doc: "drop above this many words",
        },
    ],
    drop_reasons: &[
        "length_filter:min_chars",
        "length_filter:max_chars",
        "length_filter:min_words",
        "length_filter:max_words",
    ],
    outputs: &[],
    build,
    config: shape::<LengthFilter>,
    example: r#"
[[step]]
op = "length_filter"
min_words = 5
max_chars = 100000
"#,
    about: r#"
All bounds are optional and inclusive.
"#,
};

fn build(ctx: &BuildCtx<'_>) -> Result<Op, SpecError> {
    let f: LengthFilter = ctx.config()?;
    if let (Some(lo), Some(hi)) = (f.min_chars, f.max_chars) {
        if lo > hi {
            return Err(ctx.error(
                "max_chars",
                format!("max_chars ({hi}) is below min_chars ({lo})"),
            ));
        }
    }
    if let (Some(lo), Some(hi)) = (f.min_words, f.max_words) {
        if lo > hi {
            return Err(ctx.error(
                "max_words",
                format!("max_words ({hi}) is below min_words ({lo})"),
            ));
        }
    }
    Ok(Op::Stream(Box::new(f)))
}

impl LengthFilter {
    pub fn judge(&self, text: &str) -> Option<&'static str> {
        if self.min_chars.is_some() || self.max_chars.is_some() {
            // Counting chars is cheap next to words, but skip it when unused.
            let chars = text.chars().count();
            if self.min_chars.is_some_and(|m| chars < m) {
                return Some("length_filter:min_chars");
            }
            if self.max_chars.is_some_and(|m| chars > m) {
                return Some("length_filter:max_chars");
            }
        }
        if self.min_words.is_some() || self.max_words.is_some() {
            let words = count_words(text);
            if self.min_words.is_some_and(|m| words < m) {
                return Some("length_filter:min_words");
            }
            if self.max_words.is_some_and(|m| words > m) {
                return Some("length_filter:max_words");
            }
        }
        None
    }
}

impl StreamOp for LengthFilter {
    fn apply(&self, batch: DocBatch) -> Result<OpOutput> {
        let drops = batch
            .texts()
            .iter()
            .map(|t| self.judge(t.unwrap_or("")).map(DropMark::new))
            .collect();
        Ok(OpOutput::new(batch, drops))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn judges_bounds_inclusively() {
        let f = LengthFilter {
            min_chars: Some(3),
            max_chars: Some(10),
            min_words: Some(2),
            max_words: Some(3),
        };
        assert_eq!(f.judge("ab"), Some("length_filter:min_chars"));
        assert_eq!(f.judge("abc"), Some("length_filter:min_words"));
        assert_eq!(f.judge("ab cd"), None);
        assert_eq!(f.judge("a b c d"), Some("length_filter:max_words"));
        assert_eq!(f.judge("abcdefghijk"), Some("length_filter:max_chars"));
        assert_eq!(f.judge("中文很好"), Some("length_filter:max_words"));
    }
}
