//! The load generator: `connections` tasks, each with its own HTTP/1.1
//! connection, POSTing one event after another (closed loop: a connection
//! sends its next event when the previous one was answered) until a
//! duration has passed or a number of events was sent. [`run_at_rate`]
//! paces the same connections to a fixed rate instead (open loop: event
//! `n` is due at `n / rate` seconds, whatever the answers before it), as
//! the soak needs a steady offered load. Each event carries
//! its marker in the title and the message, so the receiver can time it
//! end to end.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde::Serialize;

use crate::latency::Latency;
use crate::marker;

/// Where events go.
#[derive(Debug, Clone)]
pub struct Target {
    /// The ingest URL, e.g. `http://127.0.0.1:PORT/v1/events`.
    pub url: String,
    /// The bearer token.
    pub token: String,
}

/// When to stop.
#[derive(Debug, Clone, Copy)]
pub enum Until {
    /// Send for this long.
    Elapsed(Duration),
    /// Send this many events (sequence numbers `0..n`).
    Count(u64),
}

/// What happened.
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    /// Connections used.
    pub connections: usize,
    /// Requests sent.
    pub sent: u64,
    /// Answered 202.
    pub accepted: u64,
    /// Answered 503 (backpressure, not a failure).
    pub backpressure: u64,
    /// Any other answer, by status.
    pub other_statuses: BTreeMap<u16, u64>,
    /// Requests that got no answer (connection error, timeout).
    pub transport_errors: u64,
    /// The first transport error, for the report.
    pub first_error: Option<String>,
    /// From the first send to the last answer.
    pub elapsed_secs: f64,
    /// `accepted / elapsed_secs`.
    pub accepted_per_sec: f64,
    /// Send → answer of the 202s.
    pub ack: Latency,
    /// When sending started (for end-to-end rates).
    #[serde(skip)]
    pub started: Option<Instant>,
}

#[derive(Default)]
struct Tally {
    sent: u64,
    accepted: u64,
    backpressure: u64,
    other: BTreeMap<u16, u64>,
    errors: u64,
    first_error: Option<String>,
    acks: Vec<u64>,
}

/// The event with sequence number `seq`, sent at `sent_unix_nanos`: a
/// Carillon envelope with the marker in its title and message.
pub fn event(seq: u64, sent_unix_nanos: u64) -> String {
    let m = marker::write(seq, sent_unix_nanos);
    format!(
        concat!(
            r#"{{"type":"bench.event","source":"carillon-bench","severity":"warning","#,
            r#""title":"Benchmark event {m}","#,
            r#""message":"Load generator event **{seq}**: queue depth nominal ({m}).","#,
            r#""data":{{"seq":{seq},"suite":"carillon-bench"}},"labels":{{"env":"bench"}}}}"#
        ),
        m = m,
        seq = seq
    )
}

/// Runs the load against `target`.
pub async fn run(target: &Target, connections: usize, until: Until) -> anyhow::Result<LoadReport> {
    drive(target, connections, until, None).await
}

