//! Errors: what the API answers when a request is not acceptable, and the
//! translation of JSON Schema errors into messages an app developer reads.

use std::fmt;

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::{JsonType, ValidationError, Validator};
use serde_json::Value;

/// One problem, located: `path` is a JSON pointer into the request body
/// (`""` is the whole body, `/severity`, `/0/type` in a batch), or
/// `header:ce-type` for a CloudEvent in binary mode.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    /// Where the problem is.
    pub path: String,
    /// What is wrong, for an app developer.
    pub message: String,
}

impl FieldError {
    /// A problem at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Errors about a request as a whole; problems of one item of a batch are
/// reported in that item's result instead.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// The Content-Type names no format Carillon accepts (HTTP 415).
    #[error(
        "unsupported Content-Type {content_type:?}: \
         send application/json (a Carillon event or an array of them), \
         application/cloudevents+json, application/cloudevents-batch+json, \
         or a CloudEvent in binary mode (ce-specversion, ce-id, ce-source and ce-type headers)"
    )]
    UnsupportedMediaType {
        /// The Content-Type as sent (empty when there was none).
        content_type: String,
    },
    /// The body is not JSON at all.
    #[error("the body is not valid JSON (line {line}, column {column}): {message}")]
    Json {
        /// 1-based line of the problem.
        line: usize,
        /// 1-based column of the problem (0 for an empty body).
        column: usize,
        /// What the JSON parser found.
        message: String,
    },
    /// The body as a whole does not have the right shape: a batch that is
    /// not an array or holds too many items, or a single event with errors.
    #[error("{}", Problems(.0))]
    Invalid(Vec<FieldError>),
    /// An Alertmanager notification holds more alerts than allowed (413).
    #[error(
        "/alerts holds {count} alerts; at most {limit} are accepted in one request \
         (server.alertmanager_max_alerts; Alertmanager's `max_alerts` caps what it sends)"
    )]
    TooManyAlerts {
        /// Alerts in the request.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// The events of an Alertmanager notification would take far more
    /// room than the request: its group fields are copied into every
    /// alert's event (413).
    #[error(
        "the events of this request would take about {estimated} bytes, more than the \
         {limit} allowed (server.alertmanager_max_expansion times the request's size, \
         plus 64 KiB): the group's fields (commonLabels, commonAnnotations, …) are copied \
         into each of its {alerts} alerts; send fewer alerts per request or shorter \
         common annotations"
    )]
    TooMuchToStore {
        /// The estimated size of the events.
        estimated: usize,
        /// The limit for this request.
        limit: usize,
        /// Alerts in the request.
        alerts: usize,
    },
}

/// Joins problems for [`ParseError`]'s Display.
struct Problems<'a>(&'a [FieldError]);

impl fmt::Display for Problems<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid request")?;
        for (i, error) in self.0.iter().enumerate() {
            f.write_str(if i == 0 { ": " } else { "; " })?;
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

/// Parses a request body as JSON, turning a syntax error into
/// [`ParseError::Json`]. A UTF-8 byte order mark is skipped (RFC 8259 lets
/// parsers ignore it, and some clients send one).
pub(crate) fn parse_json(body: &[u8]) -> Result<Value, ParseError> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ParseError::Json {
            line: 1,
            column: 0,
            message: "the body is empty".into(),
        });
    }
    serde_json::from_slice(body).map_err(|error| json_error(&error))
}

/// [`ParseError::Json`] from serde_json's error, without the position
/// suffix serde_json appends to its message (it is in the fields).
pub(crate) fn json_error(error: &serde_json::Error) -> ParseError {
    let (line, column) = (error.line(), error.column());
    let text = error.to_string();
    let suffix = format!(" at line {line} column {column}");
    let message = text.strip_suffix(&suffix).unwrap_or(&text).to_owned();
    ParseError::Json {
        line,
        column,
        message,
    }
}

/// Escapes one JSON pointer segment (RFC 6901).
pub(crate) fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// `parent/segment` as a JSON pointer.
pub(crate) fn join(parent: &str, segment: &str) -> String {
    format!("{parent}/{}", escape(segment))
}

/// "a string", "an object": a JSON type with its article.
fn type_name(ty: JsonType) -> &'static str {
    match ty {
        JsonType::Null => "null",
        JsonType::Boolean => "a boolean",
        JsonType::Integer => "an integer",
        JsonType::Number => "a number",
        JsonType::String => "a string",
        JsonType::Array => "an array",
        JsonType::Object => "an object",
    }
}

/// Types in the order a message lists them: the likely one first.
fn type_rank(ty: JsonType) -> u8 {
    match ty {
        JsonType::String => 0,
        JsonType::Number => 1,
        JsonType::Integer => 2,
        JsonType::Boolean => 3,
        JsonType::Object => 4,
        JsonType::Array => 5,
        JsonType::Null => 6,
    }
}

