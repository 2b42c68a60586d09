//! The small MIME writer this plugin needs: RFC 2047 encoded words, header
//! folding (RFC 5322 §2.2.3), quoted-printable and base64 bodies (RFC 2045),
//! multipart bodies (RFC 2046) and the RFC 5322 date. Everything it writes
//! is 7-bit ASCII with CRLF line ends and lines of at most 78 characters
//! (except an unbreakable token, never above 998).
//!
//! Why not lettre's message builder (`lettre`, `default-features = false,
//! features = ["builder"]`), the crate the gateway already sends SMTP with:
//! it builds for `wasm32-wasip2` (checked with lettre 0.11.23), and with a
//! fixed date, Message-ID and boundaries its output is deterministic. But it
//! writes the headers differently from what this plugin's tests pin:
//! `charset=utf-8` where the tests look for `Content-Type: text/plain;
//! charset=UTF-8` (lettre's `mime` crate lowercases the charset even when
//! given upper case), display names always quoted (`"Carillon Alerts"
//! <a@example.com>` where `address.rs`'s tests expect the atoms unquoted) and
//! encoded words as `=?utf-8?b?…?=` (the tests expect `=?UTF-8?B?…?=`).
//! Every difference means the same to a mail client, but adopting lettre
//! would change those test assertions, not only the goldens, and this round
//! keeps assertions as they are. Revisit it as a change of its own: switch,
//! then relax the pinned spellings to case-insensitive checks and regenerate
//! `tests/golden/table.eml`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// The line end of every message line.
pub const CRLF: &str = "\r\n";

/// The recommended header line length.
const LINE: usize = 78;

/// Bytes of UTF-8 per encoded word: 45 bytes are 60 base64 characters, and
/// `=?UTF-8?B?` + 60 + `?=` is 72, inside the 75 allowed.
const WORD_BYTES: usize = 45;

/// `text` as RFC 2047 `B` encoded words, split on character boundaries.
/// Decoders join adjacent encoded words without the space between them.
pub fn encoded_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in text.chars() {
        if chunk.len() + c.len_utf8() > WORD_BYTES {
            words.push(encoded_word(&chunk));
            chunk.clear();
        }
        chunk.push(c);
    }
    if !chunk.is_empty() || words.is_empty() {
        words.push(encoded_word(&chunk));
    }
    words
}

fn encoded_word(chunk: &str) -> String {
    format!("=?UTF-8?B?{}?=", STANDARD.encode(chunk.as_bytes()))
}

/// Unstructured header text (a subject) as tokens: whitespace collapsed,
/// control characters dropped; plain words when the text is printable ASCII
/// with short words, else encoded words.
pub fn unstructured(text: &str) -> Vec<String> {
    let clean: String = text
        .chars()
        .map(|c| if c.is_whitespace() { ' ' } else { c })
        .filter(|c| !c.is_control())
        .collect();
    let words: Vec<&str> = clean.split(' ').filter(|w| !w.is_empty()).collect();
    let plain = words
        .iter()
        .all(|w| w.len() <= 60 && w.bytes().all(|b| (33..=126).contains(&b)) && !w.contains("=?"));
    if words.is_empty() {
        Vec::new()
    } else if plain {
        words.into_iter().map(str::to_owned).collect()
    } else {
        encoded_words(&words.join(" "))
    }
}

/// One header field, folded between tokens so lines stay within 78
/// characters where the tokens allow. Ends with CRLF.
pub fn header(name: &str, tokens: &[String]) -> String {
    let mut out = format!("{name}:");
    let mut column = out.len();
    for token in tokens {
        // Fold before a token that overflows, even the first (a long
        // header name and an encoded word pass 78 together), unless it
        // would not fit on a line of its own either.
        if column + 1 + token.len() > LINE && (column > name.len() + 1 || token.len() < LINE) {
            out.push_str(CRLF);
            column = 0;
        }
        out.push(' ');
        out.push_str(token);
        column += 1 + token.len();
    }
    out.push_str(CRLF);
    out
}

/// A header whose value is one token (never folded).
pub fn simple_header(name: &str, value: &str) -> String {
    header(name, &[value.to_owned()])
}

