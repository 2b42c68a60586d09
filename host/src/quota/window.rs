//! The open windows and their counts, in memory, shared by every config
//! version (carried over on reload like the activations).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use carillon_outbox::Clock;
use serde::{Deserialize, Serialize};

use super::Quota;

/// Distinct event types counted per window; more are counted as `other`,
/// so a window's size does not grow with what clients post.
const MAX_KINDS: usize = 32;

/// Sweep closed windows every this many takes, so that scopes no longer
/// configured (a deleted contact) do not stay in memory.
const SWEEP_EVERY: u32 = 4096;

/// One scope's current window.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    /// When it opened (ms since the epoch).
    pub start_ms: u64,
    /// When it closes.
    pub end_ms: u64,
    /// Alerts sent in it.
    pub sent: u32,
    /// Alerts held back in it.
    pub suppressed: u64,
    /// Held-back alerts by event type.
    pub kinds: BTreeMap<String, u64>,
}

impl Window {
    /// Counts one held-back alert of type `kind`.
    fn hold(&mut self, kind: &str) {
        self.suppressed += 1;
        let kind = if self.kinds.contains_key(kind) || self.kinds.len() < MAX_KINDS {
            kind
        } else {
            "other"
        };
        *self.kinds.entry(kind.to_owned()).or_default() += 1;
    }

    /// Takes back one held-back alert of type `kind`.
    fn unhold(&mut self, kind: &str) {
        self.suppressed = self.suppressed.saturating_sub(1);
        let key = if self.kinds.contains_key(kind) {
            kind
        } else {
            "other"
        };
        if let Some(n) = self.kinds.get_mut(key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.kinds.remove(key);
            }
        }
    }

    /// `self` with the larger of each count of `other` (the same window
    /// seen twice: in memory and in its timer's payload).
    pub fn merged(mut self, other: &Window) -> Window {
        self.suppressed = self.suppressed.max(other.suppressed);
        self.sent = self.sent.max(other.sent);
        for (k, n) in &other.kinds {
            let mine = self.kinds.entry(k.clone()).or_default();
            *mine = (*mine).max(*n);
        }
        self
    }
}

/// What one alert counted against a quota gets.
#[derive(Debug)]
pub enum Take {
    /// Under the quota: send it.
    Send(Claim),
    /// Over it: hold it back. The window's counts with it, for the digest
    /// timer.
    Hold(Claim, Window),
}

/// One counted alert, so that an enqueue that fails can take it back.
#[derive(Debug, Clone)]
pub struct Claim {
    key: String,
    start_ms: u64,
    held: Option<String>,
}

/// The windows of every scope.
pub struct Quotas {
    clock: Arc<dyn Clock>,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    windows: HashMap<String, Window>,
    takes: u32,
}

impl std::fmt::Debug for Quotas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Quotas")
            .field("windows", &self.lock().windows.len())
            .finish()
    }
}

impl Quotas {
    /// No window open; time from `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The counts stay consistent at every step, so a panic elsewhere
        // while holding the lock leaves nothing half-done.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The current time in ms.
    pub fn now_ms(&self) -> u64 {
        self.clock.now().as_millis()
    }

    /// Counts one alert of type `kind` against `quota` for scope `key`
    /// (`contact:li-wei`), opening a window if none is open.
    pub fn take(&self, key: &str, quota: &Quota, kind: &str) -> Take {
        let now = self.now_ms();
        let mut inner = self.lock();
        inner.takes = inner.takes.wrapping_add(1);
        if inner.takes.is_multiple_of(SWEEP_EVERY) {
            // A closed window's holds are in its digest timer's payload.
            inner.windows.retain(|_, w| w.end_ms > now);
        }
        let per = u64::try_from(quota.per.as_millis()).unwrap_or(u64::MAX);
        let window = inner.windows.entry(key.to_owned()).or_default();
        if window.end_ms <= now {
            // A closed window's holds are in its digest timer's payload
            // (each window has its own timer): the alert opens a new one.
            *window = Window {
                start_ms: now,
                end_ms: now.saturating_add(per),
                ..Window::default()
            };
        }
        let start_ms = window.start_ms;
        let claim = |held: Option<String>| Claim {
            key: key.to_owned(),
            start_ms,
            held,
        };
        if window.sent < quota.max {
            window.sent += 1;
            Take::Send(claim(None))
        } else {
            window.hold(kind);
            let c = claim(Some(kind.to_owned()));
            Take::Hold(c, window.clone())
        }
    }

