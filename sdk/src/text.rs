//! Text helpers: Markdown to plain text, Markdown escaping, and trimming to a
//! byte budget without cutting a UTF-8 character.

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};

use crate::{Field, Severity};

/// Lists nested deeper than this are indented as if this deep: each item
/// repeats its indent, so unbounded depth makes the text grow with the
/// square of the input (`- - - …`).
pub const MAX_NESTING: usize = 8;

/// The text ends, with [`TRUNCATED`], once it passes 4 × the Markdown's
/// size plus this: repeated reference links and deep nesting must not turn
/// a small message into a large one.
pub const TEXT_SLACK: usize = 4096;

/// What ends a text cut by the output budget.
pub const TRUNCATED: &str = " … (truncated)";

/// The output budget of a Markdown converter for `input` bytes: 4 × the
/// input plus [`TEXT_SLACK`]. Every converter of a message's Markdown
/// (these, and a plugin's own, like the email plugin's HTML) keeps to it,
/// with nesting drawn at most [`MAX_NESTING`] deep.
pub fn output_budget(input: usize) -> usize {
    input.saturating_mul(4).saturating_add(TEXT_SLACK)
}

/// Plain text from CommonMark: emphasis and headings lose their markers,
/// links keep their URL in brackets, list items get `- ` or `1. `, code
/// stays as written, raw HTML is dropped. Bounded: nesting is drawn at most
/// [`MAX_NESTING`] deep, and the text is at most 4 × the Markdown plus
/// [`TEXT_SLACK`] (then cut on a character boundary, ending in
/// [`TRUNCATED`]).
pub fn markdown_to_text(markdown: &str) -> String {
    let budget = output_budget(markdown.len());
    let mut out = String::with_capacity(markdown.len());
    let mut links: Vec<String> = Vec::new();
    let mut lists: Vec<Option<u64>> = Vec::new();
    for event in Parser::new_ext(
        markdown,
        Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH,
    ) {
        match event {
            Event::Text(t) | Event::Code(t) => out.push_str(&t),
            Event::SoftBreak | Event::HardBreak => out.push('\n'),
            Event::Rule => out.push_str("\n----\n"),
            Event::Start(Tag::Item) => {
                let depth = lists.len().saturating_sub(1).min(MAX_NESTING);
                out.push_str(&"  ".repeat(depth));
                match lists.last_mut() {
                    Some(Some(n)) => {
                        out.push_str(&format!("{n}. "));
                        *n += 1;
                    }
                    _ => out.push_str("- "),
                }
            }
            Event::Start(Tag::List(start)) => {
                end_block(&mut out);
                lists.push(start);
            }
            Event::End(TagEnd::List(_)) => {
                lists.pop();
                if lists.is_empty() {
                    out.push('\n');
                }
            }
            Event::End(TagEnd::Item) => end_line(&mut out),
            Event::Start(Tag::Link { dest_url, .. }) => links.push(dest_url.to_string()),
            Event::End(TagEnd::Link) => {
                if let Some(url) = links.pop()
                    && !out.ends_with(url.as_str())
                {
                    out.push_str(&format!(" ({url})"));
                }
            }
            Event::End(
                TagEnd::Paragraph | TagEnd::Heading(_) | TagEnd::CodeBlock | TagEnd::BlockQuote(_),
            ) => {
                if lists.is_empty() {
                    end_block(&mut out);
                } else {
                    end_line(&mut out);
                }
            }
            Event::End(TagEnd::TableCell) => out.push_str(" | "),
            Event::End(TagEnd::TableHead | TagEnd::TableRow) => {
                let trimmed = out.trim_end_matches([' ', '|']).len();
                out.truncate(trimmed);
                out.push('\n');
            }
            Event::End(TagEnd::Table) => out.push('\n'),
            Event::TaskListMarker(done) => out.push_str(if done { "[x] " } else { "[ ] " }),
            _ => {}
        }
        if out.len() > budget {
            let mut cut = budget;
            while !out.is_char_boundary(cut) {
                cut -= 1;
            }
            out.truncate(cut);
            out.push_str(TRUNCATED);
            return out;
        }
    }
    out.trim_end().to_owned()
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

/// Escapes the characters that would start Markdown formatting, so user text
/// shows as typed.
pub fn escape_markdown(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(
            c,
            '\\' | '`'
                | '*'
                | '_'
                | '{'
                | '}'
                | '['
                | ']'
                | '('
                | ')'
                | '#'
                | '|'
                | '<'
                | '>'
                | '~'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A message's fields as Markdown lines: `bullet` then `**name**: value`,
/// both escaped.
pub fn markdown_fields(fields: &[Field], bullet: &str) -> Vec<String> {
    fields
        .iter()
        .map(|f| {
            format!(
                "{bullet}**{}**: {}",
                escape_markdown(&f.name),
                escape_markdown(&f.value)
            )
        })
        .collect()
}

/// A message's fields as plain lines, `name: value`.
pub fn plain_fields(fields: &[Field]) -> Vec<String> {
    fields
        .iter()
        .map(|f| format!("{}: {}", f.name, f.value))
        .collect()
}

/// A severity as an emoji, for channels whose only colour is text.
pub fn severity_emoji(severity: Severity) -> &'static str {
    match severity {
        Severity::Info => "ℹ️",
        Severity::Success => "✅",
        Severity::Warning => "⚠️",
        Severity::Error => "❌",
        Severity::Critical => "🚨",
    }
}

/// Splits a leading marker (an emoji such as `❌`, `⚠️` or `🔥`, with its
/// variation selector, skin tone or joined parts, then spaces) off a title:
/// `("❌", "nightly_load failed")`. `None` when the title starts otherwise.
pub fn split_marker(title: &str) -> Option<(&str, &str)> {
    let mut chars = title.char_indices().peekable();
    let (_, first) = chars.next()?;
    if !is_pictograph(first) {
        return None;
    }
    let mut end = first.len_utf8();
    while let Some(&(i, c)) = chars.peek() {
        let joined = c == '\u{200D}';
        if joined || c == '\u{FE0F}' || ('\u{1F3FB}'..='\u{1F3FF}').contains(&c) {
            chars.next();
            end = i + c.len_utf8();
            if joined && let Some(&(j, next)) = chars.peek() {
                chars.next();
                end = j + next.len_utf8();
            }
        } else {
            break;
        }
    }
    let rest = &title[end..];
    let trimmed = rest.trim_start();
    if !rest.is_empty() && trimmed.len() == rest.len() {
        return None; // `✅done` is a word, not a marker
    }
    Some((&title[..end], trimmed))
}

fn is_pictograph(c: char) -> bool {
    matches!(c as u32,
        0x2139 | 0x2190..=0x21FF | 0x2300..=0x23FF | 0x25A0..=0x27BF | 0x2900..=0x297F
        | 0x2B00..=0x2BFF | 0x1F000..=0x1FAFF)
}

/// A title with exactly one severity marker, in front: the title's own
/// marker (built-in templates start titles with one) or else
/// [`severity_emoji`], then `keyword` when given, then the rest of the
/// title: `❌ 告警 nightly_load failed`, never `❌ 告警 ❌ …`. With
/// `severity` `None` no marker is added (for cards whose colour shows it).
pub fn marked_title(severity: Option<Severity>, keyword: Option<&str>, title: &str) -> String {
    let (marker, rest) = match split_marker(title) {
        Some((marker, rest)) => (Some(marker), rest),
        None => (severity.map(severity_emoji), title),
    };
    [marker, keyword, Some(rest)]
        .into_iter()
        .flatten()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A string fitted to a byte budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trimmed {
    /// The text, note included, at most the budget in bytes.
    pub text: String,
    /// How many bytes of the original were left out (0 when it fitted).
    pub cut_bytes: usize,
}

impl Trimmed {
    /// `true` when something was cut.
    pub fn was_cut(&self) -> bool {
        self.cut_bytes > 0
    }
}

/// Fits `text` into `max_bytes` UTF-8 bytes. When it is too long, keeps the
/// longest prefix that ends on a character boundary and still leaves room for
/// the note `"\n… (truncated N bytes)"`.
pub fn fit_bytes(text: &str, max_bytes: usize) -> Trimmed {
    fit_bytes_with(text, max_bytes, |cut| {
        format!("\n… (truncated {cut} bytes)")
    })
}

/// Like [`fit_bytes`], with the note written by `note(cut_bytes)`.
pub fn fit_bytes_with(text: &str, max_bytes: usize, note: impl Fn(usize) -> String) -> Trimmed {
    if text.len() <= max_bytes {
        return Trimmed {
            text: text.to_owned(),
            cut_bytes: 0,
        };
    }
    // The note's length depends on the number it reports; settle it by
    // iterating (it changes by a digit at most a couple of times).
    let mut keep = floor_char_boundary(text, max_bytes);
    for _ in 0..8 {
        let written = note(text.len() - keep);
        let room = max_bytes.saturating_sub(written.len());
        let next = floor_char_boundary(text, room.min(keep));
        if next == keep && next + written.len() <= max_bytes {
            break;
        }
        keep = next;
    }
    let written = note(text.len() - keep);
    if keep + written.len() > max_bytes {
        // Not even the note fits: return as much of the note as fits.
        let end = floor_char_boundary(&written, max_bytes);
        return Trimmed {
            text: written[..end].to_owned(),
            cut_bytes: text.len(),
        };
    }
    let mut out = String::with_capacity(keep + written.len());
    out.push_str(&text[..keep]);
    out.push_str(&written);
    Trimmed {
        text: out,
        cut_bytes: text.len() - keep,
    }
}

/// The largest index `<= index` that is a character boundary of `text`.
pub fn floor_char_boundary(text: &str, index: usize) -> usize {
    if index >= text.len() {
        return text.len();
    }
    let mut i = index;
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_untouched() {
        let t = fit_bytes("hello", 5);
        assert_eq!(t.text, "hello");
        assert!(!t.was_cut());
    }

    #[test]
    fn trimming_never_splits_a_character() {
        let text = "告警".repeat(100); // 600 bytes, 3 per character
        for budget in 30..80 {
            let t = fit_bytes(&text, budget);
            assert!(t.text.len() <= budget, "{budget}: {}", t.text.len());
            assert!(t.text.contains("truncated"));
            let kept = t.text.split('\n').next().unwrap_or_default();
            assert_eq!(kept.len() % 3, 0);
            assert_eq!(kept.len() + t.cut_bytes, text.len());
        }
    }

    #[test]
    fn emoji_boundaries() {
        let text = "ok 🚀🚀🚀🚀🚀🚀🚀🚀🚀🚀 done";
        let t = fit_bytes_with(text, 12, |n| format!("…{n}"));
        assert!(t.text.len() <= 12);
        assert!(t.text.starts_with("ok 🚀"));
        assert_eq!(t.text, format!("ok 🚀…{}", t.cut_bytes));
    }

    #[test]
    fn budget_smaller_than_the_note() {
        let t = fit_bytes(&"x".repeat(100), 5);
        assert!(t.text.len() <= 5);
        assert_eq!(t.cut_bytes, 100);
    }

    #[test]
    fn one_marker_per_title() {
        assert_eq!(
            marked_title(Some(Severity::Error), None, "❌ nightly_load failed"),
            "❌ nightly_load failed"
        );
        assert_eq!(
            marked_title(
                Some(Severity::Error),
                Some("告警"),
                "❌ nightly_load failed"
            ),
            "❌ 告警 nightly_load failed"
        );
        assert_eq!(
            marked_title(Some(Severity::Warning), Some("告警"), "disk full"),
            "⚠️ 告警 disk full"
        );
        assert_eq!(
            marked_title(None, Some("ALERT"), "disk full"),
            "ALERT disk full"
        );
        assert_eq!(split_marker("⚠️ x"), Some(("⚠️", "x")));
        assert_eq!(split_marker("👩‍💻 x"), Some(("👩‍💻", "x")));
        assert_eq!(split_marker("✅done"), None);
        assert_eq!(split_marker("db-1 down"), None);
        assert_eq!(split_marker("数据 down"), None);
    }

    #[test]
    fn markdown_becomes_text() {
        let md = "# Title\n\nSome **bold** and `code` with a [link](https://x.io).\n\n- one\n- two\n\n1. a\n2. b";
        assert_eq!(
            markdown_to_text(md),
            "Title\n\nSome bold and code with a link (https://x.io).\n\n- one\n- two\n\n1. a\n2. b"
        );
    }

    #[test]
    fn escaping_neutralises_markdown() {
        assert_eq!(escape_markdown("a*b_[c]|d"), "a\\*b\\_\\[c\\]\\|d");
        assert_eq!(
            markdown_to_text(&escape_markdown("**not bold**")),
            "**not bold**"
        );
    }

    #[test]
    fn nesting_and_repeated_links_stay_within_the_budget() {
        let nested: String = (0..1000)
            .map(|d| format!("{}- x\n", "  ".repeat(d)))
            .collect();
        let text = markdown_to_text(&nested);
        assert!(text.len() <= nested.len() * 4 + TEXT_SLACK + TRUNCATED.len());
        assert!(
            text.lines().all(|l| l.len() <= MAX_NESTING * 2 + 4),
            "{text}"
        );
        let links = format!(
            "{}\n\n[r]: https://example.com/{}",
            "[a][r] ".repeat(500),
            "p".repeat(400)
        );
        let text = markdown_to_text(&links);
        assert!(text.len() <= links.len() * 4 + TEXT_SLACK + TRUNCATED.len());
        assert!(text.ends_with(TRUNCATED), "{}", text.len());
    }
}
