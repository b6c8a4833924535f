//! Static token-embedding models (e.g. wordllama): a table of one vector
//! per token, a text's embedding is the mean of its tokens' rows,
//! L2-normalised. Thousands of times cheaper than a transformer: the CPU
//! path for semantic dedup at corpus scale.
//!
//! A model is a folder with one `.safetensors` file holding one 2-D tensor
//! (vocabulary × dimension, F16, BF16 or F32) and a Hugging Face tokenizer
//! file (`tokenizer.json`, or the one file whose name contains
//! `tokenizer` and ends in `.json`). Texts are encoded without special
//! tokens and without truncation, as wordllama does.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{bail, Context, Result};
use xxhash_rust::xxh3::Xxh3DefaultBuilder;

/// Pieces whose ids a thread remembers per model, before it forgets them
/// all and starts again (~20 MB a thread): the `tokenizers` BPE cache stops
/// at 10,000 words and clones a string per token on a hit.
const PIECE_CACHE: usize = 1 << 18;

/// Tells the models apart in the per-thread caches.
static NEXT_MODEL: AtomicU64 = AtomicU64::new(0);

type PieceIds = HashMap<Box<str>, Box<[u32]>, Xxh3DefaultBuilder>;

thread_local! {
    static PIECES: RefCell<HashMap<u64, PieceIds>> = RefCell::new(HashMap::new());
}

pub struct StaticEmbedder {
    tokenizer: tokenizers::Tokenizer,
    /// SentencePiece-style tokenizers (Llama 2's) whose normaliser only
    /// turns spaces into `▁` and whose tokens never hold a `▁` after another
    /// character: BPE never merges across the start of a `▁` run, so the
    /// text is cut there and each piece goes to the model alone (the same
    /// ids, tested; a whole document is otherwise one BPE word). The added
    /// tokens' texts, which send a text the whole way.
    piecewise: Option<Vec<String>>,
    /// vocabulary × dim, row-major.
    table: Vec<f32>,
    rows: usize,
    pub dim: usize,
    /// This model's key in the per-thread piece caches.
    cache_key: u64,
}

fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h >> 15) as u32) << 31;
    let exp = ((h >> 10) & 0x1f) as u32;
    let frac = (h & 0x3ff) as u32;
    let bits = match exp {
        0 if frac == 0 => sign,
        0 => {
            // Subnormal: normalise the fraction.
            let mut e = 127 - 15 + 1;
            let mut f = frac;
            while f & 0x400 == 0 {
                f <<= 1;
                e -= 1;
            }
            sign | (e << 23) | ((f & 0x3ff) << 13)
        }
        0x1f => sign | 0x7f80_0000 | (frac << 13),
        _ => sign | ((exp + 127 - 15) << 23) | (frac << 13),
    };
    f32::from_bits(bits)
}

