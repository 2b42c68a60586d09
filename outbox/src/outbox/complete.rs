//! Recording outcomes: `complete` (its own transaction) and
//! `complete_shared` (many concurrent completions in one transaction, on
//! the `outbox-outcomes` committer thread).
//!
//! Why share: in sled 0.34 every transaction seals and writes the log
//! buffer twice, whatever it holds, so one transaction per completion made
//! the dispatcher's bookkeeping cost more than the delivery itself (sled's
//! I/O threads alone took a third of the CPU of a drain). Completions are
//! not flushed (see the crate docs), so sharing adds no wait for a disk
//! sync, only the committer's brief linger.
//!
//! Invariants (crate docs; ARCHITECTURE.md "Invariants"): an outcome is
//! accepted only from the current lease holder (anything else is
//! `LeaseLost` and writes nothing); each completion is one transaction, or
//! one insert for an untouched delivery delivered at its first attempt;
//! the leases' lock is held across the write and the index changes after
//! it, taken before the due index's lock and any sled call.

use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};

use super::memory::Memory;
use super::{
    AT, Abort, DE, DL, DV, EV, Moves, Outbox, Tx, abort, apply_moves, corrupt, lock,
    tx_get_delivery, tx_get_event, tx_put, tx_put_event,
};
use crate::commit::{Durability, WaitError};
use crate::delivered::FirstDelivered;
use crate::due::{DueChange, DueChanges, due_key};
use crate::error::OutboxError;
use crate::id::{DeliveryId, EventId};
use crate::keys;
use crate::leases::Leases;
use crate::record::{
    self, AttemptRecord, DeliveryRecord, DeliveryRef, RECORD_VERSION, StoredOutcome,
};
use crate::state::{DeliveryState, StateKind};
use crate::time::Timestamp;
use crate::types::{Claim, Completion, Outcome};
use crate::untouched::{self, Untouched};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// One outcome to record: what the transaction needs of the claim (not
/// its payload), made by the caller so the committer only writes.
pub(crate) struct CompleteJob {
    delivery_id: DeliveryId,
    owner: String,
    token: u64,
    outcome: Outcome,
    now: Timestamp,
    /// The id a fallback delivery gets, if the outcome makes one (taken
    /// only then: most outcomes need no id).
    fallback_id: Option<DeliveryId>,
    /// The claim's destination (for a first-attempt delivered record).
    destination: String,
}

impl CompleteJob {
    fn new(outbox: &Outbox, claim: &Claim, outcome: Outcome, now: Timestamp) -> Self {
        let falls_back = matches!(
            outcome,
            Outcome::Dead {
                fallback: Some(_),
                ..
            }
        );
        CompleteJob {
            delivery_id: claim.delivery_id.clone(),
            owner: claim.owner.clone(),
            token: claim.token,
            outcome,
            now,
            fallback_id: falls_back.then(|| DeliveryId::from_raw(outbox.mem.ids.next(now))),
            destination: claim.destination.clone(),
        }
    }
}

/// A fallback destination with a NUL byte cannot be a key.
fn invalid_fallback(outcome: &Outcome) -> bool {
    matches!(outcome, Outcome::Dead { fallback: Some(f), .. } if f.as_bytes().contains(&0))
}

/// A job `Recorder::first_deliveries` picked: its index in the batch, its
/// event (raw id), the time its lease was taken at, its receipt.
struct First<'j> {
    index: usize,
    event: u128,
    leased_at: Timestamp,
    detail: &'j str,
    remote_id: Option<&'j str>,
}

/// What the completions committer writes with: shared with `Outbox`.
pub(crate) struct Recorder {
    pub(crate) trees: Vec<sled::Tree>,
    pub(crate) mem: Arc<Memory>,
}

/// Ends the leases of `accepted` completions, and forgets those deliveries
/// as untouched: their records are written now.
fn end_leases<'a>(
    leases: &mut Leases,
    untouched: &Mutex<Untouched>,
    accepted: impl IntoIterator<Item = &'a CompleteJob>,
) {
    let mut written = Vec::new();
    for job in accepted {
        leases.end(&job.delivery_id, job.token);
        written.push(job.delivery_id.raw());
    }
    untouched::touch_all(untouched, written);
}

