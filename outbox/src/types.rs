//! The outbox's public inputs and answers. Bytes are opaque: the outbox
//! never looks inside an event body or a delivery payload.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::id::{DeliveryId, EventId};
use crate::state::{DeliveryState, StateKind};
use crate::time::{Clock, SystemClock, Timestamp};

/// How to open an outbox.
#[derive(Clone)]
pub struct OutboxConfig {
    /// The sled database directory.
    pub path: PathBuf,
    /// How long an idempotency key stays remembered (default 24 h).
    pub idempotency_window: Duration,
    /// Bound on pending + scheduled + claimed deliveries; past it `enqueue`
    /// answers [`EnqueueError::Backpressure`](crate::EnqueueError::Backpressure)
    /// (default 1,000,000).
    pub max_pending: u64,
    /// Bound on stored events that have no delivery at all (unrouted:
    /// nothing matched them). They are kept until `purge_unrouted` removes
    /// them; past this bound `enqueue` answers
    /// [`EnqueueError::Backpressure`](crate::EnqueueError::Backpressure) for
    /// events without deliveries only, so a flood of them never holds up
    /// routed events (default 1,000,000).
    pub max_unrouted: u64,
    /// The `retry_after` hint given with backpressure (default 1 s).
    pub backpressure_retry_after: Duration,
    /// Free bytes to keep on the outbox's file system: an enqueue that
    /// would leave less answers
    /// [`EnqueueError::StorageFull`](crate::EnqueueError::StorageFull) and
    /// writes nothing. The reserve is room for what frees space
    /// (completions, purges) and for sled itself: sled stops for good at
    /// its first failed write (default 64 MiB; 0 turns the check off).
    pub min_free_bytes: u64,
    /// sled's page cache size in bytes (default 64 MiB).
    pub cache_capacity: u64,
    /// Where `enqueue` reads the time (default: the system clock).
    pub clock: Arc<dyn Clock>,
}

impl OutboxConfig {
    /// The defaults, at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            idempotency_window: Duration::from_secs(24 * 60 * 60),
            max_pending: 1_000_000,
            max_unrouted: 1_000_000,
            backpressure_retry_after: Duration::from_secs(1),
            min_free_bytes: 64 * 1024 * 1024,
            cache_capacity: 64 * 1024 * 1024,
            clock: Arc::new(SystemClock),
        }
    }
}

impl std::fmt::Debug for OutboxConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxConfig")
            .field("path", &self.path)
            .field("idempotency_window", &self.idempotency_window)
            .field("max_pending", &self.max_pending)
            .field("max_unrouted", &self.max_unrouted)
            .field("backpressure_retry_after", &self.backpressure_retry_after)
            .field("min_free_bytes", &self.min_free_bytes)
            .field("cache_capacity", &self.cache_capacity)
            .finish_non_exhaustive()
    }
}

/// An event to store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewEvent {
    /// Who sent it (the app); part of the idempotency key. No NUL bytes.
    pub source: String,
    /// The client's idempotency key, if any.
    pub idempotency_key: Option<String>,
    /// The event as received, opaque.
    pub body: Vec<u8>,
}

/// One delivery to create with an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewDelivery {
    /// The destination's name. No NUL bytes.
    pub destination: String,
    /// What the plugin will be given, opaque.
    pub payload: Vec<u8>,
}

/// What `enqueue` did. Either way the answer is durable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Enqueued {
    /// Stored now.
    Accepted {
        /// The new event.
        event_id: EventId,
        /// One delivery per destination, in the order given.
        deliveries: Vec<(String, DeliveryId)>,
    },
    /// The same (source, idempotency key) was accepted within the window:
    /// nothing was written.
    Duplicate {
        /// The earlier event.
        event_id: EventId,
        /// Its deliveries (fallbacks included; empty if it was purged).
        deliveries: Vec<(String, DeliveryId)>,
    },
}

/// A delivery leased to one dispatcher.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    /// The delivery.
    pub delivery_id: DeliveryId,
    /// Its event.
    pub event_id: EventId,
    /// Where it goes.
    pub destination: String,
    /// This attempt's number, from 1 (counted attempts so far + 1).
    pub attempt: u32,
    /// The payload.
    pub payload: Vec<u8>,
    /// Who holds the lease.
    pub owner: String,
    /// When the lease expires.
    pub lease_until: Timestamp,
    /// The claim token `complete` checks.
    pub token: u64,
}

/// The result of one attempt, as the dispatcher decided it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The channel accepted it.
    Delivered {
        /// Receipt detail to keep.
        detail: String,
        /// The channel's id for what it accepted (the vendor's message id),
        /// if it gave one.
        remote_id: Option<String>,
    },
    /// Try again at `at`.
    Retry {
        /// When.
        at: Timestamp,
        /// What went wrong.
        error: String,
        /// False for rate-limited answers, which do not use up attempts.
        counts_as_attempt: bool,
    },
    /// Give up; optionally send the payload to a fallback destination.
    Dead {
        /// Why.
        error: String,
        /// The fallback destination, if configured.
        fallback: Option<String>,
    },
}

/// What `complete` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Completion {
    /// Marked delivered.
    Delivered,
    /// Scheduled for a retry.
    Scheduled {
        /// When it is due.
        due: Timestamp,
    },
    /// Dead-lettered.
    Dead {
        /// The fallback delivery created, if any.
        fallback: Option<DeliveryId>,
    },
    /// Refused: the claim is no longer held (the lease expired and another
    /// owner re-claimed it, or the delivery was completed or purged).
    /// Nothing was written.
    LeaseLost {
        /// The delivery's state now (`None` if it no longer exists).
        current: Option<StateKind>,
    },
    /// Refused: the fallback destination contains a NUL byte. Nothing was
    /// written.
    InvalidFallback,
}

