//! The event body the outbox keeps: the normalized event, who posted it,
//! and the routing decision, versioned because it outlives upgrades.

use serde::{Deserialize, Serialize};

use crate::event::Event;

/// What is stored as the outbox event's body.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredEvent {
    /// Format version (1).
    pub v: u32,
    /// The name of the ingest token that posted it.
    pub token: String,
    /// The workspace it was posted into (routed by its routes, seen by its
    /// tokens); bodies stored before workspaces existed read as `default`.
    #[serde(default = "default_workspace")]
    pub workspace: String,
    /// The event.
    pub event: Event,
    /// How it was routed.
    pub routing: Routing,
}

fn default_workspace() -> String {
    crate::access::DEFAULT_WORKSPACE.to_owned()
}

/// The routing decision as recorded.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Routing {
    /// No route matched and no destination was named: accepted, recorded,
    /// delivered nowhere.
    pub unrouted: bool,
    /// The event named its destinations itself.
    pub explicit: bool,
    /// Names of the routes that matched, in order.
    pub matched: Vec<String>,
    /// One entry per destination.
    pub targets: Vec<Target>,
    /// Contacts' methods the routes reached but that received nothing
    /// (pending activation).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<Skipped>,
    /// Targets an alert quota held back (counted for the window's digest).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub suppressed: Vec<Suppressed>,
}

/// A target an alert quota held back.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Suppressed {
    /// The destination it would have gone to.
    pub destination: String,
    /// The full quota's scope: `contact:NAME` or `route:NAME`.
    pub quota: String,
    /// When the window ends (RFC 3339); its digest is sent then.
    pub until: String,
}

/// A target left out, and why.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Skipped {
    /// The method's destination (`CONTACT@INDEX`).
    pub destination: String,
    /// The contact.
    pub contact: String,
    /// Why.
    pub reason: String,
}

/// One destination chosen, and how its message was rendered.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Target {
    /// The destination.
    pub destination: String,
    /// The route that chose it (none when named by the event).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// The template used (a configured name or `builtin.*`).
    pub template: String,
    /// The locale rendered.
    pub locale: String,
}

/// A stored body that does not decode.
#[derive(Debug, thiserror::Error)]
#[error("the stored event cannot be read: {0}")]
pub struct StoredError(#[from] serde_json::Error);

impl StoredEvent {
    /// The stored bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Plain data structs serialize to JSON without failing.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads stored bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, StoredError> {
        Ok(serde_json::from_slice(bytes)?)
    }
}
