//! Inline SVG charts, written as text: no script, no library, the same
//! bytes for the same numbers, and every bar an element (`<rect>`) a test
//! can count and a reader can hover (`<title>` gives its numbers).

use std::fmt::Write;

use super::html::esc;
pub use crate::msg::thousands;

pub const KEPT: &str = "#3b7dd8";
pub const DROPPED: &str = "#e0713a";
const INK: &str = "#333";

/// One bar: its label, and its stacked parts (value, colour, what it is).
pub struct Bar {
    pub label: String,
    pub parts: Vec<(u64, &'static str, &'static str)>,
}

/// Horizontal stacked bars, one a row, scaled to the largest total: the
/// funnel, languages, phase times.
pub fn hbars(bars: &[Bar], unit: &str) -> String {
    let row = 22.0;
    let (label_w, bar_w) = (230.0, 520.0);
    let height = row * bars.len() as f64 + 10.0;
    let max = bars
        .iter()
        .map(|b| b.parts.iter().map(|p| p.0).sum::<u64>())
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="chart" width="{w}" height="{height}" viewBox="0 0 {w} {height}" role="img">"#,
        w = label_w + bar_w + 120.0
    );
    for (i, b) in bars.iter().enumerate() {
        let y = 5.0 + row * i as f64;
        let _ = write!(
            s,
            r#"<text x="{x}" y="{ty}" text-anchor="end" font-size="12" fill="{INK}">{}</text>"#,
            esc(&b.label),
            x = label_w - 6.0,
            ty = y + 14.0
        );
        let mut x = label_w;
        let mut total = 0;
        for &(v, colour, what) in &b.parts {
            total += v;
            if v == 0 {
                continue;
            }
            let w = bar_w * v as f64 / max;
            let _ = write!(
                s,
                r#"<rect x="{x:.2}" y="{y:.2}" width="{w:.2}" height="{h}" fill="{colour}"><title>{}: {what} {v} {unit}</title></rect>"#,
                esc(&b.label),
                h = row - 6.0
            );
            x += w;
        }
        let _ = write!(
            s,
            r#"<text x="{tx:.2}" y="{ty}" font-size="12" fill="{INK}">{}</text>"#,
            thousands(total),
            tx = x + 6.0,
            ty = y + 14.0
        );
    }
    s.push_str("</svg>");
    s
}

/// A vertical line marked on a histogram: its position and label.
pub struct Mark {
    pub at: f64,
    pub label: String,
}

/// How a histogram's two counts per bin are drawn.
pub struct Series {
    /// Names and colours of the two counts.
    pub names: [(&'static str, &'static str); 2],
    /// Side by side (two runs) rather than stacked (kept and dropped).
    pub grouped: bool,
}

pub const KEPT_DROPPED: Series = Series {
    names: [("kept", KEPT), ("dropped", DROPPED)],
    grouped: false,
};

