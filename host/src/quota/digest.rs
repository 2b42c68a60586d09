//! The digest of a window that held alerts back: the timer that sends it
//! (its payload, [`Pending`]) and the `quota.digest` event it raises.

use carillon_outbox::{NewTimer, Timer, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::Window;
use crate::event::Event;
use crate::message::Severity;

/// The digest's event type, and its timers' kind.
pub const DIGEST: &str = "quota.digest";

/// The digest's event source, and its timers' source.
pub const SOURCE: &str = "carillon/quota";

/// What a quota is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scope {
    /// A contact: every alert to any of its methods counts.
    Contact,
    /// A route: every event it matches counts.
    Route,
}

impl Scope {
    /// `contact` or `route`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Contact => "contact",
            Scope::Route => "route",
        }
    }

    /// The key of `name`'s windows (`contact:li-wei`).
    pub fn key(self, name: &str) -> String {
        format!("{}:{name}", self.as_str())
    }
}

/// A digest timer's payload: the window so far, and whose it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    /// The payload's version.
    pub v: u32,
    /// The workspace of the contact or route.
    pub workspace: String,
    /// What the quota is on.
    pub scope: Scope,
    /// The contact's or route's name.
    pub name: String,
    /// The quota's `max`.
    pub max: u32,
    /// The quota's window, in seconds.
    pub per_secs: u64,
    /// The window's counts.
    pub window: Window,
}

impl Pending {
    /// The key of its windows (`contact:li-wei`).
    pub fn key(&self) -> String {
        self.scope.key(&self.name)
    }

    /// Reads a digest timer's payload.
    pub fn from_timer(timer: &Timer) -> Result<Pending, String> {
        Self::from_payload(&timer.payload)
    }

    /// Reads a digest timer's payload bytes.
    pub fn from_payload(payload: &[u8]) -> Result<Pending, String> {
        serde_json::from_slice(payload)
            .map_err(|e| format!("the digest timer's payload cannot be read: {e}"))
    }
}

/// The timer that sends `pending`'s digest at its window's end. Each
/// window has its own key, so a window that opens before the last one's
/// digest went out does not replace it.
pub fn timer_for(pending: &Pending) -> NewTimer {
    NewTimer {
        key: format!("quota:{}:{}", pending.key(), pending.window.start_ms),
        kind: DIGEST.to_owned(),
        source: SOURCE.to_owned(),
        deadline: Timestamp::from_millis(pending.window.end_ms),
        payload: serde_json::to_vec(pending).unwrap_or_default(),
    }
}

/// `1h`, `90m`, `45s` for a window.
fn human(secs: u64) -> String {
    match secs {
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// The `quota.digest` event for `pending`'s window as finally counted,
/// raised at `now`. Its data, for templates: `quota_scope`, `quota_name`,
/// `display_name` (the contact's, when given), `suppressed`, `max`,
/// `window` (`1h`), `window_start`, `window_end`, and `kinds` (a list of
/// `{type, count}`, most frequent first).
pub fn digest_event(
    pending: &Pending,
    window: &Window,
    display_name: Option<&str>,
    now: Timestamp,
) -> Event {
    let to_jiff = crate::timestamp::to_jiff;
    let mut event = Event::new(DIGEST, SOURCE.to_owned(), to_jiff(now));
    event.severity = Severity::Info;
    let mut kinds: Vec<(&String, &u64)> = window.kinds.iter().collect();
    kinds.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let kinds: Vec<serde_json::Value> = kinds
        .into_iter()
        .map(|(t, n)| json!({ "type": t, "count": n }))
        .collect();
    for (k, v) in [
        ("quota_scope", json!(pending.scope.as_str())),
        ("quota_name", json!(pending.name)),
        ("display_name", json!(display_name.unwrap_or(&pending.name))),
        ("suppressed", json!(window.suppressed)),
        ("max", json!(pending.max)),
        ("window", json!(human(pending.per_secs))),
        (
            "window_start",
            json!(to_jiff(Timestamp::from_millis(window.start_ms)).to_string()),
        ),
        (
            "window_end",
            json!(to_jiff(Timestamp::from_millis(window.end_ms)).to_string()),
        ),
        ("kinds", json!(kinds)),
    ] {
        event.data.insert(k.to_owned(), v);
    }
    event
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_digest_timer_carries_its_window_and_reads_back() {
        let pending = Pending {
            v: 1,
            workspace: "default".into(),
            scope: Scope::Contact,
            name: "li-wei".into(),
            max: 20,
            per_secs: 3600,
            window: Window {
                start_ms: 1_000,
                end_ms: 3_601_000,
                sent: 20,
                suppressed: 3,
                kinds: [
                    ("alert.firing".to_owned(), 2),
                    ("task.failed".to_owned(), 1),
                ]
                .into(),
            },
        };
        let t = timer_for(&pending);
        assert_eq!(t.key, "quota:contact:li-wei:1000");
        assert_eq!(t.deadline, Timestamp::from_millis(3_601_000));
        assert_eq!(t.kind, DIGEST);
        assert_eq!(Pending::from_payload(&t.payload).unwrap(), pending);
        let e = digest_event(&pending, &pending.window, Some("Li Wei"), t.deadline);
        assert_eq!(e.event_type, DIGEST);
        assert_eq!(e.data["suppressed"], 3);
        assert_eq!(e.data["window"], "1h");
        assert_eq!(e.data["display_name"], "Li Wei");
        assert_eq!(e.data["kinds"][0]["type"], "alert.firing");
        assert_eq!(e.data["kinds"][0]["count"], 2);
    }
}
