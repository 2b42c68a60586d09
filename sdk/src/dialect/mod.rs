//! CommonMark written in each vendor's own Markdown dialect.
//!
//! Chat vendors each render a different subset of Markdown and show the
//! rest as raw syntax: Lark's `lark_md` has no lists, headings or code,
//! Teams' TextBlock shows `#` headings literally, WeCom's `markdown` has no
//! lists, italics or code, DingTalk documents a subset without code or
//! tables. [`convert`] reads a message's CommonMark as pulldown-cmark events
//! and writes what the dialect can show, turning the rest into text that
//! reads well (headings into bold lines, lists into `•` lines, tables into
//! `Title: cell` lines) and escaping user text the way the dialect escapes
//! (docs/vendors/*.md, "Markdown dialect").
//!
//! Bounded like [`markdown_to_text`]: nesting is drawn at most
//! [`MAX_NESTING`] deep and the output is at most 4 × the input plus
//! [`TEXT_SLACK`] bytes, then cut on a character boundary and ended with
//! [`TRUNCATED`].

mod escape;
mod writer;

#[cfg(test)]
mod tests;

pub use escape::escape;

use crate::text::markdown_to_text;
#[cfg(doc)]
use crate::text::{MAX_NESTING, TEXT_SLACK, TRUNCATED};

/// A vendor's Markdown dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// Plain text ([`markdown_to_text`]).
    Plain,
    /// DingTalk robot `markdown` and `actionCard` text: headings, quotes,
    /// bold, italic, links and lists; no code, tables or strikethrough.
    DingTalk,
    /// Lark card `lark_md` text: bold, italic, strikethrough and links;
    /// no headings, lists, quotes, code or tables; HTML-entity escapes.
    LarkMd,
    /// Lark card `markdown` element: `lark_md` plus lists and code.
    LarkMarkdown,
    /// WeCom robot `markdown`: headings, bold, links and quotes; no lists,
    /// italics, code or tables.
    WeComMarkdown,
    /// WeCom robot `markdown_v2`: headings, bold, italics, links, quotes,
    /// lists, code and pipe tables.
    WeComMarkdownV2,
    /// Teams Adaptive Card TextBlock: bold, italic, links and lists; no
    /// headings, quotes, code or tables.
    TeamsText,
}

/// What a dialect renders natively.
#[derive(Debug, Clone, Copy)]
struct Caps {
    /// `#` headings (otherwise a bold line).
    headings: bool,
    /// `- ` and `1. ` lists (otherwise `•` lines).
    lists: bool,
    /// Bold marker, empty when none.
    strong: &'static str,
    /// Italic marker, empty when none.
    emphasis: &'static str,
    /// Strikethrough marker, empty when none.
    strike: &'static str,
    /// Backtick code spans and fenced blocks.
    code: bool,
    /// Pipe tables (otherwise one `Title: cell` line per row).
    tables: bool,
    /// What starts a quoted line.
    quote: &'static str,
    /// `[text](url)` links (otherwise `text (url)`).
    links: bool,
    /// A thematic break.
    rule: &'static str,
}

impl Dialect {
    fn caps(self) -> Caps {
        let base = Caps {
            headings: false,
            lists: false,
            strong: "**",
            emphasis: "*",
            strike: "",
            code: false,
            tables: false,
            quote: "▎",
            links: true,
            rule: "———",
        };
        match self {
            Dialect::Plain => Caps {
                strong: "",
                emphasis: "",
                quote: "",
                links: false,
                rule: "----",
                ..base
            },
            Dialect::DingTalk => Caps {
                headings: true,
                lists: true,
                quote: "> ",
                ..base
            },
            Dialect::LarkMd => Caps {
                strike: "~~",
                ..base
            },
            Dialect::LarkMarkdown => Caps {
                lists: true,
                strike: "~~",
                code: true,
                rule: "---",
                ..base
            },
            Dialect::WeComMarkdown => Caps {
                headings: true,
                emphasis: "",
                quote: "> ",
                ..base
            },
            Dialect::WeComMarkdownV2 => Caps {
                headings: true,
                lists: true,
                code: true,
                tables: true,
                quote: "> ",
                rule: "---",
                ..base
            },
            Dialect::TeamsText => Caps {
                lists: true,
                emphasis: "_",
                ..base
            },
        }
    }
}

/// A message's fields as lines in `dialect`: `bullet` then `**name**: value`
/// (plain `name: value` in [`Dialect::Plain`]), both escaped.
pub fn fields(fields: &[crate::Field], bullet: &str, dialect: Dialect) -> Vec<String> {
    let strong = dialect.caps().strong;
    fields
        .iter()
        .map(|f| {
            format!(
                "{bullet}{strong}{}{strong}: {}",
                escape(&f.name, dialect),
                escape(&f.value, dialect)
            )
        })
        .collect()
}

/// A link in `dialect`: `[label](url)`, or `label: url` in plain text.
pub fn link(label: &str, url: &str, dialect: Dialect) -> String {
    if dialect.caps().links {
        format!("[{}]({})", escape(label, dialect), writer::link_target(url))
    } else {
        format!("{label}: {url}")
    }
}

/// `markdown` (CommonMark with tables and strikethrough) written in
/// `dialect`. Bounded: see the module documentation.
pub fn convert(markdown: &str, dialect: Dialect) -> String {
    if dialect == Dialect::Plain {
        return markdown_to_text(markdown);
    }
    writer::Writer::new(dialect, markdown.len()).run(markdown)
}
