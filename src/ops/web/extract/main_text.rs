//! Main-text extraction over the arena tree of [`super::html`].
//!
//! The approach follows trafilatura: drop boilerplate elements by tag and by
//! class/id vocabulary, pick the first content container a ranked list of
//! patterns finds, prune it by link density, and emit its paragraphs,
//! headings, lists, quotes, code and tables. When that comes up short, a
//! readability-style scorer and a paragraph baseline compete with it.
//! Everything is data-driven (pattern tables below) and walks index ranges:
//! a node's subtree is the contiguous range `i..end[i]`.

use std::sync::OnceLock;

use super::html::{flag, Document, Tag, NONE};

/// Which side of the precision/recall trade-off to favour.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Favour {
    Precision,
    Recall,
    #[default]
    Balanced,
}

/// Output flavour.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum OutputFormat {
    #[default]
    Text,
    Markdown,
}

/// Extraction options (the op's keys).
#[derive(Clone, Copy, Debug)]
pub struct Options {
    pub favour: Favour,
    pub include_tables: bool,
    pub include_lists: bool,
    pub output: OutputFormat,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            favour: Favour::Balanced,
            include_tables: true,
            include_lists: true,
            output: OutputFormat::Text,
        }
    }
}

/// Result of an extraction.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Extracted {
    /// Main text; empty when the page has none.
    pub text: String,
    /// `<title>`, else `og:title`, else the first `<h1>`.
    pub title: String,
    /// The `<html lang>` attribute, as written.
    pub lang: String,
}

/// Parses `html` and extracts its main text.
pub fn extract(html: &str, opts: &Options) -> Extracted {
    let doc = Document::parse(html);
    extract_document(&doc, opts)
}

/// Extracts the main text of an already parsed document.
pub fn extract_document(doc: &Document<'_>, opts: &Options) -> Extracted {
    let ex = Extractor::new(doc, *opts);
    let blocks = ex.run();
    let text = render(&blocks, opts.output);
    let mut title = doc.title.clone();
    if title.is_empty() {
        title = doc.og_title.clone();
    }
    if title.is_empty() {
        if let Some(h1) =
            (0..doc.nodes.len() as u32).find(|&i| doc.nodes[i as usize].tag == Tag::H1)
        {
            let mut acc = Acc::default();
            ex.gather(h1, &ex.dead, 0, &mut acc);
            title = acc.finish();
        }
    }
    Extracted {
        text: clean_text(text),
        title: clean_text(title),
        lang: doc.lang.clone(),
    }
}

/// The text as a reader sees it: soft hyphens (`&shy;`, invisible
/// hyphenation hints that split words mid-way) removed, and in Unicode NFC
/// (as trafilatura gives it), so that the same word spelled with combining
/// marks or precomposed is one string for the filters and dedup after.
fn clean_text(text: String) -> String {
    use unicode_normalization::{is_nfc_quick, IsNormalized, UnicodeNormalization};
    let text = if text.contains('\u{AD}') {
        text.replace('\u{AD}', "")
    } else {
        text
    };
    if is_nfc_quick(text.chars()) == IsNormalized::Yes {
        text
    } else {
        text.nfc().collect()
    }
}

/// Whether the page declares itself a forum thread: schema.org's
/// `DiscussionForumPosting` as a JSON-LD `@type`, alone or in a list, as
/// Invision, Discourse and XenForo write it (trafilatura 2.3's
/// `_forum_thread_page`). Q&A pages (`QAPage`) are not: their answers are
/// outside comment containers.
fn forum_thread_page(src: &str) -> bool {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    memchr::memmem::find(src.as_bytes(), b"DiscussionForumPosting").is_some()
        && RE
            .get_or_init(|| {
                regex::Regex::new(
                    r#""@type"\s*:\s*(?:"DiscussionForumPosting"|\[[^\]]*"DiscussionForumPosting")"#,
                )
                .expect("a valid pattern")
            })
            .is_match(src)
}

/// Minimum text length below which fallbacks kick in (trafilatura's MIN_EXTRACTED_SIZE).
const MIN_EXTRACTED: usize = 250;

// ---------------------------------------------------------------------------
// Pattern tables

/// A vocabulary token: `^` anchors it to the attribute start, `$` to its end;
/// `!ary` forbids the match being followed by "ary" (comment vs commentary).
struct Pattern {
    text: &'static [u8],
    start: bool,
    end: bool,
    not_ary: bool,
    cat: u32,
}

/// Tokens of several categories bucketed by their first two bytes, so one
/// scan of an attribute value reports every category that matches.
struct PatternSet {
    buckets: Vec<Vec<Pattern>>,
}

const BUCKETS: usize = 1024;

fn bucket(a: u8, b: u8) -> usize {
    ((a as usize) * 31 + b as usize) & (BUCKETS - 1)
}

