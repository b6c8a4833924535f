//! Runs a pipeline on this machine: phases in order, the tasks of a phase in
//! parallel on a rayon pool. A finished task writes a marker holding its
//! stats; a rerun skips marked tasks, so a killed run resumes where it stopped.

mod checks;
mod excluded;
pub mod jobs;
mod layout;
pub mod lock;
mod output;
pub mod plan;
mod profile;
pub mod progress;
pub mod slurm;
pub mod status;
mod task;

pub use checks::space_needed;
use checks::{changed_since_planned, preflight, warn_if_short_of_space};
pub use layout::Layout;
use output::{check_plan, prepare_output};
use task::maybe_abort;

use std::path::Path;
use std::time::{Instant, SystemTime};

use anyhow::{bail, Context, Result};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::io::discover::{discover, InputFile, InputTask};
use crate::io::store;
use crate::io::writer::{write_atomic, ShardPolicy};
use crate::ops::{build_steps, GlobalCtx};
use crate::pipeline::spec::Spec;
use crate::stats::{OpStats, PhaseTime, RunStats, TaskStats};
use plan::{Phase, Plan};
use progress::Progress;

/// Options of `sluice run` that are not part of the spec.
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub workers: usize,
    pub force: bool,
    /// No progress output (tests).
    pub quiet: bool,
    /// `--set STEP.KEY=VALUE`, in order (see [`Spec::set`]).
    pub overrides: Vec<String>,
}

/// Runs a pipeline spec; returns the run's stats (also in `stats.json`).
pub fn run(spec_path: &Path, opts: &RunOptions) -> Result<RunStats> {
    run_spec(&load_spec(spec_path, opts)?, opts)
}

/// Reads a pipeline spec, with the options that change it applied.
pub fn load_spec(spec_path: &Path, opts: &RunOptions) -> Result<Spec> {
    let mut spec = Spec::load(spec_path)?;
    for o in &opts.overrides {
        spec.set(o)?;
    }
    Ok(spec)
}

/// Who prepares a run: the driver (the local executor, a Slurm submission)
/// sets up the output folder and records the plan; a worker (`sluice task`)
/// only checks that it runs the recorded plan; a dry run writes nothing.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Driver,
    Worker,
    DryRun,
}

/// A run's fixed parts, which the plan borrows.
pub(crate) struct Prepared {
    pub steps: Vec<crate::ops::Step>,
    pub layout: Layout,
    pub tasks: Vec<InputTask>,
    pub policy: ShardPolicy,
}

pub(crate) fn prepare(spec: &Spec, opts: &RunOptions, role: Role) -> Result<Prepared> {
    let steps = build_steps(spec)?;
    if let Some(s) = steps[..steps.len().saturating_sub(1)]
        .iter()
        .find(|s| matches!(&s.op, crate::ops::Op::Sink(_)))
    {
        bail!(
            "step {} writes the run's output and must be the last step",
            s.label
        );
    }
    let layout = Layout::new(&spec.output.dir);
    match role {
        Role::Driver => prepare_output(&layout, opts.force)?,
        Role::Worker if !store::exists(&layout.work.join("plan.json"))? => bail!(
            "{} holds no started run (no _work/plan.json); start it with `sluice run`",
            layout.out.display()
        ),
        _ => {}
    }
    let tasks = discover(&spec.input)?;
    if tasks.is_empty() {
        bail!("[input] paths match no input file");
    }
    let out = match store::is_remote(&layout.out) {
        true => Ok(layout.out.clone()),
        false => layout.out.canonicalize(),
    };
    if let Ok(out) = out {
        if let Some(t) = tasks.iter().find(|t| {
            let p = &t.file.path;
            match store::is_remote(p) {
                true => p.starts_with(&out),
                false => p.canonicalize().is_ok_and(|p| p.starts_with(&out)),
            }
        }) {
            bail!(
                "the input file {} lies inside the output folder {}: choose an output folder outside the input",
                t.file.path.display(),
                layout.out.display()
            );
        }
    }
    if role != Role::Worker {
        preflight(&steps, &tasks[0], spec)?;
    }
    if role != Role::DryRun {
        check_plan(&layout, spec, &tasks)?;
    }
    let policy = ShardPolicy {
        rows_per_shard: spec.output.rows_per_shard,
        bytes_per_shard: spec.output.bytes_per_shard,
        compression: spec.output.parquet_compression()?,
    };
    Ok(Prepared {
        steps,
        layout,
        tasks,
        policy,
    })
}

