//! What the chat-robot fakes share: the robot a test configures (DingTalk,
//! Lark), the record of an `errcode`/`errmsg` exchange (DingTalk, WeCom)
//! and query decoding.

use axum::response::Response;
use serde_json::{Value, json};

use super::{Delivered, Keyed, Request, body_json};

/// A robot as DingTalk and Lark configure it: the token its URL carries,
/// an optional signing secret, security keywords and a per-minute limit
/// (the vendor's, `PER_MINUTE`, unless a test lowers it).
#[derive(Debug, Clone)]
pub struct Robot<const PER_MINUTE: usize> {
    /// The token in the robot's URL.
    pub token: String,
    /// The signing secret; `None` turns signing off.
    pub secret: Option<String>,
    /// Security keywords; empty turns the keyword check off.
    pub keywords: Vec<String>,
    /// Messages allowed per minute.
    pub per_minute: usize,
}

impl<const PER_MINUTE: usize> Default for Robot<PER_MINUTE> {
    fn default() -> Self {
        Robot {
            token: String::new(),
            secret: None,
            keywords: Vec::new(),
            per_minute: PER_MINUTE,
        }
    }
}

impl<const PER_MINUTE: usize> Robot<PER_MINUTE> {
    /// A robot with this token, no secret and no keywords.
    pub fn new(token: &str) -> Self {
        Robot {
            token: token.to_owned(),
            ..Robot::default()
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

impl<const PER_MINUTE: usize> Keyed for Robot<PER_MINUTE> {
    fn key(&self) -> String {
        self.token.clone()
    }
}

/// A request to a robot that answers HTTP 200 with `errcode`/`errmsg`
/// (DingTalk, WeCom), and what the fake answered.
#[derive(Debug, Clone)]
pub struct RobotRecord {
    /// The robot's token from the query (DingTalk's `access_token`, WeCom's
    /// `key`), if any.
    pub token: Option<String>,
    /// The raw query string.
    pub query: String,
    /// Headers, lower-case names.
    pub headers: Vec<(String, String)>,
    /// The raw body.
    pub body: Vec<u8>,
    /// The HTTP status answered.
    pub status: u16,
    /// The errcode answered (`None` for injected non-vendor answers).
    pub errcode: Option<i64>,
    /// The errmsg answered.
    pub errmsg: String,
}

impl RobotRecord {
    /// Records `request`, whose robot token the vendor read, with the
    /// answer given: `errcode` and `errmsg` with HTTP 200, or (`errcode`
    /// `None`) a bare `status`.
    pub fn of(
        request: &Request,
        token: Option<String>,
        status: u16,
        errcode: Option<i64>,
        errmsg: String,
    ) -> Self {
        RobotRecord {
            token,
            query: request.query().to_owned(),
            headers: request.header_pairs(),
            body: request.body.to_vec(),
            status,
            errcode,
            errmsg,
        }
    }

    /// The answer recorded: `{"errcode","errmsg"}` with HTTP 200, or the
    /// bare status with a text body naming the `vendor`'s fake.
    pub fn response(&self, vendor: &str) -> Response {
        match self.errcode {
            Some(code) => super::json(200, json!({ "errcode": code, "errmsg": self.errmsg })),
            None => super::text(
                self.status,
                format!("fake {vendor}: status {}", self.status),
            ),
        }
    }

    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> Value {
        body_json(&self.body)
    }

    /// A query parameter, decoded once.
    pub fn param(&self, name: &str) -> Option<String> {
        query_params(&self.query)
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }
}

/// `true` when the fake accepted the message (errcode 0).
impl Delivered for RobotRecord {
    fn delivered(&self) -> bool {
        self.errcode == Some(0)
    }
}

/// Splits a query into pairs, decoding each part once (`+` is a space).
pub fn query_params(query: &str) -> Vec<(String, String)> {
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
