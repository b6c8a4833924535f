//! Vocabulary pruning (ChatGLM-6B-slim's recipe): keep the tokens a corpus
//! uses, renumber them, drop the rest with their merges.
//!
//! Kept: the tokens used at least `min_count` times (or the most used, up
//! to `vocab_size`), the added tokens, the bytes (the 256 byte-level
//! tokens, or the `<0xNN>` of byte fallback), the tokens asked for, and
//! every token a kept one is built from (both parts of every merge that
//! makes it, down to the bytes or characters). A merge stays when its two
//! parts and its result stay, in its order. On the corpus counted with
//! every used token kept (`min_count = 1`), every merge that fired makes a
//! kept token (used, or a part of one), so the pruned tokenizer encodes
//! the corpus to the same tokens, renumbered; any other text still encodes
//! losslessly (bytes, byte fallback), in more tokens where it needed a
//! dropped one. New ids follow the old order, so `id_map.json` slices an
//! embedding matrix: new row `i` is old row `new_to_old[i]`.

use std::collections::HashMap;

use serde_json::{json, Value};

use super::fast::{byte_token, merge_parts, FastTokenizer};

pub struct PruneOptions {
    /// Tokens used fewer times are dropped (unless needed).
    pub min_count: u64,
    /// Or at most this many tokens: the most used first, each with what it
    /// needs.
    pub vocab_size: Option<usize>,
    /// Tokens kept whatever their count (they must be in the vocabulary).
    pub keep: Vec<String>,
}

