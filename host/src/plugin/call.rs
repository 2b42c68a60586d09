//! One call into a plugin: a fresh store, the limits, and the mapping of
//! every way a call can fail to a [`CallError`]. A plugin's *answer* (its
//! `deliver-error`) is data returned inside `Ok`; a `CallError` means the
//! plugin crashed or broke a limit.

use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::{
    Component, ComponentExportIndex, ComponentNamedList, Instance, Lift, Lower, TypedFunc,
};
use wasmtime::error::Context as _;
use wasmtime::{Store, Trap, UpdateDeadline};

use super::bindings::carillon::plugin::types as w;
use super::host::{HostState, MemoryLimitExceeded};
use super::load::Plugin;
use super::runtime::{EPOCH_TICK, Runtime};
use crate::egress::Grant;

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

/// The exports, as one enum so the store setup and error mapping are
/// written once.
pub(crate) enum Op {
    Describe,
    Validate(String),
    Render(w::Context, w::Destination, w::Message),
    Deliver(w::Context, w::Destination, w::Message),
}

/// Where the four exports sit in a component, found once at load. A call
/// type-checks and looks up only the export it runs: doing all four on
/// every instantiation (as the generated bindings do) was a tenth of the
/// fixed per-call cost.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Exports {
    describe: ComponentExportIndex,
    validate: ComponentExportIndex,
    render: ComponentExportIndex,
    deliver: ComponentExportIndex,
    /// Whether all four were type-checked against the host's types on an
    /// instance of this component (see [`Exports::typecheck`]).
    checked: bool,
}

impl Exports {
    /// Looks the exports up in `interface` (e.g. `carillon:plugin/channel@0.1.0`).
    pub(crate) fn find(component: &Component, interface: &str) -> Result<Self, String> {
        let channel = component
            .get_export_index(None, interface)
            .ok_or_else(|| format!("no `{interface}` export"))?;
        let func = |name: &str| {
            component
                .get_export_index(Some(&channel), name)
                .ok_or_else(|| format!("`{interface}` does not export `{name}`"))
        };
        Ok(Exports {
            describe: func("describe")?,
            validate: func("validate")?,
            render: func("render")?,
            deliver: func("deliver")?,
            checked: false,
        })
    }

    /// These exports, known to have the host's types: [`run_op`] checks
    /// them when it runs `describe`, so call this once that succeeded.
    pub(crate) fn checked(self) -> Self {
        Exports {
            checked: true,
            ..self
        }
    }

    /// Type-checks all four exports on `instance`. A component's function
    /// types are fixed by the component itself (the contract has no
    /// resources, whose identity could differ between instances), so one
    /// check holds for every later instance of it.
    fn typecheck(&self, store: &mut Store<HostState>, instance: Instance) -> wasmtime::Result<()> {
        let wrong = |name: &str| format!("the `{name}` export does not have the contract's types");
        instance
            .get_typed_func::<(), (w::Manifest,)>(&mut *store, self.describe)
            .context(wrong("describe"))?;
        instance
            .get_typed_func::<(&String,), (Result<(), Vec<w::ConfigIssue>>,)>(
                &mut *store,
                self.validate,
            )
            .context(wrong("validate"))?;
        instance
            .get_typed_func::<CallArgs<'_>, (Result<w::Outgoing, w::DeliverError>,)>(
                &mut *store,
                self.render,
            )
            .context(wrong("render"))?;
        instance
            .get_typed_func::<CallArgs<'_>, (Result<w::Receipt, w::DeliverError>,)>(
                &mut *store,
                self.deliver,
            )
            .context(wrong("deliver"))?;
        Ok(())
    }
}

/// The arguments of `render` and `deliver`.
type CallArgs<'a> = (&'a w::Context, &'a w::Destination, &'a w::Message);

/// Instantiates `plugin` in `store` and runs one export.
pub(crate) async fn run_op(
    store: &mut Store<HostState>,
    plugin: &Plugin,
    op: Op,
) -> wasmtime::Result<OpResult> {
    let instance = plugin
        .pre
        .instance_pre()
        .instantiate_async(&mut *store)
        .await?;
    let exports = &plugin.exports;
    let checked = exports.checked;
    Ok(match op {
        Op::Describe => {
            exports.typecheck(store, instance)?;
            OpResult::Describe(call(store, instance, exports.describe, (), true).await?)
        }
        Op::Validate(config) => {
            let args = (&config,);
            OpResult::Validate(call(store, instance, exports.validate, args, checked).await?)
        }
        Op::Render(ctx, dest, msg) => {
            let args = (&ctx, &dest, &msg);
            OpResult::Render(call(store, instance, exports.render, args, checked).await?)
        }
        Op::Deliver(ctx, dest, msg) => {
            let args = (&ctx, &dest, &msg);
            OpResult::Deliver(call(store, instance, exports.deliver, args, checked).await?)
        }
    })
}

/// Calls the export at `index`, type-checking it first unless `checked`.
async fn call<P, R: 'static>(
    store: &mut Store<HostState>,
    instance: Instance,
    index: ComponentExportIndex,
    params: P,
    checked: bool,
) -> wasmtime::Result<R>
where
    P: ComponentNamedList + Lower + Send + Sync,
    (R,): ComponentNamedList + Lift + Send + Sync,
{
    let f = if checked {
        let func = instance
            .get_func(&mut *store, index)
            .ok_or_else(|| wasmtime::format_err!("the plugin lacks an export it had at load"))?;
        // SAFETY: `checked` means `Exports::typecheck` accepted these very
        // types for this export on an instance of the same component, and
        // a component's function types do not vary between its instances.
        // Each arm of `run_op` passes the argument and result types that
        // `typecheck` names for its export: keep the two in step. This
        // skips repeating the check on every call (≈ 4 % of one).
        #[allow(unsafe_code)]
        unsafe {
            TypedFunc::<P, (R,)>::new_unchecked(func)
        }
    } else {
        instance.get_typed_func::<P, (R,)>(&mut *store, index)?
    };
    Ok(f.call_async(store, params).await?.0)
}

pub(crate) enum OpResult {
    Describe(w::Manifest),
    Validate(Result<(), Vec<w::ConfigIssue>>),
    Render(Result<w::Outgoing, w::DeliverError>),
    Deliver(Result<w::Receipt, w::DeliverError>),
}

impl Runtime {
    /// Runs one export of `plugin` in a fresh store under `grant`.
    pub(crate) async fn call(
        &self,
        plugin: &Plugin,
        grant: Arc<Grant>,
        destination: &str,
        op: Op,
    ) -> Result<OpResult, CallError> {
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
            Arc::from(name.as_str()),
            Arc::from(destination),
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

        let run = run_op(&mut store, plugin, op);
        let outcome = tokio::time::timeout(limits.wall_time, run).await;
        let state = store.data();
        if state.dropped_log_lines > 0 {
            tracing::warn!(plugin = %name, dropped = state.dropped_log_lines, "plugin log lines over the per-call limit were dropped");
        }
        let captured = String::from_utf8_lossy(&output.contents())
            .trim()
            .to_owned();
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
            Ok(Err(error)) => Err(classify(name, error, captured, limits.cpu_time)),
        }
    }
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
