//! A fake DingTalk custom-robot server (`POST /robot/send?access_token=…`)
//! that checks what DingTalk checks and answers as DingTalk answers (HTTP 200
//! with `errcode`/`errmsg`), per docs/vendors/dingtalk.md. Written without
//! carillon-sdk so that it cross-checks the plugin's signing and rendering.
//!
//! Checks, in order: known `access_token` (300001); the per-robot rate limit,
//! 20 in any rolling 60 s counted at receipt (the request's `received`),
//! after which the robot is throttled for 10 minutes (130101); when the
//! robot has a secret, `timestamp` within one hour of the fake's
//! clock (310000 "invalid timestamp") and `sign` equal to
//! Base64(HMAC-SHA256(secret, `timestamp + "\n" + secret`)) after decoding
//! the query once (310000 "sign not match"; a double-encoded sign fails, as
//! docs/vendors/dingtalk.md, "What clients get wrong" expects); body at most
//! 20,000 bytes (460101); a well-formed message of a documented type (400105
//! for an unknown `msgtype`; other malformed bodies get
//! [`INVALID_BODY_ERRCODE`], a fake-only code because the vendor's answer is
//! not documented); at least one keyword anywhere in the message's text
//! fields (310000 "keywords not in content"; which fields DingTalk scans is
//! UNCONFIRMED, so the fake scans them all).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use axum::http::Method;
use serde_json::Value;

use super::scaffold::robot::query_params;
use super::scaffold::{
    self, FakeServer, Fault, Request, Roster, Rules, Served, Window, hmac_base64, same_secret,
    unix_ms,
};

/// The send path.
pub const SEND_PATH: &str = "/robot/send";
/// The largest body DingTalk accepts.
pub const MAX_BODY_BYTES: usize = 20_000;
/// Allowed distance between `timestamp` and the server clock.
pub const MAX_SKEW_MS: i64 = 60 * 60 * 1000;
/// The errcode the fake uses for malformed bodies (not a DingTalk code).
pub const INVALID_BODY_ERRCODE: i64 = 499_000;

const MORE: &str = "more: [https://ding-doc.dingtalk.com/doc#/serverapi2/qf2nxq]";

/// One robot the fake knows: its `access_token`, its `SEC…` secret, its
/// keywords, and 20 messages a minute.
pub type Bot = scaffold::Robot<20>;

/// A request the fake saw and what it answered (`token` is the
/// `access_token`; `errcode` is `None` for injected non-DingTalk answers).
pub type Recorded = scaffold::RobotRecord;

/// DingTalk's state: its robots, their rate windows and the clock.
pub struct CustomRobots {
    bots: HashMap<String, Bot>,
    hits: Window,
    throttled_until: HashMap<String, Instant>,
    throttle: Duration,
    clock_ms: Option<i64>,
}

impl Default for CustomRobots {
    fn default() -> Self {
        CustomRobots {
            bots: HashMap::new(),
            hits: Window::default(),
            throttled_until: HashMap::new(),
            throttle: Duration::from_secs(600),
            clock_ms: None,
        }
    }
}

/// A running fake DingTalk server: `start(bot)`, `start_many(bots)`,
/// `delivered()` (errcode 0) and the rest from [`FakeServer`].
pub type Fake = FakeServer<CustomRobots>;

impl FakeServer<CustomRobots> {
    /// The robot URL to configure as `webhook`.
    pub fn url(&self, token: &str) -> String {
        format!("{}{SEND_PATH}?access_token={token}", self.base_url())
    }

    /// Adds or replaces a robot.
    pub fn add_bot(&self, bot: Bot) {
        self.add_account(bot);
    }

    /// The next `n` requests get DingTalk's 130101 "send too fast" answer.
    pub fn rate_limit_next(&self, n: usize) {
        self.errcode_next(n, 130101, "send too fast, exceed 20 times per minute");
    }

    /// The next `n` requests get HTTP 200 with this errcode and errmsg.
    pub fn errcode_next(&self, n: usize, errcode: i64, errmsg: &str) {
        self.script_next(n, (errcode, errmsg.to_owned()));
    }

    /// Fixes the fake's clock (Unix milliseconds) for the timestamp check;
    /// `None` goes back to the system clock.
    pub fn set_clock(&self, unix_ms: Option<i64>) {
        self.with_rules(|r| r.clock_ms = unix_ms);
    }

    /// Sets how long a robot stays throttled after exceeding its limit
    /// (DingTalk: 10 minutes).
    pub fn set_throttle(&self, throttle: Duration) {
        self.with_rules(|r| r.throttle = throttle);
    }
}

