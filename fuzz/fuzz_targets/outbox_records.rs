//! The outbox's stored-record codecs (`outbox/src/record/`,
//! `outbox/src/delivered.rs`), through `carillon_outbox::fuzzing`.
//!
//! Invariants, on arbitrary bytes: no decoder panics; a record that decodes
//! encodes back to the same bytes; the in-place readers (what a claim and
//! the open use) agree with the full decoder; JSON records re-encode to a
//! fixed point. On generated records (`arbitrary`): decode(encode(x)) == x,
//! and the in-place readers find every part.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use carillon_outbox::fuzzing::{
    DeliveredParts, EventParts, attempt_json, decode_delivered, decode_event, delivered_at,
    delivery_json, encode_delivered, encode_event, event_idempotency, event_payload, event_refs,
};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Generated {
    source: String,
    idempotency_key: Option<String>,
    received_at: u64,
    body: Vec<u8>,
    deliveries: Vec<(String, String, Vec<u8>)>,
    event: u128,
    destination: String,
    created_at: u64,
    delivered_at: u64,
    detail: String,
    remote_id: Option<String>,
}

fn check_event_bytes(bytes: &[u8]) {
    let refs = event_refs(bytes);
    let idem = event_idempotency(bytes);
    let Ok(event) = decode_event(bytes) else {
        return;
    };
    assert_eq!(
        encode_event(&event),
        bytes,
        "an event record re-encodes differently"
    );
    let (at, refs) = refs.expect("in-place refs fail on a record that decodes");
    assert_eq!(at, event.received_at);
    let expected: Vec<_> = event
        .deliveries
        .iter()
        .map(|(d, i, p)| (d.clone().into_bytes(), i.clone().into_bytes(), p.clone()))
        .collect();
    assert_eq!(refs, expected, "in-place refs differ from the decoded ones");
    let idem = idem.expect("in-place idempotency fails on a record that decodes");
    match &event.idempotency_key {
        None => assert_eq!(idem, None),
        Some(key) => {
            let mut k = event.source.clone().into_bytes();
            k.push(0);
            k.extend_from_slice(key.as_bytes());
            assert_eq!(idem, Some((k, event.received_at)));
        }
    }
    for (_, id, payload) in &event.deliveries {
        let found = event_payload(bytes, id).expect("in-place payload fails");
        // The first delivery with this id wins, as in `payload_of`.
        let first = event
            .deliveries
            .iter()
            .find(|(_, i, _)| i == id)
            .map(|d| &d.2);
        assert_eq!(found, first.map(Vec::as_slice));
        let _ = payload;
    }
}

fuzz_target!(|data: &[u8]| {
    // Arbitrary bytes into every decoder.
    check_event_bytes(data);
    if let Ok(d) = decode_delivered(data) {
        assert_eq!(
            encode_delivered(&d),
            data,
            "a delivered record re-encodes differently"
        );
        assert_eq!(delivered_at(data), Some(d.delivered_at));
    }
    if let Ok(json) = delivery_json(data) {
        assert_eq!(
            delivery_json(&json).ok(),
            Some(json),
            "delivery JSON is not a fixed point"
        );
    }
    if let Ok(json) = attempt_json(data) {
        assert_eq!(
            attempt_json(&json).ok(),
            Some(json),
            "attempt JSON is not a fixed point"
        );
    }

    // Generated records through encode and decode.
    let Ok(g) = Generated::arbitrary(&mut Unstructured::new(data)) else {
        return;
    };
    let event = EventParts {
        source: g.source,
        idempotency_key: g.idempotency_key,
        received_at: g.received_at,
        body: g.body,
        deliveries: g.deliveries,
    };
    let bytes = encode_event(&event);
    assert_eq!(
        decode_event(&bytes).ok(),
        Some(event),
        "event record round trip"
    );
    check_event_bytes(&bytes);
    let delivered = DeliveredParts {
        event: g.event,
        destination: g.destination,
        created_at: g.created_at,
        delivered_at: g.delivered_at,
        detail: g.detail,
        remote_id: g.remote_id,
    };
    let bytes = encode_delivered(&delivered);
    assert_eq!(delivered_at(&bytes), Some(delivered.delivered_at));
    let json = delivery_json(&bytes).expect("a compact record reads as a delivery");
    assert_eq!(
        delivery_json(&json).ok(),
        Some(json.clone()),
        "compact → JSON → JSON"
    );
    assert_eq!(
        decode_delivered(&bytes).ok(),
        Some(delivered),
        "delivered record round trip"
    );
});
