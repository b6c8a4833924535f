//! Checks around a run: the steps against the input's columns before any
//! task, the disk space at the start, and the input files against the plan
//! while and after they are read.

use std::path::Path;

use anyhow::Result;
use arrow::array::RecordBatch;

use super::plan::Plan;
use super::Prepared;
use crate::io::discover::{InputFile, InputTask};
use crate::io::{reader, store};
use crate::ops::DocBatch;
use crate::pipeline::spec::Spec;

/// Checks the steps against the columns of the first input task before any
/// task runs, so that a step naming a column the rows will not have (a
/// `keep` column, a key) fails now, not hours in: the streaming ops run on
/// no rows, the global ops check what they need (as far as the columns
/// are known: an op that cannot say what its filter passes on ends the
/// check). A first file that cannot be read is left to its task to report.
pub(super) fn preflight(steps: &[crate::ops::Step], first: &InputTask, spec: &Spec) -> Result<()> {
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
            // The last step: nothing after it to check.
            crate::ops::Op::Sink(_) => return Ok(()),
        }
    }
    Ok(())
}

/// Work space per byte of input for each global step: the rows it observes
/// are written to `_work` between segments (LZ4, larger than the input's
/// zstd), beside the op's own files (keys, signatures, vectors, sorted
/// runs). Measured on the fixtures' dedup pipeline (docs/benchmarks.md, Disk
/// space), rounded up.
pub(super) const WORK_BYTES_PER_INPUT_BYTE_PER_GLOBAL_STEP: u64 = 4;

/// The disk a run needs at its peak: its output (at most about the input)
/// and its work files.
pub fn space_needed(input_bytes: u64, global_steps: usize) -> u64 {
    input_bytes.saturating_mul(1 + WORK_BYTES_PER_INPUT_BYTE_PER_GLOBAL_STEP * global_steps as u64)
}

/// Free bytes on the file system holding `dir` (None where unknown).
/// `SLUICE_TEST_FREE_BYTES` stands in for the file system's answer (tests).
pub(super) fn free_bytes(dir: &Path) -> Option<u64> {
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
pub(super) fn warn_if_short_of_space(prepared: &Prepared, plan: &Plan<'_>) {
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
            crate::msg::warning(format!(
                "{} has {:.1} GB free; a run over {:.1} GB of input with {globals} \
                 global step(s) needs about {:.1} GB at its peak (output and _work; see docs/running.md, \
                 Disk space)",
                prepared.layout.out.display(),
                free as f64 / 1e9,
                input as f64 / 1e9,
                need as f64 / 1e9
            ));
        }
    }
}

/// Why an input file is not the one planned (its size or write time has
/// changed), or None when it is the same, or cannot be looked at.
pub(super) fn changed_since_planned(f: &InputFile) -> Option<anyhow::Error> {
    let (size, modified) = match crate::io::discover::stat_input(&f.path) {
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
