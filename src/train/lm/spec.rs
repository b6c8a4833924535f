//! The language-model spec (`sluice train-lm spec.toml`): `[input]` (as the
//! tokenizer spec's), `[lm]`, `[output]`. Errors name the file, line and key.

use std::path::PathBuf;

use serde::Deserialize;

use crate::pipeline::bytesize::ByteSize;
use crate::pipeline::spec::{
    need_section, parse_sections, read_sections, Section, Spec, SpecError,
};
use crate::tokenizer::lm::LineNormalize;
use crate::train::tokenizer::spec::TokInput;

/// The longest order: what KenLM's query code (and so its Python module and
/// sluice's reader) is built for by default (`KENLM_MAX_ORDER=6`).
pub const MAX_ORDER: usize = crate::models::kenlm::MAX_ORDER;

fn d_tokenizer() -> String {
    "none".into()
}
fn d_memory() -> ByteSize {
    ByteSize(1 << 30)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LmConfig {
    /// The n-gram order, 2 to 6.
    pub order: usize,
    /// `"none"` (the text's own words, each character of an unspaced
    /// script a word), or a SentencePiece `.model` / tokenizer.json.
    #[serde(default = "d_tokenizer")]
    pub tokenizer: String,
    /// Each line's normalisation before tokenizing.
    #[serde(default)]
    pub normalize: LineNormalize,
    /// Per order: n-grams seen this many times or fewer are pruned
    /// (lmplz's `--prune`); the last value holds for the higher orders.
    #[serde(default)]
    pub prune: Vec<u64>,
    /// Discounts for adjusted counts 1, 2, 3+ used where the closed-form
    /// estimate fails (lmplz's `--discount_fallback`).
    #[serde(default)]
    pub discount_fallback: Option<Vec<f32>>,
    /// Memory of the counting tables and sort buffers; past it, sorted runs
    /// spill to the output's `_work` folder.
    #[serde(default = "d_memory")]
    pub memory_budget: ByteSize,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LmOutput {
    pub dir: PathBuf,
    /// Also write `model.binary`, KenLM's probing binary (what
    /// `build_binary` makes of the ARPA file), which loads by mapping.
    #[serde(default = "yes")]
    pub binary: bool,
}

fn yes() -> bool {
    true
}

pub struct LmSpec {
    pub file: String,
    pub input: TokInput,
    pub lm: LmConfig,
    pub output: LmOutput,
}

const TOP_KEYS: &[&str] = &["input", "lm", "output"];

impl LmSpec {
    pub fn load(path: &std::path::Path) -> Result<Self, SpecError> {
        let (shell, table) = read_sections(path, "language model", TOP_KEYS)?;
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
        let lm: LmConfig = shell.decode(Section::Table("lm"), need("lm", "`order = 5`")?)?;
        let output: LmOutput = shell.decode(Section::Output, need("output", "`dir = \"...\"`")?)?;
        let spec = LmSpec {
            file,
            input,
            lm,
            output,
        };
        spec.validate(&shell)?;
        Ok(spec)
    }

    fn validate(&self, shell: &Spec) -> Result<(), SpecError> {
        let lm = &self.lm;
        let sec = Section::Table("lm");
        self.input.validate(shell)?;
        if !(2..=MAX_ORDER).contains(&lm.order) {
            return Err(shell.error(
                sec,
                Some("order"),
                format!(
                    "order {} is out of range: 2 to {MAX_ORDER} (KenLM's query code is built for at most {MAX_ORDER})",
                    lm.order
                ),
            ));
        }
        if lm.prune.len() > lm.order {
            return Err(shell.error(
                sec,
                Some("prune"),
                format!(
                    "prune gives {} thresholds for a model of order {}: one per order at most",
                    lm.prune.len(),
                    lm.order
                ),
            ));
        }
        if lm.prune.first().is_some_and(|&t| t > 0) {
            return Err(shell.error(
                sec,
                Some("prune"),
                "unigrams cannot be pruned (as in lmplz): the first threshold must be 0, e.g. prune = [0, 0, 1]".into(),
            ));
        }
        if lm.prune.windows(2).any(|w| w[0] > w[1]) {
            return Err(shell.error(
                sec,
                Some("prune"),
                format!(
                    "prune thresholds must not decrease with the order (a kept n-gram needs its shorter parts), not {:?}",
                    lm.prune
                ),
            ));
        }
        if let Some(d) = &lm.discount_fallback {
            if d.is_empty() || d.len() > 3 || d.iter().any(|x| !x.is_finite() || *x < 0.0) {
                return Err(shell.error(
                    sec,
                    Some("discount_fallback"),
                    format!("discount_fallback takes one to three discounts (for adjusted counts 1, 2, 3+), e.g. [0.5, 1.0, 1.5], not {d:?}"),
                ));
            }
        }
        if lm.memory_budget.0 < 16 << 20 {
            return Err(shell.error(
                sec,
                Some("memory_budget"),
                format!(
                    "memory_budget {} bytes is below the 16MB the tables need",
                    lm.memory_budget.0
                ),
            ));
        }
        if lm.tokenizer != "none" && !std::path::Path::new(&lm.tokenizer).exists() {
            return Err(shell.error(
                sec,
                Some("tokenizer"),
                format!(
                    "the tokenizer {} does not exist: name a SentencePiece .model or a tokenizer.json, or \"none\"",
                    lm.tokenizer
                ),
            ));
        }
        Ok(())
    }

    /// The pruning threshold of each order, 1 to `order`.
    pub fn prune_thresholds(&self) -> Vec<u64> {
        let mut t = self.lm.prune.clone();
        let last = t.last().copied().unwrap_or(0);
        t.resize(self.lm.order, last);
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(src: &str) -> String {
        LmSpec::parse("lm.toml", src).err().unwrap().to_string()
    }

    #[test]
    fn errors_name_the_key_and_line() {
        let head = "[input]\npaths = [\"x\"]\n[lm]\n";
        let tail = "[output]\ndir = \"o\"\n";
        let e = err(&format!("{head}order = 7\n{tail}"));
        assert!(e.starts_with("lm.toml:4:") && e.contains("order"), "{e}");
        let e = err(&format!("{head}order = 3\nprune = [1, 1]\n{tail}"));
        assert!(e.contains("lm.toml:5:") && e.contains("unigrams"), "{e}");
        let e = err(&format!("{head}order = 3\nprune = [0, 2, 1]\n{tail}"));
        assert!(e.contains("decrease"), "{e}");
        let e = err(&format!("{head}order = 3\nprunes = [0]\n{tail}"));
        assert!(e.contains("prune"), "{e}");
        let e = err(&format!(
            "{head}order = 3\ntokenizer = \"no/such.model\"\n{tail}"
        ));
        assert!(
            e.contains("lm.toml:5:") && e.contains("does not exist"),
            "{e}"
        );
        let s = LmSpec::parse(
            "lm.toml",
            &format!("{head}order = 5\nprune = [0, 0, 1]\n{tail}"),
        )
        .unwrap();
        assert_eq!(s.prune_thresholds(), [0, 0, 1, 1, 1]);
    }
}
