//! The event record (`events` tree): the event, its body, and every
//! delivery it lists with its payload, in one compact binary value (see
//! `record` for why binary), plus in-place readers that pick one part out
//! of the encoded bytes without decoding the rest (a claim reads one
//! payload; the open reads idempotency keys and delivery lists).
//!
//! Invariants: one record per event holds every payload (an enqueue writes
//! one key); a delivery listed here without a record of its own is
//! untouched (`untouched_in` derives its record); every truncation or
//! unknown version is a typed `Corrupt` error naming the key.

use super::DeliveryRecord;
use super::binary::{Reader, put, put_len};
use crate::error::OutboxError;
use crate::keys::display_key;

/// The binary event record format version written today (schema 2).
pub(crate) const EVENT_RECORD_VERSION: u8 = 2;

/// An event (`events` tree), with its body and its deliveries' payloads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct EventRecord {
    pub source: String,
    pub idempotency_key: Option<String>,
    pub received_at: u64,
    pub body: Vec<u8>,
    /// Every delivery of the event, fallbacks appended as they are made.
    pub deliveries: Vec<DeliveryRef>,
}

/// One delivery as listed on its event, with its payload (kept until the
/// event is purged).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DeliveryRef {
    pub destination: String,
    pub id: String,
    pub payload: Vec<u8>,
}

impl EventRecord {
    /// The payload of delivery `id`, if the event lists it.
    pub(crate) fn payload_of(&self, id: &str) -> Option<&[u8]> {
        self.deliveries
            .iter()
            .find(|r| r.id == id)
            .map(|r| r.payload.as_slice())
    }

    /// Binary encoding: version `u8`, `received_at` `u64` BE, source,
    /// idempotency key (`u8` 0/1 then the string), body, delivery count
    /// `u32` BE, then per delivery destination, id, payload; strings and
    /// byte strings are a `u32` BE length and the bytes.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let strings: usize = self
            .deliveries
            .iter()
            .map(|d| 12 + d.destination.len() + d.id.len() + d.payload.len())
            .sum();
        let mut out = Vec::with_capacity(
            32 + self.source.len()
                + self.idempotency_key.as_ref().map_or(0, String::len)
                + self.body.len()
                + strings,
        );
        out.push(EVENT_RECORD_VERSION);
        out.extend_from_slice(&self.received_at.to_be_bytes());
        put(&mut out, self.source.as_bytes());
        match &self.idempotency_key {
            None => out.push(0),
            Some(k) => {
                out.push(1);
                put(&mut out, k.as_bytes());
            }
        }
        put(&mut out, &self.body);
        put_len(&mut out, self.deliveries.len());
        for d in &self.deliveries {
            put(&mut out, d.destination.as_bytes());
            put(&mut out, d.id.as_bytes());
            put(&mut out, &d.payload);
        }
        out
    }

    /// Decodes [`EventRecord::encode`]'s output, naming the key if it is
    /// corrupt or of another version.
    pub(crate) fn decode(key: &[u8], bytes: &[u8]) -> Result<Self, OutboxError> {
        let mut r = Reader(bytes);
        let head = read_head(key, &mut r)?;
        let truncated = || corrupt_event(key, TRUNCATED);
        let string = |b: &[u8]| std::str::from_utf8(b).map(str::to_owned).ok();
        let received_at = head.received_at;
        let source = string(head.source).ok_or_else(truncated)?;
        let idempotency_key = match head.idempotency_key {
            None => None,
            Some(k) => Some(string(k).ok_or_else(truncated)?),
        };
        let body = r.bytes().ok_or_else(truncated)?.to_vec();
        let n = r.u32().ok_or_else(truncated)?;
        let mut deliveries = Vec::new();
        for _ in 0..n {
            deliveries.push(DeliveryRef {
                destination: r.string().ok_or_else(truncated)?,
                id: r.string().ok_or_else(truncated)?,
                payload: r.bytes().ok_or_else(truncated)?.to_vec(),
            });
        }
        if !r.0.is_empty() {
            return Err(corrupt_event(key, "trailing bytes after the event record"));
        }
        Ok(Self {
            source,
            idempotency_key,
            received_at,
            body,
            deliveries,
        })
    }
}

