//! Checksums and ranges that decide whether a candidate is the real thing:
//! most false positives of PII detection are numbers of the right shape
//! that fail the check their issuer built into them.

use std::net::{Ipv4Addr, Ipv6Addr};

/// The Luhn check of payment card numbers (ISO/IEC 7812).
pub fn luhn(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, d) in digits.iter().rev().enumerate() {
        let mut v = (d - b'0') as u32;
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum.is_multiple_of(10)
}

/// Whether a card number of this length has an issuer prefix in use
/// (Visa, Mastercard, American Express, Discover, JCB, UnionPay, Diners,
/// Maestro): a Luhn-valid run of digits with no known prefix is some other
/// number (an order or tracking number).
pub fn card_prefix(d: &[u8]) -> bool {
    let n = d.len();
    let p = |k: usize| -> u32 { d[..k].iter().fold(0u32, |a, &c| a * 10 + (c - b'0') as u32) };
    match d[0] {
        b'4' => matches!(n, 13 | 16 | 19),
        b'5' => (51..=55).contains(&p(2)) && n == 16 || matches!(p(2), 50 | 56..=59) && n >= 12,
        b'2' => (2221..=2720).contains(&p(4)) && n == 16,
        b'3' => {
            matches!(p(2), 34 | 37) && n == 15
                || (3528..=3589).contains(&p(4)) && (16..=19).contains(&n)
                || (matches!(p(2), 36 | 38 | 39) || (300..=305).contains(&p(3)) || p(3) == 309)
                    && (14..=19).contains(&n)
        }
        b'6' => {
            (16..=19).contains(&n)
                && (p(4) == 6011 || p(2) == 65 || p(2) == 62 || (644..=649).contains(&p(3)))
                || matches!(p(2), 60 | 63 | 67 | 68 | 69) && n >= 12
        }
        _ => false,
    }
}

/// The length of an IBAN for each country that issues them (SWIFT's IBAN
/// registry); a country not listed has none.
pub fn iban_length(country: &[u8]) -> Option<usize> {
    const TABLE: &[(&[u8; 2], usize)] = &[
        (b"AD", 24),
        (b"AE", 23),
        (b"AL", 28),
        (b"AT", 20),
        (b"AZ", 28),
        (b"BA", 20),
        (b"BE", 16),
        (b"BG", 22),
        (b"BH", 22),
        (b"BR", 29),
        (b"BY", 28),
        (b"CH", 21),
        (b"CR", 22),
        (b"CY", 28),
        (b"CZ", 24),
        (b"DE", 22),
        (b"DK", 18),
        (b"DO", 28),
        (b"EE", 20),
        (b"EG", 29),
        (b"ES", 24),
        (b"FI", 18),
        (b"FO", 18),
        (b"FR", 27),
        (b"GB", 22),
        (b"GE", 22),
        (b"GI", 23),
        (b"GL", 18),
        (b"GR", 27),
        (b"GT", 28),
        (b"HR", 21),
        (b"HU", 28),
        (b"IE", 22),
        (b"IL", 23),
        (b"IQ", 23),
        (b"IS", 26),
        (b"IT", 27),
        (b"JO", 30),
        (b"KW", 30),
        (b"KZ", 20),
        (b"LB", 28),
        (b"LC", 32),
        (b"LI", 21),
        (b"LT", 20),
        (b"LU", 20),
        (b"LV", 21),
        (b"MC", 27),
        (b"MD", 24),
        (b"ME", 22),
        (b"MK", 19),
        (b"MR", 27),
        (b"MT", 31),
        (b"MU", 30),
        (b"NL", 18),
        (b"NO", 15),
        (b"PK", 24),
        (b"PL", 28),
        (b"PS", 29),
        (b"PT", 25),
        (b"QA", 29),
        (b"RO", 24),
        (b"RS", 22),
        (b"SA", 24),
        (b"SC", 31),
        (b"SE", 24),
        (b"SI", 19),
        (b"SK", 24),
        (b"SM", 27),
        (b"ST", 25),
        (b"SV", 28),
        (b"TL", 23),
        (b"TN", 24),
        (b"TR", 26),
        (b"UA", 29),
        (b"VA", 22),
        (b"VG", 24),
        (b"XK", 20),
        (b"RU", 33),
        (b"LY", 25),
        (b"SD", 18),
        (b"BI", 27),
        (b"DJ", 27),
        (b"SO", 23),
        (b"NI", 28),
        (b"MN", 20),
        (b"FK", 18),
        (b"OM", 23),
        (b"YE", 30),
    ];
    TABLE
        .iter()
        .find(|(c, _)| c[..] == *country)
        .map(|(_, n)| *n)
}

