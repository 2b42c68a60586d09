//! `Outbox`: every operation on the stored events and deliveries. Each
//! state change is one atomic sled write (a transaction across the trees
//! it touches; enqueues one batch on the events tree); only `enqueue`
//! waits for a flush (see the crate docs for why).

use std::collections::HashMap;
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde::Serialize;
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};

use self::complete::{CompleteJob, Recorder};
use crate::commit::{Durability, FlushStats, GroupCommit, Policy, WaitError};
use crate::delivered;
use crate::due::{self, DueChange, DueChanges, DueIndex, DueKey};
use crate::error::{EnqueueError, OpenError, OutboxError};
use crate::id::{self, DeliveryId, EventId, IdGen};
use crate::idempotency::Idempotency;
use crate::keys;
use crate::leases::Leases;
use crate::migrate;
use crate::record::{self, AttemptRecord, DeliveryRecord, DeliveryRef, EventRecord, StoredOutcome};
use crate::state::{DeliveryState, Pending, StateKind};
use crate::time::{Clock, Timestamp};
use crate::types::{
    Attempt, AttemptOutcome, Claim, Completion, DeadCursor, DeadLetter, DeadPage, DeliveryView,
    Depth, Enqueued, EventView, NewDelivery, NewEvent, OutboxConfig, PurgeReport, Requeue,
};
use crate::untouched::{self, InFlight, Untouched};

mod complete;

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

fn no_nul(field: &'static str, s: &str) -> Result<(), EnqueueError> {
    if s.as_bytes().contains(&0) {
        Err(EnqueueError::Invalid {
            field,
            reason: "contains a NUL byte",
        })
    } else {
        Ok(())
    }
}

/// One `enqueue`, encoded by the caller and written by the committer.
/// Values are `IVec`s so that adding them to the batch clones reference
/// counts, not bytes.
pub(crate) struct EnqueueJob {
    now: Timestamp,
    /// The event's id, in flight until the committer is done with the job.
    flight: InFlight,
    event_key: sled::IVec,
    event: sled::IVec,
    /// `source ‖ 0x00 ‖ key`, when the event carries an idempotency key.
    idempotency: Option<Box<[u8]>>,
    /// Each delivery's due-index entry (due now; the raw id is its second
    /// half). Deliveries get no record of their own (see `untouched`).
    deliveries: Vec<DueKey>,
}

/// The committer's answer to one [`EnqueueJob`].
pub(crate) enum JobOutcome {
    Accepted,
    Duplicate(EventId, Vec<(String, DeliveryId)>),
    Backpressure,
    Failed(OutboxError),
}

/// What the committer needs to write enqueues: shared with `Outbox`.
struct Writer {
    events: sled::Tree,
    meta: sled::Tree,
    ids: Arc<IdGen>,
    depth: Arc<Mutex<Depth>>,
    due: Arc<Mutex<DueIndex>>,
    idempotency: Arc<Mutex<Idempotency>>,
    untouched: Arc<Mutex<Untouched>>,
    max_pending: u64,
    /// A horizon computed before a batch that was flushed: safe to store
    /// (see `untouched`).
    covered: Option<u128>,
    /// The horizon stored last.
    stored: u128,
}

/// The idempotency keys accepted so far in one batch, and by which job.
type BatchKeys<'a> = HashMap<&'a [u8], usize>;

