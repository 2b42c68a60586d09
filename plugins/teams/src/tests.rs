//! Native tests through the SDK harness: golden requests for every sample
//! in both formats, answer classes, the size budget and config checks.

#![allow(clippy::unwrap_used)]

use carillon_sdk::testing::{
    Harness, check_golden_requests, expect_http, pretty_outgoing, sample, sample_message,
};
use carillon_sdk::{DeliverError, HttpError, HttpResponse, Receipt};
use serde_json::{Value, json};

use super::*;

const WORKFLOW: &str = "https://prod-12.westeurope.logic.azure.com:443/workflows/0a1b2c/triggers/manual/paths/invoke?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=s3cr3t";
const CONNECTOR: &str =
    "https://contoso.webhook.office.com/webhookb2/1111@2222/IncomingWebhook/3333/4444";

fn configs() -> Vec<(&'static str, Value)> {
    vec![
        (
            "workflow",
            json!({ "webhook": WORKFLOW, "mentions": [{ "id": "lead@contoso.com", "name": "Lead" }] }),
        ),
        ("connector", json!({ "webhook": CONNECTOR })),
    ]
}

#[test]
fn golden_requests() {
    check_golden_requests::<Teams>(
        env!("CARGO_MANIFEST_DIR"),
        &configs(),
        MAX_PAYLOAD_BYTES,
        pretty_outgoing,
    );
}

#[test]
fn format_is_detected_from_the_url() {
    let config = |url: &str, format: Option<&str>| TeamsConfig {
        webhook: url.into(),
        format: format.map(|f| serde_json::from_value(json!(f)).unwrap()),
        mentions: vec![],
        locale: None,
    };
    assert_eq!(format_of(&config(WORKFLOW, None)), Format::Workflow);
    assert_eq!(format_of(&config(CONNECTOR, None)), Format::Connector);
    assert_eq!(
        format_of(&config(
            "https://outlook.office.com/webhook/a@b/IncomingWebhook/c/d",
            None
        )),
        Format::Connector
    );
    assert_eq!(
        format_of(&config("http://127.0.0.1:9/hook", Some("connector"))),
        Format::Connector
    );
}

#[test]
fn mentions_match_their_entities() {
    let h = Harness::<Teams>::new();
    let request = expect_http(
        h.render(&json!({ "webhook": WORKFLOW }), &sample("mentions"))
            .unwrap(),
    );
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    let card = &body["attachments"][0]["content"];
    let entities = card["msteams"]["entities"].as_array().unwrap();
    let texts: Vec<&str> = card["body"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|b| b["text"].as_str())
        .collect();
    assert_eq!(entities.len(), 2);
    for entity in entities {
        let at = entity["text"].as_str().unwrap();
        assert!(
            texts.iter().any(|t| t.contains(at)),
            "{at} not in {texts:?}"
        );
    }
    assert_eq!(entities[1]["mentioned"]["id"], "oncall@example.com");
    let warnings = h.warnings().len();
    assert_eq!(warnings, 2, "all and mobile are dropped");

    // Connector cards mention no one.
    let h = Harness::<Teams>::new();
    let request = expect_http(
        h.render(&json!({ "webhook": CONNECTOR }), &sample("mentions"))
            .unwrap(),
    );
    assert!(!request.body_text().contains("<at>"));
    assert_eq!(h.logs().len(), 1);
}

#[test]
fn receipts_say_which_mentions_teams_cannot_make() {
    let h = Harness::<Teams>::new().respond(|_| Ok(HttpResponse::text(202, "")));
    let receipt = h
        .deliver(&json!({ "webhook": WORKFLOW }), &sample("mentions"))
        .unwrap();
    assert!(
        receipt.detail.contains("not mentioned: everyone"),
        "{}",
        receipt.detail
    );
    assert!(
        receipt.detail.contains("not mentioned: 1 by phone number"),
        "{}",
        receipt.detail
    );

    let h = Harness::<Teams>::new().respond(|_| Ok(HttpResponse::text(200, "1")));
    let receipt = h
        .deliver(&json!({ "webhook": CONNECTOR }), &sample("mentions"))
        .unwrap();
    assert!(
        receipt
            .detail
            .contains("not mentioned: 4 (a connector MessageCard cannot mention anyone"),
        "{}",
        receipt.detail
    );
    // Standing mentions on a connector are refused up front.
    let issues = Harness::<Teams>::new()
        .validate(&json!({ "webhook": CONNECTOR, "mentions": [{ "id": "a@contoso.com" }] }))
        .unwrap_err();
    assert_eq!(issues[0].path, "/mentions", "{issues:?}");
}

