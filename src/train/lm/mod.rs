//! `sluice train-lm`: an n-gram language model with interpolated modified
//! Kneser–Ney smoothing, estimated as KenLM's `lmplz` estimates it, written
//! as an ARPA file and KenLM's probing binary that KenLM (and the
//! `perplexity` op) load, with `report.json`.
//!
//! Each line of each document is a sentence: normalised (`normalize`),
//! split into words by the model's tokenizer (`tokenizer::lm`, the same
//! code `perplexity` scores with), counted as lmplz counts. Memory is
//! bounded by `memory_budget`: the counting tables and the sort buffers of
//! the three passes (`estimate`) spill sorted runs to `<dir>/_work`, which
//! is removed at the end. The passes run per range of word ids, in
//! parallel; the model is the same for any number of workers.

mod count;
mod estimate;
mod ngram;
pub mod spec;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use rayon::prelude::*;
use serde_json::json;

use crate::tokenizer::lm::LmTokenizer;
use count::{Partitions, SharedSorters};
use estimate::{Adjusted, Discount, Interpolator, OrderStats, RecordFile, Unigrams};
use spec::LmSpec;

/// Bytes a counting table spends per n-gram (key, count, hash overhead).
const TABLE_BYTES_PER_ENTRY: u64 = 64;

pub fn run(spec_path: &Path, workers: usize, quiet: bool) -> Result<()> {
    let spec = LmSpec::load(spec_path)?;
    let workers = workers.max(1);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(workers)
        .build()
        .context("cannot start the worker pool")?;
    pool.install(|| train(&spec, workers, quiet))
}

fn say(quiet: bool, m: String) {
    if !quiet {
        crate::msg::info(m);
    }
}

