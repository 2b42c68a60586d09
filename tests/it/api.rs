//! The HTTP API end to end: a real gateway (`Gateway::start`) on
//! 127.0.0.1 with the real plugins, webhook receivers standing in for the
//! destinations, and a real HTTP client.

use std::path::Path;
use std::time::Duration;

use carillon::config::{Config, Resolver};
use carillon::dispatch::DispatchConfig;
use carillon::dispatch::retry::RetryPolicy;
use carillon::gateway::{Gateway, Options};
use carillon_tests::fakes::webhook::{Answer, Receiver};
use reqwest::StatusCode;
use serde_json::{Value, json};

const ADMIN: &str = "adm-test-9f8e7d6c5b4a";
const ETL: &str = "ing-etl-0123456789";
const LIMITED: &str = "ing-limited-0123456789";
const HOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// A gateway with three webhook destinations, routes and templates.
struct Gw {
    gateway: Option<Gateway>,
    base: String,
    http: reqwest::Client,
    ops: Receiver,
    oncall: Receiver,
    db: Receiver,
    _dir: tempfile::TempDir,
}

fn config_text(data: &Path, ops: &Receiver, oncall: &Receiver, db: &Receiver) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
data_dir = "{data}"
plugin_dir = "{data}/plugins"
body_limit_bytes = 65536

[auth]
admin_token = "{ADMIN}"

[[auth.ingest]]
name = "etl"
token = "{ETL}"

[[auth.ingest]]
name = "limited"
token = "{LIMITED}"
event_types = ["task.*"]
destinations = ["ops"]

[egress]
allow_private = ["127.0.0.1/32"]

[render]
time_zone = "Asia/Shanghai"
default_locale = "en"

[destinations.ops]
plugin = "webhook"
config = {{ url = "{ops_url}", signing_secret = "{HOOK_SECRET}" }}

[destinations.oncall]
plugin = "webhook"
locale = "zh"
config = {{ url = "{oncall_url}" }}

[destinations.db]
plugin = "webhook"
config = {{ url = "{db_url}" }}

[[routes]]
name = "db-team"
match = {{ event = "alert.*", conditions = [{{ field = "labels.team", equals = "db" }}] }}
destinations = ["db"]
continue = true

[[routes]]
name = "task-failures"
match = {{ event = "task.*", min_severity = "error" }}
destinations = ["ops", "oncall"]
template = "task"

[[routes]]
name = "alerts"
match = {{ event = "alert.*" }}
destinations = ["ops"]

[templates.task.en]
title = "${{taskname}} failed"
body = """
Task **${{taskname}}** failed on ${{yyyy-mm-dd}} at ${{hh24:mi:ss}} (partition ${{yyyymmdd-1}}).
{{% if owner is defined %}}Owner: ${{owner}}{{% endif %}}
"""

[templates.task.zh]
title = "任务 ${{taskname}} 失败"
body = "任务 **${{taskname}}** 于 ${{yyyy-mm-dd}} ${{hh24:mi:ss}} 失败（分区 ${{yyyymmdd-1}}）。"
"#,
        data = data.display(),
        ops_url = ops.url("/ops"),
        oncall_url = oncall.url("/oncall"),
        db_url = db.url("/db"),
    )
}

impl Gw {
    async fn start() -> Gw {
        Gw::start_with(|_| {}, Options::default()).await
    }