/// DingTalk's signature: Base64(HMAC-SHA256(key = secret, message =
/// `timestamp + "\n" + secret`)), not URL-encoded. Written independently of
/// the SDK.
pub fn dingtalk_sign(timestamp_ms: &str, secret: &str) -> String {
    hmac_base64(
        secret.as_bytes(),
        &[format!("{timestamp_ms}\n{secret}").as_bytes()],
    )
}

/// Percent-encodes like Python's `quote_plus` for Base64 text (`+`, `/`, `=`).
pub fn url_encode(value: &str) -> String {
    let mut out = String::new();
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A robot URL signed for `timestamp_ms`, as a correct client builds it.
pub fn signed_url(webhook: &str, secret: &str, timestamp_ms: i64) -> String {
    let ts = timestamp_ms.to_string();
    format!(
        "{webhook}&timestamp={ts}&sign={}",
        url_encode(&dingtalk_sign(&ts, secret))
    )
}

/// The answer to one request: HTTP 200 + errcode, or an injected status.
enum Verdict {
    Vendor(i64, String),
    Status(u16),
}

impl Roster for CustomRobots {
    type Account = Bot;

    fn accounts(&mut self) -> &mut HashMap<String, Bot> {
        &mut self.bots
    }
}

impl Rules for CustomRobots {
    /// An errcode and errmsg answered with HTTP 200.
    type Scripted = (i64, String);
    type Recorded = Recorded;

    fn serve(
        &mut self,
        faults: &mut VecDeque<Fault<(i64, String)>>,
        request: &Request,
    ) -> Served<Recorded> {
        let params = query_params(request.query());
        let param = |name: &str| {
            params
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        };
        let token = param("access_token");
        let verdict = match faults.pop_front() {
            Some(Fault::Status(status)) => Verdict::Status(status),
            Some(Fault::Vendor((code, msg))) => Verdict::Vendor(code, msg),
            None if request.uri.path() != SEND_PATH => Verdict::Status(404),
            None if request.method != Method::POST => Verdict::Status(405),
            None => self.check(token.as_deref(), &param, request),
        };
        let record = match verdict {
            Verdict::Vendor(code, msg) => Recorded::of(request, token, 200, Some(code), msg),
            Verdict::Status(status) => Recorded::of(request, token, status, None, String::new()),
        };
        let response = record.response("dingtalk");
        Served::now(record, response)
    }
}

impl CustomRobots {
    /// DingTalk's checks, in order.
    fn check(
        &mut self,
        token: Option<&str>,
        param: &dyn Fn(&str) -> Option<String>,
        request: &Request,
    ) -> Verdict {
        let (body, received) = (&request.body[..], request.received);
        let Some(bot) = token.and_then(|t| self.bots.get(t)).cloned() else {
            return Verdict::Vendor(300001, "token is not exist".to_owned());
        };
        // Rate limit: every call counts, at its receipt; exceeding
        // throttles the robot.
        let now = received;
        if self
            .throttled_until
            .get(&bot.token)
            .is_some_and(|t| *t > now)
        {
            return too_fast();
        }
        let hits = self.hits.recent(&bot.token, now, Duration::from_secs(60));
        hits.push_back(now);
        if hits.len() > bot.per_minute {
            self.throttled_until
                .insert(bot.token.clone(), now + self.throttle);
            return too_fast();
        }
        if let Some(secret) = &bot.secret {
            let (Some(ts), Some(sign)) = (param("timestamp"), param("sign")) else {
                return Verdict::Vendor(310000, format!("sign not match, {MORE}"));
            };
            let Ok(ts_ms) = ts.parse::<i64>() else {
                return Verdict::Vendor(310000, format!("invalid timestamp, {MORE}"));
            };
            let clock = self.clock_ms.unwrap_or_else(unix_ms);
            if (clock - ts_ms).abs() > MAX_SKEW_MS {
                return Verdict::Vendor(310000, format!("invalid timestamp, {MORE}"));
            }
            if !same_secret(&dingtalk_sign(&ts, secret), &sign) {
                return Verdict::Vendor(310000, format!("sign not match, {MORE}"));
            }
        }
        if body.len() > MAX_BODY_BYTES {
            return Verdict::Vendor(460101, "message too long, exceed 20000 bytes".to_owned());
        }
        let message = match validate(body) {
            Ok(m) => m,
            Err(verdict) => return verdict,
        };
        if !bot.keywords.is_empty() {
            let mut texts = Vec::new();
            collect_strings(&message, &mut texts);
            let found = bot
                .keywords
                .iter()
                .any(|k| texts.iter().any(|t| t.contains(k.as_str())));
            if !found {
                return Verdict::Vendor(310000, format!("keywords not in content, {MORE}"));
            }
        }
        Verdict::Vendor(0, "ok".to_owned())
    }
}

fn too_fast() -> Verdict {
    Verdict::Vendor(
        130101,
        "send too fast, exceed 20 times per minute".to_owned(),
    )
}

fn invalid(why: &str) -> Verdict {
    Verdict::Vendor(
        INVALID_BODY_ERRCODE,
        format!("fake dingtalk: invalid body: {why}"),
    )
}

/// Checks the body's shape; returns the message object of its `msgtype`.
fn validate(body: &[u8]) -> Result<Value, Verdict> {
    let text = std::str::from_utf8(body).map_err(|_| invalid("not UTF-8"))?;
    let value: Value = serde_json::from_str(text).map_err(|_| invalid("not JSON"))?;
    let msgtype = value["msgtype"].as_str().unwrap_or("");
    let object = &value[msgtype];
    let string = |field: &str| object[field].as_str().is_some();
    let require = |fields: &[&str]| -> Result<(), Verdict> {
        match fields.iter().find(|f| !string(f)) {
            Some(missing) => Err(invalid(&format!("{msgtype}.{missing} must be a string"))),
            None => Ok(()),
        }
    };
    match msgtype {
        "text" => {
            require(&["content"])?;
            if object["content"].as_str().is_some_and(str::is_empty) {
                return Err(invalid("text.content is empty"));
            }
        }
        "markdown" => require(&["title", "text"])?,
        "link" => require(&["title", "text", "messageUrl"])?,
        "actionCard" => {
            require(&["title", "text"])?;
            let single = string("singleTitle") && string("singleURL");
            let btns = object["btns"].as_array().is_some_and(|b| {
                !b.is_empty()
                    && b.iter()
                        .all(|x| x["title"].is_string() && x["actionURL"].is_string())
            });
            if !single && !btns {
                return Err(invalid(
                    "actionCard needs singleTitle and singleURL, or btns with title and actionURL",
                ));
            }
        }
        "feedCard" => {
            let ok = object["links"].as_array().is_some_and(|l| {
                !l.is_empty()
                    && l.iter().all(|x| {
                        x["title"].is_string()
                            && x["messageURL"].is_string()
                            && x["picURL"].is_string()
                    })
            });
            if !ok {
                return Err(invalid("feedCard.links needs title, messageURL and picURL"));
            }
        }
        _ => return Err(Verdict::Vendor(400105, "不支持的消息类型".to_owned())),
    }
    if let Some(at) = value.get("at") {
        let strings = |f: &str| {
            at.get(f)
                .is_none_or(|v| v.as_array().is_some_and(|a| a.iter().all(Value::is_string)))
        };
        if !at.is_object()
            || !strings("atMobiles")
            || !strings("atUserIds")
            || at.get("isAtAll").is_some_and(|v| !v.is_boolean())
        {
            return Err(invalid(
                "at needs atMobiles/atUserIds string lists and a boolean isAtAll",
            ));
        }
    }
    Ok(object.clone())
}

fn collect_strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| collect_strings(v, out)),
        Value::Object(map) => map.values().for_each(|v| collect_strings(v, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a failure.

    use super::*;
    use crate::fakes::scaffold::client;
    use serde_json::json;

    const SECRET: &str = "SEC000000000000000000000";

    #[test]
    fn signatures_match_the_reference_vectors() {
        // docs/vendors/dingtalk.md, "Test vectors".
        assert_eq!(
            dingtalk_sign("1700000000000", SECRET),
            "1zJ/w34EOSVAYr7cu7Vo8LnebmK2/GrCgegtr8mQrqM="
        );
        assert_eq!(
            url_encode(&dingtalk_sign("1700000000000", SECRET)),
            "1zJ%2Fw34EOSVAYr7cu7Vo8LnebmK2%2FGrCgegtr8mQrqM%3D"
        );
        assert_eq!(
            url_encode(&dingtalk_sign("1700000000004", SECRET)),
            "dYgH6xrRTcunrT2tx3%2FD89WF%2BvvbPlpI9FuEGVpjJbw%3D"
        );
        assert_eq!(
            dingtalk_sign("1577808000000", "this is secret"),
            "ijHEivi6YiCNPZOq4hZstmvZ3sPfbioAiMhP30ae7W0="
        );
        // Decoding the query once recovers the raw signature; twice-encoded does not.
        let pairs = query_params("sign=dYgH6xrRTcunrT2tx3%2FD89WF%2BvvbPlpI9FuEGVpjJbw%3D");
        assert_eq!(pairs[0].1, "dYgH6xrRTcunrT2tx3/D89WF+vvbPlpI9FuEGVpjJbw=");
        let twice = query_params("sign=dYgH6xrRTcunrT2tx3%252FD89WF%252BvvbPlpI9FuEGVpjJbw%253D");
        assert_ne!(twice[0].1, "dYgH6xrRTcunrT2tx3/D89WF+vvbPlpI9FuEGVpjJbw=");
    }

    async fn post(url: &str, body: &Value) -> Value {
        let (status, answer) = client::post_json(url, body).await;
        assert_eq!(status, 200);
        answer
    }

    fn markdown(text: &str) -> Value {
        json!({ "msgtype": "markdown", "markdown": { "title": "t", "text": text } })
    }

    #[tokio::test]
    async fn enforces_signature_keyword_size_and_rate() {
        let fake = Fake::start(Bot::new("t1").secret(SECRET).keywords(&["告警"])).await;
        fake.set_clock(Some(1_700_000_000_000 + 1_000));
        let good = signed_url(&fake.url("t1"), SECRET, 1_700_000_000_000);
        assert!(good.ends_with("sign=1zJ%2Fw34EOSVAYr7cu7Vo8LnebmK2%2FGrCgegtr8mQrqM%3D"));

        let ok = post(&good, &markdown("#### 告警 disk full")).await;
        assert_eq!(ok, json!({ "errcode": 0, "errmsg": "ok" }));

        let bad = signed_url(&fake.url("t1"), "SECwrong", 1_700_000_000_000);
        let answer = post(&bad, &markdown("告警")).await;
        assert_eq!(answer["errcode"], 310000);
        assert!(
            answer["errmsg"]
                .as_str()
                .unwrap()
                .starts_with("sign not match")
        );

        let stale = signed_url(
            &fake.url("t1"),
            SECRET,
            1_700_000_000_000 - MAX_SKEW_MS - 5_000,
        );
        let answer = post(&stale, &markdown("告警")).await;
        assert!(
            answer["errmsg"]
                .as_str()
                .unwrap()
                .starts_with("invalid timestamp")
        );

        let answer = post(&fake.url("t1"), &markdown("告警")).await;
        assert_eq!(answer["errcode"], 310000, "unsigned");

        let answer = post(&good, &markdown("disk full")).await;
        assert_eq!(answer["errcode"], 310000);
        assert!(
            answer["errmsg"]
                .as_str()
                .unwrap()
                .starts_with("keywords not in content")
        );

        let big = markdown(&format!("告警 {}", "x".repeat(MAX_BODY_BYTES)));
        let answer = post(&good, &big).await;
        assert_eq!(answer["errcode"], 460101);

        let answer = post(&good, &json!({ "msgtype": "image", "image": {} })).await;
        assert_eq!(answer["errcode"], 400105);
        let answer = post(
            &good,
            &json!({ "msgtype": "markdown", "markdown": { "text": "告警" } }),
        )
        .await;
        assert_eq!(answer["errcode"], INVALID_BODY_ERRCODE);

        let answer = post(&fake.url("nope"), &markdown("告警")).await;
        assert_eq!(answer["errcode"], 300001);

        assert_eq!(fake.requests().len(), 9);
        assert_eq!(fake.delivered().len(), 1);
        assert_eq!(
            fake.requests()[0].param("timestamp").as_deref(),
            Some("1700000000000")
        );
    }

    #[tokio::test]
    async fn rate_limit_throttles_the_robot() {
        let fake = Fake::start(Bot::new("t2")).await;
        let url = fake.url("t2");
        for _ in 0..20 {
            assert_eq!(post(&url, &markdown("x")).await["errcode"], 0);
        }
        let answer = post(&url, &markdown("x")).await;
        assert_eq!(
            answer,
            json!({ "errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute" })
        );
        // Throttled: still refused.
        assert_eq!(post(&url, &markdown("x")).await["errcode"], 130101);
        // Another robot is not affected.
        fake.add_bot(Bot::new("t3"));
        assert_eq!(post(&fake.url("t3"), &markdown("x")).await["errcode"], 0);
    }

    #[tokio::test]
    async fn faults_are_injected_in_order() {
        let fake = Fake::start(Bot::new("t4")).await;
        fake.fail_next(1, 503);
        fake.rate_limit_next(1);
        fake.delay_next(1, Duration::from_millis(50));
        let url = fake.url("t4");
        let response = client::post(&url, markdown("x").to_string()).await;
        assert_eq!(response.status(), 503);
        assert_eq!(post(&url, &markdown("x")).await["errcode"], 130101);
        assert_eq!(post(&url, &markdown("x")).await["errcode"], 0);
        let statuses: Vec<u16> = fake.requests().iter().map(|r| r.status).collect();
        assert_eq!(statuses, [503, 200, 200]);
    }
}
