//! The benchmarks' n-grams: how a text becomes tokens (normalised words;
//! CJK characters one by one), how n of them become one 64-bit hash, and the
//! set of every benchmark row's n-gram hashes with the rows they come from.
//!
//! A hash set rather than a Bloom filter: the rows are needed for the
//! report, and the benchmarks users decontaminate against are small (all
//! of MMLU is about 1.5 million 13-grams, some 40 MB here). A lookup of an
//! n-gram that is in no benchmark hits by accident with odds (grams in the
//! index) / 2⁶⁴: 10⁻¹³ per lookup for a million grams.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use hashbrown::HashMap;
use serde_json::Value;
use unicode_normalization::char::{decompose_canonical, is_combining_mark};
use xxhash_rust::xxh3::xxh3_64;

/// One benchmark as the index knows it.
#[derive(Clone, Debug)]
pub struct Benchmark {
    pub name: String,
    pub files: Vec<PathBuf>,
    pub rows: u64,
    /// Rows with fewer than n tokens: they can match nothing.
    pub too_short: u64,
}

/// A benchmark row: its benchmark (index) and id.
#[derive(Clone, Debug)]
pub struct Row {
    pub benchmark: u16,
    pub id: String,
}

pub struct Index {
    pub window: Window,
    pub benchmarks: Vec<Benchmark>,
    pub rows: Vec<Row>,
    /// n-gram hash → the first row that has it.
    grams: HashMap<u64, u32>,
    /// n-grams of more than one row → every row after the first.
    shared: HashMap<u64, Vec<u32>>,
}

/// How to read benchmark rows.
pub struct Source<'a> {
    pub name: &'a str,
    pub pattern: &'a str,
}

/// CJK ideographs and kana: text without spaces between words, taken a
/// character at a time.
pub fn is_cjk(c: char) -> bool {
    // Less U+30A0 and U+30FB (`゠`, `・`), punctuation among the kana.
    matches!(c as u32,
        0x3040..=0x309F | 0x30A1..=0x30FA | 0x30FC..=0x30FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF
            | 0xF900..=0xFAFF | 0x20000..=0x3FFFF)
}

/// Calls `f(start, end, hash, cjk)` for every token of `text`, in order: a
/// token is a run of letters and digits, lowercased, accents removed,
/// full-width forms made ASCII; or a single CJK character (`cjk`).
/// Everything else (punctuation, symbols, whitespace) only separates
/// tokens.
pub fn tokens(text: &str, mut f: impl FnMut(usize, usize, u64, bool)) {
    let mut word = String::new();
    let mut start = 0;
    let mut end = 0;
    fn flush(
        f: &mut impl FnMut(usize, usize, u64, bool),
        word: &mut String,
        start: usize,
        end: usize,
    ) {
        if !word.is_empty() {
            f(start, end, xxh3_64(word.as_bytes()), false);
            word.clear();
        }
    }
    for (i, c) in text.char_indices() {
        let len = c.len_utf8();
        if c.is_ascii() {
            if c.is_ascii_alphanumeric() {
                if word.is_empty() {
                    start = i;
                }
                word.push(c.to_ascii_lowercase());
                end = i + len;
            } else {
                flush(&mut f, &mut word, start, end);
            }
            continue;
        }
        // Full-width ASCII (Ａ１) is the ASCII character.
        let c = match c as u32 {
            0xFF10..=0xFF19 | 0xFF21..=0xFF3A | 0xFF41..=0xFF5A => {
                char::from_u32(c as u32 - 0xFEE0).unwrap_or(c)
            }
            _ => c,
        };
        if is_cjk(c) {
            flush(&mut f, &mut word, start, end);
            let mut one = [0u8; 4];
            f(
                i,
                i + len,
                xxh3_64(c.encode_utf8(&mut one).as_bytes()),
                true,
            );
        } else if c.is_alphanumeric() {
            if word.is_empty() {
                start = i;
            }
            decompose_canonical(c, |d| {
                if !is_combining_mark(d) {
                    word.extend(d.to_lowercase());
                }
            });
            end = i + len;
        } else if is_combining_mark(c) && !word.is_empty() {
            // A decomposed accent: part of the word, dropped.
            end = i + len;
        } else {
            flush(&mut f, &mut word, start, end);
        }
    }
    flush(&mut f, &mut word, start, end);
}

/// How long an n-gram is: `words` words, or `cjk` CJK characters, and
/// in mixed text the same share of each (a word counts `1/words` of a
/// gram, a CJK character `1/cjk`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub words: usize,
    pub cjk: usize,
}

const P: u64 = 0x9E37_79B9_7F4A_7C15;

/// P⁻¹ mod 2⁶⁴ (P is odd): a token leaving the window is taken out of
/// the rolling hash whatever the window's length.
const P_INV: u64 = {
    // Newton's iteration doubles the correct low bits each step.
    let mut x = P;
    let mut k = 0;
    while k < 6 {
        x = x.wrapping_mul(2u64.wrapping_sub(P.wrapping_mul(x)));
        k += 1;
    }
    x
};

