//! The variables a template sees for one event.

use jiff::tz::TimeZone;
use serde_json::{Map, Value};

use crate::event::Event;
use crate::message::Severity;

/// The hidden variable holding the event time for `timefmt`.
pub(crate) const EVENT_TIME: &str = "__carillon_event_time";

/// The variables Carillon defines; a data field of the same name does not
/// replace them (it stays reachable as `data.NAME`).
pub(crate) const RESERVED: &[&str] = &[
    "date",
    "time",
    "timestamp",
    "taskname",
    "owner",
    "resourceid",
    "message",
    "status",
    "tasktype",
    "data",
    "labels",
    "event",
    "type",
    "source",
    "severity",
    "title",
    "subject",
    super::time::FUNCTION,
    EVENT_TIME,
];

/// The first of `paths` (dotted, below `data`) that the data has.
fn first_of<'a>(data: &'a Map<String, Value>, paths: &[&str]) -> Option<&'a Value> {
    paths.iter().find_map(|path| {
        let steps: Vec<String> = path.split('.').map(str::to_owned).collect();
        crate::route::lookup_data(data, &steps)
    })
}

/// The status an event's type (or, failing that, its severity) implies:
/// `succeeded`, `failed`, `timeout`, `firing`, `resolved`, or the
/// severity's name.
pub(crate) fn derived_status(event_type: &str, severity: Severity) -> &'static str {
    let lower = event_type.to_ascii_lowercase();
    let last = lower.rsplit('.').next().unwrap_or_default();
    match last {
        "succeeded" | "success" | "completed" => return "succeeded",
        "failed" | "failure" | "error" => return "failed",
        "timeout" | "timed_out" => return "timeout",
        "firing" => return "firing",
        "resolved" | "recovered" | "cleared" => return "resolved",
        _ => {}
    }
    if lower.starts_with("alert.") || lower.starts_with("resource.") {
        return "firing";
    }
    match severity {
        Severity::Success => "succeeded",
        Severity::Error | Severity::Critical => "failed",
        other => other.as_str(),
    }
}

/// Every variable of `event`, with times in `zone`.
pub(crate) fn variables(event: &Event, zone: &TimeZone) -> Map<String, Value> {
    let mut vars = Map::new();
    for (key, value) in &event.data {
        if !RESERVED.contains(&key.as_str()) {
            vars.insert(key.clone(), value.clone());
        }
    }
    let data = &event.data;
    let zoned = event.time.to_zoned(zone.clone());
    let date = format!(
        "{:04}-{:02}-{:02}",
        zoned.year(),
        zoned.month(),
        zoned.day()
    );
    let time = format!(
        "{:02}:{:02}:{:02}",
        zoned.hour(),
        zoned.minute(),
        zoned.second()
    );
    vars.insert("timestamp".into(), Value::String(format!("{date} {time}")));
    vars.insert("date".into(), Value::String(date));
    vars.insert("time".into(), Value::String(time));

    let mut put = |name: &str, value: Option<Value>| {
        if let Some(value) = value {
            vars.insert(name.to_owned(), value);
        }
    };
    let string = |s: &Option<String>| s.clone().map(Value::String);
    let task_string = data
        .get("task")
        .filter(|t| t.is_string() || t.is_number())
        .cloned();
    put(
        "taskname",
        first_of(data, &["taskname", "task_name", "task.name"])
            .cloned()
            .or(task_string)
            .or_else(|| string(&event.subject)),
    );
    put("owner", first_of(data, &["owner", "task.owner"]).cloned());
    let resource_string = data
        .get("resource")
        .filter(|r| r.is_string() || r.is_number())
        .cloned();
    put(
        "resourceid",
        first_of(data, &["resourceid", "resource_id", "resource.id"])
            .cloned()
            .or(resource_string),
    );
    put(
        "tasktype",
        first_of(data, &["tasktype", "task_type", "task.type"]).cloned(),
    );
    put(
        "message",
        data.get("message")
            .cloned()
            .or_else(|| string(&event.message)),
    );
    put(
        "status",
        Some(data.get("status").cloned().unwrap_or_else(|| {
            Value::String(derived_status(&event.event_type, event.severity).to_owned())
        })),
    );
    put("title", string(&event.title));
    put("subject", string(&event.subject));
    put("type", Some(Value::String(event.event_type.clone())));
    put("source", Some(Value::String(event.source.clone())));
    put(
        "severity",
        Some(Value::String(event.severity.as_str().to_owned())),
    );
    put("data", Some(Value::Object(data.clone())));
    put(
        "labels",
        Some(Value::Object(
            event
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect(),
        )),
    );
    put("event", serde_json::to_value(event).ok());
    put(EVENT_TIME, Some(Value::String(event.time.to_string())));
    vars
}
