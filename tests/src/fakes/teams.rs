//! A fake Microsoft Teams (docs/vendors/teams.md, and docs/vendors/README.md
//! "Retry classification"): Power Automate Workflows webhooks and legacy
//! Office 365 connectors on one real HTTP server on 127.0.0.1, written
//! without carillon-sdk so it cross-checks the `teams` plugin.
//!
//! Workflows (`/workflows/<id>/triggers/manual/paths/invoke?…&sig=…`):
//! the `sig` query parameter is checked (401 otherwise), then the request is
//! answered **202 with an empty body** before "the flow runs"
//! (docs/vendors/teams.md#limits): what the flow would fail on (not a
//! `message` with an Adaptive Card attachment, card version above 1.4, body
//! over 28 KB) is recorded in [`Recorded::flow`], never answered. `throttle_next` answers 429 with
//! `Retry-After`. Error `code` values for bad `sig`/throttling are
//! UNCONFIRMED (docs/vendors/teams.md#open-questions); only the
//! `{"error":{"code","message"}}` shape is documented, so the plugin must not
//! depend on the codes.
//!
//! Connectors (`/webhookb2/<id>/IncomingWebhook/…`): success is HTTP 200
//! with the body `1`; a MessageCard without `summary` or `text` gets HTTP
//! 400 `Summary or Text is required.`; more than 4 requests per second or a
//! body over 28 KB get HTTP 200 with the "Webhook message delivery failed …
//! HTTP error 429/413" text (docs/vendors/teams.md#connector-messagecard).
//! Note: the plugin detects connectors by host, so a destination pointing at
//! this fake needs `format: connector`.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::scaffold::{
    self, Delivered, FakeServer, Fault, Keyed, Request, Roster, Rules, Served, Window, same_secret,
};

/// Teams' message limit (docs/vendors/teams.md#connector-messagecard: 28 KB).
pub const MAX_MESSAGE_BYTES: usize = 28 * 1024;

/// Connector requests per second (docs/vendors/teams.md#connector-messagecard).
pub const CONNECTOR_PER_SECOND: usize = 4;

/// The kind of a hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A Power Automate Workflows webhook with its `sig`.
    Workflow {
        /// The `sig` query parameter (the credential).
        sig: String,
    },
    /// A legacy Office 365 connector.
    Connector,
}

/// A configured hook.
#[derive(Debug, Clone)]
pub struct Hook {
    /// The workflow or connector id in the path.
    pub id: String,
    /// Workflow or connector.
    pub kind: Kind,
}

impl Hook {
    /// A Workflows hook.
    pub fn workflow(id: &str, sig: &str) -> Self {
        Hook {
            id: id.to_owned(),
            kind: Kind::Workflow {
                sig: sig.to_owned(),
            },
        }
    }

    /// A connector hook.
    pub fn connector(id: &str) -> Self {
        Hook {
            id: id.to_owned(),
            kind: Kind::Connector,
        }
    }
}

/// A request the fake saw and what it answered.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The hook id from the path.
    pub id: String,
    /// Path and query.
    pub path: String,
    /// Headers, lower-case names.
    pub headers: Vec<(String, String)>,
    /// The raw body.
    pub body: Vec<u8>,
    /// The HTTP status answered.
    pub status: u16,
    /// The body answered.
    pub answer: String,
    /// Workflows only, for accepted requests: what the flow run did —
    /// `Ok` posted, `Err(reason)` failed after the 202.
    pub flow: Option<Result<(), String>>,
}

impl Recorded {
    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> Value {
        scaffold::body_json(&self.body)
    }

    /// `true` when a message reached the channel: a connector `1`, or a
    /// Workflows run that posted.
    pub fn posted(&self) -> bool {
        matches!(self.flow, Some(Ok(()))) || (self.status == 200 && self.answer == "1")
    }
}

impl Delivered for Recorded {
    fn delivered(&self) -> bool {
        self.posted()
    }
}

