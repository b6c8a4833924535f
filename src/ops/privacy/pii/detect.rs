//! Finding personal data and secrets in a text: a candidate finder per
//! kind (a regular expression in ASCII mode, or a scan from `@`), then the
//! checks that turn a candidate of the right shape into a finding — its
//! boundaries (not part of a longer number or word), its checksum where it
//! has one, and its context (a number after `ISBN` or `version` is not a
//! phone number or an IP address).

use std::net::{Ipv4Addr, Ipv6Addr};

use regex::bytes::Regex;
use serde::{Deserialize, Serialize};

use super::validate;

/// What a span of text is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Email,
    Ip,
    Phone,
    CnId,
    CreditCard,
    Iban,
    Secret,
}

impl Kind {
    pub const ALL: [Kind; 7] = [
        Kind::Email,
        Kind::Ip,
        Kind::Phone,
        Kind::CnId,
        Kind::CreditCard,
        Kind::Iban,
        Kind::Secret,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Email => "email",
            Kind::Ip => "ip",
            Kind::Phone => "phone",
            Kind::CnId => "cn_id",
            Kind::CreditCard => "credit_card",
            Kind::Iban => "iban",
            Kind::Secret => "secret",
        }
    }

    /// The text `mode = "replace"` puts in its place.
    pub fn placeholder(self) -> &'static str {
        match self {
            Kind::Email => "<EMAIL>",
            Kind::Ip => "<IP_ADDRESS>",
            Kind::Phone => "<PHONE>",
            Kind::CnId => "<CN_ID>",
            Kind::CreditCard => "<CREDIT_CARD>",
            Kind::Iban => "<IBAN>",
            Kind::Secret => "<SECRET>",
        }
    }

    /// Which of two overlapping findings wins (higher first): the more
    /// specific shape, checked by the stronger test.
    fn priority(self) -> u8 {
        match self {
            Kind::Secret => 7,
            Kind::Email => 6,
            Kind::CnId => 5,
            Kind::Iban => 4,
            Kind::CreditCard => 3,
            Kind::Ip => 2,
            Kind::Phone => 1,
        }
    }
}

/// A finding: bytes `start..end` of the text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub start: usize,
    pub end: usize,
    pub kind: Kind,
}

/// The finders of the kinds a step asked for, compiled once per step.
pub struct Detector {
    kinds: Vec<Kind>,
    /// Flag private, loopback and documentation addresses too.
    private_ips: bool,
    ipv4: Regex,
    ipv6: Regex,
    phone: Regex,
    digits: Regex,
    iban: Regex,
    secret: Regex,
}

fn re(pattern: &str) -> Regex {
    Regex::new(pattern).unwrap_or_else(|e| panic!("bug: PII pattern {pattern}: {e}"))
}

