//! Roles and workspaces end to end: every route of the API's route table ×
//! every role (and no token, and a token of another workspace), and a
//! workspace's token never seeing or changing another workspace's objects.

use std::path::Path;
use std::time::Duration;

use carillon::access::{Permission, Role};
use carillon::config::{Config, Resolver};
use carillon::dispatch::DispatchConfig;
use carillon::gateway::{Gateway, Options};
use carillon_tests::fakes::webhook::{Answer, Receiver};
use reqwest::StatusCode;
use serde_json::{Value, json};

const ADMIN: &str = "adm-access-0001";

/// One token of each role in `default` and in `team`: (token, role,
/// workspace).
const TOKENS: &[(&str, Role, Option<&str>)] = &[
    (ADMIN, Role::InstanceAdmin, None),
    ("ing-default-0001", Role::Ingest, Some("default")),
    ("wsa-default-0001", Role::WorkspaceAdmin, Some("default")),
    ("opr-default-0001", Role::Operator, Some("default")),
    ("vwr-default-0001", Role::Viewer, Some("default")),
    ("ing-team-0001", Role::Ingest, Some("team")),
    ("wsa-team-0001", Role::WorkspaceAdmin, Some("team")),
    ("opr-team-0001", Role::Operator, Some("team")),
    ("vwr-team-0001", Role::Viewer, Some("team")),
];

fn token(role: Role, workspace: &str) -> &'static str {
    TOKENS
        .iter()
        .find(|(_, r, w)| *r == role && w.is_none_or(|w| w == workspace))
        .map(|(t, _, _)| *t)
        .expect("a token of this role")
}

struct Gw {
    gateway: Option<Gateway>,
    base: String,
    http: reqwest::Client,
    ops: Receiver,
    team: Receiver,
    _dir: tempfile::TempDir,
}

fn config_text(data: &Path, ops: &Receiver, team: &Receiver) -> String {
    let mut tokens = String::new();
    for (t, role, ws) in &TOKENS[1..] {
        let name = t.trim_end_matches("-0001");
        let ws = ws.unwrap_or("default");
        tokens.push_str(&format!(
            "[[auth.tokens]]\nname = \"{name}\"\nrole = \"{role}\"\nworkspace = \"{ws}\"\ntoken = \"{t}\"\n\n"
        ));
    }
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
data_dir = "{data}"
plugin_dir = "{data}/plugins"

[auth]
admin_token = "{ADMIN}"

{tokens}
[egress]
allow_private = ["127.0.0.1/32"]

[workspaces.team]
channels = "custom"
enabled_channels = ["webhook"]

[destinations.ops]
plugin = "webhook"
config = {{ url = "{ops_url}" }}

[destinations.team-bot]
plugin = "webhook"
workspace = "team"
config = {{ url = "{team_url}" }}

[contacts.li-wei]
methods = [{{ type = "robot", plugin = "webhook", config = {{ url = "{ops_url}" }} }}]

[groups.oncall]
members = ["li-wei"]

[sources.shop]
url = "sqlite:{data}/shop.db"

[templates.plain.default]
title = "${{title}}"
body = "${{message}}"

[[routes]]
name = "everything"
destinations = ["ops"]

[[routes]]
name = "team-everything"
workspace = "team"
destinations = ["team-bot"]
"#,
        data = data.display(),
        ops_url = ops.url("/ops"),
        team_url = team.url("/team"),
    )
}

impl Gw {
    async fn start() -> Gw {
        let dir = tempfile::tempdir().expect("tempdir");
        let ops = Receiver::start(None).await;
        let team = Receiver::start(None).await;
        let text = config_text(dir.path(), &ops, &team);
        let env = |_: &str| None;
        let resolver = Resolver {
            env: &env,
            base_dir: dir.path(),
        };
        let config = Config::from_toml(&text, &resolver).unwrap_or_else(|p| panic!("config: {p}"));
        let options = Options {
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
            ops,
            team,
            _dir: dir,
        }
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        let mut r = self.http.request(
            method.parse().expect("method"),
            format!("{}{path}", self.base),
        );
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        if let Some(b) = body {
            r = r.json(b);
        }
        let r = r.send().await.expect("request");
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.send("GET", path, Some(token), None).await
    }

