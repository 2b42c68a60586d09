//! A fake WeCom group-robot server (`POST /cgi-bin/webhook/send?key=…`) that
//! checks what WeCom checks and answers as WeCom answers (HTTP 200 with
//! `errcode`/`errmsg`), per the channels reference §3. Written without
//! carillon-sdk so that it cross-checks the plugin's rendering.
//!
//! Checks, in order: known `key` (93000); 20 calls a minute per robot, failed
//! calls included (45009); JSON body (a fake-only [`INVALID_BODY_ERRCODE`],
//! the vendor's answer being undocumented); a known `msgtype` (40008);
//! non-empty content (44004); content length in UTF-8 bytes, 4096 for
//! `markdown` / `markdown_v2` and 2048 for `text` (40058); mention lists of
//! strings. WeCom has no signing or keywords.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// The send path.
pub const SEND_PATH: &str = "/cgi-bin/webhook/send";
/// The largest `markdown` / `markdown_v2` content, in bytes.
pub const MARKDOWN_MAX_BYTES: usize = 4096;
/// The largest `text` content, in bytes.
pub const TEXT_MAX_BYTES: usize = 2048;
/// The errcode the fake uses for bodies that are not JSON (not a WeCom code).
pub const INVALID_BODY_ERRCODE: i64 = 499_000;

/// One robot the fake knows.
#[derive(Debug, Clone)]
pub struct Bot {
    /// The `key` from the robot URL.
    pub key: String,
    /// Calls allowed per minute (WeCom: 20).
    pub per_minute: usize,
}

impl Bot {
    /// A robot with this key and WeCom's limit.
    pub fn new(key: &str) -> Self {
        Bot {
            key: key.to_owned(),
            per_minute: 20,
        }
    }
}

/// A request the fake saw and what it answered.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The `key` from the query, if any.
    pub key: Option<String>,
    /// Headers, lower-case names.
    pub headers: Vec<(String, String)>,
    /// The raw body.
    pub body: Vec<u8>,
    /// The HTTP status answered.
    pub status: u16,
    /// The errcode answered (`None` for injected non-WeCom answers).
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
}

#[derive(Debug, Clone)]
enum Fault {
    Status(u16),
    Errcode(i64),
}

#[derive(Default)]
struct Shared {
    bots: HashMap<String, Bot>,
    hits: HashMap<String, VecDeque<Instant>>,
    faults: VecDeque<Fault>,
    delays: VecDeque<Duration>,
    requests: Vec<Recorded>,
    hint: u64,
}

/// A running fake WeCom server.
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
            bots: bots.into_iter().map(|b| (b.key.clone(), b)).collect(),
            ..Shared::default()
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
    pub fn url(&self, key: &str) -> String {
        format!("http://{}{SEND_PATH}?key={key}", self.addr)
    }

    /// Adds or replaces a robot.
    pub fn add_bot(&self, bot: Bot) {
        self.lock().bots.insert(bot.key.clone(), bot);
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

    /// The next `n` requests get `status` with a non-WeCom body, before any check.
    pub fn fail_next(&self, n: usize, status: u16) {
        self.lock()
            .faults
            .extend(std::iter::repeat_n(Fault::Status(status), n));
    }

    /// The next `n` requests get WeCom's 45009 "api freq out of limit".
    pub fn rate_limit_next(&self, n: usize) {
        self.errcode_next(n, 45009);
    }

    /// The next `n` requests get HTTP 200 with this errcode (WeCom wording
    /// for the codes the reference lists).
    pub fn errcode_next(&self, n: usize, errcode: i64) {
        self.lock()
            .faults
            .extend(std::iter::repeat_n(Fault::Errcode(errcode), n));
    }

    /// The next `n` answers are delayed by `delay`.
    pub fn delay_next(&self, n: usize, delay: Duration) {
        self.lock().delays.extend(std::iter::repeat_n(delay, n));
    }
}

/// The errmsg text WeCom uses for a code (§3.4).
fn words(code: i64) -> &'static str {
    match code {
        0 => "ok",
        -1 => "system busy",
        93000 => "invalid webhook url",
        45009 => "api freq out of limit",
        45033 => "api concurrent out of limit",
        40008 => "invalid message type",
        44004 => "empty content",
        45002 => "content size out of limit",
        40007 => "invalid media_id",
        _ => "error",
    }
}

/// WeCom's errmsg shape: `<text>, hint: [<id>], from ip: <ip>, more info at …`.
fn errmsg(s: &mut Shared, code: i64, text: &str) -> String {
    if code == 0 {
        return "ok".to_owned();
    }
    s.hint += 1;
    format!(
        "{text}, hint: [{}-fake], from ip: 127.0.0.1, more info at https://open.work.weixin.qq.com/devtool/query?e={code}",
        s.hint
    )
}

async fn handle(
    State(shared): State<Arc<Mutex<Shared>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let key = uri
        .query()
        .unwrap_or("")
        .split('&')
        .find_map(|pair| pair.strip_prefix("key=").map(str::to_owned));
    let (status, errcode, message, delay) = {
        let mut s = shared.lock().unwrap_or_else(|e| e.into_inner());
        let delay = s.delays.pop_front();
        let (status, errcode, text) = match s.faults.pop_front() {
            Some(Fault::Status(status)) => (status, None, String::new()),
            Some(Fault::Errcode(code)) => (200, Some(code), words(code).to_owned()),
            None if uri.path() != SEND_PATH => (404, None, String::new()),
            None if method != Method::POST => (405, None, String::new()),
            None => {
                let (code, text) = check(&mut s, key.as_deref(), &body);
                (200, Some(code), text)
            }
        };
        let message = match errcode {
            Some(code) => errmsg(&mut s, code, &text),
            None => String::new(),
        };
        s.requests.push(Recorded {
            key: key.clone(),
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
            errmsg: message.clone(),
        });
        (status, errcode, message, delay)
    };
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    match errcode {
        Some(code) => axum::Json(json!({ "errcode": code, "errmsg": message })).into_response(),
        None => (
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            format!("fake wecom: status {status}"),
        )
            .into_response(),
    }
}

