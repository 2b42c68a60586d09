//! Deliveries that have no record of their own yet ("untouched"), kept in
//! memory: which event each belongs to, and how many each event still has.
//!
//! Why: sled's cost per enqueue is about its cost per key, and a delivery
//! that was never attempted is fully described by its event record (its
//! destination, id and payload are listed there; it is pending, due when
//! the event was received, with no attempts). So an enqueue writes only
//! the event record; a delivery's own record is written by the first
//! transaction that changes it (its first completion). Readers find an
//! untouched delivery here and derive its record from the event
//! (`DeliveryRecord::untouched`).
//!
//! **The horizon.** `Outbox::open` must find the untouched deliveries
//! again without reading every event. `meta/untouched_from` holds an event
//! id below which no event has an untouched delivery: the open scans the
//! events from there. The enqueue committer advances it with a lag that
//! makes it safe without any assumption about the order sled recovers
//! writes in: it stores a value computed before some earlier batch only
//! once a completed flush covers that batch, and so every record write
//! the value relies on. The value is the least of: the events with
//! untouched deliveries, the event ids handed out to enqueues that have not
//! finished, and the generator's floor (no later event id is below it).
//! Event ids are taken under this structure's lock, so no id can be handed
//! out below a value computed here.
//!
//! Lock discipline: the lock is taken briefly and never held across a sled
//! call or another lock, except the id generator's (taken inside it).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::due::DueKey;
use crate::id::IdGen;
use crate::time::Timestamp;

/// Untouched deliveries and the enqueues in flight.
#[derive(Debug, Default)]
pub(crate) struct Untouched {
    /// Raw delivery id → raw event id.
    event_of: HashMap<u128, u128>,
    /// Raw event id → its untouched deliveries (never 0).
    left: BTreeMap<u128, u32>,
    /// Raw event ids handed out to enqueues that have not finished.
    in_flight: BTreeMap<u128, ()>,
}

fn lock(m: &Mutex<Untouched>) -> MutexGuard<'_, Untouched> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Untouched {
    /// Records an untouched delivery (at open, and when an enqueue
    /// committed).
    pub fn add(&mut self, event: u128, delivery: u128) {
        if self.event_of.insert(delivery, event).is_none() {
            *self.left.entry(event).or_insert(0) += 1;
        }
    }

    /// The raw event id of an untouched delivery.
    pub fn event_of(&self, delivery: u128) -> Option<u128> {
        self.event_of.get(&delivery).copied()
    }

    /// Forgets `delivery` once a committed transaction wrote its record;
    /// `false` if it was not untouched.
    pub fn touch(&mut self, delivery: u128) -> bool {
        let Some(event) = self.event_of.remove(&delivery) else {
            return false;
        };
        if let Some(n) = self.left.get_mut(&event) {
            *n -= 1;
            if *n == 0 {
                self.left.remove(&event);
            }
        }
        true
    }

    /// How many deliveries are untouched.
    pub fn len(&self) -> usize {
        self.event_of.len()
    }

    /// An event id below which no event has an untouched delivery or an
    /// unfinished enqueue, and below which no later event id will fall.
    pub fn horizon(&self, ids: &IdGen) -> u128 {
        let least = |m: Option<u128>, n: Option<u128>| match (m, n) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        least(
            self.left.keys().next().copied(),
            self.in_flight.keys().next().copied(),
        )
        .unwrap_or_else(|| ids.floor())
    }
}

/// An event id handed out to an enqueue, registered as in flight until the
/// committer finished with it or the enqueue was dropped (see the module
/// docs: the horizon must stay below it meanwhile).
#[derive(Debug)]
pub(crate) struct InFlight {
    untouched: Arc<Mutex<Untouched>>,
    raw: u128,
}

impl InFlight {
    /// Takes the next event id at `now` and registers it.
    pub fn begin(untouched: &Arc<Mutex<Untouched>>, ids: &IdGen, now: Timestamp) -> Self {
        let mut u = lock(untouched);
        let raw = ids.next(now);
        u.in_flight.insert(raw, ());
        drop(u);
        Self {
            untouched: Arc::clone(untouched),
            raw,
        }
    }

    /// The raw event id.
    pub fn raw(&self) -> u128 {
        self.raw
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        lock(&self.untouched).in_flight.remove(&self.raw);
    }
}

/// Accepted enqueues: their deliveries become untouched and their ids stop
/// being in flight, in one step under the lock (so no horizon computed in
/// between can pass them).
pub(crate) fn accept<'a>(
    untouched: &Mutex<Untouched>,
    accepted: impl IntoIterator<Item = (u128, &'a [DueKey])>,
) {
    let mut u = lock(untouched);
    for (event, deliveries) in accepted {
        for &(_, d) in deliveries {
            u.add(event, d);
        }
        u.in_flight.remove(&event);
    }
}

/// Forgets the deliveries whose records were just written.
pub(crate) fn touch_all(untouched: &Mutex<Untouched>, deliveries: impl IntoIterator<Item = u128>) {
    let mut u = lock(untouched);
    for d in deliveries {
        u.touch(d);
    }
}

/// [`Untouched::horizon`], under the lock.
pub(crate) fn horizon(untouched: &Mutex<Untouched>, ids: &IdGen) -> u128 {
    lock(untouched).horizon(ids)
}

/// The raw event id of an untouched delivery.
pub(crate) fn event_of(untouched: &Mutex<Untouched>, delivery: u128) -> Option<u128> {
    lock(untouched).event_of(delivery)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn touching_the_last_delivery_of_an_event_moves_the_horizon() {
        let ids = IdGen::new();
        let mut u = Untouched::default();
        u.add(10, 11);
        u.add(10, 12);
        u.add(20, 21);
        assert_eq!(u.horizon(&ids), 10);
        assert!(u.touch(11));
        assert!(!u.touch(11), "a second touch finds nothing");
        assert_eq!(u.horizon(&ids), 10, "event 10 still has delivery 12");
        assert!(u.touch(12));
        assert_eq!(u.horizon(&ids), 20);
        assert_eq!(u.event_of(21), Some(20));
        assert!(u.touch(21));
        assert_eq!(u.len(), 0);
        assert_eq!(u.horizon(&ids), ids.floor());
    }

    #[test]
    fn an_unfinished_enqueue_holds_the_horizon_until_it_is_accepted_or_dropped() {
        let ids = IdGen::new();
        let u = Arc::new(Mutex::new(Untouched::default()));
        let horizon = || lock(&u).horizon(&ids);
        let now = Timestamp::from_millis(1_000);
        let first = InFlight::begin(&u, &ids, now);
        let second = InFlight::begin(&u, &ids, now);
        let (a, b) = (first.raw(), second.raw());
        assert!(a < b);
        assert_eq!(horizon(), a);
        // Accepted: its delivery is untouched, so the event still holds it.
        accept(&u, [(a, &[(0, b + 100)][..])]);
        drop(first);
        assert_eq!(horizon(), a);
        touch_all(&u, [b + 100]);
        assert_eq!(horizon(), b, "the unfinished enqueue holds it now");
        // Dropped without an answer (a cancelled enqueue): released.
        drop(second);
        let h = horizon();
        assert_eq!(h, ids.floor());
        assert!(ids.next(now) >= h, "no later id falls below the horizon");
    }
}
