//! One enqueue batch's timer changes: planned job by job on the enqueue
//! committer (which holds the index's lock for the whole batch), written
//! with the batch's event records in one transaction, and undone in memory
//! if that write fails.

use std::collections::HashMap;

use super::TimerEffect;
use super::index::{Entry, TimerIndex};
use super::record;
use crate::error::OutboxError;
use crate::id::TimerId;
use crate::time::Timestamp;

/// A job's timer change, encoded on the caller's thread.
#[derive(Debug, Default)]
pub(crate) enum JobTimer {
    #[default]
    None,
    Arm {
        id: TimerId,
        key: String,
        deadline: Timestamp,
        record: sled::IVec,
    },
    Disarm {
        key: String,
    },
    Fire {
        id: TimerId,
    },
}

/// Why a job's timer change cannot be made.
pub(crate) enum Refused {
    /// The timer to fire is no longer armed: the job writes nothing.
    Gone,
    Failed(OutboxError),
}

enum Undo {
    Added(u128),
    Removed(u128, Entry),
}

/// The changes planned so far in one batch.
pub(crate) struct Stage<'a> {
    index: &'a mut TimerIndex,
    fired: &'a sled::Tree,
    pub(crate) timers_batch: sled::Batch,
    pub(crate) fired_batch: sled::Batch,
    /// Fired marks this batch wrote or removed (`None`), over the tree's.
    fired_overlay: HashMap<String, Option<(Timestamp, TimerId)>>,
    undo: Vec<Undo>,
    earliest: Option<Timestamp>,
}

impl<'a> Stage<'a> {
    pub(crate) fn new(index: &'a mut TimerIndex, fired: &'a sled::Tree) -> Self {
        let earliest = index.next();
        Self {
            index,
            fired,
            timers_batch: sled::Batch::default(),
            fired_batch: sled::Batch::default(),
            fired_overlay: HashMap::new(),
            undo: Vec::new(),
            earliest,
        }
    }

    /// Does the batch change any timer?
    pub(crate) fn touched(&self) -> bool {
        !self.undo.is_empty() || !self.fired_overlay.is_empty()
    }

    fn remove(&mut self, id: u128) -> Option<Entry> {
        let entry = self.index.remove(id)?;
        self.timers_batch
            .remove(TimerId::from_raw(id).as_str().as_bytes());
        self.undo.push(Undo::Removed(id, entry.clone()));
        Some(entry)
    }

    fn fired_mark(&self, key: &str) -> Result<Option<(Timestamp, TimerId)>, OutboxError> {
        if let Some(staged) = self.fired_overlay.get(key) {
            return Ok(staged.clone());
        }
        match self.fired.get(key.as_bytes())? {
            None => Ok(None),
            Some(v) => record::decode_fired(key.as_bytes(), &v).map(Some),
        }
    }

    /// Plans `op`, then each of `arms` (which cannot be refused), at `now`:
    /// the effect is `op`'s.
    pub(crate) fn plan_with_arms(
        &mut self,
        op: &JobTimer,
        arms: &[JobTimer],
        now: Timestamp,
    ) -> Result<TimerEffect, Refused> {
        let effect = self.plan(op, now)?;
        for arm in arms {
            debug_assert!(matches!(arm, JobTimer::Arm { .. }), "only arms follow");
            self.plan(arm, now)?;
        }
        Ok(effect)
    }

    /// Plans `op` at `now` (in memory at once; see `rollback`).
    pub(crate) fn plan(&mut self, op: &JobTimer, now: Timestamp) -> Result<TimerEffect, Refused> {
        match op {
            JobTimer::None => Ok(TimerEffect::None),
            JobTimer::Arm {
                id,
                key,
                deadline,
                record,
            } => {
                let replaced = self
                    .index
                    .by_key(key)
                    .map(|(old, _)| old)
                    .and_then(|old| self.remove(old).map(|_| TimerId::from_raw(old)));
                self.timers_batch
                    .insert(id.as_str().as_bytes(), record.clone());
                // A new run under the key: an old fired mark means nothing.
                self.fired_batch.remove(key.as_bytes());
                self.fired_overlay.insert(key.clone(), None);
                self.index.add(id.raw(), deadline.as_millis(), key);
                self.undo.push(Undo::Added(id.raw()));
                Ok(TimerEffect::Armed {
                    id: id.clone(),
                    replaced,
                })
            }
            JobTimer::Disarm { key } => {
                if let Some((id, _)) = self.index.by_key(key) {
                    let entry = self.remove(id);
                    return Ok(TimerEffect::Disarmed {
                        id: TimerId::from_raw(id),
                        deadline: Timestamp::from_millis(entry.map_or(0, |e| e.deadline)),
                    });
                }
                match self.fired_mark(key).map_err(Refused::Failed)? {
                    Some((fired_at, id)) => {
                        self.fired_batch.remove(key.as_bytes());
                        self.fired_overlay.insert(key.clone(), None);
                        Ok(TimerEffect::AlreadyFired { id, fired_at })
                    }
                    None => Ok(TimerEffect::NotArmed),
                }
            }
            JobTimer::Fire { id } => {
                let Some(entry) = self.remove(id.raw()) else {
                    return Err(Refused::Gone);
                };
                self.fired_batch
                    .insert(entry.key.as_bytes(), record::encode_fired(now, id));
                self.fired_overlay
                    .insert(entry.key.to_string(), Some((now, id.clone())));
                Ok(TimerEffect::Fired { id: id.clone() })
            }
        }
    }

    /// The batch was written: should the timer task wake (an earlier
    /// deadline than it sleeps for)?
    pub(crate) fn committed(self) -> bool {
        match (self.index.next(), self.earliest) {
            (Some(next), Some(before)) => next < before,
            (Some(_), None) => true,
            _ => false,
        }
    }

    /// The batch was not written: the index goes back to what the tree
    /// holds.
    pub(crate) fn rollback(self) {
        for u in self.undo.into_iter().rev() {
            match u {
                Undo::Added(id) => {
                    self.index.remove(id);
                }
                Undo::Removed(id, e) => self.index.add(id, e.deadline, &e.key),
            }
        }
    }
}