/// The only file of `dir` matching `pred`, or an error naming the folder.
fn one_file(dir: &Path, what: &str, pred: impl Fn(&str) -> bool) -> Result<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read the model folder {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(&pred))
        .collect();
    found.sort();
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => bail!("the model folder {} has no {what}", dir.display()),
        _ => bail!(
            "the model folder {} has several {what}s: {}",
            dir.display(),
            found
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The one 2-D tensor of a safetensors file, as f32, with its shape.
fn read_table(path: &Path) -> Result<(Vec<f32>, usize, usize)> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let bad = |why: &str| anyhow::anyhow!("{} is not a safetensors file: {why}", path.display());
    if bytes.len() < 8 {
        return Err(bad("too short"));
    }
    let n = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) as usize;
    let header = bytes.get(8..8 + n).ok_or_else(|| bad("truncated header"))?;
    let header: serde_json::Value =
        serde_json::from_slice(header).map_err(|_| bad("unreadable header"))?;
    let tensors: Vec<(&String, &serde_json::Value)> = header
        .as_object()
        .ok_or_else(|| bad("header is not an object"))?
        .iter()
        .filter(|(k, _)| *k != "__metadata__")
        .collect();
    if tensors.len() != 1 {
        bail!(
            "{} holds {} tensors; a static embedding model holds one (vocabulary × dimension)",
            path.display(),
            tensors.len()
        );
    }
    let (name, t) = tensors[0];
    let shape: Vec<usize> = t["shape"]
        .as_array()
        .ok_or_else(|| bad("no shape"))?
        .iter()
        .map(|v| v.as_u64().map(|v| v as usize))
        .collect::<Option<_>>()
        .ok_or_else(|| bad("bad shape"))?;
    if shape.len() != 2 {
        bail!(
            "tensor `{name}` of {} is not 2-D: {shape:?}",
            path.display()
        );
    }
    let (rows, dim) = (shape[0], shape[1]);
    let off = t["data_offsets"]
        .as_array()
        .ok_or_else(|| bad("no offsets"))?;
    let start = 8 + n + off[0].as_u64().ok_or_else(|| bad("bad offsets"))? as usize;
    let end = 8 + n + off[1].as_u64().ok_or_else(|| bad("bad offsets"))? as usize;
    let data = bytes.get(start..end).ok_or_else(|| bad("truncated data"))?;
    let dtype = t["dtype"].as_str().unwrap_or("");
    let size = match dtype {
        "F16" | "BF16" => 2,
        "F32" => 4,
        other => bail!(
            "tensor `{name}` of {} is {other}: F16, BF16 or F32 needed",
            path.display()
        ),
    };
    if data.len() != rows * dim * size {
        return Err(bad("data size does not match the shape"));
    }
    let table: Vec<f32> = match dtype {
        "F16" => data
            .chunks_exact(2)
            .map(|c| f16_to_f32(u16::from_le_bytes([c[0], c[1]])))
            .collect(),
        "BF16" => data
            .chunks_exact(2)
            .map(|c| f32::from_bits((u16::from_le_bytes([c[0], c[1]]) as u32) << 16))
            .collect(),
        _ => data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    };
    Ok((table, rows, dim))
}

/// For a tokenizer.json of Llama 2's kind (see `piecewise` above), the
/// texts of its added tokens; `None` for any other.
fn piecewise(path: &Path) -> Result<Option<Vec<String>>> {
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(path)?)?;
    let sp = serde_json::json!({"type": "Sequence", "normalizers": [
        {"type": "Prepend", "prepend": "\u{2581}"},
        {"type": "Replace", "pattern": {"String": " "}, "content": "\u{2581}"}
    ]});
    let model = &json["model"];
    let ok = json["normalizer"] == sp
        && json["pre_tokenizer"].is_null()
        && model["type"] == "BPE"
        && model["dropout"].is_null()
        && model["vocab"].as_object().is_some_and(|v| {
            v.keys()
                .all(|t| !t.trim_start_matches('\u{2581}').contains('\u{2581}'))
        });
    Ok(ok.then(|| {
        json["added_tokens"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t["content"].as_str().map(String::from))
            .filter(|t| !t.is_empty())
            .collect()
    }))
}

impl StaticEmbedder {
    pub fn load(dir: &Path) -> Result<StaticEmbedder> {
        if !dir.is_dir() {
            bail!(
                "the model {} is not a folder (a static model is a folder with a .safetensors table and a tokenizer .json)",
                dir.display()
            );
        }
        let weights = one_file(dir, ".safetensors file", |n| n.ends_with(".safetensors"))?;
        let tok_path = if dir.join("tokenizer.json").is_file() {
            dir.join("tokenizer.json")
        } else {
            one_file(dir, "tokenizer .json file", |n| {
                n.contains("tokenizer") && n.ends_with(".json")
            })?
        };
        let mut tokenizer = crate::tokenizer::load::load_tokenizer(&tok_path)?;
        tokenizer
            .with_truncation(None)
            .map_err(|e| anyhow::anyhow!("{}: {e}", tok_path.display()))?;
        tokenizer.with_padding(None);
        let piecewise = piecewise(&tok_path)?;
        let (table, rows, dim) = read_table(&weights)?;
        let vocab = tokenizer.get_vocab_size(true);
        if vocab > rows {
            bail!(
                "the tokenizer {} has {vocab} tokens but the table {} only {rows} rows",
                tok_path.display(),
                weights.display()
            );
        }
        Ok(StaticEmbedder {
            tokenizer,
            piecewise,
            table,
            rows,
            dim,
            cache_key: NEXT_MODEL.fetch_add(1, Ordering::Relaxed),
        })
    }

