//! sluice's encoder for any BPE `tokenizer.json` (`tokenizer::fast`) gives
//! the `tokenizers` crate's ids and decodes as it does, on every kind of
//! file our users bring: Llama 2's own (SentencePiece-style, byte
//! fallback), byte-level ones trained by Hugging Face's trainer with GPT-2's,
//! Llama 3's and Qwen 2's pre-tokenizers and a custom regex, Metaspace
//! ones, and the ones `sluice train-tokenizer` writes; on real text in 75
//! languages, every script of Unicode, code, random Unicode and random
//! bytes.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use serde_json::{json, Value};
use sluice::tokenizer::fast::FastTokenizer;
use sluice::tokenizer::load::TextEncoder;
use sluice::tokenizer::pretok::{GPT2, LLAMA3, QWEN2};
use tokenizers::models::bpe::BpeTrainer;
use tokenizers::models::TrainerWrapper;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::AddedToken;

/// Xorshift: the same "random" texts on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Random strings over every plane of Unicode, with spaces, newlines,
/// digits and the added tokens in between; and random bytes read as UTF-8
/// (replacement characters where they are not).
fn random_texts(seed: u64, n: usize) -> Vec<String> {
    let ranges: &[(u32, u32)] = &[
        (0x20, 0x7e),
        (0x00, 0x1f),
        (0x80, 0x2ff),
        (0x300, 0x36f),
        (0x400, 0x4ff),
        (0x590, 0x6ff),
        (0x900, 0xdff),
        (0x1100, 0x11ff),
        (0x2000, 0x206f),
        (0x3000, 0x30ff),
        (0x4e00, 0x9fff),
        (0xac00, 0xd7a3),
        (0xff00, 0xffef),
        (0x1f300, 0x1faff),
        (0x10000, 0x10ffff),
    ];
    let mut r = Rng(seed);
    let mut out = vec![];
    for i in 0..n {
        let len = if i % 40 == 0 {
            5_000
        } else {
            (r.next() % 300) as usize
        };
        if i % 3 == 0 {
            let bytes: Vec<u8> = (0..len).map(|_| r.next() as u8).collect();
            out.push(String::from_utf8_lossy(&bytes).into_owned());
            continue;
        }
        let mut s = String::new();
        while s.len() < len {
            let (lo, hi) = ranges[(r.next() % ranges.len() as u64) as usize];
            if let Some(c) = char::from_u32(lo + (r.next() % (hi - lo + 1) as u64) as u32) {
                s.push(c);
            }
            match r.next() % 23 {
                0..=3 => s.push(' '),
                4 => s.push_str("  "),
                5 => s.push('\n'),
                6 => s.push_str("2024"),
                7 => s.push_str("<|endoftext|>"),
                8 => s.push_str(" you're"),
                _ => {}
            }
        }
        out.push(s);
    }
    out
}

/// Real text: the fixtures, lingua's paragraphs in 75 languages (every
/// third), code, and the edge cases of spaces.
fn real_texts() -> Vec<String> {
    let q = repo().join("fixtures/quickstart");
    let mut texts: Vec<String> = read_parquet_column(&q.join("zh_news.parquet"), "text")
        .into_iter()
        .take(60)
        .collect();
    texts.extend(
        read_parquet_column(&q.join("web_pages.parquet"), "text")
            .into_iter()
            .take(60),
    );
    if let Some(p) = shared("data/lid/lingua_paragraphs.parquet") {
        texts.extend(read_parquet_column(&p, "text").into_iter().step_by(3));
    }
    texts.extend(script_texts());
    texts.extend(
        [
            "",
            " ",
            "  leading",
            "trailing  ",
            "\n\nx\n",
            "def f(x):\n    return x  +  1\n\tpass\r\n",
            "Hello<|endoftext|>world <|endoftext|> x<|im_start|>",
            "<|endoftext|>",
            "數字 ١٢٣ ४५६ 123456789 ½ Ⅻ",
            "e\u{301}te\u{301} ﬁ ＡＢＣ",
        ]
        .map(String::from),
    );
    texts
}

