//! The Prometheus text exposition format, as pushed to `/v1/metrics`:
//! one sample per line, `name{label="value",…} value [timestamp]`;
//! `#` lines (HELP, TYPE) and blank lines are skipped. Every sample
//! becomes a gauge reading (the type does not matter to a threshold);
//! samples whose value is not finite (`NaN`, `±Inf`) are skipped.
//!
//! A small parser rather than a crate: the format's sample lines are all
//! a push needs, and every cost stays bounded by the input — the body is
//! within the server's size limit, a push within `max_series` samples,
//! names and label values within the monitors' limits. The first problem
//! is answered with its line number.

use std::collections::BTreeMap;

use crate::config::monitors::{MAX_LABEL_VALUE, MAX_LABELS, MAX_METRIC_NAME, check_label_name};

use super::series::Reading;

/// What is wrong with a push.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct PromError {
    /// 1-based.
    pub line: usize,
    /// Why.
    pub message: String,
}

/// The samples of `text`, at most `max_series` of them (a series repeated
/// in one push counts once; its last value wins). Also answers how many
/// samples were skipped for a value that is not finite.
pub fn parse(text: &str, max_series: usize) -> Result<(Vec<Reading>, usize), PromError> {
    let mut by_series: BTreeMap<String, Reading> = BTreeMap::new();
    let mut skipped = 0;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let err = |message: String| PromError {
            line: i + 1,
            message,
        };
        let (reading, finite) = sample(line).map_err(err)?;
        if !finite {
            skipped += 1;
            continue;
        }
        let id = reading.series_id();
        if !by_series.contains_key(&id) && by_series.len() >= max_series {
            return Err(err(format!(
                "more than {max_series} series in one push ([monitors] max_push_series)"
            )));
        }
        by_series.insert(id, reading);
    }
    Ok((by_series.into_values().collect(), skipped))
}

/// One sample line; `false` when its value is not finite.
fn sample(line: &str) -> Result<(Reading, bool), String> {
    let name_end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(line.len());
    let name = &line[..name_end];
    let valid = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':');
    if !valid {
        return Err("expected a metric name".into());
    }
    if name.len() > MAX_METRIC_NAME {
        return Err(format!(
            "the metric name is longer than {MAX_METRIC_NAME} bytes"
        ));
    }
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(after) = rest.strip_prefix('{') {
        rest = label_set(after, &mut labels)?;
    }
    let mut fields = rest.split_ascii_whitespace();
    let value = fields.next().ok_or("expected a value after the series")?;
    let value = parse_value(value).ok_or_else(|| format!("{value:?} is not a number"))?;
    if let Some(ts) = fields.next()
        && ts.parse::<i64>().is_err()
    {
        return Err(format!("{ts:?} is not a timestamp (milliseconds)"));
    }
    if fields.next().is_some() {
        return Err("unexpected text after the timestamp".into());
    }
    let reading = Reading {
        metric: name.to_owned(),
        labels,
        value,
        unit: String::new(),
    };
    Ok((reading, value.is_finite()))
}

fn parse_value(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ if s
            .bytes()
            .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b)) =>
        {
            s.parse().ok()
        }
        _ => None,
    }
}

/// Reads `name="value",…}` into `labels`; returns what follows the `}`.
fn label_set<'a>(mut s: &'a str, labels: &mut BTreeMap<String, String>) -> Result<&'a str, String> {
    loop {
        s = s.trim_start();
        if let Some(after) = s.strip_prefix('}') {
            return Ok(after);
        }
        let eq = s.find('=').ok_or("expected label=\"value\"")?;
        let name = s[..eq].trim();
        check_label_name(name)?;
        s = s[eq + 1..].trim_start();
        s = s
            .strip_prefix('"')
            .ok_or_else(|| format!("the value of label {name:?} must be quoted"))?;
        let mut value = String::new();
        let mut chars = s.char_indices();
        let end = loop {
            match chars.next() {
                None => return Err(format!("the value of label {name:?} is not closed")),
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c @ ('\\' | '"'))) => value.push(c),
                    _ => return Err(format!("a bad escape in the value of label {name:?}")),
                },
                Some((_, c)) => value.push(c),
            }
            if value.len() > MAX_LABEL_VALUE {
                return Err(format!(
                    "the value of label {name:?} is longer than {MAX_LABEL_VALUE} bytes"
                ));
            }
        };
        if labels.insert(name.to_owned(), value).is_some() {
            return Err(format!("label {name:?} appears twice"));
        }
        if labels.len() > MAX_LABELS {
            return Err(format!("more than {MAX_LABELS} labels"));
        }
        s = s[end + 1..].trim_start();
        if let Some(after) = s.strip_prefix(',') {
            s = after;
        } else if !s.starts_with('}') {
            return Err("expected `,` or `}` after a label".into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_read_and_comments_skipped() {
        let text = "# HELP queue_size Jobs waiting\n# TYPE queue_size gauge\n\
                    queue_size{queue=\"etl\",env=\"prod\"} 42\n\
                    queue_size{queue=\"a \\\"b\\\"\",} 1.5e3 1700000000000\n\
                    up 1\nbroken NaN\n";
        let (readings, skipped) = parse(text, 10).unwrap();
        assert_eq!(skipped, 1);
        let ids: Vec<String> = readings.iter().map(Reading::series_id).collect();
        assert_eq!(
            ids,
            [
                "queue_size{env=\"prod\",queue=\"etl\"}",
                "queue_size{queue=\"a \\\"b\\\"\"}",
                "up"
            ]
        );
        assert!((readings[1].value - 1500.0).abs() < f64::EPSILON);
    }

    #[test]
    fn bad_lines_are_named_and_bounds_hold() {
        let cases = [
            ("9bad 1", 1, "metric name"),
            ("ok{a=b} 1", 1, "quoted"),
            ("ok{a=\"x\"", 1, "expected `,`"),
            ("ok 1\nok{a=\"x\"} one", 2, "not a number"),
            ("ok{a=\"1\",a=\"2\"} 1", 1, "twice"),
            ("ok 1 2 3", 1, "after the timestamp"),
        ];
        for (text, line, part) in cases {
            let e = parse(text, 10).unwrap_err();
            assert_eq!(e.line, line, "{text}: {e}");
            assert!(e.message.contains(part), "{text}: {e}");
        }
        let many: String = (0..5).map(|i| format!("m{{i=\"{i}\"}} 1\n")).collect();
        assert!(parse(&many, 5).is_ok());
        assert!(parse(&many, 4).unwrap_err().message.contains("more than 4"));
        let long = format!("m{{a=\"{}\"}} 1", "x".repeat(300));
        assert!(parse(&long, 5).unwrap_err().message.contains("longer"));
    }
}
