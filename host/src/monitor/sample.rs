//! Where the built-in metrics come from: [`SystemSampler`] reads the host
//! through `sysinfo` (CPU, memory, disk use per configured mount) and the
//! gateway's health from its outbox; [`ScriptedSampler`] hands out
//! readings a test wrote.

use std::collections::VecDeque;
use std::sync::Arc;

use carillon_outbox::{Outbox, Timestamp};

use super::series::Reading;
use crate::config::MonitorSettings;

/// A source of readings, asked every `[monitors] interval` (on the
/// blocking pool: reading `/proc` blocks).
pub trait Sampler: Send {
    /// The readings as of `now`.
    fn sample(&mut self, now: Timestamp) -> Vec<Reading>;
}

/// Readings a test scripted, one batch per call, then none.
#[derive(Debug, Default)]
pub struct ScriptedSampler {
    batches: VecDeque<Vec<Reading>>,
}

impl ScriptedSampler {
    /// Hands out `batches` in order.
    pub fn new(batches: impl IntoIterator<Item = Vec<Reading>>) -> Self {
        ScriptedSampler {
            batches: batches.into_iter().collect(),
        }
    }
}

impl Sampler for ScriptedSampler {
    fn sample(&mut self, _now: Timestamp) -> Vec<Reading> {
        self.batches.pop_front().unwrap_or_default()
    }
}

/// The host through `sysinfo`, and the outbox's health.
pub struct SystemSampler {
    system: Option<sysinfo::System>,
    disks: Option<sysinfo::Disks>,
    mounts: Vec<String>,
    /// CPU use needs two readings apart: the first call only primes it.
    cpu_primed: bool,
    /// Mounts already warned about (not found), warned once each.
    missing: Vec<String>,
    outbox: Arc<Outbox>,
    /// The dead-letter count and when it was read, for the rate.
    last_dead: Option<(u64, Timestamp)>,
}

impl std::fmt::Debug for SystemSampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SystemSampler")
            .field("mounts", &self.mounts)
            .finish_non_exhaustive()
    }
}

impl SystemSampler {
    /// Samples the host when `settings.system`, and always `outbox`.
    pub fn new(settings: &MonitorSettings, outbox: Arc<Outbox>) -> Self {
        let (system, disks) = if settings.system {
            let system = sysinfo::System::new()
                .inspect_err(|e| tracing::warn!(error = %e, "cannot read the host's CPU and memory; not sampling them"))
                .ok();
            let disks = sysinfo::Disks::new()
                .inspect_err(|e| tracing::warn!(error = %e, "cannot read the host's disks; not sampling them"))
                .ok();
            (system, disks)
        } else {
            (None, None)
        };
        SystemSampler {
            system,
            disks,
            mounts: settings.mounts.clone(),
            cpu_primed: false,
            missing: Vec::new(),
            outbox,
            last_dead: None,
        }
    }

    fn host(&mut self, out: &mut Vec<Reading>) {
        if let Some(sys) = &mut self.system {
            sys.refresh_cpu_usage();
            if self.cpu_primed {
                let cpu = f64::from(sys.global_cpu_usage()).clamp(0.0, 100.0);
                out.push(Reading::new("host.cpu_percent", round(cpu), "%"));
            }
            self.cpu_primed = true;
            sys.refresh_memory();
            let total = sys.total_memory();
            if total > 0 {
                let used = total.saturating_sub(sys.available_memory());
                out.push(Reading::new(
                    "host.memory_percent",
                    round(percent(used, total)),
                    "%",
                ));
            }
        }
        if let Some(disks) = &mut self.disks {
            // Relisted each time: a mount may come and go.
            disks.refresh(true);
            for mount in &self.mounts {
                let found = disks
                    .iter()
                    .find(|d| d.mount_point() == std::path::Path::new(mount));
                match found {
                    Some(d) if d.total_space() > 0 => {
                        let used = d.total_space().saturating_sub(d.available_space());
                        out.push(
                            Reading::new(
                                "host.disk_percent",
                                round(percent(used, d.total_space())),
                                "%",
                            )
                            .label("mount", mount),
                        );
                    }
                    _ if !self.missing.contains(mount) => {
                        tracing::warn!(%mount, "no disk is mounted there; not sampling it");
                        self.missing.push(mount.clone());
                    }
                    _ => {}
                }
            }
        }
    }

    fn health(&mut self, now: Timestamp, out: &mut Vec<Reading>) {
        let depth = self.outbox.depth();
        #[allow(clippy::cast_precision_loss)]
        out.push(Reading::new(
            "carillon.outbox_depth",
            depth.active() as f64,
            "",
        ));
        if let Some((before, at)) = self.last_dead {
            let minutes = now.as_millis().saturating_sub(at.as_millis()) as f64 / 60_000.0;
            if minutes > 0.0 {
                // A purge or a retry lowers the count: that is no negative rate.
                #[allow(clippy::cast_precision_loss)]
                let added = depth.dead.saturating_sub(before) as f64;
                out.push(Reading::new(
                    "carillon.dead_letters_per_minute",
                    round(added / minutes),
                    "/min",
                ));
            }
        }
        self.last_dead = Some((depth.dead, now));
        let waited = match self.outbox.next_due() {
            Ok(Some(due)) => now.as_millis().saturating_sub(due.as_millis()) / 1000,
            Ok(None) => 0,
            Err(error) => {
                tracing::warn!(%error, "cannot read the outbox's next due delivery");
                return;
            }
        };
        #[allow(clippy::cast_precision_loss)]
        out.push(Reading::new(
            "carillon.oldest_pending_seconds",
            waited as f64,
            "s",
        ));
    }
}

impl Sampler for SystemSampler {
    fn sample(&mut self, now: Timestamp) -> Vec<Reading> {
        let mut out = Vec::new();
        self.host(&mut out);
        self.health(now, &mut out);
        out
    }
}

#[allow(clippy::cast_precision_loss)]
fn percent(part: u64, whole: u64) -> f64 {
    (part as f64 / whole as f64 * 100.0).clamp(0.0, 100.0)
}

/// Two decimals: what a notice shows.
pub fn round(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}
