//! Interpolated modified Kneser–Ney, estimated as KenLM's `lmplz` does
//! (Heafield et al. 2013, "Scalable Modified Kneser-Ney Language Model
//! Estimation"), in three streaming passes over sorted n-grams, each run
//! per partition of word ids:
//!
//! 1. **Adjusted counts** (`adjust`), over the counted n-grams of the full
//!    order in suffix order: an n-gram of the full order, or one that
//!    starts with `<s>`, keeps its count; any shorter one gets the number
//!    of distinct words seen before it. Count-of-counts per order give the
//!    discounts (`discounts`, Chen & Goodman's closed form).
//! 2. **Context pass** (`contexts`), over each order sorted by context: a
//!    context's back-off weight gamma = (D1·N1 + D2·N2 + D3+·N3+ + the
//!    pruned counts) / Σ adjusted counts, and each n-gram's discounted
//!    probability u = (a − D(a)) / Σ.
//! 3. **Interpolation** (`Interpolator`), over all orders jointly in suffix
//!    order: p(w | c) = u(c w) + gamma(c) · p(w | c minus its first word),
//!    down to the uniform distribution over the vocabulary.
//!
//! The arithmetic is lmplz's, in `f32` and in its order, so that the
//! probabilities match its own; so are its quirks where they change a
//! number (the n-grams still pending at the end of the stream are tallied
//! by their raw count, as lmplz's `AdjustCounts` does).

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

use super::count::{Outbox, Partitions, SharedSorters};
use super::ngram::{
    context_key, from_context_key, from_suffix_key, pair, record, suffix_key, unpair, Record,
    Words, BOS, EOS, MARK, UNK,
};
use crate::io::sorter::Sorted;

/// Count-of-counts of one order, as lmplz's `StatCollector` keeps them.
#[derive(Default, Clone, Copy, Debug, Serialize)]
pub struct OrderStats {
    /// How many n-grams have adjusted count 0, 1, 2, 3, 4.
    pub n: [u64; 5],
    pub count: u64,
    /// Those not pruned.
    pub kept: u64,
}

impl OrderStats {
    pub fn add(&mut self, adjusted: u64, pruned: bool) {
        self.count += 1;
        if !pruned {
            self.kept += 1;
        }
        if adjusted < 5 {
            self.n[adjusted as usize] += 1;
        }
    }

    pub fn merge(&mut self, o: &OrderStats) {
        for (a, b) in self.n.iter_mut().zip(o.n) {
            *a += b;
        }
        self.count += o.count;
        self.kept += o.kept;
    }
}

/// The discounts of adjusted counts 0, 1, 2 and 3+.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Discount {
    pub amount: [f32; 4],
}

impl Discount {
    pub fn get(&self, count: u64) -> f32 {
        self.amount[count.min(3) as usize]
    }

    pub fn apply(&self, count: u64) -> f32 {
        count as f32 - self.get(count)
    }

    /// lmplz's `--discount_fallback`: one to three values, the last repeated.
    pub fn fallback(values: &[f32]) -> Discount {
        let mut amount = [0.0; 4];
        for (i, a) in amount[1..].iter_mut().enumerate() {
            *a = values[i.min(values.len() - 1)];
        }
        Discount { amount }
    }
}

/// Chen & Goodman's equation 26 per order, in lmplz's `f32` steps; where it
/// fails (a count-of-count is zero, or a discount falls outside [0, j]),
/// the fallback, else an error saying so.
pub fn discounts(stats: &[OrderStats], fallback: Option<Discount>) -> Result<Vec<Discount>> {
    let mut out = vec![];
    for (i, s) in stats.iter().enumerate() {
        let estimate = || -> Result<Discount, String> {
            if let Some(j) = (1..4).find(|&j| s.n[j] == 0) {
                return Err(format!("no {}-gram has adjusted count {j}", i + 1));
            }
            let mut amount = [0.0f32; 4];
            let y = s.n[1] as f32 / (s.n[1] as f64 + 2.0 * s.n[2] as f64) as f32;
            for (j, a) in amount.iter_mut().enumerate().skip(1) {
                *a = j as f32 - (j + 1) as f32 * y * s.n[j + 1] as f32 / s.n[j] as f32;
                if !(0.0..=j as f32).contains(a) {
                    return Err(format!(
                        "the discount of {}-grams with adjusted count {j} comes out as {a}, outside [0, {j}]",
                        i + 1
                    ));
                }
            }
            Ok(Discount { amount })
        };
        match (estimate(), fallback) {
            (Ok(d), _) => out.push(d),
            (Err(_), Some(f)) => out.push(f),
            (Err(why), None) => anyhow::bail!(
                "cannot estimate the Kneser-Ney discounts: {why}. The text is too small or too \
                 repetitive (deduplicate it, or train on more); or set discount_fallback = \
                 [0.5, 1.0, 1.5] in [lm] to use fixed discounts where the estimate fails"
            ),
        }
    }
    Ok(out)
}

