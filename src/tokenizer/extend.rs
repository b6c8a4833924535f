//! Vocabulary extension (Chinese-LLaMA's recipe): new tokens learnt on new
//! text over an existing BPE `tokenizer.json`, appended after its ids.
//!
//! The new text's words are counted as the base cuts them, each encoded
//! with the base (its merges, its byte fallback), and the merge loop of
//! `bpe.rs` learns `vocab_size - |base|` merges over those base tokens. A
//! character model (Llama 2) first gets the new text's characters it
//! writes as bytes, the most frequent ones covering `character_coverage`
//! of the text, as tokens of their own (as Chinese-LLaMA added Chinese
//! characters): without them no merge could build a Chinese word Llama 2
//! spells in `<0xNN>` bytes, which never merge.
//! They go after the base's merges, so they rank below every one of them,
//! and their tokens take the ids after the base's largest. What is
//! preserved, exactly: every base token keeps its id and its merges keep
//! their order, and the extended tokenizer's encoding of any text is the
//! base's encoding with the new characters in place of their bytes and
//! the new merges applied on top (no base merge can apply after a new one:
//! a new merge only joins two neighbours into a token no base merge names,
//! and the byte tokens a new character replaces are in no base merge). So
//! a text with no new character and in which no new merge applies is
//! encoded as before, id for id; expanding each new token back into the
//! pair it was made of (a new character into its byte tokens) gives the
//! base's ids for every text (tested).

use serde_json::{json, Value};

use super::bpe::{train_alphabet, Alphabet, TrainOptions};
use super::fast::{byte_token, merge_parts, FastTokenizer};
use super::hf::byte_chars;
use super::spm_bpe::valid_piece;
use super::wordcount::WordCounts;

/// What the extension may learn.
pub struct ExtendOptions {
    /// The whole vocabulary after extension: the base's ids and the new.
    pub vocab_size: usize,
    pub min_frequency: u64,
    /// No new token holds a number character beside another character.
    pub split_digits: bool,
    /// Longest new piece in characters (character models: Llama 2).
    pub max_piece_length: usize,
    /// Character models: share of the new text's characters that end up
    /// tokens of their own (the base's and the new ones).
    pub character_coverage: f64,
}

/// The extended tokenizer.
pub struct Extended {
    pub json: Value,
    /// Ids before the first new one.
    pub base_size: usize,
    /// New tokens learnt, characters included (fewer than asked when the
    /// text ran out of pairs seen `min_frequency` times).
    pub added: usize,
    /// New characters: ids `base_size..base_size + chars`.
    pub chars: usize,
}

