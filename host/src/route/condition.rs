//! The pieces of a condition: finding a field in an event's data, comparing
//! JSON values, and the display text that regexes test.

use serde_json::Value;

/// The value at `path` below `data`: objects are walked by key, arrays by
/// numeric index (`data.items.0.name`). `None` when a step is missing.
pub fn lookup_data<'a>(
    data: &'a serde_json::Map<String, Value>,
    path: &[String],
) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    let mut at = data.get(first)?;
    for step in rest {
        at = match at {
            Value::Object(map) => map.get(step)?,
            Value::Array(items) => {
                // Only plain decimal indexes: `+1` or ` 1` are not indexes.
                if step.is_empty() || !step.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                items.get(step.parse::<usize>().ok()?)?
            }
            _ => return None,
        };
    }
    Some(at)
}

/// The text a value shows as: strings unquoted, numbers and booleans as
/// written, `null` as `null`, arrays and objects as compact JSON.
pub fn display_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Are `a` and `b` equal for a route's `equals`?
///
/// JSON equality, with two allowances for values that travel as text:
/// numbers compare by value (`3` equals `3.0`), and a string equals a
/// number or boolean whose display text is the same string (`"3"` equals
/// `3`, `"true"` equals `true`), whichever side the string is on. Arrays and
/// objects compare element by element under the same rules.
pub fn json_equals(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => numbers_equal(x, y),
        (Value::String(s), Value::Number(_) | Value::Bool(_))
        | (Value::Number(_) | Value::Bool(_), Value::String(s)) => {
            let other = if a.is_string() { b } else { a };
            // Numbers and booleans print without quotes, as in JSON.
            *s == serde_json::to_string(other).unwrap_or_default()
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(v, w)| json_equals(v, w))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equals(v, w)))
        }
        _ => a == b,
    }
}

fn numbers_equal(x: &serde_json::Number, y: &serde_json::Number) -> bool {
    if let (Some(a), Some(b)) = (x.as_i64(), y.as_i64()) {
        return a == b;
    }
    if let (Some(a), Some(b)) = (x.as_u64(), y.as_u64()) {
        return a == b;
    }
    match (x.as_f64(), y.as_f64()) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}