/// A scripted throttle, with its `Retry-After` in seconds.
#[derive(Debug, Clone, Copy)]
pub struct Throttle(pub u64);

/// Teams' state: the hooks and the connectors' rate windows.
#[derive(Default)]
pub struct Hooks {
    hooks: HashMap<String, Hook>,
    hits: Window,
}

/// A running fake Teams server: `start(hook)`, `start_many(hooks)` and the
/// rest from [`FakeServer`].
pub type Fake = FakeServer<Hooks>;

impl FakeServer<Hooks> {
    /// The URL of a hook (with its `sig` for Workflows); an unknown id gets
    /// a Workflows-shaped URL with a wrong `sig`.
    pub fn url(&self, id: &str) -> String {
        let kind = self.with_rules(|r| r.hooks.get(id).map(|h| h.kind.clone()));
        match kind {
            Some(Kind::Connector) => format!(
                "{}/webhookb2/{id}/IncomingWebhook/0000/fake",
                self.base_url()
            ),
            Some(Kind::Workflow { sig }) => self.workflow_url(id, &sig),
            None => self.workflow_url(id, "unknown"),
        }
    }

    /// A Workflows URL for `id` with the given `sig` (for bad-sig tests).
    pub fn workflow_url(&self, id: &str, sig: &str) -> String {
        format!(
            "{}/workflows/{id}/triggers/manual/paths/invoke?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig={sig}",
            self.base_url()
        )
    }

    /// Adds or replaces a hook.
    pub fn add_hook(&self, hook: Hook) {
        self.add_account(hook);
    }

    /// The requests whose message reached the channel (`delivered()`).
    pub fn posted(&self) -> Vec<Recorded> {
        self.delivered()
    }

    /// The next `n` requests are throttled: Workflows get 429 with
    /// `Retry-After: secs`; connectors the 200 "HTTP error 429" text.
    pub fn throttle_next(&self, n: usize, retry_after_secs: u64) {
        self.script_next(n, Throttle(retry_after_secs));
    }
}

/// An answer: status, headers, body.
struct Answer {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
    flow: Option<Result<(), String>>,
}

impl Answer {
    fn text(status: u16, body: &str) -> Self {
        Answer {
            status,
            headers: vec![("content-type", "text/plain; charset=utf-8".into())],
            body: body.to_owned(),
            flow: None,
        }
    }

    fn error(status: u16, code: &str, message: &str) -> Self {
        Answer {
            status,
            headers: vec![("content-type", "application/json; charset=utf-8".into())],
            body: json!({ "error": { "code": code, "message": message } }).to_string(),
            flow: None,
        }
    }
}

/// The connector's failure text (docs/vendors/teams.md#connector-messagecard)
/// for an inner status.
fn delivery_failed(code: u16) -> String {
    format!(
        "Webhook message delivery failed with error: Microsoft Teams endpoint returned HTTP error {code} with ContextId tcid=0,server=msgapi-fake,cv=00000000.0"
    )
}

impl Keyed for Hook {
    fn key(&self) -> String {
        self.id.clone()
    }
}

impl Roster for Hooks {
    type Account = Hook;

    fn accounts(&mut self) -> &mut HashMap<String, Hook> {
        &mut self.hooks
    }
}

impl Rules for Hooks {
    type Scripted = Throttle;
    type Recorded = Recorded;

    fn serve(
        &mut self,
        faults: &mut VecDeque<Fault<Throttle>>,
        request: &Request,
    ) -> Served<Recorded> {
        let uri = &request.uri;
        let path = uri
            .path_and_query()
            .map_or_else(|| uri.path().to_owned(), |p| p.as_str().to_owned());
        let (id, answer) = self.decide(faults, request);
        let mut response = scaffold::text(answer.status, answer.body.clone());
        for (name, value) in answer.headers {
            if let Ok(value) = value.parse() {
                response.headers_mut().insert(name, value);
            }
        }
        let record = Recorded {
            id,
            path,
            headers: request.header_pairs(),
            body: request.body.to_vec(),
            status: answer.status,
            answer: answer.body,
            flow: answer.flow,
        };
        Served::now(record, response)
    }
}

