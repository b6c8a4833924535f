//! ARPA files into KenLM's probing tables, as `lm/search_hashed.cc` loads
//! them: ids in file order (`<unk>` 0), n-grams (n ≥ 2) flagged as ending
//! no longer n-gram until one is read that extends them to the left,
//! contexts flagged as extended to the right, and the suffixes an
//! SRILM-style pruned file lacks inserted as "blanks" carrying the backoff
//! estimate. Files written by lmplz need no blanks.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};

use super::table::{EntryKind, TableBuilder};
use super::{
    buckets, combine, murmur_hash_64a, Model, MAX_ORDER, PROBING_MULTIPLIER,
    UNKNOWN_MISSING_LOGPROB,
};

struct Lines<R> {
    inner: R,
    line: String,
    number: u64,
}

impl<R: BufRead> Lines<R> {
    /// The next line without its `\n` or `\r\n`; None at the end.
    fn next(&mut self) -> Result<Option<&str>> {
        self.line.clear();
        let n = self
            .inner
            .read_line(&mut self.line)
            .with_context(|| format!("line {}: not UTF-8 or unreadable", self.number + 1))?;
        if n == 0 {
            return Ok(None);
        }
        self.number += 1;
        let l = self.line.strip_suffix('\n').unwrap_or(&self.line);
        Ok(Some(l.strip_suffix('\r').unwrap_or(l)))
    }

    fn next_nonblank(&mut self, what: &str) -> Result<String> {
        loop {
            match self.next()? {
                None => bail!("the file ends before {what}"),
                Some(l) if l.trim().is_empty() => continue,
                Some(l) => return Ok(l.to_string()),
            }
        }
    }
}

/// Where an n-gram's value lives while loading.
#[derive(Clone, Copy)]
enum Slot {
    Unigram(u32),
    /// Middle order index (n - 2) and the entry's offset.
    Middle(usize, usize),
}

struct Builder {
    unigrams: TableBuilder,
    middle: Vec<TableBuilder>,
}

impl Builder {
    fn prob_at(&self, s: Slot) -> (&TableBuilder, usize) {
        match s {
            Slot::Unigram(id) => (&self.unigrams, id as usize * 8),
            Slot::Middle(i, at) => (&self.middle[i], at + 8),
        }
    }
    fn table_mut(&mut self, s: Slot) -> (&mut TableBuilder, usize) {
        match s {
            Slot::Unigram(id) => (&mut self.unigrams, id as usize * 8),
            Slot::Middle(i, at) => (&mut self.middle[i], at + 8),
        }
    }
    fn prob(&self, s: Slot) -> f32 {
        let (t, at) = self.prob_at(s);
        t.f32_at(at)
    }
    fn backoff(&self, s: Slot) -> f32 {
        let (t, at) = self.prob_at(s);
        t.f32_at(at + 4)
    }
    fn set_prob(&mut self, s: Slot, v: f32) {
        let (t, at) = self.table_mut(s);
        t.put_f32(at, v);
    }
    /// `UnsetSign`: some longer n-gram ends with this one.
    fn mark_extends_left(&mut self, s: Slot) {
        let p = self.prob(s);
        self.set_prob(s, p.abs());
    }
    /// `SetExtension`: a zero backoff becomes +0.0 (some longer n-gram
    /// starts with this one).
    fn set_extension(&mut self, s: Slot) {
        if self.backoff(s) == 0.0 {
            let (t, at) = self.table_mut(s);
            t.put_f32(at + 4, 0.0);
        }
    }
    fn middle_slot(&self, i: usize, key: u64) -> Option<Slot> {
        self.middle[i].find(key).map(|at| Slot::Middle(i, at))
    }
}

