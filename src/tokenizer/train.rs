//! `sluice train-tokenizer`: streams the input shards, counts pre-tokenised
//! words in parallel (one map per task, merged as tasks finish), learns the
//! merges, writes `tokenizer.json` and `report.json`.
//!
//! Memory grows with the number of distinct words, not with the corpus: a
//! batch is dropped as soon as its words are counted.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use rayon::prelude::*;
use serde_json::json;

use super::bpe::{train, Encoder, TrainOptions};
use super::fxhash::FxBuild;
use super::hf::{Normalization, Tokenizer};
use super::pretok::{pieces, PreTokenizer};
use super::spec::TokenizerSpec;
use crate::io::discover::{discover, InputTask};
use crate::io::writer::write_atomic;
use crate::pipeline::spec::InputSpec;

type Counts = HashMap<Box<str>, u64, FxBuild>;

/// What the counting pass saw.
#[derive(Default)]
struct Seen {
    counts: Counts,
    docs: u64,
    bytes: u64,
}

fn input_spec(spec: &TokenizerSpec, paths: &[String]) -> InputSpec {
    InputSpec {
        paths: paths.to_vec(),
        text_column: spec.input.text_column.clone(),
        id_column: "id".into(),
        format: spec.input.format,
        batch_rows: 4096,
        max_task_bytes: 256 << 20,
    }
}

/// One task of one source, with the source's per-task byte budget and
/// sampling fraction.
struct Job {
    task: InputTask,
    input: InputSpec,
    budget: u64,
    fraction: Option<f64>,
}

/// Counts the words of one task's texts, up to its budget of bytes, into
/// `seen` (one per worker: the words a worker sees are stored once, not once
/// per task).
fn count_task(
    seen: &mut Seen,
    job: &Job,
    pre: &PreTokenizer,
    split_digits: bool,
    norm: Normalization,
) -> Result<()> {
    let mut bytes = 0;
    for out in crate::io::reader::open(&job.task, &job.input)? {
        let out = out?;
        let ids = out.batch.ids().clone();
        for (i, text) in out.batch.texts().iter().enumerate() {
            let Some(text) = text else { continue };
            if bytes >= job.budget {
                return Ok(());
            }
            if let Some(f) = job.fraction {
                // By a hash of the id: the same documents whatever the
                // order of the tasks or the number of workers.
                let u = (xxhash_rust::xxh3::xxh3_64_with_seed(ids.value(i).as_bytes(), 0x5eed)
                    >> 11) as f64
                    / (1u64 << 53) as f64;
                if u >= f {
                    continue;
                }
            }
            bytes += text.len() as u64;
            seen.docs += 1;
            seen.bytes += text.len() as u64;
            let text = norm.apply(text);
            pieces(pre, split_digits, &text, |p| match seen.counts.get_mut(p) {
                Some(c) => *c += 1,
                None => {
                    seen.counts.insert(p.into(), 1);
                }
            });
        }
    }
    Ok(())
}

fn merge(mut a: Seen, mut b: Seen) -> Seen {
    if a.counts.len() < b.counts.len() {
        std::mem::swap(&mut a, &mut b);
    }
    for (k, v) in b.counts {
        *a.counts.entry(k).or_insert(0) += v;
    }
    a.docs += b.docs;
    a.bytes += b.bytes;
    a
}

/// Reads up to `max` bytes of text of one file, for the held-out report.
fn held_out_texts(path: &Path, max: u64) -> Result<Vec<String>> {
    let input = InputSpec {
        paths: vec![path.display().to_string()],
        text_column: "text".into(),
        id_column: "id".into(),
        format: None,
        batch_rows: 4096,
        max_task_bytes: u64::MAX,
    };
    let mut out = vec![];
    let mut bytes = 0;
    for task in discover(&input)? {
        for b in crate::io::reader::open(&task, &input)? {
            for t in b?.batch.texts().iter().flatten() {
                if bytes >= max {
                    return Ok(out);
                }
                bytes += t.len() as u64;
                out.push(t.to_string());
            }
        }
    }
    Ok(out)
}

/// Hands memory freed by the counting pass back to the system. glibc keeps
/// freed blocks of many small allocations (the words' strings) in its arenas,
/// where the merge loop's different sizes cannot reuse them.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free heap pages to the kernel; it
    // touches no live allocation.
    unsafe {
        libc::malloc_trim(0);
    }
}

