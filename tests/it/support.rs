//! Shared setup: runtimes with test-sized limits, loading the real `.wasm`
//! files built by `carillon-builtin`, sample messages, log capture.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use carillon::egress::EgressPolicy;
use carillon::message::{Message, Severity};
use carillon::plugin::types::DeliveryContext;
use carillon::plugin::{Limits, Plugin, Runtime, RuntimeConfig};

/// A gateway started from the config file `file` (which a config reload
/// reads again), its dispatcher polling every 20 ms.
pub async fn gateway_from_file(file: &std::path::Path) -> carillon::gateway::Gateway {
    gateway_from_file_on(file, Arc::new(carillon_outbox::SystemClock)).await
}

/// [`gateway_from_file`] on `clock` (a `ManualClock` for windows and
/// deadlines; wake the timer task after moving it, see [`advance`]).
pub async fn gateway_from_file_on(
    file: &std::path::Path,
    clock: Arc<dyn carillon_outbox::Clock>,
) -> carillon::gateway::Gateway {
    use carillon::gateway::{Gateway, Options};
    let config = carillon::config::Config::load(file).expect("config");
    let options = Options {
        clock,
        dispatch: carillon::dispatch::DispatchConfig {
            poll_interval: Duration::from_millis(20),
            wait_retry: Duration::from_millis(200),
            ..carillon::dispatch::DispatchConfig::default()
        },
        config_source: carillon::api::reconfigure::ConfigSource {
            file: Some(file.to_path_buf()),
            listen: None,
        },
        ..Options::default()
    };
    Gateway::start(config, options).await.expect("starts")
}

/// Moves `clock` by `d` and wakes `gateway`'s timer task, which sleeps in
/// real time (the manual clock does not wake it).
pub fn advance(
    gateway: &carillon::gateway::Gateway,
    clock: &carillon_outbox::ManualClock,
    d: Duration,
) {
    clock.advance(d);
    gateway.state().outbox.timers_changed().notify_one();
}

/// A runtime whose egress policy allows exactly `allow` (e.g. 127.0.0.1/32).
pub fn runtime(allow: &[&str]) -> Runtime {
    runtime_with(
        allow,
        Limits {
            memory_bytes: 32 << 20,
            cpu_time: Duration::from_millis(500),
            wall_time: Duration::from_secs(3),
            max_output_bytes: 1 << 20,
            max_log_lines: 100,
        },
    )
}

/// Like [`runtime`], with explicit limits.
pub fn runtime_with(allow: &[&str], limits: Limits) -> Runtime {
    let policy = EgressPolicy::allowing(allow.iter().map(|n| n.parse().expect("test network")));
    Runtime::new(RuntimeConfig {
        limits,
        max_concurrent_calls: 8,
        cache_dir: Some(cache_dir()),
        egress: policy,
        ..RuntimeConfig::default()
    })
    .expect("runtime starts")
}

/// One artifact cache shared by every test process on the machine, so each
/// plugin build is compiled once rather than once per test or per run (the
/// cache writes atomically and keys entries by content and engine hash, so
/// concurrent processes are safe; a per-process directory would leave
/// hundreds of megabytes behind per run).
pub fn cache_dir() -> std::path::PathBuf {
    std::env::temp_dir().join("carillon-test-cache")
}

