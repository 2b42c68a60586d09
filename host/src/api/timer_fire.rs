//! The timer task (in `api`: a fired timer enters the same pipeline as a
//! posted event, `prepare`, so it lives beside ingest): sleeps until the earliest deadline (woken when an
//! earlier one is armed), then fires every due timer with its
//! `task.timeout`, routed and rendered like a posted event, or with a
//! quota's digest. And the late notice a completion after its timeout
//! sends.

use std::sync::Arc;
use std::time::Duration;

use carillon_outbox::{EnqueueError, NewEvent, Timer, TimerEffect};
use futures_util::future::join_all;
use tokio::sync::watch;

use super::{Live, State, prepare};
use crate::event::Event;
use crate::timeout::events::{finished_late_event, timeout_event};

/// Timers fired together: their enqueues share the outbox's group commit.
const CHUNK: usize = 512;

/// How long to wait before trying again when the outbox refused a fire
/// (full, or its disk is): the timers stay armed meanwhile.
const RETRY: Duration = Duration::from_secs(1);

/// Runs until `stop`: fires what is due, then sleeps until the next
/// deadline or until an earlier one is armed.
pub async fn run(state: Arc<State>, mut stop: watch::Receiver<bool>) {
    loop {
        let notified = state.outbox.timers_changed().notified();
        let complete = fire_due(&state).await;
        let now = state.clock.now();
        let wait = match state.outbox.next_timer_deadline() {
            _ if !complete => Some(RETRY),
            None => None,
            Some(at) => Some(Duration::from_millis(
                at.as_millis().saturating_sub(now.as_millis()),
            )),
        };
        tokio::select! {
            () = sleep(wait) => {}
            () = notified => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

async fn sleep(wait: Option<Duration>) {
    match wait {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

/// Fires every timer due now. Returns `false` when the outbox refused
/// some (they stay armed; try again later).
pub async fn fire_due(state: &State) -> bool {
    loop {
        let now = state.clock.now();
        let due = match state.outbox.due_timers(now, CHUNK) {
            Ok(due) => due,
            Err(error) => {
                tracing::error!(%error, "cannot read the due timers");
                return false;
            }
        };
        if due.is_empty() {
            return true;
        }
        let live = state.live();
        let results = join_all(due.into_iter().map(|t| fire_one(state, &live, t, now))).await;
        if results.iter().any(|ok| !ok) {
            return false;
        }
    }
}

/// Fires one timer; `false` if the outbox refused it for now.
async fn fire_one(
    state: &State,
    live: &Live,
    timer: Timer,
    now: carillon_outbox::Timestamp,
) -> bool {
    let (new_event, deliveries, arms, claims) = if timer.kind == crate::quota::DIGEST {
        let (e, d) = super::quota_digest::prepare(live, &timer, now);
        (e, d, Vec::new(), Vec::new())
    } else {
        match timeout_event(&timer, now) {
            Ok((token, workspace, event)) => match prepare(live, &token, &workspace, event) {
                Ok(p) => (p.event, p.deliveries, p.quota.arms, p.quota.claims),
                Err(error) => {
                    // A template that cannot render the notice does not heal
                    // by waiting: the timer still fires, recorded, sent
                    // nowhere, and the failure is logged.
                    tracing::error!(timer = %timer.id, %error, "cannot render task.timeout; recorded undelivered");
                    (bare(&timer, now), Vec::new(), Vec::new(), Vec::new())
                }
            },
            Err(error) => {
                tracing::error!(timer = %timer.id, %error, "cannot build task.timeout; recorded undelivered");
                (bare(&timer, now), Vec::new(), Vec::new(), Vec::new())
            }
        }
    };
    let late = now.as_millis().saturating_sub(timer.deadline.as_millis())
        >= u64::try_from(crate::timeout::events::LATE_AFTER.as_millis()).unwrap_or(u64::MAX);
    let fired = state
        .outbox
        .fire_timer_arming(&timer.id, new_event, deliveries, arms)
        .await;
    if !matches!(fired, Ok(Some(_))) {
        live.quotas.release(&claims);
    }
    match fired {
        Ok(Some(_)) => {
            state.waker.wake();
            state.timer_metrics.fired(late);
            tracing::info!(timer = %timer.id, key = %timer.key, kind = %timer.kind, late, "timer fired");
            true
        }
        // Disarmed or cancelled meanwhile.
        Ok(None) => true,
        Err(EnqueueError::Backpressure { .. } | EnqueueError::StorageFull { .. }) => false,
        Err(error) => {
            tracing::error!(timer = %timer.id, %error, "cannot fire a timer");
            false
        }
    }
}

/// The stored form of a timeout that cannot be rendered: the timer's
/// facts, no delivery.
fn bare(timer: &Timer, now: carillon_outbox::Timestamp) -> NewEvent {
    let mut event = Event::new(
        crate::timeout::TIMEOUT,
        timer.source.clone(),
        super::view::to_jiff(now),
    );
    event.severity = crate::message::Severity::Error;
    event
        .data
        .insert("timer_id".into(), timer.id.as_str().into());
    // The timer's workspace, if its payload still says it; else none a
    // workspace's token sees (only an instance admin does).
    let workspace = serde_json::from_slice::<crate::timeout::Started>(&timer.payload)
        .map(|s| s.workspace)
        .unwrap_or_default();
    let stored = super::stored::StoredEvent {
        v: 1,
        token: String::new(),
        workspace,
        event,
        routing: super::stored::Routing {
            unrouted: true,
            ..Default::default()
        },
    };
    NewEvent {
        source: timer.source.clone(),
        idempotency_key: None,
        body: stored.to_bytes(),
    }
}

/// After a completion was accepted: when its timer had already fired and
/// `[timeouts] notify_late` is on, sends `task.finished-late`. Failures
/// are logged, not answered: the completion itself is stored.
pub(crate) async fn after_completion(
    state: &State,
    live: &Live,
    token: &str,
    workspace: &str,
    completion: Event,
    effect: &TimerEffect,
) {
    let TimerEffect::AlreadyFired { id, fired_at } = effect else {
        return;
    };
    if !live.config.timeouts.notify_late {
        return;
    }
    let event = finished_late_event(&completion, *fired_at, state.clock.now());
    let result = match prepare(live, token, workspace, event) {
        Ok(p) => {
            let r = state
                .outbox
                .enqueue_arming(
                    p.event,
                    p.deliveries,
                    carillon_outbox::TimerOp::None,
                    p.quota.arms,
                )
                .await;
            if r.is_err() {
                live.quotas.release(&p.quota.claims);
            }
            r.map(|_| ()).map_err(|e| e.to_string())
        }
        Err(e) => Err(e.to_string()),
    };
    match result {
        Ok(_) => {
            state.waker.wake();
            tracing::info!(timer = %id, "task finished after its timeout");
        }
        Err(error) => tracing::error!(timer = %id, %error, "cannot send task.finished-late"),
    }
}
