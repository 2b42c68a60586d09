//! Time expressions: `${yyyymmdd}`, `${yyyy-mm-dd-1}`, `${hh24:mi:ss}`.
//!
//! The grammar, Oracle-style: a format made of the tokens `yyyy yy mm dd
//! hh24 hh mi ss` (any case), joined by nothing or by one of `- / : .` and
//! space, then optionally a day offset `+N` or `-N`. minijinja cannot parse
//! these (`yyyy-mm-dd` is a subtraction, `:` a syntax error), so before a
//! template compiles, every `${…}` whose contents match this grammar
//! *exactly* is rewritten into a call of the registered function
//! `timefmt("FORMAT", OFFSET)`. The rewrite never spans lines, so line
//! numbers in errors stay those of the source; comments, `{% raw %}` blocks
//! and block tags are left alone.

use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};

/// The name of the function time expressions become.
pub(crate) const FUNCTION: &str = "timefmt";

/// The largest day offset (about 270 years).
const MAX_OFFSET_DAYS: i64 = 99_999;

/// One piece of a format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Piece {
    Year4,
    Year2,
    Month,
    Day,
    Hour24,
    Hour12,
    Minute,
    Second,
    Separator(char),
}

const TOKENS: &[(&str, Piece)] = &[
    ("yyyy", Piece::Year4),
    ("yy", Piece::Year2),
    ("mm", Piece::Month),
    ("dd", Piece::Day),
    ("hh24", Piece::Hour24),
    ("hh", Piece::Hour12),
    ("mi", Piece::Minute),
    ("ss", Piece::Second),
];

const SEPARATORS: &[char] = &['-', '/', ':', '.', ' '];

/// A parsed format: its pieces, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Format(Vec<Piece>);

/// A parsed time expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TimeExpr {
    /// The format, lower-cased.
    pub format: String,
    /// Days to add (negative: before the event).
    pub offset_days: i64,
}

/// The token at the start of `text`, and its length.
fn token(text: &str) -> Option<(Piece, usize)> {
    TOKENS.iter().find_map(|(name, piece)| {
        text.get(..name.len())
            .filter(|head| head.eq_ignore_ascii_case(name))
            .map(|_| (*piece, name.len()))
    })
}

/// Parses the longest format at the start of `text`: tokens joined by
/// at most one separator, never ending in a separator. Returns the pieces
/// and the bytes used.
fn format_prefix(text: &str) -> Option<(Vec<Piece>, usize)> {
    let (first, mut used) = token(text)?;
    let mut pieces = vec![first];
    loop {
        let rest = &text[used..];
        if let Some((piece, len)) = token(rest) {
            pieces.push(piece);
            used += len;
            continue;
        }
        let Some(sep) = rest.chars().next().filter(|c| SEPARATORS.contains(c)) else {
            break;
        };
        match token(&rest[sep.len_utf8()..]) {
            Some((piece, len)) => {
                pieces.push(Piece::Separator(sep));
                pieces.push(piece);
                used += sep.len_utf8() + len;
            }
            None => break,
        }
    }
    Some((pieces, used))
}

impl Format {
    /// Parses a whole format (no offset).
    pub(crate) fn parse(text: &str) -> Option<Format> {
        let (pieces, used) = format_prefix(text)?;
        (used == text.len()).then_some(Format(pieces))
    }

    /// `time` written in this format.
    pub(crate) fn write(&self, time: &Zoned) -> String {
        let mut out = String::new();
        for piece in &self.0 {
            match piece {
                Piece::Year4 => out.push_str(&format!("{:04}", time.year())),
                Piece::Year2 => out.push_str(&format!("{:02}", time.year().rem_euclid(100))),
                Piece::Month => out.push_str(&format!("{:02}", time.month())),
                Piece::Day => out.push_str(&format!("{:02}", time.day())),
                Piece::Hour24 => out.push_str(&format!("{:02}", time.hour())),
                Piece::Hour12 => {
                    let h = time.hour() % 12;
                    out.push_str(&format!("{:02}", if h == 0 { 12 } else { h }));
                }
                Piece::Minute => out.push_str(&format!("{:02}", time.minute())),
                Piece::Second => out.push_str(&format!("{:02}", time.second())),
                Piece::Separator(c) => out.push(*c),
            }
        }
        out
    }
}

impl TimeExpr {
    /// Parses the text between `${` and `}`; `None` unless all of it is a
    /// time expression.
    pub(crate) fn parse(inner: &str) -> Option<TimeExpr> {
        let text = inner.trim_matches([' ', '\t']);
        let (_, used) = format_prefix(text)?;
        let format = text[..used].to_ascii_lowercase();
        let rest = text[used..].trim_start_matches([' ', '\t']);
        let offset_days = if rest.is_empty() {
            0
        } else {
            let (negative, digits) = match rest.as_bytes().first() {
                Some(b'+') => (false, &rest[1..]),
                Some(b'-') => (true, &rest[1..]),
                _ => return None,
            };
            let digits = digits.trim_start_matches([' ', '\t']);
            if digits.is_empty() || digits.len() > 5 || !digits.bytes().all(|b| b.is_ascii_digit())
            {
                return None;
            }
            let n: i64 = digits.parse().ok()?;
            if negative { -n } else { n }
        };
        Some(TimeExpr {
            format,
            offset_days,
        })
    }
}

