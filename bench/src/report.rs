//! The report: one table of metric, value, ceiling and ratio (value ÷
//! ceiling), written as `report.md` and `report.json` and printed, with the
//! machine and the exact command, since raw figures mean little without
//! them.

mod soak;

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context as _;
use serde::Serialize;

use crate::ceiling::Ceilings;
use crate::ceiling::egress::IN_FLIGHT;
use crate::ceiling::storage::WRITERS;
use crate::load::LoadReport;
use crate::scenario::{Backlog, Failing, Flow, PeerRun, Peers, Sizes, Soak, Startup};

/// The machine the run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// Cores available to the suite.
    pub nproc: usize,
    /// The CPU's model name.
    pub cpu_model: String,
    /// Total memory.
    pub memory_bytes: u64,
    /// The kernel release.
    pub kernel: String,
    /// 1, 5 and 15-minute load averages when the run started.
    pub load_average_start: String,
    /// … and when it ended (other work on a shared machine shows here).
    pub load_average_end: String,
}

impl Machine {
    /// Reads it from `/proc`; unknown parts stay empty.
    pub fn probe() -> Machine {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        let cpuinfo = read("/proc/cpuinfo");
        let meminfo = read("/proc/meminfo");
        Machine {
            nproc: std::thread::available_parallelism().map_or(0, usize::from),
            cpu_model: field(&cpuinfo, "model name").unwrap_or_default(),
            memory_bytes: field(&meminfo, "MemTotal")
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
                .map_or(0, |kib| kib * 1024),
            kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
            load_average_start: load_average(),
            load_average_end: String::new(),
        }
    }
}

/// `/proc/loadavg`'s three averages.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The value of `key: value` in a `/proc` text file.
fn field(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == key).then(|| v.trim().to_owned())
    })
}

/// Every scenario's and ceiling's results, as measured.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Results {
    /// `startup`.
    pub startup: Option<Startup>,
    /// `steady`.
    pub steady: Option<Flow>,
    /// `burst`.
    pub burst: Option<Flow>,
    /// `failing`.
    pub failing: Option<Failing>,
    /// `backlog`.
    pub backlog: Option<Backlog>,
    /// `peers`.
    pub peers: Option<Peers>,
    /// `soak`.
    pub soak: Option<Soak>,
    /// The ceilings.
    pub ceilings: Option<Ceilings>,
}

/// A figure's unit, which decides how it is printed.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// Per second.
    PerSec,
    /// Milliseconds.
    Ms,
    /// Seconds.
    Secs,
    /// Bytes.
    Bytes,
    /// A count.
    Count,
}

/// A value to compare with.
#[derive(Debug, Clone, Serialize)]
pub struct Ceiling {
    /// Its value, in the row's unit.
    pub value: f64,
    /// What it is.
    pub of: String,
}

/// One line of the table.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// What is measured.
    pub metric: String,
    /// The figure.
    pub value: f64,
    /// Its unit.
    pub unit: Unit,
    /// What bounds it, when something does.
    pub ceiling: Option<Ceiling>,
    /// `value ÷ ceiling`.
    pub ratio: Option<f64>,
    /// Details (statuses, first error).
    pub note: Option<String>,
}

fn row(metric: impl Into<String>, value: f64, unit: Unit) -> Row {
    Row {
        metric: metric.into(),
        value,
        unit,
        ceiling: None,
        ratio: None,
        note: None,
    }
}

impl Row {
    fn against(mut self, value: Option<f64>, of: impl Into<String>) -> Row {
        if let Some(v) = value {
            self.ratio = (v > 0.0).then(|| self.value / v);
            self.ceiling = Some(Ceiling {
                value: v,
                of: of.into(),
            });
        }
        self
    }

    fn note(mut self, note: impl Into<String>) -> Row {
        let note = note.into();
        if !note.is_empty() {
            self.note = Some(note);
        }
        self
    }
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// When the run started (UTC).
    pub started_at: String,
    /// When it ended.
    pub finished_at: String,
    /// The suite's command line.
    pub command: String,
    /// The command the user typed, when a wrapper (`bench/run`) says so.
    pub invoked_as: Option<String>,
    /// The gateway binary measured.
    pub carillon: String,
    /// The machine.
    pub machine: Machine,
    /// Scenario sizes.
    pub sizes: Sizes,
    /// Peers' status, failed scenarios and ceilings.
    pub notes: Vec<String>,
    /// The table.
    pub rows: Vec<Row>,
    /// Everything measured, in full.
    pub results: Results,
}

