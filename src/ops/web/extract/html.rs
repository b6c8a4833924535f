//! A forgiving, allocation-light HTML parser built for text extraction.
//!
//! It tokenizes with `memchr`, builds an arena tree in document order (a
//! node's descendants occupy the index range right after it), and keeps only
//! what main-text extraction needs: tag kinds, text ranges into the source,
//! and a handful of attributes. It never panics and runs in O(n): the open
//! element stack is capped, end-tag matching is bounded, and nothing recurses
//! on tree depth.

use memchr::{memchr, memmem};

/// Sentinel for "no node".
pub const NONE: u32 = u32::MAX;

/// Open elements beyond this depth are created as leaves: their content
/// becomes their siblings', which keeps every walk shallow on adversarial input.
pub const MAX_DEPTH: usize = 400;

/// End-tag matching looks this far down the open element stack at most.
const MAX_END_SEARCH: usize = 64;

macro_rules! tags {
    ($($v:ident = $s:literal),* $(,)?) => {
        /// The tags extraction distinguishes; anything else is `Other`.
        #[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
        #[repr(u8)]
        pub enum Tag { Document, Text, Other, $($v),* }

        /// Number of `Tag` variants, for per-tag tables.
        pub const TAG_COUNT: usize = 3 $(+ { let _ = Tag::$v; 1 })*;

        impl Tag {
            /// Maps a lowercase tag name to its tag.
            pub fn from_name(name: &[u8]) -> Tag {
                match name { $($s => Tag::$v,)* _ => Tag::Other }
            }
            /// The lowercase tag name ("" for the synthetic kinds).
            pub fn name(self) -> &'static str {
                match self { Tag::Document | Tag::Text | Tag::Other => "", $(Tag::$v => std::str::from_utf8($s).unwrap_or(""),)* }
            }
        }
    };
}

tags! {
    Html = b"html", Head = b"head", Body = b"body", Title = b"title", Meta = b"meta", Link = b"link",
    Base = b"base", Script = b"script", Style = b"style", Noscript = b"noscript", Template = b"template",
    Iframe = b"iframe", Textarea = b"textarea", Xmp = b"xmp", Noembed = b"noembed", Noframes = b"noframes",
    Plaintext = b"plaintext", Svg = b"svg", Math = b"math", Div = b"div", P = b"p", Span = b"span", A = b"a",
    B = b"b", I = b"i", Em = b"em", Strong = b"strong", U = b"u", S = b"s", Strike = b"strike",
    Small = b"small", Big = b"big", Sub = b"sub", Sup = b"sup", Code = b"code", Kbd = b"kbd", Samp = b"samp",
    Tt = b"tt", Var = b"var", Mark = b"mark", Abbr = b"abbr", Acronym = b"acronym", Cite = b"cite", Q = b"q",
    Time = b"time", Font = b"font", Label = b"label", Br = b"br", Wbr = b"wbr", Hr = b"hr", Img = b"img",
    Image = b"image", Picture = b"picture", Source = b"source", Video = b"video", Audio = b"audio",
    Canvas = b"canvas", Embed = b"embed", Object = b"object", Param = b"param", Track = b"track",
    Area = b"area", Map = b"map", Input = b"input", Button = b"button", Select = b"select",
    Option = b"option", Optgroup = b"optgroup", Form = b"form", Fieldset = b"fieldset", Legend = b"legend",
    H1 = b"h1", H2 = b"h2", H3 = b"h3", H4 = b"h4", H5 = b"h5", H6 = b"h6", Hgroup = b"hgroup",
    Header = b"header", Footer = b"footer", Nav = b"nav", Aside = b"aside", Main = b"main",
    Article = b"article", Section = b"section", Address = b"address", Blockquote = b"blockquote",
    Pre = b"pre", Listing = b"listing", Ul = b"ul", Ol = b"ol", Li = b"li", Dl = b"dl", Dt = b"dt",
    Dd = b"dd", Menu = b"menu", Dir = b"dir", Table = b"table", Caption = b"caption", Thead = b"thead",
    Tbody = b"tbody", Tfoot = b"tfoot", Tr = b"tr", Td = b"td", Th = b"th", Col = b"col",
    Colgroup = b"colgroup", Figure = b"figure", Figcaption = b"figcaption", Details = b"details",
    Summary = b"summary", Dialog = b"dialog", Center = b"center", Ins = b"ins", Del = b"del",
    Dfn = b"dfn", Bdi = b"bdi", Bdo = b"bdo", Nobr = b"nobr", Data = b"data", Output = b"output",
    Progress = b"progress", Meter = b"meter", Datalist = b"datalist", Frame = b"frame",
    Frameset = b"frameset", Applet = b"applet", Marquee = b"marquee", Blink = b"blink", Ruby = b"ruby",
    Rt = b"rt", Rp = b"rp", Noindex = b"noindex", Keygen = b"keygen", Basefont = b"basefont",
    Bgsound = b"bgsound", Menuitem = b"menuitem", Slot = b"slot",
}

impl Tag {
    /// Elements that never have content.
    pub fn is_void(self) -> bool {
        use Tag::*;
        matches!(
            self,
            Area | Base
                | Br
                | Col
                | Embed
                | Hr
                | Img
                | Image
                | Input
                | Link
                | Meta
                | Param
                | Source
                | Track
                | Wbr
                | Keygen
                | Basefont
                | Bgsound
                | Frame
        )
    }

    /// Elements whose content is raw text up to the matching end tag.
    fn is_raw_text(self) -> bool {
        use Tag::*;
        matches!(
            self,
            Script
                | Style
                | Textarea
                | Title
                | Iframe
                | Xmp
                | Noembed
                | Noframes
                | Template
                | Plaintext
        )
    }

    /// Start tags that close an open `<p>`.
    fn closes_p(self) -> bool {
        use Tag::*;
        matches!(
            self,
            Address
                | Article
                | Aside
                | Blockquote
                | Center
                | Details
                | Dialog
                | Dir
                | Div
                | Dl
                | Fieldset
                | Figcaption
                | Figure
                | Footer
                | Form
                | H1
                | H2
                | H3
                | H4
                | H5
                | H6
                | Header
                | Hgroup
                | Hr
                | Main
                | Menu
                | Nav
                | Ol
                | P
                | Pre
                | Listing
                | Section
                | Table
                | Ul
                | Li
                | Dd
                | Dt
                | Summary
        )
    }

