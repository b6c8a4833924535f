//! The decompressed bytes of a WARC file, gzip member by gzip member.
//!
//! Common Crawl compresses each record as its own gzip member, so that a
//! damaged member costs one record. `flate2`'s `MultiGzDecoder` stops at the
//! first damaged member and does not say where members start; this reader
//! runs raw deflate itself over each member, so that it knows the file
//! offset of every member (which errors name), checks each member's CRC and
//! length, and after a damaged member can resume at the next one
//! ([`Members::resync`]). A plain (uncompressed) file passes through.

use std::collections::VecDeque;
use std::io::{self, BufRead, Read};

use flate2::{Crc, Decompress, FlushDecompress, Status};

const GZIP_MAGIC: [u8; 3] = [0x1f, 0x8b, 0x08];
const IN_BUF: usize = 256 << 10;
const OUT_BUF: usize = 256 << 10;

/// A gzip stream or plain bytes, read as one decompressed stream. Decoding
/// errors are `InvalidData` (a damaged member) or `UnexpectedEof` (the file
/// ends inside a member); after either, [`Members::resync`] moves on.
pub struct Members<R: Read> {
    src: R,
    inb: Vec<u8>,
    in_pos: usize,
    in_len: usize,
    /// File offset of `inb[0]`.
    in_base: u64,
    src_done: bool,
    gzip: bool,
    /// Inside a member's deflate data (false: between members).
    in_member: bool,
    inflate: Decompress,
    crc: Crc,
    out: Vec<u8>,
    out_pos: usize,
    out_len: usize,
    /// Decompressed offset of `out[out_pos]`.
    produced: u64,
    /// (decompressed offset, file offset) of each member start not yet passed.
    starts: VecDeque<(u64, u64)>,
    /// File offset of the member the last consumed byte came from.
    current: u64,
    /// A member has ended and the reader has not yet asked for the next:
    /// records never span members, so the end of one reads as an end.
    boundary: bool,
    /// The last error left the input at the start of the next member (a
    /// failed trailer check): resync must not step over it.
    at_next_member: bool,
    /// File offset of the member started last (or being started).
    newest: u64,
}

impl<R: Read> Members<R> {
    /// Reads `src` as gzip if it starts with the gzip magic, else as plain bytes.
    pub fn new(src: R) -> io::Result<Members<R>> {
        let mut m = Members {
            src,
            inb: vec![0; IN_BUF],
            in_pos: 0,
            in_len: 0,
            in_base: 0,
            src_done: false,
            gzip: false,
            in_member: false,
            inflate: Decompress::new(false),
            crc: Crc::new(),
            out: vec![0; OUT_BUF],
            out_pos: 0,
            out_len: 0,
            produced: 0,
            starts: VecDeque::new(),
            current: 0,
            boundary: false,
            at_next_member: false,
            newest: 0,
        };
        m.refill_in(GZIP_MAGIC.len())?;
        m.gzip = m.in_len >= 3 && m.inb[..3] == GZIP_MAGIC;
        Ok(m)
    }

    pub fn is_gzip(&self) -> bool {
        self.gzip
    }

    /// The file offset of the gzip member holding the next byte to be read
    /// (for plain files, the byte's own offset).
    pub fn origin(&mut self) -> u64 {
        if !self.gzip {
            return self.produced;
        }
        while let Some(&(at, file)) = self.starts.front() {
            if at > self.produced {
                break;
            }
            self.current = file;
            self.starts.pop_front();
        }
        self.current
    }

    /// The file offset of the member started last: where an error that
    /// comes before its first byte was found.
    pub fn newest(&self) -> u64 {
        self.newest
    }

    /// Whether reading stopped at the end of a gzip member
    /// ([`Members::next_member`] goes on).
    pub fn at_boundary(&self) -> bool {
        self.boundary && self.out_pos == self.out_len
    }

    /// Goes on past the end of a member.
    pub fn next_member(&mut self) {
        self.boundary = false;
    }

    /// Decompressed bytes handed out so far.
    pub fn position(&self) -> u64 {
        self.produced
    }

    /// Makes at least `want` unread compressed bytes available, unless the
    /// file ends first.
    fn refill_in(&mut self, want: usize) -> io::Result<()> {
        if self.in_len - self.in_pos >= want || self.src_done {
            return Ok(());
        }
        if self.in_pos > 0 {
            self.inb.copy_within(self.in_pos..self.in_len, 0);
            self.in_base += self.in_pos as u64;
            self.in_len -= self.in_pos;
            self.in_pos = 0;
        }
        while self.in_len < want.max(1) && !self.src_done {
            if self.in_len == self.inb.len() {
                self.inb.resize(self.inb.len() * 2, 0);
            }
            let n = self.src.read(&mut self.inb[self.in_len..])?;
            if n == 0 {
                self.src_done = true;
            }
            self.in_len += n;
        }
        Ok(())
    }

