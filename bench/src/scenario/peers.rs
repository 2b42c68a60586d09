//! `peers`: other notifiers on the same kind of burst, delivering to the
//! run's receiver: Prometheus Alertmanager and Apprise, each driven by its
//! script in bench/peers/ (see bench/peers/README.md). Sequence numbers
//! restart with every driver run, so each run has a receiver path of its
//! own, and with it its own duplicate count. Latency is hand-off (the time
//! in the driver's marker) → arrival; the rate is arrivals ÷ (last arrival
//! − first hand-off), the peers' ingest being out of the suite's sight.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, BufReader, Lines};
use tokio::process::{Child, ChildStdout};
use tokio::task::JoinHandle;

use super::Context;
use crate::latency::Latency;
use crate::load;

/// How long a driver may take to stop (it stops Alertmanager, which writes
/// its snapshots) before it and its children are killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the peers and their drivers are.
#[derive(Debug, Clone)]
pub struct PeerPaths {
    /// bench/peers: the driver scripts.
    pub scripts: PathBuf,
    /// Where bench/peers/setup.sh put the Apprise venv (`venv/`).
    pub dir: PathBuf,
    /// The Alertmanager binary (the Debian package's).
    pub alertmanager: PathBuf,
}

/// What the peers did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Peers {
    /// One per driver run.
    pub runs: Vec<PeerRun>,
    /// Peers skipped and why, and what each peer does differently.
    pub notes: Vec<String>,
    /// Driver runs that failed, and why.
    pub failures: Vec<String>,
}

/// One driver run, as the driver and the receiver saw it.
#[derive(Debug, Clone, Serialize)]
pub struct PeerRun {
    /// `alertmanager` or `apprise`.
    pub peer: String,
    /// The peer's version, as its driver reported it.
    pub version: String,
    /// The receiver path it delivered to.
    pub path: String,
    /// Alerts or messages asked for.
    pub count: u64,
    /// Handed to the peer without error.
    pub sent: u64,
    /// Refused at hand-off.
    pub errors: u64,
    /// The driver's hand-off time (Apprise: also delivery, it blocks).
    pub send_secs: f64,
    /// Distinct markers that arrived.
    pub delivered: u64,
    /// Markers that arrived again.
    pub duplicates: u64,
    /// Bodies without a marker.
    pub without_marker: u64,
    /// Whether all `sent` arrived before the drain timeout.
    pub complete: bool,
    /// `delivered` ÷ (last arrival − first hand-off).
    pub delivered_per_sec: f64,
    /// Hand-off → arrival.
    pub latency: Latency,
}

/// The JSON line each driver prints.
#[derive(Debug, Deserialize)]
struct Summary {
    version: String,
    sent: u64,
    errors: u64,
    send_seconds: f64,
}

/// Runs every peer whose pieces are installed; a missing one is a note,
/// a failed run is listed in `failures` and the other runs go on.
pub async fn peers(ctx: &Context, paths: &PeerPaths) -> Peers {
    let mut out = Peers::default();
    let am_script = paths.scripts.join("alertmanager.py");
    match (
        system_python(),
        paths.alertmanager.is_file(),
        am_script.is_file(),
    ) {
        (Some(python), true, true) => {
            for &n in &ctx.sizes.peer_alerts {
                let path = format!("/alertmanager/{n}");
                let work = ctx.work.join(format!("alertmanager-{n}"));
                let args: Vec<OsString> = vec![
                    am_script.clone().into(),
                    "--receiver".into(),
                    ctx.receiver.url(&path).into(),
                    "--count".into(),
                    n.to_string().into(),
                    // Ended early by SIGTERM once every alert arrived.
                    "--linger".into(),
                    ctx.sizes.drain_timeout_secs.to_string().into(),
                    "--binary".into(),
                    paths.alertmanager.clone().into(),
                    "--workdir".into(),
                    work.clone().into(),
                ];
                let run = run_peer(ctx, "alertmanager", &path, n, (&python, &args), true).await;
                record(
                    &mut out,
                    run,
                    "alertmanager",
                    n,
                    &work.join("alertmanager.log"),
                );
            }
        }
        (python, am, script) => out.notes.push(format!(
            "alertmanager: skipped ({}; run bench/peers/setup.sh)",
            missing(&[
                (python.is_some(), Path::new("python3")),
                (am, &paths.alertmanager),
                (script, &am_script),
            ])
        )),
    }

    let venv_python = paths.dir.join("venv/bin/python");
    let ap_script = paths.scripts.join("apprise_send.py");
    if venv_python.is_file() && ap_script.is_file() {
        let n = ctx.sizes.peer_messages;
        let path = "/apprise";
        let url = ctx.receiver.url(path);
        let url = format!("json://{}", url.trim_start_matches("http://"));
        let args: Vec<OsString> = vec![
            ap_script.into(),
            "--url".into(),
            url.into(),
            "--count".into(),
            n.to_string().into(),
        ];
        let run = run_peer(ctx, "apprise", path, n, (&venv_python, &args), false).await;
        record(&mut out, run, "apprise", n, Path::new(""));
    } else {
        out.notes.push(format!(
            "apprise: skipped ({}; run bench/peers/setup.sh, or pass --peers-dir)",
            missing(&[
                (venv_python.is_file(), &venv_python),
                (ap_script.is_file(), &ap_script),
            ])
        ));
    }
    out
}

