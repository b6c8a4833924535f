//! KenLM models through `perplexity`, against KenLM itself: a model trained
//! by KenLM's `lmplz` on real text (Chinese characters and English words),
//! loaded as ARPA and as `build_binary`'s probing binary, must give every
//! held-out document the perplexity KenLM's Python module gives it, within
//! 1e-4 in log10 per token. KenLM comes from `.ci/kenlm` (PyPI's kenlm
//! 0.3.0: the module, and lmplz / build_binary built from its source);
//! without it the test skips loudly, and under SLUICE_REQUIRE_KENLM (CI)
//! it fails.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::*;

/// KenLM's programs and Python, or None (skipped) where `.ci/kenlm` has
/// not run.
fn kenlm() -> Option<(PathBuf, PathBuf)> {
    let bin = repo().join("target/kenlm/bin");
    let py = repo().join("target/py-kenlm/bin/python");
    if bin.join("lmplz").exists() && bin.join("build_binary").exists() && py.exists() {
        return Some((bin, py));
    }
    assert!(
        std::env::var_os("SLUICE_REQUIRE_KENLM").is_none(),
        "SLUICE_REQUIRE_KENLM is set but KenLM is not installed: run .ci/kenlm"
    );
    eprintln!("!!! SKIPPED: KenLM is not installed (run .ci/kenlm); the comparison did not run");
    None
}

/// Chinese news as space-separated characters, and web pages as lower-case
/// words: each document one line per non-blank line of its text. The words
/// are what both KenLM and sluice's default tokenization take them to be:
/// single spaces between them, and a character of a script written without
/// spaces (a Japanese run in a web page) a word of its own.
fn corpus() -> Vec<(String, String)> {
    let repo = repo();
    let zh = read_parquet_column(&repo.join("fixtures/quickstart/zh_news.parquet"), "text");
    let web = read_parquet_column(&repo.join("fixtures/quickstart/web_pages.parquet"), "text");
    let chars = |s: &str| {
        s.chars()
            .filter(|c| !c.is_whitespace())
            .map(String::from)
            .collect::<Vec<_>>()
            .join(" ")
    };
    let words = |s: &str| {
        s.split('\n')
            .map(|l| {
                let mut words: Vec<String> = vec![];
                for w in l.to_lowercase().split_whitespace() {
                    let mut run = String::new();
                    for c in w.chars() {
                        if sluice::text::is_unspaced_script(c) {
                            words.extend((!run.is_empty()).then(|| std::mem::take(&mut run)));
                            words.push(c.to_string());
                        } else {
                            run.push(c);
                        }
                    }
                    words.extend((!run.is_empty()).then_some(run));
                }
                words.join(" ")
            })
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("\n")
    };
    let mut docs: Vec<(String, String)> = zh
        .chunks(4)
        .enumerate()
        .map(|(i, c)| {
            (
                format!("zh-{i:04}"),
                c.iter().map(|l| chars(l)).collect::<Vec<_>>().join("\n"),
            )
        })
        .collect();
    docs.extend(
        web.iter()
            .enumerate()
            .map(|(i, t)| (format!("web-{i:04}"), words(t))),
    );
    docs.retain(|(_, t)| !t.trim().is_empty());
    docs
}

fn run(cmd: &mut Command) -> String {
    let o = cmd.output().expect("runs");
    assert!(
        o.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// KenLM's per-document (Σ log10 p, tokens) from its Python module.
fn kenlm_scores(py: &Path, model: &Path, docs: &[(String, String)]) -> HashMap<String, (f64, u64)> {
    let mut child = Command::new(py)
        .arg(repo().join("tests/py/kenlm_score.py"))
        .arg(model)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = String::new();
    for (id, text) in docs {
        input.push_str(&serde_json::json!({"id": id, "text": text}).to_string());
        input.push('\n');
    }
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), input.as_bytes()).unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: HashMap<String, (f64, u64)> = serde_json::from_slice(&o.stdout).unwrap();
    v
}