/// The table's rows for `r`.
pub fn rows(r: &Results) -> Vec<Row> {
    let c = r.ceilings.clone().unwrap_or_default();
    let mut rows = Vec::new();
    if let Some(s) = &r.startup {
        rows.push(row(
            format!(
                "startup: cold, {} plugin destinations (spawn → ready)",
                s.destinations
            ),
            s.cold_ms,
            Unit::Ms,
        ));
        rows.push(
            row("startup: warm (plugin cache filled)", s.warm_ms, Unit::Ms)
                .against(Some(s.cold_ms), "cold start"),
        );
        rows.push(row(
            "startup: gateway RSS once ready (warm)",
            s.warm_usage.rss_bytes as f64,
            Unit::Bytes,
        ));
    }
    for (name, flow) in [("steady", &r.steady), ("burst", &r.burst)] {
        if let Some(f) = flow {
            flow_rows(&mut rows, name, f, &c);
        }
    }
    // Next to Carillon's burst, which they are compared with.
    for p in r.peers.iter().flat_map(|p| &p.runs) {
        peer_rows(&mut rows, p, r.burst.as_ref());
    }
    if let Some(f) = &r.failing {
        failing_rows(&mut rows, f);
    }
    if let Some(b) = &r.backlog {
        backlog_rows(&mut rows, b, &c);
    }
    if let Some(s) = &r.soak {
        soak::rows(&mut rows, s);
    }
    rows
}

fn ingest_rows(rows: &mut Vec<Row>, name: &str, load: &LoadReport, c: &Ceilings) {
    let a = c.ingest.as_ref();
    rows.push(
        row(
            format!("{name}: events accepted (202)"),
            load.accepted as f64,
            Unit::Count,
        )
        .note(format!(
            "of {} sent over {} connections in {}",
            thousands(load.sent as f64),
            load.connections,
            show(load.elapsed_secs, Unit::Secs)
        )),
    );
    rows.push(
        row(
            format!("{name}: ingest (202/s)"),
            load.accepted_per_sec,
            Unit::PerSec,
        )
        .against(a.map(|a| a.accepted_per_sec), "(a) parse + 202, same load"),
    );
    rows.push(
        row(
            format!("{name}: ingest (202/s) vs durable writes"),
            load.accepted_per_sec,
            Unit::PerSec,
        )
        .against(
            c.storage.as_ref().map(|s| s.outbox_enqueue.per_sec),
            format!("(b) outbox enqueue, {WRITERS} writers"),
        ),
    );
    let ack = &load.ack;
    let aa = a.map(|a| a.ack);
    rows.push(
        row(format!("{name}: ack p50"), ack.p50_ms, Unit::Ms)
            .against(aa.map(|l| l.p50_ms), "(a) p50"),
    );
    rows.push(
        row(format!("{name}: ack p99"), ack.p99_ms, Unit::Ms)
            .against(aa.map(|l| l.p99_ms), "(a) p99"),
    );
    rows.push(
        row(format!("{name}: ack max"), ack.max_ms, Unit::Ms)
            .against(aa.map(|l| l.max_ms), "(a) max"),
    );
    rows.push(row(
        format!("{name}: 503 backpressure"),
        load.backpressure as f64,
        Unit::Count,
    ));
    let failures = load.other_statuses.values().sum::<u64>() + load.transport_errors;
    let mut detail: Vec<String> = load
        .other_statuses
        .iter()
        .map(|(s, n)| format!("{s}: {n}"))
        .collect();
    if load.transport_errors > 0 {
        detail.push(format!(
            "no answer: {} ({})",
            load.transport_errors,
            load.first_error.as_deref().unwrap_or("")
        ));
    }
    rows.push(
        row(
            format!("{name}: other non-202 answers"),
            failures as f64,
            Unit::Count,
        )
        .note(detail.join("; ")),
    );
}

