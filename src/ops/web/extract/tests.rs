use super::*;
use arrow::datatypes::{DataType, Field};

fn batch(pages: &[Option<&str>], texts: &[&str]) -> DocBatch {
    let ids: Vec<String> = (0..pages.len()).map(|i| format!("d{i}")).collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("html", DataType::Utf8, true),
        Field::new("text", DataType::Utf8, false),
    ]));
    let data = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(ids)),
            Arc::new(StringArray::from(pages.to_vec())),
            Arc::new(StringArray::from(texts.to_vec())),
        ],
    )
    .unwrap();
    DocBatch {
        data,
        text: 2,
        id: 0,
    }
}

fn op(keep_html: bool) -> Extract {
    Extract {
        opts: Options::default(),
        column: "html".into(),
        keep_html,
    }
}

const ARTICLE: &str = r#"<html lang="en-GB"><head><title>Flood news</title></head><body>
<nav><ul><li><a href="/">Home</a></li><li><a href="/news">News</a></li></ul></nav>
<article><h1>The river rose</h1>
<p>The river rose slowly through the night, and by morning the lower fields were under water.</p>
<p>Farmers moved their animals to the higher ground before dawn, and the council met at noon.</p>
</article>
<div class="cookie-banner">We use cookies. Accept all cookies</div>
<footer>Copyright 2024 The Daily Example. All rights reserved.</footer></body></html>"#;

#[test]
fn pages_become_their_main_text_and_other_rows_pass() {
    let b = batch(
        &[
            Some(ARTICLE),
            None,
            Some("<html><body><nav><a href='/'>Home</a></nav></body></html>"),
        ],
        &["", "a WET record's text", ""],
    );
    let out = op(false).apply(b).unwrap();
    let texts = out.batch.texts();
    let main = texts.value(0);
    assert!(main.contains("lower fields were under water"), "{main}");
    assert!(main.contains("The river rose"), "{main}");
    for boilerplate in ["Home", "cookies", "Copyright"] {
        assert!(!main.contains(boilerplate), "{boilerplate} in {main}");
    }
    assert_eq!(texts.value(1), "a WET record's text");
    assert_eq!(out.drops[0], None);
    assert_eq!(out.drops[1], None);
    assert_eq!(out.drops[2].as_ref().unwrap().reason, "extract:empty");
    let col = |name: &str| {
        out.batch
            .data
            .column_by_name(name)
            .unwrap()
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap()
            .clone()
    };
    assert_eq!(col("title").value(0), "Flood news");
    assert_eq!(col("html_lang").value(0), "en-GB");
    assert!(col("title").is_null(1));
    // The HTML is gone unless kept, and the text and id still point right.
    assert!(out.batch.data.column_by_name("html").is_none());
    assert_eq!(out.batch.ids().value(1), "d1");
    let kept = op(true).apply(batch(&[Some(ARTICLE)], &[""])).unwrap();
    assert!(kept.batch.data.column_by_name("html").is_some());
}

#[test]
fn markdown_output_marks_headings_and_lists() {
    // Long enough (over 250 characters) that the article is taken as found,
    // not by the whole-body fallback, which keeps no structure.
    let page = "<html><body><article><h2>Steps</h2>\
                <p>Do these things in order, carefully and one at a time, every morning before the \
                water reaches the lower fields and the road to the village is closed.</p>\
                <ul><li>First open the gate to the lower field</li><li>Then move the animals up the hill</li></ul>\
                <p>When the animals are safe, close the gate behind them, walk back along the ridge \
                and tell the neighbours which fields are already under water.</p></article></body></html>";
    let md = extract(
        page,
        &Options {
            output: OutputFormat::Markdown,
            ..Options::default()
        },
    );
    assert!(md.text.contains("## Steps"), "{}", md.text);
    assert!(md.text.contains("- First open the gate"), "{}", md.text);
    let no_lists = extract(
        page,
        &Options {
            include_lists: false,
            ..Options::default()
        },
    );
    assert!(
        !no_lists.text.contains("First open the gate"),
        "{}",
        no_lists.text
    );
}

#[test]
fn a_missing_html_column_is_a_clear_error() {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("text", DataType::Utf8, false),
    ]));
    let data = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(vec!["a"])),
            Arc::new(StringArray::from(vec!["t"])),
        ],
    )
    .unwrap();
    let err = op(false)
        .apply(DocBatch {
            data,
            text: 1,
            id: 0,
        })
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("no column `html`"), "{err}");
}

#[test]
fn html_read_as_the_text_column_is_replaced_in_place() {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("html", DataType::Utf8, false),
    ]));
    let data = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(vec!["a"])),
            Arc::new(StringArray::from(vec![ARTICLE])),
        ],
    )
    .unwrap();
    let out = op(false)
        .apply(DocBatch {
            data,
            text: 1,
            id: 0,
        })
        .unwrap();
    let text = out.batch.texts().value(0);
    assert!(text.contains("lower fields were under water"), "{text}");
    assert!(!text.contains("<p>"), "{text}");
    assert_eq!(out.batch.data.schema().field(out.batch.text).name(), "html");
    assert!(out.batch.data.column_by_name("title").is_some());
}
