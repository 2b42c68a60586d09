//! One `[[monitors.rules]]` entry: every key checked, each problem naming
//! it (`monitors.rules[2].recovery`). A built-in metric must exist and
//! carry the labels matched; a percentage's thresholds are 0 to 100; the
//! recovery threshold sits on the quiet side of the threshold.

use std::collections::BTreeMap;
use std::time::Duration;

use super::monitors::{
    BUILTIN_METRICS, MAX_FOR, MAX_LABEL_VALUE, MAX_LABELS, MonitorRule, MonitorSettings, Op,
    REPEAT_RANGE, RESERVED_PREFIXES, builtin, check_label_name, check_metric_name, duration_within,
    number, rule_name, severity,
};
use crate::message::Severity;
use crate::problem::{Findings, KeyPath};

const KEYS: &[&str] = &[
    "name",
    "metric",
    "labels",
    "op",
    "threshold",
    "recovery",
    "for",
    "severity",
    "repeat",
];

/// Builds the rule at `at`, or `None` (its problems added to `f`).
pub(super) fn rule(
    item: &toml::Value,
    settings: &MonitorSettings,
    at: &KeyPath,
    f: &mut Findings,
) -> Option<MonitorRule> {
    let Some(table) = item.as_table() else {
        f.add(at, "must be a table");
        return None;
    };
    let mut ok = true;
    let mut check = |key: &str, r: Result<(), String>| {
        if let Err(e) = r {
            f.add(&at.key(key), e);
            ok = false;
        }
    };
    for key in table.keys() {
        if !KEYS.contains(&key.as_str()) {
            check(
                key,
                Err(format!("unknown key {key:?} (known: {})", KEYS.join(", "))),
            );
        }
    }
    let name = rule_name(table.get("name"));
    let name = name.map_err(|e| check("name", Err(e))).ok();
    let metric = metric(table.get("metric"));
    let metric = metric.map_err(|e| check("metric", Err(e))).ok();
    let known = metric.as_deref().and_then(builtin);
    let labels = table
        .get("labels")
        .map_or(Ok(BTreeMap::new()), |v| labels(v, known.map(|b| b.labels)));
    let labels = labels.map_err(|e| check("labels", Err(e))).ok();
    if let (Some(b), Some(l)) = (known, &labels)
        && b.name == "host.disk_percent"
        && let Some(mount) = l.get("mount")
        && !settings.mounts.contains(mount)
    {
        check(
            "labels",
            Err(format!(
                "mount {mount:?} is not sampled; add it to monitors.mounts ({:?})",
                settings.mounts
            )),
        );
    }
    let op = match table.get("op") {
        None => Err("is required: one of >, >=, <, <=".to_owned()),
        Some(v) => match v.as_str() {
            Some(">") => Ok(Op::Gt),
            Some(">=") => Ok(Op::Ge),
            Some("<") => Ok(Op::Lt),
            Some("<=") => Ok(Op::Le),
            _ => Err(format!(
                "must be one of \">\", \">=\", \"<\", \"<=\", not {v}"
            )),
        },
    };
    let op = op.map_err(|e| check("op", Err(e))).ok();
    let percent = known.is_some_and(|b| b.percent);
    let threshold_of = |key: &str| -> Option<Result<f64, String>> {
        let v = table.get(key)?;
        Some(number(v).and_then(|x| {
            if percent && !(0.0..=100.0).contains(&x) {
                Err(format!("is {x}; a percentage is between 0 and 100"))
            } else {
                Ok(x)
            }
        }))
    };
    let threshold = threshold_of("threshold").unwrap_or(Err("is required".into()));
    let threshold = threshold.map_err(|e| check("threshold", Err(e))).ok();
    let recovery = threshold_of("recovery")
        .transpose()
        .map_err(|e| check("recovery", Err(e)))
        .ok()
        .flatten();
    if let (Some(op), Some(t), Some(r)) = (op, threshold, recovery) {
        let wrong = if op.rising() { r > t } else { r < t };
        if wrong {
            let side = if op.rising() {
                "at or below"
            } else {
                "at or above"
            };
            check(
                "recovery",
                Err(format!(
                    "is {r}, on the firing side of the threshold {t}: for `{}` it must be {side} it",
                    op.as_str()
                )),
            );
        }
    }
    let for_ = table
        .get("for")
        .map_or(Ok(Duration::ZERO), |v| {
            duration_within(v, (Duration::ZERO, MAX_FOR))
        })
        .map_err(|e| check("for", Err(e)))
        .ok();
    let sev = table
        .get("severity")
        .map_or(Ok(Severity::Warning), severity)
        .map_err(|e| check("severity", Err(e)))
        .ok();
    let repeat = table
        .get("repeat")
        .map(|v| duration_within(v, REPEAT_RANGE))
        .transpose()
        .map_err(|e| check("repeat", Err(e)))
        .ok();
    if !ok {
        return None;
    }
    let threshold = threshold?;
    Some(MonitorRule {
        name: name?,
        metric: metric?,
        labels: labels?,
        op: op?,
        threshold,
        recovery: recovery.unwrap_or(threshold),
        for_: for_?,
        severity: sev?,
        repeat: repeat?,
    })
}

fn metric(value: Option<&toml::Value>) -> Result<String, String> {
    let s = match value {
        None => return Err("is required".into()),
        Some(toml::Value::String(s)) => s,
        Some(other) => return Err(format!("must be a string, not a {}", other.type_str())),
    };
    if RESERVED_PREFIXES.iter().any(|p| s.starts_with(p)) && builtin(s).is_none() {
        let known: Vec<&str> = BUILTIN_METRICS.iter().map(|b| b.name).collect();
        return Err(format!(
            "{s:?} is not a built-in metric (known: {})",
            known.join(", ")
        ));
    }
    check_metric_name(s)?;
    Ok(s.clone())
}

fn labels(value: &toml::Value, known: Option<&[&str]>) -> Result<BTreeMap<String, String>, String> {
    let table = value.as_table().ok_or_else(|| {
        format!(
            "must be a table of label = \"value\", not a {}",
            value.type_str()
        )
    })?;
    if table.len() > MAX_LABELS {
        return Err(format!("has more than {MAX_LABELS} labels"));
    }
    let mut out = BTreeMap::new();
    for (k, v) in table {
        check_label_name(k)?;
        if let Some(known) = known
            && !known.contains(&k.as_str())
        {
            return Err(format!(
                "{k:?} is not a label of this metric (its labels: {known:?})"
            ));
        }
        let v = v
            .as_str()
            .ok_or_else(|| format!("label {k:?} must be a string, not a {}", v.type_str()))?;
        if v.len() > MAX_LABEL_VALUE {
            return Err(format!(
                "label {k:?} is longer than {MAX_LABEL_VALUE} bytes"
            ));
        }
        out.insert(k.clone(), v.to_owned());
    }
    Ok(out)
}