    fn file_offset(&self) -> u64 {
        self.in_base + self.in_pos as u64
    }

    /// Parses a gzip member header at the current position (RFC 1952).
    /// `Ok(false)` at the end of the file.
    fn start_member(&mut self) -> io::Result<bool> {
        self.refill_in(10)?;
        let avail = self.in_len - self.in_pos;
        if avail == 0 {
            return Ok(false);
        }
        let at = self.file_offset();
        self.newest = at;
        let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
        if avail < 10 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file ends inside a gzip header",
            ));
        }
        let h = &self.inb[self.in_pos..self.in_pos + 10];
        if h[..3] != GZIP_MAGIC {
            return Err(bad("not a gzip member (bad magic bytes)"));
        }
        let flags = h[3];
        let mut skip = 10usize;
        // FEXTRA, FNAME, FCOMMENT, FHCRC: optional fields before the data.
        if flags & 0x04 != 0 {
            self.refill_in(skip + 2)?;
            if self.in_len - self.in_pos < skip + 2 {
                return Err(bad("gzip header cut short"));
            }
            let p = self.in_pos + skip;
            let xlen = u16::from_le_bytes([self.inb[p], self.inb[p + 1]]) as usize;
            skip += 2 + xlen;
        }
        for flag in [0x08u8, 0x10] {
            if flags & flag != 0 {
                loop {
                    self.refill_in(skip + 1)?;
                    if self.in_len - self.in_pos < skip + 1 {
                        return Err(bad("gzip header cut short"));
                    }
                    skip += 1;
                    if self.inb[self.in_pos + skip - 1] == 0 {
                        break;
                    }
                }
            }
        }
        if flags & 0x02 != 0 {
            skip += 2;
        }
        self.refill_in(skip)?;
        if self.in_len - self.in_pos < skip {
            return Err(bad("gzip header cut short"));
        }
        self.in_pos += skip;
        self.inflate.reset(false);
        self.crc.reset();
        self.in_member = true;
        self.starts.push_back((
            self.produced + self.out_len as u64 - self.out_pos as u64,
            at,
        ));
        Ok(true)
    }

    /// Reads the 8-byte member trailer and checks it.
    fn end_member(&mut self) -> io::Result<()> {
        self.in_member = false;
        self.refill_in(8)?;
        if self.in_len - self.in_pos < 8 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file ends inside a gzip trailer",
            ));
        }
        let t = &self.inb[self.in_pos..self.in_pos + 8];
        let crc = u32::from_le_bytes([t[0], t[1], t[2], t[3]]);
        let size = u32::from_le_bytes([t[4], t[5], t[6], t[7]]);
        self.in_pos += 8;
        if crc != self.crc.sum() || size != self.crc.amount() {
            self.at_next_member = true;
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "gzip member fails its CRC or length check",
            ));
        }
        Ok(())
    }

    /// Decompresses more into `out` (which is empty). Returns false at the end.
    fn produce(&mut self) -> io::Result<bool> {
        self.out_pos = 0;
        self.out_len = 0;
        if !self.gzip {
            self.refill_in(1)?;
            let n = (self.in_len - self.in_pos).min(self.out.len());
            self.out[..n].copy_from_slice(&self.inb[self.in_pos..self.in_pos + n]);
            self.in_pos += n;
            self.out_len = n;
            return Ok(n > 0);
        }
        while self.out_len == 0 {
            if self.boundary {
                return Ok(false);
            }
            if !self.in_member && !self.start_member()? {
                return Ok(false);
            }
            self.refill_in(1)?;
            let input = &self.inb[self.in_pos..self.in_len];
            if input.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the file ends inside a gzip member",
                ));
            }
            let (before_in, before_out) = (self.inflate.total_in(), self.inflate.total_out());
            let status = self
                .inflate
                .decompress(input, &mut self.out, FlushDecompress::None)
                .map_err(|e| {
                    io::Error::new(io::ErrorKind::InvalidData, format!("bad deflate data: {e}"))
                })?;
            let used = (self.inflate.total_in() - before_in) as usize;
            let made = (self.inflate.total_out() - before_out) as usize;
            self.in_pos += used;
            self.crc.update(&self.out[..made]);
            self.out_len = made;
            match status {
                Status::StreamEnd => {
                    self.end_member()?;
                    self.boundary = true;
                }
                Status::Ok | Status::BufError => {
                    if used == 0 && made == 0 {
                        // No progress with input left: more input is needed.
                        if self.src_done && self.in_pos == self.in_len {
                            return Err(io::Error::new(
                                io::ErrorKind::UnexpectedEof,
                                "the file ends inside a gzip member",
                            ));
                        }
                        let have = self.in_len - self.in_pos;
                        self.refill_in(have + 1)?;
                        if self.in_len - self.in_pos == have {
                            return Err(io::Error::new(
                                io::ErrorKind::UnexpectedEof,
                                "the file ends inside a gzip member",
                            ));
                        }
                    }
                }
            }
        }
        Ok(true)
    }

    /// After a decoding error: drops what is buffered and moves to the next
    /// gzip magic after the damaged member's start. A false match inside
    /// compressed data fails again on reading and is skipped the same way.
    /// Returns false when no member is left.
    pub fn resync(&mut self) -> io::Result<bool> {
        self.produced += (self.out_len - self.out_pos) as u64;
        self.out_pos = 0;
        self.out_len = 0;
        self.in_member = false;
        self.boundary = false;
        if !self.gzip {
            return Ok(false);
        }
        // Skip at least one byte, so that a bad header is not found again.
        if self.in_pos < self.in_len && !std::mem::take(&mut self.at_next_member) {
            self.in_pos += 1;
        }
        loop {
            self.refill_in(GZIP_MAGIC.len())?;
            let hay = &self.inb[self.in_pos..self.in_len];
            if hay.len() < GZIP_MAGIC.len() {
                self.in_pos = self.in_len;
                return Ok(false);
            }
            match memchr::memmem::find(hay, &GZIP_MAGIC) {
                Some(i) => {
                    self.in_pos += i;
                    return Ok(true);
                }
                None => self.in_pos = self.in_len - (GZIP_MAGIC.len() - 1),
            }
            if self.src_done && self.in_len - self.in_pos < GZIP_MAGIC.len() {
                self.in_pos = self.in_len;
                return Ok(false);
            }
            let have = self.in_len - self.in_pos;
            self.refill_in(have + 1)?;
        }
    }
}

