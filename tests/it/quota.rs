//! Alert quotas end to end, on a manual clock: a contact capped at 20
//! alerts an hour gets 20 of 30 and then one digest saying 10 were held
//! back and of which kinds, also across a restart in the window; a
//! route's quota holds its targets back likewise; each held-back target is
//! recorded on its event.

use std::sync::Arc;
use std::time::Duration;

use carillon_outbox::{Clock, ManualClock, SystemClock};
use carillon_tests::fakes::webhook::Receiver;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{
    advance, config_file, gateway_from_file_on as start, wait_received as wait_for,
};

const ADMIN: &str = "adm-quota-0123456789";
const INGEST: &str = "ing-quota-0123456789";

async fn post(http: &reqwest::Client, base: &str, kind: &str) -> Value {
    let r = http
        .post(format!("{base}/v1/events"))
        .bearer_auth(INGEST)
        .json(&json!({ "type": kind, "source": "db", "title": kind, "severity": "critical" }))
        .send()
        .await
        .expect("post");
    let status = r.status();
    let body = r.json::<Value>().await.expect("json");
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    body
}

/// The requests `receiver` got whose body contains `needle`.
fn with_text(receiver: &Receiver, needle: &str) -> Vec<String> {
    receiver
        .received()
        .iter()
        .map(|r| r.json().to_string())
        .filter(|t| t.contains(needle))
        .collect()
}

/// Waits for the first request containing `needle` (a digest, or an
/// alert of a type seen once). (A manual clock moved
/// by half an hour may expire a delivery's lease just as it is answered,
/// so counting requests could count a redelivery; the digest is found by
/// its text.)
async fn digest(receiver: &Receiver, needle: &str) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(t) = with_text(receiver, needle).into_iter().next() {
            return t;
        }
        assert!(std::time::Instant::now() < deadline, "no {needle:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_alerts_in_the_window_give_twenty_and_one_digest_of_the_ten_held_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (phone, team) = (Receiver::start(None).await, Receiver::start(None).await);
    let file = config_file(
        dir.path(),
        ADMIN,
        INGEST,
        &format!(
            r#"
[render]
default_locale = "en"
[contacts.oncall]
display_name = "On Call"
quota = {{ max = 20, per = "1h" }}
methods = [{{ type = "robot", plugin = "webhook", config = {{ url = "{phone}" }} }}]
[destinations.team]
plugin = "webhook"
config = {{ url = "{team}" }}
[[routes]]
name = "page"
match.event = "db.*"
contacts = ["oncall"]
[[routes]]
name = "chatty"
match.event = "batch.*"
destinations = ["team"]
quota = {{ max = 2, per = "30m" }}
"#,
            phone = phone.url("/phone"),
            team = team.url("/team"),
        ),
    );
    let clock = Arc::new(ManualClock::new(SystemClock.now()));
    let mut gateway = start(&file, clock.clone()).await;
    let mut base = format!("http://{}", gateway.local_addr());
    let http = reqwest::Client::new();
    wait_for(&phone, 1, "the activation message").await;
    let r = http
        .post(format!(
            "{base}/v1/workspaces/default/contacts/oncall/methods/0/activate"
        ))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("activate");
    assert_eq!(r.status(), StatusCode::OK);

    // 30 alerts, every third a `db.slow`: the first 20 are sent, the last
    // 10 (7 `db.down`, 3 `db.slow`) held back. A restart after the 25th
    // keeps the window full.
    let mut answers = Vec::new();
    for i in 0..30 {
        if i == 25 {
            gateway.shutdown().await;
            gateway = start(&file, clock.clone()).await;
            base = format!("http://{}", gateway.local_addr());
        }
        let kind = if i % 3 == 0 { "db.slow" } else { "db.down" };
        answers.push(post(&http, &base, kind).await);
    }
    for (i, a) in answers.iter().enumerate() {
        let sent = a["deliveries"].as_array().map_or(0, Vec::len);
        assert_eq!(sent, usize::from(i < 20), "alert {i}: {a}");
    }
    wait_for(&phone, 21, "the 20 alerts under the quota").await;
    // The held-back target is recorded on the event, with its quota.
    let id = answers[29]["id"].as_str().expect("id");
    let r = http
        .get(format!("{base}/v1/events/{id}"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("event");
    let event: Value = r.json().await.expect("json");
    let held = &event["routing"]["suppressed"][0];
    assert_eq!(held["destination"], "oncall@0", "{event}");
    assert_eq!(held["quota"], "contact:oncall", "{event}");

    // Its digest waits as a timer, with the count so far.
    let r = http
        .get(format!("{base}/v1/timers?source=carillon/quota"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("timers");
    let timers: Value = r.json().await.expect("json");
    assert_eq!(
        timers["items"].as_array().map(Vec::len),
        Some(1),
        "{timers}"
    );
    assert_eq!(timers["items"][0]["kind"], "quota.digest", "{timers}");
    assert_eq!(timers["items"][0]["quota"], "contact:oncall", "{timers}");
    assert_eq!(timers["items"][0]["suppressed"], 10, "{timers}");

    // The window ends: one digest, to the contact, past the quota.
    advance(&gateway, &clock, Duration::from_secs(3600));
    let digest = self::digest(&phone, "held back for On Call").await;
    assert!(
        digest.contains("10 alerts held back for On Call"),
        "{digest}"
    );
    assert!(digest.contains("db.down:** 7"), "{digest}");
    assert!(digest.contains("db.slow:** 3"), "{digest}");
    // A new window: the next alert is sent.
    post(&http, &base, "db.recovered").await;
    self::digest(&phone, "db.recovered").await;

    // A route's quota: 2 of 3 reach its destination, then its digest.
    let batch: Vec<Value> = {
        let mut v = Vec::new();
        for _ in 0..3 {
            v.push(post(&http, &base, "batch.done").await);
        }
        v
    };
    assert!(
        batch[2]["deliveries"].as_array().is_some_and(Vec::is_empty),
        "{}",
        batch[2]
    );
    wait_for(&team, 2, "the route's 2 events").await;
    advance(&gateway, &clock, Duration::from_secs(1800));
    let digest = self::digest(&team, "held back on route chatty").await;
    assert!(
        digest.contains("1 alert held back on route chatty"),
        "{digest}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        with_text(&phone, "held back").len(),
        1,
        "one digest per window"
    );
    assert_eq!(
        with_text(&team, "held back").len(),
        1,
        "one digest per window"
    );
    gateway.shutdown().await;
}
