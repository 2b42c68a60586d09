//! The due index, kept in memory: which pending and scheduled deliveries
//! are due when, in time order.
//!
//! Why not on disk: every enqueue wrote a due entry next to its event and
//! delivery records, and sled's cost per enqueue is about its cost per key
//! (four keys ran at 0.6 of two). The index is fully derived: a pending or
//! scheduled delivery record holds its due time (an untouched delivery's is
//! its event's time), so `Outbox::open` rebuilds the index in the scans
//! that already count deliveries by state.
//!
//! Writers change it only **after** their sled transaction committed (a
//! retried or aborted transaction must leave no trace here), so the index
//! may briefly lag the records and never leads them. Entries are removed
//! only by completions, which hold the lease lock across their commit and
//! their change here, as claims hold it while they read: a claim never sees
//! an entry whose record has already moved on.
//!
//! Lock order: leases, then this index (`claim_due`, completions); the
//! enqueue committer and requeues take only this one.

use std::collections::BTreeSet;
use std::ops::Bound;

use crate::id::DeliveryId;
use crate::time::Timestamp;

/// A position in the index: due time (ms), then the delivery's raw id, so
/// entries sort by time and then by id, as the stored index did.
pub(crate) type DueKey = (u64, u128);

/// The key of `id` due at `at`.
pub(crate) fn due_key(at: Timestamp, id: &DeliveryId) -> DueKey {
    (at.as_millis(), id.raw())
}

/// One change to the index, made by a committed transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DueChange {
    Add(DueKey),
    Remove(DueKey),
}

/// Changes collected inside a transaction closure, applied once it
/// committed.
pub(crate) type DueChanges = Vec<DueChange>;

/// The index and the earliest key added since the last claim scan.
#[derive(Debug, Default)]
pub(crate) struct DueIndex {
    entries: BTreeSet<DueKey>,
    /// The smallest key added since [`DueIndex::take_floor`]: claim scans
    /// resume where the last one ended unless something earlier arrived.
    floor: Option<DueKey>,
}

impl DueIndex {
    /// Adds an entry (used at open and by committed changes).
    pub fn add(&mut self, key: DueKey) {
        self.entries.insert(key);
        if self.floor.is_none_or(|f| key < f) {
            self.floor = Some(key);
        }
    }

    /// Applies what a committed transaction changed.
    pub fn apply(&mut self, changes: &[DueChange]) {
        for c in changes {
            match *c {
                DueChange::Add(k) => self.add(k),
                DueChange::Remove(k) => {
                    self.entries.remove(&k);
                }
            }
        }
    }

    /// The smallest key added since the last call, if any.
    pub fn take_floor(&mut self) -> Option<DueKey> {
        self.floor.take()
    }

    /// Entries from `from` (inclusive) up to time `until` (inclusive), in
    /// order; none when `from` is past `until` (a scan start can be later
    /// than the time a caller asks about).
    pub fn range(&self, from: DueKey, until: Option<u64>) -> impl Iterator<Item = DueKey> + '_ {
        let upper = match until {
            Some(ms) if from > (ms, u128::MAX) => Bound::Excluded(from),
            Some(ms) => Bound::Included((ms, u128::MAX)),
            None => Bound::Unbounded,
        };
        self.entries.range((Bound::Included(from), upper)).copied()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

/// The key just after `key`.
pub(crate) fn after(key: DueKey) -> DueKey {
    match key.1.checked_add(1) {
        Some(id) => (key.0, id),
        None => (key.0.saturating_add(1), 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_inclusive_and_in_time_then_id_order() {
        let mut ix = DueIndex::default();
        for k in [(5, 2), (5, 1), (9, 0), (3, 7)] {
            ix.add(k);
        }
        let all: Vec<_> = ix.range((0, 0), None).collect();
        assert_eq!(all, vec![(3, 7), (5, 1), (5, 2), (9, 0)]);
        let upto5: Vec<_> = ix.range((5, 1), Some(5)).collect();
        assert_eq!(upto5, vec![(5, 1), (5, 2)]);
        assert_eq!(ix.range(after((5, 2)), Some(8)).count(), 0);
        assert_eq!(ix.range((9, 0), Some(4)).count(), 0, "start past the end");
        assert_eq!(after((1, u128::MAX)), (2, 0));
    }

    #[test]
    fn the_floor_is_the_smallest_key_added_since_it_was_taken() {
        let mut ix = DueIndex::default();
        assert_eq!(ix.take_floor(), None);
        ix.add((7, 1));
        ix.apply(&[DueChange::Add((4, 9)), DueChange::Remove((7, 1))]);
        ix.add((6, 0));
        assert_eq!(ix.take_floor(), Some((4, 9)));
        assert_eq!(ix.take_floor(), None);
        assert_eq!(ix.len(), 2);
    }
}
