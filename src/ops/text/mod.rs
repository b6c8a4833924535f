//! Ops that rewrite or measure the text itself.

pub mod length_filter;
pub mod normalize;
pub mod regex_filter;
