//! A fake Lark / Feishu custom-bot webhook (docs/vendors/lark.md): a real
//! HTTP server on 127.0.0.1 that checks what the vendor checks and answers
//! with the vendor's bodies and codes, so the `lark` plugin is tested against
//! an independent reading of the facts (it does not use carillon-sdk).
//!
//! Enforced, in this order, per hook token:
//! 1. injected faults (`fail_next`, `rate_limit_next`), then delays;
//! 2. unknown token → 19001;
//! 3. 5 requests/s and 100/min → 11232 "frequency limited";
//! 4. body > 20,000 bytes or not JSON → HTTP 400, 9499 "Bad Request";
//! 5. with a secret: `timestamp` within 3600 s of the fake's clock and
//!    `sign` = Base64(HMAC-SHA256(key = "timestamp\nsecret", empty)) → else
//!    19021;
//! 6. with keywords: one must appear in a text value (not `href`/`url`) →
//!    else 19024;
//! 7. `msg_type` present → else 19002; a valid shape for it → else 400/9499.
//!
//! Stricter than Lark, which accepts and then shows these raw or notifies
//! nobody (docs/vendors/lark.md#markdown-dialect, #mentions): a `lark_md`
//! text with a `#` heading, a list marker, a code fence or a backslash
//! escape, or an `<at id=…>` whose id is neither `all` nor an open_id
//! (`ou_…`), is answered 400/9499 so a test sees it.
//!
//! HTTP statuses marked UNCONFIRMED in docs/vendors/lark.md, "Responses and
//! error codes" (19001, 19002, oversize) are answered with 200 for the
//! business codes and 400 for 9499.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use serde_json::{Value, json};

use super::scaffold::{
    self, Delivered, FakeServer, Fault, Request, Roster, Rules, Served, Window, hmac_base64,
    same_secret, unix_secs,
};

/// The path prefix of a hook URL.
pub const HOOK_PATH: &str = "/open-apis/bot/v2/hook/";

/// The largest body accepted (docs/vendors/lark.md#limits: 20 KB, read
/// strictly as 20,000 bytes).
pub const MAX_BODY_BYTES: usize = 20_000;

/// Allowed clock skew of a signed timestamp (docs/vendors/lark.md#security).
pub const SKEW_SECS: i64 = 3_600;

/// A configured custom bot: the hook token (last path segment), its
/// signing secret, its keywords, and 100 requests a minute.
pub type Bot = scaffold::Robot<100>;

/// A request the fake saw and what it answered.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The hook token from the path.
    pub token: String,
    /// Headers, lower-case names.
    pub headers: Vec<(String, String)>,
    /// The raw body.
    pub body: Vec<u8>,
    /// The HTTP status answered.
    pub status: u16,
    /// The Lark `code` answered (`None` for injected non-Lark answers).
    pub code: Option<i64>,
}

impl Recorded {
    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> Value {
        scaffold::body_json(&self.body)
    }
}

/// `true` when the fake delivered the message (code 0).
impl Delivered for Recorded {
    fn delivered(&self) -> bool {
        self.code == Some(0)
    }
}

/// Lark's 11232 "frequency limited" answer, scripted.
#[derive(Debug, Clone, Copy)]
pub struct FrequencyLimited;

/// Lark's state: its bots, their rate windows and the clock.
#[derive(Default)]
pub struct CustomBots {
    bots: HashMap<String, Bot>,
    hits: Window,
    clock_secs: Option<i64>,
    no_rate_limits: bool,
}

/// A running fake Lark server: `start(bot)`, `start_many(bots)`,
/// `delivered()` (code 0) and the rest from [`FakeServer`].
pub type Fake = FakeServer<CustomBots>;

impl FakeServer<CustomBots> {
    /// The hook URL of a bot.
    pub fn url(&self, token: &str) -> String {
        format!("{}{HOOK_PATH}{token}", self.base_url())
    }

    /// Adds or replaces a bot.
    pub fn add_bot(&self, bot: Bot) {
        self.add_account(bot);
    }

    /// The next `n` requests get Lark's 11232 "frequency limited" answer.
    pub fn rate_limit_next(&self, n: usize) {
        self.script_next(n, FrequencyLimited);
    }

    /// Fixes the fake's clock (Unix seconds) for timestamp checks; `None`
    /// goes back to the system clock.
    pub fn set_clock(&self, unix_secs: Option<i64>) {
        self.with_rules(|r| r.clock_secs = unix_secs);
    }

