//! Faults an adversarial probe found (issue 18), each with the behaviour a
//! user relies on: no wrong value, no silent loss, no panic, no hang; the
//! errors name the file, row or path. Also replays every input the fuzz
//! targets found a fault with (`fuzz/regressions/`), and their seeds.

mod common;

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use common::*;

fn spec_over(dir: &Path, paths: &[&Path], out: &Path, input: &str, steps: &str) -> PathBuf {
    let list: Vec<String> = paths.iter().map(|p| format!("{p:?}")).collect();
    let body = format!(
        "[input]\npaths = [{}]\n{input}\n{steps}\n[output]\ndir = {out:?}\n",
        list.join(", ")
    );
    write_spec(dir, "spec.toml", &body)
}

/// Fails on a panic, a crash by signal, or a hang's kill.
fn no_panic(o: &std::process::Output) {
    let e = stderr(o);
    assert!(!e.contains("panicked"), "sluice panicked:\n{e}");
    assert_ne!(o.status.code(), Some(101), "exit 101 (a panic):\n{e}");
    assert!(o.status.code().is_some(), "killed by a signal:\n{e}");
}

fn fails_with(o: &std::process::Output, needles: &[&str]) {
    no_panic(o);
    assert!(!o.status.success(), "expected a failure:\n{}", stdout(o));
    let e = stderr(o);
    for n in needles {
        assert!(e.contains(n), "`{n}` not in:\n{e}");
    }
}

/// Starts `sluice run spec` held at `pause` (`SLUICE_TEST_PAUSE`), and
/// returns it once the task is held, with the rest of its stderr to read.
fn paused_run(
    dir: &Path,
    spec: &Path,
    pause: &str,
    args: &[&str],
) -> (
    std::process::Child,
    std::io::BufReader<std::process::ChildStderr>,
) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["run", spec.to_str().unwrap(), "-q"])
        .args(args)
        .current_dir(dir)
        .env("SLUICE_TEST_PAUSE", pause)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut said = String::new();
    while !said.contains("SLUICE_TEST_PAUSE") {
        let mut l = String::new();
        assert!(err.read_line(&mut l).unwrap() > 0, "never held: {said}");
        said.push_str(&l);
    }
    (child, err)
}

fn jsonl_lines(n: usize, f: impl Fn(usize) -> String) -> String {
    (0..n).map(|i| f(i) + "\n").collect()
}