pub fn load(path: &Path) -> Result<Model> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut head = [0u8; 2];
    let gz = {
        let mut f = &file;
        f.read_exact(&mut head).is_ok() && head == [0x1f, 0x8b]
    };
    let file = std::fs::File::open(path)?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    // Every entry takes at least 4 bytes of text ("p\tw\n"); gzip shrinks
    // ARPA text about fourfold (64-fold is allowed). A header claiming more
    // n-grams than the file can hold would size tables past any memory.
    let most = if gz {
        size.saturating_mul(64)
    } else {
        size / 4
    };
    let reader: Box<dyn BufRead> = if gz {
        Box::new(BufReader::with_capacity(
            1 << 20,
            flate2::read::MultiGzDecoder::new(file),
        ))
    } else {
        Box::new(BufReader::with_capacity(1 << 20, file))
    };
    let mut lines = Lines {
        inner: reader,
        line: String::new(),
        number: 0,
    };
    read(&mut lines, most).map_err(|e| anyhow!("{}: line {}: {e:#}", path.display(), lines.number))
}

fn parse_f32(s: &str, what: &str) -> Result<f32> {
    s.trim_start()
        .parse::<f32>()
        .map_err(|_| anyhow!("bad {what} `{s}`"))
}

fn read<R: BufRead>(lines: &mut Lines<R>, most_entries: u64) -> Result<Model> {
    // The header: `\data\` after blank or `#` lines, then `ngram N=count`.
    loop {
        match lines.next()? {
            None => bail!("no `\\data\\` header: not an ARPA file"),
            Some(l) if l.trim().is_empty() || l.starts_with('#') => continue,
            Some("\\data\\") => break,
            Some(l) => bail!("expected `\\data\\`, found `{}`: not an ARPA file", clip(l)),
        }
    }
    let mut counts: Vec<u64> = vec![];
    loop {
        let Some(l) = lines.next()? else {
            bail!("the file ends in its header")
        };
        if l.trim().is_empty() {
            break;
        }
        let (n, c) = l
            .strip_prefix("ngram ")
            .and_then(|r| r.split_once('='))
            .ok_or_else(|| anyhow!("expected `ngram N=count`, found `{}`", clip(l)))?;
        let n: usize = n
            .trim()
            .parse()
            .map_err(|_| anyhow!("bad order in `{l}`"))?;
        if n != counts.len() + 1 {
            bail!(
                "n-gram orders must count up from 1; found order {n} after {}",
                counts.len()
            );
        }
        counts.push(
            c.trim()
                .parse()
                .map_err(|_| anyhow!("bad count in `{l}`"))?,
        );
    }
    let order = counts.len();
    let total = counts.iter().fold(0u64, |a, &c| a.saturating_add(c));
    if total > most_entries {
        bail!("the header counts {total} n-grams, more than the file can hold");
    }
    if order < 2 {
        bail!("a model of order {order}: KenLM's scoring needs at least bigrams");
    }
    if order > MAX_ORDER {
        bail!("order {order} is above {MAX_ORDER}, the most KenLM (and sluice) score with");
    }
    if counts[0] == 0 || counts[0] >= u32::MAX as u64 {
        bail!("{} unigrams", counts[0]);
    }

    // Unigrams: ids in file order, <unk> (or <UNK>) is 0.
    expect_section(lines, 1)?;
    let mut vocab = TableBuilder::new(buckets(counts[0], PROBING_MULTIPLIER), EntryKind::Vocab);
    let mut b = Builder {
        unigrams: TableBuilder::new(counts[0] + 1, EntryKind::Unigram { rest: false }),
        middle: (2..order)
            .map(|n| {
                TableBuilder::new(
                    buckets(counts[n - 1], PROBING_MULTIPLIER),
                    EntryKind::Middle { rest: false },
                )
            })
            .collect(),
    };
    let unk_hashes = [murmur_hash_64a(b"<unk>", 0), murmur_hash_64a(b"<UNK>", 0)];
    let mut next_id = 1u32;
    let mut saw_unk = false;
    for k in 0..counts[0] {
        let l = lines
            .next()?
            .ok_or_else(|| anyhow!("the file ends inside the 1-grams"))?;
        short_section(l, 1, k, counts[0])?;
        let (prob, words, backoff) = entry(l, 1, false)?;
        let h = murmur_hash_64a(words[0].as_bytes(), 0);
        let id = if unk_hashes.contains(&h) {
            saw_unk = true;
            0
        } else {
            let (at, new) = vocab.entry(h).map_err(|e| anyhow!(e))?;
            if !new {
                bail!("the unigram `{}` appears twice", words[0]);
            }
            vocab.put_u32(at + 8, next_id);
            next_id += 1;
            next_id - 1
        };
        b.unigrams.put_f32(id as usize * 8, prob);
        b.unigrams.put_f32(id as usize * 8 + 4, backoff);
    }
    if !saw_unk {
        // KenLM's default for a model without <unk> (`-u`).
        b.unigrams.put_f32(0, UNKNOWN_MISSING_LOGPROB);
        b.unigrams.put_f32(4, 0.0);
    }
    let vocab = vocab.finish();
    let id = |w: &str| vocab.vocab_id(murmur_hash_64a(w.as_bytes(), 0));
    let (bos, eos) = (id("<s>"), id("</s>"));
    if bos == 0 || eos == 0 {
        bail!("the vocabulary lacks <s> or </s>");
    }

    let mut longest = TableBuilder::new(
        buckets(counts[order - 1], PROBING_MULTIPLIER),
        EntryKind::Longest,
    );
    let mut ids = [0u32; MAX_ORDER];
    for n in 2..=order {
        expect_section(lines, n)?;
        for k in 0..counts[n - 1] {
            let l = lines
                .next()?
                .ok_or_else(|| anyhow!("the file ends inside the {n}-grams"))?;
            short_section(l, n, k, counts[n - 1])?;
            let (prob, words, backoff) = entry(l, n, n == order)?;
            for (k, w) in words.iter().enumerate() {
                let h = murmur_hash_64a(w.as_bytes(), 0);
                ids[k] = if unk_hashes.contains(&h) {
                    0
                } else {
                    match vocab.vocab_id(h) {
                        0 => bail!("the word `{w}` of an {n}-gram is not among the unigrams"),
                        i => i,
                    }
                };
            }
            let ids = &ids[..n];
            // suffix[m]: key of the last m words; context[m]: key of the m
            // words before the last one.
            let mut suffix = [0u64; MAX_ORDER + 1];
            suffix[1] = ids[n - 1] as u64;
            for m in 2..=n {
                suffix[m] = combine(suffix[m - 1], ids[n - m]);
            }
            let mut context = [0u64; MAX_ORDER + 1];
            context[1] = ids[n - 2] as u64;
            for m in 2..n {
                context[m] = combine(context[m - 1], ids[n - 1 - m]);
            }
            if n == order {
                let (at, new) = longest.entry(suffix[n]).map_err(|e| anyhow!(e))?;
                if !new {
                    bail!("an {n}-gram appears twice");
                }
                longest.put_f32(at + 8, -prob.abs());
            } else {
                let t = &mut b.middle[n - 2];
                let (at, new) = t.entry(suffix[n]).map_err(|e| anyhow!(e))?;
                if !new {
                    bail!("an {n}-gram appears twice");
                }
                // Flagged as ending no longer n-gram until one does.
                t.put_f32(at + 8, -prob.abs());
                t.put_f32(at + 12, backoff);
            }
            // The longest suffix present, and blanks for those missing.
            let mut between: Vec<Slot> = vec![];
            let mut found = false;
            for lower in (0..n - 2).rev() {
                if let Some(s) = b.middle_slot(lower, suffix[lower + 2]) {
                    between.push(s);
                    found = true;
                    break;
                }
                let t = &mut b.middle[lower];
                let (at, _) = t
                    .entry(suffix[lower + 2])
                    .map_err(|e| anyhow!("{e}: too many suffixes missing to fill them in"))?;
                t.put_f32(at + 12, -0.0);
                between.push(Slot::Middle(lower, at));
            }
            if !found {
                between.push(Slot::Unigram(ids[n - 1]));
            }
            adjust_lower(&mut b, &between, n, ids, &context);
            // The context is extended to the right.
            let ctx = if n == 2 {
                Slot::Unigram(ids[0])
            } else {
                b.middle_slot(n - 3, context[n - 1]).ok_or_else(|| {
                    anyhow!(
                        "the context of an {n}-gram is not among the {}-grams",
                        n - 1
                    )
                })?
            };
            b.set_extension(ctx);
        }
    }
    let end = lines.next_nonblank("`\\end\\`")?;
    if end != "\\end\\" {
        bail!("expected `\\end\\`, found `{}`", clip(&end));
    }
    Ok(Model {
        order,
        counts: counts.clone(),
        vocab,
        unigrams: b.unigrams.finish(),
        middle: b.middle.into_iter().map(TableBuilder::finish).collect(),
        longest: longest.finish(),
        bos,
        eos,
        path: Default::default(),
        max_id: counts[0] as u32,
        bound: if saw_unk {
            counts[0] as u32
        } else {
            counts[0] as u32 + 1
        },
    })
}

