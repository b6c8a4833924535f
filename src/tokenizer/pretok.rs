//! Pre-tokenisation: the text cut into pieces that BPE never merges across.
//!
//! The presets are the regexes of GPT-2, Llama 3 (cl100k) and Qwen 2, written
//! out as scanners that give exactly the regex's matches (leftmost, first
//! alternative that matches, greedy with backtracking) without a regex
//! engine: this is where a trainer spends most of its time. A custom
//! pattern runs through `fancy-regex` (it has the look-ahead these patterns
//! use). With `split_digits`, every number character becomes its own piece,
//! as the Hugging Face `Digits(individual_digits=true)` pre-tokenizer does.

use unicode_properties::{GeneralCategoryGroup, UnicodeGeneralCategory};

/// The regexes, as they go into `tokenizer.json`.
pub const GPT2: &str =
    r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";
pub const LLAMA3: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
pub const QWEN2: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Preset {
    Gpt2,
    Llama3,
    Qwen2,
}

impl Preset {
    pub fn pattern(self) -> &'static str {
        match self {
            Preset::Gpt2 => GPT2,
            Preset::Llama3 => LLAMA3,
            Preset::Qwen2 => QWEN2,
        }
    }
}

pub enum PreTokenizer {
    Preset(Preset),
    Custom(fancy_regex::Regex),
}

#[inline]
fn is_letter(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_alphabetic()
    } else {
        c.general_category_group() == GeneralCategoryGroup::Letter
    }
}

#[inline]
fn is_number(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_digit()
    } else {
        c.general_category_group() == GeneralCategoryGroup::Number
    }
}

/// `\s`: the Unicode White_Space property.
#[inline]
fn is_space(c: char) -> bool {
    c.is_whitespace()
}

#[inline]
fn is_newline(c: char) -> bool {
    c == '\r' || c == '\n'
}

/// A cursor over the characters of the text from a byte offset.
struct Scan<'a> {
    text: &'a str,
}

impl Scan<'_> {
    #[inline]
    fn at(&self, i: usize) -> Option<(char, usize)> {
        self.text[i..].chars().next().map(|c| (c, i + c.len_utf8()))
    }

    /// End of the run of characters satisfying `f` from `i`.
    #[inline]
    fn run(&self, mut i: usize, f: impl Fn(char) -> bool) -> usize {
        while let Some((c, next)) = self.at(i) {
            if !f(c) {
                break;
            }
            i = next;
        }
        i
    }

    /// `'s|'t|'re|'ve|'m|'ll|'d`, case-insensitive or not, at `i` (a `'`).
    fn contraction(&self, i: usize, fold: bool) -> Option<usize> {
        let rest = &self.text.as_bytes()[i + 1..];
        let lower = |k: usize| -> Option<u8> {
            rest.get(k)
                .map(|b| if fold { b.to_ascii_lowercase() } else { *b })
        };
        if fold && rest.starts_with("ſ".as_bytes()) {
            return Some(i + 1 + 'ſ'.len_utf8()); // U+017F folds to s
        }
        match lower(0)? {
            b's' | b't' | b'm' | b'd' => Some(i + 2),
            b'r' | b'v' if lower(1) == Some(b'e') => Some(i + 3),
            b'l' if lower(1) == Some(b'l') => Some(i + 3),
            _ => None,
        }
    }

    /// The end of the whitespace run from `i` as `\s+(?!\S)|\s+` takes it.
    fn spaces(&self, i: usize) -> usize {
        let end = self.run(i, is_space);
        if end == self.text.len() {
            return end;
        }
        // Followed by a non-space: give its last character back, unless it
        // is the only one.
        let last = self.text[i..end]
            .chars()
            .next_back()
            .expect("non-empty run");
        if end - last.len_utf8() > i {
            end - last.len_utf8()
        } else {
            end
        }
    }

    /// One piece from `i` (not at the end) under the GPT-2 pattern.
    fn gpt2(&self, i: usize) -> usize {
        let (c, next) = self.at(i).expect("not at the end");
        if c == '\'' {
            if let Some(end) = self.contraction(i, false) {
                return end;
            }
        }
        // ` ?X+` for X in letters, numbers, other: the optional space only
        // when the class follows it.
        let (start, first) = match (c, self.at(next)) {
            (' ', Some((d, _))) if !is_space(d) => (next, d),
            _ => (i, c),
        };
        if is_letter(first) {
            return self.run(start, is_letter);
        }
        if is_number(first) {
            return self.run(start, is_number);
        }
        if !is_space(first) {
            return self.run(start, |c| !is_space(c) && !is_letter(c) && !is_number(c));
        }
        self.spaces(i)
    }

    /// One piece from `i` under the Llama 3 (`digits` = 3) or Qwen 2
    /// (`digits` = 1) pattern.
    fn llama(&self, i: usize, digits: usize) -> usize {
        let (c, next) = self.at(i).expect("not at the end");
        if c == '\'' {
            if let Some(end) = self.contraction(i, true) {
                return end;
            }
        }
        // [^\r\n\p{L}\p{N}]?\p{L}+
        if is_letter(c) {
            return self.run(next, is_letter);
        }
        if !is_newline(c) && !is_number(c) {
            if let Some((d, _)) = self.at(next) {
                if is_letter(d) {
                    return self.run(next, is_letter);
                }
            }
        }
        // \p{N}{1,digits}
        if is_number(c) {
            let mut end = next;
            for _ in 1..digits {
                match self.at(end) {
                    Some((d, after)) if is_number(d) => end = after,
                    _ => break,
                }
            }
            return end;
        }
        // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
        let other = |c: char| !is_space(c) && !is_letter(c) && !is_number(c);
        let start = match (c, self.at(next)) {
            (' ', Some((d, _))) if other(d) => Some(next),
            _ if other(c) => Some(i),
            _ => None,
        };
        if let Some(start) = start {
            let end = self.run(start, other);
            return self.run(end, is_newline);
        }
        // `\s*[\r\n]+`: up to the last newline of the whitespace run.
        let run_end = self.run(i, is_space);
        if let Some(last_nl) = self.text[i..run_end].rfind(['\r', '\n']) {
            return i + last_nl + 1;
        }
        self.spaces(i)
    }
}

