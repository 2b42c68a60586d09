//! `steady`: a fixed duration of closed-loop load through one webhook
//! destination; the gateway's sustained ingest and delivery rates.

use std::time::Duration;

use super::{Context, Flow, flow};
use crate::driver::Setup;
use crate::load::Until;

/// Runs it.
pub async fn steady(ctx: &Context) -> anyhow::Result<Flow> {
    let path = "/steady";
    let setup = Setup {
        destinations: [("steady".to_owned(), ctx.webhook(path))].into(),
        ..Setup::default()
    };
    let mut gateway = ctx.gateway("steady", &setup).await?;
    let until = Until::Elapsed(Duration::from_secs_f64(ctx.sizes.steady_secs));
    let result = flow(ctx, &mut gateway, path, until).await?;
    gateway.stop().await?;
    Ok(result)
}