/// Sends `rate` events a second to `target` for `duration`, over at most
/// `connections` requests in flight. A connection that falls behind the
/// schedule sends at once, so a slow answer delays at most the events of
/// its own connection and the rate recovers afterwards; `accepted` counts
/// each 202 as it comes (for sampling during the run); setting `stop`
/// ends the run early.
pub async fn run_at_rate(
    target: &Target,
    connections: usize,
    rate: f64,
    duration: Duration,
    accepted: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<LoadReport> {
    let pace = Pace {
        rate: if rate.is_finite() && rate > 0.0 {
            rate
        } else {
            1.0
        },
        accepted,
        stop,
    };
    drive(target, connections, Until::Elapsed(duration), Some(pace)).await
}

/// An open-loop schedule.
#[derive(Clone)]
struct Pace {
    rate: f64,
    accepted: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

async fn drive(
    target: &Target,
    connections: usize,
    until: Until,
    pace: Option<Pace>,
) -> anyhow::Result<LoadReport> {
    let connections = connections.max(1);
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = match until {
        Until::Elapsed(d) => Some(started + d),
        Until::Count(_) => None,
    };
    let limit = match until {
        Until::Count(n) => n,
        Until::Elapsed(_) => u64::MAX,
    };
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..connections {
        // One client per task, pooling one connection: N tasks, N connections.
        let client = reqwest::Client::builder()
            .http1_only()
            .pool_max_idle_per_host(1)
            .timeout(Duration::from_secs(60))
            .build()
            .context("cannot build the HTTP client")?;
        let (target, next, pace) = (target.clone(), Arc::clone(&next), pace.clone());
        tasks.spawn(async move {
            let mut tally = Tally::default();
            loop {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    break;
                }
                let seq = next.fetch_add(1, Ordering::Relaxed);
                if seq >= limit {
                    break;
                }
                if let Some(p) = &pace {
                    let due = Duration::try_from_secs_f64(seq as f64 / p.rate)
                        .ok()
                        .and_then(|offset| started.checked_add(offset));
                    let Some(due) = due.filter(|due| deadline.is_none_or(|d| *due < d)) else {
                        break;
                    };
                    tokio::time::sleep_until(due.into()).await;
                    if p.stop.load(Ordering::Relaxed) {
                        break;
                    }
                }
                let body = event(seq, marker::now_unix_nanos());
                let t = Instant::now();
                let answer = client
                    .post(&target.url)
                    .bearer_auth(&target.token)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await;
                tally.sent += 1;
                let status = match answer {
                    Ok(r) => {
                        let status = r.status().as_u16();
                        // Read the answer so the connection can be reused.
                        match r.bytes().await {
                            Ok(_) => Ok(status),
                            Err(e) => Err(e),
                        }
                    }
                    Err(e) => Err(e),
                };
                let nanos = u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX);
                match status {
                    Ok(202) => {
                        tally.accepted += 1;
                        tally.acks.push(nanos);
                        if let Some(p) = &pace {
                            p.accepted.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Ok(503) => tally.backpressure += 1,
                    Ok(other) => *tally.other.entry(other).or_default() += 1,
                    Err(e) => {
                        tally.errors += 1;
                        tally.first_error.get_or_insert_with(|| error_chain(&e));
                    }
                }
            }
            tally
        });
    }
    let mut all = Tally::default();
    while let Some(done) = tasks.join_next().await {
        let t = done.context("a load task failed")?;
        all.sent += t.sent;
        all.accepted += t.accepted;
        all.backpressure += t.backpressure;
        all.errors += t.errors;
        if all.first_error.is_none() {
            all.first_error = t.first_error;
        }
        for (status, n) in t.other {
            *all.other.entry(status).or_default() += n;
        }
        all.acks.extend(t.acks);
    }
    let elapsed = started.elapsed().as_secs_f64();
    Ok(LoadReport {
        connections,
        sent: all.sent,
        accepted: all.accepted,
        backpressure: all.backpressure,
        other_statuses: all.other,
        transport_errors: all.errors,
        first_error: all.first_error,
        elapsed_secs: elapsed,
        accepted_per_sec: per_sec(all.accepted, elapsed),
        ack: Latency::of(&mut all.acks),
        started: Some(started),
    })
}

/// `n / secs`, 0 for an empty interval.
pub fn per_sec(n: u64, secs: f64) -> f64 {
    if secs > 0.0 { n as f64 / secs } else { 0.0 }
}

/// An error and its causes on one line (reqwest hides the interesting part
/// in the source chain).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_valid_json_with_their_marker() {
        let e: serde_json::Value = serde_json::from_str(&event(42, 7)).unwrap();
        assert_eq!(e["type"], "bench.event");
        assert_eq!(e["data"]["seq"], 42);
        let markers = marker::scan(event(42, 7).as_bytes());
        assert_eq!(markers.len(), 2);
        assert!(
            markers
                .iter()
                .all(|m| m.seq == 42 && m.sent_unix_nanos == 7)
        );
    }
}
