//! Fitting a whole request body into the channel's byte limit.
//!
//! The SDK trims one string ([`fit_bytes_with`]) or one table
//! ([`carillon_sdk::table::fit_rows`]); a chat payload has both inside JSON,
//! where escaping changes lengths. So the payload is rebuilt and measured:
//! first the table rows are cut (keeping the head of the body), then the body
//! is cut at a line boundary where possible. Candidate for the SDK.

use carillon_sdk::text::fit_bytes_with;

/// The body bytes kept while table rows are being cut.
const BODY_FLOOR: usize = 2_000;

/// Fits `text` into `budget` bytes with `note(cut)` appended when cut,
/// preferring to cut after a whole line so Markdown spans stay closed.
pub fn fit_lines(text: &str, budget: usize, note: &dyn Fn(usize) -> String) -> String {
    let trimmed = fit_bytes_with(text, budget, note);
    if !trimmed.was_cut() || trimmed.cut_bytes >= text.len() {
        return trimmed.text;
    }
    let kept = text.len() - trimmed.cut_bytes;
    if let Some(newline) = text[..kept].rfind('\n')
        && newline >= kept / 2
    {
        let candidate = format!("{}{}", &text[..newline], note(text.len() - newline));
        if candidate.len() <= budget {
            return candidate;
        }
    }
    trimmed.text
}

/// The largest payload built by `build(body, rows)` that is at most `limit`
/// bytes, with `rows` at most `total_rows`. `None` when even an empty body
/// with no rows is too large.
pub fn fit_payload(
    limit: usize,
    body: &str,
    total_rows: usize,
    note: &dyn Fn(usize) -> String,
    build: &dyn Fn(&str, usize) -> Vec<u8>,
) -> Option<Vec<u8>> {
    let full = build(body, total_rows);
    if full.len() <= limit {
        return Some(full);
    }
    let fits = |text: &str, rows: usize| build(text, rows).len() <= limit;

    // 1. Rows: as many as fit beside the head of the body.
    let head = fit_lines(body, BODY_FLOOR.min(body.len()), note);
    let rows = if fits(&head, total_rows) {
        total_rows
    } else {
        largest(0, total_rows, |n| fits(&head, n)).unwrap_or(0)
    };

    // 2. Body: the longest prefix that fits beside those rows.
    if fits(body, rows) {
        return Some(build(body, rows));
    }
    let budget = largest(0, body.len(), |b| fits(&fit_lines(body, b, note), rows))?;
    let out = build(&fit_lines(body, budget, note), rows);
    (out.len() <= limit).then_some(out)
}

/// The largest `n` in `lo..=hi` with `ok(n)`, assuming `ok` is monotonic
/// (true up to some point, false after); `None` when `ok(lo)` is false.
fn largest(lo: usize, hi: usize, ok: impl Fn(usize) -> bool) -> Option<usize> {
    if !ok(lo) {
        return None;
    }
    let (mut lo, mut hi) = (lo, hi);
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn note(cut: usize) -> String {
        format!("\n… cut {cut}")
    }

    #[test]
    fn lines_are_kept_whole() {
        let text = "line one\nline two\nline three";
        let out = fit_lines(text, 22, &note);
        assert!(out.len() <= 22, "{out:?}");
        assert!(out.starts_with("line one"), "{out:?}");
        assert!(out.contains("… cut"), "{out:?}");
    }

    #[test]
    fn payload_cuts_rows_then_body() {
        let body = "x".repeat(5_000);
        let build = |b: &str, rows: usize| format!("{b}{}", "r".repeat(rows * 100)).into_bytes();
        let out = fit_payload(3_000, &body, 50, &note, &build).unwrap();
        assert!(out.len() <= 3_000);
        let out = fit_payload(10_000, "short", 500, &note, &build).unwrap();
        assert!(out.len() <= 10_000 && out.len() > 9_900);
    }
}
