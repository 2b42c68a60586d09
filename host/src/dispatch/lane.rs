//! A destination's lane: its bounded queue, the rate slot it takes from
//! the limiter of the credential the vendor counts, its concurrency, and
//! the hand-back of a claim that could no longer start in time.

use super::attempt::{attempt, finish};
use super::*;

pub(super) struct Lane {
    queue: mpsc::Sender<Claim>,
    /// The limiter when the lane was created: its windows size the queue
    /// and estimate when a full lane drains.
    limiter: Arc<Mutex<Limiter>>,
}

/// The limiter of the credential the vendor counts `entry`'s sends
/// against, created on first use. A destination that joins an existing
/// one adds the windows it declares, so the strictest of each applies.
fn limiter_for(
    shared: &Shared,
    entry: &DestinationEntry,
    plugin: Option<&Plugin>,
) -> Arc<Mutex<Limiter>> {
    let key = entry.rate_key(plugin);
    let mut limiters = shared.limiters.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(limiter) = limiters.get(&key) {
        limiter
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .include(&entry.rate_limits);
        return limiter.clone();
    }
    let limiter = Arc::new(Mutex::new(Limiter::new(
        &entry.rate_limits,
        shared.clock.now(),
    )));
    limiters.insert(key, limiter.clone());
    limiter
}

/// The limiter a lane's claims take slots from, looked up again when the
/// destination's entry or plugin changes (a new webhook is another
/// credential). Weak references, so a replaced plugin is not kept alive.
struct LaneLimiter {
    entry: Weak<DestinationEntry>,
    plugin: Option<Weak<Plugin>>,
    limiter: Arc<Mutex<Limiter>>,
}

impl LaneLimiter {
    fn new(
        entry: &Arc<DestinationEntry>,
        plugin: Option<&Arc<Plugin>>,
        limiter: Arc<Mutex<Limiter>>,
    ) -> Self {
        LaneLimiter {
            entry: Arc::downgrade(entry),
            plugin: plugin.map(Arc::downgrade),
            limiter,
        }
    }

    /// The limiter for `destination` as the registry has it now (the last
    /// one if it is no longer configured: the attempt will say so).
    fn current(&mut self, shared: &Shared, destination: &str) -> Arc<Mutex<Limiter>> {
        if let Some((entry, plugin)) = shared.destinations.resolve(destination) {
            let same_plugin = match (&self.plugin, &plugin) {
                (Some(seen), Some(now)) => std::ptr::eq(seen.as_ptr(), Arc::as_ptr(now)),
                (None, None) => true,
                _ => false,
            };
            if !same_plugin || !std::ptr::eq(self.entry.as_ptr(), Arc::as_ptr(&entry)) {
                let limiter = limiter_for(shared, &entry, plugin.as_deref());
                *self = LaneLimiter::new(&entry, plugin.as_ref(), limiter);
            }
        }
        self.limiter.clone()
    }
}

/// Queues `claim` in its lane (`None`); a full lane (or an unconfigured
/// destination) gives it back with the decision to record instead.
pub(super) fn enqueue_in_lane(shared: &Arc<Shared>, claim: Claim) -> Option<(Claim, Decision)> {
    let Some((entry, plugin)) = shared.destinations.resolve(&claim.destination) else {
        let decision = unconfigured(shared, &claim);
        return Some((claim, decision));
    };
    let mut lanes = shared.lanes.lock().unwrap_or_else(|p| p.into_inner());
    let lane = lanes.entry(claim.destination.clone()).or_insert_with(|| {
        let limiter = limiter_for(shared, &entry, plugin.as_deref());
        // Queue what the windows can send within half a lease, so queued
        // claims are sent before their lease runs out.
        let within_lease = limiter
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .allowance(shared.config.lease / 2)
            .map_or(usize::MAX, |n| usize::try_from(n).unwrap_or(usize::MAX));
        let capacity = within_lease.clamp(1, max_held(&shared.config));
        let (queue, rx) = mpsc::channel(capacity);
        let lane_limiter = LaneLimiter::new(&entry, plugin.as_ref(), limiter.clone());
        let concurrency = Arc::new(Semaphore::new(entry.concurrency.max(1)));
        tokio::spawn(run_lane(shared.clone(), rx, lane_limiter, concurrency));
        Lane { queue, limiter }
    });
    match lane.queue.try_send(claim) {
        Ok(()) => None,
        Err(mpsc::error::TrySendError::Full(claim) | mpsc::error::TrySendError::Closed(claim)) => {
            // The lane is full: give the claim back, due when the lane has
            // likely drained; this is shaping, not a failed attempt.
            let queued = lane.queue.max_capacity() as u64;
            let estimate = {
                let limiter = lane.limiter.lock().unwrap_or_else(|p| p.into_inner());
                limiter
                    .allowance(Duration::from_secs(60))
                    .map_or(Duration::from_secs(1), |per_min| {
                        Duration::from_millis(60_000 * queued / per_min.max(1))
                    })
            };
            let at = shared
                .clock
                .now()
                .saturating_add(estimate.max(Duration::from_millis(100)));
            Some((
                claim,
                Decision::plain(
                    Outcome::Retry {
                        at,
                        error: "deferred: the destination's rate limit is saturated".into(),
                        counts_as_attempt: false,
                    },
                    "deferred",
                ),
            ))
        }
    }
}

