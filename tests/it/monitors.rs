//! Resource monitors end to end: a real gateway on a manual clock with a
//! rule on an application gauge, a webhook receiver as the destination.
//! `metric.gauge` events (and a Prometheus push) move the rule through
//! firing and back; the receiver sees one `resource.alert`, then one
//! `resource.resolved`; a restart while firing sends no duplicate.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use carillon::config::{Config, Resolver};
use carillon::dispatch::DispatchConfig;
use carillon::gateway::{Gateway, Options};
use carillon_outbox::{Clock, ManualClock, SystemClock};
use carillon_tests::fakes::webhook::{Received, Receiver};
use reqwest::StatusCode;
use serde_json::{Value, json};

const ADMIN: &str = "adm-monitors-1a2b3c4d5e6f";
const APP: &str = "ing-monitors-0123456789";

fn config_text(data: &Path, hook: &Receiver) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
data_dir = "{data}"
plugin_dir = "{data}/plugins"

[auth]
admin_token = "{ADMIN}"

[[auth.ingest]]
name = "app"
token = "{APP}"

[egress]
allow_private = ["127.0.0.1/32"]

[render]
default_locale = "en"

[monitors]
system = false
interval = "1h"

[[monitors.rules]]
name = "dataset-size"
metric = "dataset.bytes"
labels = {{ dataset = "orders" }}
op = ">"
threshold = 100
recovery = 80
severity = "error"

[[monitors.rules]]
name = "queue"
metric = "jobs_waiting"
op = ">="
threshold = 10

[destinations.ops]
plugin = "webhook"
config = {{ url = "{url}" }}

[[routes]]
name = "resources"
match.event = ["resource.*"]
destinations = ["ops"]
"#,
        data = data.display(),
        url = hook.url("/ops"),
    )
}

struct Gw {
    gateway: Option<Gateway>,
    base: String,
    http: reqwest::Client,
    hook: Receiver,
    clock: Arc<ManualClock>,
    dir: tempfile::TempDir,
}

impl Gw {
    async fn start() -> Gw {
        let dir = tempfile::tempdir().expect("tempdir");
        let hook = Receiver::start(None).await;
        let clock = Arc::new(ManualClock::new(SystemClock.now()));
        let (gateway, base) = launch(dir.path(), &hook, &clock).await;
        Gw {
            gateway: Some(gateway),
            base,
            http: reqwest::Client::new(),
            hook,
            clock,
            dir,
        }
    }

    async fn restart(&mut self) {
        if let Some(g) = self.gateway.take() {
            g.shutdown().await;
        }
        let (gateway, base) = launch(self.dir.path(), &self.hook, &self.clock).await;
        self.gateway = Some(gateway);
        self.base = base;
    }

    async fn gauge(&self, value: Value) -> (StatusCode, Value) {
        let event = json!({
            "type": "metric.gauge",
            "source": "warehouse",
            "data": { "name": "dataset.bytes", "value": value, "unit": "GiB",
                      "labels": { "dataset": "orders" } }
        });
        self.post_event(&event).await
    }

    async fn post_event(&self, event: &Value) -> (StatusCode, Value) {
        let r = self
            .http
            .post(format!("{}/v1/events", self.base))
            .bearer_auth(APP)
            .json(event)
            .send()
            .await
            .expect("request");
        (r.status(), r.json().await.unwrap_or(Value::Null))
    }

    async fn push(&self, text: &str) -> (StatusCode, Value) {
        let r = self
            .http
            .post(format!("{}/v1/metrics", self.base))
            .bearer_auth(APP)
            .header("content-type", "text/plain; version=0.0.4")
            .body(text.to_owned())
            .send()
            .await
            .expect("request");
        (r.status(), r.json().await.unwrap_or(Value::Null))
    }

    async fn monitors(&self) -> Value {
        let r = self
            .http
            .get(format!("{}/v1/monitors", self.base))
            .bearer_auth(ADMIN)
            .send()
            .await
            .expect("request");
        assert_eq!(r.status(), StatusCode::OK);
        r.json().await.expect("json")
    }

    async fn stop(mut self) {
        if let Some(g) = self.gateway.take() {
            g.shutdown().await;
        }
    }
}

async fn launch(dir: &Path, hook: &Receiver, clock: &Arc<ManualClock>) -> (Gateway, String) {
    let text = config_text(dir, hook);
    let env = |_: &str| None;
    let resolver = Resolver {
        env: &env,
        base_dir: dir,
    };
    let config = Config::from_toml(&text, &resolver).unwrap_or_else(|p| panic!("config: {p}"));
    let options = Options {
        clock: clock.clone(),
        dispatch: DispatchConfig {
            poll_interval: Duration::from_millis(20),
            ..DispatchConfig::default()
        },
        ..Options::default()
    };
    let gateway = Gateway::start(config, options)
        .await
        .expect("gateway starts");
    let base = format!("http://{}", gateway.local_addr());
    (gateway, base)
}

