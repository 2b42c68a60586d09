//! Task timeouts end to end: a real gateway on a manual clock, a webhook
//! receiver as the destination. `task.started` arms a timer, a
//! completion disarms it, the deadline raises `task.timeout` once, a late
//! completion raises `task.finished-late`, and bad input arms nothing.

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

const ADMIN: &str = "adm-timers-9f8e7d6c5b4a";
const ETL: &str = "ing-timers-0123456789";

struct Gw {
    gateway: Option<Gateway>,
    base: String,
    http: reqwest::Client,
    hook: Receiver,
    clock: Arc<ManualClock>,
    _dir: tempfile::TempDir,
}

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
name = "etl"
token = "{ETL}"

[egress]
allow_private = ["127.0.0.1/32"]

[render]
default_locale = "en"

[timeouts]
notify_late = true
ETL = "2h"

[destinations.ops]
plugin = "webhook"
config = {{ url = "{url}" }}

[[routes]]
name = "timeouts"
match.event = ["task.timeout", "task.finished-late"]
destinations = ["ops"]
"#,
        data = data.display(),
        url = hook.url("/ops"),
    )
}

impl Gw {
    async fn start() -> Gw {
        let dir = tempfile::tempdir().expect("tempdir");
        let hook = Receiver::start(None).await;
        let text = config_text(dir.path(), &hook);
        let env = |_: &str| None;
        let resolver = Resolver {
            env: &env,
            base_dir: dir.path(),
        };
        let config = Config::from_toml(&text, &resolver).unwrap_or_else(|p| panic!("config: {p}"));
        // Starts at the real time, so event times and deadlines read as usual.
        let clock = Arc::new(ManualClock::new(SystemClock.now()));
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
        Gw {
            gateway: Some(gateway),
            base,
            http: reqwest::Client::new(),
            hook,
            clock,
            _dir: dir,
        }
    }

