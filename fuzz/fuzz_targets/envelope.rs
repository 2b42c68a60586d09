//! The native envelope (`POST /v1/events`, `application/json`): one event
//! or a batch. Invariants: see `carillon_fuzz::check_parsed`; accepted
//! events render with their built-in template.
#![no_main]

use carillon_fuzz::{check_builtin_render, check_parsed, now};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    let mut headers = http::HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    let result = carillon::event::parse_events(&headers, body, now());
    let events = check_parsed("envelope", result, body.len(), &|i| format!("/{i}"));
    check_builtin_render(&events);
});
