//! The stored forms: a timer record (`timers` tree) is a length-prefixed
//! JSON header (key, kind, source, times) followed by the caller's payload
//! as it is, so a payload is never re-encoded; a fired mark
//! (`timers_fired` tree) is the fired-at time (`u64` BE ms) then the
//! timer's id.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use super::Timer;
use crate::error::OutboxError;
use crate::id::TimerId;
use crate::keys;
use crate::time::Timestamp;

#[derive(Serialize, Deserialize)]
struct Header<'a> {
    v: u8,
    // `Cow`: a key holding quotes or backslashes is escaped in JSON and
    // cannot be borrowed as it is.
    #[serde(borrow)]
    key: Cow<'a, str>,
    #[serde(borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    source: Cow<'a, str>,
    armed_at: u64,
    deadline: u64,
}

fn corrupt(tree: &'static str, key: &[u8], reason: &str) -> OutboxError {
    OutboxError::Corrupt {
        tree,
        key: keys::display_key(key),
        reason: reason.to_owned(),
    }
}

/// A timer record's bytes.
pub(crate) fn encode(t: &Timer) -> Vec<u8> {
    let header = Header {
        v: 1,
        key: Cow::Borrowed(&t.key),
        kind: Cow::Borrowed(&t.kind),
        source: Cow::Borrowed(&t.source),
        armed_at: t.armed_at.as_millis(),
        deadline: t.deadline.as_millis(),
    };
    // Serializing plain strings and integers cannot fail.
    let json = serde_json::to_vec(&header).unwrap_or_default();
    let len = u32::try_from(json.len()).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(4 + json.len() + t.payload.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&json);
    out.extend_from_slice(&t.payload);
    out
}

/// Reads the record stored under `key` (a timer id).
pub(crate) fn decode(key: &[u8], bytes: &[u8]) -> Result<Timer, OutboxError> {
    let bad = |reason: &str| corrupt(keys::TIMERS, key, reason);
    let id = std::str::from_utf8(key)
        .ok()
        .and_then(TimerId::parse)
        .ok_or_else(|| bad("malformed timer id"))?;
    let (len, rest) = bytes
        .split_at_checked(4)
        .ok_or_else(|| bad("truncated record"))?;
    let len = u32::from_be_bytes(len.try_into().map_err(|_| bad("truncated record"))?);
    let (json, payload) = rest
        .split_at_checked(usize::try_from(len).unwrap_or(usize::MAX))
        .ok_or_else(|| bad("truncated record"))?;
    let h: Header<'_> = serde_json::from_slice(json).map_err(|e| bad(&e.to_string()))?;
    if h.v != 1 {
        return Err(bad("unknown record version"));
    }
    Ok(Timer {
        id,
        key: h.key.into_owned(),
        kind: h.kind.into_owned(),
        source: h.source.into_owned(),
        armed_at: Timestamp::from_millis(h.armed_at),
        deadline: Timestamp::from_millis(h.deadline),
        payload: payload.to_vec(),
    })
}

/// A fired mark's bytes.
pub(crate) fn encode_fired(at: Timestamp, id: &TimerId) -> Vec<u8> {
    let mut v = Vec::with_capacity(8 + id.as_str().len());
    v.extend_from_slice(&at.as_millis().to_be_bytes());
    v.extend_from_slice(id.as_str().as_bytes());
    v
}

/// Reads a fired mark.
pub(crate) fn decode_fired(key: &[u8], v: &[u8]) -> Result<(Timestamp, TimerId), OutboxError> {
    let bad = || corrupt(keys::TIMERS_FIRED, key, "malformed fired mark");
    let (t, id) = v.split_at_checked(8).ok_or_else(bad)?;
    let t = u64::from_be_bytes(t.try_into().map_err(|_| bad())?);
    let id = std::str::from_utf8(id)
        .ok()
        .and_then(TimerId::parse)
        .ok_or_else(bad)?;
    Ok((Timestamp::from_millis(t), id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_round_trips_with_its_payload_untouched() {
        let t = Timer {
            id: TimerId::from_raw(42 << 80),
            key: r#"task:["a\"b","c\\d"]"#.into(),
            kind: "task.timeout".into(),
            source: "a".into(),
            armed_at: Timestamp::from_millis(5),
            deadline: Timestamp::from_millis(9),
            payload: vec![0, 159, 146, 150],
        };
        let bytes = encode(&t);
        assert_eq!(decode(t.id.as_str().as_bytes(), &bytes).unwrap(), t);
        assert!(decode(t.id.as_str().as_bytes(), &bytes[..6]).is_err());
        let mark = encode_fired(Timestamp::from_millis(7), &t.id);
        assert_eq!(
            decode_fired(b"k", &mark).unwrap(),
            (Timestamp::from_millis(7), t.id.clone())
        );
    }
}
