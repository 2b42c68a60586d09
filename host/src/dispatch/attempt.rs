//! One attempt: the plugin's `deliver` under the destination's entry, and
//! the one outbox transition that ends it.

use super::*;

/// One attempt: look up the destination and plugin, call `deliver`, decide;
/// and whether the plugin was called (it may have sent something).
pub(super) async fn attempt(shared: &Arc<Shared>, claim: &Claim) -> (Decision, bool) {
    let now = shared.clock.now();
    let wait = |error: String, label| {
        Decision::plain(
            Outcome::Retry {
                at: now.saturating_add(shared.config.wait_retry),
                error,
                counts_as_attempt: false,
            },
            label,
        )
    };
    // The entry and the plugin together: a plugin swapped in meanwhile
    // comes with its destinations' new grants.
    let Some((entry, plugin)) = shared.destinations.resolve(&claim.destination) else {
        return (unconfigured(shared, claim), false);
    };
    if !entry.enabled {
        let why = format!("destination {:?} is disabled; waiting", entry.name);
        return (wait(why, "deferred"), false);
    }
    // An escalation passes by an alternate whose method is not active yet
    // (its activation message itself is no escalation, and goes out).
    if shared.destinations.is_inactive(&claim.destination)
        && Message::payload_escalates_to(&claim.payload, &claim.destination)
    {
        let pass = Decision::plain(
            Outcome::Dead {
                error: format!(
                    "{:?} is a contact's method that is not activated yet; handed on",
                    entry.name
                ),
                fallback: shared.destinations.fallback_for(&claim.destination),
            },
            "inactive",
        );
        return (pass, false);
    }
    match shared.destinations.pauses().check(&entry) {
        Ok(None) => {}
        Ok(Some(pause)) => {
            // Like the answer that paused it: to the fallback when there
            // is one, else the delivery waits for the pause to end.
            if let Some(fallback) = shared.destinations.fallback_for(&claim.destination) {
                let error = format!(
                    "destination {:?} is paused (invalid config: {}); handed to its fallback",
                    entry.name, pause.reason
                );
                let to_fallback = Decision::plain(
                    Outcome::Dead {
                        error,
                        fallback: Some(fallback),
                    },
                    "paused",
                );
                return (to_fallback, false);
            }
            let why = format!(
                "destination {:?} is paused (invalid config: {}); waiting until its config changes or an admin resumes it",
                entry.name, pause.reason
            );
            return (wait(why, "paused"), false);
        }
        Err(ended) => {
            shared.metrics.set_paused(&entry.name, false);
            tracing::warn!(
                destination = %entry.name, paused_since_ms = ended.since.as_millis(),
                "destination resumed: its config changed since it was paused"
            );
        }
    }
    let Some(plugin) = plugin else {
        let why = format!("plugin {:?} is not loaded; waiting", entry.plugin);
        return (wait(why, "deferred"), false);
    };
    let message = match Message::from_payload_for(&claim.payload, &claim.destination) {
        Ok(message) => message,
        Err(error) => {
            let dead = Decision::plain(
                Outcome::Dead {
                    error: format!("the stored message cannot be read: {error}"),
                    fallback: None,
                },
                "dead",
            );
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
            hold: shared.config.wait_retry,
        },
        entry.retry.as_ref().unwrap_or(&shared.config.retry),
    );
    if let Some(reason) = &decision.pause {
        // The admin is told once, when the destination pauses; the
        // deliveries that wait are not logged one by one.
        if shared.destinations.pauses().pause(&entry, reason, now) {
            shared.metrics.set_paused(&entry.name, true);
            tracing::error!(
                parent: &span, destination = %entry.name, %reason,
                "destination paused: the channel says its config is wrong; its deliveries wait until the config changes or POST /v1/destinations/{{name}}/resume"
            );
        }
        return (decision, true);
    }
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
pub(super) async fn finish(shared: &Arc<Shared>, claim: &Claim, decision: Decision) {
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
