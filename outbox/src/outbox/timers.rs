//! Timers besides their writes in `enqueue`: reading the armed ones (the
//! next deadline, those due, a page for listings), cancelling one, and
//! purging old fired marks.
//!
//! Invariants (see `timers`): the index changes only under its lock, held
//! across the write that matches it; a cancel writes one removal, so a
//! timer it removed can no longer fire (`fire_timer` finds it gone).

use super::{Outbox, lock};
use crate::error::OutboxError;
use crate::id::TimerId;
use crate::time::Timestamp;
use crate::timers::{Timer, record};

impl Outbox {
    /// The earliest deadline of an armed timer.
    pub fn next_timer_deadline(&self) -> Option<Timestamp> {
        lock(&self.mem.timers).next()
    }

    /// Notified when a timer is armed with a deadline earlier than every
    /// other armed one: the task sleeping until the next deadline wakes
    /// and looks again.
    pub fn timers_changed(&self) -> &tokio::sync::Notify {
        &self.mem.timers_changed
    }

    /// How many timers are armed.
    pub fn armed_timers(&self) -> usize {
        lock(&self.mem.timers).len()
    }

    /// Up to `limit` armed timers due at `now`, earliest first, with their
    /// payloads (to build the events they fire).
    pub fn due_timers(&self, now: Timestamp, limit: usize) -> Result<Vec<Timer>, OutboxError> {
        let ids = lock(&self.mem.timers).due(now, limit);
        let mut out = Vec::with_capacity(ids.len());
        for raw in ids {
            if let Some(t) = self.timer(&TimerId::from_raw(raw))? {
                out.push(t);
            }
        }
        Ok(out)
    }

    /// The armed timer `id`.
    pub fn timer(&self, id: &TimerId) -> Result<Option<Timer>, OutboxError> {
        let key = id.as_str().as_bytes();
        match self.timers.get(key)? {
            None => Ok(None),
            Some(v) => record::decode(key, &v).map(Some),
        }
    }

    /// A page of armed timers by id (the order they were armed in) after
    /// `after`, keeping those `keep` accepts: up to `limit` of them, and
    /// the id to pass as `after` for the next page (`None` on the last).
    pub fn timers_page(
        &self,
        after: Option<&TimerId>,
        limit: usize,
        keep: impl Fn(&Timer) -> bool,
    ) -> Result<(Vec<Timer>, Option<TimerId>), OutboxError> {
        let range = match after {
            Some(a) => self.timers.range::<&[u8], _>((
                std::ops::Bound::Excluded(a.as_str().as_bytes()),
                std::ops::Bound::Unbounded,
            )),
            None => self.timers.iter(),
        };
        let mut out = Vec::new();
        for kv in range {
            let (k, v) = kv?;
            let t = record::decode(&k, &v)?;
            if !keep(&t) {
                continue;
            }
            if out.len() == limit {
                let next = out.last().map(|t: &Timer| t.id.clone());
                return Ok((out, next));
            }
            out.push(t);
        }
        Ok((out, None))
    }

    /// Cancels the armed timer `id` without an event (an admin's
    /// cancel): `Ok(false)` if it is not armed. Flushed before it answers.
    pub fn cancel_timer(&self, id: &TimerId) -> Result<bool, OutboxError> {
        let mut index = lock(&self.mem.timers);
        if index.get(id.raw()).is_none() {
            return Ok(false);
        }
        self.timers.remove(id.as_str().as_bytes())?;
        index.remove(id.raw());
        drop(index);
        self.db.flush()?;
        Ok(true)
    }

    /// Removes the fired marks of timers that fired before `before`: a
    /// completion arriving later is no longer told it is late. Returns how
    /// many were removed.
    pub fn purge_fired_timers(&self, before: Timestamp) -> Result<usize, OutboxError> {
        let mut removed = 0;
        for kv in self.timers_fired.iter() {
            let (k, v) = kv?;
            let (fired_at, _) = record::decode_fired(&k, &v)?;
            if fired_at < before {
                // A mark consumed or replaced meanwhile is left alone.
                if self
                    .timers_fired
                    .compare_and_swap(&k, Some(&v), None::<&[u8]>)?
                    .is_ok()
                {
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }
}
