//! `sluice report`: the page of a real run (pipelines/web.toml on the
//! fixtures) says what stats.json says, step by step and reason by reason;
//! an annotated run's candidate thresholds count what the shards hold;
//! `--compare` sets two runs side by side; and headless Chromium opens the
//! page without a console error, draws every bar, and leaves a screenshot
//! in target/artifacts/.

mod common;

use std::path::{Path, PathBuf};

use common::*;

/// pipelines/web.toml with its output and quality model in `dir`: the
/// spec users run, on the bundled fixtures.
fn web_run(dir: &Path) -> PathBuf {
    let model = train_fixture_classifier(dir, "quality-model", "");
    let spec = std::fs::read_to_string(repo().join("pipelines/web.toml")).unwrap();
    let out = dir.join("web");
    let spec = spec
        .replace(
            "model = \"out/quality-model/model.bin\"",
            &format!("model = {:?}", model.join("model.bin")),
        )
        .replace("# min_score = 0.5", "min_score = 0.5")
        .replace("dir = \"out/web\"", &format!("dir = {out:?}"));
    assert!(spec.contains("min_score = 0.5") && spec.contains(out.to_str().unwrap()));
    let path = write_spec(dir, "web.toml", &spec);
    run_ok(&repo(), &["run", path.to_str().unwrap(), "-q"]);
    out
}

/// The value of `attr="…"` in a tag.
fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let key = format!(" {name}=\"");
    let i = tag.find(&key)? + key.len();
    Some(&tag[i..i + tag[i..].find('"')?])
}

/// Every opening tag of `html` with attribute `name`.
fn tags_with<'a>(html: &'a str, name: &str) -> Vec<&'a str> {
    let key = format!(" {name}=\"");
    let mut out = vec![];
    let mut rest = html;
    while let Some(i) = rest.find(&key) {
        let start = rest[..i].rfind('<').unwrap();
        let end = i + rest[i..].find('>').unwrap();
        out.push(&rest[start..end]);
        rest = &rest[end..];
    }
    out
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

#[test]
fn the_report_says_what_stats_json_says() {
    let dir = tempfile::tempdir().unwrap();
    let out = web_run(dir.path());
    let o = run_ok(&repo(), &["report", out.to_str().unwrap()]);
    assert!(stdout(&o).contains("stats.json"), "{}", stdout(&o));
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    let stats = stats_json(&out);

    // The funnel: every step, with its numbers.
    let steps = stats["steps"].as_array().unwrap();
    let rows = tags_with(&html, "data-step");
    assert_eq!(rows.len(), steps.len());
    for (row, step) in rows.iter().zip(steps) {
        assert_eq!(unescape(attr(row, "data-step").unwrap()), step["step"]);
        for (a, k) in [("data-in", "input"), ("data-kept", "kept")] {
            assert_eq!(attr(row, a).unwrap(), step[k]["docs"].to_string(), "{row}");
        }
        let dropped: u64 = step["dropped"]
            .as_object()
            .unwrap()
            .values()
            .map(|c| c["docs"].as_u64().unwrap())
            .sum();
        assert_eq!(attr(row, "data-dropped").unwrap(), dropped.to_string());
    }
    // Every drop reason, with its documents and bytes, and its samples:
    // as many as it dropped, up to four.
    let reasons = stats["dropped"].as_object().unwrap();
    assert!(reasons.len() >= 8, "{reasons:?}");
    let rows = tags_with(&html, "data-reason");
    for (reason, c) in reasons {
        let row = rows
            .iter()
            .find(|r| unescape(attr(r, "data-reason").unwrap()) == *reason && r.starts_with("<tr"))
            .unwrap_or_else(|| panic!("no row for {reason}"));
        assert_eq!(attr(row, "data-docs").unwrap(), c["docs"].to_string());
        assert_eq!(attr(row, "data-bytes").unwrap(), c["bytes"].to_string());
        let samples = rows
            .iter()
            .filter(|r| {
                r.starts_with("<details") && unescape(attr(r, "data-reason").unwrap()) == *reason
            })
            .count();
        assert_eq!(
            samples as u64,
            c["docs"].as_u64().unwrap().min(4),
            "{reason}"
        );
    }
    // The histograms: text length per step, lang_score and quality_score
    // with their thresholds marked.
    let charts = tags_with(&html, "data-column");
    for col in ["text length (bytes)", "lang_score", "quality_score"] {
        assert!(
            charts.iter().any(|t| attr(t, "data-column") == Some(col)),
            "{col}"
        );
    }
    assert!(html.contains("keep ≥ 0.6500") && html.contains("keep ≥ 0.5000"));
    assert!(tags_with(&html, "data-category")
        .iter()
        .any(|t| attr(t, "data-category") == Some("lang")));
    // The values a histogram counts are the documents that reached the step.
    let lang_step = &steps[1];
    let lang_chart = charts
        .iter()
        .find(|t| attr(t, "data-column") == Some("lang_score"))
        .unwrap();
    assert_eq!(
        attr(lang_chart, "data-values").unwrap(),
        lang_step["input"]["docs"].to_string()
    );
    // Phases, and no network: nothing is fetched.
    assert!(html.contains("id=\"phases\""));
    for fetch in ["<script", "<link", " src=", "href=\"http", "url("] {
        assert!(!html.contains(fetch), "{fetch}");
    }
    // The same run gives the same page.
    run_ok(
        &repo(),
        &[
            "report",
            out.to_str().unwrap(),
            "-o",
            dir.path().join("again.html").to_str().unwrap(),
        ],
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("again.html")).unwrap(),
        html
    );

    // Two runs side by side: the second without the quality threshold.
    let spec = std::fs::read_to_string(dir.path().join("web.toml")).unwrap();
    let out_b = dir.path().join("web-b");
    let spec = spec
        .replace("min_score = 0.5", "")
        .replace(out.to_str().unwrap(), out_b.to_str().unwrap());
    let path = write_spec(dir.path(), "web-b.toml", &spec);
    run_ok(&repo(), &["run", path.to_str().unwrap(), "-q"]);
    let cmp = dir.path().join("cmp.html");
    run_ok(
        &repo(),
        &[
            "report",
            "--compare",
            out.to_str().unwrap(),
            out_b.to_str().unwrap(),
            "-o",
            cmp.to_str().unwrap(),
        ],
    );
    let html = std::fs::read_to_string(&cmp).unwrap();
    let stats_b = stats_json(&out_b);
    let kept = tags_with(&html, "data-total")
        .into_iter()
        .find(|t| attr(t, "data-total") == Some("documents kept"))
        .unwrap();
    assert_eq!(
        attr(kept, "data-a").unwrap(),
        stats["kept"]["docs"].to_string()
    );
    assert_eq!(
        attr(kept, "data-b").unwrap(),
        stats_b["kept"]["docs"].to_string()
    );
    assert!(stats_b["kept"]["docs"].as_u64() > stats["kept"]["docs"].as_u64());

    // A folder without a run: an error that says so.
    let o = sluice(&repo(), &["report", dir.path().to_str().unwrap()], &[]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("stats.json") && !stderr(&o).contains("panicked"),
        "{}",
        stderr(&o)
    );
}