/// The bytes of the plugin built from `crate_name`.
pub fn wasm(crate_name: &str) -> Vec<u8> {
    let path =
        carillon_builtin::path(crate_name).unwrap_or_else(|| panic!("no plugin {crate_name}"));
    std::fs::read(path).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

/// Loads the plugin built from `crate_name`.
pub async fn load(runtime: &Runtime, crate_name: &str) -> Arc<Plugin> {
    runtime
        .load(wasm(crate_name))
        .await
        .unwrap_or_else(|e| panic!("load {crate_name}: {e}"))
}

/// A context for attempt 1, now.
pub fn context(delivery_id: &str) -> DeliveryContext {
    DeliveryContext {
        delivery_id: delivery_id.to_owned(),
        event_id: "evt_1".to_owned(),
        attempt: 1,
        now_ms: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
    }
}

/// A typical message.
pub fn message(title: &str) -> Message {
    Message {
        title: title.to_owned(),
        markdown: "Task **orders_daily** failed after 3 retries.".to_owned(),
        text: "Task orders_daily failed after 3 retries.".to_owned(),
        severity: Severity::Error,
        locale: "en".to_owned(),
        ..Message::sample()
    }
}

/// The delivery pipeline without HTTP ingest: an outbox on disk, a
/// destination registry with one loaded plugin, and a dispatcher, on a manual clock
/// the tests advance. Shared by the dispatcher and email tests.
pub struct Pipeline {
    pub outbox: std::sync::Arc<carillon_outbox::Outbox>,
    pub clock: std::sync::Arc<carillon_outbox::ManualClock>,
    pub destinations: std::sync::Arc<carillon::dispatch::registry::DestinationRegistry>,
    pub runtime: Runtime,
    pub dispatcher: Option<carillon::dispatch::Dispatcher>,
    _dir: tempfile::TempDir,
}

impl Pipeline {
    /// Starts with `plugin_crate` loaded into `runtime`. `lease` should be
    /// long: the manual clock runs far ahead of real time while a request is
    /// in flight, and a short lease would expire under it.
    pub async fn start(
        runtime: Runtime,
        plugin_crate: &str,
        retry: carillon::dispatch::retry::RetryPolicy,
        lease: Duration,
    ) -> Pipeline {
        use carillon::dispatch::{DispatchConfig, Dispatcher};
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = Arc::new(carillon_outbox::ManualClock::new(
            carillon_outbox::Timestamp::from_millis(1_700_000_000_000),
        ));
        let mut config = carillon_outbox::OutboxConfig::new(dir.path().join("outbox"));
        config.clock = clock.clone();
        let outbox = Arc::new(carillon_outbox::Outbox::open(config).expect("outbox opens"));
        let destinations = Arc::new(carillon::dispatch::registry::DestinationRegistry::new());
        destinations.set_plugin(load(&runtime, plugin_crate).await);
        let dispatcher = Dispatcher::start(
            outbox.clone(),
            runtime.clone(),
            destinations.clone(),
            clock.clone(),
            Arc::new(carillon::dispatch::metrics::Metrics::default()),
            DispatchConfig {
                workers: 8,
                poll_interval: Duration::from_millis(5),
                lease,
                retry,
                shutdown_grace: Duration::from_secs(5),
                ..DispatchConfig::default()
            },
        );
        Pipeline {
            outbox,
            clock,
            destinations,
            runtime,
            dispatcher: Some(dispatcher),
            _dir: dir,
        }
    }

    /// Adds a destination of the loaded plugin `plugin`.
    pub fn destination(
        &self,
        name: &str,
        plugin: &str,
        config: serde_json::Value,
        rate_limits: Vec<carillon::plugin::types::RateLimit>,
        fallback: Option<&str>,
    ) {
        let loaded = self.destinations.plugin(plugin).expect("plugin loaded");
        let destination = self.runtime.destination(&loaded, name, config, &[]);
        self.destinations
            .set_destination(carillon::dispatch::registry::DestinationEntry {
                name: name.to_owned(),
                plugin: plugin.to_owned(),
                destination,
                fallback: fallback.map(str::to_owned),
                rate_limits,
                concurrency: 4,
                enabled: true,
                retry: None,
            });
    }

    /// Enqueues `message` to `destinations` and wakes the dispatcher.
    pub async fn enqueue(
        &self,
        message: &Message,
        destinations: &[&str],
    ) -> Vec<carillon_outbox::DeliveryId> {
        use carillon_outbox::{Enqueued, NewDelivery, NewEvent};
        let payload = message.to_payload();
        let enqueued = self
            .outbox
            .enqueue(
                NewEvent {
                    source: "test".into(),
                    idempotency_key: None,
                    body: b"{}".to_vec(),
                },
                destinations
                    .iter()
                    .map(|d| NewDelivery {
                        destination: (*d).to_owned(),
                        payload: payload.clone(),
                    })
                    .collect(),
            )
            .await
            .expect("enqueued");
        if let Some(d) = &self.dispatcher {
            d.wake();
        }
        match enqueued {
            Enqueued::Accepted { deliveries, .. } | Enqueued::Duplicate { deliveries, .. } => {
                deliveries.into_iter().map(|(_, id)| id).collect()
            }
        }
    }

    /// A delivery's state.
    pub fn state(&self, id: &carillon_outbox::DeliveryId) -> Option<carillon_outbox::StateKind> {
        self.outbox
            .delivery(id)
            .expect("read")
            .map(|d| d.state.kind())
    }

    /// Stops the dispatcher gracefully.
    pub async fn stop(mut self) {
        if let Some(d) = self.dispatcher.take() {
            d.shutdown().await;
        }
    }

    /// Advances the manual clock in steps until `done`, or fails after 20 s
    /// of real time.
    pub async fn advance_until(&self, step: Duration, what: &str, done: impl Fn() -> bool) {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while !done() {
            assert!(
                std::time::Instant::now() < deadline,
                "gave up waiting for: {what}"
            );
            self.clock.advance(step);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// Log lines written on this thread while it is capturing.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

thread_local! {
    static CAPTURE: std::cell::RefCell<Option<Captured>> = const { std::cell::RefCell::new(None) };
}

impl Captured {
    /// What was captured so far, as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("log buffer")).into_owned()
    }

    /// Stops capturing on this thread; returns what was captured.
    pub fn stop(self) -> String {
        CAPTURE.with(|c| c.borrow_mut().take());
        self.text()
    }
}

/// Writes to the capture of the current thread, if any; else nowhere.
struct ThreadWriter;

impl std::io::Write for ThreadWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        CAPTURE.with(|c| {
            if let Some(c) = &*c.borrow() {
                c.0.lock().expect("log buffer").extend_from_slice(buf);
            }
        });
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Captures every log record emitted on this thread from now on, at the
/// most verbose level for Carillon. One global subscriber serves the
/// whole test binary (a scoped one misses records whose call site another
/// test's thread reached first).
pub fn capture_logs() -> Captured {
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| {
        let subscriber = tracing_subscriber::fmt()
            .with_writer(|| ThreadWriter)
            .with_env_filter(tracing_subscriber::EnvFilter::new("carillon=trace,info"))
            .with_ansi(false)
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
    });
    let captured = Captured::default();
    CAPTURE.with(|c| *c.borrow_mut() = Some(captured.clone()));
    captured
}

/// Waits (up to 60 s) until `receiver` got `n` requests; answers them.
pub async fn wait_received(
    receiver: &carillon_tests::fakes::webhook::Receiver,
    n: usize,
    what: &str,
) -> Vec<carillon_tests::fakes::webhook::Received> {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let got = receiver.received();
        if got.len() >= n {
            return got;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: {} received",
            got.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Writes `dir/carillon.toml`: [`config_head`] and then `rest`.
pub fn config_file(
    dir: &std::path::Path,
    admin: &str,
    ingest: &str,
    rest: &str,
) -> std::path::PathBuf {
    let file = dir.join("carillon.toml");
    let text = format!("{}{rest}", config_head(dir, admin, ingest));
    std::fs::write(&file, text).expect("write the config");
    file
}

/// The head of a test gateway's `carillon.toml`: any port on loopback,
/// data and plugins under `data`, the admin token, one ingest token named
/// `app`, and egress to loopback allowed (the fakes).
fn config_head(data: &std::path::Path, admin: &str, ingest: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
data_dir = "{data}"
plugin_dir = "{data}/plugins"
[auth]
admin_token = "{admin}"
[[auth.ingest]]
name = "app"
token = "{ingest}"
[egress]
allow_private = ["127.0.0.1/32"]
"#,
        data = data.display()
    )
}
