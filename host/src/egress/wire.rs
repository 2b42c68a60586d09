//! The HTTP request and response as the egress sends and returns them: the
//! gateway's own wire types, which the plugin runtime converts to and from
//! the WIT types (`plugin::convert`) and the admin API shows (a test push's
//! rendered request).

use serde::Serialize;

/// An HTTP request a plugin would send. Its `Debug` shows the method, the
/// URL without its query, the header names and the body's length: query
/// strings (signed URLs, access tokens), header values (`Authorization`)
/// and bodies may carry secrets, and a `Debug` line can end up in a log.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct HttpRequest {
    /// Method.
    pub method: String,
    /// URL with query.
    pub url: String,
    /// Headers in order.
    pub headers: Vec<(String, String)>,
    /// Body.
    #[serde(serialize_with = "as_text")]
    pub body: Vec<u8>,
    /// Requested timeout.
    pub timeout_ms: Option<u32>,
}

impl std::fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let url = url_without_credentials(&self.url);
        let headers: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("HttpRequest")
            .field("method", &self.method)
            .field("url", &url)
            .field("header_names", &headers)
            .field("body_len", &self.body.len())
            .field("timeout_ms", &self.timeout_ms)
            .finish()
    }
}

/// A response as returned to the plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Lower-case header names and values.
    pub headers: Vec<(String, String)>,
    /// Body, at most the response cap.
    pub body: Vec<u8>,
}

/// `url` with its user info and query replaced by `…` (and its fragment
/// left out); a URL that does not parse is not shown at all.
fn url_without_credentials(url: &str) -> String {
    let Ok(u) = url::Url::parse(url) else {
        return "<invalid url>".to_owned();
    };
    let user = if u.username().is_empty() && u.password().is_none() {
        ""
    } else {
        "…@"
    };
    let host = u.host_str().unwrap_or_default();
    let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
    let query = if u.query().is_some() { "?…" } else { "" };
    format!("{}://{user}{host}{port}{}{query}", u.scheme(), u.path())
}

/// Serializes a body as text (lossy UTF-8), as the admin API shows it.
pub(crate) fn as_text<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&String::from_utf8_lossy(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_http_requests_debug_shows_no_credentials() {
        let request = HttpRequest {
            method: "POST".into(),
            url: "https://bot:hunter2@oapi.example.com/robot/send?access_token=tok123&sign=sig456"
                .into(),
            headers: vec![
                ("authorization".into(), "Bearer abc.def".into()),
                ("content-type".into(), "application/json".into()),
            ],
            body: br#"{"secret":"in-body"}"#.to_vec(),
            timeout_ms: Some(5000),
        };
        let shown = format!("{request:?}");
        for secret in ["hunter2", "tok123", "sig456", "abc.def", "in-body", "bot:"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        for kept in [
            "POST",
            "https://…@oapi.example.com/robot/send?…",
            "authorization",
            "body_len: 20",
        ] {
            assert!(shown.contains(kept), "{kept} missing from {shown}");
        }
        assert_eq!(
            url_without_credentials("http://127.0.0.1:9/a/b"),
            "http://127.0.0.1:9/a/b"
        );
        assert_eq!(url_without_credentials("http://h/p@x"), "http://h/p@x");
    }
}
