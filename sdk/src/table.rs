//! Table helpers: cell conditions, display text, Markdown and aligned-text
//! renderings, and fitting rows into a byte budget with a visible note.

use unicode_width::UnicodeWidthStr;

use crate::{Column, Comparison, Condition, Table};

/// How a cell should be coloured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// The cell satisfies its column's condition (green).
    Good,
    /// The cell fails its column's condition (red).
    Bad,
    /// No condition, or the cell cannot be compared.
    Neutral,
}

/// Evaluates `cell <op> operand`. Numbers compare numerically; `eq`/`ne`
/// fall back to text comparison; other comparisons on text are neutral.
pub fn evaluate(condition: &Condition, cell: &str) -> Tone {
    let cell = cell.trim();
    let operand = condition.operand.trim();
    let numbers = cell
        .parse::<f64>()
        .ok()
        .zip(operand.parse::<f64>().ok())
        .filter(|(a, b)| a.is_finite() && b.is_finite());
    let holds = match (numbers, condition.op) {
        (Some((a, b)), Comparison::Lt) => a < b,
        (Some((a, b)), Comparison::Le) => a <= b,
        (Some((a, b)), Comparison::Gt) => a > b,
        (Some((a, b)), Comparison::Ge) => a >= b,
        (Some((a, b)), Comparison::Eq) => a == b,
        (Some((a, b)), Comparison::Ne) => a != b,
        (None, Comparison::Eq) => cell == operand,
        (None, Comparison::Ne) => cell != operand,
        (None, _) => return Tone::Neutral,
    };
    if holds { Tone::Good } else { Tone::Bad }
}

/// The tone of a cell in `column`.
pub fn tone(column: &Column, cell: &str) -> Tone {
    column
        .condition
        .as_ref()
        .map_or(Tone::Neutral, |c| evaluate(c, cell))
}

/// The cell as shown: prefix, value, suffix.
pub fn display(column: &Column, cell: &str) -> String {
    format!("{}{}{}", column.prefix, cell, column.suffix)
}

/// A condition written for people, e.g. `>= 60`.
pub fn describe(condition: &Condition) -> String {
    let op = match condition.op {
        Comparison::Lt => "<",
        Comparison::Le => "<=",
        Comparison::Gt => ">",
        Comparison::Ge => ">=",
        Comparison::Eq => "==",
        Comparison::Ne => "!=",
    };
    format!("{op} {}", condition.operand)
}

/// `text` on one line: a line break inside a cell or title would split
/// the table's row (`\r` ends a line in Markdown too).
fn one_line(text: &str) -> String {
    text.replace(['\r', '\n'], " ")
}

fn cell(row: &[String], index: usize) -> &str {
    row.get(index).map_or("", String::as_str)
}

/// A GitHub-flavoured Markdown table. `decorate(column, cell, tone)` writes
/// each displayed cell, e.g. to wrap it in a colour tag; pipes are escaped
/// before it is called.
pub fn markdown_table_with(
    table: &Table,
    decorate: impl Fn(&Column, &str, Tone) -> String,
) -> String {
    let escape = |s: &str| one_line(s).replace('|', "\\|");
    let mut out = String::new();
    out.push('|');
    for column in &table.columns {
        out.push_str(&format!(" {} |", escape(&column.title)));
    }
    out.push_str("\n|");
    for _ in &table.columns {
        out.push_str(" --- |");
    }
    for row in &table.rows {
        out.push_str("\n|");
        for (i, column) in table.columns.iter().enumerate() {
            let value = cell(row, i);
            let shown = escape(&display(column, value));
            out.push_str(&format!(
                " {} |",
                decorate(column, &shown, tone(column, value))
            ));
        }
    }
    out
}

/// A Markdown table with plain cells.
pub fn markdown_table(table: &Table) -> String {
    markdown_table_with(table, |_, shown, _| shown.to_owned())
}

