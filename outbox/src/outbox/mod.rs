//! `Outbox`: every operation on the stored events and deliveries. Each
//! state change is one atomic sled write (a transaction across the trees
//! it touches; enqueues one batch on the events tree); only `enqueue`
//! waits for a flush (see the crate docs for why).
//!
//! One file per kind of operation, all `impl Outbox`:
//! `open` (opening and recovery), `enqueue`, `claim`, `complete`, `read`,
//! `requeue`, `purge`, `timers` (reading, cancelling and purging timers;
//! arming, disarming and firing ride on `enqueue`), `kept` (kept records:
//! written with an event, read back at start). What they share lives here: the struct, the
//! transaction helpers (`run`, `tx_*`, `Abort`, `Moves`) and the horizon
//! write; the in-memory indexes and counters are one struct, `Memory`
//! (`memory`).
//!
//! Invariants (crate docs, ARCHITECTURE.md "Invariants") every file here
//! keeps: each state change is one atomic sled write (a transaction, a
//! batch, or one insert for a first-attempt delivery); the in-memory
//! indexes and counters change only after that write committed.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde::Serialize;
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};

use self::complete::{CompleteJob, Recorder};
use self::enqueue::{EnqueueJob, JobOutcome};
use self::memory::Memory;
use crate::commit::{FlushStats, GroupCommit};
use crate::error::OutboxError;
use crate::id::{DeliveryId, EventId};
use crate::keys;
use crate::record::{self, DeliveryRecord, DeliveryRef, EventRecord};
use crate::state::StateKind;
use crate::time::Clock;
use crate::types::{Completion, Depth};
use crate::untouched;

mod claim;
mod complete;
mod enqueue;
mod kept;
mod memory;
mod open;
mod purge;
mod read;
mod requeue;
mod timers;

// Slots of the transactional trees, in `keys::TX_TREES` order.
const EV: usize = 0;
const DL: usize = 1;
const DE: usize = 2;
const AT: usize = 3;
const DV: usize = 4;

/// Deliveries handled per transaction by bulk operations (requeue, purge).
const CHUNK: usize = 256;

/// Why a transaction stopped without writing.
enum Abort {
    Corrupt(OutboxError),
    Collision,
}

type Tx<T> = Result<T, ConflictableTransactionError<Abort>>;

/// A state-counter move made by a transaction (`None` = created/removed).
type Moves = Vec<(Option<StateKind>, Option<StateKind>)>;

fn abort<T>(e: OutboxError) -> Tx<T> {
    Err(ConflictableTransactionError::Abort(Abort::Corrupt(e)))
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Moves the depth counters along the state changes a committed
/// transaction made.
fn apply_moves(depth: &Mutex<Depth>, moves: &Moves) {
    let mut d = lock(depth);
    for (from, to) in moves {
        d.apply(*from, *to);
    }
}

fn corrupt(tree: &'static str, key: &[u8], reason: &str) -> OutboxError {
    OutboxError::Corrupt {
        tree,
        key: keys::display_key(key),
        reason: reason.to_owned(),
    }
}

fn parse_event_id(tree: &'static str, key: &[u8], s: &str) -> Result<EventId, OutboxError> {
    EventId::parse(s).ok_or_else(|| corrupt(tree, key, "malformed event id"))
}

fn parse_delivery_id(tree: &'static str, key: &[u8], s: &str) -> Result<DeliveryId, OutboxError> {
    DeliveryId::parse(s).ok_or_else(|| corrupt(tree, key, "malformed delivery id"))
}

/// The id a `deliveries` key spells.
fn delivery_key_id(key: &[u8]) -> Result<DeliveryId, OutboxError> {
    std::str::from_utf8(key)
        .ok()
        .and_then(DeliveryId::parse)
        .ok_or_else(|| corrupt(keys::DELIVERIES, key, "malformed delivery key"))
}

fn tx_get_delivery(t: &[TransactionalTree], id: &DeliveryId) -> Tx<Option<DeliveryRecord>> {
    let key = id.as_str().as_bytes();
    match t[DL].get(key)? {
        None => Ok(None),
        Some(b) => record::decode_delivery(key, &b).map(Some).or_else(abort),
    }
}

fn tx_get_event(t: &[TransactionalTree], id: &str) -> Tx<Option<EventRecord>> {
    match t[EV].get(id.as_bytes())? {
        None => Ok(None),
        Some(b) => EventRecord::decode(id.as_bytes(), &b)
            .map(Some)
            .or_else(abort),
    }
}

fn tx_put_event(t: &[TransactionalTree], id: &str, rec: &EventRecord) -> Tx<()> {
    t[EV].insert(id.as_bytes(), rec.encode())?;
    Ok(())
}

fn tx_put<T: Serialize>(t: &TransactionalTree, tree: &'static str, key: &[u8], rec: &T) -> Tx<()> {
    let bytes = record::encode(tree, key, rec).or_else(abort)?;
    t.insert(key, bytes)?;
    Ok(())
}

fn refs_to_pairs(
    refs: &[DeliveryRef],
    event_key: &[u8],
) -> Result<Vec<(String, DeliveryId)>, OutboxError> {
    refs.iter()
        .map(|r| {
            Ok((
                r.destination.clone(),
                parse_delivery_id(keys::EVENTS, event_key, &r.id)?,
            ))
        })
        .collect()
}

/// Refuses a NUL byte in `s` (keys use it as a separator).
fn no_nul(field: &'static str, s: &str) -> Result<(), crate::error::EnqueueError> {
    if s.as_bytes().contains(&0) {
        Err(crate::error::EnqueueError::Invalid {
            field,
            reason: "contains a NUL byte",
        })
    } else {
        Ok(())
    }
}

/// The durable outbox. Cheap to share behind an `Arc`; every method takes
/// `&self`.
pub struct Outbox {
    db: sled::Db,
    trees: Vec<sled::Tree>,
    commit: GroupCommit<EnqueueJob, JobOutcome>,
    /// Completions share transactions too (see `complete`), on their own
    /// committer: they never wait for a flush.
    outcomes: GroupCommit<CompleteJob, Result<Completion, OutboxError>>,
    /// Writes single completions (`complete`).
    recorder: Arc<Recorder>,
    meta: sled::Tree,
    /// Armed timers and fired marks (see `timers`).
    timers: sled::Tree,
    timers_fired: sled::Tree,
    /// Kept records (see `kept`).
    kept: sled::Tree,
    /// The id generator, counters, leases and in-memory indexes (see
    /// `memory`), shared with both committers.
    mem: Arc<Memory>,
    retry_after: Duration,
    /// The idempotency window: no purge drops an event younger than it.
    window: Duration,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("depth", &self.depth())
            .finish_non_exhaustive()
    }
}

