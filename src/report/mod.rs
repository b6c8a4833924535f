//! `sluice report`: one self-contained HTML page of a run, drawn from its
//! `stats.json` (counts, and the profile each step gathered: see
//! `stats::profile`) and the small reports ops leave beside it
//! (`mixture_report.json`, `tokenize_report.json`), never from the shards:
//! a run of any size reports in the time it takes to read a few hundred
//! kilobytes. `--compare` sets two runs side by side.

mod html;
mod svg;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::stats::profile::{bucket, Histogram, Profile, Threshold, SAMPLE_CHARS};
use crate::stats::{Count, OpStats, RunStats};
use html::{esc, page, table};
use svg::{hbars, histogram, num, thousands, Bar, Mark, Series, DROPPED, KEPT, KEPT_DROPPED};

/// Bars a histogram draws (its buckets grouped).
const BINS: usize = 40;

/// One run as the report reads it.
struct Run {
    dir: PathBuf,
    stats: RunStats,
    /// Reports of ops beside stats.json, by file name.
    extra: BTreeMap<String, serde_json::Value>,
    /// The files read and their sizes.
    read: Vec<(String, u64)>,
}

fn load(dir: &Path) -> Result<Run> {
    let path = dir.join("stats.json");
    let bytes = std::fs::read(&path).with_context(|| {
        format!(
            "cannot read {}: is {} the output folder of a finished run?",
            path.display(),
            dir.display()
        )
    })?;
    let stats: RunStats = serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is not a sluice stats.json", path.display()))?;
    let mut read = vec![("stats.json".to_string(), bytes.len() as u64)];
    let mut extra = BTreeMap::new();
    for name in ["mixture_report.json", "tokenize_report.json"] {
        let p = dir.join(name);
        if let Ok(b) = std::fs::read(&p) {
            let v: serde_json::Value = serde_json::from_slice(&b)
                .with_context(|| format!("{} is not JSON", p.display()))?;
            read.push((name.to_string(), b.len() as u64));
            extra.insert(name.to_string(), v);
        }
    }
    Ok(Run {
        dir: dir.to_path_buf(),
        stats,
        extra,
        read,
    })
}

/// Writes the report of the run in `dir` to `output` (default:
/// `dir/report.html`); returns the path and what it read.
pub fn report(dir: &Path, output: Option<&Path>) -> Result<String> {
    let run = load(dir)?;
    let out = output.map_or_else(|| dir.join("report.html"), Path::to_path_buf);
    let html = render(&run);
    write(&out, &html)?;
    Ok(format!(
        "report: {} (read {})",
        out.display(),
        read_note(&run)
    ))
}

/// Writes the comparison of two runs to `output` (default: `a/compare.html`).
pub fn compare(a: &Path, b: &Path, output: Option<&Path>) -> Result<String> {
    let (ra, rb) = (load(a)?, load(b)?);
    let out = output.map_or_else(|| a.join("compare.html"), Path::to_path_buf);
    let html = render_compare(&ra, &rb);
    write(&out, &html)?;
    Ok(format!(
        "report: {} (read {}; {})",
        out.display(),
        read_note(&ra),
        read_note(&rb)
    ))
}

fn write(out: &Path, html: &str) -> Result<()> {
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    std::fs::write(out, html).with_context(|| format!("cannot write {}", out.display()))
}

fn read_note(run: &Run) -> String {
    let files: Vec<String> = run
        .read
        .iter()
        .map(|(n, b)| format!("{}/{n}, {} bytes", run.dir.display(), thousands(*b)))
        .collect();
    files.join("; ")
}

fn mb(bytes: u64) -> String {
    format!("{:.2} MB", bytes as f64 / 1e6)
}

fn count_cells(c: Count) -> [String; 2] {
    [thousands(c.docs), mb(c.bytes)]
}

fn legend(names: &[(&str, &str)]) -> String {
    let mut s = String::from("<p class=\"legend\">");
    for (name, colour) in names {
        s.push_str(&format!(
            "<span style=\"background:{colour}\"></span>{}",
            esc(name)
        ));
    }
    s.push_str("</p>\n");
    s
}

// ------------------------------------------------------------ one run

