//! The mixture report: per source, documents and tokens before and after,
//! target and achieved shares, and epochs (tokens after / tokens before),
//! computed with polars; rendered as JSON and as a text table.

use std::collections::BTreeMap;

use anyhow::Result;
use polars::prelude::*;
use serde_json::json;

use crate::msg::thousands;

pub struct Report {
    pub json: serde_json::Value,
    pub table: String,
}

/// A tally of one source, as the mixture op keeps them.
pub trait Tallied {
    fn docs(&self) -> u64;
    fn tokens(&self) -> u64;
}

const COLUMNS: &[&str] = &[
    "source",
    "weight",
    "target_share",
    "target_tokens",
    "docs_before",
    "tokens_before",
    "share_before",
    "factor",
    "docs_after",
    "tokens_after",
    "share_after",
    "epochs",
];

/// `before`/`after` by source; `factors` the plan's; every weighted source
/// appears (with zeros where it holds nothing).
pub fn build<T: Tallied>(
    weights: &BTreeMap<String, f64>,
    before: &BTreeMap<String, T>,
    after: &BTreeMap<String, T>,
    factors: &BTreeMap<String, f64>,
    total_tokens: u64,
) -> Result<Report> {
    let names: Vec<&str> = weights.keys().map(String::as_str).collect();
    let pick = |m: &BTreeMap<String, T>, f: fn(&T) -> u64| -> Vec<u64> {
        names.iter().map(|n| m.get(*n).map_or(0, f)).collect()
    };
    let df = df!(
        "source" => names.clone(),
        "weight" => names.iter().map(|n| weights[*n]).collect::<Vec<f64>>(),
        "docs_before" => pick(before, T::docs),
        "tokens_before" => pick(before, T::tokens),
        "factor" => names.iter().map(|n| factors.get(*n).copied().unwrap_or(0.0)).collect::<Vec<f64>>(),
        "docs_after" => pick(after, T::docs),
        "tokens_after" => pick(after, T::tokens),
    )?;
    let share = |c: &str| {
        let x = col(c).cast(DataType::Float64);
        (x.clone() / x.sum()).fill_nan(lit(0.0))
    };
    let df = df
        .lazy()
        .with_columns([
            share("weight").alias("target_share"),
            share("tokens_before").alias("share_before"),
            share("tokens_after").alias("share_after"),
            (col("tokens_after").cast(DataType::Float64)
                / col("tokens_before").cast(DataType::Float64))
            .fill_nan(lit(0.0))
            .alias("epochs"),
        ])
        .with_columns([(share("weight") * lit(total_tokens as f64) + lit(0.5))
            .cast(DataType::UInt64)
            .alias("target_tokens")])
        .select(COLUMNS.iter().map(|c| col(*c)).collect::<Vec<_>>())
        .collect()?;

    let mut rows = vec![];
    for i in 0..df.height() {
        let mut row = serde_json::Map::new();
        for c in COLUMNS {
            let v = df.column(c)?.get(i)?;
            let j = match v {
                AnyValue::String(s) => json!(s),
                AnyValue::UInt64(n) => json!(n),
                AnyValue::Float64(f) => json!(f),
                other => json!(other.to_string()),
            };
            row.insert(c.to_string(), j);
        }
        rows.push(serde_json::Value::Object(row));
    }
    let sum = |c: &str| -> Result<u64> { Ok(df.column(c)?.sum_reduce()?.value().try_extract()?) };
    let totals = json!({
        "target_tokens": total_tokens,
        "docs_before": sum("docs_before")?,
        "tokens_before": sum("tokens_before")?,
        "docs_after": sum("docs_after")?,
        "tokens_after": sum("tokens_after")?,
    });

    let mut table = format!(
        "mixture: {} tokens planned ({} target), from {} tokens\n",
        thousands(totals["tokens_after"].as_u64().unwrap_or(0)),
        thousands(total_tokens),
        thousands(totals["tokens_before"].as_u64().unwrap_or(0)),
    );
    table.push_str(&format!(
        "{:<16} {:>8} {:>12} {:>16} {:>8} {:>8} {:>12} {:>16} {:>8}\n",
        "source",
        "target",
        "docs before",
        "tokens before",
        "share",
        "epochs",
        "docs after",
        "tokens after",
        "share"
    ));
    for r in &rows {
        let f = |k: &str| r[k].as_f64().unwrap_or(0.0);
        let u = |k: &str| thousands(r[k].as_u64().unwrap_or(0));
        table.push_str(&format!(
            "{:<16} {:>7.1}% {:>12} {:>16} {:>7.1}% {:>8.2} {:>12} {:>16} {:>7.1}%\n",
            r["source"].as_str().unwrap_or(""),
            100.0 * f("target_share"),
            u("docs_before"),
            u("tokens_before"),
            100.0 * f("share_before"),
            f("epochs"),
            u("docs_after"),
            u("tokens_after"),
            100.0 * f("share_after"),
        ));
    }
    Ok(Report {
        json: json!({ "totals": totals, "sources": rows }),
        table,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct T(u64, u64);
    impl Tallied for T {
        fn docs(&self) -> u64 {
            self.0
        }
        fn tokens(&self) -> u64 {
            self.1
        }
    }

    #[test]
    fn shares_and_epochs() {
        let weights = BTreeMap::from([("web".to_string(), 3.0), ("books".to_string(), 1.0)]);
        let before = BTreeMap::from([
            ("web".to_string(), T(100, 9_000)),
            ("books".to_string(), T(10, 1_000)),
        ]);
        let after = BTreeMap::from([
            ("web".to_string(), T(50, 4_500)),
            ("books".to_string(), T(15, 1_500)),
        ]);
        let factors = BTreeMap::from([("web".to_string(), 0.5), ("books".to_string(), 1.5)]);
        let r = build(&weights, &before, &after, &factors, 6_000).unwrap();
        let s = &r.json["sources"];
        // Sources in name order: books, web.
        assert_eq!(s[0]["source"], "books");
        assert_eq!(s[0]["target_share"], 0.25);
        assert_eq!(s[0]["target_tokens"], 1_500);
        assert_eq!(s[0]["epochs"], 1.5);
        assert_eq!(s[1]["share_before"], 0.9);
        assert_eq!(s[1]["share_after"], 0.75);
        assert_eq!(r.json["totals"]["tokens_after"], 6_000);
        assert!(r.table.contains("6,000 tokens planned"), "{}", r.table);
        assert!(r.table.lines().any(|l| l.starts_with("web")), "{}", r.table);
    }

    #[test]
    fn a_source_without_tokens_has_zero_epochs() {
        let weights = BTreeMap::from([("a".to_string(), 1.0), ("b".to_string(), 0.0)]);
        let before = BTreeMap::from([("a".to_string(), T(1, 10))]);
        let after = BTreeMap::from([("a".to_string(), T(2, 20))]);
        let r = build(&weights, &before, &after, &BTreeMap::new(), 20).unwrap();
        assert_eq!(r.json["sources"][1]["epochs"], 0.0);
        assert_eq!(r.json["sources"][1]["share_after"], 0.0);
    }
}
