//! CloudEvents 1.0 over HTTP (the HTTP protocol binding and the JSON event
//! format): structured mode (`application/cloudevents+json`), batched mode
//! (`application/cloudevents-batch+json`) and binary mode (attributes in
//! `ce-*` headers, the data as the body).
//!
//! Both modes reduce to the same thing, a set of attributes and a payload,
//! and one function maps that to an [`Event`]; only the error paths differ
//! (`/id` in a body, `header:ce-id` in binary mode).

use base64::Engine as _;
use http::HeaderMap;
use serde_json::{Map, Value};

use super::errors::{self, FieldError, ParseError};
use super::{Event, Format, MAX_BATCH, Parsed, checks};
use crate::message::Severity;

/// The one specversion Carillon reads.
const SPECVERSION: &str = "1.0";

/// Parses a structured-mode body: one CloudEvent as a JSON object.
pub(crate) fn structured(body: &[u8], now: jiff::Timestamp) -> Result<Parsed, ParseError> {
    let value = errors::parse_json(body)?;
    let Value::Object(object) = &value else {
        return Err(ParseError::Invalid(vec![FieldError::new(
            "",
            format!(
                "expected a CloudEvent as a JSON object, got {}",
                errors::value_type(&value)
            ),
        )]));
    };
    match from_json(object, "", now) {
        Ok(event) => Ok(Parsed {
            format: Format::CloudEvent,
            batch: false,
            items: vec![Ok(event)],
        }),
        Err(errors) => Err(ParseError::Invalid(errors)),
    }
}

/// Parses a batched-mode body: a JSON array of CloudEvents (possibly
/// empty, as the spec allows).
pub(crate) fn batch(body: &[u8], now: jiff::Timestamp) -> Result<Parsed, ParseError> {
    let value = errors::parse_json(body)?;
    let Value::Array(items) = &value else {
        return Err(ParseError::Invalid(vec![FieldError::new(
            "",
            format!(
                "expected a JSON array of CloudEvents (application/cloudevents-batch+json), got {}",
                errors::value_type(&value)
            ),
        )]));
    };
    if items.len() > MAX_BATCH {
        return Err(ParseError::Invalid(vec![FieldError::new(
            "",
            format!(
                "a batch holds at most {MAX_BATCH} events; this one has {}",
                items.len()
            ),
        )]));
    }
    let items = items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            let prefix = format!("/{index}");
            match item {
                Value::Object(object) => from_json(object, &prefix, now),
                other => Err(vec![FieldError::new(
                    prefix,
                    format!(
                        "expected a CloudEvent object, got {}",
                        errors::value_type(other)
                    ),
                )]),
            }
        })
        .collect();
    Ok(Parsed {
        format: Format::CloudEventBatch,
        batch: true,
        items,
    })
}

/// Parses a binary-mode request: attributes from the `ce-*` headers, the
/// body as the data, its Content-Type as `datacontenttype`.
pub(crate) fn binary(
    headers: &HeaderMap,
    body: &[u8],
    now: jiff::Timestamp,
) -> Result<Parsed, ParseError> {
    let mut errors = Vec::new();
    let mut attributes = Map::new();
    for name in headers.keys() {
        let Some(attribute) = name.as_str().strip_prefix("ce-") else {
            continue;
        };
        let path = Origin::Headers.path(attribute);
        let mut values = headers.get_all(name).iter();
        let (Some(value), None) = (values.next(), values.next()) else {
            errors.push(FieldError::new(
                path,
                "is repeated; send each CloudEvents attribute once",
            ));
            continue;
        };
        if attribute == "datacontenttype" {
            errors.push(FieldError::new(
                path,
                "must not be sent in binary mode: the Content-Type header is the datacontenttype",
            ));
            continue;
        }
        match decode_header(value.as_bytes()) {
            Ok(text) => {
                attributes.insert(attribute.to_owned(), Value::String(text));
            }
            Err(message) => errors.push(FieldError::new(path, message)),
        }
    }
    let content_type = match headers.get(http::header::CONTENT_TYPE) {
        Some(value) => match value.to_str() {
            Ok(text) => Some(text.to_owned()),
            Err(_) => {
                errors.push(FieldError::new(
                    "header:content-type",
                    "is not printable ASCII",
                ));
                None
            }
        },
        None => None,
    };
    let payload = bytes_payload(content_type.as_deref(), body)?;
    match build(&attributes, payload, &Origin::Headers, now, errors) {
        Ok(event) => Ok(Parsed {
            format: Format::CloudEventBinary,
            batch: false,
            items: vec![Ok(event)],
        }),
        Err(errors) => Err(ParseError::Invalid(errors)),
    }
}

