//! The server machinery every fake shares, so that a vendor's module holds
//! only that vendor's rules.
//!
//! [`FakeServer`] binds 127.0.0.1 on a free port, serves every path with
//! one axum handler and keeps, behind one mutex, the vendor's [`Rules`],
//! the scripted faults and delays (each taken by the next request that
//! takes one, in order) and every request it recorded. Each request is
//! stamped on receipt by the fake's [`ReceiptClock`] (the system clock, or
//! a test's own through `follow_clock`), which rate windows count by. The
//! server runs until the tokio runtime that started it ends, as a test's
//! runtime does.
//! A vendor's `Fake` is `FakeServer<ItsRules>`, with the vendor's own
//! constructors and accessors in an `impl` block of its module.
//!
//! [`robot`] holds what the chat-robot fakes share (the robot, the
//! errcode record, query decoding) and [`checks`] the tools of their checks
//! (rate windows, HMAC signatures, the clock). The SMTP fake speaks another
//! protocol and uses only [`bind`] and [`lock`] from here.

pub mod checks;
pub mod robot;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tokio::net::TcpListener;

pub use checks::{ReceiptClock, Window, hmac_base64, same_secret, unix_ms, unix_secs};
pub use robot::{Robot, RobotRecord};

/// Binds 127.0.0.1 on a free port.
pub(crate) async fn bind() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local addr");
    (listener, addr)
}

/// Locks a fake's state; a test that panicked while holding it must not
/// turn every later request into a second panic.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One HTTP request, as a vendor's rules see it.
#[derive(Debug)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// Path and query.
    pub uri: Uri,
    /// The headers.
    pub headers: HeaderMap,
    /// The raw body.
    pub body: Bytes,
    /// When the fake received it, by the fake's [`ReceiptClock`]: the time
    /// a vendor's rate window counts.
    pub received: Instant,
}

impl Request {
    /// The headers as recorded: lower-case names, values decoded lossily.
    pub fn header_pairs(&self) -> Vec<(String, String)> {
        self.headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect()
    }

    /// The query string (empty when there is none).
    pub fn query(&self) -> &str {
        self.uri.query().unwrap_or("")
    }
}

/// A scripted answer that overrides a vendor's rules for one request.
#[derive(Debug, Clone)]
pub enum Fault<A> {
    /// This HTTP status with a text body, not the vendor's (`fail_next`).
    Status(u16),
    /// A vendor answer (an errcode, a throttle, a scripted response …).
    Vendor(A),
}

/// What one request got: what to record, the response, and how long to
/// wait before sending it (on top of any scripted delay).
pub struct Served<R> {
    /// The request as the fake records it.
    pub record: R,
    /// The answer.
    pub response: Response,
    /// A wait the rules themselves ask for.
    pub delay: Duration,
}

impl<R> Served<R> {
    /// An answer sent without a wait of its own.
    pub fn now(record: R, response: impl IntoResponse) -> Self {
        Served {
            record,
            response: response.into_response(),
            delay: Duration::ZERO,
        }
    }
}

/// A vendor's rules: its state (robots, rate windows, clock) and how it
/// answers one request.
pub trait Rules: Send + 'static {
    /// The vendor answers a test can script (see [`Fault::Vendor`]).
    type Scripted: Clone + Send + 'static;
    /// What the fake records of a request and its answer.
    type Recorded: Clone + Send + 'static;

    /// Answers one request. `faults` holds the scripted faults still to
    /// come; the rules take the next one where the vendor would fail, so
    /// each vendor decides which requests consume one.
    fn serve(
        &mut self,
        faults: &mut VecDeque<Fault<Self::Scripted>>,
        request: &Request,
    ) -> Served<Self::Recorded>;
}

/// An account a fake knows (a robot, a bot, a hook), by the key its URL
/// carries.
pub trait Keyed {
    /// The key in the account's URL.
    fn key(&self) -> String;
}

/// A record that says whether the vendor took the message.
pub trait Delivered {
    /// `true` when the message reached the channel.
    fn delivered(&self) -> bool;
}

/// Rules whose URLs name accounts the fake knows by key.
pub trait Roster: Rules + Default {
    /// One account, with what the vendor checks for it (secret, keywords …).
    type Account: Keyed + Send + 'static;

    /// The accounts, by key.
    fn accounts(&mut self) -> &mut HashMap<String, Self::Account>;
}

struct Core<V: Rules> {
    rules: V,
    clock: ReceiptClock,
    faults: VecDeque<Fault<V::Scripted>>,
    delays: VecDeque<Duration>,
    requests: Vec<V::Recorded>,
}

/// A running fake HTTP server on 127.0.0.1 that answers by `V`'s rules.
pub struct FakeServer<V: Rules> {
    addr: SocketAddr,
    core: Arc<Mutex<Core<V>>>,
}

impl<V: Rules> Clone for FakeServer<V> {
    fn clone(&self) -> Self {
        FakeServer {
            addr: self.addr,
            core: self.core.clone(),
        }
    }
}

