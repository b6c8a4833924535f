//! `pii` and `decontaminate` on real text with planted items: news prose
//! in English and Chinese from ../shared, with personal data of every kind
//! planted (and look-alikes that must stay), and with rows of a held-out
//! "benchmark" planted verbatim and lightly edited.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use arrow::array::{Array, Int64Array, ListArray, StringArray, StructArray};
use common::*;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// splitmix64: the planted items are the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
    fn digits(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| (b'0' + self.below(10) as u8) as char)
            .collect()
    }
    fn alnum(&mut self, n: usize, set: &[u8]) -> String {
        (0..n).map(|_| set[self.below(set.len())] as char).collect()
    }
}

const UPPER_DIGITS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const BASE62: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

// The checks, written here again from their standards so that the test
// does not take the code's word for them.

fn luhn_digit(body: &str) -> char {
    let sum: u32 = body
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, c)| {
            let d = (c - b'0') as u32;
            if i % 2 == 0 {
                let x = d * 2;
                if x > 9 {
                    x - 9
                } else {
                    x
                }
            } else {
                d
            }
        })
        .sum();
    (b'0' + ((10 - sum % 10) % 10) as u8) as char
}

fn iban_check(country: &str, bban: &str) -> String {
    let moved = format!("{bban}{country}00");
    let mut r = 0u64;
    for c in moved.chars() {
        let v = c.to_digit(36).unwrap() as u64;
        r = if v < 10 {
            (r * 10 + v) % 97
        } else {
            (r * 100 + v) % 97
        };
    }
    format!("{:02}", 98 - r)
}

fn cn_check(body: &str) -> char {
    const W: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let s: u32 = body
        .bytes()
        .zip(W)
        .map(|(c, w)| (c - b'0') as u32 * w)
        .sum();
    b"10X98765432"[(s % 11) as usize] as char
}

fn email(r: &mut Rng) -> String {
    let first = r.pick(&[
        "john",
        "mary",
        "li.wei",
        "zhang_san",
        "a.b",
        "k.schmidt",
        "ops-team",
    ]);
    let tag = if r.below(3) == 0 { "+news" } else { "" };
    let domain = r.pick(&[
        "gmail.com",
        "163.com",
        "qq.com",
        "example-mail.org",
        "uni.ox.ac.uk",
        "mail.company.de",
    ]);
    let n = r.below(3);
    format!("{first}{}{tag}@{domain}", r.digits(n))
}

fn ip(r: &mut Rng) -> String {
    match r.below(3) {
        0 | 1 => {
            let first = *r.pick(&[8u32, 23, 45, 66, 91, 104, 142, 151, 185, 212]);
            format!(
                "{first}.{}.{}.{}",
                r.below(256),
                r.below(256),
                1 + r.below(254)
            )
        }
        _ => format!(
            "{}:{:x}:{:x}::{:x}",
            r.pick(&["2001:4860", "2a00:1450", "2606:4700", "2400:cb00"]),
            r.below(65536),
            r.below(65536),
            1 + r.below(65535)
        ),
    }
}

fn phone(r: &mut Rng) -> String {
    let us = |r: &mut Rng| format!("{}{}", 2 + r.below(8), r.digits(2));
    match r.below(10) {
        0 => format!("+1 ({}) {}-{}", us(r), us(r), r.digits(4)),
        1 => format!("{}-{}-{}", us(r), us(r), r.digits(4)),
        2 => format!("+44 20 {} {}", r.digits(4), r.digits(4)),
        3 => format!("+49 30 {}", r.digits(7)),
        4 => format!("1{}{}", 3 + r.below(7), r.digits(9)),
        5 => format!(
            "1{}{} {} {}",
            3 + r.below(7),
            r.digits(1),
            r.digits(4),
            r.digits(4)
        ),
        6 => format!("010-{}{}", 2 + r.below(8), r.digits(7)),
        7 => format!(
            "+86 1{}{} {} {}",
            3 + r.below(7),
            r.digits(1),
            r.digits(4),
            r.digits(4)
        ),
        8 => format!(
            "0{} {} {} {} {}",
            1 + r.below(9),
            r.digits(2),
            r.digits(2),
            r.digits(2),
            r.digits(2)
        ),
        _ => format!("(0755) {}{}", 2 + r.below(8), r.digits(6)),
    }
}

