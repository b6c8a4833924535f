//! `sluice train-tokenizer` through the binary: the tokenizer.json it writes
//! loads in Hugging Face `tokenizers` and `transformers` and encodes to the
//! same ids as sluice; every text round-trips; digits stay single; 1 and 2
//! workers give the same file.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use sluice::tokenizer::fast::FastTokenizer;

fn train(dir: &Path, name: &str, tokenizer: &str, workers: &str) -> PathBuf {
    let out = dir.join(name);
    let body = format!(
        "[input]\npaths = [{:?}]\n\n[tokenizer]\n{tokenizer}\n\n[output]\ndir = {out:?}\n",
        repo().join("fixtures/quickstart")
    );
    let spec = write_spec(dir, &format!("{name}.toml"), &body);
    run_ok(
        dir,
        &[
            "train-tokenizer",
            spec.to_str().unwrap(),
            "-q",
            "--workers",
            workers,
        ],
    );
    out.join("tokenizer.json")
}

/// The tokenizer.json as sluice's encoder reads it (tested against the
/// `tokenizers` crate in tests/encoder.rs).
fn load(path: &Path) -> Tok {
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    Tok(FastTokenizer::from_json(&json).unwrap())
}

struct Tok(FastTokenizer);

impl Tok {
    fn encode(&self, text: &str) -> Vec<u32> {
        self.0.encode(text)
    }

    fn decode(&self, ids: &[u32]) -> String {
        self.0.decode(ids, false).expect("a byte-level decoder")
    }
}

const QWEN: &str = "vocab_size = 3000\npre_tokenizer = \"qwen2\"\nsplit_digits = true\nnormalization = \"NFC\"\nspecial_tokens = [\"<|endoftext|>\", \"<|im_start|>\", \"<|im_end|>\"]\nrequired_tokens = [\"中华人民共和国\"]";

/// Random strings from every corner of Unicode a corpus has.
fn random_texts(n: usize) -> Vec<String> {
    let ranges: &[(u32, u32)] = &[
        (0x20, 0x7e),
        (0x00, 0x1f),
        (0x80, 0x2ff),
        (0x300, 0x36f),
        (0x400, 0x4ff),
        (0x600, 0x6ff),
        (0x900, 0x97f),
        (0x3000, 0x30ff),
        (0x4e00, 0x9fff),
        (0xac00, 0xd7a3),
        (0xff00, 0xffef),
        (0x1f300, 0x1faff),
        (0x10000, 0x10ffff),
    ];
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..n)
        .map(|i| {
            let len = if i % 50 == 0 {
                20_000
            } else {
                (next() % 200) as usize
            };
            let mut s = String::new();
            while s.chars().count() < len {
                let (lo, hi) = ranges[(next() % ranges.len() as u64) as usize];
                if let Some(c) = char::from_u32(lo + (next() % (hi - lo + 1) as u64) as u32) {
                    s.push(c);
                }
                if next() % 7 == 0 {
                    s.push([' ', '\n', '1', '\t', '\''][(next() % 5) as usize]);
                }
            }
            s
        })
        .collect()
}

#[test]
fn every_text_round_trips_and_digits_stay_single() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, pre) in [("gpt2", "gpt2"), ("llama3", "llama3"), ("qwen2", "qwen2")] {
        let cfg = format!(
            "vocab_size = 1500\npre_tokenizer = \"{pre}\"\nsplit_digits = true\nnormalization = \"none\"\nspecial_tokens = [\"<|endoftext|>\"]"
        );
        let tok = load(&train(tmp.path(), name, &cfg, "2"));
        for text in random_texts(300) {
            let ids = tok.encode(&text);
            assert_eq!(tok.decode(&ids), text, "{name}: {text:?}");
        }
        let with_special = "a<|endoftext|>b<|endoftext|>";
        let ids = tok.encode(with_special);
        assert_eq!(ids.iter().filter(|&&i| i == 0).count(), 2);
        assert_eq!(tok.decode(&ids), with_special);
        // No token holds two number characters.
        for id in 0..tok.0.vocab_size() as u32 {
            let s = tok.decode(&[id]);
            assert!(
                s.chars().filter(|c| c.is_numeric()).count() <= 1,
                "{name}: token {s:?}"
            );
        }
    }
    // NFC: what comes back is the text normalised.
    let tok = load(&train(tmp.path(), "nfc", QWEN, "2"));
    let text = "e\u{301}te\u{301} ﬁ";
    assert_eq!(tok.decode(&tok.encode(text)), "été ﬁ");
    // The required token is one token.
    assert_eq!(tok.encode("中华人民共和国").len(), 1);
}

