//! Ops over embeddings: computing them, k-means clusters, per-cluster
//! sampling. The vector column as these ops read it is `vector_column`;
//! the maths is in `crate::vector`.

pub mod cluster;
pub mod cluster_sample;
pub mod embed;
pub mod vector_column;