fn cn_id(r: &mut Rng) -> String {
    let province = r.pick(&["11", "31", "44", "51", "33", "65"]);
    let body = format!(
        "{province}{}{}{:02}{:02}{}",
        r.digits(4),
        1950 + r.below(60),
        1 + r.below(12),
        1 + r.below(28),
        r.digits(3)
    );
    format!("{body}{}", cn_check(&body))
}

fn card(r: &mut Rng) -> String {
    let (body, groups): (String, &[usize]) = match r.below(3) {
        0 => (format!("4{}", r.digits(14)), &[4, 4, 4, 4]),
        1 => (
            format!("5{}{}", 1 + r.below(5), r.digits(13)),
            &[4, 4, 4, 4],
        ),
        _ => (
            format!("3{}{}", r.pick(&["4", "7"]), r.digits(12)),
            &[4, 6, 5],
        ),
    };
    let full = format!("{body}{}", luhn_digit(&body));
    let sep = *r.pick(&[" ", "-", ""]);
    let mut out = vec![];
    let mut at = 0;
    for g in groups {
        out.push(&full[at..at + g]);
        at += g;
    }
    out.join(sep)
}

fn iban(r: &mut Rng) -> String {
    let (country, bban) = match r.below(4) {
        0 => ("DE", r.digits(18)),
        1 => (
            "GB",
            format!(
                "{}{}",
                r.alnum(4, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
                r.digits(14)
            ),
        ),
        2 => (
            "FR",
            format!(
                "{}{}{}",
                r.digits(10),
                r.alnum(11, UPPER_DIGITS),
                r.digits(2)
            ),
        ),
        _ => (
            "NL",
            format!(
                "{}{}",
                r.alnum(4, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
                r.digits(10)
            ),
        ),
    };
    let plain = format!("{country}{}{bban}", iban_check(country, &bban));
    if r.below(2) == 0 {
        plain
    } else {
        plain
            .as_bytes()
            .chunks(4)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

fn secret(r: &mut Rng) -> String {
    match r.below(6) {
        0 => format!("AKIA{}", r.alnum(16, UPPER_DIGITS)),
        1 => format!("ghp_{}", r.alnum(36, BASE62)),
        2 => format!("sk_live_{}", r.alnum(24, BASE62)),
        3 => format!(
            "xoxb-{}-{}-{}",
            r.digits(11),
            r.digits(12),
            r.alnum(24, BASE62)
        ),
        4 => format!("AIza{}", r.alnum(35, BASE62)),
        _ => format!(
            "-----BEGIN RSA PRIVATE KEY-----\n{}\n{}\n-----END RSA PRIVATE KEY-----",
            r.alnum(64, BASE62),
            r.alnum(40, BASE62)
        ),
    }
}

/// Strings of the shapes above that are not personal data: each must come
/// out of every mode as it went in.
fn lookalike(r: &mut Rng) -> String {
    match r.below(16) {
        0 => format!(
            "version {}.{}.{}.{}",
            r.below(10),
            r.below(20),
            r.below(10),
            r.below(100)
        ),
        1 => format!("192.168.{}.{}", r.below(256), 1 + r.below(254)),
        2 => format!("10.{}.{}.{}", r.below(256), r.below(256), 1 + r.below(254)),
        3 => "ISBN 0-306-40615-2".to_string(),
        4 => format!(
            "ISBN 978-{}-{}-{}-{}",
            r.digits(1),
            r.digits(2),
            r.digits(6),
            r.digits(1)
        ),
        5 => format!(
            "{}-{:02}-{:02}",
            1990 + r.below(35),
            1 + r.below(12),
            1 + r.below(28)
        ),
        6 => format!(
            "{:02}.{:02}.{}",
            1 + r.below(28),
            1 + r.below(12),
            1990 + r.below(35)
        ),
        7 => {
            // An identity number with a wrong check character.
            let id = cn_id(r);
            let c = id.as_bytes()[17];
            let wrong = if c == b'1' { '2' } else { '1' };
            format!("{}{wrong}", &id[..17])
        }
        8 => {
            let body = format!("4{}", r.digits(14));
            let good = luhn_digit(&body).to_digit(10).unwrap();
            format!("{body}{}", (good + 1) % 10)
        }
        9 => {
            let bban = r.digits(18);
            let good: u32 = iban_check("DE", &bban).parse().unwrap();
            format!("DE{:02}{bban}", (good + 1) % 97 + 2)
        }
        10 => format!("AKIA{}", r.alnum(15, UPPER_DIGITS)),
        11 => format!("{:02}:{:02}:{:02}", r.below(24), r.below(60), r.below(60)),
        12 => "admin@localhost".to_string(),
        13 => format!(
            "section {}.{}.{}.{}",
            1 + r.below(9),
            r.below(9),
            r.below(9),
            r.below(9)
        ),
        14 => format!("order no. {}", r.digits(10)),
        _ => format!("{} people in {}", r.below(100_000), 1900 + r.below(120)),
    }
}

const KINDS: [&str; 7] = [
    "email",
    "ip",
    "phone",
    "cn_id",
    "credit_card",
    "iban",
    "secret",
];

fn placeholder(kind: &str) -> &'static str {
    match kind {
        "email" => "<EMAIL>",
        "ip" => "<IP_ADDRESS>",
        "phone" => "<PHONE>",
        "cn_id" => "<CN_ID>",
        "credit_card" => "<CREDIT_CARD>",
        "iban" => "<IBAN>",
        _ => "<SECRET>",
    }
}

/// A document with its planted items: the text, the spans that are
/// personal data (characters, kind), and the text as `replace` must give it.
struct Planted {
    id: String,
    text: String,
    spans: Vec<(usize, usize, String)>,
    replaced: String,
}

fn texts_of(path: &Path, n: usize, skip: usize) -> Vec<(String, String)> {
    let ids = read_parquet_column(path, "id");
    let texts = read_parquet_column(path, "text");
    ids.into_iter().zip(texts).skip(skip).take(n).collect()
}

/// Plants 1–4 items (personal data or a look-alike) in each document, each
/// after a sentence end, with a few words of context before it.
fn plant(docs: &[(String, String)], seed: u64) -> Vec<Planted> {
    let mut r = Rng(seed);
    let mut out = vec![];
    for (id, text) in docs {
        let zh = text.contains('。');
        let ends: Vec<usize> = text
            .char_indices()
            .filter(|(_, c)| matches!(c, '.' | '。' | '\n'))
            .map(|(i, c)| i + c.len_utf8())
            .collect();
        let mut at: Vec<usize> = (0..1 + r.below(4))
            .map(|_| {
                if ends.is_empty() {
                    text.len()
                } else {
                    *r.pick(&ends)
                }
            })
            .collect();
        at.sort();
        at.dedup();
        let (mut t, mut rep) = (String::new(), String::new());
        let mut spans = vec![];
        let mut prev = 0;
        for a in at {
            t.push_str(&text[prev..a]);
            rep.push_str(&text[prev..a]);
            prev = a;
            let pii = r.below(4) != 0;
            let kind = KINDS[r.below(KINDS.len())];
            let item = if pii {
                match kind {
                    "email" => email(&mut r),
                    "ip" => ip(&mut r),
                    "phone" => phone(&mut r),
                    "cn_id" => cn_id(&mut r),
                    "credit_card" => card(&mut r),
                    "iban" => iban(&mut r),
                    _ => secret(&mut r),
                }
            } else {
                lookalike(&mut r)
            };
            let (before, after) = if zh {
                (*r.pick(&["联系方式：", "信息 ", "备注："]), "。")
            } else {
                (
                    *r.pick(&[" Contact: ", " Details: ", " See ", " Reach us at "]),
                    " today.",
                )
            };
            t.push_str(before);
            rep.push_str(before);
            if pii {
                let start = t.chars().count();
                spans.push((start, start + item.chars().count(), kind.to_string()));
                rep.push_str(placeholder(kind));
            } else {
                rep.push_str(&item);
            }
            t.push_str(&item);
            t.push_str(after);
            rep.push_str(after);
        }
        t.push_str(&text[prev..]);
        rep.push_str(&text[prev..]);
        out.push(Planted {
            id: id.clone(),
            text: t,
            spans,
            replaced: rep,
        });
    }
    out
}

/// `(id, spans)` of the tag column, in output order.
fn read_spans(dir: &Path, column: &str) -> BTreeMap<String, Vec<(usize, usize, String)>> {
    let mut out = BTreeMap::new();
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    files.sort();
    for f in files {
        let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&f).unwrap())
            .unwrap()
            .build()
            .unwrap();
        for b in reader {
            let b = b.unwrap();
            let ids = b
                .column_by_name("id")
                .unwrap()
                .as_any()
                .downcast_ref::<StringArray>()
                .unwrap()
                .clone();
            let lists = b
                .column_by_name(column)
                .unwrap()
                .as_any()
                .downcast_ref::<ListArray>()
                .unwrap()
                .clone();
            for i in 0..b.num_rows() {
                let v = lists.value(i);
                let s = v.as_any().downcast_ref::<StructArray>().unwrap();
                let starts = s.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
                let ends = s.column(1).as_any().downcast_ref::<Int64Array>().unwrap();
                let kinds = s.column(2).as_any().downcast_ref::<StringArray>().unwrap();
                let spans = (0..s.len())
                    .map(|k| {
                        (
                            starts.value(k) as usize,
                            ends.value(k) as usize,
                            kinds.value(k).to_string(),
                        )
                    })
                    .collect();
                out.insert(ids.value(i).to_string(), spans);
            }
        }
    }
    out
}

/// Planted personal data of every kind is found (recall ≥ 0.99 per kind),
/// nothing else is (precision ≥ 0.99 per kind; the look-alikes stay), and
/// `replace` changes nothing but the planted items.
#[test]
fn pii_finds_planted_items_in_real_text_and_nothing_else() {
    let (Some(en), Some(zh)) = (
        shared("data/prose/en_abc_news.parquet"),
        shared("data/prose/zh_peoples_daily_1998.parquet"),
    ) else {
        return;
    };
    let mut docs = texts_of(&en, 1500, 0);
    docs.extend(texts_of(&zh, 1500, 0));
    let planted = plant(&docs, 7);
    let dir = tempfile::tempdir().unwrap();
    let input: Vec<(&str, Option<&str>)> = planted
        .iter()
        .map(|p| (p.id.as_str(), Some(p.text.as_str())))
        .collect();
    write_docs(&dir.path().join("in/docs.parquet"), &input, 500);
    for mode in ["tag", "replace", "drop"] {
        write_spec(
            dir.path(),
            &format!("{mode}.toml"),
            &format!(
                "[input]\npaths = [\"in/*.parquet\"]\n[output]\ndir = \"out-{mode}\"\n\
                 [[step]]\nop = \"pii\"\nmode = \"{mode}\"\n"
            ),
        );
        run_ok(dir.path(), &["run", &format!("{mode}.toml"), "--quiet"]);
    }

    // tag: per kind, recall and precision against the planted spans.
    let found = read_spans(&dir.path().join("out-tag"), "pii_spans");
    let mut tp: BTreeMap<String, usize> = BTreeMap::new();
    let mut planted_n: BTreeMap<String, usize> = BTreeMap::new();
    let mut found_n: BTreeMap<String, usize> = BTreeMap::new();
    let mut wrong = vec![];
    for p in &planted {
        let want: BTreeSet<_> = p.spans.iter().cloned().collect();
        let got: BTreeSet<_> = found[&p.id].iter().cloned().collect();
        for s in &want {
            *planted_n.entry(s.2.clone()).or_default() += 1;
        }
        for s in &got {
            *found_n.entry(s.2.clone()).or_default() += 1;
            if want.contains(s) {
                *tp.entry(s.2.clone()).or_default() += 1;
            } else {
                let text: String = p.text.chars().skip(s.0).take(s.1 - s.0).collect();
                wrong.push(format!("{}: found {} {text:?}", p.id, s.2));
            }
        }
        for s in want.difference(&got) {
            let text: String = p.text.chars().skip(s.0).take(s.1 - s.0).collect();
            wrong.push(format!("{}: missed {} {text:?}", p.id, s.2));
        }
    }
    let mut report = vec![];
    for k in KINDS {
        let (t, n, f) = (
            tp.get(k).copied().unwrap_or(0),
            planted_n[k],
            found_n.get(k).copied().unwrap_or(0),
        );
        let (recall, precision) = (t as f64 / n as f64, t as f64 / f.max(1) as f64);
        report.push(format!(
            "{k}: planted {n}, found {f}, right {t}: recall {recall:.4}, precision {precision:.4}"
        ));
        assert!(n >= 100, "too few {k} planted: {n}");
        assert!(
            recall >= 0.99 && precision >= 0.99,
            "{}\n{}",
            report.join("\n"),
            wrong.join("\n")
        );
    }
    eprintln!(
        "{}\nmisses and extras:\n{}",
        report.join("\n"),
        wrong.join("\n")
    );

    // replace: every planted item is its placeholder, and nothing else changed.
    let rows = read_rows(&dir.path().join("out-replace"), "");
    assert_eq!(rows.len(), planted.len());
    let by_id: BTreeMap<&str, &str> = rows
        .iter()
        .map(|r| (r["id"].as_str(), r["text"].as_str()))
        .collect();
    let mut differ = 0;
    for p in &planted {
        if by_id[p.id.as_str()] != p.replaced {
            differ += 1;
        }
    }
    assert!(
        differ * 100 <= planted.len(),
        "{differ} documents differ from the expected replacement"
    );

    // drop: the documents with planted data are dropped, by kind.
    let stats = stats_json(&dir.path().join("out-drop"));
    let with_pii = planted.iter().filter(|p| !p.spans.is_empty()).count() as u64;
    let dropped_all: u64 = KINDS
        .iter()
        .map(|k| dropped(&stats, &format!("pii:{k}")))
        .sum();
    assert!(
        dropped_all >= with_pii * 99 / 100 && dropped_all <= with_pii + with_pii / 100,
        "{dropped_all} of {with_pii}"
    );
    // The counters are in stats.json.
    let tag_stats = stats_json(&dir.path().join("out-tag"));
    let step = tag_stats["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"].as_str().unwrap().ends_with(":pii"))
        .unwrap()
        .clone();
    assert_eq!(
        step["counters"]["email"].as_u64().unwrap() as usize,
        found_n["email"],
        "{step}"
    );
}

