//! The Slurm executor: each phase of the plan becomes `sbatch --array` jobs
//! whose elements run `sluice task` on a share of the phase's unfinished
//! tasks, with the same binary and spec; phases are chained with
//! `--dependency=afterok`, and a last job (`sluice task --finish`) writes
//! `stats.json`. Tasks are the local executor's tasks, with the same
//! completion markers, so a rerun submits only what is not done and the
//! output is the same bytes as a local run.
//!
//! A submission is recorded in `_work/slurm/jobs.json` (job ids, which
//! tasks each array element runs, where its log is) for `sluice status`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};

use super::jobs::{queue, JobRecord, Queued, Submission};
use super::{prepare, Layout, Role, RunOptions};
use crate::io::writer::write_atomic;
use crate::pipeline::spec::{SlurmSpec, Spec};
use crate::stats::RunStats;

/// `sluice run --executor slurm` settings: the spec's `[slurm]` with the
/// flags laid over it.
#[derive(Clone, Debug, Default)]
pub struct SlurmOptions {
    pub settings: SlurmSpec,
    /// Print the sbatch scripts; submit nothing, write nothing.
    pub dry_run: bool,
    /// Wait for the jobs and report like a local run.
    pub wait: bool,
}

/// Stops when jobs of an earlier submission to this output are still
/// queued or running: a second run would race them. `on_slurm`: the caller
/// is submitting, so the queue must be readable; a local run on a machine
/// that cannot read it (no Slurm there) goes on.
pub(crate) fn refuse_if_queued(layout: &Layout, on_slurm: bool) -> Result<()> {
    let Some(old) = Submission::load(layout)? else {
        return Ok(());
    };
    let q = match queue() {
        Ok(q) => q,
        Err(_) if !on_slurm => return Ok(()),
        Err(e) => return Err(e),
    };
    let alive: Vec<String> = old
        .job_ids()
        .into_iter()
        .filter(|id| in_queue(&q, id))
        .collect();
    if !alive.is_empty() {
        bail!(
            "jobs of an earlier submission to {} are still queued or running ({}); \
             wait for them (`sluice status {}`) or cancel them (`scancel {}`)",
            layout.out.display(),
            alive.join(", "),
            layout.out.display(),
            alive.join(" ")
        );
    }
    Ok(())
}

/// Whether job `id` (or any of its array elements) is still queued.
fn in_queue(queue: &BTreeMap<String, Queued>, id: &str) -> bool {
    let prefix = format!("{id}_");
    queue.keys().any(|k| k == id || k.starts_with(&prefix))
}

/// The cluster's MaxArraySize: array indexes must stay below it.
fn max_array_size() -> Result<usize> {
    let out = Command::new("scontrol")
        .args(["show", "config"])
        .output()
        .context("cannot run scontrol: is this a Slurm login node?")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let size = text
        .lines()
        .find(|l| l.trim_start().starts_with("MaxArraySize"))
        .and_then(|l| l.split('=').nth(1))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(1001);
    Ok(size)
}

