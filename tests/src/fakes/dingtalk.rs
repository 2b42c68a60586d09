//! A fake DingTalk custom-robot server (`POST /robot/send?access_token=…`)
//! that checks what DingTalk checks and answers as DingTalk answers (HTTP 200
//! with `errcode`/`errmsg`), per the channels reference §1. Written without
//! carillon-sdk so that it cross-checks the plugin's signing and rendering.
//!
//! Checks, in order: known `access_token` (300001); the per-robot rate limit,
//! 20 a minute, after which the robot is throttled for 10 minutes (130101);
//! when the robot has a secret, `timestamp` within one hour of the fake's
//! clock (310000 "invalid timestamp") and `sign` equal to
//! Base64(HMAC-SHA256(secret, `timestamp + "\n" + secret`)) after decoding
//! the query once (310000 "sign not match"; a double-encoded sign fails, as
//! §1.9 expects); body at most 20,000 bytes (460101); a well-formed message
//! of a documented type (400105 for an unknown `msgtype`; other malformed
//! bodies get [`INVALID_BODY_ERRCODE`], a fake-only code because the
//! vendor's answer is not documented); at least one keyword anywhere in the
//! message's text fields (310000 "keywords not in content"; which fields
//! DingTalk scans is UNCONFIRMED, so the fake scans them all).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The send path.
pub const SEND_PATH: &str = "/robot/send";
/// The largest body DingTalk accepts.
pub const MAX_BODY_BYTES: usize = 20_000;
/// Allowed distance between `timestamp` and the server clock.
pub const MAX_SKEW_MS: i64 = 60 * 60 * 1000;
/// The errcode the fake uses for malformed bodies (not a DingTalk code).
pub const INVALID_BODY_ERRCODE: i64 = 499_000;

const MORE: &str = "more: [https://ding-doc.dingtalk.com/doc#/serverapi2/qf2nxq]";

/// One robot the fake knows.
#[derive(Debug, Clone)]
pub struct Bot {
    /// The `access_token`.
    pub token: String,
    /// The signing secret (`SEC…`); `None` turns signing off.
    pub secret: Option<String>,
    /// Security keywords; empty turns the keyword check off.
    pub keywords: Vec<String>,
    /// Messages allowed per minute (DingTalk: 20).
    pub per_minute: usize,
}

impl Default for Bot {
    fn default() -> Self {
        Bot {
            token: String::new(),
            secret: None,
            keywords: Vec::new(),
            per_minute: 20,
        }
    }
}

impl Bot {
    /// A robot with this token, no secret and no keywords.
    pub fn new(token: &str) -> Self {
        Bot {
            token: token.to_owned(),
            ..Bot::default()
        }
    }

    /// Turns on signature verification.
    pub fn secret(mut self, secret: &str) -> Self {
        self.secret = Some(secret.to_owned());
        self
    }

    /// Sets the keywords.
    pub fn keywords(mut self, keywords: &[&str]) -> Self {
        self.keywords = keywords.iter().map(|k| (*k).to_owned()).collect();
        self
    }
}

/// A request the fake saw and what it answered.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The `access_token` from the query, if any.
    pub token: Option<String>,
    /// The raw query string.
    pub query: String,
    /// Headers, lower-case names.
    pub headers: Vec<(String, String)>,
    /// The raw body.
    pub body: Vec<u8>,
    /// The HTTP status answered.
    pub status: u16,
    /// The errcode answered (`None` for injected non-DingTalk answers).
    pub errcode: Option<i64>,
    /// The errmsg answered.
    pub errmsg: String,
}

impl Recorded {
    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// `true` when the fake accepted the message (errcode 0).
    pub fn delivered(&self) -> bool {
        self.errcode == Some(0)
    }

    /// A query parameter, decoded once.
    pub fn param(&self, name: &str) -> Option<String> {
        query_params(&self.query)
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }
}

#[derive(Debug, Clone)]
enum Fault {
    Status(u16),
    Errcode(i64, String),
}