/// A benchmark row: id, question, answer.
type Row = (String, String, String);

/// Rows of a held-out "benchmark" from documents the corpus does not hold:
/// English news (first sentences the question, the next the answer) and
/// Chinese news (the two halves of a paragraph).
fn benchmark_rows(docs: &[(String, String)], zh: bool, n: usize) -> Vec<Row> {
    let mut rows = vec![];
    for (id, text) in docs {
        if rows.len() == n {
            break;
        }
        if zh {
            let chars: Vec<char> = text.chars().collect();
            if chars.len() < 40 {
                continue;
            }
            let cut = chars.len().min(120) / 2;
            let q: String = chars[..cut].iter().collect();
            let a: String = chars[cut..chars.len().min(120)].iter().collect();
            rows.push((format!("zh-{id}"), q, a));
        } else {
            let words: Vec<&str> = text.split_whitespace().collect();
            if words.len() < 60 {
                continue;
            }
            rows.push((
                format!("en-{id}"),
                words[..30].join(" "),
                words[30..50].join(" "),
            ));
        }
    }
    rows
}

/// A light edit of a row's text: none, case, or punctuation and spacing.
fn edit(text: &str, how: usize) -> String {
    match how {
        0 => text.to_string(),
        1 => text.to_uppercase(),
        2 => text
            .to_lowercase()
            .replace(", ", " , ")
            .replace(". ", "\n\n"),
        _ => text
            .replace([',', '.', '"', '\'', '，', '。', '、'], " ")
            .replace("  ", " "),
    }
}

