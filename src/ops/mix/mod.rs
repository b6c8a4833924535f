//! Ops that choose how much of each document or source the output holds:
//! sampling, upsampling, token-budget mixtures (and the mixture report).

pub mod mixture;
pub mod mixture_report;
pub mod sample;
pub mod upsample;
