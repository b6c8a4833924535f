//! What the fuzz targets (`fuzz/`) run, kept in the library so that every
//! input they found a fault with replays as an ordinary test
//! (`tests/faults.rs` runs `fuzz/regressions/<target>/*`). Each entry takes
//! arbitrary bytes and may fail with an error; it must not panic in sluice's
//! own code, hang, or exhaust memory.
//!
//! A panic inside a library sluice calls (a Parquet decoder meeting a
//! corrupt page) is caught where the executor catches it, at the task
//! boundary, and fails that task with its message: [`contained`] tells those
//! apart from sluice's own panics, which are bugs.

use std::path::{Path, PathBuf};

use crate::io::{discover, reader};
use crate::pipeline::spec::Spec;

/// A file of this thread's own in the scratch folder (tmpfs where there is
/// one), rewritten for each input.
fn scratch(name: &str) -> PathBuf {
    let base = Path::new("/dev/shm");
    let base = if base.is_dir() {
        base.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    let thread = format!("{:?}", std::thread::current().id());
    let thread: String = thread.chars().filter(char::is_ascii_digit).collect();
    let dir = base.join(format!("sluice-fuzz-{}-{thread}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    dir.join(name)
}

/// Reads `path` as the input of a run whose spec adds `extra` to `[input]`,
/// every task to its end: the path a run's first phase takes.
fn read_all(path: &Path, extra: &str) {
    let source = format!("[input]\npaths = [{path:?}]\n{extra}\n[output]\ndir = \"unused\"\n");
    let spec = Spec::parse("fuzz.toml", &source).expect("the fuzz spec is valid");
    let Ok(tasks) = discover::discover(&spec.input) else {
        return;
    };
    for task in &tasks {
        let _ = reader::empty_batch(task, &spec.input);
        let Ok(batches) = reader::open(task, &spec.input, Some(&Default::default())) else {
            continue;
        };
        for b in batches {
            if b.is_err() {
                break;
            }
        }
    }
}

/// A JSONL file; the first byte chooses whether it is cut into byte ranges.
pub fn jsonl(data: &[u8]) {
    let (split, body) = match data.split_first() {
        Some((b, rest)) => (b & 1 == 1, rest),
        None => (false, data),
    };
    let path = scratch("input.jsonl");
    if std::fs::write(&path, body).is_err() {
        return;
    }
    let extra = if split {
        "max_task_bytes = 1024\nbatch_rows = 7"
    } else {
        "batch_rows = 64"
    };
    read_all(&path, extra);
}

/// A Parquet file, read as a run reads it, then described by `inspect`.
pub fn parquet(data: &[u8]) {
    let path = scratch("input.parquet");
    if std::fs::write(&path, data).is_err() {
        return;
    }
    read_all(&path, "max_task_bytes = 1024");
    let _ = crate::inspect::inspect(&path, "text", &Default::default());
}

/// A pipeline spec: parsed, validated and its steps built (which loads no
/// model unless the spec names one).
pub fn spec(data: &[u8]) {
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(spec) = Spec::parse("fuzz.toml", source) {
        let _ = crate::ops::build_steps(&spec);
    }
}

/// A `tokenizer.json`, loaded as `tokenize` loads one (the `tokenizers`
/// crate, and sluice's own encoder where the file is one sluice wrote),
/// then used on a few texts.
pub fn tokenizer(data: &[u8]) {
    let path = scratch("tokenizer.json");
    if std::fs::write(&path, data).is_err() {
        return;
    }
    let Ok(enc) = crate::tokenizer::load::TextEncoder::load(&path) else {
        return;
    };
    for text in ["", "Hello, world!", "数字 123 中文", "\u{0} \t\n 🎉"] {
        let _ = enc.encode_batch(&[text]);
    }
}

/// A fastText model file, loaded and asked for a prediction.
pub fn fasttext(data: &[u8]) {
    if let Ok(m) = crate::models::fasttext::FastTextModel::parse(data) {
        for text in ["", "hello world", "数字 中文"] {
            let _ = m.predict(text, 3, 0.0);
        }
    }
}

/// A KenLM model file, loaded as `perplexity` loads one and asked for
/// scores. An even first byte: the rest is an ARPA file. An odd one: the
/// rest follows a valid binary header (KenLM's sanity bytes and probing
/// parameters, order from the byte), so that the fuzzer reaches the
/// counts and tables of the probing format.
pub fn kenlm(data: &[u8]) {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let path = scratch(if mode & 1 == 0 {
        "lm.arpa"
    } else {
        "lm.binary"
    });
    let bytes = if mode & 1 == 0 {
        body.to_vec()
    } else {
        let mut b = crate::models::kenlm::binary::sanity().to_vec();
        b.push(2 + (mode >> 1) % 5);
        b.extend_from_slice(&[0, 0, 0]);
        b.extend_from_slice(&1.5f32.to_le_bytes());
        b.extend_from_slice(&((mode >> 4) as u32 & 1).to_le_bytes());
        b.extend_from_slice(&[1, 0, 0, 0]);
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend_from_slice(body);
        b
    };
    if std::fs::write(&path, bytes).is_err() {
        return;
    }
    if let Ok(m) = crate::models::kenlm::Model::load(&path) {
        for text in ["", "a b c", "<s> </s> <unk>", "数 字 \u{b} x"] {
            let _ = m.score(text, true, true);
            let _ = m.score(text, false, false);
        }
    }
}

/// A WARC file. The first byte chooses how the rest is stored: as it is in
/// a `.warc` (0) or a `.warc.gz` (1, raw bytes for the gzip reader), or
/// gzipped here, as one whole-file member (2) or one member per record (3,
/// cut before each `WARC/1.`), so that the record parser is reached
/// through both kinds of compressed file.
pub fn warc(data: &[u8]) {
    use std::io::Write;
    let (mode, body) = match data.split_first() {
        Some((b, rest)) => (b & 3, rest),
        None => (0, data),
    };
    let gz = |part: &[u8]| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let _ = e.write_all(part);
        e.finish().unwrap_or_default()
    };
    let (name, bytes) = match mode {
        0 => ("input.warc", body.to_vec()),
        1 => ("input.warc.gz", body.to_vec()),
        2 => ("input.warc.gz", gz(body)),
        _ => {
            let mut starts: Vec<usize> = memchr::memmem::find_iter(body, b"WARC/1.").collect();
            if starts.first() != Some(&0) {
                starts.insert(0, 0);
            }
            starts.push(body.len());
            let members: Vec<u8> = starts
                .windows(2)
                .flat_map(|w| gz(&body[w[0]..w[1]]))
                .collect();
            ("input.warc.gz", members)
        }
    };
    let path = scratch(name);
    if std::fs::write(&path, bytes).is_err() {
        return;
    }
    read_all(&path, "format = \"warc\"\nbatch_rows = 5");
}

/// An HTML page through `extract`; the first byte chooses the options
/// (favour, output, tables, lists).
pub fn html(data: &[u8]) {
    use crate::ops::web::extract::{extract, Favour, Options, OutputFormat};
    let (opts, body) = match data.split_first() {
        Some((b, rest)) => (*b, rest),
        None => (0, data),
    };
    let page = String::from_utf8_lossy(body);
    let options = Options {
        favour: [
            Favour::Balanced,
            Favour::Precision,
            Favour::Recall,
            Favour::Balanced,
        ][usize::from(opts & 3)],
        output: if opts & 4 == 0 {
            OutputFormat::Text
        } else {
            OutputFormat::Markdown
        },
        include_tables: opts & 8 == 0,
        include_lists: opts & 16 == 0,
    };
    let _ = extract(&page, &options);
}

/// Text through `pii`'s finders (every kind; the first byte's low bit
/// flags private IPs too) and `decontaminate`'s n-grams, checking what
/// their callers rely on: findings in order, apart, on character
/// boundaries; n-grams inside the text.
pub fn privacy(data: &[u8]) {
    use crate::models::contamination::{ngrams, Window};
    use crate::ops::privacy::pii::{Detector, Kind};
    let (opts, body) = match data.split_first() {
        Some((b, rest)) => (*b, rest),
        None => (0, data),
    };
    let text = String::from_utf8_lossy(body);
    let spans = Detector::new(&Kind::ALL, opts & 1 == 1).find(&text);
    let mut end = 0;
    for s in &spans {
        assert!(s.start >= end && s.start < s.end && s.end <= text.len());
        assert!(text.is_char_boundary(s.start) && text.is_char_boundary(s.end));
        end = s.end;
    }
    let window = Window {
        words: 1 + usize::from(opts >> 4),
        cjk: 1 + usize::from(opts & 0x0e),
    };
    ngrams(&text, window, |s, e, _| {
        assert!(s < e && e <= text.len() && text.is_char_boundary(s) && text.is_char_boundary(e));
    });
}

/// What a fuzz target runs on one input.
pub type Target = fn(&[u8]);

/// The entries by target name (the names of `fuzz/fuzz_targets/*.rs`).
pub const TARGETS: &[(&str, Target)] = &[
    ("jsonl", jsonl),
    ("parquet", parquet),
    ("spec", spec),
    ("tokenizer", tokenizer),
    ("fasttext", fasttext),
    ("kenlm", kenlm),
    ("warc", warc),
    ("html", html),
    ("privacy", privacy),
];

/// Whether a panic at `file` (as `std::panic::Location` names it) is one
/// the executor contains: in a library's code, not sluice's own.
pub fn contained(file: &str) -> bool {
    // Crates from the registry, and the standard library (e.g. a capacity
    // overflow a decoder asked for), are named by absolute paths.
    file.contains("/registry/src/") || file.starts_with("/rustc/")
}

thread_local! {
    /// Where the last panic on this thread happened, while [`check`] runs.
    static PANIC_AT: std::cell::RefCell<Option<Option<String>>> =
        const { std::cell::RefCell::new(None) };
}

/// Runs one input through `target` as the executor runs a task, and
/// returns where sluice's own code panicked, if it did. A panic in a
/// library is caught, as the executor catches it (the task would fail with
/// its message), and is not returned.
pub fn check(target: Target, data: &[u8]) -> Option<String> {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let recording = PANIC_AT.with(|p| p.borrow().is_some());
            if !recording {
                return previous(info);
            }
            let at = info
                .location()
                .map(|l| format!("{}:{}", l.file(), l.line()))
                .unwrap_or_default();
            PANIC_AT.with(|p| *p.borrow_mut() = Some(Some(at)));
        }));
    });
    PANIC_AT.with(|p| *p.borrow_mut() = Some(None));
    let result = std::panic::catch_unwind(|| target(data));
    let at = PANIC_AT.with(|p| p.borrow_mut().take()).flatten();
    match (result, at) {
        (Ok(()), _) => None,
        (Err(_), Some(at)) if contained(&at) => None,
        (Err(_), at) => Some(at.unwrap_or_else(|| "an unknown place".into())),
    }
}

/// What a fuzz target runs: [`check`], aborting (a crash, to the fuzzer)
/// when sluice's code panicked.
pub fn run(target: Target, data: &[u8]) {
    if let Some(at) = check(target, data) {
        eprintln!("sluice panicked at {at}");
        std::process::abort();
    }
}
