//! sluice: turns raw text shards into training data for large language models.
//!
//! The architecture is in the README ("How it runs", "Layout"): streaming
//! ops over Arrow batches, global ops as phases of independent tasks,
//! resumable, every document accounted for.

pub mod ann;
pub mod batch;
pub mod classifier;
pub mod cosine_screen;
pub mod exec;
#[doc(hidden)]
pub mod fuzzing;
pub mod inspect;
pub mod io;
pub mod models;
pub mod ops;
pub mod pipeline;
pub mod stats;
pub mod text;
pub mod tokenizer;
pub mod vecmath;
