//! dedup_lines through the binary, on real text with planted repeats:
//! boilerplate lines (English and Chinese, in case and digit variants that
//! CCNet's normalisation makes one) and paragraphs copied from one
//! document into others. Every planted repeat must go, the lines that
//! occur once must stay, and the output must be the same bytes for 1 and
//! 2 workers, for both methods.

mod common;

use std::collections::HashMap;
use std::path::Path;

use common::*;
use sluice::text::ccnet::normalize_for_dedup;

/// A small deterministic generator (the test must not depend on a crate's
/// sequence).
struct Lcg(u64);
impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

const BOILERPLATE: &[&[&str]] = &[
    &[
        "Share this article on Facebook",
        "SHARE THIS ARTICLE ON FACEBOOK",
    ],
    &[
        "Copyright 2019 Example Media Ltd. All rights reserved.",
        "Copyright 2024 Example Media Ltd. All rights reserved.",
    ],
    &[
        "We use cookies to improve your experience.",
        "  We use cookies to improve your experience.  ",
    ],
    &["Subscribe to our newsletter", "subscribe to our newsletter"],
    &[
        "版权所有 © 2023 新华网 京ICP备12345678号",
        "版权所有 © 2021 新华网 京ICP备87654321号",
    ],
    &["责任编辑：王小明", " 责任编辑王小明"],
    &["点击进入专题：两会特别报道", "点击进入专题两会特别报道"],
    &[
        "Read more: the 10 best places to visit",
        "Read more: the 25 best places to visit",
    ],
];

struct Corpus {
    docs: Vec<(String, String)>,
    /// Normalised planted units (boilerplate and copied paragraphs).
    planted: Vec<String>,
    /// Normalised lines that occur once in the corpus.
    unique: Vec<String>,
}

fn norm(s: &str) -> String {
    let mut out = String::new();
    normalize_for_dedup(s, &mut out);
    out
}

/// 200 Chinese news documents (5 People's Daily paragraphs each) and 200
/// real web pages (boilerplate and all), with repeats planted.
fn corpus() -> Corpus {
    let repo = repo();
    let zh = read_parquet_column(&repo.join("fixtures/quickstart/zh_news.parquet"), "text");
    let web = read_parquet_column(&repo.join("fixtures/quickstart/web_pages.parquet"), "text");
    let mut docs: Vec<Vec<String>> = zh
        .chunks(5)
        .map(|c| c.to_vec())
        .chain(
            web.iter()
                .map(|t| t.split('\n').map(str::to_string).collect()),
        )
        .collect();
    docs.retain(|d| d.iter().any(|l| !l.trim().is_empty()));
    // The lines that occur once before planting: they must all survive.
    let mut counts: HashMap<String, usize> = HashMap::new();
    for d in &docs {
        for l in d {
            *counts.entry(norm(l)).or_default() += 1;
        }
    }
    let mut rng = Lcg(7);
    let mut planted = vec![];
    for variants in BOILERPLATE {
        planted.push(norm(variants[0]));
        for (i, v) in variants.iter().enumerate() {
            assert_eq!(norm(v), norm(variants[0]), "variant {i} of {variants:?}");
        }
    }
    for d in docs.iter_mut() {
        for variants in BOILERPLATE {
            if rng.below(10) < 4 {
                let at = rng.below(d.len() + 1);
                d.insert(at, variants[rng.below(variants.len())].to_string());
            }
        }
    }
    // Paragraphs copied from a Chinese document into 1 to 3 others.
    for _ in 0..60 {
        let from = rng.below(200);
        let line = docs[from][rng.below(5)].clone();
        if counts.get(&norm(&line)) != Some(&1) {
            continue;
        }
        planted.push(norm(&line));
        for _ in 0..1 + rng.below(3) {
            let to = rng.below(docs.len());
            let at = rng.below(docs[to].len() + 1);
            docs[to].insert(at, line.clone());
        }
    }
    planted.sort();
    planted.dedup();
    let unique = counts
        .into_iter()
        .filter(|(l, n)| *n == 1 && !l.is_empty() && planted.binary_search(l).is_err())
        .map(|(l, _)| l)
        .collect();
    Corpus {
        docs: docs
            .into_iter()
            .enumerate()
            .map(|(i, d)| (format!("doc-{i:04}"), d.join("\n")))
            .collect(),
        planted,
        unique,
    }
}

