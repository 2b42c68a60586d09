//! Stored records: the versioned structs written to sled. They are private
//! to the crate and separate from the public types in `types` and `state`,
//! so changing the public API never silently changes the disk format.
//!
//! Encodings:
//! - `EventRecord` (`event`): a compact binary format (version byte first,
//!   then length-prefixed fields) because it carries the event body and every
//!   delivery payload inline: one record per event keeps `enqueue` to one
//!   write for all its blobs (sled 0.34 costs about the same per insert
//!   whatever the size), and JSON would spell bytes as number arrays.
//! - `DeliveryRecord`, `AttemptRecord` (here): JSON (`serde_json`) carrying
//!   `"v"`; they hold no blobs.
//! - `binary`: the length-prefixed writer and reader the binary records
//!   (the event record, `delivered`'s compact record) share.
//!
//! Invariant: a record read back is of the version written today or
//! refused as corrupt (naming its key); `migrate` upgrades older formats
//! at open.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::OutboxError;
use crate::keys::display_key;
use crate::state::{Claimed, Dead, Delivered, DeliveryState, Pending, ScheduledRetry};
use crate::time::Timestamp;

mod binary;
mod event;

pub(crate) use binary::{Reader, put};
pub(crate) use event::{
    DeliveryRef, EventRecord, idempotency_in, payload_in, refs_in, untouched_in,
};

/// The JSON record format version written today.
pub(crate) const RECORD_VERSION: u32 = 1;

/// A delivery (`deliveries` tree).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct DeliveryRecord {
    pub v: u32,
    pub event_id: String,
    pub destination: String,
    pub created_at: u64,
    /// Attempts that counted (not rate-limited retries).
    pub attempts: u32,
    /// Entries in the `attempts` tree (every completion).
    pub log_len: u32,
    /// The claim token of releases that stored leases; no longer updated
    /// (leases live in memory), kept so the record format is unchanged.
    pub claims: u64,
    pub fallback_of: Option<String>,
    pub fallback_to: Option<String>,
    pub state: StoredState,
}

impl DeliveryRecord {
    /// The record of a delivery that has none stored yet (see
    /// `untouched`): everything follows from its event, which lists it.
    pub(crate) fn untouched(event_id: &str, destination: &[u8], received_at: u64) -> Self {
        Self {
            v: RECORD_VERSION,
            event_id: event_id.to_owned(),
            destination: String::from_utf8_lossy(destination).into_owned(),
            created_at: received_at,
            attempts: 0,
            log_len: 0,
            claims: 0,
            fallback_of: None,
            fallback_to: None,
            state: StoredState::Pending { due: received_at },
        }
    }
}

/// A delivery's state as stored.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub(crate) enum StoredState {
    Pending {
        due: u64,
    },
    Claimed {
        owner: String,
        lease_until: u64,
        token: u64,
    },
    Scheduled {
        due: u64,
        last_error: String,
    },
    Delivered {
        at: u64,
        detail: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        remote_id: Option<String>,
    },
    Dead {
        at: u64,
        error: String,
    },
}

/// One completion (`attempts` tree).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct AttemptRecord {
    pub v: u32,
    pub at: u64,
    pub counted: bool,
    pub outcome: StoredOutcome,
}

/// An attempt's outcome as stored.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub(crate) enum StoredOutcome {
    Delivered {
        detail: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        remote_id: Option<String>,
    },
    Retry {
        error: String,
        next_due: u64,
    },
    Dead {
        error: String,
        fallback_to: Option<String>,
    },
}

/// Records that carry a format version.
pub(crate) trait Versioned {
    fn version(&self) -> u32;
}

macro_rules! versioned {
    ($($t:ty),*) => {$(
        impl Versioned for $t {
            fn version(&self) -> u32 {
                self.v
            }
        }
    )*};
}
versioned!(DeliveryRecord, AttemptRecord);

/// Encodes a record. Serializing these plain structs cannot fail; if it
/// ever did, the error is reported as corruption of the key being written.
pub(crate) fn encode<T: Serialize>(
    tree: &'static str,
    key: &[u8],
    rec: &T,
) -> Result<Vec<u8>, OutboxError> {
    serde_json::to_vec(rec).map_err(|e| OutboxError::Corrupt {
        tree,
        key: display_key(key),
        reason: format!("cannot encode: {e}"),
    })
}

/// Decodes a `deliveries` value: a JSON [`DeliveryRecord`] or the compact
/// record of a delivery delivered at its first attempt (`delivered`).
pub(crate) fn decode_delivery(key: &[u8], bytes: &[u8]) -> Result<DeliveryRecord, OutboxError> {
    if bytes.first().is_some_and(|b| crate::delivered::is_tag(*b)) {
        return crate::delivered::FirstDelivered::decode(key, bytes).map(|d| d.record());
    }
    decode(crate::keys::DELIVERIES, key, bytes)
}

/// Decodes a record, naming the key if it is corrupt or of an unknown
/// version.
pub(crate) fn decode<T: DeserializeOwned + Versioned>(
    tree: &'static str,
    key: &[u8],
    bytes: &[u8],
) -> Result<T, OutboxError> {
    let rec: T = serde_json::from_slice(bytes).map_err(|e| OutboxError::Corrupt {
        tree,
        key: display_key(key),
        reason: e.to_string(),
    })?;
    if rec.version() != RECORD_VERSION {
        return Err(OutboxError::Corrupt {
            tree,
            key: display_key(key),
            reason: format!(
                "record version {} (expected {RECORD_VERSION})",
                rec.version()
            ),
        });
    }
    Ok(rec)
}

impl From<&DeliveryState> for StoredState {
    fn from(s: &DeliveryState) -> Self {
        match s {
            DeliveryState::Pending(p) => Self::Pending {
                due: p.due.as_millis(),
            },
            DeliveryState::Claimed(c) => Self::Claimed {
                owner: c.owner.clone(),
                lease_until: c.lease_until.as_millis(),
                token: c.token,
            },
            DeliveryState::Scheduled(s) => Self::Scheduled {
                due: s.due.as_millis(),
                last_error: s.last_error.clone(),
            },
            DeliveryState::Delivered(d) => Self::Delivered {
                at: d.at.as_millis(),
                detail: d.detail.clone(),
                remote_id: d.remote_id.clone(),
            },
            DeliveryState::Dead(d) => Self::Dead {
                at: d.at.as_millis(),
                error: d.error.clone(),
            },
        }
    }
}

impl From<StoredState> for DeliveryState {
    fn from(s: StoredState) -> Self {
        let t = Timestamp::from_millis;
        match s {
            StoredState::Pending { due } => Self::Pending(Pending { due: t(due) }),
            StoredState::Claimed {
                owner,
                lease_until,
                token,
            } => Self::Claimed(Claimed {
                owner,
                lease_until: t(lease_until),
                token,
            }),
            StoredState::Scheduled { due, last_error } => Self::Scheduled(ScheduledRetry {
                due: t(due),
                last_error,
            }),
            StoredState::Delivered {
                at,
                detail,
                remote_id,
            } => Self::Delivered(Delivered {
                at: t(at),
                detail,
                remote_id,
            }),
            StoredState::Dead { at, error } => Self::Dead(Dead { at: t(at), error }),
        }
    }
}
