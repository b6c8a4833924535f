//! The `lang` op through the binary: the real lid.176 model reproduces the
//! reference predictions, both backends write the same codes, and `keep` /
//! `min_score` drop with precise reasons.

mod common;

use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use common::*;

fn model() -> std::path::PathBuf {
    repo().join("fixtures/models/lid.176.ftz")
}

fn reference() -> serde_json::Value {
    serde_json::from_slice(
        &std::fs::read(repo().join("fixtures/models/lid176_reference_predictions.json")).unwrap(),
    )
    .unwrap()
}

fn write_texts(path: &Path, texts: &[String]) {
    let ids: ArrayRef = Arc::new(StringArray::from_iter_values(
        (0..texts.len()).map(|i| format!("t{i:02}")),
    ));
    let col: ArrayRef = Arc::new(StringArray::from_iter_values(texts.iter()));
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("text", DataType::Utf8, false),
    ]));
    write_batch(
        path,
        RecordBatch::try_new(schema, vec![ids, col]).unwrap(),
        100,
    );
}

fn run_lang(
    dir: &Path,
    texts: &[String],
    step: &str,
) -> (
    Vec<std::collections::BTreeMap<String, String>>,
    serde_json::Value,
) {
    let input = dir.join("in.parquet");
    write_texts(&input, texts);
    let out = dir.join("out");
    let body = format!("[input]\npaths = [{input:?}]\n\n[[step]]\nop = \"lang\"\n{step}\n[output]\ndir = {out:?}\n");
    let spec = write_spec(dir, "lang.toml", &body);
    run_ok(dir, &["run", spec.to_str().unwrap(), "-q", "--force"]);
    (read_rows(&out, "part-"), stats_json(&out))
}

#[test]
fn fasttext_reproduces_the_reference_predictions() {
    let tmp = tempfile::tempdir().unwrap();
    let reference = reference();
    let items = reference["items"].as_array().unwrap();
    let texts: Vec<String> = items
        .iter()
        .map(|i| i["text"].as_str().unwrap().to_string())
        .collect();
    let step = format!("backend = \"fasttext\"\nmodel = {:?}\n", model());
    let (rows, _) = run_lang(tmp.path(), &texts, &step);
    assert_eq!(rows.len(), items.len());
    for (row, item) in rows.iter().zip(items) {
        let (label, prob) = (
            item["top3"][0][0].as_str().unwrap(),
            item["top3"][0][1].as_f64().unwrap(),
        );
        assert_eq!(row["lang"], label, "{}", item["text"]);
        let ours: f64 = row["lang_score"].parse().unwrap();
        assert!(
            (ours - prob).abs() <= 0.005,
            "{}: {ours} vs {prob}",
            item["text"]
        );
        assert_eq!(
            row["text"],
            item["text"].as_str().unwrap(),
            "the stored text is unchanged"
        );
    }
}

#[test]
fn both_backends_write_the_same_codes_and_filter_with_reasons() {
    let tmp = tempfile::tempdir().unwrap();
    let texts: Vec<String> = reference()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["text"].as_str().unwrap().to_string())
        .collect();
    let expected: Vec<String> = reference()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["lang"].as_str().unwrap().to_string())
        .collect();
    let (rows, _) = run_lang(tmp.path(), &texts, "backend = \"whatlang\"\n");
    let codes: Vec<&str> = rows.iter().map(|r| r["lang"].as_str()).collect();
    let agree = codes
        .iter()
        .zip(&expected)
        .filter(|(a, b)| **a == b.as_str())
        .count();
    assert!(
        agree >= expected.len() - 1,
        "whatlang codes {codes:?} vs {expected:?}"
    );

    let step = format!(
        "backend = \"fasttext\"\nmodel = {:?}\nkeep = [\"en\", \"zh\"]\nmin_score = 0.9\n",
        model()
    );
    let (rows, stats) = run_lang(tmp.path(), &texts, &step);
    assert!(rows.iter().all(|r| r["lang"] == "en" || r["lang"] == "zh"));
    assert!(!rows.is_empty());
    assert!(
        dropped(&stats, "lang:de") == 1 && dropped(&stats, "lang:fr") == 1,
        "{stats:#}"
    );
    let kept_and_dropped: u64 = stats["dropped"]
        .as_object()
        .unwrap()
        .values()
        .map(|c| c["docs"].as_u64().unwrap())
        .sum::<u64>()
        + rows.len() as u64;
    assert_eq!(kept_and_dropped, texts.len() as u64);
}

