//! `[monitors]`: what Carillon samples by itself and the rules that turn
//! a metric into `resource.alert` and `resource.resolved` (see
//! `crate::monitor`).
//!
//! ```toml
//! [monitors]
//! interval = "30s"       # how often the host and the gateway are sampled
//! mounts = ["/", "/data"]
//! stale_after = "15m"    # a series with no reading this long is dropped
//!
//! [[monitors.rules]]
//! name = "disk-full"
//! metric = "host.disk_percent"
//! labels = { mount = "/data" }
//! op = ">"
//! threshold = 90
//! recovery = 80          # resolved once back to 80 % or below
//! for = "5m"
//! severity = "error"
//! repeat = "1h"
//! ```
//!
//! Every problem names its key; a rule with a problem is left out (the
//! config is refused anyway).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::Serialize;

use super::timeouts::parse_duration_text;
use crate::message::Severity;
use crate::problem::{Findings, KeyPath, NAME_RULE, valid_name};

/// `[monitors]` as the file writes it: every value, typed by its key.
pub type RawMonitors = BTreeMap<String, toml::Value>;

/// A built-in metric: its name, the labels its series carry, its unit.
#[derive(Debug, Clone, Copy)]
pub struct Builtin {
    /// `host.disk_percent`.
    pub name: &'static str,
    /// The labels of its series.
    pub labels: &'static [&'static str],
    /// Its unit, as templates print it after the value.
    pub unit: &'static str,
    /// A percentage: thresholds are 0 to 100.
    pub percent: bool,
}

/// The metrics Carillon samples itself. Names under `host.` and
/// `carillon.` are reserved for them.
pub const BUILTIN_METRICS: &[Builtin] = &[
    Builtin {
        name: "host.cpu_percent",
        labels: &[],
        unit: "%",
        percent: true,
    },
    Builtin {
        name: "host.memory_percent",
        labels: &[],
        unit: "%",
        percent: true,
    },
    Builtin {
        name: "host.disk_percent",
        labels: &["mount"],
        unit: "%",
        percent: true,
    },
    Builtin {
        name: "carillon.outbox_depth",
        labels: &[],
        unit: "",
        percent: false,
    },
    Builtin {
        name: "carillon.dead_letters_per_minute",
        labels: &[],
        unit: "/min",
        percent: false,
    },
    Builtin {
        name: "carillon.oldest_pending_seconds",
        labels: &[],
        unit: "s",
        percent: false,
    },
];

/// The prefixes reserved for built-in metrics.
pub const RESERVED_PREFIXES: &[&str] = &["host.", "carillon."];

/// The built-in metric `name`, if it is one.
pub fn builtin(name: &str) -> Option<&'static Builtin> {
    BUILTIN_METRICS.iter().find(|b| b.name == name)
}

/// The longest metric name, label name and label value.
pub const MAX_METRIC_NAME: usize = 128;
/// See [`MAX_METRIC_NAME`].
pub const MAX_LABEL_NAME: usize = 64;
/// See [`MAX_METRIC_NAME`].
pub const MAX_LABEL_VALUE: usize = 256;
/// The most labels a series has.
pub const MAX_LABELS: usize = 16;
/// The most rules.
pub const MAX_RULES: usize = 256;
/// The longest `for`.
pub const MAX_FOR: Duration = Duration::from_secs(7 * 24 * 3600);
/// The shortest and longest `repeat`.
pub const REPEAT_RANGE: (Duration, Duration) =
    (Duration::from_secs(60), Duration::from_secs(30 * 24 * 3600));
/// The shortest and longest `interval`.
pub const INTERVAL_RANGE: (Duration, Duration) =
    (Duration::from_secs(1), Duration::from_secs(3600));
/// The shortest and longest `stale_after`.
pub const STALE_RANGE: (Duration, Duration) =
    (Duration::from_secs(60), Duration::from_secs(7 * 24 * 3600));

/// A metric name: a letter or `_`, then letters, digits, `_`, `.`, `:`;
/// at most [`MAX_METRIC_NAME`] bytes.
pub fn check_metric_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':')) {
        return Err(format!(
            "{name:?} is not a metric name (a letter or `_`, then letters, digits, `_`, `.`, `:`)"
        ));
    }
    if name.len() > MAX_METRIC_NAME {
        return Err(format!("is longer than {MAX_METRIC_NAME} bytes"));
    }
    Ok(())
}