/// A table of aligned plain text (CJK counted as double width), for channels
/// without Markdown. Failing cells are marked with `✗`, passing ones with `✓`.
pub fn text_table(table: &Table) -> String {
    let shown: Vec<Vec<String>> = table
        .rows
        .iter()
        .map(|row| {
            table
                .columns
                .iter()
                .enumerate()
                .map(|(i, column)| {
                    let value = cell(row, i);
                    let mark = match tone(column, value) {
                        Tone::Good => " ✓",
                        Tone::Bad => " ✗",
                        Tone::Neutral => "",
                    };
                    format!("{}{mark}", one_line(&display(column, value)))
                })
                .collect()
        })
        .collect();
    let widths: Vec<usize> = table
        .columns
        .iter()
        .enumerate()
        .map(|(i, column)| {
            shown
                .iter()
                .map(|row| row[i].width())
                .chain([one_line(&column.title).width()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let pad = |s: &str, w: usize| format!("{s}{}", " ".repeat(w.saturating_sub(s.width())));
    let line = |cells: Vec<String>| cells.join("  ").trim_end().to_owned();
    let mut lines = vec![line(
        table
            .columns
            .iter()
            .zip(&widths)
            .map(|(c, w)| pad(&one_line(&c.title), *w))
            .collect(),
    )];
    lines.push(line(widths.iter().map(|w| "-".repeat(*w)).collect()));
    for row in &shown {
        lines.push(line(
            row.iter().zip(&widths).map(|(s, w)| pad(s, *w)).collect(),
        ));
    }
    lines.join("\n")
}

/// The first `rows` rows of a table.
pub fn head(table: &Table, rows: usize) -> Table {
    Table {
        columns: table.columns.clone(),
        rows: table.rows.iter().take(rows).cloned().collect(),
    }
}

/// Renders as many leading rows as fit in `max_bytes`, adding
/// `note(omitted)` (e.g. "… 12 more rows") when rows were left out. Returns
/// the text and the number of rows omitted; `None` when not even the header
/// and the note fit.
pub fn fit_rows(
    table: &Table,
    max_bytes: usize,
    render: impl Fn(&Table) -> String,
    note: impl Fn(usize) -> String,
) -> Option<(String, usize)> {
    let total = table.rows.len();
    let full = render(table);
    if full.len() <= max_bytes {
        return Some((full, 0));
    }
    let attempt = |rows: usize| {
        let mut text = render(&head(table, rows));
        text.push_str(&note(total - rows));
        text
    };
    // Rendered length grows with the row count: binary-search the largest fit.
    let (mut lo, mut hi) = (0usize, total);
    if attempt(0).len() > max_bytes {
        return None;
    }
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if attempt(mid).len() <= max_bytes {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    Some((attempt(lo), total - lo))
}

/// The default note for omitted rows, in English or Chinese.
pub fn more_rows_note(omitted: usize, locale: &str) -> String {
    if locale.starts_with("zh") {
        format!("\n… 另有 {omitted} 行未显示")
    } else if omitted == 1 {
        "\n… 1 more row".to_owned()
    } else {
        format!("\n… {omitted} more rows")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn score_table() -> Table {
        Table {
            columns: vec![
                Column {
                    key: "name".into(),
                    title: "名称".into(),
                    prefix: String::new(),
                    suffix: String::new(),
                    condition: None,
                },
                Column {
                    key: "score".into(),
                    title: "Score".into(),
                    prefix: String::new(),
                    suffix: "%".into(),
                    condition: Some(Condition {
                        op: Comparison::Ge,
                        operand: "60".into(),
                    }),
                },
            ],
            rows: vec![
                vec!["alpha".into(), "75".into()],
                vec!["贝塔".into(), "42.5".into()],
                vec!["a|b".into(), "n/a".into()],
            ],
        }
    }

    #[test]
    fn conditions() {
        let c = |op, operand: &str| Condition {
            op,
            operand: operand.into(),
        };
        assert_eq!(evaluate(&c(Comparison::Ge, "60"), "60"), Tone::Good);
        assert_eq!(evaluate(&c(Comparison::Ge, "60"), "59.9"), Tone::Bad);
        assert_eq!(evaluate(&c(Comparison::Lt, "1"), "n/a"), Tone::Neutral);
        assert_eq!(evaluate(&c(Comparison::Eq, "ok"), "ok"), Tone::Good);
        assert_eq!(evaluate(&c(Comparison::Ne, "ok"), "ok"), Tone::Bad);
        assert_eq!(evaluate(&c(Comparison::Gt, "NaN"), "1"), Tone::Neutral);
    }

    #[test]
    fn line_breaks_stay_inside_their_row() {
        let mut table = score_table();
        table.columns[0].title = "two\nlines".into();
        table.rows[0][0] = "a\r\nb\rc".into();
        let text = text_table(&table);
        assert_eq!(text.split('\n').count(), table.rows.len() + 2, "{text}");
        assert!(text.starts_with("two lines"), "{text}");
        assert!(!text.contains('\r'), "{text}");
        let md = markdown_table(&table);
        assert_eq!(md.split('\n').count(), table.rows.len() + 2, "{md}");
        assert!(!md.contains('\r'), "{md}");
    }

    #[test]
    fn markdown_rendering() {
        let md = markdown_table_with(&score_table(), |_, s, t| match t {
            Tone::Good => format!("+{s}"),
            Tone::Bad => format!("-{s}"),
            Tone::Neutral => s.to_owned(),
        });
        assert_eq!(
            md,
            "| 名称 | Score |\n| --- | --- |\n| alpha | +75% |\n| 贝塔 | -42.5% |\n| a\\|b | n/a% |"
        );
    }

    #[test]
    fn text_rendering_aligns_wide_characters() {
        let text = text_table(&score_table());
        assert_eq!(
            text,
            "名称   Score\n-----  -------\nalpha  75% ✓\n贝塔   42.5% ✗\na|b    n/a%"
        );
    }

    #[test]
    fn rows_are_fitted_with_a_note() {
        let mut table = score_table();
        for i in 0..100 {
            table.rows.push(vec![format!("row{i}"), i.to_string()]);
        }
        let (text, omitted) =
            fit_rows(&table, 300, markdown_table, |n| more_rows_note(n, "en")).unwrap();
        assert!(text.len() <= 300);
        assert!(omitted > 0);
        assert!(text.ends_with(&format!("… {omitted} more rows")));
        let shown = text.lines().filter(|l| l.starts_with("| ")).count() - 2; // header and rule
        assert_eq!(shown + omitted, 103);
        assert!(fit_rows(&table, 5, markdown_table, |n| more_rows_note(n, "en")).is_none());
    }
}