/// A phase as `_work/phases.json` lists it, for `sluice status`.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct PhaseRecord {
    pub name: String,
    pub tasks: usize,
}

impl Prepared {
    pub(crate) fn plan(&self, workers: usize) -> Plan<'_> {
        let input_bytes = self.tasks.iter().map(|t| t.bytes).sum();
        plan::plan(&self.steps, |label| GlobalCtx {
            work: self.layout.work.join(label.replace(':', "-")),
            output: self.layout.out.clone(),
            tasks: self.tasks.len(),
            input_bytes,
            workers: workers.max(1),
        })
    }

    fn runner<'a>(&'a self, spec: &'a Spec, plan: &'a Plan<'a>, quiet: bool) -> Runner<'a> {
        Runner {
            spec,
            layout: &self.layout,
            tasks: &self.tasks,
            plan,
            policy: self.policy.clone(),
            quiet,
        }
    }

    pub(crate) fn task_count(&self, phase: &Phase) -> usize {
        phase.tasks(self.tasks.len())
    }

    /// The tasks of `phase` without a completion marker.
    pub(crate) fn pending(&self, phase: &Phase) -> Result<Vec<usize>> {
        let done = self.layout.done(&phase.name())?;
        Ok((0..self.task_count(phase))
            .filter(|t| !done.contains_key(t))
            .collect())
    }

    /// Writes `_work/phases.json`: what `sluice status` counts against.
    pub(crate) fn record_phases(&self, plan: &Plan<'_>) -> Result<()> {
        let phases: Vec<PhaseRecord> = plan
            .phases
            .iter()
            .map(|p| PhaseRecord {
                name: p.name(),
                tasks: self.task_count(p),
            })
            .collect();
        write_atomic(
            &self.layout.work.join("phases.json"),
            &serde_json::to_vec_pretty(&phases)?,
        )
    }
}

fn pool(workers: usize) -> Result<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(workers.max(1))
        .build()
        .context("cannot start the worker pool")
}

/// The local executor: every phase on this machine's worker pool.
pub fn run_spec(spec: &Spec, opts: &RunOptions) -> Result<RunStats> {
    let layout = Layout::new(&spec.output.dir);
    let _lock = lock::RunLock::acquire(&layout.out)?;
    slurm::refuse_if_queued(&layout, false)?;
    let prepared = prepare(spec, opts, Role::Driver)?;
    let plan = prepared.plan(opts.workers);
    prepared.record_phases(&plan)?;
    warn_if_short_of_space(&prepared, &plan);
    let runner = prepared.runner(spec, &plan, opts.quiet);
    let pool = pool(opts.workers)?;
    let mut times = vec![];
    for phase in &plan.phases {
        times.push(pool.install(|| runner.run_phase(phase, None))?);
    }
    runner.finish(times)
}