/// One completion of a delivery, as recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    /// Position in the delivery's history, from 0.
    pub seq: u32,
    /// When it was recorded.
    pub at: Timestamp,
    /// Whether it used up an attempt.
    pub counted: bool,
    /// What happened.
    pub outcome: AttemptOutcome,
}

/// What an attempt ended with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// Delivered, with the receipt detail.
    Delivered {
        /// Receipt detail.
        detail: String,
        /// The channel's id for the message, if it gave one.
        remote_id: Option<String>,
    },
    /// Rescheduled.
    Retry {
        /// Error text.
        error: String,
        /// When it is due again.
        next_due: Timestamp,
    },
    /// Dead-lettered.
    Dead {
        /// Error text.
        error: String,
        /// The fallback delivery created.
        fallback_to: Option<DeliveryId>,
    },
}

/// A delivery with its history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryView {
    /// The delivery.
    pub id: DeliveryId,
    /// Its event.
    pub event_id: EventId,
    /// Where it goes.
    pub destination: String,
    /// When it was created.
    pub created_at: Timestamp,
    /// Its state.
    pub state: DeliveryState,
    /// Attempts counted so far.
    pub attempts: u32,
    /// The delivery this one is the fallback of.
    pub fallback_of: Option<DeliveryId>,
    /// The fallback delivery created when this one died.
    pub fallback_to: Option<DeliveryId>,
    /// Every completion, oldest first.
    pub history: Vec<Attempt>,
}

/// An event with its deliveries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventView {
    /// The event.
    pub id: EventId,
    /// Its source.
    pub source: String,
    /// Its idempotency key.
    pub idempotency_key: Option<String>,
    /// When it was accepted.
    pub received_at: Timestamp,
    /// The body as received.
    pub body: Vec<u8>,
    /// Its deliveries (fallbacks included) that have not been purged.
    pub deliveries: Vec<DeliveryView>,
}

/// A dead-lettered delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadLetter {
    /// The delivery.
    pub delivery_id: DeliveryId,
    /// Its event.
    pub event_id: EventId,
    /// Where it was going.
    pub destination: String,
    /// When it died.
    pub dead_at: Timestamp,
    /// Why.
    pub error: String,
    /// Attempts counted.
    pub attempts: u32,
    /// The fallback delivery made, if any.
    pub fallback_to: Option<DeliveryId>,
}

/// Where the next page of dead letters starts: an opaque token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadCursor(pub(crate) Vec<u8>);

impl DeadCursor {
    /// The cursor as text (hex), for an API.
    pub fn to_token(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Parses a token made by [`to_token`](Self::to_token).
    pub fn from_token(token: &str) -> Option<Self> {
        if !token.len().is_multiple_of(2) {
            return None;
        }
        (0..token.len())
            .step_by(2)
            .map(|i| {
                token
                    .get(i..i + 2)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
            })
            .collect::<Option<Vec<u8>>>()
            .map(Self)
    }
}

/// One page of dead letters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadPage {
    /// The dead letters, by destination then delivery id.
    pub items: Vec<DeadLetter>,
    /// Pass this to get the next page; `None` on the last page.
    pub next: Option<DeadCursor>,
}

/// What `requeue_dead` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Requeue {
    /// Pending again, due now, attempt count reset to 0.
    Requeued,
    /// The delivery is not dead.
    NotDead(StateKind),
    /// No such delivery.
    NotFound,
}

/// Deliveries by state, and the stored events without any delivery.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Depth {
    /// Waiting for a first attempt.
    pub pending: u64,
    /// Leased.
    pub claimed: u64,
    /// Waiting for a retry.
    pub scheduled: u64,
    /// Delivered and not yet purged.
    pub delivered: u64,
    /// Dead-lettered.
    pub dead: u64,
    /// Stored events without a delivery (unrouted), not yet purged: what
    /// `max_unrouted` bounds. Not a delivery state, so
    /// [`active`](Self::active) leaves them out.
    pub unrouted: u64,
}

impl Depth {
    /// Unfinished deliveries: what backpressure bounds.
    pub fn active(&self) -> u64 {
        self.pending + self.claimed + self.scheduled
    }

    fn slot(&mut self, k: StateKind) -> &mut u64 {
        match k {
            StateKind::Pending => &mut self.pending,
            StateKind::Claimed => &mut self.claimed,
            StateKind::Scheduled => &mut self.scheduled,
            StateKind::Delivered => &mut self.delivered,
            StateKind::Dead => &mut self.dead,
        }
    }

    /// Applies one move (`None` = created or removed).
    pub(crate) fn apply(&mut self, from: Option<StateKind>, to: Option<StateKind>) {
        if let Some(f) = from {
            let s = self.slot(f);
            *s = s.saturating_sub(1);
        }
        if let Some(t) = to {
            *self.slot(t) += 1;
        }
    }
}

/// What `purge_delivered` removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PurgeReport {
    /// Delivered deliveries removed.
    pub deliveries: u64,
    /// Attempts removed with them (their history entries).
    pub attempts: u64,
    /// Events removed (all their deliveries gone).
    pub events: u64,
}
