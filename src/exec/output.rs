//! The output folder between runs: what a new run clears, and the plan a
//! rerun must match to resume (and what changed when it does not).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

use super::Layout;
use crate::io::discover::{InputFile, InputTask};
use crate::io::store;
use crate::io::writer::{is_shard_name, write_atomic};
use crate::pipeline::spec::Spec;

/// What the plan was made from; a rerun must match it to resume.
#[derive(Serialize, Deserialize, PartialEq)]
pub(super) struct PlanRecord {
    spec: String,
    tasks: Vec<InputTask>,
}

/// With `force`, or when the folder holds no plan of an earlier run,
/// removes what a sluice run may have left there (its shards, the files
/// ops declare as theirs (`OpInfo::outputs`), `excluded/`, `_work/`,
/// `stats.json`), so that a new run never mixes with old output.
/// Other files stay. The driver holds the output's lock by now, which made
/// the folder and checked it is writable.
pub(super) fn prepare_output(layout: &Layout, force: bool) -> Result<()> {
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
    let owned: Vec<glob::Pattern> = crate::ops::REGISTRY
        .iter()
        .flat_map(|op| op.outputs)
        .map(|p| glob::Pattern::new(p).expect("internal error (a bug): an op's output pattern"))
        .collect();
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
        // What an op writes there (any op's: the earlier run may have had
        // other steps), or its temporary.
        let staged = name
            .strip_prefix('.')
            .and_then(|n| n.strip_suffix(".tmp"))
            .unwrap_or(&name);
        let an_ops = owned.iter().any(|p| p.matches(&name) || p.matches(staged));
        // A report drawn from an earlier run would describe the wrong one.
        if ours || an_ops || name == "stats.json" || name == "report.html" {
            store::remove_file(&path)?;
        }
    }
    store::remove_all(&layout.work)?;
    store::remove_all(&layout.excluded)?;
    Ok(())
}

/// Records the plan on a first run; on a rerun, refuses to mix two runs.
pub(super) fn check_plan(layout: &Layout, spec: &Spec, tasks: &[InputTask]) -> Result<()> {
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
pub(super) fn plan_change(old: &PlanRecord, new: &PlanRecord) -> String {
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
