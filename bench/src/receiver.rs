//! The destination every gateway under test delivers to: an HTTP endpoint
//! on 127.0.0.1 that answers like a DingTalk robot or a webhook
//! (`200 {"errcode":0,"errmsg":"ok"}`) on any path, and records per path
//! what arrived: the markers (see [`crate::marker`]) give each event's
//! send time, hence its latency, and repeated sequence numbers are
//! duplicates.
//!
//! Each path can behave differently, so one run can have a failing
//! destination next to healthy ones, or a paused one:
//!
//! - [`Behaviour::Fail`] answers `500`: a retryable failure, an attempt that
//!   counts, with the gateway's backoff.
//! - [`Behaviour::Pause`] answers `503` with `Retry-After: 1`. Gateways
//!   read that as "rate limited, come back in a second" (Carillon's webhook
//!   channel: not an attempt; the destination's lane pauses for that
//!   second), so a backlog builds up without exhausting retries or keeping
//!   the gateway busy, and the drain after [`Behaviour::Accept`] starts
//!   within a second. Holding requests open instead would tie up the
//!   gateway's workers until its plugin timeout (30 s) and make the drain
//!   measure that timeout and the retry backoff, not the gateway.
//! - [`Behaviour::Flaky`] fails at random as a real endpoint does (see
//!   [`Faults`]): some requests answer `500`, some are slow, some are held
//!   past the sender's timeout, and now and then the endpoint rate-limits
//!   everything (`429` with `Retry-After`) for a moment. The soak runs on it.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use tokio::sync::watch;

use crate::latency::Latency;
use crate::marker;
use crate::server::Server;

/// How a path answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// `200 {"errcode":0,"errmsg":"ok"}`: delivered.
    Accept,
    /// `503` with `Retry-After: 1`: come back later.
    Pause,
    /// `500`: a failed attempt.
    Fail,
    /// Accepts, except for the random faults of [`Faults`].
    Flaky(Faults),
}

/// What a [`Behaviour::Flaky`] path does at random. Probabilities are per
/// request, in parts per million, so the behaviour stays `Eq`.
///
/// The rate limit comes in windows rather than per request: a gateway
/// pauses a destination for the whole `Retry-After` on every `429`, so a
/// per-request 429 rate of a few percent would pause it all the time,
/// which no real vendor does; a vendor's limiter closes for a moment and
/// opens again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Faults {
    /// Answer `500` (a counted, retried attempt).
    pub error_ppm: u32,
    /// Answer `200` after `slow` (delivered, late).
    pub slow_ppm: u32,
    /// How late a slow answer is.
    pub slow: Duration,
    /// Hold the request for `hang`, then answer `504` without recording a
    /// delivery: meant to outlast the sender's timeout.
    pub hang_ppm: u32,
    /// How long a hung request is held.
    pub hang: Duration,
    /// Mean time between rate-limit windows (exponentially distributed);
    /// zero: never.
    pub throttle_every: Duration,
    /// How long a window lasts; every request in it gets `429` with
    /// `Retry-After` of this many seconds (at least 1).
    pub throttle_for: Duration,
}

impl Faults {
    /// The soak's mix: 5 % `500`, 1 % answered after 250 ms, 0.2 % held
    /// for 1.5 s (past a 1-s sender timeout), and a 1-s `429` window about
    /// every 30 s.
    pub fn soak() -> Faults {
        Faults {
            error_ppm: 50_000,
            slow_ppm: 10_000,
            slow: Duration::from_millis(250),
            hang_ppm: 2_000,
            hang: Duration::from_millis(1500),
            throttle_every: Duration::from_secs(30),
            throttle_for: Duration::from_secs(1),
        }
    }
}

/// How often a [`Behaviour::Flaky`] path misbehaved, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct FaultCounts {
    /// Answered `500`.
    pub errors: u64,
    /// Answered late (and delivered).
    pub slow: u64,
    /// Held past the sender's timeout.
    pub hung: u64,
    /// Answered `429` in a rate-limit window.
    pub throttled: u64,
    /// Rate-limit windows opened.
    pub throttle_windows: u64,
}

/// What a flaky path does with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    None,
    Error,
    Slow(Duration),
    Hang(Duration),
    Throttle(Duration),
}

