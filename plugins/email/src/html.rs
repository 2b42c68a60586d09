//! The HTML part: a single-column layout of nested tables with inline CSS
//! only (what mail clients render consistently), built from escaped text.
//! The Markdown body is rendered here from pulldown-cmark events: raw HTML
//! in it is shown as text, and links keep only http, https and mailto URLs.

use carillon_sdk::table::{self, Tone};
use carillon_sdk::text::{self, MAX_NESTING, TRUNCATED};
use carillon_sdk::{Context, Message, Severity, Table};
use pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag, TagEnd};

use crate::HTML_BUDGET;
use crate::mail::Words;

const FONT: &str = "-apple-system,BlinkMacSystemFont,'Segoe UI',Roboto,'Helvetica Neue',Arial,'PingFang SC','Microsoft YaHei',sans-serif";
const MONO: &str = "Consolas,Menlo,'Courier New',monospace";
const INK: &str = "#172b4d";
const MUTED: &str = "#5e6c84";
const RULE: &str = "#dfe1e6";
const SHADE: &str = "#f4f5f7";
const LINK: &str = "#0052cc";
const GOOD: (&str, &str) = ("#1b7f3b", "#e3fcef");
const BAD: (&str, &str) = ("#c9372c", "#ffebe6");

/// The banner colour of a severity.
pub(crate) fn severity_colour(severity: Severity) -> &'static str {
    match severity {
        Severity::Info => "#0c66e4",
        Severity::Success => "#1f845a",
        Severity::Warning => "#b65c02",
        Severity::Error => "#c9372c",
        Severity::Critical => "#5d1f1a",
    }
}

/// `&`, `<`, `>`, `"` and `'` as entities.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A URL usable in `href`: http, https or mailto, without spaces or control
/// characters.
pub(crate) fn safe_url(url: &str) -> Option<&str> {
    let url = url.trim();
    let lower = url.to_ascii_lowercase();
    let scheme_ok = lower.starts_with("https://")
        || lower.starts_with("http://")
        || lower.starts_with("mailto:");
    let chars_ok = !url.chars().any(|c| c.is_whitespace() || c.is_control());
    (scheme_ok && chars_ok).then_some(url)
}

/// The whole HTML document with `body` (Markdown) and the first `rows` rows
/// of the table.
pub(crate) fn part(
    ctx: &Context,
    message: &Message,
    words: &Words,
    locale: &str,
    body: &str,
    rows: usize,
    csv_attached: bool,
) -> String {
    let lang: String = locale
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(35)
        .collect();
    let colour = severity_colour(message.severity);
    let mut out = String::with_capacity(body.len() * 2 + 4096);
    out.push_str(&format!(
        "<!DOCTYPE html>\n<html lang=\"{lang}\">\n<head>\n<meta charset=\"UTF-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n</head>\n",
        escape(&message.title)
    ));
    out.push_str(&format!(
        "<body style=\"margin:0;padding:0;background-color:{SHADE};\">\n\
         <table role=\"presentation\" width=\"100%\" cellpadding=\"0\" cellspacing=\"0\" border=\"0\" style=\"background-color:{SHADE};\">\n\
         <tr><td align=\"center\" style=\"padding:24px 12px;\">\n\
         <table role=\"presentation\" width=\"100%\" cellpadding=\"0\" cellspacing=\"0\" border=\"0\" style=\"max-width:680px;background-color:#ffffff;border:1px solid {RULE};border-radius:6px;border-collapse:separate;font-family:{FONT};color:{INK};\">\n"
    ));
    // The severity banner.
    out.push_str(&format!(
        "<tr><td style=\"background-color:{colour};color:#ffffff;padding:10px 24px;font-size:13px;line-height:18px;font-weight:bold;letter-spacing:0.5px;text-transform:uppercase;border-radius:6px 6px 0 0;\">{}</td></tr>\n",
        escape(words.severity(message.severity))
    ));
    // Title.
    out.push_str(&format!(
        "<tr><td style=\"padding:20px 24px 4px 24px;\"><h1 style=\"margin:0;font-size:20px;line-height:28px;font-weight:bold;color:{INK};\">{}</h1></td></tr>\n",
        escape(&message.title)
    ));
    // Body.
    if !body.trim().is_empty() {
        out.push_str(&format!(
            "<tr><td style=\"padding:12px 24px 0 24px;font-size:14px;line-height:22px;\">\n{}</td></tr>\n",
            markdown(body)
        ));
    }
    // Table.
    if let Some(t) = &message.table {
        out.push_str(&format!(
            "<tr><td style=\"padding:12px 24px 0 24px;\">\n{}</td></tr>\n",
            data_table(t, rows, words, locale, csv_attached)
        ));
    }
    // Fields.
    if !message.fields.is_empty() {
        let mut fields = String::from(
            "<table cellpadding=\"0\" cellspacing=\"0\" border=\"0\" style=\"border-collapse:collapse;font-size:14px;line-height:20px;\">\n",
        );
        for field in &message.fields {
            fields.push_str(&format!(
                "<tr><th align=\"left\" valign=\"top\" style=\"padding:4px 16px 4px 0;color:{MUTED};font-weight:normal;text-align:left;white-space:nowrap;\">{}</th><td style=\"padding:4px 0;\">{}</td></tr>\n",
                escape(&field.name),
                escape(&field.value)
            ));
        }
        fields.push_str("</table>\n");
        out.push_str(&format!(
            "<tr><td style=\"padding:16px 24px 0 24px;\">\n{fields}</td></tr>\n"
        ));
    }
    // The link as a button.
    if let Some(link) = &message.link
        && let Some(url) = safe_url(&link.url)
    {
        let label = link
            .label
            .as_deref()
            .filter(|l| !l.trim().is_empty())
            .unwrap_or(words.default_link_label());
        out.push_str(&format!(
            "<tr><td style=\"padding:20px 24px 0 24px;\">\n\
             <table role=\"presentation\" cellpadding=\"0\" cellspacing=\"0\" border=\"0\"><tr><td style=\"border-radius:4px;background-color:{LINK};\">\
             <a href=\"{}\" target=\"_blank\" style=\"display:inline-block;padding:10px 20px;font-size:14px;line-height:20px;font-weight:bold;color:#ffffff;text-decoration:none;border-radius:4px;\">{}</a>\
             </td></tr></table>\n</td></tr>\n",
            escape(url),
            escape(label)
        ));
    }
    // Footer.
    out.push_str(&format!(
        "<tr><td style=\"padding:24px 24px 20px 24px;\"><p style=\"margin:0;padding-top:12px;border-top:1px solid {RULE};font-size:12px;line-height:18px;color:{MUTED};\">{}</p></td></tr>\n",
        escape(&words.footer(&ctx.delivery_id))
    ));
    out.push_str("</table>\n</td></tr>\n</table>\n</body>\n</html>\n");
    out
}

