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
/// words: each document one line per non-blank line of its text.
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
                l.split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
                    .to_lowercase()
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
