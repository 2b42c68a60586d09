//! The soak's part of the report: a few rows in the main table, and a
//! section of its own with the flatness verdict, one line per sample and
//! the chart (`soak.svg`, next to `report.md`).

use std::fmt::Write as _;

use super::{Row, Unit, row, show};
use crate::scenario::{Sample, Soak};

/// The chart's file name, next to `report.md`.
pub const CHART: &str = "soak.svg";

/// The table's soak rows.
pub fn rows(rows: &mut Vec<Row>, s: &Soak) {
    let base = s.samples.first();
    let last = s.samples.last();
    rows.push(
        row("soak: offered load (events/s)", s.rate, Unit::PerSec)
            .against(
                s.probe.as_ref().map(|p| p.max_per_sec),
                "maximum measured first",
            )
            .note(&s.rate_source),
    );
    rows.push(row(
        "soak: accepted (202)",
        s.load.accepted as f64,
        Unit::Count,
    ));
    rows.push(
        row(
            "soak: undelivered at the end",
            s.drained.undelivered as f64,
            Unit::Count,
        )
        .note(format!(
            "{} still queued or dead, {} unaccounted{}",
            s.drained.sample.backlog + s.drained.sample.dead_letters,
            s.drained.unaccounted,
            if s.drained.complete {
                ""
            } else {
                "; drain limit reached"
            }
        )),
    );
    rows.push(row("soak: duplicates", s.duplicates as f64, Unit::Count));
    rows.push(row(
        "soak: dead letters at the end",
        s.drained.sample.dead_letters as f64,
        Unit::Count,
    ));
    rows.push(row(
        "soak: accepted→delivered p99 (whole run)",
        s.end_to_end.p99_ms,
        Unit::Ms,
    ));
    let ok = s.reloads.iter().filter(|r| r.ok).count();
    rows.push(
        row("soak: plugin reloads that took", ok as f64, Unit::Count)
            .note(format!("of {}", s.reloads.len())),
    );
    if let (Some(b), Some(l)) = (base, last) {
        rows.push(
            row(
                "soak: gateway RSS at the end of the load",
                l.rss_bytes as f64,
                Unit::Bytes,
            )
            .against(Some(b.rss_bytes as f64), "before the load"),
        );
        rows.push(
            row(
                "soak: open fds at the end of the load",
                l.fds as f64,
                Unit::Count,
            )
            .against(Some(b.fds as f64), "before the load"),
        );
        rows.push(
            row(
                "soak: data dir at the end of the load",
                l.data_dir_bytes as f64,
                Unit::Bytes,
            )
            .against(Some(b.data_dir_bytes as f64), "before the load"),
        );
    }
    rows.push(
        row(
            "soak: flat at the end",
            f64::from(u8::from(s.verdict.flat)),
            Unit::Count,
        )
        .note(verdict_note(s)),
    );
}

/// Which series were not flat, or why there is no verdict.
fn verdict_note(s: &Soak) -> String {
    if let Some(n) = &s.verdict.note {
        return n.clone();
    }
    let rising: Vec<&str> = s
        .verdict
        .series
        .iter()
        .filter(|v| !v.flat)
        .map(|v| v.series.as_str())
        .collect();
    if rising.is_empty() {
        "1 = yes: every series within its tolerance".into()
    } else {
        format!("0 = no: {}", rising.join(", "))
    }
}