fn render(run: &Run) -> String {
    let st = &run.stats;
    let dropped: u64 = st.dropped.values().map(|c| c.docs).sum();
    let mut b = format!(
        "<h1>sluice report: {}</h1>\n<p>{} documents in ({}), {} added, <b>{} kept</b> ({}), {} dropped, \
         over {} steps.</p>\n<p class=\"note\">Drawn from {} — counts and profiles the run \
         gathered as it went, never the shards themselves.</p>\n",
        esc(&run.dir.display().to_string()),
        thousands(st.input.docs),
        mb(st.input.bytes),
        thousands(st.added.docs),
        thousands(st.kept.docs),
        mb(st.kept.bytes),
        thousands(dropped),
        st.steps.len(),
        esc(&read_note(run)),
    );
    b.push_str(&funnel(st));
    b.push_str(&distributions(st));
    b.push_str(&samples(st));
    b.push_str(&sources(run));
    b.push_str(&phases(st));
    page(&format!("sluice report: {}", run.dir.display()), &b)
}

fn funnel(st: &RunStats) -> String {
    let mut s = String::from("<h2 id=\"funnel\">Funnel</h2>\n");
    s.push_str(&legend(&[("kept", KEPT), ("dropped", DROPPED)]));
    let bars = |f: fn(&Count) -> u64| -> Vec<Bar> {
        st.steps
            .iter()
            .map(|o| Bar {
                label: o.step.clone(),
                parts: vec![
                    (f(&o.kept), KEPT, "kept"),
                    (f(&o.dropped_total()), DROPPED, "dropped"),
                ],
            })
            .collect()
    };
    s.push_str("<h4>Documents</h4>\n");
    s.push_str(&hbars(&bars(|c| c.docs), "documents"));
    s.push_str("<h4>Text bytes</h4>\n");
    s.push_str(&hbars(&bars(|c| c.bytes), "bytes"));
    let rows: Vec<(String, Vec<String>)> = st
        .steps
        .iter()
        .map(|o| {
            let d = o.dropped_total();
            let [ki, kb] = count_cells(o.kept);
            let [ii, ib] = count_cells(o.input);
            (
                format!(
                    " data-step=\"{}\" data-in=\"{}\" data-added=\"{}\" data-kept=\"{}\" data-dropped=\"{}\"",
                    esc(&o.step),
                    o.input.docs,
                    o.added.docs,
                    o.kept.docs,
                    d.docs
                ),
                vec![
                    esc(&o.step),
                    ii,
                    thousands(o.added.docs),
                    ki,
                    thousands(d.docs),
                    ib,
                    kb,
                ],
            )
        })
        .collect();
    s.push_str(&table(
        &[
            "step",
            "docs in",
            "added",
            "kept",
            "dropped",
            "bytes in",
            "bytes kept",
        ],
        &rows,
    ));
    let mut reasons: Vec<(String, Vec<String>)> = vec![];
    for o in &st.steps {
        let total = o.input.docs.max(1) as f64;
        for (reason, c) in &o.dropped {
            reasons.push((
                format!(
                    " data-reason=\"{}\" data-docs=\"{}\" data-bytes=\"{}\"",
                    esc(reason),
                    c.docs,
                    c.bytes
                ),
                vec![
                    esc(&o.step),
                    format!(
                        "<a href=\"#samples-{}\">{}</a>",
                        anchor(reason),
                        esc(reason)
                    ),
                    thousands(c.docs),
                    format!("{:.2}%", 100.0 * c.docs as f64 / total),
                    mb(c.bytes),
                ],
            ));
        }
    }
    if !reasons.is_empty() {
        s.push_str("<h4>Drop reasons</h4>\n");
        s.push_str(&table(
            &["step", "reason", "docs", "of the step's input", "bytes"],
            &reasons,
        ));
    }
    s
}