#[test]
fn perplexity_equals_kenlms_on_held_out_text_for_arpa_and_binary() {
    let Some((bin, py)) = kenlm() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let docs = corpus();
    // Every fifth document is held out: the model never saw it.
    let (held, train): (Vec<_>, Vec<_>) = docs.iter().enumerate().partition(|(i, _)| i % 5 == 0);
    let train_text: String = train.iter().map(|(_, (_, t))| format!("{t}\n")).collect();
    let held: Vec<(String, String)> = held.into_iter().map(|(_, d)| d.clone()).collect();
    let arpa = dir.join("lm.arpa");
    let train_file = dir.join("train.txt");
    std::fs::write(&train_file, train_text).unwrap();
    // --skip_symbols: a page that writes `<s>` is text, not a marker.
    let o = Command::new(bin.join("lmplz"))
        .args([
            "-o",
            "4",
            "-S",
            "200M",
            "--discount_fallback",
            "--skip_symbols",
            "-T",
        ])
        .arg(dir)
        .stdin(std::fs::File::open(&train_file).unwrap())
        .stdout(std::fs::File::create(&arpa).unwrap())
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "lmplz: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let binary = dir.join("lm.binary");
    run(Command::new(bin.join("build_binary"))
        .arg(&arpa)
        .arg(&binary));

    let rows: Vec<(&str, Option<&str>)> = held
        .iter()
        .map(|(i, t)| (i.as_str(), Some(t.as_str())))
        .collect();
    write_docs(&dir.join("in/held.parquet"), &rows, 64);
    let reference = kenlm_scores(&py, &arpa, &held);
    for (name, model) in [("arpa", &arpa), ("binary", &binary)] {
        let out = dir.join(format!("out-{name}"));
        let body = format!(
            "[input]\npaths = [{:?}]\n\n[[step]]\nop = \"perplexity\"\nmodel = {model:?}\n\n[output]\ndir = {out:?}\n",
            dir.join("in")
        );
        let spec = write_spec(dir, &format!("{name}.toml"), &body);
        run_ok(dir, &["run", spec.to_str().unwrap(), "-q"]);
        let got = read_rows(&out, "part-");
        assert_eq!(got.len(), held.len());
        let mut worst = 0f64;
        for r in &got {
            let (logp, n) = reference[&r["id"]];
            let want = -logp / n as f64;
            let have = r["perplexity"].parse::<f64>().unwrap().log10();
            worst = worst.max((want - have).abs());
        }
        assert!(
            worst < 1e-4,
            "{name}: log10 perplexity per token differs from KenLM's by up to {worst}"
        );
        eprintln!(
            "{name}: {} held-out documents, largest difference {worst:.2e} (log10 per token)",
            got.len()
        );
    }
}

/// Web pages as lower-case words, each with a made-up language `a` or `b`
/// (every other page), in two files.
fn bucket_input(dir: &Path) -> usize {
    let web = read_parquet_column(
        &repo().join("fixtures/quickstart/web_pages.parquet"),
        "text",
    );
    let docs: Vec<(String, String, &str)> = web
        .iter()
        .map(|t| {
            t.split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .to_lowercase()
        })
        .filter(|t| !t.is_empty())
        .enumerate()
        .map(|(i, t)| (format!("d{i:03}"), t, if i % 2 == 0 { "a" } else { "b" }))
        .collect();
    let half = docs.len() / 2;
    for (name, part) in [("a", &docs[..half]), ("b", &docs[half..])] {
        let rows: Vec<(&str, &str, &str)> = part
            .iter()
            .map(|d| (d.0.as_str(), d.1.as_str(), d.2))
            .collect();
        write_lang_docs(&dir.join(format!("in/{name}.parquet")), &rows, 16);
    }
    docs.len()
}

fn bucket_run(dir: &Path, name: &str, extra: &str, workers: &str) -> PathBuf {
    let out = dir.join(name);
    let model = repo().join("fixtures/models/kenlm/en.arpa");
    let body = format!(
        "[input]\npaths = [{:?}]\n\n[[step]]\nop = \"perplexity\"\nmodel = {model:?}\n{extra}\n[output]\ndir = {out:?}\n",
        dir.join("in")
    );
    let spec = write_spec(dir, &format!("{name}.toml"), &body);
    run_ok(
        dir,
        &["run", spec.to_str().unwrap(), "-q", "--workers", workers],
    );
    out
}

