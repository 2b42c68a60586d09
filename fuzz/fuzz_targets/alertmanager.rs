//! The Alertmanager webhook (`POST /v1/alertmanager`): one event per
//! alert. Invariants: see `carillon_fuzz::check_parsed` (the size bound is
//! the fan-out of group fields into every alert, issue 28 item 2);
//! accepted events render with their built-in template.
#![no_main]

use carillon_fuzz::{check_builtin_render, check_parsed, now};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    let result = carillon::event::parse_alertmanager(body, now());
    let events = check_parsed("alertmanager", result, body.len(), &|i| {
        format!("/alerts/{i}")
    });
    check_builtin_render(&events);
});