fn flow_rows(rows: &mut Vec<Row>, name: &str, f: &Flow, c: &Ceilings) {
    ingest_rows(rows, name, &f.load, c);
    rows.push(
        row(
            format!("{name}: delivered/s end to end"),
            f.delivered_per_sec,
            Unit::PerSec,
        )
        .against(
            c.egress.as_ref().map(|e| e.posts.per_sec),
            format!("(c) raw reqwest, {IN_FLIGHT} in flight"),
        ),
    );
    rows.push(
        row(
            format!("{name}: delivered/s vs plugin calls"),
            f.delivered_per_sec,
            Unit::PerSec,
        )
        .against(
            c.sandbox.as_ref().map(|s| s.per_sec),
            "(d) fresh-sandbox renders/s",
        ),
    );
    rows.push(row(
        format!("{name}: accepted→delivered p50"),
        f.end_to_end.p50_ms,
        Unit::Ms,
    ));
    rows.push(row(
        format!("{name}: accepted→delivered p99"),
        f.end_to_end.p99_ms,
        Unit::Ms,
    ));
    rows.push(
        row(
            format!("{name}: undelivered"),
            f.load.accepted.saturating_sub(f.delivered) as f64,
            Unit::Count,
        )
        .note(if f.complete { "" } else { "drain timed out" }),
    );
    rows.push(row(
        format!("{name}: duplicates"),
        f.duplicates as f64,
        Unit::Count,
    ));
    rows.push(row(
        format!("{name}: gateway peak RSS"),
        f.usage.peak_rss_bytes as f64,
        Unit::Bytes,
    ));
    rows.push(row(
        format!("{name}: gateway CPU per 1,000 events"),
        f.cpu_secs_per_1000,
        Unit::Secs,
    ));
}

/// A peer's figures, then Carillon's burst against them: the "ceiling"
/// column holds the peer's figure, so the ratio is Carillon ÷ peer.
fn peer_rows(rows: &mut Vec<Row>, p: &PeerRun, burst: Option<&Flow>) {
    let name = format!("{} {}", p.peer, thousands(p.count as f64));
    let mut handed = format!(
        "{} {}; {} handed off",
        p.peer,
        p.version,
        thousands(p.sent as f64)
    );
    if p.errors > 0 {
        handed.push_str(&format!(", {} refused", thousands(p.errors as f64)));
    }
    if p.without_marker > 0 {
        handed.push_str(&format!(
            ", {} bodies without a marker",
            thousands(p.without_marker as f64)
        ));
    }
    rows.push(
        row(
            format!("{name}: delivered"),
            p.delivered as f64,
            Unit::Count,
        )
        .note(handed),
    );
    rows.push(row(
        format!("{name}: delivered/s (first hand-off → last arrival)"),
        p.delivered_per_sec,
        Unit::PerSec,
    ));
    rows.push(row(
        format!("{name}: handed→delivered p50"),
        p.latency.p50_ms,
        Unit::Ms,
    ));
    rows.push(row(
        format!("{name}: handed→delivered p99"),
        p.latency.p99_ms,
        Unit::Ms,
    ));
    rows.push(
        row(
            format!("{name}: undelivered"),
            p.sent.saturating_sub(p.delivered) as f64,
            Unit::Count,
        )
        .note(if p.complete { "" } else { "drain timed out" }),
    );
    rows.push(row(
        format!("{name}: duplicates"),
        p.duplicates as f64,
        Unit::Count,
    ));
    if let Some(b) = burst {
        rows.push(
            row(
                format!("burst vs {name}: Carillon delivered/s"),
                b.delivered_per_sec,
                Unit::PerSec,
            )
            .against(Some(p.delivered_per_sec), format!("{name} delivered/s")),
        );
        rows.push(
            row(
                format!("burst vs {name}: Carillon accepted→delivered p99"),
                b.end_to_end.p99_ms,
                Unit::Ms,
            )
            .against(
                Some(p.latency.p99_ms),
                format!("{name} handed→delivered p99"),
            ),
        );
    }
}