/// "a string or a number" for a list of expected types, kept in the
/// given order (an `anyOf`'s branch order) without repeats.
fn expected_types(types: Vec<JsonType>) -> String {
    let mut names: Vec<&str> = Vec::with_capacity(types.len());
    for name in types.into_iter().map(type_name) {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    or_list(&names)
}

/// The type of a JSON value, with its article.
pub(crate) fn value_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A short rendering of a value for a message: JSON, cut at 60 characters.
pub(crate) fn show(value: &Value) -> String {
    const MAX: usize = 60;
    match value {
        Value::Array(_) | Value::Object(_) => value_type(value).to_owned(),
        _ => {
            let text = value.to_string();
            match text.char_indices().nth(MAX) {
                Some((cut, _)) => format!("{}…", &text[..cut]),
                None => text,
            }
        }
    }
}

/// A string quoted for a message, cut like [`show`].
pub(crate) fn quote(text: &str) -> String {
    show(&Value::String(text.to_owned()))
}

/// "a, b or c".
fn or_list(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// Friendly messages for the schemas' `pattern`s, which say nothing to a
/// reader as regular expressions.
fn pattern_message(pattern: &str) -> Option<&'static str> {
    Some(match pattern {
        r"^[^\s\u0000-\u001F\u007F-\u009F]+$" => {
            "must not contain whitespace or control characters"
        }
        r"^[A-Za-z]{2,8}([-_][A-Za-z0-9]{1,8})*$" => {
            "is not a language tag such as \"en\", \"zh-CN\" or \"pt-BR\""
        }
        r"^\s*(<=|>=|==|!=|<|>)\s*[^\s<>=]" => {
            "is not a condition such as \">= 60\" (an operator: <, <=, >, >=, ==, !=, then a value)"
        }
        r"^[^@\s]+@[^@\s]+$" => "is not an email address",
        r"^\+?[0-9][0-9 ().-]*$" => "is not a phone number (digits, with an optional leading +)",
        _ => return None,
    })
}

/// Every `pattern` [`pattern_message`] knows; tests check that each
/// pattern in the schemas is one of them.
#[cfg(test)]
pub(crate) fn has_pattern_message(pattern: &str) -> bool {
    pattern_message(pattern).is_some()
}

/// Validates `instance` and translates every error, with paths under
/// `prefix` (`""`, or `/3` for a batch item). `schema` is the document the
/// validator was built from, used to list a object's allowed fields.
pub(crate) fn validate(
    validator: &Validator,
    schema: &Value,
    instance: &Value,
    prefix: &str,
) -> Vec<FieldError> {
    let mut out = Vec::new();
    let mut type_errors = Vec::new();
    for error in validator.iter_errors(instance) {
        let start = out.len();
        translate(&error, schema, prefix, &mut out);
        if matches!(error.kind(), ValidationErrorKind::Type { .. }) {
            type_errors.extend(start..out.len());
        }
    }
    // `"version": 4` breaks both `type` and `const`; the `const` (or
    // `enum`) message says more, so a type error next to another error at
    // the same place is dropped.
    let redundant: Vec<usize> = type_errors
        .iter()
        .copied()
        .filter(|&index| {
            out.iter().enumerate().any(|(other, error)| {
                !type_errors.contains(&other) && error.path == out[index].path
            })
        })
        .collect();
    out.into_iter()
        .enumerate()
        .filter(|(index, _)| !redundant.contains(index))
        .map(|(_, error)| error)
        .collect()
}

/// The property names an object schema at `schema_path` (ending in
/// `/additionalProperties`) declares.
fn allowed_fields(schema: &Value, keyword_path: &str) -> Vec<String> {
    let parent = keyword_path
        .strip_suffix("/additionalProperties")
        .unwrap_or(keyword_path);
    schema
        .pointer(parent)
        .and_then(|node| node.get("properties"))
        .and_then(Value::as_object)
        .map(|properties| properties.keys().cloned().collect())
        .unwrap_or_default()
}

/// Pushes the message(s) for one validation error.
fn translate(error: &ValidationError<'_>, schema: &Value, prefix: &str, out: &mut Vec<FieldError>) {
    let path = format!("{prefix}{}", error.instance_path().as_str());
    let instance = error.instance();
    let message = match error.kind() {
        ValidationErrorKind::Required { property } => {
            let name = property.as_str().unwrap_or_default();
            out.push(FieldError::new(
                join(&path, name),
                "is required but missing",
            ));
            return;
        }
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            let mut allowed = allowed_fields(schema, error.schema_path().as_str());
            allowed.sort();
            for name in unexpected {
                let message = if allowed.is_empty() {
                    format!("unknown field {name:?}")
                } else {
                    format!(
                        "unknown field {name:?}; known fields: {}",
                        allowed.join(", ")
                    )
                };
                out.push(FieldError::new(join(&path, name), message));
            }
            return;
        }
        ValidationErrorKind::AnyOf { context } | ValidationErrorKind::OneOfNotValid { context } => {
            any_of(context, &path, instance, schema, prefix, out);
            return;
        }
        ValidationErrorKind::Type { kind } => {
            let expected = match kind {
                TypeKind::Single(ty) => vec![*ty],
                TypeKind::Multiple(set) => {
                    let mut types: Vec<JsonType> = set.iter().collect();
                    types.sort_by_key(|ty| type_rank(*ty));
                    types
                }
            };
            format!(
                "expected {}, got {}",
                expected_types(expected),
                value_type(instance)
            )
        }
        ValidationErrorKind::Enum { options } => {
            let options: Vec<String> = options
                .as_array()
                .map(|options| {
                    options
                        .iter()
                        .map(|option| match option {
                            Value::String(text) => text.clone(),
                            other => other.to_string(),
                        })
                        .collect()
                })
                .unwrap_or_default();
            format!("{} is not one of {}", show(instance), options.join(", "))
        }
        ValidationErrorKind::Constant { expected_value } => {
            format!("expected {expected_value}, got {}", show(instance))
        }
        ValidationErrorKind::MinLength { limit: 1 } => "must not be empty".to_owned(),
        ValidationErrorKind::MinLength { limit } => {
            format!("must be at least {limit} characters long")
        }
        ValidationErrorKind::MaxLength { limit } => {
            let length = instance.as_str().map_or(0, |text| text.chars().count());
            format!("is {length} characters long; the limit is {limit}")
        }
        ValidationErrorKind::MinItems { limit } => {
            format!("must have at least {limit} item{}", plural(*limit))
        }
        ValidationErrorKind::MaxItems { limit } => {
            let length = instance.as_array().map_or(0, Vec::len);
            format!("has {length} items; the limit is {limit}")
        }
        ValidationErrorKind::MinProperties { limit } => {
            format!("must have at least {limit} field{}", plural(*limit))
        }
        ValidationErrorKind::MaxProperties { limit } => {
            format!("must have at most {limit} field{}", plural(*limit))
        }
        ValidationErrorKind::Pattern { pattern } => match pattern_message(pattern) {
            Some(message) => format!("{} {message}", show(instance)),
            None => format!("{} does not match the pattern {pattern}", show(instance)),
        },
        ValidationErrorKind::Format { format } => {
            format!("{} is not a valid {format}", show(instance))
        }
        ValidationErrorKind::Minimum { limit } => {
            format!("{} is less than the minimum, {limit}", show(instance))
        }
        ValidationErrorKind::Maximum { limit } => {
            format!("{} is greater than the maximum, {limit}", show(instance))
        }
        // Kinds the schemas do not use; jsonschema's own message is fine.
        _ => error.masked().to_string(),
    };
    out.push(FieldError::new(path, message));
}

