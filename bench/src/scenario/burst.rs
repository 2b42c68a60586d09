//! `burst`: a fixed number of events as fast as the connections allow,
//! then the wait until every one is delivered: how fast the gateway
//! absorbs a spike and how long its queue takes to empty.

use super::{Context, Flow, flow};
use crate::driver::Setup;
use crate::load::Until;

/// Runs it.
pub async fn burst(ctx: &Context) -> anyhow::Result<Flow> {
    let path = "/burst";
    let setup = Setup {
        destinations: [("burst".to_owned(), ctx.webhook(path))].into(),
        ..Setup::default()
    };
    let mut gateway = ctx.gateway("burst", &setup).await?;
    let result = flow(
        ctx,
        &mut gateway,
        path,
        Until::Count(ctx.sizes.burst_events),
    )
    .await?;
    gateway.stop().await?;
    Ok(result)
}