/// `min_score` per language: a named language's threshold, `"*"` for the
/// others, and no threshold for languages the table leaves out.
#[test]
fn min_score_can_be_set_per_language() {
    type Row = std::collections::BTreeMap<String, String>;
    let tmp = tempfile::tempdir().unwrap();
    // Each reference text whole and cut to its first words: the cut ones
    // score lower, so a language has documents on both sides of a cut.
    let mut texts: Vec<String> = vec![];
    for i in reference()["items"].as_array().unwrap() {
        let t = i["text"].as_str().unwrap();
        texts.push(t.to_string());
        texts.push(t.chars().take(12).collect());
    }
    let base = format!("backend = \"fasttext\"\nmodel = {:?}\n", model());
    let (all, _) = run_lang(tmp.path(), &texts, &base);
    let score = |r: &Row| -> f32 { r["lang_score"].parse().unwrap() };
    // The language with the most documents, and a threshold between its
    // lowest and highest score: some of its documents go, the rest stay.
    let mut by_lang: std::collections::BTreeMap<&str, Vec<f32>> = Default::default();
    for r in &all {
        by_lang
            .entry(r["lang"].as_str())
            .or_default()
            .push(score(r));
    }
    let (lang, scores) = by_lang.iter().max_by_key(|(_, v)| v.len()).unwrap();
    let lang = lang.to_string();
    let (lo, hi) = scores
        .iter()
        .fold((1f32, 0f32), |(lo, hi), s| (lo.min(*s), hi.max(*s)));
    assert!(lo < hi, "{lang}: {scores:?}");
    let cut = (lo + hi) / 2.0;
    let below = scores.iter().filter(|s| **s < cut).count();
    let others: Vec<&Row> = all.iter().filter(|r| r["lang"] != lang).collect();
    let lowest_other = others.iter().map(|r| score(r)).fold(1f32, f32::min);

    let (rows, stats) = run_lang(
        tmp.path(),
        &texts,
        &format!("{base}min_score = {{ {lang} = {cut} }}\n"),
    );
    assert_eq!(dropped(&stats, "lang:low_score"), below as u64, "{stats:#}");
    assert_eq!(rows.len(), all.len() - below);
    assert!(rows.iter().all(|r| r["lang"] != lang || score(r) >= cut));

    // "*" covers the others.
    let star = (lowest_other + 1.0) / 2.0;
    let step = format!("{base}min_score = {{ {lang} = {cut}, \"*\" = {star} }}\n");
    let (rows, _) = run_lang(tmp.path(), &texts, &step);
    let others_left = rows.iter().filter(|r| r["lang"] != lang).count();
    let others_above = others.iter().filter(|r| score(r) >= star).count();
    assert_eq!(others_left, others_above);
    assert!(others_left < others.len());

    // A threshold out of range is named with its language.
    let input = tmp.path().join("in.parquet");
    let body = format!(
        "[input]\npaths = [{input:?}]\n\n[[step]]\nop = \"lang\"\nmin_score = {{ en = 0.5, zh = 1.5 }}\n\n[output]\ndir = \"out\"\n"
    );
    let spec = write_spec(tmp.path(), "bad.toml", &body);
    let o = sluice(tmp.path(), &["run", spec.to_str().unwrap(), "-q"], &[]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("min_score for `zh` must be between 0 and 1"),
        "{}",
        stderr(&o)
    );
    let spec = write_spec(
        tmp.path(),
        "bad.toml",
        &body.replace("{ en = 0.5, zh = 1.5 }", "\"high\""),
    );
    let o = sluice(tmp.path(), &["run", spec.to_str().unwrap(), "-q"], &[]);
    assert!(
        stderr(&o).contains("bad.toml:6") && stderr(&o).contains("a table of language = number"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_bad_model_path_is_an_error_naming_the_key_and_file() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in.parquet");
    write_texts(&input, &["hello world".to_string()]);
    for (model, expect) in [
        ("missing.ftz", "cannot read the model"),
        ("in.parquet", "is not a fastText model"),
    ] {
        let body = format!(
            "[input]\npaths = [{input:?}]\n\n[[step]]\nop = \"lang\"\nbackend = \"fasttext\"\nmodel = {:?}\n\n[output]\ndir = \"out\"\n",
            tmp.path().join(model)
        );
        let spec = write_spec(tmp.path(), "bad.toml", &body);
        let o = sluice(tmp.path(), &["run", spec.to_str().unwrap(), "-q"], &[]);
        let e = stderr(&o);
        assert!(!o.status.success());
        assert!(
            e.contains("bad.toml:7") && e.contains(expect) && e.contains(model),
            "{e}"
        );
    }
}

/// The Rust reader of fastText models against the C++ library itself, on
/// the reference texts (top 3) and on thousands of real paragraphs and
/// sentences in 75 languages (../shared): same labels, same probabilities.
#[test]
fn rust_fasttext_matches_the_cpp_library() {
    let ours = sluice::models::fasttext::FastTextModel::load(&model()).unwrap();
    let mut cpp = fasttext::FastText::new();
    cpp.load_model(model().to_str().unwrap()).unwrap();
    let reference = reference();
    for item in reference["items"].as_array().unwrap() {
        let text = item["text"].as_str().unwrap();
        let got = ours.predict(text, 3, 0.0);
        let want = item["top3"].as_array().unwrap();
        assert_eq!(got.len(), 3);
        for ((label, p), w) in got.iter().zip(want) {
            assert_eq!(label, w[0].as_str().unwrap(), "{text}");
            assert!(
                (*p as f64 - w[1].as_f64().unwrap()).abs() <= 0.002,
                "{text}: {p} vs {w}"
            );
        }
    }
    let mut texts: Vec<String> = vec![
        String::new(),
        "   ".into(),
        "__label__en looks like a label".into(),
        "emoji 🎉🎉 and \u{0} NUL \t tabs".into(),
        "数字 123 and mixed 中文 text".into(),
    ];
    if let Some(shared) =
        shared("data/lid/lingua_paragraphs.parquet").map(|p| p.parent().unwrap().to_path_buf())
    {
        for (file, every) in [
            ("lingua_paragraphs.parquet", 5),
            ("lingua_sentences.parquet", 10),
        ] {
            let rows = read_parquet_column(&shared.join(file), "text");
            texts.extend(rows.into_iter().step_by(every));
        }
    }
    let mut compared = 0;
    for text in &texts {
        // What the C++ reads as one line, with the end-of-line token that
        // fastText's Python `predict` adds.
        let line: String = text
            .chars()
            .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
            .filter(|c| *c != '\0')
            .collect();
        let want = cpp.predict(&format!("{line}\n"), 2, 0.0).unwrap();
        let got = ours.predict(text, 2, 0.0);
        assert_eq!(got.len(), want.len(), "{text}");
        for ((label, p), w) in got.iter().zip(&want) {
            let wl = w.label.strip_prefix("__label__").unwrap();
            assert!(
                label == wl || (p - w.prob).abs() < 1e-4,
                "{text:?}: {label} vs {wl}"
            );
            assert!((p - w.prob).abs() < 1e-4, "{text:?}: {p} vs {}", w.prob);
        }
        compared += 1;
    }
    eprintln!("rust fastText = C++ fastText on {compared} texts");
    assert!(compared >= 5);
}