/// An annotated run: the report counts, at each candidate threshold, the
/// documents whose signal reaches it; the shards agree.
#[test]
fn candidate_thresholds_count_what_the_shards_hold() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    write_spec(
        dir.path(),
        "spec.toml",
        &format!(
            "[input]\npaths = [{:?}]\n[output]\ndir = {out:?}\n\
             [[step]]\nop = \"gopher_quality\"\nmode = \"annotate\"\n",
            repo().join("fixtures/quickstart/web_pages.parquet")
        ),
    );
    run_ok(dir.path(), &["run", "spec.toml", "-q"]);
    run_ok(dir.path(), &["report", out.to_str().unwrap()]);
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    let words: Vec<f64> = read_rows(&out, "")
        .iter()
        .map(|r| r["gopher_word_count"].parse().unwrap())
        .collect();
    assert!(words.len() >= 200, "{}", words.len());
    // The word-count chart, its threshold, and its table of candidates.
    let start = html.find("data-column=\"gopher_word_count\"").unwrap();
    let end = start + html[start..].find("</details>").unwrap();
    let part = &html[start..end];
    assert!(
        part.contains("keep ≥ 50"),
        "the dropping filter's threshold is marked"
    );
    let candidates = tags_with(part, "data-at");
    assert!(candidates.len() >= 5, "{}", candidates.len());
    let mut at_threshold = false;
    for c in candidates {
        let t: f64 = attr(c, "data-at").unwrap().parse().unwrap();
        let above: usize = attr(c, "data-above").unwrap().parse().unwrap();
        assert_eq!(above, words.iter().filter(|&&w| w >= t).count(), "at {t}");
        at_threshold |= t == 50.0;
    }
    assert!(at_threshold, "the threshold itself is a candidate");
}

