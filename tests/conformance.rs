//! Conformance with the reference: datatrove 0.10.1's decisions for its Gopher
//! quality, Gopher repetition, C4 and FineWeb filters at their defaults, on
//! the 6,694 real documents of ../shared/conformance/. Our ops at the same
//! defaults must agree on at least 99% of the English documents per filter;
//! on the Chinese ones, our language-aware defaults must keep what the
//! reference (English rules on Chinese) throws away.

use std::collections::HashMap;
use std::path::PathBuf;

use arrow::array::{Array, BooleanArray, StringArray};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use sluice::ops::quality::c4::{c4_quality, C4Params};
use sluice::ops::quality::fineweb::{fineweb_quality, FineWebParams};
use sluice::ops::quality::gopher::{
    gopher_quality, gopher_repetition, GopherQualityParams, GopherRepetitionParams,
};
use sluice::text::words::Segmenter;

mod common;

fn conformance_dir() -> Option<PathBuf> {
    common::shared("conformance/docs.parquet").map(|p| p.parent().unwrap().to_path_buf())
}

fn columns(path: &PathBuf, names: &[&str]) -> Vec<Vec<Option<String>>> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(path).unwrap())
        .unwrap()
        .build()
        .unwrap();
    let mut out = vec![vec![]; names.len()];
    for b in reader {
        let b = b.unwrap();
        for (k, name) in names.iter().enumerate() {
            let col = b.column_by_name(name).unwrap();
            if let Some(s) = col.as_any().downcast_ref::<StringArray>() {
                out[k].extend(s.iter().map(|v| v.map(str::to_string)));
            } else if let Some(bo) = col.as_any().downcast_ref::<BooleanArray>() {
                out[k].extend(bo.iter().map(|v| v.map(|x| x.to_string())));
            }
        }
    }
    out
}

struct Doc {
    id: String,
    text: String,
    lang: String,
}

/// (filter, id) → (keep, reason, c4_text)
type Decisions = HashMap<(String, String), (bool, Option<String>, Option<String>)>;

fn load() -> Option<(Vec<Doc>, Decisions)> {
    let dir = conformance_dir()?;
    let d = columns(&dir.join("docs.parquet"), &["id", "text", "lang"]);
    let docs = (0..d[0].len())
        .map(|i| Doc {
            id: d[0][i].clone().unwrap(),
            text: d[1][i].clone().unwrap(),
            lang: d[2][i].clone().unwrap(),
        })
        .collect();
    let r = columns(
        &dir.join("datatrove_decisions.parquet"),
        &["id", "filter", "keep", "reason", "c4_text"],
    );
    let mut decisions = HashMap::new();
    #[allow(clippy::needless_range_loop)] // five parallel columns
    for i in 0..r[0].len() {
        decisions.insert(
            (r[1][i].clone().unwrap(), r[0][i].clone().unwrap()),
            (
                r[2][i].as_deref() == Some("true"),
                r[3][i].clone(),
                r[4][i].clone(),
            ),
        );
    }
    Some((docs, decisions))
}

fn defaults<T: serde::de::DeserializeOwned>() -> T {
    toml::from_str("").unwrap()
}

/// Our decision on a document, as (keep, our reason).
fn ours(filter: &str, text: &str, seg: &Segmenter) -> (bool, Option<String>, Option<String>) {
    match filter {
        "GopherQualityFilter" => {
            let r = gopher_quality(text, seg, &defaults::<GopherQualityParams>());
            (r.is_none(), r.map(String::from), None)
        }
        "GopherRepetitionFilter" => {
            let r = gopher_repetition(text, seg, &defaults::<GopherRepetitionParams>());
            (r.is_none(), r, None)
        }
        "C4QualityFilter" => match c4_quality(text, seg, &defaults::<C4Params>()) {
            Ok(t) => (true, None, Some(t)),
            Err(r) => (false, Some(r.to_string()), None),
        },
        "FineWebQualityFilter" => {
            let r = fineweb_quality(text, seg, &defaults::<FineWebParams>());
            (r.is_none(), r.map(String::from), None)
        }
        _ => unreachable!(),
    }
}

