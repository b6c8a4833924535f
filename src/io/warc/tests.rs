//! The reader on the WARC fixtures of `fixtures/web/` (made by
//! `fixtures/make_web_fixtures.py`, whose manifests say what each record is).

use super::records::{Item, Records};
use super::*;
use serde_json::Value;

fn fixture(name: &str) -> String {
    format!("{}/fixtures/web/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn manifest(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture(name)).unwrap()).unwrap()
}

/// Per record of a file: its member offset and what became of it
/// (`document`, `skip:<type>` or the drop reason), and the row.
fn read_all(name: &str) -> Vec<(Option<u64>, String, Option<Row>)> {
    let file = std::fs::File::open(fixture(name)).unwrap();
    let records = Records::new(std::io::BufReader::new(file), MAX_RECORD_BYTES).unwrap();
    records
        .map(|item| match item {
            Item::Record(r) => match document(&r, name) {
                Doc::Skip(kind) => (r.at.member, format!("skip:{kind}"), None),
                Doc::Row(row) => {
                    let what = match &row.drop {
                        None => "document".to_string(),
                        Some(d) => d.reason.clone(),
                    };
                    (r.at.member, what, Some(row))
                }
            },
            Item::Lost { at, fault, .. } => (at.member, fault.reason().to_string(), None),
        })
        .collect()
}

#[test]
fn every_record_of_a_broken_warc_is_accounted_for_and_named() {
    let m = manifest("broken.json");
    let expected = m["records"].as_array().unwrap();
    let got = read_all("broken.warc.gz");
    let reason = |e: &str, kind: &str| match e {
        "document" => "document".to_string(),
        "skip" => format!("skip:{kind}"),
        "truncated" => "read:warc_truncated".into(),
        "http_error" => "read:warc_http_status".into(),
        "not_html" => "read:warc_not_html".into(),
        "bad_length" => "read:warc_bad_length".into(),
        "bad_gzip" => "read:warc_bad_gzip".into(),
        "truncated_gzip" => "read:warc_incomplete".into(),
        other => panic!("unknown expectation {other}"),
    };
    let want: Vec<(Option<u64>, String)> = expected
        .iter()
        .map(|r| {
            (
                r["offset"].as_u64(),
                reason(
                    r["expect"].as_str().unwrap(),
                    r["warc_type"].as_str().unwrap(),
                ),
            )
        })
        .collect();
    let have: Vec<(Option<u64>, String)> = got
        .iter()
        .map(|(at, what, _)| (*at, what.clone()))
        .collect();
    assert_eq!(have, want);
    // Each page decodes with its charset and says what the manifest says.
    for (r, (_, _, row)) in expected.iter().zip(&got) {
        if r["expect"] != "document" {
            continue;
        }
        let row = row.as_ref().unwrap();
        let charset = r["charset"].as_str().unwrap();
        let want_enc = encoding_rs::Encoding::for_label(charset.as_bytes()).unwrap();
        assert_eq!(
            row.charset.as_deref(),
            Some(want_enc.name()),
            "record {} ({})",
            r["n"],
            r["case"]
        );
        let html = row.html.as_deref().unwrap();
        let snippet = r["snippet"].as_str().unwrap();
        assert!(
            html.contains(snippet),
            "record {}: {snippet} not in the decoded page",
            r["n"]
        );
        assert_eq!(row.id, r["record_id"].as_str().unwrap());
        assert_eq!(row.url.as_deref(), r["target_uri"].as_str());
    }
}

#[test]
fn whole_file_gzip_and_plain_warc_read_the_same_as_per_record_gzip() {
    let m = manifest("small.json");
    for (key, file) in [("whole", "whole.warc.gz"), ("plain", "plain.warc")] {
        let expected = m[key]["records"].as_array().unwrap();
        let got = read_all(file);
        assert_eq!(got.len(), expected.len(), "{file}");
        for (r, (_, what, row)) in expected.iter().zip(&got) {
            if r["expect"] == "document" {
                assert_eq!(what, "document", "{file}");
                let row = row.as_ref().unwrap();
                assert!(row
                    .html
                    .as_deref()
                    .unwrap()
                    .contains(r["snippet"].as_str().unwrap()));
            } else {
                assert!(what.starts_with("skip:"), "{file}: {what}");
            }
        }
    }
}

#[test]
fn wet_conversion_records_are_text_documents() {
    let m = manifest("sample.wet.json");
    let expected = m["records"].as_array().unwrap();
    let got: Vec<_> = read_all("sample.warc.wet.gz")
        .into_iter()
        .filter(|(_, what, _)| what != "skip:warcinfo")
        .collect();
    assert_eq!(got.len(), expected.len());
    for (r, (_, what, row)) in expected.iter().zip(&got) {
        assert_eq!(what, "document");
        let row = row.as_ref().unwrap();
        assert!(row.html.is_none());
        assert!(
            row.text
                .starts_with(r["first_line"].as_str().unwrap().trim()),
            "{}",
            r["n"]
        );
        assert_eq!(row.url.as_deref(), r["url"].as_str());
    }
}

#[test]
fn a_crawl_file_gives_its_pages_and_skips_the_rest() {
    let m = manifest("pages.json");
    let got = read_all("pages.warc.gz");
    let docs = got.iter().filter(|(_, w, _)| w == "document").count();
    let skipped = got
        .iter()
        .filter(|(_, w, _)| w.starts_with("skip:"))
        .count();
    assert_eq!(docs, m["pages"].as_array().unwrap().len());
    assert_eq!(docs + skipped, got.len());
}
