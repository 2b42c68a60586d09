//! Prometheus Alertmanager's webhook payload (version 4): one event per
//! alert, typed `alert.firing` or `alert.resolved` by the alert's own
//! status. There is no idempotency key: Alertmanager re-sends a group on
//! purpose after `repeat_interval`, and each re-send should notify.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use jsonschema::Validator;
use serde_json::{Map, Value};

use super::envelope::string_map;
use super::errors::{self, FieldError, ParseError};
use super::{Event, Format, Parsed, checks};
use crate::message::{Link, Severity};

/// The payload's shape, as this parser reads it (not published).
static SCHEMA: LazyLock<Value> = LazyLock::new(|| {
    serde_json::from_str(include_str!("alertmanager.schema.json")).unwrap_or(Value::Bool(false))
});

static VALIDATOR: LazyLock<Result<Validator, String>> =
    LazyLock::new(|| jsonschema::draft202012::new(&SCHEMA).map_err(|error| error.to_string()));

/// The JSON Schema of the payload (for tests and documentation).
#[cfg(test)]
pub(crate) fn schema() -> &'static Value {
    &SCHEMA
}

/// The event `source` of every alert.
pub const SOURCE: &str = "alertmanager";

/// What one notification may cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlertLimits {
    /// Most alerts in one notification.
    pub max_alerts: usize,
    /// Most bytes its events may take, estimated before they are built.
    pub max_stored_bytes: usize,
}

impl AlertLimits {
    /// No limits (tests, and callers that bound the input otherwise).
    pub const NONE: AlertLimits = AlertLimits {
        max_alerts: usize::MAX,
        max_stored_bytes: usize::MAX,
    };
}

/// The group-level fields copied into every alert's event.
const GROUP_FIELDS: [&str; 7] = [
    "receiver",
    "groupKey",
    "externalURL",
    "groupLabels",
    "commonLabels",
    "commonAnnotations",
    "truncatedAlerts",
];

/// Bytes an event takes besides its alert and group fields (type, source,
/// time, severity, keys).
const EVENT_OVERHEAD: usize = 256;

/// Parses a webhook payload: the payload as a whole must have the right
/// shape and fit `limits`; each alert then succeeds or fails on its own.
pub(crate) fn parse(
    body: &[u8],
    now: jiff::Timestamp,
    limits: AlertLimits,
) -> Result<Parsed, ParseError> {
    let value = errors::parse_json(body)?;
    check_limits(&value, limits)?;
    let Value::Object(payload) = &value else {
        return Err(ParseError::Invalid(vec![FieldError::new(
            "",
            format!(
                "expected an Alertmanager webhook payload (a JSON object), got {}",
                errors::value_type(&value)
            ),
        )]));
    };
    let found = match &*VALIDATOR {
        Ok(validator) => errors::validate(validator, &SCHEMA, &value, ""),
        Err(error) => vec![FieldError::new(
            "",
            format!("internal error: the Alertmanager schema does not compile: {error}"),
        )],
    };
    let mut whole = Vec::new();
    let mut per_alert: BTreeMap<usize, Vec<FieldError>> = BTreeMap::new();
    for error in found {
        match alert_index(&error.path) {
            Some(index) => per_alert.entry(index).or_default().push(error),
            None => whole.push(error),
        }
    }
    if !whole.is_empty() {
        whole.extend(per_alert.into_values().flatten());
        whole.sort_by(|a, b| a.path.cmp(&b.path));
        return Err(ParseError::Invalid(whole));
    }
    let alerts = payload
        .get("alerts")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let items = alerts
        .iter()
        .enumerate()
        .map(|(index, alert)| match per_alert.remove(&index) {
            Some(errors) => Err(errors),
            None => Ok(convert(payload, alert, now)),
        })
        .collect();
    Ok(Parsed {
        format: Format::Alertmanager,
        batch: true,
        items,
    })
}

