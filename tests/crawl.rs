//! From the raw crawl: pipelines/fineweb.toml and fineweb-zh.toml on the
//! WARC fixtures, as a user runs them (WARC reader → url_filter → extract →
//! lang → the rule filters → MinHash), and a damaged WARC through extract.
//! What the fixtures hold is in fixtures/web/*.json (written with them by
//! fixtures/make_web_fixtures.py).

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::*;

type Row = BTreeMap<String, String>;

fn fixture_json(name: &str) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(repo().join("fixtures/web").join(name)).unwrap()).unwrap()
}

/// Runs a spec of pipelines/ with its fixture paths made absolute and its
/// output in `out`; returns the printed table.
fn run_pipeline(tmp: &Path, name: &str, out: &Path) -> String {
    let src = std::fs::read_to_string(repo().join("pipelines").join(name))
        .unwrap()
        .replace("\"fixtures/", &format!("\"{}/fixtures/", repo().display()))
        .replace(
            &format!("\"out/{}\"", name.trim_end_matches(".toml")),
            &format!("{out:?}"),
        );
    let spec = write_spec(tmp, name, &src);
    stdout(&run_ok(tmp, &["run", spec.to_str().unwrap()]))
}

fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn the_fineweb_recipe_goes_from_warc_to_clean_text() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let table = run_pipeline(tmp.path(), "fineweb.toml", &out);
    let fixture = fixture_json("pages.json");
    let pages = fixture["pages"].as_array().unwrap();
    assert_eq!(pages.len(), 43);

    let stats = stats_json(&out);
    assert_eq!(stats["input"]["docs"], 43, "one document per response");
    let read = &stats["steps"][0];
    assert_eq!(read["skipped"]["request"], 43, "{read}");
    assert_eq!(read["skipped"]["warcinfo"], 1, "{read}");
    assert!(
        table.contains("not documents, skipped: request 43, warcinfo 1"),
        "{table}"
    );

    // url_filter drops exactly the pages the fixture lists and URL words
    // were written to drop, each with the list or rule that says so.
    let kept = read_rows(&out, "part-");
    let excluded = read_rows(&out.join("excluded"), "");
    assert_eq!(kept.len() + excluded.len(), 43);
    let by_url: BTreeMap<&str, &Row> = kept
        .iter()
        .chain(&excluded)
        .map(|r| (r["url"].as_str(), r))
        .collect();
    let mut url_drops = 0;
    for p in pages {
        let url = p["url"].as_str().unwrap();
        let row = by_url
            .get(url)
            .unwrap_or_else(|| panic!("{url} is not in the output"));
        let reason = row.get("drop_reason").map(String::as_str).unwrap_or("");
        let expected = if let Some(list) = p["blocklist"]["list"].as_str() {
            // `lists/ut1/adult/domains` is the list `adult`, `lists/my_domains.txt` `my_domains`.
            let name = list.trim_end_matches("/domains").trim_end_matches("/urls");
            let name = name.rsplit('/').next().unwrap().trim_end_matches(".txt");
            format!("url_filter:blocklist:{name}")
        } else {
            match p["url_filter"]["reason"].as_str() {
                Some("hard_blacklisted") => "url_filter:banned_word".into(),
                Some("soft_blacklisted") => "url_filter:soft_banned_words".into(),
                Some(other) => panic!("{other}"),
                None => String::new(),
            }
        };
        assert_eq!(
            p["expect_url_filter"] == "drop",
            !expected.is_empty(),
            "{url}"
        );
        if expected.is_empty() {
            assert!(!reason.starts_with("url_filter"), "{url}: {reason}");
        } else {
            url_drops += 1;
            assert_eq!(reason, expected, "{url}");
        }
    }
    assert_eq!(url_drops, 6);

    // What is kept is English main text: no HTML column and no markup left,
    // the page title and <html lang> beside it, the WARC fields carried.
    assert!(kept.len() >= 15, "kept {}", kept.len());
    for r in &kept {
        assert_eq!(r["lang"], "en");
        assert!(!r.contains_key("html"), "the HTML column is dropped");
        assert!(!r["text"].contains("</"), "markup in {}", r["url"]);
        assert!(r["id"].starts_with("<urn:uuid:"), "{}", r["id"]);
        assert_ne!(r["title"], "<null>", "{}", r["url"]);
        assert_eq!(r["status"], "200");
    }
    // The snippets a good extraction must contain are there, those it
    // must leave out are not (trafilatura's own evaluation snippets).
    let (mut with, mut with_found, mut without, mut without_found) = (0, 0, 0, 0);
    for p in pages {
        let Some(row) = kept.iter().find(|r| r["url"] == p["url"].as_str().unwrap()) else {
            continue;
        };
        for s in strings(&p["with"]) {
            with += 1;
            with_found += usize::from(row["text"].contains(s.trim()));
        }
        for s in strings(&p["without"]) {
            without += 1;
            without_found += usize::from(row["text"].contains(s.trim()));
        }
    }
    assert!(with >= 30 && without >= 30, "{with} {without}");
    assert!(
        with_found * 10 >= with * 9,
        "{with_found} of {with} wanted snippets"
    );
    assert!(
        without_found * 10 <= without,
        "{without_found} of {without} boilerplate snippets"
    );
    // Every drop names its step and rule.
    for reason in stats["dropped"].as_object().unwrap().keys() {
        assert!(
            reason.contains(':') || reason == "dedup_minhash",
            "{reason}"
        );
    }
}

