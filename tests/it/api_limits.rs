//! The API's limits against hostile or careless input (issue 28): each
//! test sends the request that once cost the gateway memory, disk or file
//! descriptors and checks it is now refused or bounded.

use std::path::Path;

use carillon::config::{Config, Resolver};
use carillon::gateway::{Gateway, Options};
use carillon_tests::fakes::webhook::Receiver;
use reqwest::StatusCode;
use serde_json::{Value, json};

const ADMIN: &str = "adm-limits-0123456789";
const INGEST: &str = "ing-limits-0123456789";

/// A gateway with one webhook destination that every event is routed to.
struct Gw {
    gateway: Option<Gateway>,
    base: String,
    http: reqwest::Client,
    /// The destination's receiver, kept running for the gateway's life.
    _hook: Receiver,
    _dir: tempfile::TempDir,
}

impl Gw {
    async fn start() -> Gw {
        Gw::start_with("").await
    }

    /// Starts with `extra` appended to the `[server]` table.
    async fn start_with(server_extra: &str) -> Gw {
        let dir = tempfile::tempdir().expect("tempdir");
        let hook = Receiver::start(None).await;
        let text = format!(
            r#"
[server]
listen = "127.0.0.1:0"
data_dir = "{data}"
plugin_dir = "{data}/plugins"
{server_extra}

[auth]
admin_token = "{ADMIN}"

[[auth.ingest]]
name = "app"
token = "{INGEST}"

[egress]
allow_private = ["127.0.0.1/32"]

[destinations.hook]
plugin = "webhook"
config = {{ url = "{url}" }}

[[routes]]
name = "all"
destinations = ["hook"]
"#,
            data = dir.path().display(),
            url = hook.url("/in"),
        );
        let config = load(&text, dir.path());
        let gateway = Gateway::start(config, Options::default())
            .await
            .expect("gateway starts");
        let base = format!("http://{}", gateway.local_addr());
        Gw {
            gateway: Some(gateway),
            base,
            http: reqwest::Client::new(),
            _hook: hook,
            _dir: dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    async fn post(
        &self,
        path: &str,
        token: &str,
        headers: &[(&str, &str)],
        body: &Value,
    ) -> (StatusCode, Value) {
        let mut request = self.http.post(self.url(path)).bearer_auth(token);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let r = request.json(body).send().await.expect("request");
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
    let env = |_: &str| None;
    let resolver = Resolver {
        env: &env,
        base_dir: dir,
    };
    Config::from_toml(text, &resolver).unwrap_or_else(|p| panic!("config: {p}"))
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

fn message(body: &Value) -> String {
    body["error"].to_string()
}

/// A body for an assertion message: the first 300 characters.
fn short(body: &Value) -> String {
    body.to_string().chars().take(300).collect()
}

/// An `Idempotency-Key` header is held as long as the idempotency window
/// (24 h by default): it has the envelope field's limit of 256 characters.
#[tokio::test]
async fn a_long_idempotency_key_header_is_refused_naming_the_header() {
    let gw = Gw::start().await;
    let event = json!({ "type": "task.failed", "source": "etl" });
    let long = "k".repeat(64 << 10);
    let (status, body) = gw
        .post("/v1/events", INGEST, &[("Idempotency-Key", &long)], &event)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(code(&body), "invalid_event", "{body}");
    assert!(message(&body).contains("header:idempotency-key"), "{body}");
    // At the limit it is accepted.
    let at_limit = "k".repeat(256);
    let (status, body) = gw
        .post(
            "/v1/events",
            INGEST,
            &[("Idempotency-Key", &at_limit)],
            &event,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    gw.stop().await;
}

/// A path parameter that does not decode (`%FF` is not UTF-8) is refused
/// with the API's JSON error body, and only after the token check, so an
/// unauthenticated client learns nothing from it.
#[tokio::test]
async fn an_undecodable_path_parameter_gets_the_json_error_after_the_token_check() {
    let gw = Gw::start().await;
    for (method, path) in [
        (reqwest::Method::GET, "/v1/events/%FF"),
        (reqwest::Method::POST, "/v1/deliveries/%FF/retry"),
        (reqwest::Method::POST, "/v1/destinations/%FF/test"),
        (reqwest::Method::POST, "/v1/destinations/%FF/retry-dead"),
    ] {
        let r = gw
            .http
            .request(method.clone(), gw.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{method} {path}");
        let body: Value = r.json().await.expect("a JSON body");
        assert_eq!(code(&body), "unauthorized", "{body}");

        let r = gw
            .http
            .request(method.clone(), gw.url(path))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{method} {path}");
        let body: Value = r.json().await.expect("a JSON body");
        assert_eq!(code(&body), "invalid_parameter", "{body}");
    }
    gw.stop().await;
}

/// A test push's event is the body's `/event`: its errors are located
/// there.
#[tokio::test]
async fn a_test_push_with_an_invalid_event_names_the_field_under_event() {
    let gw = Gw::start().await;
    let (status, body) = gw
        .post(
            "/v1/destinations/hook/test",
            ADMIN,
            &[],
            &json!({ "event": { "type": "task.failed", "source": "" } }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(code(&body), "invalid_event", "{body}");
    assert_eq!(
        body["error"]["errors"][0]["path"], "/event/source",
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("/event/source"),
        "{body}"
    );
    gw.stop().await;
}

/// Nothing a client sends without a token adds a metrics label: unknown
/// methods count as `other`, unrouted paths as `unmatched`.
#[tokio::test]
async fn request_metrics_labels_do_not_grow_with_client_input() {
    let gw = Gw::start().await;
    for n in 0..50 {
        let method = reqwest::Method::from_bytes(format!("X{}{n}", "M".repeat(500)).as_bytes())
            .expect("an extension method");
        let r = gw
            .http
            .request(method, gw.url(&format!("/healthz-{n}")))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_client_error(), "{}", r.status());
        let r = gw
            .http
            .request(
                reqwest::Method::from_bytes(format!("Y{n}").as_bytes()).unwrap(),
                gw.url("/healthz"),
            )
            .send()
            .await
            .unwrap();
        assert!(r.status().is_client_error(), "{}", r.status());
    }
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
    let requests: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("carillon_http_requests_total{"))
        .collect();
    assert!(!metrics.contains("MMMM"), "{requests:?}");
    assert!(!metrics.contains("healthz-"), "{requests:?}");
    assert!(
        requests
            .iter()
            .any(|l| l.contains("method=\"other\"") && l.contains("route=\"unmatched\"")),
        "{requests:?}"
    );
    assert!(
        requests
            .iter()
            .any(|l| l.contains("method=\"other\"") && l.contains("route=\"/healthz\"")),
        "{requests:?}"
    );
    assert!(requests.len() <= 6, "{requests:?}");
    gw.stop().await;
}

/// An Alertmanager group with `alerts` alerts and a `common` bytes long
/// common annotation (copied into every alert's event).
fn alert_group(alerts: usize, common: usize) -> Value {
    let alert = |n: usize| {
        json!({
            "status": "firing",
            "labels": { "alertname": "A", "n": n.to_string() },
            "annotations": { "summary": format!("alert {n}") },
            "startsAt": "2026-11-23T01:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus.example:9090/graph",
            "fingerprint": format!("f{n}")
        })
    };
    json!({
        "version": "4",
        "groupKey": "{}:{alertname=\"A\"}",
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "carillon",
        "groupLabels": { "alertname": "A" },
        "commonLabels": { "alertname": "A" },
        "commonAnnotations": { "runbook": "r".repeat(common) },
        "externalURL": "http://alertmanager.example:9093",
        "alerts": (0..alerts).map(alert).collect::<Vec<_>>()
    })
}

/// The number of alerts in one request is capped like a batch, and the
/// group-level fields copied into each alert's event cannot multiply a
/// request into far more stored bytes than it had.
#[tokio::test]
async fn alertmanager_requests_are_capped_in_alerts_and_in_stored_size() {
    let gw = Gw::start().await;
    // The default cap: 1,000 alerts.
    let (status, body) = gw
        .post("/v1/alertmanager", INGEST, &[], &alert_group(1001, 0))
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{}", short(&body));
    assert_eq!(code(&body), "payload_too_large", "{body}");
    assert!(message(&body).contains("/alerts"), "{body}");
    assert!(message(&body).contains("1000"), "{body}");
    // ~130 KiB that would store ~30 MiB: refused as a whole.
    let amplified = alert_group(300, 100 << 10);
    let (status, body) = gw.post("/v1/alertmanager", INGEST, &[], &amplified).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{}", short(&body));
    assert!(
        message(&body).contains("alertmanager_max_expansion"),
        "{body}"
    );
    // A group of ordinary size is accepted, alert by alert.
    let (status, body) = gw
        .post("/v1/alertmanager", INGEST, &[], &alert_group(200, 2 << 10))
        .await;
    assert_eq!(status, StatusCode::OK, "{}", short(&body));
    assert_eq!(body["items"].as_array().map(Vec::len), Some(200));
    gw.stop().await;

    // The cap is configurable.
    let gw = Gw::start_with("alertmanager_max_alerts = 2").await;
    let (status, body) = gw
        .post("/v1/alertmanager", INGEST, &[], &alert_group(3, 0))
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{}", short(&body));
    let (status, body) = gw
        .post("/v1/alertmanager", INGEST, &[], &alert_group(2, 0))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    gw.stop().await;
}
