//! The pipeline spec as a user writes it (TOML): `[input]`, `[[step]]`…, `[output]`.
//!
//! Every error names the spec file, the line and the key, and suggests the
//! nearest valid name for a misspelt one.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// A spec error a user can act on: where, and what.
#[derive(Debug)]
pub struct SpecError {
    pub file: String,
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.file, line, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

impl std::error::Error for SpecError {}

/// Where a table sits in the spec file: `[input]`, `[output]` or the n-th `[[step]]`.
#[derive(Clone, Copy, Debug)]
pub enum Section {
    Input,
    Output,
    Step(usize),
    /// Another table, as `[name]` (the tokenizer spec's `[tokenizer]`).
    Table(&'static str),
}

impl fmt::Display for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Section::Input => write!(f, "[input]"),
            Section::Output => write!(f, "[output]"),
            Section::Step(i) => write!(f, "[[step]] #{}", i + 1),
            Section::Table(name) => write!(f, "[{name}]"),
        }
    }
}

/// Input format, by default from the file extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Parquet,
    Jsonl,
    /// WARC or WET files (`.warc`, `.warc.gz`, `.warc.wet.gz`): one
    /// document per page record.
    Warc,
}

fn default_text() -> String {
    "text".into()
}
fn default_id() -> String {
    "id".into()
}
fn default_source_column() -> String {
    "source".into()
}
fn default_batch_rows() -> usize {
    4096
}
/// The largest `batch_rows`: a batch is in memory per worker.
const MAX_BATCH_ROWS: usize = 10_000_000;
/// The smallest `max_task_bytes`: below it, tasks cost more than they read.
const MIN_TASK_BYTES: u64 = 1024;

fn default_task_bytes() -> u64 {
    256 << 20
}

/// `[input]`: which shards to read and how.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    /// Files, folders (read recursively) or glob patterns; relative paths are
    /// taken from the current directory.
    #[serde(default)]
    pub paths: Vec<String>,
    /// Input groups: source name to paths (as `paths`). Every row of a
    /// group's files gets the name in `source_column`, for `upsample`,
    /// `mixture` and the per-source reports.
    #[serde(default)]
    pub sources: std::collections::BTreeMap<String, Vec<String>>,
    /// The column `sources` fills (replacing a column of that name).
    #[serde(default = "default_source_column")]
    pub source_column: String,
    /// The column holding the document text.
    #[serde(default = "default_text")]
    pub text_column: String,
    /// The column holding the document id; synthesised from file and row when absent.
    #[serde(default = "default_id")]
    pub id_column: String,
    /// Force a format instead of reading it from the extension.
    #[serde(default)]
    pub format: Option<Format>,
    /// Rows per batch handed to the operators.
    #[serde(default = "default_batch_rows")]
    pub batch_rows: usize,
    /// A file larger than this (compressed Parquet row groups, or JSONL bytes)
    /// is split into several tasks.
    #[serde(default = "default_task_bytes")]
    pub max_task_bytes: u64,
}

fn default_rows_per_shard() -> usize {
    100_000
}
fn yes() -> bool {
    true
}

/// The output shards' Parquet compression.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    #[default]
    Zstd,
    Snappy,
    Lz4,
    Gzip,
    None,
}

impl std::fmt::Display for Compression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self {
            Compression::Zstd => "zstd",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Gzip => "gzip",
            Compression::None => "none",
        };
        f.write_str(name)
    }
}

/// `[output]`: where the shards go and how they are cut.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    /// Shards, `stats.json`, `excluded/` and the work folder `_work/`.
    pub dir: PathBuf,
    /// A shard is closed once it holds this many rows.
    #[serde(default = "default_rows_per_shard")]
    pub rows_per_shard: usize,
    /// A shard is also closed once it holds this many bytes of text.
    #[serde(default)]
    pub bytes_per_shard: Option<u64>,
    /// `zstd` (default), `snappy`, `lz4`, `gzip` or `none`.
    #[serde(default)]
    pub compression: Compression,
    /// Compression level for zstd (1–22, default 3) and gzip (0–9).
    #[serde(default)]
    pub compression_level: Option<i32>,
    /// Write dropped documents to `excluded/` with their drop reason.
    #[serde(default = "yes")]
    pub excluded: bool,
    /// Keep the intermediate files of global operators after a successful run.
    #[serde(default)]
    pub keep_work: bool,
}