#[test]
fn one_or_two_workers_train_the_same_tokenizer() {
    let tmp = tempfile::tempdir().unwrap();
    let a = std::fs::read(train(tmp.path(), "one", QWEN, "1")).unwrap();
    let b = std::fs::read(train(tmp.path(), "two", QWEN, "2")).unwrap();
    assert!(a == b, "tokenizer.json differs between 1 and 2 workers");
}

/// A Python with `tokenizers`, `transformers` and `sentencepiece`, in a virtual environment
/// under target/ (made once; a marker file says it is complete, and a lock
/// keeps this binary's tests from making it twice at once); None only where
/// there is no Python at all.
fn python() -> Option<PathBuf> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let venv = repo().join("target/py-tokenizers");
    let py = venv.join("bin/python");
    let ready = venv.join(".sluice-ready");
    const PACKAGES: [&str; 3] = [
        "tokenizers==0.23.3",
        "transformers==5.24.0",
        "sentencepiece==0.2.1",
    ];
    let want = PACKAGES.join("\n");
    if std::fs::read_to_string(&ready).is_ok_and(|have| have == want) {
        return Some(py);
    }
    if Command::new("python3").arg("--version").output().is_err() {
        eprintln!("!!! SKIPPED: no python3 here; the Hugging Face comparison did not run");
        return None;
    }
    let _ = std::fs::remove_dir_all(&venv);
    let ok = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .unwrap()
        .success();
    assert!(ok, "python3 -m venv failed");
    let ok = Command::new(venv.join("bin/pip"))
        .args(["install", "-q"])
        .args(PACKAGES)
        .status()
        .unwrap()
        .success();
    assert!(ok, "pip install {want} failed (network to PyPI?)");
    std::fs::write(&ready, &want).unwrap();
    Some(py)
}

#[test]
fn hugging_face_loads_it_and_gives_the_same_ids() {
    let Some(py) = python() else { return };
    let tmp = tempfile::tempdir().unwrap();
    for (name, cfg) in [
        ("qwen2", QWEN.to_string()),
        ("gpt2", "vocab_size = 2500\npre_tokenizer = \"gpt2\"\nsplit_digits = true\nnormalization = \"NFKC\"\nspecial_tokens = [\"<s>\", \"</s>\"]".to_string()),
        ("llama3", "vocab_size = 2500\npre_tokenizer = \"llama3\"\nsplit_digits = false\nnormalization = \"none\"".to_string()),
        ("custom", "vocab_size = 2000\npre_tokenizer = \"custom\"\npattern = \"\\\\p{L}+|\\\\p{N}|[^\\\\p{L}\\\\p{N}]+\"".to_string()),
    ] {
        let path = train(tmp.path(), name, &cfg, "2");
        let tok = load(&path);
        let mut texts: Vec<String> = read_parquet_column(&repo().join("fixtures/quickstart/zh_news.parquet"), "text")
            .into_iter()
            .take(60)
            .collect();
        texts.extend(read_parquet_column(&repo().join("fixtures/quickstart/web_pages.parquet"), "text").into_iter().take(60));
        texts.extend(random_texts(60));
        texts.push("Hello <|im_start|>user\n你好 123 ４５６<|im_end|> 'S'll ſ  x\r\n\r\n  ".into());
        let input = tmp.path().join(format!("{name}-texts.json"));
        std::fs::write(&input, serde_json::to_vec(&texts).unwrap()).unwrap();
        let output = tmp.path().join(format!("{name}-ids.json"));
        let script = r#"
import json, sys
from tokenizers import Tokenizer
from transformers import PreTrainedTokenizerFast
tok = Tokenizer.from_file(sys.argv[1])
fast = PreTrainedTokenizerFast(tokenizer_file=sys.argv[1])
texts = json.load(open(sys.argv[2], encoding="utf-8"))
a = [tok.encode(t, add_special_tokens=False).ids for t in texts]
b = [fast.encode(t, add_special_tokens=False) for t in texts]
assert a == b, "tokenizers and transformers disagree"
json.dump(a, open(sys.argv[3], "w"))
"#;
        let o = Command::new(&py)
            .args(["-c", script])
            .arg(&path)
            .arg(&input)
            .arg(&output)
            .output()
            .unwrap();
        assert!(o.status.success(), "{name}: {}", String::from_utf8_lossy(&o.stderr));
        let theirs: Vec<Vec<u32>> = serde_json::from_slice(&std::fs::read(&output).unwrap()).unwrap();
        for (text, want) in texts.iter().zip(&theirs) {
            assert_eq!(&tok.encode(text), want, "{name}: {text:?}");
        }
    }
}

