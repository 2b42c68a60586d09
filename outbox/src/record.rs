//! Stored records: the versioned serde structs written to sled. They are
//! private to the crate and separate from the public types in `types` and
//! `state`, so changing the public API never silently changes the disk
//! format. Encoding: JSON (`serde_json`), each record carrying `"v"`; blobs
//! (event bodies, delivery payloads) are never inside a record, they sit raw
//! in the `bodies` tree, so JSON never encodes bytes.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::OutboxError;
use crate::keys::display_key;
use crate::state::{Claimed, Dead, Delivered, DeliveryState, Pending, ScheduledRetry};
use crate::time::Timestamp;

/// The record format version written today.
pub(crate) const RECORD_VERSION: u32 = 1;

/// An event (`events` tree).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct EventRecord {
    pub v: u32,
    pub source: String,
    pub idempotency_key: Option<String>,
    pub received_at: u64,
    /// Every delivery of the event, fallbacks appended as they are made.
    pub deliveries: Vec<DeliveryRef>,
}

/// One delivery as listed on its event.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct DeliveryRef {
    pub destination: String,
    pub id: String,
}

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
    /// Claims ever made; the current claim's token.
    pub claims: u64,
    pub fallback_of: Option<String>,
    pub fallback_to: Option<String>,
    pub state: StoredState,
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
versioned!(EventRecord, DeliveryRecord, AttemptRecord);

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
            StoredState::Delivered { at, detail } => {
                Self::Delivered(Delivered { at: t(at), detail })
            }
            StoredState::Dead { at, error } => Self::Dead(Dead { at: t(at), error }),
        }
    }
}
