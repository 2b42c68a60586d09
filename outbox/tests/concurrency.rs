//! Many tasks enqueue at once: every acknowledged id is present after a
//! reopen, and the writers shared flushes (group commit).

use std::sync::Arc;

use carillon_outbox::{Enqueued, NewDelivery, NewEvent, Outbox, OutboxConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_enqueues_share_flushes_and_survive_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ob = Arc::new(Outbox::open(OutboxConfig::new(dir.path())).expect("open"));
    let mut tasks = Vec::new();
    for w in 0..64 {
        let ob = Arc::clone(&ob);
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..20 {
                let event = NewEvent {
                    source: format!("w{w}"),
                    idempotency_key: Some(format!("k{i}")),
                    body: vec![1; 64],
                };
                let d = vec![NewDelivery {
                    destination: "hook".into(),
                    payload: vec![2; 128],
                }];
                match ob.enqueue(event, d).await.expect("enqueue") {
                    Enqueued::Accepted {
                        event_id,
                        deliveries,
                    } => ids.push((event_id, deliveries)),
                    other => panic!("unexpected {other:?}"),
                }
            }
            ids
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("task"));
    }
    let stats = ob.flush_stats();
    assert_eq!(stats.writes, 64 * 20);
    assert!(stats.max_batch > 1, "no flush was shared: {stats:?}");
    assert!(stats.flushes < stats.writes);
    drop(ob);

    let ob = Outbox::open(OutboxConfig::new(dir.path())).expect("reopen");
    assert_eq!(ob.depth().pending, 64 * 20);
    for (eid, deliveries) in &all {
        let e = ob
            .event(eid)
            .expect("read")
            .expect("acknowledged event present");
        assert_eq!(e.deliveries.len(), 1);
        assert_eq!(e.deliveries[0].id, deliveries[0].1);
    }
}

/// Clients retrying at once: many enqueues of one (source, key) share
/// batches, and exactly one of each key is accepted; the others get its
/// event id. Within a batch the committer must see the earlier jobs' keys
/// (they are not in its idempotency filter until the batch commits).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simultaneous_retries_of_one_key_are_accepted_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ob = Arc::new(Outbox::open(OutboxConfig::new(dir.path())).expect("open"));
    for round in 0..20 {
        let start = Arc::new(tokio::sync::Barrier::new(32));
        let mut tasks = Vec::new();
        for _ in 0..32 {
            let (ob, start) = (Arc::clone(&ob), Arc::clone(&start));
            tasks.push(tokio::spawn(async move {
                let event = NewEvent {
                    source: "app".into(),
                    idempotency_key: Some(format!("retry-{round}")),
                    body: vec![1; 64],
                };
                let d = vec![NewDelivery {
                    destination: "hook".into(),
                    payload: vec![2; 128],
                }];
                start.wait().await;
                ob.enqueue(event, d).await.expect("enqueue")
            }));
        }
        let mut accepted = Vec::new();
        let mut duplicates = Vec::new();
        for t in tasks {
            match t.await.expect("task") {
                Enqueued::Accepted { event_id, .. } => accepted.push(event_id),
                Enqueued::Duplicate { event_id, .. } => duplicates.push(event_id),
            }
        }
        assert_eq!(accepted.len(), 1, "round {round}: {accepted:?}");
        assert!(
            duplicates.iter().all(|d| *d == accepted[0]),
            "round {round}"
        );
    }
    assert_eq!(ob.depth().pending, 20);
    assert!(ob.flush_stats().max_batch > 1, "no batch was shared");
}
