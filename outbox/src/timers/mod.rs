//! Durable timers: a keyed deadline that fires exactly once, even across
//! crashes and restarts, and whose firing enqueues its event atomically.
//!
//! The outbox stores timers and knows nothing of what they mean (task
//! timeouts today; scheduled pushes and activation expiry later): a timer
//! is a key, a kind, a source, a deadline and an opaque payload the caller
//! builds its event from.
//!
//! Every change to a timer rides on an enqueue (see
//! [`Outbox::enqueue_timed`](crate::Outbox::enqueue_timed)) and is written
//! in the same atomic sled write as its event record, then flushed before
//! the enqueue answers:
//!
//! - **arm** with the event that asks for it (`task.started`): when the
//!   enqueue answers, the timer is durable too. Arming a key that is armed
//!   replaces its timer (one armed timer per key).
//! - **disarm** by key with the event that ends it (`task.succeeded`):
//!   the answer says whether it was armed, had already fired (a late
//!   completion: the fired mark is consumed) or neither.
//! - **fire** by id with the event it produces
//!   ([`Outbox::fire_timer`](crate::Outbox::fire_timer)): the timer's
//!   removal, its fired mark and the event are one write; a timer no
//!   longer armed (disarmed or cancelled meanwhile) enqueues nothing. So a
//!   timer fires at most once, and, since an armed timer stays stored until
//!   it fires, at least once.
//!
//! [`Outbox::cancel_timer`](crate::Outbox::cancel_timer) removes a timer
//! without an event (an admin's cancel).
//!
//! Trees (see `keys`): `timers` (timer id → record) and `timers_fired`
//! (timer key → fired-at ‖ timer id: the fired marks a late completion
//! finds, purged by age). The index of armed timers by deadline and by key
//! is kept in memory ([`index`]), rebuilt at open from `timers`, and
//! changed only by whoever holds its lock while writing: the enqueue
//! committer (for the whole batch) and `cancel_timer`. Waiting for the
//! next deadline costs nothing per timer: one task sleeps until the
//! earliest and is woken ([`Outbox::timers_changed`](crate::Outbox::timers_changed))
//! when an earlier one is armed.

pub(crate) mod index;
pub(crate) mod record;
pub(crate) mod stage;

use crate::id::TimerId;
use crate::time::Timestamp;

/// A timer to arm.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewTimer {
    /// At most one armed timer per key: arming a key replaces its timer,
    /// disarming names it (`task:SOURCE:RUN`). No NUL bytes.
    pub key: String,
    /// What the timer is for (`task.timeout`), for listings.
    pub kind: String,
    /// Who armed it (the event's source), for listings.
    pub source: String,
    /// When it fires.
    pub deadline: Timestamp,
    /// What the caller needs to build the event it fires, opaque.
    pub payload: Vec<u8>,
}

/// An armed timer, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timer {
    /// Its id.
    pub id: TimerId,
    /// Its key.
    pub key: String,
    /// What it is for.
    pub kind: String,
    /// Who armed it.
    pub source: String,
    /// When it was armed.
    pub armed_at: Timestamp,
    /// When it fires.
    pub deadline: Timestamp,
    /// The caller's payload.
    pub payload: Vec<u8>,
}

/// What an enqueue does to a timer, in the same atomic write.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum TimerOp {
    /// Nothing.
    #[default]
    None,
    /// Arm this timer (replacing the key's armed one).
    Arm(NewTimer),
    /// Disarm the key's armed timer, or consume its fired mark.
    Disarm {
        /// The timer's key.
        key: String,
    },
}

/// What the timer part of an accepted enqueue did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TimerEffect {
    /// No timer was asked about, or the event was a duplicate (nothing
    /// written).
    None,
    /// Armed.
    Armed {
        /// The new timer.
        id: TimerId,
        /// The key's timer it replaced, if one was armed.
        replaced: Option<TimerId>,
    },
    /// The key's armed timer was removed.
    Disarmed {
        /// The removed timer.
        id: TimerId,
        /// Its deadline.
        deadline: Timestamp,
    },
    /// The key's timer had already fired: the completion is late. Its
    /// fired mark was consumed.
    AlreadyFired {
        /// The timer that fired.
        id: TimerId,
        /// When it fired.
        fired_at: Timestamp,
    },
    /// Nothing was armed under the key, and nothing fired.
    NotArmed,
    /// The timer fired (`fire_timer`).
    Fired {
        /// The timer that fired.
        id: TimerId,
    },
}
