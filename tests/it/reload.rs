//! The plugin lifecycle end to end: a real gateway watching its plugin
//! directory, the `echo` fixture plugin in three builds (`echo-v1`,
//! `echo-v2`, `echo-strict`: one plugin name, versions 1, 2 and 3, each
//! marking what it posts with its version), a webhook receiver standing in
//! for the destination. Settle and debounce times are short so each test
//! runs in seconds; every wait polls with a deadline.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use carillon::config::{Config, Resolver};
use carillon::dispatch::DispatchConfig;
use carillon::gateway::{Gateway, Options, StartError};
use carillon_tests::fakes::webhook::Receiver;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::support::wasm;

const ADMIN: &str = "adm-reload-5a4b3c2d1e";
const APP: &str = "ing-reload-0123456789";

/// Fails the test once the deadline passes; otherwise waits a little.
struct Deadline {
    until: Instant,
    what: &'static str,
}

impl Deadline {
    fn new(what: &'static str) -> Self {
        Deadline {
            until: Instant::now() + Duration::from_secs(90),
            what,
        }
    }

    async fn tick(&self) {
        assert!(
            Instant::now() < self.until,
            "timed out waiting: {}",
            self.what
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A gateway whose destination `echo` uses the `echo` plugin (no built-in
/// plugin has that name) with one delivery at a time, so the receiver sees
/// deliveries in the order they were attempted.
struct Gw {
    gateway: Option<Gateway>,
    base: String,
    http: reqwest::Client,
    hook: Receiver,
    plugins: PathBuf,
    _dir: tempfile::TempDir,
}

fn config_text(data: &Path, hook: &Receiver, watch: bool, extra: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
data_dir = "{data}"
plugin_dir = "{data}/plugins"
watch_plugins = {watch}
plugin_rescan_secs = 1

[auth]
admin_token = "{ADMIN}"

[[auth.ingest]]
name = "app"
token = "{APP}"

[egress]
allow_private = ["127.0.0.1/32"]

[destinations.echo]
plugin = "echo"
concurrency = 1
config = {{ url = "{url}" }}

[[routes]]
name = "all"
match = {{ event = "test.*" }}
destinations = ["echo"]
template = "t"

[templates.t.en]
title = "${{n}}"
body = "event ${{n}}"
{extra}
"#,
        data = data.display(),
        url = hook.url("/echo"),
    )
}

fn options(settle: Duration) -> Options {
    Options {
        dispatch: DispatchConfig {
            poll_interval: Duration::from_millis(20),
            // A delivery waiting for its plugin is looked at again soon.
            wait_retry: Duration::from_millis(200),
            ..DispatchConfig::default()
        },
        plugin_debounce: Duration::from_millis(50),
        plugin_settle: settle,
        ..Options::default()
    }
}

fn parse(text: &str, dir: &Path) -> Config {
    let env = |_: &str| None;
    let resolver = Resolver {
        env: &env,
        base_dir: dir,
    };
    Config::from_toml(text, &resolver).unwrap_or_else(|p| panic!("config: {p}"))
}

/// Copies the fixture built from `crate_name` to `to` in one atomic step
/// (written under a hidden name, then renamed), as an installer should.
fn install(crate_name: &str, to: &Path) {
    let dir = to.parent().expect("a directory");
    let tmp = dir.join(format!(
        ".{}.tmp",
        to.file_name().expect("a file name").to_string_lossy()
    ));
    std::fs::write(&tmp, wasm(crate_name)).expect("write the temporary file");
    std::fs::rename(&tmp, to).expect("rename into place");
}

/// `wasm` with a custom section carrying `payload` (< 100 bytes) appended:
/// the same plugin, another build (another SHA-256), the same size for
/// payloads of the same length.
fn with_custom_section(mut wasm: Vec<u8>, payload: &[u8]) -> Vec<u8> {
    let name = b"carillon-test";
    let len = 1 + name.len() + payload.len();
    assert!(len < 128, "one LEB128 byte");
    wasm.extend([0, len as u8, name.len() as u8]);
    wasm.extend(name);
    wasm.extend(payload);
    wasm
}

/// Writes `bytes` to a hidden temporary file with modification time
/// `mtime`, then renames it over `to` (`cp -p` to a temporary name, then
/// `mv`).
fn replace_keeping_mtime(bytes: &[u8], to: &Path, mtime: std::time::SystemTime) {
    let tmp = to.with_file_name(".replace.tmp");
    std::fs::write(&tmp, bytes).expect("write the temporary file");
    set_mtime(&tmp, mtime);
    std::fs::rename(&tmp, to).expect("rename into place");
}

fn set_mtime(path: &Path, mtime: std::time::SystemTime) {
    std::fs::File::options()
        .write(true)
        .open(path)
        .and_then(|f| f.set_modified(mtime))
        .expect("set the modification time");
}

fn mtime(path: &Path) -> std::time::SystemTime {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .expect("modification time")
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Gw {
    /// Starts with `files` (file name, fixture crate) in the plugin directory.
    async fn start(files: &[(&str, &str)], watch: bool, extra: &str, settle: Duration) -> Gw {
        Self::start_rescan(files, watch, extra, settle, 1).await
    }

    /// Like [`start`](Self::start), with a periodic rescan every
    /// `rescan_secs` (long, to show a change is seen without it).
    async fn start_rescan(
        files: &[(&str, &str)],
        watch: bool,
        extra: &str,
        settle: Duration,
        rescan_secs: u64,
    ) -> Gw {
        let dir = tempfile::tempdir().expect("tempdir");
        let plugins = dir.path().join("plugins");
        std::fs::create_dir_all(&plugins).expect("plugin dir");
        for (file, krate) in files {
            install(krate, &plugins.join(file));
        }
        let hook = Receiver::start(None).await;
        let text = config_text(dir.path(), &hook, watch, extra).replace(
            "plugin_rescan_secs = 1\n",
            &format!("plugin_rescan_secs = {rescan_secs}\n"),
        );
        let config = parse(&text, dir.path());
        let gateway = Gateway::start(config, options(settle))
            .await
            .expect("gateway starts");
        let base = format!("http://{}", gateway.local_addr());
        Gw {
            gateway: Some(gateway),
            base,
            http: reqwest::Client::new(),
            hook,
            plugins,
            _dir: dir,
        }
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(ADMIN)
            .send()
            .await
            .expect("request");
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// `GET /v1/plugins`.
    async fn plugins(&self) -> Value {
        let (status, body) = self.get("/v1/plugins").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// `POST /v1/plugins/reload`.
    async fn reload(&self) -> Value {
        let r = self
            .http
            .post(format!("{}/v1/plugins/reload", self.base))
            .bearer_auth(ADMIN)
            .send()
            .await
            .expect("request");
        assert_eq!(r.status(), StatusCode::OK);
        r.json().await.expect("json")
    }

    async fn metrics(&self) -> String {
        self.http
            .get(format!("{}/metrics", self.base))
            .bearer_auth(ADMIN)
            .send()
            .await
            .expect("request")
            .text()
            .await
            .expect("text")
    }

    /// Posts event `n`; returns its id.
    async fn post(&self, n: &str) -> String {
        post_event(&self.http, &self.base, n).await
    }

    /// The first delivery of event `id`.
    async fn delivery(&self, id: &str) -> Value {
        let (status, body) = self.get(&format!("/v1/events/{id}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["deliveries"][0].clone()
    }

    /// Waits until event `id` is delivered; fails if it dies.
    async fn wait_delivered(&self, id: &str) -> Value {
        let deadline = Deadline::new("a delivery to be delivered");
        loop {
            let d = self.delivery(id).await;
            assert_ne!(d["state"], "dead", "{d}");
            if d["state"] == "delivered" {
                return d;
            }
            deadline.tick().await;
        }
    }

    /// The bodies the receiver got, in order.
    fn bodies(&self) -> Vec<String> {
        self.hook
            .received()
            .iter()
            .map(|r| String::from_utf8_lossy(&r.body).into_owned())
            .collect()
    }

    async fn stop(mut self) {
        if let Some(g) = self.gateway.take() {
            g.shutdown().await;
        }
    }
}

async fn post_event(http: &reqwest::Client, base: &str, n: &str) -> String {
    let r = http
        .post(format!("{base}/v1/events"))
        .bearer_auth(APP)
        .json(&json!({ "type": "test.tick", "source": "reload-test", "data": { "n": n } }))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let body: Value = r.json().await.expect("json");
    body["id"].as_str().expect("an event id").to_owned()
}

/// The `items` entry of plugin `name`.
fn plugin<'a>(list: &'a Value, name: &str) -> &'a Value {
    list["items"]
        .as_array()
        .and_then(|items| items.iter().find(|p| p["name"] == name))
        .unwrap_or_else(|| panic!("no plugin {name} in {list}"))
}

/// The `files` entry of `file`, if listed.
fn file<'a>(list: &'a Value, file: &str) -> Option<&'a Value> {
    list["files"]
        .as_array()
        .and_then(|files| files.iter().find(|f| f["file"] == file))
}

#[tokio::test]
async fn a_new_version_is_swapped_in_under_a_steady_stream_without_losing_a_delivery() {
    let gw = Gw::start(
        &[("echo.wasm", "carillon-fixture-echo-v1")],
        true,
        "",
        Duration::from_millis(300),
    )
    .await;
    let list = gw.plugins().await;
    let echo = plugin(&list, "echo");
    assert_eq!(echo["version"], "1.0.0", "{echo}");
    assert_eq!(echo["status"], "loaded");
    assert_eq!(echo["wit_version"], "0.1.0");
    assert_eq!(echo["origin"]["kind"], "file");
    assert_eq!(
        echo["sha256"],
        sha256_hex(&wasm("carillon-fixture-echo-v1"))
    );
    assert!(echo["loaded_at"].as_str().is_some(), "{echo}");

    // A steady stream of events, one every 15 ms, until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let stream = {
        let (http, base, stop) = (gw.http.clone(), gw.base.clone(), stop.clone());
        tokio::spawn(async move {
            let mut ids = Vec::new();
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                ids.push(post_event(&http, &base, &format!("e{n}")).await);
                n += 1;
                tokio::time::sleep(Duration::from_millis(15)).await;
            }
            ids
        })
    };
    let deadline = Deadline::new("deliveries through version 1");
    while gw.bodies().len() < 5 {
        deadline.tick().await;
    }

    // Replace the file in place (atomically) with version 2.
    install("carillon-fixture-echo-v2", &gw.plugins.join("echo.wasm"));
    let deadline = Deadline::new("version 2 to be swapped in");
    let echo = loop {
        let list = gw.plugins().await;
        let echo = plugin(&list, "echo").clone();
        if echo["version"] == "2.0.0" {
            break echo;
        }
        deadline.tick().await;
    };
    assert_eq!(echo["status"], "loaded");
    assert_eq!(
        echo["sha256"],
        sha256_hex(&wasm("carillon-fixture-echo-v2"))
    );
    assert!(
        echo["origin"]["path"]
            .as_str()
            .is_some_and(|p| p.ends_with("echo.wasm")),
        "{echo}"
    );
    let deadline = Deadline::new("deliveries through version 2");
    while gw.bodies().iter().filter(|b| b.starts_with("v2|")).count() < 5 {
        deadline.tick().await;
    }
    stop.store(true, Ordering::SeqCst);
    let ids = stream.await.expect("the stream task");

    // Every event is delivered, once, on its first attempt.
    for id in &ids {
        let d = gw.wait_delivered(id).await;
        assert_eq!(d["attempts"], 1, "{d}");
    }
    let bodies = gw.bodies();
    assert_eq!(bodies.len(), ids.len(), "{bodies:?}");
    let mut titles: Vec<&str> = bodies
        .iter()
        .map(|b| b.split_once('|').map_or("", |(_, t)| t))
        .collect();
    titles.sort_unstable();
    titles.dedup();
    assert_eq!(titles.len(), ids.len(), "each event exactly once");
    // The old version's output, then the new one's, never mixed.
    let marks: Vec<&str> = bodies.iter().map(|b| &b[..3]).collect();
    let first_v2 = marks.iter().position(|m| *m == "v2|").expect("some v2");
    assert!(first_v2 > 0, "some v1 first");
    assert!(marks[..first_v2].iter().all(|m| *m == "v1|"), "{marks:?}");
    assert!(marks[first_v2..].iter().all(|m| *m == "v2|"), "{marks:?}");

    let metrics = gw.metrics().await;
    assert!(
        metrics.contains(r#"carillon_plugin_loads_total{plugin="echo",result="loaded"} 2"#),
        "{metrics}"
    );
    gw.stop().await;
}

#[tokio::test]
async fn broken_files_are_reported_while_the_serving_plugin_keeps_serving() {
    // A long settle time against short pauses in the slow copy below.
    let gw = Gw::start(
        &[("echo.wasm", "carillon-fixture-echo-v1")],
        true,
        "",
        Duration::from_secs(2),
    )
    .await;
    let id = gw.post("before").await;
    gw.wait_delivered(&id).await;

    // A truncated component, a component of another world, and a newer
    // build whose schema the destination's config does not satisfy.
    let mut truncated = wasm("carillon-fixture-echo-v2");
    truncated.truncate(truncated.len() / 2);
    std::fs::write(gw.plugins.join("corrupt.wasm"), truncated).expect("write");
    install(
        "carillon-fixture-wrong-world",
        &gw.plugins.join("other.wasm"),
    );
    install(
        "carillon-fixture-echo-strict",
        &gw.plugins.join("strict.wasm"),
    );
    let deadline = Deadline::new("the broken files to be reported");
    let list = loop {
        let list = gw.plugins().await;
        let done = ["corrupt.wasm", "other.wasm", "strict.wasm"]
            .iter()
            .all(|f| file(&list, f).is_some_and(|f| f["status"] != "settling"));
        if done {
            break list;
        }
        deadline.tick().await;
    };
    let corrupt = file(&list, "corrupt.wasm").expect("listed");
    assert_eq!(corrupt["status"], "failed", "{corrupt}");
    assert!(
        corrupt["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("not a valid component")),
        "{corrupt}"
    );
    let corrupt_item = plugin(&list, "corrupt.wasm");
    assert_eq!(corrupt_item["status"], "failed");
    let other = file(&list, "other.wasm").expect("listed");
    assert_eq!(other["status"], "failed", "{other}");
    assert!(
        other["error"]
            .as_str()
            .is_some_and(|e| e.contains("does not implement the carillon:plugin world")),
        "{other}"
    );
    let strict = file(&list, "strict.wasm").expect("listed");
    assert_eq!(strict["status"], "refused", "{strict}");
    assert_eq!(strict["plugin"], "echo", "{strict}");
    assert_eq!(strict["version"], Value::Null, "never accepted: {strict}");
    let reason = strict["error"].as_str().unwrap_or_default();
    assert!(
        reason.contains("destination \"echo\"") && reason.contains("channel_id"),
        "{reason}"
    );
    // Version 3 is newer, but refused: version 1 keeps serving.
    let echo = plugin(&list, "echo");
    assert_eq!(echo["version"], "1.0.0", "{echo}");
    assert!(
        echo["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("strict.wasm:")),
        "{echo}"
    );
    let id = gw.post("during").await;
    gw.wait_delivered(&id).await;
    assert_eq!(gw.bodies().last().map(String::as_str), Some("v1|during"));

    // Version 2 copied in slowly: chunks with pauses longer than the
    // debounce. It must not be tried until complete.
    let bytes = wasm("carillon-fixture-echo-v2");
    let path = gw.plugins.join("slow.wasm");
    let chunk = bytes.len() / 4 + 1;
    let mut seen_settling = false;
    for (i, part) in bytes.chunks(chunk).enumerate() {
        use std::io::Write as _;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .expect("open");
        f.write_all(part).expect("write");
        f.sync_all().expect("sync");
        drop(f);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let list = gw.plugins().await;
        if let Some(slow) = file(&list, "slow.wasm") {
            assert_eq!(slow["status"], "settling", "chunk {i}: {slow}");
            seen_settling = true;
        }
        assert_eq!(plugin(&list, "echo")["version"], "1.0.0");
    }
    assert!(
        seen_settling,
        "the watcher saw the file while it was copied"
    );
    let deadline = Deadline::new("the slowly copied file to be loaded");
    let list = loop {
        let list = gw.plugins().await;
        if plugin(&list, "echo")["version"] == "2.0.0" {
            break list;
        }
        deadline.tick().await;
    };
    let slow = file(&list, "slow.wasm").expect("listed");
    assert_eq!(slow["status"], "serving", "{slow}");
    assert_eq!(slow["error"], Value::Null, "{slow}");
    let echo = plugin(&list, "echo");
    let shadowed = echo["shadowed"].as_array().expect("shadowed");
    assert!(
        shadowed.iter().any(|s| s["version"] == "1.0.0"
            && s["origin"]["path"]
                .as_str()
                .is_some_and(|p| p.ends_with("echo.wasm"))
            && s["reason"].as_str().is_some_and(|r| r.contains("older"))),
        "{echo}"
    );
    assert_eq!(
        file(&list, "echo.wasm").expect("listed")["status"],
        "shadowed"
    );
    let id = gw.post("after").await;
    gw.wait_delivered(&id).await;
    assert_eq!(gw.bodies().last().map(String::as_str), Some("v2|after"));

    let metrics = gw.metrics().await;
    for line in [
        r#"carillon_plugin_loads_total{plugin="corrupt.wasm",result="failed"} 1"#,
        r#"carillon_plugin_loads_total{plugin="other.wasm",result="failed"} 1"#,
        r#"carillon_plugin_loads_total{plugin="echo",result="refused"} 1"#,
    ] {
        assert!(metrics.contains(line), "{line} in {metrics}");
    }
    gw.stop().await;
}

#[tokio::test]
async fn removing_the_only_build_pauses_deliveries_until_it_returns() {
    let gw = Gw::start(
        &[("echo.wasm", "carillon-fixture-echo-v1")],
        true,
        "",
        Duration::from_millis(300),
    )
    .await;
    std::fs::remove_file(gw.plugins.join("echo.wasm")).expect("remove");
    let deadline = Deadline::new("the plugin to be missing");
    let echo = loop {
        let list = gw.plugins().await;
        let echo = plugin(&list, "echo").clone();
        if echo["status"] == "missing" {
            break echo;
        }
        deadline.tick().await;
    };
    assert_eq!(echo["version"], Value::Null);
    assert!(
        echo["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("echo.wasm was removed")),
        "{echo}"
    );
    let (_, destinations) = gw.get("/v1/destinations").await;
    assert_eq!(destinations["items"][0]["plugin_loaded"], false);

    // An event for it is accepted and waits: not attempted, not dead.
    let id = gw.post("waiting").await;
    let deadline = Deadline::new("the delivery to wait for its plugin");
    loop {
        let d = gw.delivery(&id).await;
        assert!(d["state"] != "dead" && d["state"] != "delivered", "{d}");
        if d["state"] == "scheduled" {
            assert!(
                d["last_error"]
                    .as_str()
                    .is_some_and(|e| e.contains("not loaded")),
                "{d}"
            );
            assert_eq!(d["attempts"], 0, "waiting is not an attempt: {d}");
            break;
        }
        deadline.tick().await;
    }
    assert!(gw.bodies().is_empty());

    // Put it back: the waiting delivery goes out.
    install("carillon-fixture-echo-v1", &gw.plugins.join("echo.wasm"));
    gw.wait_delivered(&id).await;
    assert_eq!(gw.bodies(), ["v1|waiting"]);
    assert_eq!(plugin(&gw.plugins().await, "echo")["status"], "loaded");
    gw.stop().await;
}

#[tokio::test]
async fn a_pinned_plugin_refuses_every_other_build() {
    let pinned = sha256_hex(&wasm("carillon-fixture-echo-v1"));
    // No watching: the reload endpoint decides when the directory is read.
    let gw = Gw::start(
        &[("echo.wasm", "carillon-fixture-echo-v1")],
        false,
        &format!("[channels.echo]\nsha256 = \"{pinned}\"\n"),
        Duration::from_millis(300),
    )
    .await;
    install("carillon-fixture-echo-v2", &gw.plugins.join("echo-2.wasm"));
    let list = gw.reload().await;
    let echo = plugin(&list, "echo");
    assert_eq!(echo["version"], "1.0.0", "{echo}");
    assert_eq!(echo["sha256"], pinned.as_str());
    assert_eq!(echo["pinned_sha256"], pinned.as_str());
    let refused = file(&list, "echo-2.wasm").expect("listed");
    assert_eq!(refused["status"], "refused", "{refused}");
    let reason = refused["error"].as_str().unwrap_or_default();
    assert!(
        reason.contains(&sha256_hex(&wasm("carillon-fixture-echo-v2")))
            && reason.contains("pins sha256")
            && reason.contains(&pinned),
        "{reason}"
    );
    assert!(
        echo["last_error"]
            .as_str()
            .is_some_and(|e| e.starts_with("echo-2.wasm: ")),
        "{echo}"
    );
    // The same answer from GET, and the pinned build keeps delivering.
    assert_eq!(gw.plugins().await, list);
    let id = gw.post("pinned").await;
    gw.wait_delivered(&id).await;
    assert_eq!(gw.bodies(), ["v1|pinned"]);
    gw.stop().await;

    // A built-in plugin that does not match its pin is refused at start,
    // with the reason.
    let dir = tempfile::tempdir().expect("tempdir");
    let hook = Receiver::start(None).await;
    std::fs::create_dir_all(dir.path().join("plugins")).expect("plugin dir");
    install(
        "carillon-fixture-echo-v1",
        &dir.path().join("plugins/echo.wasm"),
    );
    let text = config_text(
        dir.path(),
        &hook,
        false,
        &format!("[channels.webhook]\nsha256 = \"{}\"\n", "0".repeat(64)),
    );
    let error = Gateway::start(parse(&text, dir.path()), options(Duration::ZERO))
        .await
        .expect_err("a refused pinned plugin stops the start");
    assert!(matches!(error, StartError::Config(_)), "{error}");
    let text = error.to_string();
    assert!(
        text.contains("channels.webhook")
            && text.contains("the built-in webhook")
            && text.contains("pins sha256"),
        "{text}"
    );
}

#[tokio::test]
async fn a_file_replaced_by_a_rename_settles_and_serves_without_waiting_for_the_rescan() {
    // The periodic rescan is far away: only the watcher can see the change.
    let settle = Duration::from_millis(500);
    let gw = Gw::start_rescan(
        &[("echo.wasm", "carillon-fixture-echo-v1")],
        true,
        "",
        settle,
        600,
    )
    .await;
    let v1 = sha256_hex(&wasm("carillon-fixture-echo-v1"));
    let before = file(&gw.plugins().await, "echo.wasm")
        .expect("listed")
        .clone();
    assert_eq!(before["status"], "serving", "{before}");
    assert_eq!(before["sha256"], v1.as_str());

    // The README's upgrade: write under a temporary name, rename over.
    install("carillon-fixture-echo-v2", &gw.plugins.join("echo.wasm"));
    let started = Instant::now();
    let deadline = Deadline {
        until: started + Duration::from_secs(20),
        what: "the replaced file to serve v2 (not at the 600-s rescan)",
    };
    let mut seen_settling = None;
    loop {
        let list = gw.plugins().await;
        let f = file(&list, "echo.wasm").expect("listed").clone();
        if f["status"] == "settling" {
            // Not the old build's hash shown as the file's.
            assert_eq!(f["sha256"], Value::Null, "{f}");
            // The previous build serves meanwhile.
            assert_eq!(plugin(&list, "echo")["version"], "1.0.0");
            seen_settling.get_or_insert(f.clone());
        }
        if plugin(&list, "echo")["version"] == "2.0.0" {
            assert_eq!(f["status"], "serving", "{f}");
            break;
        }
        deadline.tick().await;
    }
    assert!(
        seen_settling.is_some(),
        "the changed file was never listed as settling"
    );
    assert!(
        started.elapsed() >= settle,
        "loaded before it settled: {:?}",
        started.elapsed()
    );
    let id = gw.post("after").await;
    gw.wait_delivered(&id).await;
    assert_eq!(gw.bodies(), ["v2|after"]);
    gw.stop().await;
}

#[tokio::test]
async fn a_same_size_replacement_that_keeps_the_mtime_is_seen() {
    let settle = Duration::from_millis(300);
    let gw = Gw::start_rescan(
        &[("echo.wasm", "carillon-fixture-echo-v1")],
        true,
        "",
        settle,
        600,
    )
    .await;
    let base = wasm("carillon-fixture-echo-v1");
    let a = with_custom_section(base.clone(), b"build-a");
    let b = with_custom_section(base, b"build-b");
    assert_eq!(a.len(), b.len());
    let path = gw.plugins.join("echo.wasm");
    std::fs::write(&path, &a).expect("write");
    let kept = mtime(&path);
    let list = gw.reload().await;
    assert_eq!(plugin(&list, "echo")["sha256"], sha256_hex(&a).as_str());

    let serves = |sha: String, what: &'static str| {
        let gw = &gw;
        async move {
            let deadline = Deadline {
                until: Instant::now() + Duration::from_secs(20),
                what,
            };
            while plugin(&gw.plugins().await, "echo")["sha256"] != sha.as_str() {
                deadline.tick().await;
            }
        }
    };
    // `cp -p` to a temporary name, then a rename over the file: same size,
    // same modification time; the watcher sees it.
    replace_keeping_mtime(&b, &path, kept);
    assert_eq!(mtime(&path), kept);
    serves(sha256_hex(&b), "the watcher to load build b").await;

    // In place (`cp -p` over the file): the same inode.
    std::fs::write(&path, &a).expect("rewrite");
    set_mtime(&path, kept);
    serves(sha256_hex(&a), "the watcher to load build a again").await;

    // A forced reload agrees, and the file serves.
    let list = gw.reload().await;
    assert_eq!(plugin(&list, "echo")["sha256"], sha256_hex(&a).as_str());
    assert_eq!(
        file(&list, "echo.wasm").expect("listed")["status"],
        "serving"
    );
    gw.stop().await;
}
