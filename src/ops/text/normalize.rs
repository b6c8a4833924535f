//! `normalize`: Unicode normalisation, whitespace clean-up and removal of
//! control characters, applied to the text column in place.

use anyhow::Result;
use arrow::array::{Array, StringBuilder};
use serde::{Deserialize, Serialize};
use unicode_normalization::{is_nfc_quick, is_nfkc_quick, IsNormalized, UnicodeNormalization};

use crate::ops::{
    shape, with_texts, BuildCtx, DocBatch, DropMark, Op, OpInfo, OpKind, OpOutput, ParamDoc,
    StreamOp,
};
use crate::pipeline::spec::SpecError;

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub enum Form {
    #[serde(rename = "NFC", alias = "nfc")]
    Nfc,
    #[serde(rename = "NFKC", alias = "nfkc")]
    Nfkc,
    #[serde(rename = "none")]
    None,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Normalize {
    pub form: Form,
    pub whitespace: bool,
    pub control_chars: bool,
}

impl Default for Normalize {
    fn default() -> Self {
        Self {
            form: Form::Nfc,
            whitespace: true,
            control_chars: true,
        }
    }
}

pub const INFO: OpInfo = OpInfo {
    name: "normalize",
    kind: OpKind::Stream,
    summary: "Rewrites the text: Unicode normal form; whitespace (CRLF and CR to LF, Unicode spaces to ' ', \
              trailing spaces cut, 3+ newlines to 2, ends trimmed; indentation kept); \
              control characters (C0/C1 other than whitespace, BOM, zero-width space) removed. \
              A document left empty is dropped.",
    params: &[
        ParamDoc { name: "form", kind: "string", default: "\"NFC\"", doc: "\"NFC\", \"NFKC\" or \"none\"" },
        ParamDoc { name: "whitespace", kind: "bool", default: "true", doc: "clean up whitespace as above" },
        ParamDoc { name: "control_chars", kind: "bool", default: "true", doc: "remove control characters" },
    ],
    drop_reasons: &["normalize:empty"],
    outputs: &[],
    build,
    config: shape::<Normalize>,
    example: r#"
[[step]]
op = "normalize"
form = "NFKC"
"#,
    about: "",
};

fn build(ctx: &BuildCtx<'_>) -> Result<Op, SpecError> {
    let n: Normalize = ctx.config()?;
    Ok(Op::Stream(Box::new(n)))
}

fn is_removed_control(c: char) -> bool {
    // Control characters that are whitespace (tab, newline, form feed, NEL…)
    // are the whitespace clean-up's to handle.
    (c.is_control() && !c.is_whitespace()) || c == '\u{feff}' || c == '\u{200b}'
}

/// Whitespace the clean-up rewrites to a plain space.
fn is_odd_space(c: char) -> bool {
    c.is_whitespace() && !matches!(c, ' ' | '\t' | '\n' | '\r')
}

/// One pass over the bytes: does the text need (whitespace, control) work?
/// Most documents need neither, and this costs far less than rewriting them.
fn scan(s: &str) -> (bool, bool) {
    let b = s.as_bytes();
    let mut ws = matches!(b.first(), Some(c) if c.is_ascii_whitespace())
        || matches!(b.last(), Some(c) if c.is_ascii_whitespace());
    let mut ctrl = false;
    let mut i = 0;
    while i < b.len() {
        // Eight plain printable ASCII bytes at a time: nothing to see there.
        if i + 8 <= b.len() {
            let w = u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
            if !has_special_byte(w) {
                i += 8;
                continue;
            }
        }
        let c = b[i];
        if c >= 0x80 && !matches!(c, 0xC2 | 0xE1 | 0xE2 | 0xE3 | 0xEF) {
            // A character that is neither space nor control: skip it whole.
            i += match c {
                0xf0.. => 4,
                0xe0.. => 3,
                0xc0.. => 2,
                _ => 1,
            };
            continue;
        }
        if c < 0x20 || c == 0x7f {
            match c {
                b'\n' => {
                    if i > 0 && matches!(b[i - 1], b' ' | b'\t') {
                        ws = true;
                    }
                    if b.get(i + 1) == Some(&b'\n') && b.get(i + 2) == Some(&b'\n') {
                        ws = true;
                    }
                }
                b'\t' => {}
                b'\r' | 0x0b | 0x0c => ws = true,
                _ => ctrl = true,
            }
        } else if c >= 0x80 && matches!(c, 0xC2 | 0xE1 | 0xE2 | 0xE3 | 0xEF) {
            // Lead bytes of the odd spaces, C1 controls, ZWSP and BOM.
            let ch = s[i..].chars().next().unwrap_or(' ');
            if is_odd_space(ch) {
                ws = true;
            }
            if is_removed_control(ch) {
                ctrl = true;
            }
        }
        if ws && ctrl {
            break;
        }
        i += 1;
    }
    if !ws {
        // Leading or trailing Unicode spaces.
        ws = s.chars().next().is_some_and(char::is_whitespace)
            || s.chars().next_back().is_some_and(char::is_whitespace);
    }
    (ws, ctrl)
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// True when one of the eight bytes is below 0x20, is 0x7F, or is non-ASCII.
fn has_special_byte(w: u64) -> bool {
    let below_space = w.wrapping_sub(ONES * 0x20) & !w;
    let x = w ^ (ONES * 0x7f);
    let is_del = x.wrapping_sub(ONES) & !x;
    (below_space | is_del | w) & HIGHS != 0
}

impl Normalize {
    /// The normalised text, or `None` when it is unchanged (the common case).
    pub fn rewrite(&self, text: &str) -> Option<String> {
        let mut current: Option<String> = None;
        let form_done = text.is_ascii()
            || match self.form {
                Form::None => true,
                Form::Nfc => {
                    nfc_stable_fast(text) || is_nfc_quick(text.chars()) == IsNormalized::Yes
                }
                Form::Nfkc => is_nfkc_quick(text.chars()) == IsNormalized::Yes,
            };
        if !form_done {
            current = Some(match self.form {
                Form::Nfc => text.nfc().collect(),
                Form::Nfkc => text.nfkc().collect(),
                Form::None => unreachable!(),
            });
        }
        let (ws, ctrl) = scan(current.as_deref().unwrap_or(text));
        if self.control_chars && ctrl {
            let s = current.as_deref().unwrap_or(text);
            current = Some(s.chars().filter(|c| !is_removed_control(*c)).collect());
        }
        if self.whitespace && ws {
            let s = current.as_deref().unwrap_or(text);
            let cleaned = clean_whitespace(s);
            if cleaned != s {
                current = Some(cleaned);
            }
        }
        current
    }
}

/// True when every character is of a range whose characters are all
/// NFC-stable with combining class 0: then the text is NFC without the
/// (much slower) table lookups of the full quick check.
fn nfc_stable_fast(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if i + 8 <= b.len()
            && u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes")) & HIGHS == 0
        {
            i += 8;
            continue;
        }
        match b[i] {
            0..=0x7f => {
                i += 1;
                continue;
            }
            // U+0080–U+02FF, U+4000–U+9FFF, U+B000–U+DFFF: stable, no decoding needed.
            0xc2..=0xcb => {
                i += 2;
                continue;
            }
            0xe4..=0xe9 | 0xeb..=0xed => {
                i += 3;
                continue;
            }
            _ => {}
        }
        let c = s[i..].chars().next().unwrap_or('\0');
        let u = c as u32;
        let stable = u < 0x300
            || (0x2002..0x20D0).contains(&u) // dashes, quotes, bullets, currency
            || (0x3000..0x302A).contains(&u) // CJK punctuation 、。「」《》
            || (0x3040..0x3099).contains(&u)
            || (0x309B..0xA000).contains(&u)
            || (0xAC00..0xD7A4).contains(&u)
            || (0xFF00..0xFFF0).contains(&u);
        if !stable {
            return false;
        }
        i += c.len_utf8();
    }
    true
}

enum Piece {
    Newline,
    Space(u8),
    Other,
}

/// CRLF and CR to LF, odd spaces to ' ', trailing spaces and tabs of each line
/// cut, 3+ newlines to 2, both ends trimmed. Indentation is kept: code and
/// verse rely on it. Works on bytes; only non-ASCII characters are decoded.
fn clean_whitespace(s: &str) -> String {
    let b = s.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(b.len());
    let mut pending: Vec<u8> = vec![];
    let mut newlines = 0usize;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let (piece, len) = if c < 0x80 {
            match c {
                b'\r' => (
                    Piece::Newline,
                    if b.get(i + 1) == Some(&b'\n') { 2 } else { 1 },
                ),
                b'\n' => (Piece::Newline, 1),
                b' ' | b'\t' => (Piece::Space(c), 1),
                0x0b | 0x0c => (Piece::Space(b' '), 1),
                _ => (Piece::Other, 1),
            }
        } else {
            let ch = s[i..].chars().next().unwrap_or('\0');
            let piece = if is_odd_space(ch) {
                Piece::Space(b' ')
            } else {
                Piece::Other
            };
            (piece, ch.len_utf8())
        };
        if matches!(piece, Piece::Other) && !out.is_empty() && newlines == 0 && pending.is_empty() {
            // Inside a line: copy the run of plain printable ASCII at once.
            let run = b[i..]
                .iter()
                .position(|&x| !(0x21..0x7f).contains(&x))
                .unwrap_or(b.len() - i);
            if run > 1 {
                out.extend_from_slice(&b[i..i + run]);
                i += run;
                continue;
            }
        }
        match piece {
            Piece::Newline => {
                pending.clear();
                newlines += 1;
            }
            Piece::Space(x) => pending.push(x),
            Piece::Other => {
                if !out.is_empty() {
                    if newlines > 0 {
                        out.extend_from_slice(if newlines >= 2 { b"\n\n" } else { b"\n" });
                    }
                    out.extend_from_slice(&pending);
                }
                pending.clear();
                newlines = 0;
                out.extend_from_slice(&b[i..i + len]);
            }
        }
        i += len;
    }
    String::from_utf8(out).expect("whole characters and ASCII whitespace were copied")
}

