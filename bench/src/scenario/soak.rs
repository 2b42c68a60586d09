//! `soak`: an hour (by default) at half the gateway's measured maximum
//! rate, through one webhook destination whose receiver fails at random
//! ([`Faults::soak`]: 500s, slow answers, answers held past the plugin's
//! timeout, 429 windows), while a new build of the webhook plugin is
//! installed and reloaded every few minutes. Every minute it samples what
//! the gateway holds (RSS, file descriptors, memory maps, disk, queue,
//! dead letters) and what arrived (delivered/s, p99 latency of the
//! window); at the end it judges whether those series ended flat
//! ([`verdict`]). Not part of the default run, nor of CI.
//!
//! The maximum is measured first in the same run: 10 s of closed-loop
//! load through a healthy receiver, the smaller of its ingest and its
//! end-to-end delivery rate (`--soak-rate` skips it). Retention is cut
//! to ten minutes (`--soak-retention-secs`): with the gateway's defaults
//! (a week) delivered deliveries pile up for a week by design, and an
//! hour would only show that.

mod reload;
mod sample;
mod verdict;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde::Serialize;

pub use reload::Reload;
pub use sample::Sample;
pub use verdict::{SeriesVerdict, Verdict};

use super::{Context, flow};
use crate::chart::{Chart, Series};
use crate::driver::{Gateway, Setup};
use crate::latency::Latency;
use crate::load::{self, LoadReport, Until};
use crate::receiver::{Behaviour, FaultCounts, Faults};

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// The receiver path the soak delivers to.
const PATH: &str = "/soak";
/// The probe's path (healthy).
const PROBE_PATH: &str = "/soak-probe";
/// The webhook's `timeout_ms`: shorter than the receiver's held answers
/// (1.5 s), so those are timeouts.
const PLUGIN_TIMEOUT_MS: u32 = 1000;
/// Deliveries at once unless `--destination-concurrency` says otherwise:
/// the default 4 would spend most of its time waiting on slow and held
/// answers, and the soak is about leaks, not about that bound.
const CONCURRENCY: u32 = 16;
/// The longest wait for the last deliveries after the load: retries of
/// the unlucky few back off for minutes, and what is still queued then is
/// reported, not waited for.
const DRAIN_LIMIT: Duration = Duration::from_secs(300);
/// The longest wait for a reload still under way when the load ends.
const RELOAD_LIMIT: Duration = Duration::from_secs(300);
/// How long the outbox may take to count the last deliveries as done
/// after the receiver got them.
const SETTLE_LIMIT: Duration = Duration::from_secs(10);

/// The maximum measured before the soak.
#[derive(Debug, Clone, Serialize)]
pub struct Probe {
    /// How long it loaded.
    pub secs: f64,
    /// Its ingest rate (202/s).
    pub accepted_per_sec: f64,
    /// Its end-to-end delivery rate.
    pub delivered_per_sec: f64,
    /// The smaller of the two: the sustainable maximum.
    pub max_per_sec: f64,
}

/// What the gateway held after the drain, against the baseline.
#[derive(Debug, Clone, Serialize)]
pub struct Drained {
    /// The reading after the drain.
    pub sample: Sample,
    /// Whether every accepted event arrived.
    pub complete: bool,
    /// Accepted events that never arrived.
    pub undelivered: u64,
    /// `undelivered` minus what the outbox still holds: events lost when
    /// positive. Negative when the outbox still holds deliveries the
    /// receiver already got (an answer that came after the plugin's
    /// timeout: at-least-once, a duplicate to come).
    pub unaccounted: i64,
    /// From the end of the load to the last delivery (or the limit).
    pub drain_secs: f64,
}

