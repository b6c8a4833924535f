//! `embed`: the static backend reproduces wordllama's reference vectors
//! (../shared), writes unit vectors to the shards the same for any number
//! of workers; vectors computed elsewhere are taken from a column, checked.

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, FixedSizeListArray, Float32Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use common::*;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use sluice::models::static_embed::StaticEmbedder;

fn wordllama() -> Option<PathBuf> {
    shared("models/wordllama-l2-256")
}

/// Every `embedding` of the shards in `dir`, by id.
fn embeddings(dir: &std::path::Path) -> Vec<(String, Vec<f32>)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    files.sort();
    let mut out = vec![];
    for f in files {
        for b in ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&f).unwrap())
            .unwrap()
            .build()
            .unwrap()
        {
            let b = b.unwrap();
            let ids = b.column_by_name("id").unwrap();
            let ids = arrow::compute::cast(ids, &DataType::Utf8).unwrap();
            let ids = ids.as_any().downcast_ref::<StringArray>().unwrap();
            let e = b
                .column_by_name("embedding")
                .unwrap()
                .as_any()
                .downcast_ref::<FixedSizeListArray>()
                .unwrap()
                .clone();
            for i in 0..b.num_rows() {
                let v = e.value(i);
                let v = v.as_any().downcast_ref::<Float32Array>().unwrap();
                out.push((ids.value(i).to_string(), v.values().to_vec()));
            }
        }
    }
    out
}