/// Refuses a notification with too many alerts, or whose events would
/// take more than `limits.max_stored_bytes`, before any event is built
/// (building them is where the memory would go). Each alert's event holds
/// its labels and annotations twice (as labels and in `data`) and a copy of
/// every group field.
fn check_limits(value: &Value, limits: AlertLimits) -> Result<(), ParseError> {
    let Some(alerts) = value.get("alerts").and_then(Value::as_array) else {
        return Ok(());
    };
    if alerts.len() > limits.max_alerts {
        return Err(ParseError::TooManyAlerts {
            count: alerts.len(),
            limit: limits.max_alerts,
        });
    }
    let group: usize = GROUP_FIELDS
        .iter()
        .filter_map(|name| value.get(*name).map(|v| name.len() + json_len(v)))
        .sum();
    let per_event = group.saturating_add(EVENT_OVERHEAD);
    let estimated = alerts.iter().fold(0usize, |sum, alert| {
        sum.saturating_add(per_event)
            .saturating_add(json_len(alert).saturating_mul(2))
    });
    if estimated > limits.max_stored_bytes {
        return Err(ParseError::TooMuchToStore {
            estimated,
            limit: limits.max_stored_bytes,
            alerts: alerts.len(),
        });
    }
    Ok(())
}

/// The length of `value` as compact JSON, without building the text.
fn json_len(value: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 = self.0.saturating_add(buf.len());
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing to a counter cannot fail.
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

/// `3` for `/alerts/3/labels/severity`.
fn alert_index(path: &str) -> Option<usize> {
    path.strip_prefix("/alerts/")?
        .split('/')
        .next()?
        .parse()
        .ok()
}

/// Severity from the alert's `severity` label, in the vocabularies rule
/// authors use; an alert without one is a warning.
pub(crate) fn severity_of(label: Option<&str>) -> Severity {
    match label.map(str::to_ascii_lowercase).as_deref() {
        Some("critical" | "page") => Severity::Critical,
        Some("error" | "high" | "major") => Severity::Error,
        Some("info" | "low" | "none") => Severity::Info,
        _ => Severity::Warning,
    }
}

/// A timestamp Alertmanager set: it writes Go's zero time
/// (`0001-01-01T00:00:00Z`) for "unset".
fn set_time(value: Option<&str>) -> Option<jiff::Timestamp> {
    let time = checks::timestamp(value?).ok()?;
    (time > jiff::Timestamp::UNIX_EPOCH).then_some(time)
}

/// One alert's event (the alert passed the schema).
fn convert(payload: &Map<String, Value>, alert: &Value, now: jiff::Timestamp) -> Event {
    let empty = Map::new();
    let alert = alert.as_object().unwrap_or(&empty);
    let text = |name: &str| alert.get(name).and_then(Value::as_str);
    let resolved = text("status") == Some("resolved");
    let labels = alert
        .get("labels")
        .and_then(Value::as_object)
        .map(string_map)
        .unwrap_or_default();
    let annotations = alert
        .get("annotations")
        .and_then(Value::as_object)
        .map(string_map)
        .unwrap_or_default();
    let alertname = labels.get("alertname").cloned();

    let mut data = Map::new();
    if let Some(name) = &alertname {
        data.insert("alertname".into(), Value::String(name.clone()));
    }
    for name in [
        "status",
        "labels",
        "annotations",
        "startsAt",
        "endsAt",
        "generatorURL",
        "fingerprint",
    ] {
        if let Some(value) = alert.get(name) {
            data.insert(name.into(), value.clone());
        }
    }
    for name in GROUP_FIELDS {
        if let Some(value) = payload.get(name) {
            data.insert(name.into(), value.clone());
        }
    }

    let time = if resolved {
        set_time(text("endsAt"))
    } else {
        set_time(text("startsAt"))
    };
    let link = text("generatorURL")
        .filter(|url| checks::http_url(url).is_ok())
        .map(|url| Link {
            url: url.to_owned(),
            label: None,
        });
    Event {
        event_type: if resolved {
            "alert.resolved"
        } else {
            "alert.firing"
        }
        .into(),
        source: SOURCE.into(),
        id: None,
        subject: None,
        idempotency_key: None,
        time: time.unwrap_or(now),
        severity: if resolved {
            Severity::Success
        } else {
            severity_of(labels.get("severity").map(String::as_str))
        },
        title: annotations.get("summary").cloned().or(alertname),
        message: annotations
            .get("description")
            .or_else(|| annotations.get("message"))
            .cloned(),
        data,
        labels,
        table: None,
        mentions: Vec::new(),
        link,
        fields: Vec::new(),
        locale: None,
        destinations: None,
    }
}
