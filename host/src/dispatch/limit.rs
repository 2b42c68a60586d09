//! Per-vendor-credential traffic shaping: one sliding window per rate the
//! channel enforces (e.g. Lark's 5/s and 100/min), plus a pause set when
//! the channel itself said "slow down". The gateway stays inside the
//! vendor's limits instead of learning them from rejections: DingTalk
//! answers a 21st message in a minute by silencing the robot for 10
//! minutes, so being right on average is not enough.
//!
//! A sliding log (the send times within the window) is exact: no window of
//! the channel's length ever sees more than its limit. A token bucket would
//! let a full burst and a full refill land in the same minute, twice the
//! vendor's limit.
//!
//! **A slot is held until the answer is back.** The vendor counts a request
//! when it arrives, which is some time after the gateway took the slot (a
//! wait for a concurrency permit, a slow connection) and before the answer
//! returns. So a slot counts against every window from the moment it is
//! taken, without expiring, until its attempt ends, and is then logged at
//! the end plus [`ANSWER_MARGIN`]: its window expires one window length
//! after the answer, never before the vendor's copy of it does.
//!
//! **One limiter per credential the vendor counts** ([`RateKey`]): the
//! plugin and the destination's endpoints (a robot's webhook URL with its
//! token), so destinations that share a robot share its limit and its
//! pause.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use carillon_outbox::{Clock, Timestamp};

use crate::plugin::types::RateLimit;

mod key;

pub use key::RateKey;

/// How long after its answer a send still counts. The answer proves the
/// vendor received the request before it, so the margin covers only what
/// the answer does not: a vendor that stamps a request a little after its
/// receipt or counts in whole seconds (rounding up by under a second). One
/// second costs at most one window's length in 60 of throughput (1.7% of a
/// per-minute limit) and nothing below the limit.
pub const ANSWER_MARGIN: Duration = Duration::from_millis(MARGIN_MS);

const MARGIN_MS: u64 = 1_000;

/// The sends within one window.
#[derive(Debug, Clone)]
struct Window {
    limit: usize,
    length_ms: u64,
    /// When each finished send's answer came back, plus the margin,
    /// ascending.
    sent: VecDeque<u64>,
}

impl Window {
    fn new(limit: &RateLimit) -> Option<Window> {
        (limit.requests > 0 && !limit.window.is_zero()).then(|| Window {
            limit: limit.requests as usize,
            length_ms: u64::try_from(limit.window.as_millis()).unwrap_or(u64::MAX),
            sent: VecDeque::with_capacity(limit.requests.min(1024) as usize),
        })
    }

    fn expire(&mut self, now: u64) {
        while self
            .sent
            .front()
            .is_some_and(|&t| t.saturating_add(self.length_ms) <= now)
        {
            self.sent.pop_front();
        }
    }

    /// How long until one more send fits (zero if it fits now), with
    /// `in_flight` slots held that leave only after their answer.
    fn wait(&self, now: u64, in_flight: usize) -> u64 {
        let used = self.sent.len() + in_flight;
        if used < self.limit {
            return 0;
        }
        // The logged send that must leave the window first.
        match self.sent.get(used - self.limit) {
            Some(&t) => t.saturating_add(self.length_ms).saturating_sub(now),
            // Only an answer not yet back frees room, one window after it
            // arrives: at least this long.
            None => self.length_ms.saturating_add(MARGIN_MS),
        }
    }

    fn log(&mut self, at: u64) {
        let index = self.sent.partition_point(|&t| t <= at);
        self.sent.insert(index, at);
    }
}

/// The windows of one vendor credential.
#[derive(Debug, Clone)]
pub struct Limiter {
    windows: Vec<Window>,
    /// Slots taken whose attempt has not ended.
    in_flight: usize,
    paused_until: u64,
}

impl Limiter {
    /// A limiter enforcing every limit in `limits` (none: unlimited).
    pub fn new(limits: &[RateLimit], _now: Timestamp) -> Self {
        let mut limiter = Limiter {
            windows: Vec::new(),
            in_flight: 0,
            paused_until: 0,
        };
        limiter.include(limits);
        limiter
    }

    /// Adds the windows of `limits` it does not enforce yet (another
    /// destination on the same credential declared them), so the strictest
    /// of every window applies. A new window starts with the sends the
    /// longest existing one remembers.
    pub fn include(&mut self, limits: &[RateLimit]) {
        for limit in limits {
            let Some(mut window) = Window::new(limit) else {
                continue;
            };
            if self
                .windows
                .iter()
                .any(|w| w.limit == window.limit && w.length_ms == window.length_ms)
            {
                continue;
            }
            if let Some(longest) = self.windows.iter().max_by_key(|w| w.length_ms) {
                window.sent = longest.sent.clone();
            }
            self.windows.push(window);
        }
    }