impl PatternSet {
    fn new(groups: &[(u32, &[&'static str])]) -> PatternSet {
        let mut buckets: Vec<Vec<Pattern>> = (0..BUCKETS).map(|_| Vec::new()).collect();
        for &(cat, tokens) in groups {
            for &t in tokens {
                let mut s = t;
                let start = s.starts_with('^');
                if start {
                    s = &s[1..];
                }
                let not_ary = s.ends_with("!ary");
                if not_ary {
                    s = &s[..s.len() - 4];
                }
                let end = s.ends_with('$');
                if end {
                    s = &s[..s.len() - 1];
                }
                let b = s.as_bytes();
                debug_assert!(b.len() >= 2, "tokens have two bytes at least");
                if b.len() >= 2 {
                    buckets[bucket(b[0], b[1])].push(Pattern {
                        text: b,
                        start,
                        end,
                        not_ary,
                        cat,
                    });
                }
            }
        }
        PatternSet { buckets }
    }

    /// Bitwise OR of the categories whose tokens occur in `s`.
    fn matches(&self, s: &str) -> u32 {
        let b = s.as_bytes();
        let mut found = 0;
        for i in 0..b.len().saturating_sub(1) {
            for p in &self.buckets[bucket(b[i], b[i + 1])] {
                if found & p.cat != 0 || (p.start && i > 0) {
                    continue;
                }
                if b[i..].starts_with(p.text) {
                    let e = i + p.text.len();
                    if p.end && e != b.len() {
                        continue;
                    }
                    if p.not_ary && b[e..].starts_with(b"ary") {
                        continue;
                    }
                    found |= p.cat;
                }
            }
        }
        found
    }
}

// Pattern categories.
const C_DISCARD: u32 = 1;
const C_DISCARD_ANY: u32 = 2;
const C_COMMENTS: u32 = 4;
const C_RAW_PRUNE: u32 = 8;
const C_TEASER: u32 = 16;
const C_PRECISION: u32 = 32;
const C_T1: u32 = 64;
const C_T3: u32 = 128;
const C_T4: u32 = 256;
const C_RB_NEG: u32 = 512;
const C_RB_POS: u32 = 1024;
const C_RB_UNLIKELY: u32 = 2048;
const C_RB_MAYBE: u32 = 4096;
const C_CAPTION: u32 = 8192;

struct Patterns {
    id: PatternSet,
    class: PatternSet,
    /// readability's case-insensitive vocabulary, matched on lowercased values
    rb: PatternSet,
}

// Boilerplate tokens shared by id and class (trafilatura's OVERALL_DISCARD_XPATH).
const DISCARD_BOTH: &[&str] = &[
    "^shar",
    "social",
    "viral",
    "newsletter",
    "syndication",
    "tags",
    "sidebar",
    "banner",
    "bread-crumb",
    "breadcrumb",
    "button",
    "author",
];
const DISCARD_ID: &[&str] = &[
    "^jp-",
    "^dpsp-content",
    "bmdh",
    "footer",
    "Footer",
    "share",
    "Share",
    "nav",
    "Nav",
    "menu",
    "related",
    "message-container",
    "premium",
    "^ad-",
];
const DISCARD_CLASS: &[&str] = &[
    "^nav",
    "^post-nav",
    "^ZendeskForm",
    "subnav",
    "avigation",
    "navbar",
    "navbox",
    "menu",
    "bar",
    " ad ",
    "-ad-",
    "^ad-",
    " ad-",
    "dfpAd",
    "dfpad",
    "outbrain",
    "taboola",
    "criteo",
    "paid-content",
    "paidcontent",
    "widget",
    "footer",
    "Footer",
    "byline",
    "Byline",
    "share-",
    "sociable",
    "embedded",
    "embed",
    "tag-list",
    "consent",
    "modal-content",
    "permission",
    "elated",
    "next-",
    "-stories",
    "most-popular",
    "more-on",
    "meta",
    "rating",
    "attachment",
    "timestamp",
    "user-info",
    "user-profile",
    "-icon",
    "article-infos",
    "message-container",
    "slide",
    "viewport",
    "overlay",
    "options",
    "expand",
    "obfuscated",
    "blurred",
    "mol-factbox",
    "yin",
    "zlylin",
    "nfoline",
    "cookie",
];
// Applies to any element (the second OVERALL_DISCARD expression).
const DISCARD_ANY_ID: &[&str] = &["^reply-", "hidden", "reader-comments", "akismet", "cookie"];
const DISCARD_ANY_CLASS: &[&str] = &[
    "^comments-title$",
    "^reply-",
    "^hide-",
    "comments-title",
    "nocomments",
    "-reply-",
    "message",
    "akismet",
    "suggest-links",
    "-hide-",
    "hide-print",
    " hidden",
    " hide",
    "noprint",
    "notloaded",
];
const COMMENTS_ID: &[&str] = &[
    "^Comment!ary",
    "^comment!ary",
    "^comol",
    "^disqus_thread",
    "^dsq-comments",
];
const COMMENTS_CLASS: &[&str] = &[
    "^Comment!ary",
    "^comment!ary",
    "article-comments",
    "post-comments",
];
const RAW_PRUNE: &[&str] = &[
    "mvp-post-add-box",
    "mvp-post-add-wrap",
    "infinite-scroll",
    "infinitescroll",
    "elementor-share-buttons",
];
/// RAW_PRUNE tokens that prune whatever the container holds.
fn raw_prune_always(s: &str) -> bool {
    s.contains("mvp-post-add-box")
        || s.contains("mvp-post-add-wrap")
        || s.contains("elementor-share-buttons")
}
const TEASER: &[&str] = &["teaser", "Teaser"];
// Image captions go with the images (trafilatura's DISCARD_IMAGE_ELEMENTS).
const CAPTION: &[&str] = &["caption"];
const PRECISION: &[&str] = &[
    "^bottom", " bottom", "bottom$", "bottom ", "^link$", "^link ", " link$", " link ",
];

// Content containers, in trafilatura's BODY_XPATH order.
const T1_ID: &[&str] = &[
    "entry-content",
    "article-content",
    "art-content",
    "article__content",
    "article-body",
    "article__body",
    "articlebody",
    "articleBody",
    "body-text",
];
const T1_CLASS: &[&str] = &[
    "post-text",
    "post_text",
    "post-body",
    "post-entry",
    "postentry",
    "post-content",
    "post_content",
    "postcontent",
    "postContent",
    "post_inner_wrapper",
    "article-text",
    "articletext",
    "articleText",
    "entry-content",
    "page-content",
    "text-content",
    "article-content",
    "art-content",
    "article__content",
    "article-body",
    "article__body",
    "articlebody",
    "articleBody",
    "ArticleContent",
    "body-text",
    "article__container",
];
const T3_ID: &[&str] = &["^primary", "story-body"];
const T3_CLASS: &[&str] = &[
    "^article ",
    "post-bodycopy",
    "story-content",
    "storycontent",
    "theme-content",
    "blog-content",
    "section-content",
    "single-content",
    "single-post",
    "main-column",
    "wpb_text_column",
    "story-body",
    "field-body",
    "fulltext",
    "Fulltext",
    "FullText",
    "fullText",
];
const T4_ID: &[&str] = &[
    "content-main",
    "content-body",
    "contentBody",
    "main-content",
    "Main-content",
    "main-Content",
];
const T4_CLASS: &[&str] = &[
    "content-main",
    "content_main",
    "content-body",
    "content__body",
    "main-content",
    "Main-content",
    "main-Content",
    "page-content",
    "Page-content",
    "page-Content",
];

// readability.js class/id weights.
const RB_NEGATIVE: &[&str] = &[
    "-ad-",
    "hidden",
    "^hid$",
    " hid$",
    " hid ",
    "^hid ",
    "banner",
    "combx",
    "comment",
    "com-",
    "contact",
    "footer",
    "gdpr",
    "masthead",
    "media",
    "meta",
    "outbrain",
    "promo",
    "related",
    "scroll",
    "share",
    "shoutbox",
    "sidebar",
    "skyscraper",
    "sponsor",
    "shopping",
    "tags",
    "widget",
];
const RB_POSITIVE: &[&str] = &[
    "article",
    "body",
    "content",
    "entry",
    "hentry",
    "h-entry",
    "main",
    "page",
    "pagination",
    "post",
    "text",
    "blog",
    "story",
];
const RB_UNLIKELY: &[&str] = &[
    "-ad-",
    "ai2html",
    "banner",
    "breadcrumbs",
    "combx",
    "comment",
    "community",
    "cover-wrap",
    "disqus",
    "extra",
    "footer",
    "gdpr",
    "header",
    "legends",
    "menu",
    "related",
    "remark",
    "replies",
    "rss",
    "shoutbox",
    "sidebar",
    "skyscraper",
    "social",
    "sponsor",
    "supplemental",
    "ad-break",
    "agegate",
    "pagination",
    "pager",
    "popup",
    "yom-remote",
];
const RB_MAYBE: &[&str] = &[
    "and", "article", "body", "column", "content", "main", "mathjax", "shadow",
];

fn patterns() -> &'static Patterns {
    static P: OnceLock<Patterns> = OnceLock::new();
    P.get_or_init(|| Patterns {
        id: PatternSet::new(&[
            (C_DISCARD, DISCARD_BOTH),
            (C_DISCARD, DISCARD_ID),
            (C_DISCARD_ANY, DISCARD_ANY_ID),
            (C_COMMENTS, COMMENTS_ID),
            (C_RAW_PRUNE, RAW_PRUNE),
            (C_TEASER, TEASER),
            (C_PRECISION, PRECISION),
            (C_T1, T1_ID),
            (C_T3, T3_ID),
            (C_T4, T4_ID),
            (C_CAPTION, CAPTION),
        ]),
        class: PatternSet::new(&[
            (C_DISCARD, DISCARD_BOTH),
            (C_DISCARD, DISCARD_CLASS),
            (C_DISCARD_ANY, DISCARD_ANY_CLASS),
            (C_COMMENTS, COMMENTS_CLASS),
            (C_RAW_PRUNE, RAW_PRUNE),
            (C_TEASER, TEASER),
            (C_PRECISION, PRECISION),
            (C_T1, T1_CLASS),
            (C_T3, T3_CLASS),
            (C_T4, T4_CLASS),
            (C_CAPTION, CAPTION),
        ]),
        rb: PatternSet::new(&[
            (C_RB_NEG, RB_NEGATIVE),
            (C_RB_POS, RB_POSITIVE),
            (C_RB_UNLIKELY, RB_UNLIKELY),
            (C_RB_MAYBE, RB_MAYBE),
        ]),
    })
}

/// Lines that are only a share/print widget label drop their element (trafilatura's RE_FILTER).
fn is_widget_line(line: &str) -> bool {
    const WORDS: &[&str] = &[
        "drucken",
        "email",
        "e-mail",
        "facebook",
        "flipboard",
        "google",
        "instagram",
        "linkedin",
        "mail",
        "pdf",
        "pinterest",
        "pocket",
        "print",
        "qq",
        "reddit",
        "twitter",
        "wechat",
        "weibo",
        "whatsapp",
        "xing",
        "mehr zum thema",
        "mehr zum thema:",
    ];
    let t = line.trim_start_matches(|c: char| !c.is_alphanumeric() && c != '_');
    if t.is_empty() {
        return false;
    }
    if t.len() <= 24 {
        let lower = t.to_lowercase();
        if WORDS.contains(&lower.as_str()) {
            return true;
        }
    }
    let lower_prefix: String = t.chars().take(12).collect::<String>().to_lowercase();
    lower_prefix.starts_with("more on this") && t.chars().count() <= 20
}

// ---------------------------------------------------------------------------
// Per-node classification

/// Soft (guarded) removal marks.
const SOFT_DISCARD: u8 = 1;
const SOFT_TEASER: u8 = 2;
const SOFT_PRECISION: u8 = 4;
const SOFT_CAPTION: u8 = 8;

/// Content-container tiers (bit per tier).
const TIER_COUNT: usize = 5;

/// Tags deleted with their content before anything else (trafilatura's MANUALLY_CLEANED).
/// Hard-removed tags the fallbacks still read: `<noscript>` (Blogger keeps posts
/// there) for readability and the baseline, `<aside>` for the baseline only (some
/// templates put the whole article in one; for readability it picked sidebars).
fn lenient_tag(t: Tag, aside: bool) -> bool {
    t == Tag::Noscript || (aside && t == Tag::Aside)
}

fn hard_removed_tag(t: Tag) -> bool {
    use Tag::*;
    matches!(
        t,
        Head | Title
            | Meta
            | Link
            | Base
            | Script
            | Style
            | Noscript
            | Template
            | Iframe
            | Textarea
            | Noembed
            | Noframes
            | Svg
            | Math
            | Aside
            | Embed
            | Footer
            | Object
            | Applet
            | Audio
            | Canvas
            | Figure
            | Map
            | Picture
            | Video
            | Area
            | Blink
            | Button
            | Datalist
            | Dialog
            | Frame
            | Frameset
            | Fieldset
            | Input
            | Label
            | Legend
            | Marquee
            | Menuitem
            | Nav
            | Noindex
            | Optgroup
            | Option
            | Output
            | Param
            | Progress
            | Rp
            | Rt
            | Select
            | Source
            | Track
            | Time
            | Keygen
            | Slot
    )
}

/// Kinds of output blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Para,
    Heading(u8),
    Item,
    Quote,
    Code,
    Row,
    /// The first row of a data table (markdown gets a separator after it).
    HeaderRow,
    /// Inline text sitting directly in a container.
    Run,
}

#[derive(Clone, Debug)]
struct Block {
    kind: Kind,
    text: String,
}

/// Whitespace-collapsing text accumulator.
#[derive(Default)]
struct Acc {
    buf: String,
    space: bool,
    link_chars: usize,
    chars: usize,
}

impl Acc {
    fn push_str(&mut self, s: &str, in_link: bool) {
        for c in s.chars() {
            if c.is_whitespace() {
                self.space = !self.buf.is_empty();
            } else {
                if self.space && !self.buf.ends_with('\n') {
                    self.buf.push(' ');
                    self.chars += 1;
                }
                self.space = false;
                self.buf.push(c);
                self.chars += 1;
                if in_link {
                    self.link_chars += 1;
                }
            }
        }
    }