pub struct Pruned {
    pub json: Value,
    /// Old id → new id (None: dropped).
    pub old_to_new: Vec<Option<u32>>,
    /// New id → old id.
    pub new_to_old: Vec<u32>,
    /// Why tokens were kept: used, added, bytes, keep, needed (only to
    /// build a kept one). Each token counts once.
    pub kept_by: Vec<(&'static str, usize)>,
}

/// Prunes `json` (read as `fast`) given each id's count on the corpus.
/// Errors are the user's (a `keep` token not in the vocabulary, a target
/// below what must be kept).
pub fn prune(
    json: &Value,
    fast: &FastTokenizer,
    counts: &[u64],
    opt: &PruneOptions,
) -> Result<Pruned, String> {
    let n = fast.vocab_size();
    let vocab = json["model"]["vocab"]
        .as_object()
        .ok_or("bug: a BPE tokenizer without a vocab")?;
    let id_of = |s: &str| -> Option<u32> {
        vocab
            .get(s)
            .and_then(Value::as_u64)
            .map(|i| i as u32)
            .or_else(|| {
                json["added_tokens"]
                    .as_array()?
                    .iter()
                    .find(|t| t["content"] == s)
                    .and_then(|t| t["id"].as_u64())
                    .map(|i| i as u32)
            })
    };
    // What each token is made of: both parts of every merge that makes it.
    let mut parts: Vec<Vec<(u32, u32)>> = vec![vec![]; n];
    let merges = json["model"]["merges"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut merge_ids = Vec::with_capacity(merges.len());
    let mut joined = String::new();
    for (k, m) in merges.iter().enumerate() {
        let (l, r) = merge_parts(m).ok_or_else(|| format!("bug: merge {k} unreadable"))?;
        joined.clear();
        joined.push_str(l);
        joined.push_str(r);
        let (Some(a), Some(b), Some(t)) = (id_of(l), id_of(r), id_of(&joined)) else {
            return Err(format!("bug: merge {k} names tokens outside the vocab"));
        };
        parts[t as usize].push((a, b));
        merge_ids.push((a, b, t));
    }
    let mut reason: Vec<Option<&'static str>> = vec![None; n];
    for id in 0..n as u32 {
        let Some(t) = fast.token(id) else { continue };
        if fast.is_added(id) {
            reason[id as usize] = Some("added");
        } else if fast.is_byte_level() && t.chars().count() == 1 && parts[id as usize].is_empty() {
            // The 256 byte tokens of a byte-level model are its alphabet.
            reason[id as usize] = Some("bytes");
        } else if !fast.is_byte_level() && byte_token(t).is_some() {
            reason[id as usize] = Some("bytes");
        }
    }
    // The model's unknown token, which encoding may need whatever the
    // corpus.
    if let Some(id) = json["model"]["unk_token"].as_str().and_then(id_of) {
        reason[id as usize].get_or_insert("added");
    }
    for k in &opt.keep {
        let id = id_of(k).ok_or_else(|| format!("keep: {k:?} is not in the vocabulary"))?;
        reason[id as usize].get_or_insert("keep");
    }
    // Adds `id` and all it is built from; returns how many were new.
    fn close(
        id: u32,
        why: &'static str,
        parts: &[Vec<(u32, u32)>],
        reason: &mut [Option<&'static str>],
        dry: bool,
        seen: &mut Vec<u32>,
    ) -> usize {
        let mut stack = vec![(id, why)];
        let mut added = 0;
        while let Some((i, w)) = stack.pop() {
            if reason[i as usize].is_some() || seen.contains(&i) {
                continue;
            }
            if dry {
                seen.push(i);
            } else {
                reason[i as usize] = Some(w);
            }
            added += 1;
            for &(a, b) in &parts[i as usize] {
                stack.push((a, "needed"));
                stack.push((b, "needed"));
            }
        }
        added
    }
    let mandatory: Vec<u32> = (0..n as u32)
        .filter(|&i| reason[i as usize].is_some())
        .collect();
    for &i in &mandatory {
        for &(a, b) in &parts[i as usize] {
            close(a, "needed", &parts, &mut reason, false, &mut vec![]);
            close(b, "needed", &parts, &mut reason, false, &mut vec![]);
        }
    }
    let mut by_count: Vec<u32> = (0..n as u32)
        .filter(|&i| counts.get(i as usize).copied().unwrap_or(0) > 0)
        .collect();
    by_count.sort_unstable_by(|&a, &b| counts[b as usize].cmp(&counts[a as usize]).then(a.cmp(&b)));
    let mut size = reason.iter().filter(|r| r.is_some()).count();
    if let Some(target) = opt.vocab_size {
        if size > target {
            return Err(format!(
                "vocab_size {target} is below the {size} tokens that are always kept \
                 (added tokens, bytes, keep, and what they are built from)"
            ));
        }
    }
    for &i in &by_count {
        if counts[i as usize] < opt.min_count {
            break;
        }
        if let Some(target) = opt.vocab_size {
            let mut seen = vec![];
            let cost = close(i, "used", &parts, &mut reason, true, &mut seen);
            if size + cost > target {
                continue;
            }
        }
        size += close(i, "used", &parts, &mut reason, false, &mut vec![]);
    }
    // Renumber in the old order.
    let mut old_to_new = vec![None; n];
    let mut new_to_old = vec![];
    for i in 0..n {
        if reason[i].is_some() && fast.token(i as u32).is_some() {
            old_to_new[i] = Some(new_to_old.len() as u32);
            new_to_old.push(i as u32);
        }
    }
    let kept = |i: u32| old_to_new[i as usize].is_some();
    let mut out = json.clone();
    let mut new_vocab = serde_json::Map::new();
    for (tok, id) in vocab {
        let id = id.as_u64().unwrap_or(u64::MAX) as usize;
        if let Some(Some(new)) = old_to_new.get(id) {
            new_vocab.insert(tok.clone(), json!(new));
        }
    }
    // The vocab in id order, as tokenizers writes it.
    let mut ordered: Vec<(String, Value)> = new_vocab.into_iter().collect();
    ordered.sort_by_key(|(_, v)| v.as_u64());
    out["model"]["vocab"] = Value::Object(ordered.into_iter().collect());
    out["model"]["merges"] = Value::Array(
        merges
            .iter()
            .zip(&merge_ids)
            .filter(|(_, (a, b, t))| kept(*a) && kept(*b) && kept(*t))
            .map(|(m, _)| m.clone())
            .collect(),
    );
    for t in out["added_tokens"].as_array_mut().into_iter().flatten() {
        let old = t["id"].as_u64().unwrap_or(0) as usize;
        t["id"] = json!(old_to_new[old].ok_or("bug: an added token dropped")?);
    }
    remap_processor(&mut out["post_processor"], &|old| {
        old_to_new.get(old as usize).copied().flatten()
    })?;
    // Each kept token under one reason: added, bytes and keep first, then
    // used (at least min_count times), else needed to build another.
    let why = |i: u32| -> &'static str {
        match reason[i as usize] {
            Some(r @ ("added" | "bytes" | "keep")) => r,
            _ if counts
                .get(i as usize)
                .is_some_and(|&c| c > 0 && c >= opt.min_count) =>
            {
                "used"
            }
            _ => "needed",
        }
    };
    let kept_by: Vec<(&'static str, usize)> = ["used", "added", "bytes", "keep", "needed"]
        .into_iter()
        .map(|w| (w, new_to_old.iter().filter(|&&i| why(i) == w).count()))
        .collect();
    Ok(Pruned {
        json: out,
        old_to_new,
        new_to_old,
        kept_by,
    })
}

/// The ids a post-processor names (TemplateProcessing's special tokens,
/// Bert's and Roberta's `cls`/`sep`), renumbered.
fn remap_processor(p: &mut Value, map: &dyn Fn(u64) -> Option<u32>) -> Result<(), String> {
    let fix = |v: &mut Value| -> Result<(), String> {
        let old = v
            .as_u64()
            .ok_or("bug: a post-processor id that is not a number")?;
        *v = json!(map(old).ok_or(format!("bug: post-processor token {old} dropped"))?);
        Ok(())
    };
    match p["type"].as_str() {
        Some("TemplateProcessing") => {
            for (_, t) in p["special_tokens"].as_object_mut().into_iter().flatten() {
                for id in t["ids"].as_array_mut().into_iter().flatten() {
                    fix(id)?;
                }
            }
        }
        Some("BertProcessing") | Some("RobertaProcessing") => {
            for k in ["cls", "sep"] {
                if let Some(id) = p[k].get_mut(1) {
                    fix(id)?;
                }
            }
        }
        Some("Sequence") => {
            for q in p["processors"].as_array_mut().into_iter().flatten() {
                remap_processor(q, map)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Ids of a text in the old numbering, mapped to the new; None where a
/// token was dropped.
pub fn map_ids(ids: &[u32], old_to_new: &[Option<u32>]) -> Option<Vec<u32>> {
    ids.iter()
        .map(|&i| old_to_new.get(i as usize).copied().flatten())
        .collect()
}

/// `id_map.json`: old id → new id, for the kept tokens.
pub fn id_map_json(old_to_new: &[Option<u32>]) -> Value {
    let m: HashMap<String, u32> = old_to_new
        .iter()
        .enumerate()
        .filter_map(|(o, n)| n.map(|n| (o.to_string(), n)))
        .collect();
    let mut ordered: Vec<(String, u32)> = m.into_iter().collect();
    ordered.sort_by_key(|(o, _)| o.parse::<u64>().unwrap_or(0));
    Value::Object(ordered.into_iter().map(|(o, n)| (o, json!(n))).collect())
}
