//! End-to-end tests of the engine through the `sluice` binary: the quickstart,
//! accounting, determinism across worker counts, kill-and-resume across the
//! phases of a global op, and the spec errors a user meets first.

mod common;

use std::path::{Path, PathBuf};

use common::*;

/// The quickstart pipeline with its output in `out`, inputs from the repo's fixtures.
fn quickstart_spec(dir: &Path, out: &Path) -> std::path::PathBuf {
    quickstart_spec_over(dir, &repo().join("fixtures/quickstart"), out)
}

/// The quickstart pipeline over the files of `input`, its output in `out`.
fn quickstart_spec_over(dir: &Path, input: &Path, out: &Path) -> std::path::PathBuf {
    let src = std::fs::read_to_string(repo().join("pipelines/quickstart.toml"))
        .unwrap()
        .replace("\"fixtures/quickstart\"", &format!("{input:?}"))
        .replace("\"out/quickstart\"", &format!("{out:?}"));
    write_spec(dir, "quickstart.toml", &src)
}

#[test]
fn quickstart_accounts_for_every_document() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let spec = quickstart_spec(tmp.path(), &out);
    let o = run_ok(
        tmp.path(),
        &["run", spec.to_str().unwrap(), "--workers", "2"],
    );
    let table = stdout(&o);
    assert!(
        table.contains("3:dedup_exact"),
        "summary table lists the steps:\n{table}"
    );
    assert!(table.contains("duplicate groups by size: 1: "), "{table}");

    let stats = stats_json(&out);
    // 200 web pages + 1,000 news + 140 doc lines + 30 speeches.
    assert_eq!(stats["input"]["docs"], 1370);
    let kept = read_rows(&out, "part-");
    let excluded = read_rows(&out.join("excluded"), "");
    assert_eq!(stats["kept"]["docs"].as_u64().unwrap() as usize, kept.len());
    assert_eq!(
        kept.len() + excluded.len(),
        1370,
        "every input document is kept or excluded"
    );

    // The 20 planted copies are removed, each pointing at the document kept.
    let copies: Vec<_> = excluded
        .iter()
        .filter(|r| r["id"].ends_with("#copy"))
        .collect();
    assert_eq!(copies.len(), 20);
    // 20 groups of two: the originals and their copies.
    assert_eq!(
        stats["steps"][3]["docs_by_group_size"]["2"], 40,
        "{:#}",
        stats["steps"][3]
    );
    for r in &copies {
        assert_eq!(r["drop_reason"], "dedup_exact");
        assert_eq!(r["drop_op"], "3:dedup_exact");
        assert_eq!(r["drop_detail"], r["id"].trim_end_matches("#copy"));
    }
    assert!(kept.iter().all(|r| !r["id"].ends_with("#copy")));
    // No two kept documents share a text.
    let mut texts: Vec<&String> = kept.iter().map(|r| &r["text"]).collect();
    texts.sort();
    let before = texts.len();
    texts.dedup();
    assert_eq!(texts.len(), before, "dedup_exact left duplicates");
    // Each drop reason's count in stats.json matches the rows in excluded/.
    for (reason, count) in stats["dropped"].as_object().unwrap() {
        let rows = excluded
            .iter()
            .filter(|r| &r["drop_reason"] == reason)
            .count() as u64;
        assert_eq!(rows, count["docs"].as_u64().unwrap(), "{reason}");
    }
    // Speeches had no id column: ids are synthesised from file and byte offset.
    assert!(kept
        .iter()
        .any(|r| r["id"].ends_with("speeches.jsonl.gz@0")));
    // Short documents go, with the rule that dropped them.
    assert!(dropped(&stats, "length_filter:min_words") > 0);
}

#[test]
fn one_and_two_workers_write_identical_shards() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let spec_a = quickstart_spec(tmp.path(), &a);
    run_ok(
        tmp.path(),
        &["run", spec_a.to_str().unwrap(), "--workers", "1", "-q"],
    );
    let spec_b = quickstart_spec(tmp.path(), &b);
    run_ok(
        tmp.path(),
        &["run", spec_b.to_str().unwrap(), "--workers", "2", "-q"],
    );
    let (sa, sb) = (shard_bytes(&a), shard_bytes(&b));
    assert!(sa.len() > 4, "expected several shards, got {:?}", sa.keys());
    assert_eq!(sa.keys().collect::<Vec<_>>(), sb.keys().collect::<Vec<_>>());
    for (name, bytes) in &sa {
        assert!(bytes == &sb[name], "{name} differs between 1 and 2 workers");
    }
}