/// What one path received so far.
#[derive(Debug, Clone, Default)]
pub struct PathReport {
    /// Requests answered 200.
    pub accepted_requests: u64,
    /// Requests answered 500, 503, 429 or 504 (a fault or a pause).
    pub refused_requests: u64,
    /// The random faults of a flaky path.
    pub faults: FaultCounts,
    /// Accepted requests without any marker.
    pub without_marker: u64,
    /// Distinct sequence numbers delivered.
    pub delivered: u64,
    /// Sequence numbers that arrived again in a later accepted request.
    pub duplicates: u64,
    /// Send → arrival of each first delivery.
    pub latency: Latency,
    /// The first and last accepted request carrying a new marker.
    pub first: Option<Instant>,
    /// See `first`.
    pub last: Option<Instant>,
    /// The earliest send time among the markers delivered (Unix nanos): a
    /// peer's first hand-off, which the suite cannot see itself.
    pub first_sent_unix_nanos: Option<u64>,
    /// `last` in Unix nanos, to compare with `first_sent_unix_nanos`.
    pub last_unix_nanos: Option<u64>,
}

#[derive(Debug, Default)]
struct PathLog {
    accepted_requests: u64,
    refused_requests: u64,
    faults: FaultCounts,
    /// When a flaky path's current rate-limit window closes.
    throttled_until: Option<Instant>,
    /// When its next window opens.
    next_throttle: Option<Instant>,
    without_marker: u64,
    duplicates: u64,
    seen: HashSet<u64>,
    latencies: Vec<u64>,
    first: Option<Instant>,
    last: Option<Instant>,
    first_sent_unix: Option<u64>,
    last_unix: Option<u64>,
}

#[derive(Debug, Default)]
struct Inner {
    behaviours: HashMap<String, Behaviour>,
    paths: HashMap<String, PathLog>,
    /// Paths a peer delivers to: never the source of `sample`.
    peer_paths: HashSet<String>,
    sample: Option<Vec<u8>>,
}

#[derive(Debug)]
struct Shared {
    inner: Mutex<Inner>,
    /// Bumped on every new delivery, so waiters wake without polling.
    progress: watch::Sender<u64>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves counters that are still
        // usable for a report.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The running receiver; stops when dropped.
#[derive(Debug)]
pub struct Receiver {
    server: Server,
    shared: Arc<Shared>,
}

impl Receiver {
    /// Starts it on 127.0.0.1 with its own two threads.
    pub fn start() -> anyhow::Result<Receiver> {
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner::default()),
            progress: watch::Sender::new(0),
        });
        let app = axum::Router::new()
            .fallback(receive)
            .with_state(Arc::clone(&shared));
        let server = Server::spawn("receiver", app, 2)?;
        Ok(Receiver { server, shared })
    }

    /// The URL of `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        self.server.url(path)
    }

    /// Makes `path` answer with `behaviour` from the next request on.
    pub fn set(&self, path: &str, behaviour: Behaviour) {
        self.shared
            .lock()
            .behaviours
            .insert(path.to_owned(), behaviour);
    }

    /// Marks `path` as a peer's (not Carillon's), so that the egress
    /// ceiling never replays a peer's body as Carillon's.
    pub fn mark_peer(&self, path: &str) {
        self.shared.lock().peer_paths.insert(path.to_owned());
    }

    /// Distinct sequence numbers delivered to each of `paths`.
    pub fn delivered(&self, paths: &[String]) -> Vec<u64> {
        let inner = self.shared.lock();
        paths
            .iter()
            .map(|p| inner.paths.get(p).map_or(0, |l| l.seen.len() as u64))
            .collect()
    }

    /// A watch that changes whenever something new is delivered.
    pub fn progress(&self) -> watch::Receiver<u64> {
        self.shared.progress.subscribe()
    }

    /// Everything `path` received so far.
    pub fn report(&self, path: &str) -> PathReport {
        let mut latencies;
        let mut report = {
            let inner = self.shared.lock();
            let Some(log) = inner.paths.get(path) else {
                return PathReport::default();
            };
            latencies = log.latencies.clone();
            PathReport {
                accepted_requests: log.accepted_requests,
                refused_requests: log.refused_requests,
                faults: log.faults,
                without_marker: log.without_marker,
                delivered: log.seen.len() as u64,
                duplicates: log.duplicates,
                latency: Latency::default(),
                first: log.first,
                last: log.last,
                first_sent_unix_nanos: log.first_sent_unix,
                last_unix_nanos: log.last_unix,
            }
        };
        report.latency = Latency::of(&mut latencies);
        report
    }

    /// Send → arrival (nanoseconds) of the first deliveries to `path`
    /// recorded after the first `from`, and the count to pass next time:
    /// one window's latencies without copying the whole run's.
    pub fn latencies_since(&self, path: &str, from: usize) -> (Vec<u64>, usize) {
        let inner = self.shared.lock();
        let Some(log) = inner.paths.get(path) else {
            return (Vec::new(), from);
        };
        let all = &log.latencies;
        (all.get(from..).unwrap_or_default().to_vec(), all.len())
    }

    /// The first accepted body that carried a marker, as the gateway sent
    /// it (peers' paths excepted).
    pub fn sample_body(&self) -> Option<Vec<u8>> {
        self.shared.lock().sample.clone()
    }
}