    fn push_verbatim(&mut self, s: &str) {
        self.buf.push_str(s);
        self.chars += s.chars().count();
    }

    fn newline(&mut self) {
        if !self.buf.is_empty() && !self.buf.ends_with('\n') {
            self.buf.push('\n');
        }
        self.space = false;
    }

    fn soft_break(&mut self) {
        self.space = !self.buf.is_empty();
    }

    fn is_empty(&self) -> bool {
        self.buf.trim().is_empty()
    }

    fn finish(&mut self) -> String {
        let s = std::mem::take(&mut self.buf);
        self.space = false;
        self.link_chars = 0;
        self.chars = 0;
        let t = s.trim_end();
        if t.len() == s.len() {
            s
        } else {
            t.to_string()
        }
    }
}

/// Counts characters of a text node the way `trim()` would keep them
/// (whitespace runs count as one).
fn text_len(s: &str) -> u32 {
    let mut n = 0u32;
    let mut ws = true;
    for c in s.chars() {
        if c.is_whitespace() {
            if !ws {
                n += 1;
            }
            ws = true;
        } else {
            n += 1;
            ws = false;
        }
    }
    n
}

/// Per-candidate statistics over live nodes.
#[derive(Clone, Copy, Default)]
struct Stat {
    text: u32,
    link_text: u32,
    /// `<a>` elements (with or without text).
    links: u16,
    /// `<a>` elements with text.
    text_links: u16,
    /// `<a>` elements with under 10 chars of text.
    short_links: u16,
    /// live element children
    elems: u16,
    /// text inside `<p>`
    p_text: u32,
}

struct Extractor<'d, 'a> {
    doc: &'d Document<'a>,
    opts: Options,
    /// Exclusive end of each node's subtree.
    end: Vec<u32>,
    /// Hard-removed nodes (with their subtrees).
    dead: Vec<bool>,
    /// Soft removal marks per node.
    soft: Vec<u8>,
    /// Tier bits per node.
    tier: Vec<u8>,
    /// Whether a node has block-level descendants.
    has_block: Vec<bool>,
    /// Collapsed text length of text nodes.
    tlen: Vec<u32>,
    /// Text length under hard cleaning, per node.
    base_len: Vec<u32>,
    /// The `<body>` element (0 if none).
    body: u32,
}

impl<'d, 'a> Extractor<'d, 'a> {
    fn new(doc: &'d Document<'a>, opts: Options) -> Self {
        let n = doc.nodes.len();
        let pats = patterns();
        let mut end = vec![0u32; n];
        let mut has_block = vec![false; n];
        let mut tlen = vec![0u32; n];
        for i in (0..n).rev() {
            let node = &doc.nodes[i];
            end[i] = if node.last_child == NONE {
                i as u32 + 1
            } else {
                end[node.last_child as usize]
            };
            if node.tag == Tag::Text {
                tlen[i] = text_len(doc.raw_text(i as u32));
            } else if node.parent != NONE && (node.tag.is_block() || has_block[i]) {
                has_block[node.parent as usize] = true;
            }
        }
        let mut dead = vec![false; n];
        // On a forum thread the posts are in the containers the comment rule
        // removes; they are the content (unless precision is asked for).
        let forum = opts.favour != Favour::Precision && forum_thread_page(doc.src);
        let mut soft = vec![0u8; n];
        let mut tier = vec![0u8; n];
        let mut body = 0u32;
        let favour = opts.favour;
        for i in 1..n {
            let node = &doc.nodes[i];
            let parent_dead = dead[node.parent as usize];
            if node.tag == Tag::Text {
                dead[i] = parent_dead;
                continue;
            }
            if node.tag == Tag::Body && body == 0 {
                body = i as u32;
            }
            let mut d = parent_dead || hard_removed_tag(node.tag);
            let t = node.tag;
            let attrs = doc.attrs(i as u32);
            if !d {
                if let Some(a) = attrs {
                    let id = doc.span(a.id);
                    let class = doc.span(a.class);
                    let role = doc.span(a.role);
                    let idm = if id.is_empty() {
                        0
                    } else {
                        pats.id.matches(id)
                    };
                    let clm = if class.is_empty() {
                        0
                    } else {
                        pats.class.matches(class)
                    };
                    let both = idm | clm;
                    let container = matches!(
                        t,
                        Tag::Div | Tag::Section | Tag::Ul | Tag::Ol | Tag::Dl | Tag::Details
                    );
                    // disqus ids on bare lists are kept (trafilatura's REMOVE_COMMENTS_AND_LISTS)
                    if container
                        && !forum
                        && both & C_COMMENTS != 0
                        && !(matches!(t, Tag::Ul | Tag::Ol)
                            && clm & C_COMMENTS == 0
                            && id.starts_with(['d', 'D']))
                    {
                        d = true;
                    }
                    // Infinite-scroll containers go unless they hold the page's <h1> (then the
                    // article itself sits in one; trafilatura's RAW_TREE_PRUNE_XPATH).
                    if matches!(t, Tag::Div | Tag::Section | Tag::Aside)
                        && both & C_RAW_PRUNE != 0
                        && (raw_prune_always(id)
                            || raw_prune_always(class)
                            || !(i + 1..end[i] as usize).any(|k| doc.nodes[k].tag == Tag::H1))
                    {
                        d = true;
                    }
                    let discardable = matches!(
                        t,
                        Tag::Div
                            | Tag::Li
                            | Tag::Ul
                            | Tag::Ol
                            | Tag::Dl
                            | Tag::P
                            | Tag::Section
                            | Tag::Span
                    );
                    let mut s = 0u8;
                    if discardable
                        && (both & C_DISCARD != 0 || role.contains("nav") || role.contains("Nav"))
                    {
                        s |= SOFT_DISCARD;
                    }
                    if both & C_DISCARD_ANY != 0 {
                        s |= SOFT_DISCARD;
                    }
                    if discardable && both & C_CAPTION != 0 {
                        s |= SOFT_CAPTION;
                    }
                    if discardable && both & C_TEASER != 0 {
                        s |= SOFT_TEASER;
                    }
                    if favour == Favour::Precision && discardable && both & C_PRECISION != 0 {
                        s |= SOFT_PRECISION;
                    }
                    soft[i] = s;
                    if matches!(t, Tag::Article | Tag::Div | Tag::Main | Tag::Section) {
                        let itemprop = doc.span(a.itemprop);
                        let mut b = 0u8;
                        if class == "post"
                            || class == "entry"
                            || itemprop == "articleBody"
                            || id == "articleContent"
                            || both & C_T1 != 0
                        {
                            b |= 1;
                        }
                        if role == "article"
                            || id == "article"
                            || id == "story"
                            || matches!(
                                class,
                                "postarea" | "art-postcontent" | "text" | "cell" | "story"
                            )
                            || both & C_T3 != 0
                        {
                            b |= 4;
                        }
                        if id == "content" || class == "content" || both & C_T4 != 0 {
                            b |= 8;
                        }
                        if t != Tag::Main
                            && (class.starts_with("main")
                                || id.starts_with("main")
                                || role.starts_with("main"))
                        {
                            b |= 16;
                        }
                        tier[i] = b;
                    }
                }
                if node.flags & flag::HIDDEN != 0 {
                    soft[i] |= SOFT_DISCARD;
                }
                if t == Tag::Article {
                    tier[i] |= 2;
                }
                if t == Tag::Main {
                    tier[i] |= 16;
                }
            }
            dead[i] = d;
        }
        let mut ex = Extractor {
            doc,
            opts,
            end,
            dead,
            soft,
            tier,
            has_block,
            tlen,
            base_len: Vec::new(),
            body,
        };
        ex.base_len = ex.lengths(&ex.dead);
        ex.handle_forms();
        ex
    }

    /// Text length per node given a removal mask.
    fn lengths(&self, removed: &[bool]) -> Vec<u32> {
        let n = self.doc.nodes.len();
        let mut len = vec![0u32; n];
        for i in (1..n).rev() {
            if removed[i] {
                continue;
            }
            let node = &self.doc.nodes[i];
            if node.tag == Tag::Text {
                len[i] = self.tlen[i];
            }
            let p = node.parent as usize;
            len[p] = len[p].saturating_add(len[i]);
        }
        len
    }

    /// Forms are widgets unless they wrap most of the page (ASP.NET layouts).
    fn handle_forms(&mut self) {
        let total = self.base_len[0];
        let mut changed = false;
        for i in 1..self.doc.nodes.len() {
            if self.doc.nodes[i].tag == Tag::Form && !self.dead[i] && self.base_len[i] <= total / 2
            {
                let e = self.end[i] as usize;
                for d in &mut self.dead[i..e] {
                    *d = true;
                }
                changed = true;
            }
        }
        if changed {
            self.base_len = self.lengths(&self.dead);
        }
    }

    fn tag(&self, i: u32) -> Tag {
        self.doc.nodes[i as usize].tag
    }

    // -----------------------------------------------------------------------
    // Candidate pruning

    /// Builds the removal mask for the subtree of `root` (trafilatura's
    /// prune_unwanted_sections), returning it and the statistics under it.
    fn prune(&self, root: u32, favour: Favour) -> (Vec<bool>, Vec<Stat>) {
        self.prune_with(root, favour, &self.dead)
    }