/// Aborts the process inside the given task (a crash), reruns, and compares
/// with an uninterrupted run.
#[test]
fn crash_in_any_phase_then_rerun_gives_the_same_output() {
    let tmp = tempfile::tempdir().unwrap();
    let reference = tmp.path().join("reference");
    let spec = quickstart_spec(tmp.path(), &reference);
    run_ok(tmp.path(), &["run", spec.to_str().unwrap(), "-q"]);
    let expected = shard_bytes(&reference);

    for (i, point) in ["s0/1", "s0/3", "3-dedup_exact-find/2", "s1/0", "s1/2"]
        .iter()
        .enumerate()
    {
        let out = tmp.path().join(format!("crash{i}"));
        let spec = quickstart_spec(tmp.path(), &out);
        let o = sluice(
            tmp.path(),
            &["run", spec.to_str().unwrap(), "-q", "--workers", "1"],
            &[("SLUICE_TEST_ABORT", point)],
        );
        assert!(!o.status.success(), "the abort at {point} did not happen");
        assert!(!out.join("stats.json").exists());
        let o = run_ok(tmp.path(), &["run", spec.to_str().unwrap()]);
        assert!(
            stdout(&o).contains("resumed"),
            "the rerun after {point} resumed nothing:\n{}",
            stdout(&o)
        );
        assert_eq!(
            shard_bytes(&out),
            expected,
            "output after a crash at {point} differs"
        );
        let stray: Vec<_> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(stray.is_empty(), "temporary files left: {stray:?}");
    }
}