/// Quoted-printable (RFC 2045 §6.7) of UTF-8 text: `\n` and `\r\n` become
/// CRLF line breaks, `=`, non-ASCII and control bytes are `=XX`, trailing
/// spaces are encoded, and lines are broken with soft breaks (`=`) to at
/// most 76 characters. No trailing line break.
pub fn quoted_printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push_str(CRLF);
        }
        let line = line.strip_suffix('\r').unwrap_or(line).as_bytes();
        let mut column = 0;
        for (j, &b) in line.iter().enumerate() {
            let last = j + 1 == line.len();
            let literal = match b {
                b' ' | b'\t' => !last,
                b'=' => false,
                33..=126 => true,
                _ => false,
            };
            let width = if literal { 1 } else { 3 };
            // Room for the soft break's `=`, except on the line's last piece.
            let limit = if last { 76 } else { 75 };
            if column + width > limit {
                out.push('=');
                out.push_str(CRLF);
                column = 0;
            }
            if literal {
                out.push(char::from(b));
            } else {
                out.push_str(&format!("={b:02X}"));
            }
            column += width;
        }
    }
    out
}

/// Base64 in lines of 76 characters, CRLF between lines, none at the end.
pub fn base64_lines(bytes: &[u8]) -> String {
    let encoded = STANDARD.encode(bytes);
    let mut out = String::with_capacity(encoded.len() + encoded.len() / 38);
    for (i, chunk) in encoded.as_bytes().chunks(76).enumerate() {
        if i > 0 {
            out.push_str(CRLF);
        }
        out.push_str(&String::from_utf8_lossy(chunk));
    }
    out
}

/// A body part: its headers (each ending in CRLF) and its encoded body.
#[derive(Debug, Clone)]
pub struct Part {
    /// Header fields, each ending with CRLF.
    pub headers: String,
    /// The encoded body, without a final line break.
    pub body: String,
}

impl Part {
    /// A UTF-8 text part, quoted-printable.
    pub fn text(subtype: &str, text: &str) -> Part {
        Part {
            headers: format!(
                "Content-Type: text/{subtype}; charset=UTF-8{CRLF}Content-Transfer-Encoding: quoted-printable{CRLF}"
            ),
            body: quoted_printable(text),
        }
    }

    /// An attachment, base64. `filename` must be a plain ASCII name.
    pub fn attachment(content_type: &str, filename: &str, bytes: &[u8]) -> Part {
        Part {
            headers: format!(
                "Content-Type: {content_type}; name=\"{filename}\"{CRLF}Content-Transfer-Encoding: base64{CRLF}Content-Disposition: attachment; filename=\"{filename}\"{CRLF}"
            ),
            body: base64_lines(bytes),
        }
    }

    /// A multipart of `parts` with `boundary` (which must not occur in them:
    /// use one containing `=_`, which quoted-printable and base64 never
    /// produce).
    pub fn multipart(subtype: &str, boundary: &str, parts: &[Part]) -> Part {
        let mut body = String::new();
        for part in parts {
            body.push_str(&format!("--{boundary}{CRLF}"));
            body.push_str(&part.headers);
            body.push_str(CRLF);
            body.push_str(&part.body);
            body.push_str(CRLF);
        }
        body.push_str(&format!("--{boundary}--"));
        Part {
            headers: format!(
                "Content-Type: multipart/{subtype};{CRLF} boundary=\"{boundary}\"{CRLF}"
            ),
            body,
        }
    }
}

