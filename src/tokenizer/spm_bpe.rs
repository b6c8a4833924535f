//! SentencePiece-style BPE, the layout of LLaMA 1/2, Baichuan and ChatGLM:
//! spaces become `▁` and each line gets a dummy `▁` in front (Llama 2's
//! identity normaliser, extra spaces kept), pieces are sequences of
//! characters, characters outside the coverage fall back to their UTF-8
//! bytes (`<0x00>`…`<0xFF>`), and the ids are `<unk>` 0, `<s>` 1, `</s>` 2,
//! the bytes, the merged pieces, the characters.
//!
//! Training follows SentencePiece's BPE trainer (`spm_train --model_type=bpe`)
//! in what decides the pieces: lines split into words at `▁` (a run of `▁`
//! joins the word after it, as with `allow_whitespace_only_pieces`), the
//! characters kept by coverage, and the rules of `IsValidSentencePiece` (no
//! two scripts in a piece, `▁` only in front unless the piece is all `▁`,
//! digits alone with `split_digits`, at most `max_piece_length` characters,
//! no piece twice). The merge loop is sluice's exact one (`bpe.rs`), where
//! SentencePiece recounts only a sample of candidate pairs between updates.
//!
//! The model is written both as a `tokenizer.json` (a BPE model with
//! `byte_fallback`, its merges derived from the pieces as Hugging Face's
//! converter does, so the `tokenizers` crate and `LlamaTokenizerFast` load
//! it) and as a SentencePiece `tokenizer.model` (protobuf) that the
//! `sentencepiece` package loads; both encode any text to the same ids.

use std::collections::HashMap;

use serde_json::json;
use unicode_script::{Script, UnicodeScript};

use super::bpe::{train_alphabet, Alphabet, TrainOptions};
use super::fxhash::FxBuild;
use super::wordcount::WordCounts;

/// SentencePiece's whitespace mark.
pub const WS: char = '▁';

/// The settings of a SentencePiece-style training.
#[derive(Debug, Clone)]
pub struct SpmOptions {
    /// The whole vocabulary: `<unk>`, `<s>`, `</s>`, the extra special
    /// tokens, the 256 bytes (with byte fallback), pieces and characters.
    pub vocab_size: usize,
    pub byte_fallback: bool,
    pub split_digits: bool,
    /// Runs of `▁` made tokens before any other merge (Baichuan 2's
    /// whitespace tokens for code).
    pub whitespace_tokens: Vec<usize>,
    /// Longest piece, in characters.
    pub max_piece_length: usize,
    /// Share of the characters of the text (by count) that are kept as
    /// pieces; the rarer ones fall back to bytes (or `<unk>`).
    pub character_coverage: f64,
    /// More special tokens after `</s>` (matched in the text, never split).
    pub special_tokens: Vec<String>,
    /// Pairs seen fewer times are not merged.
    pub min_frequency: u64,
}

/// The piece types of SentencePiece's `ModelProto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Normal = 1,
    Unknown = 2,
    Control = 3,
    UserDefined = 4,
    Byte = 6,
}

/// A trained model: every piece with its score and type, in id order.
#[derive(Debug, Clone)]
pub struct SpmModel {
    pub pieces: Vec<(String, f32, Kind)>,
    pub options: SpmOptions,
    /// Characters kept, and the share of the text's characters they cover.
    pub characters: usize,
    pub coverage: f64,
    /// Pieces learnt by merging (the rest of the vocabulary is fixed).
    pub merged: usize,
}

/// Calls `f` on every word of `text` as SentencePiece's trainer sees it:
/// each non-empty line normalised (`▁` in front, spaces as `▁`) and split
/// before each `▁` that does not continue a run of `▁`.
pub fn words(text: &str, line_buf: &mut String, mut f: impl FnMut(&str)) {
    for line in text.split('\n') {
        if line.is_empty() {
            continue;
        }
        line_buf.clear();
        line_buf.push(WS);
        for c in line.chars() {
            line_buf.push(if c == ' ' { WS } else { c });
        }
        let mut start = 0;
        let mut in_ws = false;
        for (i, c) in line_buf.char_indices() {
            let ws = c == WS;
            if i == 0 || (ws && !in_ws) {
                if i > start {
                    f(&line_buf[start..i]);
                }
                start = i;
                in_ws = true;
            }
            if in_ws && !ws {
                in_ws = false;
            }
        }
        f(&line_buf[start..]);
    }
}

