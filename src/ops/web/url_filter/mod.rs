//! `url_filter`: drops pages by their URL, as RefinedWeb and FineWeb do
//! before extraction: domain and URL blocklists (the UT1 blacklist layout,
//! `category/{domains,urls}`, or plain one-per-line files; a subdomain
//! matches its listed parents), an allow-list that wins over them, and
//! banned words in the URL with datatrove's `URLFilter` lists and rules
//! (hard-banned words, soft-banned words counted against a threshold,
//! banned subwords in the URL with its punctuation removed).
//!
//! The word lists are datatrove 0.10.1's (`banned_words.txt`,
//! `soft_banned_words.txt`, `banned_subwords.txt` in this folder; Apache-2.0,
//! `LICENSE-datatrove`), built into the binary. One difference: URL words
//! are compared lower-cased (datatrove compares the URL's words as written,
//! so `Viagra` escapes its lowercase list).
//!
//! Lists hold millions of domains (UT1's `adult` has about 4.6 million), so
//! entries are kept as 64-bit hashes with the index of their list: 16 bytes
//! an entry instead of a string each (a collision between two of n entries
//! has odds n²/2⁶⁵, about 10⁻⁶ for 5 million). At the peak of loading that
//! is about 59 bytes a domain, the table's slack and growth included
//! (benches/web/url_lists.py). Lists are read once, when the pipeline is
//! built.

use std::path::{Path, PathBuf};

use aho_corasick::AhoCorasick;
use anyhow::{bail, Result};
use arrow::array::{Array, StringArray};
use hashbrown::HashMap;
use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_64;

use crate::ops::{
    shape, BuildCtx, DocBatch, DropMark, Op, OpInfo, OpKind, OpOutput, ParamDoc, StreamOp,
};
use crate::pipeline::spec::SpecError;

const BANNED_WORDS: &str = include_str!("banned_words.txt");
const SOFT_BANNED_WORDS: &str = include_str!("soft_banned_words.txt");
const BANNED_SUBWORDS: &str = include_str!("banned_subwords.txt");

#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub blocklist: Vec<String>,
    pub allowlist: Vec<String>,
    pub banned_words: String,
    pub soft_banned_words: String,
    pub banned_subwords: String,
    pub soft_word_threshold: usize,
    pub column: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            blocklist: vec![],
            allowlist: vec![],
            banned_words: "default".into(),
            soft_banned_words: "default".into(),
            banned_subwords: "default".into(),
            soft_word_threshold: 2,
            column: "url".into(),
        }
    }
}

pub const INFO: OpInfo = OpInfo {
    name: "url_filter",
    kind: OpKind::Stream,
    summary: "Drops pages whose URL is on a blocklist (UT1 folders or plain lists; subdomains \
              match their parents) or carries banned words (datatrove's URLFilter lists); an \
              allow-list wins.",
    params: &[
        ParamDoc {
            name: "blocklist",
            kind: "list",
            default: "[]",
            doc: "UT1 category folders (with `domains` and/or `urls` files), a folder of such \
                  folders (each a list), or files with one domain or URL per line",
        },
        ParamDoc {
            name: "allowlist",
            kind: "list",
            default: "[]",
            doc: "the same forms: a domain (or its parent) or URL listed here is never dropped",
        },
        ParamDoc {
            name: "banned_words",
            kind: "string",
            default: "\"default\"",
            doc: "\"default\" (datatrove's list), \"none\", or a file of words: a URL containing \
                  one as a word is dropped",
        },
        ParamDoc {
            name: "soft_banned_words",
            kind: "string",
            default: "\"default\"",
            doc: "\"default\", \"none\" or a file: a URL with `soft_word_threshold` of them is \
                  dropped",
        },
        ParamDoc {
            name: "banned_subwords",
            kind: "string",
            default: "\"default\"",
            doc: "\"default\", \"none\" or a file: dropped when one occurs anywhere in the URL \
                  with its punctuation removed",
        },
        ParamDoc {
            name: "soft_word_threshold",
            kind: "integer",
            default: "2",
            doc: "how many distinct soft-banned words drop a URL",
        },
        ParamDoc {
            name: "column",
            kind: "string",
            default: "\"url\"",
            doc: "the string column holding the URL",
        },
    ],
    drop_reasons: &[
        "url_filter:blocklist:<list>",
        "url_filter:banned_word",
        "url_filter:soft_banned_words",
        "url_filter:banned_subword",
    ],
    outputs: &[],
    build,
    config: shape::<Config>,
    example: r#"
[[step]]
op = "url_filter"
blocklist = ["fixtures/web/lists/ut1/adult", "fixtures/web/lists/my_domains.txt"]
"#,
    about: "A list is named by its folder (UT1: `adult`, `gambling`, …) or its file name \
            without extension, and the drop reason names it (`url_filter:blocklist:adult`); the \
            excluded row's detail gives the entry that matched. Lines starting with `#` and blank \
            lines are skipped; entries are lower-cased and lose a trailing dot, a leading `*.` \
            or `.`, and a scheme. A URL entry matches the page's URL without its scheme, a `www.` \
            and a trailing `/`. A row with a null URL is kept (there is nothing to judge).",
};