fn sbatch(script: &Path, after: &[String]) -> Result<String> {
    let mut cmd = Command::new("sbatch");
    cmd.arg("--parsable");
    if !after.is_empty() {
        cmd.arg(format!("--dependency=afterok:{}", after.join(":")));
    }
    let out = cmd
        .arg(script)
        .output()
        .context("cannot run sbatch: is this a Slurm login node?")?;
    if !out.status.success() {
        bail!(
            "sbatch {} failed: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    // --parsable prints `id` or `id;cluster`.
    let text = String::from_utf8_lossy(&out.stdout);
    let id = text.trim().split(';').next().unwrap_or("").to_string();
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
        bail!("sbatch printed no job id: {text:?}");
    }
    Ok(id)
}

/// A single-quoted shell word.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The `#SBATCH` lines every job of the run shares.
fn header(s: &SlurmSpec, name: &str, log: &Path, cwd: &Path) -> String {
    let mut h = String::from("#!/bin/bash\n");
    let mut line = |opt: String| {
        let _ = writeln!(h, "#SBATCH {opt}");
    };
    line(format!("--job-name={name}"));
    line(format!("--output={}", log.display()));
    line(format!("--chdir={}", cwd.display()));
    if let Some(p) = &s.partition {
        line(format!("--partition={p}"));
    }
    if let Some(a) = &s.account {
        line(format!("--account={a}"));
    }
    if let Some(t) = &s.time {
        line(format!("--time={t}"));
    }
    if let Some(c) = s.cpus_per_task {
        line(format!("--cpus-per-task={c}"));
    }
    if let Some(m) = &s.mem {
        line(format!("--mem={m}"));
    }
    for a in &s.sbatch_args {
        line(a.clone());
    }
    h
}

/// Submits the run (or, with `dry_run`, prints what it would submit).
pub fn submit(
    spec_path: &Path,
    spec: &Spec,
    opts: &RunOptions,
    slurm: &SlurmOptions,
) -> Result<()> {
    let s = &slurm.settings;
    let tasks_per_job = s.tasks_per_job.unwrap_or(1);
    if tasks_per_job == 0 {
        bail!("--tasks-per-job must be at least 1");
    }
    if s.max_array == Some(0) || s.max_running == Some(0) {
        bail!("--max-array and --max-running must be at least 1");
    }
    let layout = Layout::new(&spec.output.dir);
    // A dry run writes nothing, so it races nothing.
    let _lock = match slurm.dry_run {
        true => None,
        false => Some(super::lock::RunLock::acquire(&layout.out)?),
    };
    refuse_if_queued(&layout, true)?;
    let role = if slurm.dry_run {
        Role::DryRun
    } else {
        Role::Driver
    };
    let prepared = prepare(spec, opts, role)?;
    let plan = prepared.plan(opts.workers);
    if !slurm.dry_run {
        prepared.record_phases(&plan)?;
    }
    let array_max = match max_array_size() {
        Ok(n) => n,
        // A dry run may be made away from the cluster.
        Err(_) if slurm.dry_run => 1001,
        Err(e) => return Err(e),
    };
    let per_job = s.max_array.unwrap_or(array_max).min(array_max).max(1);
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let spec_abs = spec_path
        .canonicalize()
        .with_context(|| format!("cannot find {}", spec_path.display()))?;
    let exe = std::env::current_exe().context("cannot locate the sluice binary")?;
    let number = Submission::load(&layout)?.map_or(1, |o| o.number + 1);
    let dir = cwd.join(Submission::dir(&layout));
    let logs = dir.join("logs").join(number.to_string());
    let scripts = dir.join("scripts").join(number.to_string());
    if !slurm.dry_run {
        std::fs::create_dir_all(&logs)
            .with_context(|| format!("cannot create {}", logs.display()))?;
        std::fs::create_dir_all(&scripts)
            .with_context(|| format!("cannot create {}", scripts.display()))?;
    }
    let prefix = s.job_name.clone().unwrap_or_else(|| "sluice".into());
    let mut workers = match s.cpus_per_task {
        Some(c) => c.to_string(),
        None => "1".into(),
    };
    // The workers rebuild the same spec: the same overrides, quoted for sh.
    let mut finish_flags = String::new();
    for o in &opts.overrides {
        let flag = format!(" --set '{}'", o.replace('\'', "'\\''"));
        workers.push_str(&flag);
        finish_flags.push_str(&flag);
    }
    let mut sub = Submission {
        number,
        jobs: vec![],
        finish_job: None,
        finish_log: logs.join("finish.log").display().to_string(),
    };
    // The jobs the next phase waits for: the last phase that had work.
    let mut after: Vec<String> = vec![];
    let mut total = 0;
    for phase in &plan.phases {
        let name = phase.name();
        let pending = prepared.pending(phase)?;
        if pending.is_empty() {
            continue;
        }
        total += pending.len();
        let elements: Vec<Vec<usize>> = pending.chunks(tasks_per_job).map(|c| c.to_vec()).collect();
        let mut ids = vec![];
        for (chunk, elems) in elements.chunks(per_job).enumerate() {
            let log_prefix = logs.join(format!("{name}-{chunk}-")).display().to_string();
            let mut script = header(
                s,
                &format!("{prefix}-{name}"),
                Path::new(&format!("{log_prefix}%a.log")),
                &cwd,
            );
            let throttle = s.max_running.map(|m| format!("%{m}")).unwrap_or_default();
            let _ = writeln!(script, "#SBATCH --array=0-{}{throttle}", elems.len() - 1);
            script.push_str("set -u\nTASKS=(\n");
            for e in elems {
                let list: Vec<String> = e.iter().map(|t| t.to_string()).collect();
                let _ = writeln!(script, "  {}", list.join(","));
            }
            let _ = writeln!(
                script,
                ")\nexec {} task {} --phase {} --tasks \"${{TASKS[$SLURM_ARRAY_TASK_ID]}}\" --workers {workers}",
                quote(&exe.display().to_string()),
                quote(&spec_abs.display().to_string()),
                quote(&name)
            );
            let path = scripts.join(format!("{name}-{chunk}.sh"));
            let id = if slurm.dry_run {
                println!(
                    "# {} ({} tasks){}\n{script}",
                    path.display(),
                    elems.iter().map(Vec::len).sum::<usize>(),
                    if after.is_empty() {
                        String::new()
                    } else {
                        format!(
                            ", after the jobs of the previous phase ({})",
                            after.join(", ")
                        )
                    },
                );
                format!("<{name}-{chunk}>")
            } else {
                std::fs::write(&path, &script)
                    .with_context(|| format!("cannot write {}", path.display()))?;
                sbatch(&path, &after)?
            };
            sub.jobs.push(JobRecord {
                phase: name.clone(),
                job_id: id.clone(),
                elements: elems.to_vec(),
                log_prefix,
            });
            ids.push(id);
        }
        after = ids;
    }
    let mut script = header(
        s,
        &format!("{prefix}-finish"),
        Path::new(&sub.finish_log),
        &cwd,
    );
    let _ = writeln!(
        script,
        "exec {} task {} --finish{finish_flags}",
        quote(&exe.display().to_string()),
        quote(&spec_abs.display().to_string())
    );
    let path = scripts.join("finish.sh");
    if slurm.dry_run {
        println!("# {} (stats.json, clean-up)\n{script}", path.display());
        return Ok(());
    }
    std::fs::write(&path, &script).with_context(|| format!("cannot write {}", path.display()))?;
    sub.finish_job = Some(sbatch(&path, &after)?);
    write_atomic(
        &Submission::path(&layout),
        &serde_json::to_vec_pretty(&sub)?,
    )?;
    if !opts.quiet {
        crate::msg::info(format!(
            "submitted {} array jobs ({} tasks) and a finishing job to Slurm; \
             follow with `sluice status {}`",
            sub.jobs.len(),
            total,
            layout.out.display()
        ));
    }
    if slurm.wait {
        wait(&layout, &sub)?;
    }
    Ok(())
}

/// Polls the queue until the submission's jobs are gone; then the run is
/// complete (its stats printed) or an error tells what failed.
fn wait(layout: &Layout, sub: &Submission) -> Result<()> {
    let ids = sub.job_ids();
    loop {
        let q = queue()?;
        if !ids.iter().any(|id| in_queue(&q, id)) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    let stats = layout.out.join("stats.json");
    if crate::io::store::exists(&stats)? {
        let s: RunStats = crate::io::writer::read_work_json(&stats)?;
        print!("{}", s.table());
        return Ok(());
    }
    bail!(
        "the run did not complete:\n{}",
        super::status::report(&layout.out)?
    )
}