async fn run_lane(
    shared: Arc<Shared>,
    mut rx: mpsc::Receiver<Claim>,
    mut lane_limiter: LaneLimiter,
    concurrency: Arc<Semaphore>,
) {
    let stop = shared.stop.subscribe();
    // Time kept for the call itself; at most half the lease, so a short
    // lease still leaves room to start.
    let call_time = shared
        .runtime
        .limits()
        .wall_time
        .min(shared.config.lease / 2);
    'claims: while let Some(claim) = rx.recv().await {
        // The last moment this attempt may start and still end within its
        // lease; past it the claim goes back rather than risk a second
        // process sending it too.
        let start_by = claim.lease_until.saturating_sub(call_time);
        // Wait for a slot in every window of the credential; it is held
        // until the attempt's answer is back.
        let limiter = lane_limiter.current(&shared, &claim.destination);
        let slot = loop {
            if *stop.borrow() {
                release(&shared, claim, shared.clock.now());
                continue 'claims;
            }
            let now = shared.clock.now();
            match Slot::take(&limiter, &shared.clock) {
                Ok(slot) => break slot,
                Err(wait) if now.saturating_add(wait) > start_by => {
                    // A pause (a channel's Retry-After) or a long queue
                    // would outlast the lease: hand it back, due then.
                    release(&shared, claim, now.saturating_add(wait));
                    continue 'claims;
                }
                Err(wait) => tokio::time::sleep(wait.min(shared.config.poll_interval)).await,
            }
        };
        let Ok(lane_permit) = concurrency.clone().acquire_owned().await else {
            slot.unused();
            release(&shared, claim, shared.clock.now());
            continue;
        };
        let Ok(worker) = shared.workers.clone().acquire_owned().await else {
            slot.unused();
            release(&shared, claim, shared.clock.now());
            continue;
        };
        if shared.clock.now() > start_by {
            slot.unused();
            release(&shared, claim, shared.clock.now());
            continue;
        }
        let shared = shared.clone();
        tokio::spawn(async move {
            let (decision, called) = attempt(&shared, &claim).await;
            if let Some(until) = decision.pause_until {
                slot.pause_until(until);
            }
            // The vendor saw the request, if any, before this answer: the
            // slot counts a window from now. Nothing sent, nothing counts.
            if called {
                slot.answered();
            } else {
                slot.unused();
            }
            // The destination and the worker are free once the call is
            // over; recording the outcome (which shares a transaction with
            // others, so may linger a moment) still counts in `held`.
            drop((lane_permit, worker));
            finish(&shared, &claim, decision).await;
        });
    }
}

/// Hands an unstarted claim back, due at `at`: at shutdown, or when it
/// could not start within its lease. Not an attempt.
fn release(shared: &Arc<Shared>, claim: Claim, at: Timestamp) {
    let error = if *shared.stop.borrow() {
        "released: the gateway is shutting down"
    } else {
        "deferred: it could not be sent within its lease"
    };
    finish_apart(
        shared,
        claim,
        Decision::plain(
            Outcome::Retry {
                at,
                error: error.into(),
                counts_as_attempt: false,
            },
            "deferred",
        ),
    );
}
