//! Mixture by token budget and input groups: the four fixture files as four
//! sources (`[input.sources]`), mixed to a token budget by weight and
//! tokenized; the report's achieved figures are what the shards hold.

mod common;

use std::path::{Path, PathBuf};

use common::*;

fn train_tokenizer(dir: &Path) -> PathBuf {
    let out = dir.join("tok");
    let body = format!(
        "[input]\npaths = [{:?}]\n\n[tokenizer]\nvocab_size = 2000\npre_tokenizer = \"qwen2\"\nsplit_digits = true\nspecial_tokens = [\"<|endoftext|>\"]\n\n[output]\ndir = {out:?}\n",
        repo().join("fixtures/quickstart")
    );
    let spec = write_spec(dir, "tok.toml", &body);
    run_ok(dir, &["train-tokenizer", spec.to_str().unwrap(), "-q"]);
    out.join("tokenizer.json")
}

fn sources_table() -> String {
    let q = repo().join("fixtures/quickstart");
    format!(
        "[input.sources]\nweb = [{:?}]\nnews = [{:?}]\ndocs = [{:?}]\nspeeches = [{:?}]\n",
        q.join("web_pages.parquet"),
        q.join("zh_news.parquet"),
        q.join("python_docs.jsonl.zst"),
        q.join("speeches.jsonl.gz"),
    )
}

