//! `sluice prune-tokenizer`: Llama 2's tokenizer pruned to the fixtures'
//! languages, by what they use and to a target size, and a byte-level one.
//! The pruned tokenizer.json loads in the `tokenizers` crate; on the
//! corpus it gives the old tokens renumbered by id_map.json (when every
//! used token is kept); every text, the corpus's and random ones, still
//! decodes to itself; each kept token keeps its text under its new id.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use common::*;
use serde_json::Value;
use sluice::tokenizer::fast::FastTokenizer;

const LLAMA: &str = "fixtures/models/wordllama-l2-64/l2_supercat_tokenizer_config.json";

fn read_json(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

fn prune(dir: &Path, name: &str, corpus: &[PathBuf], tokenizer: &Path, extra: &str) -> PathBuf {
    let out = dir.join(name);
    let body = format!(
        "[input]\npaths = {corpus:?}\n\n[prune]\ntokenizer = {tokenizer:?}\n{extra}\n\n[output]\ndir = {out:?}\n"
    );
    let spec = write_spec(dir, &format!("{name}.toml"), &body);
    run_ok(dir, &["prune-tokenizer", spec.to_str().unwrap(), "-q"]);
    out
}

/// Random text over many scripts, digits and spaces, and random bytes read
/// as UTF-8.
fn random_texts(n: usize) -> Vec<String> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let ranges: &[(u32, u32)] = &[
        (0x20, 0x7e),
        (0xa0, 0x2ff),
        (0x400, 0x4ff),
        (0x600, 0x6ff),
        (0x900, 0xdff),
        (0x3040, 0x30ff),
        (0x4e00, 0x9fff),
        (0xac00, 0xd7a3),
        (0x1f300, 0x1faff),
        (0x10000, 0x10ffff),
    ];
    (0..n)
        .map(|i| {
            let len = (next() % 300) as usize;
            if i % 4 == 0 {
                let b: Vec<u8> = (0..len).map(|_| next() as u8).collect();
                return String::from_utf8_lossy(&b).into_owned();
            }
            let mut s = String::new();
            while s.len() < len {
                let (lo, hi) = ranges[(next() % ranges.len() as u64) as usize];
                if let Some(c) = char::from_u32(lo + (next() % (hi - lo + 1) as u64) as u32) {
                    s.push(c);
                }
                if next() % 5 == 0 {
                    s.push([' ', '\n', '7', ' '][(next() % 4) as usize]);
                }
            }
            s
        })
        .collect()
}

fn corpus_texts(files: &[PathBuf]) -> Vec<String> {
    let mut out = vec![];
    for f in files {
        if f.extension().is_some_and(|e| e == "parquet") {
            out.extend(read_parquet_column(f, "text"));
        }
    }
    out
}

/// The checks every pruned tokenizer passes.
fn check(old_path: &Path, out: &Path, corpus: &[String], same_on_corpus: bool) -> Value {
    let new_path = out.join("tokenizer.json");
    let (oj, nj) = (read_json(old_path), read_json(&new_path));
    let old = FastTokenizer::from_json(&oj).unwrap();
    let new = FastTokenizer::from_json(&nj).unwrap();
    let hf = tokenizers::Tokenizer::from_file(&new_path).unwrap();
    let old_hf = tokenizers::Tokenizer::from_file(old_path).unwrap();
    let map: HashMap<u32, u32> = read_json(&out.join("id_map.json"))
        .as_object()
        .unwrap()
        .iter()
        .map(|(o, n)| (o.parse().unwrap(), n.as_u64().unwrap() as u32))
        .collect();
    assert_eq!(map.len(), new.vocab_size(), "the map covers every new id");
    // Each kept token keeps its text: embedding rows slice by the map.
    for (&o, &n) in &map {
        assert_eq!(old.token(o), new.token(n), "token {o} → {n}");
    }
    let mut news: Vec<u32> = map.values().copied().collect();
    news.sort_unstable();
    assert!(
        news.iter().enumerate().all(|(i, &n)| i as u32 == n),
        "new ids are 0..n"
    );
    for t in corpus.iter().chain(&random_texts(200)) {
        let ids = new.encode(t);
        assert_eq!(
            hf.encode(t.as_str(), false).unwrap().get_ids(),
            ids.as_slice(),
            "{t:?}"
        );
        // As lossless as the original: the same text back (the text itself
        // where the tokenizer does not normalise).
        let want = old_hf.decode(&old.encode(t), false).unwrap();
        assert!(hf.decode(&ids, false).unwrap() == want, "lossy: {t:?}");
        let special = ["<s>", "</s>", "<unk>", "<|endoftext|>"]
            .iter()
            .any(|s| t.contains(s));
        // Llama 2's normaliser (Prepend and Replace) changes no text.
        let keeps_text = oj["normalizer"].is_null() || oj["normalizer"]["type"] == "Sequence";
        if !special && keeps_text {
            assert!(
                &want == t,
                "not the text itself: {:?}",
                &t[..t.len().min(80)]
            );
        }
    }
    if same_on_corpus {
        for t in corpus {
            let mapped: Vec<u32> = old.encode(t).iter().map(|i| map[i]).collect();
            assert_eq!(mapped, new.encode(t), "the corpus's tokens, renumbered");
        }
    }
    read_json(&out.join("report.json"))
}

