//! `[timeouts]`: how long a started task may run before Carillon raises
//! `task.timeout` by itself (see `crate::timeout`). Task types are keys
//! (`ETL = "2h"`) beside three settings of fixed names:
//!
//! ```toml
//! [timeouts]
//! notify_late = true   # a completion after its timeout sends task.finished-late
//! default = "6h"       # task types without their own (absent: no timer)
//! late_window = "7d"   # how long after a timeout a completion still counts as late
//! ETL = "2h"
//! "dataset.refresh" = "30m"
//! ```
//!
//! Durations are jiff's friendly format (`90s`, `2h`, `1h30m`, `2 days`)
//! or whole seconds; each is above zero and at most [`MAX_TIMEOUT`].

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::problem::{Findings, KeyPath};

/// The longest timeout a task may ask for or a config set: past it, the
/// value is almost surely a unit mistake (ms read as s).
pub const MAX_TIMEOUT: Duration = Duration::from_secs(30 * 24 * 3600);

/// `[timeouts]` as the file writes it: every value, typed by its key.
pub type RawTimeouts = BTreeMap<String, toml::Value>;

/// `[timeouts]`, validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimeoutSettings {
    /// A completion arriving after its task's timeout sends
    /// `task.finished-late`.
    pub notify_late: bool,
    /// The timeout of a task type without its own; `None`: no timer.
    #[serde(serialize_with = "opt_secs")]
    pub default: Option<Duration>,
    /// How long after a timeout a completion still counts as late (the
    /// fired marks are purged after it).
    #[serde(serialize_with = "secs")]
    pub late_window: Duration,
    /// Timeouts by task type (exact, case-sensitive).
    #[serde(serialize_with = "by_type_secs")]
    pub by_type: BTreeMap<String, Duration>,
}

impl Default for TimeoutSettings {
    fn default() -> Self {
        TimeoutSettings {
            notify_late: false,
            default: None,
            late_window: Duration::from_secs(7 * 24 * 3600),
            by_type: BTreeMap::new(),
        }
    }
}

impl TimeoutSettings {
    /// The timeout of `task_type` (its own, else the default).
    pub fn for_type(&self, task_type: Option<&str>) -> Option<Duration> {
        task_type
            .and_then(|t| self.by_type.get(t).copied())
            .or(self.default)
    }
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_secs())
}

fn opt_secs<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_some(&d.as_secs()),
        None => s.serialize_none(),
    }
}

fn by_type_secs<S: serde::Serializer>(
    m: &BTreeMap<String, Duration>,
    s: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = s.serialize_map(Some(m.len()))?;
    for (k, v) in m {
        map.serialize_entry(k, &v.as_secs())?;
    }
    map.end()
}

/// Reads a duration: jiff's friendly format or ISO 8601 as text, or whole
/// seconds as an integer; above zero and at most [`MAX_TIMEOUT`].
pub fn parse_duration(value: &toml::Value) -> Result<Duration, String> {
    let d = match value {
        toml::Value::Integer(n) => {
            let n = u64::try_from(*n).map_err(|_| format!("{n} is negative"))?;
            Duration::from_secs(n)
        }
        toml::Value::String(s) => parse_duration_text(s)?,
        other => {
            return Err(format!(
                "must be a duration such as \"2h\" or \"90m\" (or whole seconds), not a {}",
                other.type_str()
            ));
        }
    };
    check_bounds(d)
}

/// A duration written as text (`2h`, `1h30m`, `PT2H`).
pub fn parse_duration_text(s: &str) -> Result<Duration, String> {
    let span: jiff::Span = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a duration such as \"2h\", \"90m\" or \"1h30m\""))?;
    // A day is 24 hours here: a timeout is an amount of time, not a date.
    let signed = span
        .to_duration(jiff::SpanRelativeTo::days_are_24_hours())
        .map_err(|e| format!("{s:?}: {e}"))?;
    if signed.is_negative() {
        return Err(format!("{s:?} is negative"));
    }
    Duration::try_from(signed).map_err(|e| format!("{s:?}: {e}"))
}

/// Above zero and at most [`MAX_TIMEOUT`].
pub fn check_bounds(d: Duration) -> Result<Duration, String> {
    if d.is_zero() {
        Err("must be greater than 0".into())
    } else if d > MAX_TIMEOUT {
        Err(format!(
            "is {}s, more than the limit of 30 days ({}s)",
            d.as_secs(),
            MAX_TIMEOUT.as_secs()
        ))
    } else {
        Ok(d)
    }
}

/// Checks `[timeouts]` and builds it; every problem names its key.
pub(super) fn timeouts(raw: &RawTimeouts, f: &mut Findings) -> TimeoutSettings {
    let p = KeyPath::root().key("timeouts");
    let mut out = TimeoutSettings::default();
    for (key, value) in raw {
        let at = p.key(key.as_str());
        match key.as_str() {
            "notify_late" => match value {
                toml::Value::Boolean(b) => out.notify_late = *b,
                other => f.add(
                    &at,
                    format!("must be true or false, not a {}", other.type_str()),
                ),
            },
            "default" => match parse_duration(value) {
                Ok(d) => out.default = Some(d),
                Err(e) => f.add(&at, e),
            },
            "late_window" => match parse_duration(value) {
                Ok(d) => out.late_window = d,
                Err(e) => f.add(&at, e),
            },
            task_type => match parse_duration(value) {
                Ok(d) => {
                    out.by_type.insert(task_type.to_owned(), d);
                }
                Err(e) => f.add(&at, format!("(the timeout of task type {task_type:?}) {e}")),
            },
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> (TimeoutSettings, Vec<(String, String)>) {
        let raw: RawTimeouts = toml::from_str(text).unwrap();
        let mut f = Findings::default();
        let s = timeouts(&raw, &mut f);
        let found = f.drain().map(|(k, m)| (k.to_string(), m)).collect();
        (s, found)
    }

    #[test]
    fn task_types_and_settings_are_read() {
        let (s, found) = check(
            "notify_late = true\ndefault = \"6h\"\nETL = \"2h\"\n\"dataset.refresh\" = 1800\n",
        );
        assert!(found.is_empty(), "{found:?}");
        assert!(s.notify_late);
        assert_eq!(s.for_type(Some("ETL")), Some(Duration::from_secs(7200)));
        assert_eq!(
            s.for_type(Some("dataset.refresh")),
            Some(Duration::from_secs(1800))
        );
        assert_eq!(s.for_type(Some("other")), Some(Duration::from_secs(21600)));
        assert_eq!(s.for_type(None), Some(Duration::from_secs(21600)));
    }

    #[test]
    fn bad_values_name_their_key() {
        let (_, found) = check(
            "notify_late = \"yes\"\nETL = \"soon\"\nBIG = \"40 days\"\nZERO = 0\nNEG = -5\nlate_window = true\n",
        );
        let keys: Vec<&str> = found.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "timeouts.BIG",
                "timeouts.ETL",
                "timeouts.NEG",
                "timeouts.ZERO",
                "timeouts.late_window",
                "timeouts.notify_late"
            ]
        );
        assert!(found[0].1.contains("30 days"), "{found:?}");
        assert!(found[1].1.contains("not a duration"), "{found:?}");
    }
}