fn plural(count: u64) -> &'static str {
    if count == 1 { "" } else { "s" }
}

/// An `anyOf`/`oneOf` failure: every branch of the schemas declares its
/// `type`, so the branches whose type matches the instance say what is
/// wrong; when none does, the message lists the accepted types.
fn any_of(
    context: &[Vec<ValidationError<'static>>],
    path: &str,
    instance: &Value,
    schema: &Value,
    prefix: &str,
    out: &mut Vec<FieldError>,
) {
    let own_path = path.strip_prefix(prefix).unwrap_or(path);
    let mut expected = Vec::new();
    let mut matching = Vec::new();
    for branch in context {
        let mut type_mismatch = false;
        for error in branch {
            if let ValidationErrorKind::Type { kind } = error.kind()
                && error.instance_path().as_str() == own_path
            {
                type_mismatch = true;
                match kind {
                    TypeKind::Single(ty) => expected.push(*ty),
                    TypeKind::Multiple(set) => expected.extend(set.iter()),
                }
            }
        }
        if !type_mismatch {
            matching.push(branch);
        }
    }
    match matching.as_slice() {
        [branch] => {
            for error in branch.iter() {
                translate(error, schema, prefix, out);
            }
        }
        [] => out.push(FieldError::new(
            path,
            format!(
                "expected {}, got {}",
                expected_types(expected),
                value_type(instance)
            ),
        )),
        _ => out.push(FieldError::new(
            path,
            format!("{} is not valid here", show(instance)),
        )),
    }
}
