//! Finds the input files of a spec and cuts them into tasks: one per file, or
//! several for a large file (groups of Parquet row groups, byte ranges of
//! uncompressed JSONL).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use parquet::file::reader::{FileReader, SerializedFileReader};
use serde::{Deserialize, Serialize};

use super::store;
use crate::pipeline::spec::{Format, InputSpec};

/// How a JSONL file is compressed, from its extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputFile {
    /// The path as matched (relative paths stay relative): names files in
    /// errors and in synthesised ids.
    pub path: PathBuf,
    pub format: Format,
    pub compression: Compression,
    pub size: u64,
    /// Last write time (ns since the Unix epoch): with the size, what tells
    /// a rerun that a file changed under a started run.
    #[serde(default)]
    pub modified: Option<u64>,
    /// The `[input.sources]` group the file is in.
    #[serde(default)]
    pub source: Option<String>,
}

/// The part of a file one task reads.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Piece {
    /// These row groups; `first_row` is the file row of the first of them.
    RowGroups { groups: Vec<usize>, first_row: u64 },
    /// The whole Parquet file; used when its footer cannot be read at
    /// discovery, so that the task fails with the reader's error.
    WholeParquet,
    /// The whole file (a WARC file).
    WholeFile,
    /// Lines starting in `[start, end)`; the whole file when `whole`.
    Lines { start: u64, end: u64, whole: bool },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputTask {
    pub index: usize,
    pub file: Arc<InputFile>,
    pub piece: Piece,
    /// Bytes this task reads from disk (compressed), for progress.
    pub bytes: u64,
}

impl InputTask {
    pub fn describe(&self) -> String {
        match &self.piece {
            Piece::RowGroups { groups, .. } if groups.len() == 1 => {
                format!("{} (row group {})", self.file.path.display(), groups[0])
            }
            Piece::RowGroups { groups, .. } => format!(
                "{} (row groups {}–{})",
                self.file.path.display(),
                groups[0],
                groups[groups.len() - 1]
            ),
            Piece::Lines {
                start,
                end,
                whole: false,
            } => {
                format!("{} (bytes {start}–{end})", self.file.path.display())
            }
            _ => self.file.path.display().to_string(),
        }
    }
}

fn format_of(path: &Path, forced: Option<Format>) -> Option<(Format, Compression)> {
    // Lossy: a name that is not UTF-8 is still recognised as input, so
    // that `utf8_path` can refuse it by name rather than skip it.
    let name = path.file_name()?.to_string_lossy().to_ascii_lowercase();
    let (stem, compression) = if let Some(s) = name.strip_suffix(".gz") {
        (s.to_string(), Compression::Gzip)
    } else if let Some(s) = name.strip_suffix(".zst") {
        (s.to_string(), Compression::Zstd)
    } else {
        (name.clone(), Compression::None)
    };
    // A WARC reader finds gzip members itself (it needs their offsets).
    let is_warc = stem.ends_with(".warc") || stem.ends_with(".wet") || stem.ends_with(".arc");
    if forced == Some(Format::Warc)
        || (forced.is_none() && is_warc && compression != Compression::Zstd)
    {
        return Some((Format::Warc, Compression::None));
    }
    let by_ext = if stem.ends_with(".parquet") && compression == Compression::None {
        Some(Format::Parquet)
    } else if stem.ends_with(".jsonl") || stem.ends_with(".ndjson") || stem.ends_with(".json") {
        Some(Format::Jsonl)
    } else {
        None
    };
    match forced {
        Some(Format::Jsonl) => Some((Format::Jsonl, compression)),
        Some(Format::Parquet) => Some((Format::Parquet, Compression::None)),
        Some(Format::Warc) => unreachable!("returned above"),
        None => by_ext.map(|f| (f, compression)),
    }
}

fn is_hidden(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with('.') || n.starts_with('_'))
}

/// An input file's path as text. Paths name files in ids, messages and the
/// plan, all text: a name that is not UTF-8 is refused by name (its bytes
/// escaped), never skipped.
fn utf8_path(path: &Path) -> Result<()> {
    if path.to_str().is_none() {
        bail!(
            "{}: the name is not valid UTF-8 (as bytes: {:?}); sluice cannot name it in ids and \
             messages: rename the file or folder",
            path.to_string_lossy(),
            path.as_os_str()
        );
    }
    Ok(())
}

