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

/// The submission recorded in `out`, and all its job ids.
fn submission(out: &Path) -> (serde_json::Value, Vec<String>) {
    let jobs: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("_work/slurm/jobs.json")).unwrap()).unwrap();
    let mut ids: Vec<String> = jobs["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["job_id"].as_str().unwrap().to_string())
        .collect();
    ids.push(jobs["finish_job"].as_str().unwrap().to_string());
    (jobs, ids)
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
            "--set",
            "dedup_minhash.threshold=0.75",
        ],
    );
    let s = stdout(&o);
    for want in [
        "--set 'dedup_minhash.threshold=0.75'",
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

    // The same settings from the spec's [slurm]; a flag still wins.
    let body = std::fs::read_to_string(&spec).unwrap()
        + "\n[slurm]\npartition = \"gpu\"\naccount = \"lab\"\ncpus_per_task = 4\nsbatch_args = [\"--qos=high\"]\n";
    let spec = write_spec(tmp.path(), "dry-slurm.toml", &body);
    let args = [
        "run",
        spec.to_str().unwrap(),
        "--executor",
        "slurm",
        "--dry-run",
        "--partition",
        "cpu",
    ];
    let s = stdout(&run_ok(tmp.path(), &args));
    for want in [
        "#SBATCH --partition=cpu",
        "#SBATCH --account=lab",
        "#SBATCH --cpus-per-task=4",
        "#SBATCH --qos=high",
        "--workers 4",
    ] {
        assert!(s.contains(want), "no {want:?} in:\n{s}");
    }
    assert!(!s.contains("--partition=gpu"), "{s}");
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
    let (_, ids) = submission(&tmp.path().join("held"));
    Command::new("scancel").args(&ids).status().unwrap();
}

/// `scancel` of one array element in the middle of its task: the other
/// tasks finish, `status` shows the killed one as failed, and the rerun
/// completes with the local run's bytes.
#[test]
fn a_task_cancelled_mid_run_is_redone_by_the_rerun() {
    if !slurm_here() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (local_spec, local) = dedup_spec(tmp.path(), "local");
    run_ok(tmp.path(), &["run", local_spec.to_str().unwrap(), "-q"]);
    let (spec, out) = dedup_spec(tmp.path(), "killed");
    let args = ["run", spec.to_str().unwrap(), "--executor", "slurm", "-q"];
    // Task 1 of s0 stops after writing part of its output.
    let o = sluice(tmp.path(), &args, &[("SLUICE_TEST_PAUSE", "s0/1")]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (jobs, ids) = submission(&out);
    let s0 = jobs["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["phase"] == "s0")
        .unwrap();
    let element = s0["elements"]
        .as_array()
        .unwrap()
        .iter()
        .position(|e| e.as_array().unwrap().iter().any(|t| t == 1))
        .unwrap();
    let target = format!("{}_{element}", s0["job_id"].as_str().unwrap());
    let log = format!("{}{element}.log", s0["log_prefix"].as_str().unwrap());
    let queued = |id: &str| {
        let o = Command::new("squeue")
            .args(["-h", "-r", "-o", "%i"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .any(|l| l.trim() == id || l.trim().starts_with(&format!("{id}_")))
    };
    // Wait until the task is held mid-way, then kill its element.
    let start = std::time::Instant::now();
    while !std::fs::read_to_string(&log).is_ok_and(|l| l.contains("SLUICE_TEST_PAUSE")) {
        assert!(start.elapsed().as_secs() < 120, "the task never started");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert!(Command::new("scancel")
        .arg(&target)
        .status()
        .unwrap()
        .success());
    while ids.iter().any(|id| queued(id)) {
        assert!(start.elapsed().as_secs() < 300, "jobs still queued");
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    let status = stdout(&run_ok(tmp.path(), &["status", out.to_str().unwrap()]));
    let s0 = status.lines().find(|l| l.starts_with("s0 ")).unwrap();
    let cols: Vec<&str> = s0.split_whitespace().collect();
    assert_eq!((cols[2], cols[5]), ("3", "1"), "{status}");
    assert!(!out.join("stats.json").exists());

    let mut rerun = args.to_vec();
    rerun.push("--wait");
    run_ok(tmp.path(), &rerun);
    assert_eq!(shard_bytes(&local), shard_bytes(&out));
}