const FILTERS: &[&str] = &[
    "GopherQualityFilter",
    "GopherRepetitionFilter",
    "C4QualityFilter",
    "FineWebQualityFilter",
];

#[test]
fn english_decisions_agree_with_datatrove() {
    let Some((docs, decisions)) = load() else {
        return;
    };
    let english: Vec<&Doc> = docs.iter().filter(|d| d.lang == "en").collect();
    assert!(english.len() > 6000);
    let mut failures = vec![];
    for filter in FILTERS {
        let mut agree = 0;
        let mut same_c4_text = 0;
        let mut differ = vec![];
        for d in &english {
            let (keep, reason, c4_text) = &decisions[&(filter.to_string(), d.id.clone())];
            let (our_keep, our_reason, our_text) = ours(filter, &d.text, &Segmenter::SpacyEnglish);
            if our_keep == *keep {
                agree += 1;
                if *keep && c4_text.is_some() && our_text == *c4_text {
                    same_c4_text += 1;
                }
            } else {
                differ.push(format!("{} ref {:?} ours {:?}", d.id, reason, our_reason));
            }
        }
        let share = agree as f64 / english.len() as f64;
        eprintln!(
            "{filter}: {agree}/{} agree ({:.2}%){}",
            english.len(),
            share * 100.0,
            if *filter == "C4QualityFilter" {
                format!(", identical kept text on {same_c4_text}")
            } else {
                String::new()
            }
        );
        for line in differ.iter().take(15) {
            eprintln!("    {line}");
        }
        if share < 0.99 {
            failures.push(format!("{filter}: {:.2}%", share * 100.0));
        }
    }
    assert!(failures.is_empty(), "below 99% agreement: {failures:?}");
}

#[test]
fn chinese_documents_are_kept_by_language_aware_rules() {
    let Some((docs, decisions)) = load() else {
        return;
    };
    let chinese: Vec<&Doc> = docs.iter().filter(|d| d.lang == "zh").collect();
    assert_eq!(chinese.len(), 300);
    let seg = Segmenter::for_lang(Some("zh"));
    let builtin = |langs: &[(&str, &str)]| {
        langs
            .iter()
            .find(|(c, _)| *c == "zh")
            .unwrap()
            .1
            .to_string()
    };
    let gq: GopherQualityParams =
        toml::from_str(&builtin(sluice::ops::quality::gopher::QUALITY_LANGS)).unwrap();
    let gr: GopherRepetitionParams =
        toml::from_str(&builtin(sluice::ops::quality::gopher::REPETITION_LANGS)).unwrap();
    let c4: C4Params = toml::from_str(&builtin(sluice::ops::quality::c4::LANGS)).unwrap();
    let fw: FineWebParams = toml::from_str(&builtin(sluice::ops::quality::fineweb::LANGS)).unwrap();
    let mut reference_kept = [0usize; 4];
    let mut kept = [0usize; 4];
    let mut reasons: std::collections::BTreeMap<String, usize> = Default::default();
    for d in &chinese {
        for (k, f) in FILTERS.iter().enumerate() {
            reference_kept[k] += decisions[&(f.to_string(), d.id.clone())].0 as usize;
        }
        let results = [
            gopher_quality(&d.text, &seg, &gq).map(String::from),
            gopher_repetition(&d.text, &seg, &gr),
            c4_quality(&d.text, &seg, &c4).err().map(String::from),
            fineweb_quality(&d.text, &seg, &fw).map(String::from),
        ];
        for (k, r) in results.into_iter().enumerate() {
            match r {
                None => kept[k] += 1,
                Some(r) => *reasons.entry(r).or_default() += 1,
            }
        }
    }
    eprintln!("Chinese documents kept (of 300): reference {reference_kept:?}, ours {kept:?} (gopher_quality, gopher_repetition, c4, fineweb); our drops: {reasons:?}");
    for (k, f) in FILTERS.iter().enumerate() {
        assert!(
            kept[k] >= 290,
            "{f} keeps only {} of 300 Chinese news articles",
            kept[k]
        );
    }
}