impl Detector {
    pub fn new(kinds: &[Kind], private_ips: bool) -> Detector {
        Detector {
            kinds: kinds.to_vec(),
            private_ips,
            ipv4: re(r"(?-u)[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}"),
            // Groups of hex digits with at least two colons; an embedded
            // IPv4 tail allowed. std's parser decides what is an address.
            ipv6: re(r"(?i-u)[0-9a-f]{0,4}(?::[0-9a-f]{0,4}){2,7}(?:\.[0-9]{1,3}){0,3}"),
            // International (+ or 00 and a country code), US/NANP, Chinese
            // mobile and landline, European national forms. Each branch
            // is a shape; the digit counts are checked after.
            phone: re(concat!(
                r"(?-u)(?:\+|00)[1-9][0-9]{0,3}(?:[ .\-]?\(?[0-9]{1,5}\)?){1,6}",
                // Spaces alone (`250 300 4000`) are columns of numbers.
                r"|(?:1[ .\-])?(?:\([2-9][0-9]{2}\) ?|[2-9][0-9]{2}[.\-])[2-9][0-9]{2}[.\-][0-9]{4}",
                r"|1[3-9][0-9](?:[0-9]{8}|[ \-][0-9]{4}[ \-][0-9]{4})",
                r"|\(0[1-9][0-9]{1,2}\) ?[2-9][0-9]{6,7}|0[1-9][0-9]{1,2}-[2-9][0-9]{6,7}",
                r"|0[1-9](?:[ .][0-9]{2}){4}",
                r"|0[1-9][0-9]{1,3}[ /][0-9]{3,8}(?: [0-9]{3,4})?",
            )),
            // Cards (digits, optionally grouped) and Chinese identity numbers.
            digits: re(r"(?-u)[0-9]{4}(?:[ \-]?[0-9]{2,7}){1,5}[0-9Xx]?"),
            iban: re(r"(?-u)[A-Z]{2}[0-9]{2} ?[A-Z0-9]{4}"),
            // Dolma's secrets (detect-secrets) and today's common API-token
            // shapes; private keys as whole PEM blocks.
            secret: re(concat!(
                r"(?-u)(?:A3T[A-Z0-9]|AKIA|ABIA|ACCA|ASIA)[A-Z0-9]{16}",
                r"|gh[pousr]_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9_]{82}",
                r"|glpat-[A-Za-z0-9_\-]{20}|npm_[A-Za-z0-9]{36}|hf_[A-Za-z]{34}",
                r"|xox[aboprs]-[0-9]+-[0-9A-Za-z\-]{8,}",
                r"|https://hooks\.slack\.com/services/T[A-Za-z0-9_]{8,}/B[A-Za-z0-9_]{8,}/[A-Za-z0-9_]{20,}",
                r"|[rs]k_live_[0-9A-Za-z]{24,99}|AIza[0-9A-Za-z_\-]{35}",
                r"|sk-(?:proj-)?[A-Za-z0-9_\-]{20,}T3BlbkFJ[A-Za-z0-9_\-]{20,}",
                r"|sk-ant-(?:api|admin)[0-9]{2}-[A-Za-z0-9_\-]{80,}",
                r"|eyJ[A-Za-z0-9_\-]{10,}\.eyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}",
                r"|-----BEGIN (?:RSA |DSA |EC |OPENSSH |PGP |SSH2 ENCRYPTED |ENCRYPTED )?PRIVATE KEY(?: BLOCK)?-----",
                // To its END line; without one (a truncated key), its
                // base64 lines only, not the rest of the text.
                r"(?:(?s:.*?)-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|(?:\r?\n[A-Za-z0-9+/=]{16,})*)",
            )),
        }
    }

    /// The findings in `text`, in order, none overlapping (where two
    /// overlap, the higher-priority kind wins, then the earlier, then the
    /// longer).
    pub fn find(&self, text: &str) -> Vec<Span> {
        let mut spans = vec![];
        let b = text.as_bytes();
        let has = |k| self.kinds.contains(&k);
        if has(Kind::Secret) {
            self.secrets(text, &mut spans);
        }
        if has(Kind::Email) && memchr::memchr(b'@', b).is_some() {
            emails(b, &mut spans);
        }
        // Everything else has digits in it: most texts do, but a text
        // without any is done.
        if !b.iter().any(u8::is_ascii_digit) {
            return resolve(spans);
        }
        if has(Kind::CnId) || has(Kind::CreditCard) {
            self.digit_runs(text, has(Kind::CnId), has(Kind::CreditCard), &mut spans);
        }
        if has(Kind::Iban) {
            self.ibans(text, &mut spans);
        }
        if has(Kind::Ip) {
            self.ips(text, &mut spans);
        }
        if has(Kind::Phone) {
            self.phones(text, &mut spans);
        }
        resolve(spans)
    }

    fn secrets(&self, text: &str, out: &mut Vec<Span>) {
        let b = text.as_bytes();
        for m in self.secret.find_iter(b) {
            // A token inside a longer word is some other string.
            let pem = b[m.start()] == b'-';
            if !pem && (word_byte_before(b, m.start()) || word_byte(b.get(m.end()))) {
                continue;
            }
            out.push(Span {
                start: m.start(),
                end: m.end(),
                kind: Kind::Secret,
            });
        }
    }