/// Asserts sluice's encoder reads `path` and gives the crate's ids on
/// every text, and decodes each back as the crate does.
fn same_as_the_crate(name: &str, path: &Path, texts: &[String]) {
    let json: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let fast = FastTokenizer::from_json(&json)
        .unwrap_or_else(|e| panic!("{name}: sluice does not read it: {e}"));
    let hf = tokenizers::Tokenizer::from_file(path).unwrap();
    let mut decoded = 0;
    for t in texts {
        let want = hf.encode(t.as_str(), false).unwrap().get_ids().to_vec();
        let got = fast.encode(t);
        if got != want {
            // Where they part, as tokens.
            let at = got.iter().zip(&want).take_while(|(a, b)| a == b).count();
            let show = |ids: &[u32]| -> Vec<String> {
                ids.iter()
                    .skip(at.saturating_sub(3))
                    .take(8)
                    .map(|&i| hf.id_to_token(i).unwrap_or_default())
                    .collect()
            };
            panic!(
                "{name}: {:?}\n at token {at}: sluice {:?}\n tokenizers {:?}",
                t.chars().take(300).collect::<String>(),
                show(&got),
                show(&want)
            );
        }
        if let Some(text) = fast.decode(&got, false) {
            assert_eq!(
                text,
                hf.decode(&got, false).unwrap(),
                "{name}: decode {t:?}"
            );
            decoded += 1;
        }
    }
    assert!(fast.can_decode(), "{name}: sluice does not decode it");
    assert_eq!(decoded, texts.len());
}

/// A tokenizer trained by Hugging Face's own BPE trainer (the `tokenizers`
/// crate, the code under Python's `tokenizers`) with this normaliser,
/// pre-tokenizer and decoder.
fn hf_trained(dir: &Path, name: &str, parts: Value, byte_level: bool) -> PathBuf {
    let mut spec = json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
        "normalizer": null, "pre_tokenizer": null, "post_processor": null, "decoder": null,
        "model": {"type": "BPE", "dropout": null, "unk_token": null,
                  "continuing_subword_prefix": null, "end_of_word_suffix": null,
                  "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                  "vocab": {}, "merges": []}
    });
    for (k, v) in parts.as_object().unwrap() {
        if k == "model" {
            for (mk, mv) in v.as_object().unwrap() {
                spec["model"][mk] = mv.clone();
            }
        } else {
            spec[k] = v.clone();
        }
    }
    let mut tok: tokenizers::Tokenizer = spec.to_string().parse().unwrap();
    let mut specials = vec![
        AddedToken::from("<|endoftext|>", true),
        AddedToken::from("<|im_start|>", true),
    ];
    let mut trainer = BpeTrainer::builder()
        .vocab_size(3000)
        .min_frequency(2)
        .show_progress(false);
    if byte_level {
        trainer = trainer.initial_alphabet(ByteLevel::alphabet().into_iter().collect());
    } else {
        specials.insert(0, AddedToken::from("<unk>", true));
    }
    let mut trainer = TrainerWrapper::BpeTrainer(trainer.special_tokens(specials).build());
    let q = repo().join("fixtures/quickstart");
    let mut corpus = read_parquet_column(&q.join("web_pages.parquet"), "text");
    corpus.extend(read_parquet_column(&q.join("zh_news.parquet"), "text"));
    tok.train(&mut trainer, corpus.iter()).unwrap();
    let path = dir.join(format!("{name}.json"));
    tok.save(&path, false).unwrap();
    path
}

fn split(pattern: &str) -> Value {
    json!({"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated", "invert": false})
}

fn byte_level(use_regex: bool, add_prefix_space: bool) -> Value {
    json!({"type": "ByteLevel", "add_prefix_space": add_prefix_space, "trim_offsets": true,
           "use_regex": use_regex})
}

#[test]
fn llama_2s_tokenizer_encodes_as_the_crate() {
    let path = repo().join("fixtures/models/wordllama-l2-64/l2_supercat_tokenizer_config.json");
    let mut texts = real_texts();
    texts.extend(random_texts(1, 150));
    same_as_the_crate("llama2", &path, &texts);
}

