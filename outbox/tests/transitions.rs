//! One test per transition and per rule of the outbox: claims, outcomes,
//! leases, idempotency, backpressure, fallback chains, requeue, purge and
//! migration. Time is a `ManualClock` and explicit `now` arguments.

use std::sync::Arc;
use std::time::Duration;

use carillon_outbox::{
    AttemptOutcome, Completion, DeliveryState, EnqueueError, Enqueued, ManualClock, NewDelivery,
    NewEvent, OpenError, Outbox, OutboxConfig, Outcome, Requeue, StateKind, Timestamp,
};

const T0: u64 = 1_700_000_000_000;
const LEASE: Duration = Duration::from_secs(30);

fn t(ms: u64) -> Timestamp {
    Timestamp::from_millis(T0 + ms)
}

fn open_with(
    dir: &std::path::Path,
    clock: &Arc<ManualClock>,
    f: impl FnOnce(&mut OutboxConfig),
) -> Outbox {
    let mut c = OutboxConfig::new(dir);
    c.clock = clock.clone();
    f(&mut c);
    Outbox::open(c).expect("open")
}

/// Opens the database behind a dropped outbox. sled releases its file lock
/// only when its flusher thread ends, a moment after the last handle is
/// dropped, so a reopen at once can find the lock still held (the outbox's
/// own open waits the same way).
fn open_sled(dir: &std::path::Path) -> sled::Db {
    let started = std::time::Instant::now();
    loop {
        match sled::open(dir) {
            Err(sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock")
                    && started.elapsed() < Duration::from_secs(5) =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            other => return other.expect("sled"),
        }
    }
}

fn setup() -> (tempfile::TempDir, Arc<ManualClock>, Outbox) {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(t(0)));
    let ob = open_with(dir.path(), &clock, |_| {});
    (dir, clock, ob)
}

fn ev(key: Option<&str>) -> NewEvent {
    NewEvent {
        source: "app".into(),
        idempotency_key: key.map(Into::into),
        body: b"{\"type\":\"x\"}".to_vec(),
    }
}

fn to(dest: &str) -> NewDelivery {
    NewDelivery {
        destination: dest.into(),
        payload: format!("payload for {dest}").into_bytes(),
    }
}

async fn accept(
    ob: &Outbox,
    dests: &[&str],
) -> (carillon_outbox::EventId, Vec<carillon_outbox::DeliveryId>) {
    match ob
        .enqueue(ev(None), dests.iter().map(|d| to(d)).collect())
        .await
        .expect("enqueue")
    {
        Enqueued::Accepted {
            event_id,
            deliveries,
        } => (event_id, deliveries.into_iter().map(|(_, id)| id).collect()),
        other => panic!("expected Accepted, got {other:?}"),
    }
}

fn state(ob: &Outbox, id: &carillon_outbox::DeliveryId) -> DeliveryState {
    ob.delivery(id).expect("read").expect("exists").state
}

#[tokio::test]
async fn enqueue_then_claim_then_deliver() {
    let (_d, _c, ob) = setup();
    let (eid, ids) = accept(&ob, &["a", "b"]).await;
    assert_eq!(ob.depth().pending, 2);
    assert_eq!(ob.next_due().expect("next"), Some(t(0)));

    let claims = ob.claim_due(t(0), 10, "w1", LEASE).expect("claim");
    assert_eq!(claims.len(), 2);
    assert_eq!(claims[0].delivery_id, ids[0]);
    assert_eq!(claims[0].event_id, eid);
    assert_eq!(claims[0].attempt, 1);
    assert_eq!(claims[0].payload, b"payload for a");
    assert!(
        matches!(state(&ob, &ids[0]), DeliveryState::Claimed(c) if c.owner == "w1" && c.lease_until == t(30_000))
    );
    assert_eq!(
        ob.next_due().expect("next"),
        Some(t(30_000)),
        "lease expiry is next"
    );
    assert!(
        ob.claim_due(t(1), 10, "w2", LEASE)
            .expect("claim")
            .is_empty(),
        "leased"
    );

    let c = ob
        .complete(
            &claims[0],
            Outcome::Delivered {
                detail: "200 OK".into(),
                remote_id: None,
            },
            t(5),
        )
        .expect("complete");
    assert_eq!(c, Completion::Delivered);
    let view = ob.delivery(&ids[0]).expect("read").expect("exists");
    assert!(
        matches!(view.state, DeliveryState::Delivered(ref d) if d.detail == "200 OK" && d.at == t(5))
    );
    assert_eq!(view.attempts, 1);
    assert_eq!(view.history.len(), 1);
    assert_eq!(
        view.history[0].outcome,
        AttemptOutcome::Delivered {
            detail: "200 OK".into(),
            remote_id: None,
        }
    );
    let depth = ob.depth();
    assert_eq!((depth.claimed, depth.delivered), (1, 1));

    let event = ob.event(&eid).expect("read").expect("exists");
    assert_eq!(event.body, b"{\"type\":\"x\"}");
    assert_eq!(event.deliveries.len(), 2);
}

/// The delivering attempt is not logged (a write saved per message) but
/// shown from the delivered state; a database written before that change,
/// which logged it, shows it once too, and purge counts it once either way.
/// The rewritten record is schema 4's (JSON, indexed), which the open
/// migrates to 5 and reads beside schema 5's compact records.
#[tokio::test]
async fn the_delivering_attempt_shows_once_whether_or_not_it_was_logged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(t(0)));
    let (ids, event) = {
        let ob = open_with(dir.path(), &clock, |_| {});
        let (_, ids) = accept(&ob, &["a", "b"]).await;
        let claims = ob.claim_due(t(0), 10, "w", LEASE).expect("claim");
        let retry = claims.iter().find(|c| c.delivery_id == ids[1]).expect("b");
        ob.complete(
            retry,
            Outcome::Retry {
                at: t(10),
                error: "HTTP 503".into(),
                counts_as_attempt: true,
            },
            t(5),
        )
        .expect("retry");
        for c in &claims {
            if c.delivery_id == ids[0] {
                ob.complete(
                    c,
                    Outcome::Delivered {
                        detail: "200".into(),
                        remote_id: None,
                    },
                    t(5),
                )
                .expect("deliver");
            }
        }
        let again = ob.claim_due(t(10), 10, "w", LEASE).expect("claim");
        ob.complete(
            &again[0],
            Outcome::Delivered {
                detail: "201".into(),
                remote_id: None,
            },
            t(12),
        )
        .expect("deliver");
        for (id, want) in [(&ids[0], vec!["200"]), (&ids[1], vec!["HTTP 503", "201"])] {
            let view = ob.delivery(id).expect("read").expect("exists");
            let got: Vec<String> = view
                .history
                .iter()
                .map(|a| match &a.outcome {
                    AttemptOutcome::Delivered { detail, .. } => detail.clone(),
                    AttemptOutcome::Retry { error, .. } => error.clone(),
                    AttemptOutcome::Dead { error, .. } => error.clone(),
                })
                .collect();
            assert_eq!(got, want);
            let seqs: Vec<u32> = view.history.iter().map(|a| a.seq).collect();
            assert_eq!(
                seqs,
                (0..u32::try_from(want.len()).expect("small")).collect::<Vec<_>>()
            );
            assert_eq!(
                view.history.last().map(|a| a.at),
                Some(if want.len() == 1 { t(5) } else { t(12) })
            );
        }
        let event = ob.delivery(&ids[0]).expect("read").expect("exists");
        (ids, event.event_id)
    };
    // Rewrite the first delivery as a schema-4 release stored it: a JSON
    // record, an entry in the purge index, and the delivering attempt in
    // the log as well (releases before schema 4 logged it).
    {
        let db = open_sled(dir.path());
        let deliveries = db.open_tree("deliveries").expect("tree");
        let key = ids[0].as_str().as_bytes();
        let compact = deliveries.get(key).expect("get").expect("exists");
        assert_ne!(compact.first(), Some(&b'{'), "schema 5 wrote it compact");
        let rec = serde_json::json!({
            "v": 1, "event_id": event.as_str(), "destination": "a", "created_at": T0,
            "attempts": 1, "log_len": 1, "claims": 0, "fallback_of": null, "fallback_to": null,
            "state": { "state": "delivered", "at": T0 + 5, "detail": "200" },
        });
        deliveries
            .insert(key, serde_json::to_vec(&rec).expect("json"))
            .expect("insert");
        let mut index_key = (T0 + 5).to_be_bytes().to_vec();
        index_key.extend_from_slice(key);
        db.open_tree("delivered")
            .expect("tree")
            .insert(index_key, &[][..])
            .expect("insert");
        db.open_tree("meta")
            .expect("tree")
            .insert("schema_version", &4u32.to_be_bytes())
            .expect("insert");
        let mut akey = key.to_vec();
        akey.extend_from_slice(&0u32.to_be_bytes());
        let attempt = serde_json::json!({
            "v": 1, "at": T0 + 5, "counted": true,
            "outcome": { "outcome": "delivered", "detail": "200" },
        });
        db.open_tree("attempts")
            .expect("tree")
            .insert(akey, serde_json::to_vec(&attempt).expect("json"))
            .expect("insert");
        db.flush().expect("flush");
    }
    let ob = open_with(dir.path(), &clock, |_| {});
    let view = ob.delivery(&ids[0]).expect("read").expect("exists");
    assert_eq!(view.history.len(), 1, "{:#?}", view.history);
    let r = ob
        .purge_delivered(t(100), Duration::from_millis(1))
        .expect("purge");
    assert_eq!((r.deliveries, r.attempts, r.events), (2, 3, 1));
}