/// Everything the soak measured.
#[derive(Debug, Clone, Serialize)]
pub struct Soak {
    /// The maximum measured first (`None` with `--soak-rate`).
    pub probe: Option<Probe>,
    /// Events offered per second.
    pub rate: f64,
    /// Where `rate` came from.
    pub rate_source: String,
    /// Seconds of load.
    pub secs: f64,
    /// Seconds between samples.
    pub sample_secs: f64,
    /// Seconds between plugin reloads.
    pub reload_secs: f64,
    /// The gateway's retention (delivered, unrouted, idempotency keys).
    pub retention_secs: u64,
    /// Deliveries at once to the destination.
    pub concurrency: u32,
    /// The receiver's faults, in words.
    pub faults: String,
    /// The load generator's view.
    pub load: LoadReport,
    /// Sample 0 is before the load; sample `i` ends window `i`.
    pub samples: Vec<Sample>,
    /// Samples that could not be taken (the gateway did not answer
    /// `/metrics` in time), with the reason.
    pub missed_samples: Vec<String>,
    /// Why the load stopped before its time, when it did.
    pub stopped_early: Option<String>,
    /// Every plugin upgrade.
    pub reloads: Vec<Reload>,
    /// What the receiver did on purpose.
    pub fault_counts: FaultCounts,
    /// Distinct events delivered.
    pub delivered: u64,
    /// Events delivered more than once.
    pub duplicates: u64,
    /// Send → arrival over the whole run.
    pub end_to_end: Latency,
    /// After the load.
    pub drained: Drained,
    /// `ERROR` and `WARN` lines in the gateway's log.
    pub log_errors: u64,
    /// See `log_errors`.
    pub log_warnings: u64,
    /// The first few `ERROR` lines, as they were.
    pub log_error_lines: Vec<String>,
    /// Flat or not, per series.
    pub verdict: Verdict,
}