/// Decodes a `ce-*` header value as the HTTP binding says: unquote a
/// quoted-string (older senders), then one round of percent-decoding;
/// the result must be UTF-8.
pub(crate) fn decode_header(raw: &[u8]) -> Result<String, String> {
    let raw = raw.trim_ascii();
    let unquoted: Vec<u8> = match raw {
        [b'"', inner @ .., b'"'] => {
            let mut out = Vec::with_capacity(inner.len());
            let mut bytes = inner.iter();
            while let Some(&byte) = bytes.next() {
                if byte == b'\\' {
                    if let Some(&escaped) = bytes.next() {
                        out.push(escaped);
                    }
                } else {
                    out.push(byte);
                }
            }
            out
        }
        _ => raw.to_vec(),
    };
    let mut decoded = Vec::with_capacity(unquoted.len());
    let mut index = 0;
    while index < unquoted.len() {
        let byte = unquoted[index];
        if byte == b'%'
            && let Some(value) = unquoted
                .get(index + 1..index + 3)
                .and_then(|hex| std::str::from_utf8(hex).ok())
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
        {
            decoded.push(value);
            index += 3;
        } else {
            decoded.push(byte);
            index += 1;
        }
    }
    String::from_utf8(decoded).map_err(|_| "is not valid UTF-8 after percent-decoding".to_owned())
}

/// Where an event's attributes came from, for error paths.
enum Origin<'a> {
    /// A JSON object in the body, at this pointer (`""` or `/3`).
    Body(&'a str),
    /// The `ce-*` headers.
    Headers,
}

impl Origin<'_> {
    fn path(&self, attribute: &str) -> String {
        match self {
            Origin::Body(prefix) => errors::join(prefix, attribute),
            Origin::Headers => format!("header:ce-{attribute}"),
        }
    }
}

/// The event data, by how it was sent.
enum Payload {
    /// No data (absent, or JSON `null`).
    None,
    /// A JSON value.
    Json(Value),
    /// Text (a `text/*` content type).
    Text(String),
    /// Anything else, Base64-encoded.
    Binary(String),
}

/// The media type without parameters, lowercased: `application/json`.
pub(crate) fn essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// `*/json` or `*/*+json`, as the JSON event format defines JSON content.
fn is_json(essence: &str) -> bool {
    essence
        .split_once('/')
        .is_some_and(|(_, subtype)| subtype == "json" || subtype.ends_with("+json"))
}

fn is_text(essence: &str) -> bool {
    essence.starts_with("text/")
}

/// Base64 as the JSON format writes it (RFC 4648), padding optional.
const BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

/// The payload of a binary-mode body, by its Content-Type.
fn bytes_payload(content_type: Option<&str>, body: &[u8]) -> Result<Payload, ParseError> {
    if body.is_empty() {
        return Ok(Payload::None);
    }
    let essence = content_type.map(essence).unwrap_or_default();
    if is_json(&essence) {
        if body.trim_ascii().is_empty() {
            return Ok(Payload::None);
        }
        return Ok(match errors::parse_json(body)? {
            Value::Null => Payload::None,
            value => Payload::Json(value),
        });
    }
    if is_text(&essence)
        && let Ok(text) = std::str::from_utf8(body)
    {
        return Ok(Payload::Text(text.to_owned()));
    }
    Ok(Payload::Binary(BASE64.encode(body)))
}

