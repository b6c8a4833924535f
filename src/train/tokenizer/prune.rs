//! `sluice prune-tokenizer spec.toml`: encodes a corpus with a tokenizer,
//! counts each token's uses, keeps what the corpus needs
//! (`tokenizer::prune`) and writes the smaller `tokenizer.json`,
//! `id_map.json` (old id → new id) and `report.json`.
//!
//! ```toml
//! [input]
//! paths = ["corpus/*.parquet"]
//! [prune]
//! tokenizer = "llama-2/tokenizer.json"
//! min_count = 1          # or vocab_size = 20000: the most used first
//! keep = ["<|im_start|>"]
//! [output]
//! dir = "out/pruned"
//! ```

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, Result};
use rayon::prelude::*;
use serde::Deserialize;
use serde_json::json;

use super::spec::{TokInput, TokOutput};
use crate::io::writer::write_atomic;
use crate::pipeline::spec::{
    need_section, parse_sections, read_sections, Section, Spec, SpecError,
};
use crate::tokenizer::fast::FastTokenizer;
use crate::tokenizer::prune::{id_map_json, map_ids, prune, PruneOptions};

fn one() -> u64 {
    1
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PruneConfig {
    /// The tokenizer.json to prune (any BPE file sluice reads).
    pub tokenizer: PathBuf,
    /// Tokens the corpus uses fewer times are dropped (unless needed to
    /// build a kept one).
    #[serde(default = "one")]
    pub min_count: u64,
    /// Or keep at most this many tokens, the most used first.
    #[serde(default)]
    pub vocab_size: Option<usize>,
    /// Tokens kept whatever the corpus.
    #[serde(default)]
    pub keep: Vec<String>,
}

pub struct PruneSpec {
    pub file: String,
    pub input: TokInput,
    pub prune: PruneConfig,
    pub output: TokOutput,
}

const TOP_KEYS: &[&str] = &["input", "prune", "output"];

impl PruneSpec {
    pub fn load(path: &Path) -> Result<Self, SpecError> {
        let (shell, table) = read_sections(path, "prune", TOP_KEYS)?;
        Self::from_table(shell, table)
    }

    pub fn parse(file: &str, source: &str) -> Result<Self, SpecError> {
        let (shell, table) = parse_sections(file, source, TOP_KEYS)?;
        Self::from_table(shell, table)
    }

    fn from_table(shell: Spec, table: toml::Table) -> Result<Self, SpecError> {
        let file = shell.file.clone();
        let need = |name: &'static str, hint: &str| need_section(&file, &table, name, hint);
        let input: TokInput = shell.decode(Section::Input, need("input", "`paths = [...]`")?)?;
        let prune: PruneConfig = shell.decode(
            Section::Table("prune"),
            need("prune", "`tokenizer = \"…/tokenizer.json\"`")?,
        )?;
        let output: TokOutput =
            shell.decode(Section::Output, need("output", "`dir = \"...\"`")?)?;
        input.validate(&shell)?;
        if prune.min_count == 0 {
            return Err(shell.error(
                Section::Table("prune"),
                Some("min_count"),
                "min_count must be at least 1 (0 would keep every token: nothing to prune)".into(),
            ));
        }
        if prune.vocab_size == Some(0) {
            return Err(shell.error(
                Section::Table("prune"),
                Some("vocab_size"),
                "vocab_size must be at least 1".into(),
            ));
        }
        Ok(PruneSpec {
            file,
            input,
            prune,
            output,
        })
    }
}

pub fn run(spec_path: &Path, workers: usize, quiet: bool) -> Result<()> {
    let spec = PruneSpec::load(spec_path)?;
    let p = &spec.prune;
    crate::tokenizer::load::load_tokenizer(&p.tokenizer)
        .map_err(|e| anyhow::anyhow!("{}: tokenizer: {e:#}", spec.file))?;
    let json: serde_json::Value = serde_json::from_slice(
        &std::fs::read(&p.tokenizer)
            .with_context(|| format!("cannot read {}", p.tokenizer.display()))?,
    )?;
    let fast = FastTokenizer::from_json(&json).map_err(|e| {
        anyhow::anyhow!(
            "{}: cannot prune {}: sluice prunes BPE tokenizers it reads, and this one has {e}",
            spec.file,
            p.tokenizer.display()
        )
    })?;
    let jobs = crate::train::text_jobs(&spec.file, &spec.input, quiet)?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(workers.max(1))
        .build()
        .context("cannot start the worker pool")?;
    let start = std::time::Instant::now();
    let n = fast.vocab_size();
    let total = Mutex::new((vec![0u64; n], 0u64, 0u64));
    pool.install(|| {
        jobs.par_iter().try_for_each(|job| -> Result<()> {
            let (mut counts, mut docs, mut bytes) = (vec![0u64; n], 0u64, 0u64);
            job.for_each_text(|text| {
                for id in fast.encode(text) {
                    counts[id as usize] += 1;
                }
                docs += 1;
                bytes += text.len() as u64;
                Ok(())
            })?;
            let mut t = total.lock().unwrap_or_else(|e| e.into_inner());
            for (a, b) in t.0.iter_mut().zip(&counts) {
                *a += b;
            }
            t.1 += docs;
            t.2 += bytes;
            Ok(())
        })
    })?;
    let (counts, docs, bytes) = total.into_inner().unwrap_or_else(|e| e.into_inner());
    let count_secs = start.elapsed().as_secs_f64();
    let pruned = prune(
        &json,
        &fast,
        &counts,
        &PruneOptions {
            min_count: p.min_count,
            vocab_size: p.vocab_size,
            keep: p.keep.clone(),
        },
    )
    .map_err(|e| anyhow::anyhow!("{}: {e}", spec.file))?;
    let dir = &spec.output.dir;
    crate::io::store::create_dir_all(dir)?;
    write_atomic(
        &dir.join("tokenizer.json"),
        serde_json::to_string_pretty(&pruned.json)?.as_bytes(),
    )?;
    write_atomic(
        &dir.join("id_map.json"),
        serde_json::to_string(&id_map_json(&pruned.old_to_new))?.as_bytes(),
    )?;
    let tokens_before: u64 = counts.iter().sum();
    // Tokens after: the same on the corpus unless used tokens were dropped
    // (a count threshold or a target size), then counted again.
    let used_dropped = counts
        .iter()
        .zip(&pruned.old_to_new)
        .filter(|(c, k)| **c > 0 && k.is_none())
        .count();
    let tokens_after = if used_dropped == 0 {
        tokens_before
    } else {
        let after = FastTokenizer::from_json(&pruned.json)
            .map_err(|e| anyhow::anyhow!("bug: the pruned tokenizer.json is not readable: {e}"))?;
        let sum = std::sync::atomic::AtomicU64::new(0);
        pool.install(|| {
            jobs.par_iter().try_for_each(|job| -> Result<()> {
                let mut s = 0u64;
                job.for_each_text(|text| {
                    s += after.encode(text).len() as u64;
                    Ok(())
                })?;
                sum.fetch_add(s, std::sync::atomic::Ordering::Relaxed);
                Ok(())
            })
        })?;
        sum.into_inner()
    };
    let kept_by: serde_json::Map<String, serde_json::Value> = pruned
        .kept_by
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    let report = json!({
        "tokenizer": p.tokenizer.display().to_string(),
        "min_count": p.min_count,
        "vocab_size_asked": p.vocab_size,
        "vocab_size_before": n,
        "vocab_size_after": pruned.new_to_old.len(),
        "kept_by": kept_by,
        "used_tokens_dropped": used_dropped,
        "corpus": {"docs": docs, "bytes": bytes, "tokens_before": tokens_before,
                   "tokens_after": tokens_after,
                   "bytes_per_token_before": bytes as f64 / tokens_before.max(1) as f64,
                   "bytes_per_token_after": bytes as f64 / tokens_after.max(1) as f64},
        "seconds": start.elapsed().as_secs_f64(),
        "count_seconds": count_secs,
        "peak_rss_mb": crate::train::peak_rss_mb(),
    });
    write_atomic(
        &dir.join("report.json"),
        serde_json::to_string_pretty(&report)?.as_bytes(),
    )?;
    // The pruned file must read back, and give the corpus's tokens renumbered
    // when nothing used was dropped: checked on the first texts, cheaply.
    if used_dropped == 0 {
        let after = FastTokenizer::from_json(&pruned.json)
            .map_err(|e| anyhow::anyhow!("bug: the pruned tokenizer.json is not readable: {e}"))?;
        if let Some(job) = jobs.first() {
            let mut checked = 0;
            job.for_each_text(|text| {
                if checked < 100 {
                    checked += 1;
                    anyhow::ensure!(
                        map_ids(&fast.encode(text), &pruned.old_to_new) == Some(after.encode(text)),
                        "bug: the pruned tokenizer encodes a corpus text differently"
                    );
                }
                Ok(())
            })?;
        }
    }
    if !quiet {
        println!(
            "tokenizer: {} → {} tokens ({} used by the corpus of {docs} documents, {:.1} MB); \
             corpus {tokens_before} → {tokens_after} tokens → {}",
            n,
            pruned.new_to_old.len(),
            counts.iter().filter(|&&c| c > 0).count(),
            bytes as f64 / 1e6,
            dir.join("tokenizer.json").display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_key() {
        let base = "[input]\npaths = [\"x\"]\n[output]\ndir = \"o\"\n";
        let e = PruneSpec::parse(
            "p.toml",
            &format!("{base}[prune]\ntokenizer = \"t.json\"\nmin_count = 0\n"),
        )
        .err()
        .unwrap()
        .to_string();
        assert!(e.contains("p.toml:7:") && e.contains("min_count"), "{e}");
        let e = PruneSpec::parse(
            "p.toml",
            &format!("{base}[prune]\ntokenizer = \"t.json\"\nmin_cont = 2\n"),
        )
        .err()
        .unwrap()
        .to_string();
        assert!(e.contains("min_count"), "{e}");
        let e = PruneSpec::parse("p.toml", base).err().unwrap().to_string();
        assert!(e.contains("[prune]"), "{e}");
    }
}