/// `AdjustLower`: the blanks get the backoff estimate of their probability
/// (the basis's probability plus the backoffs of the contexts between), and
/// every suffix is flagged as extended to the left.
fn adjust_lower(b: &mut Builder, between: &[Slot], n: usize, ids: &[u32], context: &[u64]) {
    if between.len() > 1 {
        let mut prob = -b.prob(between[between.len() - 1]).abs();
        let mut basis = n - between.len();
        let mut change = between.len() as isize - 2;
        if basis == 1 {
            let u = Slot::Unigram(ids[n - 2]);
            b.set_extension(u);
            prob += b.backoff(u);
            b.set_prob(between[change as usize], prob);
            basis = 2;
            change -= 1;
        }
        while basis < n - 1 {
            if let Some(c) = b.middle_slot(basis - 2, context[basis]) {
                b.set_extension(c);
                prob += b.backoff(c);
            }
            b.set_prob(between[change as usize], prob);
            basis += 1;
            change -= 1;
        }
    }
    for &s in between {
        b.mark_extends_left(s);
    }
}

/// A blank line before a section's count of entries.
fn short_section(l: &str, n: usize, k: u64, count: u64) -> Result<()> {
    if l.trim().is_empty() {
        bail!("the {n}-grams end after {k} entries but the header counts {count}");
    }
    Ok(())
}

