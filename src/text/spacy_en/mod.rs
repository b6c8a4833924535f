//! Pure-Rust re-implementation of spaCy's rule-based English tokenizer
//! (`spacy.blank("en")`, spaCy 3.8) and of the default `sentencizer` rule.
//!
//! The algorithm follows `spacy/tokenizer.pyx`:
//! 1. split the text on whitespace (Python `str.isspace`); a single `' '` after a
//!    non-space chunk is absorbed, any other whitespace run becomes a token;
//! 2. per non-space chunk: special cases (tokenizer exceptions), then the
//!    prefix / suffix loop (`_split_affixes`), then special case / URL match /
//!    infix splitting of the remainder (`_attach_tokens`);
//! 3. a final pass (`_apply_special_cases`) that merges token sequences equal
//!    to the affix tokenization of a special case containing affixes.
//!
//! The prefix, suffix and infix regexes of spaCy are implemented by hand
//! (they use look-behind / look-ahead), with exactly the same alternation
//! order semantics as Python's `re`. The data tables at the end of this file
//! were generated from the installed spaCy (see `tools/spacy_en/gen.py`).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::LazyLock;

// ---------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------

/// spaCy English tokens of `text` (token texts, whitespace tokens included as spaCy produces them).
pub fn tokens(text: &str) -> Vec<&str> {
    let mut toks = Vec::new();
    tokenize_into(text, &mut toks);
    toks.iter()
        .map(|&(s, e)| &text[s as usize..e as usize])
        .collect()
}

/// Words as datatrove uses them: tokens stripped of surrounding whitespace
/// (Python `str.strip` semantics), empty ones dropped.
pub fn words(text: &str) -> Vec<&str> {
    let mut toks = Vec::new();
    tokenize_into(text, &mut toks);
    let mut out = Vec::with_capacity(toks.len());
    for &(s, e) in &toks {
        let t = &text[s as usize..e as usize];
        let t = py_strip(t);
        if !t.is_empty() {
            out.push(t);
        }
    }
    out
}

/// Number of sentences the sentencizer finds in `text` (at least 1 for non-empty text).
pub fn count_sentences(text: &str) -> usize {
    let mut toks = Vec::new();
    tokenize_into(text, &mut toks);
    if toks.is_empty() {
        return 0;
    }
    let mut n = 1;
    let mut seen_period = false;
    for &(s, e) in &toks {
        let t = &text[s as usize..e as usize];
        let in_punct_chars = {
            let mut it = t.chars();
            match (it.next(), it.next()) {
                (Some(c), None) => SENT_PUNCT.binary_search(&c).is_ok(),
                _ => false,
            }
        };
        if seen_period && !in_punct_chars && !is_punct_text(t) {
            n += 1;
            seen_period = false;
        } else if in_punct_chars {
            seen_period = true;
        }
    }
    n
}

/// Token byte spans `(start, end)` of `text` into `out` (cleared first).
pub fn tokenize_into(text: &str, out: &mut Vec<(u32, u32)>) {
    out.clear();
    assert!(text.len() < u32::MAX as usize, "text too long");
    let b = text.as_bytes();
    if b.is_empty() {
        return;
    }
    let mut scratch = Scratch::default();
    let first = text.chars().next().unwrap();
    let mut in_ws = is_space(first);
    let mut start = 0usize;
    let mut i = 0usize;
    while i < b.len() {
        let c0 = b[i];
        let (c, l) = if c0 < 0x80 {
            (c0 as char, 1)
        } else {
            let c = text[i..].chars().next().unwrap();
            (c, c.len_utf8())
        };
        if is_space(c) != in_ws {
            if start < i {
                if in_ws {
                    out.push((start as u32, i as u32));
                } else {
                    tokenize_chunk(text, start, i, out, &mut scratch);
                }
            }
            start = if c == ' ' { i + 1 } else { i };
            in_ws = !in_ws;
        }
        i += l;
    }
    if start < b.len() {
        if in_ws {
            out.push((start as u32, b.len() as u32));
        } else {
            tokenize_chunk(text, start, b.len(), out, &mut scratch);
        }
    }
    if scratch.maybe_special_merge {
        apply_special_merges(text, out, &mut scratch);
    }
}