    /// Takes a slot if every window has room; otherwise returns how long
    /// until they all will, at least (nothing is taken then). The slot
    /// counts until [`answered`](Self::answered) or
    /// [`unused`](Self::unused) gives it back.
    pub fn try_acquire(&mut self, now: Timestamp) -> Result<(), Duration> {
        let now = now.as_millis();
        if now < self.paused_until {
            return Err(Duration::from_millis(self.paused_until - now));
        }
        for w in &mut self.windows {
            w.expire(now);
        }
        let wait = self
            .windows
            .iter()
            .map(|w| w.wait(now, self.in_flight))
            .max()
            .unwrap_or(0);
        if wait > 0 {
            return Err(Duration::from_millis(wait));
        }
        self.in_flight += 1;
        Ok(())
    }

    /// The attempt of a slot ended at `now`: the send is logged at `now`
    /// plus [`ANSWER_MARGIN`] and leaves each window one length after.
    pub fn answered(&mut self, now: Timestamp) {
        self.in_flight = self.in_flight.saturating_sub(1);
        let at = now.as_millis().saturating_add(MARGIN_MS);
        for w in &mut self.windows {
            w.log(at);
        }
    }

    /// A slot was given back unused: nothing was sent.
    pub fn unused(&mut self) {
        self.in_flight = self.in_flight.saturating_sub(1);
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

/// A slot taken from a shared [`Limiter`], held until the attempt ends:
/// [`answered`](Slot::answered) logs it, [`unused`](Slot::unused) gives it
/// back, and dropping it otherwise (a task that panicked) logs it as
/// answered then, erring on the side of the vendor's count.
#[must_use = "a slot counts against the limit until it is answered or unused"]
pub struct Slot {
    limiter: Arc<Mutex<Limiter>>,
    clock: Arc<dyn Clock>,
    sent: bool,
}

impl Slot {
    /// Takes a slot from `limiter` at `clock`'s now, or says how long until
    /// one may be free.
    pub fn take(limiter: &Arc<Mutex<Limiter>>, clock: &Arc<dyn Clock>) -> Result<Slot, Duration> {
        lock(limiter).try_acquire(clock.now())?;
        Ok(Slot {
            limiter: limiter.clone(),
            clock: clock.clone(),
            sent: true,
        })
    }

    /// Pauses the slot's limiter (every destination on its credential).
    pub fn pause_until(&self, until: Timestamp) {
        lock(&self.limiter).pause_until(until);
    }

    /// The attempt ended now; the slot counts one window from now on.
    pub fn answered(self) {
        // Logged by `drop`.
    }

    /// Nothing was sent: gives the slot back.
    pub fn unused(mut self) {
        self.sent = false;
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut limiter = lock(&self.limiter);
        if self.sent {
            limiter.answered(self.clock.now());
        } else {
            limiter.unused();
        }
    }
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slot").field("sent", &self.sent).finish()
    }
}

fn lock(limiter: &Mutex<Limiter>) -> std::sync::MutexGuard<'_, Limiter> {
    limiter.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use carillon_outbox::ManualClock;

