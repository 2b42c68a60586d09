//! Tests of every input format, every error path, and of the published
//! schema against the parser: one file per format, the shared fixtures here.

use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Value, json};

use super::*;
use crate::message::{Comparison, Condition};

fn now() -> jiff::Timestamp {
    "2024-06-01T12:00:00Z".parse().unwrap()
}

fn ts(text: &str) -> jiff::Timestamp {
    text.parse().unwrap()
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_bytes(value.as_bytes()).unwrap(),
        );
    }
    map
}

fn json_headers() -> HeaderMap {
    headers(&[("content-type", "application/json")])
}

fn native(body: &Value) -> Result<Parsed, ParseError> {
    parse_events(&json_headers(), body.to_string().as_bytes(), now())
}

/// The one event of a single-event request.
fn single(parsed: Result<Parsed, ParseError>) -> Event {
    let parsed = parsed.unwrap();
    assert!(!parsed.batch);
    assert_eq!(parsed.items.len(), 1);
    parsed.items.into_iter().next().unwrap().unwrap()
}

/// The errors of a single-event request, as `path: message` lines.
fn invalid(parsed: Result<Parsed, ParseError>) -> Vec<String> {
    match parsed {
        Err(ParseError::Invalid(errors)) => errors.iter().map(ToString::to_string).collect(),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

fn native_errors(body: Value) -> Vec<String> {
    invalid(native(&body))
}

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/data/events/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap()
}

fn fixture_json(name: &str) -> Value {
    serde_json::from_slice(&fixture(name)).unwrap()
}

mod alertmanager;
mod cloudevents;
mod native;
mod robustness;
mod schema;
