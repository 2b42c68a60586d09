//! Enqueue: `Outbox::enqueue` encodes the event record and its ids on the
//! caller's thread; the group-commit thread (`outbox-commit`, see
//! `commit`) checks each job (idempotency, backpressure, free space),
//! writes every
//! accepted one in one atomic batch, then tells the in-memory indexes
//! (`Memory`) and stores the untouched horizon of an earlier, flushed
//! batch.
//!
//! Invariants (crate docs; ARCHITECTURE.md "Invariants"): `enqueue`
//! answers only after a flush that started after its write (duplicates
//! too); a refused job writes nothing; an enqueue writes one key, its event
//! record, and inserts without reading first (ids only increase); the
//! indexes learn of a write only after it was applied; the stored horizon
//! relies only on flushed writes. An event without deliveries (unrouted)
//! counts toward `max_unrouted` until purged, not toward `max_pending`;
//! every accepted event counts its record's bytes against the free space
//! above `min_free_bytes`, checked once per batch.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};

use super::kept::KeptJob;
use super::memory::Memory;
use super::{Outbox, lock, no_nul, raise_horizon, refs_to_pairs};
use crate::commit::{Durability, WaitError};
use crate::due::{self, DueKey};
use crate::error::{EnqueueError, OutboxError};
use crate::id::{DeliveryId, EventId, TimerId};
use crate::idempotency::Idempotency;
use crate::keys;
use crate::record::{DeliveryRef, EventRecord};
use crate::state::StateKind;
use crate::time::Timestamp;
use crate::timers::stage::{JobTimer, Refused, Stage};
use crate::timers::{self, NewTimer, Timer, TimerEffect, TimerOp};
use crate::types::{Enqueued, NewDelivery, NewEvent};
use crate::untouched::{self, InFlight};

impl Outbox {
    /// Stores `event` with one pending delivery (due now) per entry of
    /// `deliveries`, as one record (the deliveries get records of their
    /// own when they first change; see `untouched`), and returns once a
    /// flush covers it: an `Ok` answer survives a crash.
    /// Concurrent calls share that transaction and flush (see `commit`).
    ///
    /// A (source, idempotency key) accepted within the window answers
    /// [`Enqueued::Duplicate`] (also only once durable) and writes nothing.
    /// Past `max_pending` unfinished deliveries (or, for an event without
    /// deliveries, past `max_unrouted` stored unrouted events) it writes
    /// nothing and answers [`EnqueueError::Backpressure`]; when the record
    /// would leave less than `min_free_bytes` free on the file system, it
    /// writes nothing and answers [`EnqueueError::StorageFull`].
    pub async fn enqueue(
        &self,
        event: NewEvent,
        deliveries: Vec<NewDelivery>,
    ) -> Result<Enqueued, EnqueueError> {
        self.enqueue_timed(event, deliveries, TimerOp::None)
            .await
            .map(|(enqueued, _)| enqueued)
    }

    /// [`Outbox::enqueue`], arming or disarming a timer in the same atomic
    /// write (see `timers`): when it answers `Ok`, the event and the
    /// timer change are both durable, or (a duplicate) neither was made.
    pub async fn enqueue_timed(
        &self,
        event: NewEvent,
        deliveries: Vec<NewDelivery>,
        timer: TimerOp,
    ) -> Result<(Enqueued, TimerEffect), EnqueueError> {
        self.enqueue_arming(event, deliveries, timer, Vec::new())
            .await
    }

    /// [`Outbox::enqueue_timed`] that also arms each of `arms` (replacing
    /// its key's armed timer) in the same atomic write, after `timer`. The
    /// effect answered is `timer`'s; arming cannot be refused.
    pub async fn enqueue_arming(
        &self,
        event: NewEvent,
        deliveries: Vec<NewDelivery>,
        timer: TimerOp,
        arms: Vec<NewTimer>,
    ) -> Result<(Enqueued, TimerEffect), EnqueueError> {
        let now = self.clock.now();
        let timer = match timer {
            TimerOp::None => JobTimer::None,
            TimerOp::Disarm { key } => {
                no_nul("timer key", &key)?;
                JobTimer::Disarm { key }
            }
            TimerOp::Arm(t) => self.arm_job(t, now)?,
        };
        let arms = arms
            .into_iter()
            .map(|t| self.arm_job(t, now))
            .collect::<Result<Vec<_>, _>>()?;
        match self.submit(event, deliveries, (timer, arms), None).await? {
            Submitted::Done(enqueued, effect) => Ok((enqueued, effect)),
            // Only a fire can find its timer gone.
            Submitted::TimerGone => Err(EnqueueError::Invalid {
                field: "timer",
                reason: "no timer to fire was named",
            }),
        }
    }

