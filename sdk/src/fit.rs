//! Fitting a whole request payload into a channel's byte limit.
//!
//! [`text::fit_bytes_with`] trims one string and [`table::fit_rows`] one
//! table, but a chat payload holds both inside JSON, where escaping changes
//! lengths (`"` and `\n` grow, non-ASCII may be escaped). So the payload is
//! rebuilt and measured, never estimated: [`fit_payload`] asks the plugin to
//! build it for a body text and a number of table rows, and binary-searches
//! the largest candidate that fits —
//!
//! 1. table rows first: as many as fit beside the head of the body
//!    ([`BODY_FLOOR`] bytes), the rest replaced by
//!    [`table::more_rows_note`] (see [`rows_text`]);
//! 2. then the body text, cut at a line boundary where possible
//!    ([`fit_lines`]), never inside a UTF-8 character, with a localized
//!    note ([`truncated_note`]).
//!
//! Everything else the plugin puts in the payload (title, fields, link,
//! mentions, signature) is kept: those are the head and tail sections.
//!
//! ```
//! use carillon_sdk::fit::fit_json;
//! use serde_json::json;
//!
//! let body = "a line of text\n".repeat(500);
//! let bytes = fit_json(1_000, &body, 0, "en", |text, _rows| {
//!     json!({ "msgtype": "text", "text": { "content": format!("Title\n\n{text}") } })
//! })
//! .unwrap();
//! assert!(bytes.len() <= 1_000);
//! assert!(String::from_utf8(bytes).unwrap().contains("(truncated "));
//! ```

use crate::{DeliverError, Table, table, text};

/// The body bytes kept while table rows are being cut, so a long table
/// cannot push the whole text out.
pub const BODY_FLOOR: usize = 2_000;

/// The note that replaces the cut end of a body, in English or Chinese
/// (`locale` starting with `zh`). It starts with a blank line so that it
/// forms its own Markdown paragraph.
pub fn truncated_note(cut: usize, locale: &str) -> String {
    if crate::locale::is_chinese(locale) {
        format!("\n\n…（已截断 {cut} 字节）")
    } else {
        format!("\n\n… (truncated {cut} bytes)")
    }
}

/// Fits `text` into `budget` bytes with [`truncated_note`] appended when it
/// is cut. Prefers to cut after a whole line (when that keeps at least half
/// of what a byte cut keeps), so Markdown spans and list items stay closed;
/// never splits a UTF-8 character. When nothing of the text fits, the result
/// is the note alone, or empty if not even the note fits.
pub fn fit_lines(text: &str, budget: usize, locale: &str) -> String {
    let note = |cut: usize| truncated_note(cut, locale);
    let trimmed = text::fit_bytes_with(text, budget, note);
    if !trimmed.was_cut() {
        return trimmed.text;
    }
    if trimmed.cut_bytes >= text.len() {
        let whole = note(text.len());
        return if whole.len() <= budget {
            whole
        } else {
            String::new()
        };
    }
    let kept = text.len() - trimmed.cut_bytes;
    if let Some(newline) = text[..kept].rfind('\n')
        && newline >= kept / 2
    {
        let line_cut = format!("{}{}", &text[..newline], note(text.len() - newline));
        if line_cut.len() <= budget {
            return line_cut;
        }
    }
    trimmed.text
}

/// A table rendered with its first `rows` rows by `render`, followed by
/// [`table::more_rows_note`] when rows were left out.
pub fn rows_text(
    table: &Table,
    rows: usize,
    render: impl Fn(&Table) -> String,
    locale: &str,
) -> String {
    let total = table.rows.len();
    let shown = rows.min(total);
    let mut out = render(&table::head(table, shown));
    if shown < total {
        out.push_str(&table::more_rows_note(total - shown, locale));
    }
    out
}