/// The section of `report.md`.
pub fn section(s: &Soak) -> String {
    let mut md = String::from("\n## Soak\n\n");
    let _ = writeln!(
        md,
        "{} s at {:.0} events/s ({}); {} connections; plugin reload every {} s; a sample every {} s; retention {} s; destination concurrency {}.",
        s.secs,
        s.rate,
        s.rate_source,
        s.load.connections,
        s.reload_secs,
        s.sample_secs,
        s.retention_secs,
        s.concurrency
    );
    if let Some(why) = &s.stopped_early {
        let _ = writeln!(md, "\n**Stopped early**: {why}.");
    }
    let f = &s.fault_counts;
    let _ = writeln!(
        md,
        "\nReceiver faults: {}. It answered {} × 500, {} late, held {} past the timeout, {} × 429 in {} windows.",
        s.faults, f.errors, f.slow, f.hung, f.throttled, f.throttle_windows
    );
    let ok = s.reloads.iter().filter(|r| r.ok).count();
    let slowest = s.reloads.iter().map(|r| r.took_ms).fold(0.0_f64, f64::max);
    let _ = writeln!(
        md,
        "\nPlugin reloads: {ok} of {} took (slowest {}).{}",
        s.reloads.len(),
        show(slowest, Unit::Ms),
        s.reloads
            .iter()
            .find_map(|r| r.error.as_ref().map(|e| format!(" First failure: {e}.")))
            .unwrap_or_default()
    );
    let d = &s.drained;
    let _ = writeln!(
        md,
        "\nAfter the load: {} accepted, {} delivered, {} duplicates; {} undelivered after {:.0} s of drain ({} still queued, {} dead letters, {} unaccounted); RSS {}, {} fds, data dir {}. Gateway log: {} ERROR and {} WARN lines.",
        s.load.accepted,
        s.delivered,
        s.duplicates,
        d.undelivered,
        d.drain_secs,
        d.sample.backlog,
        d.sample.dead_letters,
        d.unaccounted,
        show(d.sample.rss_bytes as f64, Unit::Bytes),
        d.sample.fds,
        show(d.sample.data_dir_bytes as f64, Unit::Bytes),
        s.log_errors,
        s.log_warnings
    );
    for line in &s.log_error_lines {
        let _ = writeln!(md, "\n    {line}");
    }
    if !s.missed_samples.is_empty() {
        let _ = writeln!(md, "\nMissed samples: {}.", s.missed_samples.join("; "));
    }
    md.push_str(&verdict_table(s));
    let _ = writeln!(md, "\n![soak chart]({CHART})\n");
    md.push_str(&samples_table(&s.samples));
    md
}

/// The verdict, one line per series.
pub fn verdict_table(s: &Soak) -> String {
    let mut md = format!(
        "\n**Flat at the end: {}** (last quarter's mean against the second quarter's; tolerance = share + slack)\n",
        if s.verdict.flat { "yes" } else { "no" }
    );
    if let Some(n) = &s.verdict.note {
        let _ = writeln!(md, "\n{n}");
        return md;
    }
    md.push_str("\n| series | 2nd quarter | last quarter | change | tolerance | flat |\n| --- | --- | --- | --- | --- | --- |\n");
    for v in &s.verdict.series {
        let unit = match v.series.as_str() {
            "rss_bytes" | "data_dir_bytes" => Unit::Bytes,
            "p99_ms" => Unit::Ms,
            "delivered_per_sec" => Unit::PerSec,
            _ => Unit::Count,
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {:+.1} % | {:.0} % + {} | {} |",
            v.series,
            show(v.second_quarter_mean, unit),
            show(v.last_quarter_mean, unit),
            v.change * 100.0,
            v.tolerance * 100.0,
            show(v.slack, unit),
            if v.flat { "yes" } else { "**no**" }
        );
    }
    md
}

/// One line per sample.
pub fn samples_table(samples: &[Sample]) -> String {
    let mut md = String::from(
        "| min | RSS | fds | maps | data dir | outbox | CPU | accepted/s | delivered/s | p50 | p99 | backlog | dead | dup | reloads |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n",
    );
    for s in samples {
        let latency = |v: f64| {
            if s.latency.count > 0 {
                show(v, Unit::Ms)
            } else {
                "–".into()
            }
        };
        let _ = writeln!(
            md,
            "| {:.1} | {} | {} | {} | {} | {} | {:.0} % | {:.0} | {:.0} | {} | {} | {} | {} | {} | {} |",
            s.at_secs / 60.0,
            show(s.rss_bytes as f64, Unit::Bytes),
            s.fds,
            s.maps,
            show(s.data_dir_bytes as f64, Unit::Bytes),
            show(s.outbox_bytes as f64, Unit::Bytes),
            s.cpu_percent,
            s.accepted_per_sec,
            s.delivered_per_sec,
            latency(s.latency.p50_ms),
            latency(s.latency.p99_ms),
            s.backlog,
            s.dead_letters,
            s.duplicates,
            s.reloads
        );
    }
    md
}
