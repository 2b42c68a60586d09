//! Schema versions and upgrades. The version lives in `meta/schema_version`
//! (`u32` big-endian). [`migrate`] runs at open: a fresh database gets the
//! current version, an older one is upgraded one version at a time, each
//! step in one transaction that also writes its version number (a crash
//! leaves the old or the new version, and the next open goes on from
//! there), a newer one is refused.
//!
//! Versions:
//! - **0** (pre-release): `events` held `{source, idempotency_key,
//!   received_at, body: [bytes], deliveries: [{destination, id}]}`,
//!   `deliveries` held `{event_id, destination, created_at, due, attempts,
//!   payload: [bytes]}` (pending only: v0 had no claims and deleted
//!   delivered records), `idempotency` values were the bare event id, and
//!   there was no `due` index, `bodies` tree or record version field.
//! - **1**: `events` held JSON `{v: 1, source, idempotency_key,
//!   received_at, deliveries: [{destination, id}]}`, and a `bodies` tree
//!   held the event body (key: event id) and each delivery payload (key:
//!   delivery id) raw.
//! - **2**: the event record is binary and carries the body and every
//!   payload; `bodies` is empty. A `due` tree (`u64` BE ms ‖ delivery id →
//!   empty) indexed pending and scheduled deliveries by due time, and an
//!   `idempotency` tree (source ‖ `0x00` ‖ key → `u64` BE ms ‖ event id)
//!   held accepted keys.
//! - **3**: both indexes are kept in memory and rebuilt at open from the
//!   delivery and event records, which hold everything they held; the
//!   migration drops the two trees. Every delivery has its record.
//! - **4**: a delivery gets its record when it first changes; until then
//!   its event describes it (`untouched`). `meta/untouched_from` bounds
//!   which events the open reads to find such deliveries; the migration
//!   sets it past the last event.
//! - **5** (current): the layout in `keys`. A delivery delivered at its
//!   first attempt, while untouched, gets a compact binary record in
//!   `deliveries` and no `delivered` index entry (`delivered`). Schema 4's
//!   records are all valid, so the migration only writes the version; it
//!   exists so that an older build refuses a database it could not read.

use serde::{Deserialize, Serialize};
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};

use crate::error::{OpenError, OutboxError};
use crate::id::DeliveryId;
use crate::keys;
use crate::record::{self, DeliveryRecord, DeliveryRef, EventRecord, RECORD_VERSION, StoredState};

/// A schema-1 event record (JSON).
#[derive(Serialize, Deserialize)]
struct V1Event {
    v: u32,
    source: String,
    idempotency_key: Option<String>,
    received_at: u64,
    deliveries: Vec<V0Ref>,
}
use crate::time::Timestamp;

/// The schema version this build writes.
pub const SCHEMA_VERSION: u32 = 5;

/// An upgrade that [`migrate`] performed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Migration {
    /// The version found.
    pub from: u32,
    /// The version written.
    pub to: u32,
}

#[derive(Deserialize)]
struct V0Event {
    source: String,
    idempotency_key: Option<String>,
    received_at: u64,
    body: Vec<u8>,
    deliveries: Vec<V0Ref>,
}

#[derive(Serialize, Deserialize)]
struct V0Ref {
    destination: String,
    id: String,
}

#[derive(Deserialize)]
struct V0Delivery {
    event_id: String,
    destination: String,
    created_at: u64,
    due: u64,
    attempts: u32,
    payload: Vec<u8>,
}

fn storage(e: impl Into<OutboxError>) -> OpenError {
    OpenError::Storage {
        path: String::from("(open database)"),
        source: e.into(),
    }
}