/// A histogram: bins `(from, to, first, second)` on a linear or log axis,
/// the two counts stacked or side by side, threshold marks.
pub fn histogram(
    bins: &[(f64, f64, u64, u64)],
    log: bool,
    marks: &[Mark],
    series: &Series,
) -> String {
    let (w, h, left, bottom, top) = (640.0, 200.0, 50.0, 30.0, 18.0);
    let plot_w = w - left - 10.0;
    let plot_h = h - bottom - top;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="chart" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img">"#
    );
    let (Some(first), Some(last)) = (bins.first(), bins.last()) else {
        s.push_str("</svg>");
        return s;
    };
    let axis = |v: f64| {
        if log {
            v.max(f64::MIN_POSITIVE).log10()
        } else {
            v
        }
    };
    let (lo, hi) = (axis(first.0), axis(last.1));
    let span = if hi > lo { hi - lo } else { 1.0 };
    let xpos = |v: f64| left + plot_w * (axis(v) - lo) / span;
    let max = bins
        .iter()
        .map(|b| {
            if series.grouped {
                b.2.max(b.3)
            } else {
                b.2 + b.3
            }
        })
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    for &(from, to, a, b) in bins {
        let x0 = xpos(from);
        let bw = (xpos(to) - x0 - 1.0).max(1.0);
        let mut y = top + plot_h;
        for (k, v) in [a, b].into_iter().enumerate() {
            if v == 0 {
                continue;
            }
            let (what, colour) = series.names[k];
            let bh = plot_h * v as f64 / max;
            let (x, w) = if series.grouped {
                y = top + plot_h - bh;
                (x0 + bw / 2.0 * k as f64, bw / 2.0)
            } else {
                y -= bh;
                (x0, bw)
            };
            let _ = write!(
                s,
                r#"<rect x="{x:.2}" y="{y:.2}" width="{w:.2}" height="{bh:.2}" fill="{colour}"><title>{} to {}: {v} {what}</title></rect>"#,
                num(from),
                num(to)
            );
        }
    }
    let base = top + plot_h;
    let _ = write!(
        s,
        r#"<line x1="{left}" y1="{base}" x2="{x2}" y2="{base}" stroke="{INK}"/>"#,
        x2 = left + plot_w
    );
    for (v, anchor) in [(first.0, "start"), (last.1, "end")] {
        let _ = write!(
            s,
            r#"<text x="{:.2}" y="{}" font-size="11" text-anchor="{anchor}" fill="{INK}">{}</text>"#,
            xpos(v),
            base + 14.0,
            num(v)
        );
    }
    let _ = write!(
        s,
        r#"<text x="{}" y="{}" font-size="11" text-anchor="end" fill="{INK}">{}</text>"#,
        left - 4.0,
        top + 8.0,
        thousands(max as u64)
    );
    if log {
        let _ = write!(
            s,
            r#"<text x="{:.2}" y="{}" font-size="11" text-anchor="middle" fill="{INK}">log scale</text>"#,
            left + plot_w / 2.0,
            base + 26.0
        );
    }
    for (i, m) in marks.iter().enumerate() {
        let x = xpos(m.at).clamp(left, left + plot_w);
        let _ = write!(
            s,
            r##"<line class="threshold" x1="{x:.2}" y1="{top}" x2="{x:.2}" y2="{base}" stroke="#c0392b" stroke-width="1.5" stroke-dasharray="4 3"/><text x="{tx:.2}" y="{ty}" font-size="11" fill="#c0392b">{}</text>"##,
            esc(&m.label),
            tx = x + 3.0,
            ty = top - 4.0 + 12.0 * (i % 3) as f64
        );
    }
    s.push_str("</svg>");
    s
}

/// A number as a report shows it: whole numbers whole, others with four
/// significant digits.
pub fn num(v: f64) -> String {
    if v == v.trunc() && v.abs() < 1e15 {
        return thousands_i(v as i64);
    }
    let digits = (3 - v.abs().log10().floor() as i32).clamp(0, 12) as usize;
    format!("{v:.digits$}")
}

fn thousands_i(n: i64) -> String {
    if n < 0 {
        format!("-{}", thousands(n.unsigned_abs()))
    } else {
        thousands(n as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bar_is_a_rect_and_marks_are_lines() {
        let bins = [(0.0, 1.0, 5, 1), (1.0, 2.0, 0, 3), (2.0, 3.0, 7, 0)];
        let marks = [Mark {
            at: 1.5,
            label: "keep ≥ 1.5".into(),
        }];
        let svg = histogram(&bins, false, &marks, &KEPT_DROPPED);
        assert_eq!(svg.matches("<rect").count(), 4);
        assert_eq!(svg.matches("class=\"threshold\"").count(), 1);
        assert!(svg.contains("keep ≥ 1.5"));
        assert_eq!(svg, histogram(&bins, false, &marks, &KEPT_DROPPED));
        let two = Series {
            names: [("a", KEPT), ("b", DROPPED)],
            grouped: true,
        };
        assert_eq!(
            histogram(&bins, true, &[], &two).matches("<rect").count(),
            4
        );
        let bars = [Bar {
            label: "a<b".into(),
            parts: vec![(3, KEPT, "kept"), (1, DROPPED, "dropped")],
        }];
        let svg = hbars(&bars, "docs");
        assert_eq!(svg.matches("<rect").count(), 2);
        assert!(svg.contains("a&lt;b"));
        assert_eq!(num(0.65), "0.6500");
        assert_eq!(num(1234.0), "1,234");
        assert_eq!(num(12.5), "12.50");
    }
}