/// One delivery as listed in an encoded event record, read in place.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RefIn<'a> {
    pub destination: &'a [u8],
    pub id: &'a [u8],
    pub payload: &'a [u8],
}

/// The head of an encoded event record, read in place.
struct Head<'a> {
    received_at: u64,
    source: &'a [u8],
    idempotency_key: Option<&'a [u8]>,
}

fn corrupt_event(key: &[u8], reason: &str) -> OutboxError {
    OutboxError::Corrupt {
        tree: crate::keys::EVENTS,
        key: display_key(key),
        reason: reason.to_owned(),
    }
}

const TRUNCATED: &str = "truncated or malformed event record";

/// Reads the head of an encoded event record (version, time, source,
/// idempotency key), leaving `r` at the body.
fn read_head<'a>(key: &[u8], r: &mut Reader<'a>) -> Result<Head<'a>, OutboxError> {
    match r.u8() {
        Some(EVENT_RECORD_VERSION) => {}
        Some(v) => {
            return Err(corrupt_event(
                key,
                &format!("event record version {v} (expected {EVENT_RECORD_VERSION})"),
            ));
        }
        None => return Err(corrupt_event(key, "empty event record")),
    }
    let truncated = || corrupt_event(key, TRUNCATED);
    let received_at = r.u64().ok_or_else(truncated)?;
    let source = r.bytes().ok_or_else(truncated)?;
    let idempotency_key = match r.u8().ok_or_else(truncated)? {
        0 => None,
        1 => Some(r.bytes().ok_or_else(truncated)?),
        _ => return Err(truncated()),
    };
    Ok(Head {
        received_at,
        source,
        idempotency_key,
    })
}

/// Walks the deliveries listed in an encoded event record without
/// decoding the rest, until `visit` returns `true`; returns the event's
/// `received_at`.
fn walk_refs<'a>(
    key: &[u8],
    bytes: &'a [u8],
    mut visit: impl FnMut(RefIn<'a>) -> bool,
) -> Result<u64, OutboxError> {
    let mut r = Reader(bytes);
    let received_at = read_head(key, &mut r)?.received_at;
    let truncated = || corrupt_event(key, TRUNCATED);
    r.bytes().ok_or_else(truncated)?; // body
    let n = r.u32().ok_or_else(truncated)?;
    for _ in 0..n {
        let one = RefIn {
            destination: r.bytes().ok_or_else(truncated)?,
            id: r.bytes().ok_or_else(truncated)?,
            payload: r.bytes().ok_or_else(truncated)?,
        };
        if visit(one) {
            break;
        }
    }
    Ok(received_at)
}

/// The payload of delivery `id` in an encoded event record, read in place:
/// a claim needs one payload, not the body and every other one decoded.
/// `Ok(None)` when the event does not list `id`.
pub(crate) fn payload_in<'a>(
    key: &[u8],
    bytes: &'a [u8],
    id: &str,
) -> Result<Option<&'a [u8]>, OutboxError> {
    Ok(ref_in(key, bytes, id)?.map(|(_, r)| r.payload))
}

/// The `received_at` of an encoded event record and its listing of
/// delivery `id`, read in place. `Ok(None)` when the event does not list
/// `id`.
pub(crate) fn ref_in<'a>(
    key: &[u8],
    bytes: &'a [u8],
    id: &str,
) -> Result<Option<(u64, RefIn<'a>)>, OutboxError> {
    let mut found = None;
    let at = walk_refs(key, bytes, |r| {
        let hit = r.id == id.as_bytes();
        if hit {
            found = Some(r);
        }
        hit
    })?;
    Ok(found.map(|r| (at, r)))
}

/// The record of untouched delivery `id` (see `untouched`), derived from
/// its event `event_id`'s encoded record; corrupt if the event does not
/// list it.
pub(crate) fn untouched_in(
    event_id: &str,
    bytes: &[u8],
    id: &str,
) -> Result<DeliveryRecord, OutboxError> {
    let key = event_id.as_bytes();
    match ref_in(key, bytes, id)? {
        Some((at, r)) => Ok(DeliveryRecord::untouched(event_id, r.destination, at)),
        None => Err(corrupt_event(key, "an untouched delivery is not listed")),
    }
}