/// Reads one structured-mode CloudEvent at `prefix`.
fn from_json(
    object: &Map<String, Value>,
    prefix: &str,
    now: jiff::Timestamp,
) -> Result<Event, Vec<FieldError>> {
    let origin = Origin::Body(prefix);
    let mut errors = Vec::new();
    let content_type = object.get("datacontenttype").and_then(Value::as_str);
    let essence = content_type.map(essence);
    let data = object.get("data").filter(|value| !value.is_null());
    let base64 = object.get("data_base64").filter(|value| !value.is_null());
    let payload = match (data, base64) {
        (Some(_), Some(_)) => {
            errors.push(FieldError::new(
                origin.path("data_base64"),
                "cannot be sent together with data; send one of them",
            ));
            Payload::None
        }
        (Some(Value::String(text)), None)
            if essence.as_deref().is_some_and(|essence| !is_json(essence)) =>
        {
            // Data the content type says is not JSON, sent as a string.
            if essence.as_deref().is_some_and(is_text) {
                Payload::Text(text.clone())
            } else {
                Payload::Json(Value::String(text.clone()))
            }
        }
        (Some(value), None) => Payload::Json(value.clone()),
        (None, Some(Value::String(encoded))) => {
            if BASE64.decode(encoded).is_ok() {
                Payload::Binary(encoded.clone())
            } else {
                errors.push(FieldError::new(
                    origin.path("data_base64"),
                    "is not valid Base64",
                ));
                Payload::None
            }
        }
        (None, Some(other)) => {
            errors.push(FieldError::new(
                origin.path("data_base64"),
                format!(
                    "expected a Base64 string, got {}",
                    errors::value_type(other)
                ),
            ));
            Payload::None
        }
        (None, None) => Payload::None,
    };
    let attributes: Map<String, Value> = object
        .iter()
        .filter(|(name, _)| !matches!(name.as_str(), "data" | "data_base64"))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    build(&attributes, payload, &origin, now, errors)
}

/// Attributes the spec defines that Carillon reads or deliberately drops;
/// every other attribute is an extension.
const CONTEXT_ATTRIBUTES: [&str; 8] = [
    "specversion",
    "id",
    "source",
    "type",
    "subject",
    "time",
    "datacontenttype",
    "dataschema",
];

