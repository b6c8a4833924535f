//! Tokenized training shards: the Megatron indexed dataset sluice writes is
//! read by Megatron-LM's own `IndexedDataset`, decodes to the input texts
//! with the Python `tokenizers`, and is byte-identical to what Megatron's
//! `IndexedDatasetBuilder` writes for the same token arrays.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use sluice::io::megatron::{Dtype, IndexedDataset, IndexedWriter};
use sluice::tokenizer::hf::Normalization;
use sluice::tokenizer::load::{load_tokenizer, token_id};

/// A Python with numpy, `tokenizers` and megatron-core (without its
/// dependencies: its reader needs numpy only; `tests/py/torch_standin` stands
/// in for torch, which megatron's package imports, when torch is absent). In
/// a virtual environment under target/, made once; None only where there is
/// no Python at all.
fn python() -> Option<PathBuf> {
    let venv = repo().join("target/py-megatron");
    let py = venv.join("bin/python");
    let ready = venv.join(".sluice-ready");
    const PINS: &str = "numpy==2.4.6 tokenizers==0.23.3 megatron-core==0.16.1";
    if std::fs::read_to_string(&ready).is_ok_and(|s| s.trim() == PINS) {
        return Some(py);
    }
    if Command::new("python3").arg("--version").output().is_err() {
        eprintln!("!!! SKIPPED: no python3 here; Megatron's reader did not check our shards");
        return None;
    }
    let _ = std::fs::remove_dir_all(&venv);
    let ok = |c: &mut Command| c.status().unwrap().success();
    assert!(ok(Command::new("python3").args(["-m", "venv"]).arg(&venv)));
    assert!(
        ok(Command::new(venv.join("bin/pip")).args([
            "install",
            "-q",
            "numpy==2.4.6",
            "tokenizers==0.23.3"
        ])),
        "pip install numpy tokenizers failed (network to PyPI?)"
    );
    assert!(
        ok(Command::new(venv.join("bin/pip")).args([
            "install",
            "-q",
            "--no-deps",
            "megatron-core==0.16.1"
        ])),
        "pip install megatron-core failed (network to PyPI?)"
    );
    std::fs::write(&ready, PINS).unwrap();
    Some(py)
}

fn train_tokenizer(dir: &Path) -> PathBuf {
    let out = dir.join("tok");
    let body = format!(
        "[input]\npaths = [{:?}]\n\n[tokenizer]\nvocab_size = 3000\npre_tokenizer = \"qwen2\"\nsplit_digits = true\nnormalization = \"NFC\"\nspecial_tokens = [\"<|endoftext|>\"]\n\n[output]\ndir = {out:?}\n",
        repo().join("fixtures/quickstart")
    );
    let spec = write_spec(dir, "tok.toml", &body);
    run_ok(dir, &["train-tokenizer", spec.to_str().unwrap(), "-q"]);
    out.join("tokenizer.json")
}

