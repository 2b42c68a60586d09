//! The dispatcher end to end: real outbox on disk, real webhook plugin, real
//! receivers on 127.0.0.1. Time is a manual clock the tests advance; waits
//! poll for an expected state with a generous bound (no timing assertions).

use std::sync::Arc;
use std::time::Duration;

use carillon::dispatch::metrics::Metrics;
use carillon::dispatch::registry::DestinationRegistry;
use carillon::dispatch::retry::RetryPolicy;
use carillon::dispatch::{DispatchConfig, Dispatcher};
use carillon::plugin::types::RateLimit;
use carillon_outbox::{Clock, DeliveryId, Outbox, OutboxConfig, StateKind};
use carillon_tests::fakes::webhook::{Answer, Receiver};
use serde_json::json;

use crate::support::{Pipeline, message, runtime};

/// The pipeline with the webhook plugin, and shorthands for these tests.
struct Gateway(Pipeline);

impl std::ops::Deref for Gateway {
    type Target = Pipeline;
    fn deref(&self) -> &Pipeline {
        &self.0
    }
}

impl std::ops::DerefMut for Gateway {
    fn deref_mut(&mut self) -> &mut Pipeline {
        &mut self.0
    }
}

impl Gateway {
    async fn start(retry: RetryPolicy) -> Gateway {
        Gateway::start_with_lease(retry, Duration::from_secs(24 * 3600)).await
    }

    async fn start_with_lease(retry: RetryPolicy, lease: Duration) -> Gateway {
        let runtime = runtime(&["127.0.0.1/32"]);
        Gateway(Pipeline::start(runtime, "carillon-plugin-webhook", retry, lease).await)
    }

    fn destination(
        &self,
        name: &str,
        url: &str,
        rate_limits: Vec<RateLimit>,
        fallback: Option<&str>,
    ) {
        let config = json!({ "url": url, "timeout_ms": 500 });
        self.0
            .destination(name, "webhook", config, rate_limits, fallback);
    }

    async fn enqueue(&self, title: &str, destinations: &[&str]) -> Vec<DeliveryId> {
        self.0.enqueue(&message(title), destinations).await
    }
}

