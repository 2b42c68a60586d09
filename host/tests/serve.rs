//! The `carillon` binary as users run it: the README's quickstart as
//! written (with free ports), the embedded defaults, and `kill -9` in the
//! middle of deliveries losing nothing that was acknowledged.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const SECRET: &str = "whsec_cXVpY2tzdGFydC1zZWNyZXQtZm9yLWxvY2FsLXVzZQ==";

/// A child process whose stdout and stderr lines arrive on channels; killed
/// on drop.
struct Proc {
    child: Child,
    stdout: mpsc::Receiver<String>,
    stderr: mpsc::Receiver<String>,
    seen_out: Vec<String>,
    seen_err: Vec<String>,
}

impl Proc {
    fn spawn(args: &[&str], cwd: &Path) -> Proc {
        let mut child = Command::new(env!("CARGO_BIN_EXE_carillon"))
            .args(args)
            .current_dir(cwd)
            .env("RUST_LOG", "info")
            .env_remove("CARILLON_CONFIG")
            .env_remove("CARILLON_LISTEN")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn carillon");
        let lines = |pipe: Box<dyn std::io::Read + Send>| {
            let (tx, rx) = mpsc::channel();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
            rx
        };
        let stdout = lines(Box::new(child.stdout.take().expect("stdout")));
        let stderr = lines(Box::new(child.stderr.take().expect("stderr")));
        Proc {
            child,
            stdout,
            stderr,
            seen_out: Vec::new(),
            seen_err: Vec::new(),
        }
    }

    fn drain(&mut self) {
        self.seen_out.extend(self.stdout.try_iter());
        self.seen_err.extend(self.stderr.try_iter());
    }