/// Kills the process at arbitrary moments (SIGKILL), then reruns to the end.
#[test]
fn kill_at_random_moments_then_rerun_gives_the_same_output() {
    let tmp = tempfile::tempdir().unwrap();
    let reference = tmp.path().join("reference");
    let spec = quickstart_spec(tmp.path(), &reference);
    run_ok(
        tmp.path(),
        &["run", spec.to_str().unwrap(), "-q", "--workers", "1"],
    );
    let expected = shard_bytes(&reference);

    let out = tmp.path().join("killed");
    let spec = quickstart_spec(tmp.path(), &out);
    for delay_ms in [30u64, 120, 250, 400] {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
            .current_dir(tmp.path())
            .args(["run", spec.to_str().unwrap(), "-q", "--workers", "1"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
    }
    run_ok(tmp.path(), &["run", spec.to_str().unwrap(), "-q"]);
    assert_eq!(shard_bytes(&out), expected);
    assert_eq!(
        stats_json(&out)["steps"],
        stats_json(&reference)["steps"],
        "the counts after kills differ"
    );
}

/// A second run on an output that a live run is writing stops, naming
/// it; once that run is killed, the next run takes its lock over and
/// completes with the output of an undisturbed run.
#[test]
fn a_second_run_on_a_busy_output_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let reference = tmp.path().join("reference");
    let spec = quickstart_spec(tmp.path(), &reference);
    run_ok(tmp.path(), &["run", spec.to_str().unwrap(), "-q"]);

    let out = tmp.path().join("busy");
    let spec = quickstart_spec(tmp.path(), &out);
    let log = tmp.path().join("first.log");
    let mut first = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .current_dir(tmp.path())
        .args(["run", spec.to_str().unwrap(), "-q", "--workers", "1"])
        .env("SLUICE_TEST_PAUSE", "s0/1")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    while !std::fs::read_to_string(&log).is_ok_and(|l| l.contains("SLUICE_TEST_PAUSE")) {
        assert!(
            first.try_wait().unwrap().is_none(),
            "the first run ended early"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let second = sluice(tmp.path(), &["run", spec.to_str().unwrap(), "-q"], &[]);
    assert!(!second.status.success());
    let msg = stderr(&second);
    assert!(
        msg.contains("in use by another sluice run")
            && msg.contains(&format!("pid {}", first.id())),
        "{msg}"
    );
    // --force must not get past it either: it would delete the live run's files.
    let forced = sluice(
        tmp.path(),
        &["run", spec.to_str().unwrap(), "-q", "--force"],
        &[],
    );
    assert!(!forced.status.success(), "{}", stderr(&forced));

    first.kill().unwrap();
    first.wait().unwrap();
    let rerun = run_ok(tmp.path(), &["run", spec.to_str().unwrap(), "-q"]);
    assert!(
        stderr(&rerun).contains("taking it over"),
        "{}",
        stderr(&rerun)
    );
    assert_eq!(shard_bytes(&out), shard_bytes(&reference));
    assert!(
        !out.join(".sluice.lock").exists(),
        "the lock is released at the end"
    );
}

#[test]
fn rerun_skips_finished_tasks_and_force_redoes_them() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let spec = quickstart_spec(tmp.path(), &out);
    run_ok(tmp.path(), &["run", spec.to_str().unwrap(), "-q"]);
    let first = shard_bytes(&out);
    let again = run_ok(tmp.path(), &["run", spec.to_str().unwrap(), "-q"]);
    assert!(stdout(&again).contains("4 resumed"), "{}", stdout(&again));
    let forced = run_ok(
        tmp.path(),
        &["run", spec.to_str().unwrap(), "-q", "--force"],
    );
    assert!(!stdout(&forced).contains("resumed"), "{}", stdout(&forced));
    assert_eq!(shard_bytes(&out), first);
}

#[test]
fn a_changed_spec_does_not_mix_with_the_old_run() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let spec = quickstart_spec(tmp.path(), &out);
    run_ok(tmp.path(), &["run", spec.to_str().unwrap(), "-q"]);
    let src = std::fs::read_to_string(&spec)
        .unwrap()
        .replace("min_words = 20", "min_words = 30");
    std::fs::write(&spec, src).unwrap();
    let o = sluice(tmp.path(), &["run", spec.to_str().unwrap(), "-q"], &[]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("the spec has changed"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("--force"), "{}", stderr(&o));
    run_ok(
        tmp.path(),
        &["run", spec.to_str().unwrap(), "-q", "--force"],
    );
}

/// A rerun over input files written since the run started stops and names
/// the file, rather than mix two inputs' output; `--force` starts over.
#[test]
fn an_input_file_written_since_the_run_started_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    std::fs::create_dir(&input).unwrap();
    for f in std::fs::read_dir(repo().join("fixtures/quickstart")).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, input.join(f.file_name().unwrap())).unwrap();
    }
    let spec = quickstart_spec_over(tmp.path(), &input, &tmp.path().join("out"));
    run_ok(tmp.path(), &["run", spec.to_str().unwrap(), "-q"]);

    // The same bytes and size, written again later (a regenerated shard).
    let file = input.join("web_pages.parquet");
    let later =
        std::fs::metadata(&file).unwrap().modified().unwrap() + std::time::Duration::from_secs(60);
    std::fs::File::options()
        .write(true)
        .open(&file)
        .unwrap()
        .set_modified(later)
        .unwrap();
    let o = sluice(tmp.path(), &["run", spec.to_str().unwrap(), "-q"], &[]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("web_pages.parquet has been written since the run started")
            && e.contains("--force"),
        "{e}"
    );

    run_ok(
        tmp.path(),
        &["run", spec.to_str().unwrap(), "-q", "--force"],
    );

    std::fs::remove_file(input.join("speeches.jsonl.gz")).unwrap();
    let o = sluice(tmp.path(), &["run", spec.to_str().unwrap(), "-q"], &[]);
    assert!(
        stderr(&o).contains("speeches.jsonl.gz is gone"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn spec_errors_point_at_the_line_and_suggest() {
    let tmp = tempfile::tempdir().unwrap();
    let base =
        "[input]\npaths = [\"x\"]\n\n[[step]]\nop = \"lenght_filter\"\n\n[output]\ndir = \"o\"\n";
    let spec = write_spec(tmp.path(), "bad.toml", base);
    let o = sluice(tmp.path(), &["run", spec.to_str().unwrap()], &[]);
    let e = stderr(&o);
    assert!(!o.status.success());
    assert!(e.contains("bad.toml:5"), "{e}");
    assert!(e.contains("did you mean `length_filter`"), "{e}");

    let spec = write_spec(
        tmp.path(),
        "bad2.toml",
        &base.replace("lenght_filter\"", "length_filter\"\nmin_word = 3"),
    );
    let e = stderr(&sluice(tmp.path(), &["run", spec.to_str().unwrap()], &[]));
    assert!(e.contains("bad2.toml:6"), "{e}");
    assert!(e.contains("did you mean `min_words`"), "{e}");

    let spec = write_spec(
        tmp.path(),
        "bad3.toml",
        &base.replace("lenght_filter\"", "length_filter\"\nmin_words = \"fifty\""),
    );
    let e = stderr(&sluice(tmp.path(), &["run", spec.to_str().unwrap()], &[]));
    assert!(e.contains("bad3.toml:6") && e.contains("min_words"), "{e}");
}

#[test]
fn ops_lists_every_operator_with_parameters() {
    let o = run_ok(&repo(), &["ops"]);
    let s = stdout(&o);
    for name in [
        "normalize",
        "length_filter",
        "sample",
        "dedup_exact",
        "min_words",
        "fraction",
        "form",
    ] {
        assert!(
            s.contains(name),
            "`sluice ops` does not mention {name}:\n{s}"
        );
    }
}

#[test]
fn inspect_describes_a_run_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let spec = quickstart_spec(tmp.path(), &out);
    run_ok(tmp.path(), &["run", spec.to_str().unwrap(), "-q"]);
    let stats = stats_json(&out);
    let o = run_ok(tmp.path(), &["inspect", out.to_str().unwrap()]);
    let s = stdout(&o);
    assert!(
        s.contains(&format!("rows: {}", stats["kept"]["docs"])),
        "{s}"
    );
    assert!(
        s.lines()
            .any(|l| l.trim() == "text                     str"),
        "{s}"
    );
    assert!(s.contains("p50"), "{s}");
    assert!(s.contains("by source"), "{s}");
    assert!(
        s.contains("by drop_reason") && s.contains("dedup_exact"),
        "{s}"
    );
}

/// `upsample`: books twice and a half, web halved; every input document is
/// accounted for (input + copies = kept + dropped), copies carry their number.
#[test]
fn upsample_repeats_sources_by_their_factors_and_accounts_for_copies() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in.jsonl");
    let mut lines = String::new();
    for i in 0..400 {
        let source = ["books", "web", "wiki", "code"][i % 4];
        lines.push_str(&format!(
            "{{\"id\": \"d{i}\", \"text\": \"document number {i}\", \"source\": \"{source}\"}}\n"
        ));
    }
    std::fs::write(&input, lines).unwrap();
    let spec = write_spec(
        tmp.path(),
        "up.toml",
        &format!(
            "[input]\npaths = [{input:?}]\n\n[[step]]\nop = \"upsample\"\nfactors = {{ books = 2.5, web = 0.5, wiki = 2.0 }}\n\n[output]\ndir = {:?}\n",
            tmp.path().join("out")
        ),
    );
    let o = run_ok(tmp.path(), &["run", spec.to_str().unwrap(), "-q"]);
    let rows = read_rows(&tmp.path().join("out"), "part-");
    let by = |s: &str| rows.iter().filter(|r| r["source"] == s).count();
    // 100 docs per source.
    assert!((240..=260).contains(&by("books")), "books {}", by("books"));
    assert_eq!(by("wiki"), 200);
    assert_eq!(by("code"), 100);
    assert!((40..=60).contains(&by("web")), "web {}", by("web"));
    let copies = rows.iter().filter(|r| r["upsample_copy"] != "0").count();
    let stats = stats_json(&tmp.path().join("out"));
    assert_eq!(stats["input"]["docs"], 400);
    assert_eq!(stats["added"]["docs"], copies as u64);
    let down = dropped(&stats, "upsample:downsampled");
    assert_eq!(down, 100 - by("web") as u64);
    assert_eq!(400 + copies as u64, rows.len() as u64 + down);
    // Copies follow their original, numbered.
    let d0: Vec<&str> = rows
        .iter()
        .filter(|r| r["id"] == "d0")
        .map(|r| r["upsample_copy"].as_str())
        .collect();
    assert!(d0 == ["0", "1"] || d0 == ["0", "1", "2"], "{d0:?}");
    assert!(stdout(&o).contains("added"), "{}", stdout(&o));
}