#[test]
fn message_text_cannot_forge_mentions() {
    let mut message = sample_message();
    message.markdown = "<at>Lead</at> please look".into();
    let request = expect_http(
        Harness::<Teams>::new()
            .render(&json!({ "webhook": WORKFLOW }), &message)
            .unwrap(),
    );
    let text = request.body_text();
    assert!(!text.contains("<at>Lead"), "{text}");
    assert!(text.contains("<\u{200B}at\\\\>Lead"), "{text}");
}

#[test]
fn card_is_version_1_4_without_table_elements() {
    let request = expect_http(
        Harness::<Teams>::new()
            .render(&json!({ "webhook": WORKFLOW }), &sample("table"))
            .unwrap(),
    );
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    let card = &body["attachments"][0]["content"];
    assert_eq!(card["version"], "1.4");
    assert!(!request.body_text().contains("\"Table\""));
    let grid: Vec<&Value> = card["body"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["type"] == "ColumnSet")
        .collect();
    assert_eq!(grid.len(), 4, "header and three rows");
    assert_eq!(grid[2]["columns"][1]["items"][0]["color"], "attention");
    assert_eq!(grid[1]["columns"][1]["items"][0]["color"], "good");
    assert_eq!(card["actions"][0]["type"], "Action.OpenUrl");
}

#[test]
fn long_message_fits_with_a_note() {
    for (name, config) in configs() {
        let request = expect_http(
            Harness::<Teams>::new()
                .render(&config, &sample("long"))
                .unwrap(),
        );
        assert!(request.body.len() <= MAX_PAYLOAD_BYTES, "{name}");
        assert!(
            request.body.len() > MAX_PAYLOAD_BYTES - 1_000,
            "{name}: wasteful"
        );
        assert!(request.body_text().contains("(truncated "), "{name}");
    }
    let mut message = sample("table");
    let t = message.table.as_mut().unwrap();
    let rows = t.rows.clone();
    t.rows = (0..3_000).map(|i| rows[i % 3].clone()).collect();
    for (name, config) in configs() {
        let request = expect_http(Harness::<Teams>::new().render(&config, &message).unwrap());
        assert!(request.body.len() <= MAX_PAYLOAD_BYTES, "{name}");
        assert!(request.body_text().contains(" more rows"), "{name}");
    }
}

fn outcome(config: &Value, response: HttpResponse) -> Result<Receipt, DeliverError> {
    let h = Harness::<Teams>::new().respond(move |_| Ok(response.clone()));
    h.deliver(config, &sample_message())
}

#[test]
fn workflow_answers_map_to_outcomes() {
    let config = json!({ "webhook": WORKFLOW });
    assert!(outcome(&config, HttpResponse::text(202, "")).is_ok());
    assert!(outcome(&config, HttpResponse::text(200, "")).is_ok());
    assert!(matches!(
        outcome(&config, HttpResponse::text(429, "").with_header("retry-after", "9")),
        Err(DeliverError::RateLimited(l)) if l.after_ms == 9_000
    ));
    assert!(matches!(
        outcome(&config, HttpResponse::text(502, "bad gateway")),
        Err(DeliverError::Retryable(_))
    ));
    assert!(matches!(
        outcome(&config, HttpResponse::json(401, &json!({"error":{"code":"DirectApiInvalidAuthorizationSignature","message":"The provided callback URL signature is invalid."}}))),
        Err(DeliverError::InvalidConfig(r)) if r.contains("HTTP 401 DirectApiInvalidAuthorizationSignature")
    ));
    assert!(matches!(
        outcome(&config, HttpResponse::json(404, &json!({"error":{"code":"WorkflowNotFound","message":"The workflow was not found."}}))),
        Err(DeliverError::InvalidConfig(r)) if r.contains("HTTP 404 WorkflowNotFound")
    ));
    assert!(matches!(
        outcome(&config, HttpResponse::text(403, "")),
        Err(DeliverError::Rejected(_))
    ));
}