// 1 and 12: a value its column cannot hold is never changed. A number an
// integer column cannot hold widens it to floats (the task is read again);
// what a float cannot hold exactly, or a string that is no integer, drops
// the row, and excluded/ keeps the line as it was written.
#[test]
fn a_fraction_after_integers_widens_the_column_and_nothing_is_truncated() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("n.jsonl");
    let mut body = jsonl_lines(1000, |i| {
        format!("{{\"id\": \"d{i}\", \"text\": \"document {i}\", \"n\": {i}}}")
    });
    body.push_str("{\"id\": \"whole\", \"text\": \"a whole float\", \"n\": 7.0}\n");
    body.push_str("{\"n\": 0.5, \"id\": \"half\", \"text\": \"a half\"}\n");
    body.push_str(
        "{\"id\": \"big\", \"text\": \"two to the 70\", \"n\": 1180591620717411303424}\n",
    );
    body.push_str("{\"id\": \"past\", \"text\": \"past 2^53\", \"n\": 9007199254740993}\n");
    let other = tmp.path().join("ints.jsonl");
    std::fs::write(&input, &body).unwrap();
    // A file without fractions keeps its integers, and a string that is not
    // an integer is dropped there.
    let mut ints = jsonl_lines(1000, |i| format!("{{\"text\": \"int {i}\", \"n\": {i}}}"));
    ints.push_str("{\"text\": \"a string\", \"n\": \"2.5\"}\n");
    std::fs::write(&other, &ints).unwrap();
    let out = tmp.path().join("out");
    let spec = spec_over(tmp.path(), &[&input, &other], &out, "", "");
    let o = run_ok(
        tmp.path(),
        &["run", spec.to_str().unwrap(), "-q", "--workers", "1"],
    );
    no_panic(&o);
    assert!(stderr(&o).contains("`n` as floats"), "{}", stderr(&o));
    let stats = stats_json(&out);
    assert_eq!(stats["kept"]["docs"], 2003, "{stats}");
    assert_eq!(dropped(&stats, "read:invalid_json"), 2);
    // Inputs in name order: task 0 is ints.jsonl, task 1 n.jsonl.
    let column_type = |shard: &str| {
        let f = std::fs::File::open(out.join(shard)).unwrap();
        let b = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f).unwrap();
        b.schema().field_with_name("n").unwrap().data_type().clone()
    };
    assert_eq!(column_type("part-00001-0000.parquet"), DataType::Float64);
    assert_eq!(
        column_type("part-00000-0000.parquet"),
        DataType::Int64,
        "integers stay"
    );
    let kept = read_rows(&out, "part-00001");
    let n_of = |id: &str| {
        kept.iter()
            .find(|r| r["id"] == id)
            .map(|r| r["n"].parse::<f64>().unwrap())
    };
    assert_eq!(n_of("half"), Some(0.5), "0.5 must not become 0");
    assert_eq!(n_of("d5"), Some(5.0));
    assert_eq!(n_of("whole"), Some(7.0));
    assert_eq!(n_of("big"), Some(1180591620717411303424.0));
    let ex = read_rows(&out.join("excluded"), "");
    let past = ex.iter().find(|r| r["text"].contains("past 2^53")).unwrap();
    assert_eq!(
        past["text"], "{\"id\": \"past\", \"text\": \"past 2^53\", \"n\": 9007199254740993}",
        "the line as written"
    );
    assert!(past["drop_detail"].contains("n.jsonl:1004"), "{past:?}");
    assert!(past["drop_detail"].contains("would round it"), "{past:?}");
    let s = ex.iter().find(|r| r["text"].contains("a string")).unwrap();
    assert!(s["drop_detail"].contains("ints.jsonl:1001"), "{s:?}");
    // The same bytes however many workers (and however often a task ran).
    let out2 = tmp.path().join("out2");
    let spec2 = spec_over(tmp.path(), &[&input, &other], &out2, "", "");
    run_ok(
        tmp.path(),
        &["run", spec2.to_str().unwrap(), "-q", "--workers", "2"],
    );
    assert_eq!(shard_bytes(&out), shard_bytes(&out2));
}

// 12: the bytes of a line that is not UTF-8 can be recovered; a null text
// says where it was.
#[test]
fn excluded_keeps_the_bytes_of_invalid_utf8_and_places_null_texts() {
    use base64::Engine as _;
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("bytes.jsonl");
    let bad: &[u8] = b"{\"id\": \"x\", \"text\": \"caf\xe9 latin-1\"}";
    let mut body = b"{\"id\": \"a\", \"text\": \"fine\"}\n".to_vec();
    body.extend_from_slice(bad);
    body.extend_from_slice(b"\n{\"id\": \"n\", \"text\": null}\n");
    std::fs::write(&input, &body).unwrap();
    let out = tmp.path().join("out");
    let spec = spec_over(tmp.path(), &[&input], &out, "", "");
    run_ok(tmp.path(), &["run", spec.to_str().unwrap(), "-q"]);
    let ex = read_rows(&out.join("excluded"), "");
    let utf = ex
        .iter()
        .find(|r| r["drop_reason"] == "read:invalid_utf8")
        .unwrap();
    let b64 = utf["drop_detail"].rsplit("base64: ").next().unwrap();
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .unwrap();
    assert_eq!(decoded, bad, "{utf:?}");
    let null = ex
        .iter()
        .find(|r| r["drop_reason"] == "read:null_text")
        .unwrap();
    assert!(null["drop_detail"].contains("bytes.jsonl"), "{null:?}");
}