/// The final mix of a window's polynomial hash (splitmix64's).
fn mix(mut h: u64) -> u64 {
    h = (h ^ (h >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    h ^ (h >> 31)
}

/// Calls `f(start, end, hash)` for each n-gram of `text`'s tokens: for
/// each token, the shortest run of tokens ending with it that makes a
/// whole window (see [`Window`]); bytes `start..end` of the text hold it.
/// The same tokens give the same windows wherever they stand, so a
/// benchmark row and a document that share its text share its n-grams.
/// A rolling polynomial hash: each n-gram costs the same whatever n.
pub fn ngrams(text: &str, w: Window, mut f: impl FnMut(usize, usize, u64)) {
    // In units of 1/(words × cjk) of a window.
    let (word_weight, cjk_weight) = (w.cjk as u64, w.words as u64);
    let need = (w.words * w.cjk) as u64;
    let mut window: std::collections::VecDeque<(usize, u64, u64)> = Default::default();
    let mut total = 0u64;
    let mut h = 0u64;
    // P to the power of the window's length in tokens.
    let mut p_len = 1u64;
    tokens(text, |s, e, t, cjk| {
        let weight = if cjk { cjk_weight } else { word_weight };
        window.push_back((s, t, weight));
        total += weight;
        h = h.wrapping_mul(P).wrapping_add(t);
        p_len = p_len.wrapping_mul(P);
        while let Some(&(_, t0, w0)) = window.front() {
            if total - w0 < need {
                break;
            }
            window.pop_front();
            total -= w0;
            p_len = p_len.wrapping_mul(P_INV);
            h = h.wrapping_sub(t0.wrapping_mul(p_len));
        }
        if total >= need {
            f(window[0].0, e, mix(h));
        }
    });
}

impl Index {
    /// Reads every benchmark's rows and indexes their n-grams. `fields`:
    /// the row's fields that are its text (empty: every string field but
    /// `id_field`), joined in that order, so that n-grams spanning a
    /// question and its answer count.
    pub fn build(
        sources: &[Source<'_>],
        fields: &[String],
        id_field: &str,
        window: Window,
    ) -> Result<Index> {
        let mut index = Index {
            window,
            benchmarks: vec![],
            rows: vec![],
            grams: HashMap::new(),
            shared: HashMap::new(),
        };
        for (b, source) in sources.iter().enumerate() {
            let files = benchmark_files(source.pattern)
                .with_context(|| format!("benchmark `{}`", source.name))?;
            let mut bench = Benchmark {
                name: source.name.to_string(),
                files: files.clone(),
                rows: 0,
                too_short: 0,
            };
            for file in &files {
                let name = file
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_default();
                for_each_row(file, |k, row| {
                    let text = row_text(row, fields, id_field);
                    let id = match row.get(id_field) {
                        Some(Value::String(s)) => s.clone(),
                        Some(v @ Value::Number(_)) => v.to_string(),
                        _ => format!("{name}:{k}"),
                    };
                    bench.rows += 1;
                    let r = index.rows.len() as u32;
                    let mut any = false;
                    ngrams(&text, window, |_, _, h| {
                        any = true;
                        match index.grams.entry(h) {
                            hashbrown::hash_map::Entry::Vacant(v) => {
                                v.insert(r);
                            }
                            hashbrown::hash_map::Entry::Occupied(o) => {
                                if *o.get() != r {
                                    let more = index.shared.entry(h).or_default();
                                    if more.last() != Some(&r) {
                                        more.push(r);
                                    }
                                }
                            }
                        }
                    });
                    if !any {
                        bench.too_short += 1;
                    }
                    index.rows.push(Row {
                        benchmark: b as u16,
                        id,
                    });
                    Ok(())
                })?;
            }
            index.benchmarks.push(bench);
        }
        Ok(index)
    }

    pub fn grams(&self) -> usize {
        self.grams.len()
    }

    /// The rows an n-gram comes from (none if it is in no benchmark).
    pub fn rows_of(&self, h: u64) -> impl Iterator<Item = u32> + '_ {
        let first = self.grams.get(&h).copied();
        let more = first
            .and_then(|_| self.shared.get(&h))
            .map(|v| v.as_slice())
            .unwrap_or(&[]);
        first.into_iter().chain(more.iter().copied())
    }

    /// The first row of an n-gram in the index.
    pub fn first_row(&self, h: u64) -> Option<u32> {
        self.grams.get(&h).copied()
    }

    /// Bytes the index holds: its tables as allocated, and the rows.
    pub fn bytes(&self) -> usize {
        self.grams.allocation_size()
            + self.shared.allocation_size()
            + self
                .shared
                .values()
                .map(|v| v.capacity() * 4)
                .sum::<usize>()
            + self.rows.iter().map(|r| r.id.len() + 32).sum::<usize>()
    }
}

/// The text of a benchmark row: the named fields (strings, or lists of
/// strings such as MMLU's `choices`) in that order, or every string field
/// but the id, in the order of their names.
fn row_text(row: &serde_json::Map<String, Value>, fields: &[String], id_field: &str) -> String {
    let mut text = String::new();
    let mut add = |v: &Value| match v {
        Value::String(s) => {
            text.push_str(s);
            text.push('\n');
        }
        Value::Array(items) => {
            for item in items {
                if let Value::String(s) = item {
                    text.push_str(s);
                    text.push('\n');
                }
            }
        }
        _ => {}
    };
    if fields.is_empty() {
        for (k, v) in row {
            if k != id_field {
                add(v);
            }
        }
    } else {
        for f in fields {
            if let Some(v) = row.get(f) {
                add(v);
            }
        }
    }
    text
}

/// The files of a benchmark: a path or a glob, sorted; an error when none.
pub fn benchmark_files(pattern: &str) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = glob::glob(pattern)
        .with_context(|| format!("`{pattern}` is not a valid path or glob"))?
        .filter_map(|p| p.ok())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    if files.is_empty() {
        bail!("no file matches `{pattern}`");
    }
    for f in &files {
        let name = f.to_string_lossy();
        let base = name.trim_end_matches(".gz").trim_end_matches(".zst");
        if !(base.ends_with(".jsonl") || base.ends_with(".json") || base.ends_with(".parquet")) {
            bail!(
                "{}: a benchmark file must be .jsonl, .json (rows, or an array of rows) or \
                 .parquet (.gz/.zst for the JSON forms)",
                f.display()
            );
        }
    }
    Ok(files)
}

/// Calls `f(row number, row)` for each row of a benchmark file.
fn for_each_row(
    path: &Path,
    mut f: impl FnMut(u64, &serde_json::Map<String, Value>) -> Result<()>,
) -> Result<()> {
    let name = path.to_string_lossy();
    if name.ends_with(".parquet") {
        return parquet_rows(path, f);
    }
    let file = std::fs::File::open(path).with_context(|| format!("cannot open {name}"))?;
    let reader: Box<dyn Read> = if name.ends_with(".gz") {
        Box::new(flate2::read::MultiGzDecoder::new(file))
    } else if name.ends_with(".zst") {
        Box::new(
            zstd::stream::read::Decoder::new(file).with_context(|| format!("{name}: not zstd"))?,
        )
    } else {
        Box::new(file)
    };
    let mut reader = BufReader::new(reader);
    // A JSON array of rows, or one row per line.
    let mut first = [0u8; 1];
    let head = loop {
        let buf = reader
            .fill_buf()
            .with_context(|| format!("cannot read {name}"))?;
        match buf.iter().position(|c| !c.is_ascii_whitespace()) {
            Some(i) => {
                first[0] = buf[i];
                break Some(first[0]);
            }
            None if buf.is_empty() => break None,
            None => {
                let n = buf.len();
                reader.consume(n);
            }
        }
    };
    if head == Some(b'[') {
        let rows: Vec<Value> = serde_json::from_reader(reader)
            .with_context(|| format!("{name}: not a JSON array of rows"))?;
        for (k, row) in rows.iter().enumerate() {
            match row {
                Value::Object(m) => f(k as u64, m)?,
                _ => bail!("{name}: row {k} is not a JSON object"),
            }
        }
        return Ok(());
    }
    let mut line = String::new();
    let mut k = 0u64;
    let mut line_no = 0u64;
    loop {
        line.clear();
        if reader
            .read_line(&mut line)
            .with_context(|| format!("cannot read {name} (line {})", line_no + 1))?
            == 0
        {
            break;
        }
        line_no += 1;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(&line) {
            Ok(Value::Object(m)) => f(k, &m)?,
            Ok(_) => bail!("{name}: line {line_no} is not a JSON object"),
            Err(e) => bail!("{name}: line {line_no} is not JSON: {e}"),
        }
        k += 1;
    }
    Ok(())
}

/// Parquet rows as JSON objects (arrow-json's writer): every type the
/// columns may have is read the one way.
fn parquet_rows(
    path: &Path,
    mut f: impl FnMut(u64, &serde_json::Map<String, Value>) -> Result<()>,
) -> Result<()> {
    let name = path.display();
    let file = std::fs::File::open(path).with_context(|| format!("cannot open {name}"))?;
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .with_context(|| format!("{name}: not a Parquet file"))?
        .build()
        .with_context(|| format!("{name}: cannot read"))?;
    let mut k = 0u64;
    for batch in reader {
        let batch = batch.with_context(|| format!("{name}: cannot read"))?;
        let mut buf = Vec::new();
        {
            let mut w = arrow_json::LineDelimitedWriter::new(&mut buf);
            w.write(&batch)
                .with_context(|| format!("{name}: a column arrow-json cannot write"))?;
            w.finish()?;
        }
        for line in buf.split(|&c| c == b'\n').filter(|l| !l.is_empty()) {
            match serde_json::from_slice::<Value>(line)? {
                Value::Object(m) => f(k, &m)?,
                _ => bail!("bug: arrow-json wrote a row that is not an object"),
            }
            k += 1;
        }
    }
    Ok(())
}
