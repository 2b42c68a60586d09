//! The decision after one attempt: from what the plugin answered (or how it
//! failed) to the outbox transition, in one pure function the tests can
//! drive directly.

use std::time::Duration;

use carillon_outbox::{Outcome, Timestamp};

use super::retry::RetryPolicy;
use crate::plugin::CallError;
use crate::plugin::types::{DeliverError, Receipt};

/// What to do with a delivery after an attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The outbox transition.
    pub outcome: Outcome,
    /// Stop sending to the destination until then (the channel said so).
    pub pause_until: Option<Timestamp>,
    /// Pause the destination for this reason until its config changes or
    /// an admin resumes it (the channel said its config is wrong).
    pub pause: Option<String>,
    /// The outcome label for metrics: delivered, retry, rate_limited,
    /// rejected, invalid_config, plugin_failure, dead, deferred, paused.
    pub label: &'static str,
}

impl Decision {
    /// A decision that changes nothing but the outbox.
    pub fn plain(outcome: Outcome, label: &'static str) -> Decision {
        Decision {
            outcome,
            pause_until: None,
            pause: None,
            label,
        }
    }
}

/// Facts about the attempt the decision depends on.
#[derive(Debug, Clone)]
pub struct Attempt<'a> {
    /// This attempt's number, from 1.
    pub number: u32,
    /// Time since the delivery was created.
    pub age: Duration,
    /// Now.
    pub now: Timestamp,
    /// Where the delivery goes if it dies.
    pub fallback: Option<&'a str>,
    /// A number in `[0, 1)` for the jitter.
    pub jitter: f64,
    /// How long a delivery to a paused destination waits before it is
    /// looked at again.
    pub hold: Duration,
}

