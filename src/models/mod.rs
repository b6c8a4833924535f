//! Model files read natively: fastText classifiers.

pub mod fasttext;
