//! The training commands: `sluice train-tokenizer` and `sluice
//! train-classifier`. Each has its own spec; the models they write are read
//! at run time by `tokenizer` and `models`, which know nothing of training.

pub mod classifier;
pub mod tokenizer;