    fn at(ms: u64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    fn per_minute(requests: u32) -> RateLimit {
        RateLimit {
            requests,
            window: Duration::from_secs(60),
        }
    }

    /// Takes a slot at `ms` and has the answer back at once.
    fn send(l: &mut Limiter, ms: u64) -> Result<(), Duration> {
        l.try_acquire(at(ms))?;
        l.answered(at(ms));
        Ok(())
    }

    #[test]
    fn no_window_ever_sees_more_than_its_limit() {
        let mut l = Limiter::new(&[per_minute(20)], at(0));
        for i in 0..20 {
            assert_eq!(send(&mut l, i * 100), Ok(()));
        }
        // The first send leaves the window a minute after its answer (plus
        // the margin), at 61 s; the second at 61.1 s.
        assert_eq!(send(&mut l, 30_000), Err(Duration::from_secs(31)));
        assert_eq!(send(&mut l, 61_000), Ok(()));
        assert_eq!(send(&mut l, 61_000), Err(Duration::from_millis(100)));
        assert_eq!(send(&mut l, 61_100), Ok(()));
    }

    #[test]
    fn every_window_is_respected() {
        let mut l = Limiter::new(
            &[
                RateLimit {
                    requests: 5,
                    window: Duration::from_secs(1),
                },
                per_minute(100),
            ],
            at(0),
        );
        let mut sent = 0;
        let mut t = 0;
        while t < 60_000 {
            while send(&mut l, t).is_ok() {
                sent += 1;
            }
            t += 100;
        }
        // 5 per window of a second after the answers, until the minute's
        // 100 are used up.
        assert_eq!(sent, 100);
    }

    #[test]
    fn a_slot_counts_from_its_taking_until_its_answer() {
        let mut l = Limiter::new(&[per_minute(2)], at(0));
        assert_eq!(l.try_acquire(at(0)), Ok(()));
        assert_eq!(l.try_acquire(at(0)), Ok(()));
        // Both in flight: full, and an answer not yet back frees nothing
        // for at least a window after it.
        assert_eq!(l.try_acquire(at(0)), Err(Duration::from_secs(61)));
        // Long after they were taken, they still count: the vendor may
        // have received them only now.
        assert!(l.try_acquire(at(120_000)).is_err());
        // One answer back at 120 s: it leaves the window at 181 s.
        l.answered(at(120_000));
        assert_eq!(l.try_acquire(at(150_000)), Err(Duration::from_secs(31)));
        assert_eq!(l.try_acquire(at(181_000)), Ok(()));
        // The other is still in flight, and so is the new one.
        assert!(l.try_acquire(at(500_000)).is_err());
        // A slot given back unused frees its room at once.
        l.unused();
        assert_eq!(l.try_acquire(at(500_000)), Ok(()));
    }

    #[test]
    fn no_vendor_window_sees_more_than_the_limit_whatever_the_latency() {
        // A vendor counts a request when it arrives: after its slot was
        // taken and it waited for one of the lane's four connections (plus
        // up to a second on the way), before its answer (mostly quick, one
        // in ten after 20 to 50 s, which holds a connection and makes the
        // slots queued behind it arrive late). Simulate ten minutes of such
        // a lane, in steps of 50 ms.
        let mut rng = fastrand::Rng::with_seed(25);
        let mut l = Limiter::new(&[per_minute(20)], at(0));
        let mut queued = 0;
        let mut answers: Vec<u64> = Vec::new();
        let mut arrivals = Vec::new();
        let mut t = 0;
        while t < 600_000 {
            answers.retain(|&answer| {
                let done = answer <= t;
                if done {
                    l.answered(at(t));
                }
                !done
            });
            while queued < 40 && l.try_acquire(at(t)).is_ok() {
                queued += 1;
            }
            while queued > 0 && answers.len() < 4 {
                queued -= 1;
                let arrival = t + rng.u64(0..1_000);
                arrivals.push(arrival);
                let latency = if rng.f64() < 0.1 {
                    rng.u64(20_000..50_000)
                } else {
                    rng.u64(0..500)
                };
                answers.push(arrival + latency);
            }
            t += 50;
        }
        arrivals.sort_unstable();
        assert!(arrivals.len() > 100, "the lane kept sending");
        for pair in arrivals.windows(21) {
            assert!(
                pair[20] - pair[0] >= 60_000,
                "21 arrivals within a minute: {} .. {}",
                pair[0],
                pair[20]
            );
        }
    }

    #[test]
    fn a_slot_is_logged_when_it_ends_unless_unused() {
        let clock = Arc::new(ManualClock::new(at(0)));
        let dyn_clock: Arc<dyn Clock> = clock.clone();
        let limiter = Arc::new(Mutex::new(Limiter::new(&[per_minute(1)], at(0))));
        let slot = Slot::take(&limiter, &dyn_clock).expect("room");
        assert!(Slot::take(&limiter, &dyn_clock).is_err(), "held");
        slot.unused();
        let slot = Slot::take(&limiter, &dyn_clock).expect("given back");
        clock.advance(Duration::from_secs(10));
        slot.answered();
        // Counted from its answer at 10 s (plus the margin), not from 0 s.
        clock.set(at(70_999));
        assert_eq!(
            Slot::take(&limiter, &dyn_clock).unwrap_err(),
            Duration::from_millis(1)
        );
        clock.set(at(71_000));
        let slot = Slot::take(&limiter, &dyn_clock).expect("a minute after");
        // A slot dropped without a word (a panicked task) counts as sent.
        drop(slot);
        clock.set(at(131_999));
        assert_eq!(
            Slot::take(&limiter, &dyn_clock).unwrap_err(),
            Duration::from_millis(1)
        );
        clock.set(at(132_000));
        let slot = Slot::take(&limiter, &dyn_clock).expect("a minute after");
        // A pause reaches the limiter behind the slot.
        slot.pause_until(at(200_000));
        slot.unused();
        clock.set(at(190_000));
        assert_eq!(
            Slot::take(&limiter, &dyn_clock).unwrap_err(),
            Duration::from_secs(10)
        );
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

    #[test]
    fn a_shared_limiter_enforces_every_destinations_windows() {
        let mut l = Limiter::new(&[per_minute(20)], at(0));
        for i in 0..3 {
            assert_eq!(send(&mut l, i), Ok(()));
        }
        // A second destination on the credential declares 3 a minute: the
        // sends already made count against it.
        l.include(&[per_minute(3), per_minute(20)]);
        assert!(send(&mut l, 10).is_err());
        assert_eq!(l.allowance(Duration::from_secs(30)), Some(3));
    }
}