impl Hooks {
    fn decide(
        &mut self,
        faults: &mut VecDeque<Fault<Throttle>>,
        request: &Request,
    ) -> (String, Answer) {
        let (uri, body) = (&request.uri, &request.body[..]);
        let path = uri.path();
        if let Some(rest) = path.strip_prefix("/workflows/") {
            let id = rest.split('/').next().unwrap_or_default().to_owned();
            let answer = self.workflow(
                faults.pop_front(),
                &id,
                rest,
                uri.query().unwrap_or(""),
                body,
            );
            return (id, answer);
        }
        if let Some(rest) = path.strip_prefix("/webhookb2/") {
            let id = rest.split('/').next().unwrap_or_default().to_owned();
            let answer = self.connector(faults.pop_front(), &id, body, request.received);
            return (id, answer);
        }
        (String::new(), Answer::text(404, "Not Found"))
    }

    fn workflow(
        &self,
        fault: Option<Fault<Throttle>>,
        id: &str,
        rest: &str,
        query: &str,
        body: &[u8],
    ) -> Answer {
        match fault {
            Some(Fault::Status(status)) => return Answer::text(status, "upstream error"),
            Some(Fault::Vendor(Throttle(secs))) => {
                let mut answer = Answer::error(
                    429,
                    "TooManyRequests",
                    "Rate limit is exceeded. Try again later.",
                );
                answer.headers.push(("retry-after", secs.to_string()));
                return answer;
            }
            None => {}
        }
        let expected = match self.hooks.get(id).map(|h| &h.kind) {
            Some(Kind::Workflow { sig }) if rest.ends_with("/triggers/manual/paths/invoke") => {
                sig.clone()
            }
            _ => {
                return Answer::error(
                    404,
                    "WorkflowNotFound",
                    "The workflow was not found (fake; code UNCONFIRMED).",
                );
            }
        };
        let sig = query
            .split('&')
            .find_map(|pair| pair.strip_prefix("sig="))
            .unwrap_or("");
        if sig.is_empty() {
            return Answer::error(
                401,
                "DirectApiAuthorizationRequired",
                "The request must be authenticated (fake; code UNCONFIRMED).",
            );
        }
        if !same_secret(&expected, sig) {
            return Answer::error(
                401,
                "DirectApiInvalidAuthorizationSignature",
                "The provided callback URL signature is invalid (fake; code UNCONFIRMED).",
            );
        }
        Answer {
            status: 202,
            headers: Vec::new(),
            body: String::new(),
            flow: Some(flow_run(body)),
        }
    }

    fn connector(
        &mut self,
        fault: Option<Fault<Throttle>>,
        id: &str,
        body: &[u8],
        received: Instant,
    ) -> Answer {
        match fault {
            Some(Fault::Status(status)) => return Answer::text(status, "upstream error"),
            Some(Fault::Vendor(Throttle(_))) => return Answer::text(200, &delivery_failed(429)),
            None => {}
        }
        if !matches!(self.hooks.get(id).map(|h| &h.kind), Some(Kind::Connector)) {
            return Answer::text(404, "Not Found");
        }
        let now = received;
        let hits = self.hits.recent(id, now, Duration::from_secs(1));
        if hits.len() >= CONNECTOR_PER_SECOND {
            return Answer::text(200, &delivery_failed(429));
        }
        hits.push_back(now);
        if body.len() > MAX_MESSAGE_BYTES {
            return Answer::text(200, &delivery_failed(413));
        }
        let Ok(payload) = serde_json::from_slice::<Value>(body) else {
            return Answer::text(400, "The body is not JSON (fake; wording UNCONFIRMED).");
        };
        let adaptive = payload.get("type").and_then(Value::as_str) == Some("message")
            && payload.get("attachments").is_some_and(Value::is_array);
        let non_empty = |key: &str| {
            payload
                .get(key)
                .and_then(Value::as_str)
                .is_some_and(|s| !s.trim().is_empty())
        };
        if !(adaptive || non_empty("summary") || non_empty("text")) {
            return Answer::text(400, "Summary or Text is required.");
        }
        Answer::text(200, "1")
    }
}