#[test]
fn buckets_split_each_language_at_its_percentiles() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let n = bucket_input(dir);
    let one = bucket_run(dir, "one", "buckets = [0.3, 0.6]\n", "1");
    let two = bucket_run(dir, "two", "buckets = [0.3, 0.6]\n", "2");
    assert_eq!(
        shard_bytes(&one),
        shard_bytes(&two),
        "1 and 2 workers differ"
    );
    let rows = read_rows(&one, "part-");
    assert_eq!(rows.len(), n);
    let mut cutoffs = String::new();
    // CCNet's cutoff.csv layout: a row per percentile, a column per language.
    let mut csv_rows: Vec<String> = (0..=100).map(|i| i.to_string()).collect();
    for lang in ["a", "b"] {
        let mut ppl: Vec<(f64, &str)> = rows
            .iter()
            .filter(|r| r["lang"] == lang)
            .map(|r| (r["perplexity"].parse().unwrap(), r["ppl_bucket"].as_str()))
            .collect();
        ppl.sort_by(|a, b| a.0.total_cmp(&b.0));
        let m = ppl.len();
        let count = |b: &str| ppl.iter().filter(|p| p.1 == b).count();
        // Distinct perplexities: exactly ⌊0.3·m⌋ below the first cut-off,
        // ⌊0.6·m⌋ below the second.
        assert_eq!(count("head"), (0.3 * m as f64) as usize, "{lang}");
        assert_eq!(
            count("head") + count("middle"),
            (0.6 * m as f64) as usize,
            "{lang}"
        );
        assert_eq!(count("tail"), m - (0.6 * m as f64) as usize, "{lang}");
        // In perplexity order: head, then middle, then tail (which sort so).
        assert!(
            ppl.windows(2).all(|w| w[0].1 <= w[1].1),
            "{lang}: buckets out of order"
        );
        cutoffs.push_str(&format!(
            "{lang} = [{:?}, {:?}]\n",
            ppl[(0.3 * m as f64) as usize].0,
            ppl[(0.6 * m as f64) as usize].0
        ));
        for (i, row) in csv_rows.iter_mut().enumerate() {
            let v = ppl[(i as f64 / 100.0 * m as f64) as usize % m].0;
            row.push_str(&format!(",{v:?}"));
        }
    }
    std::fs::write(
        dir.join("cutoff.csv"),
        format!(",a,b\n{}\n", csv_rows.join("\n")),
    )
    .unwrap();
    // The same cut-offs given as fixed values: the same buckets, streaming.
    let fixed = bucket_run(dir, "fixed", &format!("[step.cutoffs]\n{cutoffs}"), "1");
    let a: Vec<_> = rows
        .iter()
        .map(|r| (r["id"].clone(), r["ppl_bucket"].clone()))
        .collect();
    let b: Vec<_> = read_rows(&fixed, "part-")
        .iter()
        .map(|r| (r["id"].clone(), r["ppl_bucket"].clone()))
        .collect();
    assert_eq!(a, b);
    // And read from a cutoff.csv at CCNet's default percentiles, 30 and 60.
    let csv = bucket_run(
        dir,
        "csv",
        &format!("cutoffs = {:?}\n", dir.join("cutoff.csv")),
        "1",
    );
    let c: Vec<_> = read_rows(&csv, "part-")
        .iter()
        .map(|r| (r["id"].clone(), r["ppl_bucket"].clone()))
        .collect();
    assert_eq!(a, c);
}

#[test]
fn bad_perplexity_steps_are_spec_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    bucket_input(dir);
    let model = repo().join("fixtures/models/kenlm/en.arpa");
    for (extra, want) in [
        ("buckets = [0.6, 0.3]\n", "buckets must be two percentiles"),
        ("buckets = [0.3]\n", "buckets must be two percentiles"),
        ("[step.cutoffs]\nen = [500.0, 100.0]\n", "cut-offs of `en`"),
        (
            "tokenizer = \"zh.sp.model\"\n",
            "zh.sp.model: it does not exist",
        ),
    ] {
        let body = format!(
            "[input]\npaths = [{:?}]\n\n[[step]]\nop = \"perplexity\"\nmodel = {model:?}\n{extra}\n[output]\ndir = {:?}\n",
            dir.join("in"),
            dir.join("out")
        );
        let spec = write_spec(dir, "bad.toml", &body);
        let o = sluice(dir, &["run", spec.to_str().unwrap(), "-q"], &[]);
        assert!(!o.status.success(), "{extra}");
        assert!(stderr(&o).contains(want), "{extra}: {}", stderr(&o));
    }
    let body = format!(
        "[input]\npaths = [{:?}]\n\n[[step]]\nop = \"perplexity\"\nmodel = {:?}\n\n[output]\ndir = {:?}\n",
        dir.join("in"),
        dir.join("missing.arpa"),
        dir.join("out")
    );
    let spec = write_spec(dir, "missing.toml", &body);
    let o = sluice(dir, &["run", spec.to_str().unwrap(), "-q"], &[]);
    assert!(stderr(&o).contains("does not exist"), "{}", stderr(&o));
}

