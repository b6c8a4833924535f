//! Counters for documents and bytes: per operator in / out / dropped per reason,
//! merged across tasks, checked (`input = kept + dropped`) and reported.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub mod profile;

use profile::Profile;

/// Documents and text bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Count {
    pub docs: u64,
    pub bytes: u64,
}

fn is_zero(c: &Count) -> bool {
    c.docs == 0 && c.bytes == 0
}

impl Count {
    pub fn add(&mut self, other: Count) {
        self.docs += other.docs;
        self.bytes += other.bytes;
    }
    pub fn one(bytes: usize) -> Count {
        Count {
            docs: 1,
            bytes: bytes as u64,
        }
    }
}

/// What one operator (or the reader) did to the documents that reached it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpStats {
    /// The step label: `read`, or `<index>:<op>` for the pipeline's steps.
    pub step: String,
    pub input: Count,
    /// Rows the step made beyond its input (`upsample`'s copies).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub added: Count,
    pub kept: Count,
    /// Drop reason (e.g. `length_filter:min_words`) to what it dropped.
    pub dropped: BTreeMap<String, Count>,
    /// For dedup steps: documents (kept or removed) by the size of their
    /// duplicate group (`dup_count`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub docs_by_group_size: BTreeMap<u32, u64>,
    /// For the read step: input units that are not documents (WARC records
    /// of other types), by kind. Not part of `input`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub skipped: BTreeMap<String, u64>,
    /// What the step did inside the documents it kept, by name (e.g.
    /// `dedup_lines`' `units_removed`), summed over tasks.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub counters: BTreeMap<String, u64>,
    /// What `sluice report` draws of the step.
    #[serde(default, skip_serializing_if = "Profile::is_empty")]
    pub profile: Profile,
}

impl OpStats {
    pub fn new(step: impl Into<String>) -> Self {
        OpStats {
            step: step.into(),
            ..Default::default()
        }
    }

    pub fn drop_one(&mut self, reason: &str, bytes: usize) {
        self.dropped
            .entry(reason.to_string())
            .or_default()
            .add(Count::one(bytes));
    }

    pub fn dropped_total(&self) -> Count {
        let mut total = Count::default();
        for c in self.dropped.values() {
            total.add(*c);
        }
        total
    }

    pub fn merge(&mut self, other: &OpStats) {
        self.input.add(other.input);
        self.added.add(other.added);
        self.kept.add(other.kept);
        for (reason, c) in &other.dropped {
            self.dropped.entry(reason.clone()).or_default().add(*c);
        }
        for (size, n) in &other.docs_by_group_size {
            *self.docs_by_group_size.entry(*size).or_default() += n;
        }
        for (kind, n) in &other.skipped {
            *self.skipped.entry(kind.clone()).or_default() += n;
        }
        for (name, n) in &other.counters {
            *self.counters.entry(name.clone()).or_default() += n;
        }
        self.profile.merge(&other.profile);
    }

    /// Groups by size, in buckets 1, 2, 3–4, 5–8, …: (label, groups).
    pub fn group_histogram(&self) -> Vec<(String, u64)> {
        let mut buckets: BTreeMap<u32, (u32, u64)> = BTreeMap::new();
        for (&size, &docs) in &self.docs_by_group_size {
            let hi = size.max(1).next_power_of_two();
            let lo = if hi <= 2 { hi } else { hi / 2 + 1 };
            let e = buckets.entry(hi).or_insert((lo, 0));
            e.1 += docs / size.max(1) as u64;
        }
        buckets
            .into_iter()
            .map(|(hi, (lo, n))| {
                (
                    if lo == hi {
                        format!("{hi}")
                    } else {
                        format!("{lo}-{hi}")
                    },
                    n,
                )
            })
            .collect()
    }
}

/// The stats of one task of a streaming phase: one entry per step it ran, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskStats {
    pub steps: Vec<OpStats>,
}