/// What the adjusted-counts pass of one partition gives.
pub struct Adjusted {
    pub stats: Vec<OrderStats>,
    /// `(id, adjusted count)` of the partition's unigrams.
    pub unigrams: Vec<(u32, u64)>,
    /// The n-grams still pending when the partition's stream ended
    /// (`(order - 1, adjusted, actual, pruned)`), not yet tallied: the last
    /// partition's are tallied by their actual count, as lmplz does at the
    /// end of its stream, the others' by their adjusted count.
    pub end: Vec<(usize, u64, u64, bool)>,
    /// Whether any n-gram ended in this partition.
    pub nonempty: bool,
}

struct Slot {
    words: Words,
    adjusted: u64,
    actual: u64,
}

struct Adjuster<'a> {
    n: usize,
    thresholds: &'a [u64],
    parts: &'a Partitions,
    /// Pending n-grams of orders 1..=valid: the suffixes of the last full
    /// n-gram, waiting for their last extension.
    pending: Vec<Slot>,
    valid: usize,
    stats: Vec<OrderStats>,
    unigrams: Vec<(u32, u64)>,
    /// Per order 2..=n: the context pass's sorters.
    outboxes: Vec<Outbox<'a>>,
}

impl Adjuster<'_> {
    fn emit(&mut self, k: usize, words: &Words, payload: u64) -> Result<()> {
        if k == 1 {
            self.unigrams.push((words[0], payload));
            return Ok(());
        }
        let p = self.parts.of(words[k - 2]);
        self.outboxes[k - 2].push(p, record(context_key(&words[..k]), payload))
    }

    /// Tallies and hands on the pending n-gram of order `idx + 1`.
    fn flush(&mut self, idx: usize) -> Result<()> {
        let s = &self.pending[idx];
        let pruned = s.actual <= self.thresholds[idx];
        let (words, adjusted) = (s.words, s.adjusted);
        self.stats[idx].add(adjusted, pruned);
        self.emit(idx + 1, &words, adjusted | if pruned { MARK } else { 0 })
    }

    fn set(&mut self, w: &Words, from: usize, adjusted: u64, actual: u64) {
        let k = self.n - from;
        let slot = &mut self.pending[k - 1];
        slot.words = [0; 6];
        slot.words[..k].copy_from_slice(&w[from..self.n]);
        slot.adjusted = adjusted;
        slot.actual = actual;
        self.valid = k;
    }

    /// One n-gram of the full order, with its count (lmplz's
    /// `AdjustCounts::Run` loop body).
    fn full(&mut self, w: &Words, count: u64) -> Result<()> {
        let n = self.n;
        // Trailing words shared with the longest pending n-gram.
        let same = if self.valid == 0 {
            0
        } else {
            let p = &self.pending[self.valid - 1].words;
            let v = self.valid;
            (0..v).take_while(|&s| p[v - 1 - s] == w[n - 1 - s]).count()
        };
        // The pending n-grams it does not extend are complete.
        while self.valid > same {
            self.flush(self.valid - 1)?;
            self.valid -= 1;
        }
        for s in &mut self.pending[..same] {
            s.actual += count;
        }
        if same > 0 {
            // A new word before the longest shared suffix.
            self.pending[same - 1].adjusted += 1;
        }
        // New suffixes, shortest first, up to an `<s>`.
        let mut b = n - 1 - same;
        while b > 0 && w[b] != BOS {
            self.set(w, b, 1, count);
            b -= 1;
        }
        if b != 0 {
            // It starts with `<s>`: its own count.
            self.set(w, b, count, count);
        } else {
            let pruned = count <= self.thresholds[n - 1];
            self.stats[n - 1].add(count, pruned);
            self.emit(n, w, count | if pruned { MARK } else { 0 })?;
        }
        Ok(())
    }
}

