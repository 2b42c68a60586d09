//! Requeue: dead deliveries sent again, one or a destination's all (256 per
//! transaction): pending, due now, attempt count reset to 0, history kept.
//!
//! Invariants (crate docs; ARCHITECTURE.md "Invariants"): each chunk is one
//! transaction (the record, its dead-letter entry); the due index and the
//! counters change only after it committed; an untouched delivery is
//! pending, never dead.

use super::{CHUNK, DE, DL, Moves, Outbox, apply_moves, corrupt, lock, tx_get_delivery, tx_put};
use crate::due::{self, DueChange, DueChanges};
use crate::error::OutboxError;
use crate::id::DeliveryId;
use crate::keys;
use crate::state::{DeliveryState, Pending, StateKind};
use crate::time::Timestamp;
use crate::types::Requeue;
use crate::untouched;

impl Outbox {
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
                    out.push(match untouched::event_of(&self.mem.untouched, id.raw()) {
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
                lock(&self.mem.due).apply(&changes);
                apply_moves(&self.mem.depth, &moves);
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
}
