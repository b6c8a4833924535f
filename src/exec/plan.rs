//! The planner: turns the steps of a spec into phases of tasks.
//!
//! Steps are cut into *segments* at each global op. Segment 0 reads the input
//! and runs the streaming ops before the first global op; segment k (k ≥ 1)
//! reads segment k-1's intermediate shards, applies global op k's decisions,
//! then the streaming ops up to the next global op. Each segment is one
//! streaming phase (one task per input task); between segments run the global
//! op's own phases.

use std::sync::Arc;

use crate::ops::{GlobalCtx, GlobalOp, Op, PhaseSpec, Phased, SinkOp, Step, StreamOp};

/// A streaming op with its step label.
pub struct StreamStep<'a> {
    pub label: &'a str,
    pub op: &'a dyn StreamOp,
}

/// A global op or sink with its step label and context.
#[derive(Clone)]
pub struct PhasedStep<T> {
    pub label: String,
    pub op: T,
    pub ctx: GlobalCtx,
}

/// The op that observes a segment: a global op, or the sink.
#[derive(Clone)]
pub enum Observing {
    Global(Arc<dyn GlobalOp>),
    Sink(Arc<dyn SinkOp>),
}

impl Observing {
    /// What global ops and sinks share: observer, phases, summary.
    pub fn phased(&self) -> Arc<dyn Phased> {
        match self {
            Observing::Global(op) => op.clone(),
            Observing::Sink(op) => op.clone(),
        }
    }
}

pub type GlobalStep = PhasedStep<Observing>;

pub struct Segment<'a> {
    /// The global op whose filter opens this segment (none for segment 0).
    pub opened_by: Option<PhasedStep<Arc<dyn GlobalOp>>>,
    pub ops: Vec<StreamStep<'a>>,
    /// The global op that observes this segment's output (none for the last).
    pub observed_by: Option<GlobalStep>,
}

/// One phase of the run.
pub enum Phase {
    /// Streaming phase of segment `k`.
    Stream(usize),
    /// One of the phases a global op or sink declares.
    Global { step: GlobalStep, spec: PhaseSpec },
}

impl Phase {
    /// Its number of tasks: a streaming phase has one per input task.
    pub fn tasks(&self, input_tasks: usize) -> usize {
        match self {
            Phase::Stream(_) => input_tasks,
            Phase::Global { spec, .. } => spec.tasks,
        }
    }

    /// The phase's folder name under `_work/markers/`.
    pub fn name(&self) -> String {
        match self {
            Phase::Stream(k) => format!("s{k}"),
            Phase::Global { step, spec, .. } => {
                format!("{}-{}", step.label.replace(':', "-"), spec.name)
            }
        }
    }
}

pub struct Plan<'a> {
    pub segments: Vec<Segment<'a>>,
    pub phases: Vec<Phase>,
}

/// `ctx_for(label)` gives each global op its context (work folder etc.).
pub fn plan<'a>(steps: &'a [Step], ctx_for: impl Fn(&str) -> GlobalCtx) -> Plan<'a> {
    let mut segments = vec![Segment {
        opened_by: None,
        ops: vec![],
        observed_by: None,
    }];
    for step in steps {
        match &step.op {
            Op::Stream(op) => {
                segments
                    .last_mut()
                    .expect("one segment at least")
                    .ops
                    .push(StreamStep {
                        label: &step.label,
                        op: op.as_ref(),
                    })
            }
            Op::Global(op) => {
                let ctx = ctx_for(&step.label);
                segments
                    .last_mut()
                    .expect("one segment at least")
                    .observed_by = Some(PhasedStep {
                    label: step.label.clone(),
                    op: Observing::Global(op.clone()),
                    ctx: ctx.clone(),
                });
                segments.push(Segment {
                    opened_by: Some(PhasedStep {
                        label: step.label.clone(),
                        op: op.clone(),
                        ctx,
                    }),
                    ops: vec![],
                    observed_by: None,
                });
            }
            Op::Sink(op) => {
                // Its output is its own: no segment reads it.
                segments
                    .last_mut()
                    .expect("one segment at least")
                    .observed_by = Some(PhasedStep {
                    label: step.label.clone(),
                    op: Observing::Sink(op.clone()),
                    ctx: ctx_for(&step.label),
                });
            }
        }
    }
    let mut phases = vec![];
    for (k, seg) in segments.iter().enumerate() {
        phases.push(Phase::Stream(k));
        if let Some(g) = &seg.observed_by {
            for spec in g.op.phased().phases(&g.ctx) {
                phases.push(Phase::Global {
                    step: g.clone(),
                    spec,
                });
            }
        }
    }
    Plan { segments, phases }
}