/// Decides the transition for `result`.
pub fn decide(
    result: Result<Result<Receipt, DeliverError>, CallError>,
    attempt: &Attempt<'_>,
    policy: &RetryPolicy,
) -> Decision {
    let dead = |error: String, label| {
        Decision::plain(
            Outcome::Dead {
                error,
                fallback: attempt.fallback.map(str::to_owned),
            },
            label,
        )
    };
    let retry = |error: String, label| {
        if policy.exhausted(attempt.number, attempt.age) {
            dead(
                format!("gave up after {} attempts: {error}", attempt.number),
                "dead",
            )
        } else {
            Decision::plain(
                Outcome::Retry {
                    at: attempt
                        .now
                        .saturating_add(policy.delay(attempt.number, attempt.jitter)),
                    error,
                    counts_as_attempt: true,
                },
                label,
            )
        }
    };
    match result {
        Ok(Ok(receipt)) => Decision::plain(
            Outcome::Delivered {
                detail: receipt.detail,
                remote_id: receipt.remote_id,
            },
            "delivered",
        ),
        Ok(Err(DeliverError::RateLimited { after, reason })) => {
            // The channel's wait, at least a second; not a failed attempt.
            let at = attempt
                .now
                .saturating_add(after.max(Duration::from_secs(1)));
            if attempt.age >= policy.max_age {
                return dead(
                    format!("gave up after {:?}: rate limited: {reason}", policy.max_age),
                    "dead",
                );
            }
            Decision {
                outcome: Outcome::Retry {
                    at,
                    error: format!("rate limited: {reason}"),
                    counts_as_attempt: false,
                },
                pause_until: Some(at),
                pause: None,
                label: "rate_limited",
            }
        }
        Ok(Err(DeliverError::Retryable(reason))) => retry(reason, "retry"),
        Ok(Err(DeliverError::Rejected(reason))) => dead(format!("rejected: {reason}"), "rejected"),
        // One fault of the destination, not of this message: the
        // destination pauses and the delivery waits (not an attempt).
        // The destination pauses either way. Its message still pages
        // someone: through the fallback when there is one (rendered anew
        // for it), else it waits for the pause to end, never dead-lettered.
        Ok(Err(DeliverError::InvalidConfig(reason))) => Decision {
            outcome: match attempt.fallback {
                Some(fallback) => Outcome::Dead {
                    error: format!(
                        "invalid config: {reason} (the destination is paused; handed to its fallback)"
                    ),
                    fallback: Some(fallback.to_owned()),
                },
                None => Outcome::Retry {
                    at: attempt.now.saturating_add(attempt.hold),
                    error: format!("invalid config: {reason} (the destination is paused)"),
                    counts_as_attempt: false,
                },
            },
            pause_until: None,
            pause: Some(reason),
            label: "invalid_config",
        },
        Err(failure) if failure.is_permanent() => dead(failure.to_string(), "plugin_failure"),
        Err(failure) => retry(failure.to_string(), "plugin_failure"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(number: u32) -> Attempt<'static> {
        Attempt {
            number,
            age: Duration::from_secs(60),
            now: Timestamp::from_millis(1_000_000),
            fallback: Some("backup"),
            jitter: 1.0,
            hold: Duration::from_secs(30),
        }
    }

    #[test]
    fn each_answer_has_its_transition() {
        let p = RetryPolicy::default();
        let ok = decide(
            Ok(Ok(Receipt {
                remote_id: Some("m-1".into()),
                detail: "200".into(),
            })),
            &attempt(1),
            &p,
        );
        assert_eq!(
            ok.outcome,
            Outcome::Delivered {
                detail: "200".into(),
                remote_id: Some("m-1".into()),
            }
        );

        let retry = decide(
            Ok(Err(DeliverError::Retryable("503".into()))),
            &attempt(2),
            &p,
        );
        assert_eq!(
            retry.outcome,
            Outcome::Retry {
                at: Timestamp::from_millis(1_025_000),
                error: "503".into(),
                counts_as_attempt: true
            }
        );

        let limited = decide(
            Ok(Err(DeliverError::RateLimited {
                after: Duration::from_secs(30),
                reason: "130101".into(),
            })),
            &attempt(5),
            &p,
        );
        assert_eq!(limited.pause_until, Some(Timestamp::from_millis(1_030_000)));
        assert!(matches!(
            limited.outcome,
            Outcome::Retry {
                counts_as_attempt: false,
                ..
            }
        ));

        let rejected = decide(
            Ok(Err(DeliverError::Rejected("310000".into()))),
            &attempt(1),
            &p,
        );
        assert_eq!(
            rejected.outcome,
            Outcome::Dead {
                error: "rejected: 310000".into(),
                fallback: Some("backup".into())
            }
        );

        let revoked = decide(
            Ok(Err(DeliverError::InvalidConfig("errcode 300001".into()))),
            &attempt(1),
            &p,
        );
        assert_eq!(revoked.pause.as_deref(), Some("errcode 300001"));
        assert_eq!(
            revoked.outcome,
            Outcome::Dead {
                error: "invalid config: errcode 300001 (the destination is paused; handed to its fallback)".into(),
                fallback: Some("backup".into())
            },
            "with a fallback, the message goes there"
        );
        let no_fallback = Attempt {
            fallback: None,
            ..attempt(1)
        };
        let revoked = decide(
            Ok(Err(DeliverError::InvalidConfig("errcode 300001".into()))),
            &no_fallback,
            &p,
        );
        assert_eq!(revoked.pause.as_deref(), Some("errcode 300001"));
        assert_eq!(
            revoked.outcome,
            Outcome::Retry {
                at: Timestamp::from_millis(1_030_000),
                error: "invalid config: errcode 300001 (the destination is paused)".into(),
                counts_as_attempt: false
            },
            "waits, never dead-lettered"
        );
    }

    #[test]
    fn exhausted_retries_die_and_crashes_retry_unless_permanent() {
        let p = RetryPolicy {
            max_attempts: 3,
            ..RetryPolicy::default()
        };
        let last = decide(
            Ok(Err(DeliverError::Retryable("503".into()))),
            &attempt(3),
            &p,
        );
        assert!(matches!(last.outcome, Outcome::Dead { .. }));
        assert_eq!(last.label, "dead");

        let trap = CallError::Trap {
            plugin: "x".into(),
            trap: "unreachable".into(),
            output: String::new(),
        };
        assert!(matches!(
            decide(Err(trap), &attempt(1), &p).outcome,
            Outcome::Retry { .. }
        ));
        let oom = CallError::MemoryLimit {
            plugin: "x".into(),
            limit: 1,
        };
        assert!(matches!(
            decide(Err(oom), &attempt(1), &p).outcome,
            Outcome::Dead { .. }
        ));
    }
}
