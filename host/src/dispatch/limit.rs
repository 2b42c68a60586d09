//! Per-destination traffic shaping: token buckets (one per window the
//! channel enforces, e.g. Lark's 5/s and 100/min) plus a pause set when the
//! channel itself said "slow down". The gateway stays inside the vendor's
//! limits instead of learning them from rejections.

use std::time::Duration;

use carillon_outbox::Timestamp;

use crate::plugin::types::RateLimit;

/// One bucket: `capacity` tokens, refilled continuously over `window`.
#[derive(Debug, Clone)]
struct Bucket {
    capacity: f64,
    per_ms: f64,
    tokens: f64,
    updated: u64,
}

/// The buckets of one destination.
#[derive(Debug, Clone)]
pub struct Limiter {
    buckets: Vec<Bucket>,
    paused_until: u64,
}

impl Limiter {
    /// A limiter enforcing every limit in `limits` (none: unlimited), full at `now`.
    pub fn new(limits: &[RateLimit], now: Timestamp) -> Self {
        let buckets = limits
            .iter()
            .filter(|l| l.requests > 0 && !l.window.is_zero())
            .map(|l| Bucket {
                capacity: f64::from(l.requests),
                per_ms: f64::from(l.requests) / l.window.as_millis() as f64,
                tokens: f64::from(l.requests),
                updated: now.as_millis(),
            })
            .collect();
        Limiter {
            buckets,
            paused_until: 0,
        }
    }

    fn refill(&mut self, now: u64) {
        for b in &mut self.buckets {
            let elapsed = now.saturating_sub(b.updated) as f64;
            b.tokens = (b.tokens + elapsed * b.per_ms).min(b.capacity);
            b.updated = b.updated.max(now);
        }
    }

    /// Takes a token from every bucket if all have one; otherwise returns
    /// how long until they will (nothing is taken then).
    pub fn try_acquire(&mut self, now: Timestamp) -> Result<(), Duration> {
        let now = now.as_millis();
        if now < self.paused_until {
            return Err(Duration::from_millis(self.paused_until - now));
        }
        self.refill(now);
        let wait_ms = self
            .buckets
            .iter()
            .map(|b| {
                if b.tokens >= 1.0 {
                    0.0
                } else {
                    ((1.0 - b.tokens) / b.per_ms).ceil()
                }
            })
            .fold(0.0, f64::max);
        if wait_ms > 0.0 {
            return Err(Duration::from_millis(wait_ms as u64));
        }
        for b in &mut self.buckets {
            b.tokens -= 1.0;
        }
        Ok(())
    }

    /// Stops sending until `until` (the channel answered "rate limited").
    pub fn pause_until(&mut self, until: Timestamp) {
        self.paused_until = self.paused_until.max(until.as_millis());
    }

    /// Requests the buckets allow within `span` from full: burst plus refill.
    pub fn allowance(&self, span: Duration) -> Option<u64> {
        self.buckets
            .iter()
            .map(|b| (b.capacity + b.per_ms * span.as_millis() as f64).floor() as u64)
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
    fn twenty_per_minute_bursts_then_spaces() {
        let mut l = Limiter::new(
            &[RateLimit {
                requests: 20,
                window: Duration::from_secs(60),
            }],
            at(0),
        );
        for _ in 0..20 {
            assert_eq!(l.try_acquire(at(0)), Ok(()));
        }
        assert_eq!(l.try_acquire(at(0)), Err(Duration::from_secs(3)));
        assert_eq!(l.try_acquire(at(3_000)), Ok(()));
        assert!(l.try_acquire(at(3_000)).is_err());
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
        assert!(sent <= 100 + 1, "{sent}");
        assert!(sent >= 99, "{sent}");
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
