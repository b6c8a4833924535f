//! `sluice train-classifier`: a fastText quality classifier from positive
//! and negative shards. Documents stream from the shards; each is prepared
//! as the `quality_model` op will prepare it (`QualityText`), put in the
//! held-out split or in one of 64 training buckets by a hash of its id, and
//! written as a fastText line (`__label__positive text`). The buckets are
//! then shuffled one at a time into `train.txt` (memory: one bucket), the
//! C++ fastText (the `fasttext` crate) trains on it, and the saved model is
//! read back by sluice's own reader to score the held-out split: the
//! report's figures are those of the model the pipeline will load.

pub mod metrics;
pub mod spec;

use std::collections::BinaryHeap;
use std::io::{BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde_json::json;
use xxhash_rust::xxh3::xxh3_64_with_seed;

use crate::io::discover::discover;
use crate::models::fasttext::FastTextModel;
use crate::models::quality_text::QualityText;
use crate::pipeline::spec::InputSpec;
use spec::{ClassifierSpec, ModelParams};

pub const POSITIVE: &str = "__label__positive";
pub const NEGATIVE: &str = "__label__negative";
const BUCKETS: usize = 64;
/// fastText's label prefix; sluice's reader gives labels without it.
pub use crate::models::fasttext::LABEL_PREFIX;

// Salts: the holdout split, the samples and the order are independent.
const SALT_HOLDOUT: u64 = 0x686f6c64;
const SALT_SAMPLE: u64 = 0x73616d70;
const SALT_ORDER: u64 = 0x6f726465;

fn input(paths: &[String], spec: &spec::TrainSection) -> InputSpec {
    InputSpec {
        paths: paths.to_vec(),
        sources: Default::default(),
        source_column: "source".into(),
        text_column: spec.text_column.clone(),
        id_column: "id".into(),
        format: spec.format,
        batch_rows: 4096,
        max_task_bytes: u64::MAX,
    }
}

/// Calls `f(id, text, label value)` for every readable document of the
/// shards, in file order; returns the rows the reader dropped (null or
/// empty text, broken lines).
fn for_each_doc(
    input: &InputSpec,
    label_column: Option<&str>,
    mut f: impl FnMut(&str, &str, Option<&str>) -> Result<()>,
) -> Result<u64> {
    let mut unreadable = 0;
    for task in discover(input)? {
        for out in crate::io::reader::open(&task, input, None)? {
            let out = out?;
            let texts = out.batch.texts();
            let ids = out.batch.ids();
            let labels = match label_column {
                Some(c) => {
                    let col = out.batch.data.column_by_name(c).with_context(|| {
                        format!("{}: no label column `{c}`", task.file.path.display())
                    })?;
                    Some(
                        arrow::compute::cast(col, &arrow::datatypes::DataType::Utf8)?
                            .as_any()
                            .downcast_ref::<arrow::array::StringArray>()
                            .expect("cast to Utf8")
                            .clone(),
                    )
                }
                None => None,
            };
            for i in 0..out.batch.num_rows() {
                if out.drops.get(i).is_some_and(Option::is_some) {
                    unreadable += 1;
                    continue;
                }
                let label = labels.as_ref().and_then(|l| {
                    use arrow::array::Array;
                    l.is_valid(i).then(|| l.value(i))
                });
                f(ids.value(i), texts.value(i), label)?;
            }
        }
    }
    Ok(unreadable)
}

/// The hash above which a side's documents are left out so that at most
/// `max` remain: the `max`-th smallest of the side's id hashes.
fn sample_cut(input: &InputSpec, max: u64, seed: u64) -> Result<u64> {
    let mut heap: BinaryHeap<u64> = BinaryHeap::new();
    for_each_doc(input, None, |id, _, _| {
        let h = xxh3_64_with_seed(id.as_bytes(), seed ^ SALT_SAMPLE);
        if (heap.len() as u64) < max {
            heap.push(h);
        } else if heap.peek().is_some_and(|top| h < *top) {
            heap.pop();
            heap.push(h);
        }
        Ok(())
    })?;
    Ok(if (heap.len() as u64) < max {
        u64::MAX
    } else {
        heap.peek().copied().unwrap_or(u64::MAX)
    })
}

#[derive(Default, serde::Serialize)]
struct Counts {
    train_positive: u64,
    train_negative: u64,
    holdout_positive: u64,
    holdout_negative: u64,
    /// Rows without a readable text, or that prepare to nothing.
    unreadable: u64,
    empty_after_preparation: u64,
    /// Left out by `max_positive` / `max_negative`.
    not_sampled: u64,
}

struct Writer {
    buckets: Vec<BufWriter<std::fs::File>>,
    holdout: BufWriter<std::fs::File>,
    counts: Counts,
    holdout_fraction: f64,
    seed: u64,
    text: QualityText,
}

impl Writer {
    fn add(&mut self, id: &str, text: &str, positive: bool) -> Result<()> {
        let line = self.text.prepare(text);
        if line.is_empty() {
            self.counts.empty_after_preparation += 1;
            return Ok(());
        }
        let label = if positive { POSITIVE } else { NEGATIVE };
        let u = crate::seeded::id_unit(id.as_bytes(), self.seed ^ SALT_HOLDOUT);
        if u < self.holdout_fraction {
            writeln!(self.holdout, "{label} {line}")?;
            if positive {
                self.counts.holdout_positive += 1;
            } else {
                self.counts.holdout_negative += 1;
            }
        } else {
            let key = xxh3_64_with_seed(id.as_bytes(), self.seed ^ SALT_ORDER);
            let b = ((key as u128 * BUCKETS as u128) >> 64) as usize;
            writeln!(self.buckets[b], "{key:016x}\t{label} {line}")?;
            if positive {
                self.counts.train_positive += 1;
            } else {
                self.counts.train_negative += 1;
            }
        }
        Ok(())
    }
}

fn fasttext_args(train: &Path, m: &ModelParams) -> Result<fasttext::Args> {
    use fasttext::{Args, LossName, ModelName};
    let mut a = Args::new();
    a.set_input(&train.display().to_string())
        .map_err(anyhow::Error::msg)?;
    a.set_model(ModelName::SUP);
    a.set_loss(match m.loss.as_str() {
        "hs" => LossName::HS,
        "ns" => LossName::NS,
        "ova" => LossName::OVA,
        _ => LossName::SOFTMAX,
    });
    a.set_dim(m.dim);
    a.set_epoch(m.epoch);
    a.set_lr(m.lr);
    a.set_word_ngrams(m.word_ngrams);
    a.set_min_count(m.min_count);
    a.set_minn(m.minn);
    a.set_maxn(m.maxn);
    a.set_bucket(m.bucket);
    a.set_thread(m.threads);
    a.set_verbose(0);
    Ok(a)
}

/// Texts mostly in scripts without spaces (Chinese, Japanese, Thai, …):
/// the report gives their held-out figures apart.
fn mostly_unspaced(line: &str) -> bool {
    let (mut unspaced, mut all) = (0usize, 0usize);
    for c in line.chars().filter(|c| !c.is_whitespace()) {
        all += 1;
        unspaced += crate::text::is_unspaced_script(c) as usize;
    }
    unspaced * 10 > all * 3
}

/// The score of the positive label that `quality_model` computes.
pub fn positive_score(model: &FastTextModel, line: &str) -> f32 {
    model
        .predict(line, model.labels().len(), 0.0)
        .into_iter()
        .find(|(l, _)| Some(l.as_str()) == POSITIVE.strip_prefix(LABEL_PREFIX))
        .map_or(0.0, |(_, p)| p)
}

pub fn run(spec_path: &Path, quiet: bool) -> Result<()> {
    let start = Instant::now();
    let spec = ClassifierSpec::load(spec_path)?;
    let t = &spec.train;
    let out = &spec.output.dir;
    // fastText trains from and saves to local files: for an output in a
    // bucket they live in scratch, and the model and report are uploaded.
    let work = crate::io::store::local_for(&out.join("_work"));
    crate::io::store::check_writable(out)?;
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).with_context(|| format!("cannot create {}", work.display()))?;
    let create = |p: PathBuf| -> Result<BufWriter<std::fs::File>> {
        Ok(BufWriter::new(std::fs::File::create(&p).with_context(
            || format!("cannot create {}", p.display()),
        )?))
    };
    let mut w = Writer {
        buckets: (0..BUCKETS)
            .map(|b| create(work.join(format!("bucket-{b:02}.txt"))))
            .collect::<Result<_>>()?,
        holdout: create(work.join("holdout.txt"))?,
        counts: Counts::default(),
        holdout_fraction: t.holdout_fraction,
        seed: t.seed,
        text: spec.text.clone(),
    };
    if let Some(column) = &t.label_column {
        let positive = t.positive_value.as_deref().unwrap_or_default();
        let inp = input(&t.paths, t);
        let unreadable = for_each_doc(&inp, Some(column), |id, text, label| {
            w.add(id, text, label == Some(positive))
        })?;
        w.counts.unreadable += unreadable;
    } else {
        for (paths, max, positive) in [
            (&t.positive, t.max_positive, true),
            (&t.negative, t.max_negative, false),
        ] {
            let inp = input(paths, t);
            let cut = match max {
                Some(m) => sample_cut(&inp, m, t.seed)?,
                None => u64::MAX,
            };
            let mut not_sampled = 0;
            let unreadable = for_each_doc(&inp, None, |id, text, _| {
                if xxh3_64_with_seed(id.as_bytes(), t.seed ^ SALT_SAMPLE) > cut {
                    not_sampled += 1;
                    return Ok(());
                }
                w.add(id, text, positive)
            })?;
            w.counts.unreadable += unreadable;
            w.counts.not_sampled += not_sampled;
        }
    }
    let Writer {
        buckets,
        holdout,
        counts,
        ..
    } = w;
    for b in buckets {
        b.into_inner()
            .map_err(|e| anyhow::anyhow!("writing a training bucket: {}", e.error()))?;
    }
    holdout
        .into_inner()
        .map_err(|e| anyhow::anyhow!("writing the held-out split: {}", e.error()))?;
    for (n, what) in [
        (counts.train_positive, "positive training"),
        (counts.train_negative, "negative training"),
        (counts.holdout_positive, "positive held-out"),
        (counts.holdout_negative, "negative held-out"),
    ] {
        if n == 0 {
            bail!(
                "no {what} documents: give more documents or another holdout_fraction ({})",
                t.holdout_fraction
            );
        }
    }

    // The training file: each bucket's lines in key order.
    let train = work.join("train.txt");
    let mut tw = create(train.clone())?;
    for b in 0..BUCKETS {
        let p = work.join(format!("bucket-{b:02}.txt"));
        let text =
            std::fs::read_to_string(&p).with_context(|| format!("cannot read {}", p.display()))?;
        let mut lines: Vec<&str> = text.lines().collect();
        lines.sort_unstable();
        for l in lines {
            let (_, line) = l.split_once('\t').context("a damaged training bucket")?;
            writeln!(tw, "{line}")?;
        }
        std::fs::remove_file(&p)?;
    }
    tw.into_inner()
        .map_err(|e| anyhow::anyhow!("writing {}: {}", train.display(), e.error()))?;

    let trained = Instant::now();
    let mut ft = fasttext::FastText::new();
    ft.train(&fasttext_args(&train, &spec.model)?)
        .map_err(|e| anyhow::anyhow!("fastText training failed: {e}"))?;
    let train_seconds = trained.elapsed().as_secs_f64();
    let model_path = out.join("model.bin");
    let tmp = crate::io::store::staging(&model_path);
    ft.save_model(&tmp.display().to_string())
        .map_err(|e| anyhow::anyhow!("cannot save the model: {e}"))?;
    // The held-out split, scored by the saved model as the pipeline reads
    // it, and by the C++ library that trained it (they must agree).
    let ours = FastTextModel::load(&tmp)?;
    crate::io::store::commit(&tmp, &model_path)?;
    let mut scored = vec![];
    let mut max_diff = 0f32;
    let hp = work.join("holdout.txt");
    for line in std::io::BufReader::new(std::fs::File::open(&hp)?).lines() {
        let line = line?;
        let (label, text) = line.split_once(' ').context("a damaged held-out line")?;
        let s = positive_score(&ours, text);
        // The line's end is fastText's </s> token, as in its CLI and Python.
        let cpp = ft
            .predict(&format!("{text}\n"), 2, 0.0)
            .map_err(|e| anyhow::anyhow!("fastText predict: {e}"))?
            .into_iter()
            .find(|p| p.label == POSITIVE)
            .map_or(0.0, |p| p.prob);
        max_diff = max_diff.max((s - cpp).abs());
        scored.push((s, label == POSITIVE, mostly_unspaced(text)));
    }
    let pick = |f: &dyn Fn(bool) -> bool| -> Vec<(f32, bool)> {
        scored
            .iter()
            .filter(|x| f(x.2))
            .map(|x| (x.0, x.1))
            .collect()
    };
    let m = metrics::evaluate(&pick(&|_| true), 0.5);
    let by_script = json!({
        "cjk": metrics::evaluate(&pick(&|c| c), 0.5),
        "other": metrics::evaluate(&pick(&|c| !c), 0.5),
    });
    let report = json!({
        "model": model_path.display().to_string(),
        "labels": [POSITIVE, NEGATIVE],
        "documents": &counts,
        "holdout_fraction": t.holdout_fraction,
        "seed": t.seed,
        "model_params": spec.model,
        "text": spec.text,
        "holdout": &m,
        "holdout_by_script": by_script,
        "max_score_difference_cpp_vs_sluice": max_diff,
        "train_seconds": train_seconds,
        "seconds": start.elapsed().as_secs_f64(),
    });
    crate::io::writer::write_atomic(
        &out.join("report.json"),
        &serde_json::to_vec_pretty(&report)?,
    )?;
    let _ = std::fs::remove_dir_all(&work);
    if !quiet {
        println!(
            "{}: trained on {} positive + {} negative documents in {:.1} s",
            model_path.display(),
            counts.train_positive,
            counts.train_negative,
            train_seconds
        );
        println!(
            "held out {} + {}: ROC AUC {:.4}, at 0.5 precision {:.3} recall {:.3} F1 {:.3}",
            counts.holdout_positive,
            counts.holdout_negative,
            m.roc_auc,
            m.precision,
            m.recall,
            m.f1
        );
        println!("report: {}", out.join("report.json").display());
    }
    Ok(())
}