/// A symbolic link that points nowhere: said as such, not as a file that
/// disappeared.
fn dangling(path: &Path) -> Option<anyhow::Error> {
    let link = std::fs::symlink_metadata(path).ok()?;
    if !link.file_type().is_symlink() || std::fs::metadata(path).is_ok() {
        return None;
    }
    let target = std::fs::read_link(path).unwrap_or_default();
    Some(anyhow::anyhow!(
        "{} is a symbolic link to {}, which does not exist (a dangling link): remove it or \
         point it at a file",
        path.display(),
        target.display()
    ))
}

/// Folders already walked, by canonical path: a link to a folder walked
/// before (its parent, in a loop) is not walked again.
type Walked = std::collections::HashSet<PathBuf>;

fn walk(dir: &Path, forced: Option<Format>, out: &mut Vec<PathBuf>) -> Result<()> {
    let mut walked = Walked::new();
    if let Ok(c) = dir.canonicalize() {
        walked.insert(c);
    }
    walk_in(dir, forced, out, &mut walked)
}

fn walk_in(
    dir: &Path,
    forced: Option<Format>,
    out: &mut Vec<PathBuf>,
    walked: &mut Walked,
) -> Result<()> {
    if store::is_remote(dir) {
        // An object store lists every key under the prefix at once; hidden
        // "folders" are skipped as on disk.
        for path in store::list(dir)
            .with_context(|| format!("cannot list input folder {}", dir.display()))?
        {
            let rel = path.strip_prefix(dir).unwrap_or(&path);
            if rel.iter().any(|c| is_hidden(Path::new(c))) {
                continue;
            }
            if format_of(&path, forced).is_some() {
                out.push(path);
            }
        }
        return Ok(());
    }
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list input folder {}", dir.display()))?;
    // In name order, so that which of two links to one folder is walked
    // does not depend on the file system.
    let mut paths = vec![];
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list input folder {}", dir.display()))?;
        paths.push(entry.path());
    }
    paths.sort();
    for path in paths {
        if is_hidden(&path) {
            continue;
        }
        if path.is_dir() {
            let canonical = path
                .canonicalize()
                .with_context(|| format!("cannot resolve {}", path.display()))?;
            if !walked.insert(canonical.clone()) {
                crate::msg::note(format!(
                    "{} leads to {}, a folder already read (a symbolic link loop or a \
                     second link): not read again",
                    path.display(),
                    canonical.display()
                ));
                continue;
            }
            walk_in(&path, forced, out, walked)?;
        } else if format_of(&path, forced).is_some() {
            if let Some(e) = dangling(&path) {
                return Err(e);
            }
            utf8_path(&path)?;
            out.push(path);
        }
    }
    Ok(())
}

/// The local paths a glob pattern matches, component by component (as the
/// `glob` crate does, whose walk skips names that are not UTF-8 without a
/// word: here such a name that matches is an error).
fn local_glob(pattern: &str, key: &str) -> Result<Vec<PathBuf>> {
    glob::Pattern::new(pattern)
        .with_context(|| format!("bad glob pattern `{pattern}` in [input] {key}"))?;
    let (mut current, rest) = match pattern.strip_prefix('/') {
        Some(r) => (vec![PathBuf::from("/")], r),
        None => (vec![PathBuf::new()], pattern),
    };
    let comps: Vec<&str> = rest.split('/').filter(|c| !c.is_empty()).collect();
    let listing = |dir: &Path| -> Vec<PathBuf> {
        let d = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        let mut v: Vec<PathBuf> = std::fs::read_dir(d)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| dir.join(e.file_name()))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    };
    for (i, comp) in comps.iter().enumerate() {
        let last = i + 1 == comps.len();
        let mut next = vec![];
        if *comp == "**" {
            // This folder and every folder below it (each once).
            let mut walked = Walked::new();
            let mut stack: Vec<PathBuf> = current.into_iter().rev().collect();
            while let Some(d) = stack.pop() {
                let key_dir = if d.as_os_str().is_empty() {
                    PathBuf::from(".")
                } else {
                    d.clone()
                };
                if !walked.insert(key_dir.canonicalize().unwrap_or(key_dir)) {
                    continue;
                }
                let subs: Vec<PathBuf> = listing(&d).into_iter().filter(|p| p.is_dir()).collect();
                next.push(d);
                stack.extend(subs.into_iter().rev());
            }
        } else if !comp.contains(['*', '?', '[']) {
            for base in current {
                let p = base.join(comp);
                if std::fs::symlink_metadata(&p).is_ok() && (last || p.is_dir()) {
                    next.push(p);
                }
            }
        } else {
            let pat = glob::Pattern::new(comp)
                .with_context(|| format!("bad glob pattern `{pattern}` in [input] {key}"))?;
            for base in current {
                for p in listing(&base) {
                    let name = p.file_name().unwrap_or_default();
                    if !pat.matches(&name.to_string_lossy()) || !(last || p.is_dir()) {
                        continue;
                    }
                    next.push(p);
                }
            }
        }
        current = next;
    }
    Ok(current)
}