    /// Waits until a stdout or stderr line satisfies `f`; returns it.
    fn wait_line(&mut self, what: &str, f: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            self.drain();
            if let Some(line) = self.seen_out.iter().chain(&self.seen_err).find(|l| f(l)) {
                return line.clone();
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                self.drain();
                panic!(
                    "carillon exited ({status}) before {what}:\n{}\n{}",
                    self.seen_out.join("\n"),
                    self.seen_err.join("\n")
                );
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}:\n{}\n{}",
                self.seen_out.join("\n"),
                self.seen_err.join("\n")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn output(&mut self) -> String {
        self.drain();
        format!("{}\n{}", self.seen_out.join("\n"), self.seen_err.join("\n"))
    }

    fn kill9(&mut self) {
        let _ = self.child.kill(); // SIGKILL on Unix
        let _ = self.child.wait();
    }

    fn terminate(&mut self) -> std::process::ExitStatus {
        #[cfg(unix)]
        {
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
        }
        self.child.wait().expect("wait")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// The value after `label` in the token banner.
fn token(line: &str, label: &str) -> String {
    line.split(label)
        .nth(1)
        .unwrap_or_default()
        .trim()
        .to_owned()
}

fn wait_ready(base: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        if let Ok(r) = blocking_get(&format!("{base}/readyz"), None)
            && r.0 == 200
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{base} never became ready");
}

fn runtime() -> tokio::runtime::Runtime {
    carillon::tls::install_crypto_provider();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn blocking_get(url: &str, token: Option<&str>) -> Result<(u16, Value), reqwest::Error> {
    runtime().block_on(async {
        let mut req = reqwest::Client::new().get(url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await?;
        let status = r.status().as_u16();
        let bytes = r.bytes().await?;
        Ok((
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        ))
    })
}

fn blocking_post(url: &str, token: &str, body: &Value) -> (u16, Value) {
    blocking_send("POST", url, token, body)
}

fn blocking_send(method: &str, url: &str, token: &str, body: &Value) -> (u16, Value) {
    runtime().block_on(async {
        let r = reqwest::Client::new()
            .request(method.parse().expect("method"), url)
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .expect("post");
        let status = r.status().as_u16();
        let bytes = r.bytes().await.expect("body");
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    })
}

/// README "Quickstart", step by step, with the example config as shipped
/// except for the two ports (free ones, so the test cannot collide).
#[test]
fn the_quickstart_works_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let (api, hook) = (free_port(), free_port());
    let example = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/quickstart.toml"),
    )
    .unwrap();
    assert!(example.contains("127.0.0.1:8080") && example.contains("127.0.0.1:9000"));
    let config = example
        .replace("127.0.0.1:8080", &format!("127.0.0.1:{api}"))
        .replace("127.0.0.1:9000", &format!("127.0.0.1:{hook}"));
    std::fs::write(dir.path().join("quickstart.toml"), config).unwrap();

    // 1. The receiver.
    let mut receiver = Proc::spawn(
        &[
            "receive",
            "--listen",
            &format!("127.0.0.1:{hook}"),
            "--secret",
            SECRET,
        ],
        dir.path(),
    );
    receiver.wait_line("the receiver to listen", |l| {
        l.contains("receiving webhooks")
    });
    // 2. The gateway, which prints its generated tokens once.
    let mut gateway = Proc::spawn(&["serve", "--config", "quickstart.toml"], dir.path());
    let ingest = token(
        &gateway.wait_line("the ingest token", |l| l.contains("ingest token:")),
        "ingest token:",
    );
    let admin = token(
        &gateway.wait_line("the admin token", |l| l.contains("admin token:")),
        "admin token:",
    );
    let base = format!("http://127.0.0.1:{api}");
    wait_ready(&base);
    // 3. POST an event.
    let (status, body) = blocking_post(
        &format!("{base}/v1/events"),
        &ingest,
        &json!({ "type": "task.failed", "source": "etl", "title": "orders_daily failed", "severity": "error" }),
    );
    assert_eq!(status, 202, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    // 4. The receiver prints it, signature verified.
    receiver.wait_line("the delivery", |l| l.contains("orders_daily failed"));
    let out = receiver.output();
    assert!(out.contains("signature: valid"), "{out}");
    // 5. GET /v1/events/{id} shows it delivered.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, event) =
            blocking_get(&format!("{base}/v1/events/{id}"), Some(&admin)).unwrap();
        assert_eq!(status, 200, "{event}");
        if event["deliveries"][0]["state"] == "delivered" {
            break;
        }
        assert!(Instant::now() < deadline, "{event}");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Graceful stop on SIGTERM.
    assert!(gateway.terminate().success(), "{}", gateway.output());
    let log = gateway.output();
    assert!(log.contains("carillon stopped"), "{log}");
    assert!(
        !log.contains(&ingest[4..]) || log.matches(&ingest[4..]).count() <= 2,
        "{log}"
    );
}

/// No config: embedded defaults, tokens generated and printed once, kept
/// in the data directory for the next start.
#[test]
fn serve_without_a_config_runs_on_the_embedded_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut first = Proc::spawn(&["serve", "--listen", &listen], dir.path());
    let admin = token(
        &first.wait_line("the admin token", |l| l.contains("admin token:")),
        "admin token:",
    );
    let ingest = token(
        &first.wait_line("the ingest token", |l| l.contains("ingest token:")),
        "ingest token:",
    );
    first.wait_line("listening", |l| l.contains("carillon is listening"));
    let base = format!("http://{listen}");
    wait_ready(&base);
    let (status, body) = blocking_post(
        &format!("{base}/v1/events"),
        &ingest,
        &json!({ "type": "demo.hello", "source": "readme" }),
    );
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["unrouted"], true, "the defaults have no routes");
    // No file to reload: the API says so, and SIGHUP changes nothing.
    let (status, body) = blocking_post(&format!("{base}/v1/config/reload"), &admin, &json!({}));
    assert_eq!(status, 409, "{body}");
    assert!(first.terminate().success());
    let saved = std::fs::read_to_string(dir.path().join("data/local-tokens.toml")).unwrap();
    assert!(saved.contains(&ingest));

    let mut second = Proc::spawn(&["serve", "--listen", &listen], dir.path());
    second.wait_line("listening", |l| l.contains("carillon is listening"));
    wait_ready(&base);
    assert!(
        !second.output().contains("ingest token:"),
        "printed once only"
    );
    let (status, _) = blocking_post(
        &format!("{base}/v1/events"),
        &ingest,
        &json!({ "type": "demo.hello", "source": "readme" }),
    );
    assert_eq!(status, 202);
}

fn kill9_config(api: u16, hook: u16) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:{api}"
data_dir = "./data"
[auth]
admin_token = "adm-kill9-test-token"
[[auth.ingest]]
name = "app"
token = "ing-kill9-test-token"
[egress]
allow_private = ["127.0.0.1/32"]
[dispatch.retry]
base_secs = 1
cap_secs = 1
min_delay_secs = 1
# Retried about once a second while the receiver is down: the default 12
# attempts would dead-letter the first events when posting the rest takes
# longer than 12 s (a loaded machine), and this test is about kill -9.
max_attempts = 100000
[destinations.local]
plugin = "webhook"
config = {{ url = "http://127.0.0.1:{hook}/in" }}
[[routes]]
name = "all"
destinations = ["local"]
"#
    )
}

