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
            (r.is_none(), r, None)
        }
        "GopherRepetitionFilter" => {
            let r = gopher_repetition(text, seg, &defaults::<GopherRepetitionParams>());
            (r.is_none(), r, None)
        }
        "C4QualityFilter" => match c4_quality(text, seg, &defaults::<C4Params>()) {
            Ok(t) => (true, None, Some(t)),
            Err(r) => (false, Some(r), None),
        },
        "FineWebQualityFilter" => {
            let r = fineweb_quality(text, seg, &defaults::<FineWebParams>());
            (r.is_none(), r, None)
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
            gopher_quality(&d.text, &seg, &gq),
            gopher_repetition(&d.text, &seg, &gr),
            c4_quality(&d.text, &seg, &c4).err(),
            fineweb_quality(&d.text, &seg, &fw),
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

/// The `select` expression that keeps what a filter keeps at its
/// defaults, from its annotate-mode signals: English thresholds, and the
/// built-in Chinese ones where `lang` is `zh`.
fn keeps(filter: &str) -> String {
    let all = |conds: &[String]| conds.join(" and ");
    let at_most = |pairs: &[(String, f64)]| -> Vec<String> {
        pairs.iter().map(|(c, x)| format!("{c} <= {x:?}")).collect()
    };
    match filter {
        "gopher_quality" => "gopher_word_count >= 50 and gopher_word_count <= 100000 \
             and gopher_mean_word_length <= 10 \
             and gopher_hash_word_ratio <= 0.1 and gopher_ellipsis_word_ratio <= 0.1 \
             and gopher_frac_lines_bullet <= 0.9 and gopher_frac_lines_end_ellipsis <= 0.3 \
             and gopher_stop_words >= 2 \
             and ((lang = 'zh' and gopher_mean_word_length >= 1 and gopher_frac_alpha_words >= 0.65) \
               or (lang != 'zh' and gopher_mean_word_length >= 3 and gopher_frac_alpha_words >= 0.8))"
            .to_string(),
        "gopher_repetition" => {
            let lines = [
                ("gopher_frac_dup_paras", 0.3),
                ("gopher_frac_chars_dup_paras", 0.2),
                ("gopher_frac_dup_lines", 0.3),
                ("gopher_frac_chars_dup_lines", 0.2),
            ]
            .map(|(c, x)| (c.to_string(), x));
            let ngrams = |top: &[(usize, f64)], dup: &[(usize, f64)]| {
                let mut v: Vec<(String, f64)> = top
                    .iter()
                    .map(|&(n, x)| (format!("gopher_frac_chars_top_{n}gram"), x))
                    .collect();
                v.extend(
                    dup.iter()
                        .map(|&(n, x)| (format!("gopher_frac_chars_dup_{n}grams"), x)),
                );
                all(&at_most(&v))
            };
            let en = ngrams(
                &[(2, 0.2), (3, 0.18), (4, 0.16)],
                &[(5, 0.15), (6, 0.14), (7, 0.13), (8, 0.12), (9, 0.11), (10, 0.1)],
            );
            let zh = ngrams(
                &[(4, 0.2), (6, 0.18), (8, 0.16)],
                &[(10, 0.15), (12, 0.14), (14, 0.13), (16, 0.12), (18, 0.11), (20, 0.1)],
            );
            format!(
                "{} and ((lang = 'zh' and {zh}) or (lang != 'zh' and {en}))",
                all(&at_most(&lines))
            )
        }
        "c4_quality" => "not c4_lorem_ipsum and not c4_curly_bracket \
             and ((lang = 'zh' and c4_sentences >= 1) or (lang != 'zh' and c4_sentences >= 5))"
            .to_string(),
        "fineweb_quality" => "fineweb_frac_lines_end_punct >= 0.12 \
             and fineweb_frac_short_lines <= 0.67 and fineweb_frac_chars_dup_lines <= 0.01 \
             and fineweb_newlines_per_word <= 0.3"
            .to_string(),
        _ => unreachable!(),
    }
}

/// Every rule filter with `mode = "annotate"` and a `select` over its
/// signals keeps exactly the documents (and, for C4, the text) the
/// dropping filter keeps, on the 6,694 conformance documents through the
/// engine; so does the whole chain with one `select` at its end.
#[test]
fn annotate_then_select_keeps_what_the_filters_keep() {
    let Some(dir) = conformance_dir() else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let input = dir.join("docs.parquet");
    let run = |name: &str, steps: &str| -> Vec<(String, String)> {
        common::write_spec(
            work.path(),
            &format!("{name}.toml"),
            &format!(
                "[input]\npaths = [{:?}]\n[output]\ndir = \"{name}\"\n{steps}",
                input.display().to_string()
            ),
        );
        common::run_ok(work.path(), &["run", &format!("{name}.toml"), "-q"]);
        let mut kept: Vec<(String, String)> = common::read_rows(&work.path().join(name), "")
            .into_iter()
            .map(|r| (r["id"].clone(), r["text"].clone()))
            .collect();
        kept.sort();
        kept
    };
    let filters = [
        "gopher_quality",
        "gopher_repetition",
        "c4_quality",
        "fineweb_quality",
    ];
    for f in filters {
        let dropping = run(&format!("{f}_drop"), &format!("[[step]]\nop = \"{f}\"\n"));
        let selected = run(
            &format!("{f}_annotate"),
            &format!(
                "[[step]]\nop = \"{f}\"\nmode = \"annotate\"\n\
                 [[step]]\nop = \"select\"\nexpr = \"{}\"\nreason = \"{f}\"\n",
                keeps(f)
            ),
        );
        eprintln!(
            "{f}: the filter keeps {}, annotate + select {}",
            dropping.len(),
            selected.len()
        );
        // The filter decides something on these documents either way.
        assert!(dropping.len() > 1000 && dropping.len() < 6600, "{f}");
        assert!(
            dropping == selected,
            "{f}: annotate + select keeps other documents"
        );
    }
    let chain: String = filters
        .iter()
        .map(|f| format!("[[step]]\nop = \"{f}\"\n"))
        .collect();
    let annotated: String = filters
        .iter()
        .map(|f| format!("[[step]]\nop = \"{f}\"\nmode = \"annotate\"\n"))
        .collect();
    let every: Vec<String> = filters.iter().map(|f| format!("({})", keeps(f))).collect();
    let dropping = run("chain_drop", &chain);
    let selected = run(
        "chain_annotate",
        &format!(
            "{annotated}[[step]]\nop = \"select\"\nexpr = \"{}\"\n",
            every.join(" and ")
        ),
    );
    eprintln!(
        "chain: the filters keep {}, annotate + select {}",
        dropping.len(),
        selected.len()
    );
    assert!(dropping.len() > 500, "{}", dropping.len());
    assert!(
        dropping == selected,
        "the chain: annotate + select keeps other documents"
    );
}