#[test]
fn decontaminate_removes_planted_benchmark_rows_and_leaves_clean_text() {
    let (Some(en), Some(zh)) = (
        shared("data/prose/en_abc_news.parquet"),
        shared("data/prose/zh_peoples_daily_1998.parquet"),
    ) else {
        return;
    };
    let mut corpus = texts_of(&en, 2500, 0);
    corpus.extend(texts_of(&zh, 4000, 0));
    let mut rows = benchmark_rows(&texts_of(&en, 689, 2500), false, 200);
    let zh_rows = benchmark_rows(&texts_of(&zh, 4000, 8000), true, 150);
    assert!(rows.len() == 200 && zh_rows.len() == 150);
    // Common phrases shorter than n: they are in the corpus, and must
    // never make a document contaminated.
    let short = [
        ("short-1", "the prime minister said", "on Tuesday"),
        ("short-2", "in the United States", "of America"),
        ("short-3", "中华人民共和国", "国务院"),
    ];
    let mut r = Rng(11);
    // Plant 200 English and 150 Chinese rows, in as many documents.
    let mut planted: BTreeMap<usize, (String, String)> = BTreeMap::new();
    for (k, row) in rows.iter().chain(&zh_rows).enumerate() {
        let zh_row = k >= rows.len();
        let doc = loop {
            let d = if zh_row {
                2500 + r.below(4000)
            } else {
                r.below(2500)
            };
            if !planted.contains_key(&d) {
                break d;
            }
        };
        let text = edit(&format!("{} {}", row.1, row.2), k % 4);
        planted.insert(doc, (row.0.clone(), text));
    }
    let docs: Vec<(String, String)> = corpus
        .iter()
        .enumerate()
        .map(|(i, (id, text))| match planted.get(&i) {
            None => (id.clone(), text.clone()),
            Some((_, item)) => {
                let cut = cut_of(text);
                (
                    id.clone(),
                    format!("{} {item} {}", &text[..cut], &text[cut..]),
                )
            }
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let input: Vec<(&str, Option<&str>)> = docs
        .iter()
        .map(|(i, t)| (i.as_str(), Some(t.as_str())))
        .collect();
    write_docs(&dir.path().join("in/docs.parquet"), &input, 1000);
    // English rows as JSONL (with the short rows), Chinese as Parquet.
    rows.extend(
        short
            .iter()
            .map(|(i, q, a)| (i.to_string(), q.to_string(), a.to_string())),
    );
    let jsonl: Vec<String> = rows
        .iter()
        .map(|(i, q, a)| {
            serde_json::json!({"id": i, "question": q, "answer": a, "subject": "news"}).to_string()
        })
        .collect();
    std::fs::create_dir_all(dir.path().join("evals")).unwrap();
    std::fs::write(dir.path().join("evals/en_news.jsonl"), jsonl.join("\n")).unwrap();
    {
        use arrow::datatypes::{DataType, Field, Schema};
        use std::sync::Arc;
        let col = |f: fn(&Row) -> &String| -> Arc<dyn Array> {
            Arc::new(StringArray::from(
                zh_rows.iter().map(|r| f(r).as_str()).collect::<Vec<_>>(),
            ))
        };
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Utf8, false),
            Field::new("question", DataType::Utf8, false),
            Field::new("answer", DataType::Utf8, false),
        ]));
        let batch = arrow::record_batch::RecordBatch::try_new(
            schema,
            vec![col(|r| &r.0), col(|r| &r.1), col(|r| &r.2)],
        )
        .unwrap();
        write_batch(&dir.path().join("evals/zh/part-0.parquet"), batch, 100);
    }
    let benchmarks =
        "benchmarks = { en_news = \"evals/en_news.jsonl\", zh_news = \"evals/zh/*.parquet\" }\n\
                      fields = [\"question\", \"answer\"]\n";
    for mode in ["drop", "mask"] {
        write_spec(
            dir.path(),
            &format!("{mode}.toml"),
            &format!(
                "[input]\npaths = [\"in/*.parquet\"]\n[output]\ndir = \"out-{mode}\"\n\
                 [[step]]\nop = \"decontaminate\"\n{benchmarks}mode = \"{mode}\"\n"
            ),
        );
        run_ok(
            dir.path(),
            &["run", &format!("{mode}.toml"), "--quiet", "--workers", "2"],
        );
    }
    write_spec(
        dir.path(),
        "count.toml",
        &format!("[input]\npaths = [\"in/*.parquet\"]\n[contamination]\n{benchmarks}[output]\ndir = \"out-count\"\n"),
    );
    run_ok(dir.path(), &["contamination", "count.toml", "--quiet"]);

    // drop: the planted documents go, the clean ones stay.
    let kept: BTreeSet<String> = read_rows(&dir.path().join("out-drop"), "")
        .into_iter()
        .map(|r| r["id"].clone())
        .collect();
    let excluded = read_rows(&dir.path().join("out-drop/excluded"), "");
    let planted_ids: BTreeSet<&str> = planted.keys().map(|&i| docs[i].0.as_str()).collect();
    let removed_planted = planted_ids.iter().filter(|i| !kept.contains(**i)).count();
    let removed_clean: Vec<&BTreeMap<String, String>> = excluded
        .iter()
        .filter(|r| !planted_ids.contains(r["id"].as_str()))
        .collect();
    let clean = docs.len() - planted.len();
    eprintln!(
        "planted {} removed {removed_planted}; clean {clean} removed {}: {:?}",
        planted.len(),
        removed_clean.len(),
        removed_clean
            .iter()
            .map(|r| r["drop_detail"].clone())
            .collect::<Vec<_>>()
    );
    assert!(
        removed_planted * 100 >= planted.len() * 99,
        "{removed_planted} of {}",
        planted.len()
    );
    assert!(
        removed_clean.len() * 1000 < clean,
        "{} clean documents removed",
        removed_clean.len()
    );
    // Each removal names the benchmark, the row and the overlapping text.
    for row in &excluded {
        let reason = &row["drop_reason"];
        assert!(
            reason == "decontaminate:en_news" || reason == "decontaminate:zh_news",
            "{reason}"
        );
        assert!(
            row["drop_detail"].contains(" row "),
            "{}",
            row["drop_detail"]
        );
    }
    let stats = stats_json(&dir.path().join("out-drop"));
    assert_eq!(
        dropped(&stats, "decontaminate:en_news") + dropped(&stats, "decontaminate:zh_news"),
        excluded.len() as u64
    );

    // The report: which rows leaked, and the short rows never.
    let report: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("out-drop/decontamination_report.json")).unwrap(),
    )
    .unwrap();
    let en_report = &report["benchmarks"]["en_news"];
    assert_eq!(en_report["rows"], 203);
    assert_eq!(en_report["rows_too_short"], 3);
    let found: BTreeSet<String> = en_report["found"]
        .as_array()
        .unwrap()
        .iter()
        .chain(report["benchmarks"]["zh_news"]["found"].as_array().unwrap())
        .map(|f| f["row"].as_str().unwrap().to_string())
        .collect();
    let planted_rows: BTreeSet<String> = planted.values().map(|(row, _)| row.clone()).collect();
    assert!(found.iter().all(|f| !f.starts_with("short-")));
    assert!(
        planted_rows.difference(&found).count() * 100 <= planted_rows.len(),
        "rows missed"
    );
    assert_eq!(
        report["documents_hit"].as_u64().unwrap() as usize,
        excluded.len()
    );

    // `sluice contamination` counts the same.
    let counted: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("out-count/decontamination_report.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(counted["benchmarks"], report["benchmarks"]);
    assert_eq!(counted["documents_hit"], report["documents_hit"]);

    // mask: the planted text is gone, the document's own text stays.
    let masked = read_rows(&dir.path().join("out-mask"), "");
    let by_id: BTreeMap<&str, &str> = masked
        .iter()
        .map(|r| (r["id"].as_str(), r["text"].as_str()))
        .collect();
    let mut left = 0;
    for (&i, (_, item)) in &planted {
        let (id, text) = &docs[i];
        let Some(out) = by_id.get(id.as_str()) else {
            continue;
        };
        let head: String = item.chars().take(40).collect();
        if out.contains(&head) {
            left += 1;
        }
        // The document's text before the planted row is kept whole.
        let original = &corpus[i].1;
        let prefix = &original[..cut_of(original)];
        assert!(out.starts_with(prefix), "{id}: {out:?}\nwas {text:?}");
    }
    assert!(
        left * 100 <= planted.len(),
        "{left} planted items left after masking"
    );
    assert_eq!(
        masked.len() + read_rows(&dir.path().join("out-mask/excluded"), "").len(),
        docs.len()
    );
}

