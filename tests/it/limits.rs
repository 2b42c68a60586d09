//! Each sandbox limit with an "obeyed" and a "violated" test, using the
//! misbehaving fixture plugin; a violation fails only that call.

use std::time::Duration;

use carillon::plugin::types::{DeliverError, Receipt};
use carillon::plugin::{CallError, Limits, Plugin, Runtime};
use carillon_tests::fakes::webhook::{Answer, Receiver};
use serde_json::json;

use crate::support::{context, load, message, runtime, runtime_with};

const PLUGIN: &str = "carillon-fixture-misbehave";

async fn deliver(
    runtime: &Runtime,
    plugin: &Plugin,
    config: serde_json::Value,
) -> Result<Result<Receipt, DeliverError>, CallError> {
    let destination = runtime.destination(plugin, "fixture", config, &[]);
    runtime
        .deliver(plugin, &destination, &context("dlv_1"), &message("limits"))
        .await
}

#[tokio::test]
async fn cpu_budget_obeyed_and_violated() {
    let runtime = runtime(&[]);
    let plugin = load(&runtime, PLUGIN).await;
    let obeyed = deliver(
        &runtime,
        &plugin,
        json!({ "mode": "spin", "iterations": 1_000_000 }),
    )
    .await;
    assert!(matches!(obeyed, Ok(Ok(_))), "{obeyed:?}");
    let violated = deliver(&runtime, &plugin, json!({ "mode": "loop" })).await;
    assert!(
        matches!(violated, Err(CallError::CpuLimit { .. })),
        "{violated:?}"
    );
    // The runtime keeps serving.
    assert!(matches!(
        deliver(&runtime, &plugin, json!({ "mode": "ok" })).await,
        Ok(Ok(_))
    ));
}

#[tokio::test]
async fn memory_limit_obeyed_and_violated() {
    let runtime = runtime(&[]);
    let plugin = load(&runtime, PLUGIN).await;
    let obeyed = deliver(
        &runtime,
        &plugin,
        json!({ "mode": "alloc", "bytes": 8 << 20 }),
    )
    .await;
    assert!(matches!(obeyed, Ok(Ok(_))), "{obeyed:?}");
    let violated = deliver(&runtime, &plugin, json!({ "mode": "alloc-forever" })).await;
    match &violated {
        Err(e @ CallError::MemoryLimit { limit, .. }) => {
            assert_eq!(*limit, 32 << 20);
            assert!(e.is_permanent());
        }
        other => panic!("expected a memory limit error, got {other:?}"),
    }
    let single = deliver(
        &runtime,
        &plugin,
        json!({ "mode": "alloc", "bytes": 48 << 20 }),
    )
    .await;
    assert!(
        matches!(single, Err(CallError::MemoryLimit { .. })),
        "{single:?}"
    );
    assert!(matches!(
        deliver(&runtime, &plugin, json!({ "mode": "ok" })).await,
        Ok(Ok(_))
    ));
}

#[tokio::test]
async fn traps_and_panics_fail_one_call_with_a_readable_error() {
    let runtime = runtime(&[]);
    let plugin = load(&runtime, PLUGIN).await;
    let trapped = deliver(&runtime, &plugin, json!({ "mode": "trap" })).await;
    assert!(
        matches!(trapped, Err(CallError::Trap { .. })),
        "{trapped:?}"
    );
    let panicked = deliver(&runtime, &plugin, json!({ "mode": "panic" })).await;
    match &panicked {
        Err(CallError::Panic { message, .. }) => {
            assert!(message.contains("deliberate panic"), "{message}")
        }
        other => panic!("expected a panic error, got {other:?}"),
    }
    assert!(matches!(
        deliver(&runtime, &plugin, json!({ "mode": "ok" })).await,
        Ok(Ok(_))
    ));
}

#[tokio::test]
async fn ungranted_hosts_are_refused_as_a_typed_answer() {
    let receiver = Receiver::start(None).await;
    let runtime = runtime(&["127.0.0.1/32"]);
    let plugin = load(&runtime, PLUGIN).await;
    // Obeyed: the endpoint field `/url` grants the receiver's host and port.
    let obeyed = deliver(
        &runtime,
        &plugin,
        json!({ "mode": "fetch", "url": receiver.url("/ok") }),
    )
    .await;
    assert!(
        matches!(&obeyed, Ok(Ok(r)) if r.detail.starts_with("200")),
        "{obeyed:?}"
    );
    // Violated: a host the plugin was never granted.
    let violated = deliver(
        &runtime,
        &plugin,
        json!({ "mode": "fetch", "url": receiver.url("/ok"), "fetch_url": "https://forbidden.example/steal" }),
    )
    .await;
    assert!(
        matches!(&violated, Ok(Err(DeliverError::InvalidConfig(r))) if r.contains("forbidden.example") && r.contains("not granted")),
        "{violated:?}"
    );
    assert_eq!(receiver.received().len(), 1);
}