/// A label name: a letter or `_`, then letters, digits, `_`; at most
/// [`MAX_LABEL_NAME`] bytes.
pub fn check_label_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !first_ok
        || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        || name.len() > MAX_LABEL_NAME
    {
        return Err(format!(
            "{name:?} is not a label name (a letter or `_`, then letters, digits, `_`; at most {MAX_LABEL_NAME} bytes)"
        ));
    }
    Ok(())
}

/// How a rule compares the value with its threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Op {
    /// `>`
    #[serde(rename = ">")]
    Gt,
    /// `>=`
    #[serde(rename = ">=")]
    Ge,
    /// `<`
    #[serde(rename = "<")]
    Lt,
    /// `<=`
    #[serde(rename = "<=")]
    Le,
}

impl Op {
    /// Does `value` stand beyond `threshold`?
    pub fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Op::Gt => value > threshold,
            Op::Ge => value >= threshold,
            Op::Lt => value < threshold,
            Op::Le => value <= threshold,
        }
    }

    /// Is the rule about a value rising (`>`, `>=`)?
    pub fn rising(self) -> bool {
        matches!(self, Op::Gt | Op::Ge)
    }

    /// As written.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Le => "<=",
        }
    }
}

/// One `[[monitors.rules]]` entry, validated.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MonitorRule {
    /// Unique among the rules; the key its state is kept under.
    pub name: String,
    /// The metric it watches.
    pub metric: String,
    /// Labels a series must carry (exactly these values) to be watched.
    pub labels: BTreeMap<String, String>,
    /// The comparison.
    pub op: Op,
    /// Fires when `value op threshold` held for `for_`.
    pub threshold: f64,
    /// Resolves when `value op recovery` no longer holds (hysteresis);
    /// the threshold when the file gives none.
    pub recovery: f64,
    /// How long the condition must hold before it fires.
    #[serde(rename = "for", serialize_with = "secs")]
    pub for_: Duration,
    /// The alert's severity.
    pub severity: Severity,
    /// While firing, the alert is sent again this often; `None`: once.
    #[serde(serialize_with = "opt_secs")]
    pub repeat: Option<Duration>,
}

/// `[monitors]`, validated.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MonitorSettings {
    /// How often the host and the gateway are sampled.
    #[serde(serialize_with = "secs")]
    pub interval: Duration,
    /// Sample the host (CPU, memory, disks) at all.
    pub system: bool,
    /// The mount points whose disk use is sampled.
    pub mounts: Vec<String>,
    /// The most rule × series pairs watched at once.
    pub max_series: usize,
    /// The most series one Prometheus push may carry.
    pub max_push_series: usize,
    /// A series with no reading for this long is stale: its pairs are
    /// dropped, and a firing one is closed (`resource.resolved`, `stale`).
    /// Unset: 15 minutes, or two intervals if that is longer.
    #[serde(serialize_with = "secs")]
    pub stale_after: Duration,
    /// The rules, in file order.
    pub rules: Vec<MonitorRule>,
}

