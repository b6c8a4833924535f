//! Where files live: a local (or shared) filesystem path, or an S3-compatible
//! object store when the path is `s3://bucket/key`. Every file sluice reads
//! or writes outside its in-task scratch goes through here, so input, work
//! and output folders can each be either.
//!
//! S3 credentials, region and endpoint come from the usual AWS environment
//! variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_SESSION_TOKEN`, `AWS_REGION`/`AWS_DEFAULT_REGION`,
//! `AWS_ENDPOINT_URL`); an `http://` endpoint (MinIO, SeaweedFS on a
//! laptop) is allowed without further settings. Requests are retried with
//! exponential backoff on throttling (`SlowDown`, 503), server errors and
//! broken connections: see [`retry_config`].
//!
//! Reads stream: an object is read in ranged GETs of [`CHUNK`] bytes, so a
//! Parquet task fetches only its row groups and nothing is held whole.
//! Writes are staged: a writer fills a local scratch file and
//! [`commit`] uploads it (multipart above [`CHUNK`]), which is also what
//! makes them atomic: an object appears whole or not at all, as a renamed
//! file does on disk.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as Key;
use object_store::{
    BackoffConfig, GetOptions, GetRange, ObjectStore, ObjectStoreExt, RetryConfig, WriteMultipart,
};

/// Bytes per ranged GET and per multipart part.
pub const CHUNK: usize = 8 << 20;
/// Parts of one upload in flight at once.
const UPLOAD_CONCURRENCY: usize = 4;

/// True for `s3://…` paths.
pub fn is_remote(path: &Path) -> bool {
    path.to_str().is_some_and(|p| p.starts_with("s3://"))
}

/// How S3 requests are retried. Common Crawl-scale reads hit `SlowDown`;
/// object_store retries 429, 5xx and connection errors with these backoffs.
pub fn retry_config() -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(20),
            base: 2.0,
        },
        max_retries: 10,
        // Longer and signed requests may expire (object_store's advice).
        retry_timeout: Duration::from_secs(240),
    }
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("sluice-s3")
            .enable_all()
            .build()
            .expect("cannot start the I/O runtime")
    })
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    runtime().block_on(f)
}

/// An object: its store, key, and the URL users see in messages.
#[derive(Clone)]
struct Object {
    store: Arc<dyn ObjectStore>,
    bucket: String,
    key: Key,
}

impl Object {
    fn url(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }
    fn child_url(&self, key: &Key) -> PathBuf {
        PathBuf::from(format!("s3://{}/{}", self.bucket, key))
    }
}

fn store_for(bucket: &str) -> Result<Arc<dyn ObjectStore>> {
    static STORES: OnceLock<Mutex<HashMap<String, Arc<dyn ObjectStore>>>> = OnceLock::new();
    let mut stores = STORES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(s) = stores.get(bucket) {
        return Ok(s.clone());
    }
    let endpoint = std::env::var("AWS_ENDPOINT_URL_S3")
        .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
        .or_else(|_| std::env::var("AWS_ENDPOINT"))
        .unwrap_or_default();
    if !endpoint.is_empty() {
        check_reachable(&endpoint)?;
    }
    let mut builder = AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .with_retry(retry_config());
    if endpoint.starts_with("http://") {
        builder = builder.with_allow_http(true);
    }
    let store: Arc<dyn ObjectStore> = Arc::new(builder.build().with_context(|| {
        format!("cannot set up S3 for bucket `{bucket}` (check the AWS_* environment variables)")
    })?);
    stores.insert(bucket.to_string(), store.clone());
    Ok(store)
}

