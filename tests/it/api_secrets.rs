//! Secret fields a plugin declares in its manifest are redacted wherever the
//! gateway shows a destination's config: `GET /v1/destinations` and the
//! test push (the rendered request included). The webhook plugin declares
//! `/headers`; the header name here does not look secret, so only the
//! declaration can hide its value.

use std::path::Path;
use std::time::Duration;

use carillon::config::{Config, Resolver};
use carillon::gateway::{Gateway, Options};
use carillon_tests::fakes::webhook::Receiver;
use reqwest::StatusCode;
use serde_json::{Value, json};

const ADMIN: &str = "adm-secrets-1a2b3c4d5e";
const HEADER_VALUE: &str = "tenant-s3cr3t-9d1c7a0e";

fn config(data: &Path, hook: &Receiver) -> Config {
    let text = format!(
        r#"
[server]
listen = "127.0.0.1:0"
data_dir = "{data}"
plugin_dir = "{data}/plugins"

[auth]
admin_token = "{ADMIN}"

[egress]
allow_private = ["127.0.0.1/32"]

[destinations.hooks]
plugin = "webhook"
config = {{ url = "{url}", headers = {{ "X-Tenant" = "{HEADER_VALUE}" }} }}
"#,
        data = data.display(),
        url = hook.url("/hooks"),
    );
    let env = |_: &str| None;
    let resolver = Resolver {
        env: &env,
        base_dir: data,
    };
    Config::from_toml(&text, &resolver).unwrap_or_else(|p| panic!("config: {p}"))
}

async fn call(request: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let r = request.bearer_auth(ADMIN).send().await.expect("request");
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn declared_secret_fields_are_redacted_in_listings_and_test_pushes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hook = Receiver::start(None).await;
    let gateway = Gateway::start(config(dir.path(), &hook), Options::default())
        .await
        .expect("gateway starts");
    let base = format!("http://{}", gateway.local_addr());
    let http = reqwest::Client::new();

    let (s, list) = call(http.get(format!("{base}/v1/destinations"))).await;
    assert_eq!(s, StatusCode::OK, "{list}");
    let hooks = &list["items"][0];
    assert_eq!(hooks["name"], "hooks");
    // The header's name stays, its value does not.
    assert_eq!(
        hooks["config"]["config"]["headers"]["X-Tenant"], "<redacted>",
        "{hooks}"
    );
    assert!(!list.to_string().contains(HEADER_VALUE), "{list}");

    // The preview: the rendered request carries the header, hidden.
    let (s, preview) = call(
        http.post(format!("{base}/v1/destinations/hooks/test"))
            .json(&json!({})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{preview}");
    let headers = preview["request"]["headers"].as_array().expect("headers");
    assert!(
        headers.contains(&json!(["X-Tenant", "<redacted>"])),
        "{preview}"
    );
    assert!(!preview.to_string().contains(HEADER_VALUE), "{preview}");

    // Sent for real: the receiver gets the value, the answer does not show it.
    let (s, sent) = call(
        http.post(format!("{base}/v1/destinations/hooks/test?send=true"))
            .json(&json!({})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{sent}");
    assert_eq!(sent["sent"], true, "{sent}");
    assert!(!sent.to_string().contains(HEADER_VALUE), "{sent}");
    let mut got = hook.received();
    for _ in 0..200 {
        if !got.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        got = hook.received();
    }
    assert_eq!(got[0].header("x-tenant"), Some(HEADER_VALUE));
    gateway.shutdown().await;
}