/// Runs it; while it runs, `out/soak-samples.jsonl` gains a line per
/// sample and `out/soak.svg` is redrawn, so a long run can be watched.
pub async fn soak(ctx: &Context, out: &Path) -> anyhow::Result<Soak> {
    let sizes = &ctx.sizes;
    let concurrency = sizes.destination_concurrency.unwrap_or(CONCURRENCY);
    let destination = |path: &str| {
        let mut d = ctx.webhook(path);
        d.concurrency = Some(concurrency);
        d.config["timeout_ms"] = PLUGIN_TIMEOUT_MS.into();
        d
    };
    let setup = |path: &str| Setup {
        destinations: [("soak".to_owned(), destination(path))].into(),
        retention_secs: Some(sizes.soak_retention_secs),
        ..Setup::default()
    };

    let (probe, rate, rate_source) = match sizes.soak_rate {
        Some(rate) => (None, rate, "given (--soak-rate)".to_owned()),
        None => {
            let p = probe(ctx, &setup(PROBE_PATH)).await?;
            let rate = (p.max_per_sec / 2.0).max(1.0);
            let source = format!(
                "half the maximum measured first ({:.0}/s over {} s)",
                p.max_per_sec, p.secs
            );
            (Some(p), rate, source)
        }
    };
    eprintln!(
        "carillon-bench: soak at {rate:.0} events/s for {} s…",
        sizes.soak_secs
    );

    let faults = Faults::soak();
    ctx.receiver.set(PATH, Behaviour::Flaky(faults));
    let mut gateway = ctx.gateway("soak", &setup(PATH)).await?;
    // Samples come a minute apart, as long as the gateway's idle timeout
    // (60 s): a pooled connection would be closed by the gateway just as
    // the next sample reuses it. Idle connections are dropped well before.
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .pool_idle_timeout(Duration::from_secs(20))
        .build()?;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let live = out.join("soak-samples.jsonl");
    std::fs::write(&live, "").with_context(|| format!("cannot write {}", live.display()))?;

    let baseline = sample::held(&gateway, &http).await?;
    let mut samples = vec![Sample {
        rss_bytes: baseline.rss_bytes,
        fds: baseline.fds,
        maps: baseline.maps,
        data_dir_bytes: baseline.data_dir_bytes,
        outbox_bytes: baseline.outbox_bytes,
        backlog: baseline.backlog,
        dead_letters: baseline.dead_letters,
        ..Sample::default()
    }];

    let accepted = Arc::new(AtomicU64::new(0));
    let stop_load = Arc::new(AtomicBool::new(false));
    let secs = Duration::from_secs_f64(sizes.soak_secs);
    let started = Instant::now();
    let mut load_task = tokio::spawn({
        let (target, accepted) = (gateway.ingest(), Arc::clone(&accepted));
        let stop = Arc::clone(&stop_load);
        let connections = sizes.connections;
        async move { load::run_at_rate(&target, connections, rate, secs, accepted, stop).await }
    });
    let reloads = Arc::new(Mutex::new(Vec::<Reload>::new()));
    let stop_reloads = Arc::new(tokio::sync::Notify::new());
    let mut reload_task = tokio::spawn(reload_loop(
        reload::Installer::new(
            &gateway.dir().join("plugins"),
            gateway.url("/v1/plugins/reload"),
        )?,
        Duration::from_secs_f64(sizes.soak_reload_secs),
        started,
        Arc::clone(&reloads),
        Arc::clone(&stop_reloads),
    ));

    let every = Duration::from_secs_f64(sizes.soak_sample_secs);
    let mut window = Window {
        at: started,
        held: baseline,
        accepted: 0,
        delivered: 0,
        cursor: 0,
    };
    let mut missed = Vec::new();
    let mut stopped_early = None;
    // The load's result when it ended inside the sampling loop (a finished
    // `JoinHandle` must not be polled again).
    let mut load_ended = None;
    let mut k = 1u32;
    let outcome = loop {
        let due = started + every * k;
        if due > started + secs + Duration::from_millis(1) {
            break Ok(());
        }
        tokio::select! {
            () = tokio::time::sleep_until(due.into()) => {}
            // The load ended (early, or with the last window).
            ended = &mut load_task => {
                load_ended = Some(ended);
                break Ok(());
            }
        }
        k += 1;
        if let Err(e) = gateway.check_alive() {
            break Err(e);
        }
        let count = lock(&reloads).iter().filter(|r| r.ok).count() as u64;
        match window
            .next(ctx, &gateway, &http, &accepted, started, count)
            .await
        {
            Ok(s) => {
                eprintln!("carillon-bench: soak {}", s.line());
                record(out, &live, &s, &samples, &lock(&reloads))?;
                let full = s.data_dir_bytes > sizes.soak_disk_limit_bytes;
                samples.push(s);
                if full {
                    // The machine's disk is shared: stop before it fills.
                    let why = format!(
                        "the data directory passed --soak-disk-limit-gib ({:.1} GiB) at {:.1} min",
                        sizes.soak_disk_limit_bytes as f64 / GIB,
                        started.elapsed().as_secs_f64() / 60.0
                    );
                    eprintln!("carillon-bench: soak stopped early: {why}");
                    stopped_early = Some(why);
                    stop_load.store(true, Ordering::Relaxed);
                    break Ok(());
                }
            }
            Err(e) => {
                let at = started.elapsed().as_secs_f64();
                eprintln!("carillon-bench: soak sample at {at:.0} s missed: {e:#}");
                missed.push(format!("{at:.0} s: {e:#}"));
            }
        }
    };
    // A reload under way finishes (and is recorded); no new one starts.
    stop_reloads.notify_one();
    if tokio::time::timeout(RELOAD_LIMIT, &mut reload_task)
        .await
        .is_err()
    {
        reload_task.abort();
    }
    if let Err(e) = outcome {
        load_task.abort();
        return Err(e);
    }
    let load = match load_ended {
        Some(ended) => ended,
        None => load_task.await,
    }
    .context("the soak's load task failed")??;
    let reloads = lock(&reloads).clone();

    let drain_start = Instant::now();
    let limit = DRAIN_LIMIT.min(Duration::from_secs_f64(sizes.drain_timeout_secs));
    let complete = ctx
        .wait_arrivals_for(&[PATH.to_owned()], load.accepted, limit, || {
            gateway.check_alive()
        })
        .await?;
    let got = ctx.receiver.report(PATH);
    let drain_secs = got.last.map_or(0.0, |l| {
        l.saturating_duration_since(drain_start).as_secs_f64()
    });
    let undelivered = load.accepted.saturating_sub(got.delivered);
    // The receiver sees a delivery before the gateway records it as done.
    let settle = Instant::now() + SETTLE_LIMIT;
    let after = loop {
        let held = sample::held(&gateway, &http).await?;
        if held.backlog + held.dead_letters <= undelivered || Instant::now() >= settle {
            break held;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let drained = Drained {
        sample: Sample {
            at_secs: started.elapsed().as_secs_f64(),
            rss_bytes: after.rss_bytes,
            fds: after.fds,
            maps: after.maps,
            data_dir_bytes: after.data_dir_bytes,
            outbox_bytes: after.outbox_bytes,
            backlog: after.backlog,
            dead_letters: after.dead_letters,
            duplicates: got.duplicates,
            reloads: reloads.iter().filter(|r| r.ok).count() as u64,
            ..Sample::default()
        },
        complete,
        undelivered,
        unaccounted: i64::try_from(undelivered).unwrap_or(i64::MAX)
            - i64::try_from(after.backlog + after.dead_letters).unwrap_or(i64::MAX),
        drain_secs,
    };
    let log = log_levels(&gateway.dir().join("gateway.log"));
    gateway.stop().await?;

    let verdict = verdict::judge(samples.get(1..).unwrap_or_default(), rate);
    Ok(Soak {
        probe,
        rate,
        rate_source,
        secs: sizes.soak_secs,
        sample_secs: sizes.soak_sample_secs,
        reload_secs: sizes.soak_reload_secs,
        retention_secs: sizes.soak_retention_secs,
        concurrency,
        faults: describe(&faults),
        load,
        samples,
        missed_samples: missed,
        stopped_early,
        reloads,
        fault_counts: got.faults,
        delivered: got.delivered,
        duplicates: got.duplicates,
        end_to_end: got.latency,
        drained,
        log_errors: log.errors,
        log_warnings: log.warnings,
        log_error_lines: log.first_errors,
        verdict,
    })
}

/// The closed-loop maximum through a healthy receiver.
async fn probe(ctx: &Context, setup: &Setup) -> anyhow::Result<Probe> {
    let secs = ctx.sizes.soak_probe_secs;
    let mut gateway = ctx.gateway("soak-probe", setup).await?;
    let f = flow(
        ctx,
        &mut gateway,
        PROBE_PATH,
        Until::Elapsed(Duration::from_secs_f64(secs)),
    )
    .await?;
    gateway.stop().await?;
    Ok(Probe {
        secs,
        accepted_per_sec: f.load.accepted_per_sec,
        delivered_per_sec: f.delivered_per_sec,
        max_per_sec: f.load.accepted_per_sec.min(f.delivered_per_sec),
    })
}

/// Installs a new build every `every` until `stop` is notified.
async fn reload_loop(
    mut installer: reload::Installer,
    every: Duration,
    started: Instant,
    reloads: Arc<Mutex<Vec<Reload>>>,
    stop: Arc<tokio::sync::Notify>,
) {
    let mut k = 1u32;
    loop {
        tokio::select! {
            () = tokio::time::sleep_until((started + every * k).into()) => {}
            () = stop.notified() => return,
        }
        k += 1;
        let r = installer.next(started.elapsed().as_secs_f64()).await;
        if let Some(e) = &r.error {
            eprintln!("carillon-bench: soak reload {} failed: {e}", r.build);
        }
        lock(&reloads).push(r);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Where the previous sample left off.
struct Window {
    at: Instant,
    held: sample::Held,
    accepted: u64,
    delivered: u64,
    cursor: usize,
}

impl Window {
    /// The sample ending now, and the start of the next window.
    async fn next(
        &mut self,
        ctx: &Context,
        gateway: &Gateway,
        http: &reqwest::Client,
        accepted: &AtomicU64,
        started: Instant,
        reloads: u64,
    ) -> anyhow::Result<Sample> {
        let held = sample::held(gateway, http).await?;
        let now = Instant::now();
        let secs = now.saturating_duration_since(self.at).as_secs_f64();
        let accepted = accepted.load(Ordering::Relaxed);
        let got = ctx.receiver.report(PATH);
        let (mut latencies, cursor) = ctx.receiver.latencies_since(PATH, self.cursor);
        let s = Sample {
            at_secs: now.saturating_duration_since(started).as_secs_f64(),
            rss_bytes: held.rss_bytes,
            fds: held.fds,
            maps: held.maps,
            data_dir_bytes: held.data_dir_bytes,
            outbox_bytes: held.outbox_bytes,
            cpu_percent: if secs > 0.0 {
                (held.cpu_secs - self.held.cpu_secs) * 100.0 / secs
            } else {
                0.0
            },
            accepted_per_sec: load::per_sec(accepted - self.accepted, secs),
            delivered_per_sec: load::per_sec(got.delivered - self.delivered, secs),
            latency: Latency::of(&mut latencies),
            backlog: held.backlog,
            dead_letters: held.dead_letters,
            duplicates: got.duplicates,
            reloads,
        };
        *self = Window {
            at: now,
            held,
            accepted,
            delivered: got.delivered,
            cursor,
        };
        Ok(s)
    }
}

impl Sample {
    /// One line for the log of a long run.
    fn line(&self) -> String {
        format!(
            "{:>6.1} min: RSS {:.1} MiB, {} fds, {} maps, data {:.1} MiB, {:.0} delivered/s, p99 {:.0} ms, backlog {}, dead {}, CPU {:.0} %, reloads {}",
            self.at_secs / 60.0,
            self.rss_bytes as f64 / 1048576.0,
            self.fds,
            self.maps,
            self.data_dir_bytes as f64 / 1048576.0,
            self.delivered_per_sec,
            self.latency.p99_ms,
            self.backlog,
            self.dead_letters,
            self.cpu_percent,
            self.reloads
        )
    }
}

/// Appends `s` to the live samples file and redraws the live chart.
fn record(
    out: &Path,
    live: &Path,
    s: &Sample,
    before: &[Sample],
    reloads: &[Reload],
) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(live)
        .with_context(|| format!("cannot append to {}", live.display()))?;
    writeln!(f, "{}", serde_json::to_string(s)?)?;
    let mut all = before.to_vec();
    all.push(s.clone());
    let svg = out.join("soak.svg");
    std::fs::write(&svg, chart(&all, reloads, "Carillon soak (running)").svg())
        .with_context(|| format!("cannot write {}", svg.display()))
}

/// The soak's chart: one panel per series over minutes, reloads marked.
pub fn chart(samples: &[Sample], reloads: &[Reload], subtitle: &str) -> Chart {
    const MIB: f64 = 1024.0 * 1024.0;
    let series = |title: &str, f: &dyn Fn(&Sample) -> Option<f64>| Series {
        title: title.to_owned(),
        values: samples.iter().map(f).collect(),
    };
    // Sample 0 (before the load) has no window: no rate, no latency.
    let windowed = |s: &Sample, v: f64| (s.at_secs > 0.0).then_some(v);
    Chart {
        title: "Carillon soak: what the gateway holds, sampled each window".into(),
        subtitle: subtitle.to_owned(),
        minutes: samples.iter().map(|s| s.at_secs / 60.0).collect(),
        series: vec![
            series("gateway RSS (MiB)", &|s| Some(s.rss_bytes as f64 / MIB)),
            series("open file descriptors", &|s| Some(s.fds as f64)),
            series("memory maps", &|s| Some(s.maps as f64)),
            series("data directory on disk (MiB)", &|s| {
                Some(s.data_dir_bytes as f64 / MIB)
            }),
            series("accepted → delivered p99 of the window (ms)", &|s| {
                (s.latency.count > 0).then_some(s.latency.p99_ms)
            }),
            series("delivered per second", &|s| {
                windowed(s, s.delivered_per_sec)
            }),
            series("backlog (deliveries not yet done)", &|s| {
                Some(s.backlog as f64)
            }),
            series("dead letters", &|s| Some(s.dead_letters as f64)),
        ],
        markers: reloads
            .iter()
            .filter(|r| r.ok)
            .map(|r| r.at_secs / 60.0)
            .collect(),
        marker_label: "plugin reload".into(),
    }
}

/// The faults in words, for the report.
fn describe(f: &Faults) -> String {
    let pct = |ppm: u32| f64::from(ppm) / 10_000.0;
    format!(
        "{}% 500; {}% answered after {} ms; {}% held {} ms (plugin timeout {PLUGIN_TIMEOUT_MS} ms); 429 with Retry-After for {} s about every {} s",
        pct(f.error_ppm),
        pct(f.slow_ppm),
        f.slow.as_millis(),
        pct(f.hang_ppm),
        f.hang.as_millis(),
        f.throttle_for.as_secs(),
        f.throttle_every.as_secs()
    )
}

/// What the gateway's log says at level ERROR and WARN.
struct LogLevels {
    errors: u64,
    warnings: u64,
    first_errors: Vec<String>,
}

/// Reads `log` line by line (it can be large after an hour).
fn log_levels(log: &Path) -> LogLevels {
    use std::io::BufRead as _;
    let mut levels = LogLevels {
        errors: 0,
        warnings: 0,
        first_errors: Vec::new(),
    };
    let Ok(file) = std::fs::File::open(log) else {
        return levels;
    };
    for line in std::io::BufReader::new(file).lines().map_while(Result::ok) {
        if line.contains(" ERROR ") {
            levels.errors += 1;
            if levels.first_errors.len() < 5 {
                levels.first_errors.push(line.chars().take(400).collect());
            }
        } else if line.contains(" WARN ") {
            levels.warnings += 1;
        }
    }
    levels
}
