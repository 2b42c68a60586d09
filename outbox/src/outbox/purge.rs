//! Purge: deliveries delivered before the retention cutoff go, with their
//! attempts, and so do events left with no delivery (256 deliveries per
//! transaction); unrouted events (stored without any delivery) go by age;
//! idempotency keys past the window are forgotten.
//!
//! Invariants (crate docs; ARCHITECTURE.md "Invariants"): a purged
//! delivery leaves its event's list too, so no listed delivery without a
//! record reads as untouched by mistake; first-attempt deliveries have no
//! purge-index entry and are found among the deliveries created before the
//! cutoff (ids sort by creation time). The host's config keeps retention
//! at least the idempotency window, so no purge drops an event whose key
//! is still remembered; `purge_unrouted` enforces it itself. The unrouted
//! mark is stored only after a flush made the removals below it durable,
//! so no open skips an unrouted event a crash brought back.

use std::time::Duration;

use super::{
    AT, CHUNK, DL, DV, EV, Moves, Outbox, apply_moves, corrupt, delivery_key_id, lock, raise_mark,
    tx_get_delivery, tx_get_event, tx_put_event,
};
use crate::delivered;
use crate::error::OutboxError;
use crate::id::{self, DeliveryId, EventId};
use crate::keys;
use crate::record::{self, AttemptRecord, StoredOutcome};
use crate::state::StateKind;
use crate::time::Timestamp;
use crate::types::PurgeReport;
use crate::untouched;

impl Outbox {
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
                            .and_then(|d| untouched::event_of(&self.mem.untouched, d.raw()))
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
                apply_moves(&self.mem.depth, &moves);
                report.deliveries += rep.deliveries;
                report.attempts += rep.attempts;
                report.events += rep.events;
            }
        }
        Ok(report)
    }

    /// Removes the unrouted events (stored without any delivery) received
    /// before `now - retention`, 256 per batch; returns how many. A
    /// retention shorter than the idempotency window counts as the window:
    /// an event's key is remembered, across restarts too, through its
    /// record.
    pub fn purge_unrouted(&self, now: Timestamp, retention: Duration) -> Result<u64, OutboxError> {
        // Ids start with a time no earlier than the event's `received_at`:
        // an id below the cutoff's first id was received before it.
        let cutoff = id::first_raw_at(now.saturating_sub(retention.max(self.window)));
        // No event made from now on may fall below the mark stored below,
        // even with the clock set back.
        self.mem.ids.raise_to(cutoff);
        let old: Vec<u128> = lock(&self.mem.unrouted).range(..cutoff).copied().collect();
        for chunk in old.chunks(CHUNK) {
            // An event without deliveries is only ever written once and
            // read: removing it touches nothing else.
            let mut batch = sled::Batch::default();
            for &raw in chunk {
                batch.remove(EventId::from_raw(raw).as_str().as_bytes());
            }
            self.trees[EV].apply_batch(batch)?;
            let mut unrouted = lock(&self.mem.unrouted);
            for raw in chunk {
                unrouted.remove(raw);
            }
        }
        // Every unrouted event below the cutoff is gone once this flush
        // completes: later opens need not look below it.
        self.db.flush()?;
        raise_mark(&self.meta, keys::UNROUTED_FROM, cutoff)?;
        Ok(u64::try_from(old.len()).unwrap_or(u64::MAX))
    }

    /// Forgets idempotency keys older than the window; returns how many.
    /// Expired keys are already ignored by `enqueue`; this reclaims their
    /// memory.
    pub fn purge_idempotency(&self, now: Timestamp) -> Result<u64, OutboxError> {
        Ok(lock(&self.mem.idempotency).purge(now))
    }
}