/// Maps attributes and payload to an event, adding to `errors`.
fn build(
    attributes: &Map<String, Value>,
    payload: Payload,
    origin: &Origin<'_>,
    now: jiff::Timestamp,
    mut errors: Vec<FieldError>,
) -> Result<Event, Vec<FieldError>> {
    let mut string = |name: &str, required: bool| -> Option<String> {
        let path = origin.path(name);
        match attributes.get(name) {
            None | Some(Value::Null) => {
                if required {
                    errors.push(FieldError::new(path, "is required but missing"));
                }
                None
            }
            Some(Value::String(text)) => {
                if let Err(message) = no_controls(text) {
                    errors.push(FieldError::new(path, message));
                    return None;
                }
                Some(text.clone())
            }
            Some(other) => {
                errors.push(FieldError::new(
                    path,
                    format!("expected a string, got {}", errors::value_type(other)),
                ));
                None
            }
        }
    };
    let specversion = string("specversion", true);
    let id = string("id", true);
    let source = string("source", true);
    let event_type = string("type", true);
    let subject = string("subject", false);
    let time = string("time", false);
    // Read for their type; Carillon keeps neither.
    let _ = string("datacontenttype", false);
    let _ = string("dataschema", false);

    let mut check = |name: &str, value: &Option<String>, rule: fn(&str) -> Result<(), String>| {
        if let Some(value) = value
            && let Err(message) = rule(value)
        {
            errors.push(FieldError::new(origin.path(name), message));
        }
    };
    check("specversion", &specversion, |version| {
        if version == SPECVERSION {
            Ok(())
        } else {
            Err(format!(
                "{} is not supported; Carillon reads CloudEvents specversion \"1.0\"",
                errors::quote(version)
            ))
        }
    });
    check("id", &id, checks::non_empty_bounded);
    check("source", &source, checks::non_empty_bounded);
    check("type", &event_type, checks::event_type);
    check("subject", &subject, checks::non_empty_bounded);
    let time = match time {
        Some(value) => checks::timestamp(&value).unwrap_or_else(|message| {
            errors.push(FieldError::new(origin.path("time"), message));
            now
        }),
        None => now,
    };

    let mut severity = None;
    let mut title = None;
    let mut locale = None;
    let mut labels = std::collections::BTreeMap::new();
    for (name, value) in attributes {
        if CONTEXT_ATTRIBUTES.contains(&name.as_str()) {
            continue;
        }
        let path = origin.path(name);
        if name.is_empty()
            || !name
                .bytes()
                .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit())
        {
            errors.push(FieldError::new(
                path,
                format!(
                    "{} is not a CloudEvents attribute name \
                     (lowercase letters a-z and digits only)",
                    errors::quote(name)
                ),
            ));
            continue;
        }
        let text = match value {
            Value::Null => continue,
            Value::String(text) => text.clone(),
            Value::Number(number) => number.to_string(),
            Value::Bool(flag) => flag.to_string(),
            other => {
                errors.push(FieldError::new(
                    path,
                    format!(
                        "extension attributes must be strings, numbers or booleans, got {}",
                        errors::value_type(other)
                    ),
                ));
                continue;
            }
        };
        if let Err(message) = no_controls(&text) {
            errors.push(FieldError::new(path, message));
            continue;
        }
        match name.as_str() {
            "severity" => match parse_severity(&text) {
                Some(parsed) => severity = Some(parsed),
                None => errors.push(FieldError::new(
                    path,
                    format!(
                        "{} is not one of {}",
                        errors::show(value),
                        checks::SEVERITIES
                    ),
                )),
            },
            "title" => title = Some(text),
            "locale" => match checks::locale(&text) {
                Ok(tag) => locale = Some(tag),
                Err(message) => errors.push(FieldError::new(path, message)),
            },
            _ => {
                labels.insert(name.clone(), text);
            }
        }
    }

    let mut message = None;
    let mut data = Map::new();
    match payload {
        Payload::None => {}
        Payload::Json(Value::Object(object)) => data = object,
        Payload::Json(value) => {
            data.insert("value".into(), value);
        }
        Payload::Text(text) => message = Some(text),
        Payload::Binary(encoded) => {
            data.insert("data_base64".into(), Value::String(encoded));
        }
    }
    // Producers that cannot set extensions often put these in the data.
    let from_data = |name: &str| data.get(name).and_then(Value::as_str);
    if severity.is_none() {
        severity = from_data("severity").and_then(parse_severity);
    }
    if title.is_none() {
        title = from_data("title").map(str::to_owned);
    }
    if message.is_none() {
        message = from_data("message").map(str::to_owned);
    }

    if !errors.is_empty() {
        errors.sort_by(|a, b| a.path.cmp(&b.path));
        return Err(errors);
    }
    Ok(Event {
        event_type: event_type.unwrap_or_default(),
        source: source.unwrap_or_default(),
        // CloudEvents: source + id identify an event, so a resend with the
        // same id is a duplicate.
        idempotency_key: id.clone(),
        id,
        subject,
        time,
        severity: severity.unwrap_or(Severity::Info),
        title,
        message,
        data,
        labels,
        table: None,
        mentions: Vec::new(),
        link: None,
        fields: Vec::new(),
        locale,
        destinations: None,
    })
}

/// A severity from a CloudEvents extension or data: any case.
fn parse_severity(text: &str) -> Option<Severity> {
    checks::severity(&text.to_ascii_lowercase())
}

/// CloudEvents strings exclude U+0000–U+001F and U+007F–U+009F.
fn no_controls(text: &str) -> Result<(), String> {
    if text.chars().any(char::is_control) {
        Err("must not contain control characters".into())
    } else {
        Ok(())
    }
}
