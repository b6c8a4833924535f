//! Deduplication ops (global): exact, CCNet lines/paragraphs, MinHash
//! near-duplicates, semantic.
//! What they share (keep-by-column scores, decision records, the filter
//! that applies them) is in `dup`.

pub mod dedup_exact;
pub mod dedup_lines;
pub mod dedup_minhash;
pub mod dedup_semantic;
pub mod dup;
