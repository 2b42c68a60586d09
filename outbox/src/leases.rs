//! Leases held by this process, kept in memory only.
//!
//! Why not on disk: sled admits one process per database, so a lease can
//! never be honoured by anyone but the process that took it; after a
//! restart every one is void and its delivery is simply due again (at its
//! own due time). Writing leases cost a sled transaction (three writes) per
//! claim, the largest share of a claim's CPU. A claimed delivery's record
//! stays pending or scheduled, with its due-index entry where it was; the
//! map here is what makes it claimed.

use std::collections::HashMap;

use crate::due::DueKey;
use crate::id::DeliveryId;
use crate::state::{Claimed, StateKind};
use crate::time::Timestamp;

/// One lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Lease {
    pub owner: String,
    pub until: Timestamp,
    pub token: u64,
    /// The delivery's due-index time (its due time when claimed).
    pub at: Timestamp,
    /// The state it was claimed from, which it returns to if released.
    pub from: StateKind,
}

impl Lease {
    /// The public view of this lease.
    pub fn claimed(&self) -> Claimed {
        Claimed {
            owner: self.owner.clone(),
            lease_until: self.until,
            token: self.token,
        }
    }

    pub fn held_by(&self, owner: &str, token: u64) -> bool {
        self.owner == owner && self.token == token
    }
}

/// Every lease of this process, by delivery.
#[derive(Debug)]
pub(crate) struct Leases {
    held: HashMap<DeliveryId, Lease>,
    /// Where a scan of the due index for unleased entries starts: every
    /// unleased entry is at or after this key, once the index's floor (the
    /// earliest entry added since the last scan) is applied. The leased
    /// entries, which stay in the index at their due time, are mostly
    /// before it, so claims do not walk over them again.
    scan_from: DueKey,
    /// The next token: the open's epoch in the high bits, so a claim made
    /// before a reopen never matches one made after it.
    next_token: u64,
}

/// Bits of a token left for claims within one open.
const CLAIM_BITS: u32 = 40;

impl Leases {
    /// `epoch` counts opens of the database (stored, see `Outbox::open`).
    pub fn new(epoch: u64) -> Self {
        Leases {
            held: HashMap::new(),
            scan_from: (0, 0),
            next_token: (epoch << CLAIM_BITS) | 1,
        }
    }

    /// Where to start scanning the due index, after lowering it to
    /// `floor`, the earliest entry added since the last scan.
    pub fn scan_from(&mut self, floor: Option<DueKey>) -> DueKey {
        if let Some(f) = floor
            && f < self.scan_from
        {
            self.scan_from = f;
        }
        self.scan_from
    }

    /// Every unleased due entry before `key` was looked at and is now
    /// leased: later scans may start at `key`.
    pub fn advance_scan(&mut self, key: DueKey) {
        if key > self.scan_from {
            self.scan_from = key;
        }
    }

    pub fn get(&self, id: &DeliveryId) -> Option<&Lease> {
        self.held.get(id)
    }

    pub fn contains(&self, id: &DeliveryId) -> bool {
        self.held.contains_key(id)
    }

    /// Leases `id` to `owner` until `until`, replacing an expired lease;
    /// returns the new token.
    pub fn grant(
        &mut self,
        id: DeliveryId,
        owner: &str,
        until: Timestamp,
        at: Timestamp,
        from: StateKind,
    ) -> u64 {
        let token = self.next_token;
        self.next_token += 1;
        self.held.insert(
            id,
            Lease {
                owner: owner.to_owned(),
                until,
                token,
                at,
                from,
            },
        );
        token
    }

    /// Ends the lease on `id` if it is still the one with `token`.
    pub fn end(&mut self, id: &DeliveryId, token: u64) -> bool {
        if self.held.get(id).is_some_and(|l| l.token == token) {
            self.held.remove(id);
            true
        } else {
            false
        }
    }

    /// Leases expired by `now`, earliest expiry first (then by id).
    pub fn expired(&self, now: Timestamp) -> Vec<(Timestamp, DeliveryId)> {
        let mut out: Vec<(Timestamp, DeliveryId)> = self
            .held
            .iter()
            .filter(|(_, l)| l.until <= now)
            .map(|(id, l)| (l.until, id.clone()))
            .collect();
        out.sort();
        out
    }

    /// The earliest expiry.
    pub fn earliest(&self) -> Option<Timestamp> {
        self.held.values().map(|l| l.until).min()
    }

    /// Ends every lease; returns them. Their due entries are unleased
    /// again wherever they are, so scans start from the beginning.
    pub fn clear(&mut self) -> Vec<Lease> {
        self.scan_from = (0, 0);
        self.held.drain().map(|(_, l)| l).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u128) -> DeliveryId {
        DeliveryId::from_raw(n)
    }

    #[test]
    fn tokens_increase_and_only_the_current_one_ends_a_lease() {
        let t = Timestamp::from_millis;
        let mut l = Leases::new(7);
        let a = l.grant(id(1), "w", t(10), t(0), StateKind::Pending);
        let b = l.grant(id(1), "w", t(20), t(0), StateKind::Pending);
        assert!(b > a);
        assert!(!l.end(&id(1), a), "a replaced lease's token is stale");
        assert!(l.get(&id(1)).is_some_and(|x| x.held_by("w", b)));
        assert!(l.end(&id(1), b));
        assert!(!l.contains(&id(1)));
        // The next open's tokens are past every earlier one.
        assert!(Leases::new(8).next_token > b);
    }

    #[test]
    fn the_scan_start_only_moves_forward_unless_something_earlier_arrives() {
        let mut l = Leases::new(1);
        assert_eq!(l.scan_from(None), (0, 0));
        l.advance_scan((50, 0));
        l.advance_scan((40, 0));
        assert_eq!(l.scan_from(None), (50, 0));
        assert_eq!(l.scan_from(Some((70, 0))), (50, 0), "later: no change");
        assert_eq!(l.scan_from(Some((30, 5))), (30, 5));
        l.clear();
        assert_eq!(l.scan_from(None), (0, 0));
    }

    #[test]
    fn expired_leases_come_earliest_first() {
        let t = Timestamp::from_millis;
        let mut l = Leases::new(1);
        l.grant(id(2), "w", t(30), t(0), StateKind::Pending);
        l.grant(id(1), "w", t(10), t(0), StateKind::Scheduled);
        l.grant(id(3), "w", t(99), t(0), StateKind::Pending);
        assert_eq!(l.expired(t(50)), vec![(t(10), id(1)), (t(30), id(2))]);
        assert_eq!(l.earliest(), Some(t(10)));
    }
}
