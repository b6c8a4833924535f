//! Any Hugging Face `tokenizer.json` (Llama, Qwen, GPT-2, ours) loaded for
//! encoding corpora into training shards: sluice's encoder for the BPE ones,
//! the `tokenizers` crate for the rest.

use std::path::Path;

use anyhow::{Context, Result};

use super::fast::{FastTokenizer, Unsupported};

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
/// sluice's encoder ([`FastTokenizer`]) for every BPE file it reads (the
/// byte-level and the SentencePiece-style ones: the same ids as the
/// `tokenizers` crate, tested), the `tokenizers` crate for the rest
/// (WordPiece, Unigram, a normaliser sluice does not read).
pub struct TextEncoder {
    fast: Option<FastTokenizer>,
    /// Why the `tokenizers` crate encodes (None when sluice does).
    why_not: Option<String>,
    hf: tokenizers::Tokenizer,
}

impl TextEncoder {
    pub fn load(path: &Path) -> Result<TextEncoder> {
        Ok(Self::with(path, load_tokenizer(path)?))
    }

    /// The encoder for `hf`, loaded from `path`.
    pub fn with(path: &Path, hf: tokenizers::Tokenizer) -> TextEncoder {
        // A SentencePiece .model is converted by load_tokenizer; that JSON
        // is the crate's to encode (it is a Unigram model, for CCNet).
        let fast = std::fs::read(path)
            .map_err(|e| Unsupported(e.to_string()))
            .and_then(|b| {
                serde_json::from_slice::<serde_json::Value>(&b)
                    .map_err(|e| Unsupported(format!("not JSON: {e}")))
            })
            .and_then(|j| FastTokenizer::from_json(&j));
        match fast {
            Ok(f) => TextEncoder {
                fast: Some(f),
                why_not: None,
                hf,
            },
            Err(e) => TextEncoder {
                fast: None,
                why_not: Some(e.0),
                hf,
            },
        }
    }

    /// Which encoder runs.
    pub fn name(&self) -> &'static str {
        match self.fast {
            Some(_) => "sluice",
            None => "tokenizers",
        }
    }

    /// What in the file sluice's encoder does not read, when the
    /// `tokenizers` crate encodes.
    pub fn why_not_sluice(&self) -> Option<&str> {
        self.why_not.as_deref()
    }

    /// The ids of each text, in parallel on the current rayon pool.
    pub fn encode_batch(&self, texts: &[&str]) -> Result<Vec<Vec<u32>>> {
        use rayon::prelude::*;
        match &self.fast {
            Some(t) => Ok(texts
                .par_iter()
                .with_min_len(16)
                .map(|x| t.encode(x))
                .collect()),
            None => Ok(self
                .hf
                .encode_batch_fast(texts.to_vec(), false)
                .map_err(|e| anyhow::anyhow!("encoding: {e}"))?
                .into_iter()
                .map(|e| e.get_ids().to_vec())
                .collect()),
        }
    }

    /// The text of ids (special tokens kept unless `skip_special`).
    pub fn decode(&self, ids: &[u32], skip_special: bool) -> Result<String> {
        if let Some(text) = self.fast.as_ref().and_then(|t| t.decode(ids, skip_special)) {
            return Ok(text);
        }
        self.hf
            .decode(ids, skip_special)
            .map_err(|e| anyhow::anyhow!("decoding: {e}"))
    }

    pub fn vocab_size(&self) -> usize {
        match &self.fast {
            Some(t) => t.vocab_size(),
            None => self.hf.get_vocab_size(true),
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