/// The jobs whose completion was accepted (not refused for a lost lease).
fn accepted<'a>(
    jobs: impl IntoIterator<Item = &'a CompleteJob>,
    out: &'a [Completion],
) -> impl Iterator<Item = &'a CompleteJob> {
    jobs.into_iter()
        .zip(out)
        .filter(|(_, c)| !matches!(c, Completion::LeaseLost { .. }))
        .map(|(job, _)| job)
}

impl Recorder {
    /// Records a batch: first-attempt deliveries as one insert each
    /// (`record_first_deliveries`), the rest in one transaction
    /// (`apply_transaction`). Answers in the order of `jobs`.
    ///
    /// The leases are locked across the writes, the ending of the
    /// accepted ones and the change to the due index, so a completion is
    /// checked against the lease and ends it atomically, and no claim sees
    /// the index between the commit and its update. Lock order is leases,
    /// then the due index or sled (as in `claim_due`), so none deadlock.
    pub(crate) fn apply(
        &self,
        jobs: &[CompleteJob],
    ) -> Vec<(Result<Completion, OutboxError>, Durability)> {
        let mut leases = lock(&self.mem.leases);
        let first = self.first_deliveries(jobs, &leases);
        let mut results = self.record_first_deliveries(jobs, &first, &mut leases);
        let mut picked = vec![false; jobs.len()];
        for f in &first {
            picked[f.index] = true;
        }
        let rest: Vec<usize> = (0..jobs.len()).filter(|&i| !picked[i]).collect();
        let rest_jobs: Vec<&CompleteJob> = rest.iter().map(|&i| &jobs[i]).collect();
        results.extend(
            rest.into_iter()
                .zip(self.apply_transaction(&rest_jobs, &mut leases)),
        );
        // Back in the order of `jobs`: each index is there once.
        results.sort_unstable_by_key(|(i, _)| *i);
        results
            .into_iter()
            .map(|(_, r)| (r, Durability::Now))
            .collect()
    }