/// The objects an `s3://` pattern with wildcards matches: the prefix before
/// the first wildcard is listed, the rest matched as a glob on the URL.
fn remote_glob(pattern: &str, forced: Option<Format>, key: &str) -> Result<Vec<PathBuf>> {
    let glob = glob::Pattern::new(pattern)
        .with_context(|| format!("bad glob pattern `{pattern}` in [input] {key}"))?;
    let wild = pattern.find(['*', '?', '[']).expect("a wildcard");
    let base = pattern[..wild].rsplit_once('/').map_or(pattern, |(b, _)| b);
    let options = glob::MatchOptions {
        require_literal_separator: true,
        ..Default::default()
    };
    let mut files = vec![];
    for path in store::list(Path::new(base))? {
        let url = path.to_string_lossy();
        // A match of a folder pattern takes the files under it, as on disk.
        let under_match = url
            .char_indices()
            .filter(|&(_, c)| c == '/')
            .any(|(i, _)| glob.matches_with(&url[..i], options));
        if (glob.matches_with(&url, options) || under_match) && format_of(&path, forced).is_some() {
            files.push(path);
        }
    }
    Ok(files)
}

fn matching(pattern: &str, forced: Option<Format>, key: &str) -> Result<Vec<PathBuf>> {
    let mut files = vec![];
    let path = Path::new(pattern);
    if pattern.contains(['*', '?', '[']) && store::is_remote(path) {
        files = remote_glob(pattern, forced, key)?;
        if files.is_empty() {
            bail!("[input] {key}: `{pattern}` matches no Parquet or JSONL file");
        }
    } else if pattern.contains(['*', '?', '[']) {
        for p in local_glob(pattern, key)? {
            if p.is_dir() {
                walk(&p, forced, &mut files)?;
            } else if format_of(&p, forced).is_some() {
                if let Some(e) = dangling(&p) {
                    return Err(e);
                }
                utf8_path(&p)?;
                files.push(p);
            }
        }
        if files.is_empty() {
            bail!("[input] {key}: `{pattern}` matches no Parquet or JSONL file");
        }
    } else if store::exists(path)? {
        if format_of(path, forced).is_none() {
            bail!(
                "[input] {key}: cannot tell the format of {} from its extension; \
                 rename it (.parquet, .jsonl, .jsonl.gz, .jsonl.zst) or set `format` in [input]",
                path.display()
            );
        }
        files.push(path.to_path_buf());
    } else if store::is_dir(path)? {
        walk(path, forced, &mut files)?;
        if files.is_empty() {
            bail!(
                "[input] {key}: the folder {} holds no .parquet or .jsonl(.gz/.zst) file",
                path.display()
            );
        }
    } else if let Some(e) = dangling(path) {
        return Err(e.context(format!("[input] {key}")));
    } else {
        bail!("[input] {key}: {} does not exist", path.display());
    }
    Ok(files)
}

/// The input files named by `paths` and `sources`, sorted and without
/// repeats, each with the source group it belongs to. A file in two groups
/// is an error; a file in `paths` and in a group belongs to the group. One
/// file reached by two paths (`a/../a/x.jsonl`, a link) is read once, under
/// the first of its paths in sort order, and the run says so.
pub fn input_files(spec: &InputSpec) -> Result<Vec<(PathBuf, Option<String>)>> {
    let mut matched: Vec<(PathBuf, Option<&String>)> = vec![];
    for pattern in &spec.paths {
        for f in matching(pattern, spec.format, "paths")? {
            matched.push((f, None));
        }
    }
    for (name, patterns) in &spec.sources {
        for pattern in patterns {
            for f in matching(pattern, spec.format, &format!("sources.{name}"))? {
                matched.push((f, Some(name)));
            }
        }
    }
    // The file each path is: its canonical path on disk, the URL in a bucket.
    let identity = |p: &Path| -> PathBuf {
        match store::is_remote(p) {
            true => p.to_path_buf(),
            false => p.canonicalize().unwrap_or_else(|_| p.to_path_buf()),
        }
    };
    // file → (the path it is read under, its group)
    let mut files: std::collections::BTreeMap<PathBuf, (PathBuf, Option<String>)> =
        Default::default();
    let mut aliases: std::collections::BTreeMap<PathBuf, std::collections::BTreeSet<PathBuf>> =
        Default::default();
    for (path, group) in matched {
        let id = identity(&path);
        aliases.entry(id.clone()).or_default().insert(path.clone());
        let entry = files.entry(id).or_insert_with(|| (path.clone(), None));
        if path < entry.0 {
            entry.0 = path.clone();
        }
        if let Some(name) = group {
            if let Some(other) = &entry.1 {
                if other != name {
                    bail!(
                        "[input] sources: {} is in both `{other}` and `{name}`",
                        path.display()
                    );
                }
            }
            entry.1 = Some(name.clone());
        }
    }
    for names in aliases.values().filter(|a| a.len() > 1) {
        let list: Vec<String> = names.iter().map(|p| p.display().to_string()).collect();
        crate::msg::note(format!(
            "{} are one file; it is read once, as {}",
            list.join(" and "),
            list[0]
        ));
    }
    let mut out: Vec<(PathBuf, Option<String>)> = files.into_values().collect();
    out.sort();
    Ok(out)
}

