//! The runtime configuration API on a real gateway: destinations, routes,
//! templates and workspaces created, read, changed and deleted without a
//! restart; every error class (a missing reference, a plugin's schema, an
//! unknown field, a provisioned object, a stale `If-Match`, another
//! workspace); the audit log; concurrent writes; a restart keeps it all;
//! events posted while routes change are delivered as routed at their
//! acceptance.

use std::path::Path;
use std::time::Duration;

use carillon_tests::fakes::webhook::Receiver;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::gateway_from_file as start;
use crate::support::wait_received as wait_for;

const ADMIN: &str = "adm-objects-0123456789";
const INGEST: &str = "ing-objects-0123456789";
const TEAM_ADMIN: &str = "wsa-team-0123456789";
const TEAM_VIEWER: &str = "vwr-team-0123456789";
const TEAM_INGEST: &str = "ing-team-0123456789";

fn file_text(dir: &Path, hook: &str) -> String {
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
token = "{INGEST}"

[[auth.tokens]]
name = "team-admin"
role = "workspace-admin"
workspace = "team"
token = "{TEAM_ADMIN}"

[[auth.tokens]]
name = "team-viewer"
role = "viewer"
workspace = "team"
token = "{TEAM_VIEWER}"

[[auth.tokens]]
name = "team-app"
role = "ingest"
workspace = "team"
token = "{TEAM_INGEST}"

[egress]
allow_private = ["127.0.0.1/32"]

[workspaces.team]

[destinations.file-hook]
plugin = "webhook"
config = {{ url = "{hook}" }}

[[routes]]
name = "file-route"
match = {{ event = "file.*" }}
destinations = ["file-hook"]
"#,
        data = dir.display(),
    )
}

struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    async fn send(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, Option<String>, Value) {
        let mut r = self
            .http
            .request(
                method.parse().expect("method"),
                format!("{}{path}", self.base),
            )
            .bearer_auth(token);
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        if let Some(b) = body {
            r = r.json(b);
        }
        let r = r.send().await.expect("request");
        let status = r.status();
        let etag = r
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        (status, etag, r.json().await.unwrap_or(Value::Null))
    }

    async fn put(
        &self,
        path: &str,
        token: &str,
        body: &Value,
    ) -> (StatusCode, Option<String>, Value) {
        self.send("PUT", path, token, Some(body), &[]).await
    }

    async fn get(&self, path: &str, token: &str) -> (StatusCode, Option<String>, Value) {
        self.send("GET", path, token, None, &[]).await
    }

    async fn event(&self, token: &str, ty: &str, title: &str) -> Value {
        let (status, _, body) = self
            .send(
                "POST",
                "/v1/events",
                token,
                Some(&json!({ "type": ty, "source": "objects", "title": title })),
                &[],
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        body
    }
}

