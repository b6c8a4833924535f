//! The tokenizer spec (`sluice train-tokenizer spec.toml`): `[input]`,
//! `[tokenizer]`, `[output]`, optional `[report]`. Errors name the file,
//! line and key, as the pipeline spec's do.

use std::path::PathBuf;

use serde::Deserialize;

use crate::pipeline::bytesize::ByteSize;
use crate::pipeline::spec::{
    need_section, parse_sections, read_sections, suggest, Format, Section, Spec, SpecError,
};
use crate::tokenizer::hf::Normalization;
use crate::tokenizer::pretok::{PreTokenizer, Preset};

fn d_text() -> String {
    "text".into()
}
fn d_pre() -> String {
    "qwen2".into()
}
fn yes() -> bool {
    true
}
fn d_nfc() -> Normalization {
    Normalization::Nfc
}
fn d_min_frequency() -> u64 {
    2
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokInput {
    /// The main source's shards (may be empty when `sources` are given).
    #[serde(default)]
    pub paths: Vec<String>,
    #[serde(default = "d_text")]
    pub text_column: String,
    #[serde(default)]
    pub format: Option<Format>,
    /// Bytes of text to train on from `paths`, shared evenly among its
    /// shards (each gives its first share); all of it when absent.
    #[serde(default)]
    pub max_bytes: Option<ByteSize>,
    /// Share of the documents of `paths` read, chosen by a hash of the id.
    #[serde(default)]
    pub fraction: Option<f64>,
    /// More sources, each with its own budget and fraction:
    /// `[[input.sources]]`.
    #[serde(default)]
    pub sources: Vec<TokSource>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokSource {
    pub paths: Vec<String>,
    #[serde(default)]
    pub max_bytes: Option<ByteSize>,
    #[serde(default)]
    pub fraction: Option<f64>,
}

impl TokInput {
    /// Every source names shards, and every fraction is in (0, 1].
    pub fn validate(&self, shell: &Spec) -> Result<(), SpecError> {
        let sources = self.all_sources();
        if sources.is_empty() || sources.iter().any(|s| s.paths.is_empty()) {
            return Err(shell.error(
                Section::Input,
                Some("paths"),
                "`paths` is empty: name shards in `paths` or in each `[[input.sources]]`".into(),
            ));
        }
        if let Some(f) = sources
            .iter()
            .filter_map(|s| s.fraction)
            .find(|f| !(*f > 0.0 && *f <= 1.0))
        {
            return Err(shell.error(
                Section::Input,
                Some("fraction"),
                format!("fraction must be in (0, 1], not {f}"),
            ));
        }
        Ok(())
    }

    /// Every source: `paths` first (when given), then `sources` in order.
    pub fn all_sources(&self) -> Vec<TokSource> {
        let main = (!self.paths.is_empty()).then(|| TokSource {
            paths: self.paths.clone(),
            max_bytes: self.max_bytes,
            fraction: self.fraction,
        });
        main.into_iter()
            .chain(self.sources.iter().cloned())
            .collect()
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokConfig {
    /// The whole vocabulary: special tokens, the 256 bytes and the merges.
    pub vocab_size: usize,
    /// `gpt2`, `llama3` (cl100k), `qwen2`, or `custom` with `pattern`.
    #[serde(default = "d_pre")]
    pub pre_tokenizer: String,
    #[serde(default)]
    pub pattern: Option<String>,
    /// Every number character its own token.
    #[serde(default = "yes")]
    pub split_digits: bool,
    /// `"none"`, `"NFC"` or `"NFKC"`.
    #[serde(default = "d_nfc")]
    pub normalization: Normalization,
    /// Tokens never split nor merged (ids 0, 1, …).
    #[serde(default)]
    pub special_tokens: Vec<String>,
    /// Pairs seen fewer times are not merged.
    #[serde(default = "d_min_frequency")]
    pub min_frequency: u64,
    /// Strings forced into the vocabulary (their merges come first), e.g.
    /// common Chinese words.
    #[serde(default)]
    pub required_tokens: Vec<String>,
    /// A file with one required token per line.
    #[serde(default)]
    pub required_tokens_file: Option<PathBuf>,
    /// Longest token in bytes (0: no limit).
    #[serde(default)]
    pub max_token_bytes: usize,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokOutput {
    pub dir: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokReport {
    /// Files of held-out text (Parquet or JSONL, `text` column): compression
    /// per file in the report.
    #[serde(default)]
    pub held_out: Vec<PathBuf>,
    /// Bytes of each held-out file used.
    #[serde(default = "d_held_out_bytes")]
    pub held_out_bytes: ByteSize,
    /// A Python with the `tokenizers` package: the Hugging Face trainer is
    /// run on the same text with the same settings, and its time, memory and
    /// compression go into the report beside ours.
    #[serde(default)]
    pub compare_hf: Option<PathBuf>,
}

fn d_held_out_bytes() -> ByteSize {
    ByteSize(5_000_000)
}

impl Default for TokReport {
    fn default() -> Self {
        TokReport {
            held_out: vec![],
            held_out_bytes: d_held_out_bytes(),
            compare_hf: None,
        }
    }
}

pub struct TokenizerSpec {
    pub file: String,
    pub input: TokInput,
    pub tokenizer: TokConfig,
    pub output: TokOutput,
    pub report: TokReport,
}

const TOP_KEYS: &[&str] = &["input", "tokenizer", "output", "report"];

impl TokenizerSpec {
    pub fn load(path: &std::path::Path) -> Result<Self, SpecError> {
        let (shell, table) = read_sections(path, "tokenizer", TOP_KEYS)?;
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
        let tokenizer: TokConfig = shell.decode(
            Section::Table("tokenizer"),
            need("tokenizer", "`vocab_size = ...`")?,
        )?;
        let output: TokOutput =
            shell.decode(Section::Output, need("output", "`dir = \"...\"`")?)?;
        let report: TokReport = match table.get("report") {
            Some(v) => shell.decode(Section::Table("report"), v.clone())?,
            None => TokReport::default(),
        };
        let spec = TokenizerSpec {
            file,
            input,
            tokenizer,
            output,
            report,
        };
        spec.validate(&shell)?;
        Ok(spec)
    }

    fn validate(&self, shell: &Spec) -> Result<(), SpecError> {
        let t = &self.tokenizer;
        let tok = Section::Table("tokenizer");
        self.input.validate(shell)?;
        let floor = 256 + t.special_tokens.len();
        if t.vocab_size < floor {
            return Err(shell.error(
                tok,
                Some("vocab_size"),
                format!(
                    "vocab_size {} is below the {floor} tokens the bytes and special tokens take",
                    t.vocab_size
                ),
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for s in &t.special_tokens {
            if s.is_empty() || !seen.insert(s) {
                return Err(shell.error(
                    tok,
                    Some("special_tokens"),
                    format!("special token {s:?} is empty or repeated"),
                ));
            }
        }
        self.pre_tokenizer().map_err(|m| {
            shell.error(
                tok,
                Some(if t.pattern.is_some() {
                    "pattern"
                } else {
                    "pre_tokenizer"
                }),
                m,
            )
        })?;
        Ok(())
    }

    /// The pre-tokenizer and the regex that describes it in tokenizer.json.
    pub fn pre_tokenizer(&self) -> Result<(PreTokenizer, String), String> {
        let t = &self.tokenizer;
        let preset = match t.pre_tokenizer.as_str() {
            "gpt2" => Some(Preset::Gpt2),
            "llama3" | "cl100k" => Some(Preset::Llama3),
            "qwen2" => Some(Preset::Qwen2),
            "custom" => None,
            other => {
                return Err(format!(
                    "unknown pre_tokenizer `{other}`: gpt2, llama3, qwen2, or custom with pattern = \"...\"{}",
                    suggest(other, &["gpt2", "llama3", "qwen2", "custom"])
                ))
            }
        };
        match (preset, &t.pattern) {
            (Some(p), None) => Ok((PreTokenizer::Preset(p), p.pattern().to_string())),
            (None, Some(pattern)) => fancy_regex::Regex::new(pattern)
                .map(|re| (PreTokenizer::Custom(re), pattern.clone()))
                .map_err(|e| format!("pattern is not a valid regex: {e}")),
            (Some(_), Some(_)) => Err(
                "give either a preset pre_tokenizer or pattern = \"...\" with pre_tokenizer = \"custom\"".into(),
            ),
            (None, None) => Err("pre_tokenizer = \"custom\" needs pattern = \"...\"".into()),
        }
    }

    /// Required tokens from the spec and its file, in order, without repeats.
    pub fn required_tokens(&self) -> Result<Vec<String>, String> {
        let mut out: Vec<String> = self.tokenizer.required_tokens.clone();
        if let Some(path) = &self.tokenizer.required_tokens_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read required_tokens_file {}: {e}", path.display()))?;
            out.extend(
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(String::from),
            );
        }
        let mut seen = std::collections::HashSet::new();
        out.retain(|t| seen.insert(t.clone()));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_key_and_line() {
        let src =
            "[input]\npaths = [\"x\"]\n[tokenizer]\nvocab_size = 100\n[output]\ndir = \"o\"\n";
        let e = TokenizerSpec::parse("t.toml", src)
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.starts_with("t.toml:4:") && e.contains("vocab_size"),
            "{e}"
        );
        let src = "[input]\npaths = [\"x\"]\n[tokenizer]\nvocab_size = 1000\npre_tokenizer = \"qwen\"\n[output]\ndir = \"o\"\n";
        let e = TokenizerSpec::parse("t.toml", src)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("t.toml:5:") && e.contains("qwen2"), "{e}");
        let src = "[input]\npaths = [\"x\"]\n[tokenizer]\nvocab_size = 1000\nsplit_digit = true\n[output]\ndir = \"o\"\n";
        let e = TokenizerSpec::parse("t.toml", src)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("split_digits"), "{e}");
    }
}
