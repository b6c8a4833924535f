//! `dedup_semantic`: near-duplicate vectors within a cluster go, each with
//! a kept near-duplicate named; distinct ones stay; the rank decides which
//! of a group stays.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use common::*;

const DIM: usize = 32;

/// 60 random directions (`b<n>-0`), each with 0-3 copies (`b<n>-<c>`)
/// nudged so that their cosine to the base is about 0.995; a `score`
/// column that prefers the last copy.
fn corpus(path: &Path) -> BTreeMap<String, usize> {
    corpus_sized(path, 60)
}

fn corpus_sized(path: &Path, bases: usize) -> BTreeMap<String, usize> {
    let mut state = 7u64;
    let mut rnd = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as f64 / (1u64 << 31) as f64 - 0.5
    };
    let (mut ids, mut scores) = (vec![], vec![]);
    let mut groups = BTreeMap::new();
    let mut b = arrow::array::ListBuilder::new(arrow::array::Float64Builder::new());
    for n in 0..bases {
        let base: Vec<f64> = (0..DIM).map(|_| rnd()).collect();
        let norm = base.iter().map(|x| x * x).sum::<f64>().sqrt();
        let copies = n % 4;
        groups.insert(format!("b{n}"), copies + 1);
        for c in 0..=copies {
            let v: Vec<f64> = base
                .iter()
                .map(|x| x / norm + if c == 0 { 0.0 } else { rnd() * 0.03 })
                .collect();
            b.values().append_slice(&v);
            b.append(true);
            ids.push(format!("b{n}-{c}"));
            scores.push(c as f64);
        }
    }
    let n = ids.len();
    let vec: ArrayRef = Arc::new(b.finish());
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, true),
        Field::new("text", DataType::Utf8, true),
        Field::new("score", DataType::Float64, true),
        Field::new("vec", vec.data_type().clone(), true),
    ]));
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(ids)),
        Arc::new(StringArray::from(vec!["x"; n])),
        Arc::new(Float64Array::from(scores)),
        vec,
    ];
    let rows = if bases > 100 { 1000 } else { 16 };
    write_batch(path, RecordBatch::try_new(schema, cols).unwrap(), rows);
    groups
}

fn run(dir: &Path, input: &Path, name: &str, dedup: &str, workers: &str) -> PathBuf {
    run_sized(dir, input, name, dedup, workers, 3000)
}

fn run_sized(
    dir: &Path,
    input: &Path,
    name: &str,
    dedup: &str,
    workers: &str,
    task_bytes: usize,
) -> PathBuf {
    let out = dir.join(name);
    let body = format!(
        "[input]\npaths = [{input:?}]\nbatch_rows = 20\nmax_task_bytes = {task_bytes}\n\n[[step]]\nop = \"embed\"\ncolumn = \"vec\"\ndim = {DIM}\n\n[[step]]\nop = \"cluster\"\nk = 4\n\n[[step]]\nop = \"dedup_semantic\"\n{dedup}\n\n[output]\ndir = {out:?}\n"
    );
    let spec = write_spec(dir, &format!("{name}.toml"), &body);
    run_ok(
        dir,
        &["run", spec.to_str().unwrap(), "-q", "--workers", workers],
    );
    out
}

#[test]
fn near_duplicates_go_with_their_kept_neighbour_named() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("vecs.parquet");
    let groups = corpus(&input);
    let total: usize = groups.values().sum();

    let out = run(
        tmp.path(),
        &input,
        "first",
        "eps = 0.05\nkeep = \"first\"",
        "2",
    );
    let kept = read_rows(&out, "part-");
    let excluded = read_rows(&out.join("excluded"), "");
    assert_eq!(kept.len() + excluded.len(), total);
    // One document per group stays: the base, first in input order.
    assert_eq!(kept.len(), groups.len(), "{kept:?}");
    assert!(kept.iter().all(|r| r["id"].ends_with("-0")));
    for r in &excluded {
        assert_eq!(r["drop_reason"], "dedup_semantic");
        let group = r["id"].split('-').next().unwrap();
        assert_eq!(r["drop_detail"], format!("{group}-0"), "{r:?}");
    }
    for r in &kept {
        let group = r["id"].split('-').next().unwrap();
        assert_eq!(r["dup_count"], groups[group].to_string());
    }

    // A column decides instead: the highest score (the last copy) stays.
    let out = run(tmp.path(), &input, "scored", "keep = \"score\"", "1");
    let kept = read_rows(&out, "part-");
    assert_eq!(kept.len(), groups.len());
    for r in &kept {
        let group = r["id"].split('-').next().unwrap();
        assert_eq!(r["id"], format!("{group}-{}", groups[group] - 1));
    }

    // A tiny eps: the nudged copies are not that close; all stay.
    let out = run(tmp.path(), &input, "strict", "eps = 0.0001", "2");
    assert_eq!(read_rows(&out, "part-").len(), total);

    // The same bytes for 1 and 2 workers.
    let a = run(tmp.path(), &input, "w1", "", "1");
    let b = run(tmp.path(), &input, "w2", "", "2");
    assert_eq!(shard_bytes(&a), shard_bytes(&b));
}