/// Each source has its own byte budget or sampling fraction, and together
/// they read what each reads alone.
#[test]
fn sources_have_their_own_budgets_and_fractions() {
    let tmp = tempfile::tempdir().unwrap();
    let zh = repo().join("fixtures/quickstart/zh_news.parquet");
    let web = repo().join("fixtures/quickstart/web_pages.parquet");
    let docs = |name: &str, input: &str| -> (u64, u64) {
        let out = tmp.path().join(name);
        let body = format!("{input}\n[tokenizer]\nvocab_size = 600\n\n[output]\ndir = {out:?}\n");
        let spec = write_spec(tmp.path(), &format!("{name}.toml"), &body);
        run_ok(
            tmp.path(),
            &["train-tokenizer", spec.to_str().unwrap(), "-q"],
        );
        let report: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
        (
            report["training"]["docs"].as_u64().unwrap(),
            report["training"]["bytes"].as_u64().unwrap(),
        )
    };
    let (zh_docs, zh_bytes) = docs(
        "zh",
        &format!("[input]\npaths = [{zh:?}]\nmax_bytes = \"100KB\"\n"),
    );
    assert!(zh_docs > 0 && zh_docs < 1000, "{zh_docs}");
    let zh_max = read_parquet_column(&zh, "text")
        .iter()
        .map(|t| t.len() as u64)
        .max()
        .unwrap();
    assert!(
        zh_bytes >= 100_000 && zh_bytes < 100_000 + zh_max,
        "{zh_bytes}"
    );
    let (web_docs, _) = docs(
        "web",
        &format!("[input]\n[[input.sources]]\npaths = [{web:?}]\nfraction = 0.5\n"),
    );
    assert!((70..=130).contains(&web_docs), "{web_docs} of 200");
    let (both, _) = docs(
        "both",
        &format!(
            "[input]\npaths = [{zh:?}]\nmax_bytes = \"100KB\"\n\n[[input.sources]]\npaths = [{web:?}]\nfraction = 0.5\n"
        ),
    );
    assert_eq!(both, zh_docs + web_docs);
}

