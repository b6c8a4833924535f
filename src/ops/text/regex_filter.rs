//! `regex_filter`: drops the documents that match any of a list of regular
//! expressions (or, with `action = "keep"`, those that match none), in the
//! text or in another string column such as `url`. Users ask for it to cut
//! boilerplate families (cookie walls, "lorem ipsum", spam phrases) and to
//! keep a topic slice; datatrove's `RegexFilter` does the first.
//!
//! All patterns run as one `RegexSet` (a single pass over each text,
//! whatever the number of patterns); the first matching pattern, in the
//! order given, is named in the excluded row's `drop_detail`.

use anyhow::{bail, Result};
use arrow::array::{Array, StringArray};
use regex::RegexSet;
use serde::{Deserialize, Serialize};

use crate::ops::{
    shape, BuildCtx, DocBatch, DropMark, Op, OpInfo, OpKind, OpOutput, ParamDoc, StreamOp,
};
use crate::pipeline::spec::SpecError;

/// What a match means.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// A document that matches any pattern is dropped.
    #[default]
    Drop,
    /// Only documents that match some pattern are kept.
    Keep,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    // Required (its ParamDoc says so): checked by BuildCtx::config.
    pub patterns: Vec<String>,
    pub action: Action,
    /// A string column to match instead of the text.
    pub column: Option<String>,
}

pub const INFO: OpInfo = OpInfo {
    name: "regex_filter",
    kind: OpKind::Stream,
    summary: "Drops documents matching any of `patterns` (Rust regex syntax), or with action = \"keep\" \
              those matching none, in the text or another string column.",
    params: &[
        ParamDoc {
            name: "patterns",
            kind: "list",
            default: "required",
            doc: "regular expressions (`(?i)` for case-insensitive, `(?m)^` for line starts)",
        },
        ParamDoc {
            name: "action",
            kind: "string",
            default: "\"drop\"",
            doc: "\"drop\": matching documents go; \"keep\": only matching documents stay",
        },
        ParamDoc {
            name: "column",
            kind: "string",
            default: "the text",
            doc: "a string column to match instead (e.g. \"url\"); a null value matches nothing",
        },
    ],
    drop_reasons: &["regex_filter:match", "regex_filter:no_match"],
    outputs: &[],
    build,
    config: shape::<Config>,
    example: r#"
[[step]]
op = "regex_filter"
patterns = ["(?i)lorem ipsum", "(?i)accept (all )?cookies"]
"#,
    about: "With `action = \"drop\"` the excluded row's `drop_detail` names the first pattern that \
            matched. Matching is on the whole value, unanchored: anchor with `^`/`$` (and `(?m)` for \
            lines) where that is meant.",
};

/// The built op: the patterns compiled once, shared by every task.
pub struct RegexFilter {
    set: RegexSet,
    patterns: Vec<String>,
    action: Action,
    column: Option<String>,
}

fn build(ctx: &BuildCtx<'_>) -> Result<Op, SpecError> {
    let c: Config = ctx.config()?;
    if c.patterns.is_empty() {
        return Err(ctx.error("patterns", "give at least one pattern".into()));
    }
    // Each pattern alone first, so that the error names the one at fault.
    for p in &c.patterns {
        if let Err(e) = regex::Regex::new(p) {
            return Err(ctx.error("patterns", format!("pattern {p:?} is not valid: {e}")));
        }
    }
    let set = RegexSet::new(&c.patterns)
        .map_err(|e| ctx.error("patterns", format!("the patterns together: {e}")))?;
    Ok(Op::Stream(Box::new(RegexFilter {
        set,
        patterns: c.patterns,
        action: c.action,
        column: c.column,
    })))
}

