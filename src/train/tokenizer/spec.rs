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
fn yes() -> bool {
    true
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

/// Which kind of tokenizer is trained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TokModel {
    /// GPT-2's byte-to-character map, a regex pre-tokenizer, merges over
    /// bytes (Qwen, Llama 3, GPT-2).
    ByteLevelBpe,
    /// `▁` for spaces, pieces of characters, byte fallback (LLaMA 1/2,
    /// Baichuan, ChatGLM).
    SentencepieceBpe,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokConfig {
    /// `byte_level_bpe` (the default) or `sentencepiece_bpe`; with `base`,
    /// the base's.
    #[serde(default)]
    pub model: Option<TokModel>,
    /// Extend this tokenizer.json: its ids kept, new tokens learnt on the
    /// input appended.
    #[serde(default)]
    pub base: Option<PathBuf>,
    /// The whole vocabulary: special tokens, the 256 bytes and the merges.
    pub vocab_size: usize,
    /// `gpt2`, `llama3` (cl100k), `qwen2` (the default), or `custom` with
    /// `pattern`; byte-level only.
    #[serde(default)]
    pub pre_tokenizer: Option<String>,
    #[serde(default)]
    pub pattern: Option<String>,
    /// Every number character its own token.
    #[serde(default = "yes")]
    pub split_digits: bool,
    /// `"none"`, `"NFC"` (the default) or `"NFKC"`; byte-level only.
    #[serde(default)]
    pub normalization: Option<Normalization>,
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
    /// SentencePiece-style only: characters outside the coverage as their
    /// UTF-8 bytes (`<0x00>`…`<0xFF>`) rather than `<unk>` (default true).
    #[serde(default)]
    pub byte_fallback: Option<bool>,
    /// SentencePiece-style only: runs of this many spaces made tokens first.
    #[serde(default)]
    pub whitespace_tokens: Option<Vec<usize>>,
    /// SentencePiece-style only: longest piece in characters (default 16).
    #[serde(default)]
    pub max_piece_length: Option<usize>,
    /// SentencePiece-style only: share of the text's characters kept as
    /// pieces (default 0.9995).
    #[serde(default)]
    pub character_coverage: Option<f64>,
}

impl TokConfig {
    pub fn model(&self) -> TokModel {
        self.model.unwrap_or(TokModel::ByteLevelBpe)
    }

    pub fn normalization(&self) -> Normalization {
        self.normalization.unwrap_or(Normalization::Nfc)
    }

    pub fn pre_tokenizer_name(&self) -> &str {
        self.pre_tokenizer.as_deref().unwrap_or("qwen2")
    }

    /// The SentencePiece-style settings, with their defaults.
    pub fn spm_options(&self) -> crate::tokenizer::spm_bpe::SpmOptions {
        crate::tokenizer::spm_bpe::SpmOptions {
            vocab_size: self.vocab_size,
            byte_fallback: self.byte_fallback.unwrap_or(true),
            split_digits: self.split_digits,
            whitespace_tokens: self.whitespace_tokens.clone().unwrap_or_default(),
            max_piece_length: self.max_piece_length.unwrap_or(16),
            character_coverage: self.character_coverage.unwrap_or(0.9995),
            special_tokens: self.special_tokens.clone(),
            min_frequency: self.min_frequency,
        }
    }
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
        if t.base.is_some() {
            return self.validate_base(shell);
        }
        if t.model() == TokModel::SentencepieceBpe {
            return self.validate_spm(shell);
        }
        let spm_only = [
            ("byte_fallback", t.byte_fallback.is_some()),
            ("whitespace_tokens", t.whitespace_tokens.is_some()),
            ("max_piece_length", t.max_piece_length.is_some()),
            ("character_coverage", t.character_coverage.is_some()),
        ];
        if let Some((key, _)) = spm_only.iter().find(|k| k.1) {
            return Err(shell.error(
                tok,
                Some(key),
                format!(
                    "`{key}` is a setting of model = \"sentencepiece_bpe\"; the byte-level model \
                     (the default) has every byte as a token already"
                ),
            ));
        }
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

    /// The checks of an extension: the base decides the model, its
    /// normaliser, pre-tokenizer and special tokens.
    fn validate_base(&self, shell: &Spec) -> Result<(), SpecError> {
        let t = &self.tokenizer;
        let tok = Section::Table("tokenizer");
        let the_bases = [
            ("model", t.model.is_some()),
            ("pre_tokenizer", t.pre_tokenizer.is_some()),
            ("pattern", t.pattern.is_some()),
            ("normalization", t.normalization.is_some()),
            ("special_tokens", !t.special_tokens.is_empty()),
            ("required_tokens", !t.required_tokens.is_empty()),
            ("required_tokens_file", t.required_tokens_file.is_some()),
            ("max_token_bytes", t.max_token_bytes != 0),
            ("byte_fallback", t.byte_fallback.is_some()),
            ("whitespace_tokens", t.whitespace_tokens.is_some()),
        ];
        if let Some((key, _)) = the_bases.iter().find(|k| k.1) {
            return Err(shell.error(
                tok,
                Some(key),
                format!(
                    "`{key}` comes from the base tokenizer when extending one (`base`):                      only vocab_size, min_frequency, split_digits, max_piece_length and \
                     character_coverage apply"
                ),
            ));
        }
        if self.report.compare_hf.is_some() {
            return Err(shell.error(
                Section::Table("report"),
                Some("compare_hf"),
                "compare_hf trains a tokenizer from scratch; with `base` the report compares                  the extended tokenizer with its base instead"
                    .into(),
            ));
        }
        if let Some(c) = t.character_coverage.filter(|c| !(*c > 0.0 && *c <= 1.0)) {
            return Err(shell.error(
                tok,
                Some("character_coverage"),
                format!("character_coverage must be in (0, 1], not {c}"),
            ));
        }
        if t.max_piece_length == Some(0) {
            return Err(shell.error(
                tok,
                Some("max_piece_length"),
                "max_piece_length must be at least 1".into(),
            ));
        }
        Ok(())
    }

    /// The checks of a SentencePiece-style spec: none of the byte-level
    /// settings, and its own in range.
    fn validate_spm(&self, shell: &Spec) -> Result<(), SpecError> {
        let t = &self.tokenizer;
        let tok = Section::Table("tokenizer");
        let byte_level_only = [
            ("pre_tokenizer", t.pre_tokenizer.is_some()),
            ("pattern", t.pattern.is_some()),
            (
                "normalization",
                t.normalization.is_some_and(|n| n != Normalization::None),
            ),
            ("required_tokens", !t.required_tokens.is_empty()),
            ("required_tokens_file", t.required_tokens_file.is_some()),
            ("max_token_bytes", t.max_token_bytes != 0),
        ];
        if let Some((key, _)) = byte_level_only.iter().find(|k| k.1) {
            return Err(shell.error(
                tok,
                Some(key),
                format!(
                    "`{key}` is a setting of the byte-level model; model = \"sentencepiece_bpe\" \
                     splits words at spaces, keeps the text as it is (Llama 2's identity \
                     normaliser: normalise in the pipeline before) and limits pieces with \
                     max_piece_length"
                ),
            ));
        }
        if self.report.compare_hf.is_some() {
            return Err(shell.error(
                Section::Table("report"),
                Some("compare_hf"),
                "compare_hf runs the Hugging Face byte-level trainer; for model = \
                 \"sentencepiece_bpe\" benches/tokenizer_spm.py compares with SentencePiece's"
                    .into(),
            ));
        }
        let o = t.spm_options();
        if !(o.character_coverage > 0.0 && o.character_coverage <= 1.0) {
            return Err(shell.error(
                tok,
                Some("character_coverage"),
                format!(
                    "character_coverage must be in (0, 1], not {}",
                    o.character_coverage
                ),
            ));
        }
        if o.max_piece_length == 0 {
            return Err(shell.error(
                tok,
                Some("max_piece_length"),
                "max_piece_length must be at least 1".into(),
            ));
        }
        if let Some(n) = o
            .whitespace_tokens
            .iter()
            .find(|&&n| n < 2 || n > o.max_piece_length)
        {
            return Err(shell.error(
                tok,
                Some("whitespace_tokens"),
                format!(
                    "whitespace_tokens: a run of {n} spaces; each must be 2 to max_piece_length ({})",
                    o.max_piece_length
                ),
            ));
        }
        let mut seen: std::collections::HashSet<&str> = ["<unk>", "<s>", "</s>"].into();
        for s in &t.special_tokens {
            if s.is_empty() || !seen.insert(s) {
                return Err(shell.error(
                    tok,
                    Some("special_tokens"),
                    format!(
                        "special_tokens: {s:?} is empty or repeated (<unk>, <s> and </s> are ids 0, 1, 2 already)"
                    ),
                ));
            }
        }
        let floor = 3 + t.special_tokens.len() + if o.byte_fallback { 256 } else { 0 } + 1;
        if t.vocab_size < floor {
            return Err(shell.error(
                tok,
                Some("vocab_size"),
                format!(
                    "vocab_size {} is below the {floor} tokens the special tokens, the bytes and one character take",
                    t.vocab_size
                ),
            ));
        }
        Ok(())
    }

    /// The pre-tokenizer and the regex that describes it in tokenizer.json.
    pub fn pre_tokenizer(&self) -> Result<(PreTokenizer, String), String> {
        let t = &self.tokenizer;
        let preset = match t.pre_tokenizer_name() {
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

    fn err(body: &str) -> String {
        let src = format!("[input]\npaths = [\"x\"]\n[tokenizer]\n{body}\n[output]\ndir = \"o\"\n");
        match TokenizerSpec::parse("t.toml", &src) {
            Ok(_) => panic!("accepted: {body}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn each_model_refuses_the_others_keys() {
        // A SentencePiece setting on the byte-level model (the default).
        let e = err("vocab_size = 1000\nbyte_fallback = true");
        assert!(
            e.contains("t.toml:5:") && e.contains("sentencepiece_bpe"),
            "{e}"
        );
        let e = err("vocab_size = 1000\nmodel = \"byte_level_bpe\"\nwhitespace_tokens = [2, 4]");
        assert!(
            e.contains("t.toml:6:") && e.contains("whitespace_tokens"),
            "{e}"
        );
        // A byte-level setting on the SentencePiece-style model.
        let sp = "model = \"sentencepiece_bpe\"\nvocab_size = 1000\n";
        for (key, line) in [
            ("pre_tokenizer = \"gpt2\"", "pre_tokenizer"),
            ("normalization = \"NFKC\"", "normalization"),
            ("required_tokens = [\"ab\"]", "required_tokens"),
            ("max_token_bytes = 8", "max_token_bytes"),
        ] {
            let e = err(&format!("{sp}{key}"));
            assert!(
                e.contains("t.toml:6:") && e.contains(line) && e.contains("byte-level"),
                "{e}"
            );
        }
        // normalization = "none" says what the model does anyway: accepted.
        let ok = format!("[input]\npaths = [\"x\"]\n[tokenizer]\n{sp}normalization = \"none\"\n[output]\ndir = \"o\"\n");
        TokenizerSpec::parse("t.toml", &ok).unwrap();
    }

    #[test]
    fn sentencepiece_settings_are_checked() {
        let sp = "model = \"sentencepiece_bpe\"\n";
        for (body, key) in [
            (
                "vocab_size = 1000\ncharacter_coverage = 0.0",
                "character_coverage",
            ),
            (
                "vocab_size = 1000\ncharacter_coverage = 1.5",
                "character_coverage",
            ),
            (
                "vocab_size = 1000\nmax_piece_length = 0",
                "max_piece_length",
            ),
            (
                "vocab_size = 1000\nwhitespace_tokens = [1, 4]",
                "whitespace_tokens",
            ),
            (
                "vocab_size = 1000\nmax_piece_length = 8\nwhitespace_tokens = [16]",
                "whitespace_tokens",
            ),
            (
                "vocab_size = 1000\nspecial_tokens = [\"<s>\"]",
                "special_tokens",
            ),
            ("vocab_size = 200", "vocab_size"),
        ] {
            let e = err(&format!("{sp}{body}"));
            assert!(e.contains(key), "{body}: {e}");
        }
        // Without byte fallback the 256 bytes are not in the vocabulary.
        let src = format!("[input]\npaths = [\"x\"]\n[tokenizer]\n{sp}vocab_size = 200\nbyte_fallback = false\n[output]\ndir = \"o\"\n");
        TokenizerSpec::parse("t.toml", &src).unwrap();
    }
}
