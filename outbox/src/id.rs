//! Time-ordered unique ids (`evt_…`, `dlv_…`, `tmr_…`): a 48-bit millisecond
//! timestamp and an 80-bit random-then-incremented tail, written as 26
//! Crockford base32 characters (the ULID layout), so ids sort by creation
//! time both as strings and as sled keys.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::Mutex;

use crate::time::Timestamp;

const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const BODY_LEN: usize = 26;
const TAIL_BITS: u32 = 80;
const TAIL_MASK: u128 = (1 << TAIL_BITS) - 1;

macro_rules! id_type {
    ($name:ident, $prefix:literal, $what:literal) => {
        #[doc = concat!("The id of ", $what, ": `", $prefix, "` and 26 base32 characters.")]
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// The prefix every id of this kind starts with.
            pub const PREFIX: &'static str = $prefix;

            /// Parses an id, checking its prefix, length and alphabet.
            pub fn parse(s: &str) -> Option<Self> {
                let body = s.strip_prefix($prefix)?;
                (body.len() == BODY_LEN && body.bytes().all(|b| ALPHABET.contains(&b)))
                    .then(|| Self(s.to_owned()))
            }

            /// The id as text (also its key bytes).
            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub(crate) fn from_raw(raw: u128) -> Self {
                Self(format!("{}{}", $prefix, encode(raw)))
            }

            /// The 128-bit value the id's characters spell (ids are only
            /// made by `parse` and `from_raw`, so it is always well formed).
            pub(crate) fn raw(&self) -> u128 {
                decode(&self.0[$prefix.len()..]).unwrap_or(0)
            }

            /// When the id was made: the millisecond time its first 48
            /// bits hold. Callers outside the outbox read an id's age
            /// from it instead of decoding the characters themselves.
            pub fn created_at(&self) -> Timestamp {
                Timestamp::from_millis(u64::try_from(self.raw() >> TAIL_BITS).unwrap_or(u64::MAX))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(EventId, "evt_", "an event");
id_type!(DeliveryId, "dlv_", "a delivery");
id_type!(TimerId, "tmr_", "a timer");

/// The raw value of an id's 26 characters (prefix removed), if well formed.
fn decode(body: &str) -> Option<u128> {
    if body.len() != BODY_LEN {
        return None;
    }
    body.bytes().try_fold(0u128, |acc, b| {
        let digit = ALPHABET.iter().position(|&a| a == b)?;
        Some((acc << 5) | u128::try_from(digit).ok()?)
    })
}

/// The least raw id made at `at` or later: ids made before `at` are below
/// it (their time comes first).
pub(crate) fn first_raw_at(at: Timestamp) -> u128 {
    u128::from(at.as_millis()) << TAIL_BITS
}

/// The raw value of a stored id key (`evt_…` or `dlv_…`), if it is one.
pub(crate) fn raw_of_key(key: &[u8]) -> Option<u128> {
    let s = std::str::from_utf8(key).ok()?;
    let body = s
        .strip_prefix(EventId::PREFIX)
        .or_else(|| s.strip_prefix(DeliveryId::PREFIX))?;
    decode(body)
}

fn encode(raw: u128) -> String {
    let mut out = [0u8; BODY_LEN];
    for (i, slot) in out.iter_mut().enumerate() {
        let shift = 5 * (BODY_LEN - 1 - i);
        // 26 * 5 = 130 bits: the top character carries the top 3 bits.
        let idx = usize::try_from((raw >> shift) & 31).unwrap_or(0);
        *slot = ALPHABET[idx];
    }
    out.iter().map(|&b| char::from(b)).collect()
}

/// Hands out ids that increase: within one process, and past every id
/// already stored when seeded with [`IdGen::after`], so a new id can never
/// name an existing record and writers need not look before they insert.
#[derive(Debug)]
pub(crate) struct IdGen {
    last: Mutex<(u64, u128)>,
}

impl IdGen {
    #[cfg(test)]
    pub(crate) fn new() -> Self {
        Self::after(0)
    }

    /// A generator whose ids are all greater than `raw` (the largest id
    /// stored).
    pub(crate) fn after(raw: u128) -> Self {
        let ms = u64::try_from(raw >> TAIL_BITS).unwrap_or(u64::MAX);
        Self {
            last: Mutex::new((ms, raw & TAIL_MASK)),
        }
    }

    /// A value no later id falls below: one past the last id handed out
    /// (or past the seed).
    pub(crate) fn floor(&self) -> u128 {
        let last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        ((u128::from(last.0) << TAIL_BITS) | last.1).saturating_add(1)
    }

    /// Makes every later id at least `raw` (a stored mark no new id may
    /// fall below, whatever the clock says).
    pub(crate) fn raise_to(&self, raw: u128) {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let current = (u128::from(last.0) << TAIL_BITS) | last.1;
        if raw > current.saturating_add(1) {
            let below = raw - 1;
            *last = (
                u64::try_from(below >> TAIL_BITS).unwrap_or(u64::MAX),
                below & TAIL_MASK,
            );
        }
    }

    /// The next raw id at `now`. A clock that goes backwards keeps the last
    /// timestamp, so ids never decrease.
    pub(crate) fn next(&self, now: Timestamp) -> u128 {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let ms = now.as_millis().min((1 << 48) - 1);
        let (ms, tail) = if ms > last.0 {
            (ms, random_tail())
        } else {
            let tail = (last.1 + 1) & TAIL_MASK;
            if tail == 0 {
                // Tail exhausted within one millisecond: borrow the next one.
                (last.0 + 1, random_tail())
            } else {
                (last.0, tail)
            }
        };
        *last = (ms, tail);
        (u128::from(ms) << TAIL_BITS) | tail
    }
}

/// 79 random bits (the top tail bit stays clear, leaving room to count up).
fn random_tail() -> u128 {
    let a = RandomState::new().build_hasher().finish();
    let mut h = RandomState::new().build_hasher();
    h.write_u64(a);
    let b = h.finish();
    ((u128::from(a) << 64) | u128::from(b)) & (TAIL_MASK >> 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_and_increase() {
        let g = IdGen::new();
        let t = Timestamp::from_millis(1_700_000_000_000);
        let a = EventId::from_raw(g.next(t));
        let b = EventId::from_raw(g.next(t));
        let c = EventId::from_raw(g.next(Timestamp::from_millis(5)));
        assert!(a < b && b < c, "{a} {b} {c}");
        assert_eq!(EventId::parse(a.as_str()), Some(a.clone()));
        assert_eq!(DeliveryId::parse(a.as_str()), None);
        assert_eq!(EventId::parse("evt_short"), None);
    }

    #[test]
    fn an_id_tells_when_it_was_made() {
        let g = IdGen::new();
        for ms in [0, 1, 1_700_000_000_000, (1 << 48) - 1] {
            let t = Timestamp::from_millis(ms);
            assert_eq!(DeliveryId::from_raw(g.next(t)).created_at(), t);
            assert_eq!(EventId::from_raw(g.next(t)).created_at(), t);
        }
        // Parsed ids: the first ten characters spell the time, the other
        // sixteen the tail, which does not change it.
        let early = DeliveryId::parse("dlv_00000000010000000000000000").expect("valid");
        assert_eq!(early.created_at(), Timestamp::from_millis(1));
        let late = DeliveryId::parse("dlv_0000000001ZZZZZZZZZZZZZZZZ").expect("valid");
        assert_eq!(late.created_at(), Timestamp::from_millis(1));
        let max = DeliveryId::parse("dlv_7ZZZZZZZZZ0000000000000000").expect("valid");
        assert_eq!(max.created_at(), Timestamp::from_millis((1 << 48) - 1));
    }

    #[test]
    fn a_seeded_generator_continues_past_the_largest_stored_id() {
        let t = Timestamp::from_millis(1_700_000_000_000);
        let stored = IdGen::new().next(t);
        let key = DeliveryId::from_raw(stored);
        assert_eq!(raw_of_key(key.as_str().as_bytes()), Some(stored));
        assert_eq!(key.raw(), stored);
        // Even with the clock earlier than the stored id, the next one is
        // larger.
        let g = IdGen::after(stored);
        let next = g.next(Timestamp::from_millis(5));
        assert!(next > stored);
        assert!(EventId::from_raw(next).as_str()[4..] > key.as_str()[4..]);
        // A tail at its maximum moves on to the next millisecond.
        let full = (stored & !TAIL_MASK) | TAIL_MASK;
        assert!(IdGen::after(full).next(t) > full);
        assert_eq!(raw_of_key(b"evt_0123"), None);
        assert_eq!(raw_of_key(b"xyz_00000000000000000000000000"), None);
    }
}