fn is_decimal(c: char) -> bool {
    c.is_ascii_digit() || ('\u{ff10}'..='\u{ff19}').contains(&c)
}

/// SentencePiece's `IsValidSentencePiece` with Llama 2's settings (split by
/// script, by whitespace and by number; whitespace-only pieces allowed).
pub fn valid_piece(piece: &str, max_chars: usize, split_digits: bool) -> bool {
    let n = piece.chars().count();
    if n == 0 || n > max_chars {
        return false;
    }
    let all_ws = piece.chars().all(|c| c == WS);
    let mut prev: Option<Script> = None;
    for (pos, c) in piece.chars().enumerate() {
        if matches!(c, '\0' | '\t' | ' ') {
            return false;
        }
        if c == WS {
            if !all_ws && pos > 0 {
                return false;
            }
            continue;
        }
        let script = match c.script() {
            Script::Hiragana | Script::Katakana | Script::Han => Some(Script::Han),
            _ if c == '\u{30fc}' => Some(Script::Han),
            Script::Inherited => prev,
            s => Some(s),
        };
        if split_digits && is_decimal(c) && n > 1 {
            return false;
        }
        if let (Some(a), Some(b)) = (script, prev) {
            if a != b {
                return false;
            }
        }
        prev = script;
    }
    true
}

/// The characters kept, most frequent first (ties in code point order), as
/// SentencePiece chooses them: while the share of the text's characters
/// covered so far is below `coverage`, the next one is added. Tabs count
/// but are never kept (SentencePiece reserves them), nor is NUL counted.
fn kept_characters(counts: &WordCounts, coverage: f64) -> (Vec<char>, f64) {
    let mut per: HashMap<char, u64, FxBuild> = HashMap::default();
    counts.for_each(|w, n| {
        for c in String::from_utf8_lossy(w).chars() {
            if c != '\0' {
                *per.entry(c).or_insert(0) += n;
            }
        }
    });
    let all: u64 = per.values().sum();
    let mut sorted: Vec<(char, u64)> = per.into_iter().collect();
    sorted.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let (mut kept, mut acc) = (vec![], 0u64);
    for (c, n) in sorted {
        if all > 0 && acc as f64 / all as f64 >= coverage {
            break;
        }
        acc += n;
        if c != '\t' {
            kept.push(c);
        }
    }
    (kept, acc as f64 / all.max(1) as f64)
}

/// The forced merges that make the runs of `▁` asked for: each run from the
/// longest run already made and the rest (made first when missing), so
/// `[2, 4, 8, 16]` takes four merges.
fn whitespace_merges(sizes: &[usize]) -> Vec<(Vec<u8>, Vec<u8>)> {
    fn make(n: usize, built: &mut Vec<usize>, out: &mut Vec<(Vec<u8>, Vec<u8>)>) {
        if built.contains(&n) {
            return;
        }
        let left = built.iter().copied().filter(|&b| b < n).max().unwrap_or(1);
        let right = n - left;
        make(right, built, out);
        let run = |k: usize| WS.to_string().repeat(k).into_bytes();
        out.push((run(left), run(right)));
        built.push(n);
    }
    let mut sizes: Vec<usize> = sizes.iter().copied().filter(|&n| n >= 2).collect();
    sizes.sort_unstable();
    sizes.dedup();
    let (mut built, mut out) = (vec![1], vec![]);
    for n in sizes {
        make(n, &mut built, &mut out);
    }
    out
}

/// The fixed pieces before the learnt ones: `<unk>`, `<s>`, `</s>`, the
/// extra special tokens, the bytes.
fn meta_pieces(opt: &SpmOptions) -> Vec<(String, f32, Kind)> {
    let mut out = vec![
        ("<unk>".to_string(), 0.0, Kind::Unknown),
        ("<s>".to_string(), 0.0, Kind::Control),
        ("</s>".to_string(), 0.0, Kind::Control),
    ];
    for s in &opt.special_tokens {
        out.push((s.clone(), 0.0, Kind::UserDefined));
    }
    if opt.byte_fallback {
        for b in 0..=255u8 {
            out.push((format!("<0x{b:02X}>"), 0.0, Kind::Byte));
        }
    }
    out
}