#[tokio::test]
async fn retry_schedules_and_becomes_due_again() {
    let (_d, _c, ob) = setup();
    let (_, ids) = accept(&ob, &["a"]).await;
    let claim = ob.claim_due(t(0), 1, "w", LEASE).expect("claim").remove(0);
    let c = ob
        .complete(
            &claim,
            Outcome::Retry {
                at: t(1000),
                error: "503".into(),
                counts_as_attempt: true,
            },
            t(1),
        )
        .expect("complete");
    assert_eq!(c, Completion::Scheduled { due: t(1000) });
    assert!(matches!(state(&ob, &ids[0]), DeliveryState::Scheduled(ref s) if s.due == t(1000)));
    assert!(
        ob.claim_due(t(999), 1, "w", LEASE)
            .expect("claim")
            .is_empty()
    );
    let again = ob.claim_due(t(1000), 1, "w", LEASE).expect("claim");
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempt, 2);
}

#[tokio::test]
async fn rate_limited_retry_does_not_count() {
    let (_d, _c, ob) = setup();
    let (_, ids) = accept(&ob, &["a"]).await;
    let claim = ob.claim_due(t(0), 1, "w", LEASE).expect("claim").remove(0);
    ob.complete(
        &claim,
        Outcome::Retry {
            at: t(10),
            error: "429".into(),
            counts_as_attempt: false,
        },
        t(1),
    )
    .expect("complete");
    let view = ob.delivery(&ids[0]).expect("read").expect("exists");
    assert_eq!(view.attempts, 0);
    assert_eq!(view.history.len(), 1);
    assert!(!view.history[0].counted);
    assert_eq!(
        ob.claim_due(t(10), 1, "w", LEASE).expect("claim")[0].attempt,
        1
    );
}

#[tokio::test]
async fn expired_lease_is_claimable_and_old_owner_is_refused() {
    let (_d, _c, ob) = setup();
    let (_, ids) = accept(&ob, &["a"]).await;
    let first = ob
        .claim_due(t(0), 1, "dead-worker", LEASE)
        .expect("claim")
        .remove(0);
    let second = ob
        .claim_due(t(30_000), 1, "w2", LEASE)
        .expect("claim")
        .remove(0);
    assert_eq!(second.delivery_id, ids[0]);
    assert!(second.token > first.token);
    let refused = ob
        .complete(
            &first,
            Outcome::Delivered {
                detail: "late".into(),
                remote_id: None,
            },
            t(30_001),
        )
        .expect("complete");
    assert_eq!(
        refused,
        Completion::LeaseLost {
            current: Some(StateKind::Claimed)
        }
    );
    assert!(matches!(state(&ob, &ids[0]), DeliveryState::Claimed(ref c) if c.owner == "w2"));
    assert_eq!(
        ob.delivery(&ids[0])
            .expect("read")
            .expect("exists")
            .history
            .len(),
        0
    );
    assert_eq!(
        ob.complete(
            &second,
            Outcome::Delivered {
                detail: "ok".into(),
                remote_id: None,
            },
            t(30_002)
        )
        .expect("complete"),
        Completion::Delivered
    );
    // Completing twice is refused too.
    assert_eq!(
        ob.complete(
            &second,
            Outcome::Delivered {
                detail: "ok".into(),
                remote_id: None,
            },
            t(30_003)
        )
        .expect("complete"),
        Completion::LeaseLost {
            current: Some(StateKind::Delivered)
        }
    );
}

#[tokio::test]
async fn expired_but_unclaimed_lease_still_completes() {
    let (_d, _c, ob) = setup();
    accept(&ob, &["a"]).await;
    let claim = ob.claim_due(t(0), 1, "w", LEASE).expect("claim").remove(0);
    let c = ob
        .complete(
            &claim,
            Outcome::Delivered {
                detail: String::new(),
                remote_id: None,
            },
            t(60_000),
        )
        .expect("complete");
    assert_eq!(c, Completion::Delivered);
}

#[tokio::test]
async fn dead_with_fallback_records_the_chain_on_both() {
    let (_d, _c, ob) = setup();
    let (eid, ids) = accept(&ob, &["primary"]).await;
    let claim = ob.claim_due(t(0), 1, "w", LEASE).expect("claim").remove(0);
    let c = ob
        .complete(
            &claim,
            Outcome::Dead {
                error: "410 gone".into(),
                fallback: Some("backup".into()),
            },
            t(2),
        )
        .expect("complete");
    let Completion::Dead {
        fallback: Some(fid),
    } = c
    else {
        panic!("expected a fallback, got {c:?}")
    };
    let dead = ob.delivery(&ids[0]).expect("read").expect("exists");
    let fb = ob.delivery(&fid).expect("read").expect("exists");
    assert!(matches!(dead.state, DeliveryState::Dead(ref d) if d.error == "410 gone"));
    assert_eq!(dead.fallback_to.as_ref(), Some(&fid));
    assert_eq!(fb.fallback_of.as_ref(), Some(&ids[0]));
    assert_eq!(fb.destination, "backup");
    assert!(matches!(fb.state, DeliveryState::Pending(ref p) if p.due == t(2)));
    assert_eq!(
        dead.history[0].outcome,
        AttemptOutcome::Dead {
            error: "410 gone".into(),
            fallback_to: Some(fid.clone())
        }
    );
    let next = ob.claim_due(t(2), 5, "w", LEASE).expect("claim");
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].payload, b"payload for primary");
    assert_eq!(next[0].event_id, eid);
    assert_eq!(
        ob.event(&eid)
            .expect("read")
            .expect("exists")
            .deliveries
            .len(),
        2
    );

    let page = ob.dead_letters(Some("primary"), None, 10).expect("list");
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].fallback_to.as_ref(), Some(&fid));
    assert!(
        ob.dead_letters(Some("backup"), None, 10)
            .expect("list")
            .items
            .is_empty()
    );
}