/// `text` (`yyyymmdd-1`) as a time expression evaluated at `time` in
/// `zone`; `None` when it is not one. What data-push parameters named like
/// a time expression are given (the run's fire time, the task's zone).
pub fn time_expression(
    text: &str,
    time: Timestamp,
    zone: &TimeZone,
) -> Option<Result<String, String>> {
    let expr = TimeExpr::parse(text)?;
    Some(format_time(time, zone, &expr.format, expr.offset_days))
}

/// `time` in `zone`, moved by `offset_days` calendar days, in `format`.
pub(crate) fn format_time(
    time: Timestamp,
    zone: &TimeZone,
    format: &str,
    offset_days: i64,
) -> Result<String, String> {
    let parsed = Format::parse(format).ok_or_else(|| {
        format!("{format:?} is not a time format (tokens yyyy yy mm dd hh24 hh mi ss)")
    })?;
    if offset_days.abs() > MAX_OFFSET_DAYS {
        return Err(format!(
            "a day offset of {offset_days} is out of range (at most {MAX_OFFSET_DAYS})"
        ));
    }
    let zoned = time.to_zoned(zone.clone());
    let moved = jiff::Span::new()
        .try_days(offset_days)
        .and_then(|span| zoned.checked_add(span))
        .map_err(|e| format!("cannot move the time by {offset_days} day(s): {e}"))?;
    Ok(parsed.write(&moved))
}

/// The source with every `${…}` time expression replaced by a call of
/// [`FUNCTION`]. Nothing else changes, and no line moves.
pub(crate) fn rewrite(source: &str) -> String {
    let mut out = String::with_capacity(source.len() + 16);
    let mut rest = source;
    loop {
        // The next place something starts: a comment, a block tag or a
        // variable.
        let Some(at) = rest.find(['{', '$']) else {
            out.push_str(rest);
            return out;
        };
        let (before, tail) = rest.split_at(at);
        out.push_str(before);
        if tail.starts_with("{#") {
            rest = copy_through(&mut out, tail, "#}");
        } else if tail.starts_with("{%") {
            if let Some(end) = raw_block_end(tail) {
                out.push_str(&tail[..end]);
                rest = &tail[end..];
            } else {
                rest = copy_through(&mut out, tail, "%}");
            }
        } else if let Some(inner_and_more) = tail.strip_prefix("${") {
            let expr = inner_and_more
                .find(['}', '\n'])
                .filter(|&end| inner_and_more[end..].starts_with('}'))
                .and_then(|end| TimeExpr::parse(&inner_and_more[..end]).map(|expr| (expr, end)));
            match expr {
                Some((expr, end)) => {
                    out.push_str(&format!(
                        "${{ {FUNCTION}(\"{}\", {}) }}",
                        expr.format, expr.offset_days
                    ));
                    rest = &inner_and_more[end + 1..];
                }
                None => {
                    out.push_str("${");
                    rest = inner_and_more;
                }
            }
        } else {
            // A lone `{` or `$`.
            let len = tail.chars().next().map_or(1, char::len_utf8);
            out.push_str(&tail[..len]);
            rest = &tail[len..];
        }
    }
}

/// Copies `text` up to and including `end` (or all of it) into `out`, and
/// returns what follows.
fn copy_through<'a>(out: &mut String, text: &'a str, end: &str) -> &'a str {
    // Skip the opening delimiter (two bytes) before looking for the end.
    let stop = text
        .get(2..)
        .and_then(|t| t.find(end))
        .map_or(text.len(), |i| i + 2 + end.len());
    out.push_str(&text[..stop]);
    &text[stop..]
}

/// When `text` starts with `{% raw %}` (any whitespace control), the length
/// up to the end of the matching `{% endraw %}` (or all of it).
fn raw_block_end(text: &str) -> Option<usize> {
    let tag_len = tag_named(text, "raw")?;
    let mut at = tag_len;
    while let Some(i) = text[at..].find("{%") {
        let start = at + i;
        if let Some(len) = tag_named(&text[start..], "endraw") {
            return Some(start + len);
        }
        at = start + 2;
    }
    Some(text.len())
}

