//! `sluice train-tokenizer`: streams the input shards, counts pre-tokenised
//! words in parallel (one map per task, merged as tasks finish), learns the
//! merges, writes `tokenizer.json` and `report.json`.
//!
//! Memory grows with the number of distinct words, not with the corpus: a
//! batch is dropped as soon as its words are counted.

pub mod prune;
pub mod spec;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{Context, Result};
use rayon::prelude::*;
use serde_json::json;

use crate::io::discover::discover;
use crate::io::writer::write_atomic;
use crate::pipeline::spec::InputSpec;
use crate::tokenizer::bpe::{train_counts, Encoder, TrainOptions};
use crate::tokenizer::extend::{extend, ExtendOptions};
use crate::tokenizer::fast::FastTokenizer;
use crate::tokenizer::hf::{Normalization, Tokenizer};
use crate::tokenizer::pretok::{pieces, PreTokenizer};
use crate::tokenizer::spm_bpe;
use crate::tokenizer::wordcount::WordCounts;
use crate::train::TextJob;
use spec::{TokModel, TokenizerSpec};

/// The counting pass: the shared word counts, and the documents and bytes
/// counted. Each worker counts into its own buffer, added to `counts`
/// whenever it holds `FLUSH_WORDS` distinct words and at the end of each
/// task, so that the words several workers meet are held once, not once per
/// worker.
#[derive(Default)]
struct Counting {
    counts: Mutex<WordCounts>,
    docs: AtomicU64,
    bytes: AtomicU64,
}

/// Distinct words a worker buffers before adding them to the shared table:
/// large enough that most repeats are counted without the lock, small
/// enough that the buffers stay a few MB.
const FLUSH_WORDS: usize = 1 << 16;

fn flush(local: &mut WordCounts, shared: &Mutex<WordCounts>) {
    if local.is_empty() {
        return;
    }
    shared
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .absorb(local);
    local.clear();
}

/// One task, and with `compare_hf` where it writes the texts it counted
/// (JSON lines), for the Hugging Face trainer to read the very same text.
struct Job {
    text: TextJob,
    sample: Option<std::path::PathBuf>,
}

/// What the counting pass saw.
struct Seen {
    counts: WordCounts,
    docs: u64,
    bytes: u64,
}

/// How a text is cut into the words counted.
enum Words {
    /// Byte-level: normalised, then the pre-tokenizer's pieces.
    Pre {
        pre: PreTokenizer,
        split_digits: bool,
        norm: Normalization,
    },
    /// SentencePiece-style: lines, `▁` for spaces, split before `▁`.
    Spm,
    /// Extending a tokenizer: its words, as it cuts them.
    Base(std::sync::Arc<FastTokenizer>),
}

impl Words {
    fn each(&self, text: &str, line_buf: &mut String, mut f: impl FnMut(&str)) {
        match self {
            Words::Pre {
                pre,
                split_digits,
                norm,
            } => pieces(pre, *split_digits, &norm.apply(text), f),
            Words::Spm => spm_bpe::words(text, line_buf, &mut f),
            Words::Base(b) => b.for_each_word(text, &mut f),
        }
    }
}

