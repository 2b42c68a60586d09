//! The one place that knows the on-disk layout: tree names and key
//! encodings. Everything else asks this module for keys.
//!
//! | tree          | key                                        | value |
//! |---------------|--------------------------------------------|-------|
//! | `meta`        | `schema_version`; `lease_epoch`; `untouched_from`; `unrouted_from` | `u32` big-endian; `u64` big-endian; `u128` BE raw event id (both) |
//! | `events`      | event id (`evt_…`)                         | `EventRecord` (binary): event, body, every delivery's destination, id and payload |
//! | `deliveries`  | delivery id (`dlv_…`)                      | `DeliveryRecord` (JSON), or the compact record of a delivery delivered at its first attempt (`delivered`, binary) |
//! | `dead`        | destination ‖ `0x00` ‖ delivery id         | empty |
//! | `attempts`    | delivery id ‖ sequence (`u32` BE)          | `AttemptRecord` (JSON), not for the delivering attempt |
//! | `delivered`   | delivered-at (`u64` BE ms) ‖ delivery id   | empty: the purge index, for JSON records only |
//! | `timers`      | timer id (`tmr_…`)                         | timer record (length-prefixed JSON header ‖ payload; see `timers::record`) |
//! | `timers_fired`| timer key                                  | fired-at (`u64` BE ms) ‖ timer id: the fired mark a late completion consumes |
//! | `kept`        | the caller's key                           | the caller's value (see `kept`): written with an event |
//!
//! The due index and the idempotency index are kept in memory and rebuilt
//! at open (`due`, `idempotency`); schema 2 stored them in trees of those
//! names, which `migrate` drops.
//!
//! Schema 1 also had a `bodies` tree (event id or delivery id → raw body or
//! payload); schema 2 moved the blobs into the event record and `migrate`
//! empties it.
//!
//! Ids have a fixed length, so a time prefix followed by an id sorts by time
//! and then by id; destinations and sources may not contain `0x00`.

use crate::id::DeliveryId;
use crate::time::Timestamp;

/// Tree names, in the order of [`Trees`](crate::outbox) slots.
pub(crate) const EVENTS: &str = "events";
/// Schema 1's blob tree, read only by the migration.
pub(crate) const BODIES: &str = "bodies";
pub(crate) const DELIVERIES: &str = "deliveries";
/// Schema 2's due index, dropped by the migration to 3.
pub(crate) const DUE: &str = "due";
pub(crate) const DEAD: &str = "dead";
/// Schema 2's idempotency index, dropped by the migration to 3.
pub(crate) const IDEMPOTENCY: &str = "idempotency";
pub(crate) const ATTEMPTS: &str = "attempts";
pub(crate) const DELIVERED: &str = "delivered";
/// Armed timers by id (see `timers`).
pub(crate) const TIMERS: &str = "timers";
/// Fired marks by timer key (see `timers`).
pub(crate) const TIMERS_FIRED: &str = "timers_fired";
/// Kept records by the caller's key (see `kept`).
pub(crate) const KEPT: &str = "kept";
/// The tree holding the schema version.
pub(crate) const META: &str = "meta";
/// The schema version key in [`META`].
pub(crate) const SCHEMA_VERSION: &[u8] = b"schema_version";
/// How many times the outbox was opened (`u64` BE), in [`META`]: the high
/// bits of lease tokens.
pub(crate) const LEASE_EPOCH: &[u8] = b"lease_epoch";
/// The untouched horizon (`u128` BE raw event id), in [`META`]: no event
/// below it has a delivery without its own record (see `untouched`).
pub(crate) const UNTOUCHED_FROM: &[u8] = b"untouched_from";
/// The unrouted mark (`u128` BE raw event id), in [`META`]: no event below
/// it is stored without a delivery (the unrouted purge got there). Absent
/// in databases no purge of unrouted events has seen yet: 0.
pub(crate) const UNROUTED_FROM: &[u8] = b"unrouted_from";

/// All transactional trees, in slot order.
pub(crate) const TX_TREES: [&str; 5] = [EVENTS, DELIVERIES, DEAD, ATTEMPTS, DELIVERED];

/// `time ‖ id`: keys of the `delivered` index (and schema 2's `due`).
pub(crate) fn time_key(at: Timestamp, id: &DeliveryId) -> Vec<u8> {
    let mut k = Vec::with_capacity(8 + id.as_str().len());
    k.extend_from_slice(&at.to_be_bytes());
    k.extend_from_slice(id.as_str().as_bytes());
    k
}

/// Splits a `time ‖ id` key.
pub(crate) fn split_time_key(key: &[u8]) -> Option<(Timestamp, DeliveryId)> {
    let (t, id) = key.split_at_checked(8)?;
    let t = u64::from_be_bytes(t.try_into().ok()?);
    let id = DeliveryId::parse(std::str::from_utf8(id).ok()?)?;
    Some((Timestamp::from_millis(t), id))
}

/// `destination ‖ 0x00`: the prefix of one destination's dead letters.
pub(crate) fn dead_prefix(destination: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(destination.len() + 1);
    k.extend_from_slice(destination.as_bytes());
    k.push(0);
    k
}

/// `destination ‖ 0x00 ‖ id`: a dead-letter key.
pub(crate) fn dead_key(destination: &str, id: &DeliveryId) -> Vec<u8> {
    let mut k = dead_prefix(destination);
    k.extend_from_slice(id.as_str().as_bytes());
    k
}

/// Splits a dead-letter key into destination and delivery id.
pub(crate) fn split_dead_key(key: &[u8]) -> Option<(String, DeliveryId)> {
    let nul = key.iter().position(|&b| b == 0)?;
    let dest = std::str::from_utf8(&key[..nul]).ok()?.to_owned();
    let id = DeliveryId::parse(std::str::from_utf8(&key[nul + 1..]).ok()?)?;
    Some((dest, id))
}

/// `source ‖ 0x00 ‖ key`: an idempotency key.
pub(crate) fn idempotency_key(source: &str, key: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(source.len() + 1 + key.len());
    k.extend_from_slice(source.as_bytes());
    k.push(0);
    k.extend_from_slice(key.as_bytes());
    k
}

/// `inserted_at ‖ event id`: an idempotency value.
pub(crate) fn idempotency_value(at: Timestamp, event_id: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(8 + event_id.len());
    v.extend_from_slice(&at.to_be_bytes());
    v.extend_from_slice(event_id.as_bytes());
    v
}

/// `delivery id ‖ seq`: an attempt key.
pub(crate) fn attempt_key(id: &DeliveryId, seq: u32) -> Vec<u8> {
    let mut k = Vec::with_capacity(id.as_str().len() + 4);
    k.extend_from_slice(id.as_str().as_bytes());
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// Bytes shown in errors naming a key: UTF-8 where it is, escaped where not.
pub(crate) fn display_key(key: &[u8]) -> String {
    key.escape_ascii().to_string()
}