    /// HTML start tags that end foreign (SVG/MathML) content.
    fn breaks_out_of_foreign(self) -> bool {
        use Tag::*;
        matches!(
            self,
            B | Big
                | Blockquote
                | Body
                | Br
                | Center
                | Code
                | Dd
                | Div
                | Dl
                | Dt
                | Em
                | Embed
                | H1
                | H2
                | H3
                | H4
                | H5
                | H6
                | Head
                | Hr
                | I
                | Img
                | Li
                | Listing
                | Menu
                | Meta
                | Nobr
                | Ol
                | P
                | Pre
                | Ruby
                | S
                | Small
                | Span
                | Strong
                | Strike
                | Sub
                | Sup
                | Table
                | Tt
                | U
                | Ul
                | Var
        )
    }

    /// Headings h1..h6.
    pub fn is_heading(self) -> bool {
        matches!(
            self,
            Tag::H1 | Tag::H2 | Tag::H3 | Tag::H4 | Tag::H5 | Tag::H6
        )
    }

    /// Elements that start a new line of text when rendered.
    pub fn is_block(self) -> bool {
        use Tag::*;
        matches!(
            self,
            Document
                | Html
                | Body
                | Div
                | P
                | H1
                | H2
                | H3
                | H4
                | H5
                | H6
                | Hgroup
                | Header
                | Footer
                | Nav
                | Aside
                | Main
                | Article
                | Section
                | Address
                | Blockquote
                | Pre
                | Listing
                | Ul
                | Ol
                | Li
                | Dl
                | Dt
                | Dd
                | Menu
                | Dir
                | Table
                | Caption
                | Thead
                | Tbody
                | Tfoot
                | Tr
                | Td
                | Th
                | Figure
                | Figcaption
                | Details
                | Summary
                | Dialog
                | Center
                | Form
                | Fieldset
                | Legend
                | Hr
                | Frameset
                | Noscript
                | Option
                | Select
                | Plaintext
        )
    }

    /// Boundaries an end tag (or an implied end) must not cross.
    fn is_scope_boundary(self) -> bool {
        use Tag::*;
        matches!(
            self,
            Html | Table | Td | Th | Caption | Template | Marquee | Object | Applet
        )
    }
}

/// Node flags.
pub mod flag {
    /// `hidden` attribute, `aria-hidden="true"` on an inline element, or an inline `display:none` /
    /// `visibility:hidden`.
    pub const HIDDEN: u8 = 1;
    /// An `<a>` with an `href`.
    pub const HREF: u8 = 2;
    /// A text node whose range contains `&` and must be entity-decoded.
    pub const AMP: u8 = 4;
    /// A text node from CDATA: no entity decoding.
    pub const RAW: u8 = 8;
}

/// One node of the arena. Children of a node follow it in index order.
#[derive(Clone, Debug)]
pub struct Node {
    pub tag: Tag,
    pub flags: u8,
    pub parent: u32,
    pub first_child: u32,
    pub last_child: u32,
    pub next_sibling: u32,
    /// Text nodes: byte range into the source. Elements: `start` is the name
    /// hash for `Tag::Other` (to match end tags), `end` an index into `attrs` or `NONE`.
    pub start: u32,
    pub end: u32,
}

/// A byte range into the source; empty when absent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Span {
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub fn is_empty(self) -> bool {
        self.end <= self.start
    }
}

/// The attributes extraction looks at.
#[derive(Clone, Copy, Debug, Default)]
pub struct Attrs {
    pub class: Span,
    pub id: Span,
    pub role: Span,
    pub itemprop: Span,
}

/// A parsed document borrowing its source.
pub struct Document<'a> {
    pub src: &'a str,
    pub nodes: Vec<Node>,
    pub attrs: Vec<Attrs>,
    /// Content of the first `<title>`, entity-decoded and whitespace-collapsed.
    pub title: String,
    /// `<meta property="og:title">` content.
    pub og_title: String,
    /// `<html lang>`.
    pub lang: String,
}

impl<'a> Document<'a> {
    /// Parses `src`. Inputs over 4 GiB are truncated (ranges are u32).
    pub fn parse(src: &'a str) -> Document<'a> {
        let mut cut = src.len().min(u32::MAX as usize - 1);
        while !src.is_char_boundary(cut) {
            cut -= 1;
        }
        let src = &src[..cut];
        let mut p = Parser {
            src,
            b: src.as_bytes(),
            doc: Document {
                src,
                nodes: Vec::with_capacity(src.len() / 40 + 16),
                attrs: Vec::with_capacity(src.len() / 200 + 8),
                title: String::new(),
                og_title: String::new(),
                lang: String::new(),
            },
            stack: Vec::with_capacity(64),
            open: [0; TAG_COUNT],
            body_seen: false,
            head_seen: false,
            html_seen: false,
        };
        p.doc.nodes.push(Node {
            tag: Tag::Document,
            flags: 0,
            parent: NONE,
            first_child: NONE,
            last_child: NONE,
            next_sibling: NONE,
            start: 0,
            end: NONE,
        });
        p.stack.push(0);
        p.run();
        p.doc
    }

    /// Attributes of element `i`, if it has any of interest.
    pub fn attrs(&self, i: u32) -> Option<&Attrs> {
        let n = &self.nodes[i as usize];
        if n.tag == Tag::Text || n.end == NONE {
            None
        } else {
            self.attrs.get(n.end as usize)
        }
    }

    /// Source text of a span.
    pub fn span(&self, s: Span) -> &'a str {
        self.src.get(s.start as usize..s.end as usize).unwrap_or("")
    }

