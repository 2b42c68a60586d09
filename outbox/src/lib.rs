//! Carillon's durable outbox: the storage behind the promise that an
//! acknowledged event is delivered, even across crashes. It is the only
//! code that touches sled. Events and payloads are opaque bytes; the outbox
//! knows nothing of message formats, plugins or HTTP.
//!
//! # Durability contract
//!
//! When [`Outbox::enqueue`] returns `Ok`, the event record (with its
//! source, idempotency key, time, body, and each delivery's destination,
//! id and payload) was written in an atomic sled batch *and* a `flush`
//! (fsync) that started after that batch was applied has completed: it
//! survives a crash, whole or not at all. That one record is all an
//! enqueue writes: a delivery gets its own record when it first changes
//! (until then its event describes it: pending, due when the event was
//! received, no attempt; see `untouched`), and the due index and the
//! idempotency index are derived, kept in memory and rebuilt at open (see
//! below). That is when the gateway may answer 202. Concurrent enqueues share
//! the batch and the flush (group commit, see `commit`): a dedicated
//! thread writes every queued enqueue in one batch (each enqueue is
//! checked before its write, so a refused one writes nothing), flushes,
//! then answers each writer on its own channel.
//! `Enqueued::Duplicate` is also returned only after a flush, as the earlier
//! write may still be in flight.
//!
//! Every other change (complete, requeue, purge) is one atomic
//! transaction (concurrent completions through
//! [`Outbox::complete_shared`] share one, on their own committer thread;
//! a first-attempt delivery is a single insert, atomic by itself)
//! but does not wait for a flush: sled flushes on its own
//! schedule (every 500 ms) and on the next group commit. Losing such a
//! change in a crash is safe under at-least-once delivery: a lost outcome
//! leaves the delivery claimable again, so it is re-attempted, never lost.
//! A claim writes nothing at all: leases live in memory (see below).
//!
//! # State machine
//!
//! Types in [`state`]; each transition is one transaction over the trees it
//! touches, or one insert for a first-attempt delivery (below).
//!
//! ```text
//! Pending ──claim──▶ Claimed ──Delivered──▶ Delivered ──purge──▶ (removed)
//!   ▲                  │  │ ╲─Retry(at)──▶ ScheduledRetry ──claim when due──▶ Claimed
//!   │                  │  └─ lease expired: claim again (new owner, new token)
//!   └──requeue── Dead ◀┘ Dead(fallback?) ── + one new Pending delivery to the fallback
//! ```
//!
//! - The **due index** (pending and scheduled deliveries by due time, then
//!   id) is kept in memory (`due`): rebuilt at open in the scan that counts
//!   deliveries by state, changed by each writer only after its
//!   transaction committed. Sled's cost is about its cost per key, so an
//!   enqueue that also wrote a due entry and an idempotency entry ran at
//!   0.6 of one that writes two records (BENCHMARKS.md).
//! - **Untouched deliveries** (never changed since their enqueue) have no
//!   record of their own: readers derive it from the event, and the first
//!   completion writes it. The open finds them by reading the events from
//!   a stored horizon (`meta/untouched_from`) on, and looking for listed
//!   deliveries without a record; a purge removes a purged delivery from
//!   its event, so none reads as untouched by mistake. The horizon is
//!   stored only once a flush covered every record write it relies on.
//! - A claim leases the delivery to an owner until `now + lease` under a
//!   new token. Leases are kept **in memory**, not written: sled admits one
//!   process per database, so a lease can only ever matter to the process
//!   that took it. The record stays pending or scheduled with its due-index
//!   entry in place; `claim_due` skips leased entries and takes over
//!   expired leases (ordered by expiry), views and counters show leased
//!   deliveries as claimed. After a crash or restart every lease is gone
//!   and its delivery is due again at once (at its own due time). Tokens
//!   carry a per-open epoch (stored in `meta`), so a claim from before a
//!   restart never matches one taken after it. (Releases before this one
//!   stored leases; opening such a database ends them.)
//! - `complete` is accepted only from the current (owner, token); anything
//!   else gets `Completion::LeaseLost` and writes nothing. An expired lease
//!   nobody re-claimed is still accepted.
//! - `Retry { counts_as_attempt: false }` (rate limits) does not add to the
//!   attempt count; every completion is still in the delivery's history.
//!   The delivering one is kept in the delivered state rather than in
//!   `attempts` (a write saved per message); `delivery` shows it last.
//! - A delivery **delivered at its first attempt**, while untouched, gets
//!   one compact record in `deliveries` (`delivered`) and nothing else: no
//!   transaction, no read, no purge-index entry (the purge finds these by
//!   walking the deliveries created before its cutoff). Most deliveries
//!   take this path, and it made recording their outcome one sled insert.
//!   A lease that expires is not an attempt.
//! - `Dead { fallback: Some(d) }` dead-letters the delivery and creates one
//!   pending delivery to `d` with the same payload, linked both ways
//!   (`fallback_to` / `fallback_of`) and appended to the event.
//! - `requeue_dead` makes a dead delivery pending again, due now, with its
//!   attempt count **reset to 0** (its history stays).
//!
//! # Key layout
//!
//! One module, `keys`, owns it (the table is repeated here):
//!
//! | tree          | key                                        | value |
//! |---------------|--------------------------------------------|-------|
//! | `meta`        | `schema_version`, `lease_epoch`, `untouched_from`, `unrouted_from` | `u32` BE, `u64` BE (opens so far), `u128` BE (raw event id, both) |
//! | `events`      | `evt_…`                                    | event record (binary): body, deliveries and their payloads |
//! | `deliveries`  | `dlv_…`                                    | delivery record (JSON) once the delivery first changed, or compact (binary) if that change delivered it |
//! | `dead`        | destination ‖ `0x00` ‖ `dlv_…`             | empty |
//! | `attempts`    | `dlv_…` ‖ seq `u32` BE                     | attempt record (JSON), all but the delivering one |
//! | `delivered`   | delivered-at `u64` BE ms ‖ `dlv_…`         | empty (purge index of JSON records) |
//! | `timers`      | `tmr_…`                                    | timer record: header (JSON) ‖ payload |
//! | `timers_fired`| timer key                                  | fired-at `u64` BE ms ‖ `tmr_…` |
//!
//! Ids are ULID-like (48-bit ms ‖ 80-bit random-then-counting tail, 26
//! Crockford base32 characters after the prefix), so they sort by time.
//! Records are private and versioned: the event record is a compact binary
//! encoding holding the body and every payload (one write per event);
//! delivery and attempt records are JSON and hold no blobs. A payload stays
//! in its event until the event is purged. The idempotency index (source,
//! key → event) is in memory too (`idempotency`), rebuilt at open from the
//! events received within the window: ids start with their time, so that
//! is one range scan of the newest events. The schema version (5) is
//! checked at open by
//! [`migrate::migrate`]: older versions are upgraded one transaction per
//! version step, newer ones refused.
//!
//! # Counters
//!
//! [`Outbox::depth`] is kept in memory, updated after each committed
//! transaction and recounted at open from `deliveries` and the untouched
//! deliveries. Backpressure reads
//! it, so the bound is exact for one process and soft under races (it may
//! be exceeded by the deliveries of writers already past the check).
//!
//! # Unrouted events and a full disk
//!
//! An event enqueued with no delivery (unrouted) counts in
//! [`Depth::unrouted`] until [`Outbox::purge_unrouted`] removes it by age
//! (never younger than the idempotency window). It is bounded by
//! `max_unrouted`, apart from `max_pending`, so a flood of them cannot
//! grow the disk without bound nor take routed events' room. The set is in
//! memory, rebuilt at open from the events at or above the stored mark
//! `meta/unrouted_from`: a purge raises it only after a flush made its
//! removals durable, and raises the id generator past it first.
//!
//! Each enqueue batch reads the file system's free space once; an event
//! whose record would leave less than `min_free_bytes` is refused with
//! [`EnqueueError::StorageFull`], nothing written, and accepted again once
//! space returns. sled 0.34 treats its first failed write or flush as
//! final for the open database: the enqueue gets an error, never `Ok`,
//! and so does every later one until a reopen;
//! [`Outbox::storage_failure`] says so.
//!
//! # Timers
//!
//! Durable keyed deadlines (module `timers`): armed and disarmed in the
//! same atomic write as the enqueue that asks for it
//! ([`Outbox::enqueue_timed`]), fired together with the event they
//! produce ([`Outbox::fire_timer`]), so each fires exactly once across
//! crashes; the armed ones are indexed in memory by deadline and key,
//! rebuilt at open. The trees were added without a schema step: an older
//! release opening the database ignores them.

mod commit;
mod delivered;
mod due;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod id;
mod idempotency;
pub mod kept;
mod keys;
mod leases;
pub mod migrate;
mod outbox;
mod record;
pub mod state;
pub mod throughput;
mod time;
pub mod timers;
mod types;
mod untouched;

pub use commit::FlushStats;
pub use error::{EnqueueError, OpenError, OutboxError};
pub use id::{DeliveryId, EventId, TimerId};
pub use kept::KeptWrite;
pub use outbox::Outbox;
pub use state::{DeliveryState, StateKind};
pub use time::{Clock, ManualClock, SystemClock, Timestamp};
pub use timers::{NewTimer, Timer, TimerEffect, TimerOp};
pub use types::{
    Attempt, AttemptOutcome, Claim, Completion, DeadCursor, DeadLetter, DeadPage, DeliveryView,
    Depth, Enqueued, EventView, NewDelivery, NewEvent, OutboxConfig, Outcome, PurgeReport, Requeue,
};