/// `sluice task`: runs the given tasks (all when empty) of one phase of a
/// started run, as a Slurm array element does. Tasks already done are
/// skipped.
pub fn run_tasks(spec: &Spec, opts: &RunOptions, phase: &str, only: &[usize]) -> Result<()> {
    let prepared = prepare(spec, opts, Role::Worker)?;
    let plan = prepared.plan(opts.workers);
    let Some(ph) = plan.phases.iter().find(|p| p.name() == phase) else {
        let names: Vec<String> = plan.phases.iter().map(|p| p.name()).collect();
        bail!(
            "this run has no phase `{phase}`; its phases are {}",
            names.join(", ")
        );
    };
    let count = prepared.task_count(ph);
    if let Some(t) = only.iter().find(|&&t| t >= count) {
        bail!(
            "phase {phase} has tasks 0 to {}, not {t}",
            count.saturating_sub(1)
        );
    }
    let runner = prepared.runner(spec, &plan, opts.quiet);
    let only = (!only.is_empty()).then_some(only);
    pool(opts.workers)?.install(|| runner.run_phase(ph, only))?;
    Ok(())
}

/// `sluice task --finish`: once every phase is done, the run's stats
/// (`stats.json`) and the clean-up, as the local executor ends. Phase times
/// come from the completion markers' times.
pub fn finish_run(spec: &Spec, opts: &RunOptions) -> Result<RunStats> {
    let prepared = prepare(spec, opts, Role::Worker)?;
    let plan = prepared.plan(opts.workers);
    let mut times = vec![];
    let mut last_end: Option<SystemTime> = None;
    for phase in &plan.phases {
        let pending = prepared.pending(phase)?;
        if !pending.is_empty() {
            bail!(
                "phase {} has {} unfinished tasks (first: {}); rerun to complete them",
                phase.name(),
                pending.len(),
                pending[0]
            );
        }
        let count = prepared.task_count(phase);
        let stamps: Vec<SystemTime> = prepared
            .layout
            .done(&phase.name())?
            .into_iter()
            .filter(|(t, _)| *t < count)
            .map(|(_, when)| when)
            .collect();
        let end = stamps.iter().max().copied();
        let start = last_end.or_else(|| stamps.iter().min().copied());
        let seconds = match (start, end) {
            (Some(s), Some(e)) => e.duration_since(s).map_or(0.0, |d| d.as_secs_f64()),
            _ => 0.0,
        };
        last_end = end.or(last_end);
        times.push(PhaseTime {
            phase: phase.name(),
            tasks: count,
            resumed: 0,
            seconds,
        });
    }
    prepared.runner(spec, &plan, true).finish(times)
}

/// What a panic said.
fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".into()
    }
}

impl Runner<'_> {
    /// Task `t` of the first phase read a file that has changed since the plan.
    fn input_changed(&self, t: usize) -> Option<anyhow::Error> {
        changed_since_planned(&self.tasks[t].file)
    }

    /// After every phase: merges the task stats into `stats.json` and
    /// removes the work files (unless `keep_work`).
    fn finish(&self, times: Vec<PhaseTime>) -> Result<RunStats> {
        let (plan, layout, spec) = (self.plan, self.layout, self.spec);
        // A file written after its tasks read it: the documents counted
        // are no longer the file's (its tasks checked it when they ended).
        let mut files: Vec<&InputFile> = self.tasks.iter().map(|t| t.file.as_ref()).collect();
        files.dedup_by(|a, b| a.path == b.path);
        if let Some(e) = files.into_iter().find_map(changed_since_planned) {
            return Err(e);
        }
        let mut steps_stats: Vec<OpStats> = vec![];
        for (k, _) in plan.segments.iter().enumerate() {
            let mut merged = TaskStats::default();
            for t in 0..self.tasks.len() {
                let path = layout.marker(&Phase::Stream(k).name(), t);
                let bytes = store::read(&path)
                    .with_context(|| format!("cannot read task marker {}", path.display()))?;
                let s: TaskStats = serde_json::from_slice(&bytes).with_context(|| {
                    format!(
                        "task marker {} is damaged; delete it to redo that task",
                        path.display()
                    )
                })?;
                merged.merge(&s);
            }
            steps_stats.extend(merged.steps);
        }
        let last = plan.segments.last().and_then(|s| s.observed_by.as_ref());
        if let Some(g) = last {
            if let plan::Observing::Sink(sink) = &g.op {
                let mut s = sink.stats(&g.ctx)?;
                s.step = g.label.clone();
                steps_stats.push(s);
            }
        }
        let mut stats = RunStats::from_steps(steps_stats, times)?;
        stats.notes = plan
            .segments
            .iter()
            .filter_map(|s| s.observed_by.as_ref())
            .filter_map(|g| g.op.phased().summary(&g.ctx))
            .collect();
        write_atomic(
            &layout.out.join("stats.json"),
            &serde_json::to_vec_pretty(&stats)?,
        )?;
        if !spec.output.keep_work {
            for k in 0..plan.segments.len().saturating_sub(1) {
                let _ = store::remove_all(&layout.intermediate(k));
            }
            for seg in &plan.segments {
                if let Some(g) = &seg.observed_by {
                    let _ = store::remove_all(&g.ctx.work);
                }
            }
        }
        Ok(stats)
    }
}

