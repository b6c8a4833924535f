use super::{ngrams, remove_spans, scan, tokens, Index, Source, Window};

const W3: Window = Window { words: 3, cjk: 6 };

fn words(text: &str) -> Vec<String> {
    let mut out = vec![];
    tokens(text, |s, e, _, _| out.push(text[s..e].to_string()));
    out
}

#[test]
fn tokens_are_words_and_cjk_characters() {
    assert_eq!(
        words("Hello, World! It's 2024."),
        ["Hello", "World", "It", "s", "2024"]
    );
    assert_eq!(words("中文abc混合"), ["中", "文", "abc", "混", "合"]);
    // The kana middle dot is punctuation.
    assert_eq!(words("アイ・ウエ"), ["ア", "イ", "ウ", "エ"]);
    // Accents and case do not matter; full-width letters are ASCII.
    let hash = |t: &str| {
        let mut h = vec![];
        tokens(t, |_, _, x, _| h.push(x));
        h
    };
    assert_eq!(hash("Café NAÏVE"), hash("cafe naive"));
    assert_eq!(hash("Ｃａｆｅ"), hash("cafe"));
    assert_eq!(hash("cafe\u{301}"), hash("cafe"));
}

#[test]
fn ngrams_cover_their_tokens_and_ignore_punctuation_and_case() {
    let text = "One two, three four five.";
    let mut spans = vec![];
    ngrams(text, W3, |s, e, _| spans.push(&text[s..e]));
    assert_eq!(
        spans,
        ["One two, three", "two, three four", "three four five"]
    );
    let hashes = |t: &str| {
        let mut h = vec![];
        ngrams(t, W3, |_, _, x| h.push(x));
        h
    };
    assert_eq!(hashes(text), hashes("one TWO three -- four five"));
    assert_ne!(hashes("one two three"), hashes("one two four"));
    assert!(hashes("one two").is_empty());
}

fn index_of(rows: &[&str], n: usize) -> (tempfile::TempDir, Index) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.jsonl");
    let lines: Vec<String> = rows
        .iter()
        .map(|r| serde_json::json!({ "question": r, "answer": "42" }).to_string())
        .collect();
    std::fs::write(&path, lines.join("\n")).unwrap();
    let pattern = path.to_string_lossy().into_owned();
    let index = Index::build(
        &[Source {
            name: "qa",
            pattern: &pattern,
        }],
        &["question".into(), "answer".into()],
        "id",
        Window {
            words: n,
            cjk: 2 * n,
        },
    )
    .unwrap();
    (dir, index)
}

#[test]
fn a_row_is_found_verbatim_or_lightly_edited_and_short_rows_never() {
    let row = "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May";
    let (_d, index) = index_of(&[row, "How many clips?"], 13);
    assert_eq!(index.benchmarks[0].rows, 2);
    assert_eq!(index.benchmarks[0].too_short, 1);
    let doc = format!("Some text before. {row}. And after.");
    let hits = scan(&index, &doc, true).unwrap();
    assert_eq!(hits.rows, [0]);
    assert_eq!(index.rows[0].id, "bench.jsonl:0");
    let edited = row.to_uppercase().replace(',', " ;");
    assert!(scan(&index, &edited, false).is_some());
    // The short row, even verbatim, matches nothing.
    assert!(scan(&index, "Then he asked: how many clips? 42.", false).is_none());
    // Twelve words of the row are not enough.
    let twelve: Vec<&str> = row.split(' ').take(12).collect();
    assert!(scan(&index, &twelve.join(" "), false).is_none());
    // Masking removes the row's text and keeps the rest.
    let m = remove_spans(&doc, &hits.spans);
    assert!(
        m.starts_with("Some text before. ") && m.ends_with(". And after."),
        "{m}"
    );
    assert!(!m.contains("Natalia"));
}

#[test]
fn chinese_is_matched_by_characters() {
    let row = "小明有五个苹果，他给了小红两个，又从妈妈那里得到三个，请问小明现在一共有几个苹果？";
    let (_d, index) = index_of(&[row], 13);
    assert!(scan(&index, &format!("题目：{row}答案是三个。"), false).is_some());
    assert!(scan(&index, "小明有五个苹果，他给了小红两个。", false).is_none());
}

#[test]
fn a_window_is_words_or_twice_as_many_cjk_characters() {
    let text = "一二三四五六 seven eight nine";
    let mut grams = vec![];
    ngrams(text, Window { words: 3, cjk: 6 }, |s, e, _| {
        grams.push(&text[s..e])
    });
    // Six characters make a window; a word stands for two of them.
    assert_eq!(
        grams,
        [
            "一二三四五六",
            "三四五六 seven",
            "五六 seven eight",
            "seven eight nine"
        ]
    );
}