#[test]
fn megatron_reads_our_shards_and_writes_the_same_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let tok_path = train_tokenizer(tmp.path());
    let tok = load_tokenizer(&tok_path).unwrap();
    let eos = token_id(&tok, "<|endoftext|>", &tok_path).unwrap();
    let mut texts = vec![];
    for f in ["zh_news.parquet", "web_pages.parquet"] {
        let p = repo().join("fixtures/quickstart").join(f);
        if p.exists() {
            texts.extend(read_parquet_column(&p, "text").into_iter().take(150));
        }
    }
    assert!(texts.len() >= 150, "fixtures/quickstart has too few texts");
    let prefix = tmp.path().join("shard-00000");
    let mut w = IndexedWriter::create(&prefix, Dtype::for_vocab(tok.get_vocab_size(true))).unwrap();
    let mut docs: Vec<Vec<u32>> = vec![];
    let mut split = 0;
    for t in &texts {
        let mut ids = tok
            .encode_fast(t.as_str(), false)
            .unwrap()
            .get_ids()
            .to_vec();
        ids.push(eos);
        // Long documents become several sequences of one document.
        let pieces: Vec<&[u32]> = ids.chunks(200).collect();
        split += (pieces.len() > 1) as usize;
        w.add_document(&pieces).unwrap();
        docs.push(ids);
    }
    assert!(
        split > 0,
        "no document long enough to be split: the test lost its point"
    );
    w.finish().unwrap();

    let ds = IndexedDataset::open(&prefix).unwrap();
    assert_eq!(ds.documents(), texts.len());
    assert_eq!(ds.dtype, Dtype::U16);
    for (d, ids) in docs.iter().enumerate() {
        assert_eq!(&ds.document(d).unwrap(), ids);
    }

    // `sluice inspect` reads it and decodes a document with the tokenizer.
    let o = run_ok(
        tmp.path(),
        &[
            "inspect",
            prefix.with_extension("idx").to_str().unwrap(),
            "--tokenizer",
            tok_path.to_str().unwrap(),
            "--doc",
            "1",
        ],
    );
    let shown = stdout(&o);
    let total: usize = docs.iter().map(Vec::len).sum();
    assert!(
        shown.contains(&format!("{} documents", texts.len()))
            && shown.contains(&format!("{total} tokens, uint16")),
        "{shown}"
    );
    assert!(
        shown.contains(&format!(
            "{}<|endoftext|>",
            Normalization::Nfc.apply(&texts[1])
        )),
        "{shown}"
    );

    let Some(py) = python() else { return };
    let out = tmp.path().join("megatron.json");
    let o = Command::new(&py)
        .arg(repo().join("tests/py/megatron_check.py"))
        .arg(&prefix)
        .arg(&out)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&o.stderr);
    eprintln!("{log}");
    assert!(
        o.status.success(),
        "Megatron could not read our shard: {log}"
    );
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(v["num_documents"], texts.len());
    assert_eq!(v["dtype"], "uint16");
    assert_eq!(
        v["idx_identical"], true,
        "our .idx differs from Megatron's builder's"
    );
    assert_eq!(
        v["bin_identical"], true,
        "our .bin differs from Megatron's builder's"
    );
    // What Megatron reads, decoded by the Python tokenizers, is the input.
    let seqs: Vec<Vec<u32>> = serde_json::from_value(v["sequences"].clone()).unwrap();
    let doc_index: Vec<usize> = serde_json::from_value(v["document_indices"].clone()).unwrap();
    let megatron_docs: Vec<Vec<u32>> = doc_index
        .windows(2)
        .map(|w| seqs[w[0]..w[1]].concat())
        .collect();
    assert_eq!(megatron_docs, docs);
    let ids_file = tmp.path().join("docs.json");
    std::fs::write(&ids_file, serde_json::to_vec(&megatron_docs).unwrap()).unwrap();
    let o = Command::new(&py)
        .args([
            "-c",
            "import json,sys\nfrom tokenizers import Tokenizer\nt=Tokenizer.from_file(sys.argv[1])\ndocs=json.load(open(sys.argv[2]))\nprint(json.dumps([t.decode(d, skip_special_tokens=True) for d in docs]))",
        ])
        .arg(&tok_path)
        .arg(&ids_file)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let decoded: Vec<String> = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(decoded.len(), texts.len());
    // The tokenizer normalises to NFC: that is the text it round-trips.
    for (d, t) in decoded.iter().zip(&texts) {
        assert_eq!(d.as_str(), Normalization::Nfc.apply(t));
    }
}

fn shards_run(
    dir: &Path,
    name: &str,
    tok: &Path,
    extra: &str,
    workers: &str,
    flags: &[&str],
) -> PathBuf {
    let out = dir.join(name);
    let q = repo().join("fixtures/quickstart");
    let body = format!(
        "[input]\npaths = [{:?}, {:?}]\n\n[[step]]\nop = \"length_filter\"\nmin_chars = 1\n\n[[step]]\nop = \"tokenize\"\ntokenizer = {tok:?}\neos = \"<|endoftext|>\"\ntokens_per_shard = 20000\nmax_doc_tokens = 3000\n{extra}\n\n[output]\ndir = {out:?}\n",
        q.join("zh_news.parquet"),
        q.join("web_pages.parquet")
    );
    let spec = write_spec(dir, &format!("{name}.toml"), &body);
    let mut args = vec!["run", spec.to_str().unwrap(), "-q", "--workers", workers];
    args.extend(flags);
    run_ok(dir, &args);
    out
}

/// Every document of the shards in `dir`, shards in name order.
fn shard_docs(dir: &Path) -> Vec<Vec<u32>> {
    let mut out = vec![];
    for f in files_with(dir, "idx") {
        let ds = IndexedDataset::open(&f.with_extension("")).unwrap();
        assert!(
            ds.tokens() <= 20000,
            "{} has {} tokens",
            f.display(),
            ds.tokens()
        );
        for d in 0..ds.documents() {
            out.push(ds.document(d).unwrap());
        }
    }
    out
}

