//! A fake WeCom group-robot server (`POST /cgi-bin/webhook/send?key=…`) that
//! checks what WeCom checks and answers as WeCom answers (HTTP 200 with
//! `errcode`/`errmsg`), per docs/vendors/wecom.md. Written without
//! carillon-sdk so that it cross-checks the plugin's rendering.
//!
//! Checks, in order: known `key` (93000); 20 calls in any rolling 60 s per
//! robot, counted at receipt, failed calls included (45009); JSON body (a fake-only [`INVALID_BODY_ERRCODE`],
//! the vendor's answer being undocumented); a known `msgtype` (40008);
//! non-empty content (44004); content length in UTF-8 bytes, 4096 for
//! `markdown` / `markdown_v2` and 2048 for `text` (40058); mention lists of
//! strings. WeCom has no signing or keywords.
//!
//! Stricter than WeCom, which ignores what a body type cannot carry
//! (docs/vendors/wecom.md#mentions): mention lists on `markdown` or
//! `markdown_v2`, `<@all>` in `markdown` and any `<@…>` in `markdown_v2` are
//! answered [`MENTION_LOST_ERRCODE`], so a test sees the lost mention.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use axum::http::Method;
use serde_json::Value;

use super::scaffold::{self, FakeServer, Fault, Keyed, Request, Roster, Rules, Served, Window};

/// The send path.
pub const SEND_PATH: &str = "/cgi-bin/webhook/send";
/// The largest `markdown` / `markdown_v2` content, in bytes.
pub const MARKDOWN_MAX_BYTES: usize = 4096;
/// The largest `text` content, in bytes.
pub const TEXT_MAX_BYTES: usize = 2048;
/// The errcode the fake uses for bodies that are not JSON (not a WeCom code).
pub const INVALID_BODY_ERRCODE: i64 = 499_000;

/// The errcode the fake uses for mentions a body type cannot carry (not a
/// WeCom code: WeCom accepts the body and notifies nobody).
pub const MENTION_LOST_ERRCODE: i64 = 499_001;

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

/// A request the fake saw and what it answered (`token` is the `key`;
/// `errcode` is `None` for injected non-WeCom answers).
pub type Recorded = scaffold::RobotRecord;

/// WeCom's state: its robots, their rate windows and the errmsg hint counter.
#[derive(Default)]
pub struct GroupRobots {
    bots: HashMap<String, Bot>,
    hits: Window,
    hint: u64,
}

/// A running fake WeCom server: `start(bot)`, `start_many(bots)`,
/// `delivered()` (errcode 0) and the rest from [`FakeServer`].
pub type Fake = FakeServer<GroupRobots>;

impl FakeServer<GroupRobots> {
    /// The robot URL to configure as `webhook`.
    pub fn url(&self, key: &str) -> String {
        format!("{}{SEND_PATH}?key={key}", self.base_url())
    }

    /// Adds or replaces a robot.
    pub fn add_bot(&self, bot: Bot) {
        self.add_account(bot);
    }

    /// The next `n` requests get WeCom's 45009 "api freq out of limit".
    pub fn rate_limit_next(&self, n: usize) {
        self.errcode_next(n, 45009);
    }

    /// The next `n` requests get HTTP 200 with this errcode (WeCom wording
    /// for the codes the reference lists).
    pub fn errcode_next(&self, n: usize, errcode: i64) {
        self.script_next(n, errcode);
    }
}

/// The errmsg text WeCom uses for a code (docs/vendors/wecom.md, "Responses
/// and error codes").
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

impl Keyed for Bot {
    fn key(&self) -> String {
        self.key.clone()
    }
}

impl Roster for GroupRobots {
    type Account = Bot;

    fn accounts(&mut self) -> &mut HashMap<String, Bot> {
        &mut self.bots
    }
}

impl Rules for GroupRobots {
    /// An errcode answered with HTTP 200, in WeCom's wording.
    type Scripted = i64;
    type Recorded = Recorded;

    fn serve(&mut self, faults: &mut VecDeque<Fault<i64>>, request: &Request) -> Served<Recorded> {
        let key = request
            .query()
            .split('&')
            .find_map(|pair| pair.strip_prefix("key=").map(str::to_owned));
        let (status, errcode, text) = match faults.pop_front() {
            Some(Fault::Status(status)) => (status, None, String::new()),
            Some(Fault::Vendor(code)) => (200, Some(code), words(code).to_owned()),
            None if request.uri.path() != SEND_PATH => (404, None, String::new()),
            None if request.method != Method::POST => (405, None, String::new()),
            None => {
                let (code, text) = check(self, key.as_deref(), request);
                (200, Some(code), text)
            }
        };
        let errmsg = match errcode {
            Some(code) => self.errmsg(code, &text),
            None => String::new(),
        };
        let record = Recorded::of(request, key, status, errcode, errmsg);
        let response = record.response("wecom");
        Served::now(record, response)
    }
}