    /// Fires the armed timer `id`: removes it, leaves its fired mark and
    /// enqueues `event` with `deliveries`, in one atomic write, flushed
    /// before it answers. `Ok(None)` when the timer is no longer armed
    /// (disarmed or cancelled meanwhile): nothing was written.
    pub async fn fire_timer(
        &self,
        id: &TimerId,
        event: NewEvent,
        deliveries: Vec<NewDelivery>,
    ) -> Result<Option<Enqueued>, EnqueueError> {
        self.fire_timer_arming(id, event, deliveries, Vec::new())
            .await
    }

    /// [`Outbox::fire_timer`] that also arms each of `arms` in the same
    /// atomic write (see [`Outbox::enqueue_arming`]); nothing is armed
    /// when the timer is no longer armed.
    pub async fn fire_timer_arming(
        &self,
        id: &TimerId,
        event: NewEvent,
        deliveries: Vec<NewDelivery>,
        arms: Vec<NewTimer>,
    ) -> Result<Option<Enqueued>, EnqueueError> {
        let now = self.clock.now();
        let arms = arms
            .into_iter()
            .map(|t| self.arm_job(t, now))
            .collect::<Result<Vec<_>, _>>()?;
        let job = JobTimer::Fire { id: id.clone() };
        match self.submit(event, deliveries, (job, arms), None).await? {
            Submitted::Done(enqueued, _) => Ok(Some(enqueued)),
            Submitted::TimerGone => Ok(None),
        }
    }

    /// `t` encoded for the committer, with a new id.
    pub(super) fn arm_job(&self, t: NewTimer, now: Timestamp) -> Result<JobTimer, EnqueueError> {
        no_nul("timer key", &t.key)?;
        let id = TimerId::from_raw(self.mem.ids.next(now));
        let deadline = t.deadline;
        let key = t.key.clone();
        let record = timers::record::encode(&Timer {
            id: id.clone(),
            key: t.key,
            kind: t.kind,
            source: t.source,
            armed_at: now,
            deadline,
            payload: t.payload,
        });
        Ok(JobTimer::Arm {
            id,
            key,
            deadline,
            record: record.into(),
        })
    }

    pub(super) async fn submit(
        &self,
        event: NewEvent,
        deliveries: Vec<NewDelivery>,
        (timer, arms): (JobTimer, Vec<JobTimer>),
        kept: Option<KeptJob>,
    ) -> Result<Submitted, EnqueueError> {
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
        let flight = InFlight::begin(&self.mem.untouched, &self.mem.ids, now);
        let event_id = EventId::from_raw(flight.raw());
        let ids: Vec<DeliveryId> = destinations
            .iter()
            .map(|_| DeliveryId::from_raw(self.mem.ids.next(now)))
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
            timer,
            arms,
            kept,
        };
        let outcome = self.commit.submit(job).await.map_err(|e| match e {
            WaitError::Failed(msg) => EnqueueError::Flush(msg.to_string()),
            WaitError::Closed => EnqueueError::Closed,
        })?;
        match outcome {
            JobOutcome::Accepted(effect) => Ok(Submitted::Done(
                Enqueued::Accepted {
                    event_id,
                    deliveries: destinations.into_iter().zip(ids).collect(),
                },
                effect,
            )),
            JobOutcome::Duplicate(event_id, deliveries) => Ok(Submitted::Done(
                Enqueued::Duplicate {
                    event_id,
                    deliveries,
                },
                TimerEffect::None,
            )),
            JobOutcome::TimerGone => Ok(Submitted::TimerGone),
            JobOutcome::Backpressure => Err(EnqueueError::Backpressure {
                retry_after: self.retry_after,
            }),
            JobOutcome::StorageFull { available, reserve } => Err(EnqueueError::StorageFull {
                available,
                reserve,
                retry_after: self.retry_after,
            }),
            JobOutcome::Failed(e) => Err(e.into()),
        }
    }
}

/// What the committer made of a submitted job.
pub(super) enum Submitted {
    Done(Enqueued, TimerEffect),
    /// The timer to fire is no longer armed: nothing written.
    TimerGone,
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
    /// The timer change written with the event (see `timers`).
    timer: JobTimer,
    /// Timers armed with the event after `timer` (each an `Arm`).
    arms: Vec<JobTimer>,
    /// The kept record written (or removed) with the event (see `kept`).
    kept: Option<KeptJob>,
}