    async fn start_with(edit: impl FnOnce(&mut String), options: Options) -> Gw {
        let dir = tempfile::tempdir().expect("tempdir");
        let ops = Receiver::start(Some(HOOK_SECRET)).await;
        let oncall = Receiver::start(None).await;
        let db = Receiver::start(None).await;
        let mut text = config_text(dir.path(), &ops, &oncall, &db);
        edit(&mut text);
        let config = load(&text, dir.path());
        let options = Options {
            dispatch: DispatchConfig {
                poll_interval: Duration::from_millis(20),
                ..DispatchConfig::default()
            },
            ..options
        };
        let gateway = Gateway::start(config, options)
            .await
            .expect("gateway starts");
        let base = format!("http://{}", gateway.local_addr());
        Gw {
            gateway: Some(gateway),
            base,
            http: reqwest::Client::new(),
            ops,
            oncall,
            db,
            _dir: dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    async fn post_json(&self, path: &str, token: &str, body: &Value) -> (StatusCode, Value) {
        let r = self
            .http
            .post(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("request");
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Posts `body` as is, with these headers.
    async fn post_raw(
        &self,
        path: &str,
        token: &str,
        headers: &[(&str, &str)],
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        let mut request = self.http.post(self.url(path)).bearer_auth(token);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.body(body).send().await.expect("request")
    }

    async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        let r = self
            .http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request");
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn stop(mut self) {
        if let Some(g) = self.gateway.take() {
            g.shutdown().await;
        }
    }
}

fn load(text: &str, dir: &Path) -> Config {
    let env = |name: &str| match name {
        "TEST_HOOK_SECRET" => Some(HOOK_SECRET.to_owned()),
        _ => None,
    };
    let resolver = Resolver {
        env: &env,
        base_dir: dir,
    };
    Config::from_toml(text, &resolver).unwrap_or_else(|p| panic!("config: {p}"))
}

/// Waits until `receiver` has seen `n` requests.
async fn wait_for(receiver: &Receiver, n: usize) -> Vec<carillon_tests::fakes::webhook::Received> {
    for _ in 0..500 {
        let got = receiver.received();
        if got.len() >= n {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("expected {n} requests, got {}", receiver.received().len());
}

fn task_failed() -> Value {
    json!({
        "type": "task.failed",
        "source": "etl",
        "severity": "error",
        "time": "2026-11-23T01:30:00Z",
        "data": { "taskname": "orders_daily", "owner": "wang.li" }
    })
}

#[tokio::test]
async fn an_event_is_accepted_routed_rendered_in_each_locale_and_delivered() {
    let gw = Gw::start().await;
    let (status, body) = gw.post_json("/v1/events", ETL, &task_failed()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["result"], "accepted");
    assert_eq!(body["unrouted"], false);
    let deliveries = body["deliveries"].as_array().unwrap();
    let dests: Vec<&str> = deliveries
        .iter()
        .map(|d| d["destination"].as_str().unwrap())
        .collect();
    assert_eq!(dests, ["ops", "oncall"]);

    // English for ops; Chinese for oncall (its locale); time expressions in
    // Asia/Shanghai: 01:30 UTC is 09:30 on the same day there.
    let ops = wait_for(&gw.ops, 1).await;
    assert_eq!(
        ops[0].signature_ok,
        Some(true),
        "signed per Standard Webhooks"
    );
    let m = ops[0].json();
    assert_eq!(m["title"], "orders_daily failed");
    assert_eq!(m["locale"], "en");
    let md = m["markdown"].as_str().unwrap();
    assert!(
        md.contains("failed on 2026-11-23 at 09:30:00 (partition 20261122)"),
        "{md}"
    );
    assert!(md.contains("Owner: wang.li"), "{md}");
    assert_eq!(m["severity"], "error");
    let oncall = wait_for(&gw.oncall, 1).await;
    let m = oncall[0].json();
    assert_eq!(m["title"], "任务 orders_daily 失败");
    assert_eq!(m["locale"], "zh");
    assert!(
        m["markdown"]
            .as_str()
            .unwrap()
            .contains("2026-11-23 09:30:00")
    );
    assert!(gw.db.received().is_empty());

    // The admin API shows the routing decision and each attempt.
    let id = body["id"].as_str().unwrap();
    let mut event = Value::Null;
    for _ in 0..200 {
        let (status, e) = gw.get(&format!("/v1/events/{id}"), ADMIN).await;
        assert_eq!(status, StatusCode::OK, "{e}");
        event = e;
        if event["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["state"] == "delivered")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(event["token"], "etl");
    assert_eq!(event["routing"]["matched"], json!(["task-failures"]));
    assert_eq!(event["routing"]["targets"][1]["locale"], "zh");
    assert_eq!(event["routing"]["targets"][0]["template"], "task");
    for d in event["deliveries"].as_array().unwrap() {
        assert_eq!(d["state"], "delivered", "{event}");
        assert_eq!(d["history"][0]["outcome"], "delivered");
    }
    gw.stop().await;
}

#[tokio::test]
async fn a_repeated_idempotency_key_gets_200_and_the_original_id() {
    let gw = Gw::start().await;
    let mut event = task_failed();
    event["idempotency_key"] = json!("run-42");
    let (s1, b1) = gw.post_json("/v1/events", ETL, &event).await;
    let (s2, b2) = gw.post_json("/v1/events", ETL, &event).await;
    assert_eq!(s1, StatusCode::ACCEPTED);
    assert_eq!(s2, StatusCode::OK, "{b2}");
    assert_eq!(b2["result"], "duplicate");
    assert_eq!(b1["id"], b2["id"]);
    assert_eq!(b1["deliveries"], b2["deliveries"]);
    // The Idempotency-Key header works the same for an event without a key.
    let send = || {
        gw.http
            .post(gw.url("/v1/events"))
            .bearer_auth(ETL)
            .header("Idempotency-Key", "hdr-7")
            .json(&task_failed())
            .send()
    };
    let a = send().await.unwrap();
    let b = send().await.unwrap();
    assert_eq!(a.status(), StatusCode::ACCEPTED);
    assert_eq!(b.status(), StatusCode::OK);
    wait_for(&gw.ops, 2).await;
    gw.stop().await;
}

#[tokio::test]
async fn every_refusal_has_its_status_and_code() {
    let gw = Gw::start().await;
    let code = |v: &Value| v["error"]["code"].as_str().unwrap_or_default().to_owned();

    // 401: no token, a wrong token, an ingest token on the admin API.
    let r = gw
        .http
        .post(gw.url("/v1/events"))
        .json(&task_failed())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.headers().contains_key("www-authenticate"));
    let (s, b) = gw.post_json("/v1/events", "nope", &task_failed()).await;
    assert_eq!(
        (s, code(&b).as_str()),
        (StatusCode::UNAUTHORIZED, "unauthorized")
    );
    let (s, _) = gw.get("/v1/plugins", ETL).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // 400: every schema problem, with its path.
    let (s, b) = gw
        .post_json(
            "/v1/events",
            ETL,
            &json!({ "source": "etl", "severity": "fatal", "colour": 1 }),
        )
        .await;
    assert_eq!(
        (s, code(&b).as_str()),
        (StatusCode::BAD_REQUEST, "invalid_event"),
        "{b}"
    );
    let errors = b["error"]["errors"].as_array().unwrap();
    let text = serde_json::to_string(errors).unwrap();
    assert!(errors.len() >= 3, "{text}");
    assert!(text.contains("/severity"), "{text}");
    assert!(text.contains("type"), "{text}");
    assert!(text.contains("colour"), "{text}");

    // 400: not JSON at all.
    let r = gw
        .post_raw(
            "/v1/events",
            ETL,
            &[("content-type", "application/json")],
            "{\"type\": ",
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(code(&r.json().await.unwrap()), "malformed_json");

    // 403: a type the token may not post, a destination it may not name.
    let (s, b) = gw
        .post_json(
            "/v1/events",
            LIMITED,
            &json!({ "type": "alert.firing", "source": "x" }),
        )
        .await;
    assert_eq!(
        (s, code(&b).as_str()),
        (StatusCode::FORBIDDEN, "forbidden"),
        "{b}"
    );
    let (s, b) = gw
        .post_json(
            "/v1/events",
            LIMITED,
            &json!({ "type": "task.done", "source": "x", "destinations": ["db"] }),
        )
        .await;
    assert_eq!(
        (s, code(&b).as_str()),
        (StatusCode::FORBIDDEN, "forbidden"),
        "{b}"
    );
    // … but it may name the one it is allowed.
    let (s, b) = gw
        .post_json(
            "/v1/events",
            LIMITED,
            &json!({ "type": "task.done", "source": "x", "destinations": ["ops"] }),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{b}");

    // 413: over the body limit (64 KiB here).
    let big = json!({ "type": "task.done", "source": "x", "message": "x".repeat(70_000) });
    let (s, b) = gw.post_json("/v1/events", ETL, &big).await;
    assert_eq!(
        (s, code(&b).as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
    );

    // 415: a content type nobody speaks.
    let r = gw
        .post_raw("/v1/events", ETL, &[("content-type", "text/csv")], "a,b")
        .await;
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(code(&r.json().await.unwrap()), "unsupported_media_type");

    // 422: valid, but the route's template needs `taskname`.
    let (s, b) = gw
        .post_json(
            "/v1/events",
            ETL,
            &json!({ "type": "task.failed", "source": "etl", "severity": "error" }),
        )
        .await;
    assert_eq!(
        (s, code(&b).as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "unrenderable"),
        "{b}"
    );
    let message = b["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("task") && message.contains("taskname"),
        "{message}"
    );

    // 404 with the API's error body.
    let (s, b) = gw.get("/v1/nothing-here", ADMIN).await;
    assert_eq!((s, code(&b).as_str()), (StatusCode::NOT_FOUND, "not_found"));
    let (s, _) = gw
        .get("/v1/events/evt_00000000000000000000000000", ADMIN)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    gw.stop().await;
}

#[tokio::test]
async fn a_full_outbox_answers_503_with_retry_after() {
    let gw = Gw::start_with(
        |text| text.push_str("\n[outbox]\nmax_pending = 1\n"),
        Options::default(),
    )
    .await;
    // Hold the first delivery: the receiver answers slowly.
    gw.ops
        .script([Answer::status(200).delay(Duration::from_secs(2))]);
    let first = json!({ "type": "task.done", "source": "x", "destinations": ["ops"] });
    let (s, _) = gw.post_json("/v1/events", ETL, &first).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let r = gw
        .http
        .post(gw.url("/v1/events"))
        .bearer_auth(ETL)
        .json(&first)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.headers().get("retry-after").is_some());
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["error"]["code"], "backpressure");
    gw.stop().await;
}

#[tokio::test]
async fn a_batch_gets_one_result_per_item() {
    let gw = Gw::start().await;
    let batch = json!([
        task_failed(),
        { "type": "task.failed", "source": "etl", "severity": "nope" },
        { "type": "misc.thing", "source": "etl" }
    ]);
    let (s, b) = gw.post_json("/v1/events", ETL, &batch).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let items = b["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert_eq!(items[0]["status"], 202);
    assert_eq!(items[1]["status"], 400);
    assert!(
        serde_json::to_string(&items[1])
            .unwrap()
            .contains("/1/severity"),
        "{b}"
    );
    assert_eq!(items[2]["status"], 202);
    assert_eq!(items[2]["unrouted"], true, "no route matches misc.*");
    gw.stop().await;
}

#[tokio::test]
async fn an_unrouted_event_is_recorded_and_counted() {
    let gw = Gw::start().await;
    let (s, b) = gw
        .post_json(
            "/v1/events",
            ETL,
            &json!({ "type": "misc.note", "source": "etl" }),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{b}");
    assert_eq!(b["unrouted"], true);
    assert_eq!(b["deliveries"], json!([]));
    let (_, e) = gw
        .get(&format!("/v1/events/{}", b["id"].as_str().unwrap()), ADMIN)
        .await;
    assert_eq!(e["routing"]["unrouted"], true, "{e}");
    let metrics = gw
        .http
        .get(gw.url("/metrics"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"carillon_events_unrouted_total{token="etl"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"carillon_events_total{token="etl",outcome="accepted"} 1"#),
        "{metrics}"
    );
    gw.stop().await;
}

#[tokio::test]
async fn cloudevents_in_structured_batch_and_binary_mode() {
    let gw = Gw::start().await;
    let ce = json!({
        "specversion": "1.0",
        "id": "ce-1",
        "source": "/etl/scheduler",
        "type": "task.failed",
        "time": "2026-11-23T01:30:00Z",
        "severity": "error",
        "datacontenttype": "application/json",
        "data": { "taskname": "from_structured" }
    });
    let r = gw
        .post_raw(
            "/v1/events",
            ETL,
            &[("content-type", "application/cloudevents+json")],
            ce.to_string(),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    // The same source + id again is a duplicate.
    let r = gw
        .post_raw(
            "/v1/events",
            ETL,
            &[("content-type", "application/cloudevents+json")],
            ce.to_string(),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);

    let mut second = ce.clone();
    second["id"] = json!("ce-2");
    second["data"]["taskname"] = json!("from_batch");
    let r = gw
        .post_raw(
            "/v1/events",
            ETL,
            &[("content-type", "application/cloudevents-batch+json")],
            json!([second]).to_string(),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["items"][0]["status"], 202, "{b}");

    let r = gw
        .post_raw(
            "/v1/events",
            ETL,
            &[
                ("ce-specversion", "1.0"),
                ("ce-id", "ce-3"),
                ("ce-source", "/etl/scheduler"),
                ("ce-type", "task.failed"),
                ("ce-severity", "error"),
                ("content-type", "application/json"),
            ],
            json!({ "taskname": "from_binary" }).to_string(),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);

    let got = wait_for(&gw.ops, 3).await;
    let mut titles: Vec<String> = got
        .iter()
        .map(|r| r.json()["title"].as_str().unwrap().to_owned())
        .collect();
    titles.sort();
    assert_eq!(
        titles,
        [
            "from_batch failed",
            "from_binary failed",
            "from_structured failed"
        ]
    );
    gw.stop().await;
}

#[tokio::test]
async fn alertmanager_firing_and_resolved_alerts_route_by_label() {
    let gw = Gw::start().await;
    let payload = json!({
        "version": "4",
        "groupKey": "{}:{alertname=\"DiskFull\"}",
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "carillon",
        "groupLabels": { "alertname": "DiskFull" },
        "commonLabels": { "alertname": "DiskFull", "team": "db" },
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example:9093",
        "alerts": [
            {
                "status": "firing",
                "labels": { "alertname": "DiskFull", "team": "db", "severity": "critical", "instance": "db-1:9100" },
                "annotations": { "summary": "Disk 95% full on db-1", "description": "Only 5% left on /var/lib/postgresql." },
                "startsAt": "2026-11-23T01:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus.example:9090/graph?g0.expr=disk",
                "fingerprint": "a1b2c3d4e5f6"
            },
            {
                "status": "resolved",
                "labels": { "alertname": "DiskFull", "team": "db", "severity": "critical", "instance": "db-2:9100" },
                "annotations": { "summary": "Disk 95% full on db-2" },
                "startsAt": "2026-11-23T00:00:00Z",
                "endsAt": "2026-11-23T01:10:00Z",
                "generatorURL": "http://prometheus.example:9090/graph?g0.expr=disk",
                "fingerprint": "f6e5d4c3b2a1"
            }
        ]
    });
    let (s, b) = gw.post_json("/v1/alertmanager", ETL, &payload).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let items = b["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    for item in items {
        assert_eq!(item["status"], 202, "{b}");
        // team=db reaches `db` and, with continue, the `alerts` route too.
        let dests: Vec<&str> = item["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["destination"].as_str().unwrap())
            .collect();
        assert_eq!(dests, ["db", "ops"], "{b}");
    }
    let got = wait_for(&gw.db, 2).await;
    let mut severities: Vec<String> = got
        .iter()
        .map(|r| r.json()["severity"].as_str().unwrap().to_owned())
        .collect();
    severities.sort();
    assert_eq!(severities, ["critical", "success"]);
    let firing = got
        .iter()
        .map(|r| r.json())
        .find(|m| m["severity"] == "critical")
        .unwrap();
    let text = firing.to_string();
    assert!(text.contains("db-1"), "{text}");
    gw.stop().await;
}

#[tokio::test]
async fn the_test_push_renders_and_with_send_delivers() {
    let gw = Gw::start().await;
    let (s, b) = gw
        .post_json("/v1/destinations/ops/test", ADMIN, &json!({}))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["sent"], false);
    assert_eq!(b["request"]["kind"], "http");
    assert_eq!(b["request"]["method"], "POST");
    assert!(
        b["request"]["body"]
            .as_str()
            .unwrap()
            .contains("Carillon test message")
    );
    assert!(gw.ops.received().is_empty(), "a preview sends nothing");
    // The signing secret never shows.
    assert!(!b.to_string().contains(&HOOK_SECRET[6..]), "{b}");

    let r = gw
        .http
        .post(gw.url("/v1/destinations/ops/test?send=true"))
        .bearer_auth(ADMIN)
        .json(&json!({ "message": {
            "title": "Hello from the test push", "markdown": "**hi**", "text": "hi",
            "severity": "info", "locale": "en"
        }}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["sent"], true, "{b}");
    assert!(b.get("receipt").is_some(), "{b}");
    let got = gw.ops.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].json()["title"], "Hello from the test push");
    assert_eq!(got[0].signature_ok, Some(true));

    // An event rendered through a template, for the Chinese destination.
    let (s, b) = gw
        .post_json(
            "/v1/destinations/oncall/test",
            ADMIN,
            &json!({ "event": task_failed(), "template": "task" }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert!(
        b["request"]["body"]
            .as_str()
            .unwrap()
            .contains("任务 orders_daily 失败"),
        "{b}"
    );
    // The event's variables are shown beside the rendered message.
    assert_eq!(b["variables"]["taskname"], "orders_daily", "{b}");
    assert_eq!(b["variables"]["status"], "failed", "{b}");

    // Each destination remembers its last test push: when, by whom, what
    // happened; one never tried shows null.
    let (s, list) = gw.get("/v1/destinations", ADMIN).await;
    assert_eq!(s, StatusCode::OK, "{list}");
    let last = |name: &str| {
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["name"] == name)
            .map(|d| d["last_test_push"].clone())
            .unwrap()
    };
    let ops = last("ops");
    assert_eq!(ops["sent"], true, "{ops}");
    assert_eq!(ops["result"], "delivered", "{ops}");
    assert_eq!(ops["role"], "instance-admin", "{ops}");
    assert!(ops["by"].as_str().is_some_and(|b| !b.is_empty()), "{ops}");
    assert!(ops["at"].as_str().is_some(), "{ops}");
    let oncall = last("oncall");
    assert_eq!(oncall["sent"], false, "{oncall}");
    assert_eq!(oncall["result"], "rendered", "{oncall}");
    let never: Vec<&Value> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["name"] != "ops" && d["name"] != "oncall")
        .map(|d| &d["last_test_push"])
        .collect();
    assert!(
        !never.is_empty() && never.iter().all(|v| v.is_null()),
        "{list}"
    );

    let (s, _) = gw
        .post_json("/v1/destinations/nope/test", ADMIN, &json!({}))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // JSON of the wrong shape is a bad body, not malformed JSON
    // (schemathesis, docs/fuzzing.md).
    let (s, b) = gw
        .post_json(
            "/v1/destinations/ops/test",
            ADMIN,
            &json!({ "message": { "title": "t", "markdown": "", "text": "",
                "severity": "info", "locale": "en", "link": {} } }),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    assert_eq!(b["error"]["code"], "invalid_parameter", "{b}");
    gw.stop().await;
}

#[tokio::test]
async fn a_dead_letter_is_listed_requeued_through_the_api_and_delivered() {
    let gw = Gw::start_with(
        |_| {},
        Options {
            dispatch: DispatchConfig {
                retry: RetryPolicy {
                    max_attempts: 1,
                    ..RetryPolicy::default()
                },
                ..DispatchConfig::default()
            },
            ..Options::default()
        },
    )
    .await;
    // The config's retry policy wins over Options; a 400 is final anyway.
    gw.db.script([Answer::status(400)]);
    let (s, b) = gw
        .post_json("/v1/events", ETL, &json!({ "type": "x.y", "source": "etl", "destinations": ["db"], "title": "t", "message": "m" }))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{b}");
    let delivery = b["deliveries"][0]["id"].as_str().unwrap().to_owned();
    let mut page = Value::Null;
    for _ in 0..300 {
        let (_, p) = gw
            .get("/v1/deliveries?state=dead&destination=db", ADMIN)
            .await;
        page = p;
        if !page["items"].as_array().is_none_or(Vec::is_empty) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(page["items"][0]["id"], delivery.as_str(), "{page}");
    assert!(
        page["items"][0]["error"].as_str().unwrap().contains("400"),
        "{page}"
    );

    let (s, b) = gw
        .post_json(
            &format!("/v1/deliveries/{delivery}/retry"),
            ADMIN,
            &json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{b}");
    // Retrying it again while it is not dead is a conflict.
    let (s, b) = gw
        .post_json(
            &format!("/v1/deliveries/{delivery}/retry"),
            ADMIN,
            &json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    assert_eq!(b["error"]["code"], "conflict");
    let got = wait_for(&gw.db, 2).await;
    // No template named: the built-in generic one, which keeps the title.
    let title = got[1].json()["title"].as_str().unwrap().to_owned();
    assert!(title.ends_with(" t"), "{title}");

    // The whole destination's dead letters at once.
    gw.db.script([Answer::status(400)]);
    let (s, _) = gw
        .post_json("/v1/events", ETL, &json!({ "type": "x.y", "source": "etl", "destinations": ["db"], "title": "t2", "message": "m" }))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    for _ in 0..300 {
        let (_, p) = gw
            .get("/v1/deliveries?state=dead&destination=db", ADMIN)
            .await;
        if !p["items"].as_array().is_none_or(Vec::is_empty) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (s, b) = gw
        .post_json("/v1/destinations/db/retry-dead", ADMIN, &json!({}))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    assert_eq!(b["requeued"], 1, "{b}");
    wait_for(&gw.db, 4).await;
    gw.stop().await;
}

#[tokio::test]
async fn admin_listings_redact_secrets_and_every_route_is_served() {
    let gw = Gw::start().await;
    let (s, b) = gw.get("/v1/destinations", ADMIN).await;
    assert_eq!(s, StatusCode::OK);
    let text = b.to_string();
    assert!(text.contains("\"ops\""), "{text}");
    assert!(!text.contains(&HOOK_SECRET[6..]), "{text}");
    assert!(!text.contains(ADMIN) && !text.contains(ETL), "{text}");

    let (s, b) = gw.get("/v1/plugins", ADMIN).await;
    assert_eq!(s, StatusCode::OK);
    let names: Vec<&str> = b["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for expected in ["dingtalk", "email", "lark", "teams", "webhook", "wecom"] {
        assert!(names.contains(&expected), "{names:?}");
    }
    assert!(b["items"][0]["sha256"].as_str().unwrap().len() == 64);

    let (s, schema) = gw.get("/v1/schema/event", "").await;
    assert_eq!(s, StatusCode::OK);
    assert!(schema["properties"]["type"].is_object(), "{schema}");
    let (s, _) = gw.get("/healthz", "").await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = gw.get("/readyz", "").await;
    assert_eq!(s, StatusCode::OK);

    // Every documented route answers (never 404/405 from the router).
    for endpoint in carillon::api::ROUTES {
        let (method, path) = (endpoint.method, endpoint.path);
        let path = path.replace("{id}", "x").replace("{name}", "ops");
        let r = gw
            .http
            .request(method.parse().unwrap(), gw.url(&path))
            .send()
            .await
            .unwrap();
        let status = r.status();
        let body = r.text().await.unwrap_or_default();
        // A handler's own 404 (an activation link that names nothing) is
        // not the router's "no endpoint".
        let router_404 = status == StatusCode::NOT_FOUND && body.contains("no endpoint at");
        assert!(
            !router_404 && status != StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}: {status} {body}"
        );
    }
    gw.stop().await;
}

/// Secrets (tokens, a destination's signing secret, a secret in the URL)
/// appear in neither the logs nor any API answer, at the most verbose
/// log level, through a failing delivery, a test push and a bad request.
#[tokio::test(flavor = "current_thread")]
async fn secrets_never_appear_in_logs_or_api_answers() {
    // current_thread: the gateway's tasks run on this (capturing) thread.
    let logs = crate::support::capture_logs();
    const URL_TOKEN: &str = "urltoken-5d41402abc4b2a76";
    // One more destination whose URL carries a token, as DingTalk's and
    // WeCom's do.
    let gw = Gw::start_with(
        |text| {
            let start = text.find("url = \"http://127.0.0.1:").unwrap() + 7;
            let end = start + text[start..].find('"').unwrap();
            let url = text[start..end].to_owned();
            text.push_str(&format!(
                "\n[destinations.secret-url]\nplugin = \"webhook\"\nconfig = {{ url = \"{url}?access_token={URL_TOKEN}\" }}\n"
            ));
        },
        Options::default(),
    )
    .await;
    gw.ops.script([Answer::status(500), Answer::status(401)]);
    let mut answers = Vec::new();
    let (_, b) = gw.post_json("/v1/events", ETL, &task_failed()).await;
    answers.push(b);
    let (_, b) = gw
        .post_json("/v1/events", "wrong-token-value", &task_failed())
        .await;
    answers.push(b);
    let (_, b) = gw
        .post_json("/v1/destinations/ops/test?send=true", ADMIN, &json!({}))
        .await;
    answers.push(b);
    let (_, b) = gw.get("/v1/destinations", ADMIN).await;
    answers.push(b);
    let (_, b) = gw
        .post_json("/v1/destinations/secret-url/test", ADMIN, &json!({}))
        .await;
    answers.push(b);
    let named = json!({ "type": "x.y", "source": "etl", "title": "t", "message": "m", "destinations": ["secret-url"] });
    let (_, b) = gw.post_json("/v1/events", ETL, &named).await;
    answers.push(b);
    wait_for(&gw.oncall, 1).await;
    wait_for(&gw.ops, 3).await;
    gw.stop().await;
    let logs = logs.stop();
    assert!(logs.contains("event accepted"), "the capture works: {logs}");
    let answers = serde_json::to_string(&answers).unwrap();
    assert!(answers.contains("secret-url"), "{answers}");
    for secret in [
        ADMIN,
        ETL,
        &HOOK_SECRET[6..],
        "wrong-token-value",
        URL_TOKEN,
    ] {
        assert!(!logs.contains(secret), "{secret} in logs:\n{logs}");
        assert!(!answers.contains(secret), "{secret} in answers:\n{answers}");
    }
}

/// One event through the running gateway to every channel: the four vendor
/// fakes (which check signatures, keywords and sizes as the vendors do), a
/// webhook receiver, and a real SMTP server for email.
#[tokio::test]
async fn one_event_reaches_every_channel_through_the_running_gateway() {
    use carillon_tests::fakes::smtp::{Security, SmtpServer};
    use carillon_tests::fakes::{dingtalk, lark, teams, wecom};
    const DT_SECRET: &str = "SEC0123456789abcdef0123456789abcdef";
    const LARK_SECRET: &str = "lark-secret-0123";
    let ding = dingtalk::Fake::start(
        dingtalk::Bot::new("tok")
            .secret(DT_SECRET)
            .keywords(&["告警"]),
    )
    .await;
    let lark = lark::Fake::start(
        lark::Bot::new("hook1")
            .secret(LARK_SECRET)
            .keywords(&["告警"]),
    )
    .await;
    let wecom = wecom::Fake::start(wecom::Bot::new("key1")).await;
    let teams = teams::Fake::start_many([teams::Hook::workflow("wf1", "s3cr3t")]).await;
    let smtp = SmtpServer::start(Security::Plain).await;
    let destinations = format!(
        r#"
[destinations.ding]
plugin = "dingtalk"
config = {{ webhook = "{ding}", secret = "{DT_SECRET}", keywords = ["告警"] }}

[destinations.lark]
plugin = "lark"
config = {{ webhook = "{lark}", secret = "{LARK_SECRET}", keywords = ["告警"] }}

[destinations.wecom]
plugin = "wecom"
config = {{ webhook = "{wecom}" }}

[destinations.teams]
plugin = "teams"
config = {{ webhook = "{teams}" }}

[destinations.mail]
plugin = "email"
config = {{ server = {{ host = "127.0.0.1", port = {smtp_port}, security = "none" }}, from = "alerts@carillon.test", to = ["oncall@example.com"] }}

[[routes]]
name = "quality"
match = {{ event = "quality.*", min_severity = "warning" }}
destinations = ["ding", "lark", "wecom", "teams", "mail", "ops"]
"#,
        ding = ding.url("tok"),
        lark = lark.url("hook1"),
        wecom = wecom.url("key1"),
        teams = teams.url("wf1"),
        smtp_port = smtp.port(),
    );
    let gw = Gw::start_with(|text| text.push_str(&destinations), Options::default()).await;
    let event = json!({
        "type": "quality.report",
        "source": "dq",
        "severity": "warning",
        "locale": "zh-CN",
        "title": "告警 数据质量 Data quality",
        "message": "Two of three checks are below the **60%** threshold.",
        "table": {
            "columns": [
                { "key": "check", "title": "Check" },
                { "key": "score", "title": "Score", "suffix": "%", "condition": ">= 60" }
            ],
            "rows": [{ "check": "nulls", "score": 98 }, { "check": "dupes", "score": 42 }]
        }
    });
    let (s, b) = gw.post_json("/v1/events", ETL, &event).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{b}");
    assert_eq!(
        b["deliveries"].as_array().unwrap().len(),
        6,
        "routed to all: {b}"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let done = ding.delivered().len() == 1
            && lark.delivered().len() == 1
            && wecom.delivered().len() == 1
            && teams.posted().len() == 1
            && smtp.received().len() == 1
            && gw.ops.received().len() == 1;
        if done {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "ding {:?}\nlark {:?}\nwecom {:?}\nteams {:?}\nsmtp {}\nops {}",
            ding.requests(),
            lark.requests(),
            wecom.requests(),
            teams.requests(),
            smtp.received().len(),
            gw.ops.received().len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mail = String::from_utf8_lossy(&smtp.received()[0].data).into_owned();
    // RFC 2047 §2: the charset of an encoded word is case-insensitive
    // (lettre writes `utf-8`).
    assert!(
        mail.to_ascii_lowercase().contains("subject: =?utf-8?"),
        "{mail}"
    );
    assert!(mail.contains("multipart/alternative"), "{mail}");
    // The receivers have their requests a moment before the outcomes are
    // committed (completions are batched): wait for the states.
    loop {
        let (_, e) = gw
            .get(&format!("/v1/events/{}", b["id"].as_str().unwrap()), ADMIN)
            .await;
        let states: Vec<&serde_json::Value> = e["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| &d["state"])
            .collect();
        if states.iter().all(|s| *s == "delivered") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{e}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    gw.stop().await;
}

/// `$`-discovery: every template variable with its meaning, example and
/// value, for a sample event (GET) or the caller's own (POST); an invalid
/// event names its field under `/event`.
#[tokio::test]
async fn the_template_variables_are_listed_with_their_values() {
    let gw = Gw::start().await;
    let (s, b) = gw.get("/v1/variables", ADMIN).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let find = |b: &Value, name: &str| {
        b["variables"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no variable {name}: {b}"))
    };
    let taskname = find(&b, "taskname");
    assert_eq!(taskname["value"], "orders_daily", "{taskname}");
    assert!(
        taskname["meaning"]
            .as_str()
            .unwrap()
            .contains("data.taskname")
    );
    assert!(
        taskname["example"]
            .as_str()
            .unwrap()
            .contains("${taskname}")
    );
    assert_eq!(b["data_fields"]["rows"], 1200, "{b}");

    let (s, b) = gw
        .post_json("/v1/variables", ADMIN, &json!({ "event": task_failed() }))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(find(&b, "owner")["value"], "wang.li");
    // In render.time_zone (Asia/Shanghai here).
    assert_eq!(find(&b, "timestamp")["value"], "2026-11-23 09:30:00");
    let title = find(&b, "title");
    assert_eq!(title["defined"], false, "{title}");
    assert!(title["value"].is_null());

    let (s, b) = gw
        .post_json(
            "/v1/variables",
            ADMIN,
            &json!({ "event": { "type": "x", "source": "y", "severity": "loud" } }),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    assert_eq!(b["error"]["errors"][0]["path"], "/event/severity", "{b}");
    gw.stop().await;
}
