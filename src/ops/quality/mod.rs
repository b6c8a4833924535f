//! Ops that judge a document: language ID, the published rule filters
//! (Gopher, C4, FineWeb; their shared per-language machinery in `rules`),
//! the fastText quality classifier, the KenLM perplexity of CCNet, and
//! `select`, which keeps rows by an expression over the signals.

pub mod c4;
pub mod fineweb;
pub mod gopher;
pub mod lang;
pub mod perplexity;
pub mod quality_model;
pub mod rules;
pub mod select;