async fn receive(State(shared): State<Arc<Shared>>, uri: Uri, body: Bytes) -> Response {
    let arrived = Instant::now();
    let arrived_unix = marker::now_unix_nanos();
    let path = uri.path().to_owned();
    let behaviour = shared
        .lock()
        .behaviours
        .get(&path)
        .copied()
        .unwrap_or(Behaviour::Accept);
    let fault = match behaviour {
        Behaviour::Accept => Fault::None,
        Behaviour::Flaky(f) => {
            let mut inner = shared.lock();
            draw(inner.paths.entry(path.clone()).or_default(), &f, arrived)
        }
        Behaviour::Pause | Behaviour::Fail => {
            shared
                .lock()
                .paths
                .entry(path)
                .or_default()
                .refused_requests += 1;
            return if behaviour == Behaviour::Pause {
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    [(header::RETRY_AFTER, "1")],
                    r#"{"errcode":-1,"errmsg":"paused"}"#,
                )
                    .into_response()
            } else {
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    r#"{"errcode":-1,"errmsg":"failing"}"#,
                )
                    .into_response()
            };
        }
    };
    match fault {
        Fault::None => {}
        Fault::Slow(d) => tokio::time::sleep(d).await,
        Fault::Error => {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                r#"{"errcode":-1,"errmsg":"random failure"}"#,
            )
                .into_response();
        }
        Fault::Hang(d) => {
            tokio::time::sleep(d).await;
            return (
                StatusCode::GATEWAY_TIMEOUT,
                r#"{"errcode":-1,"errmsg":"held too long"}"#,
            )
                .into_response();
        }
        Fault::Throttle(d) => {
            let secs = d.as_secs().max(1).to_string();
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, secs)],
                r#"{"errcode":-1,"errmsg":"rate limited"}"#,
            )
                .into_response();
        }
    }
    // A slow answer's arrival is when it is answered, as the sender sees it.
    let (arrived, arrived_unix) = if matches!(fault, Fault::Slow(_)) {
        (Instant::now(), marker::now_unix_nanos())
    } else {
        (arrived, arrived_unix)
    };
    // Scan outside the lock; one event's marker may appear several times
    // in one body (title, Markdown, text), so keep each seq once.
    let mut markers = marker::scan(&body);
    markers.sort_unstable_by_key(|m| m.seq);
    markers.dedup_by_key(|m| m.seq);
    let mut fresh = 0;
    {
        let mut inner = shared.lock();
        if inner.sample.is_none() && !markers.is_empty() && !inner.peer_paths.contains(&path) {
            inner.sample = Some(body.to_vec());
        }
        let log = inner.paths.entry(path).or_default();
        log.accepted_requests += 1;
        if markers.is_empty() {
            log.without_marker += 1;
        }
        for m in &markers {
            if log.seen.insert(m.seq) {
                log.latencies
                    .push(arrived_unix.saturating_sub(m.sent_unix_nanos));
                fresh += 1;
                log.first_sent_unix = Some(
                    log.first_sent_unix
                        .map_or(m.sent_unix_nanos, |t| t.min(m.sent_unix_nanos)),
                );
            } else {
                log.duplicates += 1;
            }
        }
        if fresh > 0 {
            log.first.get_or_insert(arrived);
            log.last = Some(arrived);
            log.last_unix = Some(arrived_unix);
        }
    }
    if fresh > 0 {
        shared.progress.send_modify(|n| *n += fresh);
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"errcode":0,"errmsg":"ok"}"#,
    )
        .into_response()
}

/// Decides, and counts, what a flaky path does with a request arriving at
/// `now`.
fn draw(log: &mut PathLog, f: &Faults, now: Instant) -> Fault {
    let fault = throttle(log, f, now).unwrap_or_else(|| {
        let roll = fastrand::u32(0..1_000_000);
        let (e, s) = (f.error_ppm, f.error_ppm.saturating_add(f.slow_ppm));
        if roll < e {
            Fault::Error
        } else if roll < s {
            Fault::Slow(f.slow)
        } else if roll < s.saturating_add(f.hang_ppm) {
            Fault::Hang(f.hang)
        } else {
            Fault::None
        }
    });
    let c = &mut log.faults;
    match fault {
        Fault::None => return fault,
        Fault::Slow(_) => c.slow += 1,
        Fault::Error => c.errors += 1,
        Fault::Hang(_) => c.hung += 1,
        Fault::Throttle(_) => c.throttled += 1,
    }
    if !matches!(fault, Fault::Slow(_)) {
        log.refused_requests += 1;
    }
    fault
}