    fn prune_with(&self, root: u32, favour: Favour, dead: &[bool]) -> (Vec<bool>, Vec<Stat>) {
        let r = root as usize;
        let e = self.end[r] as usize;
        // Guarded boilerplate removal: skip it when it would leave under 1/7 of the text.
        let total = self.base_len[r];
        let mut discarded = 0u32;
        let mut i = r + 1;
        while i < e {
            if !dead[i] && self.soft[i] & SOFT_DISCARD != 0 {
                discarded += self.base_len[i];
                i = self.end[i] as usize;
            } else {
                i += 1;
            }
        }
        let use_discard = total.saturating_sub(discarded) > total / 7;
        let mut mask = SOFT_TEASER | SOFT_PRECISION | SOFT_CAPTION;
        if use_discard {
            mask |= SOFT_DISCARD;
        }
        if favour == Favour::Recall {
            mask &= !SOFT_TEASER;
        }
        let mut removed = dead.to_vec();
        for i in r + 1..e {
            if !removed[i] {
                let p = self.doc.nodes[i].parent as usize;
                if removed[p] || self.soft[i] & mask != 0 {
                    removed[i] = true;
                }
            }
        }
        let stats = self.stats(root, &removed);
        // Link density, top-down: an element judged boilerplate goes with its subtree.
        let precision = favour == Favour::Precision;
        let mut i = r + 1;
        while i < e {
            if removed[i] {
                i = self.end[i] as usize;
                continue;
            }
            let t = self.doc.nodes[i].tag;
            let kill = match t {
                Tag::Div => self.link_dense(i as u32, &stats, &removed, precision, true),
                Tag::Ul | Tag::Ol | Tag::Dl | Tag::P => {
                    self.link_dense(i as u32, &stats, &removed, precision, false)
                }
                // A layout table's cell is a container like a div (a data table is judged whole).
                Tag::Td | Tag::Th => {
                    self.in_layout_table(i as u32, &removed, &stats)
                        && self.link_dense(i as u32, &stats, &removed, precision, false)
                }
                Tag::Table => {
                    let s = &stats[i];
                    s.links > 0 && s.text >= 200 && {
                        let lt = s.link_text as f32;
                        if s.text < 1000 {
                            lt > 0.8 * s.text as f32
                        } else {
                            lt > 0.5 * s.text as f32
                        }
                    }
                }
                _ => false,
            };
            if kill {
                // A paragraph holding a list item's or cell's content stays: the list is judged as a whole.
                let p = self.tag(self.doc.nodes[i].parent);
                if !(t == Tag::P && matches!(p, Tag::Li | Tag::Td | Tag::Th)) {
                    let end = self.end[i] as usize;
                    for x in &mut removed[i..end] {
                        *x = true;
                    }
                    i = end;
                    continue;
                }
            }
            i += 1;
        }
        let stats = self.stats(root, &removed);
        (removed, stats)
    }

    /// trafilatura's link_density_test (+ the backtracking rule for divs).
    fn link_dense(
        &self,
        i: u32,
        stats: &[Stat],
        removed: &[bool],
        precision: bool,
        backtrack: bool,
    ) -> bool {
        let s = &stats[i as usize];
        if s.links == 0 {
            return false;
        }
        let text = s.text as f32;
        if s.links == 1 {
            let thr = if precision { 10.0 } else { 100.0 };
            let lt = s.link_text as f32;
            if lt > thr && lt > text * 0.9 {
                return true;
            }
        }
        let has_next = {
            let mut n = self.doc.next_element_sibling(i);
            while n != NONE && removed[n as usize] {
                n = self.doc.next_element_sibling(n);
            }
            n != NONE
        };
        let limit = if self.tag(i) == Tag::P {
            if has_next {
                30.0
            } else {
                60.0
            }
        } else if has_next {
            100.0
        } else {
            300.0
        };
        if text < limit {
            if s.text_links == 0 {
                return true;
            }
            let dense = s.link_text as f32 > text * 0.8
                || (s.text_links > 1 && s.short_links as f32 / s.text_links as f32 > 0.8);
            if dense {
                return true;
            }
            if backtrack {
                let (depth, len) = if precision { (1, 200.0) } else { (3, 100.0) };
                return s.elems >= depth && text < len;
            }
            return false;
        }
        if s.links > 4 {
            let lt = s.link_text as f32;
            return lt > text * 0.9 && lt < 100.0 * s.text_links as f32;
        }
        false
    }

    /// Statistics over the live part of `root`'s subtree.
    fn stats(&self, root: u32, removed: &[bool]) -> Vec<Stat> {
        let r = root as usize;
        let e = self.end[r] as usize;
        let mut st = vec![Stat::default(); self.doc.nodes.len()];
        for i in (r..e).rev() {
            if removed[i] && i != r {
                continue;
            }
            let node = &self.doc.nodes[i];
            if node.tag == Tag::Text {
                st[i].text = self.tlen[i];
            } else if node.tag == Tag::A {
                let t = st[i].text;
                st[i].link_text = t;
                st[i].links = st[i].links.saturating_add(1);
                if t > 0 {
                    st[i].text_links = st[i].text_links.saturating_add(1);
                    if t < 10 {
                        st[i].short_links = st[i].short_links.saturating_add(1);
                    }
                }
            } else if node.tag == Tag::P {
                st[i].p_text = st[i].text;
            }
            if i == r {
                break;
            }
            let s = st[i];
            let p = &mut st[node.parent as usize];
            p.text = p.text.saturating_add(s.text);
            p.link_text = p.link_text.saturating_add(s.link_text);
            p.links = p.links.saturating_add(s.links);
            p.text_links = p.text_links.saturating_add(s.text_links);
            p.short_links = p.short_links.saturating_add(s.short_links);
            p.p_text = p.p_text.saturating_add(s.p_text);
            if node.tag != Tag::Text {
                p.elems = p.elems.saturating_add(1);
            }
        }
        st
    }

    // -----------------------------------------------------------------------
    // Emission

    /// Appends the inline text of `i`'s subtree to `acc` (br = newline, blocks = space).
    fn gather(&self, i: u32, removed: &[bool], link_depth: u32, acc: &mut Acc) {
        let r = i as usize;
        let e = self.end[r] as usize;
        // (end of an <a> subtree) markers, to know when we are inside a link
        let mut link_ends: Vec<usize> = Vec::new();
        let mut k = r;
        let mut tmp = String::new();
        while k < e {
            while link_ends.last().is_some_and(|&le| le <= k) {
                link_ends.pop();
            }
            if removed[k] && k != r {
                k = self.end[k] as usize;
                continue;
            }
            let node = &self.doc.nodes[k];
            match node.tag {
                Tag::Text => {
                    let in_link = link_depth > 0 || !link_ends.is_empty();
                    if node.flags & flag::AMP != 0 {
                        tmp.clear();
                        self.doc.push_text(k as u32, &mut tmp);
                        acc.push_str(&tmp, in_link);
                    } else {
                        acc.push_str(self.doc.raw_text(k as u32), in_link);
                    }
                }
                Tag::Br => acc.newline(),
                Tag::A => link_ends.push(self.end[k] as usize),
                t if t.is_block() && k != r => acc.soft_break(),
                _ => {}
            }
            k += 1;
        }
    }

    /// Text of a `<pre>`, whitespace kept.
    fn gather_pre(&self, i: u32, removed: &[bool], acc: &mut Acc) {
        let e = self.end[i as usize] as usize;
        let mut k = i as usize;
        let mut s = String::new();
        while k < e {
            if removed[k] && k != i as usize {
                k = self.end[k] as usize;
                continue;
            }
            match self.doc.nodes[k].tag {
                Tag::Text => self.doc.push_text(k as u32, &mut s),
                Tag::Br => s.push('\n'),
                _ => {}
            }
            k += 1;
        }
        let t = s.trim_matches('\n').trim_end();
        acc.push_verbatim(t);
    }

    /// Whether a table lays out the page rather than holding data.
    /// Whether the table holding cell `i` is used for layout.
    fn in_layout_table(&self, i: u32, removed: &[bool], stats: &[Stat]) -> bool {
        let mut p = self.doc.nodes[i as usize].parent;
        while p != NONE && self.tag(p) != Tag::Table {
            p = self.doc.nodes[p as usize].parent;
        }
        p != NONE && self.is_layout_table(p, removed, stats)
    }

    fn is_layout_table(&self, i: u32, removed: &[bool], stats: &[Stat]) -> bool {
        if let Some(a) = self.doc.attrs(i) {
            let role = self.doc.span(a.role);
            if role == "presentation" || role == "none" {
                return true;
            }
        }
        let e = self.end[i as usize] as usize;
        let mut k = i as usize + 1;
        let mut blocks = 0;
        while k < e {
            if removed[k] {
                k = self.end[k] as usize;
                continue;
            }
            match self.doc.nodes[k].tag {
                Tag::Table => return true,
                Tag::P
                | Tag::Div
                | Tag::Ul
                | Tag::Ol
                | Tag::H1
                | Tag::H2
                | Tag::H3
                | Tag::Blockquote
                | Tag::Pre => blocks += 1,
                _ => {}
            }
            k += 1;
        }
        blocks > 0 && stats[i as usize].text > 300
    }