    /// Takes back what `claims` counted (their event was not stored).
    pub fn release(&self, claims: &[Claim]) {
        let mut inner = self.lock();
        for c in claims {
            let Some(w) = inner.windows.get_mut(&c.key) else {
                continue;
            };
            if w.start_ms != c.start_ms {
                continue;
            }
            match &c.held {
                None => w.sent = w.sent.saturating_sub(1),
                Some(kind) => w.unhold(kind),
            }
        }
    }

    /// A window read back from its armed digest timer at start: it was
    /// holding alerts back, so it stays full until it ends.
    pub fn restore(&self, key: &str, quota_max: u32, window: Window) {
        let mut inner = self.lock();
        let restored = Window {
            sent: window.sent.max(quota_max),
            ..window
        };
        match inner.windows.get_mut(key) {
            Some(w) if w.start_ms == restored.start_ms => *w = w.clone().merged(&restored),
            _ => {
                inner.windows.insert(key.to_owned(), restored);
            }
        }
    }

    /// The digest of `key`'s window that ends at `end_ms` is being sent:
    /// the window as counted in memory (if it is still that one), closed.
    pub fn close(&self, key: &str, end_ms: u64) -> Option<Window> {
        let mut inner = self.lock();
        match inner.windows.get(key) {
            Some(w) if w.end_ms == end_ms => inner.windows.remove(key),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use carillon_outbox::{ManualClock, Timestamp};

    use super::*;

    fn quotas() -> (Arc<ManualClock>, Quotas) {
        let clock = Arc::new(ManualClock::new(Timestamp::from_millis(1_000_000)));
        (clock.clone(), Quotas::new(clock))
    }

    const Q: Quota = Quota {
        max: 2,
        per: Duration::from_secs(3600),
    };

    #[test]
    fn the_alerts_past_the_quota_are_held_and_counted_by_kind() {
        let (_, q) = quotas();
        assert!(matches!(q.take("contact:a", &Q, "x"), Take::Send(_)));
        assert!(matches!(q.take("contact:a", &Q, "x"), Take::Send(_)));
        let Take::Hold(_, w) = q.take("contact:a", &Q, "x") else {
            panic!("the third is held");
        };
        assert_eq!(w.suppressed, 1);
        let Take::Hold(_, w) = q.take("contact:a", &Q, "y") else {
            panic!("the fourth is held");
        };
        assert_eq!(w.suppressed, 2);
        assert_eq!(w.kinds["x"], 1);
        assert_eq!(w.kinds["y"], 1);
        assert_eq!(w.end_ms, 1_000_000 + 3_600_000);
        // Another scope has its own window.
        assert!(matches!(q.take("contact:b", &Q, "x"), Take::Send(_)));
    }

    #[test]
    fn a_window_ends_and_a_released_claim_is_taken_back() {
        let (clock, q) = quotas();
        let Take::Send(c1) = q.take("route:r", &Q, "x") else {
            panic!()
        };
        q.release(&[c1]);
        assert!(matches!(q.take("route:r", &Q, "x"), Take::Send(_)));
        assert!(matches!(q.take("route:r", &Q, "x"), Take::Send(_)));
        let Take::Hold(held, _) = q.take("route:r", &Q, "x") else {
            panic!()
        };
        q.release(&[held]);
        let Take::Hold(_, w) = q.take("route:r", &Q, "x") else {
            panic!()
        };
        assert_eq!(w.suppressed, 1, "the released hold was taken back");
        // The digest closes the window; the next alert opens a new one.
        clock.advance(Duration::from_secs(3600));
        let closed = q.close("route:r", w.end_ms).expect("the window");
        assert_eq!(closed.suppressed, 1);
        assert!(matches!(q.take("route:r", &Q, "x"), Take::Send(_)));
    }

    #[test]
    fn a_restored_window_stays_full_and_kinds_are_bounded() {
        let (_, q) = quotas();
        let w = Window {
            start_ms: 1_000_000,
            end_ms: 2_000_000,
            sent: 0,
            suppressed: 5,
            kinds: [("x".to_owned(), 5)].into(),
        };
        q.restore("contact:a", 2, w);
        let Take::Hold(_, w) = q.take("contact:a", &Q, "x") else {
            panic!("a restored window is full")
        };
        assert_eq!(w.suppressed, 6);
        for i in 0..100 {
            q.take("contact:a", &Q, &format!("kind{i}"));
        }
        let Take::Hold(_, w) = q.take("contact:a", &Q, "last") else {
            panic!()
        };
        assert!(w.kinds.len() <= MAX_KINDS + 1, "{}", w.kinds.len());
        assert!(w.kinds["other"] > 0);
        assert_eq!(w.suppressed, 107);
    }
}
