//! The variables a template sees for one event.

use std::collections::BTreeMap;

use jiff::tz::TimeZone;
use minijinja::Value;
use minijinja::value::{Serde, ValueKind};
use serde_json::{Map, Value as Json};

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
fn first_of<'a>(data: &'a Map<String, Json>, paths: &[&str]) -> Option<&'a Json> {
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

/// Every variable of `event`, with times in `zone`, as template values.
///
/// The event is converted to template values once (`event`); `data` and
/// its top-level fields are shared from that conversion, not copied: this
/// runs for every destination of every accepted event.
pub(crate) fn variables(event: &Event, zone: &TimeZone) -> BTreeMap<String, Value> {
    let event_value = Value::from(Serde(event));
    let data_value = event_value.get_attr("data").unwrap_or_default();
    let mut vars = BTreeMap::new();
    for key in event.data.keys() {
        if !RESERVED.contains(&key.as_str()) {
            vars.insert(key.clone(), data_value.get_attr(key).unwrap_or_default());
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
    vars.insert("timestamp".into(), Value::from(format!("{date} {time}")));
    vars.insert("date".into(), Value::from(date));
    vars.insert("time".into(), Value::from(time));

    let mut put = |name: &str, value: Option<Value>| {
        if let Some(value) = value {
            vars.insert(name.to_owned(), value);
        }
    };
    let json = |v: &Json| Value::from(Serde(v));
    let string = |s: &Option<String>| s.clone().map(Value::from);
    let task_string = data
        .get("task")
        .filter(|t| t.is_string() || t.is_number())
        .map(json);
    put(
        "taskname",
        first_of(data, &["taskname", "task_name", "task.name"])
            .map(json)
            .or(task_string)
            .or_else(|| string(&event.subject)),
    );
    put("owner", first_of(data, &["owner", "task.owner"]).map(json));
    let resource_string = data
        .get("resource")
        .filter(|r| r.is_string() || r.is_number())
        .map(json);
    put(
        "resourceid",
        first_of(data, &["resourceid", "resource_id", "resource.id"])
            .map(json)
            .or(resource_string),
    );
    put(
        "tasktype",
        first_of(data, &["tasktype", "task_type", "task.type"]).map(json),
    );
    put(
        "message",
        data.get("message")
            .map(json)
            .or_else(|| string(&event.message)),
    );
    put(
        "status",
        Some(
            data.get("status")
                .map(json)
                .unwrap_or_else(|| Value::from(derived_status(&event.event_type, event.severity))),
        ),
    );
    put("title", string(&event.title));
    put("subject", string(&event.subject));
    put("type", Some(Value::from(event.event_type.as_str())));
    put("source", Some(Value::from(event.source.as_str())));
    put("severity", Some(Value::from(event.severity.as_str())));
    put("data", Some(data_value));
    put("labels", event_value.get_attr("labels").ok());
    put("event", Some(event_value));
    put(EVENT_TIME, Some(Value::from(event.time.to_string())));
    vars
}

/// The value at a dotted path (`a.b`, `rows.0`) of the variables, if any.
pub(crate) fn lookup(vars: &BTreeMap<String, Value>, steps: &[&str]) -> Option<Value> {
    let (first, rest) = steps.split_first()?;
    let mut at = vars.get(*first)?.clone();
    for step in rest {
        let next = match at.kind() {
            ValueKind::Map => at.get_attr(step).ok(),
            // Only plain decimal indexes, as routes read them.
            ValueKind::Seq if !step.is_empty() && step.bytes().all(|b| b.is_ascii_digit()) => step
                .parse::<usize>()
                .ok()
                .and_then(|i| at.get_item_by_index(i).ok()),
            _ => None,
        };
        at = next.filter(|v| !v.is_undefined())?;
    }
    Some(at)
}