// 2: a file rewritten while the run reads it fails the run, naming it.
#[test]
fn an_input_rewritten_during_the_run_fails_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("j7.jsonl");
    let line = |i: usize| format!("{{\"id\": \"d{i}\", \"text\": \"document number {i} here\"}}");
    std::fs::write(&input, jsonl_lines(2000, line)).unwrap();
    let out = tmp.path().join("out");
    let spec = spec_over(
        tmp.path(),
        &[&input],
        &out,
        "max_task_bytes = 20000\nbatch_rows = 100",
        "",
    );
    let (mut child, mut err) = paused_run(tmp.path(), &spec, "s0/0@3", &["--workers", "1"]);
    // Shorter, while task 0 holds: the tasks planned past its end read less.
    std::fs::write(&input, jsonl_lines(1500, line)).unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "a changed input must not end in success:\n{rest}"
    );
    assert!(
        rest.contains("j7.jsonl changed during the run"),
        "the file is named:\n{rest}"
    );
    assert!(!rest.contains("panicked"), "{rest}");
    assert!(
        !out.join("stats.json").exists(),
        "no stats for a run that failed"
    );
}

// 5: a Parquet file rewritten under its reader: a task error, not a panic.
#[test]
fn a_parquet_file_rewritten_mid_task_is_a_task_error_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("p.parquet");
    let docs: Vec<(String, String)> = (0..3000)
        .map(|i| {
            (
                format!("d{i}"),
                format!("document {i} with some words in it"),
            )
        })
        .collect();
    let refs: Vec<(&str, Option<&str>)> = docs
        .iter()
        .map(|(i, t)| (i.as_str(), Some(t.as_str())))
        .collect();
    write_docs(&input, &refs, 100);
    let out = tmp.path().join("out");
    let spec = spec_over(tmp.path(), &[&input], &out, "batch_rows = 100", "");
    let (mut child, mut err) = paused_run(tmp.path(), &spec, "s0/0@3", &["--workers", "1"]);
    // Another file in its place: fewer rows, other row groups.
    write_docs(&input, &refs[..150], 7);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(1),
        "a failed task, not a crash:\n{rest}"
    );
    assert!(rest.contains("p.parquet"), "{rest}");
    assert!(rest.contains("changed during the run"), "{rest}");
}

// 5: any panic in a task fails that task with its message; the run reports
// it as an internal error and exits 1, the other tasks' work kept.
#[test]
fn a_panic_in_a_task_fails_the_task_not_the_process() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("in/a.jsonl");
    std::fs::create_dir_all(a.parent().unwrap()).unwrap();
    std::fs::write(&a, jsonl_lines(10, |i| format!("{{\"text\": \"a{i}\"}}"))).unwrap();
    std::fs::write(
        tmp.path().join("in/b.jsonl"),
        jsonl_lines(10, |i| format!("{{\"text\": \"b{i}\"}}")),
    )
    .unwrap();
    let out = tmp.path().join("out");
    let spec = spec_over(tmp.path(), &[&tmp.path().join("in")], &out, "", "");
    let o = sluice(
        tmp.path(),
        &["run", spec.to_str().unwrap(), "-q"],
        &[("SLUICE_TEST_PANIC", "s0/1")],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains("internal error"), "{e}");
    assert!(e.contains("b.jsonl"), "the task's file is named: {e}");
    assert!(e.contains("1 of 2 tasks"), "{e}");
    // The rerun redoes only the failed task.
    run_ok(tmp.path(), &["run", spec.to_str().unwrap(), "-q"]);
    assert_eq!(stats_json(&out)["kept"]["docs"], 20);
}

// 3: a name that is not UTF-8 is refused by name, never skipped.
#[test]
fn non_utf8_file_and_folder_names_are_named_not_skipped() {
    use std::os::unix::ffi::OsStrExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("in");
    std::fs::create_dir_all(&dir).unwrap();
    let docs = [("a", Some("one document"))];
    write_docs(&dir.join("good.parquet"), &docs, 10);
    let bad = dir.join(std::ffi::OsStr::from_bytes(b"bad\xfefile.parquet"));
    write_docs(&bad, &docs, 10);
    let out = tmp.path().join("out");
    for pattern in [dir.clone(), dir.join("*.parquet")] {
        let spec = spec_over(tmp.path(), &[&pattern], &out, "", "");
        let o = sluice(tmp.path(), &["run", spec.to_str().unwrap(), "-q"], &[]);
        fails_with(&o, &["not valid UTF-8", "bad\\xFEfile.parquet"]);
    }
    std::fs::remove_file(&bad).unwrap();
    let sub = dir.join(std::ffi::OsStr::from_bytes(b"sub\xff"));
    write_docs(&sub.join("x.parquet"), &docs, 10);
    let spec = spec_over(tmp.path(), &[&dir], &out, "", "");
    let o = sluice(tmp.path(), &["run", spec.to_str().unwrap(), "-q"], &[]);
    fails_with(&o, &["not valid UTF-8", "sub\\xFF"]);
}