    async fn post(&self, event: &Value) -> (StatusCode, Value) {
        let r = self
            .http
            .post(format!("{}/v1/events", self.base))
            .bearer_auth(ETL)
            .json(event)
            .send()
            .await
            .expect("request");
        (r.status(), r.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(ADMIN)
            .send()
            .await
            .expect("request");
        (r.status(), r.json().await.unwrap_or(Value::Null))
    }

    async fn timers(&self) -> Vec<Value> {
        let (s, body) = self.get("/v1/timers").await;
        assert_eq!(s, StatusCode::OK, "{body}");
        body["items"].as_array().cloned().unwrap_or_default()
    }

    /// Moves the manual clock and wakes the timer task (it sleeps in real
    /// time, which the manual clock does not follow).
    fn advance(&self, d: Duration) {
        self.clock.advance(d);
        if let Some(g) = &self.gateway {
            g.state().outbox.timers_changed().notify_one();
        }
    }

    async fn stop(mut self) {
        if let Some(g) = self.gateway.take() {
            g.shutdown().await;
        }
    }
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

/// Waits until the deliveries of the event `received` came from are
/// recorded delivered: before a test moves the manual clock far, or a
/// delivery answered but not yet recorded would see its lease expire and
/// go out again.
async fn recorded(gw: &Gw, received: &Received) {
    let id = received.json()["event_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    for _ in 0..500 {
        let (_, body) = gw.get(&format!("/v1/events/{id}")).await;
        let states: Vec<&str> = body["deliveries"]
            .as_array()
            .map(|d| d.iter().filter_map(|d| d["state"].as_str()).collect())
            .unwrap_or_default();
        if !states.is_empty() && states.iter().all(|s| *s == "delivered") {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the deliveries of event {id} were not recorded delivered");
}

/// Gives the gateway time to do what it should not, then counts.
async fn settle(receiver: &Receiver) -> usize {
    tokio::time::sleep(Duration::from_millis(300)).await;
    receiver.received().len()
}

fn started(run: &str, extra: Value) -> Value {
    let mut data = json!({ "run_id": run, "taskname": "orders_daily", "owner": "wang.li" });
    if let (Some(d), Some(x)) = (data.as_object_mut(), extra.as_object()) {
        for (k, v) in x {
            d.insert(k.clone(), v.clone());
        }
    }
    json!({ "type": "task.started", "source": "airflow", "data": data })
}

fn done(kind: &str, run: &str) -> Value {
    json!({ "type": kind, "source": "airflow", "data": { "run_id": run, "taskname": "orders_daily" } })
}

#[tokio::test]
async fn a_timeout_fires_once_at_its_deadline() {
    let gw = Gw::start().await;
    let (s, body) = gw
        .post(&started(
            "r1",
            json!({ "timeout_secs": 60, "tasktype": "report" }),
        ))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{body}");
    let timers = gw.timers().await;
    assert_eq!(timers.len(), 1, "{timers:?}");
    assert_eq!(timers[0]["run_id"], "r1");
    assert_eq!(timers[0]["task_type"], "report");
    assert_eq!(timers[0]["kind"], "task.timeout");

    gw.advance(Duration::from_secs(59));
    assert_eq!(settle(&gw.hook).await, 0, "not before the deadline");
    gw.advance(Duration::from_secs(1));
    let got = wait_for(&gw.hook, 1).await;
    let msg = got[0].json();
    assert_eq!(msg["title"], "⏰ orders_daily timed out", "{msg}");
    let text = msg.to_string();
    assert!(text.contains("wang.li"), "{text}");
    assert!(text.contains("Running for:** 1m 0s"), "{text}");
    assert!(!text.contains("(late:"), "on time: {text}");

    recorded(&gw, &got[0]).await;
    gw.advance(Duration::from_secs(3600));
    assert_eq!(settle(&gw.hook).await, 1, "exactly once");
    assert!(gw.timers().await.is_empty());
    let (_, metrics) = {
        let r = gw
            .http
            .get(format!("{}/metrics", gw.base))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap();
        (r.status(), r.text().await.unwrap())
    };
    assert!(metrics.contains("carillon_timers_armed 0"), "{metrics}");
    assert!(
        metrics.contains("carillon_timers_fired_total{late=\"false\"} 1"),
        "{metrics}"
    );
    gw.stop().await;
}

#[tokio::test]
async fn each_completion_kind_disarms_its_runs_timer() {
    let gw = Gw::start().await;
    for (i, kind) in ["task.succeeded", "task.failed", "task.cancelled"]
        .iter()
        .enumerate()
    {
        let run = format!("run-{i}");
        let (s, body) = gw.post(&started(&run, json!({ "timeout_secs": 60 }))).await;
        assert_eq!(s, StatusCode::ACCEPTED, "{body}");
        // Another source's completion of the same run id does not count.
        let mut other = done(kind, &run);
        other["source"] = json!("cron");
        assert_eq!(gw.post(&other).await.0, StatusCode::ACCEPTED);
        assert_eq!(gw.timers().await.len(), 1, "{kind}");
        let (s, body) = gw.post(&done(kind, &run)).await;
        assert_eq!(s, StatusCode::ACCEPTED, "{body}");
        assert!(gw.timers().await.is_empty(), "{kind} disarms");
    }
    gw.advance(Duration::from_secs(600));
    assert_eq!(settle(&gw.hook).await, 0, "nothing fires");
    gw.stop().await;
}

#[tokio::test]
async fn the_task_types_default_applies() {
    let gw = Gw::start().await;
    let (s, body) = gw
        .post(&started("etl-1", json!({ "tasktype": "ETL" })))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{body}");
    let timers = gw.timers().await;
    assert_eq!(timers.len(), 1);
    let armed: jiff::Timestamp = timers[0]["armed_at"].as_str().unwrap().parse().unwrap();
    let deadline: jiff::Timestamp = timers[0]["deadline"].as_str().unwrap().parse().unwrap();
    assert_eq!(deadline.duration_since(armed).as_secs(), 7200);
    // A type without a default, and no timeout given: nothing is armed.
    let (s, _) = gw
        .post(&started("rep-1", json!({ "tasktype": "report" })))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    assert_eq!(gw.timers().await.len(), 1);
    // Filters.
    let (_, page) = gw.get("/v1/timers?type=ETL&source=airflow").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    let (_, page) = gw.get("/v1/timers?type=report").await;
    assert!(page["items"].as_array().unwrap().is_empty());

    gw.advance(Duration::from_secs(7199));
    assert_eq!(settle(&gw.hook).await, 0);
    gw.advance(Duration::from_secs(1));
    let got = wait_for(&gw.hook, 1).await;
    assert!(got[0].json().to_string().contains("ETL"));
    gw.stop().await;
}

#[tokio::test]
async fn a_completion_after_the_timeout_sends_finished_late() {
    let gw = Gw::start().await;
    assert_eq!(
        gw.post(&started("r9", json!({ "timeout_secs": 30 })))
            .await
            .0,
        StatusCode::ACCEPTED
    );
    gw.advance(Duration::from_secs(30));
    let got = wait_for(&gw.hook, 1).await;
    recorded(&gw, &got[0]).await;
    gw.advance(Duration::from_secs(600));
    let (s, body) = gw.post(&done("task.succeeded", "r9")).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{body}");
    let got = wait_for(&gw.hook, 2).await;
    let late = got[1].json();
    assert_eq!(
        late["title"], "🐢 orders_daily finished after its timeout",
        "{late}"
    );
    assert!(late.to_string().contains("succeeded after"), "{late}");
    // Once: a repeated completion is not late again.
    assert_eq!(
        gw.post(&done("task.succeeded", "r9")).await.0,
        StatusCode::ACCEPTED
    );
    assert_eq!(settle(&gw.hook).await, 2);
    gw.stop().await;
}

#[tokio::test]
async fn bad_input_names_the_field_and_arms_nothing() {
    let gw = Gw::start().await;
    let past = "2000-01-01T00:00:00Z";
    let cases = [
        (
            json!({ "type": "task.started", "source": "airflow", "data": { "timeout_secs": 60 } }),
            "/data/run_id",
        ),
        (
            started("r", json!({ "timeout_secs": -1 })),
            "/data/timeout_secs",
        ),
        (
            started("r", json!({ "timeout_secs": 40 * 86_400 })),
            "/data/timeout_secs",
        ),
        (started("r", json!({ "deadline": past })), "/data/deadline"),
        (
            started("r", json!({ "deadline": "next tuesday" })),
            "/data/deadline",
        ),
    ];
    for (event, path) in cases {
        let (s, body) = gw.post(&event).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{event}: {body}");
        assert_eq!(body["error"]["errors"][0]["path"], path, "{body}");
    }
    assert!(gw.timers().await.is_empty());
    gw.stop().await;
}

#[tokio::test]
async fn an_admin_cancels_a_timer() {
    let gw = Gw::start().await;
    gw.post(&started("r1", json!({ "timeout_secs": 60 }))).await;
    let id = gw.timers().await[0]["id"].as_str().unwrap().to_owned();
    let delete = |token: &'static str| {
        gw.http
            .delete(format!("{}/v1/timers/{id}", gw.base))
            .bearer_auth(token)
            .send()
    };
    assert_eq!(
        delete(ETL).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        delete(ADMIN).await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(delete(ADMIN).await.unwrap().status(), StatusCode::NOT_FOUND);
    gw.advance(Duration::from_secs(120));
    assert_eq!(settle(&gw.hook).await, 0);
    gw.stop().await;
}
