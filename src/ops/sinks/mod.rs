//! Sinks: the last step, writing the run's output itself instead of
//! Parquet shards.

pub mod tokenize;