struct Shared {
    bots: HashMap<String, Bot>,
    hits: HashMap<String, VecDeque<Instant>>,
    throttled_until: HashMap<String, Instant>,
    throttle: Duration,
    faults: VecDeque<Fault>,
    delays: VecDeque<Duration>,
    requests: Vec<Recorded>,
    clock_ms: Option<i64>,
}

/// A running fake DingTalk server.
#[derive(Clone)]
pub struct Fake {
    addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
}

impl Fake {
    /// Starts a fake with one robot.
    pub async fn start(bot: Bot) -> Fake {
        Fake::start_many([bot]).await
    }

    /// Starts a fake with several robots.
    pub async fn start_many(bots: impl IntoIterator<Item = Bot>) -> Fake {
        let shared = Arc::new(Mutex::new(Shared {
            bots: bots.into_iter().map(|b| (b.token.clone(), b)).collect(),
            hits: HashMap::new(),
            throttled_until: HashMap::new(),
            throttle: Duration::from_secs(600),
            faults: VecDeque::new(),
            delays: VecDeque::new(),
            requests: Vec::new(),
            clock_ms: None,
        }));
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Fake { addr, shared }
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `http://127.0.0.1:port`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The robot URL to configure as `webhook`.
    pub fn url(&self, token: &str) -> String {
        format!("http://{}{SEND_PATH}?access_token={token}", self.addr)
    }

    /// Adds or replaces a robot.
    pub fn add_bot(&self, bot: Bot) {
        self.lock().bots.insert(bot.token.clone(), bot);
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.lock().requests.clone()
    }

    /// The requests that were accepted (errcode 0).
    pub fn delivered(&self) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(Recorded::delivered)
            .collect()
    }

    /// The next `n` requests get `status` with a non-DingTalk body, before any check.
    pub fn fail_next(&self, n: usize, status: u16) {
        self.lock()
            .faults
            .extend(std::iter::repeat_n(Fault::Status(status), n));
    }

    /// The next `n` requests get DingTalk's 130101 "send too fast" answer.
    pub fn rate_limit_next(&self, n: usize) {
        self.errcode_next(n, 130101, "send too fast, exceed 20 times per minute");
    }

    /// The next `n` requests get HTTP 200 with this errcode and errmsg.
    pub fn errcode_next(&self, n: usize, errcode: i64, errmsg: &str) {
        self.lock().faults.extend(std::iter::repeat_n(
            Fault::Errcode(errcode, errmsg.to_owned()),
            n,
        ));
    }

    /// The next `n` answers are delayed by `delay`.
    pub fn delay_next(&self, n: usize, delay: Duration) {
        self.lock().delays.extend(std::iter::repeat_n(delay, n));
    }

    /// Fixes the fake's clock (Unix milliseconds) for the timestamp check;
    /// `None` goes back to the system clock.
    pub fn set_clock(&self, unix_ms: Option<i64>) {
        self.lock().clock_ms = unix_ms;
    }

    /// Sets how long a robot stays throttled after exceeding its limit
    /// (DingTalk: 10 minutes).
    pub fn set_throttle(&self, throttle: Duration) {
        self.lock().throttle = throttle;
    }
}

/// DingTalk's signature: Base64(HMAC-SHA256(key = secret, message =
/// `timestamp + "\n" + secret`)), not URL-encoded. Written independently of
/// the SDK.
pub fn dingtalk_sign(timestamp_ms: &str, secret: &str) -> String {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(format!("{timestamp_ms}\n{secret}").as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
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

/// Splits a query into pairs, decoding each part once (`+` is a space).
fn query_params(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (n, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(n), decode(v))
        })
        .collect()
}

fn decode(part: &str) -> String {
    let bytes = part.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn now_ms(clock: Option<i64>) -> i64 {
    clock.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    })
}

/// The answer to one request: HTTP 200 + errcode, or an injected status.
enum Verdict {
    Vendor(i64, String),
    Status(u16),
}