/// The `received_at` of an encoded event record and every delivery it
/// lists, read in place (the open's search for untouched deliveries).
pub(crate) fn refs_in<'a>(
    key: &[u8],
    bytes: &'a [u8],
) -> Result<(u64, Vec<RefIn<'a>>), OutboxError> {
    let mut all = Vec::new();
    let at = walk_refs(key, bytes, |r| {
        all.push(r);
        false
    })?;
    Ok((at, all))
}

/// The idempotency key (`source ‖ 0x00 ‖ key`, as `keys::idempotency_key`
/// makes it) and `received_at` of an encoded event record, read in place:
/// the open that rebuilds the idempotency index needs nothing else.
/// `Ok(None)` for an event that carried no key.
pub(crate) fn idempotency_in(
    key: &[u8],
    bytes: &[u8],
) -> Result<Option<(Vec<u8>, u64)>, OutboxError> {
    let head = read_head(key, &mut Reader(bytes))?;
    let Some(ik) = head.idempotency_key else {
        return Ok(None);
    };
    let mut k = Vec::with_capacity(head.source.len() + 1 + ik.len());
    k.extend_from_slice(head.source);
    k.push(0);
    k.extend_from_slice(ik);
    Ok(Some((k, head.received_at)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> EventRecord {
        EventRecord {
            source: "app".into(),
            idempotency_key: Some("k".into()),
            received_at: 1_700_000_000_000,
            body: vec![0, 1, 2, 255],
            deliveries: vec![DeliveryRef {
                destination: "hook".into(),
                id: "dlv_01HF00000000000000000000AB".into(),
                payload: b"payload".to_vec(),
            }],
        }
    }

    #[test]
    fn payload_in_finds_each_delivery_without_decoding() {
        for key in [Some("k".to_owned()), None] {
            let mut e = EventRecord {
                idempotency_key: key,
                ..sample()
            };
            e.deliveries.push(DeliveryRef {
                destination: "mail".into(),
                id: "dlv_2".into(),
                payload: b"second".to_vec(),
            });
            let bytes = e.encode();
            for d in &e.deliveries {
                assert_eq!(
                    payload_in(b"k", &bytes, &d.id).expect("read"),
                    Some(d.payload.as_slice())
                );
            }
            assert_eq!(payload_in(b"k", &bytes, "dlv_other").expect("read"), None);
            let cut = &bytes[..bytes.len() - 3];
            assert!(payload_in(b"k", cut, "dlv_2").is_err(), "truncated");
        }
    }

    #[test]
    fn idempotency_in_reads_the_key_as_the_index_spells_it() {
        let bytes = sample().encode();
        assert_eq!(
            idempotency_in(b"k", &bytes).expect("read"),
            Some((crate::keys::idempotency_key("app", "k"), 1_700_000_000_000))
        );
        let none = EventRecord {
            idempotency_key: None,
            ..sample()
        };
        assert_eq!(idempotency_in(b"k", &none.encode()).expect("read"), None);
        assert!(idempotency_in(b"k", &bytes[..12]).is_err(), "truncated");
    }

    #[test]
    fn event_record_round_trips() {
        let e = sample();
        assert_eq!(EventRecord::decode(b"k", &e.encode()).expect("decode"), e);
        let none = EventRecord {
            idempotency_key: None,
            deliveries: Vec::new(),
            ..sample()
        };
        assert_eq!(
            EventRecord::decode(b"k", &none.encode()).expect("decode"),
            none
        );
    }

    #[test]
    fn every_truncation_is_a_typed_error() {
        let bytes = sample().encode();
        for n in 0..bytes.len() {
            assert!(
                EventRecord::decode(b"k", &bytes[..n]).is_err(),
                "prefix {n}"
            );
        }
        let mut long = bytes.clone();
        long.push(0);
        assert!(EventRecord::decode(b"k", &long).is_err());
        let mut v1 = bytes;
        v1[0] = 1;
        let err = EventRecord::decode(b"evt_x", &v1).expect_err("old version");
        assert!(err.to_string().contains("evt_x"), "{err}");
    }
}
