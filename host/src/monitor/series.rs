//! A reading of one series (a metric and its labels), and the reading a
//! `metric.gauge` event reports, checked field by field.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value;

use crate::config::monitors::{
    MAX_LABEL_VALUE, MAX_LABELS, RESERVED_PREFIXES, check_label_name, check_metric_name,
};
use crate::event::{Event, FieldError};

/// The longest unit.
pub const MAX_UNIT: usize = 32;

/// One value of one series.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    /// The metric's name.
    pub metric: String,
    /// The series' labels.
    pub labels: BTreeMap<String, String>,
    /// The value (finite).
    pub value: f64,
    /// Its unit as templates print it after the value (`%`, `GiB`), or
    /// empty.
    pub unit: String,
}

impl Reading {
    /// A reading without labels.
    pub fn new(metric: &str, value: f64, unit: &str) -> Reading {
        Reading {
            metric: metric.to_owned(),
            labels: BTreeMap::new(),
            value,
            unit: unit.to_owned(),
        }
    }

    /// This reading with one more label.
    #[must_use]
    pub fn label(mut self, name: &str, value: &str) -> Reading {
        self.labels.insert(name.to_owned(), value.to_owned());
        self
    }

    /// The series' id: `name{a="x",b="y"}` (labels sorted, quotes and
    /// backslashes escaped), or the bare name without labels.
    pub fn series_id(&self) -> String {
        series_id(&self.metric, &self.labels)
    }
}

/// See [`Reading::series_id`].
pub fn series_id(metric: &str, labels: &BTreeMap<String, String>) -> String {
    let mut s = metric.to_owned();
    if labels.is_empty() {
        return s;
    }
    s.push('{');
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let escaped = v.replace('\\', "\\\\").replace('"', "\\\"");
        let _ = write!(s, "{k}=\"{escaped}\"");
    }
    s.push('}');
    s
}

/// The reading a `metric.gauge` event reports (`data.name`, `data.value`,
/// optional `data.unit` and `data.labels`), or every problem with its
/// JSON pointer. `Ok(None)` for any other event type.
pub fn gauge_reading(event: &Event) -> Result<Option<Reading>, Vec<FieldError>> {
    if event.event_type != super::GAUGE {
        return Ok(None);
    }
    let data = &event.data;
    let mut errors = Vec::new();
    let mut bad = |path: &str, message: String| {
        errors.push(FieldError {
            path: path.to_owned(),
            message,
        });
    };
    let metric = match data.get("name") {
        Some(Value::String(name)) => match check_metric_name(name) {
            Err(e) => {
                bad("/data/name", e);
                None
            }
            Ok(()) if RESERVED_PREFIXES.iter().any(|p| name.starts_with(p)) => {
                bad(
                    "/data/name",
                    format!("names under {RESERVED_PREFIXES:?} are Carillon's own metrics"),
                );
                None
            }
            Ok(()) => Some(name.clone()),
        },
        Some(_) => {
            bad("/data/name", "must be a string".into());
            None
        }
        None => {
            bad("/data/name", "is required for metric.gauge".into());
            None
        }
    };
    let value = match data.get("value").and_then(Value::as_f64) {
        Some(v) if v.is_finite() => Some(v),
        _ => {
            bad("/data/value", "must be a finite number".into());
            None
        }
    };
    let unit = match data.get("unit") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(u)) if u.len() <= MAX_UNIT => u.clone(),
        Some(_) => {
            bad(
                "/data/unit",
                format!("must be a string of at most {MAX_UNIT} bytes"),
            );
            String::new()
        }
    };
    let mut labels = BTreeMap::new();
    match data.get("labels") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) if map.len() <= MAX_LABELS => {
            for (k, v) in map {
                let at = format!("/data/labels/{}", k.replace('~', "~0").replace('/', "~1"));
                if let Err(e) = check_label_name(k) {
                    bad(&at, e);
                    continue;
                }
                match v.as_str() {
                    Some(s) if s.len() <= MAX_LABEL_VALUE => {
                        labels.insert(k.clone(), s.to_owned());
                    }
                    _ => bad(
                        &at,
                        format!("must be a string of at most {MAX_LABEL_VALUE} bytes"),
                    ),
                }
            }
        }
        Some(_) => bad(
            "/data/labels",
            format!("must be an object of at most {MAX_LABELS} string labels"),
        ),
    }
    match (metric, value) {
        (Some(metric), Some(value)) if errors.is_empty() => Ok(Some(Reading {
            metric,
            labels,
            value,
            unit,
        })),
        _ => Err(errors),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn gauge(data: Value) -> Event {
        let mut e = Event::new(super::super::GAUGE, "app", jiff::Timestamp::UNIX_EPOCH);
        e.data = data.as_object().cloned().unwrap_or_default();
        e
    }

    #[test]
    fn a_gauge_event_is_read_and_bad_fields_are_named() {
        let r = gauge_reading(&gauge(json!({
            "name": "dataset.bytes", "value": 12.5, "unit": "GiB",
            "labels": { "dataset": "orders" }
        })))
        .unwrap()
        .unwrap();
        assert_eq!(r.series_id(), "dataset.bytes{dataset=\"orders\"}");
        assert_eq!(r.unit, "GiB");
        let errors = gauge_reading(&gauge(json!({
            "name": "host.cpu_percent", "value": "high", "labels": { "9x": "a", "ok": 3 }
        })))
        .unwrap_err();
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/data/name",
                "/data/value",
                "/data/labels/9x",
                "/data/labels/ok"
            ]
        );
        assert!(gauge_reading(&gauge(json!({ "value": 1 }))).is_err());
        let mut other = gauge(json!({}));
        other.event_type = "task.failed".into();
        assert_eq!(gauge_reading(&other).unwrap(), None);
    }
}
