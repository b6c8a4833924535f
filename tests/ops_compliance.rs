//! The same checks for every op in the registry (as Vector runs the same
//! compliance tests on every transform): its documented example runs
//! through the real executor on an empty input and on a small awkward one
//! (empty and whitespace-only text, a null text, Chinese, Arabic, emoji and
//! control characters, exact and near duplicates, sources), every document
//! is accounted for, and every drop reason the op gives is one it declares.
//! A new op is covered by adding it to the registry with its example.

mod common;

use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use common::*;

const ENGLISH: &str = "The river rose slowly through the night, and by morning the lower \
fields were under water. Farmers moved their animals to the higher ground before dawn.\n\
The council met at noon to decide whether the old bridge could still carry the weight of \
the supply trucks. Engineers said it could, for a few more days at most.\n\
Volunteers filled sandbags along the main street while the school opened its hall to \
families who had left their homes. Nobody was hurt, and the water began to fall on Sunday.";

/// Ids, texts and sources of the awkward input.
fn documents() -> Vec<(String, Option<String>, Option<&'static str>)> {
    let mut docs = vec![
        ("en-1", Some(ENGLISH.to_string()), Some("web")),
        ("en-dup", Some(ENGLISH.to_string()), Some("web")),
        (
            "en-near",
            Some(ENGLISH.replace("Sunday", "Monday")),
            Some("books"),
        ),
        ("empty", Some(String::new()), Some("web")),
        ("blank", Some(" \n\t \r\n ".to_string()), Some("books")),
        ("null-text", None, Some("web")),
        (
            "zh",
            Some("河水在夜里慢慢上涨，到了早上，低处的田地都被淹没了。农民们在天亮前把牲畜赶到了高地上。".repeat(4)),
            Some("books"),
        ),
        (
            "ar",
            Some("ارتفع النهر ببطء خلال الليل، وفي الصباح غمرت المياه الحقول المنخفضة.".repeat(3)),
            Some("web"),
        ),
        (
            "emoji",
            Some("🌊🌊 flood\u{0}\u{7}\u{200b} warning!!! 🚜 ……\n- a\n- b\n- c".to_string()),
            Some("web"),
        ),
        ("lorem", Some("Lorem ipsum dolor sit amet { }".to_string()), Some("books")),
    ];
    for i in 0..6 {
        docs.push((
            ["p0", "p1", "p2", "p3", "p4", "p5"][i],
            Some(format!(
                "{ENGLISH}\nParagraph {i} of a longer report on the flood."
            )),
            Some(if i % 2 == 0 { "web" } else { "books" }),
        ));
    }
    docs.into_iter()
        .map(|(id, t, s)| (id.to_string(), t, s))
        .collect()
}

fn write_input(path: &Path, empty: bool) {
    let docs = if empty { vec![] } else { documents() };
    let ids: ArrayRef = Arc::new(StringArray::from(
        docs.iter().map(|d| Some(d.0.as_str())).collect::<Vec<_>>(),
    ));
    let texts: ArrayRef = Arc::new(StringArray::from(
        docs.iter().map(|d| d.1.as_deref()).collect::<Vec<_>>(),
    ));
    let sources: ArrayRef = Arc::new(StringArray::from(
        docs.iter().map(|d| d.2).collect::<Vec<_>>(),
    ));
    // The columns a WARC read gives, for `url_filter` and `extract`: a URL
    // per row (one on a blocked domain, one with a banned word, nulls), and
    // pages for some rows (an article, a page of boilerplate only), null
    // HTML for the rest, as a WET record has.
    let urls: ArrayRef = Arc::new(StringArray::from(
        (0..docs.len())
            .map(|i| match i % 5 {
                0 => Some(format!("https://www.example.org/news/{i}")),
                1 => Some(format!("http://spam-fixture.example/page/{i}")),
                2 => Some(format!("https://free-porn-deals.example/{i}")),
                3 => None,
                _ => Some(format!("https://boingboing.net/{i}")),
            })
            .collect::<Vec<_>>(),
    ));
    let html: ArrayRef = Arc::new(StringArray::from(
        docs.iter()
            .map(|d| match d.0.as_str() {
                "en-1" | "p0" | "p3" => Some(format!(
                    "<html lang=\"en\"><head><title>Flood</title></head><body><nav><a href=\"/\">Home</a> \
                     <a href=\"/news\">News</a></nav><article><h1>The flood</h1><p>{}</p></article>\
                     <footer>Copyright 2024 Example News</footer></body></html>",
                    ENGLISH.replace('\n', "</p><p>")
                )),
                "blank" => Some("<html><body><nav><a href=\"/\">Home</a></nav></body></html>".into()),
                _ => None,
            })
            .collect::<Vec<_>>(),
    ));
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, true),
        Field::new("text", DataType::Utf8, true),
        Field::new("source", DataType::Utf8, true),
        Field::new("url", DataType::Utf8, true),
        Field::new("html", DataType::Utf8, true),
    ]));
    write_batch(
        path,
        RecordBatch::try_new(schema, vec![ids, texts, sources, urls, html]).unwrap(),
        4,
    );
}