impl Default for MonitorSettings {
    fn default() -> Self {
        MonitorSettings {
            interval: Duration::from_secs(30),
            system: true,
            mounts: vec!["/".to_owned()],
            max_series: 1000,
            max_push_series: 1000,
            stale_after: Duration::from_secs(15 * 60),
            rules: Vec::new(),
        }
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

/// A duration (text such as `"5m"`, or whole seconds) within `range`
/// (inclusive); `0` allowed when the range starts at zero.
pub(super) fn duration_within(
    value: &toml::Value,
    (min, max): (Duration, Duration),
) -> Result<Duration, String> {
    let d = match value {
        toml::Value::Integer(n) => {
            Duration::from_secs(u64::try_from(*n).map_err(|_| format!("{n} is negative"))?)
        }
        toml::Value::String(s) => parse_duration_text(s)?,
        other => {
            return Err(format!(
                "must be a duration such as \"5m\" (or whole seconds), not a {}",
                other.type_str()
            ));
        }
    };
    if d < min || d > max {
        return Err(format!(
            "is {}s; must be between {}s and {}s",
            d.as_secs(),
            min.as_secs(),
            max.as_secs()
        ));
    }
    Ok(d)
}

pub(super) fn number(value: &toml::Value) -> Result<f64, String> {
    match value {
        #[allow(clippy::cast_precision_loss)]
        toml::Value::Integer(n) => Ok(*n as f64),
        toml::Value::Float(x) if x.is_finite() => Ok(*x),
        toml::Value::Float(_) => Err("must be a finite number".into()),
        other => Err(format!("must be a number, not a {}", other.type_str())),
    }
}

fn count(value: &toml::Value, max: i64) -> Result<usize, String> {
    match value {
        toml::Value::Integer(n) if (1..=max).contains(n) => Ok(usize::try_from(*n).unwrap_or(1)),
        toml::Value::Integer(n) => Err(format!("is {n}; must be between 1 and {max}")),
        other => Err(format!("must be an integer, not a {}", other.type_str())),
    }
}

/// Checks `[monitors]` and builds it; every problem names its key.
pub(super) fn monitors(raw: &RawMonitors, f: &mut Findings) -> MonitorSettings {
    let p = KeyPath::root().key("monitors");
    let mut out = MonitorSettings::default();
    for (key, value) in raw {
        let at = p.key(key.as_str());
        let result = match key.as_str() {
            "interval" => duration_within(value, INTERVAL_RANGE).map(|d| out.interval = d),
            "system" => match value {
                toml::Value::Boolean(b) => {
                    out.system = *b;
                    Ok(())
                }
                other => Err(format!("must be true or false, not a {}", other.type_str())),
            },
            "mounts" => mounts(value).map(|m| out.mounts = m),
            "max_series" => count(value, 100_000).map(|n| out.max_series = n),
            "max_push_series" => count(value, 10_000).map(|n| out.max_push_series = n),
            "stale_after" => duration_within(value, STALE_RANGE).map(|d| out.stale_after = d),
            "rules" => Ok(()),
            other => Err(format!(
                "unknown key {other:?} (known: interval, system, mounts, max_series, max_push_series, stale_after, rules)"
            )),
        };
        if let Err(e) = result {
            f.add(&at, e);
        }
    }
    // The host's own series are read every interval: they must not go
    // stale between two samples. Unset, it covers two samples at least.
    if !raw.contains_key("stale_after") {
        out.stale_after = out.stale_after.max(out.interval.saturating_mul(2));
    } else if out.stale_after < out.interval.saturating_mul(2) {
        f.add(
            &p.key("stale_after"),
            format!(
                "is {}s; it must be at least twice `interval` ({}s), or every sampled series would go stale between samples",
                out.stale_after.as_secs(),
                out.interval.as_secs()
            ),
        );
    }
    if let Some(rules) = raw.get("rules") {
        let at = p.key("rules");
        match rules.as_array() {
            None => f.add(&at, "must be an array of tables ([[monitors.rules]])"),
            Some(items) if items.len() > MAX_RULES => {
                f.add(
                    &at,
                    format!("has {} rules; at most {MAX_RULES}", items.len()),
                );
            }
            Some(items) => {
                let mut names = BTreeSet::new();
                for (i, item) in items.iter().enumerate() {
                    let at = at.index(i);
                    // A name used twice is a problem even if either rule
                    // has others.
                    let name = item.get("name").and_then(toml::Value::as_str);
                    if let Some(name) = name
                        && !names.insert(name.to_owned())
                    {
                        f.add(&at.key("name"), format!("{name:?} names another rule too"));
                        continue;
                    }
                    if let Some(rule) = super::monitor_rule::rule(item, &out, &at, f) {
                        out.rules.push(rule);
                    }
                }
            }
        }
    }
    out
}

fn mounts(value: &toml::Value) -> Result<Vec<String>, String> {
    let items = value
        .as_array()
        .ok_or_else(|| format!("must be a list of paths, not a {}", value.type_str()))?;
    if items.len() > 64 {
        return Err("lists more than 64 mounts".into());
    }
    items
        .iter()
        .map(|v| match v.as_str() {
            Some(s) if s.starts_with('/') && s.len() <= 1024 => Ok(s.to_owned()),
            _ => Err(format!("{v} is not an absolute path")),
        })
        .collect()
}

/// Is `name` usable as a rule name?
pub(super) fn rule_name(value: Option<&toml::Value>) -> Result<String, String> {
    match value {
        None => Err("is required".into()),
        Some(toml::Value::String(s)) if valid_name(s) && s.len() <= 64 => Ok(s.clone()),
        Some(toml::Value::String(_)) => Err(format!("{NAME_RULE}, at most 64 bytes")),
        Some(other) => Err(format!("must be a string, not a {}", other.type_str())),
    }
}

/// Reads a severity name.
pub(super) fn severity(value: &toml::Value) -> Result<Severity, String> {
    let bad = || format!("must be one of info, success, warning, error, critical, not {value}");
    let s = value.as_str().ok_or_else(bad)?;
    serde_json::from_value(serde_json::Value::from(s)).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> (MonitorSettings, Vec<(String, String)>) {
        let raw: RawMonitors = toml::from_str(text).unwrap();
        let mut f = Findings::default();
        let s = monitors(&raw, &mut f);
        let found = f.drain().map(|(k, m)| (k.to_string(), m)).collect();
        (s, found)
    }

    #[test]
    fn rules_and_settings_are_read() {
        let (s, found) = check(
            r#"
interval = "10s"
mounts = ["/", "/data"]
[[rules]]
name = "disk"
metric = "host.disk_percent"
labels = { mount = "/data" }
op = ">="
threshold = 90
recovery = 80.5
for = "5m"
severity = "critical"
repeat = "1h"
[[rules]]
name = "queue"
metric = "queue_size"
op = "<"
threshold = 3
"#,
        );
        assert!(found.is_empty(), "{found:?}");
        assert_eq!(s.interval, Duration::from_secs(10));
        assert_eq!(s.rules.len(), 2);
        let r = &s.rules[0];
        assert_eq!(r.op, Op::Ge);
        assert!((r.recovery - 80.5).abs() < f64::EPSILON);
        assert_eq!(r.for_, Duration::from_secs(300));
        assert_eq!(r.repeat, Some(Duration::from_secs(3600)));
        assert_eq!(r.severity, Severity::Critical);
        let q = &s.rules[1];
        assert!(
            (q.recovery - 3.0).abs() < f64::EPSILON,
            "recovery defaults to the threshold"
        );
        assert_eq!(q.for_, Duration::ZERO);
        assert_eq!(q.severity, Severity::Warning);
        assert_eq!(q.repeat, None);
    }

    #[test]
    fn stale_after_is_read_and_must_cover_two_samples() {
        let (s, found) = check("stale_after = \"20m\"\n");
        assert!(found.is_empty(), "{found:?}");
        assert_eq!(s.stale_after, Duration::from_secs(1200));
        let (s, found) = check("interval = \"1h\"\n");
        assert!(found.is_empty(), "{found:?}");
        assert_eq!(s.stale_after, Duration::from_secs(7200), "two intervals");
        let (_, found) = check("interval = \"10m\"\nstale_after = \"15m\"\n");
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].0, "monitors.stale_after");
        assert!(found[0].1.contains("twice"), "{found:?}");
        let (_, found) = check("stale_after = \"10s\"\n");
        assert_eq!(found[0].0, "monitors.stale_after", "{found:?}");
    }