    /// The jobs that are the first outcome of an untouched delivery, where
    /// that outcome is delivered, from the lease holder, and no other job
    /// of the batch is about the same delivery. Such a delivery has no
    /// record (untouched, checked under the leases' lock, which every
    /// writer of a leased delivery's record holds), so its whole change is
    /// one new key: `record_first_deliveries`.
    fn first_deliveries<'j>(&self, jobs: &'j [CompleteJob], leases: &Leases) -> Vec<First<'j>> {
        let raws: Vec<u128> = jobs.iter().map(|j| j.delivery_id.raw()).collect();
        let mut seen = HashMap::with_capacity(jobs.len());
        for &raw in &raws {
            *seen.entry(raw).or_insert(0u32) += 1;
        }
        let untouched = lock(&self.mem.untouched);
        let mut first = Vec::with_capacity(jobs.len());
        for (index, (job, &raw)) in jobs.iter().zip(&raws).enumerate() {
            let Outcome::Delivered { detail, remote_id } = &job.outcome else {
                continue;
            };
            let Some(lease) = leases.get(&job.delivery_id) else {
                continue;
            };
            if seen.get(&raw) != Some(&1) || !lease.held_by(&job.owner, job.token) {
                continue;
            }
            if let Some(event) = untouched.event_of(raw) {
                first.push(First {
                    index,
                    event,
                    leased_at: lease.at,
                    detail,
                    remote_id: remote_id.as_deref(),
                });
            }
        }
        first
    }

    /// Writes the compact record of each delivery `first_deliveries`
    /// picked: one insert each, no transaction needed, as each completion
    /// is that one key. Then, as after a transaction: the due index, the
    /// leases, the untouched set, the counters.
    fn record_first_deliveries(
        &self,
        jobs: &[CompleteJob],
        first: &[First<'_>],
        leases: &mut Leases,
    ) -> Vec<(usize, Result<Completion, OutboxError>)> {
        let mut out = Vec::with_capacity(first.len());
        let mut changes = DueChanges::new();
        let mut done = Vec::with_capacity(first.len());
        for f in first {
            let job = &jobs[f.index];
            // An untouched delivery is pending, due (and created) when its
            // event was received: that is the index time it was leased at.
            let rec = FirstDelivered {
                event: f.event,
                destination: &job.destination,
                created_at: f.leased_at.as_millis(),
                delivered_at: job.now.as_millis(),
                detail: f.detail,
                remote_id: f.remote_id,
            };
            let key = job.delivery_id.as_str().as_bytes();
            match self.trees[DL].insert(key, rec.encode()) {
                Ok(_) => {
                    changes.push(DueChange::Remove(due_key(f.leased_at, &job.delivery_id)));
                    done.push(job);
                    out.push((f.index, Ok(Completion::Delivered)));
                }
                Err(e) => out.push((f.index, Err(e.into()))),
            }
        }
        lock(&self.mem.due).apply(&changes);
        end_leases(leases, &self.mem.untouched, done.iter().copied());
        let mut depth = lock(&self.mem.depth);
        for _ in &done {
            depth.apply(Some(StateKind::Claimed), Some(StateKind::Delivered));
        }
        out
    }

    /// Records `jobs` in one transaction. If it aborts (corruption or a
    /// fallback id collision, both rare), each job runs on its own so one
    /// bad delivery cannot fail the others.
    fn apply_transaction(
        &self,
        jobs: &[&CompleteJob],
        leases: &mut Leases,
    ) -> Vec<Result<Completion, OutboxError>> {
        if jobs.is_empty() {
            return Vec::new();
        }
        let held = &*leases;
        let r = <[sled::Tree] as Transactional<Abort>>::transaction(&self.trees[..], |t| {
            let mut out = Vec::with_capacity(jobs.len());
            let mut moves = Moves::new();
            let mut changes = DueChanges::new();
            for job in jobs {
                let (c, m) = complete_in(t, job, held, &self.mem.untouched, &mut changes)?;
                out.push(c);
                moves.extend(m);
            }
            Ok((out, moves, changes))
        });
        match r {
            Ok((out, moves, changes)) => {
                lock(&self.mem.due).apply(&changes);
                end_leases(
                    leases,
                    &self.mem.untouched,
                    accepted(jobs.iter().copied(), &out),
                );
                apply_moves(&self.mem.depth, &moves);
                out.into_iter().map(Ok).collect()
            }
            Err(TransactionError::Storage(e)) => jobs
                .iter()
                .map(|_| Err(OutboxError::Storage(e.clone())))
                .collect(),
            Err(TransactionError::Abort(_)) => jobs
                .iter()
                .map(|j| self.apply_one_locked(j, leases))
                .collect(),
        }
    }

    fn apply_one_locked(
        &self,
        job: &CompleteJob,
        leases: &mut Leases,
    ) -> Result<Completion, OutboxError> {
        let held = &*leases;
        let r = <[sled::Tree] as Transactional<Abort>>::transaction(&self.trees[..], |t| {
            let mut changes = DueChanges::new();
            let (c, m) = complete_in(t, job, held, &self.mem.untouched, &mut changes)?;
            Ok((c, m, changes))
        });
        match r {
            Ok((c, moves, changes)) => {
                lock(&self.mem.due).apply(&changes);
                end_leases(
                    leases,
                    &self.mem.untouched,
                    accepted([job], std::slice::from_ref(&c)),
                );
                apply_moves(&self.mem.depth, &moves);
                Ok(c)
            }
            Err(TransactionError::Abort(Abort::Corrupt(e))) => Err(e),
            Err(TransactionError::Abort(Abort::Collision)) => Err(corrupt(
                keys::DELIVERIES,
                job.delivery_id.as_str().as_bytes(),
                "fallback id collided",
            )),
            Err(TransactionError::Storage(e)) => Err(e.into()),
        }
    }
}

impl Outbox {
    /// Records the outcome of `claim` at `now`, in one transaction. Refused
    /// with [`Completion::LeaseLost`] (nothing written) unless the delivery
    /// is still claimed by the same owner under the same token; a claim
    /// whose lease expired but that nobody re-claimed is still accepted.
    ///
    /// `Dead { fallback: Some(dest) }` also creates one pending delivery to
    /// `dest` (due now, same payload, same event) and links both ways.
    pub fn complete(
        &self,
        claim: &Claim,
        outcome: Outcome,
        now: Timestamp,
    ) -> Result<Completion, OutboxError> {
        if invalid_fallback(&outcome) {
            return Ok(Completion::InvalidFallback);
        }
        let job = CompleteJob::new(self, claim, outcome, now);
        let mut one = self.recorder.apply(std::slice::from_ref(&job));
        match one.pop() {
            Some((r, _)) => r,
            None => Err(OutboxError::Closed("no outcome recorded".into())),
        }
    }

