//! Reads: one delivery with its history, one event with its deliveries,
//! pages of dead letters; and `load`, the record of a delivery whether it
//! is stored or still untouched (derived from its event), which claims use
//! too. Nothing here writes.
//!
//! Invariants (crate docs; ARCHITECTURE.md "Invariants"): a listed delivery
//! without a record is untouched, so `load` looks in the untouched set
//! before the tree (a completion writes the record before it forgets the
//! delivery there); a leased delivery reads as claimed; the delivering
//! attempt is kept in the delivered state, not the log, and shown last.

use std::ops::Bound;

use super::{
    AT, DE, DL, EV, Outbox, corrupt, lock, parse_delivery_id, parse_event_id, refs_to_pairs,
};
use crate::error::OutboxError;
use crate::id::{DeliveryId, EventId};
use crate::keys;
use crate::record::{self, AttemptRecord, DeliveryRecord, EventRecord, StoredOutcome};
use crate::state::DeliveryState;
use crate::time::Timestamp;
use crate::types::{
    Attempt, AttemptOutcome, DeadCursor, DeadLetter, DeadPage, DeliveryView, EventView,
};
use crate::untouched;

impl Outbox {
    /// The record of delivery `id`: stored, or derived from its event if
    /// it is untouched (then with the event's bytes, read to derive it).
    fn load(
        &self,
        id: &DeliveryId,
    ) -> Result<Option<(DeliveryRecord, Option<sled::IVec>)>, OutboxError> {
        // Untouched first: a completion writes the record before it
        // forgets the delivery here, so a miss here and then in the tree
        // means there is no such delivery.
        let event = untouched::event_of(&self.mem.untouched, id.raw());
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
    pub(super) fn load_leased(
        &self,
        id: &DeliveryId,
    ) -> Result<Option<(DeliveryRecord, Option<sled::IVec>)>, OutboxError> {
        match untouched::event_of(&self.mem.untouched, id.raw()) {
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
                StoredOutcome::Delivered { detail, remote_id } => {
                    AttemptOutcome::Delivered { detail, remote_id }
                }
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
        if let record::StoredState::Delivered {
            at,
            detail,
            remote_id,
        } = &rec.state
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
                    remote_id: remote_id.clone(),
                },
            });
        }
        let link = |s: &Option<String>| {
            s.as_deref()
                .map(|f| parse_delivery_id(keys::DELIVERIES, key, f))
                .transpose()
        };
        let state = match lock(&self.mem.leases).get(id) {
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
}