/// Domains and URLs of several named lists, as hashes.
#[derive(Default)]
struct Lists {
    names: Vec<String>,
    /// Entry hash → (list index, line) of the first list that has it.
    domains: HashMap<u64, u32>,
    urls: HashMap<u64, u32>,
}

impl Lists {
    fn load(paths: &[String], key: &str, ctx: &BuildCtx<'_>) -> Result<Lists, SpecError> {
        let mut lists = Lists::default();
        for p in paths {
            let path = PathBuf::from(p);
            if path.is_dir() {
                let has = |f: &str| path.join(f).is_file();
                if has("domains") || has("urls") {
                    lists.add_category(&path, key, ctx)?;
                    continue;
                }
                let mut subs: Vec<PathBuf> = std::fs::read_dir(&path)
                    .map_err(|e| ctx.error(key, format!("cannot read {p}: {e}")))?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|d| d.join("domains").is_file() || d.join("urls").is_file())
                    .collect();
                if subs.is_empty() {
                    return Err(ctx.error(
                        key,
                        format!(
                            "{p} has no `domains` or `urls` file, nor category folders with them"
                        ),
                    ));
                }
                subs.sort();
                for d in subs {
                    lists.add_category(&d, key, ctx)?;
                }
            } else if path.is_file() {
                let name = path
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default();
                lists.add_file(&path, &name, Kind::Either, key, ctx)?;
            } else {
                return Err(ctx.error(key, format!("{p}: no such file or folder")));
            }
        }
        Ok(lists)
    }

    fn add_category(&mut self, dir: &Path, key: &str, ctx: &BuildCtx<'_>) -> Result<(), SpecError> {
        let name = dir
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        for (file, kind) in [("domains", Kind::Domain), ("urls", Kind::Url)] {
            let f = dir.join(file);
            if f.is_file() {
                self.add_file(&f, &name, kind, key, ctx)?;
            }
        }
        Ok(())
    }

    fn add_file(
        &mut self,
        file: &Path,
        name: &str,
        kind: Kind,
        key: &str,
        ctx: &BuildCtx<'_>,
    ) -> Result<(), SpecError> {
        let index = match self.names.iter().position(|n| n == name) {
            Some(i) => i,
            None => {
                self.names.push(name.to_string());
                self.names.len() - 1
            }
        } as u32;
        let bytes = std::fs::read(file)
            .map_err(|e| ctx.error(key, format!("cannot read {}: {e}", file.display())))?;
        // UT1 files are mostly ASCII; a stray Latin-1 byte must not stop a list.
        let text = String::from_utf8_lossy(&bytes);
        for line in text.lines() {
            let entry = line.trim();
            if entry.is_empty() || entry.starts_with('#') {
                continue;
            }
            let is_url = match kind {
                Kind::Domain => false,
                Kind::Url => true,
                Kind::Either => entry.contains('/'),
            };
            let entry = normalise_entry(entry, is_url);
            if entry.is_empty() {
                continue;
            }
            let map = if is_url {
                &mut self.urls
            } else {
                &mut self.domains
            };
            map.entry(xxh3_64(entry.as_bytes())).or_insert(index);
        }
        Ok(())
    }

    /// The list (and the entry form) a host or URL is on.
    fn find(&self, host: &str, url_key: &[String]) -> Option<(u32, String)> {
        for k in url_key {
            if let Some(&i) = self.urls.get(&xxh3_64(k.as_bytes())) {
                return Some((i, k.clone()));
            }
        }
        let mut h = host;
        loop {
            if let Some(&i) = self.domains.get(&xxh3_64(h.as_bytes())) {
                return Some((i, h.to_string()));
            }
            match h.find('.') {
                Some(dot) => h = &h[dot + 1..],
                None => return None,
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Domain,
    Url,
    Either,
}

/// A list entry in the form URLs are compared in. A URL entry also loses
/// `www.` (UT1 lists a page with or without it); a domain entry keeps it,
/// so that `www.example.com` does not block the rest of `example.com`.
fn normalise_entry(entry: &str, is_url: bool) -> String {
    let e = entry.to_ascii_lowercase();
    let e = e.split_once("://").map_or(e.as_str(), |(_, rest)| rest);
    let e = e.trim_start_matches("*.").trim_start_matches('.');
    let e = if is_url {
        e.strip_prefix("www.").unwrap_or(e)
    } else {
        e
    };
    let e = e.trim_end_matches('/');
    match e.find('/') {
        // The host part loses a trailing dot (`example.com.`).
        Some(slash) => format!("{}{}", e[..slash].trim_end_matches('.'), &e[slash..]),
        None => e.trim_end_matches('.').to_string(),
    }
}

/// The host of a URL (lower-case, no trailing dot, no `www.` needed for
/// parents to match) and the URL forms a URL entry may have.
fn url_parts(url: &str) -> (String, Vec<String>) {
    let lower = url.trim().to_ascii_lowercase();
    let no_scheme = lower.split_once("://").map_or(lower.as_str(), |(_, r)| r);
    let no_fragment = no_scheme.split('#').next().unwrap_or("");
    let host_end = no_fragment.find(['/', '?']).unwrap_or(no_fragment.len());
    let authority = &no_fragment[..host_end];
    let host = authority.rsplit('@').next().unwrap_or("");
    // Strip a port (but not the colons of an IPv6 literal).
    let host = match host.rfind(':') {
        Some(c) if !host.ends_with(']') => &host[..c],
        _ => host,
    };
    let host = host.trim_end_matches('.').to_string();
    let full = normalise_entry(no_fragment, true);
    let without_query = normalise_entry(no_fragment.split('?').next().unwrap_or(""), true);
    let keys = if full == without_query {
        vec![full]
    } else {
        vec![full, without_query]
    };
    (host, keys)
}

/// The words of a URL, as datatrove splits them (on anything but ASCII
/// letters and digits), lower-cased.
fn url_words(url: &str) -> hashbrown::HashSet<String> {
    url.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase)
        .collect()
}

/// datatrove's list normalisation: lower-case, ASCII letters and digits only.
fn squeeze(s: &str) -> String {
    s.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

fn word_list(
    value: &str,
    builtin: &str,
    key: &str,
    ctx: &BuildCtx<'_>,
) -> Result<Vec<String>, SpecError> {
    let text = match value {
        "default" => builtin.to_string(),
        "none" => String::new(),
        path => std::fs::read_to_string(path).map_err(|e| {
            ctx.error(
                key,
                format!("`{key}` = `{path}`: not \"default\", \"none\" or a readable file: {e}"),
            )
        })?,
    };
    let mut words: Vec<String> = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(squeeze)
        .filter(|w| !w.is_empty())
        .collect();
    words.sort();
    words.dedup();
    Ok(words)
}

pub struct UrlFilter {
    block: Lists,
    allow: Lists,
    banned: hashbrown::HashSet<String>,
    soft: hashbrown::HashSet<String>,
    subwords: Option<(AhoCorasick, Vec<String>)>,
    threshold: usize,
    column: String,
}

fn build(ctx: &BuildCtx<'_>) -> Result<Op, SpecError> {
    let c: Config = ctx.config()?;
    if c.soft_word_threshold == 0 {
        return Err(ctx.error("soft_word_threshold", "must be at least 1".into()));
    }
    let subwords = word_list(&c.banned_subwords, BANNED_SUBWORDS, "banned_subwords", ctx)?;
    let subwords = if subwords.is_empty() {
        None
    } else {
        let ac = AhoCorasick::new(&subwords)
            .map_err(|e| ctx.error("banned_subwords", format!("cannot build the matcher: {e}")))?;
        Some((ac, subwords))
    };
    Ok(Op::Stream(Box::new(UrlFilter {
        block: Lists::load(&c.blocklist, "blocklist", ctx)?,
        allow: Lists::load(&c.allowlist, "allowlist", ctx)?,
        banned: word_list(&c.banned_words, BANNED_WORDS, "banned_words", ctx)?
            .into_iter()
            .collect(),
        soft: word_list(
            &c.soft_banned_words,
            SOFT_BANNED_WORDS,
            "soft_banned_words",
            ctx,
        )?
        .into_iter()
        .collect(),
        subwords,
        threshold: c.soft_word_threshold,
        column: c.column,
    })))
}

impl UrlFilter {
    fn judge(&self, url: &str) -> Option<DropMark> {
        let (host, keys) = url_parts(url);
        if self.allow.find(&host, &keys).is_some() {
            return None;
        }
        if let Some((list, entry)) = self.block.find(&host, &keys) {
            return Some(DropMark {
                reason: format!("url_filter:blocklist:{}", self.block.names[list as usize]),
                detail: Some(format!("`{entry}` is listed")),
            });
        }
        let words = url_words(url);
        if let Some(w) = words.iter().filter(|w| self.banned.contains(*w)).min() {
            return Some(DropMark {
                reason: "url_filter:banned_word".into(),
                detail: Some(format!("`{w}`")),
            });
        }
        let mut soft: Vec<&String> = words.iter().filter(|w| self.soft.contains(*w)).collect();
        if soft.len() >= self.threshold {
            soft.sort();
            return Some(DropMark {
                reason: "url_filter:soft_banned_words".into(),
                detail: Some(format!("{soft:?}")),
            });
        }
        if let Some((ac, words)) = &self.subwords {
            if let Some(m) = ac.find(&squeeze(url)) {
                return Some(DropMark {
                    reason: "url_filter:banned_subword".into(),
                    detail: Some(format!("`{}`", words[m.pattern().as_usize()])),
                });
            }
        }
        None
    }
}

impl StreamOp for UrlFilter {
    fn apply(&self, batch: DocBatch) -> Result<OpOutput> {
        let Some(col) = batch.data.column_by_name(&self.column) else {
            bail!(
                "url_filter: the input has no column `{}` (WARC input has `url`; name another with `column`)",
                self.column
            );
        };
        let Some(urls) = col.as_any().downcast_ref::<StringArray>() else {
            bail!(
                "url_filter: column `{}` is {}, not a string",
                self.column,
                col.data_type()
            );
        };
        let drops: Vec<Option<DropMark>> = (0..urls.len())
            .map(|i| {
                (!urls.is_null(i))
                    .then(|| self.judge(urls.value(i)))
                    .flatten()
            })
            .collect();
        Ok(OpOutput::new(batch, drops))
    }
}

#[cfg(test)]
mod tests;