// ---------------------------------------------------------------------------
// Character classes
// ---------------------------------------------------------------------------

#[inline]
fn in_ranges(c: char, r: &[(u32, u32)]) -> bool {
    let c = c as u32;
    // binary search for the last range with start <= c
    let mut lo = 0usize;
    let mut hi = r.len();
    while lo < hi {
        let mid = (lo + hi) / 2;
        if r[mid].0 <= c {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo > 0 && c <= r[lo - 1].1
}

#[inline]
fn is_space(c: char) -> bool {
    if (c as u32) < 0x80 {
        matches!(
            c,
            ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r' | '\x1c'..='\x1f'
        )
    } else {
        in_ranges(c, CLS_ISSPACE)
    }
}

#[inline]
fn is_icon(c: char) -> bool {
    (c as u32) >= 0xA6 && in_ranges(c, CLS_ICONS)
}
#[inline]
fn is_alpha(c: char) -> bool {
    if (c as u32) < 0x80 {
        c.is_ascii_alphabetic()
    } else {
        in_ranges(c, CLS_ALPHA)
    }
}
#[inline]
fn is_alpha_upper(c: char) -> bool {
    if (c as u32) < 0x80 {
        c.is_ascii_uppercase()
    } else {
        in_ranges(c, CLS_ALPHA_UPPER)
    }
}
#[inline]
fn is_al_q(c: char) -> bool {
    in_ranges(c, CLS_AL_Q)
}
#[inline]
fn is_au_q(c: char) -> bool {
    in_ranges(c, CLS_AU_Q)
}
#[inline]
fn is_sufdot(c: char) -> bool {
    in_ranges(c, CLS_SUFDOT)
}
#[inline]
fn is_digit(c: char) -> bool {
    c.is_ascii_digit()
}

fn is_punct_text(t: &str) -> bool {
    t.chars().all(|c| in_ranges(c, CLS_PUNCT_CAT))
}

fn py_strip(t: &str) -> &str {
    t.trim_matches(is_space)
}

// ---------------------------------------------------------------------------
// Special cases (tokenizer exceptions)
// ---------------------------------------------------------------------------

#[derive(Default)]
struct FxHasher(u64);
impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut h = self.0;
        for chunk in bytes.chunks(8) {
            let mut v = 0u64;
            for (k, &x) in chunk.iter().enumerate() {
                v |= (x as u64) << (8 * k);
            }
            h = (h.rotate_left(5) ^ v).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
        self.0 = h;
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.0 = (self.0.rotate_left(5) ^ i as u64).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}
type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

struct Specials {
    map: FxMap<&'static str, &'static [&'static str]>,
    max_len: usize,
    /// first bytes of special keys
    first: [bool; 256],
}

static SPECIAL_MAP: LazyLock<Specials> = LazyLock::new(|| {
    let mut map = FxMap::default();
    let mut max_len = 0;
    let mut first = [false; 256];
    for &(k, v) in SPECIALS {
        map.insert(k, v);
        max_len = max_len.max(k.len());
        first[k.as_bytes()[0] as usize] = true;
    }
    Specials {
        map,
        max_len,
        first,
    }
});

#[inline]
fn special(s: &str) -> Option<&'static [&'static str]> {
    let sp = &*SPECIAL_MAP;
    if s.is_empty() || s.len() > sp.max_len || !sp.first[s.as_bytes()[0] as usize] {
        return None;
    }
    sp.map.get(s).copied()
}

struct Matcher {
    /// first token text -> patterns (token texts), for patterns of >= 2 tokens
    by_first: FxMap<&'static str, Vec<&'static [&'static str]>>,
    first: [bool; 256],
    max_first_len: usize,
}

static MATCHER: LazyLock<Matcher> = LazyLock::new(|| {
    let mut by_first: FxMap<&'static str, Vec<&'static [&'static str]>> = FxMap::default();
    let mut first = [false; 256];
    let mut max_first_len = 0;
    for &(key, pat) in MATCHER_PATTERNS {
        if pat.len() < 2 {
            // single-token patterns: the special case is the token itself (no-op);
            // they can never block a longer span either.
            debug_assert_eq!(special(key).map(|v| v.len()), Some(1));
            continue;
        }
        by_first.entry(pat[0]).or_default().push(pat);
        first[pat[0].as_bytes()[0] as usize] = true;
        max_first_len = max_first_len.max(pat[0].len());
    }
    Matcher {
        by_first,
        first,
        max_first_len,
    }
});

// ---------------------------------------------------------------------------
// Chunk tokenization
// ---------------------------------------------------------------------------

#[derive(Default)]
struct Scratch {
    prefixes: Vec<(u32, u32)>,
    suffixes: Vec<(u32, u32)>,
    infixes: Vec<(usize, usize)>,
    maybe_special_merge: bool,
}

#[inline]
fn push_special(out: &mut Vec<(u32, u32)>, start: usize, parts: &[&str]) {
    let mut p = start;
    for part in parts {
        out.push((p as u32, (p + part.len()) as u32));
        p += part.len();
    }
}

fn tokenize_chunk(
    text: &str,
    start: usize,
    end: usize,
    out: &mut Vec<(u32, u32)>,
    sc: &mut Scratch,
) {
    let chunk = &text[start..end];
    if let Some(parts) = special(chunk) {
        push_special(out, start, parts);
        return;
    }
    // fast path: ASCII letters only -> no prefix, suffix, infix or URL can match
    if chunk.bytes().all(|b| b.is_ascii_alphabetic()) {
        out.push((start as u32, end as u32));
        return;
    }
    let n0 = out.len();
    // _split_affixes
    sc.prefixes.clear();
    sc.suffixes.clear();
    let (mut s, mut e) = (start, end);
    let mut last_size = usize::MAX;
    let mut residual_special: Option<&'static [&'static str]> = None;
    let mut residual_checked = false;
    while s < e && (e - s) != last_size {
        if let Some(p) = special(&text[s..e]) {
            residual_special = Some(p);
            residual_checked = true;
            break;
        }
        last_size = e - s;
        let cur = &text[s..e];
        let pre_len = find_prefix(cur);
        if pre_len != 0 {
            let minus_pre = &text[s + pre_len..e];
            if !minus_pre.is_empty() {
                if let Some(p) = special(minus_pre) {
                    sc.prefixes.push((s as u32, (s + pre_len) as u32));
                    s += pre_len;
                    residual_special = Some(p);
                    residual_checked = true;
                    break;
                }
            }
        }
        let suf_len = find_suffix(&text[s + pre_len..e]);
        if suf_len != 0 {
            let minus_suf = &text[s..e - suf_len];
            if !minus_suf.is_empty() {
                if let Some(p) = special(minus_suf) {
                    sc.suffixes.push(((e - suf_len) as u32, e as u32));
                    e -= suf_len;
                    residual_special = Some(p);
                    residual_checked = true;
                    break;
                }
            }
        }
        if pre_len != 0 && suf_len != 0 && pre_len + suf_len <= e - s {
            sc.prefixes.push((s as u32, (s + pre_len) as u32));
            sc.suffixes.push(((e - suf_len) as u32, e as u32));
            s += pre_len;
            e -= suf_len;
        } else if pre_len != 0 {
            sc.prefixes.push((s as u32, (s + pre_len) as u32));
            s += pre_len;
        } else if suf_len != 0 {
            sc.suffixes.push(((e - suf_len) as u32, e as u32));
            e -= suf_len;
        }
    }
    // _attach_tokens
    out.extend_from_slice(&sc.prefixes);
    if s < e {
        let rest = &text[s..e];
        let sp = if residual_checked {
            residual_special
        } else {
            special(rest)
        };
        if let Some(parts) = sp {
            push_special(out, s, parts);
        } else if url_match(rest) {
            out.push((s as u32, e as u32));
        } else {
            find_infixes(rest, &mut sc.infixes);
            if sc.infixes.is_empty() {
                out.push((s as u32, e as u32));
            } else {
                let mut st = 0usize;
                for &(is, ie) in &sc.infixes {
                    if is == 0 {
                        continue;
                    }
                    if is != st {
                        out.push(((s + st) as u32, (s + is) as u32));
                    }
                    if is != ie {
                        out.push(((s + is) as u32, (s + ie) as u32));
                    }
                    st = ie;
                }
                if st < rest.len() {
                    out.push(((s + st) as u32, e as u32));
                }
            }
        }
    }
    for &t in sc.suffixes.iter().rev() {
        out.push(t);
    }
    if out.len() - n0 > 1 {
        sc.maybe_special_merge = true;
    }
}

// ---------------------------------------------------------------------------
// Prefix / suffix / infix rules
// ---------------------------------------------------------------------------

#[allow(dead_code)]
enum Pre {
    Lit(&'static str),
    /// `\+(?![0-9])`
    PlusNotDigit,
    /// `\.\.+`
    Dots,
    /// `[<icons>]`
    Icon,
}

/// Length in bytes of the prefix spaCy's `prefix_search` finds, 0 if none.
fn find_prefix(s: &str) -> usize {
    let b = s.as_bytes();
    let b0 = b[0];
    if b0.is_ascii_alphanumeric() && !matches!(b0, b'U' | b'C' | b'A') {
        return 0;
    }
    let c0 = s.chars().next().unwrap();
    for p in PREFIXES {
        match *p {
            Pre::Lit(l) => {
                if s.starts_with(l) {
                    return l.len();
                }
            }
            Pre::PlusNotDigit => {
                if b0 == b'+' && !(b.len() > 1 && b[1].is_ascii_digit()) {
                    return 1;
                }
            }
            Pre::Dots => {
                if b.len() >= 2 && b0 == b'.' && b[1] == b'.' {
                    return b.iter().take_while(|&&x| x == b'.').count();
                }
            }
            Pre::Icon => {
                if is_icon(c0) {
                    return c0.len_utf8();
                }
            }
        }
    }
    0
}

type SuffixSets = (FxMap<&'static str, ()>, FxMap<&'static str, ()>, usize);
static SUFFIX_SETS: LazyLock<SuffixSets> = LazyLock::new(|| {
    let mut lits = FxMap::default();
    let mut dig = FxMap::default();
    let mut maxc = 2;
    for &l in SUFFIX_LITS {
        lits.insert(l, ());
        maxc = maxc.max(l.chars().count());
    }
    for &l in SUFFIX_AFTER_DIGIT {
        dig.insert(l, ());
        maxc = maxc.max(l.chars().count());
    }
    (lits, dig, maxc)
});

/// Does an alternative of the suffix regex match `s[i..]` exactly (look-behind into `s[..i]`)?
fn suffix_at(s: &str, i: usize) -> bool {
    let (lits, dig, _) = &*SUFFIX_SETS;
    let tail = &s[i..];
    if lits.contains_key(tail) {
        return true;
    }
    let mut tc = tail.chars();
    let c = tc.next().unwrap();
    let single = tc.next().is_none();
    if single && is_icon(c) {
        return true;
    }
    let mut before = s[..i].chars().rev();
    let p1 = before.next();
    if let Some(p1) = p1 {
        if is_digit(p1) && dig.contains_key(tail) {
            return true;
        }
        if tail == "." {
            let p2 = before.next();
            if let Some(p2) = p2 {
                if p2 == '°' && matches!(p1, 'F' | 'f' | 'C' | 'c' | 'K' | 'k') {
                    return true;
                }
            }
            if is_sufdot(p1) {
                return true;
            }
            if let Some(p2) = p2 {
                if is_alpha_upper(p1) && is_alpha_upper(p2) {
                    return true;
                }
            }
        }
    }
    false
}

/// Length in bytes of the suffix spaCy's `suffix_search` finds, 0 if none.
fn find_suffix(s: &str) -> usize {
    if s.is_empty() {
        return 0;
    }
    let b = s.as_bytes();
    let n = b.len();
    let last = b[n - 1];
    if last.is_ascii_alphabetic() {
        // only `'s`-like suffixes or units after a digit can end with an ASCII letter
        let maybe_s = matches!(last, b's' | b'S')
            && n >= 2
            && (b[n - 2] == b'\'' || (n >= 4 && &b[n - 4..n - 1] == "’".as_bytes()));
        let lo = n.saturating_sub(8);
        let maybe_unit = b[lo..].iter().any(|x| x.is_ascii_digit());
        if !maybe_s && !maybe_unit {
            return 0;
        }
    } else if last.is_ascii_digit() {
        return 0;
    }
    let maxc = SUFFIX_SETS.2;
    // candidate start positions: the last `maxc` char boundaries, in ascending order
    let mut starts = [0usize; 16];
    let mut k = 0;
    for (idx, _) in s.char_indices().rev() {
        if k == maxc {
            break;
        }
        starts[k] = idx;
        k += 1;
    }
    // `\.\.+$`: start of the trailing run of dots
    let dots = b.iter().rev().take_while(|&&x| x == b'.').count();
    let dot_start = if dots >= 2 { Some(n - dots) } else { None };
    let mut best: Option<usize> = None;
    for j in (0..k).rev() {
        let i = starts[j];
        if let Some(d) = dot_start {
            if d <= i {
                break;
            }
        }
        if suffix_at(s, i) {
            best = Some(i);
            break;
        }
    }
    let i = match (best, dot_start) {
        (Some(a), Some(d)) => a.min(d),
        (Some(a), None) => a,
        (None, Some(d)) => d,
        (None, None) => return 0,
    };
    n - i
}

/// Non-overlapping infix matches (byte ranges), as `infix_finditer` yields them.
fn find_infixes(s: &str, out: &mut Vec<(usize, usize)>) {
    out.clear();
    let b = s.as_bytes();
    let mut prev: Option<char> = None;
    let mut i = 0usize;
    while i < b.len() {
        let c = if b[i] < 0x80 {
            b[i] as char
        } else {
            s[i..].chars().next().unwrap()
        };
        let cl = c.len_utf8();
        if let Some(m) = infix_at(s, i, c, prev) {
            out.push((i, m));
            // the char before the next search position
            prev = s[..m].chars().next_back();
            i = m;
            continue;
        }
        prev = Some(c);
        i += cl;
    }
}

#[inline]
fn next_char(s: &str, i: usize) -> Option<char> {
    s[i..].chars().next()
}

/// Try the infix alternatives in order at byte position `i` (char `c`); returns the match end.
#[inline]
fn infix_at(s: &str, i: usize, c: char, prev: Option<char>) -> Option<usize> {
    let b = s.as_bytes();
    match c {
        'a'..='z' | 'A'..='Z' | '0'..='9' => return None,
        _ => {}
    }
    // 1. \.\.+
    if c == '.' && i + 1 < b.len() && b[i + 1] == b'.' {
        let run = b[i..].iter().take_while(|&&x| x == b'.').count();
        return Some(i + run);
    }
    // 2. …
    if c == '…' {
        return Some(i + c.len_utf8());
    }
    // 3. icons
    if is_icon(c) {
        return Some(i + c.len_utf8());
    }
    let prev = prev?;
    let after = i + c.len_utf8();
    // 4. (?<=[0-9])[+\-\*^](?=[0-9-])
    if is_digit(prev) && matches!(c, '+' | '-' | '*' | '^') {
        if let Some(n) = next_char(s, after) {
            if is_digit(n) || n == '-' {
                return Some(after);
            }
        }
    }
    // 5. (?<=[al q])\.(?=[au q])
    if c == '.' && is_al_q(prev) {
        if let Some(n) = next_char(s, after) {
            if is_au_q(n) {
                return Some(after);
            }
        }
    }
    // 6. (?<=[a]),(?=[a])
    if c == ',' && is_alpha(prev) {
        if let Some(n) = next_char(s, after) {
            if is_alpha(n) {
                return Some(after);
            }
        }
    }
    let prev_ad = is_alpha(prev) || is_digit(prev);
    if prev_ad {
        // 7. (?<=[a0-9])(?:-|–|—|--|---|——|~)(?=[a])
        for h in HYPHENS {
            if s[i..].starts_with(h) {
                if let Some(n) = next_char(s, i + h.len()) {
                    if is_alpha(n) {
                        return Some(i + h.len());
                    }
                }
            }
        }
        // 8. (?<=[a0-9])[:<>=/](?=[a])
        if matches!(c, ':' | '<' | '>' | '=' | '/') {
            if let Some(n) = next_char(s, after) {
                if is_alpha(n) {
                    return Some(after);
                }
            }
        }
    }
    None
}

// ---------------------------------------------------------------------------
// URL_MATCH
// ---------------------------------------------------------------------------

struct UrlRes {
    full: regex::Regex,
    pre: regex::Regex,
    host_full: regex::Regex,
    ip_rest: regex::Regex,
    excl: regex::Regex,
}

static URL: LazyLock<UrlRes> = LazyLock::new(|| {
    let w = format!("[{}]", URL_WORD);
    let scheme = format!(r"(?:(?:[{}\+\-\.]{{2,}})://)?", URL_WORD);
    let _ = w;
    let user = r"(?:\S+(?::\S*)?@)?";
    let ip = r"(?:[1-9]\d?|1\d\d|2[01]\d|22[0-3])(?:\.(?:1?\d{1,2}|2[0-4]\d|25[0-5])){2}(?:\.(?:[1-9]\d?|1\d\d|2[0-4]\d|25[0-4]))";
    let host = format!(
        r"(?:(?:[A-Za-z0-9\x{{a1}}-\x{{ffff}}][A-Za-z0-9\x{{a1}}-\x{{ffff}}_-]{{0,62}})?[A-Za-z0-9\x{{a1}}-\x{{ffff}}]\.)+(?:[{}]{{2,63}})",
        URL_ALPHA_LOWER
    );
    let tail = r"(?::\d{2,5})?(?:[/?#]\S*)?";
    let full = format!("^{scheme}{user}(?:{ip}|{host}){tail}$");
    let pre = format!("^{scheme}{user}$");
    let host_full = format!("^{scheme}{user}{host}{tail}$");
    // `(?:[/?#]\S*)?$` on a whitespace-free chunk: only the first char matters,
    // so the check stays short even on very long strings.
    let ip_rest = format!(r"^{ip}(?::\d{{2,5}})?(?:[/?#]|$)");
    let excl = r"^(?:(?:10|127)(?:\.\d{1,3}){3}|(?:169\.254|192\.168)(?:\.\d{1,3}){2}|172\.(?:1[6-9]|2\d|3[0-1])(?:\.\d{1,3}){2})";
    UrlRes {
        full: regex::Regex::new(&full).unwrap(),
        pre: regex::Regex::new(&pre).unwrap(),
        host_full: regex::Regex::new(&host_full).unwrap(),
        ip_rest: regex::Regex::new(&ip_rest).unwrap(),
        excl: regex::Regex::new(excl).unwrap(),
    }
});

/// spaCy's `URL_MATCH` (the regex of `spacy/lang/tokenizer_exceptions.py`).
fn url_match(s: &str) -> bool {
    // both alternatives (IP address, host name) need a '.'
    if !s.as_bytes().contains(&b'.') {
        return false;
    }
    let u = &*URL;
    if !u.full.is_match(s) {
        return false;
    }
    // The negative look-aheads guard the IP-address alternative only; they
    // only matter if such a digit pattern occurs at all.
    if !u.excl_possible(s) || u.host_full.is_match(s) {
        return true;
    }
    // IP alternative with its negative look-aheads: try every position where
    // the host may start, i.e. where `^(scheme://)?(userinfo@)?` can end:
    // 0, after the scheme's "://", and after any '@' not at index 0
    // (`\S+(?::\S*)?@` accepts any non-empty whitespace-free user part).
    let ip_ok = |p: usize| {
        let r = &s[p..];
        !u.excl.is_match(r) && u.ip_rest.is_match(r)
    };
    if ip_ok(0) {
        return true;
    }
    if let Some(k) = s.find("://") {
        if u.pre.is_match(&s[..k + 3]) && ip_ok(k + 3) {
            return true;
        }
    }
    for (a, _) in s.match_indices('@') {
        if a > 0 && ip_ok(a + 1) {
            return true;
        }
    }
    false
}

impl UrlRes {
    fn excl_possible(&self, s: &str) -> bool {
        s.match_indices('1')
            .any(|(p, _)| self.excl.is_match(&s[p..]))
    }
}

// ---------------------------------------------------------------------------
// Final special-case pass (PhraseMatcher over the affix tokenization)
// ---------------------------------------------------------------------------

fn apply_special_merges(text: &str, toks: &mut Vec<(u32, u32)>, _sc: &mut Scratch) {
    let m = &*MATCHER;
    let tt = |t: (u32, u32)| &text[t.0 as usize..t.1 as usize];
    // collect all matches (start, end) in token indices
    let mut spans: Vec<(usize, usize)> = Vec::new();
    for i in 0..toks.len().saturating_sub(1) {
        let t = tt(toks[i]);
        if t.len() > m.max_first_len || !m.first[t.as_bytes()[0] as usize] {
            continue;
        }
        if let Some(pats) = m.by_first.get(t) {
            for pat in pats {
                if i + pat.len() <= toks.len()
                    && pat[1..]
                        .iter()
                        .enumerate()
                        .all(|(k, p)| tt(toks[i + 1 + k]) == *p)
                {
                    spans.push((i, i + pat.len()));
                }
            }
        }
    }
    if spans.is_empty() {
        return;
    }
    // _filter_special_spans: longest first, then smallest start first
    spans.sort_by(|a, b| (b.1 - b.0).cmp(&(a.1 - a.0)).then(a.0.cmp(&b.0)));
    spans.dedup();
    let mut seen = std::collections::HashSet::new();
    let mut filtered = Vec::new();
    for &(a, b) in &spans {
        if !seen.contains(&a) && !seen.contains(&(b - 1)) {
            filtered.push((a, b));
        }
        for k in a..b {
            seen.insert(k);
        }
    }
    filtered.sort();
    // _retokenize_special_spans
    let mut out = Vec::with_capacity(toks.len());
    let mut i = 0usize;
    let mut fi = 0usize;
    while i < toks.len() {
        if fi < filtered.len() && filtered[fi].0 == i {
            let (a, b) = filtered[fi];
            fi += 1;
            let st = toks[a].0 as usize;
            let en = toks[b - 1].1 as usize;
            if let Some(parts) = special(&text[st..en]) {
                push_special(&mut out, st, parts);
            } else {
                out.extend_from_slice(&toks[a..b]);
            }
            i = b;
        } else {
            out.push(toks[i]);
            i += 1;
        }
    }
    *toks = out;
}

// ---------------------------------------------------------------------------
// Generated tables (tools/spacy_en/gen.py, spaCy 3.8.18)
// ---------------------------------------------------------------------------
include!("tables.rs");