/// WeCom's checks, in order; returns the errcode and errmsg text.
fn check(s: &mut Shared, key: Option<&str>, body: &[u8]) -> (i64, String) {
    let Some(bot) = key.and_then(|k| s.bots.get(k)).cloned() else {
        return (93000, words(93000).to_owned());
    };
    let now = Instant::now();
    let hits = s.hits.entry(bot.key.clone()).or_default();
    while hits
        .front()
        .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(60))
    {
        hits.pop_front();
    }
    hits.push_back(now);
    if hits.len() > bot.per_minute {
        return (45009, words(45009).to_owned());
    }
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return (
            INVALID_BODY_ERRCODE,
            "fake wecom: body is not UTF-8 JSON".to_owned(),
        );
    };
    let msgtype = value["msgtype"].as_str().unwrap_or("");
    let (limit, field) = match msgtype {
        "markdown" | "markdown_v2" => (MARKDOWN_MAX_BYTES, "content"),
        "text" => (TEXT_MAX_BYTES, "content"),
        "image" | "news" | "file" | "voice" | "template_card" => (usize::MAX, ""),
        _ => return (40008, words(40008).to_owned()),
    };
    if field.is_empty() {
        // Non-text types are accepted as long as their object is present.
        if value[msgtype].is_object() {
            return (0, "ok".to_owned());
        }
        return (44004, words(44004).to_owned());
    }
    let content = value[msgtype][field].as_str().unwrap_or("");
    if content.is_empty() {
        return (44004, words(44004).to_owned());
    }
    if content.len() > limit {
        return (
            40058,
            format!(
                "{msgtype}.content exceed max length {limit}. Invalid input invalid Request Parameter"
            ),
        );
    }
    if msgtype == "text" {
        for list in ["mentioned_list", "mentioned_mobile_list"] {
            let ok = value["text"]
                .get(list)
                .is_none_or(|v| v.as_array().is_some_and(|a| a.iter().all(Value::is_string)));
            if !ok {
                return (
                    INVALID_BODY_ERRCODE,
                    format!("fake wecom: text.{list} must be a list of strings"),
                );
            }
        }
    }
    (0, "ok".to_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a failure.

    use super::*;

    fn client() -> reqwest::Client {
        carillon::tls::install_crypto_provider();
        reqwest::Client::builder().build().expect("client")
    }

    async fn post(url: &str, body: &Value) -> Value {
        let response = client()
            .post(url)
            .header("content-type", "application/json")
            .body(serde_json::to_vec(body).unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        serde_json::from_slice(&response.bytes().await.unwrap()).unwrap()
    }

    fn markdown(content: &str) -> Value {
        json!({ "msgtype": "markdown", "markdown": { "content": content } })
    }

    #[tokio::test]
    async fn enforces_key_shape_length_and_rate() {
        let fake = Fake::start(Bot::new("k1")).await;
        let url = fake.url("k1");
        assert_eq!(
            post(&url, &markdown("### disk full <@u1>")).await,
            json!({ "errcode": 0, "errmsg": "ok" })
        );
        let answer = post(&fake.url("wrong"), &markdown("x")).await;
        assert_eq!(answer["errcode"], 93000);
        assert!(
            answer["errmsg"]
                .as_str()
                .unwrap()
                .starts_with("invalid webhook url, hint: [")
        );
        // 4096 bytes of CJK pass; one more character does not.
        let fits = "告".repeat(1365) + "x";
        assert_eq!(fits.len(), 4096);
        assert_eq!(post(&url, &markdown(&fits)).await["errcode"], 0);
        let answer = post(&url, &markdown(&(fits + "x"))).await;
        assert_eq!(answer["errcode"], 40058);
        assert!(
            answer["errmsg"]
                .as_str()
                .unwrap()
                .starts_with("markdown.content exceed max length 4096")
        );
        let text = json!({ "msgtype": "text", "text": { "content": "x".repeat(2049) } });
        assert_eq!(post(&url, &text).await["errcode"], 40058);
        let text = json!({ "msgtype": "text", "text": { "content": "hi", "mentioned_list": ["u1", "@all"] } });
        assert_eq!(post(&url, &text).await["errcode"], 0);
        assert_eq!(
            post(&url, &json!({ "msgtype": "bogus" })).await["errcode"],
            40008
        );
        assert_eq!(post(&url, &markdown("")).await["errcode"], 44004);
        assert_eq!(fake.delivered().len(), 3);
    }

    #[tokio::test]
    async fn rate_limit_and_faults() {
        let fake = Fake::start(Bot::new("k2")).await;
        let url = fake.url("k2");
        for _ in 0..20 {
            assert_eq!(post(&url, &markdown("x")).await["errcode"], 0);
        }
        let answer = post(&url, &markdown("x")).await;
        assert_eq!(answer["errcode"], 45009);
        assert!(
            answer["errmsg"]
                .as_str()
                .unwrap()
                .starts_with("api freq out of limit")
        );
        fake.add_bot(Bot::new("k3"));
        fake.fail_next(1, 502);
        fake.errcode_next(1, -1);
        fake.delay_next(1, Duration::from_millis(20));
        let response = client()
            .post(fake.url("k3"))
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 502);
        assert_eq!(post(&fake.url("k3"), &markdown("x")).await["errcode"], -1);
        assert_eq!(post(&fake.url("k3"), &markdown("x")).await["errcode"], 0);
    }
}