impl TaskStats {
    pub fn merge(&mut self, other: &TaskStats) {
        if self.steps.is_empty() {
            self.steps = other.steps.clone();
            return;
        }
        for (mine, theirs) in self.steps.iter_mut().zip(&other.steps) {
            mine.merge(theirs);
        }
    }
}

/// Time spent in one phase of a run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PhaseTime {
    pub phase: String,
    pub tasks: usize,
    /// Tasks skipped because a previous run had finished them.
    pub resumed: usize,
    pub seconds: f64,
}

/// The whole run: what `stats.json` holds.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunStats {
    pub input: Count,
    /// Documents steps added (copies); `input + added = kept + dropped`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub added: Count,
    pub kept: Count,
    /// Every drop reason over the whole pipeline.
    pub dropped: BTreeMap<String, Count>,
    pub steps: Vec<OpStats>,
    pub phases: Vec<PhaseTime>,
    /// Reports of ops (the mixture table) printed after the run's table.
    #[serde(skip)]
    pub notes: Vec<String>,
}

impl RunStats {
    /// Builds the run totals from the per-step stats (in pipeline order) and
    /// checks that every document is accounted for.
    pub fn from_steps(steps: Vec<OpStats>, phases: Vec<PhaseTime>) -> anyhow::Result<RunStats> {
        let first = steps
            .first()
            .ok_or_else(|| anyhow::anyhow!("a run without steps has no stats"))?;
        let input = first.input;
        let kept = steps.last().map(|s| s.kept).unwrap_or_default();
        let mut dropped: BTreeMap<String, Count> = BTreeMap::new();
        let mut added = Count::default();
        for s in &steps {
            added.add(s.added);
            for (reason, c) in &s.dropped {
                dropped.entry(reason.clone()).or_default().add(*c);
            }
        }
        let stats = RunStats {
            input,
            added,
            kept,
            dropped,
            steps,
            phases,
            notes: vec![],
        };
        stats.check()?;
        Ok(stats)
    }

    /// `input = kept + dropped` for every step, each step's output is the next
    /// one's input, and for the whole run.
    pub fn check(&self) -> anyhow::Result<()> {
        for s in &self.steps {
            let d = s.dropped_total();
            if s.input.docs + s.added.docs != s.kept.docs + d.docs {
                anyhow::bail!(
                    "accounting check failed at step {}: {} documents in, {} added, {} kept, {} dropped",
                    s.step,
                    s.input.docs,
                    s.added.docs,
                    s.kept.docs,
                    d.docs
                );
            }
        }
        for pair in self.steps.windows(2) {
            if pair[0].kept.docs != pair[1].input.docs {
                anyhow::bail!(
                    "accounting check failed: step {} kept {} documents but step {} received {}",
                    pair[0].step,
                    pair[0].kept.docs,
                    pair[1].step,
                    pair[1].input.docs
                );
            }
        }
        let dropped: u64 = self.dropped.values().map(|c| c.docs).sum();
        if self.input.docs + self.added.docs != self.kept.docs + dropped {
            anyhow::bail!(
                "accounting check failed: {} documents in, {} added, {} kept, {} dropped",
                self.input.docs,
                self.added.docs,
                self.kept.docs,
                dropped
            );
        }
        Ok(())
    }