/// ISO 13616's check: the country code and check digits moved to the end,
/// letters as 10–35, the number mod 97 is 1. `iban` holds no spaces.
pub fn iban_mod97(iban: &[u8]) -> bool {
    let mut r = 0u32;
    for &c in iban[4..].iter().chain(&iban[..4]) {
        match c {
            b'0'..=b'9' => r = (r * 10 + (c - b'0') as u32) % 97,
            b'A'..=b'Z' => r = (r * 100 + (c - b'A') as u32 + 10) % 97,
            _ => return false,
        }
    }
    r == 1
}

/// A mainland China resident identity number (GB 11643-1999): a province
/// code in use, a birth date that exists, and the ISO 7064 MOD 11-2 check
/// character. `id` is 18 bytes, the last a digit or `X`.
pub fn cn_id(id: &[u8]) -> bool {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: &[u8; 11] = b"10X98765432";
    if !cn_id_shape(id) {
        return false;
    }
    let sum: u32 = id[..17]
        .iter()
        .zip(WEIGHTS)
        .map(|(&c, w)| (c - b'0') as u32 * w)
        .sum();
    CHECK[(sum % 11) as usize] == id[17].to_ascii_uppercase()
}

/// The shape of an identity number, whatever its check character says:
/// 17 digits then a digit or `X`, a province code in use and a birth date
/// that exists. (Such a number with a wrong check is not a card either.)
pub fn cn_id_shape(id: &[u8]) -> bool {
    if id.len() != 18 || !id[..17].iter().all(u8::is_ascii_digit) {
        return false;
    }
    let num =
        |r: std::ops::Range<usize>| id[r].iter().fold(0u32, |a, &c| a * 10 + (c - b'0') as u32);
    matches!(num(0..2), 11..=15 | 21..=23 | 31..=37 | 41..=46 | 50..=54 | 61..=65 | 71 | 81..=83 | 91)
        && valid_date(num(6..10), num(10..12), num(12..14))
}

/// A calendar date between 1900 and 2099.
pub fn valid_date(year: u32, month: u32, day: u32) -> bool {
    if !(1900..=2099).contains(&year) || !(1..=12).contains(&month) || day == 0 {
        return false;
    }
    let leap = year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400));
    let days = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    day <= days
}

/// Whether an IPv4 address is publicly routable: Python's
/// `ipaddress.IPv4Address.is_global` (which datatrove's PII formatter uses),
/// written out because Rust's `Ipv4Addr::is_global` is not stable.
pub fn ipv4_global(ip: Ipv4Addr) -> bool {
    let [a, b, c, d] = ip.octets();
    let private = a == 0
        || a == 10
        || a == 127
        || (a == 100 && (64..128).contains(&b))
        || (a == 169 && b == 254)
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 0 && c == 0 && !matches!(d, 9 | 10))
        || (a == 192 && b == 0 && c == 2)
        || (a == 192 && b == 168)
        || (a == 198 && (b == 18 || b == 19))
        || (a == 198 && b == 51 && c == 100)
        || (a == 203 && b == 0 && c == 113)
        || a >= 224; // multicast, reserved (240/4) and broadcast
    !private
}

/// Whether an IPv6 address is publicly routable: not unspecified, loopback,
/// unique-local (fc00::/7), link-local (fe80::/10), documentation
/// (2001:db8::/32), discard (100::/64), the IETF protocol block
/// (2001::/23), multicast, nor an IPv4-mapped address of a private one.
pub fn ipv6_global(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    if let Some(v4) = ip.to_ipv4_mapped() {
        return ipv4_global(v4);
    }
    !(ip.is_unspecified()
        || ip.is_loopback()
        || (s[0] & 0xfe00) == 0xfc00
        || (s[0] & 0xffc0) == 0xfe80
        || (s[0] == 0x2001 && s[1] == 0x0db8)
        || (s[0] == 0x0100 && s[1] == 0 && s[2] == 0 && s[3] == 0)
        || (s[0] == 0x2001 && s[1] < 0x0200)
        || (s[0] & 0xff00) == 0xff00
        || s[..6] == [0; 6]) // IPv4-compatible (deprecated) and other ::/96
}
