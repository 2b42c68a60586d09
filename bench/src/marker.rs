//! The marker every benchmark event carries: `bseq=<u64>;t=<unix nanos>`.
//! The load generator writes it into the event; the receiver finds it in
//! whatever body a gateway delivers (Carillon's webhook JSON, a DingTalk
//! Markdown card, Alertmanager's or Apprise's own formats), wherever the
//! gateway put it. So the scan is a plain byte scan that knows no format,
//! and it also accepts the separators written as JSON `\u00XX` escapes
//! (with any number of backslashes, for JSON inside a JSON string).

use std::time::{SystemTime, UNIX_EPOCH};

/// One marker found in a body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marker {
    /// The event's sequence number within its load run.
    pub seq: u64,
    /// When the load generator sent the event, in Unix nanoseconds.
    pub sent_unix_nanos: u64,
}

/// The marker text for `seq` sent at `sent_unix_nanos`.
pub fn write(seq: u64, sent_unix_nanos: u64) -> String {
    format!("bseq={seq};t={sent_unix_nanos}")
}

/// Now, in Unix nanoseconds (0 if the clock is before 1970).
pub fn now_unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Every well-formed marker in `body`, in order; one event's marker may
/// appear several times (title, Markdown and text of one message).
pub fn scan(body: &[u8]) -> Vec<Marker> {
    const KEY: &[u8] = b"bseq";
    let mut found = Vec::new();
    let mut i = 0;
    while let Some(at) = find(&body[i..], KEY) {
        let start = i + at + KEY.len();
        i = start;
        let Some(after_eq) = separator(body, start, b'=') else {
            continue;
        };
        let Some((seq, after_seq)) = number(body, after_eq) else {
            continue;
        };
        let Some(after_semi) = separator(body, after_seq, b';') else {
            continue;
        };
        if !body[after_semi..].starts_with(b"t") {
            continue;
        }
        let Some(after_t) = separator(body, after_semi + 1, b'=') else {
            continue;
        };
        let Some((sent, end)) = number(body, after_t) else {
            continue;
        };
        found.push(Marker {
            seq,
            sent_unix_nanos: sent,
        });
        i = end;
    }
    found
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The index after `ch` at `i`, written plainly or as `\u00XX` (any number
/// of backslashes, any hex case).
fn separator(body: &[u8], i: usize, ch: u8) -> Option<usize> {
    match body.get(i)? {
        &c if c == ch => Some(i + 1),
        b'\\' => {
            let mut j = i;
            while body.get(j) == Some(&b'\\') {
                j += 1;
            }
            let escape = body.get(j..j + 5)?;
            let hex = std::str::from_utf8(escape.get(3..)?).ok()?;
            let code = u8::from_str_radix(hex, 16).ok()?;
            (escape.starts_with(b"u00") && code == ch).then_some(j + 5)
        }
        _ => None,
    }
}

/// A decimal `u64` starting at `i` and the index after it; `None` without
/// digits or on overflow.
fn number(body: &[u8], i: usize) -> Option<(u64, usize)> {
    let digits = body
        .get(i..)?
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    if digits == 0 {
        return None;
    }
    let mut n: u64 = 0;
    for &b in &body[i..i + digits] {
        n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some((n, i + digits))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(seq: u64, t: u64) -> Marker {
        Marker {
            seq,
            sent_unix_nanos: t,
        }
    }

    #[test]
    fn finds_every_marker_in_order() {
        let body = format!(
            r#"{{"title":"x {} y","text":"{} and {}"}}"#,
            write(1, 100),
            write(1, 100),
            write(2, 200)
        );
        assert_eq!(scan(body.as_bytes()), vec![m(1, 100), m(1, 100), m(2, 200)]);
    }

    #[test]
    fn accepts_escaped_separators() {
        let body = br#"{"a":"bseq\u003d7\u003Bt\u003d9","b":"{\"c\":\"bseq\\u003d8;t=10\"}"}"#;
        assert_eq!(scan(body), vec![m(7, 9), m(8, 10)]);
    }

    #[test]
    fn ignores_malformed_and_overflowing_markers() {
        let body = b"bseq=;t=1 bseq=1;x=2 bseq=99999999999999999999;t=1 bseq=3;t= bseq=4;t=5";
        assert_eq!(scan(body), vec![m(4, 5)]);
        assert!(scan(b"").is_empty());
        assert!(scan(b"bseq").is_empty());
        assert!(scan(b"bseq\\").is_empty());
        assert!(scan(b"bseq\\u00").is_empty());
    }
}
