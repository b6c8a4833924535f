//! Bad input, tried as a new user would: every case gets an error naming the
//! file (and row or line) or a counted drop reason; a bad shard fails its own
//! task without losing the others' work; nothing panics.

mod common;

use std::io::Write;
use std::path::Path;

use common::*;

fn spec_for(dir: &Path, input: &Path, out: &Path, steps: &str) -> std::path::PathBuf {
    let body = format!(
        "[input]\npaths = [{:?}]\n\n{steps}\n[output]\ndir = {:?}\n",
        input, out
    );
    write_spec(dir, "spec.toml", &body)
}

fn no_panic(o: &std::process::Output) {
    let e = stderr(o);
    assert!(!e.contains("panicked"), "sluice panicked:\n{e}");
}

fn good_docs(n: usize) -> Vec<(String, String)> {
    (0..n)
        .map(|i| {
            (
                format!("doc{i}"),
                format!("Document number {i} says something worth keeping."),
            )
        })
        .collect()
}

fn write_good(path: &Path, n: usize) {
    let docs = good_docs(n);
    let refs: Vec<(&str, Option<&str>)> = docs
        .iter()
        .map(|(i, t)| (i.as_str(), Some(t.as_str())))
        .collect();
    write_docs(path, &refs, 1000);
}

#[test]
fn corrupt_and_truncated_parquet_fail_their_task_only() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    write_good(&input.join("a.parquet"), 50);
    write_good(&input.join("c.parquet"), 30);
    std::fs::write(
        input.join("b.parquet"),
        b"this is not parquet at all, just bytes",
    )
    .unwrap();
    let real = std::fs::read(repo().join("fixtures/quickstart/zh_news.parquet")).unwrap();
    std::fs::write(input.join("d.parquet"), &real[..real.len() / 2]).unwrap();
    let out = tmp.path().join("out");
    let spec = spec_for(tmp.path(), &input, &out, "");
    let o = sluice(tmp.path(), &["run", spec.to_str().unwrap(), "-q"], &[]);
    no_panic(&o);
    assert!(!o.status.success(), "a run with corrupt shards must fail");
    let e = stderr(&o);
    assert!(e.contains("b.parquet") && e.contains("d.parquet"), "{e}");
    assert!(e.contains("2 of 4 tasks"), "{e}");
    // The good shards' work is there and is not redone.
    assert_eq!(read_rows(&out, "part-00000").len(), 50);
    assert_eq!(read_rows(&out, "part-00002").len(), 30);
    // Replace the bad files; the rerun finishes the two missing tasks only.
    write_good(&input.join("b.parquet"), 5);
    std::fs::remove_file(input.join("d.parquet")).unwrap();
    write_good(&input.join("d.parquet"), 5);
    let o = sluice(tmp.path(), &["run", spec.to_str().unwrap(), "-q"], &[]);
    // The files changed, so the old run cannot be resumed as it was.
    assert!(
        !o.status.success() && stderr(&o).contains("--force"),
        "{}",
        stderr(&o)
    );
    run_ok(
        tmp.path(),
        &["run", spec.to_str().unwrap(), "-q", "--force"],
    );
    assert_eq!(stats_json(&out)["kept"]["docs"], 90);
}

#[test]
fn missing_text_column_lists_the_columns() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("docs.parquet");
    write_good(&input, 3);
    let body = format!(
        "[input]\npaths = [{:?}]\ntext_column = \"content\"\n[output]\ndir = {:?}\n",
        input,
        tmp.path().join("out")
    );
    let spec = write_spec(tmp.path(), "spec.toml", &body);
    let o = sluice(tmp.path(), &["run", spec.to_str().unwrap(), "-q"], &[]);
    no_panic(&o);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("docs.parquet")
            && e.contains("`content`")
            && e.contains("id (Utf8)")
            && e.contains("text (Utf8)"),
        "{e}"
    );
}

#[test]
fn non_string_text_column_is_an_error_naming_the_type() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("ints.parquet");
    write_int_text(&input);
    let spec = spec_for(tmp.path(), &input, &tmp.path().join("out"), "");
    let o = sluice(tmp.path(), &["run", spec.to_str().unwrap(), "-q"], &[]);
    no_panic(&o);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("ints.parquet") && e.contains("Int64"), "{e}");
}

