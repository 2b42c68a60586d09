//! Runs the real `carillon serve` as a child process: writes its config
//! into a directory of its own, starts it, waits for `/readyz`, reads its
//! usage from `/proc`, and stops it with SIGTERM as an operator would.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use serde::Serialize;

use crate::load::Target;
use crate::usage::{self, Usage};

/// The ingest token written into every config.
pub const INGEST_TOKEN: &str = "ing-carillon-bench-0123456789";
/// The admin token written into every config.
pub const ADMIN_TOKEN: &str = "adm-carillon-bench-0123456789";

/// How long a start may take before the suite gives up (a cold start
/// compiles every built-in plugin; a debug build is slow at it).
const READY_TIMEOUT: Duration = Duration::from_secs(300);
/// How long SIGTERM may take before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);

/// One `[destinations.NAME]`.
#[derive(Debug, Clone, Serialize)]
pub struct Destination {
    /// The plugin (`webhook`, `dingtalk`, …).
    pub plugin: String,
    /// Deliveries at once (the gateway's default when `None`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
    /// The plugin's config.
    pub config: serde_json::Value,
}

/// What the suite varies between gateways.
#[derive(Debug, Clone, Default)]
pub struct Setup {
    /// Destinations by name; one route sends every event to all of them.
    pub destinations: BTreeMap<String, Destination>,
    /// `outbox.max_pending` (the gateway's default when `None`).
    pub max_pending: Option<u64>,
    /// How long delivered deliveries, unrouted events and idempotency keys
    /// are kept (the gateway's defaults, a day to a week, when `None`).
    /// The soak shortens it so that a run of an hour reaches the steady
    /// state where housekeeping purges as much as arrives.
    pub retention_secs: Option<u64>,
}

/// `carillon.toml` as the suite writes it.
#[derive(Serialize)]
struct File<'a> {
    server: Server,
    auth: Auth,
    egress: Egress,
    #[serde(skip_serializing_if = "Option::is_none")]
    outbox: Option<Outbox>,
    destinations: &'a BTreeMap<String, Destination>,
    routes: Vec<Route>,
}

#[derive(Serialize)]
struct Server {
    listen: String,
    data_dir: PathBuf,
    plugin_dir: PathBuf,
    watch_plugins: bool,
}

#[derive(Serialize)]
struct Auth {
    admin_token: &'static str,
    ingest: Vec<Ingest>,
}

#[derive(Serialize)]
struct Ingest {
    name: &'static str,
    token: &'static str,
}

#[derive(Serialize)]
struct Egress {
    allow_private: Vec<&'static str>,
}

#[derive(Serialize)]
struct Outbox {
    #[serde(skip_serializing_if = "Option::is_none")]
    max_pending: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    idempotency_window_secs: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    delivered_retention_secs: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    unrouted_retention_secs: Option<u64>,
}

#[derive(Serialize)]
struct Route {
    name: &'static str,
    destinations: Vec<String>,
}

/// A running gateway; killed if dropped without [`Gateway::stop`].
#[derive(Debug)]
pub struct Gateway {
    child: tokio::process::Child,
    pid: u32,
    base: String,
    dir: PathBuf,
    log: PathBuf,
    /// From spawning the process to the first `200` from `/readyz`.
    pub ready_after: Duration,
}