/// Learns the new tokens on `counts` (words from
/// [`FastTokenizer::for_each_word`] of the base). Errors are the user's.
pub fn extend(
    base_json: &Value,
    base: &FastTokenizer,
    counts: WordCounts,
    opt: &ExtendOptions,
) -> Result<Extended, String> {
    let base_size = base.vocab_size();
    if opt.vocab_size <= base_size {
        return Err(format!(
            "vocab_size {} is not above the base's {base_size} ids: nothing to learn",
            opt.vocab_size
        ));
    }
    let byte_level = base.is_byte_level();
    let mut byte_of = std::collections::HashMap::new();
    for (b, c) in byte_chars().iter().enumerate() {
        byte_of.insert(*c, b as u8);
    }
    // Each base id's bytes; added tokens, byte-fallback tokens and holes
    // are empty: never merged.
    let tokens: Vec<Vec<u8>> = (0..base_size as u32)
        .map(|id| match base.token(id) {
            Some(t) if !base.is_added(id) => {
                if byte_level {
                    t.chars()
                        .map(|c| byte_of.get(&c).copied())
                        .collect::<Option<Vec<u8>>>()
                        .unwrap_or_default()
                } else if byte_token(t).is_some() {
                    vec![]
                } else {
                    t.as_bytes().to_vec()
                }
            }
            _ => vec![],
        })
        .collect();
    let new_chars = if byte_level || merges_bytes(base_json) {
        vec![]
    } else {
        new_characters(base, &counts, opt.character_coverage)
    };
    let mut tokens = tokens;
    tokens.extend(new_chars.iter().map(|c| c.to_string().into_bytes()));
    let char_id: std::collections::HashMap<char, u32> = new_chars
        .iter()
        .enumerate()
        .map(|(i, &c)| (c, (base_size + i) as u32))
        .collect();
    let split = |w: &[u8], out: &mut Vec<u32>| {
        // Words come from for_each_word, which cuts a &str. A new
        // character is its own symbol; the stretches between are the
        // base's (its byte tokens never merge, so each stretch encodes
        // alone as within the word).
        let s = String::from_utf8_lossy(w);
        let mut start = 0;
        if !char_id.is_empty() {
            for (i, c) in s.char_indices() {
                if let Some(&id) = char_id.get(&c) {
                    if i > start {
                        base.encode_word(&s[start..i], out);
                    }
                    out.push(id);
                    start = i + c.len_utf8();
                }
            }
        }
        if start < s.len() {
            base.encode_word(&s[start..], out);
        }
    };
    let (max_len, digits) = (opt.max_piece_length, opt.split_digits);
    let allow = |l: &[u8], r: &[u8]| {
        if l.is_empty() || r.is_empty() {
            return false;
        }
        let joined = [l, r].concat();
        if byte_level {
            // Partial characters merge freely; only whole digits count.
            !digits || {
                let s = String::from_utf8_lossy(&joined);
                s.chars().count() == 1 || !s.chars().any(char::is_numeric)
            }
        } else {
            std::str::from_utf8(&joined).is_ok_and(|s| valid_piece(s, max_len, digits))
        }
    };
    let alphabet = Alphabet {
        tokens,
        split: &split,
        allow: &allow,
        forced: vec![],
        unique: true,
    };
    let bpe = train_alphabet(
        counts,
        &TrainOptions {
            vocab_size: opt.vocab_size,
            n_special: 0,
            min_frequency: opt.min_frequency,
            required: vec![],
            max_token_bytes: 0,
        },
        &alphabet,
    );
    let new = &bpe.tokens[base_size..];
    let chars = byte_chars();
    let show = |b: &[u8]| -> String {
        if byte_level {
            b.iter().map(|x| chars[*x as usize]).collect()
        } else {
            String::from_utf8_lossy(b).into_owned()
        }
    };
    let mut json = base_json.clone();
    let text_of = |id: u32| -> String {
        match id as usize {
            i if i < base_size => base.token(id).unwrap_or_default().to_string(),
            i => show(&bpe.tokens[i]),
        }
    };
    // The base's form of merges ("l r" or ["l", "r"]); arrays when a new
    // token holds a space, which the string form cannot carry (the whole
    // list must be of one form).
    let mut as_strings = json["model"]["merges"]
        .as_array()
        .and_then(|m| m.first())
        .is_some_and(Value::is_string);
    if as_strings && new.iter().any(|t| show(t).contains(' ')) {
        as_strings = false;
        for m in json["model"]["merges"].as_array_mut().into_iter().flatten() {
            if let Some((l, r)) = m.as_str().and_then(|s| s.split_once(' ')) {
                *m = json!([l, r]);
            }
        }
    }
    {
        let vocab = json["model"]["vocab"]
            .as_object_mut()
            .ok_or("bug: the base has no vocab")?;
        for (k, t) in new.iter().enumerate() {
            vocab.insert(show(t), json!(base_size + k));
        }
    }
    let merges = json["model"]["merges"]
        .as_array_mut()
        .ok_or("bug: the base has no merges")?;
    for &(l, r) in &bpe.merges {
        let (l, r) = (text_of(l), text_of(r));
        merges.push(if as_strings {
            json!(format!("{l} {r}"))
        } else {
            json!([l, r])
        });
    }
    Ok(Extended {
        json,
        base_size,
        added: new.len(),
        chars: new_chars.len(),
    })
}

/// Whether a base merge joins a byte-fallback token: then a new character
/// in place of its bytes could change what the base merges (never so in
/// SentencePiece's models, where bytes are not merged).
fn merges_bytes(base_json: &Value) -> bool {
    base_json["model"]["merges"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(merge_parts)
        .any(|(l, r)| byte_token(l).is_some() || byte_token(r).is_some())
}

/// The characters of the text the base has no token for, most frequent
/// first (ties in code point order), while the characters with a token
/// cover less than `coverage` of all the text's characters; never a tab
/// or a control character (SentencePiece's reserved ones stay bytes), nor
/// `▁`-less whitespace, which the normaliser already mapped.
fn new_characters(base: &FastTokenizer, counts: &WordCounts, coverage: f64) -> Vec<char> {
    let mut all = 0u64;
    let mut covered = 0u64;
    let mut missing: std::collections::HashMap<char, u64> = Default::default();
    counts.for_each(|w, n| {
        for c in String::from_utf8_lossy(w).chars() {
            all += n;
            if base.has_char(c) {
                covered += n;
            } else if !c.is_control() {
                *missing.entry(c).or_insert(0) += n;
            }
        }
    });
    let mut sorted: Vec<(char, u64)> = missing.into_iter().collect();
    sorted.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut out = vec![];
    for (c, n) in sorted {
        if all == 0 || covered as f64 / all as f64 >= coverage {
            break;
        }
        covered += n;
        out.push(c);
    }
    out
}
