//! The pipeline spec; the planner lives in `exec::plan`.

pub mod bytesize;
pub mod spec;
