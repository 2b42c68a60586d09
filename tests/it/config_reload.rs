//! `POST /v1/config/reload` on a real gateway started from a file: a new
//! destination and route take effect without a restart, a delivery queued
//! for a destination the new file drops still goes out, settings read at
//! start are reported as needing a restart, and a file that does not pass
//! (a route to a missing destination, a config the plugin's schema
//! refuses) changes nothing and answers every problem with its key path.

use std::path::Path;

use carillon_tests::fakes::webhook::{Answer, Receiver};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::wait_received as wait_for;
use crate::support::{gateway_from_file as start, wasm};

const ADMIN: &str = "adm-reload-0123456789";
const INGEST: &str = "ing-reload-0123456789";

/// The config file: `[server]` with `listen`, one webhook destination per
/// `(name, url)`, one route to `to`, and `extra` appended.
fn file_text(dir: &Path, listen: &str, dests: &[(&str, String)], to: &str, extra: &str) -> String {
    let mut text = format!(
        "[server]\nlisten = \"{listen}\"\ndata_dir = \"{data}\"\nplugin_dir = \"{data}/plugins\"\n\n\
         [auth]\nadmin_token = \"{ADMIN}\"\n\n[[auth.ingest]]\nname = \"app\"\ntoken = \"{INGEST}\"\n\n\
         [egress]\nallow_private = [\"127.0.0.1/32\"]\n\n\
         [dispatch.retry]\nbase_secs = 1\nmin_delay_secs = 1\n",
        data = dir.display(),
    );
    for (name, url) in dests {
        text.push_str(&format!(
            "\n[destinations.{name}]\nplugin = \"webhook\"\nconfig = {{ url = \"{url}\" }}\n"
        ));
    }
    text.push_str(&format!(
        "\n[[routes]]\nname = \"all\"\nmatch = {{ event = \"*\" }}\ndestinations = [\"{to}\"]\n{extra}"
    ));
    text
}