#[tokio::test]
async fn dead_without_fallback_and_requeue() {
    let (_d, _c, ob) = setup();
    let (_, ids) = accept(&ob, &["a", "a", "b"]).await;
    for claim in ob.claim_due(t(0), 10, "w", LEASE).expect("claim") {
        ob.complete(
            &claim,
            Outcome::Dead {
                error: "bad".into(),
                fallback: None,
            },
            t(1),
        )
        .expect("complete");
    }
    assert_eq!(ob.depth().dead, 3);
    assert_eq!(ob.next_due().expect("next"), None);

    // Pagination by cursor over all dead letters.
    let p1 = ob.dead_letters(None, None, 2).expect("list");
    assert_eq!(p1.items.len(), 2);
    let cursor = p1.next.expect("more");
    let cursor = carillon_outbox::DeadCursor::from_token(&cursor.to_token()).expect("token");
    let p2 = ob.dead_letters(None, Some(&cursor), 2).expect("list");
    assert_eq!(p2.items.len(), 1);
    assert_eq!(p2.next, None);
    assert_eq!(p2.items[0].destination, "b");

    assert_eq!(
        ob.requeue_dead(&ids[2], t(5)).expect("requeue"),
        Requeue::Requeued
    );
    assert_eq!(
        ob.requeue_dead(&ids[2], t(5)).expect("requeue"),
        Requeue::NotDead(StateKind::Pending)
    );
    let view = ob.delivery(&ids[2]).expect("read").expect("exists");
    assert_eq!(view.attempts, 0, "requeue resets the attempt count");
    assert_eq!(view.history.len(), 1, "history is kept");
    assert_eq!(ob.requeue_dead_destination("a", t(6)).expect("requeue"), 2);
    assert_eq!(ob.depth().dead, 0);
    assert_eq!(ob.depth().pending, 3);
    assert_eq!(ob.claim_due(t(6), 10, "w", LEASE).expect("claim").len(), 3);
}

#[tokio::test]
async fn idempotency_window_and_expiry() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(t(0)));
    let ob = open_with(dir.path(), &clock, |c| {
        c.idempotency_window = Duration::from_secs(60)
    });
    let first = ob
        .enqueue(ev(Some("k1")), vec![to("a")])
        .await
        .expect("enqueue");
    let Enqueued::Accepted {
        event_id,
        deliveries,
    } = first
    else {
        panic!("accepted")
    };
    clock.set(t(59_999));
    let dup = ob
        .enqueue(ev(Some("k1")), vec![to("a"), to("b")])
        .await
        .expect("enqueue");
    assert_eq!(
        dup,
        Enqueued::Duplicate {
            event_id: event_id.clone(),
            deliveries
        }
    );
    // Another source with the same key is a different event.
    let other = NewEvent {
        source: "other".into(),
        ..ev(Some("k1"))
    };
    assert!(matches!(
        ob.enqueue(other, vec![to("a")]).await.expect("enqueue"),
        Enqueued::Accepted { .. }
    ));
    clock.set(t(60_000));
    let again = ob
        .enqueue(ev(Some("k1")), vec![to("a")])
        .await
        .expect("enqueue");
    assert!(matches!(again, Enqueued::Accepted { event_id: ref e, .. } if *e != event_id));
    // Purge removes only expired entries.
    clock.set(t(120_000));
    assert_eq!(
        ob.purge_idempotency(t(119_999)).expect("purge"),
        1,
        "the 'other' entry"
    );
    assert_eq!(ob.purge_idempotency(t(120_000)).expect("purge"), 1);
}

#[tokio::test]
async fn backpressure_refuses_without_writing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(t(0)));
    let ob = open_with(dir.path(), &clock, |c| {
        c.max_pending = 3;
        c.backpressure_retry_after = Duration::from_secs(7);
    });
    accept(&ob, &["a", "b"]).await;
    let err = ob
        .enqueue(ev(None), vec![to("a"), to("b")])
        .await
        .expect_err("full");
    assert!(
        matches!(err, EnqueueError::Backpressure { retry_after } if retry_after == Duration::from_secs(7))
    );
    assert_eq!(ob.depth().pending, 2);
    // Finishing a delivery makes room.
    let claim = ob.claim_due(t(0), 1, "w", LEASE).expect("claim").remove(0);
    ob.complete(
        &claim,
        Outcome::Delivered {
            detail: String::new(),
            remote_id: None,
        },
        t(1),
    )
    .expect("complete");
    accept(&ob, &["a", "b"]).await;
}

#[tokio::test]
async fn nul_bytes_are_refused() {
    let (_d, _c, ob) = setup();
    let err = ob
        .enqueue(ev(None), vec![to("a\0b")])
        .await
        .expect_err("invalid");
    assert!(matches!(
        err,
        EnqueueError::Invalid {
            field: "destination",
            ..
        }
    ));
}

#[tokio::test]
async fn purge_removes_old_delivered_records_and_empty_events() {
    let (_d, _c, ob) = setup();
    let (e1, ids1) = accept(&ob, &["a"]).await;
    let (e2, ids2) = accept(&ob, &["a", "b"]).await;
    let claims = ob.claim_due(t(0), 10, "w", LEASE).expect("claim");
    for (i, c) in claims.iter().enumerate() {
        if c.delivery_id == ids2[1] {
            continue; // stays claimed: its event must survive
        }
        ob.complete(
            c,
            Outcome::Delivered {
                detail: format!("{i}"),
                remote_id: None,
            },
            t(100),
        )
        .expect("complete");
    }
    let none = ob
        .purge_delivered(t(100), Duration::from_millis(1))
        .expect("purge");
    assert_eq!(none.deliveries, 0, "not old enough");
    let r = ob
        .purge_delivered(t(200), Duration::from_millis(50))
        .expect("purge");
    assert_eq!((r.deliveries, r.attempts, r.events), (2, 2, 1));
    assert!(ob.event(&e1).expect("read").is_none());
    assert!(ob.delivery(&ids1[0]).expect("read").is_none());
    let e2v = ob.event(&e2).expect("read").expect("kept");
    assert_eq!(e2v.deliveries.len(), 1);
    assert_eq!(ob.depth().delivered, 0);
}