/// Whether `reason` is one of `declared`, where `<…>` in a declared reason
/// stands for any non-empty text (`lang:<code>`).
fn declared(reason: &str, declared: &[&str]) -> bool {
    declared.iter().any(|d| matches(reason, d))
}

fn matches(reason: &str, pattern: &str) -> bool {
    match pattern.find('<') {
        None => reason == pattern,
        Some(open) => {
            let close = pattern[open..].find('>').map(|c| open + c + 1).unwrap();
            let (head, tail) = (&pattern[..open], &pattern[close..]);
            let Some(rest) = reason.strip_prefix(head) else {
                return false;
            };
            (1..=rest.len())
                .filter(|&n| rest.is_char_boundary(n))
                .any(|n| matches(&rest[n..], tail))
        }
    }
}

#[test]
fn every_op_runs_its_example_accounts_for_every_document_and_declares_its_drops() {
    let repo = repo();
    let mut checked = 0;
    for info in sluice::ops::REGISTRY {
        for empty in [true, false] {
            let tmp = tempfile::tempdir().unwrap();
            let input = tmp.path().join("in/docs.parquet");
            write_input(&input, empty);
            let out = tmp.path().join("out");
            let spec = write_spec(
                tmp.path(),
                "spec.toml",
                &format!(
                    "[input]\npaths = [\"{}\"]\n\n{}\n[output]\ndir = \"{}\"\n",
                    input.display(),
                    info.example,
                    out.display()
                ),
            );
            let what = format!(
                "{} on {} input",
                info.name,
                if empty { "an empty" } else { "the awkward" }
            );
            let o = sluice(&repo, &["run", spec.to_str().unwrap(), "--quiet"], &[]);
            let err = stderr(&o);
            assert!(
                !err.contains("a bug") && !err.contains("panicked"),
                "{what}: internal error\n{err}"
            );
            if !o.status.success() {
                // Only a clear refusal is allowed, and only on no documents
                // (k-means with fewer documents than k, say).
                assert!(empty, "{what} failed:\n{err}");
                assert!(
                    err.contains("error"),
                    "{what}: failed without an error\n{err}"
                );
                continue;
            }
            // The executor checks input + added = kept + dropped before it
            // writes stats.json; this checks it kept its word.
            let stats = stats_json(&out);
            let steps = stats["steps"].as_array().unwrap();
            let n = |v: &serde_json::Value| v["docs"].as_u64().unwrap_or(0);
            for step in steps {
                let dropped: u64 = step["dropped"].as_object().unwrap().values().map(n).sum();
                assert_eq!(
                    n(&step["input"]) + n(&step["added"]),
                    n(&step["kept"]) + dropped,
                    "{what}: step {} does not account for its documents",
                    step["step"]
                );
            }
            let last = steps.last().unwrap();
            assert!(
                last["step"]
                    .as_str()
                    .unwrap()
                    .ends_with(&format!(":{}", info.name)),
                "{what}: the last step is {}",
                last["step"]
            );
            for reason in last["dropped"].as_object().unwrap().keys() {
                assert!(
                    declared(reason, info.drop_reasons),
                    "{what}: drop reason `{reason}` is not among the declared {:?}",
                    info.drop_reasons
                );
            }
            let expected_input = if empty { 0 } else { documents().len() as u64 };
            assert_eq!(
                n(&steps[0]["input"]),
                expected_input,
                "{what}: the first step did not see every document"
            );
            checked += 1;
        }
    }
    assert!(
        checked >= sluice::ops::REGISTRY.len(),
        "ran {checked} examples"
    );
}

#[test]
fn declared_patterns_match_as_documented() {
    assert!(matches("lang:fr", "lang:<code>"));
    assert!(!matches("lang:", "lang:<code>"));
    assert!(matches(
        "gopher_repetition:top_2_gram",
        "gopher_repetition:top_<n>_gram"
    ));
    assert!(!matches(
        "gopher_repetition:top_2_grams",
        "gopher_repetition:top_<n>_gram"
    ));
    assert!(!matches("sample:x", "sample"));
}
