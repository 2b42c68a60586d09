//! Opening and recovery: `Outbox::open` opens sled (migrating an older
//! schema), then rebuilds in one pass per tree what is kept only in memory
//! (`Memory`): the depth counters and the due index from `deliveries`, the
//! untouched deliveries (from the stored horizon on), the unrouted events
//! (from the stored unrouted mark on) and the idempotency index (within
//! the window) from `events`, the armed timers' index from `timers`; it ends the leases earlier
//! releases stored, and seeds the id generator.
//!
//! Invariants (crate docs; ARCHITECTURE.md "Invariants"): the in-memory
//! indexes are derived from the records alone; a listed delivery without a
//! record is untouched, and none is below the stored horizon; ids only
//! increase across restarts (the generator starts above the largest stored
//! id and the horizon); every open counts a new lease epoch, durably, so
//! no token from before it matches.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sled::Transactional;
use sled::transaction::TransactionError;

use super::complete::{CompleteJob, Recorder};
use super::enqueue::{EnqueueJob, Limits, Writer};
use super::memory::Memory;
use super::{Abort, DL, EV, Outbox, corrupt, delivery_key_id, tx_get_delivery, tx_put};
use crate::commit::{GroupCommit, Policy};
use crate::due::{self, DueIndex};
use crate::error::{OpenError, OutboxError};
use crate::id::{DeliveryId, EventId, IdGen};
use crate::idempotency::Idempotency;
use crate::keys;
use crate::leases::Leases;
use crate::migrate;
use crate::record;
use crate::state::{DeliveryState, StateKind};
use crate::time::Timestamp;
use crate::timers::{self, index::TimerIndex};
use crate::types::{Depth, OutboxConfig};
use crate::untouched::Untouched;

