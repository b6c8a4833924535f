//! Model files read natively: fastText classifiers, KenLM n-gram models.

pub mod fasttext;
pub mod kenlm;
pub mod quality_text;
pub mod static_embed;
pub mod transformer_embed;