    async fn post(&self, path: &str, token: &str, body: &Value) -> (StatusCode, Value) {
        self.send("POST", path, Some(token), Some(body)).await
    }

    async fn stop(mut self) {
        if let Some(g) = self.gateway.take() {
            g.shutdown().await;
        }
    }
}

/// What a route answers a caller, as far as access goes.
#[derive(Debug, PartialEq, Eq)]
enum Access {
    /// 401.
    Unknown,
    /// 403.
    Refused,
    /// 404: the object is another workspace's.
    Hidden,
    /// Anything else: the handler ran.
    Served,
}

fn access(status: StatusCode) -> Access {
    match status {
        StatusCode::UNAUTHORIZED => Access::Unknown,
        StatusCode::FORBIDDEN => Access::Refused,
        StatusCode::NOT_FOUND => Access::Hidden,
        _ => Access::Served,
    }
}

/// A token's role and workspace (none: an instance admin).
type Caller = (Role, Option<&'static str>);

/// The answer the route table says `role` (of `workspace`) gets on
/// `endpoint`, whose `{name}` is the `default` workspace's destination.
fn expected(endpoint: &carillon::api::Endpoint, caller: Option<Caller>) -> Access {
    let p = endpoint.permission;
    let Some((role, workspace)) = caller else {
        return match p {
            // `{token}`s (activation links) name nothing.
            Permission::Public if endpoint.path.contains("{token}") => Access::Hidden,
            Permission::Public => Access::Served,
            _ => Access::Unknown,
        };
    };
    if p == Permission::Public {
        // `{token}`s (activation links) name nothing.
        return if endpoint.path.contains("{token}") {
            Access::Hidden
        } else {
            Access::Served
        };
    }
    // Ingest tokens and management tokens are different credentials.
    if (p == Permission::Ingest) != (role == Role::Ingest) {
        return Access::Unknown;
    }
    if !role.grants(p) {
        return Access::Refused;
    }
    // `{id}`s name nothing; `{name}` names the default workspace's
    // destination, which another workspace's token does not see.
    if endpoint.path.contains("{id}")
        || ((endpoint.path.contains("{name}") || endpoint.path.contains("{ws}"))
            && workspace.is_some_and(|w| w != "default"))
    {
        return Access::Hidden;
    }
    Access::Served
}

#[tokio::test]
async fn every_route_answers_every_role_as_its_table_entry_says() {
    let gw = Gw::start().await;
    let mut callers: Vec<(Option<&str>, Option<Caller>)> = vec![(None, None)];
    callers.push((Some("not-a-token"), None));
    for (t, role, ws) in TOKENS {
        callers.push((Some(t), Some((*role, *ws))));
    }
    let mut checked = 0;
    for endpoint in carillon::api::ROUTES {
        // `{name}` names an object of the `default` workspace that exists
        // (provisioned: an edit is refused with 409, so the walk changes
        // nothing).
        let name = match endpoint.path {
            p if p.contains("/routes/") => "everything",
            p if p.contains("/templates/") => "plain",
            p if p.contains("/contacts/") => "li-wei",
            p if p.contains("/groups/") => "oncall",
            p if p.contains("/sources/") => "shop",
            _ => "ops",
        };
        let path = endpoint
            .path
            .replace("{id}", "0000000000000000000000000x")
            .replace("{ws}", "default")
            .replace("{index}", "0")
            .replace("{token}", "0000")
            .replace("{name}", name);
        for (token, caller) in &callers {
            let (status, body) = gw.send(endpoint.method, &path, *token, None).await;
            let want = expected(endpoint, *caller);
            assert_eq!(
                access(status),
                want,
                "{endpoint:?} as {caller:?}: {status} {body}"
            );
            if want == Access::Refused {
                assert_eq!(body["error"]["code"], "forbidden", "{body}");
            }
            checked += 1;
        }
    }
    assert_eq!(checked, carillon::api::ROUTES.len() * (TOKENS.len() + 2));
    gw.stop().await;
}

async fn wait_for(receiver: &Receiver, n: usize) {
    for _ in 0..500 {
        if receiver.received().len() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("expected {n} requests, got {}", receiver.received().len());
}

fn event(title: &str) -> Value {
    json!({ "type": "x.y", "source": "app", "title": title, "message": "m" })
}

#[tokio::test]
async fn a_workspace_token_never_sees_or_changes_another_workspace() {
    let gw = Gw::start().await;
    let (team_ingest, default_ingest) =
        (token(Role::Ingest, "team"), token(Role::Ingest, "default"));

    // Each workspace's events are routed by its own routes only.
    let (s, team_event) = gw
        .post("/v1/events", team_ingest, &event("for the team"))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{team_event}");
    assert_eq!(team_event["deliveries"][0]["destination"], "team-bot");
    assert_eq!(team_event["deliveries"].as_array().map(Vec::len), Some(1));
    let (s, ops_event) = gw
        .post("/v1/events", default_ingest, &event("for ops"))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{ops_event}");
    assert_eq!(ops_event["deliveries"][0]["destination"], "ops");
    assert_eq!(ops_event["deliveries"].as_array().map(Vec::len), Some(1));
    wait_for(&gw.team, 1).await;
    wait_for(&gw.ops, 1).await;

    // Another workspace's destination cannot be named by an event.
    let mut named = event("sneaky");
    named["destinations"] = json!(["ops"]);
    let (s, b) = gw.post("/v1/events", team_ingest, &named).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    assert!(b.to_string().contains("no destination is named"), "{b}");

    // Events: each workspace's viewer sees its own, the instance admin all.
    let team_id = team_event["id"].as_str().unwrap();
    let ops_id = ops_event["id"].as_str().unwrap();
    for (who, own, other) in [
        (token(Role::Viewer, "team"), team_id, ops_id),
        (token(Role::Viewer, "default"), ops_id, team_id),
    ] {
        let (s, b) = gw.get(&format!("/v1/events/{own}"), who).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        let (s, _) = gw.get(&format!("/v1/events/{other}"), who).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
    }
    let (_, b) = gw.get(&format!("/v1/events/{team_id}"), ADMIN).await;
    assert_eq!(b["workspace"], "team", "{b}");

    // Destinations: listed per workspace.
    // Declared destinations (a contact's methods are listed with their
    // `contact`).
    let names = |b: &Value| -> Vec<String> {
        b["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["config"]["contact"].is_null())
            .map(|d| d["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let (_, b) = gw
        .get("/v1/destinations", token(Role::Viewer, "team"))
        .await;
    assert_eq!(names(&b), ["team-bot"]);
    assert_eq!(b["items"][0]["workspace"], "team");
    let (_, b) = gw
        .get("/v1/destinations", token(Role::Operator, "default"))
        .await;
    assert_eq!(names(&b), ["ops"]);
    let (_, b) = gw.get("/v1/destinations", ADMIN).await;
    assert_eq!(names(&b), ["ops", "team-bot"]);

    // Test push and retry-dead: only on the workspace's own destinations.
    let team_op = token(Role::Operator, "team");
    let (s, _) = gw
        .post("/v1/destinations/ops/test", team_op, &json!({}))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, b) = gw
        .post("/v1/destinations/team-bot/test", team_op, &json!({}))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, _) = gw
        .post("/v1/destinations/ops/retry-dead", team_op, &json!({}))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Dead letters: listed and retried only by their workspace's tokens.
    gw.ops.script([Answer::status(400)]);
    let (s, b) = gw
        .post("/v1/events", default_ingest, &event("doomed"))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{b}");
    let dead = b["deliveries"][0]["id"].as_str().unwrap().to_owned();
    let mut listed = Value::Null;
    for _ in 0..500 {
        let (_, p) = gw
            .get("/v1/deliveries?state=dead", token(Role::Viewer, "default"))
            .await;
        listed = p;
        if !listed["items"].as_array().is_none_or(Vec::is_empty) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(listed["items"][0]["id"], dead.as_str(), "{listed}");
    for path in [
        "/v1/deliveries?state=dead",
        "/v1/deliveries?state=dead&destination=ops",
    ] {
        let (s, b) = gw.get(path, token(Role::Viewer, "team")).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(b["items"], json!([]), "{path}: {b}");
    }
    let retry = format!("/v1/deliveries/{dead}/retry");
    let (s, _) = gw.post(&retry, team_op, &json!({})).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, b) = gw
        .post(&retry, token(Role::Operator, "default"), &json!({}))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{b}");
    wait_for(&gw.ops, 3).await;
    gw.stop().await;
}