    /// Runs of digits (optionally grouped by spaces or hyphens): Chinese
    /// identity numbers and payment cards.
    fn digit_runs(&self, text: &str, ids: bool, cards: bool, out: &mut Vec<Span>) {
        let b = text.as_bytes();
        let mut from = 0;
        while let Some(m) = self.digits.find_at(b, from) {
            from = m.end();
            let before = b.get(m.start().wrapping_sub(1)).copied();
            if alnum_before(b, m.start())
                || matches!(
                    before,
                    Some(b'.' | b'/' | b'=' | b'#' | b'&' | b'?' | b'_' | b'+')
                )
            {
                // Inside a longer number or word, or an identifier in a URL
                // (`/posts/2395361813834269`): skip the whole run.
                from = skip_digits(b, m.end());
                continue;
            }
            let run = &b[m.start()..m.end()];
            // A bare 18-character identity number, alone or first in a run
            // (`110101199003074514 13800138000`: the greedy run took the
            // phone number after it too).
            if run.len() >= 18
                && run[..17].iter().all(u8::is_ascii_digit)
                && matches!(run[17], b'0'..=b'9' | b'X' | b'x')
                && !alnum(b.get(m.start() + 18))
            {
                let id = &run[..18];
                let id_end = m.start() + 18;
                if ids && validate::cn_id(id) {
                    out.push(span(m.start(), id_end, Kind::CnId));
                    from = id_end;
                    continue;
                }
                if validate::cn_id_shape(id) {
                    // The shape of an identity number with a wrong check:
                    // not a card number either.
                    from = id_end;
                    continue;
                }
            }
            if cards {
                if let Some((start, end)) = card(b, m.start(), m.end()) {
                    out.push(span(start, end, Kind::CreditCard));
                    from = end;
                }
            }
        }
    }

    fn ibans(&self, text: &str, out: &mut Vec<Span>) {
        let b = text.as_bytes();
        let mut from = 0;
        while let Some(m) = self.iban.find_at(b, from) {
            from = m.start() + 1;
            if alnum_before(b, m.start()) {
                continue;
            }
            let Some(len) = validate::iban_length(&b[m.start()..m.start() + 2]) else {
                continue;
            };
            // Collect `len` characters, single spaces allowed between groups.
            let mut chars = Vec::with_capacity(len);
            let mut i = m.start();
            while i < b.len() && chars.len() < len {
                match b[i] {
                    c @ (b'A'..=b'Z' | b'0'..=b'9') => chars.push(c),
                    b' ' if i + 1 < b.len()
                        && b[i + 1].is_ascii_alphanumeric()
                        && chars.len() >= 4 => {}
                    _ => break,
                }
                i += 1;
            }
            if chars.len() == len && !alnum(b.get(i)) && validate::iban_mod97(&chars) {
                out.push(span(m.start(), i, Kind::Iban));
                from = i;
            }
        }
    }