/// A custom endpoint (a local MinIO or SeaweedFS, a cloud's own) that
/// refuses connections or does not answer is named at once: the request
/// retries, meant for a busy server, would otherwise spend over a minute on
/// a typo in AWS_ENDPOINT_URL.
fn check_reachable(endpoint: &str) -> Result<()> {
    use std::net::{TcpStream, ToSocketAddrs};
    let (rest, port) = match endpoint.split_once("://") {
        Some(("http", rest)) => (rest, 80),
        Some((_, rest)) => (rest, 443),
        None => (endpoint, 443),
    };
    let host = rest.split('/').next().unwrap_or(rest);
    let has_port = host
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok());
    let addr = match has_port {
        true => host.to_string(),
        false => format!("{host}:{port}"),
    };
    let unreachable =
        |why: String| anyhow!("cannot reach the S3 endpoint {endpoint} (AWS_ENDPOINT_URL): {why}");
    let addrs: Vec<_> = addr
        .to_socket_addrs()
        .map_err(|e| unreachable(e.to_string()))?
        .collect();
    let mut last = String::from("no address");
    for a in addrs {
        match TcpStream::connect_timeout(&a, Duration::from_secs(10)) {
            Ok(_) => return Ok(()),
            Err(e) => last = e.to_string(),
        }
    }
    Err(unreachable(last))
}

fn object(path: &Path) -> Result<Object> {
    let s = path
        .to_str()
        .ok_or_else(|| anyhow!("{}: not a UTF-8 path", path.display()))?;
    let rest = s
        .strip_prefix("s3://")
        .ok_or_else(|| anyhow!("{s}: not an s3:// URL"))?;
    let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        bail!("{s}: no bucket in the URL (s3://bucket/prefix)");
    }
    let key = Key::parse(key.trim_end_matches('/'))
        .with_context(|| format!("{s}: not a valid object key"))?;
    Ok(Object {
        store: store_for(bucket)?,
        bucket: bucket.to_string(),
        key,
    })
}

/// An object_store error as one message: its text already quotes the
/// server's answer, which a cause chain would repeat.
fn brief(e: object_store::Error) -> anyhow::Error {
    anyhow!("{e}")
}

fn is_not_found(e: &object_store::Error) -> bool {
    matches!(e, object_store::Error::NotFound { .. })
}

/// An object's metadata, or None when it does not exist.
fn head(o: &Object) -> Result<Option<object_store::ObjectMeta>> {
    match block_on(o.store.head(&o.key)) {
        Ok(meta) => Ok(Some(meta)),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(brief(e)).with_context(|| format!("cannot read {}", o.url())),
    }
}

/// The file's size, or None when it does not exist.
pub fn size(path: &Path) -> Result<Option<u64>> {
    Ok(stat(path)?.map(|(size, _)| size))
}

