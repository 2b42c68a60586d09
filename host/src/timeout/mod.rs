//! Task timeouts: Carillon raises `task.timeout` by itself when a task
//! announced as started does not report its end in time.
//!
//! - `task.started` with a run id (`data.run_id`) arms a durable timer
//!   (the outbox's timer engine) keyed by token, source and run id, in the
//!   same atomic write as the event, so it is armed exactly when the 202
//!   is sent. Its deadline is `data.deadline` (RFC 3339), or
//!   `data.timeout_secs` from when the event was received, or the
//!   `[timeouts]` entry of its task type (`data.tasktype`), or
//!   `[timeouts] default`; with none of these nothing is armed.
//! - `task.succeeded`, `task.failed` or `task.cancelled` with the same
//!   run id and source disarms it in the same way. One that arrives after
//!   the timeout fired is late: with `[timeouts] notify_late` it also
//!   sends `task.finished-late` (`after_completion`).
//! - At the deadline the task in `fire` builds `task.timeout` from what
//!   `task.started` said, routes and renders it like a posted event, and
//!   fires the timer with it: one atomic write, so the notice is sent
//!   exactly once, also across crashes. A timer due while the gateway was
//!   down fires right after it starts, marked late (`data.late`).
//!
//! Bad input (`plan`): a `task.started` without a run id, a timeout that
//! is not a positive number of seconds up to 30 days, a deadline that is
//! not RFC 3339, in the past or beyond 30 days: a 422 naming the field,
//! nothing stored, nothing armed.

pub(crate) mod events;
pub mod metrics;

use std::time::Duration;

use carillon_outbox::{NewTimer, TimerOp, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::TimeoutSettings;
use crate::config::timeouts::{MAX_TIMEOUT, check_bounds};
use crate::event::{Event, FieldError};

pub use events::{finished_late_event, timeout_event};

/// The type that arms a timer.
pub const STARTED: &str = "task.started";
/// The types that disarm it.
pub const COMPLETIONS: &[&str] = &["task.succeeded", "task.failed", "task.cancelled"];
/// The event raised at the deadline.
pub const TIMEOUT: &str = "task.timeout";
/// The event raised for a completion after its timeout.
pub const FINISHED_LATE: &str = "task.finished-late";
/// The `kind` of task timers in the outbox (and in `GET /v1/timers`).
pub const KIND: &str = "task.timeout";

/// What an event asks of its task's timer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskTimer {
    /// Nothing.
    None,
    /// Arm this timer.
    Arm(NewTimer),
    /// Disarm the timer under this key.
    Disarm(String),
}

impl TaskTimer {
    /// Is this a completion's disarm?
    pub fn is_disarm(&self) -> bool {
        matches!(self, TaskTimer::Disarm(_))
    }

    /// The outbox's operation.
    pub fn into_op(self) -> TimerOp {
        match self {
            TaskTimer::None => TimerOp::None,
            TaskTimer::Arm(t) => TimerOp::Arm(t),
            TaskTimer::Disarm(key) => TimerOp::Disarm { key },
        }
    }
}

/// What a task timer keeps to build its `task.timeout`: the started event
/// as accepted and who posted it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Started {
    /// Format version (1).
    pub v: u32,
    /// The ingest token that posted `task.started`.
    pub token: String,
    /// The workspace it was posted into (its `task.timeout` is routed
    /// there); timers armed before workspaces existed read as `default`.
    #[serde(default = "default_workspace")]
    pub workspace: String,
    /// The run id.
    pub run_id: String,
    /// The timeout the deadline came from, in seconds (from `deadline`:
    /// the time from receipt to it).
    pub timeout_secs: u64,
    /// The started event.
    pub event: Event,
}

/// The timer key of one run: token, source and run id, unambiguous
/// whatever characters they hold.
pub fn key(token: &str, source: &str, run_id: &str) -> String {
    let parts = serde_json::json!([token, source, run_id]);
    format!("task:{parts}")
}

fn field(path: &str, message: impl Into<String>) -> FieldError {
    FieldError {
        path: path.to_owned(),
        message: message.into(),
    }
}

/// The run id: `data.run_id`, text or an integer.
fn run_id(event: &Event) -> Result<Option<String>, FieldError> {
    match event.data.get("run_id") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Err(field("/data/run_id", "must not be empty")),
        Some(Value::String(s)) if s.len() > crate::event::MAX_NAME_LEN || s.contains('\0') => {
            Err(field(
                "/data/run_id",
                format!(
                    "must be at most {} bytes, without NUL",
                    crate::event::MAX_NAME_LEN
                ),
            ))
        }
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Ok(Some(n.to_string())),
        Some(_) => Err(field("/data/run_id", "must be a string or an integer")),
    }
}

