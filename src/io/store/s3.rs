//! The S3 backend: objects in an S3-compatible store, named
//! `s3://bucket/key`.
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
//! [`commit`](super::commit) uploads it (multipart above [`CHUNK`]), which
//! is also what makes them atomic: an object appears whole or not at all,
//! as a renamed file does on disk.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
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

/// An `s3://` URL as given, split into bucket and key but not yet checked:
/// the checks, and the client (whose first set-up looks for the endpoint),
/// come with [`Url::object`], where a request is about to be made, so that
/// naming a staging file or making a folder asks nothing of the store, and
/// a bad URL is reported where it always was.
#[derive(Clone, Copy)]
pub(super) struct Url<'a> {
    /// The whole URL, as messages quote it.
    text: &'a str,
    /// What follows `s3://`: the bucket and key as written.
    rest: &'a str,
    bucket: &'a str,
    /// The key as written (a trailing `/` kept).
    key: &'a str,
}

impl<'a> Url<'a> {
    /// `text` with `rest` the part after its `s3://`.
    pub(super) fn new(text: &'a str, rest: &'a str) -> Self {
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        Url {
            text,
            rest,
            bucket,
            key,
        }
    }

    /// The bucket and key as written (a trailing `/` kept).
    pub(super) fn rest(&self) -> &'a str {
        self.rest
    }

    /// The object this names, with its bucket's client.
    fn object(&self) -> Result<Object> {
        let (s, bucket) = (self.text, self.bucket);
        if bucket.is_empty() {
            bail!("{s}: no bucket in the URL (s3://bucket/prefix)");
        }
        let key = Key::parse(self.key.trim_end_matches('/'))
            .with_context(|| format!("{s}: not a valid object key"))?;
        Ok(Object {
            store: store_for(bucket)?,
            bucket: bucket.to_string(),
            key,
        })
    }
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
            // A connection to a free local port in the ephemeral range
            // can meet itself (TCP simultaneous open): nobody listens.
            Ok(s) if s.local_addr().ok() == s.peer_addr().ok() => {
                last = "nothing listens there".into()
            }
            Ok(_) => return Ok(()),
            Err(e) => last = e.to_string(),
        }
    }
    Err(unreachable(last))
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

/// The object's size and last write time, or None when it does not exist.
pub(super) fn stat(url: Url<'_>) -> Result<Option<(u64, Option<SystemTime>)>> {
    Ok(head(&url.object()?)?.map(|m| (m.size, Some(m.last_modified.into()))))
}

/// True when at least one object is under the prefix.
pub(super) fn is_dir(url: Url<'_>) -> Result<bool> {
    let o = url.object()?;
    let mut listing = o.store.list(Some(&o.key));
    let first = block_on(listing.try_next())
        .map_err(brief)
        .with_context(|| format!("cannot list {}", o.url()))?;
    Ok(first.is_some())
}

/// Every object under the prefix, unsorted.
pub(super) fn list(url: Url<'_>) -> Result<Vec<PathBuf>> {
    let o = url.object()?;
    let metas: Vec<object_store::ObjectMeta> = block_on(o.store.list(Some(&o.key)).try_collect())
        .map_err(brief)
        .with_context(|| format!("cannot list {}", o.url()))?;
    Ok(metas.iter().map(|m| o.child_url(&m.location)).collect())
}

/// The objects directly under the prefix with when each was last written,
/// unsorted: one listing (a request per thousand objects).
pub(super) fn list_files_modified(url: Url<'_>) -> Result<Vec<(PathBuf, SystemTime)>> {
    let o = url.object()?;
    let listing = block_on(o.store.list_with_delimiter(Some(&o.key)))
        .map_err(brief)
        .with_context(|| format!("cannot list {}", o.url()))?;
    Ok(listing
        .objects
        .into_iter()
        .map(|m| (o.child_url(&m.location), m.last_modified.into()))
        .collect())
}

/// A whole (small) object.
pub(super) fn read(url: Url<'_>) -> Result<Vec<u8>> {
    let o = url.object()?;
    let bytes = block_on(async { o.store.get(&o.key).await?.bytes().await })
        .map_err(brief)
        .with_context(|| format!("cannot read {}", o.url()))?;
    Ok(bytes.to_vec())
}

/// A streaming reader of the object.
pub(super) fn open(url: Url<'_>) -> Result<RemoteReader> {
    let o = url.object()?;
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
    Ok(RemoteReader {
        object: o,
        len,
        pos: 0,
        buf,
        buf_start,
        ahead: MIN_AHEAD,
    })
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

    /// The object's size.
    pub(super) fn len(&self) -> u64 {
        self.len
    }

    /// Fills `buf` from `offset` without moving the read position: from
    /// what was last fetched where it holds the range, else one request.
    pub(super) fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        let end = offset + buf.len() as u64;
        let have = self.buf_start..self.buf_start + self.buf.len() as u64;
        if have.start <= offset && end <= have.end {
            let at = (offset - have.start) as usize;
            buf.copy_from_slice(&self.buf[at..at + buf.len()]);
            return Ok(());
        }
        let bytes = self.range(offset, end)?;
        if bytes.len() != buf.len() {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.copy_from_slice(&bytes);
        Ok(())
    }

    /// A second reader of the same object, at `start`, with nothing fetched.
    pub(super) fn reader_at(&self, start: u64) -> RemoteReader {
        RemoteReader {
            object: self.object.clone(),
            len: self.len,
            pos: start,
            buf: Bytes::new(),
            buf_start: 0,
            ahead: MIN_AHEAD,
        }
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

/// Uploads the staged file `staged` as the object, then removes it.
pub(super) fn commit(staged: &Path, url: Url<'_>) -> Result<()> {
    let o = url.object()?;
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

/// Writes a whole (small) object in one PUT, which is atomic as it is.
pub(super) fn write(url: Url<'_>, bytes: &[u8]) -> Result<()> {
    let o = url.object()?;
    block_on(o.store.put(&o.key, Bytes::copy_from_slice(bytes).into()))
        .map_err(brief)
        .with_context(|| format!("cannot write {}", o.url()))?;
    Ok(())
}

/// Creates an object that must not exist yet: false (and nothing written)
/// when it does. A conditional PUT (If-None-Match) makes the check and the
/// write one step where the store supports it, and a look first covers the
/// stores that do not.
pub(super) fn create_new(url: Url<'_>, bytes: &[u8]) -> Result<bool> {
    let o = url.object()?;
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

/// Removes an object; one that is not there is no error.
pub(super) fn remove_file(url: Url<'_>) -> Result<()> {
    let o = url.object()?;
    match block_on(o.store.delete(&o.key)) {
        Err(e) if !is_not_found(&e) => {
            Err(brief(e)).with_context(|| format!("cannot remove {}", o.url()))
        }
        _ => Ok(()),
    }
}

/// Removes every object under the prefix; none there is no error.
pub(super) fn remove_all(url: Url<'_>) -> Result<()> {
    // Batched deletes (up to 1,000 keys a request on S3).
    let o = url.object()?;
    let keys = o.store.list(Some(&o.key)).map_ok(|m| m.location).boxed();
    block_on(o.store.delete_stream(keys).try_collect::<Vec<_>>())
        .map_err(brief)
        .with_context(|| format!("cannot remove {}", o.url()))?;
    Ok(())
}