/// Posts events titled `{prefix}-{n}` until `stop`, returning the titles
/// acknowledged with 202 (a refused or failed request is not counted: the
/// client would retry it).
fn post_until(base: &str, prefix: &str, stop: &std::sync::atomic::AtomicBool) -> Vec<String> {
    let mut acked = Vec::new();
    let rt = runtime();
    let client = reqwest::Client::new();
    let mut n = 0;
    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
        let title = format!("{prefix}-{n}");
        n += 1;
        let body = json!({ "type": "kill.test", "source": "t", "title": title }).to_string();
        let sent = rt.block_on(async {
            client
                .post(format!("{base}/v1/events"))
                .bearer_auth("ing-kill9-test-token")
                .header("content-type", "application/json")
                .body(body)
                .timeout(Duration::from_secs(5))
                .send()
                .await
        });
        if let Ok(r) = sent
            && r.status().as_u16() == 202
        {
            acked.push(title);
        }
    }
    acked
}

/// The crash test: the gateway is killed with SIGKILL at random moments
/// while events are posted continuously and delivered to a live receiver,
/// ten times; after the last restart every event that got its 202 arrives
/// at least once. Duplicates (deliveries in flight at a kill) are counted
/// and printed, not forbidden: delivery is at least once.
#[test]
fn kill_9_at_random_moments_loses_no_acknowledged_event() {
    let dir = tempfile::tempdir().unwrap();
    let (api, hook) = (free_port(), free_port());
    std::fs::write(dir.path().join("carillon.toml"), kill9_config(api, hook)).unwrap();
    let base = format!("http://127.0.0.1:{api}");
    let mut receiver = Proc::spawn(
        &["receive", "--listen", &format!("127.0.0.1:{hook}")],
        dir.path(),
    );
    receiver.wait_line("the receiver to listen", |l| {
        l.contains("receiving webhooks")
    });

    let mut acked = Vec::new();
    for round in 0..10 {
        let mut gateway = Proc::spawn(&["serve", "--config", "carillon.toml"], dir.path());
        wait_ready(&base);
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let poster = {
            let (stop, base) = (stop.clone(), base.clone());
            std::thread::spawn(move || post_until(&base, &format!("r{round}"), &stop))
        };
        std::thread::sleep(Duration::from_millis(fastrand::u64(100..800)));
        gateway.kill9();
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        acked.extend(poster.join().expect("poster"));
    }
    assert!(
        acked.len() > 10,
        "the posters got few answers: {}",
        acked.len()
    );
    let mut gateway = Proc::spawn(&["serve", "--config", "carillon.toml"], dir.path());
    wait_ready(&base);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let out = receiver.output();
        let missing: Vec<&String> = acked
            .iter()
            .filter(|t| !out.contains(&format!(" {t}\"")))
            .collect();
        if missing.is_empty() {
            let arrived = acked
                .iter()
                .map(|t| out.matches(&format!(" {t}\"")).count())
                .sum::<usize>();
            // Each delivery prints its title once (the `title` field).
            println!(
                "kill -9 x10: {} events acknowledged, all delivered; {} duplicate deliveries",
                acked.len(),
                arrived - acked.len()
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {} acknowledged events not delivered after kill -9, e.g. {:?}\n{}",
            missing.len(),
            acked.len(),
            &missing[..missing.len().min(5)],
            gateway.output()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Every event acknowledged with 202 is delivered after the gateway is
/// killed with SIGKILL while its deliveries were failing, and restarted.
#[test]
fn kill_9_loses_no_acknowledged_event() {
    let dir = tempfile::tempdir().unwrap();
    let (api, hook) = (free_port(), free_port());
    let config = kill9_config(api, hook);
    std::fs::write(dir.path().join("carillon.toml"), config).unwrap();
    let base = format!("http://127.0.0.1:{api}");

    // The receiver is down: deliveries fail and are retried.
    let mut gateway = Proc::spawn(&["serve", "--config", "carillon.toml"], dir.path());
    wait_ready(&base);
    let mut accepted = Vec::new();
    for i in 0..40 {
        let (status, body) = blocking_post(
            &format!("{base}/v1/events"),
            "ing-kill9-test-token",
            &json!({ "type": "kill.test", "source": "t", "title": format!("event-{i}") }),
        );
        assert_eq!(status, 202, "{body}");
        accepted.push(format!("event-{i}"));
    }
    gateway.kill9();

    // Receiver up, gateway back: everything acknowledged arrives.
    let mut receiver = Proc::spawn(
        &["receive", "--listen", &format!("127.0.0.1:{hook}")],
        dir.path(),
    );
    receiver.wait_line("the receiver to listen", |l| {
        l.contains("receiving webhooks")
    });
    let mut gateway = Proc::spawn(&["serve", "--config", "carillon.toml"], dir.path());
    wait_ready(&base);
    let deadline = Instant::now() + Duration::from_secs(150);
    loop {
        let out = receiver.output();
        let missing: Vec<&String> = accepted
            .iter()
            .filter(|t| !out.contains(&format!(" {t}\"")))
            .collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not delivered after kill -9: {missing:?}\n{}",
            gateway.output()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A task timer armed before `kill -9` and due while the gateway was down
/// fires exactly once right after the restart, marked late; a timer not
/// yet due stays armed.
#[test]
fn kill_9_between_arm_and_deadline_fires_the_timeout_once_late() {
    let dir = tempfile::tempdir().unwrap();
    let (api, hook) = (free_port(), free_port());
    std::fs::write(dir.path().join("carillon.toml"), kill9_config(api, hook)).unwrap();
    let base = format!("http://127.0.0.1:{api}");
    let started = |run: &str, secs: u64| {
        json!({
            "type": "task.started",
            "source": "t",
            "data": { "run_id": run, "taskname": format!("{run}-task"), "timeout_secs": secs },
        })
    };

    let mut gateway = Proc::spawn(&["serve", "--config", "carillon.toml"], dir.path());
    wait_ready(&base);
    let url = format!("{base}/v1/events");
    let (status, body) = blocking_post(&url, "ing-kill9-test-token", &started("long", 3600));
    assert_eq!(status, 202, "{body}");
    let (status, body) = blocking_post(&url, "ing-kill9-test-token", &started("short", 3));
    let armed = Instant::now();
    assert_eq!(status, 202, "{body}");
    gateway.kill9();
    assert!(
        armed.elapsed() < Duration::from_secs(3),
        "killed before the deadline"
    );
    // Down through the deadline and then some: the timer fires late.
    std::thread::sleep(Duration::from_secs(6).saturating_sub(armed.elapsed()));

    let mut receiver = Proc::spawn(
        &["receive", "--listen", &format!("127.0.0.1:{hook}")],
        dir.path(),
    );
    receiver.wait_line("the receiver to listen", |l| {
        l.contains("receiving webhooks")
    });
    let mut gateway = Proc::spawn(&["serve", "--config", "carillon.toml"], dir.path());
    wait_ready(&base);
    let title = "\"title\": \"⏰ short-task timed out\"";
    let deadline = Instant::now() + Duration::from_secs(60);
    while !receiver.output().contains(title) {
        assert!(
            Instant::now() < deadline,
            "no task.timeout after the restart\n{}",
            gateway.output()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Time for a second one to show up, if the engine were wrong.
    std::thread::sleep(Duration::from_secs(2));
    let out = receiver.output();
    assert_eq!(out.matches(title).count(), 1, "exactly once:\n{out}");
    assert!(
        out.contains("late: Carillon was down"),
        "marked late:\n{out}"
    );
    assert!(!out.contains("long-task timed out"), "{out}");
    let (status, timers) =
        blocking_get(&format!("{base}/v1/timers"), Some("adm-kill9-test-token")).unwrap();
    assert_eq!(status, 200, "{timers}");
    let items = timers["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{timers}");
    assert_eq!(items[0]["run_id"], "long");
}

/// SIGTERM stops the process within the shutdown grace period although a
/// client holds a request whose body never arrives.
#[test]
fn sigterm_with_a_stalled_request_exits_within_the_grace_period() {
    use std::io::Write as _;

    let dir = tempfile::tempdir().unwrap();
    let api = free_port();
    std::fs::write(
        dir.path().join("carillon.toml"),
        format!(
            r#"
[server]
listen = "127.0.0.1:{api}"
data_dir = "./data"
shutdown_grace_secs = 2
body_timeout_secs = 600
[auth]
admin_token = "adm-stall-test-token"
[[auth.ingest]]
name = "app"
token = "ing-stall-test-token"
"#
        ),
    )
    .unwrap();
    let mut gateway = Proc::spawn(&["serve", "--config", "carillon.toml"], dir.path());
    let base = format!("http://127.0.0.1:{api}");
    wait_ready(&base);
    let mut stalled = std::net::TcpStream::connect(("127.0.0.1", api)).unwrap();
    stalled
        .write_all(
            b"POST /v1/events HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer ing-stall-test-token\r\n\
              Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"type\":",
        )
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let _ = Command::new("kill")
        .args(["-TERM", &gateway.child.id().to_string()])
        .status();
    let status = loop {
        if let Some(status) = gateway.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "still running {:?} after SIGTERM:\n{}",
            started.elapsed(),
            gateway.output()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}\n{}", gateway.output());
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    let log = gateway.output();
    assert!(log.contains("carillon stopped"), "{log}");
    drop(stalled);
}

/// `carillon.toml` edited while the gateway runs: SIGHUP applies a good
/// file (a new ingest token works at once, without a restart) and a bad one
/// changes nothing (its problem logged with its key path, the running
/// tokens still accepted).
#[cfg(unix)]
#[test]
fn sighup_reloads_the_config_file_and_a_bad_file_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let file = dir.path().join("carillon.toml");
    let config = |extra: &str| {
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\ndata_dir = \"data\"\n\n\
             [auth]\nadmin_token = \"adm-sighup-0123456789\"\n\n\
             [[auth.ingest]]\nname = \"first\"\ntoken = \"ing-first-0123456789\"\n{extra}"
        )
    };
    std::fs::write(&file, config("")).unwrap();
    let mut gw = Proc::spawn(&["serve", "--config", "carillon.toml"], dir.path());
    gw.wait_line("listening", |l| l.contains("carillon is listening"));
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(&base);
    let event = json!({ "type": "demo.hello", "source": "sighup" });
    let post = |token: &str| blocking_post(&format!("{base}/v1/events"), token, &event).0;
    assert_eq!(post("ing-second-0123456789"), 401);

    let hup = |gw: &Proc| {
        let status = Command::new("kill")
            .args(["-HUP", &gw.child.id().to_string()])
            .status()
            .expect("kill -HUP");
        assert!(status.success());
    };
    std::fs::write(
        &file,
        config("\n[[auth.ingest]]\nname = \"second\"\ntoken = \"ing-second-0123456789\"\n"),
    )
    .unwrap();
    hup(&gw);
    gw.wait_line("the reload", |l| l.contains("config reloaded"));
    assert_eq!(post("ing-second-0123456789"), 202);
    assert_eq!(post("ing-first-0123456789"), 202);

    std::fs::write(
        &file,
        config(
            "\n[[routes]]\nname = \"r\"\nmatch = { event = \"*\" }\ndestinations = [\"nowhere\"]\n",
        ),
    )
    .unwrap();
    hup(&gw);
    let refused = gw.wait_line("the refusal", |l| l.contains("config reload refused"));
    assert!(refused.contains("nowhere"), "{refused}");
    assert_eq!(
        post("ing-second-0123456789"),
        202,
        "the running config stays"
    );
    assert!(gw.terminate().success());
}

/// Objects created through the API are committed before the answer: after
/// `kill -9` and a restart they are all there, with their versions, and an
/// event reaches the API-created destination.
#[test]
fn kill_9_keeps_every_object_created_through_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let (api, hook) = (free_port(), free_port());
    std::fs::write(dir.path().join("carillon.toml"), kill9_config(api, hook)).unwrap();
    let base = format!("http://127.0.0.1:{api}");
    let admin = "adm-kill9-test-token";
    let ws = format!("{base}/v1/workspaces/default");

    let mut gateway = Proc::spawn(&["serve", "--config", "carillon.toml"], dir.path());
    wait_ready(&base);
    for i in 0..5 {
        let (status, body) = blocking_send(
            "PUT",
            &format!("{ws}/destinations/api-hook-{i}"),
            admin,
            &json!({ "plugin": "webhook", "config": { "url": format!("http://127.0.0.1:{hook}/api-{i}") } }),
        );
        assert_eq!(status, 201, "{body}");
    }
    let (status, body) = blocking_send(
        "PUT",
        &format!("{ws}/destinations/api-hook-0"),
        admin,
        &json!({ "plugin": "webhook", "config": { "url": format!("http://127.0.0.1:{hook}/api-0b") } }),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["version"], 2, "{body}");
    let (status, body) = blocking_send(
        "PUT",
        &format!("{ws}/routes/to-api"),
        admin,
        &json!({ "match": { "event": "api.*" }, "destinations": ["api-hook-0"] }),
    );
    assert_eq!(status, 201, "{body}");
    gateway.kill9();

    let mut receiver = Proc::spawn(
        &["receive", "--listen", &format!("127.0.0.1:{hook}")],
        dir.path(),
    );
    receiver.wait_line("the receiver to listen", |l| {
        l.contains("receiving webhooks")
    });
    let mut gateway = Proc::spawn(&["serve", "--config", "carillon.toml"], dir.path());
    wait_ready(&base);
    let (status, body) = blocking_get(&format!("{ws}/destinations"), Some(admin)).unwrap();
    assert_eq!(status, 200, "{body}");
    let names: Vec<&str> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["origin"] == "api")
        .filter_map(|d| d["name"].as_str())
        .collect();
    assert_eq!(names.len(), 5, "{body}");
    let (_, one) = blocking_get(&format!("{ws}/destinations/api-hook-0"), Some(admin)).unwrap();
    assert_eq!(one["version"], 2, "{one}");
    let (status, body) = blocking_post(
        &format!("{base}/v1/events"),
        "ing-kill9-test-token",
        // The file's catch-all route comes first: name the API destination.
        &json!({ "type": "api.test", "source": "t", "title": "after-kill", "destinations": ["api-hook-0"] }),
    );
    assert_eq!(status, 202, "{body}");
    let (_, route) = blocking_get(&format!("{ws}/routes/to-api"), Some(admin)).unwrap();
    assert_eq!(route["origin"], "api", "{route}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !receiver.output().contains("/api-0b") {
        assert!(
            Instant::now() < deadline,
            "the API route did not deliver after kill -9\n{}\nreceiver:\n{}",
            gateway.output(),
            receiver.output()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