async fn post(
    http: &reqwest::Client,
    url: String,
    token: &str,
    body: &Value,
) -> (StatusCode, Value) {
    let r = http
        .post(url)
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .expect("request");
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// The key paths of a 422's problems.
fn error_paths(body: &Value) -> Vec<&str> {
    body["error"]["errors"]
        .as_array()
        .map(|errors| errors.iter().filter_map(|e| e["path"].as_str()).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reloaded_file_takes_effect_at_once_and_a_bad_one_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (Receiver::start(None).await, Receiver::start(None).await);
    let file = dir.path().join("carillon.toml");
    let first = file_text(dir.path(), "127.0.0.1:0", &[("a", a.url("/a"))], "a", "");
    std::fs::write(&file, &first).expect("write");
    let gateway = start(&file).await;
    let base = format!("http://{}", gateway.local_addr());
    let http = reqwest::Client::new();
    let event =
        |n: u32| json!({ "type": "demo.reload", "source": "test", "title": format!("event {n}") });

    // The first answer fails: that delivery is retried after the reload
    // has dropped its destination.
    a.script([Answer::status(500)]);
    let (status, body) = post(&http, format!("{base}/v1/events"), INGEST, &event(1)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    wait_for(&a, 1, "the first attempt").await;

    let second = file_text(dir.path(), "127.0.0.1:1", &[("b", b.url("/b"))], "b", "");
    std::fs::write(&file, &second).expect("write");
    let (status, body) = post(&http, format!("{base}/v1/config/reload"), ADMIN, &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let changed: Vec<&str> = body["changed"]
        .as_array()
        .expect("changed")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        changed.contains(&"destinations") && changed.contains(&"routes"),
        "{body}"
    );
    assert_eq!(body["restart_required"], json!(["server"]), "{body}");

    let (status, _) = post(&http, format!("{base}/v1/events"), INGEST, &event(2)).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    wait_for(&b, 1, "the new destination").await;
    let title = |r: &carillon_tests::fakes::webhook::Received| {
        r.json()["title"].as_str().unwrap_or_default().to_owned()
    };
    // The built-in template puts the severity's symbol first.
    assert!(title(&b.received()[0]).ends_with("event 2"));
    // The queued retry still reaches the dropped destination.
    wait_for(&a, 2, "the retry to the dropped destination").await;
    assert!(title(&a.received()[1]).ends_with("event 1"));
    let (_, listed) = http
        .get(format!("{base}/v1/destinations"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .map(|r| (r.status(), r))
        .expect("list");
    let listed: Value = listed.json().await.expect("json");
    let names: Vec<&str> = listed["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|d| d["name"].as_str())
        .collect();
    assert_eq!(names, ["b"], "{listed}");

    // A route to a missing destination and a config the webhook schema
    // refuses: 422, every problem, and nothing changes.
    let with_c = |to: &str| {
        file_text(
            dir.path(),
            "127.0.0.1:1",
            &[("b", b.url("/b"))],
            to,
            "\n[destinations.c]\nplugin = \"webhook\"\nconfig = { url = 5 }\n",
        )
    };
    let bad = with_c("nowhere");
    std::fs::write(&file, &bad).expect("write");
    let (status, body) = post(&http, format!("{base}/v1/config/reload"), ADMIN, &json!({})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "invalid_config", "{body}");
    let paths = error_paths(&body);
    assert!(paths.iter().any(|p| p.starts_with("routes")), "{body}");
    let (status, _) = post(&http, format!("{base}/v1/events"), INGEST, &event(3)).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    wait_for(&b, 2, "the running routes").await;

    // Schema problems are found once the file itself parses.
    let schema_bad = with_c("b");
    std::fs::write(&file, &schema_bad).expect("write");
    let (status, body) = post(&http, format!("{base}/v1/config/reload"), ADMIN, &json!({})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let paths = error_paths(&body);
    assert!(
        paths.iter().any(|p| p.starts_with("destinations.c.config")),
        "{body}"
    );

    // Not for an ingest token.
    let (status, _) = post(
        &http,
        format!("{base}/v1/config/reload"),
        INGEST,
        &json!({}),
    )
    .await;
    assert!(
        status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN,
        "{status}"
    );
    gateway.shutdown().await;
}

/// A vendor's first install without a restart: a destination naming a
/// plugin nobody has dropped yet is refused (naming its key), and once the
/// file is in the plugin directory the same reload creates it live.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destination_for_a_just_dropped_plugin_is_created_by_a_reload() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, hook) = (Receiver::start(None).await, Receiver::start(None).await);
    let file = dir.path().join("carillon.toml");
    std::fs::write(
        &file,
        file_text(dir.path(), "127.0.0.1:0", &[("a", a.url("/a"))], "a", ""),
    )
    .expect("write");
    let gateway = start(&file).await;
    let base = format!("http://{}", gateway.local_addr());
    let http = reqwest::Client::new();

    let with_echo = file_text(
        dir.path(),
        "127.0.0.1:0",
        &[("a", a.url("/a"))],
        "vendor",
        &format!(
            "\n[destinations.vendor]\nplugin = \"echo\"\nconfig = {{ url = \"{}\" }}\n",
            hook.url("/echo")
        ),
    );
    std::fs::write(&file, &with_echo).expect("write");
    let (status, body) = post(&http, format!("{base}/v1/config/reload"), ADMIN, &json!({})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        error_paths(&body)
            .iter()
            .any(|p| p.starts_with("destinations.vendor")),
        "{body}"
    );

    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).expect("plugin dir");
    std::fs::write(plugins.join("echo.wasm"), wasm("carillon-fixture-echo-v1")).expect("drop");
    let (status, body) = post(
        &http,
        format!("{base}/v1/plugins/reload"),
        ADMIN,
        &json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = post(&http, format!("{base}/v1/config/reload"), ADMIN, &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let event = json!({ "type": "demo.vendor", "source": "test", "title": "first install" });
    let (status, body) = post(&http, format!("{base}/v1/events"), INGEST, &event).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    wait_for(&hook, 1, "the new plugin's destination").await;
    assert!(a.received().is_empty());
    gateway.shutdown().await;
}