    /// Emits the blocks of `root`'s subtree.
    fn emit(
        &self,
        root: u32,
        removed: &[bool],
        stats: &[Stat],
        allow_runs: bool,
        out: &mut Vec<Block>,
    ) {
        struct Frame {
            next: u32,
            run_kind: Kind,
            run: Acc,
        }
        let doc = self.doc;
        let mut stack = vec![Frame {
            next: doc.nodes[root as usize].first_child,
            run_kind: Kind::Run,
            run: Acc::default(),
        }];
        while let Some(top) = stack.last_mut() {
            let c = top.next;
            if c == NONE {
                let mut f = stack.pop().expect("non-empty stack");
                self.flush_run(&mut f.run, f.run_kind, allow_runs, out);
                continue;
            }
            top.next = doc.nodes[c as usize].next_sibling;
            if removed[c as usize] {
                continue;
            }
            let node = &doc.nodes[c as usize];
            let t = node.tag;
            match t {
                Tag::Text => {
                    if node.flags & flag::AMP != 0 {
                        let mut tmp = String::new();
                        doc.push_text(c, &mut tmp);
                        top.run.push_str(&tmp, false);
                    } else {
                        top.run.push_str(doc.raw_text(c), false);
                    }
                    continue;
                }
                Tag::Br => {
                    top.run.newline();
                    continue;
                }
                Tag::Hr => {
                    let kind = top.run_kind;
                    self.flush_run(&mut top.run, kind, allow_runs, out);
                    continue;
                }
                _ => {}
            }
            let block = t.is_block() || self.has_block[c as usize];
            if !block {
                let mut run = std::mem::take(&mut top.run);
                self.gather(c, removed, 0, &mut run);
                top.run = run;
                continue;
            }
            // A block starts: what ran before it is a block of its own.
            {
                let kind = top.run_kind;
                self.flush_run(&mut top.run, kind, allow_runs, out);
            }
            let leaf = !self.has_block[c as usize];
            let list_item_kind = if matches!(t, Tag::Li | Tag::Dt | Tag::Dd) {
                Some(Kind::Item)
            } else {
                None
            };
            let simple = match t {
                Tag::H1 | Tag::H2 | Tag::H3 | Tag::H4 | Tag::H5 | Tag::H6 => {
                    Some(Kind::Heading(t as u8 - Tag::H1 as u8 + 1))
                }
                Tag::P => Some(Kind::Para),
                Tag::Pre | Tag::Listing | Tag::Xmp | Tag::Plaintext => Some(Kind::Code),
                Tag::Blockquote if leaf => Some(Kind::Quote),
                _ if leaf && list_item_kind.is_some() => list_item_kind,
                _ => None,
            };
            if let Some(kind) = simple {
                let mut acc = Acc::default();
                if kind == Kind::Code {
                    self.gather_pre(c, removed, &mut acc);
                } else {
                    self.gather(c, removed, 0, &mut acc);
                }
                self.push_block(kind, &mut acc, out);
                continue;
            }
            match t {
                Tag::Ul | Tag::Ol | Tag::Dl | Tag::Menu | Tag::Dir if !self.opts.include_lists => {
                    continue
                }
                Tag::Table if !self.is_layout_table(c, removed, stats) => {
                    if self.opts.include_tables {
                        self.emit_table(c, removed, out);
                    }
                    continue;
                }
                _ => {}
            }
            if leaf {
                let mut acc = Acc::default();
                self.gather(c, removed, 0, &mut acc);
                let kind = if t == Tag::Blockquote {
                    Kind::Quote
                } else {
                    list_item_kind.unwrap_or(Kind::Run)
                };
                self.flush_run(&mut acc, kind, allow_runs, out);
                continue;
            }
            if stack.len() >= super::html::MAX_DEPTH {
                continue;
            }
            let run_kind = match t {
                Tag::Li | Tag::Dt | Tag::Dd => Kind::Item,
                Tag::Blockquote => Kind::Quote,
                _ => Kind::Run,
            };
            stack.push(Frame {
                next: doc.nodes[c as usize].first_child,
                run_kind,
                run: Acc::default(),
            });
        }
    }

    fn flush_run(&self, run: &mut Acc, kind: Kind, allow_runs: bool, out: &mut Vec<Block>) {
        if run.is_empty() {
            run.finish();
            return;
        }
        if kind == Kind::Run {
            // Link-dominated text between blocks is navigation.
            if run.link_chars * 10 > run.chars * 8 {
                run.finish();
                return;
            }
            if !allow_runs && run.chars < RUN_MIN_CHARS {
                run.finish();
                return;
            }
        }
        self.push_block(kind, run, out);
    }

    fn push_block(&self, kind: Kind, acc: &mut Acc, out: &mut Vec<Block>) {
        let text = acc.finish();
        let text = text.trim_start();
        if text.is_empty() {
            return;
        }
        // A share/print label goes, the lines around it (other <br> segments) stay.
        if text.lines().any(is_widget_line) {
            let kept: Vec<&str> = text.lines().filter(|l| !is_widget_line(l)).collect();
            let kept = kept.join("\n");
            if !kept.trim().is_empty() {
                out.push(Block {
                    kind,
                    text: kept.trim().to_string(),
                });
            }
            return;
        }
        out.push(Block {
            kind,
            text: text.to_string(),
        });
    }

    fn emit_table(&self, table: u32, removed: &[bool], out: &mut Vec<Block>) {
        let e = self.end[table as usize] as usize;
        let mut k = table as usize + 1;
        let mut first = true;
        while k < e {
            if removed[k] {
                k = self.end[k] as usize;
                continue;
            }
            let t = self.doc.nodes[k].tag;
            if t == Tag::Tr {
                let mut cells: Vec<String> = Vec::new();
                for c in self.doc.children(k as u32) {
                    if removed[c as usize] || !matches!(self.tag(c), Tag::Td | Tag::Th) {
                        continue;
                    }
                    let mut acc = Acc::default();
                    self.gather(c, removed, 0, &mut acc);
                    let s = acc.finish().replace('\n', " ");
                    cells.push(s.trim().to_string());
                }
                if cells.iter().any(|c| !c.is_empty()) {
                    let kind = if first { Kind::HeaderRow } else { Kind::Row };
                    first = false;
                    out.push(Block {
                        kind,
                        text: cells.join(" | "),
                    });
                }
                k = self.end[k] as usize;
                continue;
            }
            if t == Tag::Caption {
                let mut acc = Acc::default();
                self.gather(k as u32, removed, 0, &mut acc);
                self.push_block(Kind::Para, &mut acc, out);
                k = self.end[k] as usize;
                continue;
            }
            k += 1;
        }
    }

    // -----------------------------------------------------------------------
    // Pipeline

    /// Extracts from one candidate container; returns its blocks.
    fn extract_candidate(&self, root: u32, favour: Favour) -> Vec<Block> {
        let (removed, stats) = self.prune(root, favour);
        let p_text = stats[root as usize].p_text as usize;
        let factor = if favour == Favour::Precision { 1 } else { 3 };
        let allow_runs = favour == Favour::Recall || p_text < MIN_EXTRACTED * factor;
        let mut blocks = Vec::new();
        self.emit(root, &removed, &stats, allow_runs, &mut blocks);
        // A heading with nothing after it introduces content we did not keep.
        while blocks
            .last()
            .is_some_and(|b| matches!(b.kind, Kind::Heading(_)))
        {
            blocks.pop();
        }
        blocks
    }

    /// readability-lxml's candidate scoring; returns the best node and the
    /// siblings worth merging with it, in document order.
    fn readability_nodes(&self, lenient: &[bool]) -> Vec<u32> {
        let pats = patterns();
        let n = self.doc.nodes.len();
        let mut removed = lenient.to_vec();
        let mut lower = String::new();
        for i in 1..n {
            if removed[i] {
                continue;
            }
            let node = &self.doc.nodes[i];
            if removed[node.parent as usize] {
                removed[i] = true;
                continue;
            }
            if node.tag == Tag::Text || matches!(node.tag, Tag::Body | Tag::Html | Tag::A) {
                continue;
            }
            if let Some(a) = self.doc.attrs(i as u32) {
                lower.clear();
                lower.push_str(self.doc.span(a.class));
                lower.push(' ');
                lower.push_str(self.doc.span(a.id));
                lower.make_ascii_lowercase();
                let m = pats.rb.matches(&lower);
                if m & C_RB_UNLIKELY != 0 && m & C_RB_MAYBE == 0 {
                    removed[i] = true;
                }
            }
        }
        let stats = self.stats(0, &removed);
        let mut score: Vec<f32> = vec![f32::NAN; n];
        let mut order: Vec<u32> = Vec::new();
        for i in 1..n {
            if removed[i] {
                continue;
            }
            let t = self.doc.nodes[i].tag;
            let para =
                matches!(t, Tag::P | Tag::Pre | Tag::Td) || (t == Tag::Div && !self.has_block[i]);
            if !para || stats[i].text < 25 {
                continue;
            }
            let commas = self.count_commas(i as u32, &removed);
            // A paragraph scores for its own text, not its links': a list of
            // 2,000 linked names separated by commas (AO3's kudos) must not
            // outscore the story above it.
            let own = 1.0 - (stats[i].link_text as f32 / stats[i].text as f32).min(1.0);
            let s = (1.0 + commas as f32 + (stats[i].text as f32 / 100.0).min(3.0)) * own;
            let parent = self.doc.nodes[i].parent;
            let grand = if parent == NONE {
                NONE
            } else {
                self.doc.nodes[parent as usize].parent
            };
            for (anc, w) in [(parent, 1.0f32), (grand, 0.5)] {
                if anc == NONE || anc == 0 {
                    continue;
                }
                let a = anc as usize;
                if score[a].is_nan() {
                    score[a] = self.rb_initial(anc, &mut lower);
                    order.push(anc);
                }
                score[a] += s * w;
            }
        }
        let mut best = NONE;
        let mut best_score = f32::MIN;
        for &c in &order {
            let st = &stats[c as usize];
            let ld = if st.text == 0 {
                0.0
            } else {
                st.link_text as f32 / st.text as f32
            };
            let v = score[c as usize] * (1.0 - ld.min(1.0));
            score[c as usize] = v;
            if v > best_score {
                best_score = v;
                best = c;
            }
        }
        if best == NONE {
            return Vec::new();
        }
        let parent = self.doc.nodes[best as usize].parent;
        if parent == NONE || parent == 0 {
            return vec![best];
        }
        let threshold = (best_score * 0.2).max(10.0);
        let best_class = self.doc.class(best);
        let mut out = Vec::new();
        for sib in self.doc.children(parent) {
            let si = sib as usize;
            if removed[si] || self.tag(sib) == Tag::Text {
                continue;
            }
            if sib == best {
                out.push(sib);
                continue;
            }
            let mut sc = if score[si].is_nan() { 0.0 } else { score[si] };
            if !best_class.is_empty() && self.doc.class(sib) == best_class {
                sc += best_score * 0.2;
            }
            let keep = sc >= threshold || {
                self.tag(sib) == Tag::P && {
                    let st = &stats[si];
                    let ld = if st.text == 0 {
                        0.0
                    } else {
                        st.link_text as f32 / st.text as f32
                    };
                    (st.text > 80 && ld < 0.25)
                        || (st.text <= 80 && st.text > 0 && ld == 0.0 && self.ends_sentence(sib))
                }
            };
            if keep {
                out.push(sib);
            }
        }
        out
    }

