//! The monitors' driver (in `api`, like the timer task: the events a rule
//! raises enter `prepare` like posted events): the sampler task, and the
//! evaluation after every batch of readings, which writes each change's
//! event with its kept record and only then applies it.

use std::sync::Arc;

use carillon_outbox::{NewDelivery, NewEvent, Timestamp};
use futures_util::future::join_all;
use tokio::sync::watch;

use super::quota_gate::QuotaGate;
use super::stored::{Routing, StoredEvent};
use super::{State, prepare};
use crate::access::DEFAULT_WORKSPACE;
use crate::event::Event;
use crate::monitor::events::{SOURCE, event};
use crate::monitor::{Change, Due, Engine, Reading, Sampler};

/// The token name the events monitors raise are recorded under.
pub const TOKEN: &str = "monitor";

/// Runs until `stop`: every `[monitors] interval`, reads `sampler` (on the
/// blocking pool) and evaluates. The first sample is taken at once.
pub async fn run(state: Arc<State>, sampler: Box<dyn Sampler>, mut stop: watch::Receiver<bool>) {
    let mut sampler = Some(sampler);
    let mut tick = tokio::time::interval(state.monitors.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let Some(mut s) = sampler.take() else { return };
        let now = state.clock.now();
        let taken = tokio::task::spawn_blocking(move || {
            let readings = s.sample(now);
            (s, readings)
        })
        .await;
        match taken {
            Ok((s, readings)) => {
                sampler = Some(s);
                // Every pair, not only those read: `for` and `repeat` of
                // pairs whose series were quiet move on too.
                observe(&state, &readings, Scope::All).await;
            }
            Err(error) => {
                tracing::error!(%error, "the monitor sampler failed; sampling stops");
                return;
            }
        }
    }
}

/// Which pairs an evaluation looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// Every pair (the sampler's tick).
    All,
    /// Only the pairs the readings touched (a gauge, a push): its cost is
    /// what it touched.
    Touched,
}

/// Records `readings` now and sends what they change. Returns how many
/// rule × series pairs took a reading.
pub(crate) async fn observe(state: &State, readings: &[Reading], scope: Scope) -> usize {
    let mut engine = state.monitors.engine.lock().await;
    let now = state.clock.now();
    let dropped = engine.dropped();
    let mut touched = Vec::new();
    for r in readings {
        touched.extend(engine.observe_pairs(r, now));
    }
    let taken = touched.len();
    // A pair evaluated twice before its change is applied would send it twice.
    touched.sort_unstable();
    touched.dedup();
    let newly = engine.dropped().saturating_sub(dropped);
    if newly > 0 {
        state.monitors.metrics.dropped.inc_by(newly);
        tracing::warn!(
            dropped = newly,
            "monitor readings dropped: [monitors] max_series pairs are watched"
        );
    }
    let due = match scope {
        Scope::All => engine.evaluate(now),
        Scope::Touched => engine.evaluate_pairs(now, &touched),
    };
    // Pairs that turned pending (or quiet again) send nothing: their kept
    // records are written on their own, so a restart keeps how long a
    // pair has been beyond its threshold. A failed write costs only that.
    for w in engine.take_quiet_writes() {
        let written = match &w.value {
            Some(v) => state.outbox.put_kept(&w.key, v),
            None => state.outbox.remove_kept(&w.key).map(|_| ()),
        };
        if let Err(error) = written {
            tracing::warn!(key = %w.key, %error, "cannot keep a monitor pair's pending state");
        }
    }
    send(state, &mut engine, due, now).await;
    taken
}

/// Sends each change: its event and kept record in one enqueue, then the
/// change applied. A change the outbox refused (full, failing) stays
/// unapplied and is tried again at the next evaluation.
async fn send(state: &State, engine: &mut Engine, due: Vec<Due>, now: Timestamp) {
    if due.is_empty() {
        return;
    }
    let live = state.live();
    let mut writes = Vec::with_capacity(due.len());
    for d in &due {
        let Some(track) = engine.track(d) else {
            continue;
        };
        let ev = event(&engine.rules()[d.rule], track, d, now);
        let (new_event, deliveries, quota) = match prepare(
            &live,
            TOKEN,
            DEFAULT_WORKSPACE,
            ev.clone(),
        ) {
            Ok(p) => (p.event, p.deliveries, p.quota),
            Err(error) => {
                // A template that cannot render the notice does not heal
                // by waiting: the change is recorded, sent nowhere.
                tracing::error!(rule = %engine.rules()[d.rule].name, %error, "cannot render a monitor event; recorded undelivered");
                (bare(ev), Vec::<NewDelivery>::new(), QuotaGate::default())
            }
        };
        writes.push((d, new_event, deliveries, quota));
    }
    let live = &live;
    let results = join_all(
        writes
            .into_iter()
            .map(|(d, e, deliveries, quota)| async move {
                let r = state
                    .outbox
                    .enqueue_kept_arming(e, deliveries, d.kept.clone(), quota.arms)
                    .await;
                if r.is_err() {
                    live.quotas.release(&quota.claims);
                }
                (d, r)
            }),
    )
    .await;
    let mut sent = false;
    for (d, r) in results {
        let rule = &engine.rules()[d.rule].name;
        match r {
            Ok(_) => {
                let kind = match d.change {
                    Change::Alert { repeat: false } => "alert",
                    Change::Alert { repeat: true } => "repeat",
                    Change::Resolved => "resolved",
                    Change::Stale => "stale",
                };
                tracing::info!(rule = %rule, series = %d.series, value = d.value, kind, "monitor event sent");
                state.monitors.metrics.sent(kind);
                engine.applied(d, now);
                sent = true;
            }
            Err(error) => {
                tracing::warn!(rule = %rule, series = %d.series, %error, "cannot store a monitor event; trying again at the next evaluation");
            }
        }
    }
    if sent {
        state.waker.wake();
    }
}

/// The stored form of an event that cannot be rendered: recorded, sent
/// nowhere.
fn bare(event: Event) -> NewEvent {
    let stored = StoredEvent {
        v: 1,
        token: TOKEN.to_owned(),
        workspace: DEFAULT_WORKSPACE.to_owned(),
        event,
        routing: Routing {
            unrouted: true,
            ..Default::default()
        },
    };
    NewEvent {
        source: format!("{TOKEN}/{SOURCE}"),
        idempotency_key: None,
        body: stored.to_bytes(),
    }
}
