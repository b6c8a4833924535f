//! Ops for pages from the web crawl: main-text extraction and URL filters.

pub mod extract;
pub mod url_filter;