fn failing_rows(rows: &mut Vec<Row>, f: &Failing) {
    let failing = f.with_failure.failing.clone().unwrap_or_default();
    rows.push(
        row(
            "failing: ingest (202/s)",
            f.with_failure.load.accepted_per_sec,
            Unit::PerSec,
        )
        .against(Some(f.baseline.load.accepted_per_sec), "none failing"),
    );
    for d in &f.with_failure.destinations {
        if d.name == failing {
            rows.push(row(
                format!("failing: {} (answers 500) delivered", d.name),
                d.delivered as f64,
                Unit::Count,
            ));
            continue;
        }
        let base = f.baseline.destinations.iter().find(|b| b.name == d.name);
        rows.push(
            row(
                format!("failing: {} delivered/s, {failing} failing", d.name),
                d.per_sec,
                Unit::PerSec,
            )
            .against(base.map(|b| b.per_sec), "same destination, none failing"),
        );
    }
    let undelivered: u64 = f
        .with_failure
        .destinations
        .iter()
        .filter(|d| d.name != failing)
        .map(|d| f.with_failure.load.accepted.saturating_sub(d.delivered))
        .sum();
    rows.push(
        row(
            "failing: undelivered to healthy destinations",
            undelivered as f64,
            Unit::Count,
        )
        .note(if f.with_failure.complete {
            ""
        } else {
            "drain timed out"
        }),
    );
}

fn backlog_rows(rows: &mut Vec<Row>, b: &Backlog, c: &Ceilings) {
    rows.push(row(
        "backlog: deliveries queued (receiver paused)",
        b.load.accepted as f64,
        Unit::Count,
    ));
    rows.push(
        row(
            "backlog: ingest while paused (202/s)",
            b.load.accepted_per_sec,
            Unit::PerSec,
        )
        .against(
            c.storage.as_ref().map(|s| s.outbox_enqueue.per_sec),
            format!("(b) outbox enqueue, {WRITERS} writers"),
        ),
    );
    rows.push(row(
        "backlog: 503 backpressure",
        b.load.backpressure as f64,
        Unit::Count,
    ));
    rows.push(row(
        "backlog: gateway RSS idle",
        b.idle.rss_bytes as f64,
        Unit::Bytes,
    ));
    rows.push(
        row(
            "backlog: gateway RSS, backlog queued",
            b.full.rss_bytes as f64,
            Unit::Bytes,
        )
        .against(Some(b.idle.rss_bytes as f64), "idle"),
    );
    rows.push(row(
        "backlog: gateway peak RSS (through the drain)",
        b.drained.peak_rss_bytes as f64,
        Unit::Bytes,
    ));
    rows.push(row(
        "backlog: data dir growth, backlog queued",
        b.disk_full_bytes.saturating_sub(b.disk_idle_bytes) as f64,
        Unit::Bytes,
    ));
    rows.push(row(
        "backlog: data dir per queued delivery",
        b.disk_bytes_per_delivery,
        Unit::Bytes,
    ));
    rows.push(row(
        "backlog: attempts refused while paused",
        b.refused_while_paused as f64,
        Unit::Count,
    ));
    rows.push(
        row(
            "backlog: drain rate after resume",
            b.drain_per_sec,
            Unit::PerSec,
        )
        .against(
            c.egress.as_ref().map(|e| e.posts.per_sec),
            format!("(c) raw reqwest, {IN_FLIGHT} in flight"),
        ),
    );
    rows.push(
        row(
            "backlog: drain rate vs the plugin alone",
            b.drain_per_sec,
            Unit::PerSec,
        )
        .against(
            c.deliver.as_ref().map(|d| d.per_sec),
            format!("(e) sandbox + webhook deliver, {IN_FLIGHT} in flight"),
        ),
    );
    rows.push(row("backlog: drain time", b.drain_secs, Unit::Secs));
    rows.push(
        row(
            "backlog: undelivered",
            b.load.accepted.saturating_sub(b.delivered) as f64,
            Unit::Count,
        )
        .note(if b.complete { "" } else { "drain timed out" }),
    );
    rows.push(row("backlog: duplicates", b.duplicates as f64, Unit::Count));
}