#[test]
fn tokenizers_trained_by_hugging_face_encode_as_the_crate() {
    let tmp = tempfile::tempdir().unwrap();
    let dec = json!({"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true,
                     "use_regex": true});
    let meta = |scheme: &str, split: bool| json!({"type": "Metaspace", "replacement": "▁", "prepend_scheme": scheme, "split": split});
    let cases = [
        (
            "gpt2",
            json!({"pre_tokenizer": byte_level(true, false), "decoder": dec}),
            true,
        ),
        (
            "gpt2-prefix",
            json!({"pre_tokenizer": byte_level(true, true), "decoder": dec}),
            true,
        ),
        (
            "llama3",
            json!({"pre_tokenizer": {"type": "Sequence", "pretokenizers": [split(LLAMA3), byte_level(false, false)]},
                   "decoder": dec, "model": {"ignore_merges": true}}),
            true,
        ),
        (
            "qwen2",
            json!({"normalizer": {"type": "NFC"},
                   "pre_tokenizer": {"type": "Sequence", "pretokenizers": [split(QWEN2), byte_level(false, false)]},
                   "decoder": dec}),
            true,
        ),
        (
            "custom-nfkc-digits",
            json!({"normalizer": {"type": "NFKC"},
                   "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
                       split(r"\p{L}+|\p{N}|[^\p{L}\p{N}\s]+|\s+"),
                       {"type": "Digits", "individual_digits": true},
                       byte_level(false, false)]},
                   "decoder": dec}),
            true,
        ),
        (
            "gpt2-regex-as-split",
            json!({"pre_tokenizer": {"type": "Sequence", "pretokenizers": [split(GPT2), byte_level(false, false)]},
                   "decoder": dec}),
            true,
        ),
        (
            "metaspace-first",
            json!({"pre_tokenizer": meta("first", true), "decoder": meta("first", true),
                   "model": {"unk_token": "<unk>", "fuse_unk": true}}),
            false,
        ),
        (
            "metaspace-always-digits",
            json!({"pre_tokenizer": {"type": "Sequence", "pretokenizers": [meta("always", false),
                       {"type": "Digits", "individual_digits": true}]},
                   "decoder": meta("always", false),
                   "model": {"unk_token": "<unk>"}}),
            false,
        ),
    ];
    let mut texts = real_texts();
    texts.extend(random_texts(2, 120));
    for (name, parts, bl) in cases {
        let path = hf_trained(tmp.path(), name, parts, bl);
        same_as_the_crate(name, &path, &texts);
    }
}

fn sluice_trained(dir: &Path, name: &str, tokenizer: &str) -> PathBuf {
    let out = dir.join(name);
    let body = format!(
        "[input]\npaths = [{:?}, {:?}]\n\n[tokenizer]\n{tokenizer}\n\n[output]\ndir = {out:?}\n",
        repo().join("fixtures/quickstart/web_pages.parquet"),
        repo().join("fixtures/quickstart/zh_news.parquet"),
    );
    let spec = write_spec(dir, &format!("{name}.toml"), &body);
    run_ok(dir, &["train-tokenizer", spec.to_str().unwrap(), "-q"]);
    out.join("tokenizer.json")
}

#[test]
fn tokenizers_sluice_trains_encode_as_the_crate() {
    let tmp = tempfile::tempdir().unwrap();
    let mut texts = real_texts();
    texts.extend(random_texts(3, 90));
    for (name, cfg) in [
        ("qwen2", "vocab_size = 2500\npre_tokenizer = \"qwen2\"\nspecial_tokens = [\"<|endoftext|>\", \"<|im_start|>\"]\nrequired_tokens = [\"中华人民共和国\"]"),
        ("llama3-nfkc", "vocab_size = 2500\npre_tokenizer = \"llama3\"\nsplit_digits = false\nnormalization = \"NFKC\""),
        ("custom", "vocab_size = 2000\npre_tokenizer = \"custom\"\npattern = \"\\\\p{L}+|\\\\p{N}|[^\\\\p{L}\\\\p{N}]+\""),
        ("sentencepiece", "model = \"sentencepiece_bpe\"\nvocab_size = 3000\nwhitespace_tokens = [2, 4]\nspecial_tokens = [\"<|endoftext|>\"]"),
    ] {
        let path = sluice_trained(tmp.path(), name, cfg);
        same_as_the_crate(name, &path, &texts);
    }
}

/// What sluice does not read goes to the crate, and says why; a file it
/// reads is encoded by sluice.
#[test]
fn the_encoder_says_which_runs() {
    let llama = repo().join("fixtures/models/wordllama-l2-64/l2_supercat_tokenizer_config.json");
    let enc = TextEncoder::load(&llama).unwrap();
    assert_eq!(enc.name(), "sluice");
    assert_eq!(enc.vocab_size(), 32000);
    let ids = enc.encode_batch(&["Hello world, 你好"]).unwrap();
    assert_eq!(enc.decode(&ids[0], false).unwrap(), "Hello world, 你好");
    if let Some(wp) = shared("models/all-MiniLM-L6-v2/tokenizer.json") {
        let enc = TextEncoder::load(&wp).unwrap();
        assert_eq!(enc.name(), "tokenizers");
        assert!(
            enc.why_not_sluice().unwrap().contains("WordPiece"),
            "{:?}",
            enc.why_not_sluice()
        );
    }
}
