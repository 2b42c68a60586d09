//! The events the task timers raise: `task.timeout` from what
//! `task.started` said, and `task.finished-late` from a late completion.
//! Both keep the task's data (so `taskname`, `owner`, `tasktype` and the
//! rest reach templates as they would for the task's own events) and add
//! the times.

use carillon_outbox::{Timer, Timestamp};
use serde_json::{Value, json};

use super::{FINISHED_LATE, Started, TIMEOUT};
use crate::event::Event;
use crate::message::Severity;

/// A timer firing this long after its deadline (the gateway was down or
/// behind) is marked late.
pub const LATE_AFTER: std::time::Duration = std::time::Duration::from_secs(2);

fn to_jiff(t: Timestamp) -> jiff::Timestamp {
    crate::timestamp::to_jiff(t)
}

/// `1h 2m 3s`.
fn human(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m {s}s"),
        _ => format!("{h}h {m}m {s}s"),
    }
}

/// `task.timeout` for `timer`, firing at `now`, and the token and
/// workspace it is recorded under. `Err` when the payload does not decode
/// (a timer this release did not arm).
pub fn timeout_event(timer: &Timer, now: Timestamp) -> Result<(String, String, Event), String> {
    let started: Started = serde_json::from_slice(&timer.payload)
        .map_err(|e| format!("the timer's payload cannot be read: {e}"))?;
    let s = started.event;
    let mut event = Event::new(TIMEOUT, s.source.clone(), to_jiff(now));
    event.severity = Severity::Error;
    event.subject = s.subject;
    event.labels = s.labels;
    event.mentions = s.mentions;
    event.link = s.link;
    event.locale = s.locale;
    event.destinations = s.destinations;
    let mut data = s.data;
    let elapsed = now.as_millis().saturating_sub(timer.armed_at.as_millis()) / 1000;
    let late_ms = now.as_millis().saturating_sub(timer.deadline.as_millis());
    let late = late_ms >= u64::try_from(LATE_AFTER.as_millis()).unwrap_or(u64::MAX);
    for (k, v) in [
        ("run_id", json!(started.run_id)),
        ("started_at", json!(s.time.to_string())),
        ("deadline", json!(to_jiff(timer.deadline).to_string())),
        ("timeout_secs", json!(started.timeout_secs)),
        ("elapsed", json!(human(elapsed))),
        ("elapsed_secs", json!(elapsed)),
        ("late", json!(late)),
        ("late_secs", json!(late_ms / 1000)),
        ("timer_id", json!(timer.id.as_str())),
    ] {
        data.insert(k.to_owned(), v);
    }
    event.data = data;
    Ok((started.token, started.workspace, event))
}

/// `task.finished-late` for `completion`, whose timer fired at `fired_at`,
/// noticed at `now`.
pub fn finished_late_event(completion: &Event, fired_at: Timestamp, now: Timestamp) -> Event {
    let mut event = Event::new(FINISHED_LATE, completion.source.clone(), to_jiff(now));
    event.severity = Severity::Warning;
    event.subject = completion.subject.clone();
    event.labels = completion.labels.clone();
    event.locale = completion.locale.clone();
    event.destinations = completion.destinations.clone();
    event.link = completion.link.clone();
    event.message = completion.message.clone();
    let mut data = completion.data.clone();
    let outcome = completion
        .event_type
        .rsplit('.')
        .next()
        .unwrap_or_default()
        .to_owned();
    let over = now.as_millis().saturating_sub(fired_at.as_millis()) / 1000;
    for (k, v) in [
        ("outcome", Value::from(outcome)),
        ("completed_at", json!(completion.time.to_string())),
        ("timed_out_at", json!(to_jiff(fired_at).to_string())),
        ("late_by", json!(human(over))),
    ] {
        data.insert(k.to_owned(), v);
    }
    event.data = data;
    event
}