/// The message's table: a header row of titles, then `rows` rows with
/// prefix and suffix, numbers right-aligned, conditional cells coloured.
fn data_table(t: &Table, rows: usize, words: &Words, locale: &str, csv_attached: bool) -> String {
    let cell_style = format!("padding:6px 10px;border-bottom:1px solid {RULE};");
    let mut out = String::from(
        "<table cellpadding=\"0\" cellspacing=\"0\" border=\"0\" width=\"100%\" style=\"border-collapse:collapse;font-size:13px;line-height:18px;\">\n<thead><tr>",
    );
    for column in &t.columns {
        let align = if column_is_numeric(t, column, rows) {
            "right"
        } else {
            "left"
        };
        out.push_str(&format!(
            "<th align=\"{align}\" style=\"padding:6px 10px;border-bottom:2px solid {RULE};background-color:{SHADE};text-align:{align};font-weight:bold;\">{}</th>",
            escape(&column.title)
        ));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for row in t.rows.iter().take(rows) {
        out.push_str("<tr>");
        for (i, column) in t.columns.iter().enumerate() {
            let value = row.get(i).map_or("", String::as_str);
            let shown = escape(&table::display(column, value));
            let align = if is_number(value) { "right" } else { "left" };
            let tone = match table::tone(column, value) {
                Tone::Good => format!(
                    "color:{};background-color:{};font-weight:bold;",
                    GOOD.0, GOOD.1
                ),
                Tone::Bad => format!(
                    "color:{};background-color:{};font-weight:bold;",
                    BAD.0, BAD.1
                ),
                Tone::Neutral => String::new(),
            };
            out.push_str(&format!(
                "<td align=\"{align}\" style=\"{cell_style}text-align:{align};{tone}\">{shown}</td>"
            ));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
    let omitted = t.rows.len().saturating_sub(rows);
    if omitted > 0 {
        let mut note = table::more_rows_note(omitted, locale).trim().to_owned();
        if csv_attached {
            note.push(' ');
            note.push_str(words.all_rows_attached());
        }
        out.push_str(&format!(
            "<p style=\"margin:8px 0 0 0;font-size:12px;line-height:18px;color:{MUTED};\">{}</p>\n",
            escape(&note)
        ));
    }
    out
}

fn is_number(value: &str) -> bool {
    value.trim().parse::<f64>().is_ok_and(f64::is_finite)
}

/// A column whose shown cells are all numbers (and at least one is).
fn column_is_numeric(t: &Table, column: &carillon_sdk::Column, rows: usize) -> bool {
    let index = t.columns.iter().position(|c| std::ptr::eq(c, column));
    let Some(index) = index else { return false };
    let mut cells = t
        .rows
        .iter()
        .take(rows)
        .filter_map(|r| r.get(index))
        .peekable();
    cells.peek().is_some() && cells.all(|c| is_number(c))
}

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

    #[test]
    fn urls() {
        assert_eq!(
            safe_url(" https://a.example/x "),
            Some("https://a.example/x")
        );
        assert_eq!(
            safe_url("mailto:a@example.com"),
            Some("mailto:a@example.com")
        );
        assert_eq!(safe_url("javascript:alert(1)"), None);
        assert_eq!(safe_url("data:text/html,x"), None);
        assert_eq!(
            safe_url("https://a.example/\"onmouseover"),
            Some("https://a.example/\"onmouseover")
        );
        assert_eq!(
            escape("https://a.example/\"onmouseover"),
            "https://a.example/&quot;onmouseover"
        );
    }
}