fn files_with(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    v.sort();
    v
}

/// `sluice run` with the tokenize step: shards of at most tokens_per_shard,
/// long documents cut, every document accounted for, token counts in the
/// report equal to the shards', the same bytes for 1 and 2 workers, and the
/// documents decode to the input texts.
#[test]
fn the_tokenize_step_writes_shards_that_account_for_every_document() {
    let tmp = tempfile::tempdir().unwrap();
    let tok_path = train_tokenizer(tmp.path());
    let out = shards_run(tmp.path(), "one", &tok_path, "", "1", &["--no-shuffle"]);
    let idx = files_with(&out, "idx");
    assert!(idx.len() >= 3, "expected several shards: {idx:?}");
    assert!(
        files_with(&out, "parquet").is_empty(),
        "a sink writes no Parquet"
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("tokenize_report.json")).unwrap()).unwrap();
    let (mut tokens, mut docs) = (0u64, 0usize);
    let mut written: Vec<Vec<u32>> = vec![];
    for f in &idx {
        let ds = IndexedDataset::open(&f.with_extension("")).unwrap();
        assert!(
            ds.tokens() <= 20000,
            "{} has {} tokens",
            f.display(),
            ds.tokens()
        );
        tokens += ds.tokens();
        docs += ds.documents();
        for d in 0..ds.documents() {
            let ids = ds.document(d).unwrap();
            assert!(ids.len() <= 3000);
            written.push(ids);
        }
    }
    assert_eq!(report["tokens"], tokens);
    assert_eq!(report["documents"], docs as u64);
    let stats = stats_json(&out);
    let sum = |k: &str| -> u64 {
        report["sources"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v[k].as_u64().unwrap())
            .sum()
    };
    let split = sum("split_docs");
    assert!(split > 0, "no document was long enough to be cut: {report}");
    assert_eq!(
        docs as u64,
        stats["kept"]["docs"].as_u64().unwrap() - split + sum("pieces")
    );
    assert_eq!(sum("tokens"), tokens);
    assert_eq!(sum("docs"), stats["input"]["docs"].as_u64().unwrap());
    // Pieces joined back, documents decode to the input texts, in order
    // (tasks in path order, shards named by task).
    let tok = load_tokenizer(&tok_path).unwrap();
    let eos = token_id(&tok, "<|endoftext|>", &tok_path).unwrap();
    let mut joined: Vec<Vec<u32>> = vec![];
    let mut cur: Vec<u32> = vec![];
    for w in written {
        let end = w.last() == Some(&eos);
        cur.extend(w);
        if end {
            joined.push(std::mem::take(&mut cur));
        }
    }
    let q = repo().join("fixtures/quickstart");
    let texts: Vec<String> = ["web_pages.parquet", "zh_news.parquet"]
        .iter()
        .flat_map(|f| read_parquet_column(&q.join(f), "text"))
        .filter(|t| !t.is_empty())
        .collect();
    assert_eq!(joined.len(), texts.len());
    for (ids, t) in joined.iter().zip(&texts) {
        assert_eq!(
            tok.decode(&ids[..ids.len() - 1], false).unwrap(),
            Normalization::Nfc.apply(t)
        );
    }
    // Two workers: the same bytes.
    let two = shards_run(tmp.path(), "two", &tok_path, "", "2", &["--no-shuffle"]);
    for f in files_with(&out, "bin").iter().chain(&idx) {
        let g = two.join(f.file_name().unwrap());
        assert!(
            std::fs::read(f).unwrap() == std::fs::read(&g).unwrap(),
            "{} differs",
            g.display()
        );
    }
    // The flat format: the same ids, offsets of every document.
    let flat = shards_run(tmp.path(), "flat", &tok_path, "format = \"flat\"", "2", &[]);
    let mut flat_tokens = 0;
    for f in files_with(&flat, "offsets") {
        let offs: Vec<u64> = std::fs::read(&f)
            .unwrap()
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        let bin = std::fs::read(f.with_extension("bin")).unwrap();
        assert_eq!(offs[0], 0);
        assert_eq!(*offs.last().unwrap() * 2, bin.len() as u64);
        flat_tokens += bin.len() as u64 / 2;
    }
    assert_eq!(flat_tokens, tokens);
}