/// Releases before leases moved into memory stored them in the record
/// (`claimed`, indexed at the lease's expiry). Opening such a database ends
/// them: the process that held them is gone.
#[tokio::test]
async fn a_lease_stored_by_an_earlier_release_is_voided_at_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(t(0)));
    let (eid, id) = {
        let ob = open_with(dir.path(), &clock, |_| {});
        let (eid, mut ids) = accept(&ob, &["a"]).await;
        (eid, ids.remove(0))
    };
    {
        let db = open_sled(dir.path());
        let deliveries = db.open_tree("deliveries").expect("tree");
        let key = id.as_str().as_bytes();
        assert!(
            deliveries.get(key).expect("get").is_none(),
            "an untouched delivery has no record of its own"
        );
        // Every delivery had its record in those releases.
        let until = T0 + 60_000;
        let rec = serde_json::json!({
            "v": 1, "event_id": eid.as_str(), "destination": "a", "created_at": T0,
            "attempts": 0, "log_len": 0, "claims": 3, "fallback_of": null, "fallback_to": null,
            "state": { "state": "claimed", "owner": "old", "lease_until": until, "token": 3 },
        });
        deliveries
            .insert(key, serde_json::to_vec(&rec).expect("json"))
            .expect("insert");
        // Those releases wrote schema 2, with a stored due index.
        db.open_tree("meta")
            .expect("tree")
            .insert("schema_version", &2u32.to_be_bytes())
            .expect("insert");
        let due = db.open_tree("due").expect("tree");
        let time_key = |ms: u64| [&ms.to_be_bytes()[..], key].concat();
        due.insert(time_key(until), &[][..]).expect("insert");
        db.flush().expect("flush");
    }
    clock.advance(Duration::from_millis(10));
    let ob = open_with(dir.path(), &clock, |_| {});
    assert_eq!((ob.depth().pending, ob.depth().claimed), (1, 0));
    assert!(matches!(state(&ob, &id), DeliveryState::Pending(p) if p.due == t(10)));
    assert_eq!(ob.next_due().expect("next"), Some(t(10)));
    let claims = ob.claim_due(t(10), 5, "w", LEASE).expect("claim");
    assert_eq!(claims.len(), 1);
    assert_eq!(claims[0].delivery_id, id);
}

#[tokio::test]
async fn reopen_keeps_everything_and_voids_leases() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(t(0)));
    let ob = open_with(dir.path(), &clock, |_| {});
    let (eid, ids) = accept(&ob, &["a", "b"]).await;
    let claim = ob.claim_due(t(0), 1, "w", LEASE).expect("claim").remove(0);
    assert_eq!(ob.depth().claimed, 1);
    drop(ob);
    let ob = open_with(dir.path(), &clock, |_| {});
    // Leases live in memory: the restart ended it, and the delivery is due
    // again at once, at its own due time.
    assert_eq!((ob.depth().pending, ob.depth().claimed), (2, 0));
    assert_eq!(
        ob.event(&eid)
            .expect("read")
            .expect("exists")
            .deliveries
            .len(),
        2
    );
    assert_eq!(ob.next_due().expect("next"), Some(t(0)));
    // The dead process's answer is refused...
    assert_eq!(
        ob.complete(
            &claim,
            Outcome::Delivered {
                detail: String::new(),
                remote_id: None,
            },
            t(1)
        )
        .expect("complete"),
        Completion::LeaseLost {
            current: Some(StateKind::Pending)
        }
    );
    // ...and the delivery is claimed again, under a newer token.
    let again = ob.claim_due(t(1), 2, "w", LEASE).expect("claim");
    assert_eq!(again.len(), 2);
    let retaken = again
        .iter()
        .find(|c| c.delivery_id == claim.delivery_id)
        .expect("claimed again");
    assert!(retaken.token > claim.token);
    assert!(matches!(state(&ob, &ids[1]), DeliveryState::Claimed(_)));
}

/// Enqueue does not look before it inserts: after a restart with the clock
/// set back, new ids still start above every stored one, so nothing is
/// overwritten.
#[tokio::test]
async fn ids_after_a_restart_with_the_clock_set_back_name_no_stored_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(t(60_000)));
    let ob = open_with(dir.path(), &clock, |_| {});
    let (first_event, first) = accept(&ob, &["a", "b"]).await;
    drop(ob);
    clock.set(t(0));
    let ob = open_with(dir.path(), &clock, |_| {});
    let (event, ids) = accept(&ob, &["a"]).await;
    assert!(event > first_event, "{event} after {first_event}");
    assert!(ids[0] > first[1], "{} after {}", ids[0], first[1]);
    assert_eq!(ob.depth().pending, 3);
    for (id, due) in [(&first[0], 60_000), (&first[1], 60_000), (&ids[0], 0)] {
        assert!(
            matches!(state(&ob, id), DeliveryState::Pending(ref p) if p.due == t(due)),
            "{id}"
        );
    }
    assert_eq!(
        ob.event(&first_event)
            .expect("read")
            .expect("exists")
            .deliveries
            .len(),
        2
    );
}

#[test]
fn migrates_a_v0_fixture() {
    let dir = tempfile::tempdir().expect("tempdir");
    let eid = "evt_01HF00000000000000000000AA";
    let did = "dlv_01HF00000000000000000000AB";
    {
        let db = open_sled(dir.path());
        db.open_tree("meta")
            .expect("tree")
            .insert("schema_version", &0u32.to_be_bytes())
            .expect("insert");
        let ev = serde_json::json!({
            "source": "app", "idempotency_key": "k", "received_at": T0,
            "body": [1, 2, 3], "deliveries": [{"destination": "a", "id": did}],
        });
        let dl = serde_json::json!({
            "event_id": eid, "destination": "a", "created_at": T0, "due": T0 + 5,
            "attempts": 2, "payload": [9, 8],
        });
        db.open_tree("events")
            .expect("tree")
            .insert(eid, serde_json::to_vec(&ev).expect("json"))
            .expect("insert");
        db.open_tree("deliveries")
            .expect("tree")
            .insert(did, serde_json::to_vec(&dl).expect("json"))
            .expect("insert");
        db.open_tree("idempotency")
            .expect("tree")
            .insert(b"app\0k", eid.as_bytes())
            .expect("insert");
        db.flush().expect("flush");
    }
    let clock = Arc::new(ManualClock::new(t(10)));
    let ob = open_with(dir.path(), &clock, |_| {});
    let eid = carillon_outbox::EventId::parse(eid).expect("id");
    let view = ob.event(&eid).expect("read").expect("migrated");
    assert_eq!(view.body, vec![1, 2, 3]);
    assert_eq!(view.deliveries[0].attempts, 2);
    assert_eq!(ob.next_due().expect("next"), Some(t(5)));
    let claims = ob.claim_due(t(10), 10, "w", LEASE).expect("claim");
    assert_eq!(claims[0].payload, vec![9, 8]);
    assert_eq!(claims[0].attempt, 3);
    drop(ob);
    let ob = open_with(dir.path(), &clock, |_| {});
    // Leases end with the process; the delivery is as the migration left it.
    assert_eq!(
        (ob.depth().pending, ob.depth().claimed),
        (1, 0),
        "migration runs once"
    );
}

