//! Contacts end to end: people created through the API, an alert routed
//! to a contact arriving in their language on their own robot, and a
//! permanent failure escalating primary → alternate → global fallback,
//! each hop rendered anew in its recipient's language and recorded on the
//! event.

use carillon_tests::fakes::webhook::{Answer, Receiver};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{config_file, gateway_from_file as start, wait_received as wait_for};

const ADMIN: &str = "adm-contacts-0123456789";
const INGEST: &str = "ing-contacts-0123456789";
const WS: &str = "/v1/workspaces/default";

async fn put(http: &reqwest::Client, url: String, body: &Value) -> (StatusCode, Value) {
    let r = http
        .put(url)
        .bearer_auth(ADMIN)
        .json(body)
        .send()
        .await
        .expect("request");
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_reaches_a_contact_in_their_language_and_escalates_to_the_alternate_then_the_global_fallback()
 {
    let dir = tempfile::tempdir().expect("tempdir");
    let (li, zhang, last) = (
        Receiver::start(None).await,
        Receiver::start(None).await,
        Receiver::start(None).await,
    );
    let file = config_file(
        dir.path(),
        ADMIN,
        INGEST,
        &format!(
            r#"
[dispatch]
global_fallback = "last-resort"
[destinations.last-resort]
plugin = "webhook"
config = {{ url = "{last}" }}
"#,
            last = last.url("/last"),
        ),
    );
    let gateway = start(&file).await;
    let base = format!("http://{}", gateway.local_addr());
    let http = reqwest::Client::new();

    let template = json!({
        "zh-CN": { "title": "告警：${title}", "body": "${message}" },
        "en": { "title": "Alert: ${title}", "body": "${message}" },
    });
    let (s, b) = put(&http, format!("{base}{WS}/templates/bilingual"), &template).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let robot =
        |url: String| json!({ "type": "robot", "plugin": "webhook", "config": { "url": url } });
    let zhang_san = json!({
        "display_name": "Zhang San", "locale": "en",
        "methods": [robot(zhang.url("/zhang")), { "type": "mobile", "number": "+44 20 7946 0018" }],
    });
    let (s, b) = put(&http, format!("{base}{WS}/contacts/zhang-san"), &zhang_san).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    // A bad mobile is refused at its pointer, and nothing is stored.
    let mut li_wei = json!({
        "display_name": "李伟", "locale": "zh-CN", "alternate": "zhang-san",
        "methods": [robot(li.url("/li")), { "type": "mobile", "number": "13800138000" }],
    });
    let (s, b) = put(&http, format!("{base}{WS}/contacts/li-wei"), &li_wei).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert_eq!(b["error"]["errors"][0]["path"], "/methods/1/number", "{b}");
    li_wei["methods"][1]["number"] = json!("+86 138 0013 8000");
    let (s, b) = put(&http, format!("{base}{WS}/contacts/li-wei"), &li_wei).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(
        b["spec"]["methods"][0]["config"]["url"],
        format!("{}/<redacted>", li.url("").trim_end_matches('/')),
        "{b}"
    );
    // Each robot received its activation message; an operator confirms
    // both methods here (the link itself is tested in `activation`).
    wait_for(&li, 1, "Li Wei's activation message").await;
    wait_for(&zhang, 1, "Zhang San's activation message").await;
    for who in ["li-wei", "zhang-san"] {
        let r = http
            .post(format!("{base}{WS}/contacts/{who}/methods/0/activate"))
            .bearer_auth(ADMIN)
            .send()
            .await
            .expect("activate");
        assert_eq!(r.status(), StatusCode::OK, "{who}");
    }
    let route =
        json!({ "match": { "event": "db.*" }, "contacts": ["li-wei"], "template": "bilingual" });
    let (s, b) = put(&http, format!("{base}{WS}/routes/page-li"), &route).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");

    // The first alert reaches Li Wei's robot, in Chinese.
    let post = |title: &'static str| {
        let http = http.clone();
        let url = format!("{base}/v1/events");
        async move {
            let r = http
                .post(url)
                .bearer_auth(INGEST)
                .json(&json!({ "type": "db.down", "source": "db", "title": title, "message": "m", "severity": "critical" }))
                .send()
                .await
                .expect("post");
            let status = r.status();
            let body = r.json::<Value>().await.expect("json");
            assert_eq!(status, StatusCode::ACCEPTED, "{body}");
            body
        }
    };
    let first = post("primary down").await;
    assert_eq!(first["deliveries"][0]["destination"], "li-wei@0", "{first}");
    wait_for(&li, 2, "Li Wei's robot").await;
    assert_eq!(li.received()[1].json()["title"], "告警：primary down");

    // Li Wei's robot refuses for good: Zhang San gets it, in English.
    li.script([Answer::status(400)]);
    let second = post("replica down").await;
    wait_for(&zhang, 2, "the alternate").await;
    assert_eq!(zhang.received()[1].json()["title"], "Alert: replica down");

    // Both refuse: the global fallback gets it, rendered for itself (the
    // default locale).
    li.script([Answer::status(400)]);
    zhang.script([Answer::status(400)]);
    post("everything down").await;
    wait_for(&last, 1, "the global fallback").await;
    let title = last.received()[0].json()["title"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        title.ends_with("everything down") && !title.contains('告'),
        "{title}"
    );

    // An alternate whose method is not activated yet is passed by: the
    // escalation goes on to the global fallback.
    let fresh = Receiver::start(None).await;
    let new_guy = json!({ "locale": "en", "methods": [robot(fresh.url("/fresh"))] });
    let (s, b) = put(&http, format!("{base}{WS}/contacts/new-guy"), &new_guy).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    wait_for(&fresh, 1, "the new contact's activation message").await;
    li_wei["alternate"] = json!("new-guy");
    let (s, b) = put(&http, format!("{base}{WS}/contacts/li-wei"), &li_wei).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    li.script([Answer::status(400)]);
    post("cache down").await;
    wait_for(&last, 2, "the global fallback, past the pending alternate").await;
    assert!(
        last.received()[1].json()["title"]
            .as_str()
            .unwrap_or_default()
            .ends_with("cache down")
    );
    assert_eq!(fresh.received().len(), 1, "the pending method got no alert");

    // Each hop is recorded on the event.
    let id = second["id"].as_str().expect("id");
    let r = http
        .get(format!("{base}/v1/events/{id}"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("get");
    let event: Value = r.json().await.expect("json");
    let text = event.to_string();
    assert!(
        text.contains("li-wei@0") && text.contains("zhang-san@0"),
        "{event}"
    );

    // The contacts as the API lists them; the methods' destinations are
    // not listed as destinations of their own.
    let r = http
        .get(format!("{base}{WS}/contacts"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("get");
    let contacts: Value = r.json().await.expect("json");
    assert_eq!(
        contacts["items"].as_array().map(Vec::len),
        Some(3),
        "{contacts}"
    );
    let r = http
        .get(format!("{base}{WS}/destinations"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("get");
    let destinations: Value = r.json().await.expect("json");
    assert!(
        !destinations.to_string().contains("li-wei@"),
        "{destinations}"
    );
    gateway.shutdown().await;
}

/// Contacts from a directory, as CSV and as JSON, matched by external id:
/// created, changed, unchanged, and refused rows each reported, the good
/// rows applied together.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_import_reports_every_row_and_applies_the_good_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("carillon.toml");
    std::fs::write(
        &file,
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
[destinations.mail]
plugin = "email"
config = {{ server = {{ host = "127.0.0.1", port = 1, security = "none" }}, from = "alerts@example.com", to = ["ops@example.com"] }}
[contacts.boss]
external_id = "E0"
methods = [{{ type = "mobile", number = "+86 138 0000 0000" }}]
"#,
            data = dir.path().display(),
        ),
    )
    .expect("write");
    let gateway = start(&file).await;
    let base = format!("http://{}", gateway.local_addr());
    let http = reqwest::Client::new();
    let import = |body: String, csv: bool| {
        let http = http.clone();
        let url = format!("{base}{WS}/import/contacts?email_via=mail");
        async move {
            let r = http
                .post(url)
                .bearer_auth(ADMIN)
                .header(
                    "content-type",
                    if csv { "text/csv" } else { "application/json" },
                )
                .body(body)
                .send()
                .await
                .expect("post");
            let status = r.status();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let results = |b: &Value| -> Vec<String> {
        b["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["result"].as_str().unwrap().to_owned())
            .collect()
    };
    let csv = "external_id,display_name,locale,email,mobile\n\
               E1,Li Wei,zh-CN,li.wei@example.com,+86 138 0013 8000\n\
               E2,Bad Number,en,,138\n\
               E3,Zhang San,en,,+44 20 7946 0018\n\
               E0,The Boss,en,,+86 138 0000 0001\n";
    let (s, b) = import(csv.to_owned(), true).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(
        results(&b),
        ["created", "refused", "created", "refused"],
        "{b}"
    );
    assert_eq!(
        b["rows"][1]["errors"][0]["path"], "/methods/0/number",
        "{b}"
    );
    assert!(
        b["rows"][3]["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("provisioned"),
        "{b}"
    );
    assert_eq!(b["rows"][0]["name"], "e1", "{b}");

    // The same file again: nothing changes; then one number changes.
    let (_, b) = import(csv.to_owned(), true).await;
    assert_eq!(
        results(&b),
        ["unchanged", "refused", "unchanged", "refused"],
        "{b}"
    );
    let changed = csv.replace("+44 20 7946 0018", "+44 20 7946 0019");
    let (_, b) = import(changed, true).await;
    assert_eq!(results(&b)[2], "changed", "{b}");
    assert_eq!(b["changed"], 1, "{b}");

    // JSON rows: a good one with a name, one naming a missing alternate.
    let json_rows = json!({ "contacts": [
        { "external_id": "E4", "name": "wang-wu", "locale": "en", "alternate": "e1",
          "methods": [{ "type": "mobile", "number": "+1 415 555 0100" }] },
        { "external_id": "E5", "alternate": "nobody", "methods": [] },
    ]});
    let (s, b) = import(json_rows.to_string(), false).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(results(&b), ["created", "refused"], "{b}");
    assert_eq!(b["rows"][1]["errors"][0]["path"], "/alternate", "{b}");

    // What was applied is there, with its directory id.
    let r = http
        .get(format!("{base}{WS}/contacts/wang-wu"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("get");
    let wang: Value = r.json().await.expect("json");
    assert_eq!(wang["spec"]["external_id"], "E4", "{wang}");
    assert_eq!(wang["spec"]["alternate"], "e1", "{wang}");
    // A CSV with an unknown column is refused as a whole, naming it.
    let (s, b) = import("external_id,pager\nE9,1\n".into(), true).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    assert!(b.to_string().contains("pager"), "{b}");
    gateway.shutdown().await;
}
