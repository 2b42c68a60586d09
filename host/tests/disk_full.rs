//! The `carillon` binary on a full disk: its outbox directory
//! (`<data_dir>/outbox`) is a small tmpfs, filled by a file. Ingest answers 503 `storage_unavailable` with
//! `Retry-After` and acknowledges nothing it did not store; once the file
//! is gone it accepts again by itself; every event it acknowledged is
//! there after a restart.
//!
//! Mounting a tmpfs needs root (or `CAP_SYS_ADMIN`): where that is not
//! permitted the tests say so on stderr and pass without running.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const ADMIN: &str = "adm-disk-full-test-token";
const INGEST: &str = "ing-disk-full-test-token";

/// A tmpfs mounted at a directory; unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `mib` MiB at `dir`, or says why not and returns
    /// `None`.
    fn mount(dir: &Path, mib: u32) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).expect("mount point");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m,mode=0700")])
            .arg("tmpfs")
            .arg(dir)
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs(dir.to_owned())),
            Ok(o) => {
                eprintln!(
                    "SKIPPED: cannot mount a tmpfs (needs root or CAP_SYS_ADMIN): {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("SKIPPED: cannot run mount: {e}");
                None
            }
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// The gateway; killed on drop.
struct Gateway {
    child: Child,
    base: String,
    log: PathBuf,
}

impl Gateway {
    fn start(dir: &Path, port: u16) -> Gateway {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let log = dir.join(format!("gateway-{stamp}.log"));
        let file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_carillon"))
            .args(["serve", "--config", "carillon.toml"])
            .current_dir(dir)
            .env("RUST_LOG", "info")
            .env_remove("CARILLON_CONFIG")
            .env_remove("CARILLON_LISTEN")
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("spawn carillon");
        let gateway = Gateway {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
        };
        gateway.wait(|g| g.get("/readyz").0 == 200, "ready");
        gateway
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait(&self, mut f: impl FnMut(&Gateway) -> bool, what: &str) {
        // The first start compiles the built-in plugins: slow on a busy
        // machine.
        let deadline = Instant::now() + Duration::from_secs(300);
        while !f(self) {
            assert!(
                Instant::now() < deadline,
                "never {what}; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    fn get(&self, path: &str) -> (u16, Value) {
        let r = runtime().block_on(async {
            let r = reqwest::Client::new()
                .get(format!("{}{path}", self.base))
                .bearer_auth(ADMIN)
                .send()
                .await?;
            let status = r.status().as_u16();
            let bytes = r.bytes().await?;
            Ok::<_, reqwest::Error>((status, serde_json::from_slice(&bytes).unwrap_or_default()))
        });
        r.unwrap_or((0, Value::Null))
    }

    /// Posts one event with a `kib`-KiB message: status, `Retry-After`,
    /// body.
    fn post(&self, n: usize, kib: usize) -> (u16, Option<String>, Value) {
        let event = json!({
            "type": "disk.test",
            "source": "disk-full",
            "title": format!("event {n}"),
            "message": "x".repeat(kib * 1024),
        });
        runtime().block_on(async {
            let r = reqwest::Client::new()
                .post(format!("{}/v1/events", self.base))
                .bearer_auth(INGEST)
                .header("content-type", "application/json")
                .body(event.to_string())
                .send()
                .await
                .expect("post");
            let status = r.status().as_u16();
            let retry_after = r
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let bytes = r.bytes().await.expect("body");
            (
                status,
                retry_after,
                serde_json::from_slice(&bytes).unwrap_or_default(),
            )
        })
    }

    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.alive() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn runtime() -> tokio::runtime::Runtime {
    carillon::tls::install_crypto_provider();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// The embedded defaults' shape (no routes: every event is unrouted), with
/// fixed tokens and the given free-space reserve.
fn write_config(dir: &Path, port: u16, min_free_mib: u32) {
    let config = format!(
        r#"
[server]
listen = "127.0.0.1:{port}"
data_dir = "./data"
[auth]
admin_token = "{ADMIN}"
[[auth.ingest]]
name = "app"
token = "{INGEST}"
[outbox]
min_free_mib = {min_free_mib}
"#
    );
    std::fs::write(dir.join("carillon.toml"), config).expect("config");
}

/// Fills the file system of `dir` with one file, then gives back `leave`
/// bytes of it (0: stays full). Returns the file.
fn fill(dir: &Path, leave: u64) -> PathBuf {
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).expect("filler");
    let chunk = vec![0xa5u8; 64 * 1024];
    let mut written = 0u64;
    loop {
        match f.write(&chunk) {
            Ok(0) => break,
            Ok(n) => written += n as u64,
            Err(e) if e.raw_os_error() == Some(28) => break, // ENOSPC
            Err(e) => panic!("filling {}: {e}", path.display()),
        }
    }
    f.set_len(written.saturating_sub(leave)).expect("truncate");
    path
}

/// Posts until a refusal; returns the ids acknowledged with 202 and the
/// refusal.
fn post_until_refused(g: &Gateway, kib: usize) -> (Vec<String>, (u16, Option<String>, Value)) {
    let mut acked = Vec::new();
    for n in 0..2_000 {
        let answer = g.post(n, kib);
        if answer.0 == 202 {
            acked.push(answer.2["id"].as_str().expect("id").to_owned());
        } else {
            return (acked, answer);
        }
    }
    panic!("never refused; log:\n{}", g.log());
}

fn assert_storage_unavailable(answer: &(u16, Option<String>, Value), log: &str) {
    let (status, retry_after, body) = answer;
    assert_eq!(*status, 503, "{body}\n{log}");
    assert_eq!(body["error"]["code"], "storage_unavailable", "{body}");
    let secs: u64 = retry_after
        .as_deref()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("Retry-After missing or not seconds: {retry_after:?}"));
    assert!(secs >= 1);
}

/// Every acknowledged event is stored: visible after a restart.
fn assert_all_stored(dir: &Path, port: u16, acked: &[String]) {
    let g = Gateway::start(dir, port);
    for id in acked {
        let (status, body) = g.get(&format!("/v1/events/{id}"));
        assert_eq!(status, 200, "acknowledged {id} is gone: {body}");
    }
    g.stop();
}

/// With the default kind of setting (a free-space reserve), a full disk
/// refuses events with 503 and `Retry-After`, keeps serving, and accepts
/// again by itself once space returns.
#[test]
fn a_full_disk_answers_503_and_recovers_by_itself_when_space_returns() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(_mount) = Tmpfs::mount(&dir.path().join("data/outbox"), 24) else {
        return;
    };
    let port = free_port();
    write_config(dir.path(), port, 4);
    let mut g = Gateway::start(dir.path(), port);
    let filler = fill(&dir.path().join("data/outbox"), 8 << 20);

    let (acked, refused) = post_until_refused(&g, 64);
    assert_storage_unavailable(&refused, &g.log());
    assert!(!acked.is_empty(), "room above the reserve was used first");
    assert!(g.alive(), "still running");
    assert_eq!(g.get("/healthz").0, 200);
    assert_eq!(
        g.post(9_999, 64).0,
        503,
        "still refused while the disk is full"
    );

    // Space returns: accepted again without a restart.
    std::fs::remove_file(&filler).expect("remove filler");
    let mut again = Vec::new();
    g.wait(
        |g| {
            let a = g.post(10_000, 64);
            if a.0 == 202 {
                again.push(a.2["id"].as_str().unwrap_or_default().to_owned());
                true
            } else {
                false
            }
        },
        "accepted again",
    );
    assert_eq!(g.get("/readyz").0, 200);
    g.stop();
    let acked: Vec<String> = acked.into_iter().chain(again).collect();
    assert_all_stored(dir.path(), port, &acked);
}

/// Without a reserve sled itself meets the full disk: the write or the
/// flush fails, and sled 0.34 refuses every write after its first failed
/// one until the database is reopened. The gateway answers 503
/// `storage_unavailable`, never a 202 for what is not on disk, keeps
/// running with `/readyz` false, and after a restart with room again has
/// every event it acknowledged.
#[test]
fn without_a_reserve_a_failed_write_is_never_acknowledged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(_mount) = Tmpfs::mount(&dir.path().join("data/outbox"), 24) else {
        return;
    };
    let port = free_port();
    write_config(dir.path(), port, 0);
    let mut g = Gateway::start(dir.path(), port);
    let filler = fill(&dir.path().join("data/outbox"), 4 << 20);

    let (acked, refused) = post_until_refused(&g, 64);
    assert_storage_unavailable(&refused, &g.log());
    assert!(g.alive(), "still running");
    assert_eq!(g.get("/healthz").0, 200);
    g.wait(|g| g.get("/readyz").0 == 503, "not ready");
    std::fs::remove_file(&filler).expect("remove filler");
    g.stop();
    assert_all_stored(dir.path(), port, &acked);
}
