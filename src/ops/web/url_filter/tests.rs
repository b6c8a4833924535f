use super::*;

fn build(step: &str) -> std::result::Result<UrlFilter, String> {
    let src = format!(
        "[input]\npaths = [\"x.parquet\"]\n\n[[step]]\nop = \"url_filter\"\n{step}\n\n[output]\ndir = \"out\"\n"
    );
    let spec = crate::pipeline::spec::Spec::parse("spec.toml", &src).map_err(|e| e.to_string())?;
    let info = &INFO;
    let ctx = BuildCtx {
        spec: &spec,
        step: &spec.steps[0],
        info,
    };
    match (INFO.build)(&ctx).map_err(|e| e.to_string())? {
        Op::Stream(_) => {}
        _ => unreachable!(),
    }
    // The same config, built again as the concrete type.
    let c: Config = ctx.config().map_err(|e| e.to_string())?;
    Ok(UrlFilter {
        block: Lists::load(&c.blocklist, "blocklist", &ctx).map_err(|e| e.to_string())?,
        allow: Lists::load(&c.allowlist, "allowlist", &ctx).map_err(|e| e.to_string())?,
        banned: word_list(&c.banned_words, BANNED_WORDS, "banned_words", &ctx)
            .unwrap()
            .into_iter()
            .collect(),
        soft: word_list(
            &c.soft_banned_words,
            SOFT_BANNED_WORDS,
            "soft_banned_words",
            &ctx,
        )
        .unwrap()
        .into_iter()
        .collect(),
        subwords: {
            let w =
                word_list(&c.banned_subwords, BANNED_SUBWORDS, "banned_subwords", &ctx).unwrap();
            (!w.is_empty()).then(|| (AhoCorasick::new(&w).unwrap(), w))
        },
        threshold: c.soft_word_threshold,
        column: c.column,
    })
}

fn lists() -> String {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/web/lists");
    format!("blocklist = [\"{dir}/ut1\", \"{dir}/my_domains.txt\"]")
}

/// The fixture WARC's manifest says which pages the lists and words drop.
#[test]
fn the_fixture_pages_are_dropped_as_their_manifest_says() {
    let f = build(&lists()).unwrap();
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/web/pages.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let mut dropped = 0;
    for p in manifest["pages"].as_array().unwrap() {
        let url = p["url"].as_str().unwrap();
        let got = f.judge(url);
        let want = p["expect_url_filter"].as_str().unwrap();
        assert_eq!(got.is_some(), want == "drop", "{url}: {got:?}");
        if let Some(d) = got {
            dropped += 1;
            let expected = if let Some(list) = p["blocklist"]["list"].as_str() {
                // `lists/ut1/adult/domains` → adult; `lists/my_domains.txt` → my_domains.
                let parts: Vec<&str> = list.split('/').collect();
                let name = if parts.len() == 4 {
                    parts[2]
                } else {
                    "my_domains"
                };
                format!("url_filter:blocklist:{name}")
            } else if p["url_filter"]["reason"] == "hard_blacklisted" {
                "url_filter:banned_word".into()
            } else {
                "url_filter:soft_banned_words".into()
            };
            assert_eq!(d.reason, expected, "{url}");
        }
    }
    assert_eq!(
        dropped,
        manifest["counts"]["url_filter_drop"].as_u64().unwrap()
    );
}

#[test]
fn entries_are_normalised_and_parents_match() {
    let f = build(&lists()).unwrap();
    // Upper case and trailing dots in the list; a port, user and case in the URL.
    assert!(f.judge("http://Adult-Fixture-Two.example:8080/x").is_some());
    assert!(f.judge("https://user@poker-fixture.example./").is_some());
    assert!(f.judge("https://a.b.casino-fixture.example/page").is_some());
    assert!(f.judge("http://192.0.2.77/index.html").is_some());
    // A URL entry matches with or without www, scheme and trailing slash.
    assert!(f
        .judge("https://adult-fixture-five.example/members")
        .is_some());
    assert!(f
        .judge("http://www.adult-fixture-four.example/gallery/index.html?x=1")
        .is_some());
    // `www.salon.com` is listed: not the rest of salon.com.
    assert!(f.judge("https://www.salon.com/a").is_some());
    assert!(f.judge("https://news.salon.com/a").is_none());
    // Words: one soft word is not enough; a banned subword anywhere is.
    assert!(f.judge("https://threatpost.com/sex-tape-scam/").is_none());
    assert_eq!(
        f.judge("https://example.org/pornhub-review")
            .unwrap()
            .reason,
        "url_filter:banned_subword"
    );
}

#[test]
fn the_allowlist_wins_and_bad_paths_are_spec_errors() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/web/lists");
    let f = build(&format!(
        "{}\nallowlist = [\"{dir}/ut1/gambling\"]",
        lists()
    ))
    .unwrap();
    assert!(f.judge("https://en.blog.wordpress.com/x").is_none());
    assert!(f.judge("https://boingboing.net/x").is_some());
    let err = build("blocklist = [\"no/such/list\"]").err().unwrap();
    assert!(
        err.contains("no/such/list: no such file or folder"),
        "{err}"
    );
    let err = build("banned_words = \"nonesuch.txt\"").err().unwrap();
    assert!(err.contains("banned_words"), "{err}");
    let none =
        build("banned_words = \"none\"\nsoft_banned_words = \"none\"\nbanned_subwords = \"none\"")
            .unwrap();
    assert!(none.judge("http://cheap-viagra-deals.example/").is_none());
}