#[test]
fn migrates_a_v1_fixture() {
    let dir = tempfile::tempdir().expect("tempdir");
    let eid = "evt_01HF00000000000000000000AA";
    let did = "dlv_01HF00000000000000000000AB";
    let gone = "dlv_01HF00000000000000000000AC";
    {
        let db = open_sled(dir.path());
        let tree = |n: &str| db.open_tree(n).expect("tree");
        tree("meta")
            .insert("schema_version", &1u32.to_be_bytes())
            .expect("insert");
        let ev = serde_json::json!({
            "v": 1, "source": "app", "idempotency_key": "k", "received_at": T0,
            "deliveries": [{"destination": "a", "id": did}, {"destination": "b", "id": gone}],
        });
        let dl = serde_json::json!({
            "v": 1, "event_id": eid, "destination": "a", "created_at": T0, "attempts": 1,
            "log_len": 0, "claims": 1, "fallback_of": null, "fallback_to": null,
            "state": {"state": "pending", "due": T0 + 5},
        });
        tree("events")
            .insert(eid, serde_json::to_vec(&ev).expect("json"))
            .expect("insert");
        tree("deliveries")
            .insert(did, serde_json::to_vec(&dl).expect("json"))
            .expect("insert");
        let mut due = (T0 + 5).to_be_bytes().to_vec();
        due.extend_from_slice(did.as_bytes());
        tree("due").insert(due, &[][..]).expect("insert");
        tree("bodies")
            .insert(eid, &[1u8, 2, 3][..])
            .expect("insert");
        tree("bodies").insert(did, &[9u8, 8][..]).expect("insert");
        db.flush().expect("flush");
    }
    let clock = Arc::new(ManualClock::new(t(10)));
    let ob = open_with(dir.path(), &clock, |_| {});
    let eid = carillon_outbox::EventId::parse(eid).expect("id");
    let view = ob.event(&eid).expect("read").expect("migrated");
    assert_eq!(view.body, vec![1, 2, 3]);
    assert_eq!(
        view.deliveries.len(),
        1,
        "the purged delivery has no record"
    );
    let claims = ob.claim_due(t(10), 10, "w", LEASE).expect("claim");
    assert_eq!(claims[0].payload, vec![9, 8]);
    assert_eq!(claims[0].attempt, 2);
    drop(ob);
    {
        let db = open_sled(dir.path());
        assert!(
            db.open_tree("bodies").expect("tree").is_empty(),
            "blobs moved"
        );
        let v = db
            .open_tree("meta")
            .expect("tree")
            .get("schema_version")
            .expect("get");
        assert_eq!(v.as_deref(), Some(&5u32.to_be_bytes()[..]));
        let names = db.tree_names();
        for gone in ["due", "idempotency"] {
            assert!(
                !names.iter().any(|n| n.as_ref() == gone.as_bytes()),
                "schema 3 keeps no {gone} tree"
            );
        }
        // Schema 4: the open looks for deliveries without a record only
        // past the last migrated event: the purged one above must not read
        // as a delivery still to make (the views below check that).
        let horizon = db
            .open_tree("meta")
            .expect("tree")
            .get("untouched_from")
            .expect("get")
            .expect("set by the migration");
        assert_eq!(horizon.len(), 16, "a u128 event id");
    }
    let ob = open_with(dir.path(), &clock, |_| {});
    // Leases end with the process; the delivery is as the migration left it.
    assert_eq!(
        (ob.depth().pending, ob.depth().claimed),
        (1, 0),
        "migration runs once"
    );
}

/// A key accepted by a v0 release is still a duplicate after the
/// migrations: schema 3 finds it in the event record.
#[tokio::test]
async fn duplicate_is_detected_after_migration() {
    let dir = tempfile::tempdir().expect("tempdir");
    let eid = "evt_01HF00000000000000000000AA";
    // The time the id spells: ids start with the time they were made.
    let received = 1_699_733_307_392u64;
    {
        let db = open_sled(dir.path());
        db.open_tree("meta")
            .expect("tree")
            .insert("schema_version", &0u32.to_be_bytes())
            .expect("insert");
        let ev = serde_json::json!({
            "source": "app", "idempotency_key": "k", "received_at": received,
            "body": [1], "deliveries": [],
        });
        db.open_tree("events")
            .expect("tree")
            .insert(eid, serde_json::to_vec(&ev).expect("json"))
            .expect("insert");
        db.open_tree("idempotency")
            .expect("tree")
            .insert(b"app\0k", eid.as_bytes())
            .expect("insert");
        db.flush().expect("flush");
    }
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(received + 1000)));
    let ob = open_with(dir.path(), &clock, |_| {});
    let r = ob
        .enqueue(ev(Some("k")), vec![to("a")])
        .await
        .expect("enqueue");
    assert!(
        matches!(&r, Enqueued::Duplicate { event_id, .. } if event_id.as_str() == eid),
        "{r:?}"
    );
}

/// The due and idempotency indexes live in memory; a reopen rebuilds them
/// from the records: keys within the window are still duplicates, expired
/// ones are not, and every unfinished delivery is due when it was.
#[tokio::test]
async fn reopen_rebuilds_the_due_and_idempotency_indexes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(t(0)));
    let window = |c: &mut OutboxConfig| c.idempotency_window = Duration::from_secs(60);
    let ob = open_with(dir.path(), &clock, window);
    let first = ob
        .enqueue(ev(Some("old")), vec![to("a")])
        .await
        .expect("enqueue");
    clock.set(t(30_000));
    let kept = ob
        .enqueue(ev(Some("kept")), vec![to("b"), to("c")])
        .await
        .expect("enqueue");
    let claim = ob
        .claim_due(t(30_000), 1, "w", LEASE)
        .expect("claim")
        .remove(0);
    let retry_at = t(90_000);
    ob.complete(
        &claim,
        Outcome::Retry {
            at: retry_at,
            error: "503".into(),
            counts_as_attempt: true,
        },
        t(30_001),
    )
    .expect("complete");
    drop(ob);
    clock.set(t(70_000));
    let ob = open_with(dir.path(), &clock, window);
    let again = |key: &'static str| {
        let ob = &ob;
        async move {
            ob.enqueue(ev(Some(key)), vec![to("a")])
                .await
                .expect("enqueue")
        }
    };
    let Enqueued::Accepted {
        event_id: kept_id,
        deliveries: kept_deliveries,
    } = kept
    else {
        panic!("accepted first: {kept:?}")
    };
    assert_eq!(
        again("kept").await,
        Enqueued::Duplicate {
            event_id: kept_id,
            deliveries: kept_deliveries
        },
        "within the window across the reopen"
    );
    let Enqueued::Accepted { event_id: old, .. } = first else {
        panic!("accepted first: {first:?}")
    };
    assert!(
        matches!(again("old").await, Enqueued::Accepted { event_id, .. } if event_id != old),
        "the window of 'old' ended before the reopen"
    );
    // The claim before the reopen took the earliest, "old"'s delivery,
    // and scheduled it for t90 000. Due now: both of "kept"'s (t30 000)
    // and the second enqueue of "old" (t70 000).
    assert_eq!(ob.next_due().expect("next"), Some(t(30_000)));
    let due = ob.claim_due(t(70_000), 10, "w", LEASE).expect("claim");
    assert_eq!(due.len(), 3);
    assert!(due.iter().all(|c| c.delivery_id != claim.delivery_id));
    assert_eq!(ob.next_due().expect("next"), Some(retry_at));
    let later = ob.claim_due(retry_at, 10, "w", LEASE).expect("claim");
    assert_eq!(later.len(), 1);
    assert_eq!(later[0].delivery_id, claim.delivery_id);
}