#[test]
fn chinese_pages_in_legacy_charsets_come_out_as_their_articles() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    run_pipeline(tmp.path(), "fineweb-zh.toml", &out);
    let fixture = fixture_json("zh_pages.json");
    let kept = read_rows(&out, "part-");
    let pages = fixture["pages"].as_array().unwrap();
    assert_eq!(pages.len(), 15);
    assert_eq!(kept.len(), 15, "every Chinese article is kept");
    for p in pages {
        let url = p["url"].as_str().unwrap();
        let row = kept.iter().find(|r| r["url"] == url).unwrap();
        // The charset the reader found is the one the page is written in
        // (declared in <meta> only), by its WHATWG name.
        let expected = match p["encoding"].as_str().unwrap() {
            "utf-8" => "UTF-8",
            "gbk" => "GBK",
            "gb18030" => "gb18030",
            other => panic!("{other}"),
        };
        assert_eq!(row["charset"], expected, "{url}");
        assert_eq!(row["lang"], "zh");
        // The page's <title>: the article's, with the site's name after it.
        assert!(
            row["title"].starts_with(p["title"].as_str().unwrap()),
            "{url}: {}",
            row["title"]
        );
        for s in strings(&p["with"]) {
            assert!(row["text"].contains(&s), "{url}: lost {s}\n{}", row["text"]);
        }
        for s in strings(&p["without"]) {
            assert!(
                !row["text"].contains(&s),
                "{url}: kept {s}\n{}",
                row["text"]
            );
        }
    }
}

