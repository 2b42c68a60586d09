//! The Markdown body as HTML for the email's HTML part, rendered from
//! pulldown-cmark events with the same inline styles as the layout in
//! [`crate::html`]: raw HTML in it is shown as text, links keep only http,
//! https and mailto URLs, and the output is bounded like the SDK's
//! converters.

use carillon_sdk::text::{self, MAX_NESTING, TRUNCATED};
use pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag, TagEnd};

use crate::HTML_BUDGET;
use crate::html::{LINK, MONO, MUTED, RULE, SHADE, escape, safe_url};

/// The most HTML [`markdown`] writes for `input` bytes of Markdown: the
/// SDK's converter budget ([`text::output_budget`], 4 × the input plus
/// 4 KiB), but never less than the HTML part may hold ([`HTML_BUDGET`]):
/// HTML spends far more bytes per element than text (a table cell with its
/// inline style is ~70 bytes for `| a `), and Markdown whose HTML fits the
/// part must render whole. What passes the budget could never be sent
/// anyway; the fitting then shortens the body.
pub fn markdown_budget(input: usize) -> usize {
    text::output_budget(input).max(HTML_BUDGET)
}

/// What one parser event does to the open elements.
enum Step {
    /// Opens an element; its closing HTML.
    Open(String),
    /// Closes the innermost element.
    Close,
    /// Text, breaks, rules: nothing opened or closed.
    Leaf,
}

/// CommonMark (with tables, strikethrough and task lists) as HTML with
/// inline styles. Raw HTML is escaped, unsafe link targets dropped.
/// Bounded like the SDK's converters: block quotes and lists are drawn at
/// most [`MAX_NESTING`] deep (deeper ones flow into the deepest drawn, each
/// item on its own line), and the HTML, with the closing tags of the
/// elements still open, stays within [`markdown_budget`]; past it the open
/// elements are closed and [`TRUNCATED`] ends the text.
pub fn markdown(source: &str) -> String {
    let options =
        Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS;
    let budget = markdown_budget(source.len());
    let mut out = String::with_capacity(source.len().saturating_mul(2).min(budget));
    // The closing HTML of every open element, innermost last, and its size.
    let mut closes: Vec<String> = Vec::new();
    let mut pending = 0usize;
    // Whether each open block quote or list is drawn (the depth cap).
    let mut drawn: Vec<bool> = Vec::new();
    let mut in_head = false;
    let mut alignments: Vec<pulldown_cmark::Alignment> = Vec::new();
    let mut cell = 0usize;
    for event in Parser::new_ext(source, options) {
        let mut piece = String::new();
        let step = match event {
            Event::Start(tag) => Step::Open(open(
                tag,
                &mut piece,
                &mut drawn,
                &mut in_head,
                &mut alignments,
                &mut cell,
            )),
            Event::End(tag) => {
                match tag {
                    TagEnd::BlockQuote(_) | TagEnd::List(_) => {
                        drawn.pop();
                    }
                    TagEnd::TableHead => in_head = false,
                    TagEnd::TableCell => cell += 1,
                    _ => {}
                }
                piece.push_str(closes.last().map_or("", String::as_str));
                Step::Close
            }
            Event::Text(text) => {
                piece.push_str(&escape(&text));
                Step::Leaf
            }
            Event::Code(code) => {
                piece.push_str(&format!(
                    "<code style=\"font-family:{MONO};font-size:13px;background-color:{SHADE};padding:1px 4px;border-radius:3px;\">{}</code>",
                    escape(&code)
                ));
                Step::Leaf
            }
            Event::Html(raw) | Event::InlineHtml(raw) => {
                piece.push_str(&escape(&raw));
                Step::Leaf
            }
            Event::SoftBreak => {
                piece.push('\n');
                Step::Leaf
            }
            Event::HardBreak => {
                piece.push_str("<br>\n");
                Step::Leaf
            }
            Event::Rule => {
                piece.push_str(&format!(
                    "<hr style=\"border:none;border-top:1px solid {RULE};margin:16px 0;\">\n"
                ));
                Step::Leaf
            }
            Event::TaskListMarker(done) => {
                piece.push_str(if done { "☑ " } else { "☐ " });
                Step::Leaf
            }
            _ => Step::Leaf,
        };
        let after = match &step {
            Step::Open(close) => pending + close.len(),
            Step::Close => pending.saturating_sub(piece.len()),
            Step::Leaf => pending,
        };
        if out.len() + piece.len() + after > budget {
            // Close what is open (without this event) and say so.
            for close in closes.iter().rev() {
                out.push_str(close);
            }
            out.push_str(&format!(
                "<p style=\"margin:0 0 12px 0;\">{}</p>\n",
                escape(TRUNCATED.trim())
            ));
            return out;
        }
        out.push_str(&piece);
        pending = after;
        match step {
            Step::Open(close) => closes.push(close),
            Step::Close => {
                closes.pop();
            }
            Step::Leaf => {}
        }
    }
    out
}