impl Outbox {
    /// Runs `f` as one transaction over all trees. Corruption and storage
    /// failures become `Err`; other aborts are returned as values.
    fn run<T>(
        &self,
        f: impl Fn(&[TransactionalTree]) -> Tx<T>,
    ) -> Result<Result<T, Abort>, OutboxError> {
        let r = <[sled::Tree] as Transactional<Abort>>::transaction(&self.trees[..], |v| f(v));
        match r {
            Ok(t) => Ok(Ok(t)),
            Err(TransactionError::Abort(Abort::Corrupt(e))) => Err(e),
            Err(TransactionError::Abort(a)) => Ok(Err(a)),
            Err(TransactionError::Storage(e)) => Err(e.into()),
        }
    }

    /// Deliveries by state and the unrouted events (kept in memory,
    /// counted at open).
    pub fn depth(&self) -> Depth {
        let mut d = *lock(&self.mem.depth);
        d.unrouted = u64::try_from(lock(&self.mem.unrouted).len()).unwrap_or(u64::MAX);
        d
    }

    /// Why the outbox can no longer write, if it cannot: a flush or a
    /// write failed (a full disk, an I/O error). sled 0.34 treats its first
    /// I/O failure as final for the open database, so this stays set until
    /// the process reopens the outbox (restarts); enqueues meanwhile answer
    /// errors, never acknowledgements.
    pub fn storage_failure(&self) -> Option<String> {
        if let Some(msg) = self.commit.failure() {
            return Some(format!("a flush failed: {msg}"));
        }
        lock(&self.mem.failed).clone()
    }

    /// Group-commit statistics since open.
    pub fn flush_stats(&self) -> FlushStats {
        self.commit.stats()
    }

    /// Flushes everything written so far (blocking; slow, like any fsync).
    pub fn flush(&self) -> Result<(), OutboxError> {
        self.db.flush()?;
        Ok(())
    }

    /// Stops the flusher, flushes, and closes the database.
    pub fn close(mut self) -> Result<(), OutboxError> {
        self.commit.stop();
        self.outcomes.stop();
        self.store_horizon()?;
        self.db.flush()?;
        Ok(())
    }

    /// Stores the untouched horizon as of now, once a flush covers the
    /// records it relies on (see `untouched`): the next open then reads
    /// fewer events. The enqueue committer does this too, but only while
    /// events arrive.
    fn store_horizon(&self) -> Result<(), OutboxError> {
        let h = untouched::horizon(&self.mem.untouched, &self.mem.ids);
        self.db.flush()?;
        raise_horizon(&self.meta, h)
    }
}

/// Stores `h` as the untouched horizon unless a later one is stored.
fn raise_horizon(meta: &sled::Tree, h: u128) -> Result<(), OutboxError> {
    raise_mark(meta, keys::UNTOUCHED_FROM, h)
}

/// Stores `h` (a raw id, `u128` BE) at `key` unless a later one is stored.
fn raise_mark(meta: &sled::Tree, key: &[u8], h: u128) -> Result<(), OutboxError> {
    meta.fetch_and_update(key, |old| {
        let old = old
            .and_then(|v| <[u8; 16]>::try_from(v).ok())
            .map_or(0, u128::from_be_bytes);
        Some(old.max(h).to_be_bytes().to_vec())
    })?;
    Ok(())
}
