//! `select`: keeps the rows for which an expression over their columns is
//! true — thresholds on the signals earlier steps wrote, RedPajama v2's
//! way of leaving them to the user. The expression is SQL's (a `WHERE`
//! clause): sqlparser reads it (the parser of DataFusion and polars-sql),
//! [`to_polars`] turns its tree into a polars expression, and polars
//! evaluates it over the columns it names. No parser of our own, and not
//! polars' `sql` feature: that one turns on a dozen dtypes and kernels
//! (decimal, struct, array, time zones, regex, joins) that cost a cold
//! build 20 minutes, for an expression language a filter does not need.
use anyhow::{anyhow, bail, Context, Result};
use arrow::array::{Array, BooleanArray, Float64Array, Int64Array, StringArray};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use polars::prelude::{Column, DataFrame, IntoLazy, NamedFrom, Series};
use serde::{Deserialize, Serialize};

use crate::ops::{
    shape, BuildCtx, DocBatch, DropMark, Op, OpInfo, OpKind, OpOutput, ParamDoc, StreamOp,
};
use crate::pipeline::spec::SpecError;

mod sql;

#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Select {
    pub expr: String,
    /// The drop reason is `select:<reason>`.
    pub reason: String,
}

impl Default for Select {
    fn default() -> Self {
        Select {
            expr: String::new(),
            reason: "rejected".into(),
        }
    }
}

pub const INFO: OpInfo = OpInfo {
    name: "select",
    kind: OpKind::Stream,
    summary: "Keeps the rows for which an expression over their columns is true (SQL's WHERE, \
              evaluated by polars): thresholds on the signals earlier steps wrote.",
    params: &[
        ParamDoc {
            name: "expr",
            kind: "string",
            default: "required",
            doc: "e.g. \"lang == 'en' and lang_score >= 0.65\"; strings in single quotes",
        },
        ParamDoc {
            name: "reason",
            kind: "string",
            default: "\"rejected\"",
            doc: "rows where it is not true are dropped as `select:<reason>`",
        },
    ],
    drop_reasons: &["select:<reason>"],
    outputs: &[],
    build,
    config: shape::<Select>,
    example: r#"
[[step]]
op = "select"
expr = "source == 'web' and id not in ('empty', 'blank')"
reason = "not_web"
"#,
    about: r#"
The expression is SQL's `WHERE` clause, read by sqlparser and evaluated by
polars: comparisons (`==` or `=`, `!=`, `<`, `>=`, …), `and`, `or`,
`not`, `in ('en', 'zh')`, `between 3 and 5`, `is null`, `is not null`,
`is true`, `like 'ab%'` (a prefix, a suffix or a whole value), arithmetic
(`+ - * / %`, `/` the real quotient) and the functions `length(text)`
(characters), `lower(…)`, `upper(…)`. Strings are in single quotes; a
name in double quotes is a column (for names SQL reserves). A row is kept
only where the expression is true: where it is false or null (a null in a
compared column) the row is dropped as `select:<reason>`. The columns it
names must exist with string, integer, float or boolean values; a column
that is missing, or an expression that is not true or false per row, stops
the run with an error naming it; an expression that does not parse, or
uses what is not listed here, is an error at the key before any row is
read.
"#,
};

fn build(ctx: &BuildCtx<'_>) -> Result<Op, SpecError> {
    let s: Select = ctx.config()?;
    if s.expr.trim().is_empty() {
        return Err(ctx.error("expr", "expr is empty".into()));
    }
    if s.reason.is_empty() || s.reason.contains(char::is_whitespace) {
        return Err(ctx.error(
            "reason",
            format!(
                "reason `{}` must be one word (it names the drop reason)",
                s.reason
            ),
        ));
    }
    let (expr, columns) = sql::parse(&s.expr)
        .map_err(|e| ctx.error("expr", format!("`{}` is not an expression: {e}", s.expr)))?;
    Ok(Op::Stream(Box::new(SelectOp {
        text: s.expr,
        reason: format!("select:{}", s.reason),
        expr,
        columns,
    })))
}

struct SelectOp {
    text: String,
    reason: String,
    expr: polars::prelude::Expr,
    columns: Vec<String>,
}

/// One of the batch's columns as a polars column.
fn to_polars(batch: &DocBatch, name: &str) -> Result<Column> {
    let col = batch.data.column_by_name(name).ok_or_else(|| {
        let names: Vec<String> = batch
            .data
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        anyhow!(
            "select: no column `{name}` (the rows have {}); a string in the expression \
             goes in single quotes",
            names.join(", ")
        )
    })?;
    let series = match col.data_type() {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            let c = cast(col, &DataType::Utf8)?;
            let c = c.as_any().downcast_ref::<StringArray>().expect("Utf8");
            Series::new(name.into(), c.iter().collect::<Vec<Option<&str>>>())
        }
        DataType::Boolean => {
            let c = col
                .as_any()
                .downcast_ref::<BooleanArray>()
                .expect("Boolean");
            Series::new(name.into(), c.iter().collect::<Vec<Option<bool>>>())
        }
        t if t.is_integer() => {
            let c = cast(col, &DataType::Int64)?;
            let c = c.as_any().downcast_ref::<Int64Array>().expect("Int64");
            Series::new(name.into(), c.iter().collect::<Vec<Option<i64>>>())
        }
        t if t.is_floating() => {
            let c = cast(col, &DataType::Float64)?;
            let c = c.as_any().downcast_ref::<Float64Array>().expect("Float64");
            Series::new(name.into(), c.iter().collect::<Vec<Option<f64>>>())
        }
        t => bail!(
            "select: column `{name}` holds {t}; an expression compares strings, numbers and \
             booleans"
        ),
    };
    Ok(series.into())
}

