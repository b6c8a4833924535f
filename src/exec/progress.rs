//! Progress: a bar on a terminal (tasks, documents/s, MB/s, ETA), plain
//! periodic log lines otherwise (Slurm logs, CI).

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

#[derive(Default)]
struct Counters {
    docs: AtomicU64,
    bytes: AtomicU64,
    tasks: AtomicU64,
}

/// Progress of one phase; cheap to update from many threads.
pub struct Progress {
    counters: Arc<Counters>,
    bar: Option<ProgressBar>,
    stop: Arc<AtomicBool>,
    logger: Mutex<Option<std::thread::JoinHandle<()>>>,
}

fn rates(c: &Counters, start: Instant) -> String {
    let secs = start.elapsed().as_secs_f64().max(1e-3);
    let docs = c.docs.load(Ordering::Relaxed);
    let mb = c.bytes.load(Ordering::Relaxed) as f64 / 1e6;
    format!(
        "{docs} docs, {:.0} docs/s, {:.1} MB/s",
        docs as f64 / secs,
        mb / secs
    )
}

impl Progress {
    pub fn start(phase: &str, tasks: usize, quiet: bool) -> Progress {
        let counters = Arc::new(Counters::default());
        let stop = Arc::new(AtomicBool::new(false));
        let start = Instant::now();
        if quiet {
            return Progress {
                counters,
                bar: None,
                stop,
                logger: Mutex::new(None),
            };
        }
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(tasks as u64);
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix:>10} [{bar:30}] {pos}/{len} tasks {msg} ETA {eta}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            bar.set_prefix(phase.to_string());
            bar.enable_steady_tick(Duration::from_millis(200));
            let c = counters.clone();
            let b = bar.clone();
            let s = stop.clone();
            let handle = std::thread::spawn(move || {
                while !s.load(Ordering::Relaxed) {
                    b.set_message(rates(&c, start));
                    std::thread::park_timeout(Duration::from_millis(250));
                }
            });
            return Progress {
                counters,
                bar: Some(bar),
                stop,
                logger: Mutex::new(Some(handle)),
            };
        }
        let every = std::env::var("SLUICE_LOG_SECONDS")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(10);
        let c = counters.clone();
        let s = stop.clone();
        let phase = phase.to_string();
        let handle = std::thread::spawn(move || {
            let mut last = Instant::now();
            while !s.load(Ordering::Relaxed) {
                std::thread::park_timeout(Duration::from_millis(100));
                if last.elapsed() >= Duration::from_secs(every) {
                    last = Instant::now();
                    let done = c.tasks.load(Ordering::Relaxed);
                    crate::msg::info(format!(
                        "phase {phase}: {done}/{tasks} tasks, {}",
                        rates(&c, start)
                    ));
                }
            }
        });
        Progress {
            counters,
            bar: None,
            stop,
            logger: Mutex::new(Some(handle)),
        }
    }

    pub fn add(&self, docs: u64, bytes: u64) {
        self.counters.docs.fetch_add(docs, Ordering::Relaxed);
        self.counters.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    pub fn task_done(&self) {
        self.counters.tasks.fetch_add(1, Ordering::Relaxed);
        if let Some(b) = &self.bar {
            b.inc(1);
        }
    }

    /// Prints a line without breaking the bar.
    pub fn println(&self, line: &str) {
        match &self.bar {
            Some(b) => b.println(line),
            None => eprintln!("{line}"),
        }
    }

    pub fn finish(&self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.logger.lock().expect("progress lock").take() {
            // Wake it now rather than at its next tick: a phase must not
            // last a tick longer than its work.
            h.thread().unpark();
            let _ = h.join();
        }
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
