//! sluice: turns raw text shards into training data for large language models.
//!
//! The architecture is in docs/design.md: streaming
//! ops over Arrow batches, global ops as phases of independent tasks,
//! resumable, every document accounted for.

pub mod batch;
pub mod exec;
#[doc(hidden)]
pub mod fuzzing;
pub mod inspect;
pub mod io;
pub mod models;
pub mod msg;
pub mod ops;
pub mod pipeline;
pub mod report;
pub mod seeded;
pub mod stats;
pub mod text;
pub mod tokenizer;
pub mod train;
pub mod vector;