struct Runner<'a> {
    spec: &'a Spec,
    layout: &'a Layout,
    tasks: &'a [InputTask],
    plan: &'a Plan<'a>,
    policy: ShardPolicy,
    quiet: bool,
}

impl Runner<'_> {
    /// Runs the unfinished tasks of `phase` (of `only`, when given).
    fn run_phase(&self, phase: &Phase, only: Option<&[usize]>) -> Result<PhaseTime> {
        let name = phase.name();
        let count = phase.tasks(self.tasks.len());
        let done = self.layout.done(&name)?;
        let pending: Vec<usize> = (0..count)
            .filter(|&t| only.is_none_or(|o| o.contains(&t)))
            .filter(|t| !done.contains_key(t))
            .collect();
        let start = Instant::now();
        let progress = Progress::start(&name, pending.len(), self.quiet);
        let failures: Vec<(usize, anyhow::Error)> = pending
            .par_iter()
            .filter_map(|&t| {
                let run = || match phase {
                    Phase::Stream(k) => self.run_stream_task(*k, t, &progress),
                    Phase::Global { step, spec, .. } => (spec.run)(&step.ctx, t)
                        .and_then(|_| {
                            maybe_abort(&name, t)?;
                            write_atomic(&self.layout.marker(&name, t), b"{}")
                        })
                        .with_context(|| format!("{} task {t}", step.label)),
                };
                // A panic (ours, or a library's on input it did not expect)
                // fails its task, as an error would, instead of the run.
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(run))
                    .unwrap_or_else(|panic| {
                        let what = match phase {
                            Phase::Stream(0) => self.tasks[t].describe(),
                            Phase::Stream(_) => format!("task {t}"),
                            Phase::Global { step, .. } => format!("{} task {t}", step.label),
                        };
                        let err = anyhow::anyhow!(
                            "{what}: {}: {}",
                            crate::msg::BUG,
                            panic_message(&panic)
                        );
                        match phase {
                            Phase::Stream(0) => self.input_changed(t).map_or(Err(err), Err),
                            _ => Err(err),
                        }
                    });
                progress.task_done();
                match result {
                    Ok(()) => None,
                    Err(e) => {
                        progress.println(&crate::msg::format(
                            crate::msg::Level::Error,
                            format!("task {t} of phase {name} failed: {e:#}"),
                        ));
                        Some((t, e))
                    }
                }
            })
            .collect();
        progress.finish();
        if !failures.is_empty() {
            store::discard_staged();
            let list: Vec<String> = failures
                .iter()
                .map(|(t, e)| format!("  task {t}: {e:#}"))
                .collect();
            bail!(
                "{} of {} tasks of phase {name} failed; the others' work is kept, rerun to retry:\n{}",
                failures.len(),
                pending.len(),
                list.join("\n")
            );
        }
        Ok(PhaseTime {
            phase: name,
            tasks: count,
            resumed: count - pending.len(),
            seconds: start.elapsed().as_secs_f64(),
        })
    }
}
