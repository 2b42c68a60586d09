//! Kept records (see `crate::kept`): written with an event by
//! `enqueue_kept`, in the enqueue committer's batch (so in the same atomic
//! write as the event), read back by prefix, removed on their own when
//! they no longer mean anything.

use super::Outbox;
use super::enqueue::Submitted;
use super::no_nul;
use crate::error::{EnqueueError, OutboxError};
use crate::kept::{KeptWrite, MAX_KEY, MAX_VALUE};
use crate::timers::NewTimer;
use crate::timers::stage::JobTimer;
use crate::types::{Enqueued, NewDelivery, NewEvent};

/// A kept record's key and new value (`None`: removed), as a job carries it.
pub(super) type KeptJob = (sled::IVec, Option<sled::IVec>);

impl Outbox {
    /// [`Outbox::enqueue`], writing (or removing) the kept record `kept`
    /// in the same atomic write: when it answers `Ok(Accepted)`, the event
    /// and the record are both durable. A duplicate (idempotency key seen)
    /// writes neither; a refused enqueue writes neither.
    pub async fn enqueue_kept(
        &self,
        event: NewEvent,
        deliveries: Vec<NewDelivery>,
        kept: KeptWrite,
    ) -> Result<Enqueued, EnqueueError> {
        self.enqueue_kept_arming(event, deliveries, kept, Vec::new())
            .await
    }

    /// [`Outbox::enqueue_kept`] that also arms each of `arms` in the same
    /// atomic write (see [`Outbox::enqueue_arming`]).
    pub async fn enqueue_kept_arming(
        &self,
        event: NewEvent,
        deliveries: Vec<NewDelivery>,
        kept: KeptWrite,
        arms: Vec<NewTimer>,
    ) -> Result<Enqueued, EnqueueError> {
        let now = self.clock.now();
        let arms = arms
            .into_iter()
            .map(|t| self.arm_job(t, now))
            .collect::<Result<Vec<_>, _>>()?;
        no_nul("kept key", &kept.key)?;
        if kept.key.is_empty() || kept.key.len() > MAX_KEY {
            return Err(EnqueueError::Invalid {
                field: "kept key",
                reason: "must be 1 to 1024 bytes",
            });
        }
        if kept.value.as_ref().is_some_and(|v| v.len() > MAX_VALUE) {
            return Err(EnqueueError::Invalid {
                field: "kept value",
                reason: "is larger than 16 KiB",
            });
        }
        let job = (
            sled::IVec::from(kept.key.as_bytes()),
            kept.value.map(sled::IVec::from),
        );
        match self
            .submit(event, deliveries, (JobTimer::None, arms), Some(job))
            .await?
        {
            Submitted::Done(enqueued, _) => Ok(enqueued),
            // Only a fire can find its timer gone, and this is none.
            Submitted::TimerGone => Err(EnqueueError::Invalid {
                field: "timer",
                reason: "no timer to fire was named",
            }),
        }
    }

    /// Every kept record whose key starts with `prefix`, in key order.
    pub fn kept(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, OutboxError> {
        let mut out = Vec::new();
        for kv in self.kept.scan_prefix(prefix.as_bytes()) {
            let (k, v) = kv?;
            let key = String::from_utf8(k.to_vec()).map_err(|_| OutboxError::Corrupt {
                tree: crate::keys::KEPT,
                key: crate::keys::display_key(&k),
                reason: "the key is not UTF-8".into(),
            })?;
            out.push((key, v.to_vec()));
        }
        Ok(out)
    }

    /// Writes the kept record `key` without an event (state of the
    /// gateway's own, such as a destination's last test push), flushed
    /// before it answers.
    pub fn put_kept(&self, key: &str, value: &[u8]) -> Result<(), OutboxError> {
        if key.is_empty() || key.len() > MAX_KEY || key.contains('\0') {
            return Err(OutboxError::Invalid {
                field: "kept key",
                reason: "must be 1 to 1024 bytes without NUL",
            });
        }
        if value.len() > MAX_VALUE {
            return Err(OutboxError::Invalid {
                field: "kept value",
                reason: "is larger than 16 KiB",
            });
        }
        self.kept.insert(key.as_bytes(), value)?;
        self.db.flush()?;
        Ok(())
    }

    /// Removes the kept record `key` without an event (its owner no
    /// longer exists: a monitor rule taken out of the config). Flushed
    /// before it answers; `Ok(false)` if there was none.
    pub fn remove_kept(&self, key: &str) -> Result<bool, OutboxError> {
        let removed = self.kept.remove(key.as_bytes())?.is_some();
        if removed {
            self.db.flush()?;
        }
        Ok(removed)
    }
}
