//! WARC records (ISO 28500, WARC/1.0 and 1.1) from a byte stream, with the
//! faults of real crawl files turned into counted items instead of errors:
//! a damaged gzip member, a file cut short, a `Content-Length` that lies, a
//! record without a version line or a length. Each fault costs the record
//! it is found in, never the records before it, and reading resumes at the
//! next gzip member (per-record gzip, as Common Crawl writes) or the next
//! line that starts a record (plain or whole-file gzip).

use std::io::{self, BufRead, Read};

use super::members::Members;

/// The longest header line and the most header bytes a record may have.
const MAX_LINE: usize = 64 << 10;
const MAX_HEADER_BYTES: usize = 1 << 20;

pub struct Record {
    /// Where the record starts: see [`Location`].
    pub at: Location,
    pub headers: Vec<(String, String)>,
    pub block: Vec<u8>,
}

impl Record {
    /// The first header of this name (WARC field names are case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }
}

pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// A record's place in its file: the offset of its gzip member (what
/// `dd`/`zcat` can cut at) or, in a plain file, its byte offset; in a
/// whole-file gzip, the offset in the decompressed stream as well.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Location {
    pub member: Option<u64>,
    pub offset: u64,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.member {
            None => write!(f, "byte {}", self.offset),
            Some(m) if m == 0 && self.offset > 0 => {
                write!(
                    f,
                    "decompressed byte {} of the gzip member at byte 0",
                    self.offset
                )
            }
            Some(m) => write!(f, "gzip member at byte {m}"),
        }
    }
}

/// Why a record was lost; the reason's name follows `read:warc_`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Damaged compressed data (bad deflate stream, CRC or length check).
    BadGzip,
    /// The file ends inside the record.
    Incomplete,
    /// `Content-Length` does not match where the record ends.
    BadLength,
    /// No `WARC/` version line, no usable `Content-Length`, or header lines
    /// past the limits.
    BadRecord,
    /// A block over the reader's `max_record_bytes`, skipped unread.
    TooLarge,
}

impl Fault {
    pub fn reason(self) -> &'static str {
        match self {
            Fault::BadGzip => "read:warc_bad_gzip",
            Fault::Incomplete => "read:warc_incomplete",
            Fault::BadLength => "read:warc_bad_length",
            Fault::BadRecord => "read:warc_bad_record",
            Fault::TooLarge => "read:warc_too_large",
        }
    }
}

pub enum Item {
    Record(Record),
    Lost {
        at: Location,
        fault: Fault,
        detail: String,
        /// The record's headers, when they were read before the fault.
        headers: Vec<(String, String)>,
    },
}

/// The records of one file, in order.
pub struct Records<R: Read> {
    m: Members<R>,
    /// Bytes given back after a lying `Content-Length` swallowed them.
    back: Vec<u8>,
    back_pos: usize,
    max_block: u64,
    done: bool,
    /// A gzip fault was counted and no record has been read since: the
    /// faults that follow it (false gzip magic found while resynchronising,
    /// the rest of the damaged member) are the same loss, not new ones.
    absorbing: bool,
}

/// What stopped a record: an I/O error of the decompressed stream.
struct Broken {
    error: io::Error,
    at: Location,
    headers: Vec<(String, String)>,
}

impl<R: Read> Records<R> {
    pub fn new(src: R, max_block: u64) -> io::Result<Records<R>> {
        Ok(Records {
            m: Members::new(src)?,
            back: vec![],
            back_pos: 0,
            max_block,
            done: false,
            absorbing: false,
        })
    }

    fn gzip(&self) -> bool {
        self.m.is_gzip()
    }

    fn here(&mut self) -> Location {
        let pending = (self.back.len() - self.back_pos) as u64;
        let offset = self.m.position().saturating_sub(pending);
        if self.gzip() {
            Location {
                member: Some(self.m.origin()),
                offset,
            }
        } else {
            Location {
                member: None,
                offset,
            }
        }
    }

