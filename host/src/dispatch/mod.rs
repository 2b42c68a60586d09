//! The dispatcher: claims due deliveries from the outbox, shapes traffic per
//! destination, calls the plugin's `deliver`, and records the outcome.
//!
//! Flow: one claim loop leases due deliveries in batches and hands each to
//! its destination's **lane** (a bounded queue and a concurrency limit). A
//! lane takes a slot from the rate limiter of the credential the vendor
//! counts (destinations on one robot share it; see `limit`), then runs the
//! delivery as its own task under a global limit of `workers`; the slot is
//! held until the answer is back. So a slow or throttled destination fills
//! only its own lane; a full lane defers new claims back to the outbox (not
//! counted as an attempt) instead of blocking the claim loop. Every attempt
//! ends in exactly one outbox transition (`outcome::decide`). A claim that
//! could not start early enough to end within its lease (a long wait for a
//! rate slot, a channel's Retry-After pause) is handed back instead of sent
//! late. A delivery whose lease expires (the process died) is claimed
//! again: delivery is at least once.

pub mod limit;
pub mod metrics;
pub mod outcome;
pub mod registry;
pub mod retry;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use carillon_outbox::{Claim, Clock, Completion, Outbox, Outcome, Timestamp};
use tokio::sync::{Notify, Semaphore, mpsc, watch};
use tokio::task::JoinHandle;
use tracing::Instrument as _;

use self::limit::{Limiter, RateKey, Slot};
use self::metrics::Metrics;
use self::outcome::{Attempt, Decision, decide};
use self::registry::{DestinationEntry, DestinationRegistry};
use self::retry::RetryPolicy;
use crate::message::Message;
use crate::plugin::types::DeliveryContext;
use crate::plugin::{Plugin, Runtime};

/// How the dispatcher runs.
#[derive(Debug, Clone)]
pub struct DispatchConfig {
    /// Deliveries running at once, across all destinations.
    pub workers: usize,
    /// Deliveries claimed per outbox scan.
    pub claim_batch: usize,
    /// How long a claim is held before another process may take it; longer
    /// than a call's wall-clock limit plus the wait in a lane.
    pub lease: Duration,
    /// The longest the claim loop sleeps without being woken.
    pub poll_interval: Duration,
    /// The retry schedule.
    pub retry: RetryPolicy,
    /// How long shutdown waits for running deliveries.
    pub shutdown_grace: Duration,
    /// A name for this process's leases.
    pub owner: String,
    /// When a delivery that cannot be attempted now (its destination is
    /// disabled, or no version of its plugin is loaded) is looked at again;
    /// such a wait is not an attempt.
    pub wait_retry: Duration,
}

impl Default for DispatchConfig {
    fn default() -> Self {
        DispatchConfig {
            workers: 64,
            claim_batch: 256,
            lease: Duration::from_secs(120),
            poll_interval: Duration::from_millis(500),
            retry: RetryPolicy::default(),
            shutdown_grace: Duration::from_secs(30),
            owner: format!("carillon-{}", std::process::id()),
            wait_retry: Duration::from_secs(30),
        }
    }
}

struct Lane {
    queue: mpsc::Sender<Claim>,
    /// The limiter when the lane was created: its windows size the queue
    /// and estimate when a full lane drains.
    limiter: Arc<Mutex<Limiter>>,
}

struct Shared {
    outbox: Arc<Outbox>,
    runtime: Runtime,
    destinations: Arc<DestinationRegistry>,
    clock: Arc<dyn Clock>,
    config: DispatchConfig,
    metrics: Arc<Metrics>,
    wake: Notify,
    stop: watch::Sender<bool>,
    workers: Arc<Semaphore>,
    held: AtomicUsize,
    lanes: Mutex<HashMap<String, Lane>>,
    /// One limiter per vendor credential, kept for the process's life
    /// (one per credential ever configured).
    limiters: Mutex<HashMap<RateKey, Arc<Mutex<Limiter>>>>,
}

/// Wakes a dispatcher's claim loop (after an enqueue or a re-queue), so a
/// new delivery starts now rather than at the next poll.
#[derive(Clone, Default)]
pub struct Waker(Option<Arc<Shared>>);

impl Waker {
    /// Wakes the claim loop; nothing when there is no dispatcher.
    pub fn wake(&self) {
        if let Some(shared) = &self.0 {
            shared.wake.notify_one();
        }
    }
}

impl std::fmt::Debug for Waker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Waker")
    }
}

/// A running dispatcher.
pub struct Dispatcher {
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

impl Dispatcher {
    /// Starts the claim loop on the current tokio runtime.
    pub fn start(
        outbox: Arc<Outbox>,
        runtime: Runtime,
        destinations: Arc<DestinationRegistry>,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
        config: DispatchConfig,
    ) -> Dispatcher {
        let (stop, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            workers: Arc::new(Semaphore::new(config.workers.max(1))),
            outbox,
            runtime,
            destinations,
            clock,
            config,
            metrics,
            wake: Notify::new(),
            stop,
            held: AtomicUsize::new(0),
            lanes: Mutex::new(HashMap::new()),
            limiters: Mutex::new(HashMap::new()),
        });
        let task = tokio::spawn(claim_loop(shared.clone()));
        Dispatcher { shared, task }
    }

