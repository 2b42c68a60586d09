//! The idempotency index, kept in memory: which (source, idempotency key)
//! was accepted when, as which event.
//!
//! Why not on disk: the event record already holds its source, key and
//! time, durably and in the same write, so a stored index entry was a
//! second copy, and sled's cost per enqueue is about its cost per key.
//! `Outbox::open` rebuilds this index from the events received within the
//! window (event ids start with their time, so that is one range scan of
//! the newest events). The gateway refuses a delivered-retention shorter
//! than the window, so a purge never drops an event whose key is still
//! remembered.
//!
//! Only the enqueue committer adds entries, after its transaction
//! committed; it checks a batch's own keys against the batch itself.

use std::collections::HashMap;
use std::time::Duration;

use crate::time::Timestamp;

/// Accepted keys (`source ‖ 0x00 ‖ key`) → (accepted at, raw event id).
#[derive(Debug)]
pub(crate) struct Idempotency {
    entries: HashMap<Box<[u8]>, (u64, u128)>,
    window: Duration,
}

impl Idempotency {
    pub fn new(window: Duration) -> Self {
        Self {
            entries: HashMap::new(),
            window,
        }
    }

    /// The event that accepted `key` within the window before `now`.
    pub fn get(&self, key: &[u8], now: Timestamp) -> Option<(Timestamp, u128)> {
        let &(at, event) = self.entries.get(key)?;
        let at = Timestamp::from_millis(at);
        (now < at.saturating_add(self.window)).then_some((at, event))
    }

    /// Remembers that `event` accepted `key` at `at` (a later acceptance of
    /// an expired key replaces the old one).
    pub fn insert(&mut self, key: Box<[u8]>, at: Timestamp, event: u128) {
        self.entries.insert(key, (at.as_millis(), event));
    }

    /// Forgets keys whose window ended by `now`; returns how many.
    pub fn purge(&mut self, now: Timestamp) -> u64 {
        let before = self.entries.len();
        let window = self.window;
        self.entries
            .retain(|_, (at, _)| now < Timestamp::from_millis(*at).saturating_add(window));
        (before - self.entries.len()) as u64
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_remembered_for_the_window_only() {
        let t = Timestamp::from_millis;
        let mut ix = Idempotency::new(Duration::from_millis(100));
        ix.insert(b"app\0k".to_vec().into(), t(1_000), 7);
        assert_eq!(ix.get(b"app\0k", t(1_099)), Some((t(1_000), 7)));
        assert_eq!(ix.get(b"app\0k", t(1_100)), None, "window over");
        assert_eq!(ix.get(b"app\0other", t(1_000)), None);
        ix.insert(b"app\0j".to_vec().into(), t(1_050), 8);
        assert_eq!(ix.purge(t(1_100)), 1);
        assert_eq!(ix.len(), 1);
        assert_eq!(ix.get(b"app\0j", t(1_100)), Some((t(1_050), 8)));
    }
}
