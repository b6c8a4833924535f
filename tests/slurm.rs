//! The Slurm executor. The dry run everywhere; against a real Slurm
//! (`.ci/slurm-up` brings one up on this machine; CI sets
//! SLUICE_REQUIRE_SLURM so that it cannot skip there): pipelines/dedup.toml
//! through sbatch job arrays gives the local run's bytes; a failed task
//! shows in `sluice status` with its log, keeps the later phases from
//! starting, and a rerun resubmits only what is not done.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

fn slurm_here() -> bool {
    let up = Command::new("sinfo")
        .args(["-h", "-o", "%T"])
        .output()
        .is_ok_and(|o| {
            o.status.success()
                && String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .any(|l| ["idle", "mixed", "allocated"].contains(&l.trim()))
        });
    if !up {
        assert!(
            std::env::var_os("SLUICE_REQUIRE_SLURM").is_none(),
            "SLUICE_REQUIRE_SLURM is set but no Slurm node is up (run .ci/slurm-up)"
        );
        eprintln!(
            "\n==================== SKIPPED: no Slurm cluster here ====================\n\
             run .ci/slurm-up (as root) to bring one up and test the Slurm executor\n\
             ========================================================================\n"
        );
    }
    up
}

/// pipelines/dedup.toml, reading the fixtures, writing to `dir/name`.
fn dedup_spec(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let body = std::fs::read_to_string(repo().join("pipelines/dedup.toml")).unwrap();
    let out = dir.join(name);
    let body = body
        .replace(
            "paths = [\"fixtures/quickstart\"]",
            &format!("paths = [{:?}]", repo().join("fixtures/quickstart")),
        )
        .replace("dir = \"out/dedup\"", &format!("dir = {out:?}"));
    assert!(body.contains(&format!("{out:?}")));
    (write_spec(dir, &format!("{name}.toml"), &body), out)
}

#[test]
fn a_dry_run_prints_the_job_scripts_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (spec, out) = dedup_spec(tmp.path(), "dry");
    let o = run_ok(
        tmp.path(),
        &[
            "run",
            spec.to_str().unwrap(),
            "--executor",
            "slurm",
            "--dry-run",
            "--partition",
            "cpu",
            "--time",
            "04:00:00",
            "--tasks-per-job",
            "2",
            "--max-array",
            "1",
            "--max-running",
            "8",
            "--sbatch-arg=--qos=low",
        ],
    );
    let s = stdout(&o);
    for want in [
        "#SBATCH --partition=cpu",
        "#SBATCH --time=04:00:00",
        "#SBATCH --qos=low",
        "#SBATCH --array=0-0%8",
        "task ",
        "--phase 's0'",
        "--phase 's1'",
        "--finish",
        "after the jobs of the previous phase",
    ] {
        assert!(s.contains(want), "no {want:?} in:\n{s}");
    }
    // --max-array 1: one job per array element; --tasks-per-job 2: two
    // tasks on one line of TASKS.
    assert!(s.contains("  0,1\n"), "{s}");
    assert!(
        !out.join("_work").exists(),
        "a dry run wrote {}",
        out.display()
    );
}

#[test]
fn dedup_through_slurm_matches_the_local_run_and_recovers_from_a_failed_task() {
    if !slurm_here() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (local_spec, local) = dedup_spec(tmp.path(), "local");
    run_ok(tmp.path(), &["run", local_spec.to_str().unwrap(), "-q"]);

    // Task 0 of the phase after dedup_exact aborts, as a crash would.
    let (spec, out) = dedup_spec(tmp.path(), "slurm");
    let args = [
        "run",
        spec.to_str().unwrap(),
        "--executor",
        "slurm",
        "--wait",
        "-q",
        "--max-running",
        "2",
    ];
    let o = sluice(tmp.path(), &args, &[("SLUICE_TEST_ABORT", "s1/0")]);
    assert!(!o.status.success(), "{}", stdout(&o));
    let err = stderr(&o);
    assert!(err.contains("the run did not complete"), "{err}");
    assert!(err.contains("s1: tasks [0] failed"), "{err}");
    assert!(err.contains("SLUICE_TEST_ABORT"), "the log tail: {err}");
    assert!(err.contains("tasks not started: phase s1 failed"), "{err}");
    assert!(!out.join("stats.json").exists());
    let status = stdout(&run_ok(tmp.path(), &["status", out.to_str().unwrap()]));
    let s1 = status
        .lines()
        .find(|l| l.starts_with("s1 "))
        .expect("an s1 line");
    // phase, tasks, done, running, pending, failed, blocked
    let cols: Vec<&str> = s1.split_whitespace().collect();
    assert_eq!(cols[5], "1", "one failed task in s1: {status}");
    let last = status.lines().find(|l| l.starts_with("s2 ")).unwrap();
    let cols: Vec<&str> = last.split_whitespace().collect();
    assert_eq!(cols[1], cols[6], "s2 all blocked: {status}");

    // The rerun submits what is not done and ends as the local run did.
    let o = run_ok(tmp.path(), &args);
    assert!(stdout(&o).contains("kept"), "{}", stdout(&o));
    assert_eq!(shard_bytes(&local), shard_bytes(&out));
    assert_eq!(stats_json(&local)["kept"], stats_json(&out)["kept"]);
    assert_eq!(stats_json(&local)["dropped"], stats_json(&out)["dropped"]);
    let status = stdout(&run_ok(tmp.path(), &["status", out.to_str().unwrap()]));
    assert!(status.contains("complete: "), "{status}");

    // A second submission while the first is queued is refused.
    let (spec2, _) = dedup_spec(tmp.path(), "held");
    let held = [
        "run",
        spec2.to_str().unwrap(),
        "--executor",
        "slurm",
        "-q",
        "--sbatch-arg=--hold",
    ];
    run_ok(tmp.path(), &held);
    let o = sluice(tmp.path(), &held, &[]);
    assert!(
        stderr(&o).contains("still queued or running"),
        "{}",
        stderr(&o)
    );
    let jobs: serde_json::Value = serde_json::from_slice(
        &std::fs::read(tmp.path().join("held/_work/slurm/jobs.json")).unwrap(),
    )
    .unwrap();
    let mut ids: Vec<String> = jobs["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["job_id"].as_str().unwrap().to_string())
        .collect();
    ids.push(jobs["finish_job"].as_str().unwrap().to_string());
    Command::new("scancel").args(&ids).status().unwrap();
}
