//! The text a quality classifier sees, the same at training and scoring
//! time: the first `max_chars` characters, lowercased (optional), every
//! character of an unspaced script (Chinese, Japanese, Thai, …) a word of
//! its own (fastText reads space-separated tokens), all whitespace (newlines
//! included: a training example is one line) collapsed to one space, NULs
//! removed.

use serde::{Deserialize, Serialize};

use crate::text::is_unspaced_script;

fn d_true() -> bool {
    true
}
fn d_max_chars() -> usize {
    10_000
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QualityText {
    #[serde(default = "d_true")]
    pub lowercase: bool,
    #[serde(default = "d_true")]
    pub split_cjk: bool,
    #[serde(default = "d_max_chars")]
    pub max_chars: usize,
}

impl Default for QualityText {
    fn default() -> Self {
        QualityText {
            lowercase: true,
            split_cjk: true,
            max_chars: d_max_chars(),
        }
    }
}

impl QualityText {
    pub fn prepare(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len().min(self.max_chars * 4) + 16);
        let mut space = false;
        let push_space = |out: &mut String, space: &mut bool| {
            if !out.is_empty() {
                *space = true;
            }
        };
        for c in text.chars().take(self.max_chars) {
            if c.is_whitespace() || c == '\0' {
                push_space(&mut out, &mut space);
                continue;
            }
            let alone = self.split_cjk && is_unspaced_script(c);
            if alone {
                push_space(&mut out, &mut space);
            }
            if space {
                out.push(' ');
                space = false;
            }
            if self.lowercase {
                out.extend(c.to_lowercase());
            } else {
                out.push(c);
            }
            if alone {
                push_space(&mut out, &mut space);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_of_lowercase_tokens() {
        let q = QualityText::default();
        assert_eq!(q.prepare("  Hello,\n\nWorld\t!  "), "hello, world !");
        assert_eq!(q.prepare("我爱Rust语言。"), "我 爱 rust 语 言 。");
        assert_eq!(q.prepare("a\0b"), "a b");
        let short = QualityText {
            max_chars: 3,
            ..q.clone()
        };
        assert_eq!(short.prepare("abcdef"), "abc");
        let keep = QualityText {
            lowercase: false,
            split_cjk: false,
            ..q
        };
        assert_eq!(keep.prepare("Ab 中文"), "Ab 中文");
    }
}