/// The adjusted-counts pass of one partition: its counted n-grams of the
/// full order, sorted in suffix order (equal ones adjacent, their counts
/// summed here), into the context pass's sorters (`ctx[k - 2]` for order k).
pub fn adjust(
    sorted: Sorted<4>,
    n: usize,
    thresholds: &[u64],
    parts: &Partitions,
    ctx: &[SharedSorters],
) -> Result<Adjusted> {
    let mut a = Adjuster {
        n,
        thresholds,
        parts,
        pending: (0..n - 1)
            .map(|_| Slot {
                words: [0; 6],
                adjusted: 0,
                actual: 0,
            })
            .collect(),
        valid: 0,
        stats: vec![OrderStats::default(); n],
        unigrams: vec![],
        outboxes: ctx.iter().map(Outbox::new).collect(),
    };
    let mut current: Option<Record> = None;
    let mut nonempty = false;
    for r in sorted {
        let r = r?;
        match &mut current {
            Some(c) if (c[0], c[1], c[2]) == (r[0], r[1], r[2]) => c[3] += r[3],
            _ => {
                if let Some(c) = current.replace(r) {
                    a.full(&from_suffix_key(&c, n), c[3])?;
                    nonempty = true;
                }
            }
        }
    }
    if let Some(c) = current {
        a.full(&from_suffix_key(&c, n), c[3])?;
        nonempty = true;
    }
    let mut end = vec![];
    for (idx, &threshold) in thresholds.iter().enumerate().take(a.valid) {
        let s = &a.pending[idx];
        let pruned = s.actual <= threshold;
        end.push((idx, s.adjusted, s.actual, pruned));
        let (words, adjusted) = (s.words, s.adjusted);
        a.emit(idx + 1, &words, adjusted | if pruned { MARK } else { 0 })?;
    }
    for o in &mut a.outboxes {
        o.flush()?;
    }
    Ok(Adjusted {
        stats: a.stats,
        unigrams: a.unigrams,
        end,
        nonempty,
    })
}

/// The back-off weight of one context and the denominator of its
/// n-grams' probabilities, from their counts (with the pruning mark):
/// lmplz's `AddRight`.
fn gamma(d: &Discount, counts: impl Iterator<Item = u64>) -> (f32, f32) {
    let (mut denominator, mut normalizer) = (0u64, 0u64);
    let mut by = [0u64; 4];
    for c in counts {
        let unmarked = c & !MARK;
        let cutoff = if c & MARK != 0 { 0 } else { unmarked };
        denominator += unmarked;
        // The mass of the pruned n-grams goes to the lower order.
        normalizer += unmarked - cutoff;
        if cutoff > 0 {
            by[cutoff.min(3) as usize] += 1;
        }
    }
    let denominator = denominator as f32;
    let mut g = 0.0f32;
    for (i, &c) in by.iter().enumerate().skip(1) {
        g += d.amount[i] * c as f32;
    }
    g += normalizer as f32;
    (g / denominator, denominator)
}

/// The unigrams' probabilities before interpolation, and the uniform
/// distribution they are interpolated with.
pub struct Unigrams {
    adjusted: Vec<u64>,
    discount: Discount,
    gamma: f32,
    denominator: f32,
    uniform: f32,
}

impl Unigrams {
    /// `adjusted`: every id's adjusted count (`<unk>` and `<s>` 0);
    /// `kept`: the unigrams of the model (the vocabulary with `<unk>` and
    /// `<s>`), of which all but `<s>` share the uniform mass.
    pub fn new(adjusted: Vec<u64>, discount: Discount, kept: u64) -> Unigrams {
        let (gamma, denominator) = gamma(&discount, adjusted.iter().copied());
        let uniform = (1.0 / ((kept - 1) as f32) as f64) as f32;
        Unigrams {
            adjusted,
            discount,
            gamma,
            denominator,
            uniform,
        }
    }

    /// p(w), interpolated: lmplz gives `<unk>` only the interpolation
    /// mass, and `<s>` probability 1.
    fn prob(&self, id: u32) -> f32 {
        let (u, g) = match id {
            UNK => (0.0, self.gamma),
            BOS => (1.0, 0.0),
            _ => (
                self.discount.apply(self.adjusted[id as usize]) / self.denominator,
                self.gamma,
            ),
        };
        u + g * self.uniform
    }
}