/// The file's size and last write time (when the filesystem keeps one), or
/// None when it does not exist.
pub fn stat(path: &Path) -> Result<Option<(u64, Option<SystemTime>)>> {
    if !is_remote(path) {
        return match std::fs::metadata(path) {
            Ok(m) if m.is_file() => Ok(Some((m.len(), m.modified().ok()))),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
    }
    Ok(head(&object(path)?)?.map(|m| (m.size, Some(m.last_modified.into()))))
}

pub fn exists(path: &Path) -> Result<bool> {
    Ok(size(path)?.is_some())
}

/// True for a local folder, or an S3 prefix with at least one object under it.
pub fn is_dir(path: &Path) -> Result<bool> {
    if !is_remote(path) {
        return Ok(path.is_dir());
    }
    let o = object(path)?;
    let mut listing = o.store.list(Some(&o.key));
    let first = block_on(listing.try_next())
        .map_err(brief)
        .with_context(|| format!("cannot list {}", o.url()))?;
    Ok(first.is_some())
}

/// Every file under `dir` (recursively), sorted. A folder that does not
/// exist lists as empty.
pub fn list(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = vec![];
    if !is_remote(dir) {
        list_local(dir, &mut out)?;
    } else {
        let o = object(dir)?;
        let metas: Vec<object_store::ObjectMeta> =
            block_on(o.store.list(Some(&o.key)).try_collect())
                .map_err(brief)
                .with_context(|| format!("cannot list {}", o.url()))?;
        out.extend(metas.iter().map(|m| o.child_url(&m.location)));
    }
    out.sort();
    Ok(out)
}

/// The files directly in `dir` (not in its subfolders), sorted. On disk the
/// entry types come with the listing: no look at each file (every shard
/// writer lists its output folder).
pub fn list_files(dir: &Path) -> Result<Vec<PathBuf>> {
    if is_remote(dir) {
        return Ok(list_files_modified(dir)?
            .into_iter()
            .map(|(p, _)| p)
            .collect());
    }
    let mut out = vec![];
    for entry in read_dir(dir)? {
        let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
        if entry_type(&entry)?.is_some_and(|t| t.is_file()) {
            out.push(entry.path());
        }
    }
    out.sort();
    Ok(out)
}

/// The files directly in `dir` with when each was last written, sorted by
/// path: one listing (a request per thousand objects), not a look-up each.
/// A folder that does not exist lists as empty.
pub fn list_files_modified(dir: &Path) -> Result<Vec<(PathBuf, SystemTime)>> {
    let mut out = vec![];
    if !is_remote(dir) {
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
    } else {
        let o = object(dir)?;
        let listing = block_on(o.store.list_with_delimiter(Some(&o.key)))
            .map_err(brief)
            .with_context(|| format!("cannot list {}", o.url()))?;
        for m in listing.objects {
            out.push((o.child_url(&m.location), m.last_modified.into()));
        }
    }
    out.sort();
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

/// A whole (small) file.
pub fn read(path: &Path) -> Result<Vec<u8>> {
    if !is_remote(path) {
        return std::fs::read(path).with_context(|| format!("cannot read {}", path.display()));
    }
    let o = object(path)?;
    let bytes = block_on(async { o.store.get(&o.key).await?.bytes().await })
        .map_err(brief)
        .with_context(|| format!("cannot read {}", o.url()))?;
    Ok(bytes.to_vec())
}

/// Opens a file for reading: a local file, or a streaming reader of an object.
pub fn open(path: &Path) -> Result<Source> {
    if !is_remote(path) {
        let f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        return Ok(Source::Local(f));
    }
    let o = object(path)?;
    // One request for the size and the last 64 KiB, where Parquet keeps
    // its footer and a work file its index: most opens need no other.
    let tail = block_on(async {
        let options = GetOptions {
            range: Some(GetRange::Suffix(MIN_AHEAD as u64)),
            ..Default::default()
        };
        let got = o.store.get_opts(&o.key, options).await?;
        let (size, range) = (got.meta.size, got.range.clone());
        Ok::<_, object_store::Error>((size, range, got.bytes().await?))
    });
    let (len, buf_start, buf) = match tail {
        Ok((size, range, bytes)) => (size, range.start, bytes),
        // An empty object has no last bytes to ask for.
        Err(_) => {
            let meta = block_on(o.store.head(&o.key))
                .map_err(brief)
                .with_context(|| format!("cannot open {}", o.url()))?;
            (meta.size, 0, Bytes::new())
        }
    };
    Ok(Source::Remote(RemoteReader {
        object: o,
        len,
        pos: 0,
        buf,
        buf_start,
        ahead: MIN_AHEAD,
    }))
}

/// A file being read: seekable, and a Parquet chunk source.
pub enum Source {
    Local(File),
    Remote(RemoteReader),
}

/// Reads an object front to back (or from wherever it is sought to) in
/// ranged GETs of [`CHUNK`] bytes.
pub struct RemoteReader {
    object: Object,
    len: u64,
    pos: u64,
    buf: Bytes,
    buf_start: u64,
    /// Bytes to fetch past a request: doubles while reads follow each
    /// other (up to [`CHUNK`]), drops back after a seek, so that a scan
    /// makes few requests and a random read fetches little.
    ahead: usize,
}

const MIN_AHEAD: usize = 64 << 10;

impl RemoteReader {
    fn range(&self, start: u64, end: u64) -> std::io::Result<Bytes> {
        block_on(self.object.store.get_range(&self.object.key, start..end)).map_err(|e| {
            std::io::Error::other(format!("{} (bytes {start}–{end}): {e}", self.object.url()))
        })
    }
}

impl Read for RemoteReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.pos >= self.len || out.is_empty() {
            return Ok(0);
        }
        let buf_end = self.buf_start + self.buf.len() as u64;
        if self.pos < self.buf_start || self.pos >= buf_end {
            self.ahead = if self.pos == buf_end && !self.buf.is_empty() {
                (self.ahead * 2).min(CHUNK)
            } else {
                MIN_AHEAD
            };
            let want = out.len().max(self.ahead) as u64;
            let end = (self.pos + want).min(self.len);
            self.buf = self.range(self.pos, end)?;
            self.buf_start = self.pos;
            if self.buf.is_empty() {
                return Ok(0);
            }
        }
        let at = (self.pos - self.buf_start) as usize;
        let n = out.len().min(self.buf.len() - at);
        out[..n].copy_from_slice(&self.buf[at..at + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for RemoteReader {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let pos = match to {
            SeekFrom::Start(p) => p as i128,
            SeekFrom::End(d) => self.len as i128 + d as i128,
            SeekFrom::Current(d) => self.pos as i128 + d as i128,
        };
        if pos < 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "seek before the start",
            ));
        }
        self.pos = pos as u64;
        Ok(self.pos)
    }
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
            Source::Remote(r) => Ok(r.len),
        }
    }

    /// Fills `buf` from `offset` without moving the read position.
    pub fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        match self {
            Source::Local(f) => std::os::unix::fs::FileExt::read_exact_at(f, buf, offset),
            Source::Remote(r) => {
                let end = offset + buf.len() as u64;
                let have = r.buf_start..r.buf_start + r.buf.len() as u64;
                if have.start <= offset && end <= have.end {
                    let at = (offset - have.start) as usize;
                    buf.copy_from_slice(&r.buf[at..at + buf.len()]);
                    return Ok(());
                }
                let bytes = r.range(offset, end)?;
                if bytes.len() != buf.len() {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
                buf.copy_from_slice(&bytes);
                Ok(())
            }
        }
    }

    fn reader_at(&self, start: u64) -> std::io::Result<Source> {
        match self {
            Source::Local(f) => {
                let mut f = f.try_clone()?;
                f.seek(SeekFrom::Start(start))?;
                Ok(Source::Local(f))
            }
            Source::Remote(r) => Ok(Source::Remote(RemoteReader {
                object: r.object.clone(),
                len: r.len,
                pos: start,
                buf: Bytes::new(),
                buf_start: 0,
                ahead: MIN_AHEAD,
            })),
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
    if !is_remote(path) {
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
    if is_remote(dir) {
        return Ok(());
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))
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
    if !is_remote(path) {
        let dir = path.parent().unwrap_or(Path::new("."));
        return dir.join(format!(".{name}.tmp"));
    }
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = scratch_dir();
    let _ = std::fs::create_dir_all(&dir);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    dir.join(format!("{n}-{name}"))
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
    match dir.to_str().and_then(|s| s.strip_prefix("s3://")) {
        Some(rest) => scratch_dir().join("s3").join(rest),
        None => dir.to_path_buf(),
    }
}

/// Makes the staged file `path`: a rename on disk, an upload (then the
/// staged file is removed) for an object.
pub fn commit(staged: &Path, path: &Path) -> Result<()> {
    commit_staged(staged, path)?;
    staged_files()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(staged);
    Ok(())
}

fn commit_staged(staged: &Path, path: &Path) -> Result<()> {
    if !is_remote(path) {
        return std::fs::rename(staged, path)
            .with_context(|| format!("cannot rename {} to {}", staged.display(), path.display()));
    }
    // A local copy of what this replaces is stale.
    if let Some(old) = local_copies()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(path)
    {
        if let Some(p) = old.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = std::fs::remove_file(p);
        }
    }
    let o = object(path)?;
    upload(staged, &o)
        .with_context(|| format!("cannot upload {} to {}", staged.display(), o.url()))?;
    let _ = std::fs::remove_file(staged);
    Ok(())
}

