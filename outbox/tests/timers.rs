//! The timer engine: arm, disarm, fire and cancel, each with its atomic
//! write, and what a reopen finds (an armed timer survives, a fired one
//! never fires again).

use std::sync::Arc;
use std::time::Duration;

use carillon_outbox::{
    Enqueued, EventId, ManualClock, NewDelivery, NewEvent, NewTimer, Outbox, OutboxConfig,
    TimerEffect, TimerOp, Timestamp,
};

const T0: u64 = 1_700_000_000_000;

fn t(ms: u64) -> Timestamp {
    Timestamp::from_millis(T0 + ms)
}

fn open(dir: &std::path::Path, clock: &Arc<ManualClock>) -> Outbox {
    let mut c = OutboxConfig::new(dir);
    c.clock = clock.clone();
    c.min_free_bytes = 0;
    Outbox::open(c).expect("open")
}

fn ev(body: &str) -> NewEvent {
    NewEvent {
        source: "app".into(),
        idempotency_key: None,
        body: body.as_bytes().to_vec(),
    }
}

fn one_delivery() -> Vec<NewDelivery> {
    vec![NewDelivery {
        destination: "ops".into(),
        payload: b"p".to_vec(),
    }]
}

fn timer(key: &str, deadline: Timestamp) -> NewTimer {
    NewTimer {
        key: key.into(),
        kind: "task.timeout".into(),
        source: "app".into(),
        deadline,
        payload: b"started".to_vec(),
    }
}

fn event_id(e: &Enqueued) -> EventId {
    match e {
        Enqueued::Accepted { event_id, .. } | Enqueued::Duplicate { event_id, .. } => {
            event_id.clone()
        }
    }
}

async fn arm(ob: &Outbox, key: &str, deadline: Timestamp) -> carillon_outbox::TimerId {
    let (_, effect) = ob
        .enqueue_timed(
            ev("started"),
            Vec::new(),
            TimerOp::Arm(timer(key, deadline)),
        )
        .await
        .expect("arm");
    match effect {
        TimerEffect::Armed { id, .. } => id,
        other => panic!("not armed: {other:?}"),
    }
}

#[tokio::test]
async fn an_armed_timer_is_due_at_its_deadline_and_fires_once_with_its_event() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(t(0)));
    let ob = open(dir.path(), &clock);
    let id = arm(&ob, "task:app:1", t(60_000)).await;
    assert_eq!(ob.armed_timers(), 1);
    assert_eq!(ob.next_timer_deadline(), Some(t(60_000)));
    assert!(ob.due_timers(t(59_999), 10).unwrap().is_empty());
    let due = ob.due_timers(t(60_000), 10).unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].id, id);
    assert_eq!(due[0].payload, b"started");
    assert_eq!(due[0].armed_at, t(0));

    clock.set(t(60_000));
    let fired = ob
        .fire_timer(&id, ev("timeout"), one_delivery())
        .await
        .unwrap()
        .expect("fired");
    let view = ob.event(&event_id(&fired)).unwrap().expect("stored");
    assert_eq!(view.body, b"timeout");
    assert_eq!(ob.armed_timers(), 0);
    assert_eq!(ob.next_timer_deadline(), None);
    assert!(ob.timer(&id).unwrap().is_none());
    // Firing again enqueues nothing.
    let again = ob.fire_timer(&id, ev("timeout"), one_delivery()).await;
    assert!(matches!(again, Ok(None)));
    assert_eq!(ob.depth().pending, 1, "one timeout delivery, not two");
}