/// Every spec in pipelines/ runs with nothing but the repository (no
/// ../shared), in the order pipelines/README.md gives: its `sh` block is
/// run line by line in a folder holding only the repo's `fixtures/` and
/// `pipelines/`, as in a fresh clone.
#[test]
fn every_pipeline_runs_from_the_repository_alone_in_the_documented_order() {
    let tmp = tempfile::tempdir().unwrap();
    for d in ["fixtures", "pipelines"] {
        std::os::unix::fs::symlink(repo().join(d), tmp.path().join(d)).unwrap();
    }
    let readme = std::fs::read_to_string(repo().join("pipelines/README.md")).unwrap();
    let block = readme
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("pipelines/README.md has an sh block");
    let mut ran = std::collections::BTreeSet::new();
    for line in block.lines() {
        let cmd = line.split('#').next().unwrap().trim();
        if cmd.is_empty() {
            continue;
        }
        let words: Vec<&str> = cmd.split_whitespace().collect();
        assert_eq!(words[0], "sluice", "{line}");
        let mut args = words[1..].to_vec();
        args.push("-q");
        run_ok(tmp.path(), &args);
        ran.insert(words[2].to_string());
    }
    for e in std::fs::read_dir(repo().join("pipelines")).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        if name.ends_with(".toml") {
            assert!(
                ran.contains(&format!("pipelines/{name}")),
                "pipelines/README.md does not run {name}"
            );
        }
    }
}

