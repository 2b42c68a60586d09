//! Kept records: written and removed with the event they ride on (or on
//! their own, `put_kept` / `remove_kept`),
//! found again after a reopen, untouched by a duplicate or a refusal.

use std::sync::Arc;

use carillon_outbox::{
    EnqueueError, Enqueued, KeptWrite, ManualClock, NewEvent, Outbox, OutboxConfig, Timestamp,
};

fn open(dir: &std::path::Path, max_unrouted: u64) -> Outbox {
    let mut c = OutboxConfig::new(dir);
    c.clock = Arc::new(ManualClock::new(Timestamp::from_millis(1_700_000_000_000)));
    c.min_free_bytes = 0;
    c.max_unrouted = max_unrouted;
    Outbox::open(c).expect("open")
}

fn ev(body: &str, key: Option<&str>) -> NewEvent {
    NewEvent {
        source: "monitor".into(),
        idempotency_key: key.map(str::to_owned),
        body: body.as_bytes().to_vec(),
    }
}

fn put(key: &str, value: &str) -> KeptWrite {
    KeptWrite {
        key: key.into(),
        value: Some(value.as_bytes().to_vec()),
    }
}

#[tokio::test]
async fn a_record_is_written_with_its_event_and_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let ob = open(dir.path(), 100);
        let e = ob
            .enqueue_kept(ev("alert", None), Vec::new(), put("m:disk", "firing"))
            .await
            .unwrap();
        assert!(matches!(e, Enqueued::Accepted { .. }));
        ob.enqueue_kept(ev("alert", None), Vec::new(), put("m:cpu", "firing"))
            .await
            .unwrap();
        ob.enqueue_kept(ev("x", None), Vec::new(), put("other", "1"))
            .await
            .unwrap();
        ob.close().unwrap();
    }
    let ob = open(dir.path(), 100);
    let kept = ob.kept("m:").unwrap();
    assert_eq!(
        kept,
        vec![
            ("m:cpu".to_owned(), b"firing".to_vec()),
            ("m:disk".to_owned(), b"firing".to_vec())
        ]
    );
    // Removed with the event that ends it.
    ob.enqueue_kept(
        ev("resolved", None),
        Vec::new(),
        KeptWrite {
            key: "m:disk".into(),
            value: None,
        },
    )
    .await
    .unwrap();
    assert_eq!(ob.kept("m:").unwrap().len(), 1);
    assert!(ob.remove_kept("m:cpu").unwrap());
    assert!(!ob.remove_kept("m:cpu").unwrap());
    assert!(ob.kept("m:").unwrap().is_empty());
    assert_eq!(ob.kept("").unwrap().len(), 1, "other prefixes untouched");
}

#[tokio::test]
async fn a_duplicate_or_a_refused_event_writes_no_record() {
    let dir = tempfile::tempdir().unwrap();
    let ob = open(dir.path(), 1);
    ob.enqueue_kept(ev("a", Some("k1")), Vec::new(), put("m:a", "1"))
        .await
        .unwrap();
    let dup = ob
        .enqueue_kept(ev("a", Some("k1")), Vec::new(), put("m:a", "2"))
        .await
        .unwrap();
    assert!(matches!(dup, Enqueued::Duplicate { .. }));
    assert_eq!(ob.kept("m:").unwrap(), vec![("m:a".into(), b"1".to_vec())]);
    // Past max_unrouted: refused, nothing written.
    let refused = ob
        .enqueue_kept(ev("b", None), Vec::new(), put("m:b", "1"))
        .await;
    assert!(
        matches!(refused, Err(EnqueueError::Backpressure { .. })),
        "{refused:?}"
    );
    assert_eq!(ob.kept("m:").unwrap().len(), 1);
    let bad = ob
        .enqueue_kept(ev("c", None), Vec::new(), put("m:\0", "1"))
        .await;
    assert!(matches!(bad, Err(EnqueueError::Invalid { .. })), "{bad:?}");
}

#[tokio::test]
async fn a_record_put_on_its_own_survives_a_reopen_and_bad_ones_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let ob = open(dir.path(), 100);
        ob.put_kept("test-push/ops", b"{\"ok\":true}").unwrap();
        ob.put_kept("test-push/ops", b"{\"ok\":false}").unwrap();
        assert!(matches!(
            ob.put_kept("", b"x"),
            Err(carillon_outbox::OutboxError::Invalid { .. })
        ));
        assert!(ob.put_kept("a\0b", b"x").is_err());
        assert!(ob.put_kept("big", &vec![b'x'; 16 * 1024 + 1]).is_err());
    }
    let ob = open(dir.path(), 100);
    assert_eq!(
        ob.kept("test-push/").unwrap(),
        vec![("test-push/ops".to_owned(), b"{\"ok\":false}".to_vec())]
    );
}