#[tokio::test]
async fn each_completion_disarms_by_key_and_a_late_one_finds_the_fired_mark() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(t(0)));
    let ob = open(dir.path(), &clock);
    let id = arm(&ob, "task:app:1", t(1_000)).await;
    let disarm = || TimerOp::Disarm {
        key: "task:app:1".into(),
    };
    let (_, effect) = ob
        .enqueue_timed(ev("succeeded"), Vec::new(), disarm())
        .await
        .unwrap();
    assert_eq!(
        effect,
        TimerEffect::Disarmed {
            id: id.clone(),
            deadline: t(1_000)
        }
    );
    assert_eq!(ob.armed_timers(), 0);
    assert!(
        ob.fire_timer(&id, ev("timeout"), Vec::new())
            .await
            .unwrap()
            .is_none(),
        "a disarmed timer never fires"
    );
    let (_, effect) = ob
        .enqueue_timed(ev("again"), Vec::new(), disarm())
        .await
        .unwrap();
    assert_eq!(effect, TimerEffect::NotArmed);

    // Armed, fired, then the completion: late, once.
    let id = arm(&ob, "task:app:1", t(2_000)).await;
    clock.set(t(2_500));
    ob.fire_timer(&id, ev("timeout"), Vec::new())
        .await
        .unwrap()
        .expect("fired");
    let (_, effect) = ob
        .enqueue_timed(ev("late"), Vec::new(), disarm())
        .await
        .unwrap();
    assert_eq!(
        effect,
        TimerEffect::AlreadyFired {
            id,
            fired_at: t(2_500)
        }
    );
    let (_, effect) = ob
        .enqueue_timed(ev("later"), Vec::new(), disarm())
        .await
        .unwrap();
    assert_eq!(effect, TimerEffect::NotArmed, "the fired mark is consumed");
}

#[tokio::test]
async fn arming_a_key_again_replaces_its_timer() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(t(0)));
    let ob = open(dir.path(), &clock);
    let first = arm(&ob, "k", t(5_000)).await;
    let (_, effect) = ob
        .enqueue_timed(ev("again"), Vec::new(), TimerOp::Arm(timer("k", t(9_000))))
        .await
        .unwrap();
    let TimerEffect::Armed { id, replaced } = effect else {
        panic!("{effect:?}")
    };
    assert_eq!(replaced, Some(first.clone()));
    assert_eq!(ob.armed_timers(), 1);
    assert_eq!(ob.next_timer_deadline(), Some(t(9_000)));
    assert!(ob.timer(&first).unwrap().is_none());
    assert!(ob.timer(&id).unwrap().is_some());
}

#[tokio::test]
async fn a_cancelled_timer_never_fires() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(t(0)));
    let ob = open(dir.path(), &clock);
    let id = arm(&ob, "k", t(5_000)).await;
    assert!(ob.cancel_timer(&id).unwrap());
    assert!(!ob.cancel_timer(&id).unwrap());
    assert!(
        ob.fire_timer(&id, ev("timeout"), one_delivery())
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(ob.depth().pending, 0);
}

#[tokio::test]
async fn an_armed_timer_survives_a_reopen_and_a_fired_one_never_fires_again() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(t(0)));
    let (armed, fired) = {
        let ob = open(dir.path(), &clock);
        let armed = arm(&ob, "a", t(10_000)).await;
        let fired = arm(&ob, "b", t(1_000)).await;
        clock.set(t(1_000));
        ob.fire_timer(&fired, ev("timeout"), Vec::new())
            .await
            .unwrap()
            .expect("fired");
        // No close: what an enqueue answered is durable on its own.
        drop(ob);
        (armed, fired)
    };
    let ob = open(dir.path(), &clock);
    assert_eq!(ob.armed_timers(), 1);
    assert_eq!(ob.next_timer_deadline(), Some(t(10_000)));
    assert!(ob.timer(&armed).unwrap().is_some());
    assert!(ob.timer(&fired).unwrap().is_none());
    assert!(
        ob.fire_timer(&fired, ev("timeout"), Vec::new())
            .await
            .unwrap()
            .is_none()
    );
    // The fired mark survived too: a late completion is still told.
    let (_, effect) = ob
        .enqueue_timed(ev("late"), Vec::new(), TimerOp::Disarm { key: "b".into() })
        .await
        .unwrap();
    assert!(matches!(effect, TimerEffect::AlreadyFired { .. }));
    // New ids sort after the stored ones.
    let newer = arm(&ob, "c", t(20_000)).await;
    assert!(newer > armed);
}