/// A run of `mixture` then `tokenize`; returns the output folder.
fn mix(dir: &Path, name: &str, tok: &Path, mixture: &str, workers: &str) -> PathBuf {
    let out = dir.join(name);
    let body = format!(
        "{}\n[[step]]\nop = \"mixture\"\n{mixture}\n\n[[step]]\nop = \"tokenize\"\ntokenizer = {tok:?}\neos = \"<|endoftext|>\"\ntokens_per_shard = 400000\n\n[output]\ndir = {out:?}\n",
        sources_table()
    );
    let spec = write_spec(dir, &format!("{name}.toml"), &body);
    run_ok(
        dir,
        &["run", spec.to_str().unwrap(), "-q", "--workers", workers],
    );
    out
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn by_source(report: &serde_json::Value) -> std::collections::BTreeMap<String, serde_json::Value> {
    report["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["source"].as_str().unwrap().to_string(), s.clone()))
        .collect()
}

fn shard_bytes_of(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "bin" || e == "idx"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect()
}

/// Weights become token shares within about a document; the report's
/// figures after the mixture are what the shards hold (the EOS the
/// tokenize step adds counted in the budget); every document is accounted for; 1 and 2 workers write the
/// same bytes.
#[test]
fn a_token_budget_is_split_by_weight_and_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let tok = train_tokenizer(tmp.path());
    let spec =
        "total_tokens = 2_000_000\nweights = { web = 0.6, news = 0.2, docs = 0.1, speeches = 0.1 }";
    let out = mix(tmp.path(), "out1", &tok, spec, "1");

    let report = json(&out.join("mixture_report.json"));
    let rows = by_source(&report);
    assert_eq!(rows.len(), 4);
    let mut after_tokens = 0;
    for (name, r) in &rows {
        let target = r["target_share"].as_f64().unwrap();
        let got = r["share_after"].as_f64().unwrap();
        // The largest fixture document is under 1% of the budget.
        assert!(
            (got - target).abs() < 0.01,
            "{name}: share {got} for target {target}"
        );
        let epochs = r["epochs"].as_f64().unwrap();
        let ratio = r["tokens_after"].as_f64().unwrap() / r["tokens_before"].as_f64().unwrap();
        assert!((epochs - ratio).abs() < 1e-9, "{name}");
        after_tokens += r["tokens_after"].as_u64().unwrap();
    }
    // news (170k tokens for a 400k target) is repeated, docs (331k for
    // 200k) sampled.
    assert!(rows["news"]["epochs"].as_f64().unwrap() > 2.0);
    assert!(rows["docs"]["epochs"].as_f64().unwrap() < 1.0);
    assert_eq!(report["totals"]["tokens_after"], after_tokens);
    let total = after_tokens as f64;
    assert!((total - 2e6).abs() / 2e6 < 0.01, "{total}");

    let written = json(&out.join("tokenize_report.json"));
    for (name, r) in &rows {
        let w = &written["sources"][name];
        assert_eq!(w["docs"], r["docs_after"], "{name}");
        assert_eq!(
            w["tokens"], r["tokens_after"],
            "{name}: the budget counts what the shards hold, EOS included"
        );
    }

    let stats = stats_json(&out);
    let docs = |k: &str| stats[k]["docs"].as_u64().unwrap_or(0);
    assert_eq!(docs("input"), 1370);
    assert_eq!(
        docs("input") + docs("added"),
        docs("kept") + dropped(&stats, "mixture:downsampled")
    );
    assert!(dropped(&stats, "mixture:downsampled") > 0);
    let txt = std::fs::read_to_string(out.join("mixture_report.txt")).unwrap();
    assert!(txt.lines().any(|l| l.starts_with("speeches")), "{txt}");

    let out2 = mix(tmp.path(), "out2", &tok, spec, "2");
    assert_eq!(shard_bytes_of(&out), shard_bytes_of(&out2));
    assert_eq!(
        std::fs::read(out.join("mixture_report.json")).unwrap(),
        std::fs::read(out2.join("mixture_report.json")).unwrap()
    );
}

/// A weight of 0 leaves a source out; `max_epochs` caps a source that would
/// be repeated more (it then falls short of its share, as the report shows).
#[test]
fn zero_weights_and_an_epoch_cap() {
    let tmp = tempfile::tempdir().unwrap();
    let tok = train_tokenizer(tmp.path());
    let out = mix(
        tmp.path(),
        "capped",
        &tok,
        "total_tokens = 1_000_000\nweights = { web = 0.5, news = 0.5, docs = 0, speeches = 0 }\nmax_epochs = 2",
        "2",
    );
    let rows = by_source(&json(&out.join("mixture_report.json")));
    for s in ["docs", "speeches"] {
        assert_eq!(rows[s]["docs_after"], 0, "{s}");
    }
    let news = &rows["news"];
    assert!(news["epochs"].as_f64().unwrap() <= 2.0 + 1e-9);
    assert!(news["share_after"].as_f64().unwrap() < 0.45, "{news}");
    let written = json(&out.join("tokenize_report.json"));
    assert!(written["sources"].get("docs").is_none());
}

/// Rows without a source, and sources without a weight, are errors that
/// say what to do; the spec's own mistakes are caught before any data is read.
#[test]
fn sources_must_have_weights() {
    let tmp = tempfile::tempdir().unwrap();
    let tok = train_tokenizer(tmp.path());
    let q = repo().join("fixtures/quickstart");
    let out = tmp.path().join("out");
    let cases = [
        (
            format!("[input]\npaths = [{:?}]\n", q.join("speeches.jsonl.gz")),
            "weights = { speeches = 1.0 }",
            "30 documents have no `source`",
        ),
        (
            sources_table(),
            "weights = { web = 1.0, news = 1.0, docs = 1.0 }",
            "source `speeches` (30 documents) has no weight",
        ),
        (
            sources_table(),
            "weights = { web = 1.0, news = 1.0, docs = 1.0, speeches = 1.0, books = 1.0 }",
            "source `books` has weight 1 but no tokens",
        ),
        (
            sources_table(),
            "weights = { web = -1.0 }",
            "weights are shares, 0 or more",
        ),
        // A budget a thousand times the corpus would be written for ever.
        (
            sources_table(),
            "total_tokens = 1_000_000_000_000\nweights = { web = 1.0, news = 0, docs = 0, speeches = 0 }",
            "source `web` would be repeated",
        ),
    ];
    for (input, weights, want) in cases {
        let total = if weights.contains("total_tokens") {
            ""
        } else {
            "total_tokens = 1000\n"
        };
        let body = format!(
            "{input}\n[[step]]\nop = \"mixture\"\n{total}{weights}\n\n[[step]]\nop = \"tokenize\"\ntokenizer = {tok:?}\n\n[output]\ndir = {out:?}\n"
        );
        let spec = write_spec(tmp.path(), "bad.toml", &body);
        let o = sluice(
            tmp.path(),
            &["run", spec.to_str().unwrap(), "-q", "--force"],
            &[],
        );
        assert!(!o.status.success(), "{want}");
        assert!(stderr(&o).contains(want), "want {want}:\n{}", stderr(&o));
    }
    // Without a tokenize step, the mixture needs its own tokenizer.
    let body = format!(
        "{}\n[[step]]\nop = \"mixture\"\ntotal_tokens = 1000\nweights = {{ web = 1.0 }}\n\n[output]\ndir = {out:?}\n",
        sources_table()
    );
    let spec = write_spec(tmp.path(), "notok.toml", &body);
    let o = sluice(tmp.path(), &["run", spec.to_str().unwrap(), "-q"], &[]);
    assert!(stderr(&o).contains("set `tokenizer`"), "{}", stderr(&o));
}

/// `[input.sources]` fills the source column of every row of a group's
/// files (replacing one the data has), and a file in two groups is an error.
#[test]
fn input_groups_name_the_source_of_their_rows() {
    let tmp = tempfile::tempdir().unwrap();
    let q = repo().join("fixtures/quickstart");
    let out = tmp.path().join("out");
    let body = format!(
        "[input]\npaths = [{:?}]\nsource_column = \"origin\"\n\n[input.sources]\nnews = [{:?}]\n\n[[step]]\nop = \"length_filter\"\nmin_chars = 1\n\n[output]\ndir = {out:?}\n",
        q.join("web_pages.parquet"),
        q.join("zh_news.parquet"),
    );
    let spec = write_spec(tmp.path(), "groups.toml", &body);
    run_ok(tmp.path(), &["run", spec.to_str().unwrap(), "-q"]);
    let rows = read_rows(&out, "part-");
    let news = rows
        .iter()
        .filter(|r| r.get("origin").map(String::as_str) == Some("news"));
    assert_eq!(news.count(), 1000);
    // Rows of `paths` have no group: no value.
    assert_eq!(rows.len(), 1200);
    assert!(rows
        .iter()
        .filter(|r| r["text"].is_ascii())
        .all(|r| r.get("origin").is_none_or(|o| o == "<null>")));

    let body = format!(
        "[input.sources]\na = [{:?}]\nb = [{:?}]\n\n[[step]]\nop = \"length_filter\"\nmin_chars = 1\n\n[output]\ndir = {out:?}\n",
        q.join("zh_news.parquet"),
        q.to_str().unwrap(),
    );
    let spec = write_spec(tmp.path(), "twice.toml", &body);
    let o = sluice(
        tmp.path(),
        &["run", spec.to_str().unwrap(), "-q", "--force"],
        &[],
    );
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("zh_news.parquet is in both `a` and `b`"),
        "{}",
        stderr(&o)
    );
}