impl StreamOp for Normalize {
    fn apply(&self, batch: DocBatch) -> Result<OpOutput> {
        let texts = batch.texts();
        let rewritten: Vec<Option<String>> = texts
            .iter()
            .map(|t| self.rewrite(t.unwrap_or("")))
            .collect();
        let drops: Vec<Option<DropMark>> = texts
            .iter()
            .zip(&rewritten)
            .map(|(t, r)| {
                r.as_deref()
                    .unwrap_or(t.unwrap_or(""))
                    .is_empty()
                    .then(|| DropMark::new("normalize:empty"))
            })
            .collect();
        if rewritten.iter().all(Option::is_none) {
            return Ok(OpOutput::new(batch, drops));
        }
        let mut b = StringBuilder::with_capacity(texts.len(), texts.value_data().len());
        for (t, r) in texts.iter().zip(&rewritten) {
            b.append_value(r.as_deref().unwrap_or(t.unwrap_or("")));
        }
        let batch = with_texts(batch, b.finish())?;
        Ok(OpOutput::new(batch, drops))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Normalize {
        Normalize {
            form: Form::Nfc,
            whitespace: true,
            control_chars: true,
        }
    }

    #[test]
    fn leaves_clean_text_alone() {
        assert_eq!(all().rewrite("Hello world.\n\nSecond paragraph."), None);
        assert_eq!(all().rewrite("人民日报社论"), None);
    }

    #[test]
    fn composes_to_nfc_and_nfkc() {
        assert_eq!(all().rewrite("Cafe\u{301}").as_deref(), Some("Café"));
        let nfkc = Normalize {
            form: Form::Nfkc,
            ..all()
        };
        assert_eq!(nfkc.rewrite("ｆｕｌｌ①").as_deref(), Some("full1"));
    }

    #[test]
    fn cleans_whitespace_and_controls() {
        assert_eq!(
            all()
                .rewrite("  a \t b  \r\nc\u{00a0}d\n\n\n\ne\u{0007}  ")
                .as_deref(),
            Some("a \t b\nc d\n\ne")
        );
        assert_eq!(
            all().rewrite("def f():\n    return 1\n").as_deref(),
            Some("def f():\n    return 1")
        );
        assert_eq!(
            all().rewrite("\u{3000}\u{3000}中文"),
            Some("中文".to_string())
        );
        assert_eq!(all().rewrite("x\u{85}y").as_deref(), Some("x y"));
        assert_eq!(all().rewrite("a\r\r\n\rb").as_deref(), Some("a\n\nb"));
        assert!(nfc_stable_fast("naïve 中文 ｆｕｌｌ 한국어"));
        assert!(!nfc_stable_fast("e\u{301}"));
        assert!(!nfc_stable_fast("\u{2000}"));
        assert!(nfc_stable_fast("“quoted” — dash…"));
        assert!(nfc_stable_fast("《人民日报》，新年好。"));
        for (w, special) in [
            (*b"abcdefgh", false),
            (*b"abc\ndefg", true),
            (*b"abcdefg\x7f", true),
            (*b"abcd\xc3\xa9fg", true),
        ] {
            assert_eq!(has_special_byte(u64::from_le_bytes(w)), special, "{w:?}");
        }
        assert_eq!(all().rewrite("\u{feff}x").as_deref(), Some("x"));
    }

    #[test]
    fn none_form_keeps_decomposed_text() {
        let n = Normalize {
            form: Form::None,
            whitespace: false,
            control_chars: false,
        };
        assert_eq!(n.rewrite("Cafe\u{301}  x"), None);
    }
}