/// Joins the non-empty sections with blank lines.
pub fn join_sections(sections: &[&str]) -> String {
    sections
        .iter()
        .filter(|s| !s.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// The largest `n` in `lo..=hi` with `ok(n)`, by binary search (about
/// log2(hi − lo) calls), assuming `ok` is monotonic: true up to some point,
/// false after. `None` when `ok(lo)` is false. The answer is always a value
/// for which `ok` returned true, even if `ok` is not quite monotonic.
pub fn largest(lo: usize, hi: usize, mut ok: impl FnMut(usize) -> bool) -> Option<usize> {
    if !ok(lo) {
        return None;
    }
    let (mut lo, mut hi) = (lo, hi.max(lo));
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if ok(mid) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    Some(lo)
}

/// The largest payload `build(text, rows)` that `fits`: all `total_rows`
/// table rows and the whole `body` when possible; otherwise rows are cut
/// first (as many as fit beside the first [`BODY_FLOOR`] bytes of the body),
/// then the body is cut with [`fit_lines`]. `build` must render the rows note
/// itself (e.g. with [`rows_text`]) when `rows < total_rows`.
///
/// `None` when not even an empty body without rows fits.
pub fn fit_payload<T>(
    body: &str,
    total_rows: usize,
    locale: &str,
    build: impl Fn(&str, usize) -> T,
    fits: impl Fn(&T) -> bool,
) -> Option<T> {
    let full = build(body, total_rows);
    if fits(&full) {
        return Some(full);
    }
    let ok = |text: &str, rows: usize| fits(&build(text, rows));

    // 1. Rows: as many as fit beside the head of the body.
    let head = fit_lines(body, BODY_FLOOR.min(body.len()), locale);
    let rows = if total_rows == 0 || ok(&head, total_rows) {
        total_rows
    } else {
        largest(0, total_rows, |n| ok(&head, n)).unwrap_or(0)
    };

    // 2. Body: the longest prefix that fits beside those rows.
    let whole = build(body, rows);
    if fits(&whole) {
        return Some(whole);
    }
    let budget = largest(0, body.len(), |b| ok(&fit_lines(body, b, locale), rows))?;
    let out = build(&fit_lines(body, budget, locale), rows);
    fits(&out).then_some(out)
}

/// [`fit_payload`] for a JSON body: `build` returns the payload as a value,
/// which is serialized and measured against `limit` bytes. Returns the
/// serialized bytes, or `Rejected` when the message cannot fit at all.
pub fn fit_json(
    limit: usize,
    body: &str,
    total_rows: usize,
    locale: &str,
    build: impl Fn(&str, usize) -> serde_json::Value,
) -> Result<Vec<u8>, DeliverError> {
    let encode = |text: &str, rows: usize| serde_json::to_vec(&build(text, rows)).ok();
    let fits = |bytes: &Option<Vec<u8>>| bytes.as_ref().is_some_and(|b| b.len() <= limit);
    fit_payload(body, total_rows, locale, encode, fits)
        .flatten()
        .ok_or_else(|| {
            DeliverError::rejected(format!(
                "the message does not fit in {limit} bytes even without its body and table"
            ))
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::Column;
    use serde_json::json;
    use std::cell::Cell;

    fn table(rows: usize) -> Table {
        Table {
            columns: vec![Column {
                key: "k".into(),
                title: "名称".into(),
                prefix: String::new(),
                suffix: String::new(),
                condition: None,
            }],
            rows: (0..rows)
                .map(|i| vec![format!("row {i} \"quoted\"")])
                .collect(),
        }
    }

    /// A JSON payload shaped like a chat message: head, body, table, tail.
    fn payload(body: &str, t: &Table, rows: usize, locale: &str) -> serde_json::Value {
        let table = rows_text(t, rows, table::markdown_table, locale);
        json!({ "markdown": { "text": join_sections(&["# Title", body, &table, "tail @13800000000"]) } })
    }

    fn text_of(bytes: &[u8]) -> String {
        let v: serde_json::Value = serde_json::from_slice(bytes).unwrap();
        v["markdown"]["text"].as_str().unwrap().to_owned()
    }

    #[test]
    fn notes_are_localized() {
        assert_eq!(truncated_note(12, "en"), "\n\n… (truncated 12 bytes)");
        assert_eq!(truncated_note(12, "zh-CN"), "\n\n…（已截断 12 字节）");
    }

    #[test]
    fn lines_are_kept_whole() {
        let text = "line one\nline two\nline three and more";
        let out = fit_lines(text, 36, "en");
        assert_eq!(
            out, "line one\n\n… (truncated 29 bytes)",
            "cut after a whole line"
        );
        assert_eq!(fit_lines(text, 100, "en"), text);
        // No newline in the second half of what fits: a byte cut instead.
        let out = fit_lines("ab\ncdefghijklmnopqrstuvwxyz0123456789", 34, "en");
        assert!(out.starts_with("ab\ncdefg") && out.len() <= 34, "{out:?}");
    }

    #[test]
    fn cjk_and_emoji_are_never_split() {
        let cjk = "告警内容".repeat(200);
        let emoji = "🚀🔥".repeat(200);
        for text in [&cjk, &emoji] {
            for budget in 0..200 {
                let out = fit_lines(text, budget, "zh-CN");
                assert!(out.len() <= budget, "{budget}: {out:?}");
                // A String is valid UTF-8; check that the kept prefix is a prefix.
                let kept = out.split("\n\n…").next().unwrap();
                assert!(text.starts_with(kept), "{budget}: {out:?}");
                if !out.is_empty() {
                    assert!(out.contains("已截断"), "{budget}: {out:?}");
                }
            }
        }
    }

    #[test]
    fn tiny_budgets_give_the_note_or_nothing() {
        let text = "x".repeat(1000);
        assert_eq!(fit_lines(&text, 0, "en"), "");
        assert_eq!(fit_lines(&text, 5, "en"), "", "never a partial note");
        let note = truncated_note(1000, "en");
        let out = fit_lines(&text, note.len(), "en");
        assert!(
            out.len() <= note.len() && out.ends_with("bytes)"),
            "{out:?}"
        );
        // A payload whose fixed parts exceed the limit cannot fit.
        let err = fit_json(
            10,
            &text,
            0,
            "en",
            |b, _| json!({ "title": "too long a title", "b": b }),
        );
        assert!(matches!(err, Err(DeliverError::Rejected(r)) if r.contains("10 bytes")));
        // Just above the fixed parts: the body is dropped, the rest kept.
        let fixed = serde_json::to_vec(&json!({ "t": "T", "b": "" }))
            .unwrap()
            .len();
        let out = fit_json(
            fixed + 3,
            &text,
            0,
            "en",
            |b, _| json!({ "t": "T", "b": b }),
        )
        .unwrap();
        assert!(out.len() <= fixed + 3);
    }

    #[test]
    fn small_payloads_are_untouched() {
        let t = table(3);
        let out = fit_json(10_000, "short body", 3, "en", |b, r| {
            payload(b, &t, r, "en")
        })
        .unwrap();
        let text = text_of(&out);
        assert!(text.contains("row 2") && text.contains("short body"));
        assert!(!text.contains("more row") && !text.contains("truncated"));
    }

    #[test]
    fn rows_are_cut_before_the_body() {
        let t = table(500);
        let body = "a short body that must survive.";
        let out = fit_json(3_000, body, 500, "en", |b, r| payload(b, &t, r, "en")).unwrap();
        assert!(out.len() <= 3_000);
        assert!(out.len() > 2_900, "uses the room: {}", out.len());
        let text = text_of(&out);
        assert!(text.contains(body), "the body is whole: {text}");
        assert!(text.contains(" more rows"), "{text}");
        assert!(
            text.ends_with("tail @13800000000"),
            "the tail is kept: {text}"
        );
        assert!(text.starts_with("# Title"));
    }

    #[test]
    fn a_long_body_keeps_its_head_and_the_rows_that_fit_beside_it() {
        let t = table(500);
        let body = "- line with \"quotes\" and 中文\n".repeat(1_000);
        let limit = 8_000;
        let out = fit_json(limit, &body, 500, "zh", |b, r| payload(b, &t, r, "zh")).unwrap();
        assert!(
            out.len() <= limit && out.len() > limit - 100,
            "{}",
            out.len()
        );
        let text = text_of(&out);
        assert!(text.contains("已截断"), "{text}");
        assert!(text.contains("另有"), "{text}");
        assert!(text.contains("row 0"), "some rows are kept");
        // Cut at a line boundary: the kept body ends with a whole line.
        let kept = text.split("\n\n…（已截断").next().unwrap();
        assert!(kept.ends_with("中文"), "{kept:?}");
        assert!(text.ends_with("tail @13800000000"));
    }

    #[test]
    fn escaping_is_measured_exactly() {
        // Every quote and newline doubles in JSON: estimates would overshoot.
        let body = "\"\n".repeat(5_000);
        for limit in [100, 1_000, 4_096, 8_192] {
            let out = fit_json(limit, &body, 0, "en", |b, _| json!({ "content": b })).unwrap();
            assert!(out.len() <= limit, "{limit}: {}", out.len());
            assert!(out.len() + 40 > limit, "{limit}: {} wastes room", out.len());
        }
    }

    #[test]
    fn extra_constraints_are_honoured() {
        // e.g. a content limit inside a larger body limit.
        let body = "text ".repeat(2_000);
        let out = fit_payload(
            &body,
            0,
            "en",
            |b, _| format!("Title\n\n{b}"),
            |s: &String| s.len() <= 4_096 && s.len() + 100 <= 8_192,
        )
        .unwrap();
        assert!(out.len() <= 4_096 && out.len() > 4_000);
    }

    #[test]
    fn search_is_logarithmic_and_exact() {
        for limit in [0usize, 1, 7, 500, 999_999, 1_000_000] {
            let calls = Cell::new(0);
            let found = largest(0, 1_000_000, |n| {
                calls.set(calls.get() + 1);
                n <= limit
            });
            assert_eq!(found, Some(limit));
            assert!(calls.get() <= 22, "{limit}: {} calls", calls.get());
        }
        assert_eq!(largest(5, 10, |_| false), None);
        assert_eq!(largest(5, 10, |_| true), Some(10));
        assert_eq!(largest(5, 3, |_| true), Some(5));
    }
}
