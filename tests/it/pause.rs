//! A revoked credential is one configuration fault: each vendor's code for
//! it, answered by its fake, is `invalid-config`; the destination pauses
//! (told once), its deliveries wait (never dead-lettered, no attempt used)
//! or go to its fallback when it has one,
//! and they are delivered once an admin resumes it or its config changes.
//! The dispatcher runs on a manual clock (see `support::Pipeline`).

use std::time::Duration;

use carillon::dispatch::retry::RetryPolicy;
use carillon_outbox::{DeliveryId, DeliveryState, StateKind};
use carillon_tests::fakes::{dingtalk, lark, teams, wecom};
use serde_json::{Value, json};

use crate::support::{Pipeline, load, message, runtime};

async fn wait_for(what: &str, done: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "gave up waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The pipeline with the four chat plugins loaded.
async fn pipeline() -> Pipeline {
    let runtime = runtime(&["127.0.0.1/32"]);
    let p = Pipeline::start(
        runtime,
        "carillon-plugin-dingtalk",
        RetryPolicy::default(),
        Duration::from_secs(24 * 3600),
    )
    .await;
    for plugin in [
        "carillon-plugin-wecom",
        "carillon-plugin-teams",
        "carillon-plugin-lark",
    ] {
        p.destinations.set_plugin(load(&p.runtime, plugin).await);
    }
    p
}

/// The last error of a scheduled delivery.
fn last_error(p: &Pipeline, id: &DeliveryId) -> Option<String> {
    match p.outbox.delivery(id).expect("read")?.state {
        DeliveryState::Scheduled(s) => Some(s.last_error),
        _ => None,
    }
}

/// Sends one message to `dest` (whose config the vendor refuses with
/// `code`) and checks the pause, then two more that must wait without
/// reaching the vendor (`sent` counts the vendor's requests). Returns the
/// three waiting deliveries.
async fn paused_with_three_waiting(
    p: &Pipeline,
    dest: &str,
    code: &str,
    sent: &dyn Fn() -> usize,
) -> Vec<DeliveryId> {
    let before = sent();
    let mut ids = p.enqueue(&message("ETL failed"), &[dest]).await;
    wait_for(&format!("{dest} paused"), || {
        p.destinations.pauses().get(dest).is_some()
            && p.state(&ids[0]) == Some(StateKind::Scheduled)
    })
    .await;
    let pause = p.destinations.pauses().get(dest).expect("paused");
    assert!(pause.reason.contains(code), "{dest}: {pause:?}");
    let view = p.outbox.delivery(&ids[0]).expect("read").expect("exists");
    assert_eq!(
        view.attempts, 0,
        "{dest}: a paused delivery uses no attempt"
    );
    let error = last_error(p, &ids[0]).expect("scheduled");
    assert!(
        error.contains("invalid config") && error.contains(code) && error.contains("paused"),
        "{dest}: {error}"
    );
    assert_eq!(sent(), before + 1, "{dest}");

    ids.extend(p.enqueue(&message("second"), &[dest]).await);
    ids.extend(p.enqueue(&message("third"), &[dest]).await);
    wait_for(&format!("{dest}: the next two wait"), || {
        ids[1..]
            .iter()
            .all(|id| last_error(p, id).is_some_and(|e| e.contains("is paused")))
    })
    .await;
    // Looked at again after the wait: still paused, still not sent.
    p.clock.advance(Duration::from_secs(31));
    p.dispatcher.as_ref().expect("running").wake();
    wait_for(&format!("{dest}: looked at again"), || {
        ids.iter().all(|id| {
            p.outbox
                .delivery(id)
                .expect("read")
                .is_some_and(|d| d.history.len() >= 2)
        })
    })
    .await;
    assert_eq!(sent(), before + 1, "{dest}: nothing sent while paused");
    for id in &ids {
        assert_eq!(
            p.state(id),
            Some(StateKind::Scheduled),
            "{dest}: never dead"
        );
    }
    ids
}

/// Waits until every one of `ids` is delivered, advancing the clock.
async fn all_delivered(p: &Pipeline, dest: &str, ids: &[DeliveryId]) {
    p.dispatcher.as_ref().expect("running").wake();
    p.advance_until(Duration::from_secs(5), &format!("{dest} delivered"), || {
        ids.iter()
            .all(|id| p.state(id) == Some(StateKind::Delivered))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_revoked_credential_pauses_its_destination_until_resumed() {
    let p = pipeline().await;
    let ding = dingtalk::Fake::start(dingtalk::Bot::new("tok")).await;
    let wecom = wecom::Fake::start(wecom::Bot::new("key-ok")).await;
    let teams = teams::Fake::start(teams::Hook::workflow("wf1", "s3cr3t")).await;
    let lark = lark::Fake::start(lark::Bot::new("hook-ok")).await;

    // DingTalk 300001: an unknown token; the robot is added back, an admin resumes.
    p.destination(
        "dt-token",
        "dingtalk",
        json!({ "webhook": ding.url("revoked") }),
        vec![],
        None,
    );
    let sent = || ding.requests().len();
    let ids = paused_with_three_waiting(&p, "dt-token", "300001", &sent).await;
    ding.add_bot(dingtalk::Bot::new("revoked"));
    assert!(p.destinations.pauses().resume("dt-token").is_some());
    all_delivered(&p, "dt-token", &ids).await;

    // DingTalk 300005 and 400101, as the robot answers them.
    for (code, msg) in [
        (300005, "token is not exist"),
        (400101, "access_token不存在"),
    ] {
        let dest = format!("dt-{code}");
        p.destination(
            &dest,
            "dingtalk",
            json!({ "webhook": ding.url("tok") }),
            vec![],
            None,
        );
        ding.errcode_next(1, code, msg);
        let ids = paused_with_three_waiting(&p, &dest, &code.to_string(), &sent).await;
        assert!(p.destinations.pauses().resume(&dest).is_some());
        all_delivered(&p, &dest, &ids).await;
    }

    // WeCom 93000.
    p.destination(
        "wecom",
        "wecom",
        json!({ "webhook": wecom.url("revoked") }),
        vec![],
        None,
    );
    let sent = || wecom.requests().len();
    let ids = paused_with_three_waiting(&p, "wecom", "93000", &sent).await;
    wecom.add_bot(wecom::Bot::new("revoked"));
    assert!(p.destinations.pauses().resume("wecom").is_some());
    all_delivered(&p, "wecom", &ids).await;

    // Teams Workflows: 401 (a regenerated `sig`) and 404 (a deleted flow).
    let cases: [(&str, Value, &str, teams::Hook); 2] = [
        (
            "teams-sig",
            json!({ "webhook": teams.workflow_url("wf1", "old") }),
            "DirectApiInvalidAuthorizationSignature",
            teams::Hook::workflow("wf1", "old"),
        ),
        (
            "teams-gone",
            json!({ "webhook": teams.url("gone") }),
            "WorkflowNotFound",
            teams::Hook::workflow("gone", "unknown"),
        ),
    ];
    let sent = || teams.requests().len();
    for (dest, config, code, fixed) in cases {
        p.destination(dest, "teams", config, vec![], None);
        let ids = paused_with_three_waiting(&p, dest, code, &sent).await;
        teams.add_hook(fixed);
        assert!(p.destinations.pauses().resume(dest).is_some());
        all_delivered(&p, dest, &ids).await;
    }

    // Lark 19001 (already invalid-config; now it pauses too).
    p.destination(
        "lark",
        "lark",
        json!({ "webhook": lark.url("revoked") }),
        vec![],
        None,
    );
    let sent = || lark.requests().len();
    let ids = paused_with_three_waiting(&p, "lark", "19001", &sent).await;
    lark.add_bot(lark::Bot::new("revoked"));
    assert!(p.destinations.pauses().resume("lark").is_some());
    all_delivered(&p, "lark", &ids).await;

    p.stop().await;
}

/// A changed config ends the pause without an admin: the new token is
/// tried at the next look.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_config_ends_the_pause() {
    let p = pipeline().await;
    let ding = dingtalk::Fake::start(dingtalk::Bot::new("tok")).await;
    p.destination(
        "dt",
        "dingtalk",
        json!({ "webhook": ding.url("revoked") }),
        vec![],
        None,
    );
    let sent = || ding.requests().len();
    let ids = paused_with_three_waiting(&p, "dt", "300001", &sent).await;
    // The same config again (a plugin reload, say) keeps it paused.
    p.destination(
        "dt",
        "dingtalk",
        json!({ "webhook": ding.url("revoked") }),
        vec![],
        None,
    );
    p.clock.advance(Duration::from_secs(31));
    p.dispatcher.as_ref().expect("running").wake();
    wait_for("looked at again", || {
        ids.iter().all(|id| {
            p.outbox
                .delivery(id)
                .expect("read")
                .is_some_and(|d| d.history.len() >= 3)
        })
    })
    .await;
    assert_eq!(sent(), 1);
    assert!(p.destinations.pauses().get("dt").is_some());
    // The admin configures the right token.
    p.destination(
        "dt",
        "dingtalk",
        json!({ "webhook": ding.url("tok") }),
        vec![],
        None,
    );
    all_delivered(&p, "dt", &ids).await;
    assert!(p.destinations.pauses().get("dt").is_none());
    assert_eq!(ding.delivered().len(), 3);
    p.stop().await;
}

/// With a fallback, a paused destination's messages still page someone:
/// the one that met the revoked token and every later one go to the
/// fallback (the later ones without touching the revoked robot).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_destination_hands_its_messages_to_the_fallback() {
    let p = pipeline().await;
    let ding = dingtalk::Fake::start(dingtalk::Bot::new("tok")).await;
    p.destination(
        "backup",
        "dingtalk",
        json!({ "webhook": ding.url("tok") }),
        vec![],
        None,
    );
    p.destination(
        "dt",
        "dingtalk",
        json!({ "webhook": ding.url("revoked") }),
        vec![],
        Some("backup"),
    );
    let first = p.enqueue(&message("ETL failed"), &["dt"]).await;
    p.advance_until(
        Duration::from_secs(1),
        "the first reaches the fallback",
        || ding.delivered().len() == 1,
    )
    .await;
    assert!(p.destinations.pauses().get("dt").is_some(), "dt is paused");
    assert_eq!(p.state(&first[0]), Some(StateKind::Dead));
    let second = p.enqueue(&message("second"), &["dt"]).await;
    p.dispatcher.as_ref().expect("running").wake();
    p.advance_until(
        Duration::from_secs(1),
        "the second reaches the fallback",
        || ding.delivered().len() == 2,
    )
    .await;
    assert_eq!(p.state(&second[0]), Some(StateKind::Dead));
    assert_eq!(
        ding.requests().len(),
        3,
        "the revoked robot was tried once, then the fallback took both"
    );
    p.stop().await;
}