    /// Wakes the claim loop, e.g. right after an enqueue.
    pub fn wake(&self) {
        self.shared.wake.notify_one();
    }

    /// A handle that wakes the claim loop, for the API.
    pub fn waker(&self) -> Waker {
        Waker(Some(self.shared.clone()))
    }

    /// Stops claiming, hands queued claims back to the outbox (due now),
    /// waits up to the grace period for running deliveries, and flushes.
    /// Anything unfinished is delivered after the next start.
    pub async fn shutdown(self) {
        let shared = self.shared;
        // `send_replace`, not `send`: `send` does nothing while no receiver
        // exists, and the claim loop may not have subscribed yet.
        shared.stop.send_replace(true);
        shared.wake.notify_one();
        let _ = self.task.await;
        // Closing the lanes makes their tasks release what is queued.
        shared
            .lanes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        let all = u32::try_from(shared.config.workers.max(1)).unwrap_or(u32::MAX);
        let drained = tokio::time::timeout(shared.config.shutdown_grace, async {
            loop {
                if shared.held.load(Ordering::SeqCst) == 0 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let _ = shared.workers.acquire_many(all).await;
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                still_running = shared.held.load(Ordering::SeqCst),
                "shutdown grace period over; unfinished deliveries resume after restart"
            );
        }
        if let Err(error) = shared.outbox.flush() {
            tracing::error!(%error, "cannot flush the outbox at shutdown");
        }
    }
}

/// The least time between two claim transactions, unless the previous one
/// took a full batch (a backlog is drained back to back). Each transaction
/// costs sled two log writes whatever it holds, so claiming the few slots
/// each finished delivery frees, one transaction each, cost more than the
/// deliveries; gathering for this long claims them together, for at most
/// this much added latency.
const CLAIM_GATHER: Duration = Duration::from_millis(2);

async fn claim_loop(shared: Arc<Shared>) {
    let mut stop = shared.stop.subscribe();
    let capacity = max_held(&shared.config);
    // When the last claim transaction ran, and whether it took a full batch.
    let mut last: Option<(tokio::time::Instant, bool)> = None;
    loop {
        if *stop.borrow() {
            return;
        }
        if let Some((at, false)) = last {
            let next = at + CLAIM_GATHER;
            if tokio::time::Instant::now() < next {
                tokio::select! {
                    _ = tokio::time::sleep_until(next) => {}
                    _ = stop.changed() => {}
                }
                continue;
            }
        }
        let room = capacity.saturating_sub(shared.held.load(Ordering::SeqCst));
        let want = room.min(shared.config.claim_batch);
        let mut claimed = 0;
        if want > 0 {
            let now = shared.clock.now();
            match shared
                .outbox
                .claim_due(now, want, &shared.config.owner, shared.config.lease)
            {
                Ok(claims) => {
                    claimed = claims.len();
                    for claim in claims {
                        shared.held.fetch_add(1, Ordering::SeqCst);
                        route(&shared, claim);
                    }
                }
                Err(error) => tracing::error!(%error, "cannot claim due deliveries"),
            }
            let full = claimed == shared.config.claim_batch;
            last = Some((tokio::time::Instant::now(), full));
        }
        if claimed > 0 && claimed == want {
            tokio::task::yield_now().await;
            continue;
        }
        let wait = match shared.outbox.next_due() {
            Ok(Some(due)) if room > 0 => Duration::from_millis(
                due.as_millis()
                    .saturating_sub(shared.clock.now().as_millis()),
            )
            .min(shared.config.poll_interval),
            _ => shared.config.poll_interval,
        };
        tokio::select! {
            _ = shared.wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => {}
        }
    }
}

/// Claims held in memory at most (queued in lanes or running). A lane of a
/// rate-limited destination holds only what it can send within half a
/// lease, so it cannot take the room other destinations need.
fn max_held(config: &DispatchConfig) -> usize {
    config.workers.max(1) * 16
}

/// A delivery to a destination the config no longer has: dead-lettered
/// (re-queueable once the destination is back), via its fallback if any.
fn unconfigured(shared: &Shared, claim: &Claim) -> Decision {
    Decision {
        outcome: Outcome::Dead {
            error: format!("destination {:?} is not configured", claim.destination),
            fallback: shared.destinations.fallback_for(&claim.destination),
        },
        pause_until: None,
        label: "dead",
    }
}

/// Hands a claim to its destination's lane, creating the lane on first use.
fn route(shared: &Arc<Shared>, claim: Claim) {
    if let Some((claim, decision)) = enqueue_in_lane(shared, claim) {
        finish_apart(shared, claim, decision);
    }
}

/// Records a decision from its own task: the claim loop and the lanes go
/// on at once, and many such outcomes share one transaction instead of
/// each waiting out the committer's linger in turn.
fn finish_apart(shared: &Arc<Shared>, claim: Claim, decision: Decision) {
    let shared = shared.clone();
    tokio::spawn(async move { finish(&shared, &claim, decision).await });
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
fn enqueue_in_lane(shared: &Arc<Shared>, claim: Claim) -> Option<(Claim, Decision)> {
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
                Decision {
                    outcome: Outcome::Retry {
                        at,
                        error: "deferred: the destination's rate limit is saturated".into(),
                        counts_as_attempt: false,
                    },
                    pause_until: None,
                    label: "deferred",
                },
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
        Decision {
            outcome: Outcome::Retry {
                at,
                error: error.into(),
                counts_as_attempt: false,
            },
            pause_until: None,
            label: "deferred",
        },
    );
}

/// One attempt: look up the destination and plugin, call `deliver`, decide;
/// and whether the plugin was called (it may have sent something).
async fn attempt(shared: &Arc<Shared>, claim: &Claim) -> (Decision, bool) {
    let now = shared.clock.now();
    let wait = |error: String| Decision {
        outcome: Outcome::Retry {
            at: now.saturating_add(shared.config.wait_retry),
            error,
            counts_as_attempt: false,
        },
        pause_until: None,
        label: "deferred",
    };
    // The entry and the plugin together: a plugin swapped in meanwhile
    // comes with its destinations' new grants.
    let Some((entry, plugin)) = shared.destinations.resolve(&claim.destination) else {
        return (unconfigured(shared, claim), false);
    };
    if !entry.enabled {
        let why = format!("destination {:?} is disabled; waiting", entry.name);
        return (wait(why), false);
    }
    let Some(plugin) = plugin else {
        let why = format!("plugin {:?} is not loaded; waiting", entry.plugin);
        return (wait(why), false);
    };
    let message = match Message::from_payload(&claim.payload) {
        Ok(message) => message,
        Err(error) => {
            let dead = Decision {
                outcome: Outcome::Dead {
                    error: format!("the stored message cannot be read: {error}"),
                    fallback: None,
                },
                pause_until: None,
                label: "dead",
            };
            return (dead, false);
        }
    };
    let ctx = DeliveryContext {
        delivery_id: claim.delivery_id.to_string(),
        event_id: claim.event_id.to_string(),
        attempt: claim.attempt,
        now_ms: now.as_millis(),
    };
    let span = tracing::info_span!("delivery", delivery = %claim.delivery_id, event = %claim.event_id, destination = %claim.destination, attempt = claim.attempt);
    let result = shared
        .runtime
        .deliver(&plugin, &entry.destination, &ctx, &message)
        .instrument(span.clone())
        .await;
    let created = claim.delivery_id.created_at().as_millis();
    let age = Duration::from_millis(now.as_millis().saturating_sub(created));
    let fallback = shared.destinations.fallback_for(&claim.destination);
    let decision = decide(
        result,
        &Attempt {
            number: claim.attempt,
            age,
            now,
            fallback: fallback.as_deref(),
            jitter: fastrand::f64(),
        },
        &shared.config.retry,
    );
    match &decision.outcome {
        Outcome::Delivered { .. } => {
            shared.metrics.latency.observe(age.as_secs_f64());
            tracing::debug!(parent: &span, "delivered");
        }
        Outcome::Retry { error, at, .. } => {
            tracing::warn!(parent: &span, %error, retry_at_ms = at.as_millis(), "delivery will be retried")
        }
        Outcome::Dead { error, fallback } => {
            tracing::error!(parent: &span, %error, fallback = fallback.as_deref().unwrap_or("none"), "delivery dead-lettered")
        }
    }
    (decision, true)
}

/// Applies a decision to the outbox (sharing a transaction with the
/// concurrent ones) and counts it.
async fn finish(shared: &Arc<Shared>, claim: &Claim, decision: Decision) {
    shared.metrics.attempt(&claim.destination, decision.label);
    match shared
        .outbox
        .complete_shared(claim, decision.outcome, shared.clock.now())
        .await
    {
        Ok(Completion::LeaseLost { current }) => tracing::warn!(
            delivery = %claim.delivery_id, ?current,
            "the lease on a delivery was lost before its outcome was recorded; it will be delivered again"
        ),
        Ok(Completion::InvalidFallback) => tracing::error!(
            delivery = %claim.delivery_id, "the fallback destination name is invalid"
        ),
        Ok(_) => {}
        Err(error) => {
            tracing::error!(delivery = %claim.delivery_id, %error, "cannot record a delivery outcome")
        }
    }
    shared.held.fetch_sub(1, Ordering::SeqCst);
    shared.wake.notify_one();
}
