//! dedup_exact's keys and keep policies through the binary: normalised text,
//! another column as the key, the largest value of a column kept, group ids
//! and sizes on every document.

mod common;

use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use common::*;

fn write(path: &Path, rows: &[(&str, &str, Option<&str>, f64)]) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("text", DataType::Utf8, false),
        Field::new("url", DataType::Utf8, true),
        Field::new("score", DataType::Float64, false),
    ]));
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1))),
        Arc::new(StringArray::from(
            rows.iter().map(|r| r.2).collect::<Vec<_>>(),
        )),
        Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.3))),
    ];
    write_batch(path, RecordBatch::try_new(schema, cols).unwrap(), 3);
}

const ROWS: &[(&str, &str, Option<&str>, f64)] = &[
    ("a", "Hello World.", Some("http://x/1"), 1.0),
    ("b", "hello   world.", Some("http://x/2"), 5.0),
    ("c", "Something else entirely.", Some("http://x/1"), 2.0),
    ("d", "HELLO WORLD.", None, 5.0),
    ("e", "Unique words here.", None, 0.0),
    ("f", "Hello World.", Some("http://x/3"), 0.5),
];

type Rows = Vec<std::collections::BTreeMap<String, String>>;

fn run(tmp: &Path, name: &str, step: &str) -> (Rows, Rows) {
    let input = tmp.join("in");
    write(&input.join("a.parquet"), &ROWS[..3]);
    write(&input.join("b.parquet"), &ROWS[3..]);
    let out = tmp.join(name);
    let body = format!("[input]\npaths = [{input:?}]\n\n[[step]]\nop = \"dedup_exact\"\n{step}\n[output]\ndir = {out:?}\n");
    let spec = write_spec(tmp, &format!("{name}.toml"), &body);
    run_ok(tmp, &["run", spec.to_str().unwrap(), "-q"]);
    (
        read_rows(&out, "part-"),
        read_rows(&out.join("excluded"), ""),
    )
}

fn ids(rows: &[std::collections::BTreeMap<String, String>]) -> Vec<&str> {
    rows.iter().map(|r| r["id"].as_str()).collect()
}

#[test]
fn exact_text_keeps_the_first_and_counts_the_group() {
    let tmp = tempfile::tempdir().unwrap();
    let (kept, excluded) = run(tmp.path(), "exact", "");
    assert_eq!(ids(&kept), ["a", "b", "c", "d", "e"]);
    assert_eq!(ids(&excluded), ["f"]);
    assert_eq!(excluded[0]["drop_detail"], "a");
    assert_eq!(kept[0]["dup_count"], "2");
    assert_eq!(kept[1]["dup_count"], "1");
    assert_eq!(kept[0]["dup_cluster"], excluded[0]["dup_cluster"]);
    assert_ne!(kept[0]["dup_cluster"], kept[1]["dup_cluster"]);
}

#[test]
fn whitespace_and_case_normalisation_groups_variants() {
    let tmp = tempfile::tempdir().unwrap();
    let (kept, excluded) = run(tmp.path(), "ws", "normalize = \"whitespace_case\"\n");
    assert_eq!(ids(&kept), ["a", "c", "e"]);
    assert_eq!(ids(&excluded), ["b", "d", "f"]);
    assert!(excluded
        .iter()
        .all(|r| r["drop_detail"] == "a" && r["dup_count"] == "4"));
}

#[test]
fn the_largest_value_of_a_column_is_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let (kept, excluded) = run(
        tmp.path(),
        "score",
        "normalize = \"whitespace_case\"\nkeep = \"score\"\n",
    );
    // a, b, d, f are one group; b and d both score 5: b comes first.
    assert_eq!(ids(&kept), ["b", "c", "e"]);
    assert_eq!(ids(&excluded), ["a", "d", "f"]);
    assert!(excluded.iter().all(|r| r["drop_detail"] == "b"));
}

#[test]
fn another_column_is_the_key_and_null_keys_are_never_duplicates() {
    let tmp = tempfile::tempdir().unwrap();
    let (kept, excluded) = run(tmp.path(), "url", "column = \"url\"\n");
    assert_eq!(ids(&kept), ["a", "b", "d", "e", "f"]);
    assert_eq!(ids(&excluded), ["c"]);
    assert_eq!(excluded[0]["drop_detail"], "a");

    let input = tmp.path().join("in");
    let body = format!(
        "[input]\npaths = [{input:?}]\n\n[[step]]\nop = \"dedup_exact\"\ncolumn = \"link\"\n\n[output]\ndir = {:?}\n",
        tmp.path().join("bad")
    );
    let spec = write_spec(tmp.path(), "bad.toml", &body);
    let o = sluice(tmp.path(), &["run", spec.to_str().unwrap(), "-q"], &[]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("no column `link`"), "{}", stderr(&o));
}

#[test]
fn documents_whose_normalised_key_is_empty_are_not_duplicates() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in.jsonl");
    std::fs::write(
        &input,
        "{\"id\": \"a\", \"text\": \"!!!\"}\n{\"id\": \"b\", \"text\": \"???\"}\n{\"id\": \"c\", \"text\": \"Real words.\"}\n{\"id\": \"d\", \"text\": \"real, words\"}\n",
    )
    .unwrap();
    let out = tmp.path().join("out");
    let body = format!("[input]\npaths = [{input:?}]\n\n[[step]]\nop = \"dedup_exact\"\nnormalize = \"minhash\"\n\n[output]\ndir = {out:?}\n");
    let spec = write_spec(tmp.path(), "e.toml", &body);
    run_ok(tmp.path(), &["run", spec.to_str().unwrap(), "-q"]);
    assert_eq!(ids(&read_rows(&out, "part-")), ["a", "b", "c"]);
    assert_eq!(ids(&read_rows(&out.join("excluded"), "")), ["d"]);
}

/// A budget so small that every intermediate writer spills gives the same
/// shards as the default; a size that is not one is refused at the key.
#[test]
fn a_tiny_memory_budget_spills_without_changing_the_output() {
    let tmp = tempfile::tempdir().unwrap();
    let run_with = |name: &str, extra: &str| {
        let out = tmp.path().join(name);
        let body = format!(
            "[input]\npaths = [{:?}]\n\n[[step]]\nop = \"dedup_exact\"\nnormalize = \"whitespace_case\"\n{extra}\n[output]\ndir = {out:?}\n",
            repo().join("fixtures/quickstart")
        );
        let spec = write_spec(tmp.path(), &format!("{name}.toml"), &body);
        sluice(
            tmp.path(),
            &["run", spec.to_str().unwrap(), "-q", "--workers", "2"],
            &[],
        )
    };
    assert!(run_with("default", "").status.success());
    assert!(run_with("tiny", "memory_budget = 8192\n").status.success());
    let expected = shard_bytes(&tmp.path().join("default"));
    assert_eq!(shard_bytes(&tmp.path().join("tiny")), expected);
    assert!(dropped(&stats_json(&tmp.path().join("tiny")), "dedup_exact") >= 20);

    let o = run_with("bad", "memory_budget = \"1 GG\"\n");
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("memory_budget") && err.contains("unknown unit"),
        "{err}"
    );
}
