//! The per-call cost workload: the built-in webhook plugin rendering a
//! typical message in a fresh sandbox. Shared by `benches/plugin_call.rs`
//! and the benchmark suite's sandbox ceiling (`carillon-bench`), so both
//! time exactly the same call.

use std::sync::Arc;

use super::types::{DeliverError, DeliveryContext, Outgoing};
use super::{CallError, Destination, LoadError, Plugin, Runtime};
use crate::message::{Field, Link, Message, Severity};

/// A loaded plugin, a destination of it and the message it renders.
#[derive(Debug)]
pub struct RenderProbe {
    /// The built-in webhook plugin.
    pub plugin: Arc<Plugin>,
    /// Its destination, configured by [`RenderProbe::config`].
    pub destination: Destination,
    /// The delivery the render is for.
    pub context: DeliveryContext,
    /// The message: a failed-task notice with a link and two fields.
    pub message: Message,
}

impl RenderProbe {
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
        Ok(RenderProbe {
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
