//! Checks every input format applies to the values it maps into an
//! [`Event`](super::Event), so that routes and the outbox can rely on the
//! same invariants whatever the format. The native envelope's JSON Schema
//! states the same rules; these functions enforce them for the formats
//! without a schema of ours (CloudEvents headers and attributes) and the
//! rules a schema cannot express (timestamps, URLs).

use super::errors::quote;
use crate::message::{Comparison, Condition, Severity};

/// The longest `type`, `source`, `id`, `subject` and idempotency key.
pub const MAX_NAME_LEN: usize = 256;

/// Checks an event type: 1 to 256 characters, no whitespace or control
/// characters (routes match it with globs, and it appears in logs).
pub(crate) fn event_type(value: &str) -> Result<(), String> {
    non_empty_bounded(value)?;
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "{} must not contain whitespace or control characters",
            quote(value)
        ));
    }
    Ok(())
}

/// Checks a source, id, subject or idempotency key: 1 to 256 characters.
pub(crate) fn non_empty_bounded(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err("must not be empty".into());
    }
    let length = value.chars().count();
    if length > MAX_NAME_LEN {
        return Err(format!(
            "is {length} characters long; the limit is {MAX_NAME_LEN}"
        ));
    }
    Ok(())
}

/// Parses an RFC 3339 timestamp (with an offset).
pub(crate) fn timestamp(value: &str) -> Result<jiff::Timestamp, String> {
    value.parse::<jiff::Timestamp>().map_err(|error| {
        format!(
            "{} is not an RFC 3339 timestamp with an offset, \
             such as \"2024-06-01T08:30:00Z\" ({error})",
            quote(value)
        )
    })
}

/// The accepted severities, in order, for messages.
pub(crate) const SEVERITIES: &str = "info, success, warning, error, critical";

/// Parses a severity name (exactly as written).
pub(crate) fn severity(value: &str) -> Option<Severity> {
    Some(match value {
        "info" => Severity::Info,
        "success" => Severity::Success,
        "warning" => Severity::Warning,
        "error" => Severity::Error,
        "critical" => Severity::Critical,
        _ => return None,
    })
}

/// Checks that a URL is absolute `http`/`https` with a host.
pub(crate) fn http_url(value: &str) -> Result<(), String> {
    let shown = quote(value);
    match url::Url::parse(value) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Ok(()),
        Ok(url) => Err(format!(
            "{shown} is not an http(s) URL (its scheme is {:?})",
            url.scheme()
        )),
        Err(error) => Err(format!("{shown} is not an absolute http(s) URL ({error})")),
    }
}

/// Checks a BCP 47-style language tag and writes it with hyphens
/// (`zh_CN` becomes `zh-CN`, as POSIX-style locales are common).
pub(crate) fn locale(value: &str) -> Result<String, String> {
    let mut parts = value.split(['-', '_']);
    let primary_ok = parts
        .next()
        .is_some_and(|p| (2..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphabetic()));
    let rest_ok =
        parts.all(|p| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()));
    if primary_ok && rest_ok && value.len() <= 64 {
        Ok(value.replace('_', "-"))
    } else {
        Err(format!(
            "{} is not a language tag such as \"en\", \"zh-CN\" or \"pt-BR\"",
            quote(value)
        ))
    }
}

/// Parses a column condition written as a string, such as `">= 60"`.
pub(crate) fn condition(value: &str) -> Result<Condition, String> {
    let text = value.trim();
    // Two-character operators first, so `<=` is not read as `<` + `=…`.
    const OPS: [(&str, Comparison); 6] = [
        ("<=", Comparison::Le),
        (">=", Comparison::Ge),
        ("==", Comparison::Eq),
        ("!=", Comparison::Ne),
        ("<", Comparison::Lt),
        (">", Comparison::Gt),
    ];
    for (symbol, op) in OPS {
        if let Some(rest) = text.strip_prefix(symbol) {
            let operand = rest.trim();
            // An empty operand, or one starting like an operator (`<==`,
            // `<>`, `=>` typos), is not a condition.
            if operand.is_empty() || operand.starts_with(['<', '>', '=']) {
                break;
            }
            return Ok(Condition {
                op,
                operand: operand.to_owned(),
            });
        }
    }
    Err(format!(
        "{} is not a condition such as \">= 60\" \
         (an operator: <, <=, >, >=, ==, !=, then a value)",
        quote(value)
    ))
}

/// Parses a condition operator.
pub(crate) fn comparison(value: &str) -> Option<Comparison> {
    Some(match value {
        "<" => Comparison::Lt,
        "<=" => Comparison::Le,
        ">" => Comparison::Gt,
        ">=" => Comparison::Ge,
        "==" => Comparison::Eq,
        "!=" => Comparison::Ne,
        _ => return None,
    })
}

/// A cell or field value as display text: strings as written, numbers
/// and booleans in their JSON form, null as empty.
pub(crate) fn display(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(text) => Some(text.clone()),
        serde_json::Value::Number(number) => Some(number.to_string()),
        serde_json::Value::Bool(flag) => Some(flag.to_string()),
        serde_json::Value::Null => Some(String::new()),
        _ => None,
    }
}
