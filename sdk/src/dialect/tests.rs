use super::*;
use crate::testing::{DIALECT_SAMPLE, check_golden, golden_path};
use crate::text::{TEXT_SLACK, TRUNCATED};

const ALL: [(Dialect, &str); 7] = [
    (Dialect::Plain, "plain"),
    (Dialect::DingTalk, "dingtalk"),
    (Dialect::LarkMd, "lark-md"),
    (Dialect::LarkMarkdown, "lark-markdown"),
    (Dialect::WeComMarkdown, "wecom-markdown"),
    (Dialect::WeComMarkdownV2, "wecom-markdown-v2"),
    (Dialect::TeamsText, "teams-textblock"),
];

/// One golden file per dialect: headings, lists, code, links, emphasis,
/// a table, a quote, CJK, emoji and characters to escape.
#[test]
fn every_dialect_matches_its_golden_file() {
    for (dialect, name) in ALL {
        let out = convert(DIALECT_SAMPLE, dialect);
        let shown = format!("--- input\n{DIALECT_SAMPLE}--- {name}\n{out}\n");
        check_golden(
            &golden_path(env!("CARGO_MANIFEST_DIR"), &format!("dialect-{name}")),
            &shown,
        );
    }
}

#[test]
fn lark_md_has_no_block_syntax_and_escapes_with_entities() {
    let out = convert(
        "# H\n\n- a\n- b\n\n```\nx*y\n```\n\n`c` 2*3",
        Dialect::LarkMd,
    );
    assert_eq!(out, "**H**\n\n• a\n• b\n\nx&#42;y\n\nc 2&#42;3");
    assert!(!out.contains('\\'));
    assert_eq!(escape("a*b_<c>", Dialect::LarkMd), "a&#42;b&#95;&lt;c&gt;");
}

#[test]
fn teams_shows_headings_as_bold_lines() {
    assert_eq!(
        convert("## Disk **full**\n\ntext", Dialect::TeamsText),
        "**Disk full**\n\ntext"
    );
}

#[test]
fn wecom_markdown_drops_italics_and_lists_and_defuses_tags() {
    let out = convert("*it* **b**\n\n1. one\n2. two", Dialect::WeComMarkdown);
    assert_eq!(out, "it **b**\n\n1. one\n2. two");
    assert_eq!(
        escape("<@all> **x**", Dialect::WeComMarkdown),
        "<\u{200B}@all> *\u{200B}*\u{200B}x*\u{200B}*\u{200B}"
    );
}

#[test]
fn wecom_v2_keeps_pipe_tables_and_code() {
    let out = convert(
        "| a | b |\n|---|---|\n| 1 | x\\|y |\n\n`a`b`",
        Dialect::WeComMarkdownV2,
    );
    assert_eq!(out, "| a | b |\n| --- | --- |\n| 1 | x\\|y |\n\n`a`b\\`");
}

#[test]
fn tables_become_labelled_lines_without_table_syntax() {
    let out = convert("| a | b |\n|---|---|\n| 1 | 2 |", Dialect::DingTalk);
    assert_eq!(out, "- a: 1, b: 2");
}

#[test]
fn escaped_user_text_stays_literal_at_line_starts() {
    assert_eq!(convert("1\\. x", Dialect::DingTalk), "1\\. x");
    assert_eq!(convert("\\- x", Dialect::LarkMd), "&#45; x");
    assert_eq!(convert("\\# x", Dialect::TeamsText), "\\# x");
}

#[test]
fn link_targets_cannot_close_early() {
    assert_eq!(
        convert("[a](<https://x.io/a b(c)>)", Dialect::DingTalk),
        "[a](https://x.io/a%20b%28c%29)"
    );
}

#[test]
fn every_dialect_stays_within_the_budget() {
    let nested: String = (0..1000)
        .map(|d| format!("{}- x\n", "  ".repeat(d)))
        .collect();
    let quotes = format!("{} x", ">".repeat(2000));
    let links = format!(
        "{}\n\n[r]: https://example.com/{}",
        "[a][r] ".repeat(500),
        "p".repeat(400)
    );
    let stars = "**a** ".repeat(2000);
    for input in [&nested, &quotes, &links, &stars] {
        for (dialect, name) in ALL {
            let out = convert(input, dialect);
            assert!(
                out.len() <= input.len() * 4 + TEXT_SLACK + TRUNCATED.len(),
                "{name}: {} bytes from {}",
                out.len(),
                input.len()
            );
            if input == &nested {
                assert!(
                    out.lines()
                        .all(|l| l.len() <= 3 * crate::text::MAX_NESTING + 8),
                    "{name}: a line grew with the nesting"
                );
            }
        }
    }
}