#[test]
fn null_and_empty_texts_are_counted_and_excluded() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("docs.parquet");
    write_docs(
        &input,
        &[
            ("a", Some("kept text")),
            ("b", None),
            ("c", Some("")),
            ("d", Some("also kept")),
            ("e", None),
        ],
        2,
    );
    let out = tmp.path().join("out");
    // A later op adds columns: rows dropped before it still fit the excluded shard.
    let spec = spec_for(
        tmp.path(),
        &input,
        &out,
        "[[step]]\nop = \"lang\"\nkeep = [\"xx\"]\n",
    );
    run_ok(tmp.path(), &["run", spec.to_str().unwrap(), "-q"]);
    let stats = stats_json(&out);
    assert_eq!(stats["input"]["docs"], 5);
    assert_eq!(stats["kept"]["docs"], 0);
    assert_eq!(dropped(&stats, "read:null_text"), 2);
    assert_eq!(dropped(&stats, "read:empty_text"), 1);
    let ex = read_rows(&out.join("excluded"), "");
    let ids: Vec<&str> = ex.iter().map(|r| r["id"].as_str()).collect();
    assert_eq!(ids, vec!["b", "c", "e", "a", "d"]);
    assert_eq!(
        ex[0]["lang"], "<null>",
        "rows dropped before `lang` ran have the column, empty"
    );
    assert!(ex[3]["drop_reason"].starts_with("lang:") && ex[4]["drop_reason"].starts_with("lang:"));
}