    /// The hard-removal mask with `<noscript>` content alive: readability
    /// runs on the raw tree, where some blogs keep their only copy of the post.
    fn lenient_dead(&self, aside: bool) -> Vec<bool> {
        let mut d = self.dead.clone();
        let n = self.doc.nodes.len();
        let mut i = 1;
        while i < n {
            let node = &self.doc.nodes[i];
            if lenient_tag(node.tag, aside)
                && !self.dead[node.parent as usize]
                && !(node.tag == Tag::Noscript && self.holds_escaped_markup(i))
            {
                d[i] = false;
                for k in i + 1..self.end[i] as usize {
                    let nk = &self.doc.nodes[k];
                    d[k] = d[nk.parent as usize]
                        || (nk.tag != Tag::Text
                            && hard_removed_tag(nk.tag)
                            && !lenient_tag(nk.tag, aside));
                }
                i = self.end[i] as usize;
            } else {
                i += 1;
            }
        }
        d
    }

    /// Whether the first text in node `i` is markup written as text
    /// (`&lt;img …&gt;` in a `<noscript>`: tracking pixels), which is no
    /// page text however leniently the fallbacks read.
    fn holds_escaped_markup(&self, i: usize) -> bool {
        (i + 1..self.end[i] as usize)
            .filter(|&k| self.doc.nodes[k].tag == Tag::Text)
            .map(|k| {
                let mut s = String::new();
                self.doc.push_text(k as u32, &mut s);
                s
            })
            .find(|s| !s.trim().is_empty())
            .is_some_and(|s| s.trim_start().starts_with('<'))
    }

    fn ends_sentence(&self, i: u32) -> bool {
        let mut acc = Acc::default();
        self.gather(i, &self.dead, 0, &mut acc);
        let t = acc.finish();
        t.ends_with('.') || t.contains(". ")
    }

    fn count_commas(&self, i: u32, removed: &[bool]) -> usize {
        let e = self.end[i as usize] as usize;
        let mut k = i as usize;
        let mut c = 0;
        while k < e {
            if removed[k] && k != i as usize {
                k = self.end[k] as usize;
                continue;
            }
            if self.doc.nodes[k].tag == Tag::Text {
                let raw = self.doc.raw_text(k as u32);
                c += memchr::memchr_iter(b',', raw.as_bytes()).count();
                c += raw.matches('，').count();
            }
            k += 1;
        }
        c
    }

    fn rb_initial(&self, i: u32, lower: &mut String) -> f32 {
        let pats = patterns();
        let mut s = match self.tag(i) {
            Tag::Div => 5.0,
            Tag::Pre | Tag::Td | Tag::Blockquote => 3.0,
            Tag::Address
            | Tag::Ol
            | Tag::Ul
            | Tag::Dl
            | Tag::Dd
            | Tag::Dt
            | Tag::Li
            | Tag::Form => -3.0,
            Tag::H1 | Tag::H2 | Tag::H3 | Tag::H4 | Tag::H5 | Tag::H6 | Tag::Th => -5.0,
            _ => 0.0,
        };
        for v in [self.doc.class(i), self.doc.id(i)] {
            if v.is_empty() {
                continue;
            }
            lower.clear();
            lower.push_str(v);
            lower.make_ascii_lowercase();
            let m = pats.rb.matches(lower);
            if m & C_RB_NEG != 0 {
                s -= 25.0;
            }
            if m & C_RB_POS != 0 {
                s += 25.0;
            }
        }
        s
    }

    fn readability(&self, favour: Favour) -> Vec<Block> {
        let lenient = self.lenient_dead(false);
        let nodes = self.readability_nodes(&lenient);
        let mut blocks = Vec::new();
        let Some(&first) = nodes.first() else {
            return blocks;
        };
        // One pruning pass over the common parent serves every merged sibling.
        let parent = if nodes.len() > 1 {
            self.doc.nodes[first as usize].parent
        } else {
            first
        };
        let (removed, stats) = self.prune_with(parent, favour, &lenient);
        for c in nodes {
            if !removed[c as usize] {
                self.emit(c, &removed, &stats, true, &mut blocks);
            }
        }
        blocks
    }

    /// The containers after `c` with its tag and exact class: the other
    /// posts of a forum thread or a Q&A page, whose first post the tier
    /// patterns found (`js-post-body`, `post-content`, `message-body`).
    /// Only live ones, outside `c`, not nested in each other.
    fn repeats_of(&self, c: u32) -> Vec<u32> {
        let class = self.doc.class(c);
        let tag = self.tag(c);
        if class.trim().is_empty() {
            return Vec::new();
        }
        let mut out = Vec::new();
        let mut i = self.end[c as usize] as usize;
        while i < self.doc.nodes.len() {
            if self.dead[i] {
                i = self.end[i] as usize;
                continue;
            }
            if self.doc.nodes[i].tag == tag && self.doc.class(i as u32) == class {
                out.push(i as u32);
                i = self.end[i] as usize;
                continue;
            }
            i += 1;
        }
        out
    }

    /// The extracted blocks of [`Self::repeats_of`] `c`, in page order.
    fn repeat_blocks(&self, c: u32, favour: Favour) -> Vec<Block> {
        self.repeats_of(c)
            .into_iter()
            .flat_map(|o| self.extract_candidate(o, favour))
            .collect()
    }

    /// First live node with the tier bit.
    fn first_in_tier(&self, bit: u8) -> Option<u32> {
        (1..self.doc.nodes.len())
            .find(|&i| self.tier[i] & bit != 0 && !self.dead[i])
            .map(|i| i as u32)
    }

    fn run(&self) -> Vec<Block> {
        let favour = self.opts.favour;
        let mut best = self.cascade(favour);
        // Recall escalation (trafilatura): a short result covering little of
        // the page suggests a non-article layout; retry favouring recall.
        let len = text_chars(&best);
        if favour == Favour::Balanced
            && len > 0
            && len < ESCALATION_MAX
            && (len as f32) < ESCALATION_SHARE * self.page_len() as f32
        {
            let retry = self.cascade(Favour::Recall);
            let r_len = text_chars(&retry);
            if r_len >= MIN_EXTRACTED && r_len as f32 > ESCALATION_ACCEPT * len as f32 {
                best = retry;
            }
        }
        best
    }

    /// Text length of the page body under hard cleaning.
    fn page_len(&self) -> u32 {
        self.base_len[if self.body != 0 {
            self.body as usize
        } else {
            0
        }]
    }