/// `excluded = false` keeps dropped texts out of stats.json too: the
/// report has its counts, no samples.
#[test]
fn no_dropped_text_is_kept_without_excluded() {
    let dir = tempfile::tempdir().unwrap();
    let spec = |name: &str, excluded: bool| {
        write_spec(
            dir.path(),
            &format!("{name}.toml"),
            &format!(
                "[input]\npaths = [{:?}]\n[output]\ndir = {:?}\nexcluded = {excluded}\n\
                 [[step]]\nop = \"length_filter\"\nmin_words = 300\n",
                repo().join("fixtures/quickstart/web_pages.parquet"),
                dir.path().join(name)
            ),
        );
        run_ok(dir.path(), &["run", &format!("{name}.toml"), "-q"]);
        let stats = stats_json(&dir.path().join(name));
        let samples: usize = stats["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["profile"]["samples"].as_object().map_or(0, |m| m.len()))
            .sum();
        (
            stats["dropped"]["length_filter:min_words"]["docs"].as_u64(),
            samples,
        )
    };
    let (dropped, samples) = spec("with", true);
    assert!(dropped > Some(10) && samples == 1, "{dropped:?} {samples}");
    let (dropped_too, samples) = spec("without", false);
    assert_eq!(dropped_too, dropped);
    assert_eq!(samples, 0);
}

/// Headless Chromium (Debian's `chromium`; SLUICE_CHROMIUM names another)
/// opens the report of pipelines/web.toml: no console error, every bar of
/// the page drawn with a size, a screenshot in target/artifacts/. CI
/// installs Chromium and sets SLUICE_REQUIRE_CHROMIUM: there a missing
/// browser fails the test.
#[test]
fn the_report_opens_in_chromium() {
    let Some(chromium) = browser::find() else {
        assert!(
            std::env::var_os("SLUICE_REQUIRE_CHROMIUM").is_none(),
            "SLUICE_REQUIRE_CHROMIUM is set but no Chromium was found"
        );
        eprintln!("!!! SKIPPED: no chromium; the browser test did not run");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = web_run(dir.path());
    run_ok(&repo(), &["report", out.to_str().unwrap()]);
    let page = out.join("report.html");
    let html = std::fs::read_to_string(&page).unwrap();
    let mut b = browser::Browser::launch(&chromium, dir.path());
    let errors = b.open(&page);
    assert!(errors.is_empty(), "console errors: {errors:?}");
    let rects_in_file = html.matches("<rect").count() as u64;
    assert!(rects_in_file > 100, "{rects_in_file}");
    // Every bar is in the page, and laid out with a size.
    let drawn = b.eval(
        "[...document.querySelectorAll('svg rect')].filter(r => { const b = r.getBoundingClientRect(); \
         return b.width > 0 && b.height > 0; }).length",
    );
    assert_eq!(drawn.as_u64(), Some(rects_in_file), "bars drawn");
    let charts = b.eval(
        "[...document.querySelectorAll('svg.chart')].filter(s => s.getBoundingClientRect().width > 0 \
         && s.querySelector('rect')).length",
    );
    assert_eq!(
        charts.as_u64(),
        Some(html.matches("<svg class=\"chart\"").count() as u64),
        "every chart drawn"
    );
    // The samples open.
    let opened = b.eval(
        "(() => { const d = document.querySelector('details.sample'); d.open = true; \
         return d.querySelector('pre').getBoundingClientRect().height; })()",
    );
    assert!(opened.as_f64().unwrap_or(0.0) > 0.0, "{opened}");
    let png = b.screenshot();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "{}",
        png.len()
    );
    let artifacts = repo().join("target/artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    std::fs::write(artifacts.join("report-web.png"), &png).unwrap();
    std::fs::copy(&page, artifacts.join("report-web.html")).unwrap();
    eprintln!(
        "screenshot: {} ({} bytes)",
        artifacts.join("report-web.png").display(),
        png.len()
    );
}

/// A minimal driver of Chromium's DevTools protocol over
/// `--remote-debugging-pipe` (commands on fd 3, replies on fd 4, each a
/// JSON message ending in a NUL byte): no WebDriver, no crate.
mod browser {
    use std::io::{BufRead, BufReader, Write};
    use std::os::fd::{FromRawFd, OwnedFd};
    use std::os::unix::process::CommandExt;
    use std::path::{Path, PathBuf};
    use std::process::{Child, Command, Stdio};
    use std::sync::mpsc::{channel, Receiver};
    use std::time::Duration;

    use base64::Engine;
    use serde_json::{json, Value};

    pub fn find() -> Option<PathBuf> {
        if let Some(p) = std::env::var_os("SLUICE_CHROMIUM") {
            return Some(PathBuf::from(p));
        }
        // Debian's binary itself: its /usr/bin/chromium is a wrapper script.
        ["/usr/lib/chromium/chromium", "/usr/bin/chromium"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
    }

    pub struct Browser {
        child: Child,
        to: std::fs::File,
        from: Receiver<Value>,
        id: u64,
        session: String,
        /// Console errors and exceptions seen.
        errors: Vec<String>,
    }

    fn pipe() -> (OwnedFd, OwnedFd) {
        let mut fds = [0; 2];
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
    }

    impl Browser {
        pub fn launch(chromium: &Path, profile: &Path) -> Browser {
            use std::os::fd::AsRawFd;
            let (cmd_read, cmd_write) = pipe();
            let (reply_read, reply_write) = pipe();
            let (r, w) = (cmd_read.as_raw_fd(), reply_write.as_raw_fd());
            let mut command = Command::new(chromium);
            command
                .args([
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--no-first-run",
                    "--remote-debugging-pipe",
                    "--hide-scrollbars",
                    "--window-size=1200,900",
                ])
                .arg(format!(
                    "--user-data-dir={}",
                    profile.join("chromium").display()
                ))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            // The child's fds 3 and 4 are the pipes' ends (dup2 clears
            // close-on-exec on the copies).
            unsafe {
                command.pre_exec(move || {
                    if libc::dup2(r, 3) < 0 || libc::dup2(w, 4) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
            let child = command.spawn().expect("chromium starts");
            drop(cmd_read);
            drop(reply_write);
            let (tx, rx) = channel();
            let reader = std::fs::File::from(reply_read);
            std::thread::spawn(move || {
                let mut r = BufReader::new(reader);
                loop {
                    let mut buf = vec![];
                    match r.read_until(0, &mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {
                            buf.pop();
                            if let Ok(v) = serde_json::from_slice::<Value>(&buf) {
                                if tx.send(v).is_err() {
                                    break;
                                }
                            }
                        }
                    }
                }
            });
            let mut b = Browser {
                child,
                to: std::fs::File::from(cmd_write),
                from: rx,
                id: 0,
                session: String::new(),
                errors: vec![],
            };
            let target = b.call("Target.createTarget", json!({"url": "about:blank"}), false);
            let target = target["targetId"].as_str().unwrap().to_string();
            let attached = b.call(
                "Target.attachToTarget",
                json!({"targetId": target, "flatten": true}),
                false,
            );
            b.session = attached["sessionId"].as_str().unwrap().to_string();
            for domain in ["Runtime.enable", "Log.enable", "Page.enable"] {
                b.call(domain, json!({}), true);
            }
            b
        }

        fn next(&mut self) -> Value {
            let v = self
                .from
                .recv_timeout(Duration::from_secs(60))
                .expect("Chromium answers within a minute");
            self.note(&v);
            v
        }

        /// Keeps what an event says of errors.
        fn note(&mut self, v: &Value) {
            let p = &v["params"];
            match v["method"].as_str() {
                Some("Runtime.exceptionThrown") => {
                    self.errors.push(p["exceptionDetails"].to_string())
                }
                Some("Runtime.consoleAPICalled")
                    if matches!(p["type"].as_str(), Some("error" | "assert")) =>
                {
                    self.errors.push(p["args"].to_string())
                }
                Some("Log.entryAdded") if p["entry"]["level"] == "error" => {
                    self.errors.push(p["entry"].to_string())
                }
                _ => {}
            }
        }

        fn call(&mut self, method: &str, params: Value, in_page: bool) -> Value {
            self.id += 1;
            let mut msg = json!({"id": self.id, "method": method, "params": params});
            if in_page {
                msg["sessionId"] = json!(self.session);
            }
            let mut bytes = serde_json::to_vec(&msg).unwrap();
            bytes.push(0);
            self.to.write_all(&bytes).unwrap();
            loop {
                let v = self.next();
                if v["id"] == json!(self.id) {
                    assert!(v.get("error").is_none(), "{method}: {v}");
                    return v["result"].clone();
                }
            }
        }

        /// Opens a local file and waits for its load event; returns the
        /// console errors and exceptions of the page.
        pub fn open(&mut self, page: &Path) -> Vec<String> {
            let url = format!("file://{}", page.canonicalize().unwrap().display());
            self.call("Page.navigate", json!({"url": url}), true);
            loop {
                let v = self.next();
                if v["method"] == "Page.loadEventFired" {
                    break;
                }
            }
            std::mem::take(&mut self.errors)
        }

        pub fn eval(&mut self, expression: &str) -> Value {
            let r = self.call(
                "Runtime.evaluate",
                json!({"expression": expression, "returnByValue": true}),
                true,
            );
            assert!(r.get("exceptionDetails").is_none(), "{expression}: {r}");
            r["result"]["value"].clone()
        }

        pub fn screenshot(&mut self) -> Vec<u8> {
            let r = self.call(
                "Page.captureScreenshot",
                json!({"format": "png", "captureBeyondViewport": true}),
                true,
            );
            base64::engine::general_purpose::STANDARD
                .decode(r["data"].as_str().unwrap())
                .unwrap()
        }
    }

    impl Drop for Browser {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