/// With `compare_hf`, the report holds the Hugging Face trainer's figures
/// on the same text beside ours, and its compression is ours within 2%.
#[test]
fn the_report_compares_with_the_hugging_face_trainer() {
    let Some(py) = python() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("cmp");
    let body = format!(
        "[input]\npaths = [{:?}, {:?}]\n\n[tokenizer]\n{QWEN}\n\n[output]\ndir = {out:?}\n\n[report]\nheld_out = [{:?}]\ncompare_hf = {py:?}\n",
        repo().join("fixtures/quickstart/web_pages.parquet"),
        repo().join("fixtures/quickstart/zh_news.parquet"),
        repo().join("fixtures/quickstart/speeches.jsonl.gz"),
    );
    let spec = write_spec(tmp.path(), "cmp.toml", &body);
    run_ok(
        tmp.path(),
        &["train-tokenizer", spec.to_str().unwrap(), "-q"],
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    let ours = report["held_out"][0]["bytes_per_token"].as_f64().unwrap();
    let hf = &report["hf_trainer"];
    let theirs = hf["held_out"][0]["bytes_per_token"].as_f64().unwrap();
    assert!(
        (ours / theirs - 1.0).abs() < 0.02,
        "ours {ours}, HF {theirs}"
    );
    assert!(hf["seconds"].as_f64().unwrap() > 0.0);
    assert!(report["training"]["peak_rss_mb"].as_f64().unwrap() > 0.0);
    assert!(!out.join("_compare").exists(), "the sample is removed");
}

/// Llama 2's settings, Baichuan 2's whitespace tokens, one user-defined
/// token.
const SPM: &str = "model = \"sentencepiece_bpe\"\nvocab_size = 3000\nsplit_digits = true\nbyte_fallback = true\nwhitespace_tokens = [2, 4, 8]\nmax_piece_length = 16\ncharacter_coverage = 0.9995\nspecial_tokens = [\"<|im_start|>\"]";

/// Text in every script at hand: the fixtures, 75 languages of lingua's
/// paragraphs, code indented with spaces and tabs, and random Unicode.
/// None holds a literal `<s>`, `</s>` or `<unk>`: the `tokenizers` crate
/// reads those as the special tokens, as it does with Llama 2's own
/// tokenizer.json, where SentencePiece reads them as text. Nor a
/// user-defined token: that one is tested on its own below.
fn spm_texts() -> Vec<String> {
    let mut texts: Vec<String> =
        read_parquet_column(&repo().join("fixtures/quickstart/zh_news.parquet"), "text")
            .into_iter()
            .take(40)
            .collect();
    texts.extend(
        read_parquet_column(
            &repo().join("fixtures/quickstart/web_pages.parquet"),
            "text",
        )
        .into_iter()
        .take(40),
    );
    if let Some(p) = shared("data/lid/lingua_paragraphs.parquet") {
        let all = read_parquet_column(&p, "text");
        texts.extend(all.into_iter().step_by(7));
    }
    texts.push("def f(x):\n        return x  +  1\n\t\tpass\n                  end".into());
    texts.push("  leading and trailing spaces  ".into());
    texts.push("Hello user\n你好 123 ４５６ ſ  x\r\n".into());
    texts.push(String::new());
    texts.extend(random_texts(60));
    texts.extend(script_texts());
    texts
}

/// The tokenizer.model loads in `sentencepiece`, the tokenizer.json in
/// `tokenizers` and as `LlamaTokenizerFast`; all three give the same ids on
/// every text, never `<unk>`, and decode back to the text.
#[test]
fn sentencepiece_style_loads_in_sentencepiece_and_hugging_face_with_the_same_ids() {
    let Some(py) = python() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let json = train(tmp.path(), "spm", SPM, "2");
    let model = json.with_file_name("tokenizer.model");
    let texts = spm_texts();
    assert!(texts.len() > 100);
    let input = tmp.path().join("texts.json");
    std::fs::write(&input, serde_json::to_vec(&texts).unwrap()).unwrap();
    let script = r#"
import json, sys
import sentencepiece as spm
from tokenizers import Tokenizer
from transformers import LlamaTokenizerFast
sp = spm.SentencePieceProcessor(model_file=sys.argv[1])
tok = Tokenizer.from_file(sys.argv[2])
fast = LlamaTokenizerFast(tokenizer_file=sys.argv[2])
texts = json.load(open(sys.argv[3], encoding="utf-8"))
assert sp.get_piece_size() == tok.get_vocab_size() == 3000, (sp.get_piece_size(), tok.get_vocab_size())
assert [sp.id_to_piece(i) for i in range(3)] == ["<unk>", "<s>", "</s>"]
assert sp.id_to_piece(3) == "<|im_start|>" and sp.id_to_piece(4) == "<0x00>"
assert (fast.bos_token_id, fast.eos_token_id, fast.unk_token_id) == (1, 2, 0)
bad = 0
for t in texts:
    a = sp.encode(t)
    b = tok.encode(t, add_special_tokens=False).ids
    c = fast.encode(t, add_special_tokens=False)
    if not (a == b == c):
        bad += 1
        print("DIFFER", repr(t[:80]), a[:20], b[:20], c[:20])
        continue
    assert 0 not in a, ("unk", t[:80])
    assert sp.decode(a) == t, ("decode", t[:80], sp.decode(a)[:80])
    assert tok.decode(b) == t.replace("<|im_start|>", ""), ("hf decode", t[:80])
    # With special tokens: <s> first, as Llama 2.
    assert fast.encode(t)[:1] == [1] and fast.encode(t)[1:] == c
# A user-defined token is one token in both; the text after it has no `▁`
# in sentencepiece and one in tokenizers, as with every tokenizer.json
# Hugging Face converts from a SentencePiece model (Llama 2's `legacy`).
t = "Hello<|im_start|>user"
a, b = sp.encode(t, out_type=str), tok.encode(t, add_special_tokens=False).tokens
assert a[:a.index("<|im_start|>")] == b[:b.index("<|im_start|>")] == sp.encode("Hello", out_type=str), (a, b)
assert "".join(a[a.index("<|im_start|>") + 1:]) == "user" and "".join(b[b.index("<|im_start|>") + 1:]) == "▁user", (a, b)
assert sp.decode(sp.encode(t)) == t
# digits are single pieces; runs of spaces are pieces of their own
assert sp.encode("12345", out_type=str) == ["▁", "1", "2", "3", "4", "5"], sp.encode("12345", out_type=str)
assert "▁▁▁▁▁▁▁▁" in sp.encode("x" + " " * 9 + "y", out_type=str)
print(len(texts), "texts", bad, "differ")
assert bad == 0
"#;
    let o = Command::new(&py)
        .args(["-c", script])
        .arg(&model)
        .arg(&json)
        .arg(&input)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn sentencepiece_style_is_the_same_for_one_or_two_workers() {
    let tmp = tempfile::tempdir().unwrap();
    let a = train(tmp.path(), "one", SPM, "1");
    let b = train(tmp.path(), "two", SPM, "2");
    for name in ["tokenizer.json", "tokenizer.model"] {
        assert!(
            std::fs::read(a.with_file_name(name)).unwrap()
                == std::fs::read(b.with_file_name(name)).unwrap(),
            "{name} differs between 1 and 2 workers"
        );
    }
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(a.with_file_name("report.json")).unwrap()).unwrap();
    assert_eq!(report["model"], "sentencepiece_bpe", "{report}");
    assert!(report["characters"].as_u64().unwrap() > 100, "{report}");
}