    /// Turns the 5/s and 100/min limits off (on by default).
    pub fn disable_rate_limits(&self) {
        self.with_rules(|r| r.no_rate_limits = true);
    }
}

/// Lark's `sign`: Base64(HMAC-SHA256(key = `timestamp + "\n" + secret`,
/// message = empty)), written independently of the SDK.
pub fn lark_sign(timestamp: &str, secret: &str) -> String {
    hmac_base64(format!("{timestamp}\n{secret}").as_bytes(), &[])
}

/// The success body (docs/vendors/lark.md#endpoint), with the legacy pair.
fn success() -> Value {
    json!({"StatusCode":0,"StatusMessage":"success","code":0,"data":{},"msg":"success"})
}

fn lark_error(code: i64, msg: &str) -> Value {
    json!({ "code": code, "msg": msg, "data": {} })
}

impl Roster for CustomBots {
    type Account = Bot;

    fn accounts(&mut self) -> &mut HashMap<String, Bot> {
        &mut self.bots
    }
}

impl Rules for CustomBots {
    type Scripted = FrequencyLimited;
    type Recorded = Recorded;

    fn serve(
        &mut self,
        faults: &mut VecDeque<Fault<FrequencyLimited>>,
        request: &Request,
    ) -> Served<Recorded> {
        let token = request
            .uri
            .path()
            .strip_prefix(HOOK_PATH)
            .unwrap_or_default()
            .to_owned();
        let (status, answer) = self.decide(faults.pop_front(), &token, request);
        let code = answer.as_ref().ok().and_then(|v| v["code"].as_i64());
        let response = match answer {
            Ok(json) => scaffold::json(status, json),
            Err(text) => scaffold::text(status, text),
        };
        let record = Recorded {
            token,
            headers: request.header_pairs(),
            body: request.body.to_vec(),
            status,
            code,
        };
        Served::now(record, response)
    }
}

impl CustomBots {
    /// The fake's answer: status and either a Lark JSON body or a text body.
    fn decide(
        &mut self,
        fault: Option<Fault<FrequencyLimited>>,
        token: &str,
        request: &Request,
    ) -> (u16, Result<Value, String>) {
        let body = &request.body[..];
        match fault {
            Some(Fault::Status(status)) => return (status, Err("upstream error".to_owned())),
            Some(Fault::Vendor(FrequencyLimited)) => return (200, Ok(frequency_limited())),
            None => {}
        }
        let Some(bot) = self.bots.get(token).cloned() else {
            return (
                200,
                Ok(lark_error(
                    19001,
                    "param invalid: incoming webhook access token invalid",
                )),
            );
        };
        if !self.no_rate_limits {
            let now = request.received;
            let hits = self.hits.recent(token, now, Duration::from_secs(60));
            let last_second = hits
                .iter()
                .filter(|t| now.duration_since(**t) < Duration::from_secs(1))
                .count();
            if last_second >= 5 || hits.len() >= bot.per_minute {
                return (200, Ok(frequency_limited()));
            }
            hits.push_back(now);
        }
        let now = self.clock_secs.unwrap_or_else(unix_secs);
        let (status, value) = check(&bot, body, now);
        (status, Ok(value))
    }
}

fn frequency_limited() -> Value {
    lark_error(
        11232,
        "frequency limited psm[lark.oapi.app_platform_runtime]appID[1500]",
    )
}

/// The vendor checks on one request for `bot`, at `now` (Unix seconds).
pub fn check(bot: &Bot, body: &[u8], now: i64) -> (u16, Value) {
    let bad_request = (400, lark_error(9499, "Bad Request"));
    if body.len() > MAX_BODY_BYTES {
        return bad_request;
    }
    let Ok(payload) = serde_json::from_slice::<Value>(body) else {
        return bad_request;
    };
    if let Some(secret) = &bot.secret
        && !signature_ok(&payload, secret, now)
    {
        return (
            200,
            lark_error(
                19021,
                "sign match fail or timestamp is not within one hour from current time",
            ),
        );
    }
    if !bot.keywords.is_empty() {
        let mut text = String::new();
        for key in ["content", "card"] {
            if let Some(v) = payload.get(key) {
                collect_text(v, &mut text);
            }
        }
        if !bot.keywords.iter().any(|k| text.contains(k.as_str())) {
            return (200, lark_error(19024, "Key Words Not Found"));
        }
    }
    let Some(msg_type) = payload.get("msg_type").and_then(Value::as_str) else {
        return (200, lark_error(19002, "params error, msg_type need"));
    };
    if let Err(_problem) = shape(msg_type, &payload) {
        return bad_request;
    }
    (200, success())
}