/// The committer's answer to one [`EnqueueJob`].
pub(crate) enum JobOutcome {
    Accepted(TimerEffect),
    /// The timer to fire is no longer armed: nothing written.
    TimerGone,
    Duplicate(EventId, Vec<(String, DeliveryId)>),
    Backpressure,
    /// The record does not fit above the free-space reserve.
    StorageFull {
        available: u64,
        reserve: u64,
    },
    Failed(OutboxError),
}

/// What an enqueue may store: the bounds and the free-space reserve.
pub(super) struct Limits {
    pub(super) max_pending: u64,
    pub(super) max_unrouted: u64,
    pub(super) min_free_bytes: u64,
    /// The database directory, whose file system's free space is checked.
    pub(super) path: PathBuf,
}

/// The room one batch has left, counted down as it accepts jobs.
struct Room {
    /// Deliveries that may still be added.
    active: u64,
    /// Unrouted events that may still be added.
    unrouted: u64,
    /// Free bytes when the batch started (`None`: not checked).
    available: Option<u64>,
    /// Bytes the batch's accepted records take.
    used: u64,
}

/// What the committer needs to write enqueues: shared with `Outbox`.
pub(super) struct Writer {
    events: sled::Tree,
    /// The `timers`, `timers_fired` and `kept` trees, written with the
    /// events tree in one transaction when a batch changes any of them.
    timers: sled::Tree,
    fired: sled::Tree,
    kept: sled::Tree,
    meta: sled::Tree,
    mem: Arc<Memory>,
    limits: Limits,
    /// A horizon computed before a batch that was flushed: safe to store
    /// (see `untouched`).
    covered: Option<u128>,
    /// The horizon stored last.
    stored: u128,
}

/// The idempotency keys accepted so far in one batch, and by which job.
type BatchKeys<'a> = HashMap<&'a [u8], usize>;

impl Writer {
    /// The committer's writer for an outbox whose stored untouched horizon
    /// is `stored`.
    pub(super) fn new(
        [events, timers, fired, kept]: [sled::Tree; 4],
        meta: sled::Tree,
        mem: Arc<Memory>,
        limits: Limits,
        stored: u128,
    ) -> Self {
        Self {
            events,
            timers,
            fired,
            kept,
            meta,
            mem,
            limits,
            covered: None,
            stored,
        }
    }