    /// [`Outbox::complete`], sharing one transaction with the completions
    /// made concurrently (the dispatcher's path). Same rules, same answers;
    /// like `complete` it does not wait for a flush.
    pub async fn complete_shared(
        &self,
        claim: &Claim,
        outcome: Outcome,
        now: Timestamp,
    ) -> Result<Completion, OutboxError> {
        if invalid_fallback(&outcome) {
            return Ok(Completion::InvalidFallback);
        }
        let job = CompleteJob::new(self, claim, outcome, now);
        match self.outcomes.submit(job).await {
            Ok(r) => r,
            Err(WaitError::Failed(msg)) => Err(OutboxError::Closed(msg.to_string())),
            Err(WaitError::Closed) => Err(OutboxError::Closed("the outbox is closing".into())),
        }
    }
}

/// The transaction of one completion; see [`Outbox::complete`]. What it
/// changes in the due index goes to `changes`, applied once it committed.
fn complete_in(
    t: &[TransactionalTree],
    job: &CompleteJob,
    leases: &Leases,
    untouched: &Mutex<Untouched>,
    changes: &mut DueChanges,
) -> Tx<(Completion, Moves)> {
    let id = &job.delivery_id;
    let dk = id.as_str().as_bytes();
    let now = job.now;
    let mut moves = Moves::new();
    // The lease holder is the only writer of this record, and it is us:
    // no completion of this delivery commits between these two looks.
    let found = match tx_get_delivery(t, id)? {
        Some(rec) => Some(rec),
        None => tx_get_untouched(t, id, untouched)?,
    };
    let Some(mut rec) = found else {
        return Ok((Completion::LeaseLost { current: None }, moves));
    };
    let state = DeliveryState::from(rec.state.clone());
    let lease = match leases.get(id) {
        Some(l) if l.held_by(&job.owner, job.token) => l,
        Some(_) => {
            return Ok((
                Completion::LeaseLost {
                    current: Some(StateKind::Claimed),
                },
                moves,
            ));
        }
        None => {
            return Ok((
                Completion::LeaseLost {
                    current: Some(state.kind()),
                },
                moves,
            ));
        }
    };
    // Under a lease only its holder changes the record; if it moved, an
    // earlier completion of this same claim (in this batch) got there first.
    if state.index_time() != Some(lease.at) {
        return Ok((
            Completion::LeaseLost {
                current: Some(state.kind()),
            },
            moves,
        ));
    }
    let claimed = lease.claimed();
    changes.push(DueChange::Remove(due_key(lease.at, id)));
    let seq = rec.log_len;
    let (new_state, stored_outcome, counted, completion) = match &job.outcome {
        Outcome::Delivered { detail, remote_id } => {
            t[DV].insert(keys::time_key(now, id), &[][..])?;
            (
                DeliveryState::Delivered(claimed.deliver(now, detail.clone(), remote_id.clone())),
                StoredOutcome::Delivered {
                    detail: detail.clone(),
                    remote_id: remote_id.clone(),
                },
                true,
                Completion::Delivered,
            )
        }
        Outcome::Retry {
            at,
            error,
            counts_as_attempt,
        } => {
            changes.push(DueChange::Add(due_key(*at, id)));
            (
                DeliveryState::Scheduled(claimed.retry(*at, error.clone())),
                StoredOutcome::Retry {
                    error: error.clone(),
                    next_due: at.as_millis(),
                },
                *counts_as_attempt,
                Completion::Scheduled { due: *at },
            )
        }
        Outcome::Dead { error, fallback } => {
            t[DE].insert(keys::dead_key(&rec.destination, id), &[][..])?;
            let made = match (fallback, &job.fallback_id) {
                (Some(dest), Some(fid)) => Some(make_fallback(
                    t,
                    job,
                    (dest, fid),
                    &mut rec,
                    &mut moves,
                    changes,
                )?),
                _ => None,
            };
            (
                DeliveryState::Dead(claimed.die(now, error.clone())),
                StoredOutcome::Dead {
                    error: error.clone(),
                    fallback_to: made.as_ref().map(|f| f.as_str().to_owned()),
                },
                true,
                Completion::Dead { fallback: made },
            )
        }
    };
    if counted {
        rec.attempts = rec.attempts.saturating_add(1);
    }
    moves.push((Some(StateKind::Claimed), Some(new_state.kind())));
    rec.state = (&new_state).into();
    // The attempt that delivers is not logged: the delivered state holds
    // its time and receipt, and `Outbox::delivery` shows it as the last
    // attempt. That saves a write on every delivered message.
    let log = !matches!(stored_outcome, StoredOutcome::Delivered { .. });
    if log {
        rec.log_len = rec.log_len.saturating_add(1);
    }
    tx_put(&t[DL], keys::DELIVERIES, dk, &rec)?;
    if log {
        let attempt = AttemptRecord {
            v: RECORD_VERSION,
            at: now.as_millis(),
            counted,
            outcome: stored_outcome,
        };
        tx_put(
            &t[AT],
            keys::ATTEMPTS,
            &keys::attempt_key(id, seq),
            &attempt,
        )?;
    }
    Ok((completion, moves))
}

