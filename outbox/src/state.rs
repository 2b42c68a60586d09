//! The delivery state machine, one type per state. A transition consumes
//! the state it leaves and returns the one it enters, so an impossible move
//! (delivering a pending delivery, requeueing a delivered one) does not
//! compile.
//!
//! ```text
//!            claim                 Delivered
//! Pending ─────────▶ Claimed ─────────────────▶ Delivered
//!    ▲                 │ ▲  ╲ Retry
//!    │ requeue         │ │   ╲──────▶ ScheduledRetry ──claim (when due)──▶ Claimed
//!    │                 │ └ reclaim (lease expired)
//!   Dead ◀─────────────┘ Dead (+ optional fallback delivery, Pending)
//! ```

use crate::time::Timestamp;

/// Where a delivery is now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeliveryState {
    /// Waiting for its first attempt (or requeued by an operator).
    Pending(Pending),
    /// Being attempted by a dispatcher holding a lease.
    Claimed(Claimed),
    /// Waiting for a retry.
    Scheduled(ScheduledRetry),
    /// Done: the channel accepted it.
    Delivered(Delivered),
    /// Given up: in the dead-letter index.
    Dead(Dead),
}

/// Waiting for its first attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pending {
    /// When it may be claimed.
    pub due: Timestamp,
}

/// Leased to one dispatcher until `lease_until`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claimed {
    /// Who holds the lease.
    pub owner: String,
    /// When the lease expires and the delivery becomes claimable again.
    pub lease_until: Timestamp,
    /// Which claim this is (increases with every claim of the delivery);
    /// a completion must present the same token.
    pub token: u64,
}

/// Waiting for a retry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduledRetry {
    /// When it may be claimed again.
    pub due: Timestamp,
    /// The error that caused the retry.
    pub last_error: String,
}

/// Accepted by the channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivered {
    /// When the outcome was recorded.
    pub at: Timestamp,
    /// The receipt detail the channel returned.
    pub detail: String,
    /// The channel's id for the message, if it gave one.
    pub remote_id: Option<String>,
}

/// Given up on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dead {
    /// When it was dead-lettered.
    pub at: Timestamp,
    /// Why.
    pub error: String,
}

impl Pending {
    /// Leases it to `owner`.
    pub fn claim(self, owner: &str, lease_until: Timestamp, token: u64) -> Claimed {
        Claimed {
            owner: owner.to_owned(),
            lease_until,
            token,
        }
    }
}

impl ScheduledRetry {
    /// Leases it to `owner`.
    pub fn claim(self, owner: &str, lease_until: Timestamp, token: u64) -> Claimed {
        Claimed {
            owner: owner.to_owned(),
            lease_until,
            token,
        }
    }
}

impl Claimed {
    /// Takes over an expired lease; `Err(self)` while the lease still holds.
    pub fn reclaim(
        self,
        now: Timestamp,
        owner: &str,
        lease_until: Timestamp,
        token: u64,
    ) -> Result<Claimed, Claimed> {
        if self.lease_until <= now {
            Ok(Claimed {
                owner: owner.to_owned(),
                lease_until,
                token,
            })
        } else {
            Err(self)
        }
    }

    /// Whether `owner` still holds this claim under `token`.
    pub fn held_by(&self, owner: &str, token: u64) -> bool {
        self.owner == owner && self.token == token
    }

    /// The channel accepted it.
    pub fn deliver(self, at: Timestamp, detail: String, remote_id: Option<String>) -> Delivered {
        Delivered {
            at,
            detail,
            remote_id,
        }
    }

    /// Try again at `due`.
    pub fn retry(self, due: Timestamp, error: String) -> ScheduledRetry {
        ScheduledRetry {
            due,
            last_error: error,
        }
    }

    /// Give up.
    pub fn die(self, at: Timestamp, error: String) -> Dead {
        Dead { at, error }
    }
}

impl Dead {
    /// An operator sends it again, due at `now`.
    pub fn requeue(self, now: Timestamp) -> Pending {
        Pending { due: now }
    }
}

impl DeliveryState {
    /// The key time in the `due` index: the due time of a pending or
    /// scheduled delivery, the lease expiry of a claimed one; `None` for
    /// final states.
    pub fn index_time(&self) -> Option<Timestamp> {
        match self {
            Self::Pending(p) => Some(p.due),
            Self::Scheduled(s) => Some(s.due),
            Self::Claimed(c) => Some(c.lease_until),
            Self::Delivered(_) | Self::Dead(_) => None,
        }
    }

    /// Which counter of [`Depth`](crate::Depth) it belongs to.
    pub fn kind(&self) -> StateKind {
        match self {
            Self::Pending(_) => StateKind::Pending,
            Self::Claimed(_) => StateKind::Claimed,
            Self::Scheduled(_) => StateKind::Scheduled,
            Self::Delivered(_) => StateKind::Delivered,
            Self::Dead(_) => StateKind::Dead,
        }
    }
}

/// The state's name, without its data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StateKind {
    /// [`Pending`].
    Pending,
    /// [`Claimed`].
    Claimed,
    /// [`ScheduledRetry`].
    Scheduled,
    /// [`Delivered`].
    Delivered,
    /// [`Dead`].
    Dead,
}
