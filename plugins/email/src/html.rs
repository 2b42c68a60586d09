//! The HTML part: a single-column layout of nested tables with inline CSS
//! only (what mail clients render consistently), built from escaped text.
//! The Markdown body inside it is rendered by [`crate::markdown`].

use carillon_sdk::table::{self, Tone};
use carillon_sdk::{Context, Message, Severity, Table};

use crate::mail::Words;
use crate::markdown::markdown;

const FONT: &str = "-apple-system,BlinkMacSystemFont,'Segoe UI',Roboto,'Helvetica Neue',Arial,'PingFang SC','Microsoft YaHei',sans-serif";
pub(crate) const MONO: &str = "Consolas,Menlo,'Courier New',monospace";
const INK: &str = "#172b4d";
pub(crate) const MUTED: &str = "#5e6c84";
pub(crate) const RULE: &str = "#dfe1e6";
pub(crate) const SHADE: &str = "#f4f5f7";
pub(crate) const LINK: &str = "#0052cc";
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

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
