//! `sluice status OUT`: where a run stands, per phase: tasks done (their
//! completion markers), running and pending (the Slurm queue), failed (an
//! array element that ran and left the queue without its tasks' markers,
//! with the tail of its log), and blocked (never started: their job was
//! cancelled, or waits, because an earlier phase failed).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{bail, Result};

use super::jobs::{queue, Submission};
use super::{Layout, PhaseRecord};
use crate::io::store;

/// Lines of a failed element's log shown.
const LOG_TAIL: usize = 8;

#[derive(Default)]
struct Counts {
    done: usize,
    running: usize,
    pending: usize,
    failed: usize,
    blocked: usize,
}

/// The report `sluice status` prints.
pub fn report(out: &Path) -> Result<String> {
    let layout = Layout::new(out);
    let phases_path = layout.work.join("phases.json");
    if !store::exists(&phases_path)? {
        bail!(
            "{} holds no sluice run (no _work/phases.json)",
            out.display()
        );
    }
    let phases: Vec<PhaseRecord> = crate::io::writer::read_work_json(&phases_path)?;
    let sub = Submission::load(&layout)?;
    let q = match &sub {
        Some(_) => queue()?,
        None => Default::default(),
    };
    let mut text = String::new();
    let _ = writeln!(
        text,
        "{:<36} {:>6} {:>6} {:>8} {:>8} {:>7} {:>8}",
        "phase", "tasks", "done", "running", "pending", "failed", "blocked"
    );
    let mut notes = String::new();
    let mut failed_phase: Option<String> = None;
    let mut all_done = true;
    for p in &phases {
        let mut c = Counts::default();
        let finished = layout.done(&p.name)?;
        let done: Vec<bool> = (0..p.tasks).map(|t| finished.contains_key(&t)).collect();
        c.done = done.iter().filter(|d| **d).count();
        let mut accounted = vec![false; p.tasks];
        for job in sub
            .iter()
            .flat_map(|s| &s.jobs)
            .filter(|j| j.phase == p.name)
        {
            for (e, tasks) in job.elements.iter().enumerate() {
                let open: Vec<usize> = tasks
                    .iter()
                    .copied()
                    .filter(|&t| t < p.tasks && !done[t])
                    .collect();
                if open.is_empty() {
                    continue;
                }
                // squeue -r lists every element, pending ones included.
                let queued = q.get(&format!("{}_{e}", job.job_id));
                for &t in &open {
                    accounted[t] = true;
                }
                match queued {
                    Some(s) if s.state == "R" || s.state == "CG" => c.running += open.len(),
                    Some(s) if s.reason.contains("DependencyNeverSatisfied") => {
                        c.blocked += open.len()
                    }
                    Some(_) => c.pending += open.len(),
                    // Left the queue without having started: cancelled
                    // (an earlier phase failed, or scancel).
                    None if !Path::new(&format!("{}{e}.log", job.log_prefix)).exists() => {
                        c.blocked += open.len()
                    }
                    None => {
                        c.failed += open.len();
                        let log = format!("{}{e}.log", job.log_prefix);
                        let _ = writeln!(
                            notes,
                            "{}: tasks {open:?} failed (job {}_{e}); log {log}:",
                            p.name, job.job_id
                        );
                        for line in tail(Path::new(&log)) {
                            let _ = writeln!(notes, "    {line}");
                        }
                    }
                }
            }
        }
        // Tasks in no submitted element: waiting for a submission.
        c.pending += (0..p.tasks).filter(|&t| !done[t] && !accounted[t]).count();
        let _ = writeln!(
            text,
            "{:<36} {:>6} {:>6} {:>8} {:>8} {:>7} {:>8}",
            p.name, p.tasks, c.done, c.running, c.pending, c.failed, c.blocked
        );
        if c.done < p.tasks {
            all_done = false;
        }
        if c.blocked > 0 {
            let why = match &failed_phase {
                Some(f) => format!("phase {f} failed"),
                None => "their jobs were cancelled".into(),
            };
            let _ = writeln!(notes, "{}: {} tasks not started: {why}", p.name, c.blocked);
        }
        if c.failed > 0 && failed_phase.is_none() {
            failed_phase = Some(p.name.clone());
        }
    }
    let stats = layout.out.join("stats.json");
    if all_done && store::exists(&stats)? {
        let _ = writeln!(text, "complete: {}", stats.display());
    } else if let Some(s) = &sub {
        let finishing = s.finish_job.as_ref().is_some_and(|id| q.contains_key(id));
        if all_done && !finishing {
            let _ = writeln!(
                notes,
                "every phase is done but stats.json is missing; the finishing job failed, log {}:",
                s.finish_log
            );
            for line in tail(Path::new(&s.finish_log)) {
                let _ = writeln!(notes, "    {line}");
            }
        }
    }
    if failed_phase.is_some() || notes.contains("not started") {
        let _ = writeln!(
            notes,
            "rerun the same `sluice run ... --executor slurm` to resubmit only the unfinished tasks"
        );
    }
    text.push_str(&notes);
    Ok(text)
}

/// The last lines of a log ("(no log)" when it is missing).
fn tail(path: &Path) -> Vec<String> {
    match std::fs::read_to_string(path) {
        Ok(s) => {
            let lines: Vec<&str> = s.lines().collect();
            lines[lines.len().saturating_sub(LOG_TAIL)..]
                .iter()
                .map(|l| l.to_string())
                .collect()
        }
        Err(_) => vec!["(no log)".into()],
    }
}
