//! When to try again: exponential backoff with full jitter, bounded by a
//! maximum number of counted attempts and a maximum age.

use std::time::Duration;

/// The retry schedule. The ceiling for attempt `n` (counting from 1) is
/// `base × multiplier^(n-1)`, capped at `cap`; the actual wait is drawn
/// uniformly from `[min_delay, ceiling]` ("full jitter"), so a burst of
/// failures does not come back as a burst.
///
/// With the defaults the ceilings run 5 s, 25 s, 2 min, 10 min, 52 min,
/// 4.3 h, 21.7 h, then 24 h; a delivery is dead-lettered after 12 counted
/// attempts or 48 hours, whichever comes first.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Ceiling of the first retry.
    pub base: Duration,
    /// Growth per attempt.
    pub multiplier: f64,
    /// Largest ceiling.
    pub cap: Duration,
    /// Smallest wait, so jitter never produces a hot loop.
    pub min_delay: Duration,
    /// Counted attempts before giving up (rate-limited answers do not count).
    pub max_attempts: u32,
    /// Age after which a failing delivery is given up.
    pub max_age: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            base: Duration::from_secs(5),
            multiplier: 5.0,
            cap: Duration::from_secs(24 * 3600),
            min_delay: Duration::from_secs(1),
            max_attempts: 12,
            max_age: Duration::from_secs(48 * 3600),
        }
    }
}

impl RetryPolicy {
    /// The largest wait after failed attempt `attempt` (1-based).
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let exp = attempt.saturating_sub(1).min(64);
        let secs = self.base.as_secs_f64() * self.multiplier.powi(exp as i32);
        if !secs.is_finite() || secs >= self.cap.as_secs_f64() {
            self.cap
        } else {
            Duration::from_secs_f64(secs).max(self.min_delay)
        }
    }

    /// A jittered wait after failed attempt `attempt`, using `unit`, a
    /// number in `[0, 1)` (injected so tests are deterministic).
    pub fn delay(&self, attempt: u32, unit: f64) -> Duration {
        let ceiling = self.ceiling(attempt);
        let span = ceiling.saturating_sub(self.min_delay);
        self.min_delay + span.mul_f64(unit.clamp(0.0, 1.0))
    }

    /// Should a delivery that failed attempt `attempt` at `age` give up?
    pub fn exhausted(&self, attempt: u32, age: Duration) -> bool {
        attempt >= self.max_attempts || age >= self.max_age
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_schedule_grows_to_a_day() {
        let p = RetryPolicy::default();
        let secs: Vec<u64> = (1..=9).map(|n| p.ceiling(n).as_secs()).collect();
        assert_eq!(secs, [5, 25, 125, 625, 3125, 15625, 78125, 86400, 86400]);
    }

    #[test]
    fn jitter_stays_within_bounds() {
        let p = RetryPolicy::default();
        assert_eq!(p.delay(3, 0.0), Duration::from_secs(1));
        assert_eq!(p.delay(3, 1.0), Duration::from_secs(125));
        let mid = p.delay(3, 0.5);
        assert!(
            mid > Duration::from_secs(60) && mid < Duration::from_secs(65),
            "{mid:?}"
        );
    }

    #[test]
    fn attempts_and_age_exhaust() {
        let p = RetryPolicy {
            max_attempts: 3,
            max_age: Duration::from_secs(60),
            ..RetryPolicy::default()
        };
        assert!(!p.exhausted(2, Duration::from_secs(10)));
        assert!(p.exhausted(3, Duration::from_secs(10)));
        assert!(p.exhausted(1, Duration::from_secs(60)));
    }
}
