//! `cluster`: k-means on embeddings finds well-separated groups, whatever
//! the metric, the sample size or the number of workers, and says what is
//! wrong with a spec or data it cannot cluster.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use common::*;

const DIM: usize = 8;

/// 3 groups of 100 documents around three orthogonal directions, with a
/// little deterministic noise; ids `g<group>-<n>`.
fn blobs(path: &Path) {
    blobs_sized(path, [100, 100, 100]);
}

fn blobs_sized(path: &Path, sizes: [usize; 3]) {
    let mut state = 12345u64;
    let mut noise = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 33) as f64 / (1u64 << 31) as f64 - 0.5) * 0.2
    };
    let mut ids = vec![];
    let mut b = arrow::array::ListBuilder::new(arrow::array::Float64Builder::new());
    // Interleaved, so that every task and batch holds every group.
    for n in 0..*sizes.iter().max().unwrap() {
        for g in (0..3).filter(|g| n < sizes[*g]) {
            ids.push(format!("g{g}-{n}"));
            let v: Vec<f64> = (0..DIM)
                .map(|d| if d == g * 2 { 1.0 } else { 0.0 } + noise())
                .collect();
            b.values().append_slice(&v);
            b.append(true);
        }
    }
    let n = ids.len();
    let vec: ArrayRef = Arc::new(b.finish());
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, true),
        Field::new("text", DataType::Utf8, true),
        Field::new("vec", vec.data_type().clone(), true),
    ]));
    let texts: ArrayRef = Arc::new(StringArray::from(vec!["x"; n]));
    let ids: ArrayRef = Arc::new(StringArray::from(ids));
    write_batch(
        path,
        RecordBatch::try_new(schema, vec![ids, texts, vec]).unwrap(),
        64,
    );
}

fn run_cluster(dir: &Path, input: &Path, name: &str, cluster: &str, workers: &str) -> PathBuf {
    let out = dir.join(name);
    let body = format!(
        "[input]\npaths = [{input:?}]\nbatch_rows = 50\nmax_task_bytes = 2000\n\n[[step]]\nop = \"embed\"\ncolumn = \"vec\"\ndim = {DIM}\n\n[[step]]\nop = \"cluster\"\n{cluster}\n\n[output]\ndir = {out:?}\n"
    );
    let spec = write_spec(dir, &format!("{name}.toml"), &body);
    run_ok(
        dir,
        &["run", spec.to_str().unwrap(), "-q", "--workers", workers],
    );
    out
}

/// Group → the cluster ids its documents got.
fn groups(out: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut m: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in read_rows(out, "part-") {
        let g = r["id"].split('-').next().unwrap().to_string();
        m.entry(g).or_default().insert(r["cluster_id"].clone());
        let d: f32 = r["cluster_dist"].parse().unwrap();
        assert!((0.0..0.5).contains(&d), "{r:?}");
    }
    m
}

#[test]
fn k_means_finds_separated_groups_for_any_metric_sample_or_workers() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("blobs.parquet");
    blobs(&input);
    for (name, cluster) in [
        ("cos", "k = 3\nseed = 1"),
        ("l2", "k = 3\nmetric = \"l2\""),
        ("sampled", "k = 3\nfit_sample = 40\nseed = 9"),
        ("hnsw", "k = 3\nassign = \"hnsw\"\nhnsw_m = 4"),
        ("hnsw_l2", "k = 3\nmetric = \"l2\"\nassign = \"hnsw\""),
    ] {
        let out = run_cluster(tmp.path(), &input, name, cluster, "2");
        let g = groups(&out);
        assert_eq!(g.len(), 3);
        let ids: BTreeSet<&String> = g.values().flatten().collect();
        assert!(
            g.values().all(|s| s.len() == 1) && ids.len() == 3,
            "{name}: {g:?}"
        );
        assert_eq!(stats_json(&out)["kept"]["docs"], 300);
    }
    let a = run_cluster(tmp.path(), &input, "w1", "k = 3", "1");
    let b = run_cluster(tmp.path(), &input, "w2", "k = 3", "2");
    assert_eq!(shard_bytes(&a), shard_bytes(&b));
    let a = run_cluster(tmp.path(), &input, "h1", "k = 3\nassign = \"hnsw\"", "1");
    let b = run_cluster(tmp.path(), &input, "h2", "k = 3\nassign = \"hnsw\"", "2");
    assert_eq!(shard_bytes(&a), shard_bytes(&b));
}

/// With many centroids, the graph (`assign = "hnsw"`) puts documents where
/// comparing with every centroid does, and the same for any workers.
#[test]
fn hnsw_assignment_agrees_with_the_exact_one() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("blobs.parquet");
    blobs_sized(&input, [400, 300, 200]);
    let cluster = "k = 150\nfit_sample = 900\nmax_iter = 5";
    let ids = |out: &Path| -> Vec<(String, String)> {
        let mut v: Vec<_> = read_rows(out, "part-")
            .into_iter()
            .map(|r| (r["id"].clone(), r["cluster_id"].clone()))
            .collect();
        v.sort();
        v
    };
    let exact = ids(&run_cluster(
        tmp.path(),
        &input,
        "exact",
        &format!("{cluster}\nassign = \"exact\""),
        "2",
    ));
    let graph = ids(&run_cluster(
        tmp.path(),
        &input,
        "graph",
        &format!("{cluster}\nassign = \"auto\"\nhnsw_min_k = 100"),
        "2",
    ));
    assert_eq!(exact.len(), 900);
    let same = exact.iter().zip(&graph).filter(|(a, b)| a == b).count();
    assert!(same >= 891, "{same} of 900 agree");
}

