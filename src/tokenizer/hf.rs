//! The Hugging Face `tokenizer.json` of a byte-level model sluice trained,
//! and the trainer's encoder for the same definition (normalise → split out
//! special tokens → pre-tokenise → bytes → BPE), for its held-out report.
//! Any tokenizer.json, ours included, is read back by `fast.rs`.

use serde_json::{json, Value};

use super::bpe::{Bpe, Encoder};
use super::pretok::{pieces, PreTokenizer};

/// GPT-2's map from bytes to printable characters: printable Latin-1 bytes
/// stand for themselves, the others are moved to U+0100 and up.
pub fn byte_chars() -> [char; 256] {
    let mut printable: Vec<u32> = (b'!' as u32..=b'~' as u32)
        .chain(0xA1..=0xAC)
        .chain(0xAE..=0xFF)
        .collect();
    let mut chars: Vec<u32> = printable.clone();
    let mut n = 0;
    for b in 0..256u32 {
        if !printable.contains(&b) {
            printable.push(b);
            chars.push(256 + n);
            n += 1;
        }
    }
    let mut out = ['\0'; 256];
    for (b, c) in printable.iter().zip(&chars) {
        out[*b as usize] = char::from_u32(*c).expect("valid code point");
    }
    out
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub enum Normalization {
    #[serde(rename = "none")]
    None,
    #[serde(rename = "NFC")]
    Nfc,
    #[serde(rename = "NFKC")]
    Nfkc,
}

impl Normalization {
    /// The text normalised as Hugging Face's `tokenizers` normalises it:
    /// with its Unicode tables (`unicode-normalization-alignments`, an
    /// older Unicode version), so that characters added since (a new
    /// combining mark's class, say) come out as the `tokenizers` library
    /// writes them and encode to its ids. A text the current tables find
    /// normalised already is left as it is: Unicode's stability policy
    /// makes it normalised under the older tables too.
    pub fn apply<'a>(self, text: &'a str) -> std::borrow::Cow<'a, str> {
        use unicode_normalization::{is_nfc_quick, is_nfkc_quick, IsNormalized};
        use unicode_normalization_alignments::UnicodeNormalization as Hf;
        match self {
            Normalization::None => text.into(),
            Normalization::Nfc if is_nfc_quick(text.chars()) == IsNormalized::Yes => text.into(),
            Normalization::Nfkc if is_nfkc_quick(text.chars()) == IsNormalized::Yes => text.into(),
            Normalization::Nfc => Hf::nfc(text).map(|(c, _)| c).collect::<String>().into(),
            Normalization::Nfkc => Hf::nfkc(text).map(|(c, _)| c).collect::<String>().into(),
        }
    }
}

/// A complete tokenizer: what `tokenizer.json` describes.
pub struct Tokenizer {
    pub normalization: Normalization,
    pub pre: PreTokenizer,
    /// The regex as written into the JSON.
    pub pattern: String,
    pub split_digits: bool,
    pub specials: Vec<String>,
    pub encoder: Encoder,
}

impl Tokenizer {
    /// The ids of a text. Special tokens in the text are matched first (the
    /// longest at each position), as Hugging Face does with added tokens.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let mut out = vec![];
        let mut rest = text;
        while !rest.is_empty() {
            let next = self
                .specials
                .iter()
                .enumerate()
                .filter(|(_, s)| !s.is_empty())
                .filter_map(|(i, s)| {
                    rest.find(s.as_str())
                        .map(|at| (at, std::cmp::Reverse(s.len()), i))
                })
                .min();
            let (plain, special) = match next {
                Some((at, _, i)) => (&rest[..at], Some(i)),
                None => (rest, None),
            };
            self.encode_plain(plain, &mut out);
            match special {
                Some(i) => {
                    out.push(i as u32);
                    rest = &rest[plain.len() + self.specials[i].len()..];
                }
                None => rest = "",
            }
        }
        out
    }

    fn encode_plain(&self, text: &str, out: &mut Vec<u32>) {
        if text.is_empty() {
            return;
        }
        let text = self.normalization.apply(text);
        pieces(&self.pre, self.split_digits, &text, |p| {
            self.encoder.encode_piece(p.as_bytes(), out)
        });
    }

    /// The text of ids (special tokens included).
    pub fn decode(&self, ids: &[u32]) -> String {
        let mut bytes = vec![];
        for &id in ids {
            match self.specials.get(id as usize) {
                Some(s) => bytes.extend_from_slice(s.as_bytes()),
                None => bytes.extend_from_slice(&self.encoder.decode(&[id])),
            }
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// `tokenizer.json`, as the `tokenizers` library writes it.
    pub fn to_json(&self) -> Value {
        let bpe: &Bpe = self.encoder.bpe();
        let chars = byte_chars();
        let show = |bytes: &[u8]| -> String { bytes.iter().map(|b| chars[*b as usize]).collect() };
        let mut vocab = serde_json::Map::new();
        for (i, s) in self.specials.iter().enumerate() {
            vocab.insert(s.clone(), json!(i));
        }
        for (i, t) in bpe.tokens.iter().enumerate() {
            vocab.insert(show(t), json!(bpe.n_special as usize + i));
        }
        let merges: Vec<String> = bpe
            .merges
            .iter()
            .map(|(a, b)| {
                format!(
                    "{} {}",
                    show(bpe.token_bytes(*a).expect("a token")),
                    show(bpe.token_bytes(*b).expect("a token"))
                )
            })
            .collect();
        let added: Vec<Value> = self
            .specials
            .iter()
            .enumerate()
            .map(|(i, s)| {
                json!({"id": i, "content": s, "single_word": false, "lstrip": false,
                       "rstrip": false, "normalized": false, "special": true})
            })
            .collect();
        let normalizer = match self.normalization {
            Normalization::None => Value::Null,
            Normalization::Nfc => json!({"type": "NFC"}),
            Normalization::Nfkc => json!({"type": "NFKC"}),
        };
        let mut pre = vec![json!({"type": "Split", "pattern": {"Regex": self.pattern},
                                  "behavior": "Isolated", "invert": false})];
        if self.split_digits {
            pre.push(json!({"type": "Digits", "individual_digits": true}));
        }
        pre.push(json!({"type": "ByteLevel", "add_prefix_space": false,
                        "trim_offsets": true, "use_regex": false}));
        json!({
            "version": "1.0",
            "truncation": null,
            "padding": null,
            "added_tokens": added,
            "normalizer": normalizer,
            "pre_tokenizer": {"type": "Sequence", "pretokenizers": pre},
            "post_processor": null,
            "decoder": {"type": "ByteLevel", "add_prefix_space": true,
                        "trim_offsets": true, "use_regex": true},
            "model": {"type": "BPE", "dropout": null, "unk_token": null,
                      "continuing_subword_prefix": null, "end_of_word_suffix": null,
                      "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                      "vocab": vocab, "merges": merges}
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_chars_are_gpt2s() {
        let c = byte_chars();
        assert_eq!(c[b'A' as usize], 'A');
        assert_eq!(c[b' ' as usize], 'Ġ');
        assert_eq!(c[b'\n' as usize], 'Ċ');
        let mut all: Vec<char> = c.to_vec();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 256);
    }
}