    fn fill(&mut self) -> io::Result<&[u8]> {
        if self.back_pos < self.back.len() {
            return Ok(&self.back[self.back_pos..]);
        }
        self.m.fill_buf()
    }

    fn consume(&mut self, n: usize) {
        if self.back_pos < self.back.len() {
            self.back_pos += n;
            if self.back_pos == self.back.len() {
                self.back.clear();
                self.back_pos = 0;
            }
        } else {
            self.m.consume(n);
        }
    }

    /// A line without its CR LF; `None` at the end of the stream (or of the
    /// gzip member). Past `MAX_LINE`, the rest of the line is skipped.
    fn read_line(&mut self, out: &mut Vec<u8>) -> io::Result<bool> {
        out.clear();
        let mut any = false;
        loop {
            let buf = self.fill()?;
            if buf.is_empty() {
                break;
            }
            any = true;
            match memchr::memchr(b'\n', buf) {
                Some(i) => {
                    let take = (MAX_LINE.saturating_sub(out.len())).min(i);
                    out.extend_from_slice(&buf[..take]);
                    self.consume(i + 1);
                    break;
                }
                None => {
                    let n = buf.len();
                    let take = (MAX_LINE.saturating_sub(out.len())).min(n);
                    out.extend_from_slice(&buf[..take]);
                    self.consume(n);
                }
            }
        }
        if out.last() == Some(&b'\r') {
            out.pop();
        }
        Ok(any)
    }

    /// Reads up to `n` bytes; fewer at the end of the stream or member.
    fn read_block(&mut self, n: usize, out: &mut Vec<u8>) -> io::Result<()> {
        out.clear();
        out.reserve(n.min(64 << 20));
        while out.len() < n {
            let buf = self.fill()?;
            if buf.is_empty() {
                break;
            }
            let take = buf.len().min(n - out.len());
            out.extend_from_slice(&buf[..take]);
            self.consume(take);
        }
        Ok(())
    }

    /// Skips `n` bytes; returns how many there were.
    fn skip(&mut self, mut n: u64) -> io::Result<u64> {
        let want = n;
        while n > 0 {
            let buf = self.fill()?;
            if buf.is_empty() {
                break;
            }
            let take = (buf.len() as u64).min(n) as usize;
            self.consume(take);
            n -= take as u64;
        }
        Ok(want - n)
    }

    /// After a fault inside a record: to the next member (gzip) or to the
    /// next line that starts a record (plain), which is left unread.
    fn skip_rest(&mut self) -> io::Result<()> {
        if self.gzip() && self.back_pos == self.back.len() {
            while !self.fill()?.is_empty() {
                let n = self.fill()?.len();
                self.consume(n);
            }
            return Ok(());
        }
        let mut line = Vec::new();
        while self.read_line(&mut line)? {
            if line.starts_with(b"WARC/1.") {
                // Put the version line back for the next record to read.
                line.extend_from_slice(b"\r\n");
                line.extend_from_slice(&self.back[self.back_pos..]);
                self.back = line;
                self.back_pos = 0;
                return Ok(());
            }
        }
        Ok(())
    }

