//! The filesystem backend: a local (or shared) filesystem path.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, Result};

/// The file's size and last write time (when the filesystem keeps one), or
/// None when it does not exist (or is no file).
pub(super) fn stat(path: &Path) -> Result<Option<(u64, Option<SystemTime>)>> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => Ok(Some((m.len(), m.modified().ok()))),
        Ok(_) => Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Every file under `dir` (recursively), unsorted. A folder that does not
/// exist lists as empty.
pub(super) fn list(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = vec![];
    list_local(dir, &mut out)?;
    Ok(out)
}

fn list_local(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in read_dir(dir)? {
        let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
        let path = entry.path();
        let Some(kind) = entry_type(&entry)? else {
            continue;
        };
        if kind.is_dir() {
            list_local(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

/// The files directly in `dir`, unsorted. The entry types come with the
/// listing: no look at each file (every shard writer lists its output
/// folder).
pub(super) fn list_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = vec![];
    for entry in read_dir(dir)? {
        let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
        if entry_type(&entry)?.is_some_and(|t| t.is_file()) {
            out.push(entry.path());
        }
    }
    Ok(out)
}

/// The files directly in `dir` with when each was last written, unsorted.
pub(super) fn list_files_modified(dir: &Path) -> Result<Vec<(PathBuf, SystemTime)>> {
    let mut out = vec![];
    for entry in read_dir(dir)? {
        let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
        let Some(meta) = entry_meta(&entry)? else {
            continue;
        };
        if meta.is_file() {
            let modified = meta
                .modified()
                .with_context(|| format!("cannot read {}", entry.path().display()))?;
            out.push((entry.path(), modified));
        }
    }
    Ok(out)
}

/// A folder's entries; one that does not exist has none.
fn read_dir(dir: &Path) -> Result<Vec<std::io::Result<std::fs::DirEntry>>> {
    match std::fs::read_dir(dir) {
        Ok(entries) => Ok(entries.collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(vec![]),
        Err(e) => Err(e).with_context(|| format!("cannot list {}", dir.display())),
    }
}

/// An entry's metadata; None when it went away after the listing (another
/// task renaming its temporary file into place, say), which is no error.
fn entry_meta(entry: &std::fs::DirEntry) -> Result<Option<std::fs::Metadata>> {
    match entry.metadata() {
        Ok(m) => Ok(Some(m)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", entry.path().display())),
    }
}

/// An entry's own type (a link is a link); None when it went away. The
/// type comes with the listing on most filesystems: no look at the file.
fn entry_type(entry: &std::fs::DirEntry) -> Result<Option<std::fs::FileType>> {
    match entry.file_type() {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", entry.path().display())),
    }
}

/// A whole (small) file.
pub(super) fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

pub(super) fn open(path: &Path) -> Result<File> {
    File::open(path).with_context(|| format!("cannot open {}", path.display()))
}

/// Makes a folder and its parents.
pub(super) fn create_dir_all(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))
}

/// Puts the staged file in place: a rename, atomic on one filesystem.
pub(super) fn commit(staged: &Path, path: &Path) -> Result<()> {
    std::fs::rename(staged, path)
        .with_context(|| format!("cannot rename {} to {}", staged.display(), path.display()))
}

/// Writes a whole file atomically: a synced temporary beside it, renamed.
pub(super) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    create_dir_all(dir)?;
    let tmp = super::staging(path);
    let mut f = File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    std::io::Write::write_all(&mut f, bytes)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    // Markers are the commit point of a task: they must not outlive a crash
    // as empty files.
    f.sync_all()
        .with_context(|| format!("cannot sync {}", tmp.display()))?;
    drop(f);
    super::commit(&tmp, path)
}

/// Creates a file that must not exist yet: false (and nothing written)
/// when it does. The check and the write are one step (`O_EXCL`).
pub(super) fn create_new(path: &Path, bytes: &[u8]) -> Result<bool> {
    if let Some(dir) = path.parent() {
        create_dir_all(dir)?;
    }
    let mut f = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
    {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(false),
        r => r.with_context(|| format!("cannot create {}", path.display()))?,
    };
    std::io::Write::write_all(&mut f, bytes)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(true)
}

/// Removes a file; one that is not there is no error.
pub(super) fn remove_file(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("cannot remove {}", path.display()))
        }
        _ => Ok(()),
    }
}

/// Removes a folder and everything under it; one that is not there is no error.
pub(super) fn remove_all(dir: &Path) -> Result<()> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("cannot remove {}", dir.display()))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file renamed or removed between the listing and the look at it
    /// (another task committing its shard) is left out, not an error.
    #[test]
    fn a_file_gone_after_the_listing_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let (kept, gone) = (dir.path().join("kept"), dir.path().join(".gone.tmp"));
        std::fs::write(&kept, b"x").unwrap();
        std::fs::write(&gone, b"y").unwrap();
        let entries = read_dir(dir.path()).unwrap();
        std::fs::remove_file(&gone).unwrap();
        let mut seen = vec![];
        for e in entries {
            if let Some(meta) = entry_meta(&e.unwrap()).unwrap() {
                seen.push(meta.len());
            }
        }
        assert_eq!(seen, vec![1]);
        assert_eq!(
            crate::io::store::list_files(dir.path()).unwrap(),
            vec![kept]
        );
    }
}