fn upload(staged: &Path, o: &Object) -> Result<()> {
    let mut f = File::open(staged)?;
    let len = f.metadata()?.len();
    if len <= CHUNK as u64 {
        let mut bytes = Vec::with_capacity(len as usize);
        f.read_to_end(&mut bytes)?;
        block_on(o.store.put(&o.key, Bytes::from(bytes).into())).map_err(brief)?;
        return Ok(());
    }
    block_on(async {
        let upload = o.store.put_multipart(&o.key).await.map_err(brief)?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, CHUNK);
        let mut buf = Vec::with_capacity(CHUNK);
        loop {
            buf.clear();
            if (&mut f).take(CHUNK as u64).read_to_end(&mut buf)? == 0 {
                break;
            }
            writer
                .wait_for_capacity(UPLOAD_CONCURRENCY)
                .await
                .map_err(brief)?;
            writer.write(&buf);
        }
        writer.finish().await.map_err(brief)?;
        Ok::<_, anyhow::Error>(())
    })
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
    if is_remote(path) {
        let o = object(path)?;
        block_on(o.store.put(&o.key, Bytes::copy_from_slice(bytes).into()))
            .map_err(brief)
            .with_context(|| format!("cannot write {}", o.url()))?;
        return Ok(());
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    create_dir_all(dir)?;
    let tmp = staging(path);
    let mut f = File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    std::io::Write::write_all(&mut f, bytes)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    // Markers are the commit point of a task: they must not outlive a crash
    // as empty files.
    f.sync_all()
        .with_context(|| format!("cannot sync {}", tmp.display()))?;
    drop(f);
    commit(&tmp, path)
}