impl OutputSpec {
    /// The Parquet compression `compression` and `compression_level` name.
    pub fn parquet_compression(&self) -> anyhow::Result<parquet::basic::Compression> {
        use parquet::basic::{Compression, GzipLevel, ZstdLevel};
        let level = self.compression_level;
        Ok(match self.compression {
            self::Compression::Zstd => Compression::ZSTD(ZstdLevel::try_new(level.unwrap_or(3))?),
            self::Compression::Gzip => {
                Compression::GZIP(GzipLevel::try_new(level.unwrap_or(6) as u32)?)
            }
            self::Compression::Snappy => Compression::SNAPPY,
            self::Compression::Lz4 => Compression::LZ4_RAW,
            self::Compression::None => Compression::UNCOMPRESSED,
        })
    }
}

/// One `[[step]]`: the op name and its parameters, checked by the op itself.
#[derive(Clone, Debug)]
pub struct StepSpec {
    /// Position in the pipeline, from 0.
    pub index: usize,
    pub op: String,
    pub params: toml::Table,
}

impl StepSpec {
    /// The label used in stats and progress: `2:length_filter`.
    pub fn label(&self) -> String {
        format!("{}:{}", self.index + 1, self.op)
    }
}

impl Spec {
    /// Applies a command-line override, `STEP.KEY=VALUE` (`--set`): STEP is
    /// a step's number (`3`, as in its label `3:dedup_exact`) or an op's
    /// name (every step of that op); VALUE is a TOML value (`false`, `12`,
    /// `"zstd"`; a bare word is taken as a string). The override becomes
    /// part of the spec's source, so the plan of a run records it and a
    /// rerun without it is another run. The op checks the value when it is
    /// built, as if the spec had it.
    pub fn set(&mut self, assignment: &str) -> Result<(), SpecError> {
        let err = |message: String| SpecError {
            file: self.file.clone(),
            line: None,
            message: format!("--set {assignment}: {message}"),
        };
        let (target, value) = assignment
            .split_once('=')
            .ok_or_else(|| err("write STEP.KEY=VALUE (e.g. `tokenize.shuffle=false`)".into()))?;
        let (step, key) = target
            .split_once('.')
            .ok_or_else(|| err("write STEP.KEY=VALUE (e.g. `3.threshold=0.7`)".into()))?;
        let (step, key) = (step.trim(), key.trim());
        if key.is_empty() {
            return Err(err("no key after the step".into()));
        }
        let value: toml::Value = toml::from_str::<toml::Table>(&format!("v = {value}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(value.trim().to_string()));
        let chosen: Vec<usize> = match step.parse::<usize>() {
            Ok(n) => self
                .steps
                .iter()
                .position(|s| s.index + 1 == n)
                .into_iter()
                .collect(),
            Err(_) => self
                .steps
                .iter()
                .enumerate()
                .filter(|(_, s)| s.op == step)
                .map(|(i, _)| i)
                .collect(),
        };
        if chosen.is_empty() {
            let labels: Vec<String> = self.steps.iter().map(StepSpec::label).collect();
            return Err(err(format!(
                "no step `{step}`; the steps are {}",
                if labels.is_empty() {
                    "none".to_string()
                } else {
                    labels.join(", ")
                }
            )));
        }
        for i in chosen {
            self.steps[i].params.insert(key.to_string(), value.clone());
        }
        self.source.push_str(&format!("\n# --set {assignment}\n"));
        Ok(())
    }
}

/// A parsed pipeline spec, with its source kept for error messages.
#[derive(Clone, Debug)]
pub struct Spec {
    pub file: String,
    pub source: String,
    pub input: InputSpec,
    pub steps: Vec<StepSpec>,
    pub output: OutputSpec,
    /// `[slurm]`: how `--executor slurm` submits the run (flags override).
    pub slurm: SlurmSpec,
}

/// `[slurm]`: sbatch settings for `sluice run --executor slurm`; each has a
/// flag of the same name (`--cpus-per-task` for `cpus_per_task`) that
/// overrides it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlurmSpec {
    pub partition: Option<String>,
    pub account: Option<String>,
    /// Time limit per array element, as sbatch takes it (`04:00:00`).
    pub time: Option<String>,
    pub cpus_per_task: Option<usize>,
    /// Memory per array element, as sbatch takes it (`16G`).
    pub mem: Option<String>,
    /// Tasks one array element runs (default 1).
    pub tasks_per_job: Option<usize>,
    /// Array elements per sbatch job at most (default and ceiling: the
    /// cluster's MaxArraySize).
    pub max_array: Option<usize>,
    /// Array elements running at once (sbatch's `%N`).
    pub max_running: Option<usize>,
    /// The job name's prefix (default `sluice`).
    pub job_name: Option<String>,
    /// More sbatch options, one per item (`["--qos=high"]`).
    #[serde(default)]
    pub sbatch_args: Vec<String>,
}

const TOP_KEYS: &[&str] = &["input", "step", "output", "slurm"];

impl Spec {
    pub fn load(path: &Path) -> Result<Spec, SpecError> {
        let source = std::fs::read_to_string(path).map_err(|e| SpecError {
            file: path.display().to_string(),
            line: None,
            message: format!("cannot read the pipeline spec: {e}"),
        })?;
        Spec::parse(&path.display().to_string(), &source)
    }

