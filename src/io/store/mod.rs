//! Where files live: a local (or shared) filesystem path (`local.rs`), or
//! an S3-compatible object store when the path is `s3://bucket/key`
//! (`s3.rs`, which says where credentials come from and how requests are
//! retried). Every file sluice reads or writes outside its in-task scratch
//! goes through here, so input, work and output folders can each be either.
//!
//! A path is told apart once, by `locate`; each function here then hands
//! it to the one backend. Writes to either are staged and committed, so
//! that a file or an object appears whole or not at all; the staging
//! registry, the scratch folder and the local copies of objects are shared
//! and live here.

mod local;
mod s3;

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

use anyhow::{Context, Result};
use bytes::Bytes;

pub use s3::{retry_config, RemoteReader, CHUNK};

/// Where a path is: on disk, or an object.
enum Location<'a> {
    Local(&'a Path),
    S3(s3::Url<'a>),
}

/// Tells a path's backend apart: `s3://…` is an object, anything else
/// (a path that is not UTF-8 included) a file.
fn locate(path: &Path) -> Location<'_> {
    match path.to_str() {
        Some(s) => match s.strip_prefix("s3://") {
            Some(rest) => Location::S3(s3::Url::new(s, rest)),
            None => Location::Local(path),
        },
        None => Location::Local(path),
    }
}

/// True for `s3://…` paths.
pub fn is_remote(path: &Path) -> bool {
    matches!(locate(path), Location::S3(_))
}

/// The file's size, or None when it does not exist.
pub fn size(path: &Path) -> Result<Option<u64>> {
    Ok(stat(path)?.map(|(size, _)| size))
}

/// The file's size and last write time (when the filesystem keeps one), or
/// None when it does not exist.
pub fn stat(path: &Path) -> Result<Option<(u64, Option<SystemTime>)>> {
    match locate(path) {
        Location::Local(path) => local::stat(path),
        Location::S3(url) => s3::stat(url),
    }
}

pub fn exists(path: &Path) -> Result<bool> {
    Ok(size(path)?.is_some())
}

/// True for a local folder, or an S3 prefix with at least one object under it.
pub fn is_dir(path: &Path) -> Result<bool> {
    match locate(path) {
        Location::Local(path) => Ok(path.is_dir()),
        Location::S3(url) => s3::is_dir(url),
    }
}

/// Every file under `dir` (recursively), sorted. A folder that does not
/// exist lists as empty.
pub fn list(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = match locate(dir) {
        Location::Local(dir) => local::list(dir)?,
        Location::S3(url) => s3::list(url)?,
    };
    out.sort();
    Ok(out)
}

/// The files directly in `dir` (not in its subfolders), sorted. On disk the
/// entry types come with the listing: no look at each file (every shard
/// writer lists its output folder).
pub fn list_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = match locate(dir) {
        Location::Local(dir) => local::list_files(dir)?,
        Location::S3(url) => s3::list_files_modified(url)?
            .into_iter()
            .map(|(p, _)| p)
            .collect(),
    };
    out.sort();
    Ok(out)
}

/// The files directly in `dir` with when each was last written, sorted by
/// path: one listing (a request per thousand objects), not a look-up each.
/// A folder that does not exist lists as empty.
pub fn list_files_modified(dir: &Path) -> Result<Vec<(PathBuf, SystemTime)>> {
    let mut out = match locate(dir) {
        Location::Local(dir) => local::list_files_modified(dir)?,
        Location::S3(url) => s3::list_files_modified(url)?,
    };
    out.sort();
    Ok(out)
}

/// A whole (small) file.
pub fn read(path: &Path) -> Result<Vec<u8>> {
    match locate(path) {
        Location::Local(path) => local::read(path),
        Location::S3(url) => s3::read(url),
    }
}

/// Opens a file for reading: a local file, or a streaming reader of an object.
pub fn open(path: &Path) -> Result<Source> {
    Ok(match locate(path) {
        Location::Local(path) => Source::Local(local::open(path)?),
        Location::S3(url) => Source::Remote(s3::open(url)?),
    })
}

/// A file being read: seekable, and a Parquet chunk source.
pub enum Source {
    Local(File),
    Remote(RemoteReader),
}

impl Read for Source {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Source::Local(f) => f.read(out),
            Source::Remote(r) => r.read(out),
        }
    }
}

