//! The event: what an application reports, normalized from any of the
//! formats Carillon accepts (its own envelope, CloudEvents, Alertmanager).
//!
//! Everything after ingest (routing, templates, the outbox's stored body,
//! the admin API) sees only this type, so a new input format is one more
//! parser here and nothing else.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::message::{Field, Link, Mention, Severity, Table};

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