    /// A spec with defaults only: what errors about another kind of spec
    /// file (the tokenizer's) are located with.
    pub fn shell(file: &str, source: &str) -> Spec {
        Spec {
            file: file.to_string(),
            source: source.to_string(),
            input: InputSpec {
                paths: vec![],
                sources: Default::default(),
                source_column: default_source_column(),
                text_column: default_text(),
                id_column: default_id(),
                format: None,
                batch_rows: default_batch_rows(),
                max_task_bytes: default_task_bytes(),
            },
            steps: vec![],
            output: OutputSpec {
                dir: PathBuf::new(),
                rows_per_shard: default_rows_per_shard(),
                bytes_per_shard: None,
                compression: Compression::default(),
                compression_level: None,
                excluded: true,
                keep_work: false,
            },
            slurm: SlurmSpec::default(),
        }
    }

    pub fn parse(file: &str, source: &str) -> Result<Spec, SpecError> {
        let table: toml::Table = toml::from_str(source).map_err(|e| SpecError {
            file: file.to_string(),
            line: e.span().map(|s| line_of_offset(source, s.start)),
            message: format!("not valid TOML: {}", e.message()),
        })?;
        let err = |line: Option<usize>, message: String| SpecError {
            file: file.to_string(),
            line,
            message,
        };
        for key in table.keys() {
            if !TOP_KEYS.contains(&key.as_str()) {
                return Err(err(
                    top_key_line(source, key),
                    format!("unknown section `{key}`{}", suggest(key, TOP_KEYS)),
                ));
            }
        }
        let partial = Spec::shell(file, source);
        let input = table
            .get("input")
            .ok_or_else(|| err(None, "missing `[input]` with `paths = [...]`".into()))?;
        let input: InputSpec = partial.decode(Section::Input, input.clone())?;
        let output = table
            .get("output")
            .ok_or_else(|| err(None, "missing `[output]` with `dir = \"...\"`".into()))?;
        let output: OutputSpec = partial.decode(Section::Output, output.clone())?;
        let mut steps = vec![];
        match table.get("step") {
            None => {}
            Some(toml::Value::Array(items)) => {
                for (index, item) in items.iter().enumerate() {
                    let toml::Value::Table(params) = item else {
                        return Err(err(
                            None,
                            "`step` must be written as `[[step]]` tables".into(),
                        ));
                    };
                    let mut params = params.clone();
                    let op = match params.remove("op") {
                        Some(toml::Value::String(op)) => op,
                        Some(other) => {
                            return Err(err(
                                partial.key_line(Section::Step(index), "op"),
                                format!(
                                    "{}: `op` must be a string, not {}",
                                    Section::Step(index),
                                    other.type_str()
                                ),
                            ))
                        }
                        None => {
                            return Err(err(
                                partial.section_line(Section::Step(index)),
                                format!("{}: missing `op = \"...\"`", Section::Step(index)),
                            ))
                        }
                    };
                    steps.push(StepSpec { index, op, params });
                }
            }
            Some(_) => {
                return Err(err(
                    None,
                    "`step` must be written as `[[step]]` tables".into(),
                ))
            }
        }
        let slurm: SlurmSpec = match table.get("slurm") {
            Some(v) => partial.decode(Section::Table("slurm"), v.clone())?,
            None => SlurmSpec::default(),
        };
        let spec = Spec {
            input,
            output,
            steps,
            slurm,
            ..partial
        };
        spec.validate()?;
        Ok(spec)
    }