#[tokio::test]
async fn loopback_needs_an_explicit_egress_exception() {
    let receiver = Receiver::start(None).await;
    let config = json!({ "mode": "fetch", "url": receiver.url("/x") });
    let strict = runtime(&[]);
    let plugin = load(&strict, PLUGIN).await;
    let violated = deliver(&strict, &plugin, config.clone()).await;
    assert!(
        matches!(&violated, Ok(Err(DeliverError::InvalidConfig(r))) if r.contains("private address")),
        "{violated:?}"
    );
    let allowed = runtime(&["127.0.0.1/32"]);
    let plugin = load(&allowed, PLUGIN).await;
    assert!(matches!(
        deliver(&allowed, &plugin, config).await,
        Ok(Ok(_))
    ));
    assert_eq!(
        receiver.received().len(),
        1,
        "only the allowed call arrived"
    );
}

#[tokio::test]
async fn oversized_output_obeyed_and_violated() {
    let runtime = runtime(&[]);
    let plugin = load(&runtime, PLUGIN).await;
    let render = |bytes: usize| {
        let destination = runtime.destination(
            &plugin,
            "fixture",
            json!({ "mode": "big", "bytes": bytes }),
            &[],
        );
        let runtime = runtime.clone();
        let plugin = plugin.clone();
        async move {
            runtime
                .render(&plugin, &destination, &context("d"), &message("big"))
                .await
        }
    };
    let obeyed = render(1024).await;
    assert!(
        matches!(&obeyed, Ok(Ok(o)) if o.payload_len() == 1024),
        "{obeyed:?}"
    );
    let violated = render(2 << 20).await;
    assert!(
        matches!(violated, Err(CallError::OutputTooLarge { bytes, limit, .. }) if bytes == 2 << 20 && limit == 1 << 20),
        "{violated:?}"
    );
}

#[tokio::test]
async fn oversized_responses_are_capped() {
    let receiver = Receiver::start(None).await;
    let runtime = runtime(&["127.0.0.1/32"]);
    let plugin = load(&runtime, PLUGIN).await;
    receiver.script([Answer::status(200).body(vec![b'x'; 2 << 20])]);
    let violated = deliver(
        &runtime,
        &plugin,
        json!({ "mode": "fetch", "url": receiver.url("/big") }),
    )
    .await;
    assert!(
        matches!(&violated, Ok(Err(DeliverError::Retryable(r))) if r.contains("larger than")),
        "{violated:?}"
    );
    receiver.script([Answer::status(200).body(vec![b'x'; 1000])]);
    let obeyed = deliver(
        &runtime,
        &plugin,
        json!({ "mode": "fetch", "url": receiver.url("/small") }),
    )
    .await;
    assert!(matches!(obeyed, Ok(Ok(_))), "{obeyed:?}");
}

#[tokio::test]
async fn wall_clock_limit_covers_time_in_host_calls() {
    let receiver = Receiver::start(None).await;
    let runtime = runtime_with(
        &["127.0.0.1/32"],
        Limits {
            wall_time: Duration::from_millis(800),
            ..Limits::default()
        },
    );
    let plugin = load(&runtime, PLUGIN).await;
    receiver.script([Answer::status(200).delay(Duration::from_millis(20))]);
    let obeyed = deliver(
        &runtime,
        &plugin,
        json!({ "mode": "fetch", "url": receiver.url("/a") }),
    )
    .await;
    assert!(matches!(obeyed, Ok(Ok(_))), "{obeyed:?}");
    receiver.script([Answer::status(200).delay(Duration::from_secs(5))]);
    let violated = deliver(
        &runtime,
        &plugin,
        json!({ "mode": "fetch", "url": receiver.url("/b") }),
    )
    .await;
    assert!(
        matches!(violated, Err(CallError::Timeout { .. })),
        "{violated:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_misbehaving_call_does_not_hold_up_a_concurrent_good_one() {
    let runtime = runtime(&[]);
    let plugin = load(&runtime, PLUGIN).await;
    for bad in [
        json!({ "mode": "loop" }),
        json!({ "mode": "alloc-forever" }),
        json!({ "mode": "panic" }),
    ] {
        let (bad_outcome, good) = tokio::join!(deliver(&runtime, &plugin, bad.clone()), async {
            // Start the good call while the bad one is running.
            tokio::time::sleep(Duration::from_millis(20)).await;
            let started = std::time::Instant::now();
            let outcome = deliver(&runtime, &plugin, json!({ "mode": "ok" })).await;
            (outcome, started.elapsed())
        });
        assert!(bad_outcome.is_err(), "{bad}: {bad_outcome:?}");
        assert!(matches!(good.0, Ok(Ok(_))), "{bad}: {:?}", good.0);
    }
}

#[tokio::test]
async fn plugin_logs_are_accepted() {
    let runtime = runtime(&[]);
    let plugin = load(&runtime, PLUGIN).await;
    let outcome = deliver(&runtime, &plugin, json!({ "mode": "log" })).await;
    assert!(matches!(outcome, Ok(Ok(_))), "{outcome:?}");
}
