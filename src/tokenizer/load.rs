//! Any Hugging Face `tokenizer.json` (Llama, Qwen, GPT-2, ours) through the
//! `tokenizers` crate, for encoding corpora into training shards.

use std::path::Path;

use anyhow::{Context, Result};

/// Loads a tokenizer file; the error names the file and what is wrong (and,
/// for one that is not there, the command that makes one).
pub fn load_tokenizer(path: &Path) -> Result<tokenizers::Tokenizer> {
    if !path.exists() {
        anyhow::bail!(
            "cannot read tokenizer {}: it does not exist; train one with `sluice train-tokenizer <spec>` \
             (pipelines/tokenizer.toml writes out/tokenizer/tokenizer.json), or name a Hugging \
             Face tokenizer.json",
            path.display()
        );
    }
    let mut bytes =
        std::fs::read(path).with_context(|| format!("cannot read tokenizer {}", path.display()))?;
    if path.extension().is_some_and(|e| e == "model") {
        // A SentencePiece model (CCNet's `<lang>.sp.model`): converted.
        bytes = super::sentencepiece::to_tokenizer_json(&bytes)
            .with_context(|| format!("cannot read the SentencePiece model {}", path.display()))?
            .into_bytes();
    }
    tokenizers::Tokenizer::from_bytes(&bytes).map_err(|e| {
        anyhow::anyhow!(
            "{} is not a Hugging Face tokenizer.json the `tokenizers` library can load: {e}",
            path.display()
        )
    })
}

/// The id of a token of the vocabulary (e.g. the EOS string), or an error
/// naming the tokenizer file.
pub fn token_id(tok: &tokenizers::Tokenizer, token: &str, path: &Path) -> Result<u32> {
    tok.token_to_id(token).with_context(|| {
        format!(
            "the token {token:?} is not in the vocabulary of {}",
            path.display()
        )
    })
}

/// Encodes batches of texts to ids (no BOS/EOS) with a `tokenizer.json`:
/// sluice's own encoder when the file is one sluice wrote (its layout and
/// presets: `hf::Tokenizer::from_json` accepts nothing else; the same ids,
/// tested, at about twice the speed), the `tokenizers` crate for any other.
pub enum TextEncoder {
    Sluice(Box<super::hf::Tokenizer>),
    Hf(Box<tokenizers::Tokenizer>),
}

impl TextEncoder {
    pub fn load(path: &Path) -> Result<TextEncoder> {
        Ok(Self::with(path, load_tokenizer(path)?))
    }

    /// The encoder for `hf`, loaded from `path`.
    pub fn with(path: &Path, hf: tokenizers::Tokenizer) -> TextEncoder {
        let ours = std::fs::read(path)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|j| super::hf::Tokenizer::from_json(&j).ok());
        match ours {
            // A custom regex may use what only the `tokenizers` crate's
            // regex engine (Oniguruma semantics) reads the same way.
            Some(t) if matches!(t.pre, super::pretok::PreTokenizer::Preset(_)) => {
                TextEncoder::Sluice(Box::new(t))
            }
            _ => TextEncoder::Hf(Box::new(hf)),
        }
    }

    /// Which encoder runs.
    pub fn name(&self) -> &'static str {
        match self {
            TextEncoder::Sluice(_) => "sluice",
            TextEncoder::Hf(_) => "tokenizers",
        }
    }

    /// The ids of each text, in parallel on the current rayon pool.
    pub fn encode_batch(&self, texts: &[&str]) -> Result<Vec<Vec<u32>>> {
        use rayon::prelude::*;
        match self {
            TextEncoder::Sluice(t) => Ok(texts
                .par_iter()
                .with_min_len(16)
                .map(|x| t.encode(x))
                .collect()),
            TextEncoder::Hf(t) => Ok(t
                .encode_batch_fast(texts.to_vec(), false)
                .map_err(|e| anyhow::anyhow!("encoding: {e}"))?
                .into_iter()
                .map(|e| e.get_ids().to_vec())
                .collect()),
        }
    }

    pub fn vocab_size(&self) -> usize {
        match self {
            TextEncoder::Sluice(t) => t.specials.len() + t.encoder.bpe().tokens.len(),
            TextEncoder::Hf(t) => t.get_vocab_size(true),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("tokenizer.json");
        let err = load_tokenizer(&p).unwrap_err().to_string();
        assert!(err.contains("tokenizer.json"), "{err}");
        std::fs::write(&p, b"{\"not\": \"a tokenizer\"}").unwrap();
        let err = load_tokenizer(&p).unwrap_err().to_string();
        assert!(
            err.contains("is not a Hugging Face tokenizer.json"),
            "{err}"
        );
    }
}