#[test]
fn refuses_a_newer_schema() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let db = open_sled(dir.path());
        db.open_tree("meta")
            .expect("tree")
            .insert("schema_version", &99u32.to_be_bytes())
            .expect("insert");
        db.flush().expect("flush");
    }
    let err = Outbox::open(OutboxConfig::new(dir.path())).expect_err("too new");
    assert!(
        matches!(
            err,
            OpenError::SchemaTooNew {
                found: 99,
                supported: 5
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("version 99"));
}

#[test]
fn corrupt_record_is_a_typed_error_naming_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let db = open_sled(dir.path());
        db.open_tree("meta")
            .expect("tree")
            .insert("schema_version", &1u32.to_be_bytes())
            .expect("insert");
        db.open_tree("deliveries")
            .expect("tree")
            .insert("dlv_bad", &b"not json"[..])
            .expect("insert");
        db.flush().expect("flush");
    }
    let err = Outbox::open(OutboxConfig::new(dir.path())).expect_err("corrupt");
    let chain = format!(
        "{err}: {}",
        std::error::Error::source(&err)
            .map(|e| e.to_string())
            .unwrap_or_default()
    );
    assert!(chain.contains("dlv_bad"), "{chain}");
}

#[tokio::test]
async fn released_leases_are_claimable_at_once_and_future_retries_are_untouched() {
    let (_d, _c, ob) = setup();
    let (_, ids) = accept(&ob, &["a", "b"]).await;
    let held = ob.claim_due(t(0), 1, "dead-process", LEASE).expect("claim");
    assert_eq!(held.len(), 1);
    // The other one waits for a retry due in the future.
    let other = ob.claim_due(t(0), 1, "w", LEASE).expect("claim").remove(0);
    ob.complete(
        &other,
        Outcome::Retry {
            at: t(60_000),
            error: "later".into(),
            counts_as_attempt: true,
        },
        t(1),
    )
    .expect("complete");
    assert!(
        ob.claim_due(t(10), 10, "new", LEASE)
            .expect("claim")
            .is_empty()
    );

    assert_eq!(ob.release_leases(), 1);
    let again = ob.claim_due(t(10), 10, "new", LEASE).expect("claim");
    assert_eq!(again.len(), 1, "only the lease, not the future retry");
    assert_eq!(again[0].delivery_id, held[0].delivery_id);
    assert!(again[0].token > held[0].token);
    assert!(ids.contains(&other.delivery_id));
    assert!(matches!(
        state(&ob, &other.delivery_id),
        DeliveryState::Scheduled(_)
    ));
    assert_eq!(ob.depth().claimed, 1);
    assert_eq!(ob.release_leases(), 1, "the new lease too");
}

/// The same claim answered twice at once (sharing one transaction): the
/// first is recorded, the second is refused, and nothing else fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_completed_twice_at_once_is_recorded_once() {
    let (_d, _c, ob) = setup();
    let (_, ids) = accept(&ob, &["a", "b"]).await;
    let claims = ob.claim_due(t(0), 2, "w", LEASE).expect("claim");
    let delivered = || Outcome::Delivered {
        detail: "200".into(),
        remote_id: None,
    };
    let (a, b, other) = tokio::join!(
        ob.complete_shared(&claims[0], delivered(), t(1)),
        ob.complete_shared(&claims[0], delivered(), t(1)),
        ob.complete_shared(&claims[1], delivered(), t(1)),
    );
    let mut got = [a.expect("a"), b.expect("b")];
    got.sort_by_key(|c| matches!(c, Completion::LeaseLost { .. }));
    assert_eq!(
        got,
        [
            Completion::Delivered,
            Completion::LeaseLost {
                current: Some(StateKind::Delivered)
            }
        ]
    );
    assert_eq!(other.expect("other"), Completion::Delivered);
    assert_eq!(ob.depth().delivered, 2);
    assert_eq!(ob.depth().claimed, 0);
    for id in &ids {
        assert_eq!(
            ob.delivery(id)
                .expect("read")
                .expect("exists")
                .history
                .len(),
            1
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_completions_answer_each_caller_as_complete_would() {
    let (_d, _c, ob) = setup();
    let ob = Arc::new(ob);
    let (eid, ids) = accept(&ob, &["a", "b", "c", "d"]).await;
    let claims = ob.claim_due(t(0), 10, "w1", LEASE).expect("claim");
    assert_eq!(claims.len(), 4);
    // A claim whose token is stale: another owner holds the delivery now.
    let mut stale = claims[3].clone();
    stale.token += 1;
    let outcomes = [
        (
            claims[0].clone(),
            Outcome::Delivered {
                detail: "ok".into(),
                remote_id: None,
            },
        ),
        (
            claims[1].clone(),
            Outcome::Retry {
                at: t(5_000),
                error: "503".into(),
                counts_as_attempt: true,
            },
        ),
        (
            claims[2].clone(),
            Outcome::Dead {
                error: "400".into(),
                fallback: Some("e".into()),
            },
        ),
        (
            stale,
            Outcome::Delivered {
                detail: "late".into(),
                remote_id: None,
            },
        ),
    ];
    let tasks: Vec<_> = outcomes
        .into_iter()
        .map(|(claim, outcome)| {
            let ob = Arc::clone(&ob);
            tokio::spawn(async move { ob.complete_shared(&claim, outcome, t(100)).await })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.expect("task").expect("complete"));
    }
    assert_eq!(answers[0], Completion::Delivered);
    assert_eq!(answers[1], Completion::Scheduled { due: t(5_000) });
    let Completion::Dead {
        fallback: Some(fallback),
    } = &answers[2]
    else {
        panic!(
            "expected a dead letter with a fallback, got {:?}",
            answers[2]
        );
    };
    assert_eq!(
        answers[3],
        Completion::LeaseLost {
            current: Some(StateKind::Claimed)
        }
    );
    assert!(matches!(state(&ob, &ids[0]), DeliveryState::Delivered(_)));
    assert!(matches!(state(&ob, &ids[1]), DeliveryState::Scheduled(_)));
    assert!(matches!(state(&ob, &ids[2]), DeliveryState::Dead(_)));
    assert!(matches!(state(&ob, &ids[3]), DeliveryState::Claimed(_)));
    let made = ob
        .delivery(fallback)
        .expect("read")
        .expect("fallback exists");
    assert_eq!(made.destination, "e");
    assert!(matches!(made.state, DeliveryState::Pending(_)));
    let depth = ob.depth();
    assert_eq!(
        (
            depth.pending,
            depth.claimed,
            depth.scheduled,
            depth.delivered,
            depth.dead
        ),
        (1, 1, 1, 1, 1)
    );
    let view = ob.event(&eid).expect("read").expect("event");
    assert_eq!(
        view.deliveries.len(),
        5,
        "the fallback is listed on the event"
    );
}

/// Records `claim` as delivered (receipt "200") at `at`.
fn deliver(ob: &Outbox, claim: &carillon_outbox::Claim, at: Timestamp) -> Completion {
    let done = Outcome::Delivered {
        detail: "200".into(),
        remote_id: None,
    };
    ob.complete(claim, done, at).expect("complete")
}

/// The horizon stored in `meta` (see `untouched`), if any.
fn stored_horizon(dir: &std::path::Path) -> Option<u128> {
    let db = open_sled(dir);
    let v = db
        .open_tree("meta")
        .expect("tree")
        .get("untouched_from")
        .expect("get")?;
    Some(u128::from_be_bytes(
        v.as_ref().try_into().expect("16 bytes"),
    ))
}

/// A delivery gets its own record only when it first changes; until then
/// its event describes it, and a reopen finds it there.
#[tokio::test]
async fn untouched_deliveries_have_no_record_and_survive_a_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(t(0)));
    let ob = open_with(dir.path(), &clock, |_| {});
    let (e1, ids1) = accept(&ob, &["a", "b"]).await;
    let (_, ids2) = accept(&ob, &["c"]).await;
    assert!(matches!(state(&ob, &ids1[1]), DeliveryState::Pending(p) if p.due == t(0)));
    let first = ob.claim_due(t(1), 1, "w", LEASE).expect("claim").remove(0);
    assert_eq!(first.delivery_id, ids1[0]);
    assert_eq!(first.payload, b"payload for a");
    assert_eq!(deliver(&ob, &first, t(2)), Completion::Delivered);
    drop(ob);
    {
        let db = open_sled(dir.path());
        let records: Vec<_> = db
            .open_tree("deliveries")
            .expect("tree")
            .iter()
            .keys()
            .map(|k| String::from_utf8(k.expect("key").to_vec()).expect("utf-8"))
            .collect();
        assert_eq!(
            records,
            vec![ids1[0].as_str().to_owned()],
            "only the one that changed"
        );
    }
    let ob = open_with(dir.path(), &clock, |_| {});
    assert_eq!((ob.depth().pending, ob.depth().delivered), (2, 1));
    assert_eq!(ob.next_due().expect("next"), Some(t(0)));
    let view = ob.event(&e1).expect("read").expect("exists");
    let states: Vec<StateKind> = view.deliveries.iter().map(|d| d.state.kind()).collect();
    assert_eq!(states, vec![StateKind::Delivered, StateKind::Pending]);
    let claims = ob.claim_due(t(3), 10, "w", LEASE).expect("claim");
    let got: Vec<_> = claims
        .iter()
        .map(|c| (c.delivery_id.clone(), c.attempt))
        .collect();
    assert_eq!(got, vec![(ids1[1].clone(), 1), (ids2[0].clone(), 1)]);
    assert_eq!(claims[1].payload, b"payload for c");
    // A first change writes the record; the reopen then reads it from there.
    let retry = Outcome::Retry {
        at: t(60_000),
        error: "503".into(),
        counts_as_attempt: true,
    };
    ob.complete(&claims[0], retry, t(4)).expect("complete");
    drop(ob);
    let ob = open_with(dir.path(), &clock, |_| {});
    assert_eq!((ob.depth().pending, ob.depth().scheduled), (1, 1));
    assert!(matches!(state(&ob, &ids1[1]), DeliveryState::Scheduled(s) if s.due == t(60_000)));
    assert!(matches!(state(&ob, &ids2[0]), DeliveryState::Pending(_)));
    assert_eq!(
        ob.requeue_dead(&ids2[0], t(5)).expect("requeue"),
        Requeue::NotDead(StateKind::Pending),
        "an untouched delivery is found, and it is not dead"
    );
}

