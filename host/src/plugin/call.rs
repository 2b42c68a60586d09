//! Calling a loaded plugin's exports: the typed entry points
//! ([`Runtime::validate`], [`Runtime::render`], [`Runtime::deliver`], and
//! [`Runtime::destination`], which computes a destination's grant), and the
//! one path every call takes: a fresh store with the limits, the export run
//! on a new instance, and the mapping of every way a call can fail to a
//! [`CallError`]. A plugin's *answer* (its `deliver-error`) is data returned
//! inside `Ok`; a `CallError` means the plugin crashed or broke a limit.

use std::sync::Arc;
use std::time::Duration;

use wasmtime::{Store, Trap, UpdateDeadline};

use super::convert;
use super::exports::{Export, Exports, Signature};
use super::imports::{CallSite, HostState, MemoryLimitExceeded};
use super::loaded::{Destination, Plugin};
use super::runtime::{EPOCH_TICK, Runtime};
use super::secrets::Secrets;
use super::types::{ConfigIssue, DeliverError, DeliveryContext, Outgoing, Receipt};
use crate::egress::{Grant, HostPattern};
use crate::message::Message;

/// Why a call into a plugin failed (as opposed to the plugin answering with
/// an error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The plugin ran longer than its CPU budget.
    #[error("plugin {plugin} exceeded its CPU budget of {budget:?}")]
    CpuLimit {
        /// Plugin name.
        plugin: String,
        /// The budget.
        budget: Duration,
    },
    /// The whole call, host calls included, took too long.
    #[error("plugin {plugin} did not answer within {limit:?}")]
    Timeout {
        /// Plugin name.
        plugin: String,
        /// The wall-clock limit.
        limit: Duration,
    },
    /// The plugin tried to grow its memory past the limit.
    #[error("plugin {plugin} exceeded its memory limit of {limit} bytes")]
    MemoryLimit {
        /// Plugin name.
        plugin: String,
        /// The limit in bytes.
        limit: usize,
    },
    /// The plugin panicked.
    #[error("plugin {plugin} panicked: {message}")]
    Panic {
        /// Plugin name.
        plugin: String,
        /// The panic message from the guest's stderr.
        message: String,
    },
    /// The plugin trapped (e.g. `unreachable`, out-of-bounds access).
    #[error("plugin {plugin} trapped: {trap}{}", if output.is_empty() { String::new() } else { format!(" (output: {output})") })]
    Trap {
        /// Plugin name.
        plugin: String,
        /// The trap.
        trap: String,
        /// What the guest wrote to stdout/stderr, if anything.
        output: String,
    },
    /// `render` returned more than the output cap.
    #[error("plugin {plugin} returned {bytes} bytes; the limit is {limit}")]
    OutputTooLarge {
        /// Plugin name.
        plugin: String,
        /// The size returned.
        bytes: usize,
        /// The cap.
        limit: usize,
    },
    /// Instantiation or another host-side failure.
    #[error("plugin {plugin} could not run: {reason}")]
    Host {
        /// Plugin name.
        plugin: String,
        /// What went wrong.
        reason: String,
    },
}

impl CallError {
    /// `true` when trying again with the same input cannot help: the plugin
    /// would hit the same memory or output limit.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            CallError::MemoryLimit { .. } | CallError::OutputTooLarge { .. }
        )
    }
}

/// The CPU budget ran out; raised from the epoch callback.
#[derive(Debug, thiserror::Error)]
#[error("CPU budget exhausted")]
struct CpuBudgetExceeded;

impl Runtime {
    /// Validates a destination config: the manifest's JSON Schema first,
    /// then (if that passes) the plugin's own `validate`.
    pub async fn validate(
        &self,
        plugin: &Plugin,
        config: &serde_json::Value,
    ) -> Result<Vec<ConfigIssue>, CallError> {
        let issues = plugin.schema_issues(config);
        if !issues.is_empty() {
            return Ok(issues);
        }
        let config = config.to_string();
        let grant = Arc::new(Grant::default());
        match self
            .call(
                plugin,
                grant,
                ("(validate)", &Arc::default()),
                |e| e.validate,
                (&config,),
            )
            .await?
        {
            Ok(()) => Ok(Vec::new()),
            Err(issues) => Ok(issues.into_iter().map(convert::issue_from_wit).collect()),
        }
    }

