//! What a Slurm submission leaves for later (the jobs it submitted, in
//! `jobs.json`) and what the queue says of them: written by the Slurm
//! executor (`slurm.rs`), read by it and by `sluice status` (`status.rs`),
//! which thus need not know each other.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::Layout;

/// One sbatch array job: a chunk of one phase's array elements.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct JobRecord {
    pub phase: String,
    pub job_id: String,
    /// The tasks of each array element (element `e` runs `elements[e]`).
    pub elements: Vec<Vec<usize>>,
    /// Element `e`'s log is `{log_prefix}{e}.log`.
    pub log_prefix: String,
}

/// What one `sluice run --executor slurm` submitted.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Submission {
    /// 1 for the first submission to this output folder, then 2, 3, ...
    pub number: usize,
    pub jobs: Vec<JobRecord>,
    /// The job that writes `stats.json` after the last phase.
    pub finish_job: Option<String>,
    pub finish_log: String,
}

impl Submission {
    /// Where a submission's scripts, logs and `jobs.json` go: `_work/slurm/`
    /// on a shared filesystem; for an `s3://` output, which Slurm cannot
    /// write logs to, `.sluice-slurm/<bucket>/<prefix>/` in the folder the
    /// run is submitted from (shared with the compute nodes, as the spec and
    /// binary already are).
    pub fn dir(layout: &Layout) -> PathBuf {
        match layout.out.to_str().and_then(|s| s.strip_prefix("s3://")) {
            Some(rest) => Path::new(".sluice-slurm").join(rest.trim_end_matches('/')),
            None => layout.work.join("slurm"),
        }
    }

    pub fn path(layout: &Layout) -> PathBuf {
        Submission::dir(layout).join("jobs.json")
    }

    pub fn load(layout: &Layout) -> Result<Option<Submission>> {
        let path = Submission::path(layout);
        if !path.exists() {
            return Ok(None);
        }
        crate::io::writer::read_work_json(&path).map(Some)
    }

    pub(crate) fn job_ids(&self) -> Vec<String> {
        self.jobs
            .iter()
            .map(|j| j.job_id.clone())
            .chain(self.finish_job.clone())
            .collect()
    }
}

/// A queued job or array element as squeue shows it: state code and reason.
#[derive(Clone, Debug)]
pub struct Queued {
    pub state: String,
    pub reason: String,
}

/// Everything in the queue, by job id (`123`) or array element
/// (`123_4`): squeue's `-r` lists pending elements one per line.
pub fn queue() -> Result<BTreeMap<String, Queued>> {
    let out = Command::new("squeue")
        .args(["-h", "-r", "-o", "%i|%t|%r"])
        .output()
        .context("cannot run squeue: is this a Slurm login node?")?;
    if !out.status.success() {
        bail!(
            "squeue failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let mut m = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let f: Vec<&str> = line.trim().split('|').collect();
        if let [id, state, reason] = f[..] {
            m.insert(
                id.to_string(),
                Queued {
                    state: state.to_string(),
                    reason: reason.to_string(),
                },
            );
        }
    }
    Ok(m)
}
