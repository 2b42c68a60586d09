//! Vendors' rate limits through the real dispatcher and the real DingTalk
//! and WeCom plugins. Each fake counts a rolling 60-s window per robot at
//! its own receipt time, read from the gateway's manual clock, and answers
//! its vendor's rate-limit code past 20 (DingTalk 130101, which silences the
//! robot for 10 minutes; WeCom 45009). The gateway must never get that
//! answer: not with requests in flight while the window turns, and not when
//! two destinations share one robot.

use std::sync::Arc;
use std::time::{Duration, Instant};

use carillon::dispatch::retry::RetryPolicy;
use carillon::plugin::types::RateLimit;
use carillon_outbox::{Clock, ManualClock};
use carillon_tests::fakes::scaffold::{ReceiptClock, RobotRecord};
use carillon_tests::fakes::{dingtalk, wecom};
use serde_json::{Value, json};

use crate::support::{Pipeline, load, message, runtime};

const DINGTALK_RATE_LIMITED: i64 = 130101;
const WECOM_RATE_LIMITED: i64 = 45009;

/// The pipeline with both plugins loaded, a DingTalk and a WeCom fake on
/// the pipeline's clock.
struct Rig {
    pipeline: Pipeline,
    dingtalk: dingtalk::Fake,
    wecom: wecom::Fake,
}

impl Rig {
    async fn start(dingtalk_bots: &[&str], wecom_bots: &[&str]) -> Rig {
        let runtime = runtime(&["127.0.0.1/32"]);
        let pipeline = Pipeline::start(
            runtime.clone(),
            "carillon-plugin-dingtalk",
            RetryPolicy::default(),
            Duration::from_secs(24 * 3600),
        )
        .await;
        pipeline
            .destinations
            .set_plugin(load(&runtime, "carillon-plugin-wecom").await);
        let dingtalk =
            dingtalk::Fake::start_many(dingtalk_bots.iter().map(|t| dingtalk::Bot::new(t))).await;
        let wecom = wecom::Fake::start_many(wecom_bots.iter().map(|k| wecom::Bot::new(k))).await;
        dingtalk.follow_clock(receipt_clock(&pipeline.clock));
        wecom.follow_clock(receipt_clock(&pipeline.clock));
        Rig {
            pipeline,
            dingtalk,
            wecom,
        }
    }

    /// A destination of `plugin` with its manifest's rate limits, as the
    /// gateway configures one without an override.
    fn destination(&self, name: &str, plugin: &str, config: Value) {
        let limits: Vec<RateLimit> = self
            .pipeline
            .destinations
            .plugin(plugin)
            .expect("plugin loaded")
            .manifest()
            .rate_limits
            .clone();
        assert!(!limits.is_empty(), "{plugin} declares its vendor's limit");
        self.pipeline
            .destination(name, plugin, config, limits, None);
    }

    /// Advances the clock by `step` every few milliseconds of real time
    /// until `done`; fails after a minute of real time.
    async fn run_until(&self, step: Duration, what: &str, done: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !done() {
            assert!(Instant::now() < deadline, "gave up waiting for: {what}");
            self.pipeline.clock.advance(step);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// The fakes' receipt clock: the pipeline's manual clock, as an `Instant`.
fn receipt_clock(clock: &Arc<ManualClock>) -> ReceiptClock {
    let clock = clock.clone();
    let (anchor, start) = (Instant::now(), clock.now().as_millis());
    ReceiptClock::from_fn(move || {
        anchor + Duration::from_millis(clock.now().as_millis().saturating_sub(start))
    })
}

/// How many answers were the vendor's rate-limit code.
fn rate_limited(requests: &[RobotRecord], code: i64) -> usize {
    requests.iter().filter(|r| r.errcode == Some(code)).count()
}

/// How many requests named this robot.
fn to_robot(requests: &[RobotRecord], token: &str) -> usize {
    requests
        .iter()
        .filter(|r| r.token.as_deref() == Some(token))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_with_answers_in_flight_never_trips_the_vendors_window() {
    let rig = Rig::start(&["ding"], &["wk"]).await;
    rig.destination(
        "ding",
        "dingtalk",
        json!({ "webhook": rig.dingtalk.url("ding") }),
    );
    rig.destination("wk", "wecom", json!({ "webhook": rig.wecom.url("wk") }));
    // The first four answers (the destination's whole concurrency) take 50 s
    // of the fake's clock, so the requests queued behind them reach the
    // vendor long after their rate slot was taken.
    rig.dingtalk.delay_next(4, Duration::from_secs(50));
    rig.wecom.delay_next(4, Duration::from_secs(50));
    for i in 0..45 {
        rig.pipeline
            .enqueue(&message(&format!("burst {i}")), &["ding", "wk"])
            .await;
    }
    rig.run_until(Duration::from_millis(500), "45 to each robot", || {
        rig.dingtalk.delivered().len() == 45 && rig.wecom.delivered().len() == 45
    })
    .await;
    let (ding, wk) = (rig.dingtalk.requests(), rig.wecom.requests());
    assert_eq!(rate_limited(&ding, DINGTALK_RATE_LIMITED), 0, "DingTalk");
    assert_eq!(rate_limited(&wk, WECOM_RATE_LIMITED), 0, "WeCom");
    assert_eq!((ding.len(), wk.len()), (45, 45), "one request each");
    rig.pipeline.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destinations_sharing_a_robot_share_its_limit() {
    let rig = Rig::start(&["shared", "own"], &["shared"]).await;
    // Two destinations on one robot, differing in whom they mention, and a
    // third on a robot of its own.
    let shared = rig.dingtalk.url("shared");
    rig.destination(
        "ops",
        "dingtalk",
        json!({ "webhook": shared, "at_user_ids": ["u_ops"] }),
    );
    rig.destination(
        "dba",
        "dingtalk",
        json!({ "webhook": shared, "at_mobiles": ["13800138000"] }),
    );
    rig.destination(
        "own",
        "dingtalk",
        json!({ "webhook": rig.dingtalk.url("own") }),
    );
    let shared = rig.wecom.url("shared");
    rig.destination("wk-a", "wecom", json!({ "webhook": shared }));
    rig.destination("wk-b", "wecom", json!({ "webhook": shared }));
    for i in 0..30 {
        rig.pipeline
            .enqueue(
                &message(&format!("m{i}")),
                &["ops", "dba", "own", "wk-a", "wk-b"],
            )
            .await;
    }
    // With the clock standing still, each robot gets its minute's 20, the
    // shared ones too, however many destinations they serve.
    let (ding, wk) = (&rig.dingtalk, &rig.wecom);
    rig.run_until(Duration::ZERO, "the first minute's sends", || {
        to_robot(&ding.requests(), "shared") >= 20
            && to_robot(&ding.requests(), "own") >= 20
            && wk.requests().len() >= 20
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        to_robot(&ding.requests(), "shared"),
        20,
        "shared DingTalk robot"
    );
    assert_eq!(to_robot(&ding.requests(), "own"), 20, "a robot of its own");
    assert_eq!(wk.requests().len(), 20, "shared WeCom robot");
    rig.run_until(Duration::from_millis(500), "everything", || {
        to_robot(&ding.delivered(), "shared") == 60
            && to_robot(&ding.delivered(), "own") == 30
            && wk.delivered().len() == 60
    })
    .await;
    assert_eq!(rate_limited(&ding.requests(), DINGTALK_RATE_LIMITED), 0);
    assert_eq!(rate_limited(&wk.requests(), WECOM_RATE_LIMITED), 0);
    rig.pipeline.stop().await;
}