/// The ceilings' own figures, for the second table.
fn ceiling_lines(c: &Ceilings) -> Vec<(String, String)> {
    let mut lines = Vec::new();
    if let Some(a) = &c.ingest {
        lines.push((
            "(a) axum + serde_json::Value, answer 202".into(),
            format!(
                "{} ({} connections); ack p50 {} p99 {}",
                show(a.accepted_per_sec, Unit::PerSec),
                a.connections,
                show(a.ack.p50_ms, Unit::Ms),
                show(a.ack.p99_ms, Unit::Ms)
            ),
        ));
    }
    if let Some(s) = &c.storage {
        let o = &s.outbox_enqueue;
        lines.push((
            format!("(b) carillon_outbox enqueue, {WRITERS} writers (group commit)"),
            format!(
                "{}; p50 {} p99 {}; {:.1} writes per flush",
                show(o.per_sec, Unit::PerSec),
                show(o.p50_ms, Unit::Ms),
                show(o.p99_ms, Unit::Ms),
                o.mean_batch.unwrap_or(0.0)
            ),
        ));
        let f = &s.sled_flush_each;
        lines.push((
            "(b) bare sled insert + flush each".into(),
            format!(
                "{}; p50 {} p99 {}",
                show(f.per_sec, Unit::PerSec),
                show(f.p50_ms, Unit::Ms),
                show(f.p99_ms, Unit::Ms)
            ),
        ));
    }
    if let Some(e) = &c.egress {
        lines.push((
            format!("(c) raw reqwest POST to the receiver, {IN_FLIGHT} in flight"),
            format!(
                "{}; p50 {} p99 {}; {} bytes, {}",
                show(e.posts.per_sec, Unit::PerSec),
                show(e.posts.latency.p50_ms, Unit::Ms),
                show(e.posts.latency.p99_ms, Unit::Ms),
                e.body_bytes,
                e.body_from
            ),
        ));
    }
    if let Some(d) = &c.deliver {
        lines.push((
            format!("(e) fresh sandbox + webhook deliver to the receiver, {IN_FLIGHT} in flight"),
            format!(
                "{}; p50 {} p99 {}; {} failed",
                show(d.per_sec, Unit::PerSec),
                show(d.latency.p50_ms, Unit::Ms),
                show(d.latency.p99_ms, Unit::Ms),
                d.failed
            ),
        ));
    }
    if let Some(s) = &c.sandbox {
        lines.push((
            "(d) fresh sandbox + webhook render".into(),
            format!(
                "{} ({} callers); p50 {} p99 {}",
                show(s.per_sec, Unit::PerSec),
                s.callers,
                show(s.latency.p50_ms, Unit::Ms),
                show(s.latency.p99_ms, Unit::Ms)
            ),
        ));
    }
    lines
}

/// A value in its unit, for people.
pub fn show(v: f64, unit: Unit) -> String {
    match unit {
        Unit::PerSec => format!("{}/s", thousands(v)),
        Unit::Ms if v >= 100.0 => format!("{} ms", thousands(v)),
        Unit::Ms => format!("{v:.2} ms"),
        Unit::Secs if v < 1.0 => format!("{v:.3} s"),
        Unit::Secs => format!("{v:.1} s"),
        Unit::Bytes if v >= 1024.0 * 1024.0 * 1024.0 => {
            format!("{:.2} GiB", v / (1024.0 * 1024.0 * 1024.0))
        }
        Unit::Bytes if v >= 1024.0 * 1024.0 => format!("{:.1} MiB", v / (1024.0 * 1024.0)),
        Unit::Bytes if v >= 1024.0 => format!("{:.1} KiB", v / 1024.0),
        Unit::Bytes => format!("{v:.0} B"),
        Unit::Count => thousands(v),
    }
}

/// `v` rounded, with thousands separators.
fn thousands(v: f64) -> String {
    let digits = format!("{:.0}", v.abs());
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    if v < 0.0 && digits != "0" {
        out.insert(0, '-');
    }
    out
}

/// The Markdown table alone (what the binary prints).
pub fn table(rows: &[Row]) -> String {
    let mut md = String::from("| metric | value | ceiling | ratio |\n| --- | --- | --- | --- |\n");
    for r in rows {
        let value = match &r.note {
            Some(n) => format!("{} ({})", show(r.value, r.unit), n.replace('|', "\\|")),
            None => show(r.value, r.unit),
        };
        let ceiling = r.ceiling.as_ref().map_or("–".into(), |c| {
            format!("{} — {}", show(c.value, r.unit), c.of)
        });
        let ratio = r.ratio.map_or("–".into(), |x| format!("{x:.2}"));
        let _ = writeln!(md, "| {} | {value} | {ceiling} | {ratio} |", r.metric);
    }
    md
}

