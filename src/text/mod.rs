//! Text utilities shared by operators.

pub mod ccnet;
pub mod punct;
pub mod pystr;
pub mod spacy_en;
pub mod words;

/// True for characters of scripts written without spaces between words
/// (Han, Hiragana, Katakana, Hangul syllables are spaced, so not included;
/// Thai, Lao, Khmer, Myanmar), where each character counts as one word.
pub fn is_unspaced_script(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF        // Hiragana, Katakana
        | 0x31F0..=0x31FF      // Katakana phonetic extensions
        | 0x3400..=0x4DBF      // CJK extension A
        | 0x4E00..=0x9FFF      // CJK unified ideographs
        | 0xF900..=0xFAFF      // CJK compatibility ideographs
        | 0x20000..=0x3134F    // CJK extensions B–G
        | 0x0E00..=0x0EFF      // Thai, Lao
        | 0x1000..=0x109F      // Myanmar
        | 0x1780..=0x17FF      // Khmer
    )
}

/// Counts words: a run of non-whitespace characters is one word, except that
/// every character of an unspaced script (Chinese, Japanese, Thai, …) counts as
/// a word of its own. Punctuation-only runs count as words, as in
/// whitespace-splitting tools; per-language segmentation belongs to the
/// quality filters.
pub fn count_words(text: &str) -> usize {
    let mut words = 0;
    let mut in_word = false;
    for c in text.chars() {
        if c.is_whitespace() {
            in_word = false;
        } else if is_unspaced_script(c) {
            words += 1;
            in_word = false;
        } else if !in_word {
            words += 1;
            in_word = true;
        }
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_space_delimited_words() {
        assert_eq!(count_words("  the quick\tbrown\n fox. "), 4);
        assert_eq!(count_words(""), 0);
    }

    #[test]
    fn counts_each_cjk_character() {
        assert_eq!(count_words("人民日报"), 4);
        assert_eq!(count_words("Rust 语言 v1.0"), 4);
        assert_eq!(count_words("ひらがなカタカナ"), 8);
    }
}
