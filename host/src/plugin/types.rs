//! The host's view of what plugins declare and answer. Converted from the
//! WIT types in `convert`; serializable for the API (secrets are the API's
//! business: `Outgoing` may carry signed URLs and must be redacted there).

use std::time::Duration;

use serde::Serialize;

/// A rate a channel enforces: `requests` per `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RateLimit {
    /// Requests allowed per window.
    pub requests: u32,
    /// The window.
    #[serde(serialize_with = "as_millis")]
    pub window: Duration,
}

/// What a plugin declares about itself.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Manifest {
    /// Plugin name, e.g. `dingtalk`.
    pub name: String,
    /// Plugin version.
    pub version: semver::Version,
    /// One sentence for admins.
    pub description: String,
    /// JSON Schema of a destination's config.
    pub config_schema: serde_json::Value,
    /// JSON pointers of secret config properties.
    pub secret_fields: Vec<String>,
    /// JSON pointers of endpoint config properties (their hosts are granted).
    pub endpoint_fields: Vec<String>,
    /// Host patterns the plugin may reach for every destination.
    pub allowed_hosts: Vec<String>,
    /// The largest payload the channel accepts.
    pub max_payload_bytes: u32,
    /// The channel's rate limits per destination.
    pub rate_limits: Vec<RateLimit>,
}

/// A problem in a destination config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigIssue {
    /// JSON pointer of the property (empty for the whole config).
    pub path: String,
    /// What is wrong.
    pub message: String,
}

/// Facts about the attempt, passed to `render` and `deliver`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryContext {
    /// Stable across retries.
    pub delivery_id: String,
    /// The event the message came from.
    pub event_id: String,
    /// Attempt number, from 1.
    pub attempt: u32,
    /// The attempt's time, ms since the Unix epoch.
    pub now_ms: u64,
}

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

/// A mail a plugin would send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mail {
    /// SMTP host.
    pub host: String,
    /// SMTP port.
    pub port: u16,
    /// Envelope sender.
    pub envelope_from: String,
    /// Envelope recipients.
    pub envelope_to: Vec<String>,
    /// The RFC 5322 message.
    #[serde(serialize_with = "as_text")]
    pub message: Vec<u8>,
}

/// The exact request a delivery would make.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Outgoing {
    /// An HTTP request.
    Http(HttpRequest),
    /// A mail.
    Mail(Mail),
}

impl Outgoing {
    /// The payload size: the HTTP body or the mail message.
    pub fn payload_len(&self) -> usize {
        match self {
            Outgoing::Http(r) => r.body.len(),
            Outgoing::Mail(m) => m.message.len(),
        }
    }
}

/// A successful delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Receipt {
    /// The channel's id for the message.
    pub remote_id: Option<String>,
    /// The channel's answer in brief.
    pub detail: String,
}

/// The plugin's answer when a delivery did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
pub enum DeliverError {
    /// Transient: retry with backoff.
    #[error("retryable: {0}")]
    Retryable(String),
    /// Slow down: retry after the wait; not a failed attempt.
    #[error("rate limited for {after:?}: {reason}")]
    RateLimited {
        /// How long to wait.
        #[serde(serialize_with = "as_millis")]
        after: Duration,
        /// The channel's words.
        reason: String,
    },
    /// Refused for good: dead-letter.
    #[error("rejected: {0}")]
    Rejected(String),
    /// The destination's config cannot work: dead-letter.
    #[error("invalid config: {0}")]
    InvalidConfig(String),
}

fn as_millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn as_text<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
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
