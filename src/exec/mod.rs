//! Runs a pipeline on this machine: phases in order, the tasks of a phase in
//! parallel on a rayon pool. A finished task writes a marker holding its
//! stats; a rerun skips marked tasks, so a killed run resumes where it stopped.

pub mod jobs;
pub mod lock;
pub mod plan;
pub mod progress;
pub mod slurm;
pub mod status;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use anyhow::{bail, Context, Result};
use arrow::array::{ArrayRef, BooleanArray, RecordBatch, StringArray};
use arrow::compute::filter_record_batch;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::io::discover::{discover, InputFile, InputTask};
use crate::io::writer::{is_shard_name, write_atomic, ShardPolicy, ShardWriter};
use crate::io::{reader, store};
use crate::ops::{build_steps, DocBatch, GlobalCtx, Observer, OpOutput, RowFilter};
use crate::pipeline::spec::Spec;
use crate::stats::{Count, OpStats, PhaseTime, RunStats, TaskStats};
use plan::{Phase, Plan, Segment};
use progress::Progress;

/// Options of `sluice run` that are not part of the spec.
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub workers: usize,
    pub force: bool,
    /// No progress output (tests).
    pub quiet: bool,
    /// `--no-shuffle`: sets `shuffle = false` on the `tokenize` step.
    pub no_shuffle: bool,
}

/// Where a run keeps its files.
pub struct Layout {
    pub out: PathBuf,
    pub work: PathBuf,
    pub excluded: PathBuf,
}

impl Layout {
    pub fn new(out: &Path) -> Layout {
        Layout {
            out: out.to_path_buf(),
            work: out.join("_work"),
            excluded: out.join("excluded"),
        }
    }
    pub fn marker(&self, phase: &str, task: usize) -> PathBuf {
        self.work
            .join("markers")
            .join(phase)
            .join(format!("{task:05}.json"))
    }
    /// The tasks of `phase` with a completion marker, and when each was
    /// written (one listing, not a look-up per task: on S3 that is one
    /// request per thousand tasks).
    pub fn done(&self, phase: &str) -> Result<std::collections::HashMap<usize, SystemTime>> {
        let dir = self.work.join("markers").join(phase);
        Ok(store::list_files_modified(&dir)?
            .into_iter()
            .filter_map(|(p, when)| {
                let name = p.file_name()?.to_str()?;
                Some((name.strip_suffix(".json")?.parse().ok()?, when))
            })
            .collect())
    }
    fn intermediate(&self, segment: usize) -> PathBuf {
        self.work.join(format!("s{segment}"))
    }
}

/// What the plan was made from; a rerun must match it to resume.
#[derive(Serialize, Deserialize, PartialEq)]
struct PlanRecord {
    spec: String,
    tasks: Vec<InputTask>,
}

/// Runs a pipeline spec; returns the run's stats (also in `stats.json`).
pub fn run(spec_path: &Path, opts: &RunOptions) -> Result<RunStats> {
    run_spec(&load_spec(spec_path, opts)?, opts)
}