/// Writes the opening HTML of `tag` to `out` and returns its closing HTML
/// (both empty for what is not drawn).
fn open(
    tag: Tag<'_>,
    out: &mut String,
    drawn: &mut Vec<bool>,
    in_head: &mut bool,
    alignments: &mut Vec<pulldown_cmark::Alignment>,
    cell: &mut usize,
) -> String {
    match tag {
        Tag::Paragraph => {
            out.push_str("<p style=\"margin:0 0 12px 0;\">");
            "</p>\n".to_owned()
        }
        Tag::Heading { level, .. } => {
            let n = heading_number(level);
            let size = match n {
                1 => 20,
                2 => 18,
                3 => 16,
                4 => 15,
                _ => 14,
            };
            out.push_str(&format!(
                "<h{n} style=\"margin:16px 0 8px 0;font-size:{size}px;line-height:1.4;\">"
            ));
            format!("</h{n}>\n")
        }
        Tag::BlockQuote(_) => {
            let draw = drawn.len() < MAX_NESTING;
            drawn.push(draw);
            if !draw {
                return String::new();
            }
            out.push_str(&format!(
                "<blockquote style=\"margin:0 0 12px 0;padding:0 0 0 12px;border-left:3px solid {RULE};color:{MUTED};\">"
            ));
            "</blockquote>\n".to_owned()
        }
        Tag::CodeBlock(_) => {
            out.push_str(&format!(
                "<pre style=\"margin:0 0 12px 0;padding:10px 12px;background-color:{SHADE};border-radius:4px;font-family:{MONO};font-size:13px;line-height:19px;white-space:pre-wrap;word-break:break-word;\"><code>"
            ));
            "</code></pre>\n".to_owned()
        }
        Tag::List(start) => {
            let draw = drawn.len() < MAX_NESTING;
            drawn.push(draw);
            match (draw, start) {
                (false, _) => String::new(),
                (true, Some(start)) => {
                    out.push_str(&format!(
                        "<ol start=\"{start}\" style=\"margin:0 0 12px 0;padding-left:24px;\">"
                    ));
                    "</ol>\n".to_owned()
                }
                (true, None) => {
                    out.push_str("<ul style=\"margin:0 0 12px 0;padding-left:24px;\">");
                    "</ul>\n".to_owned()
                }
            }
        }
        // An item of a list past the depth cap: its own line.
        Tag::Item if drawn.last() == Some(&false) => "<br>\n".to_owned(),
        Tag::Item => {
            out.push_str("<li style=\"margin:0 0 4px 0;\">");
            "</li>\n".to_owned()
        }
        Tag::Emphasis => {
            out.push_str("<em>");
            "</em>".to_owned()
        }
        Tag::Strong => {
            out.push_str("<strong>");
            "</strong>".to_owned()
        }
        Tag::Strikethrough => {
            out.push_str("<s>");
            "</s>".to_owned()
        }
        Tag::Link { dest_url, .. } | Tag::Image { dest_url, .. } => match safe_url(&dest_url) {
            Some(url) => {
                out.push_str(&format!(
                    "<a href=\"{}\" target=\"_blank\" style=\"color:{LINK};\">",
                    escape(url)
                ));
                "</a>".to_owned()
            }
            None => String::new(),
        },
        Tag::Table(aligns) => {
            *alignments = aligns;
            out.push_str(
                "<table cellpadding=\"0\" cellspacing=\"0\" border=\"0\" style=\"border-collapse:collapse;margin:0 0 12px 0;font-size:13px;\">",
            );
            "</tbody></table>\n".to_owned()
        }
        Tag::TableHead => {
            *in_head = true;
            *cell = 0;
            out.push_str("<thead><tr>");
            "</tr></thead><tbody>".to_owned()
        }
        Tag::TableRow => {
            *cell = 0;
            out.push_str("<tr>");
            "</tr>".to_owned()
        }
        Tag::TableCell => {
            let align = match alignments.get(*cell) {
                Some(pulldown_cmark::Alignment::Right) => "right",
                Some(pulldown_cmark::Alignment::Center) => "center",
                _ => "left",
            };
            let (tag, extra) = if *in_head {
                ("th", format!("background-color:{SHADE};font-weight:bold;"))
            } else {
                ("td", String::new())
            };
            out.push_str(&format!(
                "<{tag} style=\"padding:4px 8px;border:1px solid {RULE};text-align:{align};{extra}\">"
            ));
            format!("</{tag}>")
        }
        _ => String::new(),
    }
}