/// The context pass of one order `k` (2 or more) of one partition: its
/// n-grams sorted by context. Each unpruned n-gram goes with `(u, gamma of
/// its context)` to the interpolation's sorters, and each context's gamma
/// to `gammas` (in suffix order of the contexts, as they come).
pub fn contexts(
    sorted: Sorted<4>,
    k: usize,
    d: &Discount,
    parts: &Partitions,
    interp: &SharedSorters,
    gammas: &Path,
) -> Result<()> {
    let mut out = BufWriter::with_capacity(
        1 << 20,
        File::create(gammas).with_context(|| format!("cannot create {}", gammas.display()))?,
    );
    let mut outbox = Outbox::new(interp);
    let mut group: Vec<(Words, u64)> = vec![];
    let mut finish = |group: &mut Vec<(Words, u64)>| -> Result<()> {
        if group.is_empty() {
            return Ok(());
        }
        let (g, denominator) = gamma(d, group.iter().map(|(_, c)| *c));
        let ctx = suffix_key(&group[0].0[..k - 1]);
        for x in record(ctx, g.to_bits() as u64) {
            out.write_all(&x.to_le_bytes())?;
        }
        for (w, c) in group.drain(..) {
            if c & MARK != 0 || c == 0 {
                continue;
            }
            let u = d.apply(c) / denominator;
            outbox.push(parts.of(w[k - 1]), record(suffix_key(&w[..k]), pair(u, g)))?;
        }
        Ok(())
    };
    for r in sorted {
        let r = r?;
        let w = from_context_key(&r, k);
        if group
            .first()
            .is_some_and(|(g, _)| (0..k - 1).any(|i| g[i] != w[i]))
        {
            finish(&mut group)?;
        }
        group.push((w, r[3]));
    }
    finish(&mut group)?;
    outbox.flush()?;
    out.flush()
        .with_context(|| format!("cannot write {}", gammas.display()))?;
    Ok(())
}

/// A sorted stream with its next record in view.
struct Peek<I: Iterator<Item = Result<Record>>> {
    it: I,
    next: Option<Record>,
}

impl<I: Iterator<Item = Result<Record>>> Peek<I> {
    fn new(mut it: I) -> Result<Self> {
        let next = it.next().transpose()?;
        Ok(Peek { it, next })
    }

    fn advance(&mut self) -> Result<()> {
        self.next = self.it.next().transpose()?;
        Ok(())
    }
}

/// Reads a file of records as written by `contexts`.
pub struct RecordFile {
    reader: BufReader<File>,
    path: std::path::PathBuf,
}

impl RecordFile {
    pub fn open(path: &Path) -> Result<RecordFile> {
        Ok(RecordFile {
            reader: BufReader::with_capacity(
                1 << 18,
                File::open(path).with_context(|| format!("cannot open {}", path.display()))?,
            ),
            path: path.to_path_buf(),
        })
    }
}

impl Iterator for RecordFile {
    type Item = Result<Record>;

    fn next(&mut self) -> Option<Result<Record>> {
        let mut bytes = [0u8; 32];
        match self.reader.read_exact(&mut bytes) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return None,
            Err(e) => {
                return Some(Err(e).with_context(|| format!("cannot read {}", self.path.display())))
            }
        }
        let mut r = [0u64; 4];
        for (i, x) in r.iter_mut().enumerate() {
            *x = u64::from_le_bytes(bytes[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
        }
        Some(Ok(r))
    }
}

/// The interpolation of one partition: writes each order's ARPA lines.
pub struct Interpolator<'a, W: Write> {
    n: usize,
    unigrams: &'a Unigrams,
    words: &'a [Box<str>],
    /// Orders 2..=n: `(u, gamma)` per n-gram, in suffix order.
    grams: Vec<Peek<Sorted<4>>>,
    /// Orders 1..n: each context's gamma, in suffix order.
    gammas: Vec<Peek<RecordFile>>,
    /// Orders 1..=n: where the ARPA lines go, and how many.
    pub out: Vec<W>,
    pub lines: Vec<u64>,
    scratch: String,
}

impl<'a, W: Write> Interpolator<'a, W> {
    pub fn new(
        n: usize,
        unigrams: &'a Unigrams,
        words: &'a [Box<str>],
        grams: Vec<Sorted<4>>,
        gammas: Vec<RecordFile>,
        out: Vec<W>,
    ) -> Result<Self> {
        Ok(Interpolator {
            n,
            unigrams,
            words,
            grams: grams.into_iter().map(Peek::new).collect::<Result<_>>()?,
            gammas: gammas.into_iter().map(Peek::new).collect::<Result<_>>()?,
            out,
            lines: vec![0; n],
            scratch: String::new(),
        })
    }