/// The task type, where templates find it too (also what `GET /v1/timers`
/// shows and filters by).
pub(crate) fn task_type(event: &Event) -> Option<&str> {
    let data = &event.data;
    data.get("tasktype")
        .or_else(|| data.get("task_type"))
        .or_else(|| data.get("task").and_then(|t| t.get("type")))
        .and_then(Value::as_str)
}

/// The deadline `task.started` asks for, received at `now`.
fn deadline(
    settings: &TimeoutSettings,
    event: &Event,
    now: jiff::Timestamp,
) -> Result<Option<jiff::Timestamp>, FieldError> {
    let data = &event.data;
    let given_deadline = data.get("deadline").filter(|v| !v.is_null());
    let given_secs = data.get("timeout_secs").filter(|v| !v.is_null());
    let limit = jiff::SignedDuration::try_from(MAX_TIMEOUT).unwrap_or(jiff::SignedDuration::MAX);
    match (given_deadline, given_secs) {
        (Some(_), Some(_)) => Err(field(
            "/data/timeout_secs",
            "give either deadline or timeout_secs, not both",
        )),
        (Some(d), None) => {
            let text = d.as_str().ok_or_else(|| {
                field(
                    "/data/deadline",
                    "must be an RFC 3339 time such as \"2026-01-02T03:04:05Z\"",
                )
            })?;
            let at: jiff::Timestamp = text.parse().map_err(|_| {
                field(
                    "/data/deadline",
                    format!("{text:?} is not an RFC 3339 time such as \"2026-01-02T03:04:05Z\""),
                )
            })?;
            if at <= now {
                return Err(field(
                    "/data/deadline",
                    format!("{text} is not in the future (now is {now})"),
                ));
            }
            if at.duration_since(now) > limit {
                return Err(field(
                    "/data/deadline",
                    format!("{text} is more than 30 days away"),
                ));
            }
            Ok(Some(at))
        }
        (None, Some(secs)) => {
            let n = secs
                .as_f64()
                .ok_or_else(|| field("/data/timeout_secs", "must be a number of seconds"))?;
            if n <= 0.0 {
                return Err(field("/data/timeout_secs", "must be greater than 0"));
            }
            let d = Duration::try_from_secs_f64(n)
                .ok()
                .filter(|d| *d <= MAX_TIMEOUT)
                .ok_or_else(|| {
                    field(
                        "/data/timeout_secs",
                        format!("must be at most {} (30 days)", MAX_TIMEOUT.as_secs()),
                    )
                })?;
            Ok(Some(after(now, d)))
        }
        (None, None) => Ok(settings
            .for_type(task_type(event))
            .and_then(|d| check_bounds(d).ok())
            .map(|d| after(now, d))),
    }
}

fn after(now: jiff::Timestamp, d: Duration) -> jiff::Timestamp {
    jiff::SignedDuration::try_from(d)
        .ok()
        .and_then(|d| now.checked_add(d).ok())
        .unwrap_or(jiff::Timestamp::MAX)
}

fn to_outbox(t: jiff::Timestamp) -> Timestamp {
    Timestamp::from_millis(u64::try_from(t.as_millisecond()).unwrap_or(0))
}

fn default_workspace() -> String {
    crate::access::DEFAULT_WORKSPACE.to_owned()
}

/// What `event`, posted with the ingest token `token` into `workspace`, and received at
/// `now`, asks of its task's timer. Every problem names its field; an
/// error means the event is refused as a whole (nothing stored or armed).
pub fn plan(
    settings: &TimeoutSettings,
    event: &Event,
    token: &str,
    workspace: &str,
    now: jiff::Timestamp,
) -> Result<TaskTimer, Vec<FieldError>> {
    let ty = event.event_type.as_str();
    if ty == STARTED {
        let run = run_id(event).map_err(|e| vec![e])?.ok_or_else(|| {
            vec![field(
                "/data/run_id",
                "task.started needs a run id: the id its completion repeats",
            )]
        })?;
        let Some(at) = deadline(settings, event, now).map_err(|e| vec![e])? else {
            return Ok(TaskTimer::None);
        };
        let started = Started {
            v: 1,
            token: token.to_owned(),
            workspace: workspace.to_owned(),
            run_id: run.clone(),
            timeout_secs: u64::try_from(at.duration_since(now).as_secs()).unwrap_or(0),
            event: event.clone(),
        };
        return Ok(TaskTimer::Arm(NewTimer {
            key: key(token, &event.source, &run),
            kind: KIND.to_owned(),
            source: event.source.clone(),
            deadline: to_outbox(at),
            payload: serde_json::to_vec(&started).unwrap_or_default(),
        }));
    }
    if COMPLETIONS.contains(&ty) {
        return Ok(match run_id(event).map_err(|e| vec![e])? {
            Some(run) => TaskTimer::Disarm(key(token, &event.source, &run)),
            None => TaskTimer::None,
        });
    }
    Ok(TaskTimer::None)
}

#[cfg(test)]
mod tests;