impl Seek for Source {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        match self {
            Source::Local(f) => f.seek(to),
            Source::Remote(r) => r.seek(to),
        }
    }
}

impl Source {
    pub fn size(&self) -> std::io::Result<u64> {
        match self {
            Source::Local(f) => Ok(f.metadata()?.len()),
            Source::Remote(r) => Ok(r.len()),
        }
    }

    /// Fills `buf` from `offset` without moving the read position.
    pub fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        match self {
            Source::Local(f) => std::os::unix::fs::FileExt::read_exact_at(f, buf, offset),
            Source::Remote(r) => r.read_exact_at(buf, offset),
        }
    }

    fn reader_at(&self, start: u64) -> std::io::Result<Source> {
        match self {
            Source::Local(f) => {
                let mut f = f.try_clone()?;
                f.seek(SeekFrom::Start(start))?;
                Ok(Source::Local(f))
            }
            Source::Remote(r) => Ok(Source::Remote(r.reader_at(start))),
        }
    }
}

impl parquet::file::reader::Length for Source {
    fn len(&self) -> u64 {
        self.size().unwrap_or(0)
    }
}

/// A reader that fails once it has been asked for bytes past the end of
/// the file a few times. A reader may see the end more than once, but a
/// Parquet page reader meeting a corrupt length (a list of 2^31 fields to
/// skip) asks again and again: the `parquet` crate does not check what
/// its skips read, and such a file made a task spin on `read` at the end
/// of the file for ever (found by the fuzzer).
pub struct EndChecked<R> {
    inner: R,
    at_end: u32,
}

impl<R: Read> Read for EndChecked<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(out)?;
        if n == 0 && !out.is_empty() {
            self.at_end += 1;
            if self.at_end > 64 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "read past the end of the file again and again: a length in the file is corrupt",
                ));
            }
        }
        Ok(n)
    }
}

impl parquet::file::reader::ChunkReader for Source {
    type T = std::io::BufReader<EndChecked<Source>>;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        Ok(std::io::BufReader::with_capacity(
            1 << 16,
            EndChecked {
                inner: self.reader_at(start)?,
                at_end: 0,
            },
        ))
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        let mut buf = vec![0; length];
        self.read_exact_at(&mut buf, start)?;
        Ok(buf.into())
    }
}

type Cached = Arc<Mutex<Option<PathBuf>>>;

fn local_copies() -> &'static Mutex<HashMap<PathBuf, Cached>> {
    static COPIES: OnceLock<Mutex<HashMap<PathBuf, Cached>>> = OnceLock::new();
    COPIES.get_or_init(Default::default)
}

/// A local path to read `path` from at random: `path` itself on disk; for
/// an object, a copy in the scratch folder, downloaded once per process
/// (row stores are read a row at a time, which would be a request a row).
pub fn local_copy(path: &Path) -> Result<PathBuf> {
    if let Location::Local(path) = locate(path) {
        return Ok(path.to_path_buf());
    }
    let entry = local_copies()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(path.to_path_buf())
        .or_default()
        .clone();
    let mut slot = entry.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = slot.as_ref() {
        return Ok(p.clone());
    }
    let local = staging(path);
    fetch(path, &local)?;
    *slot = Some(local.clone());
    Ok(local)
}