    fn ips(&self, text: &str, out: &mut Vec<Span>) {
        let b = text.as_bytes();
        let mut from = 0;
        while let Some(m) = self.ipv4.find_at(b, from) {
            from = m.end();
            let (s, e) = (m.start(), m.end());
            // Part of a longer dotted run (1.2.3.4.5, 10.0.0.1.2), a word
            // (v1.2.3.4) or a number.
            let before = b.get(s.wrapping_sub(1)).copied();
            let dotted_after = b.get(e) == Some(&b'.') && alnum(b.get(e + 1));
            // `Chrome/120.0.0.0`, `Version=4.0.0.0`: not an address.
            if matches!(before, Some(c) if c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'/' | b'='))
                || alnum(b.get(e))
                || dotted_after
            {
                from = skip_dotted(b, e);
                continue;
            }
            let Ok(ip) = std::str::from_utf8(m.as_bytes())
                .unwrap_or("")
                .parse::<Ipv4Addr>()
            else {
                continue; // an octet over 255 or with a leading zero
            };
            if ip.octets()[3] == 0 {
                // A network's address (`91.198.174.0`), or a version
                // (`1.0.0.0`): no host has it.
                continue;
            }
            if version_context(b, s) || number_context(b, s) {
                continue;
            }
            if self.private_ips || validate::ipv4_global(ip) {
                out.push(span(s, e, Kind::Ip));
            }
        }
        if memchr::memchr(b':', b).is_none() {
            return;
        }
        let mut from = 0;
        while let Some(m) = self.ipv6.find_at(b, from) {
            from = m.end().max(m.start() + 1);
            let (s, e) = (m.start(), m.end());
            let cand = std::str::from_utf8(m.as_bytes()).unwrap_or("");
            if alnum_before(b, s)
                || matches!(b.get(s.wrapping_sub(1)), Some(b':' | b'.'))
                || alnum(b.get(e))
                || matches!(b.get(e), Some(b':'))
                || !cand.bytes().any(|c| c.is_ascii_digit())
                || cand.bytes().filter(|&c| c == b':').count() < 2
            {
                continue;
            }
            let Ok(ip) = cand.parse::<Ipv6Addr>() else {
                continue;
            };
            // `a:b::` and Python's slices (`x[1::2]`) parse, but addresses
            // in text have at least three groups (an IPv4 tail is two).
            let groups: usize = cand
                .split(':')
                .filter(|g| !g.is_empty())
                .map(|g| if g.contains('.') { 2 } else { 1 })
                .sum();
            if groups < 3 {
                continue;
            }
            if self.private_ips || validate::ipv6_global(ip) {
                out.push(span(s, e, Kind::Ip));
            }
        }
    }

    fn phones(&self, text: &str, out: &mut Vec<Span>) {
        let b = text.as_bytes();
        let mut from = 0;
        while let Some(m) = self.phone.find_at(b, from) {
            let (s, mut e) = (m.start(), m.end());
            from = e.max(s + 1);
            // The greedy international form may run into what follows:
            // cut trailing separators and unbalanced parentheses.
            while e > s && matches!(b[e - 1], b' ' | b'.' | b'-' | b'(') {
                e -= 1;
            }
            let mut cand = &b[s..e];
            // `+1 415 555 2671 1234`: the greedy form took a number after
            // it; whole groups come off the end until E.164's 15 digits.
            if cand[0] == b'+' {
                while cand.iter().filter(|c| c.is_ascii_digit()).count() > 15 {
                    match cand.iter().rposition(|&c| matches!(c, b' ' | b'-' | b'.')) {
                        Some(p) if p > 0 => cand = &cand[..p],
                        _ => break,
                    }
                }
                e = s + cand.len();
            }
            let before = b.get(s.wrapping_sub(1)).copied();
            if matches!(before, Some(c) if c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'/' | b'_' | b'+'))
                // `1,555-123-4567` is a number; `Doe,555-123-4567` a CSV field.
                || (before == Some(b',') && s >= 2 && b[s - 2].is_ascii_digit())
                || alnum(b.get(e))
                || (matches!(b.get(e), Some(b'.' | b'-' | b'/' | b',')) && digit(b.get(e + 1)))
                // The rest of a grouped number (an IBAN's `0044 0532`):
                // a short group of digits just before.
                || short_group_before(b, s)
            {
                from = skip_dotted(b, e);
                continue;
            }
            let digits = cand.iter().filter(|c| c.is_ascii_digit()).count();
            let international = cand[0] == b'+' || cand.starts_with(b"00");
            // `0022.06.2018`: dotted groups after 00 are a date or a
            // version, not a dialling prefix.
            let ok = if international && cand[0] == b'0' && cand.contains(&b'.') {
                false
            } else if international {
                // E.164: country code and number, 8 to 15 digits; the
                // 00 prefix is not part of the number.
                let n = if cand[0] == b'+' { digits } else { digits - 2 };
                (8..=15).contains(&n)
                    && balanced(cand)
                    && (cand[0] == b'+' || cand.iter().any(|c| matches!(c, b' ' | b'-')))
            } else {
                (10..=12).contains(&digits) && balanced(cand) && consistent_separators(cand)
            };
            if !ok || isbn_context(b, s) || version_context(b, s) {
                continue;
            }
            out.push(span(s, e, Kind::Phone));
            from = e;
        }
    }
}

/// Whether a group of at most five digits and a space stand just before
/// `at`: `at` continues a grouped number.
fn short_group_before(b: &[u8], at: usize) -> bool {
    if at < 2 || b[at - 1] != b' ' || !b[at - 2].is_ascii_digit() {
        return false;
    }
    let digits = b[..at - 1]
        .iter()
        .rev()
        .take_while(|c| c.is_ascii_digit())
        .count();
    digits <= 5
}

fn span(start: usize, end: usize, kind: Kind) -> Span {
    Span { start, end, kind }
}

/// The findings sorted, overlaps settled by priority (then the earlier,
/// then the longer).
fn resolve(mut spans: Vec<Span>) -> Vec<Span> {
    if spans.len() < 2 {
        return spans;
    }
    spans.sort_by(|a, b| {
        a.start
            .cmp(&b.start)
            .then(b.kind.priority().cmp(&a.kind.priority()))
            .then(b.end.cmp(&a.end))
    });
    let mut kept: Vec<Span> = Vec::with_capacity(spans.len());
    for s in spans {
        // Overlapping kept spans of lower priority give way to this one.
        let mut wins = true;
        while let Some(last) = kept.last() {
            if last.end <= s.start {
                break;
            }
            if s.kind.priority() > last.kind.priority() {
                kept.pop();
            } else {
                wins = false;
                break;
            }
        }
        if wins {
            kept.push(s);
        }
    }
    kept
}