/// A purged delivery leaves its event, so it cannot come back as an
/// untouched one while a sibling keeps the event (and the horizon) alive.
#[tokio::test]
async fn a_purged_delivery_stays_gone_while_its_sibling_is_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(t(0)));
    let ob = open_with(dir.path(), &clock, |_| {});
    let (eid, ids) = accept(&ob, &["a", "b"]).await;
    let claim = ob.claim_due(t(1), 1, "w", LEASE).expect("claim").remove(0);
    assert_eq!(claim.delivery_id, ids[0]);
    deliver(&ob, &claim, t(2));
    let r = ob
        .purge_delivered(t(100), Duration::from_millis(1))
        .expect("purge");
    assert_eq!((r.deliveries, r.events), (1, 0), "b keeps the event");
    let listed = |ob: &Outbox| -> Vec<_> {
        ob.event(&eid)
            .expect("read")
            .expect("kept")
            .deliveries
            .into_iter()
            .map(|d| d.id)
            .collect()
    };
    assert_eq!(listed(&ob), vec![ids[1].clone()]);
    ob.close().expect("close");
    let ob = open_with(dir.path(), &clock, |_| {});
    assert_eq!((ob.depth().pending, ob.depth().delivered), (1, 0));
    assert_eq!(listed(&ob), vec![ids[1].clone()]);
    assert!(ob.delivery(&ids[0]).expect("read").is_none());
    let claims = ob.claim_due(t(200), 10, "w", LEASE).expect("claim");
    let got: Vec<_> = claims.iter().map(|c| c.delivery_id.clone()).collect();
    assert_eq!(got, vec![ids[1].clone()], "a is not sent again");
}

/// `close` stores the horizon even when no enqueue came after the last
/// deliveries finished (the committer only stores it while events arrive).
#[tokio::test]
async fn close_moves_the_stored_horizon_past_finished_events() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(t(0)));
    let ob = open_with(dir.path(), &clock, |_| {});
    accept(&ob, &["a"]).await;
    drop(ob);
    let before = stored_horizon(dir.path()).unwrap_or(0);
    let ob = open_with(dir.path(), &clock, |_| {});
    let claim = ob.claim_due(t(1), 1, "w", LEASE).expect("claim").remove(0);
    deliver(&ob, &claim, t(2));
    ob.close().expect("close");
    let after = stored_horizon(dir.path()).expect("stored by close");
    assert!(after > before, "{after} > {before}");
    let ob = open_with(dir.path(), &clock, |_| {});
    assert_eq!((ob.depth().pending, ob.depth().delivered), (0, 1));
}

/// A delivery delivered at its first attempt is one compact record and no
/// purge-index entry (schema 5); it reads like any delivered one, across a
/// reopen, and the purge goes by when it was delivered, not created.
#[tokio::test]
async fn a_first_attempt_delivery_is_one_record_purged_by_its_delivery_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(t(0)));
    let ids = {
        let ob = open_with(dir.path(), &clock, |_| {});
        let (_, early) = accept(&ob, &["a", "b"]).await;
        let claims = ob.claim_due(t(0), 10, "w", LEASE).expect("claim");
        // "a" delivered at once; "b" retried first, so it has a JSON
        // record and an index entry when it is delivered.
        let (a, b) = (&claims[0], &claims[1]);
        assert_eq!(a.delivery_id, early[0]);
        ob.complete(
            a,
            Outcome::Delivered {
                detail: "200".into(),
                remote_id: None,
            },
            t(10),
        )
        .expect("complete");
        ob.complete(
            b,
            Outcome::Retry {
                at: t(20),
                error: "503".into(),
                counts_as_attempt: true,
            },
            t(10),
        )
        .expect("complete");
        let again = ob.claim_due(t(20), 10, "w", LEASE).expect("claim");
        ob.complete(
            &again[0],
            Outcome::Delivered {
                detail: "201".into(),
                remote_id: None,
            },
            t(30),
        )
        .expect("complete");
        // Created at 40, long before it is delivered.
        clock.set(t(40));
        let (_, late) = accept(&ob, &["c"]).await;
        let c = ob.claim_due(t(40), 10, "w", LEASE).expect("claim");
        ob.complete(
            &c[0],
            Outcome::Delivered {
                detail: "202".into(),
                remote_id: None,
            },
            t(5_000),
        )
        .expect("complete");
        ob.flush().expect("flush");
        [early[0].clone(), early[1].clone(), late[0].clone()]
    };
    {
        let db = open_sled(dir.path());
        let index = db.open_tree("delivered").expect("tree");
        assert_eq!(index.len(), 1, "only the retried delivery is indexed");
        let records = db.open_tree("deliveries").expect("tree");
        let a = records.get(ids[0].as_str()).expect("get").expect("record");
        assert_ne!(a.first(), Some(&b'{'), "compact, not JSON");
        assert_eq!(
            records
                .get(ids[1].as_str())
                .expect("get")
                .expect("record")
                .first(),
            Some(&b'{')
        );
    }
    let ob = open_with(dir.path(), &clock, |_| {});
    assert_eq!(ob.depth().delivered, 3);
    let a = ob.delivery(&ids[0]).expect("read").expect("exists");
    assert!(matches!(&a.state, DeliveryState::Delivered(d) if d.at == t(10) && d.detail == "200"));
    assert_eq!((a.attempts, a.created_at), (1, t(0)));
    assert_eq!(a.destination, "a");
    assert_eq!(a.history.len(), 1, "the delivering attempt");
    assert!(matches!(
        a.history[0].outcome,
        AttemptOutcome::Delivered { .. }
    ));
    let r = ob
        .purge_delivered(t(1_000), Duration::from_millis(100))
        .expect("purge");
    assert_eq!((r.deliveries, r.attempts, r.events), (2, 3, 1));
    assert!(ob.delivery(&ids[0]).expect("read").is_none());
    assert!(ob.delivery(&ids[1]).expect("read").is_none());
    assert!(
        ob.delivery(&ids[2]).expect("read").is_some(),
        "delivered after the cutoff"
    );
    let r = ob
        .purge_delivered(t(6_000), Duration::from_millis(100))
        .expect("purge");
    assert_eq!((r.deliveries, r.events), (1, 1));
    assert_eq!(ob.depth().delivered, 0);
}