#[tokio::test]
async fn a_duplicate_enqueue_arms_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(t(0)));
    let ob = open(dir.path(), &clock);
    let keyed = || NewEvent {
        idempotency_key: Some("k1".into()),
        ..ev("started")
    };
    ob.enqueue_timed(keyed(), Vec::new(), TimerOp::Arm(timer("a", t(1))))
        .await
        .unwrap();
    let (e, effect) = ob
        .enqueue_timed(keyed(), Vec::new(), TimerOp::Arm(timer("a", t(2))))
        .await
        .unwrap();
    assert!(matches!(e, Enqueued::Duplicate { .. }));
    assert_eq!(effect, TimerEffect::None);
    assert_eq!(ob.next_timer_deadline(), Some(t(1)));
}

#[tokio::test]
async fn listing_pages_and_filters_and_old_fired_marks_are_purged() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(t(0)));
    let ob = open(dir.path(), &clock);
    for i in 0..5u64 {
        arm(&ob, &format!("k{i}"), t(1_000 * (i + 1))).await;
    }
    let (page, next) = ob.timers_page(None, 2, |_| true).unwrap();
    assert_eq!(page.len(), 2);
    let (rest, last) = ob.timers_page(next.as_ref(), 10, |_| true).unwrap();
    assert_eq!(rest.len(), 3);
    assert!(last.is_none());
    let (only, _) = ob.timers_page(None, 10, |t| t.key == "k3").unwrap();
    assert_eq!(only.len(), 1);

    let due = ob.due_timers(t(2_000), 10).unwrap();
    clock.set(t(2_000));
    for timer in due {
        ob.fire_timer(&timer.id, ev("timeout"), Vec::new())
            .await
            .unwrap();
    }
    clock.advance(Duration::from_secs(60));
    assert_eq!(ob.purge_fired_timers(t(2_001)).unwrap(), 2);
    let (_, effect) = ob
        .enqueue_timed(ev("late"), Vec::new(), TimerOp::Disarm { key: "k0".into() })
        .await
        .unwrap();
    assert_eq!(effect, TimerEffect::NotArmed);
}

#[tokio::test]
async fn an_enqueue_arms_several_timers_with_its_event_and_a_duplicate_arms_none() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(t(0)));
    let ob = open(dir.path(), &clock);
    arm(&ob, "task:app:1", t(60_000)).await;
    // A completion disarms its task's timer and arms two digests, in one
    // write; the answer is the disarm's.
    let mut completion = ev("done");
    completion.idempotency_key = Some("k1".into());
    let (_, effect) = ob
        .enqueue_arming(
            completion.clone(),
            one_delivery(),
            TimerOp::Disarm {
                key: "task:app:1".into(),
            },
            vec![timer("quota:a", t(10_000)), timer("quota:b", t(20_000))],
        )
        .await
        .expect("enqueue");
    assert!(matches!(effect, TimerEffect::Disarmed { .. }), "{effect:?}");
    assert_eq!(ob.armed_timers(), 2);
    assert_eq!(ob.next_timer_deadline(), Some(t(10_000)));
    // Arming a key again replaces its timer; a duplicate writes nothing.
    let (_, effect) = ob
        .enqueue_arming(
            completion,
            Vec::new(),
            TimerOp::None,
            vec![timer("quota:c", t(5_000))],
        )
        .await
        .expect("duplicate");
    assert_eq!(effect, TimerEffect::None);
    assert_eq!(ob.armed_timers(), 2, "a duplicate arms nothing");
    ob.enqueue_arming(
        ev("again"),
        Vec::new(),
        TimerOp::None,
        vec![timer("quota:a", t(30_000))],
    )
    .await
    .expect("re-arm");
    assert_eq!(ob.armed_timers(), 2, "the key's timer was replaced");
    assert_eq!(ob.next_timer_deadline(), Some(t(20_000)));
    // Both survive a reopen.
    drop(ob);
    let ob = open(dir.path(), &clock);
    assert_eq!(ob.armed_timers(), 2);
    clock.set(t(40_000));
    let due = ob.due_timers(t(40_000), 10).expect("due");
    let mut keys: Vec<&str> = due.iter().map(|t| t.key.as_str()).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["quota:a", "quota:b"]);
}
