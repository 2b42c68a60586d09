//! Contact activation end to end, on a personal DingTalk robot (the
//! DingTalk fake checks the signature and the rate limit): the activation
//! message arrives through the method itself, the link in it activates the
//! method once, a pending method is skipped and the skip recorded on the
//! event; an expired link (a controlled clock) says so, a resend replaces
//! it, and an operator may force a method active (audited).

use std::sync::Arc;
use std::time::{Duration, Instant};

use carillon::gateway::{Gateway, Options};
use carillon_outbox::{ManualClock, Timestamp};
use carillon_tests::fakes::dingtalk;
use reqwest::StatusCode;
use serde_json::{Value, json};

const ADMIN: &str = "adm-activation-0123456789";
const INGEST: &str = "ing-activation-0123456789";
const WS: &str = "/v1/workspaces/default";

/// The activation tokens in the messages the robot `token` received, in
/// order.
fn links(fake: &dingtalk::Fake, token: &str) -> Vec<String> {
    fake.delivered()
        .iter()
        .filter(|r| r.token.as_deref() == Some(token))
        .filter_map(|r| {
            let text = String::from_utf8_lossy(&r.body).into_owned();
            let at = text.find("/v1/activate/")? + "/v1/activate/".len();
            Some(
                text[at..]
                    .chars()
                    .take_while(char::is_ascii_hexdigit)
                    .collect(),
            )
        })
        .collect()
}