    /// Writes a batch of enqueues as one atomic sled batch. Each job is checked
    /// (idempotency, backpressure) before any of its writes,
    /// so a refused job writes nothing while the others commit; later jobs
    /// see earlier ones of the same batch (a repeated key is a duplicate).
    pub(super) fn apply(&mut self, jobs: &[EnqueueJob]) -> Vec<(JobOutcome, Durability)> {
        self.store_horizon();
        let horizon = untouched::horizon(&self.mem.untouched, &self.mem.ids);
        let mut room = self.room();
        // Held across the write and the additions after it: only
        // this thread adds keys, and `purge_idempotency` waits.
        let mut idem = lock(&self.mem.idempotency);
        // Held likewise: every timer change is planned and written here
        // or, for a cancel, under this lock too.
        let mut timers = lock(&self.mem.timers);
        let mut stage = Stage::new(&mut timers, &self.fired);
        // One atomic batch on one tree: every job only inserts a new key,
        // so there is nothing for a transaction to isolate (and a
        // transaction costs more per key). A batch that accepts nothing
        // writes nothing.
        let mut out = Vec::with_capacity(jobs.len());
        let mut keys = BatchKeys::new();
        let mut batch = sled::Batch::default();
        let mut kept = sled::Batch::default();
        let mut kept_touched = false;
        for i in 0..jobs.len() {
            let one = self.apply_one(jobs, i, &idem, &mut keys, &mut room);
            let one = match one {
                JobOutcome::Accepted(_) => {
                    match stage.plan_with_arms(&jobs[i].timer, &jobs[i].arms, jobs[i].now) {
                        Ok(effect) => {
                            batch.insert(jobs[i].event_key.clone(), jobs[i].event.clone());
                            if let Some((key, value)) = &jobs[i].kept {
                                match value {
                                    Some(v) => kept.insert(key.clone(), v.clone()),
                                    None => kept.remove(key.clone()),
                                }
                                kept_touched = true;
                            }
                            JobOutcome::Accepted(effect)
                        }
                        Err(Refused::Gone) => {
                            keys.retain(|_, j| *j != i);
                            JobOutcome::TimerGone
                        }
                        Err(Refused::Failed(e)) => JobOutcome::Failed(e),
                    }
                }
                other => other,
            };
            out.push(one);
        }
        let written = if !out.iter().any(|o| matches!(o, JobOutcome::Accepted(_))) {
            Ok(())
        } else if stage.touched() || kept_touched {
            self.write_with_timers(&batch, &stage, &kept)
        } else {
            self.events.apply_batch(batch)
        };
        if let Err(e) = written {
            stage.rollback();
            // sled refuses every write after its first failed one.
            lock(&self.mem.failed).get_or_insert_with(|| format!("a write failed: {e}"));
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
        if stage.committed() {
            self.mem.timers_changed.notify_one();
        }
        drop(timers);
        // Written: the in-memory indexes learn what was accepted.
        let accepted = || {
            out.iter()
                .zip(jobs)
                .filter(|(o, _)| matches!(o, JobOutcome::Accepted(_)))
                .map(|(_, j)| j)
        };
        let added: usize = accepted().map(|j| j.deliveries.len()).sum();
        {
            let mut unrouted = accepted().filter(|j| j.deliveries.is_empty()).peekable();
            if unrouted.peek().is_some() {
                lock(&self.mem.unrouted).extend(unrouted.map(|j| j.flight.raw()));
            }
        }
        if added > 0 {
            untouched::accept(
                &self.mem.untouched,
                accepted().map(|j| (j.flight.raw(), &j.deliveries[..])),
            );
            {
                let mut due = lock(&self.mem.due);
                for &d in accepted().flat_map(|j| &j.deliveries) {
                    due.add(d);
                }
            }
            let mut d = lock(&self.mem.depth);
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
                    JobOutcome::Accepted(_) | JobOutcome::Duplicate(..) => Durability::AfterFlush,
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

    /// Writes the batch's event records, its timer changes and its kept
    /// records in one transaction over the four trees (a `Batch` covers
    /// one tree).
    fn write_with_timers(
        &self,
        events: &sled::Batch,
        stage: &Stage<'_>,
        kept: &sled::Batch,
    ) -> sled::Result<()> {
        let trees = (&self.events, &self.timers, &self.fired, &self.kept);
        let r = trees.transaction(|(e, t, f, k)| {
            e.apply_batch(events)?;
            t.apply_batch(&stage.timers_batch)?;
            f.apply_batch(&stage.fired_batch)?;
            k.apply_batch(kept)?;
            Ok::<(), ConflictableTransactionError<()>>(())
        });
        match r {
            Ok(()) => Ok(()),
            Err(TransactionError::Storage(e)) => Err(e),
            // Nothing aborts this transaction.
            Err(TransactionError::Abort(())) => Err(sled::Error::ReportableBug(
                "the timer transaction aborted".into(),
            )),
        }
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

    /// The room a batch starts with: what the bounds leave, and the free
    /// space (read once per batch: one `statvfs`).
    fn room(&self) -> Room {
        let active = lock(&self.mem.depth).active();
        let unrouted = u64::try_from(lock(&self.mem.unrouted).len()).unwrap_or(u64::MAX);
        let available = if self.limits.min_free_bytes == 0 {
            None
        } else {
            match fs2::available_space(&self.limits.path) {
                Ok(free) => Some(free),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the outbox's free disk space; not checking it");
                    None
                }
            }
        };
        Room {
            active: self.limits.max_pending.saturating_sub(active),
            unrouted: self.limits.max_unrouted.saturating_sub(unrouted),
            available,
            used: 0,
        }
    }

    /// Checks `jobs[index]` (its write is added by `apply`); `keys` holds
    /// the idempotency keys the batch's earlier jobs accepted (not yet in
    /// `idem`).
    fn apply_one<'a>(
        &self,
        jobs: &'a [EnqueueJob],
        index: usize,
        idem: &Idempotency,
        keys: &mut BatchKeys<'a>,
        room: &mut Room,
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
        // An unrouted event is bounded on its own: it waits for no
        // delivery, only for its purge, so it must not take routed events'
        // room (and a flood of them must not fill the disk).
        let bound = if n == 0 {
            &mut room.unrouted
        } else {
            &mut room.active
        };
        if *bound < n.max(1) {
            return JobOutcome::Backpressure;
        }
        let size = u64::try_from(job.event.len()).unwrap_or(u64::MAX);
        if let Some(available) = room.available {
            let reserve = self.limits.min_free_bytes;
            if room.used.saturating_add(size).saturating_add(reserve) > available {
                return JobOutcome::StorageFull { available, reserve };
            }
        }
        *bound -= n.max(1);
        room.used = room.used.saturating_add(size);
        // No look before the insert (`apply` adds it once the timer change
        // is planned): ids come from a generator seeded past every stored
        // id at open (`IdGen::after`), so they name nothing yet.
        // The due, idempotency and untouched entries are added to memory
        // once the batch is written (see `apply`).
        if let Some(ik) = &job.idempotency {
            keys.insert(ik, index);
        }
        JobOutcome::Accepted(TimerEffect::None)
    }
}