fn train(spec: &LmSpec, workers: usize, quiet: bool) -> Result<()> {
    let start = Instant::now();
    let n = spec.lm.order;
    let thresholds = spec.prune_thresholds();
    let budget = spec.lm.memory_budget.0;
    let tokenizer = match spec.lm.tokenizer.as_str() {
        "none" => LmTokenizer::Words,
        path => LmTokenizer::load(Path::new(path))
            .with_context(|| format!("{}: [lm] tokenizer", spec.file))?,
    };
    let jobs = crate::train::text_jobs(&spec.file, &spec.input, quiet)?;
    let out_dir = crate::io::store::local_for(&spec.output.dir);
    let work = out_dir.join("_work");
    if work.exists() {
        std::fs::remove_dir_all(&work)
            .with_context(|| format!("cannot clear {}", work.display()))?;
    }
    std::fs::create_dir_all(&work).with_context(|| format!("cannot create {}", work.display()))?;

    // 1. Words to ids, and the vocabulary in order of first appearance.
    let t = Instant::now();
    let tok = count::tokenize(&jobs, &tokenizer, spec.lm.normalize, &work.join("ids"))?;
    let totals = tok.totals;
    anyhow::ensure!(
        totals.sentences > 0,
        "{}: the input holds no words to train on ({} documents read)",
        spec.file,
        totals.docs
    );
    let vocab_size = tok.vocab.words.len();
    let tokenize_secs = t.elapsed().as_secs_f64();
    say(
        quiet,
        format!(
            "read {} documents, {:.1} MB: {} sentences, {} words, {} distinct, in {tokenize_secs:.1} s",
            totals.docs,
            totals.bytes as f64 / 1e6,
            totals.sentences,
            totals.tokens,
            vocab_size - 3
        ),
    );

    // 2. Counts of the full order, sorted per range of last words.
    let t = Instant::now();
    let parts = Partitions::new(&tok.vocab.counts, workers * 2);
    let np = parts.len();
    let sort_dir = work.join("sort");
    let counted = SharedSorters::new(&sort_dir, "count", np, budget / 2 / np as u64)?;
    let table_entries =
        ((budget / 2 / workers as u64 / TABLE_BYTES_PER_ENTRY) as usize).max(1 << 12);
    count::count(&tok, n, &parts, &counted, table_entries)?;
    let mut spilled = counted.runs();
    let count_secs = t.elapsed().as_secs_f64();

    // 3. Adjusted counts, count-of-counts, discounts.
    let t = Instant::now();
    let per_sorter = budget / 2 / (np * (n - 1)) as u64;
    let ctx: Vec<SharedSorters> = (2..=n)
        .map(|k| SharedSorters::new(&sort_dir, &format!("context{k}"), np, per_sorter))
        .collect::<Result<_>>()?;
    let adjusted: Vec<Adjusted> = (0..np)
        .into_par_iter()
        .map(|p| estimate::adjust(counted.take(p)?.finish()?, n, &thresholds, &parts, &ctx))
        .collect::<Result<_>>()?;
    drop(counted);
    spilled += ctx.iter().map(SharedSorters::runs).sum::<usize>();
    let mut stats = vec![OrderStats::default(); n];
    // `<unk>` and `<s>`: unigrams with adjusted count 0.
    stats[0].add(0, false);
    stats[0].add(0, false);
    let last = adjusted.iter().rposition(|a| a.nonempty);
    let mut unigram_counts = vec![0u64; vocab_size];
    for (p, a) in adjusted.iter().enumerate() {
        for (s, o) in stats.iter_mut().zip(&a.stats) {
            s.merge(o);
        }
        for &(idx, adjusted, actual, pruned) in &a.end {
            stats[idx].add(if Some(p) == last { actual } else { adjusted }, pruned);
        }
        for &(id, c) in &a.unigrams {
            unigram_counts[id as usize] = c;
        }
    }
    drop(adjusted);
    let fallback = spec.lm.discount_fallback.as_deref().map(Discount::fallback);
    let discounts = estimate::discounts(&stats, fallback).with_context(|| spec.file.clone())?;
    let adjust_secs = t.elapsed().as_secs_f64();
    say(
        quiet,
        format!(
            "n-grams per order: {}",
            stats
                .iter()
                .map(|s| if s.kept == s.count {
                    s.count.to_string()
                } else {
                    format!("{}/{}", s.kept, s.count)
                })
                .collect::<Vec<_>>()
                .join(" ")
        ),
    );

    // 4. Gammas per context, and each n-gram's discounted probability.
    let t = Instant::now();
    let unigrams = Unigrams::new(unigram_counts, discounts[0], stats[0].kept);
    let interp: Vec<SharedSorters> = (2..=n)
        .map(|k| SharedSorters::new(&sort_dir, &format!("interpolate{k}"), np, per_sorter))
        .collect::<Result<_>>()?;
    let gamma_dir = work.join("gamma");
    std::fs::create_dir_all(&gamma_dir)?;
    let gamma_file = |p: usize, k: usize| gamma_dir.join(format!("p{p:04}-{k}.bin"));
    let pairs: Vec<(usize, usize)> = (0..np).flat_map(|p| (2..=n).map(move |k| (p, k))).collect();
    pairs.par_iter().try_for_each(|&(p, k)| {
        estimate::contexts(
            ctx[k - 2].take(p)?.finish()?,
            k,
            &discounts[k - 1],
            &parts,
            &interp[k - 2],
            &gamma_file(p, k - 1),
        )
    })?;
    drop(ctx);
    spilled += interp.iter().map(SharedSorters::runs).sum::<usize>();

    // 5. Interpolation, into one ARPA section per order and partition.
    let arpa_dir = work.join("arpa");
    std::fs::create_dir_all(&arpa_dir)?;
    let section = |p: usize, k: usize| arpa_dir.join(format!("p{p:04}-{k}.txt"));
    let lines: Vec<Vec<u64>> = (0..np)
        .into_par_iter()
        .map(|p| -> Result<Vec<u64>> {
            let grams = (2..=n)
                .map(|k| interp[k - 2].take(p)?.finish())
                .collect::<Result<_>>()?;
            let gammas = (1..n)
                .map(|k| RecordFile::open(&gamma_file(p, k)))
                .collect::<Result<_>>()?;
            let outs = (1..=n)
                .map(|k| {
                    let path = section(p, k);
                    File::create(&path)
                        .map(|f| BufWriter::with_capacity(1 << 20, f))
                        .with_context(|| format!("cannot create {}", path.display()))
                })
                .collect::<Result<Vec<_>>>()?;
            let mut it = Interpolator::new(n, &unigrams, &tok.vocab.words, grams, gammas, outs)?;
            it.run(parts.bounds[p]..parts.bounds[p + 1])?;
            for o in &mut it.out {
                o.flush()?;
            }
            Ok(it.lines)
        })
        .collect::<Result<_>>()?;
    let estimate_secs = t.elapsed().as_secs_f64();
    let per_order: Vec<u64> = (0..n).map(|k| lines.iter().map(|l| l[k]).sum()).collect();
    for (k, (&have, s)) in per_order.iter().zip(&stats).enumerate() {
        anyhow::ensure!(
            have == s.kept,
            "train-lm wrote {have} {}-grams but kept {} (a bug)",
            k + 1,
            s.kept
        );
    }

    // 6. The ARPA file, the report.
    let t = Instant::now();
    let arpa = out_dir.join("model.arpa");
    write_arpa(&arpa, &per_order, |k| {
        (0..np).map(|p| section(p, k)).collect()
    })?;
    if crate::io::store::is_remote(&spec.output.dir) {
        crate::io::store::copy(&arpa, &spec.output.dir.join("model.arpa"))?;
    }
    let write_secs = t.elapsed().as_secs_f64();
    // The probing binary: the ARPA file loaded as KenLM loads it, its
    // tables written as build_binary writes them.
    let t = Instant::now();
    let binary_secs = if spec.output.binary {
        let binary = out_dir.join("model.binary");
        let model = crate::models::kenlm::Model::load(&arpa)?;
        let words: Vec<&str> = tok.vocab.words.iter().map(|w| &**w).collect();
        model.write_binary(&words, &binary)?;
        drop(model);
        if crate::io::store::is_remote(&spec.output.dir) {
            crate::io::store::copy(&binary, &spec.output.dir.join("model.binary"))?;
        }
        Some(t.elapsed().as_secs_f64())
    } else {
        None
    };
    std::fs::remove_dir_all(&work).ok();
    let report = json!({
        "model": "model.arpa",
        "binary": spec.output.binary.then_some("model.binary"),
        "order": n,
        "tokenizer": spec.lm.tokenizer,
        "normalize": spec.lm.normalize,
        "prune": thresholds,
        "training": {
            "documents": totals.docs,
            "bytes": totals.bytes,
            "sentences": totals.sentences,
            "tokens": totals.tokens,
            "reserved_words_skipped": totals.reserved_skipped,
            "vocabulary": vocab_size,
            "tasks": jobs.len(),
            "workers": workers,
        },
        "orders": stats.iter().zip(&discounts).enumerate().map(|(i, (s, d))| json!({
            "order": i + 1,
            "ngrams": s.kept,
            "before_pruning": s.count,
            "adjusted_count_of_counts": &s.n[1..],
            "discounts": &d.amount[1..],
        })).collect::<Vec<_>>(),
        "spilled_runs": spilled,
        "seconds": {
            "tokenize": tokenize_secs,
            "count": count_secs,
            "adjust": adjust_secs,
            "estimate": estimate_secs,
            "write": write_secs,
            "binary": binary_secs,
            "total": start.elapsed().as_secs_f64(),
        },
        "peak_rss_mb": crate::train::peak_rss_mb(),
    });
    crate::io::writer::write_atomic(
        &spec.output.dir.join("report.json"),
        serde_json::to_string_pretty(&report)?.as_bytes(),
    )?;
    if !quiet {
        println!(
            "train-lm: order {n}, {} n-grams from {} words in {:.1} s → {}",
            per_order.iter().sum::<u64>(),
            totals.tokens,
            start.elapsed().as_secs_f64(),
            spec.output.dir.join("model.arpa").display()
        );
    }
    Ok(())
}

/// Writes the ARPA file: the header with the counts per order, then each
/// order's sections in partition order.
fn write_arpa(path: &Path, counts: &[u64], sections: impl Fn(usize) -> Vec<PathBuf>) -> Result<()> {
    let tmp = path.with_extension("arpa.partial");
    let mut out = BufWriter::with_capacity(
        1 << 20,
        File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?,
    );
    writeln!(out, "\\data\\")?;
    for (k, c) in counts.iter().enumerate() {
        writeln!(out, "ngram {}={c}", k + 1)?;
    }
    for k in 1..=counts.len() {
        write!(out, "\n\\{k}-grams:\n")?;
        for s in sections(k) {
            let mut f = File::open(&s).with_context(|| format!("cannot open {}", s.display()))?;
            std::io::copy(&mut f, &mut out)
                .with_context(|| format!("cannot write {}", tmp.display()))?;
        }
    }
    write!(out, "\n\\end\\\n")?;
    out.flush()
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    drop(out);
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