    /// A destination of `plugin` with its grant computed.
    pub fn destination(
        &self,
        plugin: &Plugin,
        name: &str,
        config: serde_json::Value,
        extra_hosts: &[HostPattern],
    ) -> Destination {
        let grant = Arc::new(plugin.grant_for(&config, extra_hosts));
        Destination {
            name: name.to_owned(),
            config,
            grant,
            secrets: Arc::default(),
        }
    }

    /// The exact request a delivery would make, with no side effects.
    pub async fn render(
        &self,
        plugin: &Plugin,
        destination: &Destination,
        ctx: &DeliveryContext,
        message: &Message,
    ) -> Result<Result<Outgoing, DeliverError>, CallError> {
        let ctx = convert::context_to_wit(ctx);
        let dest = convert::destination_to_wit(&destination.name, &destination.config);
        let msg = convert::message_to_wit(message);
        // Rendering must not reach the network: no grant.
        let grant = Arc::new(Grant::default());
        let params = (&ctx, &dest, &msg);
        match self
            .call(
                plugin,
                grant,
                (&destination.name, &destination.secrets),
                |e| e.render,
                params,
            )
            .await?
        {
            Ok(outgoing) => {
                let outgoing = convert::outgoing_from_wit(outgoing);
                let limit = self.limits().max_output_bytes;
                if outgoing.payload_len() > limit {
                    return Err(CallError::OutputTooLarge {
                        plugin: plugin.name().to_owned(),
                        bytes: outgoing.payload_len(),
                        limit,
                    });
                }
                Ok(Ok(outgoing))
            }
            Err(e) => Ok(Err(scrub_error(
                convert::deliver_error_from_wit(e),
                &destination.secrets,
            ))),
        }
    }

    /// Delivers a message through the plugin.
    pub async fn deliver(
        &self,
        plugin: &Plugin,
        destination: &Destination,
        ctx: &DeliveryContext,
        message: &Message,
    ) -> Result<Result<Receipt, DeliverError>, CallError> {
        let ctx = convert::context_to_wit(ctx);
        let dest = convert::destination_to_wit(&destination.name, &destination.config);
        let msg = convert::message_to_wit(message);
        let grant = destination.grant.clone();
        let params = (&ctx, &dest, &msg);
        let secrets = &destination.secrets;
        Ok(self
            .call(
                plugin,
                grant,
                (&destination.name, secrets),
                |e| e.deliver,
                params,
            )
            .await?
            .map(|r| {
                let mut receipt = convert::receipt_from_wit(r);
                receipt.detail = secrets.scrub(&receipt.detail);
                receipt.remote_id = receipt.remote_id.map(|id| secrets.scrub(&id));
                receipt
            })
            .map_err(|e| scrub_error(convert::deliver_error_from_wit(e), secrets)))
    }

