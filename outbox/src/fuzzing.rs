//! The record codecs, reachable from the fuzz targets (`fuzz/`) and nothing
//! else: the records themselves stay private (see `record`), so these
//! functions take and return plain mirrors of them. Not part of the API.

use crate::delivered::{self, FirstDelivered};
use crate::error::OutboxError;
use crate::record::{self, AttemptRecord, DeliveryRef, EventRecord};

/// An event record's fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventParts {
    /// The event's source.
    pub source: String,
    /// Its idempotency key.
    pub idempotency_key: Option<String>,
    /// When it was received (ms).
    pub received_at: u64,
    /// The stored body.
    pub body: Vec<u8>,
    /// Deliveries: destination, id, payload.
    pub deliveries: Vec<(String, String, Vec<u8>)>,
}

/// A compact delivered record's fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveredParts {
    /// The event id (raw).
    pub event: u128,
    /// The destination.
    pub destination: String,
    /// Created at (ms).
    pub created_at: u64,
    /// Delivered at (ms).
    pub delivered_at: u64,
    /// The receipt.
    pub detail: String,
    /// The channel's id for the message.
    pub remote_id: Option<String>,
}

/// A delivery listed in an encoded event record, read in place:
/// destination, id, payload.
pub type RefBytes = (Vec<u8>, Vec<u8>, Vec<u8>);

const KEY: &[u8] = b"fuzz";

/// Encodes an event record.
pub fn encode_event(parts: &EventParts) -> Vec<u8> {
    EventRecord {
        source: parts.source.clone(),
        idempotency_key: parts.idempotency_key.clone(),
        received_at: parts.received_at,
        body: parts.body.clone(),
        deliveries: parts
            .deliveries
            .iter()
            .map(|(destination, id, payload)| DeliveryRef {
                destination: destination.clone(),
                id: id.clone(),
                payload: payload.clone(),
            })
            .collect(),
    }
    .encode()
}

/// Decodes an event record.
pub fn decode_event(bytes: &[u8]) -> Result<EventParts, OutboxError> {
    let r = EventRecord::decode(KEY, bytes)?;
    Ok(EventParts {
        source: r.source,
        idempotency_key: r.idempotency_key,
        received_at: r.received_at,
        body: r.body,
        deliveries: r
            .deliveries
            .into_iter()
            .map(|d| (d.destination, d.id, d.payload))
            .collect(),
    })
}

/// The in-place reader of every delivery an event record lists.
pub fn event_refs(bytes: &[u8]) -> Result<(u64, Vec<RefBytes>), OutboxError> {
    let (at, refs) = record::refs_in(KEY, bytes)?;
    Ok((
        at,
        refs.into_iter()
            .map(|r| (r.destination.to_vec(), r.id.to_vec(), r.payload.to_vec()))
            .collect(),
    ))
}

/// The in-place reader of one delivery's payload.
pub fn event_payload<'a>(bytes: &'a [u8], id: &str) -> Result<Option<&'a [u8]>, OutboxError> {
    record::payload_in(KEY, bytes, id)
}

/// The in-place reader of the idempotency key (`source ‖ 0 ‖ key`).
pub fn event_idempotency(bytes: &[u8]) -> Result<Option<(Vec<u8>, u64)>, OutboxError> {
    record::idempotency_in(KEY, bytes)
}

/// Encodes a compact delivered record.
pub fn encode_delivered(parts: &DeliveredParts) -> Vec<u8> {
    FirstDelivered {
        event: parts.event,
        destination: &parts.destination,
        created_at: parts.created_at,
        delivered_at: parts.delivered_at,
        detail: &parts.detail,
        remote_id: parts.remote_id.as_deref(),
    }
    .encode()
}

/// Decodes a compact delivered record.
pub fn decode_delivered(bytes: &[u8]) -> Result<DeliveredParts, OutboxError> {
    let d = FirstDelivered::decode(KEY, bytes)?;
    Ok(DeliveredParts {
        event: d.event,
        destination: d.destination.to_owned(),
        created_at: d.created_at,
        delivered_at: d.delivered_at,
        detail: d.detail.to_owned(),
        remote_id: d.remote_id.map(str::to_owned),
    })
}

/// The purge's peek at a compact delivered record's time.
pub fn delivered_at(bytes: &[u8]) -> Option<u64> {
    delivered::delivered_at(bytes)
}

/// Decodes a `deliveries` value (JSON or compact) and encodes the record
/// it stands for again as JSON.
pub fn delivery_json(bytes: &[u8]) -> Result<Vec<u8>, OutboxError> {
    let r = record::decode_delivery(KEY, bytes)?;
    record::encode(crate::keys::DELIVERIES, KEY, &r)
}

/// Decodes an `attempts` value and encodes it again.
pub fn attempt_json(bytes: &[u8]) -> Result<Vec<u8>, OutboxError> {
    let r: AttemptRecord = record::decode(crate::keys::ATTEMPTS, KEY, bytes)?;
    record::encode(crate::keys::ATTEMPTS, KEY, &r)
}
