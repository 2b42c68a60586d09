//! The armed timers in memory: by deadline (the next one to fire, those
//! due) and by key (one armed timer per key). Rebuilt at open from the
//! `timers` tree; changed only under its lock by whoever writes the tree
//! (see the module docs of `timers`).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use crate::time::Timestamp;

/// One armed timer's place in the index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) deadline: u64,
    pub(crate) key: Arc<str>,
}

/// Armed timers by (deadline, raw id), by key and by raw id.
#[derive(Debug, Default)]
pub(crate) struct TimerIndex {
    by_deadline: BTreeSet<(u64, u128)>,
    by_key: HashMap<Arc<str>, u128>,
    by_id: HashMap<u128, Entry>,
}

impl TimerIndex {
    /// Adds an armed timer (its key must not be armed: see `remove`).
    pub(crate) fn add(&mut self, id: u128, deadline: u64, key: &str) {
        let key: Arc<str> = Arc::from(key);
        self.by_deadline.insert((deadline, id));
        self.by_key.insert(Arc::clone(&key), id);
        self.by_id.insert(id, Entry { deadline, key });
    }

    /// Removes a timer; returns its entry if it was armed.
    pub(crate) fn remove(&mut self, id: u128) -> Option<Entry> {
        let entry = self.by_id.remove(&id)?;
        self.by_deadline.remove(&(entry.deadline, id));
        if self.by_key.get(&entry.key) == Some(&id) {
            self.by_key.remove(&entry.key);
        }
        Some(entry)
    }

    /// The timer armed under `key`.
    pub(crate) fn by_key(&self, key: &str) -> Option<(u128, &Entry)> {
        let id = *self.by_key.get(key)?;
        self.by_id.get(&id).map(|e| (id, e))
    }

    /// The armed timer `id`.
    pub(crate) fn get(&self, id: u128) -> Option<&Entry> {
        self.by_id.get(&id)
    }

    /// The earliest deadline.
    pub(crate) fn next(&self) -> Option<Timestamp> {
        self.by_deadline
            .first()
            .map(|&(t, _)| Timestamp::from_millis(t))
    }

    /// Up to `limit` timers due at `now`, earliest first.
    pub(crate) fn due(&self, now: Timestamp, limit: usize) -> Vec<u128> {
        self.by_deadline
            .iter()
            .take_while(|&&(t, _)| t <= now.as_millis())
            .take(limit)
            .map(|&(_, id)| id)
            .collect()
    }

    /// How many timers are armed.
    pub(crate) fn len(&self) -> usize {
        self.by_id.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_deadlines_and_removal_stay_in_step() {
        let mut ix = TimerIndex::default();
        ix.add(2, 200, "b");
        ix.add(1, 100, "a");
        ix.add(3, 100, "c");
        assert_eq!(ix.next(), Some(Timestamp::from_millis(100)));
        assert_eq!(ix.due(Timestamp::from_millis(150), 10), vec![1, 3]);
        assert_eq!(ix.due(Timestamp::from_millis(150), 1), vec![1]);
        assert_eq!(ix.by_key("b").map(|(id, _)| id), Some(2));
        assert_eq!(ix.remove(1).map(|e| e.deadline), Some(100));
        assert_eq!(ix.remove(1), None);
        assert!(ix.by_key("a").is_none());
        assert_eq!(ix.len(), 2);
        assert_eq!(ix.due(Timestamp::from_millis(99), 10), Vec::<u128>::new());
    }
}
