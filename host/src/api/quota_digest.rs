//! A quota's digest timer firing: the window as finally counted (memory
//! and the timer's payload, whichever saw more), rendered as
//! `quota.digest` for the contact's methods or the route's targets, past
//! the quota it reports on. And, at start, the windows the armed digest
//! timers stand for, read back so that they stay full.

use carillon_outbox::{NewDelivery, NewEvent, Outbox, Timer, Timestamp};

use super::Live;
use super::stored::{Routing, StoredEvent};
use crate::event::Event;
use crate::quota::{DIGEST, Pending, Quotas, SOURCE, Scope, digest_event};

/// What firing digest `timer` at `now` enqueues.
pub(super) fn prepare(live: &Live, timer: &Timer, now: Timestamp) -> (NewEvent, Vec<NewDelivery>) {
    let pending = match Pending::from_timer(timer) {
        Ok(p) => p,
        Err(error) => {
            tracing::error!(timer = %timer.id, %error, "cannot build a quota digest; recorded undelivered");
            let mut event = Event::new(DIGEST, SOURCE.to_owned(), crate::timestamp::to_jiff(now));
            event
                .data
                .insert("timer_id".into(), timer.id.as_str().into());
            return (bare(String::new(), event), Vec::new());
        }
    };
    let window = match live.quotas.close(&pending.key(), pending.window.end_ms) {
        Some(counted) => counted.merged(&pending.window),
        None => pending.window.clone(),
    };
    let config = &live.config;
    let (display_name, targets) = match pending.scope {
        Scope::Contact => match config
            .contacts
            .get(&pending.name)
            .filter(|c| c.workspace == pending.workspace)
        {
            Some(c) => (
                Some(c.display_name.as_str()),
                c.destinations().map(str::to_owned).collect(),
            ),
            None => (None, Vec::new()),
        },
        Scope::Route => match live.router.route(&pending.workspace, &pending.name) {
            Some(r) => (
                None,
                r.destinations.iter().chain(&r.people).cloned().collect(),
            ),
            None => (None, Vec::new()),
        },
    };
    let mut event = digest_event(&pending, &window, display_name, now);
    if targets.is_empty() {
        // The contact or route is gone: the digest is recorded, unsent.
        tracing::warn!(quota = %pending.key(), suppressed = window.suppressed, "the quota's contact or route no longer exists; its digest is recorded undelivered");
    }
    event.destinations = Some(targets);
    match super::ingest::prepare_digest(live, &pending.workspace, event.clone()) {
        Ok(p) => (p.event, p.deliveries),
        Err(error) => {
            tracing::error!(quota = %pending.key(), %error, "cannot render a quota digest; recorded undelivered");
            (bare(pending.workspace, event), Vec::new())
        }
    }
}

/// The stored form of a digest that cannot be rendered.
fn bare(workspace: String, event: Event) -> NewEvent {
    let stored = StoredEvent {
        v: 1,
        token: "carillon".to_owned(),
        workspace,
        event,
        routing: Routing {
            unrouted: true,
            ..Default::default()
        },
    };
    NewEvent {
        source: format!("carillon/{SOURCE}"),
        idempotency_key: None,
        body: stored.to_bytes(),
    }
}

/// Reads the armed digest timers back into `quotas` (at start): each
/// stands for a window that was holding alerts back.
pub fn restore(outbox: &Outbox, quotas: &Quotas) {
    let mut after = None;
    loop {
        let page = outbox.timers_page(after.as_ref(), 1024, |t| t.kind == DIGEST);
        let (timers, next) = match page {
            Ok(page) => page,
            Err(error) => {
                tracing::error!(%error, "cannot read the quota digest timers; their windows start afresh");
                return;
            }
        };
        for t in &timers {
            match Pending::from_timer(t) {
                Ok(p) => quotas.restore(&p.key(), p.max, p.window),
                Err(error) => {
                    tracing::warn!(timer = %t.id, %error, "a quota digest timer cannot be read")
                }
            }
        }
        match next {
            Some(n) => after = Some(n),
            None => return,
        }
    }
}