/// How many of `held`'s lines `pieces` splits otherwise than `want`;
/// fails past one line in a thousand, showing a few.
fn differing(
    held: &[&str],
    want: &[Vec<String>],
    what: &str,
    pieces: impl Fn(&str) -> Vec<String>,
) -> usize {
    let differ: Vec<_> = held
        .iter()
        .zip(want)
        .map(|(l, w)| (l, pieces(l), w))
        .filter(|(_, got, w)| got != *w)
        .collect();
    assert!(
        differ.len() * 1000 <= held.len(),
        "{} of {} lines {what} differently, e.g. {:?}",
        differ.len(),
        held.len(),
        &differ[..differ.len().min(3)]
    );
    differ.len()
}

/// Writes `(id, text, lang)` rows as one Parquet file.
fn write_lang_docs(path: &Path, rows: &[(&str, &str, &str)], row_group_rows: usize) {
    use arrow::array::{ArrayRef, RecordBatch, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("text", DataType::Utf8, false),
        Field::new("lang", DataType::Utf8, false),
    ]));
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.2))),
    ];
    write_batch(
        path,
        RecordBatch::try_new(schema, cols).unwrap(),
        row_group_rows,
    );
}

/// A SentencePiece unigram model (CCNet's kind) trained by sentencepiece
/// itself: `perplexity`'s segmentation (sentencepiece's Viterbi, with its
/// mix of f32 and f64) gives held-out lines sentencepiece's pieces on
/// every line; the same model converted to a tokenizer.json for the
/// `tokenizers` crate (what `tokenize` and `load_tokenizer` use) differs
/// on near-ties (`(ccc)` as `c cc` where sentencepiece has `cc c`): at
/// most one line in a thousand (5 of 9,294 here).
#[test]
fn sentencepiece_unigram_models_give_sentencepieces_pieces() {
    let Some((_, py)) = kenlm() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let docs = corpus();
    let raw: Vec<String> =
        read_parquet_column(&repo().join("fixtures/quickstart/zh_news.parquet"), "text")
            .into_iter()
            .chain(
                docs.iter()
                    .filter(|d| d.0.starts_with("web"))
                    .flat_map(|d| d.1.split('\n').map(str::to_string).collect::<Vec<_>>()),
            )
            .filter(|l| !l.trim().is_empty())
            .collect();
    let (held, train): (Vec<_>, Vec<_>) = raw.iter().enumerate().partition(|(i, _)| i % 5 == 0);
    let train: Vec<&str> = train.iter().map(|(_, l)| l.as_str()).collect();
    let held: Vec<&str> = held.iter().map(|(_, l)| l.as_str()).collect();
    std::fs::write(dir.join("train.txt"), train.join("\n")).unwrap();
    std::fs::write(dir.join("held.txt"), held.join("\n")).unwrap();
    let out = run(Command::new(&py)
        .arg(repo().join("tests/py/spm_pieces.py"))
        .arg(dir.join("train.txt"))
        .arg(dir.join("sp"))
        .arg(dir.join("held.txt")));
    let want: Vec<Vec<String>> = serde_json::from_str(&out).unwrap();
    assert_eq!(want.len(), held.len());
    let spm = sluice::tokenizer::sentencepiece::UnigramPieces::load(&dir.join("sp.model")).unwrap();
    let differ = differing(&held, &want, "segmented", |l| spm.pieces(l).unwrap());
    assert_eq!(
        differ, 0,
        "perplexity's segmentation is sentencepiece's on every line"
    );

    // The whole CCNet path: an LM trained by lmplz on the training lines'
    // pieces scores held-out lines through `perplexity` with the .model as
    // its tokenizer, as the kenlm module scores sentencepiece's pieces.
    let (bin, _) = kenlm().expect("checked above");
    let pieces_text: String = train
        .iter()
        .map(|l| spm.pieces(l).unwrap().join(" "))
        .filter(|p| !p.is_empty())
        .map(|p| p + "\n")
        .collect();
    std::fs::write(dir.join("train.pieces"), pieces_text).unwrap();
    let arpa = dir.join("sp.arpa");
    let o = Command::new(bin.join("lmplz"))
        .args([
            "-o",
            "3",
            "-S",
            "200M",
            "--discount_fallback",
            "--skip_symbols",
            "-T",
        ])
        .arg(dir)
        .stdin(std::fs::File::open(dir.join("train.pieces")).unwrap())
        .stdout(std::fs::File::create(&arpa).unwrap())
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "lmplz: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    // train-lm with the .model as its tokenizer, on the raw lines, writes
    // the very model lmplz makes of their pieces.
    let train_rows: Vec<(String, String)> = train
        .iter()
        .enumerate()
        .map(|(i, l)| (format!("t{i:05}"), l.to_string()))
        .collect();
    write_pairs(&dir.join("sp-train/train.parquet"), &train_rows);
    let ours = train_lm(
        dir,
        "sp-lm",
        &format!(
            "order = 3\ntokenizer = {:?}\ndiscount_fallback = [0.5, 1.0, 1.5]",
            dir.join("sp.model")
        ),
        &dir.join("sp-train"),
        "2",
    );
    same_model(&ours, &arpa);

    let docs: Vec<(String, String)> = held
        .iter()
        .enumerate()
        .map(|(i, l)| (format!("l{i:05}"), l.to_string()))
        .collect();
    let rows: Vec<(&str, Option<&str>)> = docs
        .iter()
        .map(|(i, t)| (i.as_str(), Some(t.as_str())))
        .collect();
    write_docs(&dir.join("sp-in/held.parquet"), &rows, 1000);
    let piece_docs: Vec<(String, String)> = docs
        .iter()
        .zip(&want)
        .map(|((i, _), p)| (i.clone(), p.join(" ")))
        .collect();
    let reference = kenlm_scores(&py, &arpa, &piece_docs);
    let out = dir.join("sp-out");
    let body = format!(
        "[input]\npaths = [{:?}]\n\n[[step]]\nop = \"perplexity\"\nmodel = {arpa:?}\ntokenizer = {:?}\n\n[output]\ndir = {out:?}\n",
        dir.join("sp-in"),
        dir.join("sp.model")
    );
    let spec = write_spec(dir, "sp.toml", &body);
    run_ok(dir, &["run", spec.to_str().unwrap(), "-q"]);
    let mut off = 0;
    for r in read_rows(&out, "part-") {
        let (logp, n) = reference[&r["id"]];
        let Ok(have) = r["perplexity"].parse::<f64>() else {
            continue; // a line that normalises to nothing
        };
        if (have.log10() + logp / n as f64).abs() > 1e-4 {
            off += 1;
        }
    }
    assert_eq!(
        off, 0,
        "{off} lines score differently from KenLM on sentencepiece's pieces"
    );

    // CCNet's layout: <lang>.arpa with <lang>.sp.model beside it in a
    // folder, picked by the row's language and no `tokenizer` key, scores
    // as naming the tokenizer did.
    let lm = dir.join("lm");
    std::fs::create_dir_all(&lm).unwrap();
    std::fs::copy(&arpa, lm.join("xx.arpa")).unwrap();
    std::fs::copy(dir.join("sp.model"), lm.join("xx.sp.model")).unwrap();
    let lang_rows: Vec<(&str, &str, &str)> = docs
        .iter()
        .map(|d| (d.0.as_str(), d.1.as_str(), "xx"))
        .collect();
    write_lang_docs(&dir.join("lang-in/held.parquet"), &lang_rows, 1000);
    let out2 = dir.join("lang-out");
    let body = format!(
        "[input]\npaths = [{:?}]\n\n[[step]]\nop = \"perplexity\"\nmodel = {lm:?}\n\n[output]\ndir = {out2:?}\n",
        dir.join("lang-in")
    );
    let spec = write_spec(dir, "lang.toml", &body);
    run_ok(dir, &["run", spec.to_str().unwrap(), "-q"]);
    let by_id = |d: &Path| -> HashMap<String, String> {
        read_rows(d, "part-")
            .into_iter()
            .map(|r| (r["id"].clone(), r["perplexity"].clone()))
            .collect()
    };
    assert_eq!(
        by_id(&out),
        by_id(&out2),
        "the folder layout scores differently"
    );

    let tok = sluice::tokenizer::load::load_tokenizer(&dir.join("sp.model")).unwrap();
    differing(&held, &want, "tokenized", |l| {
        tok.encode(l, false).unwrap().get_tokens().to_vec()
    });
}