/// An RFC 5322 date in UTC, e.g. `Tue, 14 Nov 2023 22:13:20 +0000`.
pub fn rfc5322_date(now_ms: u64) -> String {
    let secs = now_ms / 1000;
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let weekday = WEEKDAYS[usize::try_from(days.rem_euclid(7)).unwrap_or(0)];
    let month = MONTHS[usize::try_from(month - 1).unwrap_or(0).min(11)];
    format!(
        "{weekday}, {day:02} {month} {year} {:02}:{:02}:{:02} +0000",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 → (year, month 1–12, day 1–31), proleptic
/// Gregorian (H. Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A reference decoder, to check the encoder against.
    fn decode_qp(encoded: &str) -> String {
        let mut bytes = Vec::new();
        let raw = encoded.as_bytes();
        let mut i = 0;
        while i < raw.len() {
            match raw[i] {
                b'=' if raw.get(i + 1) == Some(&b'\r') => i += 3,
                b'=' => {
                    let hex = std::str::from_utf8(&raw[i + 1..i + 3]).unwrap();
                    bytes.push(u8::from_str_radix(hex, 16).unwrap());
                    i += 3;
                }
                b'\r' => {
                    bytes.push(b'\n');
                    i += 2;
                }
                b => {
                    bytes.push(b);
                    i += 1;
                }
            }
        }
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn quoted_printable_round_trips_and_keeps_lines_short() {
        let long = "word ".repeat(40);
        let cjk = "数据同步任务失败：连接数据库超时。".repeat(5);
        let xs = "x".repeat(200);
        let cases = [
            "plain ascii",
            "trailing space \nand tab\t\nend",
            "a=b, 100% = done",
            cjk.as_str(),
            long.as_str(),
            xs.as_str(),
            "",
            "\n\nblank lines\n",
            "ends with space ",
            "crlf\r\nline ends",
        ];
        for case in cases {
            let encoded = quoted_printable(case);
            assert!(encoded.is_ascii(), "{encoded}");
            for line in encoded.split(CRLF) {
                assert!(line.len() <= 76, "{line:?} in {encoded:?}");
                assert!(!line.ends_with(' ') && !line.ends_with('\t'), "{line:?}");
            }
            assert_eq!(decode_qp(&encoded), case.replace("\r\n", "\n"), "{encoded}");
        }
        assert_eq!(quoted_printable("a=b"), "a=3Db");
        assert_eq!(quoted_printable("é"), "=C3=A9");
    }

    #[test]
    fn encoded_words_are_short_and_split_on_characters() {
        let words = encoded_words(&"数据".repeat(30));
        assert!(words.len() > 1);
        for word in &words {
            assert!(word.len() <= 75, "{word}");
            let b64 = word.trim_start_matches("=?UTF-8?B?").trim_end_matches("?=");
            let bytes = STANDARD.decode(b64).unwrap();
            assert!(String::from_utf8(bytes).is_ok(), "split inside a character");
        }
    }

    #[test]
    fn subjects_are_plain_or_encoded() {
        assert_eq!(
            unstructured("Nightly  ETL\r\nsucceeded"),
            ["Nightly", "ETL", "succeeded"]
        );
        assert_eq!(unstructured("数据")[0], "=?UTF-8?B?5pWw5o2u?=");
        // Something that looks like an encoded word is encoded itself.
        assert!(unstructured("=?UTF-8?B?x?=")[0].starts_with("=?UTF-8?B?PT9"));
        assert!(unstructured("").is_empty());
    }

    #[test]
    fn headers_fold_between_tokens() {
        let tokens: Vec<String> = (0..30).map(|i| format!("word{i}")).collect();
        let h = header("Subject", &tokens);
        assert!(h.ends_with(CRLF));
        for line in h.trim_end().split(CRLF) {
            assert!(line.len() <= 78, "{line}");
        }
        assert_eq!(
            h.replace("\r\n ", " "),
            format!("Subject: {}\r\n", tokens.join(" "))
        );
    }

    #[test]
    fn dates() {
        assert_eq!(
            rfc5322_date(1_700_000_000_000),
            "Tue, 14 Nov 2023 22:13:20 +0000"
        );
        assert_eq!(rfc5322_date(0), "Thu, 01 Jan 1970 00:00:00 +0000");
        assert_eq!(
            rfc5322_date(951_782_400_000),
            "Tue, 29 Feb 2000 00:00:00 +0000"
        );
        assert_eq!(
            rfc5322_date(4_102_444_799_000),
            "Thu, 31 Dec 2099 23:59:59 +0000"
        );
    }

    #[test]
    fn base64_lines_are_76() {
        let b = base64_lines(&[0u8; 200]);
        let lines: Vec<&str> = b.split(CRLF).collect();
        assert!(lines[..lines.len() - 1].iter().all(|l| l.len() == 76));
        assert_eq!(STANDARD.decode(lines.concat()).unwrap(), vec![0u8; 200]);
    }
}