fn write_corpus(dir: &Path, c: &Corpus) {
    // Two files: two input tasks, so the workers have something to split.
    let half = c.docs.len() / 2;
    for (name, part) in [("a", &c.docs[..half]), ("b", &c.docs[half..])] {
        let rows: Vec<(&str, Option<&str>)> = part
            .iter()
            .map(|(i, t)| (i.as_str(), Some(t.as_str())))
            .collect();
        write_docs(&dir.join(format!("{name}.parquet")), &rows, 50);
    }
}

fn run(tmp: &Path, name: &str, step: &str, workers: &str) -> std::path::PathBuf {
    let out = tmp.join(name);
    let body = format!(
        "[input]\npaths = [{:?}]\n\n[[step]]\nop = \"dedup_lines\"\n{step}\n[output]\ndir = {out:?}\n",
        tmp.join("in")
    );
    let spec = write_spec(tmp, &format!("{name}.toml"), &body);
    run_ok(
        tmp,
        &["run", spec.to_str().unwrap(), "-q", "--workers", workers],
    );
    out
}

/// How often each normalised line occurs in the output.
fn output_lines(out: &Path) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for r in read_rows(out, "part-") {
        for l in r["text"].split('\n') {
            *counts.entry(norm(l)).or_default() += 1;
        }
    }
    counts
}

#[test]
fn planted_repeats_go_and_unique_lines_stay_for_both_methods() {
    let tmp = tempfile::tempdir().unwrap();
    let c = corpus();
    write_corpus(&tmp.path().join("in"), &c);
    let mut planted_in = 0;
    for (_, t) in &c.docs {
        for l in t.split('\n') {
            planted_in += c.planted.binary_search(&norm(l)).is_ok() as usize;
        }
    }
    let repeats = planted_in - c.planted.len();
    assert!(repeats > 1000, "only {repeats} planted repeats");

    for method in ["exact", "bloom"] {
        let step = format!("method = \"{method}\"\n");
        let one = run(tmp.path(), &format!("{method}-1"), &step, "1");
        let two = run(tmp.path(), &format!("{method}-2"), &step, "2");
        assert_eq!(
            shard_bytes(&one),
            shard_bytes(&two),
            "{method}: 1 and 2 workers differ"
        );
        let got = output_lines(&one);
        // Each planted unit stays exactly once: its first occurrence.
        let left: usize = c
            .planted
            .iter()
            .map(|p| got.get(p).copied().unwrap_or(0))
            .sum();
        let missing = c.planted.iter().filter(|p| !got.contains_key(*p)).count();
        assert_eq!(
            missing, 0,
            "{method}: a planted unit lost its first occurrence"
        );
        let removed = planted_in - left;
        assert!(
            removed as f64 >= 0.99 * repeats as f64,
            "{method}: removed {removed} of {repeats} planted repeats"
        );
        let lost = c.unique.iter().filter(|u| !got.contains_key(*u)).count();
        assert!(
            (lost as f64) < 0.005 * c.unique.len() as f64,
            "{method}: {lost} of {} unique lines removed",
            c.unique.len()
        );
        if method == "exact" {
            assert_eq!(removed, repeats, "exact: every planted repeat goes");
            assert_eq!(lost, 0, "exact: no unique line goes");
            // The web pages' own repeats (menus, footers) go too: no
            // non-empty line is left twice.
            let twice: Vec<_> = got
                .iter()
                .filter(|(l, n)| !l.is_empty() && **n > 1)
                .collect();
            assert!(
                twice.is_empty(),
                "lines left more than once: {:?}",
                &twice[..twice.len().min(5)]
            );
        }
        let stats = stats_json(&one);
        let step = &stats["steps"][1];
        assert_eq!(step["step"], "1:dedup_lines");
        let counters = &step["counters"];
        assert!(counters["units_removed"].as_u64().unwrap() >= removed as u64);
        assert!(counters["units"].as_u64().unwrap() > counters["units_removed"].as_u64().unwrap());
        assert!(counters["unit_bytes_removed"].as_u64().unwrap() > 0);
        assert_eq!(
            stats["input"]["docs"].as_u64().unwrap(),
            stats["kept"]["docs"].as_u64().unwrap() + dropped(&stats, "dedup_lines:empty")
        );
    }
}