#[test]
fn broken_jsonl_lines_are_counted_with_their_line() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("docs.jsonl");
    let mut f = std::fs::File::create(&input).unwrap();
    writeln!(f, r#"{{"id": "1", "text": "first good document", "n": 1}}"#).unwrap();
    writeln!(f, r#"{{"id": "2", "text": "cut short"#).unwrap();
    f.write_all(b"{\"id\": \"3\", \"text\": \"bad \xff\xfe bytes\"}\n")
        .unwrap();
    writeln!(f, r#"{{"id": "4", "body": "no text key"}}"#).unwrap();
    writeln!(f, r#"{{"id": "5", "text": 42}}"#).unwrap();
    writeln!(f).unwrap();
    writeln!(f, r#"{{"id": "6", "text": null}}"#).unwrap();
    writeln!(f, r#"[1, 2, 3]"#).unwrap();
    writeln!(f, r#"{{"id": "8", "text": "last good document", "n": 2}}"#).unwrap();
    writeln!(f, r#"{{"text": "good, no id", "n": 3}}"#).unwrap();
    drop(f);
    let out = tmp.path().join("out");
    let spec = spec_for(tmp.path(), &input, &out, "");
    run_ok(tmp.path(), &["run", spec.to_str().unwrap(), "-q"]);
    let stats = stats_json(&out);
    assert_eq!(
        stats["input"]["docs"], 9,
        "the blank line is not a document"
    );
    assert_eq!(dropped(&stats, "read:invalid_json"), 2, "{stats:#}");
    assert_eq!(dropped(&stats, "read:invalid_utf8"), 1);
    assert_eq!(dropped(&stats, "read:missing_text"), 1);
    assert_eq!(dropped(&stats, "read:text_not_string"), 1);
    assert_eq!(dropped(&stats, "read:null_text"), 1);
    let kept = read_rows(&out, "part-");
    let kept_ids: Vec<&str> = kept.iter().map(|r| r["id"].as_str()).collect();
    assert_eq!(kept_ids.len(), 3);
    assert_eq!(kept_ids[..2], ["1", "8"]);
    let bytes = std::fs::read(&input).unwrap();
    let needle = br#"{"text": "good, no id""#;
    let offset = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap();
    assert!(
        kept_ids[2].ends_with(&format!("docs.jsonl@{offset}")),
        "{kept_ids:?}"
    );
    let ex = read_rows(&out.join("excluded"), "");
    let cut = ex
        .iter()
        .find(|r| r["drop_reason"] == "read:invalid_json")
        .unwrap();
    assert!(cut["drop_detail"].contains("docs.jsonl:2"), "{cut:?}");
    let utf8 = ex
        .iter()
        .find(|r| r["drop_reason"] == "read:invalid_utf8")
        .unwrap();
    assert!(utf8["drop_detail"].contains("docs.jsonl:3"), "{utf8:?}");
    let array = ex
        .iter()
        .find(|r| r["drop_detail"].contains("docs.jsonl:8"))
        .unwrap();
    assert_eq!(array["drop_reason"], "read:invalid_json");
}

#[test]
fn a_fifty_megabyte_document_goes_through() {
    let tmp = tempfile::tempdir().unwrap();
    let big = "All work and no play makes a dull corpus. ".repeat(50 * 1024 * 1024 / 42);
    let input = tmp.path().join("big.parquet");
    write_docs(
        &input,
        &[("small", Some("a small document")), ("big", Some(&big))],
        10,
    );
    let out = tmp.path().join("out");
    let steps = "[[step]]\nop = \"normalize\"\n\n[[step]]\nop = \"length_filter\"\nmin_words = 3\n\n[[step]]\nop = \"dedup_exact\"\n";
    let spec = spec_for(tmp.path(), &input, &out, steps);
    run_ok(tmp.path(), &["run", spec.to_str().unwrap(), "-q"]);
    let stats = stats_json(&out);
    assert_eq!(stats["kept"]["docs"], 2);
    assert!(stats["kept"]["bytes"].as_u64().unwrap() > 50_000_000);
}

#[test]
fn empty_input_folder_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("empty");
    std::fs::create_dir(&input).unwrap();
    let spec = spec_for(tmp.path(), &input, &tmp.path().join("out"), "");
    let o = sluice(tmp.path(), &["run", spec.to_str().unwrap(), "-q"], &[]);
    no_panic(&o);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("empty") && e.contains("holds no"), "{e}");

    let spec = spec_for(
        tmp.path(),
        &tmp.path().join("nowhere/*.parquet"),
        &tmp.path().join("out"),
        "",
    );
    let e = stderr(&sluice(
        tmp.path(),
        &["run", spec.to_str().unwrap(), "-q"],
        &[],
    ));
    assert!(e.contains("matches no"), "{e}");
}

#[test]
fn unwritable_output_folder_is_an_error_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("docs.parquet");
    write_good(&input, 3);
    // A path below a regular file cannot be created, even by root.
    std::fs::write(tmp.path().join("plainfile"), b"x").unwrap();
    let out = tmp.path().join("plainfile/out");
    let spec = spec_for(tmp.path(), &input, &out, "");
    let o = sluice(tmp.path(), &["run", spec.to_str().unwrap(), "-q"], &[]);
    no_panic(&o);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("plainfile/out"), "{}", stderr(&o));
}

#[test]
fn large_files_split_into_tasks_give_the_same_documents() {
    let tmp = tempfile::tempdir().unwrap();
    // JSONL: 2,000 lines cut into byte ranges of ~8 KB.
    let input = tmp.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    let mut body = String::new();
    for i in 0..2000 {
        body.push_str(&format!(
            "{{\"id\": \"j{i}\", \"text\": \"line {i} of a split file, {}\"}}\n",
            "x".repeat(i % 37)
        ));
    }
    std::fs::write(input.join("big.jsonl"), &body).unwrap();
    // Parquet: 1,000 rows in row groups of 100.
    let docs = good_docs(1000);
    let refs: Vec<(&str, Option<&str>)> = docs
        .iter()
        .map(|(i, t)| (i.as_str(), Some(t.as_str())))
        .collect();
    write_docs(&input.join("big.parquet"), &refs, 100);

    let whole = tmp.path().join("whole");
    let spec = spec_for(
        tmp.path(),
        &input,
        &whole,
        "[[step]]\nop = \"dedup_exact\"\n",
    );
    run_ok(tmp.path(), &["run", spec.to_str().unwrap(), "-q"]);
    let split = tmp.path().join("split");
    let body = std::fs::read_to_string(&spec)
        .unwrap()
        .replace(&format!("{:?}", whole), &format!("{:?}", split))
        .replace("paths = [", "max_task_bytes = 8192\npaths = [");
    let spec = write_spec(tmp.path(), "split.toml", &body);
    run_ok(tmp.path(), &["run", spec.to_str().unwrap(), "-q"]);
    let phases = stats_json(&split)["phases"].clone();
    assert!(phases[0]["tasks"].as_u64().unwrap() > 10, "{phases:#}");
    let texts = |dir: &Path| {
        read_rows(dir, "part-")
            .into_iter()
            .map(|r| (r["id"].clone(), r["text"].clone()))
            .collect::<Vec<_>>()
    };
    let (a, b) = (texts(&whole), texts(&split));
    assert_eq!(a.len(), 3000);
    assert_eq!(a, b, "splitting changed the documents or their order");
}

#[test]
fn a_jsonl_row_that_does_not_fit_the_inferred_columns_is_dropped_not_fatal() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("docs.jsonl");
    let mut body = String::new();
    for i in 0..1100 {
        let n = if i == 1050 {
            "\"not a number\"".to_string()
        } else {
            i.to_string()
        };
        body.push_str(&format!(
            "{{\"id\": \"d{i}\", \"text\": \"document {i}\", \"n\": {n}}}\n"
        ));
    }
    std::fs::write(&input, body).unwrap();
    let out = tmp.path().join("out");
    let spec = spec_for(tmp.path(), &input, &out, "");
    run_ok(tmp.path(), &["run", spec.to_str().unwrap(), "-q"]);
    let stats = stats_json(&out);
    assert_eq!(stats["kept"]["docs"], 1099);
    assert_eq!(dropped(&stats, "read:invalid_json"), 1);
    let ex = read_rows(&out.join("excluded"), "");
    assert!(
        ex[0]["drop_detail"].contains("docs.jsonl:1051"),
        "{:?}",
        ex[0]
    );
    assert!(
        ex[0]["text"].contains("not a number"),
        "the raw row is kept for inspection: {:?}",
        ex[0]
    );
}

/// A key that first appears after the lines the columns come from cannot
/// be kept: the run says so, naming the line and the key, and keeps the
/// document.
#[test]
fn a_jsonl_key_missing_from_the_first_lines_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("docs.jsonl");
    let mut body = String::new();
    for i in 0..1100 {
        let late = match i {
            1050 | 1070 => format!(", \"late\": \"v{i}\", \"meta\": {{\"a\": 1}}"),
            1060 => ", \"empty\": {}, \"meta\": {\"a\": 2, \"b\": 3}".to_string(),
            _ => ", \"meta\": {\"a\": 0}".to_string(),
        };
        body.push_str(&format!(
            "{{\"id\": \"d{i}\", \"text\": \"document {i}\"{late}}}\n"
        ));
    }
    std::fs::write(&input, body).unwrap();
    let out = tmp.path().join("out");
    let spec = spec_for(tmp.path(), &input, &out, "");
    let o = run_ok(tmp.path(), &["run", spec.to_str().unwrap(), "-q"]);
    assert_eq!(stats_json(&out)["kept"]["docs"], 1100);
    let err = stderr(&o);
    assert!(
        err.contains("docs.jsonl:1051: key `late` is not among the columns"),
        "{err}"
    );
    assert_eq!(err.matches("key `late`").count(), 1, "named once: {err}");
    assert!(
        !err.contains("`empty`"),
        "an empty value loses nothing: {err}"
    );
    assert!(
        err.contains("docs.jsonl:1061: key `meta.b` is not among the columns"),
        "a key inside an object: {err}"
    );
    assert!(
        !err.contains("`meta`") && !err.contains("`meta.a`"),
        "{err}"
    );
}

#[test]
fn jsonl_quirks_keep_their_documents() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("docs.jsonl");
    let mut body = String::from("\u{feff}");
    // `later` is null in the first lines, then a string; `meta` is always {}.
    for i in 0..1200 {
        let later = if i < 1100 {
            "null".to_string()
        } else {
            format!("\"v{i}\"")
        };
        body.push_str(&format!(
            "{{\"text\": \"doc {i}\", \"later\": {later}, \"meta\": {{}}}}\n"
        ));
    }
    std::fs::write(&input, body).unwrap();
    let out = tmp.path().join("out");
    let spec = spec_for(tmp.path(), &input, &out, "");
    run_ok(tmp.path(), &["run", spec.to_str().unwrap(), "-q"]);
    let stats = stats_json(&out);
    assert_eq!(stats["kept"]["docs"], 1200, "{stats:#}");
    let rows = read_rows(&out, "part-");
    assert_eq!(
        rows[0]["text"], "doc 0",
        "the byte-order mark is not part of the first line"
    );
    assert_eq!(rows[1150]["later"], "v1150");
}

#[test]
fn other_files_in_the_output_folder_are_left_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("docs.parquet");
    write_good(&input, 3);
    let out = tmp.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let foreign = out.join("part-00000-1a2b3c4d-5e6f.snappy.parquet");
    std::fs::write(&foreign, b"a Spark shard").unwrap();
    let spec = spec_for(tmp.path(), &input, &out, "");
    run_ok(tmp.path(), &["run", spec.to_str().unwrap(), "-q"]);
    run_ok(
        tmp.path(),
        &["run", spec.to_str().unwrap(), "-q", "--force"],
    );
    assert_eq!(std::fs::read(&foreign).unwrap(), b"a Spark shard");
    assert_eq!(read_rows(&out, "part-00000-0000").len(), 3);

    // An output folder inside the input would read its own shards back.
    let spec = spec_for(tmp.path(), tmp.path(), &out, "");
    let o = sluice(tmp.path(), &["run", spec.to_str().unwrap(), "-q"], &[]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("inside the output folder"),
        "{}",
        stderr(&o)
    );
}
