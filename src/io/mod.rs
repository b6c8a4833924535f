//! Shard discovery, readers, the rotating Parquet writer and intermediate files.

pub mod discover;
pub mod megatron;
pub mod partfile;
pub mod reader;
pub mod rowstore;
pub mod sorter;
pub mod store;
pub mod warc;
pub mod writer;
