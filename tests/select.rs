//! `select` through the engine: the rows it keeps, its drop reason in
//! stats.json and excluded/, and a mistake named before any row is lost.

mod common;

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use common::*;

#[test]
fn select_keeps_the_rows_its_expression_is_true_for() {
    let dir = tempfile::tempdir().unwrap();
    let ids = ["a", "b", "c", "d", "e"];
    let langs = [Some("en"), Some("zh"), Some("en"), None, Some("en")];
    let scores = [0.9, 0.95, 0.1, 0.99, 0.5];
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(ids.to_vec())),
        Arc::new(StringArray::from(vec!["some text"; 5])),
        Arc::new(StringArray::from(langs.to_vec())),
        Arc::new(Float64Array::from(scores.to_vec())),
    ];
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("text", DataType::Utf8, false),
        Field::new("lang", DataType::Utf8, true),
        Field::new("quality_score", DataType::Float64, false),
    ]));
    write_batch(
        &dir.path().join("in/docs.parquet"),
        RecordBatch::try_new(schema, cols).unwrap(),
        2,
    );
    write_spec(
        dir.path(),
        "spec.toml",
        "[input]\npaths = [\"in\"]\n[output]\ndir = \"out\"\n\
         [[step]]\nop = \"select\"\nexpr = \"lang == 'en' and quality_score > 0.2\"\nreason = \"low_quality\"\n",
    );
    run_ok(dir.path(), &["run", "spec.toml", "-q"]);
    let kept: Vec<String> = read_rows(&dir.path().join("out"), "")
        .into_iter()
        .map(|r| r["id"].clone())
        .collect();
    assert_eq!(kept, ["a", "e"]);
    let stats = stats_json(&dir.path().join("out"));
    assert_eq!(dropped(&stats, "select:low_quality"), 3);
    let excluded = read_rows(&dir.path().join("out/excluded"), "");
    assert_eq!(excluded.len(), 3);

    // A column that is not there: an error naming it, nothing written.
    write_spec(
        dir.path(),
        "bad.toml",
        "[input]\npaths = [\"in\"]\n[output]\ndir = \"out-bad\"\n\
         [[step]]\nop = \"select\"\nexpr = \"langu == 'en'\"\n",
    );
    let o = sluice(dir.path(), &["run", "bad.toml", "-q"], &[]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("no column `langu`") && !err.contains("panicked"),
        "{err}"
    );
    // An expression polars cannot read: named at the key, before any task.
    write_spec(
        dir.path(),
        "bad2.toml",
        "[input]\npaths = [\"in\"]\n[output]\ndir = \"out-bad2\"\n\
         [[step]]\nop = \"select\"\nexpr = \"lang == \"\n",
    );
    let err = stderr(&sluice(dir.path(), &["run", "bad2.toml", "-q"], &[]));
    assert!(
        err.contains("expr") && err.contains("is not an expression"),
        "{err}"
    );
}
