//! Model files read natively: fastText classifiers, KenLM n-gram models;
//! and the n-gram index of evaluation sets (`contamination`).

pub mod contamination;
pub mod fasttext;
pub mod kenlm;
pub mod quality_text;
pub mod static_embed;
pub mod transformer_embed;