/// What the standard "post to a channel when a webhook request is received"
/// flow would do with the body (docs/vendors/teams.md, "Workflows (Adaptive
/// Card)", "Mentions" and "Limits").
pub fn flow_run(body: &[u8]) -> Result<(), String> {
    if body.len() > MAX_MESSAGE_BYTES {
        return Err(format!(
            "the message is {} bytes; Teams allows 28 KB",
            body.len()
        ));
    }
    let payload: Value =
        serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))?;
    let attachments = payload.get("attachments").and_then(Value::as_array).ok_or(
        "'foreach' expression '@triggerOutputs()?['body']?['attachments']' is of type 'Null'",
    )?;
    if attachments.is_empty() {
        return Err("no attachments".into());
    }
    for attachment in attachments {
        if attachment.get("contentType").and_then(Value::as_str)
            != Some("application/vnd.microsoft.card.adaptive")
        {
            return Err("an attachment is not an Adaptive Card".into());
        }
        let card = attachment
            .get("content")
            .ok_or("an attachment has no content")?;
        check_card(card)?;
    }
    Ok(())
}

fn check_card(card: &Value) -> Result<(), String> {
    if card.get("type").and_then(Value::as_str) != Some("AdaptiveCard") {
        return Err("content.type is not AdaptiveCard".into());
    }
    let version = card
        .get("version")
        .and_then(Value::as_str)
        .ok_or("the card has no version")?;
    let (major, minor) = version.split_once('.').ok_or("bad card version")?;
    let parsed = (major.parse::<u32>(), minor.parse::<u32>());
    match parsed {
        (Ok(1), Ok(minor)) if minor <= 4 => {}
        _ => return Err(format!("card version {version} is above 1.4")),
    }
    let body = card
        .get("body")
        .and_then(Value::as_array)
        .ok_or("the card has no body")?;
    let mut texts = Vec::new();
    collect_text_blocks(&Value::Array(body.clone()), &mut texts);
    for element in body {
        if element.get("type").and_then(Value::as_str) == Some("Table") {
            return Err("Table needs card version 1.5".into());
        }
    }
    if let Some(entities) = card.pointer("/msteams/entities").and_then(Value::as_array) {
        for entity in entities {
            let text = entity.get("text").and_then(Value::as_str).unwrap_or("");
            let id = entity.pointer("/mentioned/id").and_then(Value::as_str);
            if id.is_none() || !texts.iter().any(|t| t.contains(text)) {
                return Err(format!(
                    "mention {text:?} does not match any TextBlock text"
                ));
            }
        }
    }
    Ok(())
}

