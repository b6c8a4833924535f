//! Vector maths for the embedding ops (`cluster`, `dedup_semantic`):
//! dot products in a fixed order (`vecmath`), k-means (`kmeans`), the
//! neighbour index (`ann`) and the integer cosine screen (`screen`). Knows
//! nothing of batches or ops.

pub mod ann;
pub mod kmeans;
pub mod screen;
pub mod vecmath;