fn docs_run(
    tmp: &Path,
    name: &str,
    docs: &[(&str, &str)],
    step: &str,
) -> (Vec<(String, String)>, serde_json::Value) {
    let input = tmp.join(format!("{name}-in"));
    let rows: Vec<(&str, Option<&str>)> = docs.iter().map(|(i, t)| (*i, Some(*t))).collect();
    write_docs(&input.join("a.parquet"), &rows, 2);
    let out = tmp.join(name);
    let body = format!(
        "[input]\npaths = [{input:?}]\n\n[[step]]\nop = \"dedup_lines\"\n{step}\n[output]\ndir = {out:?}\n"
    );
    let spec = write_spec(tmp, &format!("{name}.toml"), &body);
    run_ok(tmp, &["run", spec.to_str().unwrap(), "-q"]);
    let rows = read_rows(&out, "part-")
        .into_iter()
        .map(|r| (r["id"].clone(), r["text"].clone()))
        .collect();
    (rows, stats_json(&out))
}

#[test]
fn paragraphs_empty_documents_and_short_units() {
    let tmp = tempfile::tempdir().unwrap();
    let docs = [
        (
            "a",
            "First paragraph,\nstill the first.\n\nShared paragraph\nover two lines.\n",
        ),
        (
            "b",
            "Shared paragraph\nover two lines.\n\n\nOwn text of b.\n",
        ),
        ("c", "shared PARAGRAPH\nover two lines.\n"),
        ("d", "Own text of d.\n\nOk\n\nOk\n"),
    ];
    let (rows, stats) = docs_run(tmp.path(), "para", &docs, "unit = \"paragraph\"\n");
    let text: HashMap<_, _> = rows.into_iter().collect();
    assert_eq!(
        text["a"], docs[0].1,
        "a document with nothing cut is unchanged"
    );
    assert_eq!(text["b"], "Own text of b.\n");
    assert!(!text.contains_key("c"), "c is left empty");
    assert_eq!(
        text["d"], "Own text of d.\n\nOk\n",
        "a repeat in the same document goes"
    );
    assert_eq!(dropped(&stats, "dedup_lines:empty"), 1);
    let counters = &stats["steps"][1]["counters"];
    assert_eq!(counters["units"], 8);
    assert_eq!(counters["units_removed"], 3);
    assert_eq!(counters["unit_bytes_removed"], 32 + 32 + 2);
    let excluded = read_rows(&tmp.path().join("para/excluded"), "");
    assert_eq!(excluded.len(), 1);
    assert_eq!(
        excluded[0]["text"], docs[2].1,
        "excluded/ holds the text as it came"
    );

    // Units under min_chars stay; min_doc_chars drops what the cut left short.
    let (rows, stats) = docs_run(
        tmp.path(),
        "short",
        &docs,
        "unit = \"paragraph\"\nmin_chars = 3\nmin_doc_chars = 15\n",
    );
    let text: HashMap<_, _> = rows.into_iter().collect();
    assert_eq!(text["d"], docs[3].1, "\"Ok\" is under min_chars");
    assert!(!text.contains_key("b"), "b was cut to 14 characters");
    assert_eq!(dropped(&stats, "dedup_lines:empty"), 2);
}

#[test]
fn source_scope_dedups_within_each_source() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    write_docs(
        &root.join("web/a.parquet"),
        &[
            ("w1", Some("Boilerplate line\nWeb one")),
            ("w2", Some("Boilerplate line\nWeb two")),
        ],
        10,
    );
    write_docs(
        &root.join("books/a.parquet"),
        &[("b1", Some("Boilerplate line\nBook one"))],
        10,
    );
    let out = root.join("out");
    let body = format!(
        "[input.sources]\nweb = [{:?}]\nbooks = [{:?}]\n\n[[step]]\nop = \"dedup_lines\"\nscope = \"source\"\n\n[output]\ndir = {out:?}\n",
        root.join("web"),
        root.join("books")
    );
    let spec = write_spec(root, "s.toml", &body);
    run_ok(root, &["run", spec.to_str().unwrap(), "-q"]);
    let text: HashMap<_, _> = read_rows(&out, "part-")
        .into_iter()
        .map(|r| (r["id"].clone(), r["text"].clone()))
        .collect();
    assert_eq!(text["w1"], "Boilerplate line\nWeb one");
    assert_eq!(text["w2"], "Web two");
    assert_eq!(text["b1"], "Boilerplate line\nBook one");

    // Without sources there is no column to scope by: a clear error.
    write_docs(&root.join("plain/a.parquet"), &[("x", Some("text"))], 10);
    let body = format!(
        "[input]\npaths = [{:?}]\n\n[[step]]\nop = \"dedup_lines\"\nscope = \"source\"\n\n[output]\ndir = {:?}\n",
        root.join("plain"),
        root.join("out2")
    );
    let spec = write_spec(root, "p.toml", &body);
    let o = sluice(root, &["run", spec.to_str().unwrap(), "-q"], &[]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("source column `source`"),
        "{}",
        stderr(&o)
    );
}