// 4 and 9: one file through two paths, links to a file and to its folder,
// and a link loop: each document read once, and the run says so.
#[test]
fn one_file_reached_by_several_paths_is_read_once() {
    let tmp = tempfile::tempdir().unwrap();
    let real = tmp.path().join("real");
    std::fs::create_dir_all(&real).unwrap();
    std::fs::write(real.join("a.jsonl"), "{\"text\": \"the only document\"}\n").unwrap();
    let out = tmp.path().join("out");
    let twice = tmp.path().join("real/../real/a.jsonl");
    let spec = spec_over(tmp.path(), &[&real.join("a.jsonl"), &twice], &out, "", "");
    let o = run_ok(tmp.path(), &["run", spec.to_str().unwrap(), "-q"]);
    assert_eq!(stats_json(&out)["input"]["docs"], 1);
    assert!(stderr(&o).contains("are one file"), "{}", stderr(&o));

    // A folder holding a link to the file and a link to its folder.
    let links = tmp.path().join("links");
    std::fs::create_dir_all(&links).unwrap();
    std::os::unix::fs::symlink(real.join("a.jsonl"), links.join("file.jsonl")).unwrap();
    std::os::unix::fs::symlink(&real, links.join("folder")).unwrap();
    std::fs::write(
        links.join("own.jsonl"),
        "{\"text\": \"another document\"}\n",
    )
    .unwrap();
    let spec = spec_over(tmp.path(), &[&links], &out, "", "");
    run_ok(
        tmp.path(),
        &["run", spec.to_str().unwrap(), "-q", "--force"],
    );
    assert_eq!(stats_json(&out)["input"]["docs"], 2);

    // A link to its own parent: not followed round and round.
    let lp = tmp.path().join("loop");
    std::fs::create_dir_all(lp.join("sub")).unwrap();
    std::fs::write(lp.join("a.jsonl"), "{\"text\": \"once\"}\n").unwrap();
    std::os::unix::fs::symlink("..", lp.join("sub/loop")).unwrap();
    let spec = spec_over(tmp.path(), &[&lp], &out, "", "");
    let o = run_ok(
        tmp.path(),
        &["run", spec.to_str().unwrap(), "-q", "--force"],
    );
    assert_eq!(stats_json(&out)["input"]["docs"], 1);
    assert!(stderr(&o).contains("already read"), "{}", stderr(&o));

    // A link to nothing is said to be one.
    std::os::unix::fs::symlink(tmp.path().join("nowhere.jsonl"), lp.join("gone.jsonl")).unwrap();
    let o = sluice(
        tmp.path(),
        &["run", spec.to_str().unwrap(), "-q", "--force"],
        &[],
    );
    fails_with(&o, &["gone.jsonl", "dangling"]);
}