#[test]
fn what_cannot_be_clustered_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("blobs.parquet");
    blobs(&input);
    let out = tmp.path().join("out");
    for (steps, want) in [
        (
            format!("[[step]]\nop = \"embed\"\ncolumn = \"vec\"\ndim = {DIM}\n\n[[step]]\nop = \"cluster\"\nk = 500\nfit_sample = 1000\n"),
            "k = 500 but only 300 documents have vectors",
        ),
        (
            "[[step]]\nop = \"cluster\"\nk = 3\n".to_string(),
            "put an `embed` step before `cluster`",
        ),
        (
            "[[step]]\nop = \"cluster\"\nk = 3\nmetric = \"manhattan\"\n".to_string(),
            "unknown metric `manhattan`",
        ),
        (
            "[[step]]\nop = \"cluster\"\nk = 30\nfit_sample = 10\n".to_string(),
            "must be at least k",
        ),
        (
            "[[step]]\nop = \"cluster\"\nk = 3\nassign = \"tree\"\n".to_string(),
            "unknown assign `tree`",
        ),
        (
            "[[step]]\nop = \"cluster\"\nk = 3\nhnsw_m = 1\n".to_string(),
            "`hnsw_m` must be between 2 and 256",
        ),
    ] {
        let body = format!("[input]\npaths = [{input:?}]\n\n{steps}\n[output]\ndir = {out:?}\n");
        let spec = write_spec(tmp.path(), "bad.toml", &body);
        let o = sluice(tmp.path(), &["run", spec.to_str().unwrap(), "-q", "--force"], &[]);
        assert!(!o.status.success(), "{want}");
        assert!(stderr(&o).contains(want), "want {want}: {}", stderr(&o));
    }
}

/// `cluster_sample` on groups of 200, 50 and 10: a cap of 20 keeps 20, 20
/// and 10; `inverse_power = 1` brings the big group near the median (50)
/// and keeps the others whole; the same documents for any worker count.
#[test]
fn cluster_sample_caps_and_balances() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("uneven.parquet");
    blobs_sized(&input, [200, 50, 10]);
    let kept_per_group = |name: &str, sample: &str, workers: &str| {
        let out = run_cluster(
            tmp.path(),
            &input,
            name,
            &format!("k = 3\n\n[[step]]\nop = \"cluster_sample\"\n{sample}"),
            workers,
        );
        let mut m: BTreeMap<String, usize> = BTreeMap::new();
        for r in read_rows(&out, "part-") {
            *m.entry(r["id"].split('-').next().unwrap().to_string())
                .or_default() += 1;
        }
        (m, stats_json(&out))
    };
    let (capped, stats) = kept_per_group("cap", "max_per_cluster = 20", "2");
    assert_eq!(capped["g0"], 20);
    assert_eq!(capped["g1"], 20);
    assert_eq!(capped["g2"], 10);
    assert_eq!(dropped(&stats, "cluster_sample:capped"), 210);
    let (again, _) = kept_per_group("cap1", "max_per_cluster = 20", "1");
    assert_eq!(capped, again);

    let (balanced, stats) = kept_per_group("inv", "inverse_power = 1.0", "2");
    assert!((30..=70).contains(&balanced["g0"]), "{balanced:?}");
    assert_eq!(balanced["g1"], 50);
    assert_eq!(balanced["g2"], 10);
    assert_eq!(
        dropped(&stats, "cluster_sample:sampled"),
        200 - balanced["g0"] as u64
    );
}

/// A vector holding NaN cannot be placed: the run stops naming the document.
#[test]
fn a_non_finite_vector_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("nan.parquet");
    let mut b = arrow::array::ListBuilder::new(arrow::array::Float64Builder::new());
    for v in [[1.0, 0.0], [0.0, 1.0], [f64::NAN, 1.0]] {
        b.values().append_slice(&v);
        b.append(true);
    }
    let vec: ArrayRef = Arc::new(b.finish());
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, true),
        Field::new("text", DataType::Utf8, true),
        Field::new("vec", vec.data_type().clone(), true),
    ]));
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(vec!["a", "b", "bad"])),
        Arc::new(StringArray::from(vec!["x"; 3])),
        vec,
    ];
    write_batch(&input, RecordBatch::try_new(schema, cols).unwrap(), 8);
    let out = tmp.path().join("out");
    let body = format!(
        "[input]\npaths = [{input:?}]\n\n[[step]]\nop = \"embed\"\ncolumn = \"vec\"\ndim = 2\n\n[[step]]\nop = \"cluster\"\nk = 2\n\n[output]\ndir = {out:?}\n"
    );
    let spec = write_spec(tmp.path(), "nan.toml", &body);
    let o = sluice(tmp.path(), &["run", spec.to_str().unwrap(), "-q"], &[]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("document `bad` has a non-finite value at position 0 of `embedding`"),
        "{}",
        stderr(&o)
    );
}