    fn next_record(&mut self) -> Result<Option<Item>, Broken> {
        let mut line = Vec::new();
        // Blank lines between records (and the ends of members) are skipped.
        let at = loop {
            let before = self.here();
            let empty = match self.fill() {
                Ok(buf) => buf.is_empty(),
                Err(error) => {
                    // The error is in the member that was being started.
                    let member = self.gzip().then(|| self.m.newest());
                    return Err(Broken {
                        error,
                        at: Location { member, ..before },
                        headers: vec![],
                    });
                }
            };
            if empty {
                if self.gzip() && self.m.at_boundary() {
                    self.m.next_member();
                    continue;
                }
                return Ok(None);
            }
            // Now that the next byte is decoded, its member is known.
            let at = self.here();
            self.read_line(&mut line).map_err(|error| Broken {
                error,
                at,
                headers: vec![],
            })?;
            if !line.iter().all(u8::is_ascii_whitespace) {
                break at;
            }
        };
        let broken = |error, headers: &Vec<(String, String)>| Broken {
            error,
            at,
            headers: headers.clone(),
        };
        let lost = |fault, detail: String, headers: Vec<(String, String)>| {
            Ok(Some(Item::Lost {
                at,
                fault,
                detail,
                headers,
            }))
        };
        let mut headers: Vec<(String, String)> = vec![];
        if !line.starts_with(b"WARC/") {
            let shown = String::from_utf8_lossy(&line[..line.len().min(40)]).into_owned();
            self.skip_rest().map_err(|e| broken(e, &headers))?;
            return lost(
                Fault::BadRecord,
                format!("expected a `WARC/1.x` version line, found `{shown}`"),
                headers,
            );
        }
        let mut header_bytes = 0usize;
        loop {
            let more = self.read_line(&mut line).map_err(|e| broken(e, &headers))?;
            if !more {
                return lost(
                    Fault::Incomplete,
                    "the record's header is cut short".into(),
                    headers,
                );
            }
            if line.is_empty() {
                break;
            }
            header_bytes += line.len();
            if header_bytes > MAX_HEADER_BYTES {
                self.skip_rest().map_err(|e| broken(e, &headers))?;
                return lost(
                    Fault::BadRecord,
                    format!("header longer than {MAX_HEADER_BYTES} bytes"),
                    headers,
                );
            }
            let text = String::from_utf8_lossy(&line);
            match text.split_once(':') {
                Some((k, v)) => headers.push((k.trim().to_string(), v.trim().to_string())),
                // A folded continuation line belongs to the previous field.
                None if line[0] == b' ' || line[0] == b'\t' => {
                    if let Some(last) = headers.last_mut() {
                        last.1.push(' ');
                        last.1.push_str(text.trim());
                    }
                }
                None => {}
            }
        }
        let length = match header(&headers, "Content-Length").map(|v| v.parse::<u64>()) {
            Some(Ok(n)) => n,
            other => {
                let detail = match other {
                    None => "no Content-Length".to_string(),
                    Some(_) => format!(
                        "Content-Length `{}` is not a number",
                        header(&headers, "Content-Length").unwrap_or_default()
                    ),
                };
                self.skip_rest().map_err(|e| broken(e, &headers))?;
                return lost(Fault::BadRecord, detail, headers);
            }
        };
        if length > self.max_block {
            let skipped = self.skip(length).map_err(|e| broken(e, &headers))?;
            if skipped < length {
                return lost(
                    Fault::Incomplete,
                    format!("Content-Length {length} but the stream ends after {skipped} bytes"),
                    headers,
                );
            }
            self.skip_trailer().map_err(|e| broken(e, &headers))?;
            return lost(
                Fault::TooLarge,
                format!(
                    "a block of {length} bytes, over max_record_bytes ({})",
                    self.max_block
                ),
                headers,
            );
        }
        let mut block = Vec::new();
        self.read_block(length as usize, &mut block)
            .map_err(|e| broken(e, &headers))?;
        if (block.len() as u64) < length {
            let detail = format!(
                "Content-Length {length} but the {} ends after {} bytes",
                if self.gzip() && self.m.at_boundary() {
                    "gzip member"
                } else {
                    "file"
                },
                block.len()
            );
            let at_member_end = self.gzip() && self.m.at_boundary();
            // In a plain stream, a record that the lying length swallowed
            // is given back.
            self.give_back_swallowed(&block);
            let fault = if at_member_end || !self.back.is_empty() {
                Fault::BadLength
            } else {
                Fault::Incomplete
            };
            return lost(fault, detail, headers);
        }
        // The block ends with CR LF CR LF; anything else means the length lied.
        let mut trailer = Vec::new();
        self.read_block(4, &mut trailer)
            .map_err(|e| broken(e, &headers))?;
        if trailer != b"\r\n\r\n" {
            let end_of_stream = trailer.is_empty() && !(self.gzip() && self.m.at_boundary());
            if end_of_stream {
                // A file whose last record lacks its trailer lost nothing.
                return Ok(Some(Item::Record(Record { at, headers, block })));
            }
            let mut tail = block.clone();
            tail.extend_from_slice(&trailer);
            self.give_back_swallowed(&tail);
            if self.back.is_empty() {
                self.skip_rest().map_err(|e| broken(e, &headers))?;
            }
            return lost(
                Fault::BadLength,
                format!("Content-Length {length} does not end the record (no blank line after it)"),
                headers,
            );
        }
        Ok(Some(Item::Record(Record { at, headers, block })))
    }

