//! The per-call cost workload: the built-in webhook plugin rendering a
//! typical message in a fresh sandbox. Shared by `benches/plugin_call.rs`
//! and the benchmark suite's sandbox ceiling (`carillon-bench`), so both
//! time exactly the same call.

use std::sync::Arc;

use wasmtime::Store;

use super::call::run;
use super::imports::{CallSite, HostState};
use super::types::{DeliverError, DeliveryContext, Outgoing};
use super::{CallError, Destination, LoadError, Plugin, Runtime, convert};
use crate::egress::Grant;
use crate::message::{Field, Link, Message, Severity};

/// A loaded plugin, a destination of it and the message it renders.
#[derive(Debug)]
pub struct RenderWorkload {
    /// The built-in webhook plugin.
    pub plugin: Arc<Plugin>,
    /// Its destination, configured by [`RenderWorkload::config`].
    pub destination: Destination,
    /// The delivery the render is for.
    pub context: DeliveryContext,
    /// The message: a failed-task notice with a link and two fields.
    pub message: Message,
}

impl RenderWorkload {
    /// The webhook destination's config: a URL and a signing secret, so a
    /// render includes the Standard Webhooks HMAC.
    pub fn config() -> serde_json::Value {
        serde_json::json!({
            "url": "https://hooks.example.com/carillon",
            "signing_secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        })
    }

    /// Loads the webhook plugin from `wasm` (the built-in component's bytes)
    /// into `runtime`.
    pub async fn webhook(runtime: &Runtime, wasm: Vec<u8>) -> Result<Self, LoadError> {
        let plugin = runtime.load(wasm).await?;
        let destination = runtime.destination(&plugin, "bench", Self::config(), &[]);
        Ok(RenderWorkload {
            plugin,
            destination,
            context: DeliveryContext {
                delivery_id: "dlv_bench".into(),
                event_id: "evt_bench".into(),
                attempt: 1,
                now_ms: 1_700_000_000_000,
            },
            message: message(),
        })
    }

    /// One call: a fresh store, `render`, teardown.
    pub async fn render(
        &self,
        runtime: &Runtime,
    ) -> Result<Result<Outgoing, DeliverError>, CallError> {
        runtime
            .render(
                &self.plugin,
                &self.destination,
                &self.context,
                &self.message,
            )
            .await
    }
}

/// The same `render` with nothing of Carillon's around wasmtime: a store
/// holding only the empty WASI context, instantiation from the plugin's
/// pre-instantiated component, the typed call, teardown. No call permit,
/// memory limiter, CPU-budget callback, wall-clock timeout or output
/// conversion; the arguments are converted by the caller once and only
/// cloned per call. This is
/// the floor wasmtime sets for a fresh-sandbox call on the machine at hand,
/// against which `plugin_call` reports the runtime's own overhead.
pub async fn bare_render(
    runtime: &Runtime,
    plugin: &Plugin,
    args: &BareArgs,
) -> Result<(), String> {
    let inner = &runtime.inner;
    let (state, _output) = HostState::new(
        inner.http.clone(),
        inner.smtp.clone(),
        Arc::clone(&args.grant),
        CallSite {
            plugin: Arc::from(""),
            destination: Arc::from(""),
            secrets: Arc::default(),
        },
        inner.limits.memory_bytes,
        inner.limits.max_log_lines,
    );
    let mut store = Store::new(&inner.engine, state);
    // Epoch interruption is on in this engine: give the call room.
    store.set_epoch_deadline(1 << 20);
    // Cloned per call, as when this floor was first measured (the call
    // took its arguments by value then), so the numbers stay comparable.
    let (context, destination, message) = (
        args.context.clone(),
        args.destination.clone(),
        args.message.clone(),
    );
    let params = (&context, &destination, &message);
    match run(&mut store, plugin, |e| e.render, params).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!(
            "render answered an error: {:?}",
            convert::deliver_error_from_wit(e)
        )),
        Err(e) => Err(format!("{e:#}")),
    }
}

/// The arguments of [`bare_render`], converted to the plugin's types once.
pub struct BareArgs {
    grant: Arc<Grant>,
    context: super::bindings::carillon::plugin::types::Context,
    destination: super::bindings::carillon::plugin::types::Destination,
    message: super::bindings::carillon::plugin::types::Message,
}

impl BareArgs {
    /// Converts a render's arguments.
    pub fn new(destination: &Destination, context: &DeliveryContext, message: &Message) -> Self {
        BareArgs {
            grant: Arc::new(Grant::default()),
            context: convert::context_to_wit(context),
            destination: convert::destination_to_wit(&destination.name, &destination.config),
            message: convert::message_to_wit(message),
        }
    }
}

impl std::fmt::Debug for BareArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BareArgs").finish_non_exhaustive()
    }
}

fn message() -> Message {
    Message {
        title: "Nightly ETL orders_daily failed".into(),
        markdown:
            "Task **orders_daily** failed after 3 retries: connection to `warehouse-2` timed out."
                .into(),
        text: "Task orders_daily failed after 3 retries: connection to warehouse-2 timed out."
            .into(),
        table: None,
        link: Some(Link {
            url: "https://etl.example.com/tasks/42".into(),
            label: Some("Open task".into()),
        }),
        mentions: Vec::new(),
        severity: Severity::Error,
        locale: "en".into(),
        fields: vec![
            Field {
                name: "owner".into(),
                value: "alice".into(),
            },
            Field {
                name: "started".into(),
                value: "2026-11-23 02:00".into(),
            },
        ],
    }
}