/// Counts the words of one task's texts, up to its budget of bytes, into
/// `counting` through the worker's buffer `buf`.
fn count_task(buf: &mut WordCounts, counting: &Counting, job: &Job, words: &Words) -> Result<()> {
    let mut line_buf = String::new();
    let mut sample = match &job.sample {
        Some(path) => Some(std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?,
        )),
        None => None,
    };
    job.text.for_each_text(|text| {
        if let Some(w) = sample.as_mut() {
            use std::io::Write;
            serde_json::to_writer(&mut *w, text)?;
            w.write_all(b"\n")?;
        }
        counting.docs.fetch_add(1, Ordering::Relaxed);
        counting
            .bytes
            .fetch_add(text.len() as u64, Ordering::Relaxed);
        words.each(text, &mut line_buf, |p| buf.add(p.as_bytes(), 1));
        if buf.len() >= FLUSH_WORDS {
            flush(buf, &counting.counts);
        }
        Ok(())
    })?;
    flush(buf, &counting.counts);
    Ok(())
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
        sources: Default::default(),
        source_column: "source".into(),
    };
    let mut out = vec![];
    let mut bytes = 0;
    for task in discover(&input)? {
        for b in crate::io::reader::open(&task, &input, None)? {
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

/// The Hugging Face trainer on the same text, with the same normaliser,
/// pre-tokenizer, vocabulary size, minimum frequency and special tokens
/// (taken from sluice's tokenizer.json): its seconds, peak memory and
/// compression on the same held-out texts.
const HF_COMPARE: &str = r#"
import glob, json, os, resource, sys, time
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
ours_path, folder, vocab, min_freq, specials = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), json.loads(sys.argv[5])
def texts():
    for f in sorted(glob.glob(os.path.join(folder, "train-*.jsonl"))):
        with open(f, encoding="utf-8") as fh:
            for line in fh:
                yield json.loads(line)
tok = Tokenizer.from_file(ours_path)
tok.model = models.BPE()
trainer = trainers.BpeTrainer(vocab_size=vocab, min_frequency=min_freq, special_tokens=specials,
                              initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
start = time.time()
tok.train_from_iterator(texts(), trainer=trainer)
secs = time.time() - start
held = json.load(open(os.path.join(folder, "held_out.json"), encoding="utf-8"))
out = {"seconds": secs, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
       "vocab_size": tok.get_vocab_size(), "held_out": []}
for ts in held:
    n = sum(len(e.ids) for e in tok.encode_batch(ts, add_special_tokens=False))
    b = sum(len(t.encode("utf-8")) for t in ts)
    c = sum(len(t) for t in ts)
    out["held_out"].append({"tokens": n, "bytes_per_token": b / max(n, 1), "chars_per_token": c / max(n, 1)})
print(json.dumps(out))
"#;

fn compare_hf(
    python: &Path,
    spec: &TokenizerSpec,
    folder: &Path,
    held_out: &[Vec<String>],
    workers: usize,
) -> Result<serde_json::Value> {
    std::fs::write(folder.join("held_out.json"), serde_json::to_vec(held_out)?)?;
    let t = &spec.tokenizer;
    let out = std::process::Command::new(python)
        .args(["-c", HF_COMPARE])
        .arg(crate::io::store::local_copy(
            &spec.output.dir.join("tokenizer.json"),
        )?)
        .arg(folder)
        .arg(t.vocab_size.to_string())
        .arg(t.min_frequency.to_string())
        .arg(serde_json::to_string(&t.special_tokens)?)
        .env("RAYON_NUM_THREADS", workers.max(1).to_string())
        .output()
        .with_context(|| format!("cannot run {} for compare_hf", python.display()))?;
    anyhow::ensure!(
        out.status.success(),
        "compare_hf: the Hugging Face trainer failed (is `tokenizers` installed for {}?): {}",
        python.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .context("compare_hf: unreadable output of the Hugging Face run")?;
    if let Some(list) = v["held_out"].as_array_mut() {
        for (h, path) in list.iter_mut().zip(&spec.report.held_out) {
            h["file"] = json!(path.display().to_string());
        }
    }
    Ok(v)
}

/// Counts the tokens of a held-out text.
type TokenCounter = Box<dyn Fn(&str) -> Result<usize>>;

/// What a training made: the vocabulary size, the encoder for the held-out
/// report, and the settings and figures the report gives for this kind.
struct Trained {
    vocab: usize,
    encode: TokenCounter,
    /// With `base`: the base's, for the gain on held-out text.
    base_encode: Option<TokenCounter>,
    settings: serde_json::Value,
}

/// The byte-level model: merges over bytes, `tokenizer.json`.
fn train_byte_level(spec: &TokenizerSpec, counts: WordCounts) -> Result<Trained> {
    let t = &spec.tokenizer;
    let (pre, pattern) = spec.pre_tokenizer().map_err(anyhow::Error::msg)?;
    let required = spec.required_tokens().map_err(anyhow::Error::msg)?;
    let bpe = train_counts(
        counts,
        &TrainOptions {
            vocab_size: t.vocab_size,
            n_special: t.special_tokens.len(),
            min_frequency: t.min_frequency,
            required: required.iter().map(|s| s.as_bytes().to_vec()).collect(),
            max_token_bytes: t.max_token_bytes,
        },
    );
    let vocab = t.special_tokens.len() + bpe.tokens.len();
    let tokenizer = Tokenizer {
        normalization: t.normalization(),
        pre,
        pattern,
        split_digits: t.split_digits,
        specials: t.special_tokens.clone(),
        encoder: Encoder::new(bpe),
    };
    write_atomic(
        &spec.output.dir.join("tokenizer.json"),
        serde_json::to_string_pretty(&tokenizer.to_json())?.as_bytes(),
    )?;
    let settings = json!({
        "model": t.model(),
        "pre_tokenizer": t.pre_tokenizer_name(),
        "pattern": tokenizer.pattern,
        "split_digits": t.split_digits,
        "normalization": t.normalization(),
        "min_frequency": t.min_frequency,
        "required_tokens": required.len(),
    });
    Ok(Trained {
        vocab,
        encode: Box::new(move |text| Ok(tokenizer.encode(text).len())),
        base_encode: None,
        settings,
    })
}

/// The SentencePiece-style model: pieces of characters with byte fallback,
/// `tokenizer.json` and `tokenizer.model`.
fn train_sentencepiece(spec: &TokenizerSpec, counts: WordCounts) -> Result<Trained> {
    let o = spec.tokenizer.spm_options();
    let model = spm_bpe::train(counts, &o).map_err(|e| anyhow::anyhow!("{}: {e}", spec.file))?;
    let json = serde_json::to_string_pretty(&model.to_tokenizer_json())?;
    let dir = &spec.output.dir;
    write_atomic(&dir.join("tokenizer.json"), json.as_bytes())?;
    write_atomic(&dir.join("tokenizer.model"), &model.to_model_proto())?;
    let hf = tokenizers::Tokenizer::from_bytes(json.as_bytes())
        .map_err(|e| anyhow::anyhow!("bug: the tokenizer.json written does not load: {e}"))?;
    let settings = json!({
        "model": spec.tokenizer.model(),
        "byte_fallback": o.byte_fallback,
        "split_digits": o.split_digits,
        "whitespace_tokens": o.whitespace_tokens,
        "max_piece_length": o.max_piece_length,
        "character_coverage": o.character_coverage,
        "min_frequency": o.min_frequency,
        "characters": model.characters,
        "characters_coverage_reached": model.coverage,
        "pieces_merged": model.merged,
    });
    Ok(Trained {
        vocab: model.pieces.len(),
        encode: Box::new(move |text| {
            hf.encode_fast(text, false)
                .map(|e| e.len())
                .map_err(|e| anyhow::anyhow!("encoding held-out text: {e}"))
        }),
        base_encode: None,
        settings,
    })
}

/// The tokenizer `base` names, read for extension: its JSON and sluice's
/// encoder of it (which reads every BPE file; the others cannot be
/// extended by merges).
fn load_base(path: &Path) -> Result<(serde_json::Value, FastTokenizer)> {
    crate::tokenizer::load::load_tokenizer(path)?;
    let json: serde_json::Value = serde_json::from_slice(
        &std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?,
    )
    .with_context(|| format!("{} is not JSON", path.display()))?;
    let fast = FastTokenizer::from_json(&json).map_err(|e| {
        anyhow::anyhow!(
            "cannot extend {}: sluice extends BPE tokenizers it reads, and this one has {e}",
            path.display()
        )
    })?;
    Ok((json, fast))
}

/// Extension: new merges over the base's tokens, appended after its ids;
/// `tokenizer.json` only.
fn train_extension(
    spec: &TokenizerSpec,
    base_json: &serde_json::Value,
    base: std::sync::Arc<FastTokenizer>,
    counts: WordCounts,
) -> Result<Trained> {
    let t = &spec.tokenizer;
    let opt = ExtendOptions {
        vocab_size: t.vocab_size,
        min_frequency: t.min_frequency,
        split_digits: t.split_digits,
        max_piece_length: t.max_piece_length.unwrap_or(16),
        character_coverage: t.character_coverage.unwrap_or(0.9995),
    };
    let ext = extend(base_json, &base, counts, &opt)
        .map_err(|e| anyhow::anyhow!("{}: {e}", spec.file))?;
    let text = serde_json::to_string_pretty(&ext.json)?;
    write_atomic(&spec.output.dir.join("tokenizer.json"), text.as_bytes())?;
    let extended = FastTokenizer::from_json(&ext.json)
        .map_err(|e| anyhow::anyhow!("bug: the extended tokenizer.json is not readable: {e}"))?;
    let settings = json!({
        "model": if base.is_byte_level() { "byte_level_bpe" } else { "sentencepiece_bpe" },
        "base": t.base.as_ref().map(|p| p.display().to_string()),
        "base_vocab_size": ext.base_size,
        "tokens_added": ext.added,
        "characters_added": ext.chars,
        "character_coverage": (!base.is_byte_level()).then_some(opt.character_coverage),
        "split_digits": t.split_digits,
        "min_frequency": t.min_frequency,
        "max_piece_length": (!base.is_byte_level()).then_some(opt.max_piece_length),
    });
    Ok(Trained {
        vocab: ext.base_size + ext.added,
        encode: Box::new(move |text| Ok(extended.encode(text).len())),
        base_encode: Some(Box::new(move |text| Ok(base.encode(text).len()))),
        settings,
    })
}

pub fn run(spec_path: &Path, workers: usize, quiet: bool) -> Result<()> {
    let spec = TokenizerSpec::load(spec_path)?;
    let t = &spec.tokenizer;
    let base = match &t.base {
        Some(p) => {
            let (json, fast) =
                load_base(p).map_err(|e| anyhow::anyhow!("{}: base: {e:#}", spec.file))?;
            Some((json, std::sync::Arc::new(fast)))
        }
        None => None,
    };
    let words = match (&base, t.model()) {
        (Some((_, b)), _) => Words::Base(b.clone()),
        (None, TokModel::ByteLevelBpe) => Words::Pre {
            pre: spec.pre_tokenizer().map_err(anyhow::Error::msg)?.0,
            split_digits: t.split_digits,
            norm: t.normalization(),
        },
        (None, TokModel::SentencepieceBpe) => Words::Spm,
    };
    // The Hugging Face comparison runs in a local Python: its files (and
    // a local copy of the tokenizer) go to scratch when the output is in
    // a bucket.
    let compare_dir = crate::io::store::local_for(&spec.output.dir.join("_compare"));
    if spec.report.compare_hf.is_some() {
        let _ = std::fs::remove_dir_all(&compare_dir);
        std::fs::create_dir_all(&compare_dir)
            .with_context(|| format!("cannot create {}", compare_dir.display()))?;
    }
    let jobs: Vec<Job> = crate::train::text_jobs(&spec.file, &spec.input, quiet)?
        .into_iter()
        .enumerate()
        .map(|(i, text)| Job {
            text,
            sample: spec
                .report
                .compare_hf
                .as_ref()
                .map(|_| compare_dir.join(format!("train-{i:05}.jsonl"))),
        })
        .collect();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(workers.max(1))
        .build()
        .context("cannot start the worker pool")?;
    let start = Instant::now();
    crate::tokenizer::limit_heap_fragmentation();
    let counting = Counting::default();
    pool.install(|| {
        jobs.par_iter()
            .try_for_each_init(WordCounts::default, |buf, job| {
                count_task(buf, &counting, job, &words)
            })
    })?;
    let seen = Seen {
        counts: counting
            .counts
            .into_inner()
            .unwrap_or_else(|e| e.into_inner()),
        docs: counting.docs.into_inner(),
        bytes: counting.bytes.into_inner(),
    };
    let count_secs = start.elapsed().as_secs_f64();
    let distinct = seen.counts.len();
    if !quiet {
        crate::msg::info(format!(
            "counted {} words ({distinct} distinct) in {} documents, {:.1} MB, in {count_secs:.1} s",
            seen.counts.total(),
            seen.docs,
            seen.bytes as f64 / 1e6
        ));
    }
    crate::tokenizer::release_freed_memory();
    let merge_start = Instant::now();
    let dir = &spec.output.dir;
    crate::io::store::create_dir_all(dir)?;
    let trained = match (base, t.model()) {
        (Some((json, b)), _) => train_extension(&spec, &json, b, seen.counts)?,
        (None, TokModel::ByteLevelBpe) => train_byte_level(&spec, seen.counts)?,
        (None, TokModel::SentencepieceBpe) => train_sentencepiece(&spec, seen.counts)?,
    };
    let merge_secs = merge_start.elapsed().as_secs_f64();
    let vocab = trained.vocab;
    if vocab < t.vocab_size {
        crate::msg::warning(format!(
            "{vocab} tokens, not the {} asked: no pair left that occurs at least \
             min_frequency = {} times; train on more text or lower min_frequency",
            t.vocab_size, t.min_frequency
        ));
    }
    let mut held_out = vec![];
    let mut held_out_all: Vec<Vec<String>> = vec![];
    for path in &spec.report.held_out {
        let texts = held_out_texts(path, spec.report.held_out_bytes.0)
            .with_context(|| format!("held-out file {}", path.display()))?;
        let docs = texts.len();
        let (mut bytes, mut chars, mut tokens, mut base_tokens) = (0u64, 0u64, 0u64, 0u64);
        for text in &texts {
            bytes += text.len() as u64;
            chars += text.chars().count() as u64;
            tokens += (trained.encode)(text)? as u64;
            if let Some(b) = &trained.base_encode {
                base_tokens += b(text)? as u64;
            }
        }
        if spec.report.compare_hf.is_some() {
            held_out_all.push(texts);
        }
        held_out.push(json!({
            "file": path.display().to_string(),
            "docs": docs,
            "bytes": bytes,
            "chars": chars,
            "tokens": tokens,
            "bytes_per_token": bytes as f64 / tokens.max(1) as f64,
            "chars_per_token": chars as f64 / tokens.max(1) as f64,
        }));
        if trained.base_encode.is_some() {
            let h = held_out.last_mut().expect("just pushed");
            h["base_tokens"] = json!(base_tokens);
            h["base_bytes_per_token"] = json!(bytes as f64 / base_tokens.max(1) as f64);
            // How many times fewer tokens the extension needs.
            h["gain"] = json!(base_tokens as f64 / tokens.max(1) as f64);
        }
    }
    let hf = match &spec.report.compare_hf {
        Some(python) => {
            let r = compare_hf(python, &spec, &compare_dir, &held_out_all, workers)?;
            let _ = std::fs::remove_dir_all(&compare_dir);
            r
        }
        None => serde_json::Value::Null,
    };
    let mut report = json!({
        "vocab_size": vocab,
        "vocab_size_asked": t.vocab_size,
        "special_tokens": t.special_tokens,
    });
    for (k, v) in trained.settings.as_object().into_iter().flatten() {
        report[k] = v.clone();
    }
    report["training"] = json!({
        "docs": seen.docs,
        "bytes": seen.bytes,
        "tasks": jobs.len(),
        "distinct_words": distinct,
        "workers": workers.max(1),
        "count_seconds": count_secs,
        "merge_seconds": merge_secs,
        "seconds": start.elapsed().as_secs_f64(),
        "peak_rss_mb": crate::train::peak_rss_mb(),
    });
    report["held_out"] = json!(held_out);
    report["hf_trainer"] = hf;
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