/// Brings `db` to [`SCHEMA_VERSION`]; `Ok(None)` if it already was.
pub fn migrate(db: &sled::Db) -> Result<Option<Migration>, OpenError> {
    let meta = db.open_tree(keys::META).map_err(storage)?;
    let found = match meta.get(keys::SCHEMA_VERSION).map_err(storage)? {
        None => {
            let events = db.open_tree(keys::EVENTS).map_err(storage)?;
            if !events.is_empty() {
                return Err(OpenError::BadSchemaVersion(
                    "no schema version on a database that holds events".into(),
                ));
            }
            meta.insert(keys::SCHEMA_VERSION, &SCHEMA_VERSION.to_be_bytes())
                .map_err(storage)?;
            return Ok(None);
        }
        Some(v) => {
            let bytes: [u8; 4] = v.as_ref().try_into().map_err(|_| {
                OpenError::BadSchemaVersion(format!("{} bytes, expected 4", v.len()))
            })?;
            u32::from_be_bytes(bytes)
        }
    };
    if found > SCHEMA_VERSION {
        return Err(OpenError::SchemaTooNew {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    if found == SCHEMA_VERSION {
        return Ok(None);
    }
    if found == 0 {
        v0_to_v1(db, &meta).map_err(storage)?;
    }
    if found <= 1 {
        v1_to_v2(db, &meta).map_err(storage)?;
    }
    if found <= 2 {
        v2_to_v3(db, &meta).map_err(storage)?;
    }
    if found <= 3 {
        v3_to_v4(db, &meta).map_err(storage)?;
    }
    meta.insert(keys::SCHEMA_VERSION, &5u32.to_be_bytes())
        .map_err(storage)?;
    db.flush().map_err(storage)?;
    Ok(Some(Migration {
        from: found,
        to: SCHEMA_VERSION,
    }))
}

/// Reads the v0 records, then rewrites everything in one transaction with
/// the new version number, so a crash leaves either v0 or v1.
fn v0_to_v1(db: &sled::Db, meta: &sled::Tree) -> Result<(), OutboxError> {
    let open = |n| db.open_tree(n);
    let (events, bodies, deliveries, due, idem) = (
        open(keys::EVENTS)?,
        open(keys::BODIES)?,
        open(keys::DELIVERIES)?,
        open(keys::DUE)?,
        open(keys::IDEMPOTENCY)?,
    );
    let mut ev0 = Vec::new();
    for kv in events.iter() {
        let (k, v) = kv?;
        let e: V0Event = serde_json::from_slice(&v).map_err(|e| OutboxError::Corrupt {
            tree: keys::EVENTS,
            key: keys::display_key(&k),
            reason: format!("v0 event: {e}"),
        })?;
        ev0.push((k, e));
    }
    let mut dl0 = Vec::new();
    for kv in deliveries.iter() {
        let (k, v) = kv?;
        let d: V0Delivery = serde_json::from_slice(&v).map_err(|e| OutboxError::Corrupt {
            tree: keys::DELIVERIES,
            key: keys::display_key(&k),
            reason: format!("v0 delivery: {e}"),
        })?;
        let id = std::str::from_utf8(&k)
            .ok()
            .and_then(DeliveryId::parse)
            .ok_or_else(|| OutboxError::Corrupt {
                tree: keys::DELIVERIES,
                key: keys::display_key(&k),
                reason: "v0 delivery id".into(),
            })?;
        dl0.push((id, d));
    }
    let mut id0 = Vec::new();
    for kv in idem.iter() {
        let (k, v) = kv?;
        id0.push((k, v));
    }
    let received: std::collections::HashMap<Vec<u8>, u64> = ev0
        .iter()
        .map(|(k, e)| (k.to_vec(), e.received_at))
        .collect();

    let r = (&events, &bodies, &deliveries, &due, &idem, meta).transaction(
        |(te, tb, td, tu, ti, tm)| {
            for (k, e) in &ev0 {
                let rec = V1Event {
                    v: RECORD_VERSION,
                    source: e.source.clone(),
                    idempotency_key: e.idempotency_key.clone(),
                    received_at: e.received_at,
                    deliveries: e
                        .deliveries
                        .iter()
                        .map(|r| V0Ref {
                            destination: r.destination.clone(),
                            id: r.id.clone(),
                        })
                        .collect(),
                };
                let bytes = record::encode(keys::EVENTS, k, &rec)
                    .map_err(ConflictableTransactionError::Abort)?;
                te.insert(k, bytes)?;
                tb.insert(k, e.body.as_slice())?;
            }
            for (id, d) in &dl0 {
                let rec = DeliveryRecord {
                    v: RECORD_VERSION,
                    event_id: d.event_id.clone(),
                    destination: d.destination.clone(),
                    created_at: d.created_at,
                    attempts: d.attempts,
                    log_len: 0,
                    claims: 0,
                    fallback_of: None,
                    fallback_to: None,
                    state: StoredState::Pending { due: d.due },
                };
                let k = id.as_str().as_bytes();
                let bytes = record::encode(keys::DELIVERIES, k, &rec)
                    .map_err(ConflictableTransactionError::Abort)?;
                td.insert(k, bytes)?;
                tb.insert(k, d.payload.as_slice())?;
                tu.insert(keys::time_key(Timestamp::from_millis(d.due), id), &[][..])?;
            }
            for (k, v) in &id0 {
                let at = received.get(v.as_ref()).copied().unwrap_or(0);
                let event_id = String::from_utf8_lossy(v);
                ti.insert(
                    k,
                    keys::idempotency_value(Timestamp::from_millis(at), &event_id),
                )?;
            }
            tm.insert(keys::SCHEMA_VERSION, &1u32.to_be_bytes())?;
            Ok(())
        },
    );
    match r {
        Ok(()) => Ok(()),
        Err(TransactionError::Abort(e)) => Err(e),
        Err(TransactionError::Storage(e)) => Err(e.into()),
    }?;
    db.flush()?;
    Ok(())
}

/// Moves every blob of the `bodies` tree into its event record (binary,
/// schema 2) and empties `bodies`, in one transaction with the version.
/// A payload whose delivery was purged is gone from `bodies` in schema 1;
/// its entry gets an empty payload (it is never claimed again).
fn v1_to_v2(db: &sled::Db, meta: &sled::Tree) -> Result<(), OutboxError> {
    let events = db.open_tree(keys::EVENTS)?;
    let bodies = db.open_tree(keys::BODIES)?;
    let mut blobs = std::collections::HashMap::new();
    for kv in bodies.iter() {
        let (k, v) = kv?;
        blobs.insert(k.to_vec(), v.to_vec());
    }
    let mut recs = Vec::new();
    for kv in events.iter() {
        let (k, v) = kv?;
        let e: V1Event = serde_json::from_slice(&v).map_err(|e| OutboxError::Corrupt {
            tree: keys::EVENTS,
            key: keys::display_key(&k),
            reason: format!("v1 event: {e}"),
        })?;
        let blob = |key: &[u8]| blobs.get(key).cloned().unwrap_or_default();
        let rec = EventRecord {
            body: blob(&k),
            deliveries: e
                .deliveries
                .into_iter()
                .map(|r| DeliveryRef {
                    payload: blob(r.id.as_bytes()),
                    destination: r.destination,
                    id: r.id,
                })
                .collect(),
            source: e.source,
            idempotency_key: e.idempotency_key,
            received_at: e.received_at,
        };
        recs.push((k, rec.encode()));
    }
    let r = (&events, &bodies, meta).transaction(|(te, tb, tm)| {
        for (k, bytes) in &recs {
            te.insert(k, bytes.as_slice())?;
        }
        for k in blobs.keys() {
            tb.remove(k.as_slice())?;
        }
        tm.insert(keys::SCHEMA_VERSION, &2u32.to_be_bytes())?;
        Ok::<(), ConflictableTransactionError<OutboxError>>(())
    });
    match r {
        Ok(()) => Ok(()),
        Err(TransactionError::Abort(e)) => Err(e),
        Err(TransactionError::Storage(e)) => Err(e.into()),
    }?;
    db.flush()?;
    Ok(())
}

/// Drops the stored due and idempotency indexes (rebuilt in memory at open
/// from the records), then writes version 3. A crash in between leaves
/// version 2, and the next open drops whatever is left again.
fn v2_to_v3(db: &sled::Db, meta: &sled::Tree) -> Result<(), OutboxError> {
    for tree in [keys::DUE, keys::IDEMPOTENCY] {
        db.drop_tree(tree)?;
    }
    db.flush()?;
    meta.insert(keys::SCHEMA_VERSION, &3u32.to_be_bytes())?;
    db.flush()?;
    Ok(())
}

/// Every delivery of a schema-3 database has its record, so the untouched
/// horizon starts past the last event (the open then reads no event to
/// find untouched deliveries; schema 0 left delivered ones without a
/// record, which must not read as untouched). Stored with version 4 in one
/// transaction.
fn v3_to_v4(db: &sled::Db, meta: &sled::Tree) -> Result<(), OutboxError> {
    let events = db.open_tree(keys::EVENTS)?;
    let horizon = match events.last()? {
        None => 0,
        Some((k, _)) => crate::id::raw_of_key(&k)
            .ok_or_else(|| OutboxError::Corrupt {
                tree: keys::EVENTS,
                key: keys::display_key(&k),
                reason: "malformed id".into(),
            })?
            .saturating_add(1),
    };
    meta.transaction(|tm| {
        tm.insert(keys::UNTOUCHED_FROM, &horizon.to_be_bytes())?;
        tm.insert(keys::SCHEMA_VERSION, &4u32.to_be_bytes())?;
        Ok::<_, ConflictableTransactionError<OutboxError>>(())
    })
    .map_err(|e| match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => e.into(),
    })?;
    db.flush()?;
    Ok(())
}