async fn handle(
    State(shared): State<Arc<Mutex<Shared>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let query = uri.query().unwrap_or("").to_owned();
    let params = query_params(&query);
    let param = |name: &str| {
        params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let token = param("access_token");
    let (verdict, delay) = {
        let mut s = shared.lock().unwrap_or_else(|e| e.into_inner());
        let delay = s.delays.pop_front();
        let verdict = match s.faults.pop_front() {
            Some(Fault::Status(status)) => Verdict::Status(status),
            Some(Fault::Errcode(code, msg)) => Verdict::Vendor(code, msg),
            None if uri.path() != SEND_PATH => Verdict::Status(404),
            None if method != Method::POST => Verdict::Status(405),
            None => check(&mut s, token.as_deref(), &param, &body),
        };
        let (status, errcode, errmsg) = match &verdict {
            Verdict::Vendor(code, msg) => (200, Some(*code), msg.clone()),
            Verdict::Status(status) => (*status, None, String::new()),
        };
        s.requests.push(Recorded {
            token: token.clone(),
            query,
            headers: headers
                .iter()
                .map(|(n, v)| {
                    (
                        n.as_str().to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body: body.to_vec(),
            status,
            errcode,
            errmsg,
        });
        (verdict, delay)
    };
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    match verdict {
        Verdict::Vendor(code, msg) => {
            axum::Json(json!({ "errcode": code, "errmsg": msg })).into_response()
        }
        Verdict::Status(status) => (
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            format!("fake dingtalk: status {status}"),
        )
            .into_response(),
    }
}

/// DingTalk's checks, in order.
fn check(
    s: &mut Shared,
    token: Option<&str>,
    param: &dyn Fn(&str) -> Option<String>,
    body: &[u8],
) -> Verdict {
    let Some(bot) = token.and_then(|t| s.bots.get(t)).cloned() else {
        return Verdict::Vendor(300001, "token is not exist".to_owned());
    };
    // Rate limit: every call counts; exceeding throttles the robot.
    let now = Instant::now();
    let throttle = s.throttle;
    if s.throttled_until.get(&bot.token).is_some_and(|t| *t > now) {
        return too_fast();
    }
    let hits = s.hits.entry(bot.token.clone()).or_default();
    while hits
        .front()
        .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(60))
    {
        hits.pop_front();
    }
    hits.push_back(now);
    if hits.len() > bot.per_minute {
        s.throttled_until.insert(bot.token.clone(), now + throttle);
        return too_fast();
    }
    if let Some(secret) = &bot.secret {
        let (Some(ts), Some(sign)) = (param("timestamp"), param("sign")) else {
            return Verdict::Vendor(310000, format!("sign not match, {MORE}"));
        };
        let Ok(ts_ms) = ts.parse::<i64>() else {
            return Verdict::Vendor(310000, format!("invalid timestamp, {MORE}"));
        };
        if (now_ms(s.clock_ms) - ts_ms).abs() > MAX_SKEW_MS {
            return Verdict::Vendor(310000, format!("invalid timestamp, {MORE}"));
        }
        let expected = dingtalk_sign(&ts, secret);
        if !bool::from(expected.as_bytes().ct_eq(sign.as_bytes())) {
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

    const SECRET: &str = "SEC000000000000000000000";

    #[test]
    fn signatures_match_the_reference_vectors() {
        // channels reference §8.
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

    fn client() -> reqwest::Client {
        carillon::tls::install_crypto_provider();
        reqwest::Client::builder().build().expect("client")
    }

    async fn post(url: &str, body: &Value) -> Value {
        let bytes = serde_json::to_vec(body).unwrap();
        post_bytes(url, bytes).await
    }

    async fn post_bytes(url: &str, bytes: Vec<u8>) -> Value {
        let response = client()
            .post(url)
            .header("content-type", "application/json; charset=utf-8")
            .body(bytes)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        serde_json::from_slice(&response.bytes().await.unwrap()).unwrap()
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
        let response = client()
            .post(&url)
            .body(serde_json::to_vec(&markdown("x")).unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 503);
        assert_eq!(post(&url, &markdown("x")).await["errcode"], 130101);
        assert_eq!(post(&url, &markdown("x")).await["errcode"], 0);
        let statuses: Vec<u16> = fake.requests().iter().map(|r| r.status).collect();
        assert_eq!(statuses, [503, 200, 200]);
    }
}