/// The record of an untouched delivery, derived from its event (see
/// `untouched`), read inside a transaction.
fn tx_get_untouched(
    t: &[TransactionalTree],
    id: &DeliveryId,
    untouched: &Mutex<Untouched>,
) -> Tx<Option<DeliveryRecord>> {
    let Some(event) = untouched::event_of(untouched, id.raw()) else {
        return Ok(None);
    };
    let eid = EventId::from_raw(event);
    let ek = eid.as_str().as_bytes();
    let Some(ev) = t[EV].get(ek)? else {
        return abort(corrupt(
            keys::DELIVERIES,
            id.as_str().as_bytes(),
            "event missing",
        ));
    };
    match record::untouched_in(eid.as_str(), &ev, id.as_str()) {
        Ok(rec) => Ok(Some(rec)),
        Err(e) => abort(e),
    }
}

/// Creates the pending delivery to `dest` that a dead-lettered delivery
/// falls back to (same event, same payload), linked both ways.
fn make_fallback(
    t: &[TransactionalTree],
    job: &CompleteJob,
    (dest, fallback_id): (&str, &DeliveryId),
    rec: &mut DeliveryRecord,
    moves: &mut Moves,
    changes: &mut DueChanges,
) -> Tx<DeliveryId> {
    let id = &job.delivery_id;
    let dk = id.as_str().as_bytes();
    let fk = fallback_id.as_str().as_bytes();
    if t[DL].get(fk)?.is_some() {
        return Err(ConflictableTransactionError::Abort(Abort::Collision));
    }
    let Some(mut ev) = tx_get_event(t, &rec.event_id)? else {
        return abort(corrupt(keys::DELIVERIES, dk, "event missing"));
    };
    let Some(payload) = ev.payload_of(id.as_str()).map(<[u8]>::to_vec) else {
        return abort(corrupt(
            keys::EVENTS,
            rec.event_id.as_bytes(),
            "missing payload",
        ));
    };
    let frec = DeliveryRecord {
        v: RECORD_VERSION,
        event_id: rec.event_id.clone(),
        destination: dest.to_owned(),
        created_at: job.now.as_millis(),
        attempts: 0,
        log_len: 0,
        claims: 0,
        fallback_of: Some(id.as_str().to_owned()),
        fallback_to: None,
        state: record::StoredState::Pending {
            due: job.now.as_millis(),
        },
    };
    tx_put(&t[DL], keys::DELIVERIES, fk, &frec)?;
    changes.push(DueChange::Add(due_key(job.now, fallback_id)));
    ev.deliveries.push(DeliveryRef {
        destination: dest.to_owned(),
        id: fallback_id.as_str().to_owned(),
        payload,
    });
    tx_put_event(t, &rec.event_id, &ev)?;
    rec.fallback_to = Some(fallback_id.as_str().to_owned());
    moves.push((None, Some(StateKind::Pending)));
    Ok(fallback_id.clone())
}