impl Writer {
    /// Writes a batch of enqueues as one atomic sled batch. Each job is checked
    /// (idempotency, backpressure) before any of its writes,
    /// so a refused job writes nothing while the others commit; later jobs
    /// see earlier ones of the same batch (a repeated key is a duplicate).
    fn apply(&mut self, jobs: &[EnqueueJob]) -> Vec<(JobOutcome, Durability)> {
        self.store_horizon();
        let horizon = untouched::horizon(&self.untouched, &self.ids);
        let start_active = lock(&self.depth).active();
        // Held across the write and the additions after it: only
        // this thread adds keys, and `purge_idempotency` waits.
        let mut idem = lock(&self.idempotency);
        // One atomic batch on one tree: every job only inserts a new key,
        // so there is nothing for a transaction to isolate (and a
        // transaction costs more per key). A batch that accepts nothing
        // writes nothing.
        let mut active = start_active;
        let mut out = Vec::with_capacity(jobs.len());
        let mut keys = BatchKeys::new();
        let mut batch = sled::Batch::default();
        for i in 0..jobs.len() {
            out.push(self.apply_one(&mut batch, jobs, i, &idem, &mut keys, &mut active));
        }
        if out.iter().any(|o| matches!(o, JobOutcome::Accepted))
            && let Err(e) = self.events.apply_batch(batch)
        {
            return jobs
                .iter()
                .map(|_| {
                    (
                        JobOutcome::Failed(OutboxError::Storage(e.clone())),
                        Durability::Now,
                    )
                })
                .collect();
        }
        // Written: the in-memory indexes learn what was accepted.
        let accepted = || {
            out.iter()
                .zip(jobs)
                .filter(|(o, _)| matches!(o, JobOutcome::Accepted))
                .map(|(_, j)| j)
        };
        let added: usize = accepted().map(|j| j.deliveries.len()).sum();
        if added > 0 {
            untouched::accept(
                &self.untouched,
                accepted().map(|j| (j.flight.raw(), &j.deliveries[..])),
            );
            {
                let mut due = lock(&self.due);
                for &d in accepted().flat_map(|j| &j.deliveries) {
                    due.add(d);
                }
            }
            let mut d = lock(&self.depth);
            for _ in 0..added {
                d.apply(None, Some(StateKind::Pending));
            }
        }
        for j in accepted() {
            if let Some(k) = &j.idempotency {
                idem.insert(k.clone(), j.now, j.flight.raw());
            }
        }
        drop(idem);
        let answers: Vec<_> = out
            .into_iter()
            .map(|o| {
                let when = match o {
                    // A duplicate's earlier write may still be waiting for
                    // its flush.
                    JobOutcome::Accepted | JobOutcome::Duplicate(..) => Durability::AfterFlush,
                    _ => Durability::Now,
                };
                (o, when)
            })
            .collect();
        if answers.iter().any(|(_, w)| *w == Durability::AfterFlush) {
            // The flush after this batch covers every record write the
            // horizon computed before it relies on.
            self.covered = Some(horizon);
        }
        answers
    }

    /// Stores the horizon of an earlier, flushed batch (a plain write,
    /// which this batch's flush covers). A failure only leaves the stored
    /// horizon lower, which is safe.
    fn store_horizon(&mut self) {
        let Some(h) = self.covered.take() else {
            return;
        };
        if h <= self.stored {
            return;
        }
        match raise_horizon(&self.meta, h) {
            Ok(()) => self.stored = h,
            Err(e) => tracing::warn!(error = %e, "could not store the untouched horizon"),
        }
    }

