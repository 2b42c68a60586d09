//! The channel-neutral message, as the gateway stores and serves it.
//!
//! These types are the host's own: the outbox persists them and the API
//! serves them. They are converted to the WIT types only at the plugin
//! boundary (`plugin::convert`), so the plugin contract and the storage
//! format can evolve separately.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// How urgent a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Routine information.
    Info,
    /// Something finished well.
    Success,
    /// Attention needed soon.
    Warning,
    /// Something failed.
    Error,
    /// Act now.
    Critical,
}

impl Severity {
    /// The lower-case name, as in JSON and config (`info` … `critical`).
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Success => "success",
            Severity::Warning => "warning",
            Severity::Error => "error",
            Severity::Critical => "critical",
        }
    }
}

/// A comparison in a column condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Comparison {
    /// `<`
    #[serde(rename = "<")]
    Lt,
    /// `<=`
    #[serde(rename = "<=")]
    Le,
    /// `>`
    #[serde(rename = ">")]
    Gt,
    /// `>=`
    #[serde(rename = ">=")]
    Ge,
    /// `==`
    #[serde(rename = "==")]
    Eq,
    /// `!=`
    #[serde(rename = "!=")]
    Ne,
}

/// Cells satisfying the condition show as good, the others as bad.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// The comparison, `cell <op> operand`.
    pub op: Comparison,
    /// The right-hand side.
    pub operand: String,
}

/// One column of a table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Column {
    /// The data key the column shows.
    pub key: String,
    /// The header text.
    pub title: String,
    /// Shown before each value.
    #[serde(default)]
    pub prefix: String,
    /// Shown after each value.
    #[serde(default)]
    pub suffix: String,
    /// Optional good/bad colouring.
    #[serde(default)]
    pub condition: Option<Condition>,
}

/// A table: columns and rows of display text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Table {
    /// The columns, in order.
    pub columns: Vec<Column>,
    /// The rows, one cell per column.
    pub rows: Vec<Vec<String>>,
}

/// Someone to notify inside the message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum Mention {
    /// Everyone.
    All,
    /// A user by the channel's user id.
    UserId(String),
    /// A user by email.
    Email(String),
    /// A user by mobile number.
    Mobile(String),
}

/// A link shown as the channel's button.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Link {
    /// An absolute http(s) URL.
    pub url: String,
    /// The button text.
    #[serde(default)]
    pub label: Option<String>,
}

/// A labelled value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Field {
    /// The label.
    pub name: String,
    /// The value.
    pub value: String,
}

/// A rendered, channel-neutral message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Message {
    /// One-line title.
    pub title: String,
    /// CommonMark body.
    pub markdown: String,
    /// Plain-text body.
    pub text: String,
    /// Optional table.
    #[serde(default)]
    pub table: Option<Table>,
    /// Optional link.
    #[serde(default)]
    pub link: Option<Link>,
    /// People to notify.
    #[serde(default)]
    pub mentions: Vec<Mention>,
    /// Urgency.
    pub severity: Severity,
    /// BCP 47 language tag.
    pub locale: String,
    /// Labelled values.
    #[serde(default)]
    pub fields: Vec<Field>,
}

/// Why a stored message could not be read back.
#[derive(Debug, thiserror::Error)]
#[error("stored message: {0}")]
pub struct PayloadError(#[from] serde_json::Error);

#[derive(Serialize)]
struct PayloadRef<'a> {
    v: u32,
    message: &'a Message,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    escalation: &'a BTreeMap<String, Message>,
}

/// The stored form of a delivery's message, versioned on purpose: the
/// outbox keeps it across upgrades. `escalation` holds the message
/// rendered for each destination a contact's delivery may fall back to
/// (the alternate's language), keyed by destination: the outbox copies a
/// payload to the fallback as it is, and the fallback picks its own.
#[derive(Serialize, Deserialize)]
struct Payload {
    v: u32,
    message: Message,
    #[serde(default)]
    escalation: BTreeMap<String, Message>,
}

impl Message {
    /// The bytes the outbox stores for a delivery of this message.
    pub fn to_payload(&self) -> Vec<u8> {
        self.to_payload_with(&BTreeMap::new())
    }

    /// The bytes the outbox stores for a delivery of this message, with the
    /// messages rendered for the destinations it may fall back to.
    pub fn to_payload_with(&self, escalation: &BTreeMap<String, Message>) -> Vec<u8> {
        let payload = PayloadRef {
            v: 1,
            message: self,
            escalation,
        };
        // Serializing plain data structs to JSON cannot fail.
        serde_json::to_vec(&payload).unwrap_or_default()
    }

    /// Reads a stored delivery message.
    pub fn from_payload(bytes: &[u8]) -> Result<Message, PayloadError> {
        let payload: Payload = serde_json::from_slice(bytes)?;
        Ok(payload.message)
    }

    /// Is a delivery of this payload to `destination` a hop of a contact's
    /// escalation (rendered for it at ingest)?
    pub fn payload_escalates_to(bytes: &[u8], destination: &str) -> bool {
        serde_json::from_slice::<Payload>(bytes)
            .is_ok_and(|p| p.escalation.contains_key(destination))
    }

    /// Reads the message a delivery to `destination` sends: the one
    /// rendered for it when the payload carries one (a fallback of a
    /// contact's delivery), else the payload's message.
    pub fn from_payload_for(bytes: &[u8], destination: &str) -> Result<Message, PayloadError> {
        let mut payload: Payload = serde_json::from_slice(bytes)?;
        Ok(payload
            .escalation
            .remove(destination)
            .unwrap_or(payload.message))
    }

    /// A sample message for test pushes and previews.
    pub fn sample() -> Self {
        Message {
            title: "Carillon test message".into(),
            markdown: "This is a **test push** from Carillon.".into(),
            text: "This is a test push from Carillon.".into(),
            table: None,
            link: None,
            mentions: Vec::new(),
            severity: Severity::Info,
            locale: "en".into(),
            fields: Vec::new(),
        }
    }
}