/// The example spec on the README's front page runs on a fresh clone
/// (the repository's fixtures and model), as its readers will try it.
#[test]
fn the_readme_example_runs() {
    let tmp = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(repo().join("fixtures"), tmp.path().join("fixtures")).unwrap();
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let example = readme
        .split("```toml\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("the README has a toml example");
    let spec = write_spec(tmp.path(), "example.toml", example);
    run_ok(tmp.path(), &["run", spec.to_str().unwrap(), "-q"]);
    let stats = stats_json(&tmp.path().join("out/readme-example"));
    assert!(stats["steps"].as_array().unwrap().len() >= 4, "{stats}");
}

/// Only a dedup step reports documents by duplicate-group size: a later
/// global step passes `dup_count` through and reported dedup_semantic's
/// histogram (its kept rows') as its own.
#[test]
fn only_dedup_steps_report_duplicate_groups() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let src = std::fs::read_to_string(repo().join("pipelines/semantic.toml"))
        .unwrap()
        .replace("\"fixtures/", &format!("\"{}/fixtures/", repo().display()))
        .replace("\"out/semantic\"", &format!("{out:?}"));
    let spec = write_spec(tmp.path(), "semantic.toml", &src);
    run_ok(tmp.path(), &["run", spec.to_str().unwrap(), "-q"]);
    let stats = stats_json(&out);
    let step = |name: &str| {
        stats["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["step"].as_str().unwrap().ends_with(name))
            .unwrap()
            .clone()
    };
    assert!(
        step(":dedup_semantic")["docs_by_group_size"].is_object(),
        "{stats}"
    );
    assert!(
        step(":cluster_sample").get("docs_by_group_size").is_none(),
        "{}",
        step(":cluster_sample")
    );
}

/// A model or tokenizer that is not there is named with the command that
/// makes one.
#[test]
fn a_missing_model_names_the_command_that_makes_it() {
    let tmp = tempfile::tempdir().unwrap();
    let input = repo().join("fixtures/quickstart/speeches.jsonl.gz");
    let out = tmp.path().join("out");
    for (step, want) in [
        (
            "op = \"quality_model\"\nmodel = \"out/quality-model/model.bin\"",
            "sluice train-classifier",
        ),
        (
            "op = \"tokenize\"\ntokenizer = \"out/tokenizer/tokenizer.json\"",
            "sluice train-tokenizer",
        ),
        (
            "op = \"perplexity\"\nmodel = \"out/lm/en/model.arpa\"",
            "sluice train-lm",
        ),
    ] {
        let body = format!(
            "[input]\npaths = [{input:?}]\n\n[[step]]\n{step}\n\n[output]\ndir = {out:?}\n"
        );
        let spec = write_spec(tmp.path(), "spec.toml", &body);
        let o = sluice(tmp.path(), &["run", spec.to_str().unwrap(), "-q"], &[]);
        assert!(!o.status.success());
        assert!(stderr(&o).contains(want), "{want}: {}", stderr(&o));
        assert!(stderr(&o).contains("does not exist"), "{}", stderr(&o));
    }
}

/// Layers point down: the batch types, the readers and writers, the spec
/// and the models know nothing of the ops or the executor.
#[test]
fn lower_layers_import_nothing_from_ops_or_exec() {
    let mut offenders = vec![];
    let mut stack: Vec<PathBuf> = ["src/io", "src/pipeline", "src/models", "src/batch.rs"]
        .iter()
        .map(|p| repo().join(p))
        .collect();
    while let Some(p) = stack.pop() {
        if p.is_dir() {
            stack.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        let text = std::fs::read_to_string(&p).unwrap();
        for (i, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap();
            if code.contains("crate::ops") || code.contains("crate::exec") {
                offenders.push(format!("{}:{}: {}", p.display(), i + 1, line.trim()));
            }
        }
    }
    assert!(offenders.is_empty(), "{}", offenders.join("\n"));
}

/// `--set STEP.KEY=VALUE` sets a step's parameter for a run, by number or
/// op name; it is part of the plan (a rerun without it is another run), a
/// step it does not name is an error listing the steps, and the op checks
/// the value as if the spec had it.
#[test]
fn set_overrides_a_step_parameter_for_the_run() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let spec = quickstart_spec(tmp.path(), &out);
    let spec = spec.to_str().unwrap();
    run_ok(
        tmp.path(),
        &["run", spec, "-q", "--set", "2.min_words=1000000"],
    );
    let stats = stats_json(&out);
    assert_eq!(
        stats["kept"]["docs"], 0,
        "every document is below the floor"
    );
    assert!(dropped(&stats, "length_filter:min_words") > 0);
    let o = sluice(tmp.path(), &["run", spec, "-q"], &[]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("the spec has changed"),
        "{}",
        stderr(&o)
    );
    run_ok(
        tmp.path(),
        &[
            "run",
            spec,
            "-q",
            "--force",
            "--set",
            "length_filter.min_words=1",
        ],
    );
    assert!(stats_json(&out)["kept"]["docs"].as_u64().unwrap() > 0);
    for (set, want) in [
        (
            "nosuch.x=1",
            "no step `nosuch`; the steps are 1:normalize, 2:length_filter, 3:dedup_exact",
        ),
        ("length_filter", "write STEP.KEY=VALUE"),
        ("2.min_words=\"many\"", "min_words"),
    ] {
        let o = sluice(
            tmp.path(),
            &["run", spec, "-q", "--force", "--set", set],
            &[],
        );
        assert!(!o.status.success(), "{set}");
        assert!(stderr(&o).contains(want), "{set}: {}", stderr(&o));
    }
}

/// A new run clears what ops declare as theirs in the output folder
/// (tokenize's shards and report, mixture's report, their temporaries),
/// whichever steps the earlier run had, and leaves other files alone.
#[test]
fn a_new_run_clears_the_files_ops_declare_and_nothing_else() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let theirs = [
        "tokens-00000-0000.bin",
        "tokens-00000-0000.idx",
        ".tokens-00000-0001.bin.tmp",
        "tokenize_report.json",
        "mixture_report.txt",
        "stats.json",
    ];
    for n in theirs {
        std::fs::write(out.join(n), b"old").unwrap();
    }
    std::fs::write(out.join("notes.txt"), b"mine").unwrap();
    std::fs::write(out.join("tokens.md"), b"mine too").unwrap();
    let spec = quickstart_spec(tmp.path(), &out);
    run_ok(tmp.path(), &["run", spec.to_str().unwrap(), "-q"]);
    for n in theirs.iter().filter(|n| **n != "stats.json") {
        assert!(!out.join(n).exists(), "{n} was left");
    }
    assert_eq!(std::fs::read(out.join("notes.txt")).unwrap(), b"mine");
    assert_eq!(std::fs::read(out.join("tokens.md")).unwrap(), b"mine too");
}
