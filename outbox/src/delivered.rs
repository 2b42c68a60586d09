//! The compact record of a delivery delivered at its first attempt, before
//! it had a record of its own (schema 5).
//!
//! Why: most deliveries go pending → claimed → delivered once. Their JSON
//! record plus a `delivered` index entry, written in a transaction that
//! first read the event to derive the record, made recording outcomes the
//! largest part of the queue's cost in a drain. This record is one key in
//! `deliveries` with everything a reader needs, written without a
//! transaction and without a read: it is the only write the outcome makes.
//! It has no `delivered` index entry; `purge_delivered` finds these
//! records by walking `deliveries` created before its cutoff (ids sort by
//! creation time, and a delivery is delivered after it was created).
//!
//! Encoding: the tag byte [`TAG`] (never `{`, which starts every JSON
//! record), the event id (`u128` BE), `created_at` and `delivered_at`
//! (`u64` BE ms), then the destination and the receipt (`u32` BE length
//! and the bytes each). A receipt with the channel's id for the message
//! is tagged [`TAG_WITH_ID`] instead and ends with that id (length and
//! bytes); records written before ids were kept have the first tag.

use crate::error::OutboxError;
use crate::id::EventId;
use crate::keys::{self, display_key};
use crate::record::{DeliveryRecord, RECORD_VERSION, Reader, StoredState, put};

/// The first byte of a compact delivered record.
pub(crate) const TAG: u8 = 0xD5;

/// The first byte of a compact delivered record that ends with the
/// channel's id for the message.
pub(crate) const TAG_WITH_ID: u8 = 0xD6;

/// Is `byte` the first byte of a compact delivered record?
pub(crate) fn is_tag(byte: u8) -> bool {
    byte == TAG || byte == TAG_WITH_ID
}

/// Bytes before the destination: tag, event id, two times.
const HEAD: usize = 1 + 16 + 8 + 8;

/// A delivery delivered at its first attempt, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FirstDelivered<'a> {
    pub event: u128,
    pub destination: &'a str,
    pub created_at: u64,
    pub delivered_at: u64,
    pub detail: &'a str,
    pub remote_id: Option<&'a str>,
}

impl<'a> FirstDelivered<'a> {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let id_len = self.remote_id.map_or(0, |id| 4 + id.len());
        let mut out =
            Vec::with_capacity(HEAD + 8 + self.destination.len() + self.detail.len() + id_len);
        out.push(if self.remote_id.is_some() {
            TAG_WITH_ID
        } else {
            TAG
        });
        out.extend_from_slice(&self.event.to_be_bytes());
        out.extend_from_slice(&self.created_at.to_be_bytes());
        out.extend_from_slice(&self.delivered_at.to_be_bytes());
        put(&mut out, self.destination.as_bytes());
        put(&mut out, self.detail.as_bytes());
        if let Some(id) = self.remote_id {
            put(&mut out, id.as_bytes());
        }
        out
    }

    /// Decodes [`FirstDelivered::encode`]'s output; `key` names the
    /// record in the error if it is malformed.
    pub(crate) fn decode(key: &[u8], bytes: &'a [u8]) -> Result<Self, OutboxError> {
        let bad = || OutboxError::Corrupt {
            tree: keys::DELIVERIES,
            key: display_key(key),
            reason: "truncated or malformed delivered record".into(),
        };
        read(bytes).ok_or_else(bad)
    }

    /// The full record this stands for: one counted attempt, no attempt
    /// log (the delivering attempt lives in the state), no fallback.
    pub(crate) fn record(&self) -> DeliveryRecord {
        DeliveryRecord {
            v: RECORD_VERSION,
            event_id: EventId::from_raw(self.event).as_str().to_owned(),
            destination: self.destination.to_owned(),
            created_at: self.created_at,
            attempts: 1,
            log_len: 0,
            claims: 0,
            fallback_of: None,
            fallback_to: None,
            state: StoredState::Delivered {
                at: self.delivered_at,
                detail: self.detail.to_owned(),
                remote_id: self.remote_id.map(str::to_owned),
            },
        }
    }
}