#[test]
fn a_damaged_warc_through_extract_accounts_for_every_record() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let warc = repo().join("fixtures/web/broken.warc.gz");
    let spec = write_spec(
        tmp.path(),
        "spec.toml",
        &format!(
            "[input]\npaths = [{warc:?}]\n\n[[step]]\nop = \"extract\"\n\n[output]\ndir = {out:?}\n"
        ),
    );
    run_ok(tmp.path(), &["run", spec.to_str().unwrap(), "-q"]);
    let fixture = fixture_json("broken.json");
    let counts = &fixture["expect_counts"];
    let stats = stats_json(&out);
    let read = &stats["steps"][0];
    let faults: u64 = [
        "truncated",
        "http_error",
        "not_html",
        "bad_length",
        "bad_gzip",
        "truncated_gzip",
    ]
    .iter()
    .map(|k| counts[k].as_u64().unwrap())
    .sum();
    let docs = counts["document"].as_u64().unwrap();
    assert_eq!(stats["input"]["docs"].as_u64().unwrap(), docs + faults);
    let read_drops: u64 = read["dropped"]
        .as_object()
        .unwrap()
        .iter()
        .inspect(|(k, _)| assert!(k.starts_with("read:warc_"), "{k}"))
        .map(|(_, v)| v["docs"].as_u64().unwrap())
        .sum();
    assert_eq!(read_drops, faults, "{read}");
    assert_eq!(
        read["skipped"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum::<u64>(),
        4
    );
    // Every good document reached extract, and what it kept or dropped
    // (a page with no main text) adds up.
    let extract = &stats["steps"][1];
    assert_eq!(extract["input"]["docs"].as_u64().unwrap(), docs);
    let kept = read_rows(&out, "part-");
    let excluded = read_rows(&out.join("excluded"), "");
    assert_eq!((kept.len() + excluded.len()) as u64, docs + faults);
    // Each record the reader could not use is an excluded row naming the
    // file and offset.
    for r in excluded
        .iter()
        .filter(|r| r["drop_reason"].starts_with("read:warc_"))
    {
        assert!(
            r["drop_detail"].contains("broken.warc.gz") && r["drop_detail"].contains(" at byte "),
            "{r:?}"
        );
    }
}

/// trafilatura's own evaluation (its 990 pages in ../shared, a snippet
/// counts when it is in the output, micro P/R over every snippet, as its
/// tests/eval_common.py): `extract` reads the pages from their WARC and
/// must score at least Python trafilatura 2.3.1's F1 on them, 0.9261
/// (benches/web/extract_speed.py; docs/benchmarks.md). sluice scored
/// 0.9270 when this test was written.
#[test]
fn extract_scores_above_trafilatura_on_its_own_evaluation_pages() {
    let (Some(warc), Some(pages)) = (
        shared("data/web/html_pages.warc.gz"),
        shared("data/web/html_pages.parquet"),
    ) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let spec = write_spec(
        tmp.path(),
        "extract.toml",
        &format!(
            "[input]\npaths = [{warc:?}]\n\n[[step]]\nop = \"extract\"\n\n\
             [output]\ndir = {out:?}\n"
        ),
    );
    run_ok(tmp.path(), &["run", spec.to_str().unwrap()]);
    let norm = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    // The parquet's URLs as the WARC writer stored them.
    let key = |u: &str| u.trim().replace(' ', "%20");
    let texts: BTreeMap<String, String> = read_rows(&out, "part-")
        .into_iter()
        .map(|r| (key(&r["url"]), norm(&r["text"])))
        .collect();
    let urls = read_parquet_column(&pages, "url");
    let with = read_parquet_column(&pages, "with");
    let without = read_parquet_column(&pages, "without");
    assert_eq!(urls.len(), 990);
    assert_eq!((with.len(), without.len()), (990, 990));
    let (mut tp, mut fp, mut fn_) = (0usize, 0usize, 0usize);
    for ((url, w), wo) in urls.iter().zip(&with).zip(&without) {
        let text = texts.get(&key(url)).map_or("", String::as_str);
        let w: Vec<String> = serde_json::from_str(w).unwrap();
        let wo: Vec<String> = serde_json::from_str(wo).unwrap();
        let found = |s: &String| !text.is_empty() && text.contains(&norm(s));
        let hit = w.iter().filter(|s| found(s)).count();
        tp += hit;
        fn_ += w.len() - hit;
        fp += wo.iter().filter(|s| found(s)).count();
    }
    let (p, r) = (tp as f64 / (tp + fp) as f64, tp as f64 / (tp + fn_) as f64);
    let f1 = 2.0 * tp as f64 / (2 * tp + fp + fn_) as f64;
    eprintln!("extract on trafilatura's 990 pages: P {p:.4} R {r:.4} F1 {f1:.4}");
    assert!(texts.len() >= 980, "{} pages with text", texts.len());
    assert!(
        f1 >= 0.9261,
        "F1 {f1:.4} (P {p:.4}, R {r:.4}) below trafilatura's 0.9261"
    );
}
