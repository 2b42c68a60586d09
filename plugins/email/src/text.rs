//! The text/plain part and the attachments' contents.

use carillon_sdk::{Context, Message, Table, fit, table};

use crate::html::safe_url;
use crate::mail::Words;

/// The plain-text part: severity and title, the body, the table as aligned
/// text (its first `rows` rows), the fields, the link and the footer after
/// the `-- ` signature separator.
pub(crate) fn part(
    ctx: &Context,
    message: &Message,
    words: &Words,
    locale: &str,
    body: &str,
    rows: usize,
) -> String {
    let separator = if words.zh { "：" } else { ": " };
    let heading = format!(
        "{}{separator}{}",
        words.severity(message.severity).to_uppercase(),
        message.title.trim()
    );
    let table = message
        .table
        .as_ref()
        .map(|t| fit::rows_text(t, rows, table::text_table, locale))
        .unwrap_or_default();
    let fields = message
        .fields
        .iter()
        .map(|f| format!("{}{separator}{}", f.name, f.value))
        .collect::<Vec<_>>()
        .join("\n");
    let link = message
        .link
        .as_ref()
        .and_then(|l| {
            let url = safe_url(&l.url)?;
            Some(match l.label.as_deref().filter(|s| !s.trim().is_empty()) {
                Some(label) => format!("{label}{separator}{url}"),
                None => url.to_owned(),
            })
        })
        .unwrap_or_default();
    let mut out = fit::join_sections(&[&heading, body.trim_end(), &table, &fields, &link]);
    out.push_str("\n\n-- \n");
    out.push_str(&words.footer(&ctx.delivery_id));
    out.push('\n');
    out
}

/// `message.md`: the title as a heading, then the Markdown body as given.
pub(crate) fn markdown_file(message: &Message) -> String {
    let title = carillon_sdk::text::escape_markdown(message.title.trim());
    let mut out = format!("# {title}\n\n{}", message.markdown.trim_end());
    if let Some(t) = &message.table {
        out.push_str("\n\n");
        out.push_str(&table::markdown_table(t));
    }
    out.push('\n');
    out
}

/// `table.csv` (RFC 4180): a UTF-8 byte order mark (so spreadsheet programs
/// read CJK correctly), a header row of column titles, every row with the
/// raw cell values (no prefix or suffix, so numbers stay numbers), CRLF line
/// ends. Text cells that a spreadsheet would run as a formula get a leading
/// `'`.
pub(crate) fn csv(t: &Table) -> String {
    let mut out = String::from("\u{feff}");
    let line = |cells: Vec<String>| {
        let mut l = cells.join(",");
        l.push_str("\r\n");
        l
    };
    out.push_str(&line(
        t.columns.iter().map(|c| csv_field(&c.title)).collect(),
    ));
    for row in &t.rows {
        out.push_str(&line(
            (0..t.columns.len())
                .map(|i| csv_field(row.get(i).map_or("", String::as_str)))
                .collect(),
        ));
    }
    out
}

fn csv_field(value: &str) -> String {
    let numeric = value.trim().parse::<f64>().is_ok();
    let guarded = if !numeric && value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    if guarded.contains([',', '"', '\r', '\n'])
        || guarded.starts_with(' ')
        || guarded.ends_with(' ')
    {
        format!("\"{}\"", guarded.replace('"', "\"\""))
    } else {
        guarded
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_guarded() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("-5.5"), "-5.5");
        assert_eq!(csv_field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_field("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_field("line\nbreak"), "\"line\nbreak\"");
    }
}