    #[test]
    fn bad_values_name_their_key() {
        let (s, found) = check(
            r#"
interval = "0s"
colour = 1
[[rules]]
name = "a"
metric = "host.disk_space"
op = ">"
threshold = "90"
[[rules]]
name = "b"
metric = "host.cpu_percent"
op = ">"
threshold = 90
recovery = 95
for = "30 days"
repeat = "5s"
[[rules]]
name = "c"
metric = "host.disk_percent"
labels = { device = "sda" }
op = "=="
threshold = 120
[[rules]]
name = "d"
metric = "host.disk_percent"
labels = { mount = "/nowhere" }
op = "<"
threshold = 10
recovery = 5
severity = "loud"
[[rules]]
name = "d"
metric = "apps.queue"
op = ">"
threshold = 1
"#,
        );
        assert_eq!(s.rules.len(), 0, "{:?}", s.rules);
        let mut keys: Vec<&str> = found.iter().map(|(k, _)| k.as_str()).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "monitors.colour",
                "monitors.interval",
                "monitors.rules[0].metric",
                "monitors.rules[0].threshold",
                "monitors.rules[1].for",
                "monitors.rules[1].recovery",
                "monitors.rules[1].repeat",
                "monitors.rules[2].labels",
                "monitors.rules[2].op",
                "monitors.rules[2].threshold",
                "monitors.rules[3].labels",
                "monitors.rules[3].recovery",
                "monitors.rules[3].severity",
                "monitors.rules[4].name",
            ],
            "{found:#?}"
        );
        let msg = |k: &str| &found.iter().find(|(p, _)| p == k).unwrap().1;
        assert!(msg("monitors.rules[0].metric").contains("not a built-in metric"));
        assert!(msg("monitors.rules[0].threshold").contains("not a string"));
        assert!(msg("monitors.rules[1].recovery").contains("firing side"));
        assert!(msg("monitors.rules[3].recovery").contains("at or above"));
        assert!(msg("monitors.rules[3].labels").contains("not sampled"));
    }
}