/// Cuts a text into pieces, calling `f` on each in order.
pub fn pieces<'a>(
    pre: &PreTokenizer,
    split_digits: bool,
    text: &'a str,
    mut f: impl FnMut(&'a str),
) {
    let mut emit = |piece: &'a str| {
        if !split_digits {
            f(piece);
            return;
        }
        // Each number character alone; the runs between them as they are.
        let mut start = 0;
        for (j, c) in piece.char_indices() {
            if is_digit_piece(c) {
                if start < j {
                    f(&piece[start..j]);
                }
                f(&piece[j..j + c.len_utf8()]);
                start = j + c.len_utf8();
            }
        }
        if start < piece.len() {
            f(&piece[start..]);
        }
    };
    match pre {
        PreTokenizer::Preset(p) => {
            let scan = Scan { text };
            let mut i = 0;
            while i < text.len() {
                let end = match p {
                    Preset::Gpt2 => scan.gpt2(i),
                    Preset::Llama3 => scan.llama(i, 3),
                    Preset::Qwen2 => scan.llama(i, 1),
                };
                debug_assert!(end > i);
                emit(&text[i..end]);
                i = end;
            }
        }
        PreTokenizer::Custom(re) => {
            // Isolated: matches are pieces, and so are the gaps between them.
            let mut last = 0;
            for m in re.find_iter(text) {
                let Ok(m) = m else {
                    // The backtracking limit: the rest as one piece.
                    break;
                };
                if m.start() > last {
                    emit(&text[last..m.start()]);
                }
                if m.end() > m.start() {
                    emit(m.as_str());
                }
                last = m.end();
            }
            if last < text.len() {
                emit(&text[last..]);
            }
        }
    }
}

/// What Hugging Face's `Digits` pre-tokenizer isolates: Rust's `is_numeric`.
#[inline]
fn is_digit_piece(c: char) -> bool {
    c.is_numeric()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cut(p: Preset, text: &str) -> Vec<String> {
        let mut out = vec![];
        pieces(&PreTokenizer::Preset(p), false, text, |s| {
            out.push(s.to_string())
        });
        out
    }

    fn cut_regex(pattern: &str, text: &str) -> Vec<String> {
        let re = fancy_regex::Regex::new(pattern).unwrap();
        let mut out = vec![];
        pieces(&PreTokenizer::Custom(re), false, text, |s| {
            out.push(s.to_string())
        });
        out
    }

    const SAMPLES: &[&str] = &[
        "Hello world! It's 2024, isn't it?  Yes...\n\n  New line\r\n\tTabbed   end   ",
        "I'LL say: we'RE here, they'd've gone. 'quoted' 'S",
        "数字１２３４和中文混排，還有日本語のテキスト。Привет, мир! 123456789 x²³ ½",
        "   leading spaces\n\n\n   trailing\n",
        "a\u{00A0}b\u{2003}c \u{3000}全角空白 e\u{301}\u{301} नमस्ते दुनिया",
        "emoji 🎉🎉 👩‍👩‍👧 and symbols ©®™ --- *** ### \"quotes\" (parens) [brackets]",
        "code: fn main() { let x = 42; println!(\"{x}\"); }\n    indented\n",
        " ",
        "\n",
        "x",
        "'",
        "' s",
        "  \n  \n  x  ",
    ];

    #[test]
    fn presets_give_the_regex_matches() {
        for preset in [Preset::Gpt2, Preset::Llama3, Preset::Qwen2] {
            for text in SAMPLES {
                assert_eq!(
                    cut(preset, text),
                    cut_regex(preset.pattern(), text),
                    "{preset:?} on {text:?}"
                );
            }
        }
    }

    #[test]
    fn pieces_cover_the_text_and_digits_stand_alone() {
        for text in SAMPLES {
            let mut out = vec![];
            pieces(&PreTokenizer::Preset(Preset::Llama3), true, text, |s| {
                out.push(s)
            });
            assert_eq!(out.concat(), *text);
            for p in &out {
                assert!(
                    p.chars().filter(|c| c.is_numeric()).count() <= 1 || p.chars().count() == 1,
                    "{p:?}"
                );
                if p.chars().any(char::is_numeric) {
                    assert_eq!(p.chars().count(), 1, "{p:?}");
                }
            }
        }
    }
}
