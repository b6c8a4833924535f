//! What `sluice report` draws, gathered as the run goes: per step, the
//! distribution of text length and of the columns the step wrote (at the
//! read step, every numeric column of the input), split by what the step
//! kept and dropped; the values of the short string columns it wrote
//! (`lang`); a few dropped documents per reason, those of smallest id hash;
//! and the thresholds the step applies. Tasks merge exactly and in any
//! order (sums, and a bottom-k by hash), and each piece is bounded: a run
//! of any size has a profile of a few hundred kilobytes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Significant bits a bucket keeps: 64 buckets an octave, each 1.1% wide;
/// whole numbers up to 128 have a bucket each.
const BITS: u32 = 6;

/// The bucket of a finite value: the largest number of `BITS` significant
/// bits not above it. `v >= t` exactly where `bucket(v) >= t`, for every
/// bucket boundary `t`: counts at a boundary are exact.
pub fn bucket(v: f64) -> f64 {
    if v == 0.0 {
        return 0.0;
    }
    let cut = 52 - BITS;
    let magnitude = v.abs().to_bits();
    let low = magnitude & ((1u64 << cut) - 1);
    let down = magnitude - low;
    if v > 0.0 {
        f64::from_bits(down)
    } else if low == 0 {
        v
    } else {
        // Below zero the floor is away from zero.
        -f64::from_bits(down + (1u64 << cut))
    }
}

/// An order-preserving integer key of a float.
fn key(v: f64) -> i64 {
    let b = v.to_bits() as i64;
    if b < 0 {
        b ^ i64::MAX
    } else {
        b
    }
}

fn value(k: i64) -> f64 {
    let b = if k < 0 { k ^ i64::MAX } else { k };
    f64::from_bits(b as u64)
}

/// Rows kept and dropped by the step.
pub type Split = [u64; 2];

/// The distribution of one numeric column, kept and dropped.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "HistogramJson", into = "HistogramJson")]
pub struct Histogram {
    counts: BTreeMap<i64, Split>,
    /// Nulls, NaN and infinities.
    pub missing: Split,
}

#[derive(Serialize, Deserialize)]
struct HistogramJson {
    /// `[bucket, kept, dropped]`, by bucket.
    buckets: Vec<(f64, u64, u64)>,
    #[serde(default)]
    missing: Split,
}

impl From<HistogramJson> for Histogram {
    fn from(j: HistogramJson) -> Histogram {
        let mut h = Histogram {
            missing: j.missing,
            ..Default::default()
        };
        for (v, kept, dropped) in j.buckets {
            let e = h.counts.entry(key(bucket(v))).or_default();
            e[0] += kept;
            e[1] += dropped;
        }
        h
    }
}

impl From<Histogram> for HistogramJson {
    fn from(h: Histogram) -> HistogramJson {
        HistogramJson {
            buckets: h
                .counts
                .iter()
                .map(|(&k, c)| (value(k), c[0], c[1]))
                .collect(),
            missing: h.missing,
        }
    }
}

impl Histogram {
    pub fn add(&mut self, v: Option<f64>, dropped: bool) {
        let side = usize::from(dropped);
        match v {
            Some(v) if v.is_finite() => self.counts.entry(key(bucket(v))).or_default()[side] += 1,
            _ => self.missing[side] += 1,
        }
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (k, c) in &other.counts {
            let e = self.counts.entry(*k).or_default();
            e[0] += c[0];
            e[1] += c[1];
        }
        self.missing[0] += other.missing[0];
        self.missing[1] += other.missing[1];
    }

    /// `(bucket, kept, dropped)`, by bucket.
    pub fn buckets(&self) -> impl Iterator<Item = (f64, u64, u64)> + '_ {
        self.counts.iter().map(|(&k, c)| (value(k), c[0], c[1]))
    }

    /// Rows with a value, kept and dropped.
    pub fn total(&self) -> Split {
        self.counts
            .values()
            .fold([0, 0], |a, c| [a[0] + c[0], a[1] + c[1]])
    }
}

/// A dropped document, for the report's samples.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sample {
    pub id: String,
    /// The id's hash: the samples of a reason are those of smallest hash,
    /// whatever the tasks and their order.
    pub hash: u64,
    /// The text's length in characters; `text` is its beginning.
    pub chars: u64,
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Samples kept per drop reason.
pub const SAMPLES: usize = 4;
/// Characters of a sample's text kept.
pub const SAMPLE_CHARS: usize = 2_000;
/// Distinct values of a string column counted; the rest are `(other)`.
pub const CATEGORIES: usize = 200;

/// A threshold a step applies to a column (or would apply, annotating):
/// rows are kept where `column keep value` (`keep` is `>=`, `>`, `<=` or
/// `<`), or, for a flag (`keep` = `false`), where the flag is false.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Threshold {
    pub column: String,
    pub keep: String,
    pub value: f64,
    /// The language it applies to, where the step has rules per language.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
}

impl Threshold {
    pub fn new(column: &str, keep: &str, value: f64) -> Threshold {
        Threshold {
            column: column.to_string(),
            keep: keep.to_string(),
            value,
            lang: None,
        }
    }

    /// The condition as a `select` expression.
    pub fn expr(&self) -> String {
        match self.keep.as_str() {
            "false" => format!("not {}", self.column),
            op => format!("{} {op} {:?}", self.column, self.value),
        }
    }