/// The default: a seeded global shuffle. The same pieces as in input order,
/// in another order, the same bytes for 1 and 2 workers, another order for
/// another seed; shards still within tokens_per_shard.
#[test]
fn shuffled_shards_hold_the_same_documents_in_a_seeded_order() {
    let tmp = tempfile::tempdir().unwrap();
    let tok_path = train_tokenizer(tmp.path());
    let plain = shard_docs(&shards_run(
        tmp.path(),
        "plain",
        &tok_path,
        "",
        "2",
        &["--no-shuffle"],
    ));
    let one = shards_run(tmp.path(), "one", &tok_path, "", "1", &[]);
    let shuffled = shard_docs(&one);
    assert_ne!(shuffled, plain, "not shuffled");
    let (mut a, mut b) = (shuffled.clone(), plain.clone());
    a.sort();
    b.sort();
    assert_eq!(a, b, "the shuffle lost or changed documents");
    // Far from input order: few neighbours stay neighbours.
    let pos: std::collections::HashMap<&Vec<u32>, usize> =
        plain.iter().enumerate().map(|(i, d)| (d, i)).collect();
    let kept_next = shuffled
        .windows(2)
        .filter(|w| pos[&w[1]] == pos[&w[0]] + 1)
        .count();
    assert!(
        kept_next * 10 < shuffled.len(),
        "{kept_next} of {} pairs still adjacent",
        shuffled.len()
    );
    let two = shards_run(tmp.path(), "two", &tok_path, "", "2", &[]);
    for f in files_with(&one, "bin")
        .iter()
        .chain(&files_with(&one, "idx"))
    {
        let g = two.join(f.file_name().unwrap());
        assert!(
            std::fs::read(f).unwrap() == std::fs::read(&g).unwrap(),
            "{} differs",
            g.display()
        );
    }
    let seed2 = shard_docs(&shards_run(
        tmp.path(),
        "seed2",
        &tok_path,
        "seed = 2",
        "2",
        &[],
    ));
    assert_ne!(seed2, shuffled);
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(one.join("tokenize_report.json")).unwrap()).unwrap();
    let total: usize = shuffled.iter().map(Vec::len).sum();
    assert_eq!(report["tokens"], total as u64);
    // The spill (ids and keys) goes once the run has succeeded.
    assert!(
        !one.join("_work/2-tokenize").exists(),
        "spill files left behind"
    );
}

#[test]
fn a_missing_tokenizer_or_token_is_named_before_any_data_is_read() {
    let tmp = tempfile::tempdir().unwrap();
    let tok_path = train_tokenizer(tmp.path());
    for (tok, extra, want) in [
        (tmp.path().join("nope.json"), "", "nope.json"),
        (
            tok_path.clone(),
            "bos = \"<s>\"",
            "\"<s>\" is not in the vocabulary",
        ),
    ] {
        let q = repo().join("fixtures/quickstart");
        let body = format!(
            "[input]\npaths = [{:?}]\n\n[[step]]\nop = \"tokenize\"\ntokenizer = {tok:?}\n{extra}\n\n[output]\ndir = {:?}\n",
            q.join("zh_news.parquet"),
            tmp.path().join("out")
        );
        let spec = write_spec(tmp.path(), "bad.toml", &body);
        let o = sluice(tmp.path(), &["run", spec.to_str().unwrap(), "-q"], &[]);
        assert!(!o.status.success());
        assert!(stderr(&o).contains(want), "{}", stderr(&o));
    }
}