    /// Every n-gram whose last word is in `ids`, in lmplz's order.
    pub fn run(&mut self, ids: std::ops::Range<u32>) -> Result<()> {
        for id in ids {
            let mut w = [0u32; 6];
            w[0] = id;
            let p = self.unigrams.prob(id);
            self.write(1, &w, p)?;
            self.descend(2, &w, p)?;
        }
        if self.grams.iter().any(|g| g.next.is_some()) {
            anyhow::bail!("an n-gram has no suffix in the model (a bug in train-lm)");
        }
        Ok(())
    }

    /// The n-grams of order `k` that extend `suffix` (of order k - 1, with
    /// probability `p_suffix`) by a word before it, and theirs in turn.
    fn descend(&mut self, k: usize, suffix: &Words, p_suffix: f32) -> Result<()> {
        if k > self.n {
            return Ok(());
        }
        loop {
            let Some(r) = self.grams[k - 2].next else {
                return Ok(());
            };
            let w = from_suffix_key(&r, k);
            if (1..k).any(|i| w[i] != suffix[i - 1]) {
                return Ok(());
            }
            self.grams[k - 2].advance()?;
            let (u, g) = unpair(r[3]);
            let p = u + g * p_suffix;
            self.write(k, &w, p)?;
            self.descend(k + 1, &w, p)?;
        }
    }

    /// The ARPA line of one n-gram: log10 p (at most 0), the words, and
    /// below the full order log10 of its gamma as a context (0 when it is
    /// none).
    fn write(&mut self, k: usize, w: &Words, p: f32) -> Result<()> {
        let logp = p.log10();
        let logp = if logp < 0.0 { logp } else { 0.0 };
        let out = &mut self.out[k - 1];
        write_float(out, logp, &mut self.scratch)?;
        out.write_all(b"\t")?;
        for (i, &id) in w[..k].iter().enumerate() {
            if i > 0 {
                out.write_all(b" ")?;
            }
            out.write_all(self.words[id as usize].as_bytes())?;
        }
        if k < self.n {
            let mut backoff = 0.0f32;
            let out = &mut self.out[k - 1];
            let last = w[k - 1];
            if last != UNK && last != EOS {
                let key = suffix_key(&w[..k]);
                let gs = &mut self.gammas[k - 1];
                // Contexts whose own n-gram was pruned have no line.
                while gs.next.is_some_and(|r| [r[0], r[1], r[2]] < key) {
                    gs.advance()?;
                }
                if let Some(r) = gs.next.filter(|r| [r[0], r[1], r[2]] == key) {
                    backoff = f32::from_bits(r[3] as u32).log10();
                    gs.advance()?;
                }
            }
            out.write_all(b"\t")?;
            write_float(out, backoff, &mut self.scratch)?;
            out.write_all(b"\n")?;
        } else {
            self.out[k - 1].write_all(b"\n")?;
        }
        self.lines[k - 1] += 1;
        Ok(())
    }
}

/// Writes `x` as KenLM writes floats (double-conversion's shortest
/// round-trip digits; exponent notation below 1e-6): Rust's shortest
/// digits, except that of two equally close candidates the even one is
/// taken, as double-conversion does (Rust takes the upper), so that the
/// ARPA file is lmplz's byte for byte.
fn write_float(out: &mut impl Write, x: f32, buf: &mut String) -> Result<()> {
    use std::fmt::Write as _;
    buf.clear();
    if x != 0.0 && x.abs() < 1e-6 {
        write!(buf, "{x:e}").expect("a String takes any write");
        let (mantissa, exp) = buf.split_once('e').expect("{:e} has an exponent");
        let exp: i32 = exp.parse().expect("{:e} writes an integer exponent");
        let digits = mantissa.split_once('.').map_or(0, |(_, f)| f.len());
        let text = if exp < -6 {
            format!("{x:.digits$e}")
        } else {
            // Shortest digits that reach 1e-6: fixed notation.
            let frac = (digits as i32 - exp).max(0) as usize;
            format!("{x:.frac$}")
        };
        // The correctly rounded form of that length is the even one of a
        // tie, and otherwise the shortest itself.
        if text.parse::<f32>() == Ok(x) {
            buf.clear();
            buf.push_str(&text);
        }
    } else {
        // Shortest digits (ryu: the same as Rust's, at a fraction of the
        // cost) in fixed notation.
        let mut r = ryu::Buffer::new();
        let shortest = r.format_finite(x);
        if shortest.contains('e') {
            fixed(shortest, buf);
        } else {
            buf.push_str(shortest.strip_suffix(".0").unwrap_or(shortest));
        }
        let frac = buf
            .bytes()
            .rposition(|b| b == b'.')
            .map_or(0, |p| buf.len() - p - 1);
        // A tie between two candidates of `frac` digits needs x to have
        // exactly frac + 1 decimal places, so x·2^(frac+1) must be an
        // integer (x is a binary fraction): rare, and checked exactly.
        let scaled = x as f64 * 2f64.powi(frac as i32 + 1);
        if scaled.fract() == 0.0 {
            let even = format!("{x:.frac$}");
            if even.parse::<f32>() == Ok(x) {
                buf.clear();
                buf.push_str(&even);
            }
        }
    }
    out.write_all(buf.as_bytes())?;
    Ok(())
}

