//! CCNet's text normalisations (cc_net/text_normalizer.py), which its line
//! dedup and its language-model scoring apply: one table of Unicode
//! punctuation, deleted for dedup keys and mapped to ASCII for scoring.

use unicode_normalization::UnicodeNormalization;
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

/// CCNet's `UNICODE_PUNCT`: each character and what `normalize` maps it to.
/// (`１` is listed there too but never reached: digits become `0` first.)
const UNICODE_PUNCT: &[(char, &str)] = &[
    ('，', ","),
    ('。', "."),
    ('、', ","),
    ('„', "\""),
    ('”', "\""),
    ('“', "\""),
    ('«', "\""),
    ('»', "\""),
    ('１', "\""),
    ('」', "\""),
    ('「', "\""),
    ('《', "\""),
    ('》', "\""),
    ('´', "'"),
    ('∶', ":"),
    ('：', ":"),
    ('？', "?"),
    ('！', "!"),
    ('（', "("),
    ('）', ")"),
    ('；', ";"),
    ('–', "-"),
    ('—', " - "),
    ('．', ". "),
    ('～', "~"),
    ('’', "'"),
    ('…', "..."),
    ('━', "-"),
    ('〈', "<"),
    ('〉', ">"),
    ('【', "["),
    ('】', "]"),
    ('％', "%"),
    ('►', "-"),
];

fn punct(c: char) -> Option<&'static str> {
    if c.is_ascii() {
        return None;
    }
    UNICODE_PUNCT.iter().find(|(p, _)| *p == c).map(|(_, r)| *r)
}

/// CJK unified ideographs (and extension A): letters (`Lo`) without case
/// or decomposition.
fn is_plain_ideograph(c: char) -> bool {
    matches!(c as u32, 0x3400..=0x4DBF | 0x4E00..=0x9FFF)
}

/// Hangul syllables: letters without case (NFD splits them into jamo, so
/// they are plain only where no NFD is applied).
fn is_hangul_syllable(c: char) -> bool {
    matches!(c as u32, 0xAC00..=0xD7A3)
}

/// CCNet's control characters: U+0000–U+001F and U+007F–U+009F.
fn is_non_printing(c: char) -> bool {
    matches!(c as u32, 0..=31 | 127..=159)
}

/// `normalize_for_dedup`: stripped, lower-cased, every decimal digit `0`,
/// the table's punctuation and the control characters deleted. ASCII
/// punctuation and accents stay. Written into `out`.
pub fn normalize_for_dedup(line: &str, out: &mut String) {
    out.clear();
    for c in line.trim().chars() {
        if is_plain_ideograph(c) || is_hangul_syllable(c) {
            // Most of a Chinese or Korean line: no digit, no case, not in
            // the table (the checks below cost a table search each).
            out.push(c);
            continue;
        }
        if is_non_printing(c) || punct(c).is_some() {
            continue;
        }
        if c.is_ascii() {
            out.push(if c.is_ascii_digit() {
                '0'
            } else {
                c.to_ascii_lowercase()
            });
        } else if c.general_category() == GeneralCategory::DecimalNumber {
            out.push('0');
        } else {
            // Python's str.lower(): title-case letters too.
            out.extend(c.to_lowercase());
        }
    }
}

/// `normalize(line)` (accent, case, numbers, punct=1): stripped,
/// lower-cased, NFD without nonspacing marks (left decomposed, as CCNet
/// leaves it), decimal digits `0`, the table's punctuation mapped, control
/// characters removed.
pub fn normalize(line: &str) -> String {
    let lower = line.trim().to_lowercase();
    let mut out = String::with_capacity(lower.len());
    if lower.is_ascii() {
        // ASCII is its own NFD, has no nonspacing marks, and none of the
        // table's punctuation: only digits and control characters change.
        for c in lower.chars() {
            if c.is_ascii_digit() {
                out.push('0');
            } else if !is_non_printing(c) {
                out.push(c);
            }
        }
        return out;
    }
    for c in lower.nfd() {
        if is_plain_ideograph(c) {
            // Its own NFD, no mark, no digit, not in the table.
            out.push(c);
            continue;
        }
        match c.general_category() {
            GeneralCategory::NonspacingMark => continue,
            GeneralCategory::DecimalNumber => {
                out.push('0');
                continue;
            }
            _ => {}
        }
        if is_non_printing(c) {
            continue;
        }
        match punct(c) {
            Some(r) => out.push_str(r),
            None => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_for_dedup_is_ccnets() {
        let mut s = String::new();
        // Lower case, digits to 0 (any script's), the listed Unicode
        // punctuation and control characters gone, ASCII punctuation and
        // accents kept.
        normalize_for_dedup("  Été 2024, «Paris»！\u{7}  ", &mut s);
        assert_eq!(s, "été 0000, paris");
        normalize_for_dedup("第١٢章：你好。", &mut s);
        assert_eq!(s, "第00章你好");
        normalize_for_dedup(" \t ", &mut s);
        assert_eq!(s, "");
    }

    #[test]
    fn normalisation_for_scoring_is_ccnets() {
        // As cc_net's text_normalizer.normalize: lower, NFD without marks
        // (kept decomposed), digits 0, punctuation mapped, controls gone.
        assert_eq!(
            normalize("  Été 2024 — «Paris»！\t"),
            "ete 0000  -  \"paris\"!"
        );
        assert_eq!(normalize("第１２章：你好。"), "第00章:你好.");
        assert_eq!(normalize("한"), "\u{1112}\u{1161}\u{11ab}");
        // The ASCII path: digits, controls, case.
        assert_eq!(normalize(" Route 66\t\u{7}Ends. "), "route 00ends.");
    }
}
