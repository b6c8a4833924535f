//! fastText supervised models (`.bin`, and quantised `.ftz` such as
//! lid.176.ftz), prediction only, in Rust.
//!
//! The definitions follow the C++ library exactly (file layout, FNV-1a with
//! signed bytes, character n-grams over UTF-8, word n-gram hashing, the
//! hierarchical-softmax tree, `log(p + 1e-5)` scores), so labels and
//! probabilities agree with fastText's own `predict`. What differs is speed: a
//! document's hidden vector is the mean of the rows of its tokens' ids, and
//! each distinct token's row sum is computed once per thread and cached, so
//! common words cost one hash lookup instead of a dictionary probe, a dozen
//! n-gram hashes and as many row decodings.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{bail, Context, Result};

const MAGIC: i32 = 793_712_314;
const EOS: &str = "</s>";
/// fastText's label marker (`__label__en`); the reader names labels without it.
pub const LABEL_PREFIX: &str = "__label__";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Loss {
    HierarchicalSoftmax,
    NegativeSampling,
    Softmax,
    OneVsAll,
}

/// Product quantiser: `nsubq` sub-vectors, 256 centroids each.
struct ProductQuantizer {
    nsubq: usize,
    dsub: usize,
    lastdsub: usize,
    centroids: Vec<f32>,
}

impl ProductQuantizer {
    fn centroid(&self, m: usize, code: u8) -> &[f32] {
        let i = code as usize;
        if m == self.nsubq - 1 {
            let start = m * 256 * self.dsub + i * self.lastdsub;
            &self.centroids[start..start + self.lastdsub]
        } else {
            let start = (m * 256 + i) * self.dsub;
            &self.centroids[start..start + self.dsub]
        }
    }
}

enum Matrix {
    Dense {
        rows: usize,
        cols: usize,
        data: Vec<f32>,
    },
    Quant {
        rows: usize,
        codes: Vec<u8>,
        pq: ProductQuantizer,
        /// Per-row norm codes and their quantiser, when norms were quantised.
        norms: Option<(Vec<u8>, ProductQuantizer)>,
    },
}

impl Matrix {
    fn rows(&self) -> usize {
        match self {
            Matrix::Dense { rows, .. } | Matrix::Quant { rows, .. } => *rows,
        }
    }

    fn quant_norm(norms: &Option<(Vec<u8>, ProductQuantizer)>, i: usize) -> f32 {
        match norms {
            Some((codes, npq)) => npq.centroid(0, codes[i])[0],
            None => 1.0,
        }
    }

    /// x += row i.
    fn add_row(&self, x: &mut [f32], i: usize) {
        match self {
            Matrix::Dense { cols, data, .. } => {
                for (a, b) in x.iter_mut().zip(&data[i * cols..(i + 1) * cols]) {
                    *a += b;
                }
            }
            Matrix::Quant {
                codes, pq, norms, ..
            } => {
                let alpha = Self::quant_norm(norms, i);
                let code = &codes[pq.nsubq * i..pq.nsubq * (i + 1)];
                for (m, &c) in code.iter().enumerate() {
                    let cent = pq.centroid(m, c);
                    for (n, v) in cent.iter().enumerate() {
                        x[m * pq.dsub + n] += alpha * v;
                    }
                }
            }
        }
    }

    /// row i · x.
    fn dot_row(&self, x: &[f32], i: usize) -> f32 {
        match self {
            Matrix::Dense { cols, data, .. } => data[i * cols..(i + 1) * cols]
                .iter()
                .zip(x)
                .map(|(a, b)| a * b)
                .sum(),
            Matrix::Quant {
                codes, pq, norms, ..
            } => {
                let alpha = Self::quant_norm(norms, i);
                let code = &codes[pq.nsubq * i..pq.nsubq * (i + 1)];
                let mut res = 0.0f32;
                for (m, &c) in code.iter().enumerate() {
                    let cent = pq.centroid(m, c);
                    for (n, v) in cent.iter().enumerate() {
                        res += x[m * pq.dsub + n] * v;
                    }
                }
                res * alpha
            }
        }
    }
}

#[derive(Clone, Copy)]
struct Node {
    left: i32,
    right: i32,
}

