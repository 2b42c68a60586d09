//! Constructors and accessors on the WIT types, so plugins read like plain
//! Rust rather than like generated bindings.

use std::fmt;

use crate::{
    ConfigIssue, DeliverError, HttpError, HttpRequest, HttpResponse, Manifest, RateLimit,
    RetryLater, Severity, SmtpError,
};

impl Manifest {
    /// A manifest with the given name, version and description; no config
    /// properties, no hosts, a 64 KiB payload limit and no rate limits.
    pub fn new(name: &str, version: &str, description: &str) -> Self {
        Manifest {
            name: name.to_owned(),
            version: version.to_owned(),
            description: description.to_owned(),
            config_schema: r#"{"type":"object"}"#.to_owned(),
            secret_fields: Vec::new(),
            endpoint_fields: Vec::new(),
            allowed_hosts: Vec::new(),
            max_payload_bytes: 64 * 1024,
            rate_limits: Vec::new(),
        }
    }

    /// Sets the destination config's JSON Schema.
    pub fn schema(mut self, json_schema: &str) -> Self {
        self.config_schema = json_schema.to_owned();
        self
    }

    /// Marks a config property (JSON pointer) as a secret.
    pub fn secret_field(mut self, pointer: &str) -> Self {
        self.secret_fields.push(pointer.to_owned());
        self
    }

    /// Marks a config property (JSON pointer) as holding the endpoint URL or host.
    pub fn endpoint_field(mut self, pointer: &str) -> Self {
        self.endpoint_fields.push(pointer.to_owned());
        self
    }

    /// Allows a host pattern (`host`, `*.domain`, `*`, optionally `:port`).
    pub fn allowed_host(mut self, pattern: &str) -> Self {
        self.allowed_hosts.push(pattern.to_owned());
        self
    }

    /// Sets the largest payload the channel accepts.
    pub fn max_payload_bytes(mut self, bytes: u32) -> Self {
        self.max_payload_bytes = bytes;
        self
    }

    /// Adds a rate limit of `requests` per `window_ms`.
    pub fn rate_limit(mut self, requests: u32, window_ms: u32) -> Self {
        self.rate_limits.push(RateLimit {
            requests,
            window_ms,
        });
        self
    }
}

impl HttpRequest {
    /// A request with one `content-type` header and the gateway's default timeout.
    pub fn new(method: &str, url: &str, content_type: &str, body: Vec<u8>) -> Self {
        HttpRequest {
            method: method.to_owned(),
            url: url.to_owned(),
            headers: vec![("content-type".to_owned(), content_type.to_owned())],
            body,
            timeout_ms: None,
        }
    }

    /// A POST of a body already serialized as JSON (e.g. by
    /// [`fit::fit_json`](crate::fit::fit_json)), as UTF-8 JSON.
    pub fn post_json_bytes(url: &str, body: Vec<u8>) -> Self {
        HttpRequest::new("POST", url, crate::http::JSON_UTF8, body)
    }

    /// A POST of `body` serialized as JSON, with `content-type: application/json`.
    pub fn post_json(url: &str, body: &impl serde::Serialize) -> Result<Self, DeliverError> {
        let body = serde_json::to_vec(body)
            .map_err(|e| DeliverError::Rejected(format!("cannot encode the body as JSON: {e}")))?;
        Ok(HttpRequest::post_json_bytes(url, body))
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Sets the timeout for the whole exchange.
    pub fn timeout_ms(mut self, ms: u32) -> Self {
        self.timeout_ms = Some(ms);
        self
    }

    /// The body as UTF-8 text (lossy), for previews and tests.
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl HttpResponse {
    /// A response with a text body (`content-type: text/plain`).
    pub fn text(status: u16, body: &str) -> Self {
        HttpResponse {
            status,
            headers: vec![("content-type".to_owned(), "text/plain".to_owned())],
            body: body.as_bytes().to_vec(),
        }
    }

    /// A response with a JSON body.
    pub fn json(status: u16, body: &serde_json::Value) -> Self {
        HttpResponse {
            status,
            headers: vec![("content-type".to_owned(), "application/json".to_owned())],
            body: body.to_string().into_bytes(),
        }
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers
            .push((name.to_ascii_lowercase(), value.to_owned()));
        self
    }

    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as UTF-8 text (lossy).
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON, if it is JSON.
    pub fn body_json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// `true` for a 2xx status.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

impl DeliverError {
    /// A transient failure: retry with backoff.
    pub fn retryable(reason: impl fmt::Display) -> Self {
        DeliverError::Retryable(reason.to_string())
    }

    /// The channel asked to wait `after_ms` before the next attempt.
    pub fn rate_limited(after_ms: u64, reason: impl fmt::Display) -> Self {
        DeliverError::RateLimited(RetryLater {
            after_ms,
            reason: reason.to_string(),
        })
    }

    /// The channel refused the message for good.
    pub fn rejected(reason: impl fmt::Display) -> Self {
        DeliverError::Rejected(reason.to_string())
    }

    /// The destination's configuration cannot work.
    pub fn invalid_config(reason: impl fmt::Display) -> Self {
        DeliverError::InvalidConfig(reason.to_string())
    }
}

impl DeliverError {
    /// The error as one sentence, for logs, receipts and error texts.
    pub fn explain(&self) -> String {
        match self {
            DeliverError::Retryable(r) => format!("retryable: {r}"),
            DeliverError::RateLimited(r) => {
                format!("rate limited for {} ms: {}", r.after_ms, r.reason)
            }
            DeliverError::Rejected(r) => format!("rejected: {r}"),
            DeliverError::InvalidConfig(r) => format!("invalid config: {r}"),
        }
    }
}

impl HttpError {
    /// The error as one sentence, for logs, receipts and error texts.
    pub fn explain(&self) -> String {
        match self {
            HttpError::Denied(h) => format!("host {h} is not granted to this destination"),
            HttpError::PrivateAddress(a) => {
                format!("{a} is a private address the egress policy does not allow")
            }
            HttpError::InvalidRequest(r) => format!("invalid request: {r}"),
            HttpError::Timeout => "timed out".to_owned(),
            HttpError::Connect(r) => format!("connection failed: {r}"),
            HttpError::ResponseTooLarge(n) => format!("response larger than {n} bytes"),
            HttpError::Transport(r) => format!("transport error: {r}"),
        }
    }
}

impl SmtpError {
    /// The error as one sentence, for logs, receipts and error texts.
    pub fn explain(&self) -> String {
        match self {
            SmtpError::Denied(h) => format!("SMTP host {h} is not granted to this destination"),
            SmtpError::PrivateAddress(a) => {
                format!("{a} is a private address the egress policy does not allow")
            }
            SmtpError::InvalidMail(r) => format!("invalid mail: {r}"),
            SmtpError::Connect(r) => format!("SMTP connection failed: {r}"),
            SmtpError::Timeout => "SMTP timed out".to_owned(),
            SmtpError::Transient(r) => format!("SMTP {} {}", r.code, r.message),
            SmtpError::Permanent(r) => format!("SMTP {} {}", r.code, r.message),
        }
    }
}

impl ConfigIssue {
    /// A problem at `path` (a JSON pointer).
    pub fn new(path: &str, message: impl fmt::Display) -> Self {
        ConfigIssue {
            path: path.to_owned(),
            message: message.to_string(),
        }
    }
}

impl Severity {
    /// The lower-case name, e.g. `warning`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Success => "success",
            Severity::Warning => "warning",
            Severity::Error => "error",
            Severity::Critical => "critical",
        }
    }
}