// 6: inspect describes what sluice itself writes, whatever the column type.
#[test]
fn inspect_describes_vectors_decimals_and_half_floats() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("typed.parquet");
    let n = 5;
    let mut vec = arrow::array::ListBuilder::new(arrow::array::Float32Builder::new());
    for i in 0..n {
        vec.values().append_slice(&[i as f32 + 1.0, 1.0, 0.0, 2.0]);
        vec.append(true);
    }
    let vec: ArrayRef = Arc::new(vec.finish());
    let dec: ArrayRef = Arc::new(
        arrow::array::Decimal128Array::from(vec![12345i128; n])
            .with_precision_and_scale(10, 2)
            .unwrap(),
    );
    let half: ArrayRef = arrow::compute::cast(
        &arrow::array::Float32Array::from(vec![1.5f32; n]),
        &DataType::Float16,
    )
    .unwrap();
    let texts: ArrayRef = Arc::new(StringArray::from(
        (0..n).map(|i| format!("text {i}")).collect::<Vec<_>>(),
    ));
    let schema = Arc::new(Schema::new(vec![
        Field::new("text", DataType::Utf8, true),
        Field::new("vec", vec.data_type().clone(), true),
        Field::new("price", dec.data_type().clone(), true),
        Field::new("h", half.data_type().clone(), true),
    ]));
    write_batch(
        &input,
        RecordBatch::try_new(schema, vec![texts, vec, dec, half]).unwrap(),
        10,
    );
    let out = tmp.path().join("out");
    let spec = spec_over(
        tmp.path(),
        &[&input],
        &out,
        "",
        "[[step]]\nop = \"embed\"\ncolumn = \"vec\"\ndim = 4\n",
    );
    run_ok(tmp.path(), &["run", spec.to_str().unwrap(), "-q"]);
    let o = sluice(tmp.path(), &["inspect", out.to_str().unwrap()], &[]);
    no_panic(&o);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = stdout(&o);
    assert!(s.contains("rows: 5"), "{s}");
    assert!(s.contains("fixed_size_list<f32, 4>"), "{s}");
    assert!(s.contains("decimal(10, 2)"), "{s}");
    assert!(s.contains("f16"), "{s}");
    assert!(s.contains("p50"), "{s}");
}

// 7 and 11: sizes of 0 and absurd ones, and options that do nothing, are
// refused by the spec check, naming the key.
#[test]
fn zero_and_absurd_sizes_and_idle_options_are_spec_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("a.jsonl");
    std::fs::write(&input, "{\"text\": \"x\"}\n").unwrap();
    let out = tmp.path().join("out");
    for (input_keys, output_keys, key) in [
        ("max_task_bytes = 0", "", "max_task_bytes"),
        ("max_task_bytes = 10", "", "max_task_bytes"),
        ("batch_rows = 100000000", "", "batch_rows"),
        ("", "bytes_per_shard = 0", "bytes_per_shard"),
        (
            "",
            "compression = \"snappy\"\ncompression_level = 5",
            "compression_level",
        ),
    ] {
        let body = format!(
            "[input]\npaths = [{input:?}]\n{input_keys}\n\n[output]\ndir = {out:?}\n{output_keys}\n"
        );
        let spec = write_spec(tmp.path(), "spec.toml", &body);
        let o = sluice(tmp.path(), &["run", spec.to_str().unwrap(), "-q"], &[]);
        fails_with(&o, &["spec.toml", key]);
    }
    // Op parameters too: values that would never end or overflow.
    for (steps, key) in [
        ("[[step]]\nop = \"embed\"\ncolumn = \"v\"\ndim = 1000000000000\n", "dim"),
        (
            "[[step]]\nop = \"embed\"\ncolumn = \"v\"\ndim = 2\n\n[[step]]\nop = \"cluster\"\nk = 2\nn_init = 1000000000000\n",
            "n_init",
        ),
        (
            "[[step]]\nop = \"embed\"\ncolumn = \"v\"\ndim = 2\n\n[[step]]\nop = \"cluster\"\nk = 2\nmax_iter = 1000000000000\n",
            "max_iter",
        ),
    ] {
        let spec = spec_over(tmp.path(), &[&input], &out, "", steps);
        let o = sluice(tmp.path(), &["run", spec.to_str().unwrap(), "-q"], &[]);
        fails_with(&o, &["spec.toml", key, "must be"]);
    }
}

// 11: a `keep` column the rows will not have, or one of text, fails before
// any task runs.
#[test]
fn a_bad_keep_column_fails_before_any_task() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("a.jsonl");
    std::fs::write(
        &input,
        jsonl_lines(50, |i| {
            format!("{{\"text\": \"doc {}\", \"score\": {i}}}", i % 5)
        }),
    )
    .unwrap();
    let out = tmp.path().join("out");
    for (keep, needle) in [("nosuch", "no column `nosuch`"), ("text", "not numbers")] {
        for op in ["dedup_exact", "dedup_minhash"] {
            let steps = format!(
                "[[step]]\nop = \"length_filter\"\nmin_words = 1\n\n[[step]]\nop = \"{op}\"\nkeep = \"{keep}\"\n"
            );
            let spec = spec_over(tmp.path(), &[&input], &out, "", &steps);
            let o = sluice(tmp.path(), &["run", spec.to_str().unwrap(), "-q"], &[]);
            fails_with(&o, &[needle, "before any task ran", op]);
            assert!(
                !out.join("_work/markers").exists(),
                "no task may have run: {}",
                stderr(&o)
            );
        }
    }
    // A numeric column works, and so does one a dedup step before it adds.
    let steps = "[[step]]\nop = \"dedup_exact\"\nkeep = \"score\"\n\n[[step]]\nop = \"dedup_minhash\"\nkeep = \"dup_count\"\n";
    let spec = spec_over(tmp.path(), &[&input], &out, "", steps);
    run_ok(
        tmp.path(),
        &["run", spec.to_str().unwrap(), "-q", "--force"],
    );
}

