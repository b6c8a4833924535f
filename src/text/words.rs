//! Word segmentation per language, as the rule filters see words.
//!
//! - Space-delimited languages (the default): spaCy's English rules
//!   (`spacy.blank("en")`, as datatrove uses), punctuation tokens included.
//! - Languages written without spaces (zh, ja, th, lo, km, my, and `yue`,
//!   `wuu`): a documented character rule, no dictionary: each character of an
//!   unspaced script is a word, each punctuation character is a word, and a
//!   run of other non-space characters (Latin words, numbers) is one word.
//!   Sentences end at terminal punctuation (。！？!?. …).

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use xxhash_rust::xxh3::xxh3_128;

use super::punct::{is_punctuation, is_terminal_punctuation};
use super::{is_unspaced_script, pystr, spacy_en};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Segmenter {
    SpacyEnglish,
    Unspaced,
}

/// Languages whose text has no spaces between words.
pub const UNSPACED_LANGS: &[&str] = &["zh", "ja", "th", "lo", "km", "my", "yue", "wuu", "bo"];

impl Segmenter {
    pub fn for_lang(lang: Option<&str>) -> Segmenter {
        match lang {
            Some(l) if UNSPACED_LANGS.contains(&l) => Segmenter::Unspaced,
            _ => Segmenter::SpacyEnglish,
        }
    }

    pub fn words<'a>(&self, text: &'a str) -> Vec<&'a str> {
        match self {
            Segmenter::SpacyEnglish => cached_words(text),
            Segmenter::Unspaced => unspaced_words(text),
        }
    }

    /// Sentences in one line of text (at least 1 when it has any word).
    pub fn sentences(&self, text: &str) -> usize {
        match self {
            Segmenter::SpacyEnglish => spacy_en::count_sentences(text),
            Segmenter::Unspaced => unspaced_sentences(text),
        }
    }
}

/// Word spans of recently split texts, per thread. The rule filters of one
/// segment run one after another on the same batch (same Arrow buffer), so
/// the second and third filter reuse the first one's split instead of
/// running the spaCy rules again. Filtering copies the kept rows to new
/// buffers, so the key is the text's length and 128-bit hash, not its address.
type Spans = Rc<[(u32, u32)]>;

struct WordCache {
    spans: HashMap<(usize, u128), Spans>,
    held: usize,
}

/// Spans held before the cache is emptied: a few batches' worth.
const CACHE_SPANS: usize = 4 << 20;

thread_local! {
    static WORD_CACHE: RefCell<WordCache> = RefCell::new(WordCache { spans: HashMap::new(), held: 0 });
}

fn cached_words(text: &str) -> Vec<&str> {
    let key = (text.len(), xxh3_128(text.as_bytes()));
    let spans = WORD_CACHE.with(|c| c.borrow().spans.get(&key).cloned());
    let spans = match spans {
        Some(s) => s,
        None => {
            let words = spacy_en::words(text);
            let base = text.as_ptr() as usize;
            let spans: Spans = words
                .iter()
                .map(|w| {
                    let start = (w.as_ptr() as usize - base) as u32;
                    (start, start + w.len() as u32)
                })
                .collect();
            WORD_CACHE.with(|c| {
                let mut c = c.borrow_mut();
                if c.held + spans.len() > CACHE_SPANS {
                    c.spans.clear();
                    c.held = 0;
                }
                c.held += spans.len();
                c.spans.insert(key, spans.clone());
            });
            spans
        }
    };
    spans
        .iter()
        .map(|&(s, e)| &text[s as usize..e as usize])
        .collect()
}

fn unspaced_words(text: &str) -> Vec<&str> {
    let mut words = vec![];
    let mut run: Option<usize> = None;
    for (i, c) in text.char_indices() {
        let alone = is_unspaced_script(c) || is_punctuation(c) || c.is_ascii_punctuation();
        if pystr::is_space(c) || alone {
            if let Some(s) = run.take() {
                words.push(&text[s..i]);
            }
            if alone {
                words.push(&text[i..i + c.len_utf8()]);
            }
        } else if run.is_none() {
            run = Some(i);
        }
    }
    if let Some(s) = run {
        words.push(&text[s..]);
    }
    words
}

fn unspaced_sentences(text: &str) -> usize {
    let mut sentences = 0;
    let mut open = false;
    let mut ended = false;
    for c in text.chars() {
        if is_terminal_punctuation(c) {
            if open {
                ended = true;
            }
        } else if !pystr::is_space(c) && !is_punctuation(c) {
            if ended || !open {
                sentences += 1;
            }
            open = true;
            ended = false;
        }
    }
    sentences.max(usize::from(!pystr::strip(text).is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unspaced_text_splits_per_character() {
        assert_eq!(
            Segmenter::Unspaced.words("人民日报，2024年 Rust!"),
            vec!["人", "民", "日", "报", "，", "2024", "年", "Rust", "!"]
        );
        assert_eq!(
            Segmenter::Unspaced.sentences("今天很好。明天也好！后天？"),
            3
        );
        assert_eq!(Segmenter::Unspaced.sentences("没有句号"), 1);
        assert_eq!(Segmenter::for_lang(Some("zh")), Segmenter::Unspaced);
        assert_eq!(Segmenter::for_lang(Some("en")), Segmenter::SpacyEnglish);
        assert_eq!(Segmenter::for_lang(None), Segmenter::SpacyEnglish);
    }

    #[test]
    fn cached_split_equals_a_fresh_one() {
        let a = String::from("Hello world, it's a test... don't");
        let first = Segmenter::SpacyEnglish.words(&a);
        assert_eq!(first, spacy_en::words(&a));
        assert_eq!(Segmenter::SpacyEnglish.words(&a), first);
        // Same length, other text: no stale hit.
        let b = String::from("Other words, it's not a test..; do");
        assert_eq!(Segmenter::SpacyEnglish.words(&b), spacy_en::words(&b));
    }
}
