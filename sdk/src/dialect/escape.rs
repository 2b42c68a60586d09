//! How each dialect shows a special character as itself.

use super::Dialect;

/// Characters that start formatting in the CommonMark-like dialects.
const MARKDOWN_SPECIAL: &[char] = &[
    '\\', '`', '*', '_', '{', '}', '[', ']', '(', ')', '#', '|', '<', '>', '~',
];

/// Escapes `text` so `dialect` shows it as typed:
///
/// - DingTalk, WeCom `markdown_v2` and Teams: a backslash before each
///   Markdown character (CommonMark escapes, which their renderers follow);
/// - Lark `lark_md` and the card `markdown` element: HTML entities
///   (`&#42;` for `*`, `&lt;` for `<`, …), the escaping Lark documents;
///   a backslash would show;
/// - WeCom `markdown`: a zero-width space after `*`, `` ` ``, `[` and `<`
///   breaks bold, links, `<font>` and `<@userid>` without a visible mark
///   (its renderer has no escape character);
/// - plain text: unchanged.
pub fn escape(text: &str, dialect: Dialect) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for c in text.chars() {
        push_escaped(&mut out, c, dialect);
    }
    out
}

/// Appends `c` to `out` as `dialect` shows it literally.
pub(super) fn push_escaped(out: &mut String, c: char, dialect: Dialect) {
    match dialect {
        Dialect::Plain => out.push(c),
        Dialect::LarkMd | Dialect::LarkMarkdown => match entity(c) {
            Some(e) => out.push_str(e),
            None => out.push(c),
        },
        Dialect::WeComMarkdown => {
            out.push(c);
            if matches!(c, '*' | '`' | '[' | '<') {
                out.push('\u{200B}');
            }
        }
        Dialect::DingTalk | Dialect::WeComMarkdownV2 | Dialect::TeamsText => {
            if MARKDOWN_SPECIAL.contains(&c) {
                out.push('\\');
            }
            out.push(c);
        }
    }
}

/// The HTML entity Lark shows as `c`, for characters that would format.
fn entity(c: char) -> Option<&'static str> {
    Some(match c {
        '&' => "&amp;",
        '<' => "&lt;",
        '>' => "&gt;",
        '*' => "&#42;",
        '_' => "&#95;",
        '~' => "&#126;",
        '`' => "&#96;",
        '[' => "&#91;",
        ']' => "&#93;",
        '(' => "&#40;",
        ')' => "&#41;",
        '#' => "&#35;",
        '|' => "&#124;",
        '\\' => "&#92;",
        _ => return None,
    })
}

/// Escapes a character that would open a block (`-`, `+`, `1.`, and in
/// WeCom `markdown` `#` and `>`) when it starts a line: `text` is what
/// follows the line's prefix. Returns what to write and how many bytes of
/// `text` it stands for.
pub(super) fn line_start(text: &str, dialect: Dialect) -> Option<(String, usize)> {
    let first = text.chars().next()?;
    if dialect == Dialect::WeComMarkdown {
        // No escape character: a zero-width space keeps `#` and `>` off the
        // line start, where they would open a heading or a quote.
        return matches!(first, '#' | '>').then(|| (format!("\u{200B}{first}"), 1));
    }
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let (lead, len) = if matches!(first, '-' | '+' | '=') {
        (first, 1)
    } else if digits > 0 && matches!(text.as_bytes().get(digits), Some(b'.' | b')')) {
        (text.as_bytes()[digits] as char, digits + 1)
    } else {
        return None;
    };
    let head = &text[..len - 1];
    let written = match dialect {
        Dialect::Plain | Dialect::WeComMarkdown => return None,
        Dialect::LarkMd | Dialect::LarkMarkdown => format!("{head}&#{};", lead as u32),
        _ => format!("{head}\\{lead}"),
    };
    Some((written, len))
}
