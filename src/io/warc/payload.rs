//! A WARC record's payload: the HTTP response around it, and the bytes of a
//! page decoded to UTF-8 the way a browser picks the encoding (byte-order
//! mark, then the HTTP `charset`, then `<meta charset>` in the head, then a
//! guess from the bytes with `chardetng`, which Firefox uses).

use std::borrow::Cow;
use std::io::Read;

use encoding_rs::{Encoding, UTF_8};

/// The parsed head of an HTTP response and the body after it.
pub struct Http<'a> {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: &'a [u8],
}

/// Splits `HTTP/1.x 200 OK\r\n<headers>\r\n\r\n<body>`. `None` when the
/// block does not start with a status line.
pub fn parse_http(block: &[u8]) -> Option<Http<'_>> {
    if !block.starts_with(b"HTTP/") {
        return None;
    }
    let end = memchr::memmem::find(block, b"\r\n\r\n")
        .map(|i| (i, i + 4))
        .or_else(|| memchr::memmem::find(block, b"\n\n").map(|i| (i, i + 2)));
    let (head_end, body_start) = end.unwrap_or((block.len(), block.len()));
    let head = String::from_utf8_lossy(&block[..head_end]);
    let mut lines = head.lines();
    let status = lines
        .next()?
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Some(Http {
        status,
        headers,
        body: &block[body_start..],
    })
}

/// The media type of a `Content-Type` value, lower-case, without parameters.
pub fn mime(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// The `charset` parameter of a `Content-Type` value.
pub fn charset_param(content_type: &str) -> Option<&str> {
    content_type.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| v.trim().trim_matches(['"', '\'']))
    })
}

/// Undoes `Transfer-Encoding: chunked` and `Content-Encoding` gzip or
/// deflate, as a crawler may have stored the bytes as they came. An
/// encoding this reader cannot undo is an `Err` naming it.
pub fn decoded_body<'a>(http: &Http<'a>) -> Result<Cow<'a, [u8]>, String> {
    let get = |name: &str| {
        http.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.to_ascii_lowercase())
    };
    let mut body: Cow<'a, [u8]> = Cow::Borrowed(http.body);
    if get("Transfer-Encoding").is_some_and(|v| v.contains("chunked")) {
        if let Some(joined) = dechunk(&body) {
            body = Cow::Owned(joined);
        }
    }
    match get("Content-Encoding").as_deref().map(str::trim) {
        None | Some("") | Some("identity") | Some("none") => Ok(body),
        Some("gzip") | Some("x-gzip") => {
            let mut out = vec![];
            flate2::read::MultiGzDecoder::new(&body[..])
                .take(MAX_INFLATED)
                .read_to_end(&mut out)
                .map_err(|e| format!("gzip body does not decompress: {e}"))?;
            Ok(Cow::Owned(out))
        }
        Some("deflate") => {
            // `deflate` is zlib-wrapped by the standard, raw in practice.
            let mut out = vec![];
            let zlib = flate2::read::ZlibDecoder::new(&body[..])
                .take(MAX_INFLATED)
                .read_to_end(&mut out);
            if zlib.is_err() {
                out.clear();
                flate2::read::DeflateDecoder::new(&body[..])
                    .take(MAX_INFLATED)
                    .read_to_end(&mut out)
                    .map_err(|e| format!("deflate body does not decompress: {e}"))?;
            }
            Ok(Cow::Owned(out))
        }
        Some(other) => Err(format!("Content-Encoding `{other}`")),
    }
}

/// A compressed body inflates to at most this: a zip bomb stops here.
const MAX_INFLATED: u64 = 64 << 20;

fn dechunk(body: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(body.len());
    let mut rest = body;
    loop {
        let eol = memchr::memchr(b'\n', rest)?;
        let size_line = std::str::from_utf8(&rest[..eol]).ok()?;
        let size_hex = size_line.split(';').next()?.trim();
        let size = usize::from_str_radix(size_hex, 16).ok()?;
        rest = &rest[eol + 1..];
        if size == 0 {
            return Some(out);
        }
        if rest.len() < size {
            out.extend_from_slice(rest);
            return Some(out);
        }
        out.extend_from_slice(&rest[..size]);
        rest = &rest[size..];
        rest = rest
            .strip_prefix(b"\r\n")
            .or_else(|| rest.strip_prefix(b"\n"))
            .unwrap_or(rest);
    }
}

