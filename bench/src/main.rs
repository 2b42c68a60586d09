//! `carillon-bench`: runs the benchmark suite against a `carillon` binary
//! and writes `report.md` and `report.json`. `bench/run` is the one
//! command that builds everything and calls this.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use carillon_bench::ceiling;
use carillon_bench::report::{self, Machine, Report, Results};
use carillon_bench::scenario::{self, Context, Sizes};
use clap::Parser;

/// The gateway's allocator, so the ceilings measured in this process (axum,
/// sled enqueue, raw reqwest, sandbox calls) compare like with like.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Carillon's benchmark suite: drives the real `carillon serve` over HTTP
/// and compares it with ceilings measured in the same run.
#[derive(Debug, Parser)]
#[command(name = "carillon-bench")]
struct Args {
    /// Scenarios to run, in this order: startup, steady, burst, failing,
    /// backlog, peers, soak (default: all but soak, which takes an hour).
    /// The ceilings run after them.
    #[arg(value_enum)]
    scenarios: Vec<Scenario>,
    /// Every scenario tiny (seconds in all): to try the suite, and for CI.
    #[arg(long)]
    smoke: bool,
    /// The gateway binary [default: target/release/carillon in the workspace].
    #[arg(long, value_name = "PATH")]
    carillon: Option<PathBuf>,
    /// Where report.md and report.json go [default: target/bench-report in
    /// the workspace].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Where the gateways' data directories go (a temporary directory
    /// inside it, removed at the end; DIR is created if it does not exist)
    /// [default: the system's temp dir].
    #[arg(long, value_name = "DIR")]
    work_dir: Option<PathBuf>,
    /// Load connections (requests in flight) [default: 64; smoke 8].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    connections: Option<u64>,
    /// `steady`: seconds of load [default: 60].
    #[arg(long, value_parser = positive_secs)]
    steady_secs: Option<f64>,
    /// `burst`: events [default: 100000].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    burst_events: Option<u64>,
    /// `failing`: seconds of load in each of its two runs [default: 30].
    #[arg(long, value_parser = positive_secs)]
    failing_secs: Option<f64>,
    /// `failing`: destinations, the last one failing [default: 10].
    #[arg(long, value_parser = clap::value_parser!(u64).range(2..=1000))]
    failing_destinations: Option<u64>,
    /// `backlog`: deliveries queued to the paused receiver [default: 1000000].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    backlog_deliveries: Option<u64>,
    /// Seconds each ceiling runs [default: 5].
    #[arg(long, value_parser = positive_secs)]
    ceiling_secs: Option<f64>,
    /// Longest wait for deliveries after a load [default: 1800].
    #[arg(long, value_parser = positive_secs)]
    drain_timeout_secs: Option<f64>,
    /// Deliveries at once per destination [default: the gateway's].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    destination_concurrency: Option<u32>,
    /// Skip the ceilings (the ceiling and ratio columns stay empty).
    #[arg(long)]
    no_ceilings: bool,
    /// What became of the peers' setup, for the report; `bench/run` sets it.
    #[arg(long, value_name = "TEXT")]
    peers_note: Option<String>,
    /// `peers`: where bench/peers/setup.sh put the Apprise venv
    /// [default: target/bench-peers in the workspace].
    #[arg(long, value_name = "DIR")]
    peers_dir: Option<PathBuf>,
    /// `peers`: alerts handed to Alertmanager; a comma-separated list runs
    /// it once per size [default: 10000].
    #[arg(long, value_name = "N[,N…]", value_delimiter = ',',
          value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    peer_alerts: Vec<u64>,
    /// `peers`: messages sent through Apprise, one at a time [default: 2000].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    peer_messages: Option<u64>,
    /// `soak`: seconds of load [default: 3600; smoke 4].
    #[arg(long, value_parser = positive_secs)]
    soak_secs: Option<f64>,
    /// `soak`: events a second [default: half the maximum measured first].
    #[arg(long, value_parser = positive_rate)]
    soak_rate: Option<f64>,
    /// `soak`: seconds of the closed-loop probe that measures the maximum
    /// [default: 10].
    #[arg(long, value_parser = positive_secs)]
    soak_probe_secs: Option<f64>,
    /// `soak`: seconds between plugin reloads [default: 180].
    #[arg(long, value_parser = positive_secs)]
    soak_reload_secs: Option<f64>,
    /// `soak`: seconds between samples [default: 60].
    #[arg(long, value_parser = positive_secs)]
    soak_sample_secs: Option<f64>,
    /// `soak`: the gateway's retention of delivered deliveries, unrouted
    /// events and idempotency keys, in seconds [default: 600].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=604_800))]
    soak_retention_secs: Option<u64>,
    /// `soak`: stop the load early when the gateway's data directory
    /// passes this many GiB (the disk is usually shared) [default: 10].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=16_384))]
    soak_disk_limit_gib: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
enum Scenario {
    Startup,
    Steady,
    Burst,
    Failing,
    Backlog,
    Peers,
    Soak,
}

/// Events a second: finite, positive, at most a million.
fn positive_rate(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    if v.is_finite() && v > 0.0 && v <= 1_000_000.0 {
        Ok(v)
    } else {
        Err(format!("`{s}` must be more than 0 and at most 1000000"))
    }
}

/// Seconds as a finite, positive number of at most a week (anything else
/// would make `Duration::from_secs_f64` panic or the run pointless).
fn positive_secs(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    if v.is_finite() && v > 0.0 && v <= 604_800.0 {
        Ok(v)
    } else {
        Err(format!(
            "`{s}` must be more than 0 and at most 604800 seconds"
        ))
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(args)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_owned()
}

fn sizes(args: &Args) -> Sizes {
    let mut s = if args.smoke {
        Sizes::smoke()
    } else {
        Sizes::full()
    };
    // The parsers bound every value, so these conversions cannot truncate.
    if let Some(n) = args.connections {
        s.connections = usize::try_from(n).unwrap_or(s.connections);
    }
    if let Some(n) = args.failing_destinations {
        s.failing_destinations = usize::try_from(n).unwrap_or(s.failing_destinations);
    }
    s.steady_secs = args.steady_secs.unwrap_or(s.steady_secs);
    s.burst_events = args.burst_events.unwrap_or(s.burst_events);
    s.failing_secs = args.failing_secs.unwrap_or(s.failing_secs);
    s.backlog_deliveries = args.backlog_deliveries.unwrap_or(s.backlog_deliveries);
    s.ceiling_secs = args.ceiling_secs.unwrap_or(s.ceiling_secs);
    s.drain_timeout_secs = args.drain_timeout_secs.unwrap_or(s.drain_timeout_secs);
    s.destination_concurrency = args.destination_concurrency.or(s.destination_concurrency);
    if !args.peer_alerts.is_empty() {
        // Each size once: a size names its receiver path.
        let mut seen = std::collections::HashSet::new();
        s.peer_alerts = args.peer_alerts.clone();
        s.peer_alerts.retain(|n| seen.insert(*n));
    }
    s.peer_messages = args.peer_messages.unwrap_or(s.peer_messages);
    s.soak_secs = args.soak_secs.unwrap_or(s.soak_secs);
    s.soak_rate = args.soak_rate.or(s.soak_rate);
    s.soak_probe_secs = args.soak_probe_secs.unwrap_or(s.soak_probe_secs);
    s.soak_reload_secs = args.soak_reload_secs.unwrap_or(s.soak_reload_secs);
    s.soak_sample_secs = args.soak_sample_secs.unwrap_or(s.soak_sample_secs);
    s.soak_retention_secs = args.soak_retention_secs.unwrap_or(s.soak_retention_secs);
    if let Some(gib) = args.soak_disk_limit_gib {
        s.soak_disk_limit_bytes = gib << 30;
    }
    s
}

/// Runs the suite; `Ok(false)` when a scenario failed (the report says why).
async fn run(args: Args) -> anyhow::Result<bool> {
    carillon::tls::install_crypto_provider();
    let root = workspace_root();
    let carillon = args
        .carillon
        .clone()
        .unwrap_or_else(|| root.join("target/release/carillon"));
    if !carillon.is_file() {
        bail!(
            "no carillon binary at {}: build it with `cargo build --release -p carillon`, or pass --carillon PATH",
            carillon.display()
        );
    }
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| root.join("target/bench-report"));
    let work_parent = args.work_dir.clone().unwrap_or_else(std::env::temp_dir);
    let work = work_directory(&work_parent)?;
    let sizes = sizes(&args);
    let mut machine = Machine::probe();
    let started_at = jiff::Timestamp::now();
    let ctx = Context::new(carillon.clone(), work.path().to_owned(), sizes.clone())?;

    let mut selected = args.scenarios.clone();
    if selected.is_empty() {
        selected = vec![
            Scenario::Startup,
            Scenario::Steady,
            Scenario::Burst,
            Scenario::Failing,
            Scenario::Backlog,
            Scenario::Peers,
        ];
    }
    selected.sort_unstable();
    selected.dedup();

    let mut notes: Vec<String> = args.peers_note.iter().cloned().collect();
    let peer_paths = scenario::PeerPaths {
        scripts: root.join("bench/peers"),
        dir: args
            .peers_dir
            .clone()
            .unwrap_or_else(|| root.join("target/bench-peers")),
        alertmanager: PathBuf::from("/usr/bin/prometheus-alertmanager"),
    };
    let mut results = Results::default();
    let mut ok = true;
    for s in selected {
        let name = format!("{s:?}").to_lowercase();
        eprintln!("carillon-bench: {name}…");
        let outcome = match s {
            Scenario::Startup => scenario::startup(&ctx)
                .await
                .map(|r| results.startup = Some(r)),
            Scenario::Steady => scenario::steady(&ctx)
                .await
                .map(|r| results.steady = Some(r)),
            Scenario::Burst => scenario::burst(&ctx).await.map(|r| results.burst = Some(r)),
            Scenario::Failing => scenario::failing(&ctx)
                .await
                .map(|r| results.failing = Some(r)),
            Scenario::Backlog => scenario::backlog(&ctx)
                .await
                .map(|r| results.backlog = Some(r)),
            // Peers are tools to install, and their runs take minutes.
            Scenario::Peers if args.smoke => {
                notes.push("peers: skipped (--smoke)".into());
                Ok(())
            }
            Scenario::Peers => {
                let p = scenario::peers(&ctx, &peer_paths).await;
                notes.extend(p.notes.iter().cloned());
                let failed = p.failures.join("; ");
                results.peers = Some(p);
                if failed.is_empty() {
                    Ok(())
                } else {
                    Err(anyhow::anyhow!(failed))
                }
            }
            Scenario::Soak => scenario::soak(&ctx, &out)
                .await
                .map(|r| results.soak = Some(r)),
        };
        if let Err(e) = outcome {
            eprintln!("carillon-bench: {name} failed: {e:#}");
            notes.push(format!("{name} failed: {e:#}"));
            ok = false;
        }
    }
    if !args.no_ceilings {
        eprintln!("carillon-bench: ceilings…");
        let c = ceiling::measure(&ctx).await;
        notes.extend(c.failures.iter().cloned());
        results.ceilings = Some(c);
    }

    // bench/run's note and the suite's may say the same (`--smoke`).
    let mut seen = std::collections::HashSet::new();
    notes.retain(|n| seen.insert(n.clone()));
    machine.load_average_end = report::load_average();
    let report = Report {
        started_at: started_at.round(jiff::Unit::Second)?.to_string(),
        finished_at: jiff::Timestamp::now()
            .round(jiff::Unit::Second)?
            .to_string(),
        command: std::env::args()
            .map(|a| shell_quote(&a))
            .collect::<Vec<_>>()
            .join(" "),
        invoked_as: std::env::var("CARILLON_BENCH_INVOKED_AS").ok(),
        carillon: carillon.display().to_string(),
        machine,
        sizes,
        notes,
        rows: report::rows(&results),
        results,
    };
    report::write(&out, &report)?;
    print_table(&report);
    eprintln!(
        "carillon-bench: report written to {}",
        out.join("report.md").display()
    );
    Ok(ok)
}

/// `arg` as a POSIX shell would need it, so the recorded command can be
/// pasted back.
fn shell_quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./=:,@%+".contains(c));
    if plain {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

#[allow(clippy::print_stdout)] // the table is the program's output
fn print_table(report: &Report) {
    println!("{}", report::table(&report.rows));
    for n in &report.notes {
        println!("note: {n}");
    }
}

/// A fresh temporary directory inside `parent`, creating `parent` first:
/// `--work-dir` commonly names a directory that is yet to exist.
fn work_directory(parent: &Path) -> anyhow::Result<tempfile::TempDir> {
    std::fs::create_dir_all(parent)
        .with_context(|| format!("cannot create the work directory {}", parent.display()))?;
    tempfile::Builder::new()
        .prefix("carillon-bench-")
        .tempdir_in(parent)
        .with_context(|| format!("cannot create a work directory in {}", parent.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_what_the_shell_needs() {
        assert_eq!(shell_quote("--steady-secs=20"), "--steady-secs=20");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn rejects_durations_that_would_panic() {
        assert!(positive_secs("1.5").is_ok());
        for bad in ["0", "-1", "NaN", "inf", "1e9", "x"] {
            assert!(positive_secs(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_work_dir_that_does_not_exist_yet_is_created() {
        let base = tempfile::tempdir().expect("tempdir");
        let parent = base.path().join("not/yet/there");
        let work = work_directory(&parent).expect("created");
        assert!(work.path().starts_with(&parent));
        assert!(work.path().is_dir());
    }
}