fn signature_ok(payload: &Value, secret: &str, now: i64) -> bool {
    let timestamp = match payload.get("timestamp") {
        Some(Value::String(t)) => t.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => return false,
    };
    let Ok(ts) = timestamp.parse::<i64>() else {
        return false;
    };
    if (now - ts).abs() > SKEW_SECS {
        return false;
    }
    let Some(sign) = payload.get("sign").and_then(Value::as_str) else {
        return false;
    };
    let expected = lark_sign(&timestamp, secret);
    same_secret(&expected, sign)
}

/// Text values a reader sees: every string except links, ids and
/// structural keys (docs/vendors/lark.md#security: `text` and `title`, not
/// `href`).
fn collect_text(value: &Value, out: &mut String) {
    const SKIP: &[&str] = &[
        "href",
        "url",
        "tag",
        "template",
        "data_type",
        "name",
        "color",
        "type",
        "user_id",
        "id",
        "image_key",
    ];
    match value {
        Value::String(s) => {
            out.push_str(s);
            out.push('\n');
        }
        Value::Array(items) => items.iter().for_each(|v| collect_text(v, out)),
        Value::Object(map) => {
            for (k, v) in map {
                if !SKIP.contains(&k.as_str()) {
                    collect_text(v, out);
                }
            }
        }
        _ => {}
    }
}

/// Validates a message's shape per docs/vendors/lark.md, "Message types"
/// and "Tables".
fn shape(msg_type: &str, payload: &Value) -> Result<(), String> {
    let content = payload.get("content");
    // Whether a JSON-string `content` is accepted is UNCONFIRMED
    // (docs/vendors/lark.md#open-questions): allow it.
    if matches!(content, Some(Value::String(_))) && msg_type != "interactive" {
        return Ok(());
    }
    match msg_type {
        "text" => content
            .and_then(|c| c.get("text"))
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .map(|_| ())
            .ok_or_else(|| "text needs content.text".to_owned()),
        "post" => {
            let post = content
                .and_then(|c| c.get("post"))
                .and_then(Value::as_object)
                .ok_or("post needs content.post")?;
            if !post.contains_key("zh_cn") && !post.contains_key("en_us") {
                return Err("post needs zh_cn or en_us".into());
            }
            for lang in post.values() {
                let paragraphs = lang
                    .get("content")
                    .and_then(Value::as_array)
                    .ok_or("post content must be an array")?;
                for paragraph in paragraphs {
                    for node in paragraph.as_array().ok_or("a paragraph is an array")? {
                        let ok = match node.get("tag").and_then(Value::as_str) {
                            Some("text") => node.get("text").is_some_and(Value::is_string),
                            Some("a") => node.get("href").is_some_and(Value::is_string),
                            Some("at") => node.get("user_id").is_some_and(Value::is_string),
                            Some("img") => node.get("image_key").is_some_and(Value::is_string),
                            _ => false,
                        };
                        if !ok {
                            return Err(format!("bad post node {node}"));
                        }
                    }
                }
            }
            Ok(())
        }
        "image" => content
            .and_then(|c| c.get("image_key"))
            .and_then(Value::as_str)
            .map(|_| ())
            .ok_or_else(|| "image needs content.image_key".to_owned()),
        "share_chat" => content
            .and_then(|c| c.get("share_chat_id"))
            .and_then(Value::as_str)
            .map(|_| ())
            .ok_or_else(|| "share_chat needs content.share_chat_id".to_owned()),
        "interactive" => {
            let card = payload
                .get("card")
                .and_then(Value::as_object)
                .ok_or("interactive needs a card object")?;
            let elements = card
                .get("elements")
                .or_else(|| card.get("body").and_then(|b| b.get("elements")))
                .and_then(Value::as_array)
                .ok_or("a card needs elements")?;
            let mut tables = 0;
            for element in elements {
                if let Some(text) = element.get("text")
                    && text.get("tag").and_then(Value::as_str) == Some("lark_md")
                {
                    lark_md_shown_as_meant(
                        text.get("content").and_then(Value::as_str).unwrap_or(""),
                    )?;
                }
                match element.get("tag").and_then(Value::as_str) {
                    Some("table") => {
                        tables += 1;
                        table_shape(element)?;
                    }
                    Some(_) => {}
                    None => return Err("an element needs a tag".into()),
                }
            }
            if tables > 5 {
                return Err("at most 5 tables per card".into());
            }
            Ok(())
        }
        other => Err(format!("unknown msg_type {other}")),
    }
}