/// An event stored without any delivery (unrouted: no route matched it).
async fn accept_unrouted(ob: &Outbox, key: Option<&str>) -> carillon_outbox::EventId {
    match ob.enqueue(ev(key), Vec::new()).await.expect("enqueue") {
        Enqueued::Accepted {
            event_id,
            deliveries,
        } => {
            assert!(deliveries.is_empty());
            event_id
        }
        other => panic!("expected Accepted, got {other:?}"),
    }
}

const WINDOW: Duration = Duration::from_secs(60);

#[tokio::test]
async fn unrouted_events_are_purged_by_age_and_a_reopen_does_not_bring_them_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(t(0)));
    let ob = open_with(dir.path(), &clock, |c| c.idempotency_window = WINDOW);
    let old = accept_unrouted(&ob, Some("k-old")).await;
    clock.set(t(30_000));
    let young = accept_unrouted(&ob, Some("k-young")).await;
    assert_eq!(ob.depth().unrouted, 2);
    assert_eq!(ob.depth().active(), 0, "an unrouted event is no delivery");

    // A retention shorter than the idempotency window counts as the
    // window: a key is remembered through the event that accepted it.
    assert_eq!(
        ob.purge_unrouted(t(59_000), Duration::from_millis(1))
            .expect("purge"),
        0
    );
    assert!(ob.event(&old).expect("read").is_some());

    assert_eq!(ob.purge_unrouted(t(61_000), WINDOW).expect("purge"), 1);
    assert!(ob.event(&old).expect("read").is_none(), "purged");
    assert!(ob.event(&young).expect("read").is_some(), "not old enough");
    assert_eq!(ob.depth().unrouted, 1);

    // Dropped without `close`: the purge itself made its removals durable.
    drop(ob);
    clock.set(t(62_000));
    let ob = open_with(dir.path(), &clock, |c| c.idempotency_window = WINDOW);
    assert!(ob.event(&old).expect("read").is_none(), "not resurrected");
    assert_eq!(ob.depth().unrouted, 1, "counted again at open");
    // The young event's key is still within its window, across the reopen.
    let again = ob.enqueue(ev(Some("k-young")), Vec::new()).await;
    assert!(
        matches!(&again, Ok(Enqueued::Duplicate { event_id, .. }) if *event_id == young),
        "{again:?}"
    );
    assert_eq!(ob.purge_unrouted(t(91_000), WINDOW).expect("purge"), 1);
    assert_eq!(ob.depth().unrouted, 0);
    ob.close().expect("close");
    let ob = open_with(dir.path(), &clock, |c| c.idempotency_window = WINDOW);
    assert!(ob.event(&young).expect("read").is_none());
    assert_eq!(ob.depth().unrouted, 0);
}

#[tokio::test]
async fn unrouted_events_count_toward_a_bound_of_their_own() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(t(0)));
    let config = |c: &mut OutboxConfig| {
        c.idempotency_window = WINDOW;
        c.max_unrouted = 2;
        c.max_pending = 1;
        c.backpressure_retry_after = Duration::from_secs(3);
    };
    let ob = open_with(dir.path(), &clock, config);
    let first = accept_unrouted(&ob, None).await;
    accept_unrouted(&ob, None).await;
    let err = ob.enqueue(ev(None), Vec::new()).await.expect_err("full");
    assert!(
        matches!(err, EnqueueError::Backpressure { retry_after } if retry_after == Duration::from_secs(3)),
        "{err:?}"
    );
    assert_eq!(ob.depth().unrouted, 2, "the refused one wrote nothing");
    // Routed events have their own bound: a flood of unrouted ones does
    // not hold them up.
    accept(&ob, &["a"]).await;

    // Counted at open too.
    drop(ob);
    let ob = open_with(dir.path(), &clock, config);
    assert_eq!(ob.depth().unrouted, 2);
    assert!(matches!(
        ob.enqueue(ev(None), Vec::new()).await,
        Err(EnqueueError::Backpressure { .. })
    ));

    // A purge by age makes room.
    clock.set(t(60_001));
    assert_eq!(ob.purge_unrouted(t(60_001), WINDOW).expect("purge"), 2);
    assert!(ob.event(&first).expect("read").is_none());
    accept_unrouted(&ob, None).await;
    assert_eq!(ob.depth().unrouted, 1);
}

#[tokio::test]
async fn an_enqueue_that_would_eat_into_the_free_space_reserve_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(t(0)));
    // No file system has this much room: every enqueue is refused.
    let ob = open_with(dir.path(), &clock, |c| {
        c.min_free_bytes = u64::MAX / 2;
        c.backpressure_retry_after = Duration::from_secs(5);
    });
    let err = ob
        .enqueue(ev(Some("k")), vec![to("a")])
        .await
        .expect_err("no room");
    assert!(
        matches!(
            err,
            EnqueueError::StorageFull { reserve, retry_after, .. }
                if reserve == u64::MAX / 2 && retry_after == Duration::from_secs(5)
        ),
        "{err:?}"
    );
    assert!(
        matches!(
            ob.enqueue(ev(None), Vec::new()).await,
            Err(EnqueueError::StorageFull { .. })
        ),
        "unrouted events take room too"
    );
    assert_eq!(ob.depth(), carillon_outbox::Depth::default());
    assert!(ob.storage_failure().is_none(), "a refusal is no failure");
    drop(ob);
    // With room, the same key is accepted: the refused one left no trace.
    let ob = open_with(dir.path(), &clock, |_| {});
    let again = ob.enqueue(ev(Some("k")), vec![to("a")]).await;
    assert!(matches!(again, Ok(Enqueued::Accepted { .. })), "{again:?}");
}
