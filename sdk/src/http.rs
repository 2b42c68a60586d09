//! Outbound HTTP through the gateway.
//!
//! In a component, [`send`] calls the host's `http` import: the gateway checks
//! the host grant and the private-address policy, applies its timeout and
//! response cap, and returns refusals as [`HttpError`] values. Built natively,
//! it calls the [`testing::Harness`](crate::testing::Harness) responder.

use crate::{HttpError, HttpRequest, HttpResponse};

/// The content type of the JSON bodies plugins send.
pub const JSON_UTF8: &str = "application/json; charset=utf-8";

/// Sends a request and returns the whole response.
pub fn send(request: &HttpRequest) -> Result<HttpResponse, HttpError> {
    #[cfg(target_arch = "wasm32")]
    {
        crate::bindings::carillon::plugin::http::send(request)
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        crate::testing::dispatch_http(request)
    }
}

/// Percent-encodes a string for use as one URL query value or path segment
/// (RFC 3986 unreserved characters stay as they are).
pub fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(char::from(byte))
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// Appends `name=value` pairs (percent-encoded) to a URL's query.
pub fn with_query(url: &str, pairs: &[(&str, &str)]) -> String {
    let mut out = url.to_owned();
    for (name, value) in pairs {
        out.push(if out.contains('?') { '&' } else { '?' });
        out.push_str(&percent_encode(name));
        out.push('=');
        out.push_str(&percent_encode(value));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_encoding_keeps_unreserved() {
        assert_eq!(percent_encode("a+b/c=d"), "a%2Bb%2Fc%3Dd");
        assert_eq!(percent_encode("Az09-._~"), "Az09-._~");
        assert_eq!(percent_encode("中"), "%E4%B8%AD");
    }

    #[test]
    fn query_pairs_append() {
        assert_eq!(
            with_query(
                "https://x/send?access_token=t",
                &[("timestamp", "1"), ("sign", "a/b")]
            ),
            "https://x/send?access_token=t&timestamp=1&sign=a%2Fb"
        );
        assert_eq!(with_query("https://x/a", &[("k", "v")]), "https://x/a?k=v");
    }
}