/// What `lark_md` shows raw, and mentions that notify nobody.
fn lark_md_shown_as_meant(content: &str) -> Result<(), String> {
    for line in content.lines() {
        let line = line.trim_start();
        let raw = line.starts_with('#')
            || line.starts_with("```")
            || line.starts_with("- ")
            || line.starts_with("* ")
            || line.starts_with("+ ");
        if raw {
            return Err(format!("lark_md shows this line raw: {line}"));
        }
    }
    let mut chars = content.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' && chars.peek().is_some_and(char::is_ascii_punctuation) {
            return Err("lark_md shows backslash escapes raw; use HTML entities".into());
        }
    }
    let mut rest = content;
    while let Some(start) = rest.find("<at id=") {
        rest = &rest[start + "<at id=".len()..];
        let id: String = rest.chars().take_while(|c| *c != '>').collect();
        let id = id.trim_matches('"');
        if id != "all" && !id.starts_with("ou_") {
            return Err(format!(
                "<at id={id}> notifies nobody: custom bots mention by open_id"
            ));
        }
    }
    Ok(())
}

fn table_shape(table: &Value) -> Result<(), String> {
    if let Some(size) = table.get("page_size") {
        let size = size.as_u64().ok_or("page_size is a number")?;
        if !(1..=10).contains(&size) {
            return Err("page_size must be 1-10".into());
        }
    }
    let columns = table
        .get("columns")
        .and_then(Value::as_array)
        .ok_or("a table needs columns")?;
    if columns.len() > 50 {
        return Err("at most 50 columns".into());
    }
    for column in columns {
        column
            .get("name")
            .and_then(Value::as_str)
            .ok_or("a column needs a name")?;
    }
    for row in table
        .get("rows")
        .and_then(Value::as_array)
        .ok_or("a table needs rows")?
    {
        if !row.is_object() {
            return Err("a row is an object keyed by column name".into());
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::fakes::scaffold::client::{self, post_json as post};

    #[test]
    fn published_vectors() {
        // docs/vendors/lark.md, "Test vectors".
        assert_eq!(
            lark_sign("100", "demo"),
            "jquNHnVOwmDRfw+vqTIrY5dooJAgi5EcRtLsQE4wfXg="
        );
        assert_eq!(
            lark_sign("1599360473", "demo"),
            "l1N0gAcBjdwBvGm1xMjOF0XSyaLRpR7tuO5dHfhAYc8="
        );
    }

    fn signed(ts: &str, sign: &str) -> Vec<u8> {
        json!({"timestamp": ts, "sign": sign, "msg_type": "text", "content": {"text": "hi"}})
            .to_string()
            .into_bytes()
    }

    #[test]
    fn signature_checks() {
        let bot = Bot::new("t").secret("demo");
        let ok = check(
            &bot,
            &signed("100", "jquNHnVOwmDRfw+vqTIrY5dooJAgi5EcRtLsQE4wfXg="),
            100,
        );
        assert_eq!(ok.1["code"], 0);
        // The DingTalk-shaped HMAC (key = secret, message = "100\ndemo").
        let wrong = check(
            &bot,
            &signed("100", "Al3fIG80paFjFaF1GYFq01nD+HwK+W12x7pPHOz3pJo="),
            100,
        );
        assert_eq!(wrong.1["code"], 19021);
        // Right signature, clock more than an hour off.
        let stale = check(
            &bot,
            &signed("100", "jquNHnVOwmDRfw+vqTIrY5dooJAgi5EcRtLsQE4wfXg="),
            100 + SKEW_SECS + 1,
        );
        assert_eq!(stale.1["code"], 19021);
        let within = check(
            &bot,
            &signed("1599360473", "l1N0gAcBjdwBvGm1xMjOF0XSyaLRpR7tuO5dHfhAYc8="),
            1_599_360_473 - SKEW_SECS,
        );
        assert_eq!(within.1["code"], 0);
    }

    fn card(title: &str) -> Value {
        json!({"msg_type": "interactive", "card": {
            "header": {"title": {"tag": "plain_text", "content": title}, "template": "red"},
            "elements": [{"tag": "div", "text": {"tag": "lark_md", "content": "**disk full**"}},
                         {"tag": "action", "actions": [{"tag": "button", "text": {"tag": "plain_text", "content": "Open"}, "url": "https://x.example/alert", "type": "primary"}]}]}})
    }

    #[test]
    fn lark_md_that_shows_raw_or_mentions_nobody_is_refused() {
        let bot = Bot::new("t");
        let with = |content: &str| {
            let mut body = card("x");
            body["card"]["elements"][0]["text"]["content"] = content.into();
            check(&bot, body.to_string().as_bytes(), 0).0
        };
        assert_eq!(
            with("**bold** &#42; • item <at id=ou_1></at> <at id=all></at>"),
            200
        );
        for raw in [
            "# heading",
            "- item",
            "```\ncode\n```",
            "a \\* b",
            "<at id=u_1001></at>",
        ] {
            assert_eq!(with(raw), 400, "{raw}");
        }
    }

    fn sign_into(mut body: Value, secret: &str) -> Value {
        let ts = unix_secs().to_string();
        body["sign"] = lark_sign(&ts, secret).into();
        body["timestamp"] = ts.into();
        body
    }

    #[tokio::test]
    async fn over_http() {
        let fake = Fake::start(Bot::new("t1").secret("s3cret").keywords(&["alert"])).await;
        let url = fake.url("t1");

        // Valid: signed, keyword in the title.
        let (status, body) = post(&url, &sign_into(card("alert: db-1"), "s3cret")).await;
        assert_eq!((status, body["code"].as_i64()), (200, Some(0)));
        assert_eq!(body["StatusMessage"], "success");

        // Bad signature.
        let mut bad = sign_into(card("alert"), "s3cret");
        bad["sign"] = lark_sign("100", "s3cret").into();
        let (status, body) = post(&url, &bad).await;
        assert_eq!((status, body["code"].as_i64()), (200, Some(19021)));

        // Keyword only in a URL does not count.
        let (_, body) = post(&url, &sign_into(card("disk full"), "s3cret")).await;
        assert_eq!(body["code"], 19024);
        assert_eq!(body["msg"], "Key Words Not Found");

        // Oversize.
        let mut big = card("alert");
        big["card"]["elements"][0]["text"]["content"] = "x".repeat(MAX_BODY_BYTES).into();
        let (status, body) = post(&url, &sign_into(big, "s3cret")).await;
        assert_eq!((status, body["code"].as_i64()), (400, Some(9499)));

        // Invalid shape: a table with page_size 20.
        let mut table = card("alert");
        table["card"]["elements"] =
            json!([{"tag":"table","page_size":20,"columns":[{"name":"a"}],"rows":[]}]);
        let (status, _) = post(&url, &sign_into(table, "s3cret")).await;
        assert_eq!(status, 400);

        // Unknown token.
        let (_, body) = post(&fake.url("nope"), &card("alert")).await;
        assert_eq!(body["code"], 19001);

        // Injected faults.
        fake.fail_next(1, 502);
        let response = client::post(&url, card("x").to_string()).await;
        assert_eq!(response.status().as_u16(), 502);
        fake.rate_limit_next(1);
        let (_, body) = post(&url, &card("x")).await;
        assert_eq!(body["code"], 11232);

        assert_eq!(fake.requests().len(), 8);
        assert_eq!(fake.delivered().len(), 1);
    }

    #[tokio::test]
    async fn rate_limit_is_five_per_second() {
        let fake = Fake::start(Bot::new("t2")).await;
        let url = fake.url("t2");
        let mut codes = Vec::new();
        for _ in 0..6 {
            codes.push(post(&url, &card("x")).await.1["code"].as_i64());
        }
        assert_eq!(codes[..5], [Some(0); 5]);
        assert_eq!(codes[5], Some(11232));
    }

    #[tokio::test]
    async fn post_and_text_shapes() {
        let fake = Fake::start(Bot::new("t3")).await;
        fake.disable_rate_limits();
        let url = fake.url("t3");
        let post_ok = json!({"msg_type":"post","content":{"post":{"zh_cn":{"title":"T","content":[[{"tag":"text","text":"a"},{"tag":"a","text":"l","href":"https://x"},{"tag":"at","user_id":"all"}]]}}}});
        assert_eq!(post(&url, &post_ok).await.1["code"], 0);
        let post_bad = json!({"msg_type":"post","content":{"post":{"fr_fr":{"content":[]}}}});
        assert_eq!(post(&url, &post_bad).await.0, 400);
        let text = json!({"msg_type":"text","content":{"text":"<at user_id=\"all\"></at> hi"}});
        assert_eq!(post(&url, &text).await.1["code"], 0);
        let untyped = json!({"content":{"text":"hi"}});
        assert_eq!(post(&url, &untyped).await.1["code"], 19002);
    }
}
