//! The events a rule raises: `resource.alert` (firing, and each repeat)
//! and `resource.resolved` (with `stale` when the series stopped
//! reporting while firing). Their data is what the built-in `resource`
//! template shows (`metric`, `value`, `unit`, `threshold`, `resourceid`)
//! and what routes may match on (`rule`, `labels`), with the times.

use carillon_outbox::Timestamp;
use serde_json::{Value, json};

use super::state::{Change, Due, Phase, Track};
use super::{ALERT, RESOLVED};
use crate::config::MonitorRule;
use crate::event::Event;
use crate::message::Severity;

/// The source of the events monitors raise.
pub const SOURCE: &str = "carillon.monitor";

/// `1h 2m 3s`.
fn human(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m {s}s"),
        _ => format!("{h}h {m}m {s}s"),
    }
}

/// A value as JSON: an integer when it is one (templates print `90`,
/// not `90.0`).
pub fn number(x: f64) -> Value {
    if x.fract() == 0.0 && x.abs() < 9.0e15 {
        // Whole and well within i64: the cast is exact.
        json!(x as i64)
    } else {
        json!(x)
    }
}

/// The event `due` sends for `rule`'s pair `track`, at `now`.
pub fn event(rule: &MonitorRule, track: &Track, due: &Due, now: Timestamp) -> Event {
    let (kind, severity) = match due.change {
        Change::Alert { .. } => (ALERT, rule.severity),
        Change::Resolved | Change::Stale => (RESOLVED, Severity::Info),
    };
    let mut event = Event::new(kind, SOURCE, crate::timestamp::to_jiff(now));
    event.severity = severity;
    event.labels.clone_from(&track.labels);
    let since = match due.from {
        Phase::Firing { since, .. } | Phase::Pending { since } => since,
        Phase::Ok => now,
    };
    let firing_for = now.as_millis().saturating_sub(since.as_millis()) / 1000;
    let labels: serde_json::Map<String, Value> = track
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
        .collect();
    let mut data = serde_json::Map::new();
    for (k, v) in [
        ("rule", json!(rule.name)),
        ("metric", json!(rule.metric)),
        ("series", json!(due.series)),
        (
            "value",
            if due.value.is_finite() {
                number(due.value)
            } else {
                Value::Null
            },
        ),
        ("unit", json!(track.unit)),
        ("op", json!(rule.op.as_str())),
        ("threshold", number(rule.threshold)),
        ("recovery", number(rule.recovery)),
        ("labels", Value::Object(labels)),
        ("since", json!(crate::timestamp::to_jiff(since).to_string())),
    ] {
        data.insert(k.to_owned(), v);
    }
    if !track.labels.is_empty() {
        let id: Vec<String> = track
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        data.insert("resourceid".into(), json!(id.join(",")));
    }
    match due.change {
        Change::Alert { repeat } => {
            data.insert("status".into(), json!("firing"));
            data.insert("repeat".into(), json!(repeat));
            if repeat {
                data.insert("firing_for".into(), json!(human(firing_for)));
            }
        }
        Change::Resolved => {
            data.insert("status".into(), json!("resolved"));
            data.insert("firing_for".into(), json!(human(firing_for)));
        }
        Change::Stale => {
            data.insert("status".into(), json!("resolved"));
            data.insert("stale".into(), json!(true));
            data.insert("firing_for".into(), json!(human(firing_for)));
            if let Some(read) = track.read_at {
                data.insert(
                    "last_reading".into(),
                    json!(crate::timestamp::to_jiff(read).to_string()),
                );
            }
        }
    }
    event.data = data;
    event
}