/// Where a row is planted: after the document's first sentence.
fn cut_of(text: &str) -> usize {
    text.find(['.', '。']).map_or(text.len(), |p| {
        p + text[p..].chars().next().unwrap().len_utf8()
    })
}

/// Mistakes in a step or a benchmark file are errors that name the key,
/// the file and the line; nothing runs.
#[test]
fn bad_keys_and_bad_benchmark_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    write_docs(
        &dir.path().join("in/docs.parquet"),
        &[("a", Some("some text"))],
        10,
    );
    std::fs::create_dir_all(dir.path().join("evals")).unwrap();
    std::fs::write(
        dir.path().join("evals/bad.jsonl"),
        "{\"question\": \"fine\"}\n{\"question\": oops}\n",
    )
    .unwrap();
    let cases: &[(&str, &[&str])] = &[
        (
            "op = \"pii\"\nkinds = [\"email\", \"passport\"]",
            &["kinds", "passport"],
        ),
        (
            "op = \"pii\"\nplaceholders = { mail = \"[m]\" }",
            &["placeholders", "mail"],
        ),
        (
            "op = \"decontaminate\"\nbenchmarks = { qa = \"evals/none*.jsonl\" }",
            &["benchmark `qa`", "evals/none*.jsonl"],
        ),
        ("op = \"decontaminate\"", &["benchmarks"]),
        (
            "op = \"decontaminate\"\nbenchmarks = { \"q a\" = \"evals/bad.jsonl\" }",
            &["benchmark name `q a`"],
        ),
        (
            "op = \"decontaminate\"\nbenchmarks = { qa = \"evals/bad.jsonl\" }\nngram = 0",
            &["ngram"],
        ),
        (
            "op = \"decontaminate\"\nbenchmarks = { qa = \"evals/bad.jsonl\" }",
            &["evals/bad.jsonl", "line 2"],
        ),
    ];
    for (step, wants) in cases {
        let spec = write_spec(
            dir.path(),
            "spec.toml",
            &format!("[input]\npaths = [\"in\"]\n[output]\ndir = \"out\"\n[[step]]\n{step}\n"),
        );
        let o = sluice(
            dir.path(),
            &["run", spec.to_str().unwrap(), "-q", "--force"],
            &[],
        );
        let err = stderr(&o);
        assert!(!o.status.success(), "{step}: ran");
        assert!(!err.contains("panicked") && !err.contains("a bug"), "{err}");
        for w in *wants {
            assert!(
                err.contains(w),
                "{step}: the error does not say `{w}`:\n{err}"
            );
        }
    }
    // `sluice contamination` without its section, and with a bad file.
    let spec = write_spec(
        dir.path(),
        "c.toml",
        "[input]\npaths = [\"in\"]\n[output]\ndir = \"c\"\n",
    );
    let err = stderr(&sluice(
        dir.path(),
        &["contamination", spec.to_str().unwrap()],
        &[],
    ));
    assert!(err.contains("[contamination]"), "{err}");
    let spec = write_spec(
        dir.path(),
        "c.toml",
        "[input]\npaths = [\"in\"]\n[contamination]\nbenchmarks = { qa = \"evals/bad.jsonl\" }\n[output]\ndir = \"c\"\n",
    );
    let o = sluice(dir.path(), &["contamination", spec.to_str().unwrap()], &[]);
    assert!(
        !o.status.success() && stderr(&o).contains("line 2"),
        "{}",
        stderr(&o)
    );
}
