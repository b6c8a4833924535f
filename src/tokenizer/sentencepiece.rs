//! SentencePiece `.model` files (the protobuf `ModelProto`) of the unigram
//! type, as CCNet's `<lang>.sp.model` are, turned into the `tokenizer.json`
//! the `tokenizers` crate loads, the way Hugging Face's converter does
//! (`SpmConverter`): the model's precompiled normalisation map, extra
//! spaces collapsed, `▁` for spaces with the dummy prefix, and the
//! unigram pieces with their scores. Only the fields needed are read; the
//! wire format is parsed here (a varint reader), not by a protobuf crate.

use anyhow::{anyhow, bail, Result};
use base64::Engine;

/// What a `.model` holds that the conversion needs.
struct Proto {
    pieces: Vec<(String, f32, i32)>,
    model_type: i64,
    byte_fallback: bool,
    charsmap: Vec<u8>,
    add_dummy_prefix: bool,
    remove_extra_whitespaces: bool,
}

fn varint(b: &[u8], at: &mut usize) -> Result<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b
            .get(*at)
            .ok_or_else(|| anyhow!("cut short inside a number"))?;
        *at += 1;
        v |= ((byte & 0x7f) as u64) << shift;
        if byte & 0x80 == 0 {
            return Ok(v);
        }
    }
    bail!("a number longer than 10 bytes")
}

/// The fields of one message: (field number, wire type, value or bytes).
enum Value<'a> {
    Int(u64),
    Fixed32(u32),
    Bytes(&'a [u8]),
}

fn fields(b: &[u8]) -> Result<Vec<(u64, Value<'_>)>> {
    let mut out = vec![];
    let mut at = 0;
    while at < b.len() {
        let key = varint(b, &mut at)?;
        let v = match key & 7 {
            0 => Value::Int(varint(b, &mut at)?),
            1 => {
                at += 8;
                Value::Int(0)
            }
            2 => {
                let len = varint(b, &mut at)? as usize;
                let end = at.checked_add(len).filter(|&e| e <= b.len());
                let end = end.ok_or_else(|| anyhow!("a field runs past the end"))?;
                let v = Value::Bytes(&b[at..end]);
                at = end;
                v
            }
            5 => {
                let s = b.get(at..at + 4).ok_or_else(|| anyhow!("cut short"))?;
                at += 4;
                Value::Fixed32(u32::from_le_bytes(s.try_into().expect("4 bytes")))
            }
            t => bail!("wire type {t} (not a SentencePiece model)"),
        };
        if at > b.len() {
            bail!("cut short");
        }
        out.push((key >> 3, v));
    }
    Ok(out)
}