/// sluice encodes with its own encoder when the tokenizer.json is one it
/// wrote; the ids must be the `tokenizers` crate's, on every fixture text
/// and on text made to catch the edges (special tokens inside the text,
/// digits, CRLF, emoji, long runs without a space).
#[test]
fn our_encoder_gives_the_tokenizers_crates_ids() {
    use sluice::tokenizer::load::TextEncoder;
    let tmp = tempfile::tempdir().unwrap();
    let tok_path = train_tokenizer(tmp.path());
    let ours = TextEncoder::load(&tok_path).unwrap();
    assert_eq!(ours.name(), "sluice");
    let hf = load_tokenizer(&tok_path).unwrap();
    let q = repo().join("fixtures/quickstart");
    let mut texts: Vec<String> = vec![];
    for f in ["zh_news.parquet", "web_pages.parquet"] {
        texts.extend(read_parquet_column(&q.join(f), "text"));
    }
    texts.extend([
        "a<|endoftext|>b<|endoftext|><|endoftext|>".to_string(),
        "1234567890 3.14159 ¹²³ ١٢٣ 一二三".to_string(),
        "line\r\nnext\r\n\r\n  indented\ttab   \n".to_string(),
        "emoji 👩‍👩‍👧 flags 🇫🇷 e\u{301} Å Å".to_string(),
        "长".repeat(5000),
        "x".repeat(20000),
        " ".repeat(300) + "end",
        "it's THEY'LL we'Re".to_string(),
        String::new(),
    ]);
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let a = ours.encode_batch(&refs).unwrap();
    let b: Vec<Vec<u32>> = refs
        .iter()
        .map(|t| hf.encode(*t, false).unwrap().get_ids().to_vec())
        .collect();
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert_eq!(
            x,
            y,
            "text {i}: {:?}",
            &texts[i].chars().take(80).collect::<String>()
        );
    }
    assert_eq!(ours.vocab_size(), hf.get_vocab_size(true));
}

/// Llama 2's own tokenizer (SentencePiece-style, byte fallback), which
/// sluice did not train: `tokenize` encodes with sluice's encoder, and the
/// shards decode, with the `tokenizers` crate, to the input texts.
#[test]
fn llama_2s_tokenizer_writes_shards_that_decode_to_the_input() {
    let tmp = tempfile::tempdir().unwrap();
    let tok = repo().join("fixtures/models/wordllama-l2-64/l2_supercat_tokenizer_config.json");
    let out = tmp.path().join("llama");
    let q = repo().join("fixtures/quickstart");
    let body = format!(
        "[input]\npaths = [{:?}, {:?}]\n\n[[step]]\nop = \"tokenize\"\ntokenizer = {tok:?}\nbos = \"<s>\"\neos = \"</s>\"\ntokens_per_shard = 20000\n\n[output]\ndir = {out:?}\n",
        q.join("zh_news.parquet"),
        q.join("web_pages.parquet")
    );
    let spec = write_spec(tmp.path(), "llama.toml", &body);
    run_ok(
        tmp.path(),
        &["run", spec.to_str().unwrap(), "-q", "--no-shuffle"],
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("tokenize_report.json")).unwrap()).unwrap();
    assert_eq!(report["encoder"], "sluice", "{report}");
    assert_eq!(report["dtype"], "uint16", "{report}");
    let hf = load_tokenizer(&tok).unwrap();
    // Tasks in path order, shards named by task.
    let texts: Vec<String> = ["web_pages.parquet", "zh_news.parquet"]
        .iter()
        .flat_map(|f| read_parquet_column(&q.join(f), "text"))
        .filter(|t| !t.is_empty())
        .collect();
    // Pieces of a document cut at max_doc_tokens joined back: the last
    // ends with </s>.
    let mut docs: Vec<Vec<u32>> = vec![];
    let mut cur: Vec<u32> = vec![];
    for piece in shard_docs(&out) {
        let end = piece.last() == Some(&2);
        cur.extend(piece);
        if end {
            docs.push(std::mem::take(&mut cur));
        }
    }
    assert_eq!(docs.len(), texts.len());
    for (ids, t) in docs.iter().zip(&texts) {
        assert_eq!((ids[0], ids[ids.len() - 1]), (1, 2), "<s> … </s>");
        // A literal "<s>" in a page is Llama 2's special token (as in its
        // own tokenizer.json), which decodes without the text's spacing.
        if !["<s>", "</s>", "<unk>"].iter().any(|s| t.contains(s)) {
            assert_eq!(&hf.decode(&ids[1..ids.len() - 1], false).unwrap(), t);
        }
        assert_eq!(
            ids[1..ids.len() - 1],
            *hf.encode(t.as_str(), false).unwrap().get_ids()
        );
    }
    // `sluice inspect` decodes with the same encoder: <s> and the text.
    let first = files_with(&out, "idx").remove(0);
    let o = run_ok(
        tmp.path(),
        &[
            "inspect",
            first.to_str().unwrap(),
            "--tokenizer",
            tok.to_str().unwrap(),
            "--doc",
            "0",
        ],
    );
    let start: String = texts[0].chars().take(60).collect();
    assert!(
        stdout(&o).contains(&format!("<s> {start}")),
        "{}",
        stdout(&o)
    );
}
