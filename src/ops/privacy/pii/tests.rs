use super::detect::{Detector, Kind};
use super::validate;

fn all() -> Detector {
    Detector::new(&Kind::ALL, false)
}

/// The (text, kind) of each finding.
fn found(text: &str) -> Vec<(String, Kind)> {
    all()
        .find(text)
        .into_iter()
        .map(|s| (text[s.start..s.end].to_string(), s.kind))
        .collect()
}

fn one(text: &str, want: &str, kind: Kind) {
    let f = found(text);
    assert_eq!(f, vec![(want.to_string(), kind)], "in {text:?}");
}

fn none(text: &str) {
    assert_eq!(found(text), vec![], "in {text:?}");
}

#[test]
fn checksums_of_published_examples() {
    // ISO 13616's, the Bundesbank's and the UK's example IBANs.
    for iban in [
        "DE89370400440532013000",
        "GB82WEST12345698765432",
        "FR1420041010050500013M02606",
        "NL91ABNA0417164300",
    ] {
        assert!(validate::iban_mod97(iban.as_bytes()), "{iban}");
    }
    assert!(!validate::iban_mod97(b"DE89370400440532013001"));
    // GB 11643-1999's example.
    assert!(validate::cn_id(b"11010519491231002X"));
    assert!(!validate::cn_id(b"110105194912310021"));
    assert!(!validate::cn_id(b"11010519490231002X"), "31 February");
    for card in [
        "4111111111111111",
        "5500000000000004",
        "378282246310005",
        "6011111111111117",
        "3530111333300000",
    ] {
        assert!(
            validate::luhn(card.as_bytes()) && validate::card_prefix(card.as_bytes()),
            "{card}"
        );
    }
    assert!(!validate::luhn(b"4111111111111112"));
}

#[test]
fn emails() {
    one(
        "write to jane.doe+news@mail.example.co.uk.",
        "jane.doe+news@mail.example.co.uk",
        Kind::Email,
    );
    one(
        "联系邮箱：zhang_san@163.com，谢谢",
        "zhang_san@163.com",
        Kind::Email,
    );
    none("follow @sluice on the site");
    none("ssh root@localhost");
    none("the icon logo@2x.png is sharper");
    none("a@b");
    // Web text glues the next word on; a capital letter after the domain starts it.
    one(
        "kl.asiakaspalvelu@almamedia.fiAsiakastuki",
        "kl.asiakaspalvelu@almamedia.fi",
        Kind::Email,
    );
}

#[test]
fn ip_addresses() {
    one("the server at 8.8.8.8 answered", "8.8.8.8", Kind::Ip);
    one(
        "connect to 2001:4860:4860::8888 now",
        "2001:4860:4860::8888",
        Kind::Ip,
    );
    one("mapped ::ffff:8.8.4.4 too", "::ffff:8.8.4.4", Kind::Ip);
    none("the router 192.168.1.1 and 10.0.0.1 and 127.0.0.1");
    none("docs use 192.0.2.44 and 2001:db8::1 and fe80::1ff:fe23:4567:890a");
    none("upgrade to version 1.2.3.4 today");
    none("requires v1.2.3.4 or later");
    none("OID 1.3.6.1.4.1.311 is long");
    none("see section 4.2.1.3 for details");
    none("at 12:30:45 sharp, MAC 00:1A:2B:3C:4D:5E");
    none("999.1.1.1 is not an address; nor is 01.02.03.04");
    none("use std::collections::HashMap;");
    let private = Detector::new(&[Kind::Ip], true);
    assert_eq!(private.find("host 10.0.0.1").len(), 1);
}

#[test]
fn phone_numbers() {
    one(
        "call +1 (415) 555-2671 today",
        "+1 (415) 555-2671",
        Kind::Phone,
    );
    one("call +44 20 7946 0958.", "+44 20 7946 0958", Kind::Phone);
    one("手机：13812345678，随时联系", "13812345678", Kind::Phone);
    one("电话 +86 138 1234 5678", "+86 138 1234 5678", Kind::Phone);
    one("座机 010-62751234 转 8", "010-62751234", Kind::Phone);
    one("office (415) 555-2671", "(415) 555-2671", Kind::Phone);
    one("toll free 1-800-555-0199", "1-800-555-0199", Kind::Phone);
    one("Tél. 01 23 45 67 89", "01 23 45 67 89", Kind::Phone);
    one("Tel. 030 12345678", "030 12345678", Kind::Phone);
    one("ring 0049 30 1234567", "0049 30 1234567", Kind::Phone);
    none("ISBN 0-306-40615-2 and ISBN 978-0-306-40615-7");
    none("on 2023-12-05 and 05.12.2023 and 12/05/2023");
    none("version 415.555.2671");
    none("order 202312051234567890 shipped");
    none("pi is 3.14159265358979");
    none("between 1990 and 2000, 3 of 10 people");
    none("18-06-22 10:20:0022.06.2018 10:21");
}