/// Trains on counted words (from [`words`]). Errors are the user's: a
/// vocabulary too small for the characters kept.
pub fn train(counts: WordCounts, opt: &SpmOptions) -> Result<SpmModel, String> {
    let mut pieces = meta_pieces(opt);
    let (chars, coverage) = kept_characters(&counts, opt.character_coverage);
    if pieces.len() + chars.len() > opt.vocab_size {
        return Err(format!(
            "vocab_size {} is below the {} fixed tokens plus the {} characters that cover {:.4} of the text: \
             raise vocab_size or lower character_coverage",
            opt.vocab_size,
            pieces.len(),
            chars.len(),
            opt.character_coverage
        ));
    }
    let reserved: std::collections::HashSet<Vec<u8>> =
        pieces.iter().map(|p| p.0.as_bytes().to_vec()).collect();
    if let Some(c) = chars
        .iter()
        .find(|c| reserved.contains(c.to_string().as_bytes()))
    {
        return Err(format!(
            "the special token {c:?} is also a character of the text"
        ));
    }
    let unk = chars.len() as u32;
    let id: HashMap<char, u32, FxBuild> = chars
        .iter()
        .enumerate()
        .map(|(i, &c)| (c, i as u32))
        .collect();
    let mut tokens: Vec<Vec<u8>> = chars.iter().map(|c| c.to_string().into_bytes()).collect();
    // Characters outside the coverage: one symbol that never merges.
    tokens.push(vec![]);
    let n_base = tokens.len();
    let split = |w: &[u8], out: &mut Vec<u32>| {
        out.extend(
            String::from_utf8_lossy(w)
                .chars()
                .map(|c| id.get(&c).copied().unwrap_or(unk)),
        )
    };
    let (max_len, digits) = (opt.max_piece_length, opt.split_digits);
    let allow = |l: &[u8], r: &[u8]| {
        if l.is_empty() || r.is_empty() {
            return false;
        }
        let joined = [l, r].concat();
        !reserved.contains(&joined)
            && std::str::from_utf8(&joined).is_ok_and(|s| valid_piece(s, max_len, digits))
    };
    let merges_wanted = opt.vocab_size - pieces.len() - chars.len();
    let alphabet = Alphabet {
        tokens,
        split: &split,
        allow: &allow,
        forced: whitespace_merges(&opt.whitespace_tokens),
        unique: true,
    };
    let bpe = train_alphabet(
        counts,
        &TrainOptions {
            vocab_size: n_base + merges_wanted,
            n_special: 0,
            min_frequency: opt.min_frequency,
            required: vec![],
            max_token_bytes: 0,
        },
        &alphabet,
    );
    let merged = bpe.tokens.len() - n_base;
    let learnt = bpe.tokens[n_base..]
        .iter()
        .map(|t| String::from_utf8_lossy(t).into_owned())
        .chain(chars.iter().map(char::to_string));
    for (i, p) in learnt.enumerate() {
        pieces.push((p, -(i as f32), Kind::Normal));
    }
    Ok(SpmModel {
        pieces,
        options: opt.clone(),
        characters: chars.len(),
        coverage,
        merged,
    })
}

impl SpmModel {
    /// The merges of the `tokenizer.json`, as Hugging Face's converter
    /// (`SentencePieceExtractor`) derives them: for each normal piece in
    /// score order, every split into two normal pieces, ordered by their
    /// ids. Merging the lowest-ranked pair first is then SentencePiece's
    /// encoding, which merges the highest-scored piece first.
    pub fn merges(&self) -> Vec<(&str, &str)> {
        let normal: HashMap<&str, u32, FxBuild> = self
            .pieces
            .iter()
            .enumerate()
            .filter(|(_, p)| p.2 == Kind::Normal)
            .map(|(i, p)| (p.0.as_str(), i as u32))
            .collect();
        let mut out = vec![];
        let mut local = vec![];
        for (piece, _, kind) in &self.pieces {
            if *kind != Kind::Normal {
                continue;
            }
            local.clear();
            for (at, _) in piece.char_indices().skip(1) {
                let (l, r) = piece.split_at(at);
                if let (Some(&a), Some(&b)) = (normal.get(l), normal.get(r)) {
                    local.push((a, b, l, r));
                }
            }
            local.sort_unstable();
            out.extend(local.iter().map(|&(_, _, l, r)| (l, r)));
        }
        out
    }

