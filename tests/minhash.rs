//! dedup_minhash against exact ground truth: the planted near-duplicate sets
//! of ../shared/data/dedup/ (every pair above Jaccard 0.5 listed with its true
//! Jaccard). At threshold 0.8 with verification: recall of the pairs at or
//! above 0.8 at least 0.95, precision of the removals at least 0.99.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use arrow::array::{Array, BooleanArray, Float64Array, StringArray};
use common::*;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

fn dedup_dir() -> Option<PathBuf> {
    shared("data/dedup/neardup_en/pairs.parquet").map(|_| repo().join("../shared/data/dedup"))
}

/// (id_a, id_b) → Jaccard, for every pair above 0.5.
fn truth(path: &Path) -> HashMap<(String, String), f64> {
    let r = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(path).unwrap())
        .unwrap()
        .build()
        .unwrap();
    let mut out = HashMap::new();
    for b in r {
        let b = b.unwrap();
        let a = b
            .column(0)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap()
            .clone();
        let c = b
            .column(1)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap()
            .clone();
        let j = b
            .column(2)
            .as_any()
            .downcast_ref::<Float64Array>()
            .unwrap()
            .clone();
        let _ = b.column(3).as_any().downcast_ref::<BooleanArray>();
        for i in 0..b.num_rows() {
            let (x, y) = (a.value(i).to_string(), c.value(i).to_string());
            out.insert((x.clone(), y.clone()), j.value(i));
            out.insert((y, x), j.value(i));
        }
    }
    out
}

fn check(set: &str, step: &str) {
    let Some(dir) = dedup_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let body = format!(
        "[input]\npaths = [{:?}]\n\n[[step]]\nop = \"dedup_minhash\"\nthreshold = 0.8\nverify_jaccard = true\n{step}\n[output]\ndir = {out:?}\n",
        dir.join(set).join("docs.parquet")
    );
    let spec = write_spec(tmp.path(), "mh.toml", &body);
    run_ok(
        tmp.path(),
        &["run", spec.to_str().unwrap(), "-q", "--workers", "2"],
    );
    let kept = read_rows(&out, "part-");
    let removed = read_rows(&out.join("excluded"), "");
    let truth = truth(&dir.join(set).join("pairs.parquet"));

    let cluster: HashMap<&str, &str> = kept
        .iter()
        .chain(&removed)
        .map(|r| (r["id"].as_str(), r["dup_cluster"].as_str()))
        .collect();
    let above: Vec<(&(String, String), &f64)> = truth
        .iter()
        .filter(|(k, j)| **j >= 0.8 && k.0 < k.1)
        .collect();
    let found = above
        .iter()
        .filter(|(k, _)| cluster[k.0.as_str()] == cluster[k.1.as_str()])
        .count();
    let recall = found as f64 / above.len() as f64;
    // A removal is right when the removed document is within the threshold
    // of the one kept for it (true Jaccard from the complete pair list).
    let right = removed
        .iter()
        .filter(|r| {
            truth
                .get(&(r["id"].clone(), r["drop_detail"].clone()))
                .is_some_and(|j| *j >= 0.8)
        })
        .count();
    let precision = right as f64 / removed.len().max(1) as f64;
    eprintln!(
        "{set}: {} pairs at or above 0.8, recall {recall:.4}; {} removed, precision {precision:.4}",
        above.len(),
        removed.len()
    );
    assert!(recall >= 0.95, "{set}: recall {recall}");
    assert!(precision >= 0.99, "{set}: precision {precision}");
    assert!(removed.iter().all(|r| r["drop_reason"] == "dedup_minhash"));
}

#[test]
fn english_near_duplicates_are_found_precisely() {
    check("neardup_en", "");
}

#[test]
fn chinese_near_duplicates_use_character_shingles() {
    check("neardup_zh", "shingle = \"chars\"\n");
}