impl<V: Rules> FakeServer<V> {
    /// Binds 127.0.0.1 and serves every path by `rules`.
    pub(crate) async fn launch(rules: V) -> Self {
        let core = Arc::new(Mutex::new(Core {
            rules,
            clock: ReceiptClock::default(),
            faults: VecDeque::new(),
            delays: VecDeque::new(),
            requests: Vec::new(),
        }));
        let app = Router::new().fallback(handle::<V>).with_state(core.clone());
        let (listener, addr) = bind().await;
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeServer { addr, core }
    }

    /// Runs `f` on the rules' state, under the lock.
    pub(crate) fn with_rules<T>(&self, f: impl FnOnce(&mut V) -> T) -> T {
        f(&mut lock(&self.core).rules)
    }

    /// Reads the time from `clock` from now on: requests are stamped with
    /// it on receipt (so rate windows count by it) and scripted delays are
    /// measured by it.
    pub fn follow_clock(&self, clock: ReceiptClock) {
        lock(&self.core).clock = clock;
    }

    /// Scripts these faults, in order, after those already scripted.
    pub(crate) fn queue_faults(&self, faults: impl IntoIterator<Item = Fault<V::Scripted>>) {
        lock(&self.core).faults.extend(faults);
    }

    /// Scripts the vendor answer `answer` for the next `n` requests that
    /// take a fault.
    pub(crate) fn script_next(&self, n: usize, answer: V::Scripted) {
        self.queue_faults(std::iter::repeat_n(Fault::Vendor(answer), n));
    }

    /// The next `n` requests that take a scripted fault are answered with
    /// `status` and a text body, not the vendor's, before any check.
    pub fn fail_next(&self, n: usize, status: u16) {
        self.queue_faults(std::iter::repeat_n(Fault::Status(status), n));
    }

    /// The next `n` answers are delayed by `delay`.
    pub fn delay_next(&self, n: usize, delay: Duration) {
        lock(&self.core)
            .delays
            .extend(std::iter::repeat_n(delay, n));
    }

    /// `http://127.0.0.1:port`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<V::Recorded> {
        lock(&self.core).requests.clone()
    }
}

impl<V: Roster> FakeServer<V> {
    /// Starts a fake that knows one account.
    pub async fn start(account: V::Account) -> Self {
        Self::start_many([account]).await
    }

    /// Starts a fake that knows these accounts.
    pub async fn start_many(accounts: impl IntoIterator<Item = V::Account>) -> Self {
        let mut rules = V::default();
        for account in accounts {
            rules.accounts().insert(account.key(), account);
        }
        Self::launch(rules).await
    }

    /// Adds or replaces an account.
    pub(crate) fn add_account(&self, account: V::Account) {
        self.with_rules(|r| r.accounts().insert(account.key(), account));
    }
}

impl<V: Roster<Recorded: Delivered>> FakeServer<V> {
    /// The requests whose message the vendor took, in order.
    pub fn delivered(&self) -> Vec<V::Recorded> {
        self.requests()
            .into_iter()
            .filter(Delivered::delivered)
            .collect()
    }
}

async fn handle<V: Rules>(
    State(core): State<Arc<Mutex<Core<V>>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (clock, answer_at, response) = {
        let mut core = lock(&core);
        let Core {
            rules,
            clock,
            faults,
            delays,
            requests,
        } = &mut *core;
        let request = Request {
            method,
            uri,
            headers,
            body,
            received: clock.now(),
        };
        let scripted = delays.pop_front().unwrap_or_default();
        let served = rules.serve(faults, &request);
        requests.push(served.record);
        let answer_at = request.received + scripted + served.delay;
        (clock.clone(), answer_at, served.response)
    };
    clock.wait_until(answer_at).await;
    response
}

/// A plain-text answer with this status (500 when it is not a status).
pub fn text(status: u16, body: impl Into<String>) -> Response {
    (status_code(status), body.into()).into_response()
}

/// A JSON answer with this status (500 when it is not a status).
pub fn json(status: u16, body: Value) -> Response {
    (status_code(status), axum::Json(body)).into_response()
}

fn status_code(status: u16) -> StatusCode {
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// A recorded body as JSON (`Null` when it is not JSON).
pub fn body_json(body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap_or(Value::Null)
}

/// POST helpers for the fakes' own unit tests.
#[cfg(test)]
pub(crate) mod client {
    use serde_json::Value;

    /// POSTs `body` to `url` as JSON.
    pub(crate) async fn post(url: &str, body: impl Into<reqwest::Body>) -> reqwest::Response {
        carillon::tls::install_crypto_provider();
        reqwest::Client::builder()
            .build()
            .expect("client")
            .post(url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("send")
    }

    /// POSTs `body` and reads the answer: its status and its body as JSON
    /// (`Null` when it is not JSON).
    pub(crate) async fn post_json(url: &str, body: &Value) -> (u16, Value) {
        let response = post(url, body.to_string()).await;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}
