//! BPE tokenizer training (`sluice train-tokenizer`) and the tokenizer it
//! writes: pre-tokenisation presets, the trainer, `tokenizer.json`.

pub mod bpe;
pub mod fxhash;
pub mod hf;
pub mod pretok;
pub mod spec;
pub mod train;
pub mod wordcount;