async fn wait_until(what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !f() {
        assert!(Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_method_turns_active_through_its_own_link_and_only_then_receives_alerts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fake = dingtalk::Fake::start_many([
        dingtalk::Bot::new("li").secret("SEC-li-secret"),
        dingtalk::Bot::new("bob").secret("SEC-bob-secret"),
        dingtalk::Bot::new("carol"),
        dingtalk::Bot::new("team"),
    ])
    .await;
    let start_ms = jiff::Timestamp::now().as_millisecond();
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(
        u64::try_from(start_ms).expect("after 1970"),
    )));
    fake.set_clock(Some(start_ms));
    let text = format!(
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
[egress]
allow_private = ["127.0.0.1/32"]
[contacts.li-wei]
display_name = "李伟"
locale = "zh-CN"
methods = [
  {{ type = "robot", plugin = "dingtalk", config = {{ webhook = "{li}", secret = "SEC-li-secret" }} }},
  {{ type = "mobile", number = "+86 138 0013 8000" }},
]
[contacts.bob]
locale = "en"
methods = [{{ type = "robot", plugin = "dingtalk", config = {{ webhook = "{bob}", secret = "SEC-bob-secret" }} }}]
[[routes]]
name = "db-to-people"
match = {{ event = "db.*" }}
contacts = ["li-wei", "bob"]
[destinations.team-robot]
plugin = "dingtalk"
config = {{ webhook = "{team}" }}
[[routes]]
name = "team-with-li"
match = {{ event = "deploy.*" }}
destinations = ["team-robot"]
mention = ["li-wei"]
"#,
        data = dir.path().display(),
        li = fake.url("li"),
        bob = fake.url("bob"),
        team = fake.url("team"),
    );
    let env = |_: &str| None;
    let resolver = carillon::config::Resolver {
        env: &env,
        base_dir: dir.path(),
    };
    let config =
        carillon::config::Config::from_toml(&text, &resolver).unwrap_or_else(|p| panic!("{p}"));
    let options = Options {
        clock: clock.clone(),
        dispatch: carillon::dispatch::DispatchConfig {
            poll_interval: Duration::from_millis(20),
            ..carillon::dispatch::DispatchConfig::default()
        },
        ..Options::default()
    };
    let gateway = Gateway::start(config, options).await.expect("starts");
    let base = format!("http://{}", gateway.local_addr());
    let http = reqwest::Client::new();
    let get = |path: String, token: Option<&'static str>| {
        let http = http.clone();
        async move {
            let mut r = http.get(path);
            if let Some(t) = token {
                r = r.bearer_auth(t);
            }
            let r = r.send().await.expect("get");
            let status = r.status();
            (status, r.text().await.unwrap_or_default())
        }
    };
    let post = |path: String, token: &'static str, body: Value| {
        let http = http.clone();
        async move {
            let r = http
                .post(path)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .expect("post");
            let status = r.status();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };

    // Each method got its activation message, in its contact's language.
    wait_until("two activation messages", || fake.delivered().len() >= 2).await;
    let li_links = links(&fake, "li");
    assert_eq!(li_links.len(), 1, "{:?}", fake.delivered());
    assert_eq!(li_links[0].len(), 48);
    let li_message = String::from_utf8_lossy(
        &fake
            .delivered()
            .iter()
            .find(|r| r.token.as_deref() == Some("li"))
            .unwrap()
            .body,
    )
    .into_owned();
    assert!(li_message.contains("请确认"), "{li_message}");

    // Pending: an alert skips both, and the event says so.
    let alert =
        json!({ "type": "db.down", "source": "db", "title": "primary down", "message": "m" });
    let (s, accepted) = post(format!("{base}/v1/events"), INGEST, alert.clone()).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{accepted}");
    assert_eq!(accepted["deliveries"], json!([]), "{accepted}");
    let id = accepted["id"].as_str().expect("id").to_owned();
    let (_, event) = get(format!("{base}/v1/events/{id}"), Some(ADMIN)).await;
    let event: Value = serde_json::from_str(&event).expect("json");
    let skipped = &event["routing"]["skipped"];
    assert_eq!(skipped.as_array().map(Vec::len), Some(2), "{event}");
    assert_eq!(skipped[0]["contact"], "li-wei", "{event}");
    assert_eq!(skipped[1]["destination"], "bob@0", "{event}");
    assert!(
        skipped[0]["reason"]
            .as_str()
            .unwrap()
            .contains("not activated"),
        "{event}"
    );

    // The link activates Li Wei's robot, once.
    let (s, page) = get(format!("{base}/v1/activate/{}", li_links[0]), None).await;
    assert_eq!(s, StatusCode::OK, "{page}");
    assert!(page.contains("Activated"), "{page}");
    let (s, _) = get(format!("{base}/v1/activate/{}", li_links[0]), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "a link works once");
    let (_, contact) = get(format!("{base}{WS}/contacts/li-wei"), Some(ADMIN)).await;
    let contact: Value = serde_json::from_str(&contact).expect("json");
    assert_eq!(contact["activation"][0]["state"], "active", "{contact}");
    assert_eq!(
        contact["activation"][0]["activated_by"], "link",
        "{contact}"
    );

    // The next alert reaches Li Wei (signed; the fake checks it), not Bob.
    let before = fake.delivered().len();
    let (s, accepted) = post(format!("{base}/v1/events"), INGEST, alert.clone()).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{accepted}");
    assert_eq!(
        accepted["deliveries"][0]["destination"], "li-wei@0",
        "{accepted}"
    );
    assert_eq!(
        accepted["deliveries"].as_array().map(Vec::len),
        Some(1),
        "{accepted}"
    );
    wait_until("the alert at Li Wei's robot", || {
        fake.delivered().len() > before
    })
    .await;
    let last = fake.delivered().last().cloned().unwrap();
    assert_eq!(last.token.as_deref(), Some("li"));
    assert!(String::from_utf8_lossy(&last.body).contains("primary down"));

    // 25 hours later Bob's link has expired; a resend replaces it.
    clock.advance(Duration::from_secs(25 * 3600));
    fake.set_clock(Some(start_ms + 25 * 3600 * 1000));
    let bob_old = links(&fake, "bob").remove(0);
    let (s, page) = get(format!("{base}/v1/activate/{bob_old}"), None).await;
    assert_eq!(s, StatusCode::GONE, "{page}");
    assert!(page.contains("expired"), "{page}");
    let resend = format!("{base}{WS}/contacts/bob/methods/0/resend");
    let (s, body) = post(resend, ADMIN, json!({})).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{body}");
    wait_until("the new link at Bob's robot", || {
        links(&fake, "bob").len() == 2
    })
    .await;
    let bob_new = links(&fake, "bob").remove(1);
    let (s, _) = get(format!("{base}/v1/activate/{bob_old}"), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "the old link is replaced");
    let (s, page) = get(format!("{base}/v1/activate/{bob_new}"), None).await;
    assert_eq!(s, StatusCode::OK, "{page}");

    // A contact created through the API is pending too; an operator forces
    // it active, and the audit log says who.
    let carol = json!({ "methods": [{ "type": "robot", "plugin": "dingtalk", "config": { "webhook": fake.url("carol") } }] });
    let r = http
        .put(format!("{base}{WS}/contacts/carol"))
        .bearer_auth(ADMIN)
        .json(&carol)
        .send()
        .await
        .expect("put");
    assert_eq!(r.status(), StatusCode::CREATED);
    wait_until("Carol's activation message", || {
        links(&fake, "carol").len() == 1
    })
    .await;
    let force = format!("{base}{WS}/contacts/carol/methods/0/activate");
    let (s, body) = post(force.clone(), ADMIN, json!({})).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "active", "{body}");
    assert_eq!(body["activated_by"], "admin", "{body}");
    let (s, _) = post(force, ADMIN, json!({})).await;
    assert_eq!(s, StatusCode::CONFLICT, "already active");
    let (_, audit) = get(
        format!("{base}{WS}/audit?kind=contact&name=carol"),
        Some(ADMIN),
    )
    .await;
    let audit: Value = serde_json::from_str(&audit).expect("json");
    assert_eq!(audit["items"][0]["after"]["forced"], true, "{audit}");
    let (s, _) = post(
        format!("{base}{WS}/contacts/carol/methods/7/activate"),
        ADMIN,
        json!({}),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // A route @mentions Li Wei in the team's group robot by his mobile, as
    // DingTalk matches it (the bare 11 digits of a mainland number).
    let (s, body) = post(
        format!("{base}/v1/events"),
        INGEST,
        json!({ "type": "deploy.done", "source": "ci", "title": "deployed", "message": "m" }),
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{body}");
    wait_until("the team robot's message", || {
        fake.delivered()
            .iter()
            .any(|r| r.token.as_deref() == Some("team"))
    })
    .await;
    let team = fake
        .delivered()
        .into_iter()
        .find(|r| r.token.as_deref() == Some("team"))
        .unwrap();
    let sent: Value = serde_json::from_slice(&team.body).expect("json");
    assert_eq!(sent["at"]["atMobiles"], json!(["13800138000"]), "{sent}");
    gateway.shutdown().await;
}
