//! Fills a step's [`Profile`] from each batch it settles: what `sluice
//! report` draws (see `stats::profile`).

use anyhow::Result;
use arrow::array::{Array, AsArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Float64Type, Schema};

use super::excluded::DROP_COLUMNS;
use crate::ops::OpOutput;
use crate::stats::profile::Profile;

/// String values longer than this count as `(other)`: a category is a
/// short code (`en`, `web`, `head`), not a URL or a title.
const CATEGORY_BYTES: usize = 32;

/// String columns profiled at the read step (later steps profile the
/// string columns they write).
const INPUT_CATEGORIES: &[&str] = &["lang", "source"];

/// Adds a step's output to its profile: text length, the columns it wrote
/// (those not in `before`; with no `before`, the input's numeric columns),
/// and, with `samples`, samples of what it dropped.
pub(super) fn profile(
    before: Option<&Schema>,
    out: &OpOutput,
    samples: bool,
    p: &mut Profile,
) -> Result<()> {
    let batch = &out.batch;
    let n = batch.num_rows();
    if n == 0 {
        return Ok(());
    }
    let dropped: Vec<bool> = if out.drops.is_empty() {
        vec![false; n]
    } else {
        out.drops.iter().map(Option::is_some).collect()
    };
    let texts = batch.texts();
    for (i, &d) in dropped.iter().enumerate() {
        let len = if texts.is_null(i) {
            None
        } else {
            Some(texts.value_length(i) as f64)
        };
        p.text_bytes.add(len, d);
    }
    let schema = batch.data.schema();
    for (c, field) in schema.fields().iter().enumerate() {
        let name = field.name();
        if c == batch.text || c == batch.id || DROP_COLUMNS.contains(&name.as_str()) {
            continue;
        }
        if before.is_some_and(|s| s.index_of(name).is_ok()) {
            continue;
        }
        let col = batch.data.column(c);
        let t = field.data_type();
        if t.is_numeric() || *t == DataType::Boolean {
            let values = cast(col, &DataType::Float64)?;
            let values = values.as_primitive::<Float64Type>();
            let h = p.columns.entry(name.clone()).or_default();
            for (i, &d) in dropped.iter().enumerate() {
                h.add((!values.is_null(i)).then(|| values.value(i)), d);
            }
        } else if matches!(
            t,
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Dictionary(..)
        ) && (before.is_some() || INPUT_CATEGORIES.contains(&name.as_str()))
        {
            let values = cast(col, &DataType::Utf8)?;
            let values = values.as_string::<i32>();
            for (i, &d) in dropped.iter().enumerate() {
                let v = (!values.is_null(i)).then(|| values.value(i));
                let v = v.map(|v| {
                    if v.len() > CATEGORY_BYTES {
                        "(other)"
                    } else {
                        v
                    }
                });
                p.category(name, v, d);
            }
        }
    }
    if samples && out.drops.iter().any(Option::is_some) {
        let ids = cast(batch.data.column(batch.id), &DataType::Utf8)?;
        let ids = ids.as_string::<i32>();
        for (i, mark) in out.drops.iter().enumerate() {
            if let Some(m) = mark {
                let text = if texts.is_null(i) { "" } else { texts.value(i) };
                p.sample(&m.reason, ids.value(i), text, m.detail.as_deref());
            }
        }
    }
    Ok(())
}
