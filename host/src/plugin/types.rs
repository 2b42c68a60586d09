//! The host's view of what plugins declare and answer. Converted from the
//! WIT types in `convert`; serializable for the API (secrets are the API's
//! business: `Outgoing` may carry signed URLs and must be redacted there).
//! An HTTP request is the egress's wire type
//! ([`HttpRequest`](crate::egress::wire::HttpRequest)).

use std::time::Duration;

use serde::Serialize;

use crate::egress::wire::{HttpRequest, as_text};

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