/// When `text` starts with the block tag `{% NAME %}` (with optional `-`
/// or `+` whitespace control), its length.
fn tag_named(text: &str, name: &str) -> Option<usize> {
    let inner = text.strip_prefix("{%")?;
    let inner = inner.strip_prefix(['-', '+']).unwrap_or(inner);
    let inner = inner.trim_start();
    let after = inner.strip_prefix(name)?;
    let after_ws = after.trim_start();
    let after_ctl = after_ws.strip_prefix(['-', '+']).unwrap_or(after_ws);
    if after_ws.len() == after.len() && !after.starts_with(['-', '+', '%']) {
        return None; // `{% rawx %}`
    }
    let tail = after_ctl.strip_prefix("%}")?;
    Some(text.len() - tail.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expr(text: &str) -> Option<(String, i64)> {
        TimeExpr::parse(text).map(|e| (e.format, e.offset_days))
    }

    #[test]
    fn the_grammar_accepts_tokens_separators_and_an_offset() {
        assert_eq!(expr("yyyymmdd"), Some(("yyyymmdd".into(), 0)));
        assert_eq!(expr("yyyymmdd-1"), Some(("yyyymmdd".into(), -1)));
        assert_eq!(expr("yyyymmdd+7"), Some(("yyyymmdd".into(), 7)));
        assert_eq!(expr("yyyy-mm-dd-1"), Some(("yyyy-mm-dd".into(), -1)));
        assert_eq!(expr(" YYYY-MM-DD - 2 "), Some(("yyyy-mm-dd".into(), -2)));
        assert_eq!(expr("hh24:mi:ss"), Some(("hh24:mi:ss".into(), 0)));
        assert_eq!(expr("hh24miss"), Some(("hh24miss".into(), 0)));
        assert_eq!(
            expr("yyyy/mm/dd hh24:mi"),
            Some(("yyyy/mm/dd hh24:mi".into(), 0))
        );
        assert_eq!(expr("yyyymm"), Some(("yyyymm".into(), 0)));
        assert_eq!(expr("yyyy"), Some(("yyyy".into(), 0)));
        assert_eq!(expr("dd.mm.yy"), Some(("dd.mm.yy".into(), 0)));
        for not_time in [
            "",
            "date",
            "taskname",
            "yyyyy",
            "yyyy-",
            "yyyy--mm",
            "yyyy-mm-dd-",
            "yyyymmdd-1-1",
            "yyyymmdd-123456",
            "yyyymmdd*2",
            "mm | upper",
            "data.yyyy",
            "yyyy_mm",
        ] {
            assert_eq!(expr(not_time), None, "{not_time:?}");
        }
    }

    #[test]
    fn formats_write_oracle_tokens() {
        let zone = TimeZone::get("Asia/Shanghai").expect("zone");
        let t: Timestamp = "2024-03-01T01:02:03Z".parse().expect("time");
        let f = |format: &str, offset: i64| format_time(t, &zone, format, offset);
        assert_eq!(f("yyyymmdd", 0).as_deref(), Ok("20240301"));
        assert_eq!(f("yyyymmdd", -1).as_deref(), Ok("20240229"));
        assert_eq!(f("yyyy-mm-dd", 31).as_deref(), Ok("2024-04-01"));
        assert_eq!(f("hh24:mi:ss", 0).as_deref(), Ok("09:02:03"));
        assert_eq!(f("hh:mi", 0).as_deref(), Ok("09:02"));
        assert_eq!(f("yy/mm", 0).as_deref(), Ok("24/03"));
        let late: Timestamp = "2024-03-01T15:00:00Z".parse().expect("time");
        assert_eq!(
            format_time(late, &zone, "yyyymmdd hh24 hh", 0).as_deref(),
            Ok("20240301 23 11")
        );
        let noon: Timestamp = "2024-03-01T04:00:00Z".parse().expect("time");
        assert_eq!(format_time(noon, &zone, "hh", 0).as_deref(), Ok("12"));
        assert!(f("nope", 0).is_err());
        assert!(f("yyyy", 100_000).is_err());
    }

    #[test]
    fn only_time_expressions_are_rewritten_and_lines_stay() {
        let source = "A ${yyyymmdd-1} B ${ taskname } ${yyyy-mm-dd}\n\
                      {# ${yyyy} #}{% raw %}${yyyy}{% endraw %}{% if x %}${hh24:mi}{% endif %}\n\
                      ${ {\"a\": 1}[\"a\"] } $ { ${yyyy\n}";
        let out = rewrite(source);
        assert_eq!(
            out,
            "A ${ timefmt(\"yyyymmdd\", -1) } B ${ taskname } ${ timefmt(\"yyyy-mm-dd\", 0) }\n\
             {# ${yyyy} #}{% raw %}${yyyy}{% endraw %}{% if x %}${ timefmt(\"hh24:mi\", 0) }{% endif %}\n\
             ${ {\"a\": 1}[\"a\"] } $ { ${yyyy\n}"
        );
        assert_eq!(out.lines().count(), source.lines().count());
        assert_eq!(
            rewrite("{%- raw -%}${yyyy}{%- endraw -%}"),
            "{%- raw -%}${yyyy}{%- endraw -%}"
        );
        assert_eq!(
            rewrite("{% rawx %}${yyyy}"),
            "{% rawx %}${ timefmt(\"yyyy\", 0) }"
        );
        assert_eq!(rewrite("{# open"), "{# open");
        assert_eq!(rewrite("${"), "${");
        assert_eq!(rewrite("é${yy}é"), "é${ timefmt(\"yy\", 0) }é");
    }
}