    fn validate(&self) -> Result<(), SpecError> {
        if self.input.paths.is_empty() && self.input.sources.is_empty() {
            return Err(self.error(
                Section::Input,
                Some("paths"),
                "`paths` is empty: name at least one file, folder or glob \
                 (or give input groups in [input.sources])"
                    .into(),
            ));
        }
        if let Some((name, _)) = self.input.sources.iter().find(|(_, p)| p.is_empty()) {
            return Err(self.error(
                Section::Input,
                Some("sources"),
                format!("source `{name}` names no path"),
            ));
        }
        if self.input.batch_rows == 0 {
            return Err(self.error(
                Section::Input,
                Some("batch_rows"),
                "`batch_rows` must be at least 1".into(),
            ));
        }
        if self.input.batch_rows > MAX_BATCH_ROWS {
            return Err(self.error(
                Section::Input,
                Some("batch_rows"),
                format!(
                    "`batch_rows` = {} is more than {MAX_BATCH_ROWS}: a batch is held in memory \
                     by each worker (the default 4096 suits most corpora)",
                    self.input.batch_rows
                ),
            ));
        }
        if self.input.max_task_bytes < MIN_TASK_BYTES {
            return Err(self.error(
                Section::Input,
                Some("max_task_bytes"),
                format!(
                    "`max_task_bytes` = {} is too small: give at least {MIN_TASK_BYTES} bytes \
                     (the default is \"256MiB\"; a task per line costs more than it reads)",
                    self.input.max_task_bytes
                ),
            ));
        }
        if self.output.bytes_per_shard == Some(0) {
            return Err(self.error(
                Section::Output,
                Some("bytes_per_shard"),
                "`bytes_per_shard` must be at least 1 (leave it out for no byte limit)".into(),
            ));
        }
        if self.output.compression_level.is_some()
            && !matches!(
                self.output.compression,
                Compression::Zstd | Compression::Gzip
            )
        {
            return Err(self.error(
                Section::Output,
                Some("compression_level"),
                format!(
                    "`compression_level` applies to zstd and gzip, not `{}`: remove it or \
                     change `compression`",
                    self.output.compression
                ),
            ));
        }
        if self.output.rows_per_shard == 0 {
            return Err(self.error(
                Section::Output,
                Some("rows_per_shard"),
                "`rows_per_shard` must be at least 1".into(),
            ));
        }
        if self.output.dir.as_os_str().is_empty() {
            return Err(self.error(Section::Output, Some("dir"), "`dir` is empty".into()));
        }
        self.output
            .parquet_compression()
            .map_err(|e| self.error(Section::Output, Some("compression"), e.to_string()))?;
        Ok(())
    }