/// Forgets the local copy of the object `path`, removing its file: what
/// replaces the object makes it stale.
fn drop_local_copy(path: &Path) {
    if let Some(old) = local_copies()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(path)
    {
        if let Some(p) = old.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Streams `from` (either kind) into the local file `to`, synced.
fn fetch(from: &Path, to: &Path) -> Result<()> {
    let mut src = open(from)?;
    let mut dst = File::create(to).with_context(|| format!("cannot create {}", to.display()))?;
    std::io::copy(&mut src, &mut dst)
        .with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
    dst.sync_all()
        .with_context(|| format!("cannot sync {}", to.display()))
}

/// Makes a folder (and its parents); objects need none.
pub fn create_dir_all(dir: &Path) -> Result<()> {
    match locate(dir) {
        Location::Local(dir) => local::create_dir_all(dir),
        Location::S3(_) => Ok(()),
    }
}

/// Where to write what will become `path` on [`commit`]: a hidden
/// temporary beside it on disk (so the commit is a rename), or a file in
/// the scratch folder for an object (its folder made here; where that
/// fails, creating the file names it).
pub fn staging(path: &Path) -> PathBuf {
    let staged = staged_name(path);
    staged_files()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(staged.clone());
    staged
}

/// Files staged and not yet committed by this process.
fn staged_files() -> &'static Mutex<std::collections::HashSet<PathBuf>> {
    static STAGED: OnceLock<Mutex<std::collections::HashSet<PathBuf>>> = OnceLock::new();
    STAGED.get_or_init(Default::default)
}

/// Removes every file staged and never committed: after a failed phase
/// (nothing is being written then), what failed tasks left half-written,
/// which on a full disk would keep it full until the next run.
pub fn discard_staged() {
    let staged = std::mem::take(&mut *staged_files().lock().unwrap_or_else(|e| e.into_inner()));
    for p in staged {
        let _ = std::fs::remove_file(p);
    }
}

/// The name [`staging`] gives the temporary of `path` on disk (it stands
/// beside it), without staging anything.
pub fn staged_name(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match locate(path) {
        Location::Local(path) => {
            let dir = path.parent().unwrap_or(Path::new("."));
            dir.join(format!(".{name}.tmp"))
        }
        Location::S3(_) => {
            static NEXT: AtomicU64 = AtomicU64::new(0);
            let dir = scratch_dir();
            let _ = std::fs::create_dir_all(&dir);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            dir.join(format!("{n}-{name}"))
        }
    }
}

/// The folder for staged uploads: `$SLUICE_SCRATCH` or the system temp
/// folder, one subfolder per process.
pub fn scratch_dir() -> PathBuf {
    let base = std::env::var_os("SLUICE_SCRATCH")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    base.join(format!("sluice-{}", std::process::id()))
}

/// A local folder for in-task temporary files meant to sit at `dir`
/// (external sort runs): `dir` itself on disk, a folder in the scratch
/// folder for an `s3://` work folder.
pub fn local_for(dir: &Path) -> PathBuf {
    match locate(dir) {
        Location::S3(url) => scratch_dir().join("s3").join(url.rest()),
        Location::Local(dir) => dir.to_path_buf(),
    }
}

/// Makes the staged file `path`: a rename on disk, an upload (then the
/// staged file is removed) for an object.
pub fn commit(staged: &Path, path: &Path) -> Result<()> {
    match locate(path) {
        Location::Local(path) => local::commit(staged, path)?,
        Location::S3(url) => {
            // A local copy of what this replaces is stale.
            drop_local_copy(path);
            s3::commit(staged, url)?;
        }
    }
    staged_files()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(staged);
    Ok(())
}

/// Copies a file (either side local or remote), atomically at `to`.
pub fn copy(from: &Path, to: &Path) -> Result<()> {
    if let Some(dir) = to.parent() {
        create_dir_all(dir)?;
    }
    let tmp = staging(to);
    fetch(from, &tmp)?;
    commit(&tmp, to)
}

/// Writes a whole file atomically (markers, reports, small work files).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    match locate(path) {
        Location::Local(path) => local::write_atomic(path, bytes),
        Location::S3(url) => s3::write(url, bytes),
    }
}

/// Creates a file that must not exist yet: false (and nothing written)
/// when it does. On disk the check and the write are one step; on S3 a
/// conditional PUT (If-None-Match) makes them one where the store supports
/// it, and a look first covers the stores that do not.
pub fn create_new(path: &Path, bytes: &[u8]) -> Result<bool> {
    match locate(path) {
        Location::Local(path) => local::create_new(path, bytes),
        Location::S3(url) => s3::create_new(url, bytes),
    }
}

/// Removes a file; one that is not there is no error.
pub fn remove_file(path: &Path) -> Result<()> {
    match locate(path) {
        Location::Local(path) => local::remove_file(path),
        Location::S3(url) => s3::remove_file(url),
    }
}

/// Removes a folder and everything under it; one that is not there is no error.
pub fn remove_all(dir: &Path) -> Result<()> {
    match locate(dir) {
        Location::Local(dir) => local::remove_all(dir),
        Location::S3(url) => s3::remove_all(url),
    }
}

/// Stops early, with a message naming the folder, where it cannot be
/// written (a probe file is written and removed).
pub fn check_writable(dir: &Path) -> Result<()> {
    create_dir_all(dir)?;
    let probe = dir.join(format!(".sluice-probe-{}", std::process::id()));
    write_atomic(&probe, b"")
        .with_context(|| format!("the output folder {} is not writable", dir.display()))?;
    remove_file(&probe)
}
