//! Claims: `claim_due` leases due deliveries to an owner, `release_leases`
//! ends them all, `next_due` says when the next one is due. A claim writes
//! nothing: it reads the due index and the leases (`Memory`) and each
//! claimed delivery's payload out of its event record.
//!
//! Invariants (crate docs; ARCHITECTURE.md "Invariants"): leases live in
//! memory only; a claim holds the leases' lock for its whole scan (so no
//! two claimers take the same delivery) and takes it before the due
//! index's lock and any sled call; a leased delivery keeps its record and
//! its due-index entry, and an expired lease is taken over in expiry order.

use std::time::Duration;

use super::{EV, Moves, Outbox, apply_moves, corrupt, lock, parse_event_id};
use crate::due::{self, DueKey};
use crate::error::OutboxError;
use crate::id::DeliveryId;
use crate::keys;
use crate::record;
use crate::state::{DeliveryState, StateKind};
use crate::time::Timestamp;
use crate::types::Claim;

impl Outbox {
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
        let mut leases = lock(&self.mem.leases);
        // Candidates: unleased entries of the due index, and expired leases
        // (ordered by their expiry), merged in time order.
        let mut due: Vec<(Timestamp, DeliveryId, bool)> = Vec::with_capacity(limit);
        // Where the next scan may start if everything taken here is claimed.
        let mut scanned_to: DueKey = (now.as_millis().saturating_add(1), 0);
        {
            let mut index = lock(&self.mem.due);
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
        apply_moves(&self.mem.depth, &moves);
        Ok(claims)
    }

    /// Ends every lease this process holds; the deliveries are claimable
    /// again at their own due time (a claim is only ever made once that
    /// time has come). Returns how many. Leases never outlive the process
    /// (see `leases`), so a restart needs no call to this.
    pub fn release_leases(&self) -> u64 {
        let released = lock(&self.mem.leases).clear();
        let moves: Moves = released
            .iter()
            .map(|l| (Some(StateKind::Claimed), Some(l.from)))
            .collect();
        apply_moves(&self.mem.depth, &moves);
        released.len() as u64
    }

    /// The earliest time in the due index: when the next delivery becomes
    /// due or the next lease expires. `None` when nothing is unfinished.
    pub fn next_due(&self) -> Result<Option<Timestamp>, OutboxError> {
        let mut leases = lock(&self.mem.leases);
        let mut index = lock(&self.mem.due);
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
}