    /// Deserialises a table of this spec into `T`, turning serde's complaint
    /// into one that names the file, line and key.
    pub fn decode<T: DeserializeOwned>(
        &self,
        section: Section,
        value: toml::Value,
    ) -> Result<T, SpecError> {
        serde_path_to_error::deserialize::<_, T>(value).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let msg = inner.message().to_string();
            let (key, message) = explain(&path, &msg);
            let line = key
                .as_deref()
                .and_then(|k| self.key_line(section, k))
                .or_else(|| self.section_line(section));
            SpecError {
                file: self.file.clone(),
                line,
                message: format!("{section}: {message}"),
            }
        })
    }

    /// An error about a key of a section, located in the file.
    pub fn error(&self, section: Section, key: Option<&str>, message: String) -> SpecError {
        let line = key
            .and_then(|k| self.key_line(section, k))
            .or_else(|| self.section_line(section));
        SpecError {
            file: self.file.clone(),
            line,
            message: format!("{section}: {message}"),
        }
    }

    /// The 1-based line of a section's header.
    pub fn section_line(&self, section: Section) -> Option<usize> {
        let mut steps_seen = 0usize;
        for (i, line) in self.source.lines().enumerate() {
            if let Some(name) = header(line) {
                let hit = match section {
                    Section::Input => name == "input",
                    Section::Output => name == "output",
                    Section::Table(t) => name == t,
                    Section::Step(n) => {
                        let hit = name == "step" && steps_seen == n;
                        if name == "step" {
                            steps_seen += 1;
                        }
                        hit
                    }
                };
                if hit {
                    return Some(i + 1);
                }
            }
        }
        None
    }

    /// The 1-based line where `key` is set inside a section.
    pub fn key_line(&self, section: Section, key: &str) -> Option<usize> {
        let start = self.section_line(section)?;
        for (i, line) in self.source.lines().enumerate().skip(start) {
            if header(line).is_some() {
                break;
            }
            let t = line.trim_start();
            let name = t.split('=').next().unwrap_or("").trim().trim_matches('"');
            if t.contains('=') && name == key {
                return Some(i + 1);
            }
        }
        None
    }
}

/// The table name of a `[name]` or `[[name]]` header line.
fn header(line: &str) -> Option<&str> {
    let t = line.trim();
    if !t.starts_with('[') {
        return None;
    }
    let t = t.split('#').next().unwrap_or("").trim();
    Some(t.trim_start_matches('[').trim_end_matches(']').trim())
}

/// A spec file other than a pipeline's (tokenizer, classifier): its text,
/// its top-level tables (only `sections` allowed), and a shell to locate
/// errors with. `what` names it in a read error.
pub fn read_sections(
    path: &Path,
    what: &str,
    sections: &[&str],
) -> Result<(Spec, toml::Table), SpecError> {
    let file = path.display().to_string();
    let source = std::fs::read_to_string(path).map_err(|e| SpecError {
        file: file.clone(),
        line: None,
        message: format!("cannot read the {what} spec: {e}"),
    })?;
    parse_sections(&file, &source, sections)
}

/// As `read_sections`, from the text.
pub fn parse_sections(
    file: &str,
    source: &str,
    sections: &[&str],
) -> Result<(Spec, toml::Table), SpecError> {
    let table: toml::Table = toml::from_str(source).map_err(|e| SpecError {
        file: file.to_string(),
        line: e
            .span()
            .map(|s| source[..s.start.min(source.len())].matches('\n').count() + 1),
        message: format!("not valid TOML: {}", e.message()),
    })?;
    if let Some(key) = table.keys().find(|k| !sections.contains(&k.as_str())) {
        return Err(SpecError {
            file: file.to_string(),
            line: None,
            message: format!("unknown section `{key}`{}", suggest(key, sections)),
        });
    }
    Ok((Spec::shell(file, source), table))
}

/// A required table of such a file, or an error saying what it holds.
pub fn need_section(
    file: &str,
    table: &toml::Table,
    name: &str,
    hint: &str,
) -> Result<toml::Value, SpecError> {
    table.get(name).cloned().ok_or_else(|| SpecError {
        file: file.to_string(),
        line: None,
        message: format!("missing `[{name}]` with {hint}"),
    })
}

fn top_key_line(source: &str, key: &str) -> Option<usize> {
    source
        .lines()
        .position(|l| {
            header(l) == Some(key)
                || l.trim_start().starts_with(&format!("{key} "))
                || l.trim_start().starts_with(&format!("{key}="))
        })
        .map(|i| i + 1)
}

fn line_of_offset(source: &str, offset: usize) -> usize {
    source[..offset.min(source.len())].matches('\n').count() + 1
}

