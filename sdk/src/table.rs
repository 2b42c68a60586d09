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

/// The cells of `row` with their columns: each as displayed ([`display`])
/// and its [`tone`]. A row shorter than the columns reads as empty cells.
pub fn cells<'a>(
    table: &'a Table,
    row: &'a [String],
) -> impl Iterator<Item = (&'a Column, String, Tone)> + 'a {
    table.columns.iter().enumerate().map(move |(i, column)| {
        let value = cell(row, i);
        (
            column,
            one_line(&display(column, value)),
            tone(column, value),
        )
    })
}

/// What follows a cell in channels without colour: ` ✓` when it passes its
/// column's condition, ` ✗` when it fails, nothing otherwise.
pub fn mark(tone: Tone) -> &'static str {
    match tone {
        Tone::Good => " ✓",
        Tone::Bad => " ✗",
        Tone::Neutral => "",
    }
}

/// A row as one line: each cell written by `write(column, shown, tone)`,
/// joined by `separator`.
pub fn row_line(
    table: &Table,
    row: &[String],
    separator: &str,
    write: impl Fn(&Column, &str, Tone) -> String,
) -> String {
    cells(table, row)
        .map(|(column, shown, tone)| write(column, &shown, tone))
        .collect::<Vec<_>>()
        .join(separator)
}

/// A table for channels whose Markdown has no tables: one line per row,
/// `bullet` then `Title: cell, Title: cell`. With `markdown`, titles and
/// displayed cells are escaped before `write(column, shown, tone)` writes
/// each cell (e.g. adding a colour tag or [`mark`]).
pub fn labelled_rows(
    table: &Table,
    markdown: bool,
    bullet: &str,
    write: impl Fn(&Column, &str, Tone) -> String,
) -> String {
    let dialect = if markdown {
        crate::dialect::Dialect::DingTalk
    } else {
        crate::dialect::Dialect::Plain
    };
    labelled_rows_in(table, dialect, bullet, write)
}

/// Like [`labelled_rows`], with titles and cells escaped for `dialect`
/// ([`crate::dialect::escape`]).
pub fn labelled_rows_in(
    table: &Table,
    dialect: crate::dialect::Dialect,
    bullet: &str,
    write: impl Fn(&Column, &str, Tone) -> String,
) -> String {
    let escape = |s: &str| crate::dialect::escape(s, dialect);
    table
        .rows
        .iter()
        .map(|row| {
            let line = row_line(table, row, ", ", |column, shown, tone| {
                format!(
                    "{}: {}",
                    escape(&one_line(&column.title)),
                    write(column, &escape(shown), tone)
                )
            });
            format!("{bullet}{line}")
        })
        .collect::<Vec<_>>()
        .join("\n")
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
            cells(table, row)
                .map(|(_, shown, tone)| format!("{shown}{}", mark(tone)))
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

/// The default note for omitted rows, in English or Chinese, on a line of
/// its own (it starts with a newline).
pub fn more_rows_note(omitted: usize, locale: &str) -> String {
    format!("\n{}", more_rows_line(omitted, locale))
}

/// [`more_rows_note`] without the leading newline, for channels that build
/// lines or blocks themselves.
pub fn more_rows_line(omitted: usize, locale: &str) -> String {
    if crate::locale::is_chinese(locale) {
        format!("… 另有 {omitted} 行未显示")
    } else if omitted == 1 {
        "… 1 more row".to_owned()
    } else {
        format!("… {omitted} more rows")
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

    #[test]
    fn rows_become_lines_with_marks() {
        let t = score_table();
        let line = row_line(&t, &t.rows[1], " | ", |c, shown, tone| {
            format!("{}={shown}{}", c.key, mark(tone))
        });
        assert_eq!(line, "name=贝塔 | score=42.5% ✗");
        assert_eq!(
            cells(&t, &[]).map(|(_, s, _)| s).collect::<Vec<_>>(),
            ["", "%"]
        );
        assert_eq!(more_rows_line(2, "zh-CN"), "… 另有 2 行未显示");
        assert_eq!(more_rows_note(1, "en"), "\n… 1 more row");
    }

    #[test]
    fn labelled_rows_escape_in_markdown() {
        let t = score_table();
        let plain = |_: &Column, shown: &str, tone: Tone| format!("{shown}{}", mark(tone));
        let text = labelled_rows(&t, true, "- ", plain);
        assert!(text.starts_with("- 名称: alpha, Score: 75% ✓\n"), "{text}");
        assert!(text.ends_with("- 名称: a\\|b, Score: n/a%"), "{text}");
        let text = labelled_rows(&t, false, "", plain);
        assert!(text.ends_with("\n名称: a|b, Score: n/a%"), "{text}");
    }
}