/// A loaded supervised fastText model.
pub struct FastTextModel {
    /// Distinguishes models in the per-thread token caches.
    uid: u64,
    dim: usize,
    word_ngrams: usize,
    minn: usize,
    maxn: usize,
    bucket: u32,
    loss: Loss,
    nwords: usize,
    /// Word → id, for the word entries of the dictionary.
    words: HashMap<Box<[u8]>, u32>,
    labels: Vec<String>,
    /// None: ids are not pruned; Some(map): only n-gram buckets in the map exist.
    prune: Option<HashMap<i32, i32>>,
    /// A model saved with an empty prune index has no n-gram rows at all.
    no_ngrams: bool,
    input: Matrix,
    output: Matrix,
    tree: Vec<Node>,
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self
            .pos
            .checked_add(n)
            .is_none_or(|end| end > self.buf.len())
        {
            bail!("the file ends early (at byte {})", self.buf.len());
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn i32(&mut self) -> Result<i32> {
        Ok(i32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn i64(&mut self) -> Result<i64> {
        Ok(i64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }
    fn f64(&mut self) -> Result<f64> {
        Ok(f64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn count(&mut self, what: &str) -> Result<usize> {
        let n = self.i64()?;
        usize::try_from(n).map_err(|_| anyhow::anyhow!("negative {what} ({n})"))
    }
    fn f32s(&mut self, n: usize) -> Result<Vec<f32>> {
        let bytes = self.take(n.checked_mul(4).context("matrix too large")?)?;
        Ok(bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect())
    }
    fn pq(&mut self) -> Result<ProductQuantizer> {
        let dim = self.i32()?;
        let nsubq = self.i32()?;
        let dsub = self.i32()?;
        let lastdsub = self.i32()?;
        if dim <= 0 || nsubq <= 0 || dsub <= 0 || lastdsub <= 0 {
            bail!("bad product quantiser ({dim}, {nsubq}, {dsub}, {lastdsub})");
        }
        Ok(ProductQuantizer {
            nsubq: nsubq as usize,
            dsub: dsub as usize,
            lastdsub: lastdsub as usize,
            centroids: self.f32s(dim as usize * 256)?,
        })
    }
    fn matrix(&mut self, quant: bool, dim: usize) -> Result<Matrix> {
        if !quant {
            let rows = self.count("rows")?;
            let cols = self.count("columns")?;
            if cols != dim {
                bail!("a matrix has {cols} columns, not the model's dimension {dim}");
            }
            let data = self.f32s(rows.checked_mul(cols).context("matrix too large")?)?;
            return Ok(Matrix::Dense { rows, cols, data });
        }
        let qnorm = self.u8()? != 0;
        let rows = self.count("rows")?;
        let cols = self.count("columns")?;
        if cols != dim {
            bail!("a matrix has {cols} columns, not the model's dimension {dim}");
        }
        let codesize = self.i32()?;
        let codes = self.take(codesize.max(0) as usize)?.to_vec();
        let pq = self.pq()?;
        let fits = pq
            .dsub
            .checked_mul(pq.nsubq - 1)
            .and_then(|d| d.checked_add(pq.lastdsub))
            == Some(dim);
        if !fits || Some(codes.len()) != rows.checked_mul(pq.nsubq) {
            bail!("the quantised matrix does not match its quantiser");
        }
        let norms = if qnorm {
            let norm_codes = self.take(rows)?.to_vec();
            Some((norm_codes, self.pq()?))
        } else {
            None
        };
        Ok(Matrix::Quant {
            rows,
            codes,
            pq,
            norms,
        })
    }
}

/// fastText's FNV-1a: bytes are sign-extended, as the C++ `int8_t` cast does.
fn fnv(bytes: &[u8]) -> u32 {
    let mut h: u32 = 2_166_136_261;
    for &b in bytes {
        h ^= b as i8 as i32 as u32;
        h = h.wrapping_mul(16_777_619);
    }
    h
}

static NEXT_UID: AtomicU64 = AtomicU64::new(1);

impl FastTextModel {
    pub fn load(path: &Path) -> Result<Self> {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        Self::parse(&bytes).with_context(|| format!("{} is not a fastText model", path.display()))
    }

    /// A model from the bytes of its file.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader { buf: bytes, pos: 0 };
        if r.i32()? != MAGIC {
            bail!("wrong magic number");
        }
        let version = r.i32()?;
        if version > 12 {
            bail!("file format version {version} is newer than 12");
        }
        let dim = r.i32()?;
        let _ws = r.i32()?;
        let _epoch = r.i32()?;
        let _min_count = r.i32()?;
        let _neg = r.i32()?;
        let word_ngrams = r.i32()?;
        let loss = match r.i32()? {
            1 => Loss::HierarchicalSoftmax,
            2 => Loss::NegativeSampling,
            3 => Loss::Softmax,
            4 => Loss::OneVsAll,
            other => bail!("unknown loss {other}"),
        };
        let model = r.i32()?;
        if model != 3 {
            bail!("an unsupervised model (word vectors), not a classifier");
        }
        let bucket = r.i32()?;
        let minn = r.i32()?;
        let mut maxn = r.i32()?;
        let _lr_update_rate = r.i32()?;
        let _t = r.f64()?;
        if version == 11 {
            maxn = 0; // old supervised models have no character n-grams
        }
        if dim <= 0 || bucket < 0 {
            bail!("bad arguments (dim {dim}, bucket {bucket})");
        }
        let size = r.i32()?;
        let nwords = r.i32()?;
        let nlabels = r.i32()?;
        let _ntokens = r.i64()?;
        let prune_size = r.i64()?;
        if size < 0 || nwords < 0 || nlabels <= 0 || nwords as i64 + nlabels as i64 != size as i64 {
            bail!("bad dictionary sizes ({size} = {nwords} words + {nlabels} labels?)");
        }
        // Sizes come from the file: no more room than its bytes can fill
        // (an entry takes at least 10 of them).
        let room = r.buf.len().saturating_sub(r.pos) / 10;
        let mut words = HashMap::with_capacity((nwords as usize).min(room));
        let mut labels = vec![];
        let mut label_counts = vec![];
        for i in 0..size {
            let end = r.buf[r.pos..]
                .iter()
                .position(|&b| b == 0)
                .context("the dictionary ends early")?;
            let word = r.take(end)?.to_vec();
            r.u8()?;
            let count = r.i64()?;
            match r.u8()? {
                0 => {
                    words.insert(word.into_boxed_slice(), i as u32);
                }
                1 => {
                    let name = String::from_utf8_lossy(&word);
                    labels.push(name.strip_prefix(LABEL_PREFIX).unwrap_or(&name).to_string());
                    label_counts.push(count);
                }
                t => bail!("unknown dictionary entry type {t}"),
            }
        }
        if labels.len() != nlabels as usize {
            bail!(
                "the dictionary holds {} labels, not {nlabels}",
                labels.len()
            );
        }
        let prune = if prune_size > 0 {
            let room = r.buf.len().saturating_sub(r.pos) / 8;
            let mut m = HashMap::with_capacity((prune_size as usize).min(room));
            for _ in 0..prune_size {
                let (a, b) = (r.i32()?, r.i32()?);
                m.insert(a, b);
            }
            Some(m)
        } else {
            None
        };
        let quant_input = r.u8()? != 0;
        let input = r.matrix(quant_input, dim as usize)?;
        let qout = r.u8()? != 0;
        let output = r.matrix(quant_input && qout, dim as usize)?;
        let no_ngrams = prune_size == 0;
        // Every row an id can reach must exist: a bad file is an error here,
        // not an out-of-bounds read later.
        let ngram_rows = match &prune {
            _ if no_ngrams || maxn <= 0 && word_ngrams <= 1 => 0,
            Some(m) => m.values().map(|v| *v as i64 + 1).max().unwrap_or(0),
            None => bucket as i64,
        };
        if m_negative(&prune) || (input.rows() as i64) < nwords as i64 + ngram_rows {
            bail!(
                "the input matrix has {} rows, fewer than its {nwords} words and {ngram_rows} n-gram buckets",
                input.rows()
            );
        }
        let tree = if loss == Loss::HierarchicalSoftmax {
            build_tree(&label_counts)
        } else {
            vec![]
        };
        let expected_out = if loss == Loss::HierarchicalSoftmax {
            labels.len() - 1
        } else {
            labels.len()
        };
        if output.rows() < expected_out {
            bail!(
                "the output matrix has {} rows for {} labels",
                output.rows(),
                labels.len()
            );
        }
        Ok(FastTextModel {
            uid: NEXT_UID.fetch_add(1, Ordering::Relaxed),
            dim: dim as usize,
            word_ngrams: word_ngrams.max(1) as usize,
            minn: minn.max(0) as usize,
            maxn: maxn.max(0) as usize,
            bucket: bucket as u32,
            loss,
            nwords: nwords as usize,
            words,
            labels,
            prune,
            no_ngrams,
            input,
            output,
            tree,
        })
    }

    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// The input row of n-gram bucket `id`, if the model has it.
    fn ngram_row(&self, id: i32) -> Option<usize> {
        if self.no_ngrams || id < 0 {
            return None;
        }
        let id = match &self.prune {
            Some(m) => *m.get(&id)?,
            None => id,
        };
        Some(self.nwords + id as usize)
    }

    /// Rows of a token: its word row and its character n-gram rows (only
    /// the n-grams for an unknown word).
    fn token_rows(&self, token: &[u8], rows: &mut Vec<usize>) {
        let wid = self.words.get(token).copied();
        if let Some(w) = wid {
            rows.push(w as usize);
        }
        // A model with no buckets has no n-gram rows (and `% bucket` would
        // divide by zero).
        if self.maxn == 0 || self.bucket == 0 || token == EOS.as_bytes() {
            return;
        }
        let mut word = Vec::with_capacity(token.len() + 2);
        word.push(b'<');
        word.extend_from_slice(token);
        word.push(b'>');
        for i in 0..word.len() {
            if word[i] & 0xC0 == 0x80 {
                continue;
            }
            let mut j = i;
            let mut n = 1;
            while j < word.len() && n <= self.maxn {
                j += 1;
                while j < word.len() && word[j] & 0xC0 == 0x80 {
                    j += 1;
                }
                if n >= self.minn && !(n == 1 && (i == 0 || j == word.len())) {
                    let h = (fnv(&word[i..j]) % self.bucket) as i32;
                    if let Some(row) = self.ngram_row(h) {
                        rows.push(row);
                    }
                }
                n += 1;
            }
        }
    }

    /// The top `k` labels with their probabilities, best first, as fastText's
    /// `predict(text, k, threshold)` gives them for one line of text.
    pub fn predict(&self, text: &str, k: usize, threshold: f32) -> Vec<(String, f32)> {
        let mut hidden = vec![0f32; self.dim];
        let mut count = 0usize;
        let mut hashes: Vec<u32> = vec![];
        // fastText's tokens: runs of bytes between ASCII whitespace and NUL;
        // the end of the line is the token </s>.
        let tokens = text
            .as_bytes()
            .split(|b| matches!(b, b' ' | b'\n' | b'\r' | b'\t' | 0x0b | 0x0c | 0))
            .filter(|t| !t.is_empty())
            .chain(std::iter::once(EOS.as_bytes()));
        CACHE.with(|c| {
            let mut all = c.borrow_mut();
            let caches = all.entry(self.uid).or_insert_with(TokenCache::default);
            let mut rows = vec![];
            for token in tokens {
                if token.starts_with(LABEL_PREFIX.as_bytes()) && !self.words.contains_key(token) {
                    continue; // a label, not a word
                }
                if self.word_ngrams > 1 {
                    hashes.push(fnv(token)); // only word n-grams need them
                }
                let slot = match caches.index.get(token) {
                    Some(&slot) => slot,
                    None => {
                        rows.clear();
                        self.token_rows(token, &mut rows);
                        let mut sum = vec![0f32; self.dim];
                        for &r in &rows {
                            self.input.add_row(&mut sum, r);
                        }
                        caches.insert(token, &sum, rows.len() as u32, self.dim)
                    }
                };
                let (sum, n) = caches.get(slot, self.dim);
                for (h, s) in hidden.iter_mut().zip(sum) {
                    *h += s;
                }
                count += n as usize;
            }
        });
        // Word n-grams (wordNgrams > 1) depend on neighbours: not cached.
        if self.bucket == 0 {
            hashes.clear(); // no buckets, no n-gram rows
        }
        for i in 0..hashes.len() {
            let mut h = hashes[i] as i32 as i64 as u64;
            for &next in hashes.iter().take(i + self.word_ngrams).skip(i + 1) {
                h = h
                    .wrapping_mul(116_049_371)
                    .wrapping_add(next as i32 as i64 as u64);
                if let Some(row) = self.ngram_row((h % self.bucket as u64) as i32) {
                    self.input.add_row(&mut hidden, row);
                    count += 1;
                }
            }
        }
        if count == 0 {
            return vec![];
        }
        let inv = 1.0 / count as f32;
        for h in &mut hidden {
            *h *= inv;
        }
        let k = k.min(self.labels.len()).max(1);
        let mut best: Vec<(f32, usize)> = vec![];
        match self.loss {
            Loss::HierarchicalSoftmax => {
                let root = 2 * self.labels.len() - 2;
                self.dfs(k, threshold, root, 0.0, &mut best, &hidden);
            }
            _ => {
                let scores = self.output_scores(&hidden);
                for (i, p) in scores.into_iter().enumerate() {
                    if p < threshold {
                        continue;
                    }
                    push_best(&mut best, k, (std_log(p), i));
                }
            }
        }
        best.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        best.into_iter()
            .map(|(s, i)| (self.labels[i].clone(), s.exp()))
            .collect()
    }

    fn output_scores(&self, hidden: &[f32]) -> Vec<f32> {
        let n = self.labels.len();
        let mut out: Vec<f32> = (0..n).map(|i| self.output.dot_row(hidden, i)).collect();
        match self.loss {
            Loss::Softmax => {
                let max = out.iter().copied().fold(out[0], f32::max);
                let mut z = 0.0;
                for o in &mut out {
                    *o = (*o - max).exp();
                    z += *o;
                }
                for o in &mut out {
                    *o /= z;
                }
            }
            _ => {
                for o in &mut out {
                    *o = sigmoid_table(*o);
                }
            }
        }
        out
    }

    fn dfs(
        &self,
        k: usize,
        threshold: f32,
        node: usize,
        score: f32,
        best: &mut Vec<(f32, usize)>,
        hidden: &[f32],
    ) {
        if score < std_log(threshold) {
            return;
        }
        if best.len() == k && score < worst(best) {
            return;
        }
        let n = self.tree[node];
        if n.left == -1 && n.right == -1 {
            push_best(best, k, (score, node));
            return;
        }
        let f = self.output.dot_row(hidden, node - self.labels.len());
        let f = 1.0 / (1.0 + (-f).exp());
        self.dfs(
            k,
            threshold,
            n.left as usize,
            score + std_log(1.0 - f),
            best,
            hidden,
        );
        self.dfs(
            k,
            threshold,
            n.right as usize,
            score + std_log(f),
            best,
            hidden,
        );
    }
}

fn m_negative(prune: &Option<HashMap<i32, i32>>) -> bool {
    prune.as_ref().is_some_and(|m| m.values().any(|v| *v < 0))
}

fn std_log(x: f32) -> f32 {
    (x + 1e-5).ln()
}

/// fastText's tabulated sigmoid (512 steps over [-8, 8]).
fn sigmoid_table(x: f32) -> f32 {
    if x < -8.0 {
        0.0
    } else if x > 8.0 {
        1.0
    } else {
        let i = ((x + 8.0) * 512.0 / 8.0 / 2.0) as i64;
        let t = (i as f32 * 2.0 * 8.0) / 512.0 - 8.0;
        1.0 / (1.0 + (-t).exp())
    }
}

fn worst(best: &[(f32, usize)]) -> f32 {
    best.iter().map(|b| b.0).fold(f32::INFINITY, f32::min)
}

/// Keeps the `k` best; a newcomer equal to the worst does not displace it.
fn push_best(best: &mut Vec<(f32, usize)>, k: usize, item: (f32, usize)) {
    if best.len() < k {
        best.push(item);
        return;
    }
    let (wi, w) = best
        .iter()
        .enumerate()
        .min_by(|a, b| a.1 .0.total_cmp(&b.1 .0))
        .map(|(i, b)| (i, b.0))
        .expect("k >= 1");
    if item.0 > w {
        best[wi] = item;
    }
}

/// The Huffman tree over label counts, built as fastText builds it (labels
/// are stored by decreasing count).
fn build_tree(counts: &[i64]) -> Vec<Node> {
    let osz = counts.len();
    let mut tree = vec![
        Node {
            left: -1,
            right: -1
        };
        2 * osz - 1
    ];
    const UNBUILT: i64 = 1_000_000_000_000_000;
    let mut count: Vec<i64> = vec![UNBUILT; 2 * osz - 1];
    // A count from the file at or past the mark of an unbuilt node would
    // make the walk below pick one; real counts are far below it.
    for (c, &n) in count.iter_mut().zip(counts) {
        *c = n.min(UNBUILT - 1);
    }
    let mut leaf = osz as i64 - 1;
    let mut node = osz;
    for i in osz..2 * osz - 1 {
        let mut mini = [0usize; 2];
        for m in &mut mini {
            if leaf >= 0 && count[leaf as usize] < count[node] {
                *m = leaf as usize;
                leaf -= 1;
            } else {
                *m = node;
                node += 1;
            }
        }
        tree[i] = Node {
            left: mini[0] as i32,
            right: mini[1] as i32,
        };
        count[i] = count[mini[0]].saturating_add(count[mini[1]]);
    }
    tree
}

/// Per thread and model: each distinct token's row sum and row count.
#[derive(Default)]
struct TokenCache {
    index: HashMap<Box<[u8]>, u32>,
    sums: Vec<f32>,
    counts: Vec<u32>,
}

/// Past this many distinct tokens the cache starts over (about 70 MB at
/// dimension 16 would take 1M; this keeps it near 20 MB).
const CACHE_TOKENS: usize = 250_000;

impl TokenCache {
    fn clear(&mut self) {
        self.index.clear();
        self.sums.clear();
        self.counts.clear();
    }
    fn insert(&mut self, token: &[u8], sum: &[f32], n: u32, dim: usize) -> u32 {
        if self.counts.len() >= CACHE_TOKENS {
            self.clear();
        }
        let slot = self.counts.len() as u32;
        self.sums.extend_from_slice(&sum[..dim]);
        self.counts.push(n);
        self.index.insert(token.into(), slot);
        slot
    }
    fn get(&self, slot: u32, dim: usize) -> (&[f32], u32) {
        let s = slot as usize;
        (&self.sums[s * dim..(s + 1) * dim], self.counts[s])
    }
}

thread_local! {
    static CACHE: RefCell<HashMap<u64, TokenCache>> = RefCell::new(HashMap::new());
}

/// Loads a fastText model, with a message naming the file when it is not one.
pub fn load_fasttext(path: &Path) -> std::result::Result<FastTextModel, String> {
    let meta = std::fs::metadata(path)
        .map_err(|e| format!("cannot read the model {}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("the model {} is not a file", path.display()));
    }
    FastTextModel::load(path).map_err(|e| format!("{e:#} (expected a .bin or .ftz classifier)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_sign_extends_bytes_as_fasttext_does() {
        // Reference values from the C++ hash (int8_t cast) for ASCII and UTF-8.
        assert_eq!(fnv(b""), 2_166_136_261);
        assert_eq!(fnv(b"a"), 0xe40c292c);
        // A byte >= 0x80 is xored as 0xffffff.., not 0x000000..
        let mut h: u32 = 2_166_136_261;
        h ^= 0xffff_ffc3;
        h = h.wrapping_mul(16_777_619);
        assert_eq!(fnv(&[0xc3]), h);
    }

    #[test]
    fn huffman_tree_has_one_root_over_all_labels() {
        let tree = build_tree(&[50, 30, 10, 5]);
        assert_eq!(tree.len(), 7);
        let mut seen = vec![false; 7];
        fn walk(t: &[Node], n: usize, seen: &mut [bool]) {
            seen[n] = true;
            if t[n].left >= 0 {
                walk(t, t[n].left as usize, seen);
                walk(t, t[n].right as usize, seen);
            }
        }
        walk(&tree, 6, &mut seen);
        assert!(seen.iter().all(|s| *s));
    }
}