    fn cascade(&self, favour: Favour) -> Vec<Block> {
        let mut best: Vec<Block> = Vec::new();
        let mut single: Vec<Block> = Vec::new();
        let mut single_at = 0u32;
        for t in 0..TIER_COUNT {
            let Some(c) = self.first_in_tier(1 << t) else {
                continue;
            };
            let mut blocks = self.extract_candidate(c, favour);
            if blocks.len() > 1 {
                blocks.extend(self.repeat_blocks(c, favour));
                best = blocks;
                break;
            }
            if single.is_empty() && !blocks.is_empty() {
                single = blocks;
                single_at = c;
            }
        }
        // A one-block candidate (one long paragraph) passed over for a later tier
        // comes back when that tier found much less. It may be the first post
        // of a thread whose posts are a block each (XenForo): then the other
        // posts come with it, when there are at least two, longer together.
        let single_len = text_chars(&single);
        if single_len >= SINGLE_MIN && single_len > SINGLE_RATIO * text_chars(&best) {
            best = single;
            if best.len() == 1 {
                let more = self.repeat_blocks(single_at, favour);
                if more.len() >= 2 && text_chars(&more) > single_len {
                    best.extend(more);
                }
            }
        }
        let root = if self.body != 0 { self.body } else { 0 };
        if best.is_empty() || text_chars(&best) < MIN_EXTRACTED {
            // Whole-page pass: wild paragraphs anywhere the pruning leaves them.
            let wild = self.extract_candidate(root, favour);
            if text_chars(&wild) > text_chars(&best) {
                best = wild;
            }
        }
        let len = text_chars(&best);
        // Compare with a readability-style pick (trafilatura's compare_extraction).
        let algo = self.readability(favour);
        let algo_len = text_chars(&algo);
        let prefer_algo = algo_len != 0
            && algo_len != len
            && len <= 2 * algo_len
            && (len == 0
                || algo_len > 2 * len
                || (algo_len > 2 * MIN_EXTRACTED && {
                    let paras = best
                        .iter()
                        .filter(|b| matches!(b.kind, Kind::Para | Kind::Run))
                        .count();
                    let rows = best
                        .iter()
                        .filter(|b| matches!(b.kind, Kind::Row | Kind::HeaderRow))
                        .count();
                    paras == 0 || rows > paras
                })
                || (favour == Favour::Recall && algo_len * 2 > 3 * len));
        if prefer_algo {
            best = algo;
        }
        if favour != Favour::Precision && text_chars(&best) < MIN_EXTRACTED {
            let base = self.baseline();
            if text_chars(&base) > text_chars(&best) {
                best = base;
            }
        }
        dedup_adjacent(&mut best);
        best
    }