/// Whether bytes with no (or a generic) media type look like HTML.
pub fn sniff_html(body: &[u8]) -> bool {
    let start = body
        .iter()
        .position(|b| !b.is_ascii_whitespace() && !matches!(b, 0xEF | 0xBB | 0xBF))
        .unwrap_or(body.len());
    let head: Vec<u8> = body[start..body.len().min(start + 14)].to_ascii_lowercase();
    [
        &b"<!doctype html"[..],
        b"<html",
        b"<head",
        b"<body",
        b"<!--",
        b"<meta",
        b"<title",
    ]
    .iter()
    .any(|p| head.starts_with(p))
}

/// Decodes a page; returns the text and the encoding used.
pub fn decode_page(
    body: &[u8],
    http_charset: Option<&str>,
    host: Option<&str>,
    html: bool,
) -> (String, &'static Encoding) {
    if let Some((enc, bom)) = Encoding::for_bom(body) {
        return (decode_with(enc, &body[bom..]), enc);
    }
    let declared = http_charset
        .and_then(|l| Encoding::for_label(l.as_bytes()))
        .or_else(|| if html { meta_charset(body) } else { None });
    let enc = match declared {
        Some(enc) => enc,
        None if std::str::from_utf8(body).is_ok() => UTF_8,
        None => {
            let mut d = chardetng::EncodingDetector::new(chardetng::Iso2022JpDetection::Allow);
            d.feed(body, true);
            let tld = host.and_then(|h| h.rsplit('.').next()).map(str::as_bytes);
            d.guess(tld, chardetng::Utf8Detection::Allow)
        }
    };
    (decode_with(enc, body), enc)
}

fn decode_with(enc: &'static Encoding, bytes: &[u8]) -> String {
    // UTF-16 declared in a page is not what the bytes are (the WHATWG
    // prescan maps it to UTF-8); a real UTF-16 page has a BOM.
    let enc = if enc == encoding_rs::UTF_16LE || enc == encoding_rs::UTF_16BE {
        UTF_8
    } else {
        enc
    };
    enc.decode_without_bom_handling(bytes).0.into_owned()
}

