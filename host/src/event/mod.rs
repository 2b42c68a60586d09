//! The event: what an application reports, normalized from any of the
//! formats Carillon accepts (its own envelope, CloudEvents, Alertmanager).
//!
//! Everything after ingest (routing, templates, the outbox's stored body,
//! the admin API) sees only this type, so a new input format is one more
//! parser here and nothing else.
//!
//! The parsers are pure functions of headers, body and the current time,
//! with no HTTP server: [`parse_events`] reads `POST /v1/events` (the
//! native envelope, `envelope.rs`, validated against the published
//! [`schema`]; CloudEvents in structured, batched or binary mode,
//! `cloudevents.rs`), [`parse_alertmanager`] reads `POST /v1/alertmanager`
//! (`alertmanager.rs`). Every problem is a [`FieldError`] located by a JSON
//! pointer (or a `header:` name), worded for the app developer who sent
//! the request; no input makes them panic.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::message::{Field, Link, Mention, Severity, Table};

mod alertmanager;
mod checks;
mod cloudevents;
mod envelope;
mod errors;
mod mobile;
#[cfg(test)]
mod tests;

pub use alertmanager::{AlertLimits, SOURCE as ALERTMANAGER_SOURCE};
pub use checks::MAX_NAME_LEN;
pub use envelope::schema;
pub use errors::{FieldError, ParseError};
pub(crate) use mobile::normalize as mention_mobile;

/// Checks an idempotency key from outside the body (the `Idempotency-Key`
/// header) by the envelope field's rules: 1 to [`MAX_NAME_LEN`] characters.
pub fn check_idempotency_key(key: &str) -> Result<(), String> {
    checks::non_empty_bounded(key)
}

/// The most events one batch request may hold (native or CloudEvents).
pub const MAX_BATCH: usize = 1000;

/// Which input format a request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// Carillon's own envelope (`application/json`), one event or a batch.
    Native,
    /// One CloudEvent in structured mode (`application/cloudevents+json`).
    CloudEvent,
    /// CloudEvents in batched mode (`application/cloudevents-batch+json`).
    CloudEventBatch,
    /// One CloudEvent in binary mode (`ce-*` headers, the data as the body).
    CloudEventBinary,
    /// A Prometheus Alertmanager webhook payload (one event per alert).
    Alertmanager,
}

impl Format {
    /// A stable name for logs and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Native => "native",
            Format::CloudEvent => "cloudevent",
            Format::CloudEventBatch => "cloudevent_batch",
            Format::CloudEventBinary => "cloudevent_binary",
            Format::Alertmanager => "alertmanager",
        }
    }
}

/// A request's items after parsing: one entry per event (one for a single
/// event), each accepted or rejected on its own.
#[derive(Debug)]
pub struct Parsed {
    /// The format the request was read as.
    pub format: Format,
    /// Whether the body was a batch (an array, or an Alertmanager group):
    /// the answer then reports per item.
    pub batch: bool,
    /// The events, in request order; a rejected item's errors have paths
    /// prefixed with its index (`/3/severity`, `/alerts/3/labels`).
    pub items: Vec<Result<Event, Vec<FieldError>>>,
}

/// Parses `POST /v1/events`: the native envelope or a CloudEvent in
/// structured, batched or binary mode, chosen by Content-Type and the
/// `ce-specversion` header (as the CloudEvents HTTP binding says: an
/// `application/cloudevents…` type wins over headers). A single event with
/// errors is `Err(ParseError::Invalid)`; a batch answers per item.
pub fn parse_events(
    headers: &http::HeaderMap,
    body: &[u8],
    now: jiff::Timestamp,
) -> Result<Parsed, ParseError> {
    let content_type = headers
        .get(http::header::CONTENT_TYPE)
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
    let essence = content_type.as_deref().map(cloudevents::essence);
    let parsed = match essence.as_deref() {
        Some("application/cloudevents+json") => cloudevents::structured(body, now),
        Some("application/cloudevents-batch+json") => cloudevents::batch(body, now),
        // Another event format (`+avro`, `+protobuf`): not one we read.
        Some(other) if other.starts_with("application/cloudevents") => {
            Err(ParseError::UnsupportedMediaType {
                content_type: content_type.unwrap_or_default(),
            })
        }
        _ if headers.contains_key("ce-specversion") => cloudevents::binary(headers, body, now),
        Some("application/json") => envelope::parse(body, now),
        _ => Err(ParseError::UnsupportedMediaType {
            content_type: content_type.unwrap_or_default(),
        }),
    };
    parsed.map(Parsed::with_line_feeds)
}

