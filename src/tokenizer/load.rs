//! Any Hugging Face `tokenizer.json` (Llama, Qwen, GPT-2, ours) through the
//! `tokenizers` crate, for encoding corpora into training shards.

use std::path::Path;

use anyhow::{Context, Result};

/// Loads a tokenizer file; the error names the file and what is wrong.
pub fn load_tokenizer(path: &Path) -> Result<tokenizers::Tokenizer> {
    let bytes =
        std::fs::read(path).with_context(|| format!("cannot read tokenizer {}", path.display()))?;
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