    /// Skips the CR LF CR LF after a skipped block.
    fn skip_trailer(&mut self) -> io::Result<()> {
        while let Some(&b) = self.fill()?.first() {
            if b != b'\r' && b != b'\n' {
                break;
            }
            self.consume(1);
        }
        Ok(())
    }

    /// When a record's bytes hold the start of another (a length that
    /// claimed too much), puts them back to be read again.
    fn give_back_swallowed(&mut self, bytes: &[u8]) {
        // Only in a stream: across gzip members a record never spans two.
        if self.gzip() && self.m.at_boundary() {
            return;
        }
        if let Some(i) = memchr::memmem::find(bytes, b"\nWARC/1.") {
            let mut back = bytes[i + 1..].to_vec();
            back.extend_from_slice(&self.back[self.back_pos..]);
            self.back = back;
            self.back_pos = 0;
        }
    }
}

impl<R: Read> Iterator for Records<R> {
    type Item = Item;

    fn next(&mut self) -> Option<Item> {
        loop {
            if self.done {
                return None;
            }
            match self.next_record() {
                Ok(None) => {
                    self.done = true;
                    return None;
                }
                Ok(Some(item)) => {
                    if matches!(item, Item::Record(_)) {
                        self.absorbing = false;
                    } else if self.absorbing {
                        continue;
                    }
                    return Some(item);
                }
                Err(Broken { error, at, headers }) => {
                    self.back.clear();
                    self.back_pos = 0;
                    let fault = if error.kind() == io::ErrorKind::UnexpectedEof {
                        Fault::Incomplete
                    } else {
                        Fault::BadGzip
                    };
                    match self.m.resync() {
                        Ok(true) => {}
                        Ok(false) | Err(_) => self.done = true,
                    }
                    if self.absorbing {
                        continue;
                    }
                    self.absorbing = true;
                    return Some(Item::Lost {
                        at,
                        fault,
                        detail: error.to_string(),
                        headers,
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use std::io::Write;

    fn record(id: &str, body: &str) -> Vec<u8> {
        format!(
            "WARC/1.0\r\nWARC-Type: resource\r\nWARC-Record-ID: <urn:uuid:{id}>\r\nContent-Length: {}\r\n\r\n{body}\r\n\r\n",
            body.len()
        )
        .into_bytes()
    }

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(vec![], flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn outcome(file: &[u8]) -> Vec<String> {
        Records::new(file, 1 << 20)
            .unwrap()
            .map(|item| match item {
                Item::Record(r) => String::from_utf8(r.block).unwrap(),
                Item::Lost { fault, .. } => fault.reason().to_string(),
            })
            .collect()
    }

    #[test]
    fn plain_and_gzipped_files_give_the_same_records() {
        let plain = [record("a", "one"), record("b", "two")].concat();
        let per_record = [gz(&record("a", "one")), gz(&record("b", "two"))].concat();
        let whole = gz(&plain);
        for file in [plain, per_record, whole] {
            assert_eq!(outcome(&file), ["one", "two"]);
        }
    }

    #[test]
    fn a_length_that_claims_too_much_costs_one_record_in_a_plain_file() {
        let liar = String::from_utf8(record("b", "two"))
            .unwrap()
            .replace("Content-Length: 3", "Content-Length: 30");
        let file = [
            record("a", "one"),
            liar.into_bytes(),
            record("c", "three"),
            record("d", "four"),
        ]
        .concat();
        assert_eq!(
            outcome(&file),
            ["one", "read:warc_bad_length", "three", "four"]
        );
    }

    #[test]
    fn lying_lengths_in_gzip_members_cost_their_record_only() {
        let long = String::from_utf8(record("b", "two"))
            .unwrap()
            .replace("Length: 3", "Length: 300");
        let short = String::from_utf8(record("c", "three"))
            .unwrap()
            .replace("Length: 5", "Length: 2");
        let file = [
            gz(&record("a", "one")),
            gz(long.as_bytes()),
            gz(short.as_bytes()),
            gz(&record("d", "four")),
        ]
        .concat();
        assert_eq!(
            outcome(&file),
            [
                "one",
                "read:warc_bad_length",
                "read:warc_bad_length",
                "four"
            ]
        );
    }

    #[test]
    fn damaged_members_and_a_cut_tail_keep_every_other_record() {
        let mut bad = gz(&record("b", &"lorem ipsum dolor ".repeat(100)));
        let mid = bad.len() / 2;
        bad[mid] ^= 0xff;
        bad[mid + 3] ^= 0x0f;
        let cut = gz(&record("d", &"tail ".repeat(200)));
        let file = [
            gz(&record("a", "one")),
            bad,
            gz(&record("c", "three")),
            cut[..cut.len() / 2].to_vec(),
        ]
        .concat();
        assert_eq!(
            outcome(&file),
            ["one", "read:warc_bad_gzip", "three", "read:warc_incomplete"]
        );
    }

    #[test]
    fn garbage_and_missing_lengths_are_named() {
        let no_length = b"WARC/1.0\r\nWARC-Type: resource\r\n\r\nbody\r\n\r\n".to_vec();
        let file = [
            b"this is not a warc file\r\n".to_vec(),
            record("a", "one"),
            no_length,
            record("b", "two"),
        ]
        .concat();
        assert_eq!(
            outcome(&file),
            ["read:warc_bad_record", "one", "read:warc_bad_record", "two"]
        );
    }

    #[test]
    fn oversized_blocks_are_skipped_unread() {
        let big = record("b", &"x".repeat(5000));
        let file = [record("a", "one"), big, record("c", "three")].concat();
        let got: Vec<String> = Records::new(&file[..], 1000)
            .unwrap()
            .map(|i| match i {
                Item::Record(r) => String::from_utf8(r.block).unwrap(),
                Item::Lost { fault, .. } => fault.reason().into(),
            })
            .collect();
        assert_eq!(got, ["one", "read:warc_too_large", "three"]);
    }

    #[test]
    fn locations_name_the_member_or_the_byte() {
        let a = gz(&record("a", "one"));
        let file = [a.clone(), gz(&record("b", "two"))].concat();
        let at: Vec<Location> = Records::new(&file[..], 1 << 20)
            .unwrap()
            .map(|i| match i {
                Item::Record(r) => r.at,
                Item::Lost { at, .. } => at,
            })
            .collect();
        assert_eq!(at[1].member, Some(a.len() as u64));
        let plain = [record("a", "one"), record("b", "two")].concat();
        let at: Vec<u64> = Records::new(&plain[..], 1 << 20)
            .unwrap()
            .map(|i| match i {
                Item::Record(r) => r.at.offset,
                Item::Lost { at, .. } => at.offset,
            })
            .collect();
        assert_eq!(at, [0, record("a", "one").len() as u64]);
    }
}