/// Parses Carillon's own envelope (one event or a batch) from JSON bytes,
/// whatever the transport (e.g. the event inside a test-push request).
pub fn parse_native(body: &[u8], now: jiff::Timestamp) -> Result<Parsed, ParseError> {
    envelope::parse(body, now).map(Parsed::with_line_feeds)
}

/// Parses `POST /v1/alertmanager`: an Alertmanager webhook payload
/// (version 4), one event per alert. The payload's shape is checked as a
/// whole (`Err(ParseError::Invalid)`); each alert then converts on its own.
pub fn parse_alertmanager(body: &[u8], now: jiff::Timestamp) -> Result<Parsed, ParseError> {
    parse_alertmanager_within(body, now, AlertLimits::NONE)
}

/// [`parse_alertmanager`] within `limits`: a notification with too many
/// alerts, or whose events would take too much room, is refused as a whole
/// before its events are built.
pub fn parse_alertmanager_within(
    body: &[u8],
    now: jiff::Timestamp,
    limits: AlertLimits,
) -> Result<Parsed, ParseError> {
    alertmanager::parse(body, now, limits).map(Parsed::with_line_feeds)
}

impl Parsed {
    /// Every event's title and message with `\n` line endings only: a
    /// lone `\r` is a line break in some chat apps and nothing in others,
    /// so plugins never see one.
    fn with_line_feeds(mut self) -> Self {
        for event in self.items.iter_mut().flatten() {
            for text in [&mut event.title, &mut event.message].into_iter().flatten() {
                if text.contains('\r') {
                    *text = text.replace("\r\n", "\n").replace('\r', "\n");
                }
            }
        }
        self
    }
}

/// One event, normalized.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// What happened, dotted: `task.failed`, `alert.firing`. Routes match
    /// it with globs.
    #[serde(rename = "type")]
    pub event_type: String,
    /// Who reported it: an application or system name, or a URI.
    pub source: String,
    /// The client's own id for the event (CloudEvents `id`), if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// What the event is about (CloudEvents `subject`), if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The key a retried request repeats, so it is accepted once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// When it happened; the time it was received when the client gave none.
    pub time: jiff::Timestamp,
    /// How urgent it is.
    pub severity: Severity,
    /// A one-line title, if the client wrote one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The message text (Markdown), if the client wrote one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Free-form data: available to routes (`data.PATH`) and templates.
    #[serde(default)]
    pub data: serde_json::Map<String, serde_json::Value>,
    /// Flat string labels (Alertmanager's labels; routes use `labels.NAME`).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// A table to show.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<Table>,
    /// People to notify.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mentions: Vec<Mention>,
    /// A link to show as a button.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<Link>,
    /// Labelled values to show.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<Field>,
    /// The preferred language (BCP 47), if the client named one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    /// Destinations named by the client instead of routing (allowed per
    /// token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destinations: Option<Vec<String>>,
}

impl Event {
    /// A minimal event: `info`, no text, no data. For events the gateway
    /// raises itself (timeouts, resource alerts) and for tests.
    pub fn new(
        event_type: impl Into<String>,
        source: impl Into<String>,
        time: jiff::Timestamp,
    ) -> Self {
        Event {
            event_type: event_type.into(),
            source: source.into(),
            id: None,
            subject: None,
            idempotency_key: None,
            time,
            severity: Severity::Info,
            title: None,
            message: None,
            data: serde_json::Map::new(),
            labels: BTreeMap::new(),
            table: None,
            mentions: Vec::new(),
            link: None,
            fields: Vec::new(),
            locale: None,
            destinations: None,
        }
    }
}
