//! Model files read natively: fastText classifiers.

pub mod fasttext;
pub mod quality_text;
pub mod static_embed;
pub mod transformer_embed;
