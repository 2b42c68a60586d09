//! Tidying rendered text: the one-line title, the Markdown body, and the
//! plain text derived from it.

use std::borrow::Cow;

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};

/// Nesting deeper than this (lists, block quotes) is drawn at this depth:
/// every line repeats its nesting prefix, so unbounded depth made the text
/// quadratic in the Markdown (~20 KiB of `- - - …` became ~100 MiB).
const MAX_DEPTH: usize = 8;

/// Ends a text cut at its budget ([`budget`]).
const TRUNCATED: &str = " … (truncated)";

/// The longest plain text made from `markdown_len` bytes of Markdown:
/// ordinary Markdown never comes near it (its text is shorter than its
/// source); what passes it is cut and ends with [`TRUNCATED`].
fn budget(markdown_len: usize) -> usize {
    markdown_len.saturating_mul(4).saturating_add(4096)
}

/// A rendered title as one trimmed line: its lines joined by a space.
pub(crate) fn one_line(title: &str) -> String {
    title
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A rendered body tidied: no leading or trailing blank lines, trailing
/// whitespace removed, and runs of blank lines (which skipped `{% if %}`
/// blocks leave) collapsed to one, except inside fenced code blocks.
pub(crate) fn tidy_markdown(body: &str) -> String {
    let mut out: Vec<Cow<'_, str>> = Vec::new();
    let mut fence: Option<&str> = None;
    for line in body.lines() {
        let trimmed = line.trim_start();
        match fence {
            Some(marker) => {
                out.push(Cow::Borrowed(line));
                if trimmed.starts_with(marker) {
                    fence = None;
                }
                continue;
            }
            None => {
                if trimmed.starts_with("```") {
                    fence = Some("```");
                } else if trimmed.starts_with("~~~") {
                    fence = Some("~~~");
                }
            }
        }
        // Keep a Markdown hard break (two or more trailing spaces) as two
        // spaces; drop other trailing whitespace.
        let kept = if line.ends_with("  ") && !line.trim().is_empty() {
            Cow::Owned(format!("{}  ", line.trim_end()))
        } else {
            Cow::Borrowed(line.trim_end())
        };
        if kept.is_empty() && out.last().is_none_or(|l| l.trim().is_empty()) {
            continue;
        }
        out.push(kept);
    }
    while out.last().is_some_and(|l| l.trim().is_empty()) {
        out.pop();
    }
    out.join("\n")
}

/// Markdown as plain text: markup removed, links as `text (url)`, list
/// items as `- ` or `1. `, table cells separated by ` | `, blocks by a blank
/// line. Nesting is drawn at most [`MAX_DEPTH`] deep, and the text is at
/// most [`budget`] long.
pub(crate) fn markdown_to_text(markdown: &str) -> String {
    let budget = budget(markdown.len());
    let mut over_budget = false;
    let mut out = String::with_capacity(markdown.len());
    let mut links: Vec<(String, usize)> = Vec::new();
    let mut lists: Vec<Option<u64>> = Vec::new();
    let mut quote_depth = 0usize;
    let options =
        Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS;
    for event in Parser::new_ext(markdown, options) {
        // One event adds at most its own text or a bounded prefix, so the
        // string never grows far past the budget before this stops it.
        if out.len() > budget {
            over_budget = true;
            break;
        }
        match event {
            Event::Text(t) | Event::Code(t) => {
                if quote_depth > 0 && (out.is_empty() || out.ends_with('\n')) {
                    out.push_str(&"> ".repeat(quote_depth.min(MAX_DEPTH)));
                }
                out.push_str(&t);
            }
            Event::InlineMath(t) | Event::DisplayMath(t) => out.push_str(&t),
            Event::SoftBreak | Event::HardBreak => out.push('\n'),
            Event::Rule => {
                end_block(&mut out);
                out.push_str("----");
                end_block(&mut out);
            }
            Event::Start(Tag::List(start)) => {
                if lists.is_empty() {
                    end_block(&mut out);
                } else {
                    end_line(&mut out);
                }
                lists.push(start);
            }
            Event::End(TagEnd::List(_)) => {
                lists.pop();
                if lists.is_empty() {
                    end_block(&mut out);
                }
            }
            Event::Start(Tag::Item) => {
                end_line(&mut out);
                out.push_str(&"  ".repeat(lists.len().saturating_sub(1).min(MAX_DEPTH - 1)));
                match lists.last_mut() {
                    Some(Some(n)) => {
                        out.push_str(&format!("{n}. "));
                        *n = n.saturating_add(1);
                    }
                    _ => out.push_str("- "),
                }
            }
            Event::End(TagEnd::Item) => end_line(&mut out),
            Event::TaskListMarker(done) => out.push_str(if done { "[x] " } else { "[ ] " }),
            Event::Start(Tag::Link { dest_url, .. }) => {
                links.push((dest_url.to_string(), out.len()));
            }
            Event::End(TagEnd::Link) => {
                if let Some((url, start)) = links.pop() {
                    let shown = out.get(start..).unwrap_or_default();
                    if !url.is_empty() && shown != url && !url.starts_with('#') {
                        let bare = url.strip_prefix("mailto:").unwrap_or(&url);
                        if shown != bare {
                            out.push_str(&format!(" ({url})"));
                        }
                    }
                }
            }
            Event::Start(Tag::BlockQuote(_)) => {
                end_block(&mut out);
                quote_depth += 1;
            }
            Event::End(TagEnd::BlockQuote(_)) => {
                quote_depth = quote_depth.saturating_sub(1);
                end_block(&mut out);
            }
            Event::Start(Tag::Paragraph | Tag::Heading { .. } | Tag::CodeBlock(_))
                if lists.is_empty() =>
            {
                end_block(&mut out);
            }
            Event::End(TagEnd::Paragraph | TagEnd::Heading(_) | TagEnd::CodeBlock) => {
                if lists.is_empty() {
                    end_block(&mut out);
                } else {
                    end_line(&mut out);
                }
            }
            Event::Start(Tag::Table(_)) => end_block(&mut out),
            Event::End(TagEnd::TableCell) => out.push_str(" | "),
            Event::End(TagEnd::TableHead | TagEnd::TableRow) => {
                let kept = out.trim_end_matches([' ', '|']).len();
                out.truncate(kept);
                out.push('\n');
            }
            Event::End(TagEnd::Table) => end_block(&mut out),
            _ => {}
        }
    }
    let mut text = out.trim().to_owned();
    while text.contains("\n\n\n") {
        text = text.replace("\n\n\n", "\n\n");
    }
    if over_budget || text.len() > budget {
        let mut cut = budget.saturating_sub(TRUNCATED.len()).min(text.len());
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.truncate(text.trim_end().len());
        text.push_str(TRUNCATED);
    }
    text
}

fn end_line(out: &mut String) {
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
}

fn end_block(out: &mut String) {
    end_line(out);
    if !out.is_empty() && !out.ends_with("\n\n") {
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_become_one_line() {
        assert_eq!(one_line("  Task x\n\n failed  \n"), "Task x failed");
        assert_eq!(one_line(""), "");
    }

    #[test]
    fn bodies_lose_extra_blank_lines_but_not_in_code() {
        let body = "\n\nA  \nB   \n\n\n\n- x\n\n```\n1\n\n\n2\n```\n\n\n";
        assert_eq!(tidy_markdown(body), "A  \nB  \n\n- x\n\n```\n1\n\n\n2\n```");
    }

    #[test]
    fn markdown_becomes_plain_text() {
        let md = "**Task** `etl` failed.\n\n- **Owner:** ann\n- Rows: 3\n\n1. one\n2. two\n\n\
                  See [the run](https://ci.example.com/1) or <https://x.example.com>.\n\n\
                  > quoted\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n# Head\n\nend";
        assert_eq!(
            markdown_to_text(md),
            "Task etl failed.\n\n- Owner: ann\n- Rows: 3\n\n1. one\n2. two\n\n\
             See the run (https://ci.example.com/1) or https://x.example.com.\n\n\
             > quoted\n\na | b\n1 | 2\n\nHead\n\nend"
        );
    }

    /// The longest text `markdown_to_text` may return for `input`.
    fn bound(input: &str) -> usize {
        4 * input.len() + 4096
    }

    /// Deep nesting repeats its prefix on every line: without a cap,
    /// ~20 KiB of `> > > …` or `- - - …` became ~100 MiB of text.
    #[test]
    fn deep_nesting_stays_within_a_bound_proportional_to_the_input() {
        let lists = format!("{}x", "- ".repeat(10_000));
        let quotes = format!("{}a\n{}", "> ".repeat(5_000), "b\n".repeat(5_000));
        let ordered = format!("{}x", "1. ".repeat(7_000));
        let mixed = format!("{}x\n{}", "> - ".repeat(3_000), "y\n".repeat(3_000));
        for input in [&lists, &quotes, &ordered, &mixed] {
            let text = markdown_to_text(input);
            assert!(
                text.len() <= bound(input),
                "{} bytes of text from {} bytes of Markdown",
                text.len(),
                input.len()
            );
        }
    }

    /// Levels past the cap are drawn at the cap's depth; shallower
    /// nesting renders exactly as before.
    #[test]
    fn nesting_past_the_cap_is_flattened() {
        let md: String = (0..12)
            .map(|i| format!("{}- l{i}\n", "  ".repeat(i)))
            .collect();
        let text = markdown_to_text(&md);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "- l0");
        assert_eq!(lines[2], "    - l2");
        assert_eq!(lines[7], format!("{}- l7", "  ".repeat(7)));
        assert_eq!(lines[11], format!("{}- l11", "  ".repeat(MAX_DEPTH - 1)));
        let quoted = markdown_to_text(&format!("{}deep", "> ".repeat(12)));
        assert_eq!(quoted, format!("{}deep", "> ".repeat(MAX_DEPTH)));
    }

    /// Text past the budget is cut at a character boundary, and says so.
    #[test]
    fn text_past_the_budget_ends_with_a_marker() {
        let md = format!("{}é{}", "> ".repeat(8), "\nβ".repeat(5_000));
        let text = markdown_to_text(&md);
        assert!(text.len() <= bound(&md), "{}", text.len());
        assert!(text.ends_with(TRUNCATED), "{}", &text[text.len() - 40..]);
    }
}