/// The encoding a `<meta charset>` or `<meta http-equiv content="…;
/// charset=…">` in the first 4 KB declares (the WHATWG prescan reads 1 KB;
/// real pages put long scripts and styles first).
pub fn meta_charset(body: &[u8]) -> Option<&'static Encoding> {
    // Tag and attribute names are case-insensitive (`<META`, `<Meta`).
    let head = body[..body.len().min(4096)].to_ascii_lowercase();
    let mut from = 0;
    while let Some(i) = memchr::memmem::find(&head[from..], b"<meta") {
        let tag_start = from + i + 5;
        let tag_end = memchr::memchr(b'>', &head[tag_start..])
            .map(|j| tag_start + j)
            .unwrap_or(head.len());
        let tag = &head[tag_start..tag_end];
        if let Some(c) = memchr::memmem::find(tag, b"charset") {
            let rest = &tag[c + 7..];
            let rest = rest.trim_ascii_start();
            if let Some(rest) = rest.strip_prefix(b"=") {
                let rest = rest.trim_ascii_start();
                let rest = rest
                    .strip_prefix(b"\"")
                    .or_else(|| rest.strip_prefix(b"'"))
                    .unwrap_or(rest);
                let label: Vec<u8> = rest
                    .iter()
                    .copied()
                    .take_while(|b| {
                        b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b':' | b'.')
                    })
                    .collect();
                if let Some(enc) = Encoding::for_label(&label) {
                    return Some(enc);
                }
            }
        }
        from = tag_end.max(tag_start);
        if from >= head.len() {
            break;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_heads_split_from_bodies() {
        let block = b"HTTP/1.1 404 Not Found\r\nContent-Type: text/html; charset=GBK\r\n\r\n<html>";
        let h = parse_http(block).unwrap();
        assert_eq!(h.status, 404);
        assert_eq!(h.body, b"<html>");
        let ct = &h.headers[0].1;
        assert_eq!(mime(ct), "text/html");
        assert_eq!(charset_param(ct), Some("GBK"));
        assert!(parse_http(b"<html>").is_none());
    }

    #[test]
    fn chunked_and_gzipped_bodies_are_undone() {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(vec![], flate2::Compression::default());
        e.write_all(b"<p>hello</p>").unwrap();
        let gz = e.finish().unwrap();
        let mut chunked = format!("{:x}\r\n", 5).into_bytes();
        chunked.extend_from_slice(&gz[..5]);
        chunked.extend_from_slice(format!("\r\n{:x}\r\n", gz.len() - 5).as_bytes());
        chunked.extend_from_slice(&gz[5..]);
        chunked.extend_from_slice(b"\r\n0\r\n\r\n");
        let mut block =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Encoding: gzip\r\n\r\n"
                .to_vec();
        block.extend_from_slice(&chunked);
        let h = parse_http(&block).unwrap();
        assert_eq!(&decoded_body(&h).unwrap()[..], b"<p>hello</p>");
        let br = parse_http(b"HTTP/1.1 200 OK\r\nContent-Encoding: br\r\n\r\nxx").unwrap();
        assert_eq!(decoded_body(&br).unwrap_err(), "Content-Encoding `br`");
    }

    #[test]
    fn the_encoding_comes_from_bom_header_meta_or_the_bytes() {
        let (zh, _, _) = encoding_rs::GBK.encode(
            "<html><body><p>中华人民共和国成立于一九四九年十月一日，首都北京。</p></body></html>",
        );
        // The header.
        let (t, enc) = decode_page(&zh, Some("gbk"), None, true);
        assert_eq!(enc, encoding_rs::GBK);
        assert!(t.contains("中华人民共和国"));
        // `gb2312` is read as GBK (WHATWG), as browsers do.
        let mut with_meta = b"<meta charset=\"gb2312\">".to_vec();
        with_meta.extend_from_slice(&zh);
        let (t, enc) = decode_page(&with_meta, None, None, true);
        assert_eq!(enc, encoding_rs::GBK);
        assert!(t.contains("首都北京"));
        let mut http_equiv =
            b"<META HTTP-EQUIV=\"Content-Type\" CONTENT=\"text/html; charset=gbk\">".to_vec();
        http_equiv.extend_from_slice(&zh);
        assert_eq!(
            decode_page(&http_equiv, None, None, true).1,
            encoding_rs::GBK
        );
        // Mixed case, after a meta tag without a charset.
        let mut mixed =
            b"<meta name=\"viewport\" content=\"width=device-width\"><Meta Charset='GBK'>".to_vec();
        mixed.extend_from_slice(b"<p>plain ASCII text</p>");
        assert_eq!(meta_charset(&mixed), Some(encoding_rs::GBK));
        // Neither: detected from the bytes (a .cn host helps).
        let (t, enc) = decode_page(&zh, None, Some("www.example.cn"), true);
        assert_eq!(enc, encoding_rs::GBK);
        assert!(t.contains("中华人民共和国"));
        // A BOM beats a wrong header.
        let bom = [&[0xEF, 0xBB, 0xBF][..], "héllo".as_bytes()].concat();
        let (t, enc) = decode_page(&bom, Some("windows-1252"), None, true);
        assert_eq!((t.as_str(), enc), ("héllo", UTF_8));
    }

    #[test]
    fn html_is_sniffed_when_undeclared() {
        assert!(sniff_html(b"\n  <!DOCTYPE html><html>"));
        assert!(sniff_html(b"<HTML><body>"));
        assert!(!sniff_html(b"%PDF-1.4"));
        assert!(!sniff_html(b"\x89PNG\r\n"));
    }
}