#[test]
fn llama_2_pruned_to_the_fixtures_languages() {
    let tmp = tempfile::tempdir().unwrap();
    let llama = repo().join(LLAMA);
    let q = repo().join("fixtures/quickstart");
    let corpus = vec![q.join("web_pages.parquet"), q.join("zh_news.parquet")];
    let texts = corpus_texts(&corpus);
    let out = prune(tmp.path(), "all-used", &corpus, &llama, "");
    let report = check(&llama, &out, &texts, true);
    let after = report["vocab_size_after"].as_u64().unwrap();
    assert!(after < 30000, "{report}");
    assert_eq!(report["kept_by"]["bytes"], 256);
    assert_eq!(report["kept_by"]["added"], 3);
    assert_eq!(
        report["corpus"]["tokens_after"],
        report["corpus"]["tokens_before"]
    );
    // <s> is still added by the post-processor, under its new id.
    let hf = tokenizers::Tokenizer::from_file(out.join("tokenizer.json")).unwrap();
    assert_eq!(
        hf.encode("hello", true).unwrap().get_ids()[0],
        hf.token_to_id("<s>").unwrap()
    );

    // A target size: the most used tokens first, the rest falls apart.
    let out = prune(
        tmp.path(),
        "small",
        &corpus,
        &llama,
        "vocab_size = 6000\nkeep = [\"▁Wikipedia\"]",
    );
    let report = check(&llama, &out, &texts, false);
    assert!(
        report["vocab_size_after"].as_u64().unwrap() <= 6000,
        "{report}"
    );
    let small = read_json(&out.join("tokenizer.json"));
    assert!(
        small["model"]["vocab"]["▁Wikipedia"].is_u64(),
        "kept as asked"
    );
    assert!(report["used_tokens_dropped"].as_u64().unwrap() > 0);
    assert!(
        report["corpus"]["tokens_after"].as_u64() > report["corpus"]["tokens_before"].as_u64(),
        "{report}"
    );
}

#[test]
fn a_byte_level_tokenizer_pruned_to_chinese() {
    let tmp = tempfile::tempdir().unwrap();
    let q = repo().join("fixtures/quickstart");
    let tok_out = tmp.path().join("tok");
    let body = format!(
        "[input]\npaths = [{:?}, {:?}]\n\n[tokenizer]\nvocab_size = 4000\nspecial_tokens = [\"<|endoftext|>\"]\n\n[output]\ndir = {tok_out:?}\n",
        q.join("web_pages.parquet"),
        q.join("zh_news.parquet")
    );
    let spec = write_spec(tmp.path(), "tok.toml", &body);
    run_ok(
        tmp.path(),
        &["train-tokenizer", spec.to_str().unwrap(), "-q"],
    );
    let tok = tok_out.join("tokenizer.json");
    let corpus = vec![q.join("zh_news.parquet")];
    let out = prune(tmp.path(), "zh", &corpus, &tok, "min_count = 1");
    let report = check(&tok, &out, &corpus_texts(&corpus), true);
    assert!(
        report["vocab_size_after"].as_u64().unwrap() < 3000,
        "{report}"
    );
    // A count threshold drops the rare tokens; still lossless.
    let out = prune(tmp.path(), "zh-5", &corpus, &tok, "min_count = 5");
    check(&tok, &out, &corpus_texts(&corpus), false);
}

#[test]
fn a_token_to_keep_must_exist() {
    let tmp = tempfile::tempdir().unwrap();
    let corpus = [repo().join("fixtures/quickstart/zh_news.parquet")];
    let body = format!(
        "[input]\npaths = {corpus:?}\n\n[prune]\ntokenizer = {:?}\nkeep = [\"no such token\"]\n\n[output]\ndir = {:?}\n",
        repo().join(LLAMA),
        tmp.path().join("o")
    );
    let spec = write_spec(tmp.path(), "p.toml", &body);
    let o = sluice(
        tmp.path(),
        &["prune-tokenizer", spec.to_str().unwrap(), "-q"],
        &[],
    );
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("\"no such token\" is not in the vocabulary"),
        "{}",
        stderr(&o)
    );
}