/// The whole report as Markdown.
pub fn markdown(r: &Report) -> String {
    let m = &r.machine;
    let mut md = String::from("# Carillon benchmark report\n\n");
    let _ = writeln!(md, "- run: {} → {} (UTC)", r.started_at, r.finished_at);
    let _ = writeln!(md, "- command: `{}`", r.command);
    if let Some(i) = &r.invoked_as {
        let _ = writeln!(md, "- invoked as: `{i}`");
    }
    let _ = writeln!(md, "- gateway: `{}`", r.carillon);
    let _ = writeln!(
        md,
        "- machine: {} × {}, {} memory, Linux {}; load average {} at the start, {} at the end",
        m.nproc,
        if m.cpu_model.is_empty() {
            "unknown CPU"
        } else {
            &m.cpu_model
        },
        show(m.memory_bytes as f64, Unit::Bytes),
        m.kernel,
        m.load_average_start,
        m.load_average_end
    );
    let _ = writeln!(
        md,
        "- sizes: {} connections; steady {} s; burst {} events; failing {} s × 2 with {} destinations; backlog {} deliveries; ceilings {} s each",
        r.sizes.connections,
        r.sizes.steady_secs,
        r.sizes.burst_events,
        r.sizes.failing_secs,
        r.sizes.failing_destinations,
        r.sizes.backlog_deliveries,
        r.sizes.ceiling_secs
    );
    let _ = writeln!(
        md,
        "- peers: Alertmanager {} alerts; Apprise {} messages",
        r.sizes
            .peer_alerts
            .iter()
            .map(|n| thousands(*n as f64))
            .collect::<Vec<_>>()
            .join(" and "),
        thousands(r.sizes.peer_messages as f64)
    );
    for n in &r.notes {
        let _ = writeln!(md, "- note: {n}");
    }
    md.push_str("\nratio = value ÷ ceiling: for rates the share of the ceiling reached (1.00 = as fast); for latencies, times and sizes how many times the ceiling (1.00 = as low). In the `burst vs` rows the ceiling column holds the peer's figure: the ratio is Carillon ÷ peer. See bench/README.md.\n\n");
    md.push_str(&table(&r.rows));
    let lines = r
        .results
        .ceilings
        .as_ref()
        .map(ceiling_lines)
        .unwrap_or_default();
    if !lines.is_empty() {
        md.push_str(
            "\n## Ceilings measured in this run\n\n| ceiling | measured |\n| --- | --- |\n",
        );
        for (what, figures) in lines {
            let _ = writeln!(md, "| {what} | {figures} |");
        }
    }
    if let Some(s) = &r.results.soak {
        md.push_str(&soak::section(s));
    }
    md
}

/// Writes `report.md` and `report.json` into `dir`, and the soak's chart
/// when it ran.
pub fn write(dir: &Path, report: &Report) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    if let Some(s) = &report.results.soak {
        let length = if s.secs >= 120.0 {
            format!("{:.0} min", s.secs / 60.0)
        } else {
            format!("{} s", s.secs)
        };
        let subtitle = format!(
            "{} UTC: {:.0} events/s for {length}, receiver failing at random, plugin reloaded every {} s; {} cores",
            report.started_at, s.rate, s.reload_secs, report.machine.nproc
        );
        let svg = dir.join(soak::CHART);
        std::fs::write(
            &svg,
            crate::scenario::soak_chart(&s.samples, &s.reloads, &subtitle).svg(),
        )
        .with_context(|| format!("cannot write {}", svg.display()))?;
    }
    let md = dir.join("report.md");
    std::fs::write(&md, markdown(report))
        .with_context(|| format!("cannot write {}", md.display()))?;
    let json = dir.join("report.json");
    let text = serde_json::to_string_pretty(report).context("cannot encode the report")?;
    std::fs::write(&json, text).with_context(|| format!("cannot write {}", json.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_figures_for_people() {
        assert_eq!(thousands(1_234_567.4), "1,234,567");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(0.2), "0");
        assert_eq!(show(12_345.6, Unit::PerSec), "12,346/s");
        assert_eq!(show(1.5, Unit::Ms), "1.50 ms");
        assert_eq!(show(3.0 * 1024.0 * 1024.0, Unit::Bytes), "3.0 MiB");
        assert_eq!(
            field("model name\t: EPYC\n", "model name").as_deref(),
            Some("EPYC")
        );
    }

    #[test]
    fn rows_compare_with_ceilings() {
        let r = row("x", 50.0, Unit::PerSec).against(Some(200.0), "c");
        assert_eq!(r.ratio, Some(0.25));
        let t = table(&[r, row("y", 1.0, Unit::Count).note("a|b")]);
        assert!(t.contains("| x | 50/s | 200/s — c | 0.25 |"), "{t}");
        assert!(t.contains("a\\|b"), "{t}");
    }
}