/// Waits until `receiver` has seen `n` requests.
async fn wait_for(receiver: &Receiver, n: usize) -> Vec<Received> {
    for _ in 0..500 {
        let got = receiver.received();
        if got.len() >= n {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("expected {n} requests, got {}", receiver.received().len());
}

/// Gives the gateway time to do what it should not, then counts.
async fn settle(receiver: &Receiver) -> usize {
    tokio::time::sleep(Duration::from_millis(300)).await;
    receiver.received().len()
}

#[tokio::test]
async fn gauges_raise_one_alert_then_one_resolved() {
    let mut gw = Gw::start().await;
    let (s, body) = gw.gauge(json!(90)).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{body}");
    assert_eq!(settle(&gw.hook).await, 0, "below the threshold");

    let (s, body) = gw.gauge(json!(120.5)).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{body}");
    let got = wait_for(&gw.hook, 1).await;
    let msg = got[0].json();
    assert_eq!(
        msg["title"], "⚠️ dataset.bytes above threshold on dataset=orders",
        "{msg}"
    );
    let text = msg.to_string();
    assert!(text.contains("120.5GiB"), "{text}");
    assert!(text.contains("100GiB"), "{text}");

    let listed = gw.monitors().await;
    assert_eq!(listed["firing"], 1, "{listed}");
    let pair = &listed["items"][0];
    assert_eq!(pair["rule"], "dataset-size");
    assert_eq!(pair["state"], "firing");
    assert_eq!(pair["value"], 120.5);
    assert!(pair["last_fired"].is_string(), "{pair}");

    // Inside the band (below 100, above 80) and above again: no storm.
    for v in [95, 101, 85, 130, 81] {
        gw.clock.advance(Duration::from_secs(60));
        assert_eq!(gw.gauge(json!(v)).await.0, StatusCode::ACCEPTED);
    }
    assert_eq!(settle(&gw.hook).await, 1, "no event inside the band");

    // A restart while firing: still firing, nothing sent again.
    gw.restart().await;
    assert_eq!(gw.monitors().await["firing"], 1);
    assert_eq!(gw.gauge(json!(150)).await.0, StatusCode::ACCEPTED);
    assert_eq!(settle(&gw.hook).await, 1, "no duplicate after the restart");

    gw.clock.advance(Duration::from_secs(600));
    assert_eq!(gw.gauge(json!(70)).await.0, StatusCode::ACCEPTED);
    let got = wait_for(&gw.hook, 2).await;
    let msg = got[1].json();
    assert_eq!(
        msg["title"], "✅ dataset.bytes back to normal on dataset=orders",
        "{msg}"
    );
    assert_eq!(settle(&gw.hook).await, 2, "one resolved");
    assert_eq!(gw.monitors().await["items"][0]["state"], "ok");

    let metrics = gw
        .http
        .get(format!("{}/metrics", gw.base))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("carillon_monitors_firing 0"), "{metrics}");
    assert!(metrics.contains("carillon_timers_armed 0"), "{metrics}");
    assert!(
        metrics.contains("carillon_monitor_events_total{kind=\"resolved\"} 1"),
        "{metrics}"
    );
    gw.stop().await;
}

#[tokio::test]
async fn a_prometheus_push_feeds_the_rules_and_bad_input_is_named() {
    let gw = Gw::start().await;
    let (s, body) = gw
        .push("# TYPE jobs_waiting gauge\njobs_waiting{queue=\"etl\"} 12\nother_metric 3\n")
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["samples"], 2);
    assert_eq!(body["watched"], 1);
    let got = wait_for(&gw.hook, 1).await;
    let msg = got[0].json();
    assert_eq!(
        msg["title"], "⚠️ jobs_waiting above threshold on queue=etl",
        "{msg}"
    );

    let (s, body) = gw.push("jobs_waiting 1\njobs_waiting{queue=} 2\n").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["errors"][0]["path"], "line 2", "{body}");

    let (s, body) = gw
        .post_event(&json!({ "type": "metric.gauge", "source": "w",
                             "data": { "name": "host.cpu_percent", "value": "x" } }))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    let text = body.to_string();
    assert!(
        text.contains("/data/name") && text.contains("/data/value"),
        "{text}"
    );
    assert_eq!(settle(&gw.hook).await, 1);
    gw.stop().await;
}
