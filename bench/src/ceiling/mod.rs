//! Ceilings: the same work without Carillon's logic, measured in the same
//! run on the same machine, so each Carillon figure can be read as a
//! fraction of what the machine allows for that step (raw figures move
//! between runs on a shared machine; ratios move much less).
//!
//! - [`ingest`]: the fastest possible "parse the event, answer 202" server;
//! - [`storage`]: durable enqueues with group commit, and bare sled;
//! - [`egress`]: raw HTTP posts of a delivered body to the same receiver;
//! - [`sandbox`]: one fresh-sandbox plugin call.

pub mod egress;
pub mod ingest;
pub mod sandbox;
pub mod storage;

use serde::Serialize;

use crate::load::LoadReport;
use crate::scenario::Context;

/// Every ceiling that could be measured, and why the others could not.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Ceilings {
    /// (a) The minimal ingest server under the same load.
    pub ingest: Option<LoadReport>,
    /// (b) Storage.
    pub storage: Option<storage::Storage>,
    /// (c) Raw HTTP delivery.
    pub egress: Option<egress::Egress>,
    /// (d) One plugin call.
    pub sandbox: Option<sandbox::Sandbox>,
    /// Ceilings that failed, with the reason.
    pub failures: Vec<String>,
}

/// Measures all four, one after the other; a ceiling that fails is
/// recorded, not fatal.
pub async fn measure(ctx: &Context) -> Ceilings {
    let mut c = Ceilings::default();
    let fail = |what: &str, e: anyhow::Error| format!("ceiling {what} failed: {e:#}");
    match ingest::measure(ctx).await {
        Ok(r) => c.ingest = Some(r),
        Err(e) => c.failures.push(fail("ingest", e)),
    }
    match storage::measure(ctx).await {
        Ok(r) => c.storage = Some(r),
        Err(e) => c.failures.push(fail("storage", e)),
    }
    match egress::measure(ctx).await {
        Ok(r) => c.egress = Some(r),
        Err(e) => c.failures.push(fail("egress", e)),
    }
    match sandbox::measure(ctx).await {
        Ok(r) => c.sandbox = Some(r),
        Err(e) => c.failures.push(fail("sandbox", e)),
    }
    c
}