    /// Whether a value passes.
    pub fn keeps(&self, v: f64) -> bool {
        match self.keep.as_str() {
            ">=" => v >= self.value,
            ">" => v > self.value,
            "<=" => v <= self.value,
            "<" => v < self.value,
            _ => v == 0.0,
        }
    }
}

// Thresholds are finite numbers from specs: equality is total on them.
impl Eq for Threshold {}

/// What the report needs of one step.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    /// Text length in bytes of the rows the step received.
    #[serde(default, skip_serializing_if = "is_empty")]
    pub text_bytes: Histogram,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub columns: BTreeMap<String, Histogram>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub categories: BTreeMap<String, BTreeMap<String, Split>>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub samples: BTreeMap<String, Vec<Sample>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub thresholds: Vec<Threshold>,
}

fn is_empty(h: &Histogram) -> bool {
    h.counts.is_empty() && h.missing == [0, 0]
}

impl Profile {
    pub fn is_empty(&self) -> bool {
        self == &Profile::default()
    }

    pub fn category(&mut self, column: &str, v: Option<&str>, dropped: bool) {
        let counts = self.categories.entry(column.to_string()).or_default();
        let v = v.unwrap_or("(null)");
        let name = if counts.contains_key(v) || counts.len() < CATEGORIES {
            v
        } else {
            "(other)"
        };
        counts.entry(name.to_string()).or_default()[usize::from(dropped)] += 1;
    }

    /// Offers a dropped document as a sample of `reason`.
    pub fn sample(&mut self, reason: &str, id: &str, text: &str, detail: Option<&str>) {
        let hash = xxhash_rust::xxh3::xxh3_64(id.as_bytes());
        let list = self.samples.entry(reason.to_string()).or_default();
        if list.len() >= SAMPLES
            && list
                .last()
                .is_some_and(|l| (l.hash, l.id.as_str()) <= (hash, id))
        {
            return;
        }
        let chars = text.chars().count() as u64;
        let cut = text
            .char_indices()
            .nth(SAMPLE_CHARS)
            .map_or(text.len(), |(i, _)| i);
        list.push(Sample {
            id: id.to_string(),
            hash,
            chars,
            text: text[..cut].to_string(),
            detail: detail.map(str::to_string),
        });
        list.sort_by(|a, b| (a.hash, &a.id).cmp(&(b.hash, &b.id)));
        list.dedup_by(|a, b| a.id == b.id && a.hash == b.hash);
        list.truncate(SAMPLES);
    }

    pub fn merge(&mut self, other: &Profile) {
        self.text_bytes.merge(&other.text_bytes);
        for (c, h) in &other.columns {
            self.columns.entry(c.clone()).or_default().merge(h);
        }
        for (c, values) in &other.categories {
            for (v, n) in values {
                let counts = self.categories.entry(c.clone()).or_default();
                let name = if counts.contains_key(v) || counts.len() < CATEGORIES {
                    v.as_str()
                } else {
                    "(other)"
                };
                let e = counts.entry(name.to_string()).or_default();
                e[0] += n[0];
                e[1] += n[1];
            }
        }
        for (reason, list) in &other.samples {
            let mine = self.samples.entry(reason.clone()).or_default();
            mine.extend(list.iter().cloned());
            mine.sort_by(|a, b| (a.hash, &a.id).cmp(&(b.hash, &b.id)));
            mine.dedup_by(|a, b| a.id == b.id && a.hash == b.hash);
            mine.truncate(SAMPLES);
        }
        if self.thresholds.is_empty() {
            self.thresholds = other.thresholds.clone();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_floors_exact_at_their_boundaries() {
        for v in [0.65, 1.0, 3.0, 0.123, 1e-9, 12345.678, -0.5, -2.75, -1e-3] {
            let b = bucket(v);
            assert!(b <= v, "{v} {b}");
            assert_eq!(bucket(b), b, "{v}");
            // The next bucket is above v.
            assert!(v - b <= v.abs() / 64.0 + f64::EPSILON, "{v} {b}");
        }
        for n in 0..128 {
            assert_eq!(bucket(n as f64), n as f64);
        }
        assert_eq!(bucket(0.0), 0.0);
    }

    #[test]
    fn merging_in_any_order_gives_the_same_profile() {
        let mut parts = vec![];
        for t in 0..4 {
            let mut p = Profile::default();
            for i in 0..50 {
                let id = format!("doc-{t}-{i}");
                p.text_bytes.add(Some((i * 37 % 500) as f64), i % 3 == 0);
                p.columns
                    .entry("score".into())
                    .or_default()
                    .add((i % 7 != 0).then_some(i as f64 / 50.0), i % 2 == 0);
                p.category("lang", Some(["en", "zh", "fr"][i % 3]), i % 5 == 0);
                if i % 3 == 0 {
                    p.sample("short", &id, &"x".repeat(i * 100), None);
                }
            }
            parts.push(p);
        }
        let merge = |order: &[usize]| {
            let mut m = Profile::default();
            for &i in order {
                m.merge(&parts[i]);
            }
            serde_json::to_string(&m).unwrap()
        };
        let a = merge(&[0, 1, 2, 3]);
        assert_eq!(a, merge(&[3, 1, 0, 2]));
        let back: Profile = serde_json::from_str(&a).unwrap();
        assert_eq!(serde_json::to_string(&back).unwrap(), a);
        assert_eq!(back.samples["short"].len(), SAMPLES);
        assert!(back.samples["short"]
            .iter()
            .all(|s| s.text.len() <= SAMPLE_CHARS));
        assert_eq!(back.text_bytes.total()[0] + back.text_bytes.total()[1], 200);
    }
}
