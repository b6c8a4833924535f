//! CCNet's `cutoff.csv` as `perplexity`'s fixed cut-offs: a header row of
//! language codes after an empty first cell, then one row per percentile
//! 0 to 100, its number first, each language's perplexity at that
//! percentile after (cc_net/data/cutoff.csv, read by cc_net's
//! `PerplexityBucket` with pandas, `index_col=0`).

use std::collections::BTreeMap;
use std::path::Path;

/// Per language, the perplexities at the two percentiles `q` (fractions,
/// whole percents: 0.3 is the row `30`). A language with an empty cell in
/// either row has no cut-offs.
pub fn read(path: &Path, q: [f64; 2]) -> Result<BTreeMap<String, Vec<f64>>, String> {
    let rows = q.map(|x| (x * 100.0).round() as i64);
    if q.iter()
        .zip(rows)
        .any(|(x, r)| (x * 100.0 - r as f64).abs() > 1e-9)
    {
        return Err(format!(
            "with a cut-off file, buckets must be whole percents (its rows are 0 to 100), not {q:?}"
        ));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the cut-off file {}: {e}", path.display()))?;
    let mut lines = text.lines().enumerate();
    let Some((_, header)) = lines.next() else {
        return Err(format!("{} is empty", path.display()));
    };
    let langs: Vec<&str> = header.split(',').skip(1).map(str::trim).collect();
    if langs.is_empty() || langs.iter().any(|l| l.is_empty()) {
        return Err(format!(
            "{}:1: the header must be an empty cell and then language codes (CCNet's cutoff.csv), not {header:?}",
            path.display()
        ));
    }
    let mut found: [Option<Vec<Option<f64>>>; 2] = [None, None];
    for (i, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        let mut cells = line.split(',').map(str::trim);
        let at = |what: &str| format!("{}:{}: {what}", path.display(), i + 1);
        let index: i64 = cells
            .next()
            .and_then(|c| c.parse::<f64>().ok())
            .filter(|x| x.fract() == 0.0)
            .map(|x| x as i64)
            .ok_or_else(|| at("the first cell must be the percentile (0 to 100)"))?;
        let Some(slot) = rows.iter().position(|&r| r == index) else {
            continue;
        };
        let values: Vec<Option<f64>> = cells
            .map(|c| {
                if c.is_empty() {
                    Ok(None)
                } else {
                    c.parse::<f64>()
                        .ok()
                        .filter(|x| x.is_finite())
                        .map(Some)
                        .ok_or_else(|| at(&format!("{c:?} is not a perplexity")))
                }
            })
            .collect::<Result<_, _>>()?;
        if values.len() != langs.len() {
            return Err(at(&format!(
                "{} values for {} languages",
                values.len(),
                langs.len()
            )));
        }
        found[slot] = Some(values);
    }
    let [Some(a), Some(b)] = found else {
        return Err(format!(
            "{} has no row for percentile {} (buckets {q:?})",
            path.display(),
            if found[0].is_none() { rows[0] } else { rows[1] }
        ));
    };
    let mut out = BTreeMap::new();
    for (k, lang) in langs.iter().enumerate() {
        if let (Some(x), Some(y)) = (a[k], b[k]) {
            if x > y {
                return Err(format!(
                    "{}: the cut-offs of `{lang}` decrease from percentile {} to {}",
                    path.display(),
                    rows[0],
                    rows[1]
                ));
            }
            out.insert(lang.to_string(), vec![x, y]);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ccnets_layout_at_the_percentiles_asked() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("cutoff.csv");
        let mut csv = String::from(",de,en,zh\n");
        for i in 0..=100 {
            csv.push_str(&format!(
                "{i},{},{},{}\n",
                i * 10,
                i * 20,
                if i == 60 {
                    String::new()
                } else {
                    (i * 30).to_string()
                }
            ));
        }
        std::fs::write(&p, csv).unwrap();
        let c = read(&p, [0.3, 0.6]).unwrap();
        assert_eq!(c["de"], [300.0, 600.0]);
        assert_eq!(c["en"], [600.0, 1200.0]);
        // An empty cell: no cut-offs for that language.
        assert!(!c.contains_key("zh"));
        assert!(read(&p, [0.333, 0.6])
            .unwrap_err()
            .contains("whole percents"));
        std::fs::write(&p, ",de\n0,1\n30,x\n").unwrap();
        let e = read(&p, [0.3, 0.6]).unwrap_err();
        assert!(e.contains("cutoff.csv:3") && e.contains("\"x\""), "{e}");
        std::fs::write(&p, ",de\n0,1\n30,2\n").unwrap();
        assert!(read(&p, [0.3, 0.6]).unwrap_err().contains("percentile 60"));
    }
}