impl Gateway {
    /// Writes the config for `setup` into `dir` (created if needed) and
    /// starts `binary` on it; returns once `/readyz` answers 200. `dir`
    /// may hold a previous run's data (a warm start).
    pub async fn start(binary: &Path, dir: &Path, setup: &Setup) -> anyhow::Result<Gateway> {
        let binary = std::fs::canonicalize(binary).with_context(|| {
            format!(
                "no carillon binary at {} (build it with `cargo build --release -p carillon`, or pass --carillon)",
                binary.display()
            )
        })?;
        std::fs::create_dir_all(dir.join("plugins"))
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let port = free_port()?;
        let file = File {
            server: Server {
                listen: format!("127.0.0.1:{port}"),
                data_dir: dir.join("data"),
                plugin_dir: dir.join("plugins"),
                watch_plugins: false,
            },
            auth: Auth {
                admin_token: ADMIN_TOKEN,
                ingest: vec![Ingest {
                    name: "bench",
                    token: INGEST_TOKEN,
                }],
            },
            egress: Egress {
                allow_private: vec!["127.0.0.1/32"],
            },
            outbox: (setup.max_pending.is_some() || setup.retention_secs.is_some()).then_some(
                Outbox {
                    max_pending: setup.max_pending,
                    idempotency_window_secs: setup.retention_secs,
                    delivered_retention_secs: setup.retention_secs,
                    unrouted_retention_secs: setup.retention_secs,
                },
            ),
            destinations: &setup.destinations,
            routes: if setup.destinations.is_empty() {
                Vec::new()
            } else {
                vec![Route {
                    name: "everything",
                    destinations: setup.destinations.keys().cloned().collect(),
                }]
            },
        };
        let config = dir.join("carillon.toml");
        let text = toml::to_string(&file).context("cannot write the gateway config")?;
        std::fs::write(&config, text)
            .with_context(|| format!("cannot write {}", config.display()))?;
        let log = dir.join("gateway.log");
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .with_context(|| format!("cannot open {}", log.display()))?;
        let started = Instant::now();
        let child = tokio::process::Command::new(&binary)
            .arg("serve")
            .arg("--config")
            .arg(&config)
            .current_dir(dir)
            .env_remove("CARILLON_CONFIG")
            .env_remove("CARILLON_LISTEN")
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let pid = child
            .id()
            .ok_or_else(|| anyhow!("carillon exited at once"))?;
        let mut gateway = Gateway {
            child,
            pid,
            base: format!("http://127.0.0.1:{port}"),
            dir: dir.to_owned(),
            log,
            ready_after: Duration::ZERO,
        };
        gateway.wait_ready(started).await?;
        gateway.ready_after = started.elapsed();
        Ok(gateway)
    }

    /// Polls `/readyz` (the gateway's own readiness signal) until it
    /// answers 200, the process exits, or the timeout passes.
    async fn wait_ready(&mut self, started: Instant) -> anyhow::Result<()> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()?;
        let url = format!("{}/readyz", self.base);
        loop {
            if let Ok(r) = http.get(&url).send().await
                && r.status().is_success()
            {
                return Ok(());
            }
            self.check_alive()?;
            if started.elapsed() > READY_TIMEOUT {
                bail!(
                    "carillon was not ready after {READY_TIMEOUT:?}; its log:\n{}",
                    self.log_tail()
                );
            }
            // The poll interval bounds the start-up figure's resolution.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Where events go.
    pub fn ingest(&self) -> Target {
        Target {
            url: format!("{}/v1/events", self.base),
            token: INGEST_TOKEN.to_owned(),
        }
    }

    /// `http://127.0.0.1:PORT` followed by `path`: the admin API and
    /// `/metrics`, with [`ADMIN_TOKEN`].
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The process id, for reading `/proc`.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The gateway's directory (config, `data/`, log).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Its memory and CPU now.
    pub fn usage(&self) -> anyhow::Result<Usage> {
        usage::read(self.pid)
    }

    /// An error with the log's tail if the process has exited.
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        match self.child.try_wait()? {
            None => Ok(()),
            Some(status) => Err(anyhow!(
                "carillon exited ({status}); its log:\n{}",
                self.log_tail()
            )),
        }
    }

    /// SIGTERM, then waits for a graceful exit (SIGKILL after a minute).
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let pid = rustix::process::Pid::from_raw(i32::try_from(self.pid)?)
            .ok_or_else(|| anyhow!("invalid pid {}", self.pid))?;
        if self.child.try_wait()?.is_none() {
            rustix::process::kill_process(pid, rustix::process::Signal::TERM)
                .context("cannot send SIGTERM to carillon")?;
        }
        let Ok(status) = tokio::time::timeout(STOP_TIMEOUT, self.child.wait()).await else {
            self.child.kill().await?;
            bail!("carillon did not stop within {STOP_TIMEOUT:?} of SIGTERM");
        };
        let status = status?;
        if !status.success() {
            bail!(
                "carillon exited with {status} after SIGTERM; its log:\n{}",
                self.log_tail()
            );
        }
        Ok(())
    }

    /// The last lines of the gateway's log.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

/// A port that was free a moment ago (the gateway binds it right after).
fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("no free port on 127.0.0.1")?;
    Ok(l.local_addr()?.port())
}

/// Bytes `dir` occupies on disk (allocated blocks, as `du` counts them).
pub fn disk_usage(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt as _;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => disk_usage(&e.path()),
            Ok(m) => m.blocks() * 512,
            Err(_) => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_usage_counts_nested_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("a")).unwrap();
        std::fs::write(dir.path().join("a/f"), vec![1u8; 10_000]).unwrap();
        assert!(disk_usage(dir.path()) >= 10_000);
        assert_eq!(disk_usage(&dir.path().join("missing")), 0);
    }
}