pub fn run(spec_path: &Path, workers: usize, quiet: bool) -> Result<()> {
    let spec = TokenizerSpec::load(spec_path)?;
    let (pre, pattern) = spec.pre_tokenizer().map_err(anyhow::Error::msg)?;
    let required = spec.required_tokens().map_err(anyhow::Error::msg)?;
    let t = &spec.tokenizer;
    let mut jobs: Vec<Job> = vec![];
    for (k, source) in spec.input.all_sources().iter().enumerate() {
        let input = input_spec(&spec, &source.paths);
        let tasks = discover(&input)?;
        anyhow::ensure!(
            !tasks.is_empty(),
            "{}: no input files matched the paths of source {} ({:?})",
            spec.file,
            k + 1,
            source.paths
        );
        let budget = source
            .max_bytes
            .map_or(u64::MAX, |b| (b.0 / tasks.len() as u64).max(1));
        let n = tasks.len();
        jobs.extend(tasks.into_iter().map(|task| Job {
            task,
            input: input.clone(),
            budget,
            fraction: source.fraction,
        }));
        if !quiet {
            eprintln!(
                "[sluice] source {}: {n} tasks{}{}",
                k + 1,
                source
                    .max_bytes
                    .map_or(String::new(), |b| format!(", at most {} bytes", b.0)),
                source
                    .fraction
                    .map_or(String::new(), |f| format!(", fraction {f}"))
            );
        }
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(workers.max(1))
        .build()
        .context("cannot start the worker pool")?;
    let start = Instant::now();
    let seen = pool.install(|| {
        jobs.par_iter()
            .try_fold(Seen::default, |mut seen, job| {
                count_task(&mut seen, job, &pre, t.split_digits, t.normalization).map(|()| seen)
            })
            .try_reduce(Seen::default, |a, b| Ok(merge(a, b)))
    })?;
    let count_secs = start.elapsed().as_secs_f64();
    let distinct = seen.counts.len();
    if !quiet {
        eprintln!(
            "[sluice] counted {} words ({distinct} distinct) in {} documents, {:.1} MB, in {count_secs:.1} s",
            seen.counts.values().sum::<u64>(),
            seen.docs,
            seen.bytes as f64 / 1e6
        );
    }
    let words: Vec<(Vec<u8>, u64)> = seen
        .counts
        .into_iter()
        .map(|(k, v)| (k.into_boxed_bytes().into_vec(), v))
        .collect();
    release_freed_memory();
    let merge_start = Instant::now();
    let bpe = train(
        words,
        &TrainOptions {
            vocab_size: t.vocab_size,
            n_special: t.special_tokens.len(),
            min_frequency: t.min_frequency,
            required: required.iter().map(|s| s.as_bytes().to_vec()).collect(),
            max_token_bytes: t.max_token_bytes,
        },
    );
    let merge_secs = merge_start.elapsed().as_secs_f64();
    let vocab = t.special_tokens.len() + bpe.tokens.len();
    if vocab < t.vocab_size {
        eprintln!(
            "[sluice] warning: {vocab} tokens, not the {} asked: no pair left that occurs at least \
             min_frequency = {} times; train on more text or lower min_frequency",
            t.vocab_size, t.min_frequency
        );
    }
    let tokenizer = Tokenizer {
        normalization: t.normalization,
        pre,
        pattern,
        split_digits: t.split_digits,
        specials: t.special_tokens.clone(),
        encoder: Encoder::new(bpe),
    };
    let dir = &spec.output.dir;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    write_atomic(
        &dir.join("tokenizer.json"),
        serde_json::to_string_pretty(&tokenizer.to_json())?.as_bytes(),
    )?;
    let mut held_out = vec![];
    for path in &spec.report.held_out {
        let texts = held_out_texts(path, spec.report.held_out_bytes.0)
            .with_context(|| format!("held-out file {}", path.display()))?;
        let (mut bytes, mut chars, mut tokens) = (0u64, 0u64, 0u64);
        for text in &texts {
            bytes += text.len() as u64;
            chars += text.chars().count() as u64;
            tokens += tokenizer.encode(text).len() as u64;
        }
        held_out.push(json!({
            "file": path.display().to_string(),
            "docs": texts.len(),
            "bytes": bytes,
            "chars": chars,
            "tokens": tokens,
            "bytes_per_token": bytes as f64 / tokens.max(1) as f64,
            "chars_per_token": chars as f64 / tokens.max(1) as f64,
        }));
    }
    let report = json!({
        "vocab_size": vocab,
        "vocab_size_asked": t.vocab_size,
        "special_tokens": t.special_tokens,
        "pre_tokenizer": t.pre_tokenizer,
        "pattern": tokenizer.pattern,
        "split_digits": t.split_digits,
        "normalization": t.normalization,
        "min_frequency": t.min_frequency,
        "required_tokens": required.len(),
        "training": {
            "docs": seen.docs,
            "bytes": seen.bytes,
            "tasks": jobs.len(),
            "distinct_words": distinct,
            "workers": workers.max(1),
            "count_seconds": count_secs,
            "merge_seconds": merge_secs,
            "seconds": start.elapsed().as_secs_f64(),
        },
        "held_out": held_out,
    });
    write_atomic(
        &dir.join("report.json"),
        serde_json::to_string_pretty(&report)?.as_bytes(),
    )?;
    if !quiet {
        println!(
            "tokenizer: {vocab} tokens from {:.1} MB in {:.1} s (counting {count_secs:.1} s, merges {merge_secs:.1} s) → {}",
            seen.bytes as f64 / 1e6,
            start.elapsed().as_secs_f64(),
            dir.join("tokenizer.json").display()
        );
        for h in report["held_out"].as_array().into_iter().flatten() {
            println!(
                "  {}: {:.2} bytes/token, {:.2} chars/token",
                h["file"].as_str().unwrap_or(""),
                h["bytes_per_token"].as_f64().unwrap_or(0.0),
                h["chars_per_token"].as_f64().unwrap_or(0.0)
            );
        }
    }
    Ok(())
}