    /// Checks `jobs[index]` and adds its write to `batch`; `keys` holds
    /// the idempotency keys the batch's earlier jobs accepted (not yet in
    /// `idem`).
    fn apply_one<'a>(
        &self,
        batch: &mut sled::Batch,
        jobs: &'a [EnqueueJob],
        index: usize,
        idem: &Idempotency,
        keys: &mut BatchKeys<'a>,
        active: &mut u64,
    ) -> JobOutcome {
        let job = &jobs[index];
        if let Some(ik) = &job.idempotency {
            // An earlier job of this batch (its record is not written yet),
            // or an earlier batch.
            let found = match keys.get(&ik[..]) {
                Some(&j) => Some((jobs[j].flight.raw(), Ok(Some(jobs[j].event.clone())))),
                None => idem.get(ik, job.now).map(|(_, raw)| {
                    let ek = EventId::from_raw(raw);
                    (raw, self.events.get(ek.as_str().as_bytes()))
                }),
            };
            if let Some((raw, record)) = found {
                let earlier = EventId::from_raw(raw);
                let ek = earlier.as_str().as_bytes();
                let pairs = match record {
                    Err(e) => return JobOutcome::Failed(e.into()),
                    Ok(None) => Ok(Vec::new()),
                    Ok(Some(b)) => {
                        EventRecord::decode(ek, &b).and_then(|e| refs_to_pairs(&e.deliveries, ek))
                    }
                };
                return match pairs {
                    Ok(p) => JobOutcome::Duplicate(earlier, p),
                    Err(e) => JobOutcome::Failed(e),
                };
            }
        }
        let n = u64::try_from(job.deliveries.len()).unwrap_or(u64::MAX);
        if active.saturating_add(n) > self.max_pending {
            return JobOutcome::Backpressure;
        }
        // No look before the insert: ids come from a generator seeded past
        // every stored id at open (`IdGen::after`), so they name nothing yet.
        batch.insert(job.event_key.clone(), job.event.clone());
        // The due, idempotency and untouched entries are added to memory
        // once the batch is written (see `apply`).
        if let Some(ik) = &job.idempotency {
            keys.insert(ik, index);
        }
        *active = active.saturating_add(n);
        JobOutcome::Accepted
    }
}

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
    ids: Arc<IdGen>,
    meta: sled::Tree,
    depth: Arc<Mutex<Depth>>,
    /// Which deliveries are claimed (in memory only; see `leases`).
    leases: Arc<Mutex<Leases>>,
    /// The due index (in memory; see `due`).
    due: Arc<Mutex<DueIndex>>,
    /// The idempotency index (in memory; see `idempotency`).
    idempotency: Arc<Mutex<Idempotency>>,
    /// Deliveries without a record yet (in memory; see `untouched`).
    untouched: Arc<Mutex<Untouched>>,
    retry_after: Duration,
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
    /// Opens (or creates) the outbox at `config.path`, migrating an older
    /// schema and refusing a newer one, then counts deliveries by state.
    pub fn open(config: OutboxConfig) -> Result<Self, OpenError> {
        if config.max_pending == 0 {
            return Err(OpenError::Config("max_pending must be at least 1".into()));
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
        let epoch = next_lease_epoch(&db).map_err(storage)?;
        let now = config.clock.now();
        let (mut depth, stored_leases, mut due) = scan_deliveries(&trees[DL]).map_err(storage)?;
        void_stored_leases(&trees, stored_leases, now, &mut depth, &mut due).map_err(storage)?;
        let horizon = stored_horizon(&meta).map_err(storage)?;
        let FromEvents {
            untouched,
            largest,
            idempotency,
        } = scan_events(
            &trees,
            horizon,
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
        let ids = Arc::new(IdGen::after(
            largest_id(&trees)
                .map_err(storage)?
                .max(largest)
                .max(horizon.saturating_sub(1)),
        ));
        tracing::debug!(
            due = due.len(),
            untouched = untouched.len(),
            idempotency_keys = idempotency.len(),
            "rebuilt the in-memory indexes"
        );
        let depth = Arc::new(Mutex::new(depth));
        let leases = Arc::new(Mutex::new(Leases::new(epoch)));
        let due = Arc::new(Mutex::new(due));
        let idempotency = Arc::new(Mutex::new(idempotency));
        let untouched = Arc::new(Mutex::new(untouched));
        let mut writer = Writer {
            events: trees[EV].clone(),
            meta: meta.clone(),
            ids: Arc::clone(&ids),
            depth: Arc::clone(&depth),
            due: Arc::clone(&due),
            idempotency: Arc::clone(&idempotency),
            untouched: Arc::clone(&untouched),
            max_pending: config.max_pending,
            covered: None,
            stored: horizon,
        };
        let commit = GroupCommit::start(
            "outbox-commit",
            db.clone(),
            Policy::default(),
            Box::new(move |jobs: &[EnqueueJob]| writer.apply(jobs)),
        )
        .map_err(|e| storage(OutboxError::Storage(sled::Error::Io(e))))?;
        let recorder = Arc::new(Recorder {
            trees: trees.clone(),
            depth: Arc::clone(&depth),
            leases: Arc::clone(&leases),
            due: Arc::clone(&due),
            untouched: Arc::clone(&untouched),
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
            ids,
            meta,
            depth,
            leases,
            due,
            idempotency,
            untouched,
            retry_after: config.backpressure_retry_after,
            clock: config.clock,
        })
    }

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

    /// Stores `event` with one pending delivery (due now) per entry of
    /// `deliveries`, as one record (the deliveries get records of their
    /// own when they first change; see `untouched`), and returns once a
    /// flush covers it: an `Ok` answer survives a crash.
    /// Concurrent calls share that transaction and flush (see `commit`).
    ///
    /// A (source, idempotency key) accepted within the window answers
    /// [`Enqueued::Duplicate`] (also only once durable) and writes nothing.
    /// Past `max_pending` unfinished deliveries it writes nothing and
    /// answers [`EnqueueError::Backpressure`].
    pub async fn enqueue(
        &self,
        event: NewEvent,
        deliveries: Vec<NewDelivery>,
    ) -> Result<Enqueued, EnqueueError> {
        no_nul("source", &event.source)?;
        for d in &deliveries {
            no_nul("destination", &d.destination)?;
        }
        let now = self.clock.now();
        let idem = event
            .idempotency_key
            .as_deref()
            .map(|k| keys::idempotency_key(&event.source, k).into_boxed_slice());
        let destinations: Vec<String> = deliveries.iter().map(|d| d.destination.clone()).collect();
        // One record holds the event, its body and every payload: one write.
        let mut rec = EventRecord {
            source: event.source,
            idempotency_key: event.idempotency_key,
            received_at: now.as_millis(),
            body: event.body,
            deliveries: deliveries
                .into_iter()
                .map(|d| DeliveryRef {
                    destination: d.destination,
                    id: String::new(),
                    payload: d.payload,
                })
                .collect(),
        };
        // Ids and records are made here, on the caller's thread, so the
        // committer only runs the transaction. The deliveries get no record
        // of their own until they first change (see `untouched`).
        let flight = InFlight::begin(&self.untouched, &self.ids, now);
        let event_id = EventId::from_raw(flight.raw());
        let ids: Vec<DeliveryId> = destinations
            .iter()
            .map(|_| DeliveryId::from_raw(self.ids.next(now)))
            .collect();
        let ek = event_id.as_str().as_bytes();
        for (r, id) in rec.deliveries.iter_mut().zip(&ids) {
            id.as_str().clone_into(&mut r.id);
        }
        let job = EnqueueJob {
            now,
            event_key: sled::IVec::from(ek),
            event: rec.encode().into(),
            idempotency: idem,
            deliveries: ids.iter().map(|id| due::due_key(now, id)).collect(),
            flight,
        };
        let outcome = self.commit.submit(job).await.map_err(|e| match e {
            WaitError::Failed(msg) => EnqueueError::Flush(msg.to_string()),
            WaitError::Closed => EnqueueError::Closed,
        })?;
        match outcome {
            JobOutcome::Accepted => Ok(Enqueued::Accepted {
                event_id,
                deliveries: destinations.into_iter().zip(ids).collect(),
            }),
            JobOutcome::Duplicate(event_id, deliveries) => Ok(Enqueued::Duplicate {
                event_id,
                deliveries,
            }),
            JobOutcome::Backpressure => Err(EnqueueError::Backpressure {
                retry_after: self.retry_after,
            }),
            JobOutcome::Failed(e) => Err(e.into()),
        }
    }

    /// Leases up to `limit` deliveries to `owner` until `now + lease`:
    /// pending and scheduled deliveries due by `now` and claimed ones whose
    /// lease expired by `now` (ordered by that expiry), oldest first. Writes
    /// nothing: leases live in memory (see `leases`).
    pub fn claim_due(
        &self,
        now: Timestamp,
        limit: usize,
        owner: &str,
        lease: Duration,
    ) -> Result<Vec<Claim>, OutboxError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let lease_until = now.saturating_add(lease);
        // Held for the whole claim, so concurrent claimers never take the
        // same delivery. Completions hold it across their transaction and
        // their change to the due index; both take it before the index's
        // lock and any sled lock, so they cannot deadlock.
        let mut leases = lock(&self.leases);
        // Candidates: unleased entries of the due index, and expired leases
        // (ordered by their expiry), merged in time order.
        let mut due: Vec<(Timestamp, DeliveryId, bool)> = Vec::with_capacity(limit);
        // Where the next scan may start if everything taken here is claimed.
        let mut scanned_to: DueKey = (now.as_millis().saturating_add(1), 0);
        {
            let mut index = lock(&self.due);
            let from = leases.scan_from(index.take_floor());
            for key in index.range(from, Some(now.as_millis())) {
                let id = DeliveryId::from_raw(key.1);
                if leases.contains(&id) {
                    continue;
                }
                due.push((Timestamp::from_millis(key.0), id, false));
                if due.len() == limit {
                    scanned_to = due::after(key);
                    break;
                }
            }
        }
        due.extend(
            leases
                .expired(now)
                .into_iter()
                .map(|(until, id)| (until, id, true)),
        );
        due.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        // Index entries that lose their place to expired leases stay
        // unleased: the next scan must start at the first of them.
        if let Some((at, id, _)) = due.get(limit..).and_then(|rest| rest.iter().find(|c| !c.2)) {
            scanned_to = due::due_key(*at, id);
        }
        due.truncate(limit);
        let mut claims = Vec::with_capacity(due.len());
        let mut moves = Moves::new();
        for (at, id, reclaim) in due {
            let dk = id.as_str().as_bytes();
            let Some((rec, event)) = self.load_leased(&id)? else {
                return Err(corrupt(
                    keys::DELIVERIES,
                    dk,
                    "due-index entry without a delivery",
                ));
            };
            let state = DeliveryState::from(rec.state.clone());
            let (index_at, from, was) = if reclaim {
                let Some(held) = leases.get(&id) else {
                    continue;
                };
                if state.index_time() != Some(held.at) {
                    // Only the lease holder's completion changes the record,
                    // and it ends the lease under this same lock.
                    return Err(corrupt(
                        keys::DELIVERIES,
                        dk,
                        "a leased delivery changed under its lease",
                    ));
                }
                (held.at, StateKind::Claimed, held.from)
            } else {
                if state.index_time() != Some(at) {
                    return Err(corrupt(
                        keys::DELIVERIES,
                        dk,
                        "the due index disagrees with the delivery's due time",
                    ));
                }
                (at, state.kind(), state.kind())
            };
            let ek = rec.event_id.as_bytes();
            let event = match event {
                Some(e) => Some(e),
                None => self.trees[EV].get(ek)?,
            };
            let Some(payload) = event
                .as_deref()
                .map(|b| record::payload_in(ek, b, id.as_str()))
                .transpose()?
                .flatten()
                .map(<[u8]>::to_vec)
            else {
                return Err(corrupt(keys::EVENTS, ek, "missing payload"));
            };
            let event_id = parse_event_id(keys::DELIVERIES, dk, &rec.event_id)?;
            let token = leases.grant(id.clone(), owner, lease_until, index_at, was);
            if !reclaim {
                moves.push((Some(from), Some(StateKind::Claimed)));
            }
            claims.push(Claim {
                delivery_id: id,
                event_id,
                destination: rec.destination,
                attempt: rec.attempts.saturating_add(1),
                payload,
                owner: owner.to_owned(),
                lease_until,
                token,
            });
        }
        leases.advance_scan(scanned_to);
        drop(leases);
        apply_moves(&self.depth, &moves);
        Ok(claims)
    }

    /// Ends every lease this process holds; the deliveries are claimable
    /// again at their own due time (a claim is only ever made once that
    /// time has come). Returns how many. Leases never outlive the process
    /// (see `leases`), so a restart needs no call to this.
    pub fn release_leases(&self) -> u64 {
        let released = lock(&self.leases).clear();
        let moves: Moves = released
            .iter()
            .map(|l| (Some(StateKind::Claimed), Some(l.from)))
            .collect();
        apply_moves(&self.depth, &moves);
        released.len() as u64
    }

    /// The earliest time in the due index: when the next delivery becomes
    /// due or the next lease expires. `None` when nothing is unfinished.
    pub fn next_due(&self) -> Result<Option<Timestamp>, OutboxError> {
        let mut leases = lock(&self.leases);
        let mut index = lock(&self.due);
        let from = leases.scan_from(index.take_floor());
        let mut first = None;
        for key in index.range(from, None) {
            // A leased delivery is next due when its lease expires.
            if !leases.contains(&DeliveryId::from_raw(key.1)) {
                first = Some(Timestamp::from_millis(key.0));
                break;
            }
        }
        drop(index);
        Ok(match (first, leases.earliest()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        })
    }

    /// The record of delivery `id`: stored, or derived from its event if
    /// it is untouched (then with the event's bytes, read to derive it).
    fn load(
        &self,
        id: &DeliveryId,
    ) -> Result<Option<(DeliveryRecord, Option<sled::IVec>)>, OutboxError> {
        // Untouched first: a completion writes the record before it
        // forgets the delivery here, so a miss here and then in the tree
        // means there is no such delivery.
        let event = untouched::event_of(&self.untouched, id.raw());
        let key = id.as_str().as_bytes();
        if let Some(b) = self.trees[DL].get(key)? {
            return Ok(Some((record::decode_delivery(key, &b)?, None)));
        }
        let Some(event) = event else {
            return Ok(None);
        };
        self.derive_untouched(id, event).map(Some)
    }

    /// [`Outbox::load`] for a caller holding the leases' lock. There an
    /// untouched delivery certainly has no record, as every writer of an
    /// untouched delivery's record (its completion) holds that lock too,
    /// so the tree is not searched for it (a claim's commonest case).
    fn load_leased(
        &self,
        id: &DeliveryId,
    ) -> Result<Option<(DeliveryRecord, Option<sled::IVec>)>, OutboxError> {
        match untouched::event_of(&self.untouched, id.raw()) {
            Some(event) => self.derive_untouched(id, event).map(Some),
            None => self.load(id),
        }
    }

    /// The record of untouched delivery `id` of event `event` (raw id),
    /// with the event's bytes it was derived from.
    fn derive_untouched(
        &self,
        id: &DeliveryId,
        event: u128,
    ) -> Result<(DeliveryRecord, Option<sled::IVec>), OutboxError> {
        let eid = EventId::from_raw(event);
        let ek = eid.as_str().as_bytes();
        let Some(ev) = self.trees[EV].get(ek)? else {
            return Err(corrupt(
                keys::DELIVERIES,
                id.as_str().as_bytes(),
                "event missing",
            ));
        };
        let rec = record::untouched_in(eid.as_str(), &ev, id.as_str())?;
        Ok((rec, Some(ev)))
    }

    /// One delivery with its history.
    pub fn delivery(&self, id: &DeliveryId) -> Result<Option<DeliveryView>, OutboxError> {
        let key = id.as_str().as_bytes();
        let Some((rec, _)) = self.load(id)? else {
            return Ok(None);
        };
        let mut history = Vec::new();
        for kv in self.trees[AT].scan_prefix(key) {
            let (k, v) = kv?;
            let seq = k
                .get(key.len()..)
                .and_then(|s| <[u8; 4]>::try_from(s).ok())
                .map(u32::from_be_bytes)
                .ok_or_else(|| corrupt(keys::ATTEMPTS, &k, "malformed attempt key"))?;
            let a: AttemptRecord = record::decode(keys::ATTEMPTS, &k, &v)?;
            let outcome = match a.outcome {
                StoredOutcome::Delivered { detail } => AttemptOutcome::Delivered { detail },
                StoredOutcome::Retry { error, next_due } => AttemptOutcome::Retry {
                    error,
                    next_due: Timestamp::from_millis(next_due),
                },
                StoredOutcome::Dead { error, fallback_to } => AttemptOutcome::Dead {
                    error,
                    fallback_to: fallback_to
                        .map(|f| parse_delivery_id(keys::ATTEMPTS, &k, &f))
                        .transpose()?,
                },
            };
            history.push(Attempt {
                seq,
                at: Timestamp::from_millis(a.at),
                counted: a.counted,
                outcome,
            });
        }
        // The delivering attempt is kept in the state, not in the log
        // (databases written before that change logged it too).
        if let record::StoredState::Delivered { at, detail } = &rec.state
            && !matches!(
                history.last(),
                Some(Attempt {
                    outcome: AttemptOutcome::Delivered { .. },
                    ..
                })
            )
        {
            history.push(Attempt {
                seq: rec.log_len,
                at: Timestamp::from_millis(*at),
                counted: true,
                outcome: AttemptOutcome::Delivered {
                    detail: detail.clone(),
                },
            });
        }
        let link = |s: &Option<String>| {
            s.as_deref()
                .map(|f| parse_delivery_id(keys::DELIVERIES, key, f))
                .transpose()
        };
        let state = match lock(&self.leases).get(id) {
            Some(lease) => DeliveryState::Claimed(lease.claimed()),
            None => rec.state.into(),
        };
        Ok(Some(DeliveryView {
            id: id.clone(),
            event_id: parse_event_id(keys::DELIVERIES, key, &rec.event_id)?,
            destination: rec.destination.clone(),
            created_at: Timestamp::from_millis(rec.created_at),
            fallback_of: link(&rec.fallback_of)?,
            fallback_to: link(&rec.fallback_to)?,
            state,
            attempts: rec.attempts,
            history,
        }))
    }

    /// An event with its body, its deliveries and every attempt.
    pub fn event(&self, id: &EventId) -> Result<Option<EventView>, OutboxError> {
        let key = id.as_str().as_bytes();
        let Some(b) = self.trees[EV].get(key)? else {
            return Ok(None);
        };
        let rec = EventRecord::decode(key, &b)?;
        let mut deliveries = Vec::new();
        for (_, did) in refs_to_pairs(&rec.deliveries, key)? {
            if let Some(d) = self.delivery(&did)? {
                deliveries.push(d);
            }
        }
        Ok(Some(EventView {
            id: id.clone(),
            source: rec.source,
            idempotency_key: rec.idempotency_key,
            received_at: Timestamp::from_millis(rec.received_at),
            body: rec.body,
            deliveries,
        }))
    }

    /// Dead letters, by destination then delivery id: all of them, or one
    /// destination's; up to `limit` after `after`.
    pub fn dead_letters(
        &self,
        destination: Option<&str>,
        after: Option<&DeadCursor>,
        limit: usize,
    ) -> Result<DeadPage, OutboxError> {
        let prefix = destination.map(keys::dead_prefix).unwrap_or_default();
        let start = match after {
            Some(c) => Bound::Excluded(c.0.clone()),
            None => Bound::Included(prefix.clone()),
        };
        let mut items = Vec::new();
        let mut last = None;
        let mut more = false;
        for kv in self.trees[DE].range::<Vec<u8>, _>((start, Bound::Unbounded)) {
            let (k, _) = kv?;
            if !k.starts_with(&prefix) {
                break;
            }
            if items.len() == limit {
                more = true;
                break;
            }
            let Some((dest, id)) = keys::split_dead_key(&k) else {
                return Err(corrupt(keys::DEAD, &k, "malformed dead-letter key"));
            };
            let Some(d) = self.delivery(&id)? else {
                return Err(corrupt(keys::DEAD, &k, "dead letter without a delivery"));
            };
            let DeliveryState::Dead(dead) = d.state else {
                return Err(corrupt(
                    keys::DEAD,
                    &k,
                    "dead letter for a delivery that is not dead",
                ));
            };
            items.push(DeadLetter {
                delivery_id: id,
                event_id: d.event_id,
                destination: dest,
                dead_at: dead.at,
                error: dead.error,
                attempts: d.attempts,
                fallback_to: d.fallback_to,
            });
            last = Some(k.to_vec());
        }
        Ok(DeadPage {
            items,
            next: if more { last.map(DeadCursor) } else { None },
        })
    }

    /// Requeues ids in one transaction; returns what happened to each.
    fn requeue_many(
        &self,
        ids: &[DeliveryId],
        now: Timestamp,
    ) -> Result<Vec<Requeue>, OutboxError> {
        let r = self.run(|t| {
            let mut out = Vec::new();
            let mut moves = Moves::new();
            let mut changes = DueChanges::new();
            for id in ids {
                let Some(mut rec) = tx_get_delivery(t, id)? else {
                    // An untouched delivery is pending (it has no record yet).
                    out.push(match untouched::event_of(&self.untouched, id.raw()) {
                        Some(_) => Requeue::NotDead(StateKind::Pending),
                        None => Requeue::NotFound,
                    });
                    continue;
                };
                let dead = match DeliveryState::from(rec.state.clone()) {
                    DeliveryState::Dead(d) => d,
                    other => {
                        out.push(Requeue::NotDead(other.kind()));
                        continue;
                    }
                };
                t[DE].remove(keys::dead_key(&rec.destination, id))?;
                changes.push(DueChange::Add(due::due_key(now, id)));
                let pending: Pending = dead.requeue(now);
                rec.state = (&DeliveryState::Pending(pending)).into();
                rec.attempts = 0;
                tx_put(&t[DL], keys::DELIVERIES, id.as_str().as_bytes(), &rec)?;
                moves.push((Some(StateKind::Dead), Some(StateKind::Pending)));
                out.push(Requeue::Requeued);
            }
            Ok((out, moves, changes))
        })?;
        match r {
            Ok((out, moves, changes)) => {
                lock(&self.due).apply(&changes);
                apply_moves(&self.depth, &moves);
                Ok(out)
            }
            Err(_) => Ok(Vec::new()),
        }
    }

    /// Sends one dead delivery again: pending, due `now`, attempt count
    /// reset to 0 (its history is kept).
    pub fn requeue_dead(&self, id: &DeliveryId, now: Timestamp) -> Result<Requeue, OutboxError> {
        Ok(self
            .requeue_many(std::slice::from_ref(id), now)?
            .pop()
            .unwrap_or(Requeue::NotFound))
    }

    /// Requeues every dead delivery of `destination` (as `requeue_dead`),
    /// 256 per transaction; returns how many.
    pub fn requeue_dead_destination(
        &self,
        destination: &str,
        now: Timestamp,
    ) -> Result<u64, OutboxError> {
        let mut ids = Vec::new();
        for kv in self.trees[DE].scan_prefix(keys::dead_prefix(destination)) {
            let (k, _) = kv?;
            let Some((_, id)) = keys::split_dead_key(&k) else {
                return Err(corrupt(keys::DEAD, &k, "malformed dead-letter key"));
            };
            ids.push(id);
        }
        let mut n = 0;
        for chunk in ids.chunks(CHUNK) {
            n += self
                .requeue_many(chunk, now)?
                .iter()
                .filter(|r| **r == Requeue::Requeued)
                .count() as u64;
        }
        Ok(n)
    }

    /// Removes deliveries delivered before `now - retention`, their
    /// payloads and attempts, and events left with no delivery, 256
    /// deliveries per transaction.
    pub fn purge_delivered(
        &self,
        now: Timestamp,
        retention: Duration,
    ) -> Result<PurgeReport, OutboxError> {
        // Maintenance time: also move the stored untouched horizon up,
        // which the committer only does while events arrive.
        self.store_horizon()?;
        let cutoff = now.saturating_sub(retention);
        let mut keys_found = Vec::new();
        for kv in self.trees[DV].range(..cutoff.to_be_bytes()) {
            let (k, _) = kv?;
            let Some((at, id)) = keys::split_time_key(&k) else {
                return Err(corrupt(keys::DELIVERED, &k, "malformed key"));
            };
            keys_found.push((Some(at), id));
        }
        // Deliveries delivered at their first attempt have no entry there
        // (`delivered`); their records are among those created before the
        // cutoff, as ids sort by creation time and delivery comes later.
        let created_before = DeliveryId::from_raw(id::first_raw_at(cutoff));
        for kv in self.trees[DL].range(..created_before.as_str().as_bytes()) {
            let (k, v) = kv?;
            if delivered::delivered_at(&v).is_some_and(|at| at < cutoff.as_millis()) {
                keys_found.push((None, delivery_key_id(&k)?));
            }
        }
        let mut report = PurgeReport::default();
        for chunk in keys_found.chunks(CHUNK) {
            let r = self.run(|t| {
                let mut rep = PurgeReport::default();
                let mut moves = Moves::new();
                let mut events: Vec<(String, Vec<&str>)> = Vec::new();
                // `at`: the purge-index entry's time, if it has one.
                for (at, id) in chunk {
                    if let Some(at) = at {
                        t[DV].remove(keys::time_key(*at, id))?;
                    }
                    let Some(rec) = tx_get_delivery(t, id)? else {
                        continue;
                    };
                    if !matches!(rec.state, record::StoredState::Delivered { .. }) {
                        continue; // stale index entry; the record moved on
                    }
                    let dk = id.as_str().as_bytes();
                    t[DL].remove(dk)?;
                    let mut last = None;
                    for seq in 0..rec.log_len {
                        last = t[AT].remove(keys::attempt_key(id, seq))?;
                    }
                    // The delivering attempt is logged only in databases
                    // written before it moved into the state.
                    let logged_delivery = match &last {
                        Some(v) => matches!(
                            record::decode::<AttemptRecord>(keys::ATTEMPTS, dk, v),
                            Ok(AttemptRecord {
                                outcome: StoredOutcome::Delivered { .. },
                                ..
                            })
                        ),
                        None => false,
                    };
                    rep.deliveries += 1;
                    rep.attempts += u64::from(rec.log_len) + u64::from(!logged_delivery);
                    moves.push((Some(StateKind::Delivered), None));
                    match events.iter_mut().find(|(e, _)| *e == rec.event_id) {
                        Some((_, gone)) => gone.push(id.as_str()),
                        None => events.push((rec.event_id, vec![id.as_str()])),
                    }
                }
                for (eid, gone) in &events {
                    let Some(mut ev) = tx_get_event(t, eid)? else {
                        continue;
                    };
                    // The purged deliveries leave their event too: a listed
                    // delivery without a record would read as untouched.
                    ev.deliveries.retain(|r| !gone.contains(&r.id.as_str()));
                    let mut left = false;
                    for r in &ev.deliveries {
                        // Untouched first (see `load`).
                        let untouched = DeliveryId::parse(&r.id)
                            .and_then(|d| untouched::event_of(&self.untouched, d.raw()))
                            .is_some();
                        if untouched || t[DL].get(r.id.as_bytes())?.is_some() {
                            left = true;
                            break;
                        }
                    }
                    if left {
                        tx_put_event(t, eid, &ev)?;
                    } else {
                        t[EV].remove(eid.as_bytes())?;
                        rep.events += 1;
                    }
                }
                Ok((rep, moves))
            })?;
            if let Ok((rep, moves)) = r {
                apply_moves(&self.depth, &moves);
                report.deliveries += rep.deliveries;
                report.attempts += rep.attempts;
                report.events += rep.events;
            }
        }
        Ok(report)
    }

    /// Forgets idempotency keys older than the window; returns how many.
    /// Expired keys are already ignored by `enqueue`; this reclaims their
    /// memory.
    pub fn purge_idempotency(&self, now: Timestamp) -> Result<u64, OutboxError> {
        Ok(lock(&self.idempotency).purge(now))
    }

    /// Deliveries by state (kept in memory, counted at open).
    pub fn depth(&self) -> Depth {
        *lock(&self.depth)
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
        let h = untouched::horizon(&self.untouched, &self.ids);
        self.db.flush()?;
        raise_horizon(&self.meta, h)
    }
}

