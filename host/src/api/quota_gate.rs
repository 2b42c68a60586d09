//! The alert quotas at ingest (see [`crate::quota`]): which of an event's
//! targets a full window holds back, counted once per event and scope, and
//! the digest timers to re-arm with the event.

use std::collections::HashMap;

use carillon_outbox::NewTimer;

use super::Live;
use super::stored::Suppressed;
use crate::event::Event;
use crate::quota::{Claim, Pending, Quota, Scope, Take, timer_for};
use crate::route::Target;

/// One event's pass through the quotas.
#[derive(Default)]
pub(crate) struct QuotaGate {
    /// Scope key → the end of the full window holding it back (ms), or
    /// `None` when the event is sent: each scope counts once per event.
    verdicts: HashMap<String, Option<u64>>,
    /// What the event counted, to take back if it is not stored.
    pub claims: Vec<Claim>,
    /// Digest timers to arm with the event (one per full window).
    pub arms: Vec<NewTimer>,
}

impl QuotaGate {
    /// Does a quota hold `target` back? The route's quota first (every
    /// event it matches counts), then the contact's (every event to any of
    /// its methods counts).
    pub(crate) fn hold(
        &mut self,
        live: &Live,
        workspace: &str,
        event: &Event,
        target: &Target,
    ) -> Option<Suppressed> {
        if let Some(route) = target
            .route
            .as_deref()
            .and_then(|r| live.router.route(workspace, r))
            && let Some(quota) = &route.quota
            && let Some(until) =
                self.verdict(live, Scope::Route, &route.name, workspace, quota, event)
        {
            return Some(suppressed(target, Scope::Route, &route.name, until));
        }
        let config = &live.config;
        let contact = config
            .destinations
            .get(&target.destination)
            .and_then(|d| d.contact.as_deref())?;
        let quota = config.contacts.get(contact)?.quota.as_ref()?;
        let until = self.verdict(live, Scope::Contact, contact, workspace, quota, event)?;
        Some(suppressed(target, Scope::Contact, contact, until))
    }

    fn verdict(
        &mut self,
        live: &Live,
        scope: Scope,
        name: &str,
        workspace: &str,
        quota: &Quota,
        event: &Event,
    ) -> Option<u64> {
        let key = scope.key(name);
        if let Some(v) = self.verdicts.get(&key) {
            return *v;
        }
        let verdict = match live.quotas.take(&key, quota, &event.event_type) {
            Take::Send(claim) => {
                self.claims.push(claim);
                None
            }
            Take::Hold(claim, window) => {
                self.claims.push(claim);
                let end = window.end_ms;
                self.arms.push(timer_for(&Pending {
                    v: 1,
                    workspace: workspace.to_owned(),
                    scope,
                    name: name.to_owned(),
                    max: quota.max,
                    per_secs: quota.per.as_secs(),
                    window,
                }));
                Some(end)
            }
        };
        self.verdicts.insert(key, verdict);
        verdict
    }
}

fn suppressed(target: &Target, scope: Scope, name: &str, until_ms: u64) -> Suppressed {
    Suppressed {
        destination: target.destination.clone(),
        quota: scope.key(name),
        until: crate::timestamp::to_jiff(carillon_outbox::Timestamp::from_millis(until_ms))
            .to_string(),
    }
}