/// An input file's size and write time (ns since the Unix epoch), as the
/// plan records them; None when it is not there.
pub fn stat_input(path: &Path) -> Result<Option<(u64, Option<u64>)>> {
    Ok(store::stat(path)?.map(|(size, modified)| {
        let ns = modified
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_nanos() as u64);
        (size, ns)
    }))
}

/// Cuts the input files into tasks, numbered in file order.
pub fn discover(spec: &InputSpec) -> Result<Vec<InputTask>> {
    let mut tasks = vec![];
    for (path, source) in input_files(spec)? {
        let (format, compression) = format_of(&path, spec.format).expect("filtered by input_files");
        let (size, modified) = stat_input(&path)?
            .with_context(|| format!("{} disappeared while listing the input", path.display()))?;
        let file = Arc::new(InputFile {
            path: path.clone(),
            format,
            compression,
            size,
            modified,
            source,
        });
        match format {
            Format::Parquet => parquet_pieces(&file, spec.max_task_bytes, &mut tasks),
            Format::Jsonl => jsonl_pieces(&file, spec.max_task_bytes, &mut tasks),
            // Gzip members cannot be found without reading: a task per file.
            Format::Warc => tasks.push(InputTask {
                index: 0,
                file: file.clone(),
                piece: Piece::WholeFile,
                bytes: file.size,
            }),
        }
    }
    for (i, t) in tasks.iter_mut().enumerate() {
        t.index = i;
    }
    Ok(tasks)
}

fn parquet_pieces(file: &Arc<InputFile>, max_bytes: u64, tasks: &mut Vec<InputTask>) {
    let meta = store::open(&file.path)
        .ok()
        .and_then(|f| SerializedFileReader::new(f).ok())
        .map(|r| r.metadata().clone());
    let Some(meta) = meta else {
        tasks.push(InputTask {
            index: 0,
            file: file.clone(),
            piece: Piece::WholeParquet,
            bytes: file.size,
        });
        return;
    };
    let mut groups = vec![];
    let mut bytes = 0u64;
    let mut first_row = 0u64;
    let mut row = 0u64;
    for (i, rg) in meta.row_groups().iter().enumerate() {
        let size = rg.compressed_size().max(0) as u64;
        if !groups.is_empty() && bytes + size > max_bytes {
            tasks.push(InputTask {
                index: 0,
                file: file.clone(),
                piece: Piece::RowGroups {
                    groups: std::mem::take(&mut groups),
                    first_row,
                },
                bytes,
            });
            bytes = 0;
            first_row = row;
        }
        groups.push(i);
        bytes += size;
        row += rg.num_rows().max(0) as u64;
    }
    if !groups.is_empty() {
        tasks.push(InputTask {
            index: 0,
            file: file.clone(),
            piece: Piece::RowGroups { groups, first_row },
            bytes,
        });
    }
}

fn jsonl_pieces(file: &Arc<InputFile>, max_bytes: u64, tasks: &mut Vec<InputTask>) {
    if file.compression != Compression::None || file.size <= max_bytes {
        tasks.push(InputTask {
            index: 0,
            file: file.clone(),
            piece: Piece::Lines {
                start: 0,
                end: file.size,
                whole: true,
            },
            bytes: file.size,
        });
        return;
    }
    let mut start = 0;
    while start < file.size {
        let end = (start + max_bytes).min(file.size);
        tasks.push(InputTask {
            index: 0,
            file: file.clone(),
            piece: Piece::Lines {
                start,
                end,
                whole: false,
            },
            bytes: end - start,
        });
        start = end;
    }
}