impl GroupRobots {
    /// WeCom's errmsg shape: `<text>, hint: [<id>], from ip: <ip>, more info at …`.
    fn errmsg(&mut self, code: i64, text: &str) -> String {
        if code == 0 {
            return "ok".to_owned();
        }
        self.hint += 1;
        format!(
            "{text}, hint: [{}-fake], from ip: 127.0.0.1, more info at https://open.work.weixin.qq.com/devtool/query?e={code}",
            self.hint
        )
    }
}

/// WeCom's checks, in order; returns the errcode and errmsg text.
fn check(robots: &mut GroupRobots, key: Option<&str>, request: &Request) -> (i64, String) {
    let body = &request.body[..];
    let Some(bot) = key.and_then(|k| robots.bots.get(k)).cloned() else {
        return (93000, words(93000).to_owned());
    };
    // Every call counts, at its receipt.
    let now = request.received;
    let hits = robots.hits.recent(&bot.key, now, Duration::from_secs(60));
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
    if let Some(problem) = lost_mention(msgtype, &value, content) {
        return (MENTION_LOST_ERRCODE, format!("fake wecom: {problem}"));
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

/// A mention that `msgtype` cannot carry: WeCom would drop it silently.
fn lost_mention(msgtype: &str, value: &Value, content: &str) -> Option<String> {
    if msgtype == "text" {
        return None;
    }
    for list in ["mentioned_list", "mentioned_mobile_list"] {
        if value[msgtype].get(list).is_some() {
            return Some(format!("{msgtype} has no {list}"));
        }
    }
    match msgtype {
        "markdown" if content.contains("<@all>") => Some("markdown cannot mention everyone".into()),
        "markdown_v2" if content.contains("<@") => Some("markdown_v2 cannot mention anyone".into()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a failure.

    use super::*;
    use crate::fakes::scaffold::client;
    use serde_json::json;

    async fn post(url: &str, body: &Value) -> Value {
        let (status, answer) = client::post_json(url, body).await;
        assert_eq!(status, 200);
        answer
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
        // Mentions a body type cannot carry.
        let mut listed = markdown("x");
        listed["markdown"]["mentioned_list"] = json!(["u1"]);
        for body in [
            listed,
            markdown("<@all> x"),
            json!({ "msgtype": "markdown_v2", "markdown_v2": { "content": "<@u1> x" } }),
        ] {
            assert_eq!(
                post(&url, &body).await["errcode"],
                MENTION_LOST_ERRCODE,
                "{body}"
            );
        }
        assert_eq!(fake.delivered().len(), 3);
    }

    #[tokio::test]
    async fn the_window_and_delays_follow_the_receipt_clock() {
        use crate::fakes::scaffold::ReceiptClock;
        use std::sync::Arc;
        use std::sync::atomic::{AtomicU64, Ordering};
        use std::time::Instant;

        let fake = Fake::start(Bot::new("k4")).await;
        let offset_ms = Arc::new(AtomicU64::new(0));
        let (anchor, offset) = (Instant::now(), offset_ms.clone());
        fake.follow_clock(ReceiptClock::from_fn(move || {
            anchor + Duration::from_millis(offset.load(Ordering::SeqCst))
        }));
        let url = fake.url("k4");
        for _ in 0..20 {
            assert_eq!(post(&url, &markdown("x")).await["errcode"], 0);
        }
        // Counted at receipt: a millisecond short of the minute is too soon
        // (and counts too), the minute itself is not.
        offset_ms.store(59_999, Ordering::SeqCst);
        assert_eq!(post(&url, &markdown("x")).await["errcode"], 45009);
        offset_ms.store(60_000, Ordering::SeqCst);
        assert_eq!(post(&url, &markdown("x")).await["errcode"], 0);
        // A delay is measured on the same clock: the answer waits for it.
        fake.delay_next(1, Duration::from_secs(10));
        let answer = tokio::spawn(async move { post(&url, &markdown("x")).await });
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!answer.is_finished(), "answered before the clock moved");
        offset_ms.store(70_000, Ordering::SeqCst);
        assert_eq!(answer.await.unwrap()["errcode"], 0);
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
        let response = client::post(&fake.url("k3"), "{}").await;
        assert_eq!(response.status(), 502);
        assert_eq!(post(&fake.url("k3"), &markdown("x")).await["errcode"], -1);
        assert_eq!(post(&fake.url("k3"), &markdown("x")).await["errcode"], 0);
    }
}