#[test]
fn static_backend_matches_wordllamas_reference_vectors() {
    let Some(dir) = wordllama() else { return };
    let m = StaticEmbedder::load(&dir).unwrap();
    assert_eq!(m.dim, 256);
    let reference: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("reference_embeddings.json")).unwrap())
            .unwrap();
    for item in reference["items"].as_array().unwrap() {
        let text = item["text"].as_str().unwrap();
        let want_ids: Vec<u32> = item["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        assert_eq!(m.ids(text).unwrap(), want_ids, "{text}");
        let want: Vec<f32> = item["embedding"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        let mut got = vec![0f32; 256];
        m.embed(text, &mut got).unwrap();
        let dot: f32 = got.iter().zip(&want).map(|(a, b)| a * b).sum();
        let nw: f32 = want.iter().map(|v| v * v).sum::<f32>().sqrt();
        let cos = dot / nw;
        assert!(cos >= 0.9999, "{text}: cosine {cos}");
        let max = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(max < 1e-5, "{text}: max difference {max}");
    }
}

/// The shortcut for Llama-2-style tokenizers (pieces cut at `▁` runs, see
/// `src/models/static_embed.rs`) gives the whole pipeline's ids on every
/// fixture text, the real data of ../shared, and texts made for the edges.
#[test]
fn piecewise_tokenizing_gives_the_pipelines_ids() {
    let Some(dir) = wordllama() else { return };
    let m = StaticEmbedder::load(&dir).unwrap();
    let q = repo().join("fixtures/quickstart");
    let mut texts: Vec<String> = vec![];
    for f in ["zh_news.parquet", "web_pages.parquet"] {
        texts.extend(read_parquet_column(&q.join(f), "text"));
    }
    let shared = shared("data/prose").expect("../shared/data/prose beside the model");
    for f in [
        "en_linux_kernel_docs.parquet",
        "zh_reviews.parquet",
        "en_abc_news.parquet",
    ] {
        texts.extend(
            read_parquet_column(&shared.join(f), "text")
                .into_iter()
                .take(500),
        );
    }
    texts.extend(
        [
            "  two leading spaces",
            "trailing  ",
            "a  b   c    d",
            "\ttab\nnew line\r\n",
            "<s> literal special </s> <unk>",
            "emoji 👩‍👩‍👧 e\u{301} 中文",
            "▁already▁marked",
            "    indented code()",
            " ",
            "x",
        ]
        .map(String::from),
    );
    for t in &texts {
        assert_eq!(
            m.ids(t).unwrap(),
            m.ids_whole(t).unwrap(),
            "{:?}",
            &t.chars().take(60).collect::<String>()
        );
    }
}

#[test]
fn the_embed_step_writes_unit_vectors_whatever_the_workers() {
    let Some(model) = wordllama() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let q = repo().join("fixtures/quickstart");
    let run = |name: &str, workers: &str| {
        let out = tmp.path().join(name);
        let body = format!(
            "[input]\npaths = [{:?}]\n\n[[step]]\nop = \"embed\"\nbackend = \"static\"\nmodel = {model:?}\n\n[output]\ndir = {out:?}\n",
            q
        );
        let spec = write_spec(tmp.path(), &format!("{name}.toml"), &body);
        run_ok(
            tmp.path(),
            &["run", spec.to_str().unwrap(), "-q", "--workers", workers],
        );
        out
    };
    let a = run("a", "1");
    let vecs = embeddings(&a);
    assert_eq!(vecs.len(), 1370);
    for (id, v) in &vecs {
        assert_eq!(v.len(), 256);
        let n: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((n - 1.0).abs() < 1e-4, "{id}: norm {n}");
    }
    let b = run("b", "2");
    assert_eq!(shard_bytes(&a), shard_bytes(&b));
}

#[test]
fn vectors_from_a_column_are_checked_and_copied() {
    let tmp = tempfile::tempdir().unwrap();
    let write = |name: &str, vecs: Vec<Option<Vec<f64>>>| -> PathBuf {
        let n = vecs.len();
        let ids: ArrayRef = Arc::new(StringArray::from(
            (0..n).map(|i| format!("d{i}")).collect::<Vec<_>>(),
        ));
        let texts: ArrayRef = Arc::new(StringArray::from(
            (0..n).map(|i| format!("text {i}")).collect::<Vec<_>>(),
        ));
        let mut b = arrow::array::ListBuilder::new(arrow::array::Float64Builder::new());
        for v in &vecs {
            match v {
                Some(v) => {
                    b.values().append_slice(v);
                    b.append(true);
                }
                None => b.append(false),
            }
        }
        let vec: ArrayRef = Arc::new(b.finish());
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Utf8, true),
            Field::new("text", DataType::Utf8, true),
            Field::new("vec", vec.data_type().clone(), true),
        ]));
        let p = tmp.path().join(format!("{name}.parquet"));
        write_batch(
            &p,
            RecordBatch::try_new(schema, vec![ids, texts, vec]).unwrap(),
            100,
        );
        p
    };
    let spec = |input: &PathBuf, name: &str, dim: usize| {
        let out = tmp.path().join(name);
        let body = format!(
            "[input]\npaths = [{input:?}]\n\n[[step]]\nop = \"embed\"\ncolumn = \"vec\"\ndim = {dim}\n\n[output]\ndir = {out:?}\n"
        );
        (write_spec(tmp.path(), &format!("{name}.toml"), &body), out)
    };
    let good = write(
        "good",
        vec![Some(vec![1.0, 0.0, 0.5]), None, Some(vec![0.0, 2.0, 0.25])],
    );
    let (s, out) = spec(&good, "good-out", 3);
    run_ok(tmp.path(), &["run", s.to_str().unwrap(), "-q"]);
    let vecs = embeddings(&out);
    assert_eq!(
        vecs,
        vec![
            ("d0".to_string(), vec![1.0, 0.0, 0.5]),
            ("d2".to_string(), vec![0.0, 2.0, 0.25])
        ]
    );
    assert_eq!(dropped(&stats_json(&out), "embed:no_vector"), 1);

    let ragged = write("ragged", vec![Some(vec![1.0, 0.0]), Some(vec![1.0])]);
    let (s, _) = spec(&ragged, "ragged-out", 2);
    let o = sluice(tmp.path(), &["run", s.to_str().unwrap(), "-q"], &[]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("document d1 has 1 numbers, not `dim` = 2"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn model_mistakes_are_named_before_any_data_is_read() {
    let tmp = tempfile::tempdir().unwrap();
    for (step, want) in [
        ("model = \"no/such/folder\"", "is not a folder"),
        (
            "backend = \"bert\"\nmodel = \".\"",
            "unknown backend `bert`",
        ),
        ("backend = \"static\"", "needs `model`"),
        (
            "backend = \"transformer\"\nmodel = \".\"",
            "has no config.json",
        ),
        ("model = \".\"\ncolumn = \"v\"", "not both"),
        ("column = \"v\"", "set `dim`"),
    ] {
        let body = format!(
            "[input]\npaths = [\"no/such/input.parquet\"]\n\n[[step]]\nop = \"embed\"\n{step}\n\n[output]\ndir = \"out\"\n"
        );
        let spec = write_spec(tmp.path(), "bad.toml", &body);
        let o = sluice(tmp.path(), &["run", spec.to_str().unwrap(), "-q"], &[]);
        assert!(!o.status.success());
        assert!(stderr(&o).contains(want), "want {want}: {}", stderr(&o));
    }
}

/// The transformer backend (candle) against all-MiniLM-L6-v2's reference
/// vectors (../shared: 64 texts, English, Chinese, empty, emoji, long ones
/// that hit the 256-token truncation): the same token ids, cosine at least
/// 0.999 per text, embedded in batches of 8 (so padding and the length
/// sort are exercised).
#[test]
fn transformer_backend_matches_minilm_reference_vectors() {
    let Some(dir) = shared("models/all-MiniLM-L6-v2") else {
        return;
    };
    let m = sluice::models::transformer_embed::TransformerEmbedder::load(&dir, 8).unwrap();
    assert_eq!((m.dim, m.max_len), (384, 256));
    let reference: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("reference_embeddings.json")).unwrap())
            .unwrap();
    let parse = |v: &serde_json::Value| -> serde_json::Value {
        match v {
            serde_json::Value::String(s) => serde_json::from_str(s).unwrap(),
            other => other.clone(),
        }
    };
    let items = reference["items"].as_array().unwrap();
    let texts: Vec<&str> = items.iter().map(|i| i["text"].as_str().unwrap()).collect();
    let got = m.embed(&texts).unwrap();
    let mut worst = 1f32;
    for (item, v) in items.iter().zip(&got) {
        let text = item["text"].as_str().unwrap();
        let ids: Vec<u32> = parse(&item["ids"])
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as u32)
            .collect();
        assert_eq!(m.ids(text).unwrap(), ids, "{text:?}");
        let want: Vec<f32> = parse(&item["embedding"])
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect();
        let cos: f32 = v.iter().zip(&want).map(|(a, b)| a * b).sum::<f32>()
            / want.iter().map(|x| x * x).sum::<f32>().sqrt();
        worst = worst.min(cos);
        assert!(cos >= 0.999, "{text:?}: cosine {cos}");
    }
    eprintln!(
        "MiniLM: lowest cosine to the reference {worst:.6} over {} texts",
        items.len()
    );
    // Forward passes run in parallel: one thread gives the same bits.
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap()
        .install(|| m.embed(&texts).unwrap());
    assert!(one == got, "the vectors depend on the thread count");
}
