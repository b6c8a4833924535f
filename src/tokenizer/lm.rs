//! The words of an n-gram language model: how a line of text becomes the
//! space-separated tokens KenLM counts (`sluice train-lm`) and scores (the
//! `perplexity` op). Both use this one definition, so that a model trained
//! by sluice scores text tokenized exactly as its training text was.

use std::borrow::Cow;
use std::path::Path;

use anyhow::{anyhow, Result};
use serde::{Deserialize, Serialize};

use super::sentencepiece::UnigramPieces;

/// How a line is normalised before it is tokenized.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LineNormalize {
    /// As it is (the text is what the model was trained on).
    #[default]
    None,
    /// CCNet's `text_normalizer.normalize`: lower case, accents stripped,
    /// digits to 0, its Unicode punctuation mapped, control characters
    /// removed.
    Ccnet,
}

impl LineNormalize {
    pub fn apply<'a>(&self, line: &'a str) -> Cow<'a, str> {
        match self {
            LineNormalize::None => Cow::Borrowed(line),
            LineNormalize::Ccnet => Cow::Owned(crate::text::ccnet::normalize(line)),
        }
    }
}

/// A line's tokens.
pub enum LmTokenizer {
    /// The text's own words: runs between ASCII whitespace (the bytes
    /// KenLM's `Model.score` splits on), with every character of a script
    /// written without spaces (Chinese, Japanese, Thai, …) a word of its own.
    Words,
    /// A SentencePiece unigram model, segmented as sentencepiece does
    /// (CCNet's `<lang>.sp.model`).
    Spm(UnigramPieces),
    /// A tokenizer.json: its token strings.
    Hf(tokenizers::Tokenizer),
}

/// KenLM's word separators (Python's `bytes.split()`): tab, newline,
/// vertical tab, form feed, carriage return, space.
pub fn is_separator(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\u{b}' | '\u{c}' | '\r' | ' ')
}

impl LmTokenizer {
    /// A SentencePiece `.model`, or else a tokenizer.json (or anything
    /// `load_tokenizer` reads).
    pub fn load(path: &Path) -> Result<LmTokenizer> {
        if !path.exists() {
            return Err(anyhow!(
                "cannot read the tokenizer {}: it does not exist",
                path.display()
            ));
        }
        if path.extension().is_some_and(|e| e == "model") {
            let m = UnigramPieces::load(path).map_err(|e| {
                anyhow!(
                    "cannot read the SentencePiece model {}: {e:#}",
                    path.display()
                )
            })?;
            return Ok(LmTokenizer::Spm(m));
        }
        Ok(LmTokenizer::Hf(super::load::load_tokenizer(path)?))
    }

    /// Calls `f` with each token of `line`, in order. No token is empty or
    /// holds a separator.
    pub fn tokens(&self, line: &str, mut f: impl FnMut(&str)) -> Result<()> {
        match self {
            LmTokenizer::Words => {
                for w in line.split(is_separator).filter(|w| !w.is_empty()) {
                    split_unspaced(w, &mut f);
                }
            }
            LmTokenizer::Spm(m) => {
                for p in m.pieces(line)? {
                    for w in p.split(is_separator).filter(|w| !w.is_empty()) {
                        f(w);
                    }
                }
            }
            LmTokenizer::Hf(t) => {
                let enc = t
                    .encode(line, false)
                    .map_err(|e| anyhow!("cannot tokenize a line: {e}"))?;
                for p in enc.get_tokens() {
                    for w in p.split(is_separator).filter(|w| !w.is_empty()) {
                        f(w);
                    }
                }
            }
        }
        Ok(())
    }

    /// The line as the model scores it: its tokens joined by single spaces
    /// (the line itself when splitting on separators already gives them).
    pub fn joined<'a>(&self, line: &'a str) -> Result<Cow<'a, str>> {
        if matches!(self, LmTokenizer::Words) && already_split(line) {
            return Ok(Cow::Borrowed(line));
        }
        let mut out = String::with_capacity(line.len() + 16);
        self.tokens(line, |w| {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(w);
        })?;
        Ok(Cow::Owned(out))
    }
}

/// Whether splitting on separators already gives the words: every
/// unspaced-script character stands between separators (or the line's
/// ends), as in Chinese written one character per word.
fn already_split(line: &str) -> bool {
    let mut prev_sep = true;
    let mut prev_unspaced = false;
    for c in line.chars() {
        let sep = is_separator(c);
        let unspaced = crate::text::is_unspaced_script(c);
        if (unspaced && !prev_sep) || (prev_unspaced && !sep) {
            return false;
        }
        prev_sep = sep;
        prev_unspaced = unspaced;
    }
    true
}

/// A whitespace-free run, with each unspaced-script character its own word.
fn split_unspaced(w: &str, f: &mut impl FnMut(&str)) {
    let mut start = 0;
    for (i, c) in w.char_indices() {
        if crate::text::is_unspaced_script(c) {
            if start < i {
                f(&w[start..i]);
            }
            f(&w[i..i + c.len_utf8()]);
            start = i + c.len_utf8();
        }
    }
    if start < w.len() {
        f(&w[start..]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<String> {
        let mut out = vec![];
        LmTokenizer::Words
            .tokens(line, |w| out.push(w.to_string()))
            .unwrap();
        out
    }

    #[test]
    fn words_split_on_kenlms_separators_and_unspaced_characters() {
        assert_eq!(words(" the  cat\tsat\u{b}"), ["the", "cat", "sat"]);
        // A no-break space is not a separator for KenLM.
        assert_eq!(words("a\u{a0}b c"), ["a\u{a0}b", "c"]);
        assert_eq!(
            words("我们在2024年 go。"),
            ["我", "们", "在", "2024", "年", "go。"]
        );
        assert_eq!(LmTokenizer::Words.joined("我们 ok").unwrap(), "我 们 ok");
        assert!(matches!(
            LmTokenizer::Words.joined("plain  words").unwrap(),
            Cow::Borrowed("plain  words")
        ));
        assert!(matches!(
            LmTokenizer::Words.joined("我 们 ok").unwrap(),
            Cow::Borrowed("我 们 ok")
        ));
        assert_eq!(LmTokenizer::Words.joined("a我").unwrap(), "a 我");
        assert_eq!(LmTokenizer::Words.joined("我们").unwrap(), "我 们");
    }
}