fn expect_section<R: BufRead>(lines: &mut Lines<R>, n: usize) -> Result<()> {
    let l = lines.next_nonblank(&format!("the {n}-grams"))?;
    if l != format!("\\{n}-grams:") {
        bail!("expected `\\{n}-grams:`, found `{}`", clip(&l));
    }
    Ok(())
}

/// One entry: `prob<TAB>w1 w2 …[<TAB>backoff]`. A missing or zero backoff
/// reads as -0.0 (no longer n-gram starts here, as far as known yet).
fn entry(l: &str, n: usize, longest: bool) -> Result<(f32, Vec<&str>, f32)> {
    let mut fields = l.split('\t');
    let prob = parse_f32(fields.next().unwrap_or(""), "probability")?;
    if prob > 0.0 {
        bail!("positive log probability {prob} (KenLM refuses these)");
    }
    let words: Vec<&str> = fields
        .next()
        .ok_or_else(|| anyhow!("expected a tab after the probability in `{}`", clip(l)))?
        .split(' ')
        .filter(|w| !w.is_empty())
        .collect();
    if words.len() != n {
        bail!("expected {n} words in `{}`", clip(l));
    }
    let backoff = match fields.next() {
        None => -0.0,
        Some(s) => {
            let v = parse_f32(s, "backoff")?;
            if !v.is_finite() {
                bail!("bad backoff `{s}`");
            }
            if longest && v != 0.0 {
                bail!("a backoff on an n-gram of the highest order");
            }
            if v == 0.0 {
                -0.0
            } else {
                v
            }
        }
    };
    if fields.next().is_some() {
        bail!("more than three tab-separated fields in `{}`", clip(l));
    }
    Ok((prob, words, backoff))
}

fn clip(s: &str) -> String {
    s.chars().take(80).collect()
}
