//! The Alertmanager webhook (`POST /v1/alertmanager`): one event per
//! alert. Invariants: see `carillon_fuzz::check_parsed` (the size bound is
//! the fan-out of group fields into every alert, issue 28 item 2);
//! accepted events render with their built-in template.
#![no_main]

use carillon::config::ServerLimits;
use carillon_fuzz::{AMPLIFICATION, check_builtin_render, check_parsed_with, now};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    // As ingest reaches it: within the default limits (issue 28 item 2),
    // whose estimate of the events' size the bound then holds it to.
    let limits = carillon::event::AlertLimits {
        max_alerts: ServerLimits::default().alertmanager_max_alerts,
        max_stored_bytes: body
            .len()
            .saturating_mul(AMPLIFICATION)
            .saturating_add(ServerLimits::EXPANSION_ALLOWANCE),
    };
    let result = carillon::event::parse_alertmanager_within(body, now(), limits);
    let events = check_parsed_with(
        "alertmanager",
        result,
        body.len(),
        &|i| format!("/alerts/{i}"),
        ServerLimits::EXPANSION_ALLOWANCE,
    );
    check_builtin_render(&events);
});