fn alnum(c: Option<&u8>) -> bool {
    c.is_some_and(u8::is_ascii_alphanumeric)
}

fn digit(c: Option<&u8>) -> bool {
    c.is_some_and(u8::is_ascii_digit)
}

fn word_byte(c: Option<&u8>) -> bool {
    c.is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-'))
}

fn word_byte_before(b: &[u8], at: usize) -> bool {
    at > 0 && word_byte(b.get(at - 1))
}

fn alnum_before(b: &[u8], at: usize) -> bool {
    at > 0 && b[at - 1].is_ascii_alphanumeric()
}

fn skip_digits(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && (b[i].is_ascii_alphanumeric() || matches!(b[i], b' ' | b'-')) {
        if b[i] == b' ' && !digit(b.get(i + 1)) {
            break;
        }
        i += 1;
    }
    i
}

fn skip_dotted(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && (b[i].is_ascii_alphanumeric() || matches!(b[i], b'.' | b'-' | b'/')) {
        i += 1;
    }
    i
}

/// A payment card number in a run of digits grouped by one kind of
/// separator (`start..end`), as its byte range: the first run of whole
/// groups, the longest first, with 13–19 digits, an issuer prefix and a
/// valid Luhn check. Groups are the card layouts (4-4-4-4, 4-6-5, 4-6-4,
/// 4-4-4-4-3) or none (the digits together); a card may follow another
/// number in the run (`2023 4111111111111111`).
fn card(b: &[u8], start: usize, end: usize) -> Option<(usize, usize)> {
    let mut run = &b[start..end];
    let sep = run.iter().find(|c| matches!(c, b' ' | b'-')).copied();
    // Another separator (or an `X`) ends the number: `4111-1111-1111-1111 2023`.
    if let Some(cut) = run
        .iter()
        .position(|&c| !c.is_ascii_digit() && Some(c) != sep)
    {
        run = &run[..cut];
    }
    if run.last().is_some_and(|c| !c.is_ascii_digit()) {
        run = &run[..run.len() - 1];
    }
    let groups: Vec<&[u8]> = match sep {
        None => vec![run],
        Some(s) => run.split(|&c| c == s).collect(),
    };
    if groups.iter().any(|g| g.is_empty()) {
        return None;
    }
    // Byte offset of each group in the run.
    let mut offsets = Vec::with_capacity(groups.len());
    let mut at = 0;
    for g in &groups {
        offsets.push(at);
        at += g.len() + 1;
    }
    for first in 0..groups.len() {
        for k in (first + 1..=groups.len()).rev() {
            let lens: Vec<usize> = groups[first..k].iter().map(|g| g.len()).collect();
            let layout_ok = k - first == 1
                || matches!(
                    lens.as_slice(),
                    [4, 4, 4, 4]
                        | [4, 6, 5]
                        | [4, 6, 4]
                        | [4, 4, 4, 4, 3]
                        | [4, 4, 4, 4, 2]
                        | [4, 4, 4, 1]
                );
            if !layout_ok {
                continue;
            }
            let digits: Vec<u8> = groups[first..k].concat();
            if !(13..=19).contains(&digits.len()) {
                continue;
            }
            if validate::card_prefix(&digits) && validate::luhn(&digits) {
                let s = start + offsets[first];
                return Some((s, s + lens.iter().sum::<usize>() + (k - first - 1)));
            }
        }
    }
    None
}

fn balanced(c: &[u8]) -> bool {
    let open = c.iter().filter(|&&x| x == b'(').count();
    let close = c.iter().filter(|&&x| x == b')').count();
    open == close && open <= 1
}

/// `555-123-4567`, `555.123.4567`, `(555) 123-4567`; not `555-123.4567`.
fn consistent_separators(c: &[u8]) -> bool {
    let seps: Vec<u8> = c
        .iter()
        .copied()
        .filter(|x| matches!(x, b'.' | b'-' | b'/'))
        .collect();
    seps.windows(2).all(|w| w[0] == w[1])
}

/// The lowercased ASCII word(s) just before `at` (up to 24 bytes).
fn before_lower(b: &[u8], at: usize) -> String {
    let from = at.saturating_sub(24);
    String::from_utf8_lossy(&b[from..at]).to_ascii_lowercase()
}