/// "no A, no B" for the pieces not `present`.
fn missing(pieces: &[(bool, &Path)]) -> String {
    pieces
        .iter()
        .filter(|(present, _)| !present)
        .map(|(_, p)| format!("no {}", p.display()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Files the run, or its failure with the tail of `log` (when there is one).
fn record(out: &mut Peers, run: anyhow::Result<PeerRun>, peer: &str, n: u64, log: &Path) {
    match run {
        Ok(r) => {
            let note = differs(&r.peer, &r.version);
            if !out.notes.contains(&note) {
                out.notes.push(note);
            }
            out.runs.push(r);
        }
        Err(e) => {
            let tail = std::fs::read_to_string(log).unwrap_or_default();
            let tail: Vec<&str> = tail.lines().rev().take(5).collect();
            let mut failure = format!("{peer}, {n}: {e:#}");
            if !tail.is_empty() {
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                failure.push_str(&format!("; {}: {}", log.display(), tail.join(" / ")));
            }
            out.failures.push(failure);
        }
    }
}

/// What the peer does differently from Carillon, in one line (from
/// bench/peers/README.md), since its figures mean little without it.
fn differs(peer: &str, version: &str) -> String {
    match peer {
        "alertmanager" => format!(
            "alertmanager {version}: groups and deduplicates alerts (grouping is turned off here: one group and one webhook POST per alert) and keeps alerts and pending notifications in memory only, so an accepted alert not yet notified is lost if it dies; Carillon answers 202 only once the delivery is on disk"
        ),
        _ => format!(
            "apprise {version}: a library with no queue: each notify() blocks until its POST is answered (a new connection per message, one at a time) and nothing survives the caller; Carillon queues durably and delivers concurrently"
        ),
    }
}

/// Starts a driver delivering to `path` and reads its summary line; when
/// it `lingers` (Alertmanager's: its peer delivers after the hand-off),
/// waits until all it handed off arrived (or the drain timeout) and
/// SIGTERMs it, else waits for its exit; then measures.
async fn run_peer(
    ctx: &Context,
    peer: &str,
    path: &str,
    count: u64,
    (program, args): (&Path, &[OsString]),
    lingers: bool,
) -> anyhow::Result<PeerRun> {
    eprintln!("carillon-bench: peers: {peer}, {count}…");
    ctx.receiver.mark_peer(path);
    let timeout = Duration::from_secs_f64(ctx.sizes.drain_timeout_secs);
    let mut driver = Driver::spawn(program, args)?;
    let summary = match tokio::time::timeout(timeout, driver.summary()).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            let stderr = driver.stop(true).await.map(|(_, e)| e).unwrap_or_default();
            return Err(e.context(last_line(&stderr)));
        }
        Err(_) => {
            let _ = driver.stop(true).await;
            bail!("no summary from the driver within {timeout:?}");
        }
    };
    let complete = if lingers {
        ctx.wait_arrivals(&[path.to_owned()], summary.sent, || driver.check_running())
            .await?
    } else {
        // It delivered before printing its summary: nothing more comes.
        true
    };
    let (status, stderr) = driver.stop(lingers).await?;
    // Exit 1 means hand-off errors, which the summary counts.
    if !(status.success() || status.code() == Some(1) && summary.errors > 0) {
        bail!("the driver exited with {status}: {}", last_line(&stderr));
    }
    let got = ctx.receiver.report(path);
    let span = match (got.first_sent_unix_nanos, got.last_unix_nanos) {
        (Some(first), Some(last)) => crate::latency::ms(last.saturating_sub(first)) / 1e3,
        _ => 0.0,
    };
    Ok(PeerRun {
        peer: peer.to_owned(),
        version: summary.version,
        path: path.to_owned(),
        count,
        sent: summary.sent,
        errors: summary.errors,
        send_secs: summary.send_seconds,
        delivered: got.delivered,
        duplicates: got.duplicates,
        without_marker: got.without_marker,
        complete: complete && got.delivered >= summary.sent,
        delivered_per_sec: load::per_sec(got.delivered, span),
        latency: got.latency,
    })
}

fn last_line(text: &str) -> String {
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("(no output on stderr)")
        .to_owned()
}

/// `/usr/bin/python3` (what setup.sh uses too), else `python3` on `PATH`:
/// a version manager's shim there may run Python as a grandchild, which
/// [`Driver::stop`] reaches by signalling the whole process group.
fn system_python() -> Option<PathBuf> {
    let system = PathBuf::from("/usr/bin/python3");
    if system.is_file() {
        return Some(system);
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join("python3"))
        .find(|p| p.is_file())
}

/// A driver script in a process group of its own, so that Alertmanager
/// (its child) goes with it when the suite has to kill it.
struct Driver {
    child: Child,
    pid: rustix::process::Pid,
    stdout: Lines<BufReader<ChildStdout>>,
    stderr: JoinHandle<String>,
}

impl Driver {
    fn spawn(program: &Path, args: &[OsString]) -> anyhow::Result<Driver> {
        let mut child = tokio::process::Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {}", program.display()))?;
        let pid = child
            .id()
            .and_then(|id| rustix::process::Pid::from_raw(i32::try_from(id).ok()?))
            .ok_or_else(|| anyhow!("{} exited at once", program.display()))?;
        let stdout = child.stdout.take().context("no stdout pipe")?;
        let mut stderr = child.stderr.take().context("no stderr pipe")?;
        // Drained all along, so a chatty driver cannot block on a full pipe.
        let stderr = tokio::spawn(async move {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text).await;
            text
        });
        Ok(Driver {
            child,
            pid,
            stdout: BufReader::new(stdout).lines(),
            stderr,
        })
    }

    /// The first stdout line that parses as the summary.
    async fn summary(&mut self) -> anyhow::Result<Summary> {
        while let Some(line) = self.stdout.next_line().await? {
            if let Ok(s) = serde_json::from_str::<Summary>(&line) {
                return Ok(s);
            }
        }
        bail!("the driver exited without its summary line")
    }

    fn check_running(&mut self) -> anyhow::Result<()> {
        match self.child.try_wait()? {
            None => Ok(()),
            Some(status) => Err(anyhow!("the driver exited early ({status})")),
        }
    }

    /// With `signal`, SIGTERM to the driver's group (the driver ends its
    /// linger and waits for its peer, which stops on the same signal);
    /// then its exit status and stderr. The group is killed after
    /// [`STOP_TIMEOUT`].
    async fn stop(mut self, signal: bool) -> anyhow::Result<(ExitStatus, String)> {
        if signal && self.child.try_wait()?.is_none() {
            let _ = rustix::process::kill_process_group(self.pid, rustix::process::Signal::TERM);
        }
        let status = match tokio::time::timeout(STOP_TIMEOUT, self.child.wait()).await {
            Ok(status) => status?,
            Err(_) => {
                self.kill_group();
                bail!("the driver did not stop within {STOP_TIMEOUT:?} of SIGTERM");
            }
        };
        let stderr = std::mem::replace(&mut self.stderr, tokio::spawn(async { String::new() }));
        let stderr = tokio::time::timeout(Duration::from_secs(5), stderr)
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        Ok((status, stderr))
    }

    fn kill_group(&self) {
        let _ = rustix::process::kill_process_group(self.pid, rustix::process::Signal::KILL);
    }
}

impl Drop for Driver {
    /// An error or a panic mid-run must not leave an Alertmanager behind.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.kill_group();
        }
    }
}
