//! CloudEvents over HTTP in its three modes. The first byte picks the
//! mode: `s` structured, `b` batched, anything else binary, where the
//! input is header lines (`name: value`), an empty line, then the body (the
//! headers go to `parse_events` as sent, so they also choose the mode).
//! Invariants: see `carillon_fuzz::check_parsed`; accepted events render
//! with their built-in template.
#![no_main]

use carillon_fuzz::{check_builtin_render, check_parsed, now};
use http::{HeaderMap, HeaderName, HeaderValue, header::CONTENT_TYPE};
use libfuzzer_sys::fuzz_target;

fn split_headers(input: &[u8]) -> (HeaderMap, &[u8]) {
    let mut headers = HeaderMap::new();
    let mut rest = input;
    loop {
        let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
        let line = &rest[..end];
        rest = rest.get(end + 1..).unwrap_or_default();
        if line.is_empty() {
            return (headers, rest);
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
        if let (Ok(name), Ok(value)) =
            (HeaderName::from_bytes(name), HeaderValue::from_bytes(value))
        {
            headers.append(name, value);
        }
        if rest.is_empty() {
            return (headers, rest);
        }
    }
}

fuzz_target!(|input: &[u8]| {
    let Some((&mode, rest)) = input.split_first() else {
        return;
    };
    let content_type = |t: &'static str| {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(t));
        headers
    };
    let (headers, body) = match mode {
        b's' => (content_type("application/cloudevents+json"), rest),
        b'b' => (content_type("application/cloudevents-batch+json"), rest),
        _ => split_headers(rest),
    };
    let result = carillon::event::parse_events(&headers, body, now());
    let events = check_parsed("cloudevents", result, input.len(), &|i| format!("/{i}"));
    check_builtin_render(&events);
});