    pub fn class(&self, i: u32) -> &'a str {
        self.attrs(i).map_or("", |a| self.span(a.class))
    }

    pub fn id(&self, i: u32) -> &'a str {
        self.attrs(i).map_or("", |a| self.span(a.id))
    }

    /// Raw (undecoded) text of a text node.
    pub fn raw_text(&self, i: u32) -> &'a str {
        let n = &self.nodes[i as usize];
        self.src.get(n.start as usize..n.end as usize).unwrap_or("")
    }

    /// Appends the decoded text of text node `i` to `out`.
    pub fn push_text(&self, i: u32, out: &mut String) {
        let n = &self.nodes[i as usize];
        let raw = self.raw_text(i);
        if n.flags & flag::AMP != 0 {
            decode_entities_into(raw, out);
        } else {
            out.push_str(raw);
        }
    }

    /// Iterates over the children of `i`.
    pub fn children(&self, i: u32) -> Children<'_, 'a> {
        Children {
            doc: self,
            next: self.nodes[i as usize].first_child,
        }
    }

    /// Next sibling that is an element.
    pub fn next_element_sibling(&self, i: u32) -> u32 {
        let mut s = self.nodes[i as usize].next_sibling;
        while s != NONE && self.nodes[s as usize].tag == Tag::Text {
            s = self.nodes[s as usize].next_sibling;
        }
        s
    }
}

pub struct Children<'d, 'a> {
    doc: &'d Document<'a>,
    next: u32,
}

impl Iterator for Children<'_, '_> {
    type Item = u32;
    fn next(&mut self) -> Option<u32> {
        if self.next == NONE {
            return None;
        }
        let c = self.next;
        self.next = self.doc.nodes[c as usize].next_sibling;
        Some(c)
    }
}

struct Parser<'a> {
    src: &'a str,
    b: &'a [u8],
    doc: Document<'a>,
    stack: Vec<u32>,
    /// How many elements of each tag are on the stack: stray end tags cost O(1).
    open: [u16; TAG_COUNT],
    body_seen: bool,
    head_seen: bool,
    html_seen: bool,
}

fn is_ws(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r' | b'\x0c')
}