/// The JSON pointers (or key paths) of a 4xx's problems.
fn paths(body: &Value) -> Vec<String> {
    body["error"]["errors"]
        .as_array()
        .map(|e| {
            e.iter()
                .filter_map(|e| e["path"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

const DEFAULT: &str = "/v1/workspaces/default";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_are_created_changed_and_deleted_live_with_every_error_answered() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (file_rx, api_rx) = (Receiver::start(None).await, Receiver::start(None).await);
    let file = dir.path().join("carillon.toml");
    std::fs::write(&file, file_text(dir.path(), &file_rx.url("/file"))).expect("write");
    let gateway = start(&file).await;
    let api = Api {
        base: format!("http://{}", gateway.local_addr()),
        http: reqwest::Client::new(),
    };

    // Create a destination: 201, version 1 as the ETag, its URL redacted.
    let hook = json!({ "plugin": "webhook", "config": { "url": api_rx.url("/api/T0K3N") } });
    let (s, etag, body) = api
        .put(&format!("{DEFAULT}/destinations/api-hook"), ADMIN, &hook)
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    assert_eq!(etag.as_deref(), Some("\"1\""));
    assert_eq!(body["origin"], "api");
    assert!(
        !body.to_string().contains("T0K3N"),
        "the URL's path is a secret: {body}"
    );

    // A route to it, and an event that takes it.
    let route = json!({ "match": { "event": "api.*" }, "destinations": ["api-hook"] });
    let (s, _, body) = api
        .put(&format!("{DEFAULT}/routes/api-route"), ADMIN, &route)
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    api.event(INGEST, "api.created", "first").await;
    wait_for(&api_rx, 1, "the API route").await;
    assert_eq!(api_rx.received()[0].path, "/api/T0K3N");

    // An API route is evaluated after the file's, unless its `order`
    // puts it first.
    let early = json!({ "match": { "event": "file.*" }, "destinations": ["api-hook"] });
    let (s, _, body) = api
        .put(&format!("{DEFAULT}/routes/file-early"), ADMIN, &early)
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let taken = api.event(INGEST, "file.early", "after").await;
    assert_eq!(
        taken["deliveries"][0]["destination"], "file-hook",
        "{taken}"
    );
    let mut early = early;
    early["order"] = json!(-1);
    let (s, _, body) = api
        .put(&format!("{DEFAULT}/routes/file-early"), ADMIN, &early)
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let taken = api.event(INGEST, "file.early", "before").await;
    assert_eq!(taken["deliveries"][0]["destination"], "api-hook", "{taken}");
    let (s, _, body) = api
        .send(
            "DELETE",
            &format!("{DEFAULT}/routes/file-early"),
            ADMIN,
            None,
            &[],
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{body}");
    wait_for(&api_rx, 2, "the early route").await;

    // Read, change one field, write back with If-Match: the redacted URL
    // keeps its stored value.
    let (s, etag, mut shown) = api
        .get(&format!("{DEFAULT}/destinations/api-hook"), ADMIN)
        .await;
    assert_eq!(s, StatusCode::OK, "{shown}");
    let etag = etag.expect("an API object has an ETag");
    shown["spec"]["concurrency"] = json!(2);
    let (s, new_etag, body) = api
        .send(
            "PUT",
            &format!("{DEFAULT}/destinations/api-hook"),
            ADMIN,
            Some(&shown["spec"]),
            &[("if-match", &etag)],
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(new_etag.as_deref(), Some("\"2\""));
    api.event(INGEST, "api.changed", "second").await;
    wait_for(&api_rx, 3, "the changed destination").await;
    assert_eq!(api_rx.received()[2].path, "/api/T0K3N");

    // A stale If-Match, and If-None-Match on an existing object: 412.
    for header in [("if-match", etag.as_str()), ("if-none-match", "*")] {
        let (s, _, body) = api
            .send(
                "PUT",
                &format!("{DEFAULT}/destinations/api-hook"),
                ADMIN,
                Some(&hook),
                &[header],
            )
            .await;
        assert_eq!(s, StatusCode::PRECONDITION_FAILED, "{header:?}: {body}");
        assert_eq!(body["error"]["code"], "precondition_failed");
    }

    // Every problem as a JSON pointer into the body, nothing changed.
    let cases = [
        (
            "routes/bad-route",
            json!({ "destinations": ["nowhere"] }),
            "/destinations/0",
        ),
        (
            "destinations/bad-hook",
            json!({ "plugin": "webhook", "config": { "url": 42 } }),
            "/config/url",
        ),
        (
            "destinations/bad-hook",
            json!({ "plugin": "webhook", "bogus": true }),
            "/bogus",
        ),
        (
            "destinations/bad-hook",
            json!({ "plugin": "webhook", "fallback": "bad-hook", "config": { "url": api_rx.url("/x") } }),
            "/fallback",
        ),
        (
            "templates/bad-template",
            json!({ "en": { "title": "{% if %}", "body": "b" } }),
            "/en/title",
        ),
        (
            "routes/bad-route",
            json!({ "destinations": ["api-hook"], "workspace": "team" }),
            "/workspace",
        ),
    ];
    for (path, body, pointer) in &cases {
        let (s, _, answer) = api.put(&format!("{DEFAULT}/{path}"), ADMIN, body).await;
        assert_eq!(
            s,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{path} {body}: {answer}"
        );
        let found = paths(&answer);
        assert!(
            found.iter().any(|p| p == pointer),
            "{path} {body}: want {pointer:?} in {found:?}: {answer}"
        );
        let object = path.split('/').nth(1).unwrap();
        let kind = path.split('/').next().unwrap();
        let (s, _, _) = api.get(&format!("{DEFAULT}/{kind}/{object}"), ADMIN).await;
        assert_eq!(
            s,
            StatusCode::NOT_FOUND,
            "{path} was stored although refused"
        );
    }

    // Provisioned objects are shown and never edited.
    let (s, etag, body) = api
        .get(&format!("{DEFAULT}/destinations/file-hook"), ADMIN)
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["origin"], "file");
    assert_eq!(body["key"], "destinations.file-hook");
    assert!(etag.is_none());
    let (s, _, body) = api
        .put(&format!("{DEFAULT}/destinations/file-hook"), ADMIN, &hook)
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{body}");
    assert!(
        body.to_string().contains("destinations.file-hook"),
        "{body}"
    );
    let (s, _, body) = api
        .send(
            "DELETE",
            &format!("{DEFAULT}/routes/file-route"),
            ADMIN,
            None,
            &[],
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{body}");

    // Unknown workspace; another workspace's token; a name another
    // workspace holds.
    let (s, _, _) = api
        .put("/v1/workspaces/nope/destinations/x", ADMIN, &hook)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _, _) = api
        .get(&format!("{DEFAULT}/destinations/api-hook"), TEAM_ADMIN)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _, _) = api
        .put(&format!("{DEFAULT}/destinations/x"), TEAM_ADMIN, &hook)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _, body) = api
        .put(
            "/v1/workspaces/team/destinations/api-hook",
            TEAM_ADMIN,
            &hook,
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{body}");

    // The team's own objects, created by its admin; a viewer may not.
    let team_hook = json!({ "plugin": "webhook", "config": { "url": api_rx.url("/team") } });
    let (s, _, body) = api
        .put(
            "/v1/workspaces/team/destinations/team-hook",
            TEAM_VIEWER,
            &team_hook,
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
    let (s, _, body) = api
        .put(
            "/v1/workspaces/team/destinations/team-hook",
            TEAM_ADMIN,
            &team_hook,
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let (s, _, body) = api
        .put(
            "/v1/workspaces/team/routes/team-all",
            TEAM_ADMIN,
            &json!({ "destinations": ["team-hook"] }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    // A route of the team cannot name the default workspace's destination.
    let (s, _, body) = api
        .put(
            "/v1/workspaces/team/routes/sneaky",
            TEAM_ADMIN,
            &json!({ "destinations": ["api-hook"] }),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let team_event = api.event(TEAM_INGEST, "team.any", "for the team").await;
    assert_eq!(
        team_event["deliveries"][0]["destination"], "team-hook",
        "{team_event}"
    );
    let (_, _, listed) = api
        .get("/v1/workspaces/team/destinations", TEAM_VIEWER)
        .await;
    let names: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["name"].as_str())
        .collect();
    assert_eq!(names, ["team-hook"], "{listed}");

    // Only an instance admin creates a workspace.
    let (s, _, body) = api
        .put("/v1/workspaces/sales", TEAM_ADMIN, &json!({}))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{body}");
    let (s, _, body) = api
        .put(
            "/v1/workspaces/sales",
            ADMIN,
            &json!({ "channels": "custom", "enabled_channels": ["email"] }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    // Its channel settings hold at once: webhook is not enabled there.
    let (s, _, body) = api
        .put(
            "/v1/workspaces/sales/destinations/sales-hook",
            ADMIN,
            &team_hook,
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    // A destination a route still names is not deleted.
    let (s, _, body) = api
        .send(
            "DELETE",
            &format!("{DEFAULT}/destinations/api-hook"),
            ADMIN,
            None,
            &[],
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        paths(&body).iter().any(|p| p.starts_with("routes[")),
        "{body}"
    );
    for path in ["routes/api-route", "destinations/api-hook"] {
        let (s, _, body) = api
            .send("DELETE", &format!("{DEFAULT}/{path}"), ADMIN, None, &[])
            .await;
        assert_eq!(s, StatusCode::NO_CONTENT, "{path}: {body}");
    }
    let (s, _, _) = api
        .get(&format!("{DEFAULT}/destinations/api-hook"), ADMIN)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // The route is gone: an api.* event now matches nothing.
    let unrouted = api.event(INGEST, "api.deleted", "third").await;
    assert_eq!(unrouted["deliveries"], json!([]), "{unrouted}");

    // The audit log: who, role, what, before and after, no secret.
    let (s, _, audit) = api
        .get(
            &format!("{DEFAULT}/audit?kind=destination&name=api-hook"),
            ADMIN,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{audit}");
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["action"].as_str())
        .collect();
    assert_eq!(actions, ["delete", "update", "create"], "{audit}");
    assert_eq!(audit["items"][1]["token"], "admin", "{audit}");
    assert_eq!(audit["items"][1]["role"], "instance-admin", "{audit}");
    assert_eq!(
        audit["items"][1]["before"]["concurrency"],
        Value::Null,
        "{audit}"
    );
    assert_eq!(audit["items"][1]["after"]["concurrency"], 2, "{audit}");
    assert!(!audit.to_string().contains("T0K3N"), "{audit}");
    let (_, _, team_audit) = api.get("/v1/workspaces/team/audit", TEAM_VIEWER).await;
    assert_eq!(
        team_audit["items"].as_array().map(Vec::len),
        Some(2),
        "{team_audit}"
    );
    let (s, _, _) = api.get(&format!("{DEFAULT}/audit"), TEAM_VIEWER).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // A contact and a group created through the API (a mobile needs no
    // activation) are kept across the restart too.
    let person =
        json!({ "locale": "en", "methods": [{ "type": "mobile", "number": "+86 138 0013 8000" }] });
    let (s, _, body) = api
        .put(
            "/v1/workspaces/team/contacts/team-person",
            TEAM_ADMIN,
            &person,
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let (s, _, body) = api
        .put(
            "/v1/workspaces/team/groups/team-roster",
            TEAM_ADMIN,
            &json!({ "members": ["team-person"] }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");

    // A restart keeps every API object.
    gateway.shutdown().await;
    let gateway = start(&file).await;
    let api = Api {
        base: format!("http://{}", gateway.local_addr()),
        http: reqwest::Client::new(),
    };
    let (s, etag, body) = api
        .get("/v1/workspaces/team/destinations/team-hook", ADMIN)
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(etag.as_deref(), Some("\"1\""));
    let (s, _, body) = api.get("/v1/workspaces/sales", ADMIN).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    for path in ["contacts/team-person", "groups/team-roster"] {
        let (s, _, body) = api.get(&format!("/v1/workspaces/team/{path}"), ADMIN).await;
        assert_eq!(s, StatusCode::OK, "{path}: {body}");
    }
    let team_event = api.event(TEAM_INGEST, "team.any", "after restart").await;
    assert_eq!(
        team_event["deliveries"][0]["destination"], "team-hook",
        "{team_event}"
    );
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_writers_with_the_same_etag_one_wins_one_gets_412() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rx = Receiver::start(None).await;
    let file = dir.path().join("carillon.toml");
    std::fs::write(&file, file_text(dir.path(), &rx.url("/file"))).expect("write");
    let gateway = start(&file).await;
    let api = Api {
        base: format!("http://{}", gateway.local_addr()),
        http: reqwest::Client::new(),
    };
    let path = format!("{DEFAULT}/destinations/shared");
    let body = |n: u32| json!({ "plugin": "webhook", "concurrency": n, "config": { "url": rx.url("/s") } });
    let (s, etag, b) = api.put(&path, ADMIN, &body(1)).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let etag = etag.unwrap();
    for round in 0..5 {
        let (two, three) = (body(2), body(3));
        let header = [("if-match", etag.as_str())];
        let (a, b) = tokio::join!(
            api.send("PUT", &path, ADMIN, Some(&two), &header),
            api.send("PUT", &path, ADMIN, Some(&three), &header),
        );
        let mut statuses = [a.0, b.0];
        statuses.sort();
        if round == 0 {
            assert_eq!(
                statuses,
                [StatusCode::OK, StatusCode::PRECONDITION_FAILED],
                "{a:?} {b:?}"
            );
        } else {
            // The ETag is stale for both now.
            assert_eq!(
                statuses,
                [StatusCode::PRECONDITION_FAILED; 2],
                "{a:?} {b:?}"
            );
        }
    }
    let (_, etag, _) = api.get(&path, ADMIN).await;
    assert_eq!(etag.as_deref(), Some("\"2\""));
    gateway.shutdown().await;
}

/// Events posted without pause while a route is switched between two
/// destinations: each one is delivered exactly once, to the destination
/// its acceptance answer named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_change_under_load_delivers_every_event_as_routed_at_acceptance() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (rx_a, rx_b) = (Receiver::start(None).await, Receiver::start(None).await);
    let file = dir.path().join("carillon.toml");
    std::fs::write(&file, file_text(dir.path(), &rx_a.url("/file"))).expect("write");
    let gateway = start(&file).await;
    let api = std::sync::Arc::new(Api {
        base: format!("http://{}", gateway.local_addr()),
        http: reqwest::Client::new(),
    });
    for (name, rx) in [("to-a", &rx_a), ("to-b", &rx_b)] {
        let body = json!({ "plugin": "webhook", "config": { "url": rx.url(&format!("/{name}")) } });
        let (s, _, b) = api
            .put(&format!("{DEFAULT}/destinations/{name}"), ADMIN, &body)
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
    }
    let route = |to: &str| json!({ "match": { "event": "load.*" }, "destinations": [to] });
    let (s, _, b) = api
        .put(&format!("{DEFAULT}/routes/switch"), ADMIN, &route("to-a"))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let poster = {
        let (api, stop) = (api.clone(), stop.clone());
        tokio::spawn(async move {
            let mut routed = Vec::new();
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let title = format!("load #{n}#");
                let answer = api.event(INGEST, "load.tick", &title).await;
                let to = answer["deliveries"][0]["destination"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned();
                routed.push((title, to));
                n += 1;
            }
            routed
        })
    };
    for i in 0..10 {
        let to = if i % 2 == 0 { "to-b" } else { "to-a" };
        let (s, _, b) = api
            .put(&format!("{DEFAULT}/routes/switch"), ADMIN, &route(to))
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let routed = poster.await.expect("poster");
    let to_a = routed.iter().filter(|(_, to)| to == "to-a").count();
    let to_b = routed.iter().filter(|(_, to)| to == "to-b").count();
    assert_eq!(to_a + to_b, routed.len(), "every event routed: {routed:?}");
    assert!(
        to_a > 0 && to_b > 0,
        "the switch took effect under load: {to_a} / {to_b}"
    );
    wait_for(&rx_a, to_a, "to-a").await;
    wait_for(&rx_b, to_b, "to-b").await;
    let titles = |rx: &Receiver| -> Vec<String> {
        rx.received()
            .iter()
            .map(|r| r.json()["title"].as_str().unwrap_or("").to_owned())
            .collect()
    };
    let (got_a, got_b) = (titles(&rx_a), titles(&rx_b));
    for (title, to) in &routed {
        let (here, there) = if to == "to-a" {
            (&got_a, &got_b)
        } else {
            (&got_b, &got_a)
        };
        assert_eq!(
            here.iter().filter(|t| t.contains(title.as_str())).count(),
            1,
            "{title} at {to}"
        );
        assert!(
            !there.iter().any(|t| t.contains(title.as_str())),
            "{title} also elsewhere"
        );
    }
    gateway.shutdown().await;
}
