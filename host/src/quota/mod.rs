//! Alert quotas: at most `max` alerts per `per` window to a contact, or
//! through a route. The excess is not sent but counted, by event type, and
//! one digest (`quota.digest`) at the window's end says how many were held
//! back and of which kinds.
//!
//! A window opens at the first alert that counts and lasts `per` (a fixed
//! window, so the digest has one time to be sent at). The counts live in
//! memory ([`Quotas`]); what makes the digest durable is a timer: every
//! event that suppresses something re-arms its scope's digest timer, with
//! the window's counts so far as payload, in the same outbox write as the
//! event (see `api::ingest`). So a digest is sent even when the gateway
//! restarts in the window, with every suppression it acknowledged; a
//! restarted gateway reads the armed digest timers back and keeps those
//! windows full until they end. The count of alerts *sent* in a window is
//! not stored: a restart in a window that had not yet suppressed anything
//! opens a new one.

mod digest;
mod window;

pub use self::digest::{DIGEST, Pending, SOURCE, Scope, digest_event, timer_for};
pub use self::window::{Claim, Quotas, Take, Window};

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// `quota = { max = 20, per = "1h" }` as written, on a contact or a route.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawQuota {
    /// Alerts sent per window at most.
    pub max: i64,
    /// The window: a duration such as `"1h"` or `"30m"`.
    pub per: String,
}

/// A quota, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Alerts sent per window at most (at least 1).
    pub max: u32,
    /// The window.
    pub per: Duration,
}

impl Serialize for Quota {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(2))?;
        map.serialize_entry("max", &self.max)?;
        map.serialize_entry("per_secs", &self.per.as_secs())?;
        map.end()
    }
}

/// The most a quota may allow per window: beyond it a quota protects
/// nobody's phone.
pub const MAX_PER_WINDOW: i64 = 100_000;

/// The shortest and longest windows.
pub const MIN_WINDOW: Duration = Duration::from_secs(60);
/// See [`MIN_WINDOW`].
pub const MAX_WINDOW: Duration = Duration::from_secs(7 * 24 * 3600);