/// After `ISBN`, `DOI`, `ISSN` or `#` a number is an identifier, as
/// Dolma's PII tagger rules.
fn isbn_context(b: &[u8], at: usize) -> bool {
    let w = before_lower(b, at);
    let w = w.trim_end_matches([' ', ':', '-', '=', '\t']);
    w.ends_with("isbn")
        || w.ends_with("isbn-10")
        || w.ends_with("isbn-13")
        || w.ends_with("issn")
        || w.ends_with("doi")
        || w.ends_with('#')
        || w.ends_with("no.")
}

/// `version 1.2.3.4`, `v1.2.3.4`, `firmware 10.0.0.1`: a version number.
fn version_context(b: &[u8], at: usize) -> bool {
    let w = before_lower(b, at);
    let w = w.trim_end_matches([' ', ':', '\t', '=', '(', '"', '\'']);
    let last = w
        .rsplit(|c: char| !c.is_ascii_alphanumeric() && c != '.')
        .next()
        .unwrap_or("");
    // `AssemblyVersion("1.0.0.0")`, `FileVersion`: any word ending so.
    last.ends_with("version")
        || matches!(
            last,
            "v" | "ver"
                | "ver."
                | "versions"
                | "release"
                | "build"
                | "firmware"
                | "rev"
                | "revision"
                | "patch"
                | "update"
                | "kernel"
                | "driver"
                | "oid"
                | "sdk"
                | "bios"
                | "vers"
        )
}

/// `§ 1.2.3.4`, `section 1.2.3.4`, `table 1.2.3.4`: a section number.
fn number_context(b: &[u8], at: usize) -> bool {
    let w = before_lower(b, at);
    let w = w.trim_end_matches([' ', '\t']);
    w.ends_with('§')
        || w.ends_with("section")
        || w.ends_with("chapter")
        || w.ends_with("table")
        || w.ends_with("figure")
        || w.ends_with("fig.")
        || w.ends_with("clause")
        || w.ends_with("article")
}

/// Characters of an e-mail address's local part.
fn local_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'%' | b'+' | b'-')
}

/// E-mail addresses, from each `@`: a local part of up to 64 characters
/// and a domain of two or more labels whose last (the top-level domain) is
/// letters, not an image extension (`logo@2x.png`).
fn emails(b: &[u8], out: &mut Vec<Span>) {
    let mut last_end = 0;
    for at in memchr::memchr_iter(b'@', b) {
        if at < last_end {
            continue;
        }
        let mut s = at;
        while s > 0 && local_byte(b[s - 1]) && at - s < 64 {
            s -= 1;
        }
        while s < at && matches!(b[s], b'.' | b'-' | b'+') {
            s += 1;
        }
        if s == at || b[at - 1] == b'.' || alnum_before(b, s) {
            continue;
        }
        let mut e = at + 1;
        while e < b.len() && (b[e].is_ascii_alphanumeric() || matches!(b[e], b'.' | b'-')) {
            e += 1;
        }
        // A sentence's full stop is not part of the domain.
        while e > at + 1 && matches!(b[e - 1], b'.' | b'-') {
            e -= 1;
        }
        // `…@almamedia.fiAsiakastuki`: a word glued to the address starts
        // with a capital after the lowercase top-level domain.
        if let Some(dot) = b[at + 1..e].iter().rposition(|&c| c == b'.') {
            let tld = at + 1 + dot + 1;
            if let Some(k) =
                (tld + 2..e).find(|&k| b[k].is_ascii_uppercase() && b[k - 1].is_ascii_lowercase())
            {
                e = k;
            }
        }
        let domain = &b[at + 1..e];
        let labels: Vec<&[u8]> = domain.split(|&c| c == b'.').collect();
        let tld = labels.last().copied().unwrap_or(b"");
        if labels.len() < 2
            || labels
                .iter()
                .any(|l| l.is_empty() || l[0] == b'-' || l[l.len() - 1] == b'-')
            || tld.len() < 2
            || !tld.iter().all(u8::is_ascii_alphabetic)
            || IMAGE_EXTENSIONS
                .iter()
                .any(|x| x.as_bytes().eq_ignore_ascii_case(tld))
            || b.get(e) == Some(&b'@')
        {
            continue;
        }
        out.push(span(s, e, Kind::Email));
        last_end = e;
    }
}

const IMAGE_EXTENSIONS: &[&str] = &[
    "png", "jpg", "jpeg", "gif", "svg", "webp", "bmp", "ico", "tif", "tiff",
];