/// `Some(Throttle)` while a rate-limit window is open; opens one when its
/// time has come and schedules the next.
fn throttle(log: &mut PathLog, f: &Faults, now: Instant) -> Option<Fault> {
    if f.throttle_every.is_zero() {
        return None;
    }
    let next = *log
        .next_throttle
        .get_or_insert_with(|| now + exponential(f.throttle_every));
    if now >= next {
        log.throttled_until = Some(now + f.throttle_for);
        log.next_throttle = Some(now + f.throttle_for + exponential(f.throttle_every));
        log.faults.throttle_windows += 1;
    }
    let until = log.throttled_until?;
    (now < until).then(|| Fault::Throttle(until - now))
}

/// A random wait with mean `mean`, exponentially distributed (the gaps of
/// a Poisson process), capped at ten means.
fn exponential(mean: Duration) -> Duration {
    // 1 - U lies in (0, 1], so the logarithm is finite.
    let u = 1.0 - fastrand::f64();
    mean.mul_f64((-u.ln()).min(10.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn counts_deliveries_duplicates_and_refusals() {
        carillon::tls::install_crypto_provider();
        let r = Receiver::start().unwrap();
        let http = reqwest::Client::new();
        let t = marker::now_unix_nanos();
        let post = |path: &str, body: String| {
            let req = http.post(r.url(path)).body(body);
            async move { req.send().await.unwrap().status().as_u16() }
        };
        let one = marker::write(1, t);
        let two = marker::write(2, t);
        assert_eq!(post("/a", format!("{one} {one} {two}")).await, 200);
        assert_eq!(post("/a", format!("x{two}")).await, 200);
        assert_eq!(post("/a", "nothing".into()).await, 200);
        r.set("/b", Behaviour::Fail);
        assert_eq!(post("/b", one.clone()).await, 500);
        r.set("/b", Behaviour::Pause);
        let paused = http
            .post(r.url("/b"))
            .body(one.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(paused.status().as_u16(), 503);
        assert_eq!(paused.headers()["retry-after"], "1");
        r.set("/b", Behaviour::Accept);
        assert_eq!(post("/b", one).await, 200);

        let a = r.report("/a");
        assert_eq!(
            (
                a.accepted_requests,
                a.delivered,
                a.duplicates,
                a.without_marker
            ),
            (3, 2, 1, 1)
        );
        assert_eq!(a.latency.count, 2);
        let b = r.report("/b");
        assert_eq!((b.refused_requests, b.delivered), (2, 1));
        assert_eq!(
            r.delivered(&["/a".into(), "/b".into(), "/c".into()]),
            [2, 1, 0]
        );
        assert!(r.sample_body().is_some());
        assert_eq!(a.first_sent_unix_nanos, Some(t));
        assert!(a.last_unix_nanos.is_some_and(|l| l >= t));

        let peer = Receiver::start().unwrap();
        peer.mark_peer("/peer");
        let req = http.post(peer.url("/peer")).body(marker::write(1, t));
        assert_eq!(req.send().await.unwrap().status().as_u16(), 200);
        assert_eq!(peer.report("/peer").delivered, 1);
        assert!(peer.sample_body().is_none(), "a peer's body is no sample");
    }

    #[test]
    fn flaky_paths_fail_throttle_and_count() {
        let now = Instant::now();
        let mut log = PathLog::default();
        let always = Faults {
            error_ppm: 1_000_000,
            slow_ppm: 0,
            slow: Duration::ZERO,
            hang_ppm: 0,
            hang: Duration::ZERO,
            throttle_every: Duration::ZERO,
            throttle_for: Duration::ZERO,
        };
        assert_eq!(draw(&mut log, &always, now), Fault::Error);
        let never = Faults {
            error_ppm: 0,
            ..always
        };
        assert_eq!(draw(&mut log, &never, now), Fault::None);
        let hang = Faults {
            hang_ppm: 1_000_000,
            hang: Duration::from_secs(2),
            ..never
        };
        assert_eq!(
            draw(&mut log, &hang, now),
            Fault::Hang(Duration::from_secs(2))
        );
        let limited = Faults {
            throttle_every: Duration::from_nanos(1),
            throttle_for: Duration::from_secs(1),
            ..never
        };
        // The first window opens within ten nanoseconds, then lasts a second.
        let _ = draw(&mut log, &limited, now);
        let later = now + Duration::from_millis(1);
        assert!(matches!(
            draw(&mut log, &limited, later),
            Fault::Throttle(_)
        ));
        assert_eq!(log.faults.errors, 1);
        assert_eq!(log.faults.hung, 1);
        assert!(log.faults.throttled >= 1 && log.faults.throttle_windows >= 1);
        assert_eq!(
            log.refused_requests,
            log.faults.errors + log.faults.hung + log.faults.throttled
        );
        let gap = exponential(Duration::from_secs(1));
        assert!(gap <= Duration::from_secs(10), "{gap:?}");
    }
}
