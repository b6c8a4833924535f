//! Sentence embeddings from a BERT model (sentence-transformers layout:
//! `config.json`, `tokenizer.json`, `model.safetensors`, optionally
//! `sentence_bert_config.json` for the maximum length), run in Rust by
//! candle: mean pooling over the attention mask, L2-normalised, as
//! sentence-transformers does (all-MiniLM-L6-v2 is the reference).
//!
//! The shipped `tokenizer.json` of such models truncates at 128 and pads to
//! 128; sentence-transformers truncates at the model's `max_seq_length`
//! (256 for MiniLM) and pads per batch, so both settings are replaced here.
//! Texts are sorted by length within a call so that a batch pads little.

use std::path::Path;

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use rayon::prelude::*;

pub struct TransformerEmbedder {
    model: BertModel,
    tokenizer: tokenizers::Tokenizer,
    device: Device,
    pub dim: usize,
    pub max_len: usize,
    batch_size: usize,
}

/// Keeps large freed blocks in the heap: every forward pass allocates
/// attention tensors of tens of MB, which glibc would otherwise map and
/// unmap each time, page-faulting them in again (~10% of the time here,
/// measured: docs/benchmarks.md). Freed memory is kept up to 1 GiB.
fn keep_large_blocks() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters (under its own lock).
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}

impl TransformerEmbedder {
    pub fn load(dir: &Path, batch_size: usize) -> Result<TransformerEmbedder> {
        keep_large_blocks();
        if !dir.is_dir() {
            bail!(
                "the model {} is not a folder (a transformer model is a folder with config.json, tokenizer.json and model.safetensors)",
                dir.display()
            );
        }
        let need = |name: &str| -> Result<std::path::PathBuf> {
            let p = dir.join(name);
            if p.is_file() {
                Ok(p)
            } else {
                bail!("the model folder {} has no {name}", dir.display())
            }
        };
        let config_path = need("config.json")?;
        let config: Config = serde_json::from_slice(&std::fs::read(&config_path)?)
            .with_context(|| format!("{} is not a BERT config", config_path.display()))?;
        let raw: serde_json::Value = serde_json::from_slice(&std::fs::read(&config_path)?)?;
        let dim = raw["hidden_size"]
            .as_u64()
            .context("config.json: no hidden_size")? as usize;
        let max_pos = raw["max_position_embeddings"].as_u64().unwrap_or(512) as usize;
        let max_len = std::fs::read(dir.join("sentence_bert_config.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v["max_seq_length"].as_u64())
            .map_or(max_pos, |m| (m as usize).min(max_pos));
        let mut tokenizer = crate::tokenizer::load::load_tokenizer(&need("tokenizer.json")?)?;
        tokenizer
            .with_truncation(Some(tokenizers::TruncationParams {
                max_length: max_len,
                ..Default::default()
            }))
            .map_err(|e| anyhow::anyhow!("tokenizer.json: {e}"))?;
        tokenizer.with_padding(None);
        // With the `cuda` feature, the first GPU when there is one.
        #[cfg(feature = "cuda")]
        let device = Device::cuda_if_available(0)?;
        #[cfg(not(feature = "cuda"))]
        let device = Device::Cpu;
        let weights = need("model.safetensors")?;
        // Safety: the file is mapped read-only and not modified while the
        // model lives (a model folder is an input, never written by sluice).
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[&weights], DType::F32, &device) }
            .with_context(|| format!("cannot read {}", weights.display()))?;
        let model = BertModel::load(vb, &config)
            .with_context(|| format!("{} does not hold a BERT model", weights.display()))?;
        Ok(TransformerEmbedder {
            model,
            tokenizer,
            device,
            dim,
            max_len,
            batch_size: batch_size.max(1),
        })
    }

    /// The token ids the model sees for a text ([CLS] … [SEP], truncated).
    pub fn ids(&self, text: &str) -> Result<Vec<u32>> {
        Ok(self
            .tokenizer
            .encode_fast(text, true)
            .map_err(|e| anyhow::anyhow!("embed: tokenizing: {e}"))?
            .get_ids()
            .to_vec())
    }

    /// One L2-normalised vector per text, in the order given.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let ids: Vec<Vec<u32>> = texts.iter().map(|t| self.ids(t)).collect::<Result<_>>()?;
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| (ids[i].len(), i));
        // Batches in parallel: a forward pass over a few short sequences
        // leaves cores idle inside candle's kernels.
        let batches: Vec<Vec<Vec<f32>>> = order
            .par_chunks(self.batch_size)
            .map(|chunk| -> Result<Vec<Vec<f32>>> {
                let len = chunk
                    .iter()
                    .map(|&i| ids[i].len())
                    .max()
                    .unwrap_or(0)
                    .max(1);
                let mut flat = Vec::with_capacity(chunk.len() * len);
                let mut mask = Vec::with_capacity(chunk.len() * len);
                for &i in chunk {
                    flat.extend_from_slice(&ids[i]);
                    flat.extend(std::iter::repeat_n(0u32, len - ids[i].len()));
                    mask.extend(std::iter::repeat_n(1u32, ids[i].len()));
                    mask.extend(std::iter::repeat_n(0u32, len - ids[i].len()));
                }
                let shape = (chunk.len(), len);
                let input = Tensor::from_vec(flat, shape, &self.device)?;
                let mask = Tensor::from_vec(mask, shape, &self.device)?;
                let types = input.zeros_like()?;
                let hidden = self.model.forward(&input, &types, Some(&mask))?;
                let m = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
                let summed = hidden.broadcast_mul(&m)?.sum(1)?;
                let counts = m.sum(1)?.clamp(1e-9, f64::MAX)?;
                let mean = summed.broadcast_div(&counts)?;
                let norm = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
                Ok(mean.broadcast_div(&norm)?.to_vec2()?)
            })
            .collect::<Result<_>>()?;
        let mut out: Vec<Vec<f32>> = vec![vec![]; texts.len()];
        for (chunk, vecs) in order.chunks(self.batch_size).zip(batches) {
            for (&i, v) in chunk.iter().zip(vecs) {
                out[i] = v;
            }
        }
        Ok(out)
    }
}