/// Stores `h` as the untouched horizon unless a later one is stored.
fn raise_horizon(meta: &sled::Tree, h: u128) -> Result<(), OutboxError> {
    meta.fetch_and_update(keys::UNTOUCHED_FROM, |old| {
        let old = old
            .and_then(|v| <[u8; 16]>::try_from(v).ok())
            .map_or(0, u128::from_be_bytes);
        Some(old.max(h).to_be_bytes().to_vec())
    })?;
    Ok(())
}

/// The stored untouched horizon; 0 (read every event) when none is.
fn stored_horizon(meta: &sled::Tree) -> Result<u128, OutboxError> {
    match meta.get(keys::UNTOUCHED_FROM)? {
        None => Ok(0),
        Some(v) => <[u8; 16]>::try_from(v.as_ref())
            .map(u128::from_be_bytes)
            .map_err(|_| corrupt(keys::META, keys::UNTOUCHED_FROM, "malformed horizon")),
    }
}

/// What the open rebuilds from the event records.
struct FromEvents {
    untouched: Untouched,
    /// The largest untouched delivery id: the id generator must start past
    /// it, and no key holds it.
    largest: u128,
    idempotency: Idempotency,
}

/// One scan of the events the open must read, for two indexes:
/// - the **untouched deliveries** (listed by their event, no record of
///   their own) of the events from `horizon` on: each is pending, due when
///   its event was received (counted in `depth`, added to `due`);
/// - the **idempotency keys** of the events received within `window`
///   before `now`. An event's id starts with a time no earlier than its
///   `received_at` (ids never decrease), so those events start at the
///   first id of `now - window`.
///
/// The scan starts at the earlier of the two and reads each record in
/// place for what its range needs.
fn scan_events(
    trees: &[sled::Tree],
    horizon: u128,
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
    };
    let from = EventId::from_raw(horizon.min(recent));
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
        if event < horizon {
            continue;
        }
        let (at, refs) = record::refs_in(&k, &v)?;
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
