//! `Memory`: everything the outbox keeps in memory only, in one struct
//! shared (behind one `Arc`) by the `Outbox`, the enqueue committer
//! (`enqueue::Writer`) and the completions committer (`complete::Recorder`).
//!
//! Invariants (crate docs; ARCHITECTURE.md "Invariants"):
//! - The due index, the idempotency index, the untouched deliveries and the
//!   depth counters are derived from the records alone: `open` rebuilds
//!   them, and a writer changes them only after its write committed.
//! - Leases are never written: a lease only matters to the process that
//!   took it, and tokens carry the open's epoch (`Leases::new`).
//! - Ids only increase: `ids` starts above every stored id and above the
//!   stored untouched horizon (`IdGen::after`, at open).
//! - Lock order: whoever takes `leases` takes it first, before the due
//!   index's lock and any sled call (`claim_due`, `Recorder::apply`), so
//!   claims and completions cannot deadlock. The enqueue committer holds
//!   `idempotency` across its batch write; `purge_idempotency` waits.
//! - `unrouted` holds every stored event without a delivery: `open` finds
//!   them from the stored unrouted mark on (no such event is below it),
//!   `enqueue` adds them once written, `purge_unrouted` removes them once
//!   removed.
//! - `timers` holds every stored timer; lock order: the enqueue committer
//!   takes it after `idempotency`, `cancel_timer` takes it alone.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use crate::due::DueIndex;
use crate::id::IdGen;
use crate::idempotency::Idempotency;
use crate::leases::Leases;
use crate::timers::index::TimerIndex;
use crate::types::Depth;
use crate::untouched::Untouched;

/// The id generator, counters, leases and in-memory indexes of one open
/// outbox.
pub(crate) struct Memory {
    /// Hands out event and delivery ids.
    pub(crate) ids: IdGen,
    /// Deliveries by state (see `Outbox::depth`).
    pub(crate) depth: Mutex<Depth>,
    /// Which deliveries are claimed (see `leases`).
    pub(crate) leases: Mutex<Leases>,
    /// Pending and scheduled deliveries by due time (see `due`).
    pub(crate) due: Mutex<DueIndex>,
    /// (source, key) → event, within the window (see `idempotency`).
    pub(crate) idempotency: Mutex<Idempotency>,
    /// Deliveries without a record yet (see `untouched`). An `Arc` of its
    /// own: an enqueue in flight holds it (`untouched::InFlight`).
    pub(crate) untouched: Arc<Mutex<Untouched>>,
    /// The stored events without any delivery (raw ids): unrouted events,
    /// bounded by `max_unrouted` and purged by age (see `purge`).
    pub(crate) unrouted: Mutex<BTreeSet<u128>>,
    /// The armed timers by deadline and key (see `timers`): changed only
    /// under this lock, by whoever writes the `timers` tree meanwhile.
    pub(crate) timers: Mutex<TimerIndex>,
    /// Wakes the task waiting for the next deadline when an earlier one
    /// is armed.
    pub(crate) timers_changed: tokio::sync::Notify,
    /// The first storage failure of a write: sled refuses every write
    /// after its first failed one (until reopened).
    pub(crate) failed: Mutex<Option<String>>,
}