/// Writing the wire format, for the models sluice trains.
pub(crate) mod proto {
    fn varint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push(v as u8 | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    /// A varint field (int32, enum, bool); negative numbers as protobuf
    /// writes an int32: sign-extended to ten bytes.
    pub fn int_field(out: &mut Vec<u8>, field: u64, v: i64) {
        varint(out, field << 3);
        varint(out, v as u64);
    }

    pub fn float_field(out: &mut Vec<u8>, field: u64, v: f32) {
        varint(out, (field << 3) | 5);
        out.extend_from_slice(&v.to_le_bytes());
    }

    /// A string, bytes or nested message field.
    pub fn bytes_field(out: &mut Vec<u8>, field: u64, v: &[u8]) {
        varint(out, (field << 3) | 2);
        varint(out, v.len() as u64);
        out.extend_from_slice(v);
    }
}

fn parse(b: &[u8]) -> Result<Proto> {
    let mut p = Proto {
        pieces: vec![],
        model_type: 1,
        byte_fallback: false,
        charsmap: vec![],
        add_dummy_prefix: true,
        remove_extra_whitespaces: true,
    };
    for (field, v) in fields(b)? {
        match (field, v) {
            (1, Value::Bytes(m)) => {
                let (mut piece, mut score, mut kind) = (String::new(), 0f32, 1i32);
                for (f, v) in fields(m)? {
                    match (f, v) {
                        (1, Value::Bytes(s)) => {
                            piece = String::from_utf8(s.to_vec())
                                .map_err(|_| anyhow!("a piece is not UTF-8"))?
                        }
                        (2, Value::Fixed32(x)) => score = f32::from_bits(x),
                        (3, Value::Int(x)) => kind = x as i32,
                        _ => {}
                    }
                }
                p.pieces.push((piece, score, kind));
            }
            (2, Value::Bytes(m)) => {
                for (f, v) in fields(m)? {
                    match (f, v) {
                        (3, Value::Int(x)) => p.model_type = x as i64,
                        (35, Value::Int(x)) => p.byte_fallback = x != 0,
                        _ => {}
                    }
                }
            }
            (3, Value::Bytes(m)) => {
                for (f, v) in fields(m)? {
                    match (f, v) {
                        (2, Value::Bytes(s)) => p.charsmap = s.to_vec(),
                        (3, Value::Int(x)) => p.add_dummy_prefix = x != 0,
                        (4, Value::Int(x)) => p.remove_extra_whitespaces = x != 0,
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    if p.pieces.is_empty() {
        bail!("no pieces: not a SentencePiece model");
    }
    Ok(p)
}

/// The `tokenizer.json` (as JSON text) equivalent to a unigram `.model`.
pub fn to_tokenizer_json(bytes: &[u8]) -> Result<String> {
    let p = parse(bytes)?;
    if p.model_type != 1 {
        bail!(
            "a SentencePiece model of type {} (2 is BPE, as Llama's): sluice converts unigram \
             models (CCNet's); convert this one with transformers \
             (`LlamaTokenizerFast(vocab_file=...).save_pretrained(dir)`) and name its tokenizer.json",
            p.model_type
        );
    }
    // Piece types: 1 normal, 2 unknown, 3 control, 4 user-defined, 6 byte.
    let unk_id = p.pieces.iter().position(|x| x.2 == 2);
    let vocab: Vec<serde_json::Value> = p
        .pieces
        .iter()
        .map(|(s, score, _)| serde_json::json!([s, *score as f64]))
        .collect();
    let mut normalizers = vec![];
    if !p.charsmap.is_empty() {
        normalizers.push(serde_json::json!({
            "type": "Precompiled",
            "precompiled_charsmap": base64::engine::general_purpose::STANDARD.encode(&p.charsmap),
        }));
    }
    if p.remove_extra_whitespaces {
        normalizers
            .push(serde_json::json!({"type": "Strip", "strip_left": true, "strip_right": true}));
        normalizers.push(serde_json::json!({
            "type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " ",
        }));
    }
    let tokenizer = serde_json::json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": [],
        "normalizer": {"type": "Sequence", "normalizers": normalizers},
        "pre_tokenizer": {
            "type": "Metaspace",
            "replacement": "▁",
            "prepend_scheme": if p.add_dummy_prefix { "always" } else { "never" },
            "split": true,
        },
        "post_processor": null,
        "decoder": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": true},
        "model": {
            "type": "Unigram",
            "unk_id": unk_id,
            "vocab": vocab,
            "byte_fallback": p.byte_fallback,
        },
    });
    Ok(tokenizer.to_string())
}

/// A byte trie of pieces, node 0 the root, laid out flat for the walk:
/// node i's edges are `bytes[start[i]..start[i + 1]]` (sorted) and the
/// same range of `child`, so that a step reads one short run of bytes
/// rather than chasing a pointer per node.
#[derive(Default)]
struct PieceTrie {
    start: Vec<u32>,
    bytes: Vec<u8>,
    child: Vec<u32>,
    piece: Vec<Option<(f32, i32)>>,
}

impl PieceTrie {
    /// The trie of `pieces`; a repeated piece (sentencepiece refuses them)
    /// keeps its last value.
    fn new<'a>(pieces: impl Iterator<Item = (&'a [u8], (f32, i32))>) -> PieceTrie {
        // Built as a map from (node, byte) to child, then numbered in order.
        let mut edges: std::collections::BTreeMap<(u32, u8), u32> = Default::default();
        let mut piece: Vec<Option<(f32, i32)>> = vec![None];
        for (key, value) in pieces {
            let mut node = 0u32;
            for &b in key {
                let next = piece.len() as u32;
                node = *edges.entry((node, b)).or_insert_with(|| {
                    piece.push(None);
                    next
                });
            }
            piece[node as usize] = Some(value);
        }
        let mut t = PieceTrie {
            start: Vec::with_capacity(piece.len() + 1),
            bytes: Vec::with_capacity(edges.len()),
            child: Vec::with_capacity(edges.len()),
            piece,
        };
        // The map iterates by node, then byte: each node's edges together.
        let mut it = edges.into_iter().peekable();
        for node in 0..t.piece.len() as u32 {
            t.start.push(t.bytes.len() as u32);
            while let Some(((_, b), c)) = it.next_if(|((n, _), _)| *n == node) {
                t.bytes.push(b);
                t.child.push(c);
            }
        }
        t.start.push(t.bytes.len() as u32);
        t
    }

    #[inline]
    fn child(&self, node: usize, byte: u8) -> Option<usize> {
        let (a, b) = (self.start[node] as usize, self.start[node + 1] as usize);
        let edges = &self.bytes[a..b];
        let i = if edges.len() <= 16 {
            edges.iter().position(|&e| e == byte)?
        } else {
            edges.binary_search(&byte).ok()?
        };
        Some(self.child[a + i] as usize)
    }

    #[inline]
    fn piece(&self, node: usize) -> Option<(f32, i32)> {
        self.piece[node]
    }
}

/// A SentencePiece unigram model run as sentencepiece runs it, for the
/// pieces an n-gram model was trained on: the normalisation of the
/// converted `tokenizer.json` (the model's own map, spaces collapsed,
/// `▁` for spaces and the dummy prefix), then sentencepiece's Viterbi
/// (`EncodeOptimized`): best path scores kept in f32 over the whole line,
/// each candidate summed in f64 and compared with the kept f32 (the
/// precision sentencepiece's expression gives it), starts in order, pieces
/// by increasing length, a later candidate taking a position only with a
/// strictly higher score. On 9,294 held-out lines it gives sentencepiece
/// 0.2.1's pieces on every one (summing in f32 differed on 4 near-ties
/// such as `(ccc)`: `c cc` against `cc c`); the `tokenizers` crate's f64
/// Viterbi differs on 5. An unknown character scores the lowest piece score minus 10,
/// and a run of them is one piece, its surface text (as
/// `encode_as_pieces` gives it).
pub struct UnigramPieces {
    normalizer: tokenizers::Tokenizer,
    /// The pieces that can match, as a byte trie: a start position's
    /// candidates, shortest first, in one walk (sentencepiece walks its
    /// double-array trie the same way).
    trie: PieceTrie,
    max_score: f32,
    unk_score: f32,
    dummy_prefix: bool,
}

impl UnigramPieces {
    pub fn load(path: &std::path::Path) -> Result<UnigramPieces> {
        let bytes = std::fs::read(path)?;
        let p = parse(&bytes)?;
        let json = to_tokenizer_json(&bytes)?;
        let normalizer = tokenizers::Tokenizer::from_bytes(json.as_bytes())
            .map_err(|e| anyhow!("cannot build its normaliser: {e}"))?;
        let (mut min_score, mut max_score) = (f32::INFINITY, f32::NEG_INFINITY);
        // Types 1 (normal), 4 (user-defined) and 6 (byte) can match;
        // unknown (2), control (3) and unused (5) never do.
        let trie = PieceTrie::new(
            p.pieces
                .iter()
                .filter(|(_, _, kind)| matches!(kind, 1 | 4 | 6))
                .map(|(s, score, kind)| (s.as_bytes(), (*score, *kind))),
        );
        for (_, score, kind) in &p.pieces {
            if *kind == 1 {
                min_score = min_score.min(*score);
                max_score = max_score.max(*score);
            }
        }
        Ok(UnigramPieces {
            normalizer,
            trie,
            max_score,
            unk_score: min_score - 10.0,
            dummy_prefix: p.add_dummy_prefix,
        })
    }

    /// The pieces of a line.
    pub fn pieces(&self, line: &str) -> Result<Vec<String>> {
        let normalized = match self.normalizer.get_normalizer() {
            Some(n) => {
                use tokenizers::Normalizer;
                let mut s = tokenizers::NormalizedString::from(line);
                n.normalize(&mut s).map_err(|e| anyhow!("{e}"))?;
                s.get().to_string()
            }
            None => line.to_string(),
        };
        if normalized.is_empty() {
            return Ok(vec![]);
        }
        let mut text = String::with_capacity(normalized.len() + 3);
        if self.dummy_prefix && !normalized.starts_with(' ') {
            text.push('▁');
        }
        text.push_str(&normalized.replace(' ', "▁"));
        let b = text.as_bytes();
        let n = b.len();
        // Per end position: (best score, start, known piece).
        let mut best: Vec<(f32, usize, bool)> = vec![(0.0, usize::MAX, false); n + 1];
        let mut start = 0;
        while start < n {
            let till_here = best[start].0;
            let ch = text[start..].chars().next().map_or(1, char::len_utf8);
            let mut single = false;
            let mut node = 0;
            for (end, &byte) in b.iter().enumerate().skip(start).map(|(i, c)| (i + 1, c)) {
                let Some(next) = self.trie.child(node, byte) else {
                    break;
                };
                node = next;
                if let Some((score, kind)) = self.trie.piece(node) {
                    // A user-defined piece gets a bonus so that it is
                    // always chosen (sentencepiece's rule). As in
                    // sentencepiece, that expression's `- 0.1` makes every
                    // piece's score a double there, so the candidate path
                    // score is a double sum compared with the stored f32
                    // (which decides near-ties such as `c cc` / `cc c`);
                    // it is stored rounded to f32.
                    let score = if kind == 4 {
                        ((end - start) as f32 * self.max_score) as f64 - 0.1
                    } else {
                        score as f64
                    };
                    let candidate = score + till_here as f64;
                    let t = &mut best[end];
                    if t.1 == usize::MAX || candidate > t.0 as f64 {
                        *t = (candidate as f32, start, true);
                    }
                    if end - start == ch {
                        single = true;
                    }
                }
            }
            if !single {
                let candidate = self.unk_score + till_here;
                let t = &mut best[start + ch];
                if t.1 == usize::MAX || candidate > t.0 {
                    *t = (candidate, start, false);
                }
            }
            start += ch;
        }
        let mut out: Vec<(usize, usize, bool)> = vec![];
        let mut end = n;
        while end > 0 {
            let (_, s, known) = best[end];
            out.push((s, end, known));
            end = s;
        }
        out.reverse();
        // Consecutive unknown pieces are one.
        let mut pieces: Vec<String> = vec![];
        let mut prev_unknown = false;
        for (s, e, known) in out {
            if !known && prev_unknown {
                pieces.last_mut().expect("one before").push_str(&text[s..e]);
            } else {
                pieces.push(text[s..e].to_string());
            }
            prev_unknown = !known;
        }
        Ok(pieces)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `ModelProto` with pieces and a trainer spec of `model_type`.
    fn proto(model_type: u8) -> Vec<u8> {
        let mut b = vec![];
        for (piece, score) in [("<unk>", 0f32), ("▁a", -1.5), ("b", -2.0)] {
            let mut m = vec![0x0a, piece.len() as u8];
            m.extend_from_slice(piece.as_bytes());
            m.push(0x15);
            m.extend_from_slice(&score.to_le_bytes());
            m.extend_from_slice(&[0x18, if piece == "<unk>" { 2 } else { 1 }]);
            b.push(0x0a);
            b.push(m.len() as u8);
            b.extend(m);
        }
        b.extend_from_slice(&[0x12, 2, 0x18, model_type]);
        b
    }

    #[test]
    fn unigram_models_convert_and_others_are_named() {
        let json = to_tokenizer_json(&proto(1)).unwrap();
        let tok = tokenizers::Tokenizer::from_bytes(json.as_bytes()).unwrap();
        assert_eq!(tok.get_vocab_size(false), 3);
        assert_eq!(tok.encode("ab", false).unwrap().get_tokens(), ["▁a", "b"]);
        let e = format!("{:#}", to_tokenizer_json(&proto(2)).unwrap_err());
        assert!(e.contains("type 2"), "{e}");
        assert!(to_tokenizer_json(b"\xff\xff\xff").is_err());
        assert!(to_tokenizer_json(b"{\"model\": 1}").is_err());
        assert!(to_tokenizer_json(&proto(1)[..20]).is_err());
    }
}