/// Turns serde's message into (the key it is about, a sentence for the user).
fn explain(path: &str, msg: &str) -> (Option<String>, String) {
    if let Some((name, expected)) = quoted(msg, "unknown field `") {
        let name = name.to_string();
        let hint = suggest(&name, &expected);
        let list = if expected.is_empty() {
            "this table takes no keys".to_string()
        } else {
            format!("valid keys: {}", expected.join(", "))
        };
        return (
            Some(name.clone()),
            format!("unknown key `{name}`{hint} ({list})"),
        );
    }
    if let Some(rest) = msg.strip_prefix("missing field `") {
        let name = rest.split('`').next().unwrap_or("").to_string();
        return (Some(name.clone()), format!("missing key `{name}`"));
    }
    let key = path
        .split('.')
        .next()
        .filter(|k| !k.is_empty() && *k != "?")
        .map(str::to_string);
    // A closed choice (an enum): "unknown metric `manhattan` (cosine or l2)".
    if let (Some(k), Some((value, choices))) = (&key, quoted(msg, "unknown variant `")) {
        let hint = suggest(value, &choices);
        return (
            key.clone(),
            format!("unknown {k} `{value}`{hint} ({})", choices.join(", ")),
        );
    }
    match &key {
        Some(k) => (key.clone(), format!("key `{k}`: {msg}")),
        None => (None, msg.to_string()),
    }
}

/// serde's "unknown field `x`, expected one of `a`, `b`" (or variant): the
/// name given and the names expected, when `msg` starts with `prefix`.
pub fn quoted<'m>(msg: &'m str, prefix: &str) -> Option<(&'m str, Vec<&'m str>)> {
    let rest = msg.strip_prefix(prefix)?;
    let mut parts = rest.split('`');
    let given = parts.next().unwrap_or("");
    // What follows alternates: text between names, then a name.
    let expected = parts.skip(1).step_by(2).collect();
    Some((given, expected))
}

/// `; did you mean `x`?` when a known name is close enough.
pub fn suggest(name: &str, known: &[&str]) -> String {
    known
        .iter()
        .map(|k| (strsim::jaro_winkler(name, k), *k))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| format!("; did you mean `{k}`?"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[input]
paths = ["fixtures/quickstart"]

[[step]]
op = "length_filter"
min_words = 50

[output]
dir = "out/x"
"#;

    #[test]
    fn parses_a_spec_with_defaults() {
        let spec = Spec::parse("t.toml", GOOD).unwrap();
        assert_eq!(spec.input.text_column, "text");
        assert_eq!(spec.output.rows_per_shard, 100_000);
        assert_eq!(spec.steps.len(), 1);
        assert_eq!(spec.steps[0].op, "length_filter");
        assert_eq!(spec.steps[0].params["min_words"].as_integer(), Some(50));
    }

    #[test]
    fn unknown_key_names_line_and_near_name() {
        let src = GOOD.replace("dir = \"out/x\"", "dir = \"out/x\"\nrows_per_shrd = 5");
        let e = Spec::parse("t.toml", &src).unwrap_err();
        assert_eq!(e.line, Some(11), "{e}");
        assert!(e.message.contains("did you mean `rows_per_shard`"), "{e}");
    }

    #[test]
    fn wrong_type_names_the_key() {
        let src = GOOD.replace(
            "paths = [\"fixtures/quickstart\"]",
            "paths = [\"a\"]\nbatch_rows = \"many\"",
        );
        let e = Spec::parse("t.toml", &src).unwrap_err();
        assert_eq!(e.line, Some(4), "{e}");
        assert!(e.message.contains("batch_rows"), "{e}");
    }

    #[test]
    fn syntax_error_has_a_line() {
        let e = Spec::parse("t.toml", "[input]\npaths = [\n").unwrap_err();
        assert!(e.line.is_some(), "{e}");
    }

    #[test]
    fn step_without_op_is_located() {
        let src = GOOD.replace("op = \"length_filter\"\n", "");
        let e = Spec::parse("t.toml", &src).unwrap_err();
        assert_eq!(e.line, Some(5), "{e}");
        assert!(e.message.contains("missing `op"), "{e}");
    }
}