/// Opens sled, waiting briefly while the database's file lock is busy: when
/// an `Outbox` of this process was just dropped, sled's I/O threads may
/// still hold the lock for a moment. Another process holding it is still
/// an error, only a little later.
fn open_db(config: &OutboxConfig) -> Result<sled::Db, sled::Error> {
    const LOCK_WAIT: Duration = Duration::from_secs(5);
    let started = std::time::Instant::now();
    loop {
        let result = sled::Config::new()
            .path(&config.path)
            .cache_capacity(config.cache_capacity)
            .open();
        match result {
            // sled reports the busy lock only as text.
            Err(sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock")
                    && started.elapsed() < LOCK_WAIT =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

impl Outbox {
    /// Opens (or creates) the outbox at `config.path`, migrating an older
    /// schema and refusing a newer one, then counts deliveries by state.
    pub fn open(config: OutboxConfig) -> Result<Self, OpenError> {
        if config.max_pending == 0 {
            return Err(OpenError::Config("max_pending must be at least 1".into()));
        }
        if config.max_unrouted == 0 {
            return Err(OpenError::Config("max_unrouted must be at least 1".into()));
        }
        let path = config.path.display().to_string();
        let storage = |e: OutboxError| OpenError::Storage {
            path: path.clone(),
            source: e,
        };
        let db = open_db(&config).map_err(|e| storage(e.into()))?;
        if let Some(m) = migrate::migrate(&db)? {
            tracing::info!(from = m.from, to = m.to, "migrated the outbox schema");
        }
        let trees = keys::TX_TREES
            .iter()
            .map(|name| db.open_tree(name))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| storage(e.into()))?;
        let meta = db.open_tree(keys::META).map_err(|e| storage(e.into()))?;
        let timers_tree = db.open_tree(keys::TIMERS).map_err(|e| storage(e.into()))?;
        let fired_tree = db
            .open_tree(keys::TIMERS_FIRED)
            .map_err(|e| storage(e.into()))?;
        let kept_tree = db.open_tree(keys::KEPT).map_err(|e| storage(e.into()))?;
        let (timer_index, largest_timer) = scan_timers(&timers_tree).map_err(storage)?;
        let epoch = next_lease_epoch(&db).map_err(storage)?;
        let now = config.clock.now();
        let (mut depth, stored_leases, mut due) = scan_deliveries(&trees[DL]).map_err(storage)?;
        void_stored_leases(&trees, stored_leases, now, &mut depth, &mut due).map_err(storage)?;
        let horizon = stored_mark(&meta, keys::UNTOUCHED_FROM).map_err(storage)?;
        let unrouted_from = stored_mark(&meta, keys::UNROUTED_FROM).map_err(storage)?;
        let FromEvents {
            untouched,
            largest,
            idempotency,
            unrouted,
        } = scan_events(
            &trees,
            Marks {
                horizon,
                unrouted_from,
            },
            now,
            config.idempotency_window,
            &mut depth,
            &mut due,
        )
        .map_err(storage)?;
        // Above the stored horizon too: the horizon may have been the
        // generator's floor, past ids handed out but never stored (those of
        // a duplicate or refused enqueue), and an event id below it would
        // not be searched for untouched deliveries at the next open.
        let ids = IdGen::after(
            largest_id(&trees)
                .map_err(storage)?
                .max(largest)
                .max(largest_timer)
                .max(horizon.saturating_sub(1))
                .max(unrouted_from.saturating_sub(1)),
        );
        tracing::debug!(
            due = due.len(),
            untouched = untouched.len(),
            idempotency_keys = idempotency.len(),
            unrouted = unrouted.len(),
            timers = timer_index.len(),
            "rebuilt the in-memory indexes"
        );
        let mem = Arc::new(Memory {
            ids,
            depth: Mutex::new(depth),
            leases: Mutex::new(Leases::new(epoch)),
            due: Mutex::new(due),
            idempotency: Mutex::new(idempotency),
            untouched: Arc::new(Mutex::new(untouched)),
            unrouted: Mutex::new(unrouted),
            timers: Mutex::new(timer_index),
            timers_changed: tokio::sync::Notify::new(),
            failed: Mutex::new(None),
        });
        let mut writer = Writer::new(
            [
                trees[EV].clone(),
                timers_tree.clone(),
                fired_tree.clone(),
                kept_tree.clone(),
            ],
            meta.clone(),
            Arc::clone(&mem),
            Limits {
                max_pending: config.max_pending,
                max_unrouted: config.max_unrouted,
                min_free_bytes: config.min_free_bytes,
                path: config.path.clone(),
            },
            horizon,
        );
        let commit = GroupCommit::start(
            "outbox-commit",
            db.clone(),
            Policy::default(),
            Box::new(move |jobs: &[EnqueueJob]| writer.apply(jobs)),
        )
        .map_err(|e| storage(OutboxError::Storage(sled::Error::Io(e))))?;
        let recorder = Arc::new(Recorder {
            trees: trees.clone(),
            mem: Arc::clone(&mem),
        });
        let shared = Arc::clone(&recorder);
        let outcomes = GroupCommit::start(
            "outbox-outcomes",
            db.clone(),
            // A completion waits for no flush, so completions do not pile
            // up by themselves: linger for company, or each would pay a
            // transaction (two log writes) alone.
            Policy {
                min_batch: 32,
                ..Policy::default()
            },
            Box::new(move |jobs: &[CompleteJob]| shared.apply(jobs)),
        )
        .map_err(|e| storage(OutboxError::Storage(sled::Error::Io(e))))?;
        Ok(Self {
            db,
            trees,
            commit,
            outcomes,
            recorder,
            meta,
            timers: timers_tree,
            timers_fired: fired_tree,
            kept: kept_tree,
            mem,
            retry_after: config.backpressure_retry_after,
            window: config.idempotency_window,
            clock: config.clock,
        })
    }
}

/// The armed timers' index from the `timers` tree, and the largest timer
/// id stored (the id generator starts past it).
fn scan_timers(tree: &sled::Tree) -> Result<(TimerIndex, u128), OutboxError> {
    let mut index = TimerIndex::default();
    let mut largest = 0;
    for kv in tree.iter() {
        let (k, v) = kv?;
        let t = timers::record::decode(&k, &v)?;
        let raw = t.id.raw();
        largest = largest.max(raw);
        // Two records under one key cannot be written (arming replaces);
        // should one be found, the later id is the armed one.
        if let Some((old, _)) = index.by_key(&t.key) {
            if old > raw {
                continue;
            }
            index.remove(old);
        }
        index.add(raw, t.deadline.as_millis(), &t.key);
    }
    Ok((index, largest))
}

/// A stored mark (the untouched horizon, the unrouted mark); 0 (read
/// every event) when none is.
fn stored_mark(meta: &sled::Tree, key: &[u8]) -> Result<u128, OutboxError> {
    match meta.get(key)? {
        None => Ok(0),
        Some(v) => <[u8; 16]>::try_from(v.as_ref())
            .map(u128::from_be_bytes)
            .map_err(|_| corrupt(keys::META, key, "malformed mark")),
    }
}

/// Where the open must start reading events, per index.
struct Marks {
    /// No event below it has an untouched delivery.
    horizon: u128,
    /// No event below it is unrouted.
    unrouted_from: u128,
}

/// What the open rebuilds from the event records.
struct FromEvents {
    untouched: Untouched,
    /// The largest untouched delivery id: the id generator must start past
    /// it, and no key holds it.
    largest: u128,
    idempotency: Idempotency,
    /// The events without any delivery.
    unrouted: BTreeSet<u128>,
}

/// One scan of the events the open must read, for two indexes:
/// - the **untouched deliveries** (listed by their event, no record of
///   their own) of the events from `horizon` on: each is pending, due when
///   its event was received (counted in `depth`, added to `due`);
/// - the **idempotency keys** of the events received within `window`
///   before `now`. An event's id starts with a time no earlier than its
///   `received_at` (ids never decrease), so those events start at the
///   first id of `now - window`;
/// - the **unrouted events** (no delivery at all) from `unrouted_from` on.
///
/// The scan starts at the earlier of the two and reads each record in
/// place for what its range needs.
fn scan_events(
    trees: &[sled::Tree],
    marks: Marks,
    now: Timestamp,
    window: Duration,
    depth: &mut Depth,
    due: &mut DueIndex,
) -> Result<FromEvents, OutboxError> {
    let since = now.saturating_sub(window).as_millis().min((1 << 48) - 1);
    let recent = u128::from(since) << 80;
    let mut found = FromEvents {
        untouched: Untouched::default(),
        largest: 0,
        idempotency: Idempotency::new(window),
        unrouted: BTreeSet::new(),
    };
    let Marks {
        horizon,
        unrouted_from,
    } = marks;
    let from = EventId::from_raw(horizon.min(recent).min(unrouted_from));
    for kv in trees[EV].range(from.as_str().as_bytes()..) {
        let (k, v) = kv?;
        let event =
            crate::id::raw_of_key(&k).ok_or_else(|| corrupt(keys::EVENTS, &k, "malformed id"))?;
        if event >= recent
            && let Some((key, at)) = record::idempotency_in(&k, &v)?
        {
            let at = Timestamp::from_millis(at);
            found.idempotency.insert(key.into_boxed_slice(), at, event);
        }
        if event < horizon && event < unrouted_from {
            continue;
        }
        let (at, refs) = record::refs_in(&k, &v)?;
        if refs.is_empty() && event >= unrouted_from {
            found.unrouted.insert(event);
        }
        if event < horizon {
            continue;
        }
        for r in refs {
            if trees[DL].contains_key(r.id)? {
                continue;
            }
            let id = crate::id::raw_of_key(r.id)
                .ok_or_else(|| corrupt(keys::EVENTS, &k, "malformed delivery id"))?;
            found.untouched.add(event, id);
            due.add((at, id));
            depth.apply(None, Some(StateKind::Pending));
            found.largest = found.largest.max(id);
        }
    }
    found.idempotency.purge(now);
    Ok(found)
}

/// The largest id stored as an event or delivery key (0 in an empty
/// outbox): new ids start above it. Ids sort by value as keys, so this is
/// the last key of each tree.
fn largest_id(trees: &[sled::Tree]) -> Result<u128, OutboxError> {
    let mut largest = 0;
    for (slot, name) in [(EV, keys::EVENTS), (DL, keys::DELIVERIES)] {
        if let Some((k, _)) = trees[slot].last()? {
            let raw = crate::id::raw_of_key(&k).ok_or_else(|| corrupt(name, &k, "malformed id"))?;
            largest = largest.max(raw);
        }
    }
    Ok(largest)
}

/// Counts this open in the stored lease epoch and returns it (durably:
/// tokens of this open must differ from every earlier one's).
fn next_lease_epoch(db: &sled::Db) -> Result<u64, OutboxError> {
    let meta = db.open_tree(keys::META)?;
    let previous = match meta.get(keys::LEASE_EPOCH)? {
        None => 0,
        Some(v) => <[u8; 8]>::try_from(v.as_ref())
            .map(u64::from_be_bytes)
            .map_err(|_| corrupt(keys::META, keys::LEASE_EPOCH, "malformed lease epoch"))?,
    };
    let epoch = previous.saturating_add(1);
    meta.insert(keys::LEASE_EPOCH, &epoch.to_be_bytes())?;
    db.flush()?;
    Ok(epoch)
}

/// Earlier releases stored leases in delivery records (`Claimed`, indexed
/// at the lease's expiry). Such a lease belongs to a process that is gone
/// (sled admits one process per database): each becomes pending, due `now`.
/// `stored` comes from [`scan_deliveries`], which counted them as claimed
/// and left them out of the due index; `depth` and `due` are corrected.
fn void_stored_leases(
    trees: &[sled::Tree],
    stored: Vec<DeliveryId>,
    now: Timestamp,
    depth: &mut Depth,
    due: &mut DueIndex,
) -> Result<(), OutboxError> {
    if stored.is_empty() {
        return Ok(());
    }
    tracing::warn!(
        deliveries = stored.len(),
        "ending leases an earlier release stored; those deliveries are due now"
    );
    let r = <[sled::Tree] as Transactional<Abort>>::transaction(trees, |t| {
        for id in &stored {
            let Some(mut rec) = tx_get_delivery(t, id)? else {
                continue;
            };
            rec.state = record::StoredState::Pending {
                due: now.as_millis(),
            };
            tx_put(&t[DL], keys::DELIVERIES, id.as_str().as_bytes(), &rec)?;
        }
        Ok(())
    });
    match r {
        Ok(()) => {
            for id in &stored {
                depth.apply(Some(StateKind::Claimed), Some(StateKind::Pending));
                due.add(due::due_key(now, id));
            }
            Ok(())
        }
        Err(TransactionError::Abort(Abort::Corrupt(e))) => Err(e),
        Err(TransactionError::Abort(Abort::Collision)) => Ok(()),
        Err(TransactionError::Storage(e)) => Err(e.into()),
    }
}

/// One scan of every delivery at open: counts them by state, rebuilds the
/// due index from the pending and scheduled ones, and lists the leases
/// earlier releases stored (for [`void_stored_leases`]).
fn scan_deliveries(
    deliveries: &sled::Tree,
) -> Result<(Depth, Vec<DeliveryId>, DueIndex), OutboxError> {
    let mut d = Depth::default();
    let mut stored = Vec::new();
    let mut due = DueIndex::default();
    for kv in deliveries.iter() {
        let (k, v) = kv?;
        let rec = record::decode_delivery(&k, &v)?;
        let state = DeliveryState::from(rec.state);
        let id = || delivery_key_id(&k);
        match &state {
            DeliveryState::Claimed(_) => stored.push(id()?),
            s => {
                if let Some(at) = s.index_time() {
                    due.add(due::due_key(at, &id()?));
                }
            }
        }
        d.apply(None, Some(state.kind()));
    }
    Ok((d, stored, due))
}
