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
pub mod pause;
pub mod registry;
pub mod retry;

mod attempt;
mod lane;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use carillon_outbox::{Claim, Clock, Completion, Outbox, Outcome, Timestamp};
use tokio::sync::{Notify, Semaphore, mpsc, watch};
use tokio::task::JoinHandle;
use tracing::Instrument as _;

use self::attempt::finish;
use self::lane::{Lane, enqueue_in_lane};
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
    Decision::plain(
        Outcome::Dead {
            error: format!("destination {:?} is not configured", claim.destination),
            fallback: shared.destinations.fallback_for(&claim.destination),
        },
        "dead",
    )
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