    /// Runs the export `pick` selects of `plugin` in a fresh store under
    /// `grant`, for `destination` (its name, and its secrets: scrubbed from
    /// the call's log lines, captured output and errors).
    pub(crate) async fn call<S: Signature>(
        &self,
        plugin: &Plugin,
        grant: Arc<Grant>,
        (destination, secrets): (&str, &Arc<Secrets>),
        pick: fn(&Exports) -> Export<S>,
        params: S::Params<'_>,
    ) -> Result<S::Output, CallError> {
        let inner = &self.inner;
        let name = plugin.name().to_owned();
        let _permit = inner.calls.acquire().await.map_err(|_| CallError::Host {
            plugin: name.clone(),
            reason: "the runtime is shutting down".into(),
        })?;
        let limits = &inner.limits;
        let (state, output) = HostState::new(
            inner.http.clone(),
            inner.smtp.clone(),
            grant,
            CallSite {
                plugin: Arc::from(name.as_str()),
                destination: Arc::from(destination),
                secrets: secrets.clone(),
            },
            limits.memory_bytes,
            limits.max_log_lines,
        );
        let mut store = Store::new(&inner.engine, state);
        store.limiter(|s| &mut s.memory);
        let budget_ticks = (limits.cpu_time.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64;
        store.set_epoch_deadline(1);
        // Each tick spent running wasm yields to tokio (so a busy plugin
        // never starves the worker) and counts against the CPU budget.
        store.epoch_deadline_callback(move |mut ctx| {
            let state = ctx.data_mut();
            state.cpu_ticks += 1;
            if state.cpu_ticks >= budget_ticks {
                return Err(wasmtime::Error::new(CpuBudgetExceeded));
            }
            Ok(UpdateDeadline::Yield(1))
        });

        let run = run(&mut store, plugin, pick, params);
        let outcome = tokio::time::timeout(limits.wall_time, run).await;
        let state = store.data();
        if state.dropped_log_lines > 0 {
            tracing::warn!(plugin = %name, dropped = state.dropped_log_lines, "plugin log lines over the per-call limit were dropped");
        }
        let captured = secrets.scrub(String::from_utf8_lossy(&output.contents()).trim());
        match outcome {
            Err(_) => Err(CallError::Timeout {
                plugin: name,
                limit: limits.wall_time,
            }),
            Ok(Ok(result)) => {
                if !captured.is_empty() {
                    tracing::debug!(plugin = %name, output = %captured, "plugin wrote to stdout/stderr");
                }
                Ok(result)
            }
            Ok(Err(error)) => Err(scrub_call_error(
                classify(name, error, captured, limits.cpu_time),
                secrets,
            )),
        }
    }
}

/// Instantiates `plugin` in `store` and runs the export `pick` selects.
pub(crate) async fn run<S: Signature>(
    store: &mut Store<HostState>,
    plugin: &Plugin,
    pick: fn(&Exports) -> Export<S>,
    params: S::Params<'_>,
) -> wasmtime::Result<S::Output> {
    let instance = plugin
        .pre
        .instance_pre()
        .instantiate_async(&mut *store)
        .await?;
    let func = plugin.exports.func(store, instance, pick)?;
    Ok(S::output(func.call_async(store, params).await?))
}

fn classify(plugin: String, error: wasmtime::Error, output: String, budget: Duration) -> CallError {
    if let Some(e) = error.downcast_ref::<MemoryLimitExceeded>() {
        return CallError::MemoryLimit {
            plugin,
            limit: e.limit,
        };
    }
    if error.downcast_ref::<CpuBudgetExceeded>().is_some()
        || error.downcast_ref::<Trap>() == Some(&Trap::Interrupt)
    {
        return CallError::CpuLimit { plugin, budget };
    }
    if let Some(trap) = error.downcast_ref::<Trap>() {
        if let Some(message) = panic_message(&output) {
            return CallError::Panic { plugin, message };
        }
        return CallError::Trap {
            plugin,
            trap: trap.to_string(),
            output,
        };
    }
    CallError::Host {
        plugin,
        reason: format!("{error:#}"),
    }
}

/// `error` with `secrets` scrubbed from the plugin's words.
fn scrub_error(error: DeliverError, secrets: &Secrets) -> DeliverError {
    match error {
        DeliverError::Retryable(r) => DeliverError::Retryable(secrets.scrub(&r)),
        DeliverError::RateLimited { after, reason } => DeliverError::RateLimited {
            after,
            reason: secrets.scrub(&reason),
        },
        DeliverError::Rejected(r) => DeliverError::Rejected(secrets.scrub(&r)),
        DeliverError::InvalidConfig(r) => DeliverError::InvalidConfig(secrets.scrub(&r)),
    }
}

/// `error` with `secrets` scrubbed from what the guest or the host said
/// (the captured output is scrubbed already).
fn scrub_call_error(error: CallError, secrets: &Secrets) -> CallError {
    match error {
        CallError::Panic { plugin, message } => CallError::Panic {
            plugin,
            message: secrets.scrub(&message),
        },
        CallError::Trap {
            plugin,
            trap,
            output,
        } => CallError::Trap {
            plugin,
            trap: secrets.scrub(&trap),
            output,
        },
        CallError::Host { plugin, reason } => CallError::Host {
            plugin,
            reason: secrets.scrub(&reason),
        },
        other => other,
    }
}

/// The message of a Rust panic as the guest's std prints it:
/// `thread '<unnamed>' panicked at src/lib.rs:1:2:\nmessage`.
fn panic_message(output: &str) -> Option<String> {
    let start = output.find("panicked at ")?;
    let rest = &output[start..];
    let body = rest.split_once('\n').map_or(rest, |(_, b)| b);
    let message = body
        .lines()
        .take_while(|l| !l.starts_with("note: "))
        .collect::<Vec<_>>()
        .join("\n");
    Some(if message.is_empty() {
        rest.to_owned()
    } else {
        message
    })
}

#[cfg(test)]
mod tests {
    use super::panic_message;

    #[test]
    fn panic_messages_are_extracted() {
        let out = "thread '<unnamed>' (1) panicked at src/lib.rs:43:13:\nplugin bug: bad config\nnote: run with `RUST_BACKTRACE=1`";
        assert_eq!(
            panic_message(out).as_deref(),
            Some("plugin bug: bad config")
        );
        assert_eq!(panic_message("nothing here"), None);
    }
}