    /// Last resort (trafilatura's baseline): every paragraph on the page,
    /// else the whole body text.
    fn baseline(&self) -> Vec<Block> {
        let lenient = self.lenient_dead(true);
        let mut out: Vec<Block> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let n = self.doc.nodes.len();
        let mut i = 1;
        while i < n {
            if lenient[i] {
                i = self.end[i] as usize;
                continue;
            }
            let t = self.doc.nodes[i].tag;
            if matches!(t, Tag::P | Tag::Pre | Tag::Blockquote | Tag::Q | Tag::Code) {
                let mut acc = Acc::default();
                self.gather(i as u32, &lenient, 0, &mut acc);
                let text = acc.finish();
                let text = text.trim();
                if !text.is_empty() && seen.insert(text.to_string()) {
                    out.push(Block {
                        kind: Kind::Para,
                        text: text.to_string(),
                    });
                }
                i = self.end[i] as usize;
                continue;
            }
            i += 1;
        }
        if text_chars(&out) < MIN_EXTRACTED {
            let root = if self.body != 0 { self.body } else { 0 };
            let (removed, _) = self.prune_with(root, Favour::Balanced, &lenient);
            let mut acc = Acc::default();
            self.gather(root, &removed, 0, &mut acc);
            let text = acc.finish();
            if text.chars().count() > text_chars(&out) {
                out = vec![Block {
                    kind: Kind::Para,
                    text: text.trim().to_string(),
                }];
            }
        }
        out
    }
}

const SINGLE_MIN: usize = 500;
const SINGLE_RATIO: usize = 2;
const ESCALATION_MAX: usize = 3000;
const ESCALATION_SHARE: f32 = 0.2;
const ESCALATION_ACCEPT: f32 = 1.5;

/// Inline text shorter than this sitting directly in a container is dropped
/// unless the container has little paragraph text.
const RUN_MIN_CHARS: usize = 200;

fn text_chars(blocks: &[Block]) -> usize {
    blocks.iter().map(|b| b.text.chars().count()).sum()
}

/// Drops a long block repeating the previous one (overlapping candidates).
fn dedup_adjacent(blocks: &mut Vec<Block>) {
    let mut out: Vec<Block> = Vec::with_capacity(blocks.len());
    for b in blocks.drain(..) {
        if let Some(prev) = out.last() {
            if prev.text == b.text && b.text.len() > 50 {
                continue;
            }
        }
        out.push(b);
    }
    *blocks = out;
}

fn render(blocks: &[Block], fmt: OutputFormat) -> String {
    let mut s = String::new();
    let mut prev: Option<Kind> = None;
    for b in blocks {
        if !s.is_empty() {
            s.push('\n');
        }
        match fmt {
            OutputFormat::Text => s.push_str(&b.text),
            OutputFormat::Markdown => {
                let was_row = matches!(prev, Some(Kind::Row | Kind::HeaderRow));
                match b.kind {
                    Kind::Heading(l) => {
                        for _ in 0..l.clamp(1, 6) {
                            s.push('#');
                        }
                        s.push(' ');
                        s.push_str(&b.text);
                    }
                    Kind::Item => {
                        s.push_str("- ");
                        s.push_str(&b.text.replace('\n', "\n  "));
                    }
                    Kind::Quote => {
                        s.push_str("> ");
                        s.push_str(&b.text.replace('\n', "\n> "));
                    }
                    Kind::Code => {
                        s.push_str("```\n");
                        s.push_str(&b.text);
                        s.push_str("\n```");
                    }
                    Kind::HeaderRow | Kind::Row => {
                        if b.kind == Kind::Row && !was_row {
                            // a row without a header row before it: still a table
                        }
                        s.push_str("| ");
                        s.push_str(&b.text);
                        s.push_str(" |");
                        if b.kind == Kind::HeaderRow {
                            let cols = b.text.matches(" | ").count() + 1;
                            s.push('\n');
                            s.push('|');
                            for _ in 0..cols {
                                s.push_str(" --- |");
                            }
                        }
                    }
                    Kind::Para | Kind::Run => s.push_str(&b.text),
                }
            }
        }
        prev = Some(b.kind);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARA: &str = "This is a long paragraph of real article text, written to be well over the thresholds \
        that the extractor uses, so that it reads like content rather than navigation or boilerplate.";

    fn page(body: &str) -> String {
        format!(
            "<html lang=en><head><title>My &amp; Title</title><style>p{{}}</style></head><body>\
             <nav><a href=/>Home</a> <a href=/x>Section</a></nav>\
             <div class=sidebar><p>Sidebar paragraph that should never be extracted at all, even if long enough to pass.</p></div>\
             {body}\
             <footer><p>Copyright footer text that is boilerplate and must go away from the output.</p></footer>\
             <script>var x = '<p>not text</p>';</script></body></html>"
        )
    }

    fn article() -> String {
        page(&format!(
            "<article><h1>Headline</h1><p>{PARA}</p><p>Second: {PARA}</p>\
             <ul><li>first item</li><li>second item</li></ul>\
             <table><tr><th>Name</th><th>Value</th></tr><tr><td>a</td><td>1</td></tr></table>\
             <pre>fn main() {{\n    println!(\"hi\");\n}}</pre>\
             <div id=comments><p>Great post! A comment that is long enough to be a paragraph by itself, surely.</p></div>\
             </article>"
        ))
    }

    /// Tracking pixels written as escaped markup in `<noscript>` (Yahoo
    /// Japan) are not text, even when the fallbacks read `<noscript>`.
    #[test]
    fn escaped_markup_in_noscript_is_not_text() {
        let pixel = "<noscript>&lt;div style=\"position:absolute;\"&gt;&lt;img width=1 height=1 \
                     src=\"http://b5.example.jp/b?P=oI9TLjE4Mi66RLpAorxEdAVuMTE4LgAAAAA2TzUA\"&gt;&lt;/div&gt;</noscript>";
        let body = format!(
            "<div>{}<div><span>{PARA}</span><br><span>Second: {PARA}</span></div>{}</div>",
            pixel.repeat(20),
            pixel.repeat(20)
        );
        let r = extract(&page(&body), &Options::default());
        assert!(r.text.contains("Second: This is a long"), "{}", r.text);
        assert!(!r.text.contains("position:absolute"), "{}", r.text);
    }

    /// A paragraph of linked names separated by commas (AO3's kudos list)
    /// scores for its own text, not its links: it must not beat the story.
    #[test]
    fn a_comma_separated_list_of_links_does_not_outscore_the_text() {
        let story: String = (0..10)
            .map(|i| format!("<p>Part {i}, in which, as before, {PARA}</p>"))
            .collect();
        let names: Vec<String> = (0..2000)
            .map(|i| format!("<a href=\"/users/reader{i}\">reader{i}</a>"))
            .collect();
        let body = format!(
            "<div id=wrap><div class=chapter><div>{story}</div></div>\
             <div id=feedback><div id=likes><p class=likes>{}</p></div></div></div>",
            names.join(", ")
        );
        let html = page(&body);
        let doc = Document::parse(&html);
        // The readability-style pick that the cascade's result is compared with.
        let picked = render(
            &Extractor::new(&doc, Options::default()).readability(Favour::Balanced),
            OutputFormat::Text,
        );
        assert!(picked.contains("Part 9, in which"), "{picked}");
        assert!(!picked.contains("reader1999"), "{picked}");
    }

    #[test]
    fn soft_hyphens_go_and_text_is_nfc() {
        // "Ita&shy;li&shy;ens" and a decomposed "é" (e + U+0301).
        let body = format!(
            "<article><p>Ita&shy;li&shy;ens Caf\u{65}\u{301} {PARA}</p><p>{PARA}</p></article>"
        );
        let r = extract(&page(&body), &Options::default());
        assert!(r.text.contains("Italiens Caf\u{e9} "), "{}", r.text);
        assert!(
            !r.text.contains('\u{AD}') && !r.text.contains('\u{301}'),
            "{}",
            r.text
        );
    }

    /// A Q&A page or a forum thread: the tier pattern finds the first post
    /// (`post-body`); the other posts of that tag and class come with it,
    /// in page order, and a teaser of another class does not.
    #[test]
    fn the_later_posts_of_a_thread_join_the_first() {
        let posts: String = (1..=4)
            .map(|i| {
                format!(
                    "<div class=post><div class=\"s-prose post-body\"><p>Post {i}: {PARA}</p>\
                     <p>More of post {i}: {PARA}</p></div></div>"
                )
            })
            .collect();
        let body = format!(
            "<div id=thread>{posts}<div class=teaser><p>Teaser of another thread: {PARA}</p></div></div>"
        );
        let r = extract(&page(&body), &Options::default());
        let at = |s: &str| {
            r.text
                .find(s)
                .unwrap_or_else(|| panic!("{s} missing: {}", r.text))
        };
        assert!(at("Post 1:") < at("Post 2:") && at("Post 3:") < at("Post 4:"));
        assert!(!r.text.contains("Teaser of another"), "{}", r.text);
    }

    /// A thread page that says so in JSON-LD keeps its posts although they
    /// sit in `#comments`; without the declaration `#comments` is boilerplate,
    /// and so it is with favour = "precision".
    #[test]
    fn a_declared_forum_thread_keeps_the_posts_in_its_comment_section() {
        let thread = format!(
            "<div id=comments><div class=post><p>First post: {PARA}</p></div>\
             <div class=post><p>A reply: {PARA}</p></div></div>"
        );
        let ld = r#"<script type="application/ld+json">{"@context": "https://schema.org", "@type": "DiscussionForumPosting", "headline": "t"}</script>"#;
        let forum = page(&format!(
            "{ld}<div class=intro><p>Short intro.</p></div>{thread}"
        ));
        let r = extract(&forum, &Options::default());
        assert!(
            r.text.contains("First post:") && r.text.contains("A reply:"),
            "{}",
            r.text
        );
        let blog = forum.replace("DiscussionForumPosting", "BlogPosting");
        let r = extract(&blog, &Options::default());
        assert!(!r.text.contains("A reply:"), "{}", r.text);
        let precise = Options {
            favour: Favour::Precision,
            ..Options::default()
        };
        assert!(!extract(&forum, &precise).text.contains("A reply:"));
    }

    /// XenForo: each post is one block of text (no paragraphs), so the
    /// first post is a one-block candidate; the thread's other posts join it
    /// (else a comma-rich block elsewhere, the readability-style pick, wins
    /// over one post).
    #[test]
    fn one_block_posts_of_a_thread_join_the_first() {
        let text =
            "Words without a pause go on and on here so that each post is long enough to count";
        let posts: String = (1..=4)
            .map(|i| {
                format!(
                    "<article class=\"message message--post\"><div class=bbWrapper>Post {i}: {text}<br>{text}<br>\
                     {text}<br>{text}<br>{text}<br>{text}<br>{text}</div></article>"
                )
            })
            .collect();
        let notes = "a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p, q, r, s, t, ".repeat(25);
        let html = page(&format!(
            "<div class=block>{posts}</div><div class=notes><p>{notes}</p></div>"
        ));
        let r = extract(&html, &Options::default());
        assert!(
            r.text.contains("Post 1:") && r.text.contains("Post 4:"),
            "{}",
            r.text
        );
    }

    #[test]
    fn keeps_article_drops_boilerplate() {
        let r = extract(&article(), &Options::default());
        assert!(r.text.contains("Headline"));
        assert!(r.text.contains(PARA));
        assert!(r.text.contains("first item"));
        assert!(r.text.contains("Name | Value"));
        assert!(
            r.text.contains("    println!(\"hi\");"),
            "pre keeps its lines: {}",
            r.text
        );
        for junk in ["Home", "Sidebar", "Copyright", "not text", "Great post"] {
            assert!(!r.text.contains(junk), "{junk} leaked: {}", r.text);
        }
        assert_eq!(r.title, "My & Title");
        assert_eq!(r.lang, "en");
    }

    #[test]
    fn blocks_are_lines_and_inline_whitespace_collapses() {
        let html =
            page(&format!("<article><p>{PARA}</p><p>a  <b>bold</b>\n word&nbsp;x<br>next line</p><p>{PARA}</p></article>"));
        let r = extract(&html, &Options::default());
        let lines: Vec<&str> = r.text.lines().collect();
        assert_eq!(lines, vec![PARA, "a bold word x", "next line", PARA]);
    }

    #[test]
    fn table_and_list_options() {
        let opts = Options {
            include_tables: false,
            include_lists: false,
            ..Options::default()
        };
        let r = extract(&article(), &opts);
        assert!(r.text.contains(PARA));
        assert!(!r.text.contains("first item"));
        assert!(!r.text.contains("Name | Value"));
    }

    #[test]
    fn markdown_output() {
        let opts = Options {
            output: OutputFormat::Markdown,
            ..Options::default()
        };
        let r = extract(&article(), &opts);
        assert!(r.text.contains("# Headline\n"), "{}", r.text);
        assert!(r.text.contains("- first item\n- second item"));
        assert!(r
            .text
            .contains("| Name | Value |\n| --- | --- |\n| a | 1 |"));
        assert!(r.text.contains("```\nfn main() {"));
    }

    #[test]
    fn link_lists_are_navigation() {
        let links: String = (0..20)
            .map(|i| format!("<li><a href=/{i}>Link number {i}</a></li>"))
            .collect();
        let html = page(&format!(
            "<article><p>{PARA}</p><ul>{links}</ul><p>{PARA} end</p></article>"
        ));
        let r = extract(&html, &Options::default());
        assert!(r.text.contains(PARA));
        assert!(!r.text.contains("Link number"), "{}", r.text);
    }

    #[test]
    fn hidden_elements_are_dropped() {
        let html = page(&format!(
            "<article><p>{PARA}</p><div style='display:none'><p>Hidden {PARA}</p></div><p hidden>Also hidden</p><p>{PARA} 2</p></article>"
        ));
        let r = extract(&html, &Options::default());
        assert!(!r.text.contains("Hidden"));
        assert!(!r.text.contains("Also hidden"));
    }

    #[test]
    fn infinite_scroll_container_with_the_h1_is_the_article() {
        let html = page(&format!(
            "<div class='article_page infinite-scroll'><h1>Headline</h1><div class=entry-content><p>{PARA}</p><p>Next {PARA}</p></div></div>\
             <div class=infinite-scroll><h2>Next story</h2><p>Appended story {PARA}</p></div>"
        ));
        let r = extract(&html, &Options::default());
        assert!(r.text.contains(&format!("Next {PARA}")), "{}", r.text);
        assert!(!r.text.contains("Appended story"), "{}", r.text);
    }

    #[test]
    fn link_cells_of_layout_tables_are_dropped() {
        let html = page(&format!(
            "<table><tr><td><table><tr><td><p>{PARA}</p><p>More {PARA}</p></td></tr></table></td></tr>\
             <tr><td>[<a href=/c>Close</a>] [<a href=/p>Comment</a>] [<a href=/q>Print</a>]</td></tr></table>"
        ));
        let r = extract(&html, &Options::default());
        assert!(r.text.contains(&format!("More {PARA}")), "{}", r.text);
        assert!(!r.text.contains("[Close]"), "{}", r.text);
    }

    #[test]
    fn no_container_falls_back_to_paragraphs() {
        let html = format!("<body><div><p>{PARA}</p><p>{PARA} again</p></div></body>");
        let r = extract(&html, &Options::default());
        assert!(r.text.contains(PARA));
        assert!(r.text.contains("again"));
    }

    #[test]
    fn title_fallbacks() {
        let r = extract(
            "<meta property='og:title' content='OG'><h1>H</h1>",
            &Options::default(),
        );
        assert_eq!(r.title, "OG");
        let r = extract("<body><h1>The  heading</h1></body>", &Options::default());
        assert_eq!(r.title, "The heading");
    }

    #[test]
    fn chinese_text() {
        let zh = "这是一个很长的中文段落，用来测试没有空格的文本是否能够被正确地提取出来，而不会被当作导航或者广告。".repeat(3);
        let html = page(&format!(
            "<div class=article-content><h2>标题</h2><p>{zh}</p><p>{zh}</p><div class=related><a href=/1>相关文章一</a><a href=/2>相关文章二</a></div></div>"
        ));
        let r = extract(&html, &Options::default());
        assert!(r.text.contains(&zh));
        assert!(!r.text.contains("相关文章"));
    }

    #[test]
    fn empty_and_garbage_inputs() {
        for favour in [Favour::Precision, Favour::Balanced, Favour::Recall] {
            let opts = Options {
                favour,
                ..Options::default()
            };
            assert_eq!(extract("", &opts).text, "");
            let _ = extract("<<<>>><p><table><td><li></ul></p>&#x110000;&", &opts);
            let bytes: Vec<u8> = (0..20000u32)
                .map(|i| (i.wrapping_mul(2654435761) >> 11) as u8)
                .collect();
            let _ = extract(&String::from_utf8_lossy(&bytes), &opts);
            let deep = "<div><p>x".repeat(5000);
            let _ = extract(&deep, &opts);
        }
    }

    #[test]
    fn precision_and_recall_differ_sensibly() {
        let html = article();
        let p = extract(
            &html,
            &Options {
                favour: Favour::Precision,
                ..Options::default()
            },
        );
        let r = extract(
            &html,
            &Options {
                favour: Favour::Recall,
                ..Options::default()
            },
        );
        assert!(p.text.contains(PARA));
        assert!(r.text.len() >= p.text.len());
    }
}