fn heading_number(level: HeadingLevel) -> u8 {
    match level {
        HeadingLevel::H1 => 1,
        HeadingLevel::H2 => 2,
        HeadingLevel::H3 => 3,
        HeadingLevel::H4 => 4,
        HeadingLevel::H5 => 5,
        HeadingLevel::H6 => 6,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn markdown_is_escaped_and_links_are_filtered() {
        let html = markdown(
            "Hi <script>alert(1)</script> **bold** [ok](https://x.example/?a=1&b=2) [bad](javascript:alert(1)) `a<b`\n\n<div onclick=\"x\">raw</div>",
        );
        assert!(!html.contains("<script"), "{html}");
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
        assert!(html.contains("<strong>bold</strong>"));
        assert!(
            html.contains("href=\"https://x.example/?a=1&amp;b=2\""),
            "{html}"
        );
        assert!(!html.contains("javascript"), "{html}");
        assert!(html.contains(">a&lt;b</code>"), "{html}");
        assert!(!html.contains("<div"), "{html}");
        assert!(html.contains("&lt;div onclick=&quot;x&quot;&gt;"), "{html}");
    }

    #[test]
    fn markdown_tables_lists_and_code() {
        let html =
            markdown("| a | b |\n|---|--:|\n| 1 | 2 |\n\n1. one\n2. two\n\n```\nx < y\n```\n");
        assert!(html.contains("<th style=\""), "{html}");
        assert!(html.contains("text-align:right;\">2</td>"), "{html}");
        assert!(html.contains("<ol start=\"1\""), "{html}");
        assert!(html.contains("x &lt; y"), "{html}");
        assert_eq!(
            html.matches("<table").count(),
            html.matches("</table>").count()
        );
    }

    /// Issue 28 item 1: nesting in ~20 KiB of Markdown must not become
    /// megabytes of HTML. Each level opens an element with inline styles
    /// (~130 bytes for 2 bytes of input): the output stays within the
    /// budget, nesting is drawn at most `MAX_NESTING` deep, and the HTML
    /// stays balanced.
    #[test]
    fn nesting_stays_within_the_budget() {
        use carillon_sdk::text::{MAX_NESTING, TRUNCATED};
        let cases = [
            "> ".repeat(10 * 1024),
            "- ".repeat(10 * 1024),
            "1. ".repeat(7 * 1024),
            format!("{}deep\n", "> - ".repeat(5 * 1024)),
            (0..1000)
                .map(|i| format!("{}- item {i}\n", "  ".repeat(i % 40)))
                .collect::<String>(),
            "\"&<>'".repeat(4 * 1024),
            format!("{}x{}", "*a ".repeat(3000), " b*".repeat(3000)),
        ];
        for source in &cases {
            let html = markdown(source);
            let budget = markdown_budget(source.len());
            assert!(
                html.len() <= budget + TRUNCATED.len() + 64,
                "{} bytes of HTML from {} bytes (budget {budget})",
                html.len(),
                source.len()
            );
            for tag in ["blockquote", "ul", "ol", "li", "p", "em", "strong"] {
                assert_eq!(
                    html.matches(&format!("<{tag}>")).count()
                        + html.matches(&format!("<{tag} ")).count(),
                    html.matches(&format!("</{tag}>")).count(),
                    "unbalanced <{tag}> in {}",
                    &source[..40.min(source.len())]
                );
            }
            let depth = html
                .split("</blockquote>")
                .next()
                .unwrap_or_default()
                .matches("<blockquote")
                .count();
            assert!(depth <= MAX_NESTING, "{depth} levels of block quote");
        }
        // The budget never cuts what the part could hold.
        assert!(markdown_budget(1) >= crate::HTML_BUDGET);
        let table: String = std::iter::once("| a | b |\n|---|---|\n".to_owned())
            .chain((0..300).map(|i| format!("| {i} | x |\n")))
            .collect();
        assert!(!markdown(&table).contains(TRUNCATED.trim()));
    }
}