/// In clusters of ~900 documents, asking an HNSW graph for the nearest kept
/// document removes at least 99% of what comparing with every kept one
/// removes, never anything that is not a near-duplicate of a kept one, and
/// the same rows for any number of workers.
#[test]
fn hnsw_neighbours_find_what_the_exact_search_finds() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("vecs.parquet");
    let groups = corpus_sized(&input, 1500);
    let total: usize = groups.values().sum();
    let run = |name: &str, dedup: &str, workers: &str| {
        run_sized(tmp.path(), &input, name, dedup, workers, 200_000)
    };
    let removed = |out: &Path| -> BTreeMap<String, String> {
        read_rows(&out.join("excluded"), "")
            .into_iter()
            .map(|r| (r["id"].clone(), r["drop_detail"].clone()))
            .collect()
    };
    let exact = removed(&run("exact", "neighbours = \"exact\"", "2"));
    let out = run("graph", "neighbours = \"hnsw\"", "2");
    let graph = removed(&out);
    assert_eq!(read_rows(&out, "part-").len() + graph.len(), total);
    assert!(exact.len() > total / 2, "{} of {total}", exact.len());
    let found = graph.keys().filter(|id| exact.contains_key(*id)).count();
    assert!(
        found * 100 >= exact.len() * 99,
        "hnsw found {found} of the {} exact removals",
        exact.len()
    );
    // Every removal names a copy of the same base (the only near pairs).
    for (id, kept) in &graph {
        assert_eq!(
            id.split('-').next(),
            kept.split('-').next(),
            "{id} -> {kept}"
        );
    }
    let again = run("graph1", "neighbours = \"hnsw\"", "1");
    assert_eq!(shard_bytes(&out), shard_bytes(&again));
    // `auto` with a threshold above the cluster sizes is the exact search.
    let auto = removed(&run("auto", "hnsw_min_cluster = 100000", "2"));
    assert_eq!(auto, exact);
}

#[test]
fn it_needs_vectors_and_clusters() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("vecs.parquet");
    corpus(&input);
    let out = tmp.path().join("out");
    for (steps, want) in [
        (
            format!("[[step]]\nop = \"embed\"\ncolumn = \"vec\"\ndim = {DIM}\n\n[[step]]\nop = \"dedup_semantic\"\n"),
            "no `cluster_id` column",
        ),
        ("[[step]]\nop = \"dedup_semantic\"\neps = 3.0\n".to_string(), "`eps` must be between 0 and 2"),
        (
            "[[step]]\nop = \"dedup_semantic\"\nneighbours = \"lsh\"\n".to_string(),
            "unknown neighbours `lsh`",
        ),
        (
            "[[step]]\nop = \"dedup_semantic\"\nhnsw_ef = 0\n".to_string(),
            "`hnsw_ef` must be at least 1",
        ),
    ] {
        let body = format!("[input]\npaths = [{input:?}]\n\n{steps}\n[output]\ndir = {out:?}\n");
        let spec = write_spec(tmp.path(), "bad.toml", &body);
        let o = sluice(tmp.path(), &["run", spec.to_str().unwrap(), "-q", "--force"], &[]);
        assert!(!o.status.success(), "{want}");
        assert!(stderr(&o).contains(want), "want {want}: {}", stderr(&o));
    }
}