    /// The Hugging Face `tokenizer.json`, laid out as Llama 2's.
    pub fn to_tokenizer_json(&self) -> serde_json::Value {
        let mut vocab = serde_json::Map::new();
        for (i, (p, _, _)) in self.pieces.iter().enumerate() {
            vocab.insert(p.clone(), json!(i));
        }
        let added: Vec<serde_json::Value> = self
            .pieces
            .iter()
            .enumerate()
            .filter(|(_, p)| matches!(p.2, Kind::Unknown | Kind::Control | Kind::UserDefined))
            .map(|(i, p)| {
                json!({"id": i, "content": p.0, "single_word": false, "lstrip": false,
                       "rstrip": false, "normalized": false, "special": true})
            })
            .collect();
        let merges: Vec<[&str; 2]> = self.merges().into_iter().map(|(l, r)| [l, r]).collect();
        json!({
            "version": "1.0",
            "truncation": null,
            "padding": null,
            "added_tokens": added,
            "normalizer": {"type": "Sequence", "normalizers": [
                {"type": "Prepend", "prepend": "▁"},
                {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]},
            "pre_tokenizer": null,
            "post_processor": {"type": "TemplateProcessing",
                "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                         {"SpecialToken": {"id": "<s>", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
                "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
            "decoder": {"type": "Sequence", "decoders": [
                {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
                {"type": "ByteFallback"},
                {"type": "Fuse"},
                {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
            "model": {"type": "BPE", "dropout": null, "unk_token": "<unk>",
                      "continuing_subword_prefix": null, "end_of_word_suffix": null,
                      "fuse_unk": true, "byte_fallback": self.options.byte_fallback,
                      "ignore_merges": false, "vocab": vocab, "merges": merges}
        })
    }

    /// The SentencePiece `ModelProto` (`tokenizer.model`): the pieces, the
    /// trainer settings that describe them, and the identity normaliser with
    /// the dummy prefix and extra spaces kept.
    pub fn to_model_proto(&self) -> Vec<u8> {
        use super::sentencepiece::proto::{bytes_field, float_field, int_field};
        let o = &self.options;
        let mut out = vec![];
        for (p, score, kind) in &self.pieces {
            let mut m = vec![];
            bytes_field(&mut m, 1, p.as_bytes());
            float_field(&mut m, 2, *score);
            int_field(&mut m, 3, *kind as i64);
            bytes_field(&mut out, 1, &m);
        }
        let mut t = vec![];
        int_field(&mut t, 3, 2); // BPE
        int_field(&mut t, 4, self.pieces.len() as i64);
        float_field(&mut t, 10, o.character_coverage as f32);
        int_field(&mut t, 20, o.max_piece_length as i64);
        int_field(&mut t, 21, 1);
        int_field(&mut t, 22, 1);
        int_field(&mut t, 23, 1);
        int_field(&mut t, 24, 0);
        int_field(&mut t, 25, o.split_digits as i64);
        int_field(&mut t, 26, 1);
        int_field(&mut t, 35, o.byte_fallback as i64);
        int_field(&mut t, 40, 0);
        int_field(&mut t, 41, 1);
        int_field(&mut t, 42, 2);
        int_field(&mut t, 43, -1);
        bytes_field(&mut t, 45, b"<unk>");
        bytes_field(&mut t, 46, b"<s>");
        bytes_field(&mut t, 47, b"</s>");
        bytes_field(&mut t, 48, b"<pad>");
        bytes_field(&mut out, 2, &t);
        let mut n = vec![];
        bytes_field(&mut n, 1, b"identity");
        bytes_field(&mut n, 2, b"");
        int_field(&mut n, 3, 1);
        int_field(&mut n, 4, 0);
        int_field(&mut n, 5, 1);
        bytes_field(&mut out, 3, &n);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(text: &str) -> Vec<String> {
        let mut out = vec![];
        words(text, &mut String::new(), |w| out.push(w.to_string()));
        out
    }

    #[test]
    fn lines_become_words_as_sentencepiece_splits_them() {
        assert_eq!(split("this is"), ["▁this", "▁is"]);
        // A run of spaces joins the word after it; empty lines are skipped.
        assert_eq!(split("a   b\n\n  x "), ["▁a", "▁▁▁b", "▁▁▁x", "▁"]);
        assert_eq!(split("中文 text"), ["▁中文", "▁text"]);
    }

    #[test]
    fn pieces_follow_sentencepieces_rules() {
        for ok in ["▁the", "▁▁▁▁", "ひらがな漢字", "▁1", "的", "..."] {
            assert!(valid_piece(ok, 16, false), "{ok}");
        }
        for bad in [
            "the▁",
            "▁▁a",
            "a,",
            "ab中",
            "12",
            "a\tb",
            "▁aaaaaaaaaaaaaaaa",
        ] {
            assert!(!valid_piece(bad, 16, true), "{bad}");
        }
        assert!(valid_piece("12", 16, false));
        // A combining mark takes the script of the letter before it.
        assert!(valid_piece("e\u{301}t", 16, true));
    }

    #[test]
    fn whitespace_runs_take_one_merge_each() {
        let m = whitespace_merges(&[16, 2, 4, 8]);
        let sizes: Vec<(usize, usize)> =
            m.iter().map(|(l, r)| (l.len() / 3, r.len() / 3)).collect();
        assert_eq!(sizes, [(1, 1), (2, 2), (4, 4), (8, 8)]);
        let m = whitespace_merges(&[2, 4, 7]);
        let sizes: Vec<(usize, usize)> =
            m.iter().map(|(l, r)| (l.len() / 3, r.len() / 3)).collect();
        assert_eq!(sizes, [(1, 1), (2, 2), (2, 1), (4, 3)]);
    }

    fn counts(texts: &[&str]) -> WordCounts {
        let mut c = WordCounts::default();
        for t in texts {
            words(t, &mut String::new(), |w| c.add(w.as_bytes(), 1));
        }
        c
    }

    fn opts(vocab: usize) -> SpmOptions {
        SpmOptions {
            vocab_size: vocab,
            byte_fallback: true,
            split_digits: true,
            whitespace_tokens: vec![],
            max_piece_length: 16,
            character_coverage: 1.0,
            special_tokens: vec![],
            min_frequency: 1,
        }
    }

    #[test]
    fn the_vocabulary_is_laid_out_as_llamas() {
        let text = ["the cat sat on the mat 12\nthe cat 中文中文"; 20];
        let m = train(counts(&text), &opts(288)).unwrap();
        assert_eq!(m.pieces.len(), 288);
        assert_eq!(m.pieces[0].0, "<unk>");
        assert_eq!(m.pieces[2].0, "</s>");
        assert_eq!(m.pieces[3].0, "<0x00>");
        assert_eq!(m.pieces[258].0, "<0xFF>");
        // The most frequent pair first: "at" (cat, sat, mat, cat).
        assert_eq!(m.pieces[259].0, "at");
        let learnt: Vec<&str> = m.pieces[259..].iter().map(|p| p.0.as_str()).collect();
        for p in &learnt {
            assert!(valid_piece(p, 16, true), "{p}");
        }
        assert!(
            learnt.contains(&"▁the") && learnt.contains(&"▁中文中文"),
            "{learnt:?}"
        );
        // Scores fall with the id; the characters come last.
        assert!(m.pieces[259..].windows(2).all(|w| w[0].1 > w[1].1));
        assert_eq!(m.pieces.last().unwrap().0.chars().count(), 1);
        let unique: std::collections::HashSet<&str> =
            m.pieces.iter().map(|p| p.0.as_str()).collect();
        assert_eq!(unique.len(), m.pieces.len());
    }

    #[test]
    fn rare_characters_are_left_to_bytes_and_small_vocabularies_refused() {
        let mut text = vec!["aaaa bbbb"; 1000];
        text.push("ж");
        let mut o = opts(270);
        o.character_coverage = 0.999;
        let m = train(counts(&text), &o).unwrap();
        assert!(!m.pieces.iter().any(|p| p.0 == "ж"));
        assert!(m.pieces.iter().any(|p| p.0 == "a"));
        let err = train(counts(&text), &opts(262)).unwrap_err();
        assert!(err.contains("character_coverage"), "{err}");
    }

    #[test]
    fn whitespace_tokens_come_first() {
        let text = ["x        y"; 3];
        let mut o = opts(300);
        o.whitespace_tokens = vec![2, 4, 8];
        let m = train(counts(&text), &o).unwrap();
        assert_eq!(m.pieces[259].0, "▁▁");
        assert_eq!(m.pieces[260].0, "▁▁▁▁");
        assert_eq!(m.pieces[261].0, "▁▁▁▁▁▁▁▁");
        let merges = m.merges();
        assert!(merges.contains(&("▁▁▁▁", "▁▁▁▁")));
    }
}
