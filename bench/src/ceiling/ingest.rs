//! Ceiling (a): the least an ingest endpoint can do. An axum handler that
//! parses the event into a `serde_json::Value` and answers 202, with no
//! auth, validation, routing, rendering or durable write, driven by the
//! same load generator as the gateway.

use std::time::Duration;

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::routing::post;

use crate::load::{self, LoadReport, Target, Until};
use crate::scenario::Context;
use crate::server::Server;

/// Serves it on as many threads as the gateway's runtime has, and loads it
/// for the ceiling duration.
pub async fn measure(ctx: &Context) -> anyhow::Result<LoadReport> {
    let app = axum::Router::new().route("/v1/events", post(accept));
    let threads = std::thread::available_parallelism().map_or(2, usize::from);
    let server = Server::spawn("ingest-ceiling", app, threads)?;
    let target = Target {
        url: server.url("/v1/events"),
        token: "ceiling".into(),
    };
    let until = Until::Elapsed(Duration::from_secs_f64(ctx.sizes.ceiling_secs));
    load::run(&target, ctx.sizes.connections, until).await
}

async fn accept(body: Bytes) -> (StatusCode, &'static str) {
    match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(event) => {
            std::hint::black_box(event);
            (StatusCode::ACCEPTED, r#"{"result":"accepted"}"#)
        }
        Err(_) => (StatusCode::BAD_REQUEST, r#"{"error":"bad json"}"#),
    }
}