// 10: two columns of one name are an error naming the file and the column.
#[test]
fn duplicate_column_names_are_an_error_naming_them() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("dup.parquet");
    let t: ArrayRef = Arc::new(StringArray::from(vec!["a", "b"]));
    let schema = Arc::new(Schema::new(vec![
        Field::new("text", DataType::Utf8, true),
        Field::new("text", DataType::Utf8, true),
    ]));
    write_batch(
        &input,
        RecordBatch::try_new(schema, vec![t.clone(), t]).unwrap(),
        10,
    );
    let out = tmp.path().join("out");
    let spec = spec_over(tmp.path(), &[&input], &out, "", "");
    let o = sluice(tmp.path(), &["run", spec.to_str().unwrap(), "-q"], &[]);
    fails_with(&o, &["dup.parquet", "two columns are named `text`"]);
}

// 8: absurd worker counts finish (capped, with a note).
#[test]
fn ten_thousand_workers_are_capped_and_the_run_finishes() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("a.jsonl");
    std::fs::write(
        &input,
        jsonl_lines(20, |i| format!("{{\"text\": \"doc {i}\"}}")),
    )
    .unwrap();
    let out = tmp.path().join("out");
    let spec = spec_over(tmp.path(), &[&input], &out, "", "");
    let o = run_ok(
        tmp.path(),
        &["run", spec.to_str().unwrap(), "-q", "--workers", "10000"],
    );
    assert!(
        stderr(&o).contains("--workers 10000 is more than"),
        "{}",
        stderr(&o)
    );
    assert_eq!(stats_json(&out)["kept"]["docs"], 20);
}

// 13: Ctrl-C says that the run stopped and how to resume; the rerun does.
#[test]
fn an_interrupted_run_says_how_to_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("a.jsonl");
    std::fs::write(
        &input,
        jsonl_lines(20, |i| format!("{{\"text\": \"doc {i}\"}}")),
    )
    .unwrap();
    let out = tmp.path().join("out");
    let spec = spec_over(tmp.path(), &[&input], &out, "", "");
    let (mut child, mut err) = paused_run(tmp.path(), &spec, "s0/0", &[]);
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success());
    assert!(rest.contains("interrupted"), "{rest}");
    assert!(rest.contains("resumes it"), "{rest}");
    run_ok(tmp.path(), &["run", spec.to_str().unwrap(), "-q"]);
    assert_eq!(stats_json(&out)["kept"]["docs"], 20);
}

// 15: a killed run not yet reaped (a zombie) does not hold the output.
#[test]
fn a_killed_run_not_yet_reaped_does_not_hold_the_lock() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("a.jsonl");
    std::fs::write(
        &input,
        jsonl_lines(20, |i| format!("{{\"text\": \"doc {i}\"}}")),
    )
    .unwrap();
    let out = tmp.path().join("out");
    let spec = spec_over(tmp.path(), &[&input], &out, "", "");
    let (mut child, _err) = paused_run(tmp.path(), &spec, "s0/0", &[]);
    child.kill().unwrap();
    // Not waited for: the killed process stays a zombie while this runs.
    let pid = child.id();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .unwrap_or_default()
        .contains(") Z ")
    {
        assert!(std::time::Instant::now() < deadline, "no zombie");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    run_ok(tmp.path(), &["run", spec.to_str().unwrap(), "-q"]);
    assert_eq!(stats_json(&out)["kept"]["docs"], 20);
    child.wait().unwrap();
}