/// The fields of an encoded record, if it is whole and nothing follows.
fn read(bytes: &[u8]) -> Option<FirstDelivered<'_>> {
    let mut r = Reader(bytes);
    let tag = r.u8()?;
    if !is_tag(tag) {
        return None;
    }
    let event = u128::from_be_bytes(r.take(16)?.try_into().ok()?);
    let created_at = r.u64()?;
    let delivered_at = r.u64()?;
    let destination = std::str::from_utf8(r.bytes()?).ok()?;
    let detail = std::str::from_utf8(r.bytes()?).ok()?;
    let remote_id = match tag {
        TAG_WITH_ID => Some(std::str::from_utf8(r.bytes()?).ok()?),
        _ => None,
    };
    r.0.is_empty().then_some(FirstDelivered {
        event,
        destination,
        created_at,
        delivered_at,
        detail,
        remote_id,
    })
}

/// When the delivery was delivered, if `bytes` is a compact delivered
/// record (the purge's look at each record, without decoding the rest).
pub(crate) fn delivered_at(bytes: &[u8]) -> Option<u64> {
    match bytes.first() {
        Some(&tag) if is_tag(tag) => bytes
            .get(25..33)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_be_bytes),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> FirstDelivered<'static> {
        FirstDelivered {
            event: 0x0123_4567_89ab_cdef_0011_2233_4455_6677,
            destination: "ops-hook",
            created_at: 1_700_000_000_000,
            delivered_at: 1_700_000_000_250,
            detail: "HTTP 200",
            remote_id: None,
        }
    }

    #[test]
    fn round_trips_and_reads_as_a_delivered_record() {
        let bytes = sample().encode();
        assert_ne!(bytes[0], b'{', "never mistaken for JSON");
        let back = FirstDelivered::decode(b"k", &bytes).expect("decode");
        assert_eq!(back, sample());
        assert_eq!(delivered_at(&bytes), Some(1_700_000_000_250));
        let rec = back.record();
        assert_eq!(rec.destination, "ops-hook");
        assert_eq!(rec.created_at, 1_700_000_000_000);
        assert_eq!(rec.attempts, 1);
        assert!(
            matches!(rec.state, StoredState::Delivered { at: 1_700_000_000_250, ref detail, remote_id: None } if detail == "HTTP 200")
        );
        assert_eq!(
            EventId::parse(&rec.event_id).map(|e| e.raw()),
            Some(sample().event)
        );
    }

    #[test]
    fn the_channels_id_is_kept_under_its_own_tag() {
        let with_id = FirstDelivered {
            remote_id: Some("om_1234"),
            ..sample()
        };
        let bytes = with_id.encode();
        assert_eq!(bytes[0], TAG_WITH_ID);
        assert_eq!(
            FirstDelivered::decode(b"k", &bytes).ok(),
            Some(with_id.clone())
        );
        assert_eq!(delivered_at(&bytes), Some(1_700_000_000_250));
        assert!(matches!(
            with_id.record().state,
            StoredState::Delivered { remote_id: Some(ref id), .. } if id == "om_1234"
        ));
    }

    #[test]
    fn every_truncation_and_trailing_byte_is_a_typed_error() {
        let with_id = FirstDelivered {
            remote_id: Some("id"),
            ..sample()
        };
        for bytes in [sample().encode(), with_id.encode()] {
            for n in 0..bytes.len() {
                let err = FirstDelivered::decode(b"dlv_x", &bytes[..n]).expect_err("truncated");
                assert!(err.to_string().contains("dlv_x"), "{err}");
            }
        }
        let mut long = sample().encode();
        long.push(0);
        assert!(FirstDelivered::decode(b"k", &long).is_err());
        assert_eq!(
            delivered_at(b"{\"v\":1}"),
            None,
            "JSON records are not these"
        );
    }
}
