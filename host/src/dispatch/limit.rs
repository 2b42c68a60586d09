//! Per-destination traffic shaping: one sliding window per rate the channel
//! enforces (e.g. Lark's 5/s and 100/min), plus a pause set when the
//! channel itself said "slow down". The gateway stays inside the vendor's
//! limits instead of learning them from rejections.
//!
//! A sliding log (the send times within the window) is exact: no window of
//! the channel's length ever sees more than its limit. A token bucket would
//! let a full burst and a full refill land in the same minute, twice the
//! vendor's limit.

use std::collections::VecDeque;
use std::time::Duration;

use carillon_outbox::Timestamp;

use crate::plugin::types::RateLimit;

/// The sends within one window.
#[derive(Debug, Clone)]
struct Window {
    limit: usize,
    length_ms: u64,
    sent: VecDeque<u64>,
}

impl Window {
    fn expire(&mut self, now: u64) {
        while self
            .sent
            .front()
            .is_some_and(|&t| t + self.length_ms <= now)
        {
            self.sent.pop_front();
        }
    }

    /// How long until one more send fits (zero if it fits now).
    fn wait(&self, now: u64) -> u64 {
        if self.sent.len() < self.limit {
            return 0;
        }
        // The send that must leave the window first.
        let index = self.sent.len() - self.limit;
        self.sent
            .get(index)
            .map_or(0, |&t| (t + self.length_ms).saturating_sub(now))
    }
}

/// The windows of one destination.
#[derive(Debug, Clone)]
pub struct Limiter {
    windows: Vec<Window>,
    paused_until: u64,
}

impl Limiter {
    /// A limiter enforcing every limit in `limits` (none: unlimited).
    pub fn new(limits: &[RateLimit], _now: Timestamp) -> Self {
        let windows = limits
            .iter()
            .filter(|l| l.requests > 0 && !l.window.is_zero())
            .map(|l| Window {
                limit: l.requests as usize,
                length_ms: u64::try_from(l.window.as_millis()).unwrap_or(u64::MAX),
                sent: VecDeque::with_capacity(l.requests.min(1024) as usize),
            })
            .collect();
        Limiter {
            windows,
            paused_until: 0,
        }
    }

    /// Records a send if every window has room; otherwise returns how long
    /// until they all will (nothing is recorded then).
    pub fn try_acquire(&mut self, now: Timestamp) -> Result<(), Duration> {
        let now = now.as_millis();
        if now < self.paused_until {
            return Err(Duration::from_millis(self.paused_until - now));
        }
        for w in &mut self.windows {
            w.expire(now);
        }
        let wait = self.windows.iter().map(|w| w.wait(now)).max().unwrap_or(0);
        if wait > 0 {
            return Err(Duration::from_millis(wait));
        }
        for w in &mut self.windows {
            w.sent.push_back(now);
        }
        Ok(())
    }

    /// Stops sending until `until` (the channel answered "rate limited").
    pub fn pause_until(&mut self, until: Timestamp) {
        self.paused_until = self.paused_until.max(until.as_millis());
    }

    /// Sends the windows allow within `span`, starting empty (`None`:
    /// unlimited).
    pub fn allowance(&self, span: Duration) -> Option<u64> {
        let span_ms = u64::try_from(span.as_millis()).unwrap_or(u64::MAX);
        self.windows
            .iter()
            .map(|w| (w.limit as u64).saturating_mul(span_ms / w.length_ms.max(1) + 1))
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    #[test]
    fn no_window_ever_sees_more_than_its_limit() {
        let mut l = Limiter::new(
            &[RateLimit {
                requests: 20,
                window: Duration::from_secs(60),
            }],
            at(0),
        );
        for i in 0..20 {
            assert_eq!(l.try_acquire(at(i * 100)), Ok(()));
        }
        // The first send leaves the window at 60 s, the second at 60.1 s.
        assert_eq!(l.try_acquire(at(30_000)), Err(Duration::from_secs(30)));
        assert_eq!(l.try_acquire(at(60_000)), Ok(()));
        assert_eq!(l.try_acquire(at(60_000)), Err(Duration::from_millis(100)));
        assert_eq!(l.try_acquire(at(60_100)), Ok(()));
    }

    #[test]
    fn every_window_is_respected() {
        let mut l = Limiter::new(
            &[
                RateLimit {
                    requests: 5,
                    window: Duration::from_secs(1),
                },
                RateLimit {
                    requests: 100,
                    window: Duration::from_secs(60),
                },
            ],
            at(0),
        );
        let mut sent = 0;
        let mut t = 0;
        while t < 60_000 {
            while l.try_acquire(at(t)).is_ok() {
                sent += 1;
            }
            t += 100;
        }
        // 5 a second for 20 s, then the minute's 100 are used up.
        assert_eq!(sent, 100);
    }

    #[test]
    fn a_pause_blocks_until_it_ends() {
        let mut l = Limiter::new(&[], at(0));
        assert_eq!(l.try_acquire(at(0)), Ok(()));
        l.pause_until(at(5_000));
        assert_eq!(l.try_acquire(at(1_000)), Err(Duration::from_secs(4)));
        assert_eq!(l.try_acquire(at(5_000)), Ok(()));
        assert_eq!(l.allowance(Duration::from_secs(30)), None);
    }
}