#[test]
fn identity_numbers_and_cards_and_ibans() {
    one(
        "身份证号 11010519491231002X 已登记",
        "11010519491231002X",
        Kind::CnId,
    );
    none("身份证号 110105194912310021 校验错");
    one(
        "card 4111 1111 1111 1111 exp 12/29",
        "4111 1111 1111 1111",
        Kind::CreditCard,
    );
    one(
        "amex 3782-822463-10005.",
        "3782-822463-10005",
        Kind::CreditCard,
    );
    one(
        "card 4111-1111-1111-1111 2029",
        "4111-1111-1111-1111",
        Kind::CreditCard,
    );
    one(
        "no 5500000000000004 here",
        "5500000000000004",
        Kind::CreditCard,
    );
    none("card 4111 1111 1111 1112 is wrong");
    none("ISBN 9780306406157");
    none("tracking 1234567812345670 is not a card");
    none("facebook.com/parcoabruzzo/posts/2395361813834269 and ?id=4111111111111111");
    one(
        "IBAN DE89 3704 0044 0532 0130 00 (Bank)",
        "DE89 3704 0044 0532 0130 00",
        Kind::Iban,
    );
    one(
        "pay to GB82WEST12345698765432.",
        "GB82WEST12345698765432",
        Kind::Iban,
    );
    none("IBAN DE89 3704 0044 0532 0130 01 is mistyped");
}

#[test]
fn secrets() {
    one(
        "aws_access_key_id = AKIAIOSFODNN7EXAMPLE",
        "AKIAIOSFODNN7EXAMPLE",
        Kind::Secret,
    );
    let gh = format!("token ghp_{} ok", "a1B2".repeat(9));
    one(&gh, &gh[6..46], Kind::Secret);
    let pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\nAAAA\n-----END RSA PRIVATE KEY-----";
    one(&format!("key:\n{pem}\nthanks"), pem, Kind::Secret);
    let stripe = format!("sk_live_{}", "x9Y8".repeat(6));
    one(&format!("stripe {stripe}"), &stripe, Kind::Secret);
    none("AKIAIOSFODNN7EXAMPLEXYZ is too long; XAKIAIOSFODNN7EXAMPLE too");
    none("-----BEGIN PUBLIC KEY----- is public");
}

#[test]
fn overlaps_go_to_the_more_specific_kind() {
    // A card number is also a run of digits a phone pattern could take.
    let f = found("pay 4111111111111111, mail a@b.example.org, call 13812345678");
    let kinds: Vec<Kind> = f.iter().map(|x| x.1).collect();
    assert_eq!(kinds, vec![Kind::CreditCard, Kind::Email, Kind::Phone]);
}

#[test]
fn a_text_without_findings_is_untouched_and_cheap() {
    none("Plain prose with numbers 12, 345 and 6.78 but nothing personal.");
    none("");
    none("中文文本，没有个人信息。");
}

/// What the review of the first version found: each a real text's shape.
#[test]
fn review_cases() {
    none("Mozilla/5.0 (X11) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.0.0");
    none("System.Core, Version=4.0.0.0, Culture=neutral");
    none("[assembly: AssemblyVersion(\"1.0.0.2\")]");
    none("x[1::2] and df.iloc[10::10] and s[a::2]");
    none("the network 91.198.174.0 is routed");
    // An identity number with a phone number after it, as in a table row.
    let id = (0..10)
        .map(|d| format!("1101011990030745{d}"))
        .flat_map(|b| (0..10).map(move |d| format!("{b}{d}")))
        .find(|id| validate::cn_id(id.as_bytes()))
        .unwrap();
    let row = format!("{id} 13800138000");
    assert_eq!(
        found(&row),
        vec![
            (id.clone(), Kind::CnId),
            ("13800138000".to_string(), Kind::Phone)
        ]
    );
    one(
        "paid 2023 4111111111111111 ok",
        "4111111111111111",
        Kind::CreditCard,
    );
    one("ruf an +4915112345678 bitte", "+4915112345678", Kind::Phone);
    one("Doe,415-555-2671,NY", "415-555-2671", Kind::Phone);
    one(
        "call +44 20 7946 0958 2023 1234 times",
        "+44 20 7946 0958",
        Kind::Phone,
    );
    none("sizes 250 300 4000 and 03 12 2025");
    // A key without its END line: the header and its base64 lines only.
    let pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEF";
    one(
        &format!("{pem}\nThe rest of the text stays."),
        pem,
        Kind::Secret,
    );
    one(
        "IBAN RU0204452560040702810412345678901 here",
        "RU0204452560040702810412345678901",
        Kind::Iban,
    );
}
