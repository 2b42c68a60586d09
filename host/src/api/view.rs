//! The JSON shapes the admin API serves: outbox records with readable
//! times (RFC 3339) and the stored event decoded.

use carillon_outbox::{
    Attempt, AttemptOutcome, DeadLetter, DeliveryState, DeliveryView, EventView, Timestamp,
};
use serde::Serialize;

use super::stored::StoredEvent;

pub use crate::timestamp::to_jiff;

/// A timestamp as RFC 3339 text (UTC).
pub fn time(t: Timestamp) -> String {
    to_jiff(t).to_string()
}

/// `GET /v1/events/{id}`.
#[derive(Debug, Serialize)]
pub struct EventOut {
    /// The event id.
    pub id: String,
    /// When it was accepted.
    pub received_at: String,
    /// The ingest token that posted it.
    pub token: String,
    /// The workspace it was posted into (empty when its body does not
    /// decode: then only an instance admin sees it).
    pub workspace: String,
    /// The event as normalized at ingest.
    pub event: serde_json::Value,
    /// Routes matched and targets chosen; `unrouted` when none.
    pub routing: serde_json::Value,
    /// Its deliveries with their attempts.
    pub deliveries: Vec<DeliveryOut>,
}

impl EventOut {
    /// Builds the view; a body that does not decode is shown raw.
    pub fn new(view: EventView) -> Self {
        let (token, workspace, event, routing) = match StoredEvent::from_bytes(&view.body) {
            Ok(stored) => (
                stored.token,
                stored.workspace,
                serde_json::to_value(&stored.event).unwrap_or_default(),
                serde_json::to_value(&stored.routing).unwrap_or_default(),
            ),
            Err(e) => (
                String::new(),
                String::new(),
                serde_json::Value::String(String::from_utf8_lossy(&view.body).into_owned()),
                serde_json::json!({ "error": e.to_string() }),
            ),
        };
        EventOut {
            id: view.id.to_string(),
            received_at: time(view.received_at),
            token,
            workspace,
            event,
            routing,
            deliveries: view.deliveries.into_iter().map(DeliveryOut::new).collect(),
        }
    }
}

/// A delivery with its history.
#[derive(Debug, Serialize)]
pub struct DeliveryOut {
    /// The delivery id.
    pub id: String,
    /// Its event.
    pub event_id: String,
    /// Where it goes.
    pub destination: String,
    /// `pending`, `claimed`, `scheduled`, `delivered` or `dead`.
    pub state: &'static str,
    /// When it is next due (pending, scheduled) or its lease ends (claimed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub due_at: Option<String>,
    /// When it was delivered or dead-lettered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// The last error, for scheduled and dead deliveries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// For delivered deliveries: the channel's id for the message (e.g.
    /// the vendor's message id, an email's Message-ID), if it gave one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_id: Option<String>,
    /// Attempts counted so far.
    pub attempts: u32,
    /// When it was created.
    pub created_at: String,
    /// The delivery this one is the fallback of.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback_of: Option<String>,
    /// The fallback delivery made when this one died.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback_to: Option<String>,
    /// Every recorded attempt, oldest first.
    pub history: Vec<AttemptOut>,
}

impl DeliveryOut {
    /// Builds the view.
    pub fn new(d: DeliveryView) -> Self {
        let remote_id = match &d.state {
            DeliveryState::Delivered(x) => x.remote_id.clone(),
            _ => None,
        };
        let (state, due_at, finished_at, last_error) = match &d.state {
            DeliveryState::Pending(p) => ("pending", Some(time(p.due)), None, None),
            DeliveryState::Claimed(c) => ("claimed", Some(time(c.lease_until)), None, None),
            DeliveryState::Scheduled(s) => (
                "scheduled",
                Some(time(s.due)),
                None,
                Some(s.last_error.clone()),
            ),
            DeliveryState::Delivered(x) => ("delivered", None, Some(time(x.at)), None),
            DeliveryState::Dead(x) => ("dead", None, Some(time(x.at)), Some(x.error.clone())),
        };
        DeliveryOut {
            id: d.id.to_string(),
            event_id: d.event_id.to_string(),
            destination: d.destination,
            state,
            due_at,
            finished_at,
            last_error,
            remote_id,
            attempts: d.attempts,
            created_at: time(d.created_at),
            fallback_of: d.fallback_of.map(|x| x.to_string()),
            fallback_to: d.fallback_to.map(|x| x.to_string()),
            history: d.history.into_iter().map(AttemptOut::new).collect(),
        }
    }
}

/// One recorded attempt.
#[derive(Debug, Serialize)]
pub struct AttemptOut {
    /// When it was recorded.
    pub at: String,
    /// `delivered`, `retry` or `dead`.
    pub outcome: &'static str,
    /// Whether it used up an attempt (rate limits and deferrals do not).
    pub counted: bool,
    /// The receipt detail or the error.
    pub detail: String,
    /// For delivered attempts: the channel's id for the message, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_id: Option<String>,
    /// For retries: when it is due again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_due: Option<String>,
    /// For dead letters: the fallback delivery made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback_to: Option<String>,
}

impl AttemptOut {
    fn new(a: Attempt) -> Self {
        let mut remote_id = None;
        let (outcome, detail, next_due, fallback_to) = match a.outcome {
            AttemptOutcome::Delivered {
                detail,
                remote_id: id,
            } => {
                remote_id = id;
                ("delivered", detail, None, None)
            }
            AttemptOutcome::Retry { error, next_due } => {
                ("retry", error, Some(time(next_due)), None)
            }
            AttemptOutcome::Dead { error, fallback_to } => {
                ("dead", error, None, fallback_to.map(|x| x.to_string()))
            }
        };
        AttemptOut {
            at: time(a.at),
            outcome,
            counted: a.counted,
            detail,
            remote_id,
            next_due,
            fallback_to,
        }
    }
}

/// One dead letter in `GET /v1/deliveries?state=dead`.
#[derive(Debug, Serialize)]
pub struct DeadOut {
    /// The delivery id.
    pub id: String,
    /// Its event.
    pub event_id: String,
    /// Where it was going.
    pub destination: String,
    /// When it died.
    pub dead_at: String,
    /// Why.
    pub error: String,
    /// Attempts counted.
    pub attempts: u32,
    /// The fallback delivery made, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback_to: Option<String>,
}

impl DeadOut {
    /// Builds the view.
    pub fn new(d: DeadLetter) -> Self {
        DeadOut {
            id: d.delivery_id.to_string(),
            event_id: d.event_id.to_string(),
            destination: d.destination,
            dead_at: time(d.dead_at),
            error: d.error,
            attempts: d.attempts,
            fallback_to: d.fallback_to.map(|x| x.to_string()),
        }
    }
}