    /// The table printed at the end of a run.
    pub fn table(&self) -> String {
        let mut out = String::new();
        out.push_str(&format!(
            "{:<28} {:>12} {:>12} {:>12} {:>10}\n",
            "step", "docs in", "kept", "dropped", "MB in"
        ));
        for s in &self.steps {
            out.push_str(&format!(
                "{:<28} {:>12} {:>12} {:>12} {:>10.1}\n",
                s.step,
                s.input.docs,
                s.kept.docs,
                s.dropped_total().docs,
                s.input.bytes as f64 / 1e6
            ));
            if s.added.docs > 0 {
                out.push_str(&format!(
                    "  {:<38} {:>12} docs {:>10.2} MB\n",
                    "added (copies)",
                    s.added.docs,
                    s.added.bytes as f64 / 1e6
                ));
            }
            for (reason, c) in &s.dropped {
                out.push_str(&format!(
                    "  {:<38} {:>12} docs {:>10.2} MB\n",
                    reason,
                    c.docs,
                    c.bytes as f64 / 1e6
                ));
            }
            if !s.skipped.is_empty() {
                let parts: Vec<String> =
                    s.skipped.iter().map(|(k, n)| format!("{k} {n}")).collect();
                out.push_str(&format!("  not documents, skipped: {}\n", parts.join(", ")));
            }
            if !s.counters.is_empty() {
                let parts: Vec<String> =
                    s.counters.iter().map(|(k, n)| format!("{k} {n}")).collect();
                out.push_str(&format!("  {}\n", parts.join(", ")));
            }
            let hist = s.group_histogram();
            if !hist.is_empty() {
                let parts: Vec<String> = hist.iter().map(|(l, n)| format!("{l}: {n}")).collect();
                out.push_str(&format!(
                    "  duplicate groups by size: {}\n",
                    parts.join(", ")
                ));
            }
        }
        let dropped: u64 = self.dropped.values().map(|c| c.docs).sum();
        let added = if self.added.docs > 0 {
            format!(" + added {}", self.added.docs)
        } else {
            String::new()
        };
        out.push_str(&format!(
            "input {}{added} = kept {} + dropped {}  ({:.1} MB in, {:.1} MB kept)\n",
            self.input.docs,
            self.kept.docs,
            dropped,
            self.input.bytes as f64 / 1e6,
            self.kept.bytes as f64 / 1e6
        ));
        for p in &self.phases {
            let resumed = if p.resumed > 0 {
                format!(", {} resumed", p.resumed)
            } else {
                String::new()
            };
            out.push_str(&format!(
                "phase {:<24} {:>6} tasks{} {:>9.2} s\n",
                p.phase, p.tasks, resumed, p.seconds
            ));
        }
        for n in &self.notes {
            out.push('\n');
            out.push_str(n);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(name: &str, input: u64, kept: u64, drops: &[(&str, u64)]) -> OpStats {
        let mut s = OpStats::new(name);
        s.input = Count {
            docs: input,
            bytes: input * 10,
        };
        s.kept = Count {
            docs: kept,
            bytes: kept * 10,
        };
        for (r, n) in drops {
            s.dropped.insert(
                r.to_string(),
                Count {
                    docs: *n,
                    bytes: n * 10,
                },
            );
        }
        s
    }

    #[test]
    fn check_accepts_balanced_runs() {
        let steps = vec![
            step("read", 10, 9, &[("read:empty_text", 1)]),
            step("1:f", 9, 5, &[("f:x", 4)]),
        ];
        let stats = RunStats::from_steps(steps, vec![]).unwrap();
        assert_eq!(stats.kept.docs, 5);
        assert_eq!(stats.dropped.len(), 2);
    }

    #[test]
    fn check_rejects_a_lost_document() {
        let steps = vec![step("read", 10, 10, &[]), step("1:f", 10, 5, &[("f:x", 4)])];
        let err = RunStats::from_steps(steps, vec![]).unwrap_err().to_string();
        assert!(err.contains("1:f"), "{err}");
    }

    #[test]
    fn histogram_counts_groups_in_power_of_two_buckets() {
        let mut s = OpStats::new("x");
        s.docs_by_group_size = BTreeMap::from([(1, 10), (2, 4), (3, 6), (4, 8), (7, 7)]);
        assert_eq!(
            s.group_histogram(),
            vec![
                ("1".into(), 10),
                ("2".into(), 2),
                ("3-4".into(), 4),
                ("5-8".into(), 1)
            ]
        );
    }

    #[test]
    fn check_rejects_a_gap_between_steps() {
        let steps = vec![step("read", 10, 10, &[]), step("1:f", 9, 9, &[])];
        assert!(RunStats::from_steps(steps, vec![]).is_err());
    }
}