async fn wait_for(what: &str, done: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "gave up waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enqueued_messages_are_delivered() {
    let gw = Gateway::start(RetryPolicy::default()).await;
    let receiver = Receiver::start(None).await;
    gw.destination("team", &receiver.url("/hook"), vec![], None);
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.extend(gw.enqueue(&format!("event {i}"), &["team"]).await);
    }
    wait_for("5 deliveries", || receiver.received().len() == 5).await;
    wait_for("all delivered", || {
        ids.iter()
            .all(|id| gw.state(id) == Some(StateKind::Delivered))
    })
    .await;
    let view = gw.outbox.delivery(&ids[0]).expect("read").expect("exists");
    assert_eq!(view.history.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receiver_faults_end_delivered_once_it_recovers() {
    let gw = Gateway::start(RetryPolicy::default()).await;
    let receiver = Receiver::start(None).await;
    gw.destination("flaky", &receiver.url("/hook"), vec![], None);
    receiver.script([
        Answer::status(500),
        Answer::status(503),
        Answer::status(429).header("retry-after", "30"),
        Answer::status(200).delay(Duration::from_secs(2)), // times out (timeout_ms 500)
    ]);
    let id = gw.enqueue("flaky", &["flaky"]).await[0].clone();
    gw.advance_until(Duration::from_secs(5), "delivered after faults", || {
        gw.state(&id) == Some(StateKind::Delivered)
    })
    .await;
    let view = gw.outbox.delivery(&id).expect("read").expect("exists");
    // 500, 503 and the timeout count; the 429 does not.
    assert_eq!(view.history.len(), 5, "{:#?}", view.history);
    assert_eq!(
        view.history.iter().filter(|a| a.counted).count(),
        4,
        "{:#?}",
        view.history
    );
    assert_eq!(receiver.received().len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_refused_retries_until_a_receiver_listens() {
    let gw = Gateway::start(RetryPolicy::default()).await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    gw.destination(
        "later",
        &format!("http://127.0.0.1:{port}/hook"),
        vec![],
        None,
    );
    let id = gw.enqueue("later", &["later"]).await[0].clone();
    gw.advance_until(Duration::from_secs(1), "a failed attempt", || {
        gw.outbox
            .delivery(&id)
            .expect("read")
            .is_some_and(|d| !d.history.is_empty())
    })
    .await;
    assert_eq!(gw.state(&id), Some(StateKind::Scheduled));
    // Now something listens on that port.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("rebind");
    let app = axum::Router::new().fallback(|| async { "ok" });
    tokio::spawn(async move { axum::serve(listener, app).await });
    gw.advance_until(Duration::from_secs(30), "delivered", || {
        gw.state(&id) == Some(StateKind::Delivered)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exhausted_deliveries_go_to_the_fallback_and_can_be_requeued() {
    let retry = RetryPolicy {
        max_attempts: 3,
        ..RetryPolicy::default()
    };
    let gw = Gateway::start(retry).await;
    let primary = Receiver::start(None).await;
    let backup = Receiver::start(None).await;
    gw.destination("primary", &primary.url("/hook"), vec![], Some("backup"));
    gw.destination("backup", &backup.url("/hook"), vec![], None);
    primary.script([
        Answer::status(500),
        Answer::status(500),
        Answer::status(500),
    ]);
    let id = gw.enqueue("important", &["primary"]).await[0].clone();
    gw.advance_until(Duration::from_secs(30), "dead-lettered", || {
        gw.state(&id) == Some(StateKind::Dead)
    })
    .await;
    wait_for("the fallback received it", || backup.received().len() == 1).await;
    assert_eq!(backup.received()[0].json()["title"], "important");
    let view = gw.outbox.delivery(&id).expect("read").expect("exists");
    let fallback_id = view.fallback_to.clone().expect("the chain is recorded");
    let fallback = gw
        .outbox
        .delivery(&fallback_id)
        .expect("read")
        .expect("exists");
    assert_eq!(fallback.fallback_of.as_ref(), Some(&id));
    assert_eq!(fallback.destination, "backup");

    // The receiver is fixed (its script is exhausted: it answers 200 now);
    // re-queueing the dead letter delivers it.
    gw.outbox
        .requeue_dead(&id, gw.clock.now())
        .expect("requeue");
    gw.dispatcher.as_ref().expect("running").wake();
    gw.advance_until(Duration::from_secs(1), "redelivered", || {
        gw.state(&id) == Some(StateKind::Delivered)
    })
    .await;
    assert_eq!(primary.received().len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_destination_is_spread_out_and_slows_nobody_else() {
    let gw = Gateway::start(RetryPolicy::default()).await;
    let slow = Receiver::start(None).await;
    let fast = Receiver::start(None).await;
    let per_minute = vec![RateLimit {
        requests: 20,
        window: Duration::from_secs(60),
    }];
    gw.destination("bot", &slow.url("/hook"), per_minute, None);
    gw.destination("hook", &fast.url("/hook"), vec![], None);
    for i in 0..60 {
        gw.enqueue(&format!("m{i}"), &["bot", "hook"]).await;
    }
    // Without the clock moving, the unlimited destination gets everything
    // and the bot only its burst of 20.
    wait_for("all 60 to the unlimited destination", || {
        fast.received().len() == 60
    })
    .await;
    wait_for("the burst of 20", || slow.received().len() == 20).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        slow.received().len(),
        20,
        "no more than the burst without time passing"
    );
    // No window of a minute ever sees more than 20: nothing more 30 s later,
    // the next 20 a minute after the first.
    gw.clock.advance(Duration::from_secs(30));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        slow.received().len(),
        20,
        "still 20 within the first minute"
    );
    gw.clock.advance(Duration::from_secs(31));
    wait_for("the second minute's 20", || slow.received().len() == 40).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(slow.received().len(), 40);
    gw.advance_until(Duration::from_secs(3), "all 60 to the bot", || {
        slow.received().len() == 60
    })
    .await;
    assert!(slow.received().iter().all(|r| r.path == "/hook"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_left_by_a_dead_process_is_delivered_after_its_lease() {
    let mut gw = Gateway::start(RetryPolicy::default()).await;
    let receiver = Receiver::start(None).await;
    // Stop this dispatcher, then claim as a process that will never finish.
    gw.dispatcher.take().expect("running").shutdown().await;
    gw.destination("team", &receiver.url("/hook"), vec![], None);
    let id = gw.enqueue("orphan", &["team"]).await[0].clone();
    let claims = gw
        .outbox
        .claim_due(
            gw.clock.now(),
            10,
            "crashed-process",
            Duration::from_secs(60),
        )
        .expect("claim");
    assert_eq!(claims.len(), 1);
    let dispatcher = Dispatcher::start(
        gw.outbox.clone(),
        gw.runtime.clone(),
        gw.destinations.clone(),
        gw.clock.clone(),
        Arc::new(Metrics::default()),
        DispatchConfig {
            poll_interval: Duration::from_millis(5),
            ..DispatchConfig::default()
        },
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(receiver.received().is_empty(), "the lease is still held");
    gw.clock.advance(Duration::from_secs(61));
    wait_for("delivered after the lease expired", || {
        gw.state(&id) == Some(StateKind::Delivered)
    })
    .await;
    assert_eq!(receiver.received().len(), 1);
    dispatcher.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_running_deliveries_finish() {
    let mut gw = Gateway::start(RetryPolicy::default()).await;
    let receiver = Receiver::start(None).await;
    gw.destination("team", &receiver.url("/hook"), vec![], None);
    receiver.script([Answer::status(200).delay(Duration::from_millis(300))]);
    let id = gw.enqueue("in flight", &["team"]).await[0].clone();
    wait_for("the request is in flight", || {
        !receiver.received().is_empty()
    })
    .await;
    gw.dispatcher.take().expect("running").shutdown().await;
    assert_eq!(gw.state(&id), Some(StateKind::Delivered));
}

/// A lane holds only what its rate limit can send within half a lease; the
/// claims beyond that are handed back to the outbox as deferred (not an
/// attempt, no error counted) and delivered when the limit allows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_beyond_a_full_lane_are_deferred_not_counted() {
    // 1 per minute and a 10-minute lease: the lane holds what five minutes
    // allow; ten cannot all fit.
    let gw = Gateway::start_with_lease(RetryPolicy::default(), Duration::from_secs(600)).await;
    let receiver = Receiver::start(None).await;
    let per_minute = vec![RateLimit {
        requests: 1,
        window: Duration::from_secs(60),
    }];
    gw.destination("slow", &receiver.url("/hook"), per_minute, None);
    let mut ids = Vec::new();
    for i in 0..10 {
        ids.extend(gw.enqueue(&format!("event {i}"), &["slow"]).await);
    }
    let deferred = |id: &DeliveryId| {
        let view = gw.outbox.delivery(id).expect("read").expect("exists");
        view.history.iter().any(|a| {
            !a.counted
                && matches!(&a.outcome, carillon_outbox::AttemptOutcome::Retry { error, .. }
                    if error.contains("rate limit is saturated"))
        }) && view.attempts == 0
    };
    wait_for("a deferred claim", || ids.iter().any(deferred)).await;
    // Time moves on in small steps (a coarse step would let leases expire
    // during a request's real-time round trip): each delivery in turn, none
    // lost, none dead.
    gw.advance_until(Duration::from_secs(2), "all delivered", || {
        ids.iter()
            .all(|id| gw.state(id) == Some(StateKind::Delivered))
    })
    .await;
    let mut titles: Vec<String> = receiver
        .received()
        .iter()
        .map(|r| r.json()["title"].as_str().unwrap_or_default().to_owned())
        .collect();
    titles.sort();
    titles.dedup();
    let expected: Vec<String> = (0..10).map(|i| format!("event {i}")).collect();
    assert_eq!(titles, expected);
}

/// A claim waiting in its lane is handed back (due when the lane can send)
/// rather than held past its lease: otherwise the claim loop would take the
/// expired claim again and the same message would be sent twice. Here a
/// channel's Retry-After pauses the lane for longer than the lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_that_would_outlive_its_lease_is_handed_back_not_sent_twice() {
    let gw = Gateway::start_with_lease(RetryPolicy::default(), Duration::from_secs(40)).await;
    let receiver = Receiver::start(None).await;
    receiver.script([Answer::status(429).header("retry-after", "100")]);
    // One at a time, so the others are queued in the lane when the pause
    // arrives.
    let one_per_5s = vec![RateLimit {
        requests: 1,
        window: Duration::from_secs(5),
    }];
    gw.destination("paused", &receiver.url("/hook"), one_per_5s, None);
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.extend(gw.enqueue(&format!("event {i}"), &["paused"]).await);
    }
    wait_for("the first request", || !receiver.received().is_empty()).await;
    gw.advance_until(Duration::from_secs(2), "all delivered", || {
        ids.iter()
            .all(|id| gw.state(id) == Some(StateKind::Delivered))
    })
    .await;
    let mut titles: Vec<String> = receiver
        .received()
        .iter()
        .map(|r| r.json()["title"].as_str().unwrap_or_default().to_owned())
        .collect();
    titles.sort();
    // The first one twice (429, then 200), the others once each.
    assert_eq!(titles, ["event 0", "event 0", "event 1", "event 2"]);
    for id in &ids {
        let view = gw.outbox.delivery(id).expect("read").expect("exists");
        assert_eq!(view.attempts, 1, "{id}: no counted failure");
    }
}

/// Shutting down before the claim loop ever ran still stops it (on a
/// current-thread runtime the loop cannot have started yet). This once hung:
/// a stop signal sent before anyone listened was lost.
#[tokio::test(flavor = "current_thread")]
async fn shutdown_right_after_start_returns() {
    let dir = tempfile::tempdir().expect("tempdir");
    let outbox =
        Arc::new(Outbox::open(OutboxConfig::new(dir.path().join("outbox"))).expect("outbox"));
    let dispatcher = Dispatcher::start(
        outbox,
        runtime(&[]),
        Arc::new(DestinationRegistry::new()),
        Arc::new(carillon_outbox::SystemClock),
        Arc::new(Metrics::default()),
        DispatchConfig::default(),
    );
    tokio::time::timeout(Duration::from_secs(10), dispatcher.shutdown())
        .await
        .expect("shutdown returns");
}