fn anchor(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

/// Bins of a histogram: its buckets grouped into at most `BINS` bars of
/// equal width (on a log axis where the values are positive and span
/// a factor of 50 or more), `(from, to, kept, dropped)`.
fn bins_of(hists: &[&Histogram]) -> (Vec<(f64, f64, [u64; 2])>, bool) {
    let mut buckets: Vec<(f64, u64, u64)> = vec![];
    for h in hists {
        buckets.extend(h.buckets());
    }
    let (Some(lo), Some(hi)) = (
        buckets.iter().map(|b| b.0).reduce(f64::min),
        buckets.iter().map(|b| b.0).reduce(f64::max),
    ) else {
        return (vec![], false);
    };
    let log = lo > 0.0 && hi / lo >= 50.0;
    let whole = buckets.iter().all(|b| b.0 == b.0.trunc()) && hi - lo < BINS as f64;
    // Whole numbers of a short range: a bar each.
    let (n, start, step) = if whole {
        ((hi - lo) as usize + 1, lo, 1.0)
    } else if log {
        let (a, z) = (lo.log10(), hi.log10());
        (BINS, a, (z - a) / BINS as f64)
    } else {
        (BINS, lo, (hi - lo) / BINS as f64)
    };
    let edge = |i: usize| {
        let x = start + step * i as f64;
        if log && !whole {
            10f64.powf(x)
        } else {
            x
        }
    };
    let mut out: Vec<(f64, f64, [u64; 2])> =
        (0..n).map(|i| (edge(i), edge(i + 1), [0, 0])).collect();
    for h in hists.iter() {
        for (v, kept, dropped) in h.buckets() {
            let pos = if whole {
                (v - lo) as usize
            } else if log {
                ((v.log10() - start) / step) as usize
            } else if step > 0.0 {
                ((v - lo) / step) as usize
            } else {
                0
            };
            let i = pos.min(n - 1);
            out[i].2[0] += kept;
            out[i].2[1] += dropped;
        }
    }
    (out, log && !whole)
}

fn threshold_label(t: &Threshold) -> String {
    let keep = match t.keep.as_str() {
        ">=" => "≥",
        "<=" => "≤",
        "false" => "false",
        k => k,
    };
    let lang = t
        .lang
        .as_deref()
        .map(|l| format!(" ({l})"))
        .unwrap_or_default();
    if t.keep == "false" {
        format!("keep where false{lang}")
    } else {
        format!("keep {keep} {}{lang}", num(t.value))
    }
}

/// Documents at or above, and below, candidate thresholds: bucket
/// boundaries at the deciles and around the step's own thresholds, where
/// the counts are exact.
fn candidates(h: &Histogram, thresholds: &[&Threshold]) -> String {
    let buckets: Vec<(f64, u64, u64)> = h.buckets().collect();
    let total: u64 = buckets.iter().map(|b| b.1 + b.2).sum();
    if total == 0 {
        return String::new();
    }
    // Bucket floors are exact values: their bits are their identity.
    let mut at: BTreeSet<u64> = BTreeSet::new();
    let key = |v: f64| v.to_bits();
    let mut seen = 0u64;
    let mut next = 1;
    for b in &buckets {
        seen += b.1 + b.2;
        while next < 10 && seen * 10 >= total * next {
            at.insert(key(b.0));
            next += 1;
        }
    }
    // A threshold's own bucket floor is a boundary too, data there or not.
    for t in thresholds.iter().filter(|t| t.keep != "false") {
        at.insert(key(bucket(t.value)));
    }
    let mut values: Vec<f64> = at.iter().map(|&k| f64::from_bits(k)).collect();
    values.sort_by(f64::total_cmp);
    let rows: Vec<(String, Vec<String>)> = values
        .iter()
        .map(|&t| {
            let above: u64 = buckets.iter().filter(|b| b.0 >= t).map(|b| b.1 + b.2).sum();
            (
                format!(" data-at=\"{t}\" data-above=\"{above}\""),
                vec![
                    num(t),
                    thousands(above),
                    format!("{:.1}%", 100.0 * above as f64 / total as f64),
                    thousands(total - above),
                ],
            )
        })
        .collect();
    format!(
        "<details><summary>Documents kept by candidate thresholds</summary>{}</details>\n",
        table(&["threshold t", "≥ t", "share", "< t"], &rows)
    )
}

fn column_chart(name: &str, h: &Histogram, thresholds: &[&Threshold]) -> String {
    let (bins, log) = bins_of(&[h]);
    let bins: Vec<(f64, f64, u64, u64)> = bins.iter().map(|b| (b.0, b.1, b.2[0], b.2[1])).collect();
    let marks: Vec<Mark> = thresholds
        .iter()
        .filter(|t| t.keep != "false")
        .map(|t| Mark {
            at: t.value,
            label: threshold_label(t),
        })
        .collect();
    let [kept, dropped] = h.total();
    let mut s = format!(
        "<div><h4 data-column=\"{}\" data-values=\"{}\">{}</h4>\n",
        esc(name),
        kept + dropped,
        esc(name)
    );
    s.push_str(&histogram(&bins, log, &marks, &KEPT_DROPPED));
    let missing = h.missing[0] + h.missing[1];
    let mut note = format!("{} values", thousands(kept + dropped));
    if missing > 0 {
        note.push_str(&format!(", {} missing (null)", thousands(missing)));
    }
    for t in thresholds {
        note.push_str(&format!("; {}", esc(&threshold_label(t))));
    }
    s.push_str(&format!("<p class=\"note\">{note}</p>\n"));
    s.push_str(&candidates(h, thresholds));
    s.push_str("</div>\n");
    s
}

fn categories_chart(name: &str, counts: &BTreeMap<String, [u64; 2]>) -> String {
    let mut v: Vec<(&String, &[u64; 2])> = counts.iter().collect();
    v.sort_by(|a, b| (b.1[0] + b.1[1]).cmp(&(a.1[0] + a.1[1])).then(a.0.cmp(b.0)));
    let shown = v.len().min(25);
    let bars: Vec<Bar> = v[..shown]
        .iter()
        .map(|(k, c)| Bar {
            label: k.to_string(),
            parts: vec![(c[0], KEPT, "kept"), (c[1], DROPPED, "dropped")],
        })
        .collect();
    let mut s = format!(
        "<div><h4 data-category=\"{}\">{} (values)</h4>\n",
        esc(name),
        esc(name)
    );
    s.push_str(&hbars(&bars, "documents"));
    if v.len() > shown {
        s.push_str(&format!(
            "<p class=\"note\">the {shown} most frequent of {} values</p>\n",
            v.len()
        ));
    }
    s.push_str("</div>\n");
    s
}

fn step_profile(o: &OpStats) -> String {
    let p: &Profile = &o.profile;
    let mut s = format!("<h3>{}</h3>\n<div class=\"charts\">\n", esc(&o.step));
    if p.text_bytes.total() != [0, 0] {
        s.push_str(&column_chart("text length (bytes)", &p.text_bytes, &[]));
    }
    for (name, h) in &p.columns {
        let ts: Vec<&Threshold> = p.thresholds.iter().filter(|t| &t.column == name).collect();
        s.push_str(&column_chart(name, h, &ts));
    }
    for (name, counts) in &p.categories {
        s.push_str(&categories_chart(name, counts));
    }
    s.push_str("</div>\n");
    s
}

fn distributions(st: &RunStats) -> String {
    let mut s = String::from(
        "<h2 id=\"distributions\">Distributions</h2>\n<p class=\"note\">Per step, over the \
         documents that reached it: text length, and the columns the step wrote (at the read \
         step, the input's numeric columns), kept and dropped by that step; dashed lines are \
         the step's thresholds (annotating filters: the thresholds the dropping filter would \
         apply). Values are counted in buckets 1.1% wide: counts at a candidate threshold \
         are exact.</p>\n",
    );
    s.push_str(&legend(&[("kept", KEPT), ("dropped", DROPPED)]));
    for o in st.steps.iter().filter(|o| !o.profile.is_empty()) {
        if o.profile.text_bytes.total() == [0, 0]
            && o.profile.columns.is_empty()
            && o.profile.categories.is_empty()
        {
            continue;
        }
        s.push_str(&step_profile(o));
    }
    s
}

fn samples(st: &RunStats) -> String {
    let mut s = format!(
        "<h2 id=\"samples\">Dropped documents, by reason</h2>\n<p class=\"note\">A few per \
         reason: those whose id hashes lowest (the same whatever the tasks), the first {} \
         characters of each. Every dropped document is in excluded/.</p>\n",
        thousands(SAMPLE_CHARS as u64)
    );
    for o in &st.steps {
        for (reason, list) in &o.profile.samples {
            let docs = o.dropped.get(reason).map_or(0, |c| c.docs);
            s.push_str(&format!(
                "<h4 id=\"samples-{}\">{} <span class=\"note\">({} dropped by {})</span></h4>\n",
                anchor(reason),
                esc(reason),
                thousands(docs),
                esc(&o.step)
            ));
            for x in list {
                let detail = x
                    .detail
                    .as_deref()
                    .map(|d| format!(" — {}", esc(d)))
                    .unwrap_or_default();
                s.push_str(&format!(
                    "<details class=\"sample\" data-reason=\"{}\"><summary>{} <span class=\"note\">{} characters{detail}</span></summary><pre>{}{}</pre></details>\n",
                    esc(reason),
                    esc(&x.id),
                    thousands(x.chars),
                    esc(&x.text),
                    if (x.chars as usize) > SAMPLE_CHARS { "\n…" } else { "" }
                ));
            }
        }
    }
    s
}

/// A JSON array of objects, or an object of objects, as a table.
fn json_table(v: &serde_json::Value, first: &str) -> String {
    let rows: Vec<(String, &serde_json::Map<String, serde_json::Value>)> = match v {
        serde_json::Value::Array(a) => a
            .iter()
            .filter_map(|r| r.as_object())
            .map(|o| {
                let name = o.get(first).map(cell).unwrap_or_default();
                (name, o)
            })
            .collect(),
        serde_json::Value::Object(m) => m
            .iter()
            .filter_map(|(k, r)| r.as_object().map(|o| (k.clone(), o)))
            .collect(),
        _ => vec![],
    };
    let Some((_, o)) = rows.first() else {
        return String::new();
    };
    let keys: Vec<&String> = o.keys().filter(|k| k.as_str() != first).collect();
    let mut head = vec![first];
    head.extend(keys.iter().map(|k| k.as_str()));
    let body: Vec<(String, Vec<String>)> = rows
        .iter()
        .map(|(name, o)| {
            let mut cells = vec![esc(name)];
            cells.extend(
                keys.iter()
                    .map(|k| esc(&o.get(*k).map(cell).unwrap_or_default())),
            );
            (String::new(), cells)
        })
        .collect();
    table(&head, &body)
}

fn cell(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(n) => match (n.as_u64(), n.as_f64()) {
            (Some(u), _) => thousands(u),
            (None, Some(f)) => num(f),
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}

fn sources(run: &Run) -> String {
    let mut s = String::new();
    if let Some(m) = run.extra.get("mixture_report.json") {
        s.push_str("<h3>Mixture (mixture_report.json)</h3>\n");
        s.push_str(&json_table(&m["sources"], "source"));
    }
    if let Some(t) = run.extra.get("tokenize_report.json") {
        s.push_str(&format!(
            "<h3>Token shards (tokenize_report.json)</h3>\n<p>{} tokens in {} documents ({}, {})</p>\n",
            cell(&t["tokens"]),
            cell(&t["documents"]),
            esc(&cell(&t["format"])),
            esc(&cell(&t["dtype"]))
        ));
        s.push_str(&json_table(&t["sources"], "source"));
    }
    if s.is_empty() {
        return s;
    }
    format!("<h2 id=\"sources\">Per source</h2>\n{s}")
}

fn phases(st: &RunStats) -> String {
    let mut s = String::from("<h2 id=\"phases\">Time per phase</h2>\n");
    let bars: Vec<Bar> = st
        .phases
        .iter()
        .map(|p| Bar {
            label: p.phase.clone(),
            parts: vec![((p.seconds * 1000.0).round() as u64, KEPT, "milliseconds")],
        })
        .collect();
    s.push_str(&hbars(&bars, "ms"));
    let rows: Vec<(String, Vec<String>)> = st
        .phases
        .iter()
        .map(|p| {
            (
                String::new(),
                vec![
                    esc(&p.phase),
                    p.tasks.to_string(),
                    p.resumed.to_string(),
                    format!("{:.3}", p.seconds),
                ],
            )
        })
        .collect();
    s.push_str(&table(&["phase", "tasks", "resumed", "seconds"], &rows));
    s
}

// ------------------------------------------------------------ two runs

const A_COLOUR: &str = "#3b7dd8";
const B_COLOUR: &str = "#8e44ad";

fn render_compare(a: &Run, b: &Run) -> String {
    let (sa, sb) = (&a.stats, &b.stats);
    let (na, nb) = (a.dir.display().to_string(), b.dir.display().to_string());
    let mut s = format!(
        "<h1>sluice report: {} (A) and {} (B)</h1>\n<p class=\"note\">Drawn from {}; {}.</p>\n",
        esc(&na),
        esc(&nb),
        esc(&read_note(a)),
        esc(&read_note(b))
    );
    s.push_str(&legend(&[("A", A_COLOUR), ("B", B_COLOUR)]));
    let diff = |x: u64, y: u64| {
        let d = y as i64 - x as i64;
        if d > 0 {
            format!("+{}", thousands(d as u64))
        } else if d < 0 {
            format!("-{}", thousands(d.unsigned_abs()))
        } else {
            "0".into()
        }
    };
    let total = |st: &RunStats| st.dropped.values().map(|c| c.docs).sum::<u64>();
    let rows: Vec<(String, Vec<String>)> = [
        ("documents in", sa.input.docs, sb.input.docs),
        ("bytes in", sa.input.bytes, sb.input.bytes),
        ("documents kept", sa.kept.docs, sb.kept.docs),
        ("bytes kept", sa.kept.bytes, sb.kept.bytes),
        ("documents dropped", total(sa), total(sb)),
    ]
    .iter()
    .map(|&(what, x, y)| {
        (
            format!(" data-total=\"{what}\" data-a=\"{x}\" data-b=\"{y}\""),
            vec![what.to_string(), thousands(x), thousands(y), diff(x, y)],
        )
    })
    .collect();
    s.push_str("<h2 id=\"totals\">Totals</h2>\n");
    s.push_str(&table(&["", "A", "B", "B − A"], &rows));

    s.push_str("<h2 id=\"funnel\">Funnel</h2>\n");
    let mut labels: Vec<&str> = sa.steps.iter().map(|o| o.step.as_str()).collect();
    for o in &sb.steps {
        if !labels.contains(&o.step.as_str()) {
            labels.push(&o.step);
        }
    }
    let find = |st: &'_ RunStats, l: &str| st.steps.iter().find(|o| o.step == l).cloned();
    let bars: Vec<Bar> = labels
        .iter()
        .flat_map(|l| {
            [("A", sa, A_COLOUR), ("B", sb, B_COLOUR)].map(|(which, st, colour)| Bar {
                label: format!("{l} ({which})"),
                parts: vec![(find(st, l).map_or(0, |o| o.kept.docs), colour, "kept")],
            })
        })
        .collect();
    s.push_str(&hbars(&bars, "documents kept"));
    let rows: Vec<(String, Vec<String>)> = labels
        .iter()
        .map(|l| {
            let (x, y) = (find(sa, l), find(sb, l));
            let k = |o: &Option<OpStats>| o.as_ref().map_or(0, |o| o.kept.docs);
            let i = |o: &Option<OpStats>| o.as_ref().map_or(0, |o| o.input.docs);
            (
                format!(" data-step=\"{}\"", esc(l)),
                vec![
                    esc(l),
                    thousands(i(&x)),
                    thousands(k(&x)),
                    thousands(i(&y)),
                    thousands(k(&y)),
                    diff(k(&x), k(&y)),
                ],
            )
        })
        .collect();
    s.push_str(&table(
        &["step", "A in", "A kept", "B in", "B kept", "kept B − A"],
        &rows,
    ));
    let reasons: BTreeSet<&String> = sa.dropped.keys().chain(sb.dropped.keys()).collect();
    let rows: Vec<(String, Vec<String>)> = reasons
        .iter()
        .map(|r| {
            let x = sa.dropped.get(*r).map_or(0, |c| c.docs);
            let y = sb.dropped.get(*r).map_or(0, |c| c.docs);
            (
                format!(" data-reason=\"{}\" data-a=\"{x}\" data-b=\"{y}\"", esc(r)),
                vec![esc(r), thousands(x), thousands(y), diff(x, y)],
            )
        })
        .collect();
    s.push_str("<h4>Drop reasons</h4>\n");
    s.push_str(&table(&["reason", "A", "B", "B − A"], &rows));

    s.push_str(
        "<h2 id=\"distributions\">Distributions</h2>\n<p class=\"note\">The columns both runs \
         profiled at the same step, every document that reached it, A beside B.</p>\n",
    );
    let two = Series {
        names: [("A", A_COLOUR), ("B", B_COLOUR)],
        grouped: true,
    };
    for l in &labels {
        let (Some(x), Some(y)) = (find(sa, l), find(sb, l)) else {
            continue;
        };
        let mut cols: Vec<(String, &Histogram, &Histogram)> = vec![];
        if x.profile.text_bytes.total() != [0, 0] && y.profile.text_bytes.total() != [0, 0] {
            cols.push((
                "text length (bytes)".into(),
                &x.profile.text_bytes,
                &y.profile.text_bytes,
            ));
        }
        for (c, h) in &x.profile.columns {
            if let Some(g) = y.profile.columns.get(c) {
                cols.push((c.clone(), h, g));
            }
        }
        if cols.is_empty() {
            continue;
        }
        let mut part = format!("<h3>{}</h3>\n<div class=\"charts\">\n", esc(l));
        for (name, h, g) in &cols {
            let (bins, log) = bins_of(&[h, g]);
            // The same bins for both runs.
            let (ca, cb) = (bins_of_with(&bins, h), bins_of_with(&bins, g));
            let rows: Vec<(f64, f64, u64, u64)> = bins
                .iter()
                .enumerate()
                .map(|(i, b)| (b.0, b.1, ca[i], cb[i]))
                .collect();
            part.push_str(&format!(
                "<div><h4 data-column=\"{}\">{}</h4>\n{}</div>\n",
                esc(name),
                esc(name),
                histogram(&rows, log, &[], &two)
            ));
        }
        part.push_str("</div>\n");
        s.push_str(&part);
    }

    s.push_str("<h2 id=\"phases\">Time per phase</h2>\n");
    let phases: BTreeSet<&String> = sa
        .phases
        .iter()
        .chain(&sb.phases)
        .map(|p| &p.phase)
        .collect();
    let secs = |st: &RunStats, p: &str| st.phases.iter().find(|x| x.phase == p).map(|x| x.seconds);
    let rows: Vec<(String, Vec<String>)> = phases
        .iter()
        .map(|p| {
            let f = |v: Option<f64>| v.map_or("–".into(), |v| format!("{v:.3}"));
            (String::new(), vec![esc(p), f(secs(sa, p)), f(secs(sb, p))])
        })
        .collect();
    s.push_str(&table(&["phase", "A seconds", "B seconds"], &rows));
    page(&format!("sluice report: {na} and {nb}"), &s)
}

/// One histogram's counts (kept + dropped) in the given bins.
fn bins_of_with(bins: &[(f64, f64, [u64; 2])], h: &Histogram) -> Vec<u64> {
    let mut out = vec![0u64; bins.len()];
    for (v, kept, dropped) in h.buckets() {
        let i = bins.iter().rposition(|b| b.0 <= v).unwrap_or(0);
        out[i] += kept + dropped;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::profile::Histogram;

    fn run() -> Run {
        let mut read = OpStats::new("read");
        read.input = Count { docs: 3, bytes: 30 };
        read.kept = read.input;
        let mut step = OpStats::new("1:length_filter");
        step.input = read.kept;
        step.kept = Count { docs: 2, bytes: 25 };
        step.drop_one("length_filter:min_words", 5);
        let mut h = Histogram::default();
        for v in [1.0, 2.0, 2.0] {
            h.add(Some(v), v == 1.0);
        }
        step.profile.columns.insert("n<words>".into(), h);
        step.profile
            .sample("length_filter:min_words", "a&b", "<p>tiny</p>", None);
        let stats = RunStats::from_steps(vec![read, step], vec![]).unwrap();
        let mut extra = BTreeMap::new();
        extra.insert(
            "mixture_report.json".to_string(),
            serde_json::json!({"sources": [{"source": "web", "docs_after": 1234, "epochs": 0.5}]}),
        );
        extra.insert(
            "tokenize_report.json".to_string(),
            serde_json::json!({"tokens": 99, "documents": 2, "format": "megatron", "dtype": "uint16",
                               "sources": {"books": {"docs": 2, "tokens": 99}}}),
        );
        Run {
            dir: PathBuf::from("out/x"),
            stats,
            extra,
            read: vec![("stats.json".into(), 1)],
        }
    }

    #[test]
    fn a_page_has_every_section_with_its_numbers_escaped() {
        let html = render(&run());
        for needle in [
            "data-step=\"1:length_filter\" data-in=\"3\" data-added=\"0\" data-kept=\"2\" data-dropped=\"1\"",
            "data-reason=\"length_filter:min_words\" data-docs=\"1\" data-bytes=\"5\"",
            "data-column=\"n&lt;words&gt;\" data-values=\"3\"",
            "<summary>a&amp;b",
            "&lt;p&gt;tiny&lt;/p&gt;",
            "<td>web</td>",
            "<td>1,234</td>",
            "<td>books</td>",
            "99 tokens in 2 documents",
        ] {
            assert!(html.contains(needle), "{needle}");
        }
        assert!(!html.contains("<p>tiny"));
        assert_eq!(html, render(&run()));
        let both = render_compare(&run(), &run());
        assert!(both.contains("data-total=\"documents kept\" data-a=\"2\" data-b=\"2\""));
    }
}