/// Reads a pipeline spec, with the options that change it applied.
pub fn load_spec(spec_path: &Path, opts: &RunOptions) -> Result<Spec> {
    let mut spec = Spec::load(spec_path)?;
    if opts.no_shuffle {
        for step in spec.steps.iter_mut().filter(|s| s.op == "tokenize") {
            step.params
                .insert("shuffle".into(), toml::Value::Boolean(false));
        }
        // Part of the plan: a rerun without the flag is another run.
        spec.source.push_str("\n# --no-shuffle\n");
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
        .find(|s| matches!(&s.op, crate::ops::Op::Global(g) if g.is_sink()))
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

/// Checks the steps against the columns of the first input task before any
/// task runs, so that a step naming a column the rows will not have (a
/// `keep` column, a key) fails now, not hours in: the streaming ops run on
/// no rows, the global ops check what they need (as far as the columns
/// are known: an op that cannot say what its filter passes on ends the
/// check). A first file that cannot be read is left to its task to report.
fn preflight(steps: &[crate::ops::Step], first: &InputTask, spec: &Spec) -> Result<()> {
    let Ok(start) = reader::empty_batch(first, &spec.input) else {
        return Ok(());
    };
    let mut batch = start.batch;
    for step in steps {
        let failed = |e: anyhow::Error| {
            e.context(format!(
                "step {} (checked against the columns of {} before any task ran)",
                step.label,
                first.file.path.display()
            ))
        };
        match &step.op {
            crate::ops::Op::Stream(s) => batch = s.apply(batch).map_err(failed)?.batch,
            crate::ops::Op::Global(g) => {
                match g.check_input(&batch.data.schema()).map_err(failed)? {
                    Some(schema) => {
                        batch = DocBatch {
                            data: RecordBatch::new_empty(schema),
                            ..batch
                        }
                    }
                    None => return Ok(()),
                }
            }
        }
    }
    Ok(())
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

/// Work space per byte of input for each global step: the rows it observes
/// are written to `_work` between segments (LZ4, larger than the input's
/// zstd), beside the op's own files (keys, signatures, vectors, sorted
/// runs). Measured on the fixtures' dedup pipeline (see README, Disk
/// space), rounded up.
const WORK_BYTES_PER_INPUT_BYTE_PER_GLOBAL_STEP: u64 = 4;

/// The disk a run needs at its peak: its output (at most about the input)
/// and its work files.
pub fn space_needed(input_bytes: u64, global_steps: usize) -> u64 {
    input_bytes.saturating_mul(1 + WORK_BYTES_PER_INPUT_BYTE_PER_GLOBAL_STEP * global_steps as u64)
}

/// Free bytes on the file system holding `dir` (None where unknown).
/// `SLUICE_TEST_FREE_BYTES` stands in for the file system's answer (tests).
fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    if let Ok(v) = std::env::var("SLUICE_TEST_FREE_BYTES") {
        return v.parse().ok();
    }
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a NUL-terminated path and a statvfs to fill.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    Some(st.f_bavail as u64 * st.f_frsize as u64)
}

/// Says at the start when the output's disk has less free space than the
/// run is likely to need (a run that fills it fails its tasks one by one).
fn warn_if_short_of_space(prepared: &Prepared, plan: &Plan<'_>) {
    if store::is_remote(&prepared.layout.out) {
        return;
    }
    let globals = plan
        .segments
        .iter()
        .filter(|s| s.observed_by.is_some())
        .count();
    let input: u64 = prepared.tasks.iter().map(|t| t.bytes).sum();
    let need = space_needed(input, globals);
    if let Some(free) = free_bytes(&prepared.layout.out) {
        if free < need {
            eprintln!(
                "warning: {} has {:.1} GB free; a run over {:.1} GB of input with {globals} \
                 global step(s) needs about {:.1} GB at its peak (output and _work; see README, \
                 Disk space)",
                prepared.layout.out.display(),
                free as f64 / 1e9,
                input as f64 / 1e9,
                need as f64 / 1e9
            );
        }
    }
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

/// Why an input file is not the one planned (its size or write time has
/// changed), or None when it is the same, or cannot be looked at.
fn changed_since_planned(f: &InputFile) -> Option<anyhow::Error> {
    let (size, modified) = match store::stat(&f.path) {
        Ok(Some(s)) => s,
        Ok(None) => {
            return Some(anyhow::anyhow!(
                "{} is gone: it was removed during the run, which cannot count its documents; \
                 rerun with --force once the input is final",
                f.path.display()
            ))
        }
        Err(_) => return None,
    };
    let modified = modified
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos() as u64);
    let what = if size != f.size {
        format!("{} bytes when the run was planned, {size} now", f.size)
    } else if modified != f.modified {
        "rewritten since the run was planned".to_string()
    } else {
        return None;
    };
    Some(anyhow::anyhow!(
        "{} changed during the run ({what}): what was read of it cannot be trusted; rerun with \
         --force once the input is final",
        f.path.display()
    ))
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
        if let Some(g) = plan.segments.last().and_then(|s| s.observed_by.as_ref()) {
            let mut s = g.op.sink_stats(&g.ctx)?;
            s.step = g.label.clone();
            steps_stats.push(s);
        }
        let mut stats = RunStats::from_steps(steps_stats, times)?;
        stats.notes = plan
            .segments
            .iter()
            .filter_map(|s| s.observed_by.as_ref())
            .filter_map(|g| g.op.summary(&g.ctx))
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

/// With `force`, or when the folder holds no plan of an earlier run,
/// removes what a sluice run may have left there (its shards, `excluded/`,
/// `_work/`, `stats.json`), so that a new run never mixes with old output.
/// Other files stay. The driver holds the output's lock by now, which made
/// the folder and checked it is writable.
fn prepare_output(layout: &Layout, force: bool) -> Result<()> {
    let out = &layout.out;
    let plan = layout.work.join("plan.json");
    let planned = store::exists(&plan)?;
    if !force && planned {
        return Ok(());
    }
    // The plan goes first: a crash during the clean-up then cleans again.
    if planned {
        store::remove_file(&plan)?;
    }
    for path in store::list_files(out)? {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let ours = name
            .strip_prefix('.')
            .unwrap_or(&name)
            .strip_prefix("part-")
            .and_then(|r| r.split('-').next())
            .is_some_and(|t| t.len() >= 5 && is_shard_name(&name, &format!("part-{t}")));
        let tokens = name
            .strip_prefix('.')
            .unwrap_or(&name)
            .starts_with("tokens-")
            && [".bin", ".idx", ".offsets", ".tmp"]
                .iter()
                .any(|e| name.ends_with(e));
        let report = [
            "stats.json",
            "tokenize_report.json",
            "mixture_report.json",
            "mixture_report.txt",
        ]
        .contains(&name.as_str());
        if ours || tokens || report {
            store::remove_file(&path)?;
        }
    }
    store::remove_all(&layout.work)?;
    store::remove_all(&layout.excluded)?;
    Ok(())
}

/// Records the plan on a first run; on a rerun, refuses to mix two runs.
fn check_plan(layout: &Layout, spec: &Spec, tasks: &[InputTask]) -> Result<()> {
    let record = PlanRecord {
        spec: spec.source.clone(),
        tasks: tasks.to_vec(),
    };
    let path = layout.work.join("plan.json");
    if store::exists(&path)? {
        let bytes = store::read(&path)?;
        let old: Option<PlanRecord> = serde_json::from_slice(&bytes).ok();
        if old.as_ref() != Some(&record) {
            let why = old.map_or("its plan is unreadable".into(), |o| {
                plan_change(&o, &record)
            });
            bail!(
                "{} holds a run of another spec or other input files ({why}); rerun with --force \
                 to start over (or choose another [output] dir)",
                layout.out.display()
            );
        }
        return Ok(());
    }
    write_atomic(&path, &serde_json::to_vec_pretty(&record)?)
}

/// What differs between a started run's plan and this one, for the message.
fn plan_change(old: &PlanRecord, new: &PlanRecord) -> String {
    if old.spec != new.spec {
        return "the spec has changed".into();
    }
    let files = |r: &PlanRecord| -> BTreeMap<PathBuf, Arc<InputFile>> {
        r.tasks
            .iter()
            .map(|t| (t.file.path.clone(), t.file.clone()))
            .collect()
    };
    let (before, now) = (files(old), files(new));
    for (path, f) in &now {
        let p = path.display();
        match before.get(path) {
            None => return format!("{p} is a new input file"),
            Some(o) if o.size != f.size => {
                return format!("{p} has changed: {} bytes, then {}", o.size, f.size)
            }
            Some(o) if o.modified != f.modified => {
                return format!("{p} has been written since the run started")
            }
            _ => {}
        }
    }
    if let Some(path) = before.keys().find(|p| !now.contains_key(*p)) {
        return format!("the input file {} is gone", path.display());
    }
    "the input is cut into other tasks".into()
}

struct Runner<'a> {
    spec: &'a Spec,
    layout: &'a Layout,
    tasks: &'a [InputTask],
    plan: &'a Plan<'a>,
    policy: ShardPolicy,
    quiet: bool,
}

/// Test hooks, each `<phase>/<task>`, acting inside that task after it has
/// written part of its output: `SLUICE_TEST_ABORT` aborts the process, as a
/// crash would; `SLUICE_TEST_PAUSE` holds the task for ten minutes (or the
/// seconds after an `@`: `s0/1@3`), so that a test can kill it or change
/// its input mid-task; `SLUICE_TEST_FAIL` fails the task with an error and
/// `SLUICE_TEST_PANIC` makes it panic, as a fault in an op would.
fn maybe_abort(phase: &str, task: usize) -> Result<()> {
    let here = format!("{phase}/{task}");
    let hook = |name: &str| std::env::var(name).ok();
    if hook("SLUICE_TEST_ABORT").as_deref() == Some(here.as_str()) {
        eprintln!("[sluice] SLUICE_TEST_ABORT: aborting in {here}");
        std::process::abort();
    }
    if let Some(v) = hook("SLUICE_TEST_PAUSE") {
        let (at, secs) = v.split_once('@').unwrap_or((v.as_str(), "600"));
        if at == here {
            eprintln!("[sluice] SLUICE_TEST_PAUSE: holding {here}");
            std::thread::sleep(std::time::Duration::from_secs_f64(
                secs.parse().unwrap_or(600.0),
            ));
        }
    }
    if hook("SLUICE_TEST_FAIL").as_deref() == Some(here.as_str()) {
        bail!("SLUICE_TEST_FAIL: failing {here}");
    }
    if hook("SLUICE_TEST_PANIC").as_deref() == Some(here.as_str()) {
        panic!("SLUICE_TEST_PANIC: panicking in {here}");
    }
    Ok(())
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
                    Phase::Global { step, phase: p, .. } => step
                        .op
                        .run_phase(&step.ctx, *p, t)
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
                            "{what}: internal error (a bug; please report it): {}",
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
                        progress
                            .println(&format!("[sluice] task {t} of phase {name} failed: {e:#}"));
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

    fn run_stream_task(&self, k: usize, t: usize, progress: &Progress) -> Result<()> {
        let seg: &Segment<'_> = &self.plan.segments[k];
        let last = k + 1 == self.plan.segments.len();
        let prefix = format!("part-{t:05}");
        // Each item: the rows and what came in (before a global op's filter
        // added copies; the reader's rows are what came in).
        type Source = Box<dyn Iterator<Item = Result<(OpOutput, Count)>> + Send>;
        let (mut source, mut first, where_): (Source, OpStats, String) = if k == 0 {
            let task = &self.tasks[t];
            (
                Box::new(reader::open(task, &self.spec.input)?.map(|r| {
                    r.map(|o| {
                        let c = count_of(&o.batch);
                        (o, c)
                    })
                })),
                OpStats::new("read"),
                task.describe(),
            )
        } else {
            let g = seg
                .opened_by
                .as_ref()
                .expect("segments after the first open with a global op");
            let filter =
                g.op.filter(&g.ctx, t)
                    .with_context(|| format!("{} task {t}", g.label))?;
            let dir = self.layout.intermediate(k - 1);
            let batches = read_intermediate(
                &dir,
                &prefix,
                &self.spec.input.text_column,
                &self.spec.input.id_column,
            )?;
            (
                Box::new(FilteredIter {
                    inner: batches,
                    filter,
                    row: 0,
                    finished: false,
                }),
                OpStats::new(g.label.clone()),
                format!("task {t}"),
            )
        };
        let mut stats: Vec<OpStats> = vec![];
        let to_sink = seg.observed_by.as_ref().is_some_and(|g| g.op.is_sink());
        let mut sink = if to_sink {
            None
        } else if last {
            Some(ShardWriter::new(
                &self.layout.out,
                &prefix,
                self.policy.clone(),
            )?)
        } else {
            // Work files are read once and deleted: fast compression beats small.
            let policy = ShardPolicy {
                rows_per_shard: usize::MAX,
                bytes_per_shard: None,
                compression: parquet::basic::Compression::LZ4_RAW,
            };
            Some(ShardWriter::new(
                &self.layout.intermediate(k),
                &prefix,
                policy,
            )?)
        };
        let mut observer: Option<Box<dyn Observer>> = match &seg.observed_by {
            Some(g) => Some(g.op.observer(&g.ctx, t)?),
            None => None,
        };
        let mut excluded = Excluded::new(
            self.layout,
            self.spec.output.excluded,
            &format!("s{k}-{prefix}"),
            &self.policy,
        )?;
        let mut op_stats: Vec<OpStats> = seg.ops.iter().map(|s| OpStats::new(s.label)).collect();
        let mut out_rows = 0u64;
        let mut batches = 0usize;
        for item in source.by_ref() {
            let (out, input) = match item {
                Ok(item) => item,
                // A file rewritten under the reader reads as corrupt: say why.
                Err(e) if k == 0 => return Err(self.input_changed(t).unwrap_or(e)),
                Err(e) => return Err(e.context(where_.clone())),
            };
            if excluded.schema.is_none() {
                excluded.schema = Some(segment_schema(&out.batch, seg)?);
            }
            progress.add(input.docs, input.bytes);
            if seg
                .opened_by
                .as_ref()
                .is_some_and(|g| g.op.reports_group_sizes())
            {
                count_group_sizes(&out.batch, &mut first);
            }
            let mut batch = settle(out, input, &mut first, &mut excluded)?;
            for (step, st) in seg.ops.iter().zip(op_stats.iter_mut()) {
                let Some(b) = batch.take() else { break };
                let input = count_of(&b);
                let out = step
                    .op
                    .apply(b)
                    .with_context(|| format!("{} in {where_}", step.label))?;
                batch = settle(out, input, st, &mut excluded)?;
            }
            if let Some(batch) = batch {
                if let Some(obs) = observer.as_mut() {
                    obs.observe(&batch, out_rows)?;
                }
                out_rows += batch.num_rows() as u64;
                if let Some(sink) = sink.as_mut() {
                    sink.write(&batch.data, batch.text)?;
                }
            }
            batches += 1;
            if batches == 1 {
                maybe_abort(&Phase::Stream(k).name(), t)?;
            }
        }
        if k == 0 {
            if let Some(e) = self.input_changed(t) {
                return Err(e);
            }
        }
        stats.push(first);
        stats.extend(op_stats);
        if let Some(sink) = sink {
            sink.finish()?;
        }
        excluded.finish()?;
        if let Some(obs) = observer {
            obs.finish()?;
        }
        let marker = TaskStats { steps: stats };
        write_atomic(
            &self.layout.marker(&Phase::Stream(k).name(), t),
            &serde_json::to_vec(&marker)?,
        )
    }
}

/// Documents by the size of their duplicate group, from the `dup_count`
/// column the dedup op that opens the segment adds, for its histogram.
fn count_group_sizes(batch: &DocBatch, stats: &mut OpStats) {
    let counts = batch.data.column_by_name("dup_count").and_then(|c| {
        c.as_any()
            .downcast_ref::<arrow::array::UInt32Array>()
            .cloned()
    });
    if let Some(counts) = counts {
        for v in counts.values() {
            *stats.docs_by_group_size.entry(*v).or_default() += 1;
        }
    }
}

fn count_of(batch: &DocBatch) -> Count {
    Count {
        docs: batch.num_rows() as u64,
        bytes: batch.text_bytes(),
    }
}

/// Counts what an op received (`input`, measured before it ran: ops may
/// rewrite the text) and what it kept or dropped, sends its drops to the
/// excluded sink, and returns the kept rows (`None` when none are left).
fn settle(
    out: OpOutput,
    input: Count,
    stats: &mut OpStats,
    excluded: &mut Excluded,
) -> Result<Option<DocBatch>> {
    let OpOutput {
        batch,
        drops,
        added,
    } = out;
    let texts = batch.texts();
    let n = batch.num_rows();
    if n as u64 != input.docs + added {
        bail!(
            "step {} returned {n} rows for {} and {added} added (an op must not lose rows)",
            stats.step,
            input.docs
        );
    }
    stats.input.add(input);
    if added > 0 {
        stats.added.add(Count {
            docs: added,
            bytes: batch.text_bytes().saturating_sub(input.bytes),
        });
    }
    if drops.is_empty() {
        stats.kept.add(Count {
            docs: n as u64,
            bytes: batch.text_bytes(),
        });
        return Ok((n > 0).then_some(batch));
    }
    if drops.len() != n {
        bail!("an op returned {} drop marks for {n} rows", drops.len());
    }
    let mut kept_bytes = 0u64;
    for (i, d) in drops.iter().enumerate() {
        let len = texts.value(i).len();
        match d {
            Some(mark) => stats.drop_one(&mark.reason, len),
            None => kept_bytes += len as u64,
        }
    }
    let keep: BooleanArray = drops.iter().map(|d| Some(d.is_none())).collect();
    let kept = filter_record_batch(&batch.data, &keep)?;
    stats.kept.add(Count {
        docs: kept.num_rows() as u64,
        bytes: kept_bytes,
    });
    excluded.write(&batch, &drops, &stats.step)?;
    Ok((kept.num_rows() > 0).then(|| DocBatch {
        data: kept,
        ..batch
    }))
}

const DROP_COLUMNS: &[&str] = &["drop_op", "drop_reason", "drop_detail"];

/// The excluded sink of one task: dropped rows with `drop_op`, `drop_reason`
/// and `drop_detail`, in the columns the task's first dropped batch had.
struct Excluded {
    writer: Option<ShardWriter>,
    schema: Option<SchemaRef>,
}

impl Excluded {
    fn new(layout: &Layout, enabled: bool, prefix: &str, policy: &ShardPolicy) -> Result<Excluded> {
        let writer = if enabled {
            Some(ShardWriter::new(&layout.excluded, prefix, policy.clone())?)
        } else {
            None
        };
        Ok(Excluded {
            writer,
            schema: None,
        })
    }

    fn write(
        &mut self,
        batch: &DocBatch,
        drops: &[Option<crate::ops::DropMark>],
        step: &str,
    ) -> Result<()> {
        let Some(writer) = self.writer.as_mut() else {
            return Ok(());
        };
        let mask: BooleanArray = drops.iter().map(|d| Some(d.is_some())).collect();
        let dropped = filter_record_batch(&batch.data, &mask)?;
        let marks: Vec<&crate::ops::DropMark> = drops.iter().flatten().collect();
        let base = self
            .schema
            .clone()
            .ok_or_else(|| anyhow::anyhow!("the excluded sink has no schema"))?;
        // Rows dropped before an op added its columns get nulls there.
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(base.fields().len() + 3);
        for f in base.fields() {
            let col = match dropped.schema().index_of(f.name()) {
                Ok(i) => dropped.column(i).clone(),
                Err(_) => arrow::array::new_null_array(f.data_type(), dropped.num_rows()),
            };
            columns.push(col);
        }
        columns.push(Arc::new(StringArray::from(vec![step; marks.len()])));
        columns.push(Arc::new(
            marks
                .iter()
                .map(|m| Some(m.reason.as_str()))
                .collect::<StringArray>(),
        ));
        columns.push(Arc::new(
            marks
                .iter()
                .map(|m| m.detail.as_deref())
                .collect::<StringArray>(),
        ));
        let mut fields: Vec<Field> = base
            .fields()
            .iter()
            .map(|f| f.as_ref().clone().with_nullable(true))
            .collect();
        fields.push(Field::new("drop_op", DataType::Utf8, false));
        fields.push(Field::new("drop_reason", DataType::Utf8, false));
        fields.push(Field::new("drop_detail", DataType::Utf8, true));
        let out = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?;
        let text_name = batch.data.schema().field(batch.text).name().clone();
        let text = out.schema().index_of(&text_name).unwrap_or(0);
        writer.write(&out, text)
    }

    fn finish(self) -> Result<()> {
        if let Some(w) = self.writer {
            w.finish()?;
        }
        Ok(())
    }
}

/// The columns a segment's rows end with: its input's, plus those its ops
/// add (found by running the ops on no rows), less any drop columns of the
/// input (a rerun over excluded/ gets them replaced, not duplicated).
fn segment_schema(first: &DocBatch, seg: &Segment<'_>) -> Result<SchemaRef> {
    let mut batch = DocBatch {
        data: first.data.slice(0, 0),
        ..first.clone()
    };
    for step in &seg.ops {
        batch = step.op.apply(batch)?.batch;
    }
    let fields: Vec<Field> = batch
        .data
        .schema()
        .fields()
        .iter()
        .filter(|f| !DROP_COLUMNS.contains(&f.name().as_str()))
        .map(|f| f.as_ref().clone())
        .collect();
    Ok(Arc::new(Schema::new(fields)))
}

/// A global op's filter over the intermediate batches of one task.
struct FilteredIter {
    inner: Box<dyn Iterator<Item = Result<DocBatch>> + Send>,
    filter: Box<dyn RowFilter>,
    row: u64,
    finished: bool,
}

impl Iterator for FilteredIter {
    type Item = Result<(OpOutput, Count)>;
    fn next(&mut self) -> Option<Self::Item> {
        let batch = match self.inner.next() {
            Some(Ok(b)) => b,
            Some(Err(e)) => return Some(Err(e)),
            None if !self.finished => {
                self.finished = true;
                return self.filter.finish(self.row).err().map(Err);
            }
            None => return None,
        };
        let first = self.row;
        self.row += batch.num_rows() as u64;
        let input = count_of(&batch);
        Some(self.filter.apply(batch, first).map(|o| (o, input)))
    }
}

/// Reads the intermediate shards of one task, in order.
fn read_intermediate(
    dir: &Path,
    prefix: &str,
    text_column: &str,
    id_column: &str,
) -> Result<Box<dyn Iterator<Item = Result<DocBatch>> + Send>> {
    // A task's shards are numbered from 0 without gaps: found by name, as a
    // listing of the folder would make every task pay for all the others.
    let mut files: Vec<PathBuf> = vec![];
    loop {
        let path = dir.join(format!("{prefix}-{:04}.parquet", files.len()));
        if !store::exists(&path)? {
            break;
        }
        files.push(path);
    }
    let text_column = text_column.to_string();
    let id_column = id_column.to_string();
    let iter = files.into_iter().flat_map(move |path| {
        let text_column = text_column.clone();
        let id_column = id_column.clone();
        let open = || -> Result<_> {
            let f = store::open(&path)?;
            let r = ParquetRecordBatchReaderBuilder::try_new(f)
                .with_context(|| format!("intermediate file {} is corrupt", path.display()))?
                .build()?;
            Ok(r)
        };
        let batches: Box<dyn Iterator<Item = Result<DocBatch>> + Send> = match open() {
            Ok(r) => {
                let path = path.clone();
                Box::new(r.map(move |b| {
                    let data = b.with_context(|| format!("reading {}", path.display()))?;
                    let text = data
                        .schema()
                        .index_of(&text_column)
                        .with_context(|| path.display().to_string())?;
                    let id = data
                        .schema()
                        .index_of(&id_column)
                        .with_context(|| path.display().to_string())?;
                    Ok(DocBatch { data, text, id })
                }))
            }
            Err(e) => Box::new(std::iter::once(Err(e))),
        };
        batches
    });
    Ok(Box::new(iter))
}