/// Rewrites ryu's output (`1.5`, `100.0`, `1e-7`, `1.25e-5`) in fixed
/// notation without a needless `.0`: the digits and where the point goes.
fn fixed(ryu: &str, out: &mut String) {
    let (sign, body) = match ryu.strip_prefix('-') {
        Some(b) => ("-", b),
        None => ("", ryu),
    };
    let (mantissa, exp) = match body.split_once('e') {
        Some((m, e)) => (m, e.parse::<i32>().expect("ryu writes an integer exponent")),
        None => (body, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    // All the digits, and the position of the point after the first of them.
    let all = int.bytes().chain(frac.bytes());
    let lead = int
        .bytes()
        .chain(frac.bytes())
        .take_while(|&b| b == b'0')
        .count();
    let digits: Vec<u8> = all.skip(lead).collect();
    let end = digits.iter().rposition(|&b| b != b'0').map_or(0, |p| p + 1);
    let digits = &digits[..end];
    out.clear();
    if digits.is_empty() {
        out.push('0');
        return;
    }
    out.push_str(sign);
    // Digits before the point.
    let point = int.len() as i32 - lead as i32 + exp;
    if point <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-point) as usize));
        out.extend(digits.iter().map(|&b| b as char));
    } else if point as usize >= digits.len() {
        out.extend(digits.iter().map(|&b| b as char));
        out.extend(std::iter::repeat_n('0', point as usize - digits.len()));
    } else {
        let (a, b) = digits.split_at(point as usize);
        out.extend(a.iter().map(|&c| c as char));
        out.push('.');
        out.extend(b.iter().map(|&c| c as char));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ryu_output_becomes_fixed_notation() {
        let mut s = String::new();
        for (r, want) in [
            ("1.5", "1.5"),
            ("-100.0", "-100"),
            ("1e-5", "0.00001"),
            ("-1.25e-5", "-0.0000125"),
            ("0.0012", "0.0012"),
            ("1.5e3", "1500"),
            ("123.456", "123.456"),
            ("0.0", "0"),
        ] {
            fixed(r, &mut s);
            assert_eq!(s, want, "{r}");
        }
    }

    fn text(x: f32) -> String {
        let mut out = vec![];
        write_float(&mut out, x, &mut String::new()).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn floats_are_written_as_kenlm_writes_them() {
        assert_eq!(text(0.0), "0");
        assert_eq!(text(-0.5245908), "-0.5245908");
        // A tie: -1.97265625 is as close to ...562 as to ...563.
        assert_eq!(text(-1.972_656_2), "-1.9726562");
        assert_eq!(text(-12.5), "-12.5");
        assert_eq!(text(-100.0), "-100");
        assert_eq!(text(1e-6), "0.000001");
        assert_eq!(text(-1.2e-7), "-1.2e-7");
        assert_eq!(text(-9.5e-7), "-9.5e-7");
        assert_eq!(text(-3.0517578e-5), "-0.000030517578");
    }

    #[test]
    fn discounts_follow_chen_and_goodman() {
        let mut s = OrderStats {
            n: [0, 100, 40, 20, 10],
            ..Default::default()
        };
        let d = discounts(&[s], None).unwrap()[0];
        let y = 100.0f32 / 180.0;
        assert_eq!(d.amount[1], 1.0 - 2.0 * y * 40.0 / 100.0);
        assert_eq!(d.amount[3], 3.0 - 4.0 * y * 10.0 / 20.0);
        s.n[2] = 0;
        let e = discounts(&[s], None).unwrap_err().to_string();
        assert!(
            e.contains("adjusted count 2") && e.contains("discount_fallback"),
            "{e}"
        );
        let f = discounts(&[s], Some(Discount::fallback(&[0.5, 1.0]))).unwrap()[0];
        assert_eq!(f.amount, [0.0, 0.5, 1.0, 1.0]);
    }
}