fn collect_text_blocks(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Array(items) => items.iter().for_each(|v| collect_text_blocks(v, out)),
        Value::Object(map) => {
            if map.get("type").and_then(Value::as_str) == Some("TextBlock")
                && let Some(text) = map.get("text").and_then(Value::as_str)
            {
                out.push(text.to_owned());
            }
            map.values().for_each(|v| collect_text_blocks(v, out));
        }
        _ => {}
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::fakes::scaffold::client;

    fn card(version: &str) -> Value {
        json!({"type":"message","attachments":[{"contentType":"application/vnd.microsoft.card.adaptive",
            "contentUrl":null,"content":{"$schema":"http://adaptivecards.io/schemas/adaptive-card.json",
            "type":"AdaptiveCard","version":version,"msteams":{"width":"Full","entities":[
                {"type":"mention","text":"<at>Lead</at>","mentioned":{"id":"lead@contoso.com","name":"Lead"}}]},
            "body":[{"type":"TextBlock","text":"disk full","weight":"Bolder","size":"Large","wrap":true},
                    {"type":"TextBlock","text":"<at>Lead</at>","wrap":true}]}}]})
    }

    async fn post(url: &str, body: &Value) -> reqwest::Response {
        client::post(url, body.to_string()).await
    }

    #[tokio::test]
    async fn workflow_over_http() {
        let fake = Fake::start(Hook::workflow("wf1", "s1g")).await;
        let url = fake.url("wf1");
        let response = post(&url, &card("1.4")).await;
        assert_eq!(response.status().as_u16(), 202);
        assert_eq!(response.text().await.unwrap(), "");
        assert_eq!(fake.requests()[0].flow, Some(Ok(())));

        // Accepted, but the flow fails afterwards.
        assert_eq!(post(&url, &card("1.5")).await.status().as_u16(), 202);
        assert_eq!(
            post(&url, &json!({"text": "hi"})).await.status().as_u16(),
            202
        );
        let mut big = card("1.4");
        big["attachments"][0]["content"]["body"][0]["text"] = "x".repeat(MAX_MESSAGE_BYTES).into();
        assert_eq!(post(&url, &big).await.status().as_u16(), 202);
        let mut unmatched = card("1.4");
        unmatched["attachments"][0]["content"]["body"][1]["text"] = "Lead".into();
        assert_eq!(post(&url, &unmatched).await.status().as_u16(), 202);
        let flows: Vec<bool> = fake
            .requests()
            .iter()
            .map(|r| matches!(r.flow, Some(Ok(()))))
            .collect();
        assert_eq!(flows, [true, false, false, false, false]);

        // Bad sig.
        let response = post(&fake.workflow_url("wf1", "wrong"), &card("1.4")).await;
        assert_eq!(response.status().as_u16(), 401);
        let body: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
        assert!(body["error"]["code"].is_string());

        // Throttled.
        fake.throttle_next(1, 7);
        let response = post(&url, &card("1.4")).await;
        assert_eq!(response.status().as_u16(), 429);
        assert_eq!(response.headers()["retry-after"], "7");

        fake.fail_next(1, 503);
        assert_eq!(post(&url, &card("1.4")).await.status().as_u16(), 503);
        assert_eq!(fake.posted().len(), 1);
    }

    #[tokio::test]
    async fn connector_over_http() {
        let fake = Fake::start(Hook::connector("c1")).await;
        let url = fake.url("c1");
        let message = json!({"@type":"MessageCard","@context":"http://schema.org/extensions",
            "themeColor":"8C1A1A","summary":"disk full","title":"ALERT","text":"**db-1** is full"});
        let response = post(&url, &message).await;
        assert_eq!(response.status().as_u16(), 200);
        assert_eq!(response.text().await.unwrap(), "1");

        let response = post(&url, &json!({"@type":"MessageCard","title":"only a title"})).await;
        assert_eq!(response.status().as_u16(), 400);
        assert_eq!(
            response.text().await.unwrap(),
            "Summary or Text is required."
        );

        let mut big = message.clone();
        big["text"] = "x".repeat(MAX_MESSAGE_BYTES).into();
        let response = post(&url, &big).await;
        assert_eq!(response.status().as_u16(), 200);
        assert!(response.text().await.unwrap().contains("HTTP error 413"));

        // Fourth and fifth within the second: 4/s.
        let response = post(&url, &message).await;
        assert_eq!(response.text().await.unwrap(), "1");
        let response = post(&url, &message).await;
        assert_eq!(response.status().as_u16(), 200);
        assert!(response.text().await.unwrap().contains("HTTP error 429"));

        tokio::time::sleep(Duration::from_millis(1_100)).await;
        fake.throttle_next(1, 1);
        let response = post(&url, &message).await;
        assert!(response.text().await.unwrap().contains("HTTP error 429"));
        assert_eq!(fake.posted().len(), 2);
    }
}