fn name_hash(name: &[u8]) -> u32 {
    // FNV-1a over the lowercase name; collisions only mis-pair unknown tags.
    let mut h: u32 = 0x811c_9dc5;
    for &c in name {
        h ^= c.to_ascii_lowercase() as u32;
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

impl<'a> Parser<'a> {
    fn run(&mut self) {
        let b = self.b;
        let n = b.len();
        let mut i = 0;
        while i < n {
            let lt = match memchr(b'<', &b[i..]) {
                Some(k) => i + k,
                None => n,
            };
            if lt > i {
                self.text(i, lt, false);
            }
            if lt >= n {
                break;
            }
            i = self.markup(lt);
        }
    }

    /// Handles the markup starting at `<` at `lt`; returns where to continue.
    fn markup(&mut self, lt: usize) -> usize {
        let b = self.b;
        let n = b.len();
        let c = b.get(lt + 1).copied().unwrap_or(0);
        if c.is_ascii_alphabetic() {
            return self.start_tag(lt);
        }
        match c {
            b'/' => {
                let c2 = b.get(lt + 2).copied().unwrap_or(0);
                if c2.is_ascii_alphabetic() {
                    self.end_tag(lt)
                } else if c2 == b'>' {
                    lt + 3
                } else {
                    // `</ junk>` is a bogus comment.
                    memchr(b'>', &b[lt..]).map_or(n, |k| lt + k + 1)
                }
            }
            b'!' => {
                if b[lt..].starts_with(b"<!--") {
                    let body = lt + 4;
                    // `<!-->` and `<!--->` close immediately.
                    if b[body..].starts_with(b">") {
                        return body + 1;
                    }
                    if b[body..].starts_with(b"->") {
                        return body + 2;
                    }
                    match memmem::find(&b[body..], b"-->") {
                        Some(k) => body + k + 3,
                        None => n,
                    }
                } else if b.len() >= lt + 9
                    && &b[lt + 2..lt + 9] == b"[CDATA["
                    && (self.open[Tag::Svg as usize] > 0 || self.open[Tag::Math as usize] > 0)
                {
                    // A CDATA section exists only in SVG and MathML; in HTML
                    // content `<![CDATA[` opens a bogus comment that ends at
                    // the next `>` (the else branch), as browsers parse it:
                    // read as a section, a stray one in a page's body made
                    // the rest of the page's markup text.
                    let body = lt + 9;
                    let end = memmem::find(&b[body..], b"]]>").map_or(n, |k| body + k);
                    self.text(body, end, true);
                    (end + 3).min(n)
                } else {
                    memchr(b'>', &b[lt..]).map_or(n, |k| lt + k + 1)
                }
            }
            b'?' => memchr(b'>', &b[lt..]).map_or(n, |k| lt + k + 1),
            _ => {
                // A lone `<` is text.
                self.text(lt, lt + 1, false);
                lt + 1
            }
        }
    }

    fn tag_name_end(&self, from: usize) -> usize {
        let b = self.b;
        let mut j = from;
        while j < b.len() && !is_ws(b[j]) && b[j] != b'>' && b[j] != b'/' {
            j += 1;
        }
        j
    }

    fn lookup_tag(name: &[u8]) -> Tag {
        if name.len() > 10 {
            return Tag::Other;
        }
        let mut buf = [0u8; 10];
        for (d, s) in buf.iter_mut().zip(name) {
            *d = s.to_ascii_lowercase();
        }
        Tag::from_name(&buf[..name.len()])
    }

    fn start_tag(&mut self, lt: usize) -> usize {
        let b = self.b;
        let n = b.len();
        let name_end = self.tag_name_end(lt + 1);
        let name = &b[lt + 1..name_end];
        let tag = Self::lookup_tag(name);
        let mut attrs = Attrs::default();
        let mut has_attrs = false;
        let mut flags = 0u8;
        let mut meta_prop_og_title = false;
        let mut meta_content = Span::default();
        let mut lang = Span::default();
        // attribute loop
        let mut j = name_end;
        let mut self_closing = false;
        loop {
            while j < n && (is_ws(b[j]) || b[j] == b'/') {
                self_closing = b[j] == b'/';
                j += 1;
            }
            if j >= n {
                break;
            }
            if b[j] == b'>' {
                j += 1;
                break;
            }
            self_closing = false;
            let an_start = j;
            // An attribute name may start with `=`; it ends at whitespace, `/`, `>` or `=`.
            j += 1;
            while j < n && !is_ws(b[j]) && !matches!(b[j], b'/' | b'>' | b'=') {
                j += 1;
            }
            let aname = &b[an_start..j];
            while j < n && is_ws(b[j]) {
                j += 1;
            }
            let mut val = Span {
                start: j as u32,
                end: j as u32,
            };
            let mut has_val = false;
            if j < n && b[j] == b'=' {
                j += 1;
                while j < n && is_ws(b[j]) {
                    j += 1;
                }
                has_val = true;
                if j < n && (b[j] == b'"' || b[j] == b'\'') {
                    let q = b[j];
                    let vs = j + 1;
                    let ve = memchr(q, &b[vs..]).map_or(n, |k| vs + k);
                    val = Span {
                        start: vs as u32,
                        end: ve as u32,
                    };
                    j = (ve + 1).min(n);
                } else {
                    let vs = j;
                    while j < n && !is_ws(b[j]) && b[j] != b'>' {
                        j += 1;
                    }
                    val = Span {
                        start: vs as u32,
                        end: j as u32,
                    };
                }
            }
            let v = &b[val.start as usize..val.end as usize];
            match aname.len() {
                2 if aname.eq_ignore_ascii_case(b"id") => {
                    attrs.id = val;
                    has_attrs = true;
                }
                4 if aname.eq_ignore_ascii_case(b"role") => {
                    attrs.role = val;
                    has_attrs = true;
                }
                4 if aname.eq_ignore_ascii_case(b"href") => flags |= flag::HREF,
                4 if aname.eq_ignore_ascii_case(b"lang") => lang = val,
                4 if aname.eq_ignore_ascii_case(b"name") => {
                    meta_prop_og_title |= v.eq_ignore_ascii_case(b"og:title");
                }
                5 if aname.eq_ignore_ascii_case(b"class") => {
                    attrs.class = val;
                    has_attrs = true;
                }
                5 if aname.eq_ignore_ascii_case(b"style") && style_hides(v) => {
                    flags |= flag::HIDDEN
                }
                // `hidden="until-found"` content is searchable text, keep it.
                6 if aname.eq_ignore_ascii_case(b"hidden")
                    && !v.eq_ignore_ascii_case(b"until-found") =>
                {
                    flags |= flag::HIDDEN
                }
                7 if aname.eq_ignore_ascii_case(b"content") => meta_content = val,
                8 if aname.eq_ignore_ascii_case(b"itemprop") => {
                    attrs.itemprop = val;
                    has_attrs = true;
                }
                8 if aname.eq_ignore_ascii_case(b"property") => {
                    meta_prop_og_title |= v.eq_ignore_ascii_case(b"og:title");
                }
                // On inline elements `aria-hidden` marks decoration (icon
                // glyphs, a label's visual twin); on blocks it mostly marks
                // text a sighted reader sees: carousel slides off screen,
                // collapsed panels, a page behind its modal. Only the first
                // is left out (on WCXB's listing and product pages the
                // blocks' text is in the gold; trafilatura ignores the
                // attribute altogether).
                11 if aname.eq_ignore_ascii_case(b"aria-hidden")
                    && !tag.is_block()
                    && has_val
                    && v.eq_ignore_ascii_case(b"true") =>
                {
                    flags |= flag::HIDDEN
                }
                _ => {}
            }
        }
        let after = j;
        match tag {
            Tag::Meta => {
                if meta_prop_og_title && self.doc.og_title.is_empty() {
                    let raw = &self.src[meta_content.start as usize..meta_content.end as usize];
                    let mut s = String::new();
                    decode_entities_into(raw, &mut s);
                    self.doc.og_title = collapse_ws(&s);
                }
                return after;
            }
            Tag::Html => {
                if !lang.is_empty() && self.doc.lang.is_empty() {
                    self.doc.lang = self.src[lang.start as usize..lang.end as usize]
                        .trim()
                        .to_string();
                }
                if self.html_seen {
                    return after;
                }
                self.html_seen = true;
            }
            Tag::Body => {
                if self.body_seen {
                    return after;
                }
                self.body_seen = true;
                self.pop_until_tag(Tag::Head);
            }
            Tag::Head => {
                if self.head_seen {
                    return after;
                }
                self.head_seen = true;
            }
            _ => {}
        }
        // A start tag that has no place in <head> ends an unclosed one (the HTML5 "in head"
        // mode; libxml2 does the same): pages that never write </head><body> keep their body.
        if self.open[Tag::Head as usize] > 0
            && !matches!(
                tag,
                Tag::Head
                    | Tag::Html
                    | Tag::Title
                    | Tag::Meta
                    | Tag::Link
                    | Tag::Base
                    | Tag::Style
                    | Tag::Script
                    | Tag::Noscript
                    | Tag::Template
                    | Tag::Noframes
            )
        {
            self.pop_until_tag(Tag::Head);
        }
        // Inside SVG/MathML, `<title/>`, `<style>` etc. are ordinary elements and `/>` closes.
        let mut foreign = self.open[Tag::Svg as usize] > 0 || self.open[Tag::Math as usize] > 0;
        if foreign && tag.breaks_out_of_foreign() {
            // An unclosed <svg> must not swallow the page: HTML content ends it.
            if let Some(k) = self
                .stack
                .iter()
                .position(|&id| matches!(self.doc.nodes[id as usize].tag, Tag::Svg | Tag::Math))
            {
                self.pop_to(k);
            }
            foreign = false;
        }
        if tag.is_raw_text() && !foreign {
            return self.raw_text(tag, lt, after, flags, attrs, has_attrs);
        }
        self.implied_ends(tag);
        let attr_idx = if has_attrs {
            self.doc.attrs.push(attrs);
            (self.doc.attrs.len() - 1) as u32
        } else {
            NONE
        };
        let start = if tag == Tag::Other {
            name_hash(name)
        } else {
            0
        };
        let id = self.append(tag, flags, start, attr_idx);
        let void = tag.is_void() || (self_closing && (tag == Tag::Other || foreign));
        if !void {
            self.push(id, tag);
        }
        after
    }

    /// Raw-text elements: the content runs to the matching end tag.
    fn raw_text(
        &mut self,
        tag: Tag,
        _lt: usize,
        after: usize,
        flags: u8,
        attrs: Attrs,
        has_attrs: bool,
    ) -> usize {
        let b = self.b;
        let n = b.len();
        let end = if tag == Tag::Plaintext {
            n
        } else {
            find_end_tag(b, after, tag.name().as_bytes())
        };
        let attr_idx = if has_attrs {
            self.doc.attrs.push(attrs);
            (self.doc.attrs.len() - 1) as u32
        } else {
            NONE
        };
        match tag {
            Tag::Title => {
                if self.doc.title.is_empty() {
                    let mut s = String::new();
                    decode_entities_into(&self.src[after..end], &mut s);
                    self.doc.title = collapse_ws(&s);
                }
            }
            Tag::Textarea | Tag::Plaintext | Tag::Xmp => {
                // Kept as an element with its text so the extractor can decide.
                self.implied_ends(tag);
                let id = self.append(tag, flags, 0, attr_idx);
                self.push(id, tag);
                self.text(after, end, tag != Tag::Textarea);
                self.pop_to(self.stack.len() - 1);
            }
            _ => {
                // script, style, noscript, iframe, template, ...: content is not page text.
                self.append(tag, flags, 0, attr_idx);
            }
        }
        if end >= n {
            return n;
        }
        memchr(b'>', &b[end..]).map_or(n, |k| end + k + 1)
    }

    fn end_tag(&mut self, lt: usize) -> usize {
        let b = self.b;
        let n = b.len();
        let name_end = self.tag_name_end(lt + 2);
        let name = &b[lt + 2..name_end];
        let after = memchr(b'>', &b[name_end..]).map_or(n, |k| name_end + k + 1);
        let tag = Self::lookup_tag(name);
        match tag {
            // Content after these still belongs to the body.
            Tag::Body | Tag::Html => return after,
            Tag::Br => {
                let _ = self.append(Tag::Br, 0, 0, NONE);
                return after;
            }
            _ => {}
        }
        if self.open[tag as usize] == 0 {
            return after;
        }
        let hash = if tag == Tag::Other {
            name_hash(name)
        } else {
            0
        };
        let crosses_boundaries = matches!(
            tag,
            Tag::Table | Tag::Td | Tag::Th | Tag::Caption | Tag::Template
        );
        let lowest = self.stack.len().saturating_sub(MAX_END_SEARCH).max(1);
        let mut k = self.stack.len();
        while k > lowest {
            k -= 1;
            let node = &self.doc.nodes[self.stack[k] as usize];
            if node.tag == tag && (tag != Tag::Other || node.start == hash) {
                self.pop_to(k);
                return after;
            }
            if !crosses_boundaries && node.tag.is_scope_boundary() {
                break;
            }
            if tag == Tag::Tr && node.tag == Tag::Table {
                break;
            }
        }
        after
    }

    /// Closes what a start tag implicitly ends.
    fn implied_ends(&mut self, tag: Tag) {
        use Tag::*;
        if tag.closes_p() && self.open[P as usize] > 0 {
            // "button scope": a <p> inside a <button> is not closed from outside it
            self.close_in_scope(&[P], &[Button]);
        }
        match tag {
            Li => self.close_in_scope(&[Li], &[Ul, Ol, Menu, Dir]),
            Dt | Dd => self.close_in_scope(&[Dt, Dd], &[Dl]),
            Tr => self.close_in_scope(&[Tr], &[]),
            Td | Th => self.close_in_scope(&[Td, Th], &[Tr]),
            Thead | Tbody | Tfoot => self.close_in_scope(&[Thead, Tbody, Tfoot], &[]),
            Option if self.top_tag() == Option => self.pop_to(self.stack.len() - 1),
            Optgroup => {
                if self.top_tag() == Option {
                    self.pop_to(self.stack.len() - 1);
                }
                if self.top_tag() == Optgroup {
                    self.pop_to(self.stack.len() - 1);
                }
            }
            H1 | H2 | H3 | H4 | H5 | H6 if self.top_tag().is_heading() => {
                self.pop_to(self.stack.len() - 1)
            }
            A => self.close_in_scope(&[A], &[]),
            Button => self.close_in_scope(&[Button], &[]),
            _ => {}
        }
    }

    /// Pops through the nearest open element among `targets`, unless a scope
    /// boundary or one of `stop` comes first.
    fn close_in_scope(&mut self, targets: &[Tag], stop: &[Tag]) {
        if targets.iter().all(|t| self.open[*t as usize] == 0) {
            return;
        }
        let table_part = targets.iter().any(|t| {
            matches!(
                t,
                Tag::Tr | Tag::Td | Tag::Th | Tag::Thead | Tag::Tbody | Tag::Tfoot
            )
        });
        let lowest = self.stack.len().saturating_sub(MAX_END_SEARCH).max(1);
        let mut k = self.stack.len();
        while k > lowest {
            k -= 1;
            let t = self.doc.nodes[self.stack[k] as usize].tag;
            if targets.contains(&t) {
                self.pop_to(k);
                return;
            }
            if stop.contains(&t) {
                return;
            }
            if table_part {
                if t == Tag::Table {
                    return;
                }
            } else if t.is_scope_boundary() {
                return;
            }
        }
    }

    fn pop_until_tag(&mut self, tag: Tag) {
        if self.open[tag as usize] == 0 {
            return;
        }
        if let Some(k) = self
            .stack
            .iter()
            .rposition(|&id| self.doc.nodes[id as usize].tag == tag)
        {
            if k > 0 {
                self.pop_to(k);
            }
        }
    }

    fn top_tag(&self) -> Tag {
        self.stack
            .last()
            .map_or(Tag::Document, |&id| self.doc.nodes[id as usize].tag)
    }

    /// Pops the stack down to (and including) position `k` (never the root).
    fn pop_to(&mut self, k: usize) {
        let k = k.max(1);
        while self.stack.len() > k {
            if let Some(id) = self.stack.pop() {
                let t = self.doc.nodes[id as usize].tag as usize;
                self.open[t] = self.open[t].saturating_sub(1);
            }
        }
    }

    fn push(&mut self, id: u32, tag: Tag) {
        if self.stack.len() < MAX_DEPTH {
            self.stack.push(id);
            self.open[tag as usize] = self.open[tag as usize].saturating_add(1);
        }
    }

    fn append(&mut self, tag: Tag, flags: u8, start: u32, end: u32) -> u32 {
        let parent = *self.stack.last().unwrap_or(&0);
        let id = self.doc.nodes.len() as u32;
        self.doc.nodes.push(Node {
            tag,
            flags,
            parent,
            first_child: NONE,
            last_child: NONE,
            next_sibling: NONE,
            start,
            end,
        });
        let p = &mut self.doc.nodes[parent as usize];
        let last = p.last_child;
        p.last_child = id;
        if last == NONE {
            p.first_child = id;
        } else {
            self.doc.nodes[last as usize].next_sibling = id;
        }
        id
    }

    fn text(&mut self, start: usize, end: usize, raw: bool) {
        if end <= start {
            return;
        }
        let parent = *self.stack.last().unwrap_or(&0);
        // Merge with a directly preceding text node when contiguous (a lone `<`).
        let last = self.doc.nodes[parent as usize].last_child;
        if last != NONE && !raw {
            let ln = &mut self.doc.nodes[last as usize];
            if ln.tag == Tag::Text && ln.end as usize == start && ln.flags & flag::RAW == 0 {
                ln.end = end as u32;
                if memchr(b'&', &self.b[start..end]).is_some() {
                    ln.flags |= flag::AMP;
                }
                return;
            }
        }
        let mut flags = if raw { flag::RAW } else { 0 };
        if !raw && memchr(b'&', &self.b[start..end]).is_some() {
            flags |= flag::AMP;
        }
        self.append(Tag::Text, flags, start as u32, end as u32);
    }
}

/// Finds `</name` (case-insensitive) followed by a delimiter, from `from`;
/// returns its position, or the input length if absent.
fn find_end_tag(b: &[u8], from: usize, name: &[u8]) -> usize {
    let mut i = from;
    let finder = memmem::Finder::new(b"</");
    while i < b.len() {
        match finder.find(&b[i..]) {
            Some(k) => {
                let at = i + k;
                let ns = at + 2;
                let ne = ns + name.len();
                if ne <= b.len()
                    && b[ns..ne].eq_ignore_ascii_case(name)
                    && (ne == b.len() || is_ws(b[ne]) || b[ne] == b'>' || b[ne] == b'/')
                {
                    return at;
                }
                i = at + 2;
            }
            None => break,
        }
    }
    b.len()
}

/// Whether an inline style hides the element.
fn style_hides(v: &[u8]) -> bool {
    let mut i = 0;
    while let Some(k) = memchr(b':', &v[i..]) {
        let colon = i + k;
        let mut ps = colon;
        while ps > 0 && is_ws(v[ps - 1]) {
            ps -= 1;
        }
        let prop_start = v[..ps]
            .iter()
            .rposition(|&c| c == b';' || c == b'{' || c == b'"')
            .map_or(0, |x| x + 1);
        let prop = trim_ascii(&v[prop_start..ps]);
        let val_end = memchr(b';', &v[colon..]).map_or(v.len(), |k| colon + k);
        let val = trim_ascii(&v[colon + 1..val_end]);
        if (prop.eq_ignore_ascii_case(b"display") && starts_with_ci(val, b"none"))
            || (prop.eq_ignore_ascii_case(b"visibility") && starts_with_ci(val, b"hidden"))
        {
            return true;
        }
        i = colon + 1;
    }
    false
}

fn starts_with_ci(s: &[u8], p: &[u8]) -> bool {
    s.len() >= p.len() && s[..p.len()].eq_ignore_ascii_case(p)
}

fn trim_ascii(s: &[u8]) -> &[u8] {
    let a = s.iter().position(|&c| !is_ws(c)).unwrap_or(s.len());
    let e = s.iter().rposition(|&c| !is_ws(c)).map_or(a, |x| x + 1);
    &s[a..e]
}

/// Collapses whitespace runs to one space and trims.
pub fn collapse_ws(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for w in s.split(|c: char| c.is_whitespace()) {
        if w.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(w);
    }
    out
}

/// Windows-1252 meanings of numeric references 0x80..=0x9F, per the HTML spec.
const C1_REMAP: [u16; 32] = [
    0x20AC, 0x81, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160, 0x2039,
    0x0152, 0x8D, 0x017D, 0x8F, 0x90, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
    0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x9D, 0x017E, 0x0178,
];

/// Named references browsers also accept without a trailing `;`.
const LEGACY_NO_SEMI: [&str; 12] = [
    "amp", "lt", "gt", "quot", "nbsp", "copy", "reg", "AMP", "LT", "GT", "QUOT", "shy",
];

/// Decodes character references in `s` and appends the result to `out`.
pub fn decode_entities_into(s: &str, out: &mut String) {
    let b = s.as_bytes();
    let mut i = 0;
    while let Some(k) = memchr(b'&', &b[i..]) {
        let amp = i + k;
        out.push_str(&s[i..amp]);
        let (consumed, ok) = decode_one(s, amp, out);
        if !ok {
            out.push('&');
            i = amp + 1;
        } else {
            i = amp + consumed;
        }
    }
    out.push_str(&s[i..]);
}

/// Decodes the reference at `amp`; returns (bytes consumed, whether decoded).
fn decode_one(s: &str, amp: usize, out: &mut String) -> (usize, bool) {
    let b = s.as_bytes();
    let mut j = amp + 1;
    if b.get(j) == Some(&b'#') {
        j += 1;
        let hex = matches!(b.get(j), Some(b'x') | Some(b'X'));
        if hex {
            j += 1;
        }
        let ds = j;
        let mut v: u32 = 0;
        while j < b.len() && j - ds < 10 {
            let d = match (b[j], hex) {
                (c @ b'0'..=b'9', _) => (c - b'0') as u32,
                (c @ b'a'..=b'f', true) => (c - b'a' + 10) as u32,
                (c @ b'A'..=b'F', true) => (c - b'A' + 10) as u32,
                _ => break,
            };
            v = v
                .saturating_mul(if hex { 16 } else { 10 })
                .saturating_add(d);
            j += 1;
        }
        if j == ds {
            return (0, false);
        }
        // Skip any remaining digits of an absurdly long number.
        while j < b.len() && b[j].is_ascii_hexdigit() {
            j += 1;
        }
        if b.get(j) == Some(&b';') {
            j += 1;
        }
        let c = match v {
            0 => '\u{FFFD}',
            0x80..=0x9F => {
                char::from_u32(C1_REMAP[(v - 0x80) as usize] as u32).unwrap_or('\u{FFFD}')
            }
            _ => char::from_u32(v).unwrap_or('\u{FFFD}'),
        };
        out.push(c);
        return (j - amp, true);
    }
    let ns = j;
    while j < b.len() && j - ns < 32 && b[j].is_ascii_alphanumeric() {
        j += 1;
    }
    if j == ns {
        return (0, false);
    }
    let name = &b[ns..j];
    if b.get(j) == Some(&b';') {
        if let Ok(idx) = html_escape::NAMED_ENTITIES.binary_search_by(|(n, _)| (*n).cmp(name)) {
            out.push_str(html_escape::NAMED_ENTITIES[idx].1);
            return (j + 1 - amp, true);
        }
    }
    // Legacy references without `;`, longest match first (`&nbsp1` -> nbsp + "1").
    let mut best: Option<&str> = None;
    for cand in LEGACY_NO_SEMI {
        if name.starts_with(cand.as_bytes()) && best.is_none_or(|b: &str| cand.len() > b.len()) {
            best = Some(cand);
        }
    }
    if let Some(cand) = best {
        if let Ok(idx) =
            html_escape::NAMED_ENTITIES.binary_search_by(|(n, _)| (*n).cmp(cand.as_bytes()))
        {
            out.push_str(html_escape::NAMED_ENTITIES[idx].1);
            return (1 + cand.len(), true);
        }
    }
    (0, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text_of(doc: &Document<'_>, i: u32) -> String {
        let mut out = String::new();
        let end = subtree_end(doc, i);
        for k in i..end {
            if doc.nodes[k as usize].tag == Tag::Text {
                doc.push_text(k, &mut out);
            }
        }
        out
    }

    fn subtree_end(doc: &Document<'_>, i: u32) -> u32 {
        let inside = |mut k: u32| {
            while k != NONE && k > i {
                k = doc.nodes[k as usize].parent;
            }
            k == i
        };
        let mut k = i + 1;
        while (k as usize) < doc.nodes.len() && inside(k) {
            k += 1;
        }
        k
    }

    fn find(doc: &Document<'_>, tag: Tag) -> Vec<u32> {
        (0..doc.nodes.len() as u32)
            .filter(|&i| doc.nodes[i as usize].tag == tag)
            .collect()
    }

    /// Checks the structural invariants every walk relies on.
    fn check(doc: &Document<'_>) {
        for (i, n) in doc.nodes.iter().enumerate() {
            if i > 0 {
                assert!((n.parent as usize) < i, "parent precedes child");
            }
            let mut c = n.first_child;
            let mut prev = i as u32;
            while c != NONE {
                assert!(c > prev);
                assert_eq!(doc.nodes[c as usize].parent, i as u32);
                prev = c;
                c = doc.nodes[c as usize].next_sibling;
            }
        }
    }

    #[test]
    fn empty_and_garbage() {
        for src in [
            "", "<", "</", "<!", "<!--", "<a", "<a b='", "&", "&#", "&#x", "<<<>>>", "</>",
            "<!---->",
        ] {
            let d = Document::parse(src);
            check(&d);
        }
        let bytes: Vec<u8> = (0..5000u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        let s = String::from_utf8_lossy(&bytes);
        check(&Document::parse(&s));
    }

    #[test]
    fn basic_tree() {
        let d = Document::parse("<html lang=de><head><title>T &amp; x</title></head><body><p class=a>Hi <b>there</b></p></body></html>");
        check(&d);
        assert_eq!(d.title, "T & x");
        assert_eq!(d.lang, "de");
        let p = find(&d, Tag::P)[0];
        assert_eq!(d.class(p), "a");
        assert_eq!(text_of(&d, p), "Hi there");
    }

    #[test]
    fn implied_ends() {
        let d = Document::parse("<p>one<p>two<div>three</div><ul><li>a<li>b</ul>");
        check(&d);
        let ps = find(&d, Tag::P);
        assert_eq!(ps.len(), 2);
        assert_eq!(
            d.nodes[ps[1] as usize].parent,
            d.nodes[ps[0] as usize].parent
        );
        let lis = find(&d, Tag::Li);
        assert_eq!(
            d.nodes[lis[0] as usize].parent,
            d.nodes[lis[1] as usize].parent
        );
        let div = find(&d, Tag::Div)[0];
        assert_ne!(d.nodes[div as usize].parent, ps[1]);
        let d = Document::parse("<table><tr><td>a<td>b<tr><td>c</table>");
        check(&d);
        assert_eq!(find(&d, Tag::Tr).len(), 2);
        let tds = find(&d, Tag::Td);
        assert_eq!(
            d.nodes[tds[0] as usize].parent,
            d.nodes[tds[1] as usize].parent
        );
    }

    #[test]
    fn stray_and_misnested_end_tags() {
        let d = Document::parse("<div>a</span></p>b</div>c");
        check(&d);
        let div = find(&d, Tag::Div)[0];
        assert_eq!(text_of(&d, div), "ab");
        let d = Document::parse("<div><b>x</div>y");
        check(&d);
        let t = find(&d, Tag::Text);
        assert_eq!(d.nodes[t[1] as usize].parent, 0);
    }

    #[test]
    fn raw_text_and_comments() {
        let d = Document::parse(
            "<script>if (a<b) { x = '</p>'; }</script><p>ok<!-- <p>no --></p><style>p{}</STYLE >z",
        );
        // <noscript> is parsed as markup, as with scripting disabled (lxml does the same).
        check(&d);
        let texts: Vec<String> = find(&d, Tag::Text)
            .into_iter()
            .map(|i| {
                let mut s = String::new();
                d.push_text(i, &mut s);
                s
            })
            .collect();
        assert_eq!(texts, vec!["ok", "z"]);
        let d = Document::parse("<textarea><b>x</b></textarea>");
        let mut s = String::new();
        d.push_text(find(&d, Tag::Text)[0], &mut s);
        assert_eq!(s, "<b>x</b>");
        let d = Document::parse("<svg><text><![CDATA[a&amp;b]]></text></svg>");
        let mut s = String::new();
        d.push_text(find(&d, Tag::Text)[0], &mut s);
        assert_eq!(s, "a&amp;b");
        // Outside SVG/MathML it is a bogus comment up to the first `>`.
        let d = Document::parse("<body><![CDATA[\n<div id=x></div><p>kept</p> ]]></body>");
        let texts: Vec<String> = find(&d, Tag::Text)
            .into_iter()
            .map(|t| {
                let mut s = String::new();
                d.push_text(t, &mut s);
                s
            })
            .collect();
        assert_eq!(texts, vec!["kept", " ]]>"]);
    }

    #[test]
    fn attributes() {
        let d = Document::parse(
            "<div id=main class = 'x y' style=\"color:red; DISPLAY : None\"></div><div hidden></div><a href>l</a>\
             <div class=\"unterminated></div>",
        );
        check(&d);
        let divs = find(&d, Tag::Div);
        assert_eq!(d.id(divs[0]), "main");
        assert_eq!(d.class(divs[0]), "x y");
        assert!(d.nodes[divs[0] as usize].flags & flag::HIDDEN != 0);
        assert!(d.nodes[divs[1] as usize].flags & flag::HIDDEN != 0);
        assert!(d.nodes[find(&d, Tag::A)[0] as usize].flags & flag::HREF != 0);
        let d = Document::parse(
            "<meta property=og:title content='A &quot;B&quot;'><div aria-hidden=true>\
             <span aria-hidden=true>x</span><li aria-hidden=\"TRUE\"><i aria-hidden=false>",
        );
        assert_eq!(d.og_title, "A \"B\"");
        let hidden = |t: Tag| d.nodes[find(&d, t)[0] as usize].flags & flag::HIDDEN != 0;
        // Inline: decoration, hidden; blocks: slides and panels, kept.
        assert!(hidden(Tag::Span));
        assert!(!hidden(Tag::Div));
        assert!(!hidden(Tag::Li));
        assert!(!hidden(Tag::I));
    }

    #[test]
    fn entities() {
        let mut s = String::new();
        decode_entities_into(
            "a&amp;b &lt;&gt; &#65;&#x42;&#x1F600; &nbsp1 &bogus; &#128; &#0; & &amp",
            &mut s,
        );
        assert_eq!(
            s,
            "a&b <> AB\u{1F600} \u{a0}1 &bogus; \u{20ac} \u{FFFD} & &"
        );
        let mut s = String::new();
        decode_entities_into("&#99999999999999999999;x&notin;", &mut s);
        assert_eq!(s, "\u{FFFD}x\u{2209}");
    }

    #[test]
    fn deep_nesting_is_bounded() {
        let src = "<div>".repeat(100_000) + "x" + &"</div>".repeat(100_000);
        let d = Document::parse(&src);
        check(&d);
        let mut depth = 0;
        let mut i = find(&d, Tag::Text)[0];
        while i != 0 {
            i = d.nodes[i as usize].parent;
            depth += 1;
        }
        assert!(depth <= MAX_DEPTH + 1);
        let src = "<span>".repeat(50_000) + &"</p></b>".repeat(50_000);
        check(&Document::parse(&src));
    }

    #[test]
    fn unclosed_button_does_not_block_end_tags() {
        let d = Document::parse("<header><div><button>x</div></header><main><p>text</p></main>");
        check(&d);
        let main = find(&d, Tag::Main)[0];
        assert_eq!(d.nodes[main as usize].parent, 0);
    }

    #[test]
    fn unclosed_svg_ends_at_html_content() {
        let d = Document::parse("<div><svg><use/></div><h3>t</h3><p>x</p>");
        check(&d);
        let p = find(&d, Tag::P)[0];
        assert_eq!(d.nodes[p as usize].parent, 0);
    }

    #[test]
    fn unclosed_head_ends_at_body_content() {
        let d = Document::parse(
            "<html><head><title>t</title><meta charset=utf-8><div class=c><p>x</p></div></body></html>",
        );
        check(&d);
        let div = find(&d, Tag::Div)[0];
        assert_eq!(
            d.nodes[d.nodes[div as usize].parent as usize].tag,
            Tag::Html
        );
        assert_eq!(d.title, "t");
    }

    #[test]
    fn foreign_content() {
        let d = Document::parse("<svg><title/><style/><path/></svg><p>after</p>");
        check(&d);
        let p = find(&d, Tag::P)[0];
        assert_eq!(d.nodes[p as usize].parent, 0);
        assert_eq!(text_of(&d, p), "after");
    }

    #[test]
    fn self_closing_and_void() {
        let d = Document::parse("<p>a<br/>b<img src=x>c<svg><path/><path/></svg>d</p>");
        check(&d);
        let p = find(&d, Tag::P)[0];
        assert_eq!(text_of(&d, p), "abcd");
        assert_eq!(
            d.children(p)
                .filter(|&c| d.nodes[c as usize].tag == Tag::Text)
                .count(),
            4
        );
    }
}