impl RegexFilter {
    /// Why a value is dropped, if it is.
    fn judge(&self, value: Option<&str>) -> Option<DropMark> {
        let first = value.and_then(|v| self.set.matches(v).into_iter().next());
        match (self.action, first) {
            (Action::Drop, Some(i)) => Some(DropMark {
                reason: "regex_filter:match".into(),
                detail: Some(format!("pattern {:?}", self.patterns[i])),
            }),
            (Action::Keep, None) => Some(DropMark::new("regex_filter:no_match")),
            _ => None,
        }
    }
}

impl StreamOp for RegexFilter {
    fn apply(&self, batch: DocBatch) -> Result<OpOutput> {
        let values: &StringArray = match &self.column {
            None => batch.texts(),
            Some(name) => match batch.data.column_by_name(name) {
                Some(c) => match c.as_any().downcast_ref::<StringArray>() {
                    Some(s) => s,
                    None => bail!(
                        "regex_filter: column `{name}` is {}, not a string",
                        c.data_type()
                    ),
                },
                None => bail!("regex_filter: the input has no column `{name}`"),
            },
        };
        let drops: Vec<Option<DropMark>> = (0..values.len())
            .map(|i| self.judge((!values.is_null(i)).then(|| values.value(i))))
            .collect();
        let drops = if drops.iter().all(Option::is_none) {
            vec![]
        } else {
            drops
        };
        Ok(OpOutput::new(batch, drops))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(patterns: &[&str], action: Action) -> RegexFilter {
        let patterns: Vec<String> = patterns.iter().map(|p| p.to_string()).collect();
        RegexFilter {
            set: RegexSet::new(&patterns).unwrap(),
            patterns,
            action,
            column: None,
        }
    }

    #[test]
    fn drops_on_the_first_matching_pattern_and_keeps_the_rest() {
        let f = op(&["(?i)lorem ipsum", "cookies"], Action::Drop);
        let d = f.judge(Some("we use Cookies and LOREM IPSUM")).unwrap();
        assert_eq!(d.reason, "regex_filter:match");
        assert_eq!(d.detail.as_deref(), Some("pattern \"(?i)lorem ipsum\""));
        assert_eq!(f.judge(Some("a plain report on the flood")), None);
        assert_eq!(f.judge(None), None, "a null value matches nothing");
    }

    #[test]
    fn keep_keeps_only_matches() {
        let f = op(&["河水", "(?i)^flood"], Action::Keep);
        assert_eq!(f.judge(Some("河水在夜里慢慢上涨")), None);
        assert_eq!(f.judge(Some("Flood warning")), None);
        assert_eq!(
            f.judge(Some("a drought")).unwrap().reason,
            "regex_filter:no_match"
        );
        assert_eq!(
            f.judge(None).unwrap().reason,
            "regex_filter:no_match",
            "a null value matches nothing, so it goes"
        );
    }

    /// A bad pattern, no pattern, or a missing `patterns` is a spec error
    /// that names the key (and the pattern at fault).
    #[test]
    fn bad_patterns_are_spec_errors() {
        let build = |step: &str| {
            let src = format!(
                "[input]\npaths = [\"x.parquet\"]\n\n[[step]]\nop = \"regex_filter\"\n{step}\n\n\
                 [output]\ndir = \"out\"\n"
            );
            let spec = crate::pipeline::spec::Spec::parse("spec.toml", &src).unwrap();
            crate::ops::build_steps(&spec).err().map(|e| e.to_string())
        };
        let err = build("patterns = [\"ok\", \"(unclosed\"]").unwrap();
        assert!(err.contains("pattern \"(unclosed\" is not valid"), "{err}");
        assert!(
            err.contains("spec.toml:6"),
            "names the line of the key: {err}"
        );
        let err = build("patterns = []").unwrap();
        assert!(err.contains("at least one pattern"), "{err}");
        let err = build("action = \"keep\"").unwrap();
        assert!(err.contains("missing key `patterns`"), "{err}");
        let err = build("patterns = [\"a\"]\naction = \"kept\"").unwrap();
        assert!(err.contains("unknown action `kept`"), "{err}");
        assert!(build("patterns = [\"a\"]\naction = \"keep\"").is_none());
    }
}
