//! Privacy and benchmark hygiene: personal data and secrets in the text
//! (`pii`), and evaluation sets leaked into the corpus (`decontaminate`).

pub mod decontaminate;
pub mod pii;
