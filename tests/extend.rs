//! `sluice train-tokenizer` with `base = "…/tokenizer.json"`: Llama 2's
//! tokenizer extended with Chinese (as Chinese-LLaMA did) and a byte-level
//! one extended likewise. Every base id kept, the base's merges first and
//! unchanged, the `tokenizers` crate encodes with the extension as sluice
//! does, the extended ids expand back into the base's ids for every text,
//! and Chinese takes at least 1.5x fewer tokens while English takes as
//! many as before.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use common::*;
use serde_json::Value;
use sluice::tokenizer::fast::FastTokenizer;

fn read_json(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

/// Held-out text by language (lingua's paragraphs: not in any training
/// text here), written as JSONL for the report.
fn held_out(dir: &Path, lang: &str) -> Option<(PathBuf, Vec<String>)> {
    let p = shared("data/lid/lingua_paragraphs.parquet")?;
    let texts = read_parquet_column(&p, "text");
    let langs = read_parquet_column(&p, "lang");
    let mine: Vec<String> = texts
        .into_iter()
        .zip(langs)
        .filter(|(_, l)| l == lang)
        .map(|(t, _)| t)
        .collect();
    let path = dir.join(format!("{lang}.jsonl"));
    let body: String = mine
        .iter()
        .map(|t| serde_json::json!({ "text": t }).to_string() + "\n")
        .collect();
    std::fs::write(&path, body).unwrap();
    Some((path, mine))
}

fn train(dir: &Path, name: &str, inputs: &[PathBuf], tokenizer: &str, held: &[&Path]) -> PathBuf {
    let out = dir.join(name);
    let body = format!(
        "[input]\npaths = {inputs:?}\n\n[tokenizer]\n{tokenizer}\n\n[output]\ndir = {out:?}\n\n[report]\nheld_out = {held:?}\n"
    );
    let spec = write_spec(dir, &format!("{name}.toml"), &body);
    run_ok(dir, &["train-tokenizer", spec.to_str().unwrap(), "-q"]);
    out
}

/// Every base vocab entry and added token with its id, and the base's
/// merges as the first ones, in order.
fn base_kept(base: &Value, ext: &Value) {
    let (bv, ev) = (&base["model"]["vocab"], &ext["model"]["vocab"]);
    for (tok, id) in bv.as_object().unwrap() {
        assert_eq!(&ev[tok], id, "base token {tok:?} moved");
    }
    assert_eq!(base["added_tokens"], ext["added_tokens"]);
    let (bm, em) = (
        base["model"]["merges"].as_array().unwrap(),
        ext["model"]["merges"].as_array().unwrap(),
    );
    assert!(em.len() > bm.len());
    assert_eq!(&em[..bm.len()], bm.as_slice(), "the base's merges changed");
}

/// Each new id with what it stands for: the pair its merge joins, or (a
/// new character) nothing, to be spelt by the base.
fn new_tokens(base: &Value, ext: &Value) -> HashMap<u32, Option<(u32, u32)>> {
    let vocab = ext["model"]["vocab"].as_object().unwrap();
    let id = |s: &str| vocab[s].as_u64().unwrap() as u32;
    let base_n = base["model"]["vocab"].as_object().unwrap().len() as u32;
    let mut out: HashMap<u32, Option<(u32, u32)>> = vocab
        .values()
        .map(|v| v.as_u64().unwrap() as u32)
        .filter(|&i| i >= base_n)
        .map(|i| (i, None))
        .collect();
    let bm = base["model"]["merges"].as_array().unwrap().len();
    for m in &ext["model"]["merges"].as_array().unwrap()[bm..] {
        let (l, r) = match m {
            Value::String(s) => s.split_once(' ').unwrap(),
            Value::Array(v) => (v[0].as_str().unwrap(), v[1].as_str().unwrap()),
            _ => panic!("merge {m}"),
        };
        let made = format!("{l}{r}");
        out.insert(id(&made), Some((id(l), id(r))));
    }
    out
}

/// The extended ids with every new token expanded into base ids.
fn expand(
    ids: &[u32],
    new: &HashMap<u32, Option<(u32, u32)>>,
    ext: &FastTokenizer,
    base: &FastTokenizer,
    out: &mut Vec<u32>,
) {
    for &i in ids {
        match new.get(&i) {
            None => out.push(i),
            Some(Some((l, r))) => expand(&[*l, *r], new, ext, base, out),
            Some(None) => base.encode_word(ext.token(i).unwrap(), out),
        }
    }
}

/// The crate's ids equal sluice's with the extended file; expanded, they
/// are the base's ids; and the crate decodes them back to the text.
fn check_texts(base_path: &Path, ext_path: &Path, texts: &[String]) {
    let (bj, ej) = (read_json(base_path), read_json(ext_path));
    base_kept(&bj, &ej);
    let base = FastTokenizer::from_json(&bj).unwrap();
    let ext = FastTokenizer::from_json(&ej).unwrap();
    let hf = tokenizers::Tokenizer::from_file(ext_path).unwrap();
    let new = new_tokens(&bj, &ej);
    let mut changed = 0;
    for t in texts {
        let ids = ext.encode(t);
        assert_eq!(
            hf.encode(t.as_str(), false).unwrap().get_ids(),
            ids.as_slice(),
            "the crate and sluice differ on {t:?}"
        );
        let mut expanded = vec![];
        expand(&ids, &new, &ext, &base, &mut expanded);
        let want = base.encode(t);
        assert_eq!(expanded, want, "not the base's ids once expanded: {t:?}");
        changed += usize::from(ids != want);
        if !["<s>", "</s>", "<unk>", "<|endoftext|>"]
            .iter()
            .any(|s| t.contains(s))
        {
            assert_eq!(&hf.decode(&ids, false).unwrap(), t);
        }
    }
    assert!(changed > 0, "no text used a new token");
}

fn gain(report: &Value, file: &Path) -> f64 {
    let h = report["held_out"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["file"] == file.display().to_string())
        .unwrap();
    h["gain"].as_f64().unwrap()
}

#[test]
fn llama_2_extended_with_chinese_keeps_its_ids_and_halves_chinese_tokens() {
    let tmp = tempfile::tempdir().unwrap();
    let base = repo().join("fixtures/models/wordllama-l2-64/l2_supercat_tokenizer_config.json");
    let (Some(daily), Some(reviews)) = (
        shared("data/prose/zh_peoples_daily_1998.parquet"),
        shared("data/prose/zh_reviews.parquet"),
    ) else {
        return;
    };
    let (Some((zh, zh_texts)), Some((en, en_texts))) =
        (held_out(tmp.path(), "zh"), held_out(tmp.path(), "en"))
    else {
        return;
    };
    let out = train(
        tmp.path(),
        "llama-zh",
        &[daily, reviews],
        &format!("base = {base:?}\nvocab_size = 52000"),
        &[&zh, &en],
    );
    let report = read_json(&out.join("report.json"));
    assert_eq!(report["vocab_size"], 52000, "{report}");
    assert_eq!(report["base_vocab_size"], 32000);
    assert!(
        report["characters_added"].as_u64().unwrap() > 1000,
        "{report}"
    );
    let g = gain(&report, &zh);
    assert!(g >= 1.5, "Chinese gain {g}: {report}");
    let g = gain(&report, &en);
    assert!((g - 1.0).abs() < 0.002, "English gain {g}: {report}");
    let mut texts: Vec<String> = zh_texts.into_iter().step_by(3).collect();
    texts.extend(en_texts.into_iter().step_by(5));
    texts.extend(
        [
            "",
            "  两个空格 and 中文 123 ½",
            "中华人民共和国成立于1949年。\n\n新的一段",
        ]
        .map(String::from),
    );
    check_texts(&base, &out.join("tokenizer.json"), &texts);
    // Nothing but the tokenizer.json: the base has no tokenizer.model.
    assert!(!out.join("tokenizer.model").exists());
}

#[test]
fn a_byte_level_tokenizer_extended_with_chinese() {
    let tmp = tempfile::tempdir().unwrap();
    let q = repo().join("fixtures/quickstart");
    let base = train(
        tmp.path(),
        "base",
        &[q.join("web_pages.parquet")],
        "vocab_size = 3000\npre_tokenizer = \"qwen2\"\nspecial_tokens = [\"<|endoftext|>\"]",
        &[],
    )
    .join("tokenizer.json");
    let (Some((zh, zh_texts)), Some((en, en_texts))) =
        (held_out(tmp.path(), "zh"), held_out(tmp.path(), "en"))
    else {
        return;
    };
    let out = train(
        tmp.path(),
        "ext",
        &[q.join("zh_news.parquet")],
        &format!("base = {base:?}\nvocab_size = 6000"),
        &[&zh, &en],
    );
    let report = read_json(&out.join("report.json"));
    assert_eq!(report["vocab_size"], 6000, "{report}");
    assert_eq!(report["characters_added"], 0, "bytes are all there");
    let g = gain(&report, &zh);
    assert!(g >= 1.5, "Chinese gain {g}: {report}");
    assert!(gain(&report, &en) >= 1.0);
    let mut texts: Vec<String> = zh_texts.into_iter().step_by(3).collect();
    texts.extend(en_texts.into_iter().step_by(5));
    texts.push("中华人民共和国 <|endoftext|> 2024年".into());
    check_texts(&base, &out.join("tokenizer.json"), &texts);
}

#[test]
fn extension_keys_are_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let base = repo().join("fixtures/models/wordllama-l2-64/l2_supercat_tokenizer_config.json");
    let q = repo().join("fixtures/quickstart/zh_news.parquet");
    for (extra, want) in [
        (
            "vocab_size = 40000\npre_tokenizer = \"gpt2\"",
            "pre_tokenizer",
        ),
        ("vocab_size = 40000\nmodel = \"sentencepiece_bpe\"", "model"),
        (
            "vocab_size = 40000\nspecial_tokens = [\"<x>\"]",
            "special_tokens",
        ),
        ("vocab_size = 30000", "not above the base's 32000"),
    ] {
        let body = format!(
            "[input]\npaths = [{q:?}]\n\n[tokenizer]\nbase = {base:?}\n{extra}\n\n[output]\ndir = {:?}\n",
            tmp.path().join("o")
        );
        let spec = write_spec(tmp.path(), "bad.toml", &body);
        let o = sluice(
            tmp.path(),
            &["train-tokenizer", spec.to_str().unwrap(), "-q"],
            &[],
        );
        assert!(!o.status.success(), "{extra}: accepted");
        assert!(stderr(&o).contains(want), "{extra}: {}", stderr(&o));
    }
    // A base that is not BPE cannot be extended by merges: said so.
    if let Some(wp) = shared("models/all-MiniLM-L6-v2/tokenizer.json") {
        let body = format!(
            "[input]\npaths = [{q:?}]\n\n[tokenizer]\nbase = {wp:?}\nvocab_size = 40000\n\n[output]\ndir = {:?}\n",
            tmp.path().join("o")
        );
        let spec = write_spec(tmp.path(), "wp.toml", &body);
        let o = sluice(
            tmp.path(),
            &["train-tokenizer", spec.to_str().unwrap(), "-q"],
            &[],
        );
        assert!(!o.status.success());
        assert!(stderr(&o).contains("cannot extend"), "{}", stderr(&o));
    }
}