#[test]
fn connector_answers_map_to_outcomes() {
    let config = json!({ "webhook": CONNECTOR });
    assert!(outcome(&config, HttpResponse::text(200, "1")).is_ok());
    let failed = |code: u16| {
        format!(
            "Webhook message delivery failed with error: Microsoft Teams endpoint returned HTTP error {code} with ContextId tcid=0,server=msgapi-production-eus-azsc2-4-170,cv=deadbeef.0"
        )
    };
    assert!(matches!(
        outcome(&config, HttpResponse::text(200, &failed(429))),
        Err(DeliverError::RateLimited(l)) if l.after_ms == RATE_LIMIT_WAIT_MS
    ));
    assert!(matches!(
        outcome(&config, HttpResponse::text(200, &failed(413))),
        Err(DeliverError::Rejected(r)) if r.contains("too large")
    ));
    assert!(matches!(
        outcome(&config, HttpResponse::text(200, &failed(403))),
        Err(DeliverError::Rejected(_))
    ));
    assert!(matches!(
        outcome(&config, HttpResponse::text(200, &failed(500))),
        Err(DeliverError::Retryable(_))
    ));
    // A 200 whose body is not `1` is not a delivery.
    assert!(matches!(
        outcome(&config, HttpResponse::text(200, "ok")),
        Err(DeliverError::Rejected(_))
    ));
    assert!(matches!(
        outcome(&config, HttpResponse::text(404, "Not Found")),
        Err(DeliverError::InvalidConfig(r)) if r.contains("removed")
    ));
    assert!(matches!(
        outcome(&config, HttpResponse::text(400, "Summary or Text is required.")),
        Err(DeliverError::Rejected(r)) if r.contains("Summary or Text")
    ));
    assert!(matches!(
        outcome(&config, HttpResponse::text(429, "").with_header("retry-after", "2")),
        Err(DeliverError::RateLimited(l)) if l.after_ms == 2_000
    ));
    assert!(matches!(
        outcome(&config, HttpResponse::text(503, "")),
        Err(DeliverError::Retryable(_))
    ));
    let h = Harness::<Teams>::new().respond(|_| Err(HttpError::Connect("refused".into())));
    assert!(matches!(
        h.deliver(&config, &sample_message()),
        Err(DeliverError::Retryable(_))
    ));
}

#[test]
fn config_problems_are_all_reported_with_paths() {
    let h = Harness::<Teams>::new();
    let paths = h.issue_paths(&json!({
        "webhook": "https://prod-1.westus.logic.azure.com/workflows/x/triggers/manual/paths/invoke",
        "format": "connector",
        "mentions": [{ "id": "ok@contoso.com" }, { "id": "has space", "name": "<b>" }],
        "locale": "en_US",
    }));
    assert_eq!(
        paths,
        [
            "/webhook",
            "/format",
            "/mentions/1/id",
            "/mentions/1/name",
            "/mentions",
            "/locale"
        ]
    );
    assert_eq!(
        h.validate(&json!({ "webhook": "mailto:x" })).unwrap_err()[0].path,
        "/webhook"
    );
    assert_eq!(
        h.validate(&json!({ "webhook": WORKFLOW, "format": "adaptive" }))
            .unwrap_err()[0]
            .path,
        "/format"
    );
    assert_eq!(
        h.validate(&json!({ "webhook": WORKFLOW, "extra": 1 }))
            .unwrap_err()[0]
            .path,
        "/extra"
    );
    assert!(h.validate(&json!({ "webhook": WORKFLOW })).is_ok());
    assert!(h.validate(&json!({ "webhook": CONNECTOR })).is_ok());
}

#[test]
fn manifest_is_well_formed() {
    let m = Harness::<Teams>::new().manifest();
    assert_eq!(m.name, "teams");
    assert_eq!(m.endpoint_fields, ["/webhook"]);
    assert_eq!(m.secret_fields, ["/webhook"]);
    assert_eq!(m.max_payload_bytes, 28 * 1024);
    assert_eq!(m.rate_limits.len(), 1);
}