/// On the bundled fixtures (no ../shared needed): same shards with 1 and 2
/// workers, with a memory budget so small that every writer spills and every
/// sort goes external, and after a crash inside each phase.
#[test]
fn minhash_runs_are_deterministic_and_resumable() {
    let tmp = tempfile::tempdir().unwrap();
    let spec_with = |name: &str, extra: &str| {
        let body = format!(
            "[input]\npaths = [{:?}]\n\n[[step]]\nop = \"dedup_minhash\"\n{extra}\n[output]\ndir = {:?}\nrows_per_shard = 300\n",
            repo().join("fixtures/quickstart"),
            tmp.path().join(name)
        );
        write_spec(tmp.path(), &format!("{name}.toml"), &body)
    };
    let spec = |name: &str| spec_with(name, "");
    let one = spec("one");
    run_ok(
        tmp.path(),
        &["run", one.to_str().unwrap(), "-q", "--workers", "1"],
    );
    let two = spec("two");
    run_ok(
        tmp.path(),
        &["run", two.to_str().unwrap(), "-q", "--workers", "2"],
    );
    let expected = shard_bytes(&tmp.path().join("one"));
    assert_eq!(shard_bytes(&tmp.path().join("two")), expected);
    let small = spec_with("small", "memory_budget = \"48KB\"\n");
    run_ok(
        tmp.path(),
        &["run", small.to_str().unwrap(), "-q", "--workers", "2"],
    );
    assert_eq!(
        shard_bytes(&tmp.path().join("small")),
        expected,
        "a budget that forces spills changes nothing"
    );
    // The planted exact copies are near-duplicates too.
    let removed = read_rows(&tmp.path().join("one/excluded"), "");
    assert!(
        removed
            .iter()
            .filter(|r| r["id"].ends_with("#copy"))
            .count()
            == 20,
        "{}",
        removed.len()
    );

    for point in [
        "1-dedup_minhash-buckets/0",
        "1-dedup_minhash-components/0",
        "1-dedup_minhash-clusters/3",
        "s1/2",
    ] {
        let name = format!("crash-{}", point.replace('/', "-"));
        let s = spec(&name);
        let o = sluice(
            tmp.path(),
            &["run", s.to_str().unwrap(), "-q", "--workers", "1"],
            &[("SLUICE_TEST_ABORT", point)],
        );
        assert!(!o.status.success(), "no abort at {point}");
        run_ok(tmp.path(), &["run", s.to_str().unwrap(), "-q"]);
        assert_eq!(
            shard_bytes(&tmp.path().join(&name)),
            expected,
            "after a crash at {point}"
        );
    }
}

