//! A paused destination through the API: a real gateway whose DingTalk
//! destination's token the fake does not know (errcode 300001). The pause
//! shows in `GET /v1/destinations` (with the vendor's code and since when)
//! and in `/metrics`; the deliveries wait; `POST
//! /v1/destinations/{name}/resume` (admin only) sends them.

use std::time::Duration;

use carillon::config::{Config, Resolver};
use carillon::dispatch::DispatchConfig;
use carillon::gateway::{Gateway, Options};
use carillon_tests::fakes::dingtalk;
use reqwest::StatusCode;
use serde_json::{Value, json};

const ADMIN: &str = "adm-test-9f8e7d6c5b4a";
const ETL: &str = "ing-etl-0123456789";

struct Gw {
    gateway: Gateway,
    base: String,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Gw {
    async fn start(webhook: &str) -> Gw {
        let dir = tempfile::tempdir().expect("tempdir");
        let text = format!(
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

[destinations.dt]
plugin = "dingtalk"
config = {{ webhook = "{webhook}" }}

[[routes]]
name = "all"
match = {{ event = "*" }}
destinations = ["dt"]
"#,
            data = dir.path().display(),
        );
        let env = |_: &str| None;
        let resolver = Resolver {
            env: &env,
            base_dir: dir.path(),
        };
        let config = Config::from_toml(&text, &resolver).unwrap_or_else(|p| panic!("config: {p}"));
        let options = Options {
            dispatch: DispatchConfig {
                poll_interval: Duration::from_millis(20),
                wait_retry: Duration::from_millis(200),
                ..DispatchConfig::default()
            },
            ..Options::default()
        };
        let gateway = Gateway::start(config, options)
            .await
            .expect("gateway starts");
        let base = format!("http://{}", gateway.local_addr());
        Gw {
            gateway,
            base,
            http: reqwest::Client::new(),
            _dir: dir,
        }
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let r = request.send().await.expect("request");
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.send(
            self.http
                .get(format!("{}{path}", self.base))
                .bearer_auth(ADMIN),
        )
        .await
    }

    async fn post(&self, path: &str, token: &str, body: &Value) -> (StatusCode, Value) {
        self.send(
            self.http
                .post(format!("{}{path}", self.base))
                .bearer_auth(token)
                .json(body),
        )
        .await
    }

    async fn metrics(&self) -> String {
        self.http
            .get(format!("{}/metrics", self.base))
            .bearer_auth(ADMIN)
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text")
    }

    /// The destination `dt` as `GET /v1/destinations` lists it.
    async fn dt(&self) -> Value {
        let (status, body) = self.get("/v1/destinations").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["items"][0].clone()
    }

    /// Polls `GET /v1/events/{id}` until `done` holds for it.
    async fn event_until(&self, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let (status, event) = self.get(&format!("/v1/events/{id}")).await;
            assert_eq!(status, StatusCode::OK, "{event}");
            if done(&event) {
                return event;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "gave up waiting for {what}: {event:#}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn event(title: &str) -> Value {
    json!({ "type": "task.failed", "source": "etl", "severity": "error", "title": title, "message": "m" })
}

fn delivery_error(event: &Value) -> String {
    event["deliveries"][0]["last_error"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn a_revoked_token_pauses_the_destination_until_an_admin_resumes_it() {
    let fake = dingtalk::Fake::start(dingtalk::Bot::new("tok")).await;
    let gw = Gw::start(&fake.url("revoked")).await;
    assert_eq!(gw.dt().await["paused"], Value::Null);

    let (status, first) = gw.post("/v1/events", ETL, &event("first")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{first}");
    let first = first["id"].as_str().unwrap().to_owned();
    gw.event_until(&first, "the invalid-config answer", |e| {
        delivery_error(e).contains("300001")
    })
    .await;
    let dt = gw.dt().await;
    let paused = &dt["paused"];
    assert!(
        paused["reason"]
            .as_str()
            .unwrap()
            .contains("errcode 300001"),
        "{dt}"
    );
    assert!(paused["since"].as_str().unwrap().ends_with('Z'), "{dt}");
    assert!(
        !dt.to_string().contains("access_token=revoked"),
        "the token stays redacted: {dt}"
    );
    let metrics = gw.metrics().await;
    assert!(
        metrics.contains(r#"carillon_destination_paused{destination="dt"} 1"#),
        "{metrics}"
    );

    // The next event waits (not dead, no attempt counted, nothing sent).
    let (_, second) = gw.post("/v1/events", ETL, &event("second")).await;
    let second = second["id"].as_str().unwrap().to_owned();
    let waiting = gw
        .event_until(&second, "the second delivery to wait", |e| {
            delivery_error(e).contains("is paused")
        })
        .await;
    assert_eq!(waiting["deliveries"][0]["state"], "scheduled", "{waiting}");
    assert_eq!(waiting["deliveries"][0]["attempts"], 0, "{waiting}");
    assert_eq!(fake.requests().len(), 1, "one request reached DingTalk");

    // Resuming is an admin's act.
    let resume = "/v1/destinations/dt/resume";
    let (status, _) = gw.post(resume, ETL, &json!({})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = gw
        .post("/v1/destinations/nope/resume", ADMIN, &json!({}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    // The robot's token works again; the admin resumes; both are delivered.
    fake.add_bot(dingtalk::Bot::new("revoked"));
    let (status, body) = gw.post(resume, ADMIN, &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["resumed"], true, "{body}");
    assert!(body["paused_since"].is_string(), "{body}");
    for id in [&first, &second] {
        gw.event_until(id, "delivered after the resume", |e| {
            e["deliveries"][0]["state"] == "delivered"
        })
        .await;
    }
    assert_eq!(fake.delivered().len(), 2);
    assert_eq!(gw.dt().await["paused"], Value::Null);
    let metrics = gw.metrics().await;
    assert!(
        metrics.contains(r#"carillon_destination_paused{destination="dt"} 0"#),
        "{metrics}"
    );
    let (status, body) = gw.post(resume, ADMIN, &json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["resumed"], false, "{body}");
    gw.gateway.shutdown().await;
}