impl SelectOp {
    /// Whether each row is kept.
    fn keeps(&self, batch: &DocBatch) -> Result<Vec<bool>> {
        let n = batch.data.num_rows();
        let columns = self
            .columns
            .iter()
            .map(|c| to_polars(batch, c))
            .collect::<Result<Vec<_>>>()?;
        let df = DataFrame::new(n, columns).context("select: bug: columns of unequal length")?;
        let out = df
            .lazy()
            .select([self.expr.clone().alias("keep")])
            .collect()
            .map_err(|e| anyhow!("select: `{}`: {e}", self.text))?;
        let keep = out
            .column("keep")
            .map_err(|e| anyhow!("select: bug: {e}"))?;
        let keep = keep.bool().map_err(|_| {
            anyhow!(
                "select: `{}` gives {} per row, not true or false",
                self.text,
                keep.dtype()
            )
        })?;
        let values: Vec<bool> = (0..keep.len()).map(|i| keep.get(i) == Some(true)).collect();
        match values.len() {
            // An expression of literals only gives one value for all rows.
            1 if n != 1 => Ok(vec![values[0]; n]),
            len if len == n => Ok(values),
            len => bail!("select: `{}` gives {len} values for {n} rows", self.text),
        }
    }
}

impl StreamOp for SelectOp {
    fn apply(&self, batch: DocBatch) -> Result<OpOutput> {
        if batch.data.num_rows() == 0 {
            return Ok(OpOutput::new(batch, vec![]));
        }
        let keeps = self.keeps(&batch)?;
        let drops = keeps
            .into_iter()
            .map(|k| (!k).then(|| DropMark::new(self.reason.clone())))
            .collect();
        Ok(OpOutput::new(batch, drops))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn batch() -> DocBatch {
        use arrow::datatypes::{Field, Schema};
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Utf8, true),
            Field::new("text", DataType::Utf8, true),
            Field::new("lang", DataType::Utf8, true),
            Field::new("score", DataType::Float32, true),
            Field::new("words", DataType::UInt32, true),
        ]));
        let data = arrow::record_batch::RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(vec!["a", "b", "c", "d"])),
                Arc::new(StringArray::from(vec!["x", "y", "z", "w"])),
                Arc::new(StringArray::from(vec![
                    Some("en"),
                    Some("zh"),
                    Some("en"),
                    None,
                ])),
                Arc::new(arrow::array::Float32Array::from(vec![0.9, 0.8, 0.1, 0.95])),
                Arc::new(arrow::array::UInt32Array::from(vec![100, 5, 300, 50])),
            ],
        )
        .unwrap();
        DocBatch {
            data,
            text: 1,
            id: 0,
        }
    }

    fn op(expr: &str) -> SelectOp {
        let (e, columns) = sql::parse(expr).unwrap();
        SelectOp {
            text: expr.into(),
            reason: "select:test".into(),
            columns,
            expr: e,
        }
    }

    #[test]
    fn expressions_keep_the_rows_they_are_true_for() {
        let b = batch();
        let k = |e: &str| op(e).keeps(&b).unwrap();
        assert_eq!(
            k("lang == 'en' and score > 0.2"),
            [true, false, false, false]
        );
        assert_eq!(k("lang = 'en' or words < 10"), [true, true, true, false]);
        // A null compared is not true: the row goes.
        assert_eq!(k("lang != 'en'"), [false, true, false, false]);
        assert_eq!(
            k("lang in ('en', 'zh') and words between 50 and 200"),
            [true, false, false, false]
        );
        assert_eq!(k("lang is null"), [false, false, false, true]);
        assert_eq!(k("1 = 1"), [true; 4]);
        assert_eq!(k("not (lang = 'en')"), [false, true, false, false]);
        assert_eq!(k("lang not in ('zh')"), [true, false, true, false]);
        assert_eq!(
            k("words not between 50 and 200"),
            [false, true, true, false]
        );
        assert_eq!(k("(lang = 'en') is not true"), [false, true, false, true]);
        assert_eq!(
            k("words / 100 > 2.5 or score <= -0.5"),
            [false, false, true, false]
        );
        assert_eq!(k("words % 2 = 1"), [false, true, false, false]);
        assert_eq!(
            k("id like 'a%' or id like '%d' or id like 'c'"),
            [true, false, true, true]
        );
        assert_eq!(
            k("length(upper(lang)) = 2 and lower(\"lang\") = 'zh'"),
            [false, true, false, false]
        );
        assert_eq!(k("lang is not null and true"), [true, true, true, false]);
    }

    #[test]
    fn mistakes_are_errors_that_say_what() {
        let b = batch();
        let e = op("lang == \"en\"").keeps(&b).unwrap_err().to_string();
        assert!(
            e.contains("no column `en`") && e.contains("single quotes"),
            "{e}"
        );
        let e = op("words + 1").keeps(&b).unwrap_err().to_string();
        assert!(e.contains("not true or false"), "{e}");
        for bad in [
            "lang == ",
            "lang == 'en' order by id",
            "text like '%war%'",
            "sqrt(score) > 1",
            "lang in ()",
        ] {
            assert!(sql::parse(bad).is_err(), "{bad}");
        }
    }
}