/// A second run deduplicates against the first one's saved index without
/// reading its data again; mismatched settings are refused.
#[test]
fn new_data_is_deduplicated_against_an_earlier_index() {
    let tmp = tempfile::tempdir().unwrap();
    let docs = repo().join("fixtures/quickstart/python_docs.jsonl.zst");
    let index = tmp.path().join("index");
    let first = format!(
        "[input]\npaths = [{docs:?}]\n\n[[step]]\nop = \"dedup_minhash\"\nsave_index = {index:?}\n\n[output]\ndir = {:?}\n",
        tmp.path().join("first")
    );
    let spec = write_spec(tmp.path(), "first.toml", &first);
    run_ok(tmp.path(), &["run", spec.to_str().unwrap(), "-q"]);
    assert!(index.join("meta.json").exists());

    // New data: five of those documents again (lightly edited), and five new ones.
    let raw = zstd::stream::decode_all(std::fs::File::open(&docs).unwrap()).unwrap();
    let old: Vec<serde_json::Value> = String::from_utf8(raw)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut lines = String::new();
    for (i, d) in old
        .iter()
        .filter(|d| d["text"].as_str().unwrap().len() > 2000)
        .take(5)
        .enumerate()
    {
        let text = format!("{}\nEdited copy.", d["text"].as_str().unwrap());
        lines.push_str(
            &serde_json::json!({"id": format!("new-copy-{i}"), "text": text, "was": d["id"]})
                .to_string(),
        );
        lines.push('\n');
    }
    for i in 0..5 {
        let text = format!("A fresh document number {i} about something else entirely, with enough words to shingle.");
        lines.push_str(
            &serde_json::json!({"id": format!("new-{i}"), "text": text, "was": ""}).to_string(),
        );
        lines.push('\n');
    }
    let new_dir = tmp.path().join("new");
    std::fs::create_dir_all(&new_dir).unwrap();
    std::fs::write(new_dir.join("new.jsonl"), lines).unwrap();
    let second = format!(
        "[input]\npaths = [{new_dir:?}]\n\n[[step]]\nop = \"dedup_minhash\"\nindex = [{index:?}]\n\n[output]\ndir = {:?}\n",
        tmp.path().join("second")
    );
    let spec = write_spec(tmp.path(), "second.toml", &second);
    run_ok(tmp.path(), &["run", spec.to_str().unwrap(), "-q"]);
    let kept = read_rows(&tmp.path().join("second"), "part-");
    let removed = read_rows(&tmp.path().join("second/excluded"), "");
    assert_eq!(kept.len(), 5, "{kept:?}");
    assert!(kept
        .iter()
        .all(|r| r["id"].starts_with("new-") && !r["id"].contains("copy")));
    assert_eq!(removed.len(), 5);
    for r in &removed {
        assert_eq!(
            r["drop_detail"], r["was"],
            "removed against the document it copies"
        );
    }

    let bad = second.replace(
        "op = \"dedup_minhash\"\n",
        "op = \"dedup_minhash\"\nngram = 4\n",
    );
    let spec = write_spec(tmp.path(), "bad.toml", &bad);
    let o = sluice(tmp.path(), &["run", spec.to_str().unwrap(), "-q"], &[]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("other settings"), "{}", stderr(&o));
}

/// Large groups of identical documents, and keep-by-column without
/// verification: exactly one copy stays.
#[test]
fn every_copy_of_a_large_group_goes_whatever_the_keep_order() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    let mut lines = String::new();
    for i in 0..100 {
        let score = (i * 37) % 100;
        lines.push_str(&format!(
            "{{\"id\": \"copy{i}\", \"text\": \"Page not found. The page you asked for does not exist here.\", \"score\": {score}}}\n"
        ));
    }
    for i in 0..3 {
        lines.push_str(&format!(
            "{{\"id\": \"other{i}\", \"text\": \"Something different number {i}, with its own words entirely.\", \"score\": 0}}\n"
        ));
    }
    std::fs::write(input.join("docs.jsonl"), lines).unwrap();
    for (name, extra) in [
        ("verified", "keep = \"score\"\n"),
        ("unverified", "keep = \"score\"\nverify_jaccard = false\n"),
        ("first", ""),
    ] {
        let out = tmp.path().join(name);
        let body = format!("[input]\npaths = [{input:?}]\n\n[[step]]\nop = \"dedup_minhash\"\n{extra}\n[output]\ndir = {out:?}\n");
        let spec = write_spec(tmp.path(), &format!("{name}.toml"), &body);
        run_ok(tmp.path(), &["run", spec.to_str().unwrap(), "-q"]);
        let kept = read_rows(&out, "part-");
        let copies: Vec<&str> = kept
            .iter()
            .map(|r| r["id"].as_str())
            .filter(|i| i.starts_with("copy"))
            .collect();
        assert_eq!(copies.len(), 1, "{name}: {copies:?}");
        if name != "first" {
            // The largest score (99) is copy 27 (27 * 37 = 999).
            assert_eq!(copies[0], "copy27", "{name}");
        } else {
            assert_eq!(copies[0], "copy0");
        }
        assert_eq!(kept.len(), 4, "{name}");
    }
}