// 14: a task that fails while writing leaves no temporary behind.
#[test]
fn a_failed_task_leaves_no_temporary_files() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("a.jsonl");
    std::fs::write(
        &input,
        jsonl_lines(400, |i| format!("{{\"text\": \"document {i}\"}}")),
    )
    .unwrap();
    let out = tmp.path().join("out");
    let spec = spec_over(
        tmp.path(),
        &[&input],
        &out,
        "batch_rows = 50",
        "[[step]]\nop = \"length_filter\"\nmin_words = 2\n\n[[step]]\nop = \"dedup_exact\"\n",
    );
    for phase in ["s0/0", "s1/0"] {
        let o = sluice(
            tmp.path(),
            &["run", spec.to_str().unwrap(), "-q", "--force"],
            &[("SLUICE_TEST_FAIL", phase)],
        );
        fails_with(&o, &["SLUICE_TEST_FAIL"]);
        let mut left = vec![];
        let mut stack = vec![out.clone()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.to_string_lossy().ends_with(".tmp") {
                    left.push(p);
                }
            }
        }
        assert!(left.is_empty(), "{phase}: left behind: {left:?}");
    }
}

// 14: a disk with less free space than the run needs is said at the start.
#[test]
fn a_short_disk_is_said_at_the_start() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("a.jsonl");
    std::fs::write(
        &input,
        jsonl_lines(100, |i| format!("{{\"text\": \"doc {i}\"}}")),
    )
    .unwrap();
    let out = tmp.path().join("out");
    let spec = spec_over(
        tmp.path(),
        &[&input],
        &out,
        "",
        "[[step]]\nop = \"dedup_exact\"\n",
    );
    let o = sluice(
        tmp.path(),
        &["run", spec.to_str().unwrap(), "-q"],
        &[("SLUICE_TEST_FREE_BYTES", "1000")],
    );
    assert!(
        o.status.success(),
        "a warning, not a refusal: {}",
        stderr(&o)
    );
    let e = stderr(&o);
    assert!(
        e.contains("warning:") && e.contains("free") && e.contains("1 global step"),
        "{e}"
    );
    let o = run_ok(
        tmp.path(),
        &["run", spec.to_str().unwrap(), "-q", "--force"],
    );
    assert!(
        !stderr(&o).contains("free;"),
        "no warning with room: {}",
        stderr(&o)
    );
}

// 18: every input a fuzz target found a fault with, and every seed, runs
// through its target without a panic in sluice's code.
#[test]
fn fuzz_regressions_and_seeds_replay_cleanly() {
    let mut ran = 0;
    for (name, target) in sluice::fuzzing::TARGETS {
        for folder in ["fuzz/regressions", "fuzz/seeds"] {
            let dir = repo().join(folder).join(name);
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries {
                let path = e.unwrap().path();
                let data = std::fs::read(&path).unwrap();
                if let Some(at) = sluice::fuzzing::check(*target, &data) {
                    panic!("{name}: {} made sluice panic at {at}", path.display());
                }
                ran += 1;
            }
        }
    }
    assert!(ran >= 5, "the seeds are there ({ran} inputs)");
}

// The fuzz package builds the library's own sources (fuzz/Cargo.toml's
// `[lib] path = "../src/lib.rs"`), so it must list every dependency the
// library has: a crate added to Cargo.toml alone breaks the fuzz build,
// which only CI's fuzzing step would otherwise find.
#[test]
fn the_fuzz_package_lists_every_library_dependency() {
    let deps = |path: &str| -> Vec<String> {
        let text = std::fs::read_to_string(repo().join(path)).unwrap();
        let doc: toml::Table = toml::from_str(&text).unwrap();
        doc["dependencies"]
            .as_table()
            .unwrap()
            .keys()
            .cloned()
            .collect()
    };
    let fuzz = deps("fuzz/Cargo.toml");
    let missing: Vec<String> = deps("Cargo.toml")
        .into_iter()
        .filter(|d| !fuzz.contains(d))
        .collect();
    assert!(
        missing.is_empty(),
        "fuzz/Cargo.toml lacks {missing:?}: add them as `<name>.workspace = true`"
    );
}