/// Writes `(id, text)` pairs as one Parquet file.
fn write_pairs(path: &Path, docs: &[(String, String)]) {
    let rows: Vec<(&str, Option<&str>)> = docs
        .iter()
        .map(|(i, t)| (i.as_str(), Some(t.as_str())))
        .collect();
    write_docs(path, &rows, 256);
}

/// Runs `sluice train-lm` on the shards of `input` with `lm` as the body of
/// its `[lm]`; the model's path.
fn train_lm(dir: &Path, name: &str, lm: &str, input: &Path, workers: &str) -> PathBuf {
    let out = dir.join(name);
    let body = format!("[input]\npaths = [{input:?}]\n\n[lm]\n{lm}\n\n[output]\ndir = {out:?}\n");
    let spec = write_spec(dir, &format!("{name}.toml"), &body);
    run_ok(
        dir,
        &[
            "train-lm",
            spec.to_str().unwrap(),
            "-q",
            "--workers",
            workers,
        ],
    );
    out.join("model.arpa")
}

/// lmplz on a text file of sentences, one per line.
fn lmplz(bin: &Path, text: &Path, args: &[&str], arpa: &Path) {
    let o = Command::new(bin.join("lmplz"))
        .args(args)
        .args(["-S", "200M", "-T"])
        .arg(text.parent().unwrap())
        .stdin(std::fs::File::open(text).unwrap())
        .stdout(std::fs::File::create(arpa).unwrap())
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "lmplz: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The two ARPA files are the same bytes (else the first line that differs).
fn same_model(ours: &Path, lmplzs: &Path) {
    let a = std::fs::read_to_string(ours).unwrap();
    let b = std::fs::read_to_string(lmplzs).unwrap();
    if a != b {
        let (n, (x, y)) = a
            .lines()
            .zip(b.lines())
            .enumerate()
            .find(|(_, (x, y))| x != y)
            .unwrap_or((0, ("(length)", "(length)")));
        panic!(
            "{} differs from lmplz's {} at line {}: {x:?} vs {y:?}",
            ours.display(),
            lmplzs.display(),
            n + 1
        );
    }
}

/// The test corpus without KenLM's reserved words (which lmplz refuses and
/// train-lm skips).
fn canonical_corpus() -> Vec<(String, String)> {
    corpus()
        .into_iter()
        .map(|(id, text)| {
            let lines: Vec<String> = text
                .split('\n')
                .map(|l| {
                    l.split(' ')
                        .filter(|w| !["<s>", "</s>", "<unk>"].contains(w))
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .filter(|l| !l.is_empty())
                .collect();
            (id, lines.join("\n"))
        })
        .filter(|(_, t)| !t.is_empty())
        .collect()
}

/// `train-lm` against KenLM: on real text (Chinese characters, English
/// words) in two shards, read by two workers with a small memory budget
/// (its sorts spill), the ARPA file is lmplz's, byte for byte, for the same
/// order and pruning, and the probing binary build_binary's; one worker
/// with the default budget writes the same; and the model, loaded by
/// KenLM's Python module, scores held-out documents as `perplexity` scores
/// them with it.
#[test]
fn train_lm_writes_lmplzs_model_byte_for_byte() {
    let Some((bin, py)) = kenlm() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let docs = canonical_corpus();
    let (held, train): (Vec<_>, Vec<_>) = docs.iter().enumerate().partition(|(i, _)| i % 5 == 0);
    let train: Vec<(String, String)> = train.into_iter().map(|(_, d)| d.clone()).collect();
    let held: Vec<(String, String)> = held.into_iter().map(|(_, d)| d.clone()).collect();
    // Two shards, read in name order: lmplz reads their text in that order.
    let half = train.len() / 2;
    write_pairs(&dir.join("train/a.parquet"), &train[..half]);
    write_pairs(&dir.join("train/b.parquet"), &train[half..]);
    let text: String = train.iter().map(|(_, t)| format!("{t}\n")).collect();
    std::fs::write(dir.join("train.txt"), text).unwrap();
    let reference = dir.join("lmplz.arpa");
    lmplz(
        &bin,
        &dir.join("train.txt"),
        &["-o", "4", "--prune", "0", "0", "1"],
        &reference,
    );
    let small = train_lm(
        dir,
        "lm-small",
        "order = 4\nprune = [0, 0, 1]\nmemory_budget = \"16MiB\"",
        &dir.join("train"),
        "2",
    );
    same_model(&small, &reference);
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("lm-small/report.json")).unwrap()).unwrap();
    assert!(
        report["spilled_runs"].as_u64().unwrap() > 0,
        "the small budget spills: {report}"
    );
    assert_eq!(
        report["training"]["sentences"].as_u64().unwrap(),
        train
            .iter()
            .map(|(_, t)| t.lines().count() as u64)
            .sum::<u64>()
    );
    let one = train_lm(
        dir,
        "lm-one",
        "order = 4\nprune = [0, 0, 1]",
        &dir.join("train"),
        "1",
    );
    same_model(&one, &reference);
    // Its probing binary is build_binary's of the same ARPA file, byte for
    // byte.
    let built = dir.join("build_binary.binary");
    run(Command::new(bin.join("build_binary"))
        .arg(&reference)
        .arg(&built));
    let ours = dir.join("lm-small/model.binary");
    assert!(
        std::fs::read(&ours).unwrap() == std::fs::read(&built).unwrap(),
        "{} is not build_binary's file",
        ours.display()
    );

    // KenLM loads it, and scores held-out text as `perplexity` does.
    write_pairs(&dir.join("held/held.parquet"), &held);
    let want = kenlm_scores(&py, &small, &held);
    scores_as_kenlm(dir, &small, "", &want);
}

/// `perplexity` with `model` (and `extra` keys) on the shards in
/// `dir/held` gives every document KenLM's score in `want`, within 1e-4
/// in log10 per token.
fn scores_as_kenlm(dir: &Path, model: &Path, extra: &str, want: &HashMap<String, (f64, u64)>) {
    let out = dir.join("scored");
    let body = format!(
        "[input]\npaths = [{:?}]\n\n[[step]]\nop = \"perplexity\"\nmodel = {model:?}\n{extra}\n[output]\ndir = {out:?}\n",
        dir.join("held")
    );
    let spec = write_spec(dir, "score.toml", &body);
    run_ok(dir, &["run", spec.to_str().unwrap(), "-q", "--force"]);
    let got = read_rows(&out, "part-");
    assert_eq!(got.len(), want.len());
    for r in &got {
        let (logp, n) = want[&r["id"]];
        let have = r["perplexity"].parse::<f64>().unwrap().log10();
        assert!(
            (have + logp / n as f64).abs() < 1e-4,
            "{}: log10 perplexity {have} vs KenLM's {}",
            r["id"],
            -logp / n as f64
        );
    }
}

/// Text too small for Kneser-Ney's discount estimate: a clear error that
/// names the way out, and with `discount_fallback` lmplz's model with
/// `--discount_fallback`. A bad spec names its key.
#[test]
fn train_lm_needs_discounts_or_a_fallback() {
    let Some((bin, _)) = kenlm() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let docs = vec![
        ("a".to_string(), "the cat sat\nthe cat ran away".to_string()),
        ("b".to_string(), "a dog sat on the mat".to_string()),
    ];
    write_pairs(&dir.join("tiny/t.parquet"), &docs);
    let out = dir.join("tiny-lm");
    let body = format!(
        "[input]\npaths = [{:?}]\n\n[lm]\norder = 3\n\n[output]\ndir = {out:?}\n",
        dir.join("tiny")
    );
    let spec = write_spec(dir, "tiny.toml", &body);
    let o = sluice(dir, &["train-lm", spec.to_str().unwrap(), "-q"], &[]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("adjusted count") && e.contains("discount_fallback"),
        "{e}"
    );
    std::fs::write(
        dir.join("tiny.txt"),
        "the cat sat\nthe cat ran away\na dog sat on the mat\n",
    )
    .unwrap();
    let reference = dir.join("tiny.arpa");
    lmplz(
        &bin,
        &dir.join("tiny.txt"),
        &["-o", "3", "--discount_fallback"],
        &reference,
    );
    let ours = train_lm(
        dir,
        "tiny-fallback",
        "order = 3\ndiscount_fallback = [0.5, 1.0, 1.5]",
        &dir.join("tiny"),
        "2",
    );
    same_model(&ours, &reference);

    let bad = write_spec(
        dir,
        "bad.toml",
        &format!(
            "[input]\npaths = [{:?}]\n\n[lm]\norder = 3\nprune = [0, 2, 1]\n\n[output]\ndir = {out:?}\n",
            dir.join("tiny")
        ),
    );
    let o = sluice(dir, &["train-lm", bad.to_str().unwrap()], &[]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("bad.toml:6") && stderr(&o).contains("prune"),
        "{}",
        stderr(&o)
    );
}

/// A tokenizer.json that `sluice train-tokenizer` wrote as train-lm's
/// tokenizer: the model is lmplz's of the lines in that tokenizer's token
/// strings (split where a token holds a space, as both train-lm and
/// `perplexity` split them), and `perplexity` with the same tokenizer
/// scores held-out lines as the kenlm module scores their tokens.
#[test]
fn train_lm_with_a_trained_tokenizer_json() {
    let Some((bin, py)) = kenlm() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let tok_spec = write_spec(
        dir,
        "tok.toml",
        &format!(
            "[input]\npaths = [{:?}, {:?}]\n\n[tokenizer]\nvocab_size = 1000\n\n[output]\ndir = {:?}\n",
            repo().join("fixtures/quickstart/web_pages.parquet"),
            repo().join("fixtures/quickstart/zh_news.parquet"),
            dir.join("tok")
        ),
    );
    run_ok(dir, &["train-tokenizer", tok_spec.to_str().unwrap(), "-q"]);
    let tokenizer = dir.join("tok/tokenizer.json");
    let docs = canonical_corpus();
    let (held, train): (Vec<_>, Vec<_>) = docs.iter().enumerate().partition(|(i, _)| i % 5 == 0);
    let train: Vec<(String, String)> = train.into_iter().map(|(_, d)| d.clone()).collect();
    let held: Vec<(String, String)> = held.into_iter().map(|(_, d)| d.clone()).collect();
    write_pairs(&dir.join("train/t.parquet"), &train);
    let hf = sluice::tokenizer::load::load_tokenizer(&tokenizer).unwrap();
    let tokens = |line: &str| -> String {
        hf.encode(line, false)
            .unwrap()
            .get_tokens()
            .iter()
            .flat_map(|t| {
                t.split([' ', '\t', '\n', '\u{b}', '\u{c}', '\r'])
                    .filter(|w| !w.is_empty())
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .filter(|w| !["<s>", "</s>", "<unk>"].contains(&w.as_str()))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let text: String = train
        .iter()
        .flat_map(|(_, t)| t.split('\n').map(&tokens).collect::<Vec<_>>())
        .filter(|l| !l.is_empty())
        .map(|l| l + "\n")
        .collect();
    std::fs::write(dir.join("train.txt"), text).unwrap();
    let reference = dir.join("lmplz.arpa");
    lmplz(&bin, &dir.join("train.txt"), &["-o", "3"], &reference);
    let ours = train_lm(
        dir,
        "lm-hf",
        &format!("order = 3\ntokenizer = {tokenizer:?}"),
        &dir.join("train"),
        "2",
    );
    same_model(&ours, &reference);

    write_pairs(&dir.join("held/h.parquet"), &held);
    let held_tokens: Vec<(String, String)> = held
        .iter()
        .map(|(id, t)| {
            let lines: Vec<String> = t
                .split('\n')
                .map(&tokens)
                .filter(|l| !l.is_empty())
                .collect();
            (id.clone(), lines.join("\n"))
        })
        .collect();
    let want = kenlm_scores(&py, &ours, &held_tokens);
    scores_as_kenlm(
        dir,
        &dir.join("lm-hf/model.binary"),
        &format!("tokenizer = {tokenizer:?}\n"),
        &want,
    );
}