impl<R: Read> Read for Members<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let avail = self.fill_buf()?;
        let n = avail.len().min(buf.len());
        buf[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R: Read> BufRead for Members<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.out_pos == self.out_len && !self.produce()? {
            return Ok(&[]);
        }
        Ok(&self.out[self.out_pos..self.out_len])
    }

    fn consume(&mut self, n: usize) {
        self.out_pos += n;
        self.produced += n as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use std::io::Write;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(vec![], flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn members_concatenate_and_know_their_offsets() {
        let (a, b) = (gz(b"first member "), gz(b"second"));
        let file = [a.clone(), b.clone()].concat();
        let mut m = Members::new(&file[..]).unwrap();
        assert!(m.is_gzip());
        let mut first = [0u8; 13];
        m.read_exact(&mut first).unwrap();
        assert_eq!(&first, b"first member ");
        // A member's end reads as an end until the reader goes on.
        assert!(m.fill_buf().unwrap().is_empty());
        assert!(m.at_boundary());
        m.next_member();
        // The next byte comes from the second member.
        m.fill_buf().unwrap();
        assert_eq!(m.origin(), a.len() as u64);
        let mut rest = String::new();
        m.read_to_string(&mut rest).unwrap();
        assert_eq!(rest, "second");
    }

    #[test]
    fn a_damaged_member_is_an_error_and_reading_resumes_after_it() {
        let a = gz(&b"x".repeat(5000));
        let mut bad = gz(&b"the quick brown fox jumps over the lazy dog ".repeat(50));
        let mid = bad.len() / 2;
        bad[mid] ^= 0xff;
        bad[mid + 1] ^= 0x55;
        let c = gz(b"after");
        let file = [a, bad, c].concat();
        let mut m = Members::new(&file[..]).unwrap();
        let mut got = vec![];
        let mut errors = 0;
        loop {
            let mut buf = [0u8; 4096];
            match m.read(&mut buf) {
                Ok(0) if m.at_boundary() => m.next_member(),
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(_) => {
                    errors += 1;
                    if !m.resync().unwrap() {
                        break;
                    }
                }
            }
        }
        assert!(errors >= 1);
        assert!(got.starts_with(&b"x".repeat(5000)));
        assert!(got.ends_with(b"after"));
    }

    #[test]
    fn a_cut_file_ends_with_an_eof_error_after_the_whole_members() {
        let a = gz(b"complete");
        let b = gz(&b"cut short ".repeat(100));
        let file = [a, b[..b.len() / 2].to_vec()].concat();
        let mut m = Members::new(&file[..]).unwrap();
        let mut first = [0u8; 8];
        m.read_exact(&mut first).unwrap();
        assert_eq!(&first, b"complete");
        assert!(m.fill_buf().unwrap().is_empty());
        m.next_member();
        let mut rest = vec![];
        let err = m.read_to_end(&mut rest).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert!(!m.resync().unwrap());
    }

    #[test]
    fn plain_bytes_pass_through() {
        let mut m = Members::new(&b"WARC/1.0\r\n"[..]).unwrap();
        assert!(!m.is_gzip());
        let mut s = String::new();
        m.read_to_string(&mut s).unwrap();
        assert_eq!(s, "WARC/1.0\r\n");
    }
}