    /// The token ids of a text (no special tokens).
    pub fn ids(&self, text: &str) -> Result<Vec<u32>> {
        if let Some(added) = &self.piecewise {
            if !added.iter().any(|a| text.contains(a.as_str())) {
                return self.ids_piecewise(text);
            }
        }
        self.ids_whole(text)
    }

    /// The ids through the whole `tokenizers` pipeline.
    pub fn ids_whole(&self, text: &str) -> Result<Vec<u32>> {
        Ok(self
            .tokenizer
            .encode_fast(text, false)
            .map_err(|e| anyhow::anyhow!("embed: tokenizing: {e}"))?
            .get_ids()
            .to_vec())
    }

    fn ids_piecewise(&self, text: &str) -> Result<Vec<u32>> {
        let mut ids = vec![];
        if text.is_empty() {
            return Ok(ids);
        }
        // The normalised text ("▁" + the text with spaces as "▁") cut before
        // each "▁" that follows another character, built piece by piece
        // rather than copied whole.
        let mut piece = String::with_capacity(64);
        piece.push('\u{2581}');
        let mut prev_space = true;
        for c in text.chars() {
            let space = c == ' ' || c == '\u{2581}';
            if space && !prev_space {
                self.tokenize_piece(&piece, &mut ids)?;
                piece.clear();
            }
            piece.push(if space { '\u{2581}' } else { c });
            prev_space = space;
        }
        self.tokenize_piece(&piece, &mut ids)?;
        Ok(ids)
    }

    /// A piece's ids, from this thread's cache when it has seen the piece.
    fn tokenize_piece(&self, piece: &str, ids: &mut Vec<u32>) -> Result<()> {
        use tokenizers::Model;
        let hit = PIECES.with(|c| {
            c.borrow()
                .get(&self.cache_key)
                .and_then(|m| m.get(piece))
                .map(|cached| ids.extend_from_slice(cached))
                .is_some()
        });
        if hit {
            return Ok(());
        }
        let tokens = self
            .tokenizer
            .get_model()
            .tokenize(piece)
            .map_err(|e| anyhow::anyhow!("embed: tokenizing: {e}"))?;
        let found: Box<[u32]> = tokens.iter().map(|t| t.id).collect();
        ids.extend_from_slice(&found);
        PIECES.with(|c| {
            let mut c = c.borrow_mut();
            let m = c.entry(self.cache_key).or_default();
            if m.len() >= PIECE_CACHE {
                m.clear();
            }
            m.insert(piece.into(), found);
        });
        Ok(())
    }

    /// Mean of the token rows, L2-normalised; all zeros for a text without
    /// tokens (no direction to give it).
    pub fn embed(&self, text: &str, out: &mut [f32]) -> Result<()> {
        out.fill(0.0);
        let ids = self.ids(text)?;
        for &id in &ids {
            let r = (id as usize).min(self.rows - 1) * self.dim;
            crate::vector::vecmath::add_assign(out, &self.table[r..r + self.dim]);
        }
        let norm = out.iter().map(|v| v * v).sum::<f32>().sqrt();
        if norm > 0.0 {
            for o in out.iter_mut() {
                *o /= norm;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_floats() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x0000), 0.0);
        assert_eq!(f16_to_f32(0x7bff), 65504.0);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert_eq!(f16_to_f32(0x3555), 0.333_251_95);
        assert!(f16_to_f32(0x7c00).is_infinite());
    }
}
