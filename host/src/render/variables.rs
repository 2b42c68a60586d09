//! The template variables, discoverable: each named variable with what it
//! means and an example (`GET /v1/variables`), and the values every
//! variable takes for one event (the same request with an event, and the
//! test push of an event). The list is the one `context::variables` fills;
//! a test keeps the two, and docs/configuration.md's table, in step.

use std::collections::BTreeMap;

use jiff::tz::TimeZone;

use super::context;
use crate::event::Event;

/// One named variable.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Variable {
    /// Its name, as `${name}` uses it.
    pub name: &'static str,
    /// Where its value comes from.
    pub meaning: &'static str,
    /// How a template uses it.
    pub example: &'static str,
}

/// Every named variable, in the order the docs list them. Besides these,
/// each top-level field of the event's `data` is a variable of its own.
pub const VARIABLES: &[Variable] = &[
    Variable {
        name: "date",
        meaning: "the event's time as YYYY-MM-DD, in render.time_zone",
        example: "${date}",
    },
    Variable {
        name: "time",
        meaning: "the event's time as HH:MM:SS (24-hour), in render.time_zone",
        example: "${time}",
    },
    Variable {
        name: "timestamp",
        meaning: "the event's time as YYYY-MM-DD HH:MM:SS, in render.time_zone",
        example: "${timestamp}",
    },
    Variable {
        name: "taskname",
        meaning: "data.taskname, else data.task_name, data.task.name, data.task (a string), the event's subject",
        example: "任务 ${taskname} 失败",
    },
    Variable {
        name: "owner",
        meaning: "data.owner, else data.task.owner",
        example: "${owner}",
    },
    Variable {
        name: "resourceid",
        meaning: "data.resourceid, else data.resource_id, data.resource.id, data.resource (a string)",
        example: "${resourceid}",
    },
    Variable {
        name: "tasktype",
        meaning: "data.tasktype, else data.task_type, data.task.type",
        example: "${tasktype}",
    },
    Variable {
        name: "message",
        meaning: "data.message, else the event's message",
        example: "${message}",
    },
    Variable {
        name: "status",
        meaning: "data.status, else derived from the type's last segment (succeeded, failed, timeout, firing, resolved) or the severity",
        example: "{% if status == \"failed\" %}…{% endif %}",
    },
    Variable {
        name: "type",
        meaning: "the event's type",
        example: "${type}",
    },
    Variable {
        name: "source",
        meaning: "the event's source",
        example: "${source}",
    },
    Variable {
        name: "severity",
        meaning: "the event's severity: success, info, warning, error or critical",
        example: "${severity}",
    },
    Variable {
        name: "title",
        meaning: "the event's title (undefined when absent)",
        example: "${title}",
    },
    Variable {
        name: "subject",
        meaning: "the event's subject (undefined when absent)",
        example: "${subject}",
    },
    Variable {
        name: "data",
        meaning: "the event's data",
        example: "${ data.task.owner }",
    },
    Variable {
        name: "labels",
        meaning: "the event's labels",
        example: "${ labels.alertname }",
    },
    Variable {
        name: "event",
        meaning: "the whole event as stored",
        example: "${ event.link.url }",
    },
];

/// Every variable's value for `event` (times in `zone`), as JSON: the
/// named ones that are defined for it, then its data fields. A variable
/// missing here is undefined for this event.
pub fn values(event: &Event, zone: &TimeZone) -> BTreeMap<String, serde_json::Value> {
    context::variables(event, zone)
        .into_iter()
        .filter(|(name, _)| !name.starts_with("__"))
        .filter_map(|(name, value)| serde_json::to_value(&value).ok().map(|v| (name, v)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> Event {
        let body = serde_json::json!({
            "type": "task.failed", "source": "etl", "title": "orders_daily failed",
            "subject": "orders_daily", "message": "exit code 1", "severity": "error",
            "time": "2026-12-07T08:00:00Z",
            "data": { "taskname": "orders_daily", "owner": "li.wei", "tasktype": "ETL",
                      "resourceid": "db-1", "rows": 42 },
            "labels": { "team": "data" }
        });
        let bytes = serde_json::to_vec(&body).expect("json");
        let mut parsed =
            crate::event::parse_native(&bytes, jiff::Timestamp::UNIX_EPOCH).expect("valid");
        parsed.items.remove(0).expect("valid")
    }

    #[test]
    fn every_named_variable_is_listed_and_every_listed_one_is_filled() {
        let values = values(&event(), &TimeZone::UTC);
        for v in VARIABLES {
            assert!(values.contains_key(v.name), "{} has no value", v.name);
        }
        let named: Vec<&str> = VARIABLES.iter().map(|v| v.name).collect();
        for name in values.keys() {
            assert!(
                named.contains(&name.as_str()) || name == "rows",
                "{name} is filled but not listed in VARIABLES"
            );
        }
        assert_eq!(values["taskname"], "orders_daily");
        assert_eq!(values["status"], "failed");
        assert_eq!(values["timestamp"], "2026-12-07 08:00:00");
        assert_eq!(values["rows"], 42);
    }

    #[test]
    fn the_configuration_doc_lists_every_named_variable() {
        let doc = include_str!("../../../docs/configuration.md");
        for v in VARIABLES {
            assert!(
                doc.contains(&format!("`{}`", v.name)),
                "docs/configuration.md does not mention `{}`",
                v.name
            );
        }
    }
}