/// Creates a file that must not exist yet: false (and nothing written)
/// when it does. On disk the check and the write are one step; on S3 a
/// conditional PUT (If-None-Match) makes them one where the store supports
/// it, and a look first covers the stores that do not.
pub fn create_new(path: &Path, bytes: &[u8]) -> Result<bool> {
    if !is_remote(path) {
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
        return Ok(true);
    }
    let o = object(path)?;
    if head(&o)?.is_some() {
        return Ok(false);
    }
    let payload = || Bytes::copy_from_slice(bytes).into();
    let create = object_store::PutOptions {
        mode: object_store::PutMode::Create,
        ..Default::default()
    };
    match block_on(o.store.put_opts(&o.key, payload(), create)) {
        Ok(_) => Ok(true),
        Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
        Err(object_store::Error::NotImplemented { .. }) => {
            block_on(o.store.put(&o.key, payload()))
                .map_err(brief)
                .with_context(|| format!("cannot write {}", o.url()))?;
            Ok(true)
        }
        Err(e) => Err(brief(e)).with_context(|| format!("cannot write {}", o.url())),
    }
}

/// Removes a file; one that is not there is no error.
pub fn remove_file(path: &Path) -> Result<()> {
    if !is_remote(path) {
        return match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(e).with_context(|| format!("cannot remove {}", path.display()))
            }
            _ => Ok(()),
        };
    }
    let o = object(path)?;
    match block_on(o.store.delete(&o.key)) {
        Err(e) if !is_not_found(&e) => {
            Err(brief(e)).with_context(|| format!("cannot remove {}", o.url()))
        }
        _ => Ok(()),
    }
}

/// Removes a folder and everything under it; one that is not there is no error.
pub fn remove_all(dir: &Path) -> Result<()> {
    if !is_remote(dir) {
        return match std::fs::remove_dir_all(dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(e).with_context(|| format!("cannot remove {}", dir.display()))
            }
            _ => Ok(()),
        };
    }
    // Batched deletes (up to 1,000 keys a request on S3).
    let o = object(dir)?;
    let keys = o.store.list(Some(&o.key)).map_ok(|m| m.location).boxed();
    block_on(o.store.delete_stream(keys).try_collect::<Vec<_>>())
        .map_err(brief)
        .with_context(|| format!("cannot remove {}", o.url()))?;
    Ok(())
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
        assert_eq!(list_files(dir.path()).unwrap(), vec![kept]);
    }
}
