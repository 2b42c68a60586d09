//! The store against real SQLite files in a temporary directory: the
//! object lifecycle, every conflict class, concurrent writers, the audit
//! log and its cap, the object cap, and reopening.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use carillon_store::{
    Action, Actor, AuditQuery, Change, Expect, MAX_AUDIT_PAGE, Options, Store, StoreError,
};
use serde_json::{Value, json};
use tokio::sync::Barrier;

fn db(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("store.db")
}

fn admin() -> Actor {
    Actor {
        token: "ops".into(),
        role: "admin".into(),
    }
}

fn put(kind: &str, name: &str, workspace: &str, body: Value, expect: Expect) -> Change {
    Change::Put {
        kind: kind.into(),
        name: name.into(),
        workspace: workspace.into(),
        body,
        expect,
    }
}

fn delete(kind: &str, name: &str, expect: Expect) -> Change {
    Change::Delete {
        kind: kind.into(),
        name: name.into(),
        expect,
    }
}

fn everything(limit: u32) -> AuditQuery {
    AuditQuery {
        workspace: None,
        kind: None,
        name: None,
        before_id: None,
        limit,
    }
}

/// Writes without audit bodies: the tests about objects do not look at them.
async fn write(store: &Store, change: Change) -> Result<carillon_store::Written, StoreError> {
    store.write(change, &admin(), None, None).await
}

async fn open(path: &Path) -> Store {
    Store::open(path).await.expect("open")
}

#[tokio::test]
async fn create_get_update_delete_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&db(&dir)).await;
    assert_eq!(store.get("route", "r1").await.unwrap(), None);

    let created = write(
        &store,
        put("route", "r1", "acme", json!({"a": 1}), Expect::Absent),
    )
    .await
    .unwrap();
    let created = created.object.unwrap();
    assert_eq!(created.version, 1);
    assert_eq!(created.body, json!({"a": 1}));
    assert_eq!(created.workspace, "acme");
    assert_eq!(created.created_at_ms, created.updated_at_ms);
    assert!(created.created_at_ms > 1_600_000_000_000);
    assert_eq!(
        store.get("route", "r1").await.unwrap(),
        Some(created.clone())
    );

    // A second object, so the update's seq has something to differ from.
    let other = write(&store, put("route", "r2", "acme", json!({}), Expect::Any))
        .await
        .unwrap()
        .object
        .unwrap();
    assert!(other.seq > created.seq);

    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let updated = write(
        &store,
        put("route", "r1", "acme", json!({"a": 2}), Expect::Version(1)),
    )
    .await
    .unwrap()
    .object
    .unwrap();
    assert_eq!(updated.version, 2);
    assert_eq!(updated.seq, created.seq, "seq is kept across an update");
    assert_eq!(updated.created_at_ms, created.created_at_ms);
    assert!(updated.updated_at_ms > created.updated_at_ms);
    assert_eq!(
        store.get("route", "r1").await.unwrap(),
        Some(updated.clone())
    );

    // Expect::Any updates too, whatever the version.
    let any = write(
        &store,
        put("route", "r1", "acme", json!({"a": 3}), Expect::Any),
    )
    .await
    .unwrap()
    .object
    .unwrap();
    assert_eq!(any.version, 3);

    // Routes stay in creation order after the update.
    let names: Vec<_> = store
        .objects()
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.name)
        .collect();
    assert_eq!(names, ["r1", "r2"]);

    let deleted = write(&store, delete("route", "r1", Expect::Version(3)))
        .await
        .unwrap();
    assert_eq!(deleted.object, None);
    assert_eq!(store.get("route", "r1").await.unwrap(), None);

    // A re-created object starts over at version 1 with a new seq.
    let again = write(
        &store,
        put("route", "r1", "acme", json!({}), Expect::Absent),
    )
    .await
    .unwrap()
    .object
    .unwrap();
    assert_eq!(again.version, 1);
    assert!(again.seq > other.seq, "seq is never reused");
    store.close().await;
}

#[tokio::test]
async fn objects_are_ordered_by_kind_then_creation() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&db(&dir)).await;
    for (kind, name) in [
        ("template", "t1"),
        ("route", "z"),
        ("destination", "d1"),
        ("route", "a"),
        ("template", "t0"),
    ] {
        write(&store, put(kind, name, "w", json!({}), Expect::Absent))
            .await
            .unwrap();
    }
    let got: Vec<_> = store
        .objects()
        .await
        .unwrap()
        .into_iter()
        .map(|o| (o.kind, o.name))
        .collect();
    let want = [
        ("destination", "d1"),
        ("route", "z"),
        ("route", "a"),
        ("template", "t1"),
        ("template", "t0"),
    ]
    .map(|(k, n)| (k.to_owned(), n.to_owned()));
    assert_eq!(got, want);
    // One kind, in creation order; and one workspace's.
    write(
        &store,
        put("route", "other", "v", json!({}), Expect::Absent),
    )
    .await
    .unwrap();
    let names = |objects: Vec<carillon_store::Object>| -> Vec<String> {
        objects.into_iter().map(|o| o.name).collect()
    };
    assert_eq!(
        names(store.objects_of("route", None).await.unwrap()),
        ["z", "a", "other"]
    );
    assert_eq!(
        names(store.objects_of("route", Some("v")).await.unwrap()),
        ["other"]
    );
    assert!(
        store
            .objects_of("group", Some("w"))
            .await
            .unwrap()
            .is_empty()
    );
    store.close().await;
}

#[tokio::test]
async fn every_conflict_class_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&db(&dir)).await;
    write(
        &store,
        put("destination", "d", "acme", json!({"v": 1}), Expect::Absent),
    )
    .await
    .unwrap();
    write(
        &store,
        put(
            "destination",
            "d",
            "acme",
            json!({"v": 2}),
            Expect::Version(1),
        ),
    )
    .await
    .unwrap();
    let stored = store.get("destination", "d").await.unwrap();
    let audited = store.audit(&everything(100)).await.unwrap().len();

    let absent_when_present = write(
        &store,
        put("destination", "d", "acme", json!({"v": 9}), Expect::Absent),
    )
    .await;
    assert!(
        matches!(
            absent_when_present,
            Err(StoreError::Conflict { current: Some(2) })
        ),
        "{absent_when_present:?}"
    );

    let stale = write(
        &store,
        put(
            "destination",
            "d",
            "acme",
            json!({"v": 9}),
            Expect::Version(1),
        ),
    )
    .await;
    assert!(
        matches!(stale, Err(StoreError::Conflict { current: Some(2) })),
        "{stale:?}"
    );

    let version_on_absent = write(
        &store,
        put("destination", "nope", "acme", json!({}), Expect::Version(1)),
    )
    .await;
    assert!(
        matches!(
            version_on_absent,
            Err(StoreError::Conflict { current: None })
        ),
        "{version_on_absent:?}"
    );

    let stale_delete = write(&store, delete("destination", "d", Expect::Version(1))).await;
    assert!(
        matches!(stale_delete, Err(StoreError::Conflict { current: Some(2) })),
        "{stale_delete:?}"
    );

    for expect in [Expect::Any, Expect::Version(1)] {
        let delete_absent = write(&store, delete("destination", "nope", expect)).await;
        assert!(
            matches!(delete_absent, Err(StoreError::NotFound)),
            "{delete_absent:?}"
        );
    }

    // The namespace is global: another workspace may not take or change the name.
    for expect in [Expect::Any, Expect::Absent, Expect::Version(2)] {
        let taken = write(&store, put("destination", "d", "globex", json!({}), expect)).await;
        match taken {
            Err(StoreError::NameTaken { workspace }) => assert_eq!(workspace, "acme"),
            other => panic!("{other:?}"),
        }
    }
    // The same name in another kind is another object.
    write(
        &store,
        put("route", "d", "globex", json!({}), Expect::Absent),
    )
    .await
    .unwrap();

    let not_an_object = write(
        &store,
        put("destination", "d", "acme", json!([1]), Expect::Any),
    )
    .await;
    assert!(
        matches!(
            not_an_object,
            Err(StoreError::Invalid { field: "body", .. })
        ),
        "{not_an_object:?}"
    );

    assert_eq!(store.get("destination", "d").await.unwrap(), stored);
    assert_eq!(
        store.audit(&everything(100)).await.unwrap().len(),
        audited + 1,
        "only the route's create was audited"
    );
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_writers_expecting_the_same_version_exactly_one_wins() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&db(&dir)).await;
    for round in 0..20 {
        let name = format!("t{round}");
        write(
            &store,
            put("template", &name, "w", json!({}), Expect::Absent),
        )
        .await
        .unwrap();
        let barrier = Arc::new(Barrier::new(2));
        let tasks: Vec<_> = (0..2)
            .map(|writer| {
                let (store, barrier, name) = (store.clone(), Arc::clone(&barrier), name.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    let body = json!({ "writer": writer });
                    write(
                        &store,
                        put("template", &name, "w", body, Expect::Version(1)),
                    )
                    .await
                })
            })
            .collect();
        let mut won = Vec::new();
        let mut lost = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(w) => won.push(w.object.unwrap()),
                Err(StoreError::Conflict { current: Some(2) }) => lost += 1,
                Err(e) => panic!("round {round}: {e:?}"),
            }
        }
        assert_eq!((won.len(), lost), (1, 1), "round {round}");
        assert_eq!(won[0].version, 2);
        assert_eq!(
            store.get("template", &name).await.unwrap().as_ref(),
            Some(&won[0])
        );
    }
    // One create and one update per round, nothing from the losers.
    assert_eq!(store.audit(&everything(1000)).await.unwrap().len(), 40);
    store.close().await;
}

#[tokio::test]
async fn audit_records_every_write_newest_first_with_filters_and_pages() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&db(&dir)).await;
    let editor = Actor {
        token: "ci".into(),
        role: "workspace-admin".into(),
    };
    let secret = json!({"url": "https://x", "secret": "***"});
    let w1 = store
        .write(
            put(
                "destination",
                "d",
                "acme",
                json!({"url": "https://x", "secret": "s3"}),
                Expect::Absent,
            ),
            &editor,
            None,
            Some(secret.clone()),
        )
        .await
        .unwrap();
    let w2 = store
        .write(
            put(
                "destination",
                "d",
                "acme",
                json!({"url": "https://y"}),
                Expect::Version(1),
            ),
            &editor,
            Some(secret.clone()),
            Some(json!({"url": "https://y"})),
        )
        .await
        .unwrap();
    let w3 = store
        .write(
            put("route", "r", "globex", json!({}), Expect::Absent),
            &admin(),
            None,
            Some(json!({})),
        )
        .await
        .unwrap();
    let w4 = store
        .write(
            delete("destination", "d", Expect::Any),
            &editor,
            Some(json!({"url": "https://y"})),
            None,
        )
        .await
        .unwrap();
    let ids = [w1.audit_id, w2.audit_id, w3.audit_id, w4.audit_id];
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");

    let all = store.audit(&everything(100)).await.unwrap();
    let got: Vec<_> = all.iter().map(|r| r.id).collect();
    assert_eq!(got, [ids[3], ids[2], ids[1], ids[0]], "newest first");
    let actions: Vec<_> = all.iter().map(|r| r.action).collect();
    assert_eq!(
        actions,
        [
            Action::Delete,
            Action::Create,
            Action::Update,
            Action::Create
        ]
    );
    // Each record carries what the caller gave, not the stored body.
    let first = &all[3];
    assert_eq!(
        (first.actor.as_str(), first.role.as_str()),
        ("ci", "workspace-admin")
    );
    assert_eq!(
        (first.kind.as_str(), first.name.as_str()),
        ("destination", "d")
    );
    assert_eq!(first.workspace, "acme");
    assert_eq!(
        (&first.before, &first.after),
        (&None, &Some(secret.clone()))
    );
    assert_eq!(all[2].before, Some(secret));
    assert_eq!(
        all[0].workspace, "acme",
        "a delete is audited in the object's workspace"
    );
    assert_eq!(
        (&all[0].before, &all[0].after),
        (&Some(json!({"url": "https://y"})), &None)
    );
    assert_eq!(all[1].actor, "ops");
    assert!(all.iter().all(|r| r.at_ms > 1_600_000_000_000));
    assert_eq!(
        serde_json::to_value(all[0].action).unwrap(),
        json!("delete"),
        "actions serialize in lower case"
    );

    let ids_of = |query: AuditQuery| {
        let store = store.clone();
        async move {
            store
                .audit(&query)
                .await
                .unwrap()
                .into_iter()
                .map(|r| r.id)
                .collect::<Vec<_>>()
        }
    };
    let acme = AuditQuery {
        workspace: Some("acme".into()),
        ..everything(100)
    };
    assert_eq!(ids_of(acme.clone()).await, [ids[3], ids[1], ids[0]]);
    let routes = AuditQuery {
        kind: Some("route".into()),
        ..everything(100)
    };
    assert_eq!(ids_of(routes).await, [ids[2]]);
    let named = AuditQuery {
        kind: Some("destination".into()),
        name: Some("d".into()),
        ..everything(100)
    };
    assert_eq!(ids_of(named).await, [ids[3], ids[1], ids[0]]);
    let nobody = AuditQuery {
        workspace: Some("globex".into()),
        kind: Some("destination".into()),
        ..everything(100)
    };
    assert_eq!(ids_of(nobody).await, Vec::<i64>::new());

    // Paging: two at a time, each page continuing below the last id seen.
    let page1 = ids_of(everything(2)).await;
    assert_eq!(page1, [ids[3], ids[2]]);
    let page2 = ids_of(AuditQuery {
        before_id: Some(page1[1]),
        ..everything(2)
    })
    .await;
    assert_eq!(page2, [ids[1], ids[0]]);
    let page3 = ids_of(AuditQuery {
        before_id: Some(page2[1]),
        ..everything(2)
    })
    .await;
    assert!(page3.is_empty());
    let acme_page = ids_of(AuditQuery {
        before_id: Some(ids[3]),
        limit: 1,
        ..acme
    })
    .await;
    assert_eq!(acme_page, [ids[1]]);

    // The limit is clamped to 1..=MAX_AUDIT_PAGE.
    assert_eq!(ids_of(everything(0)).await, [ids[3]]);
    assert_eq!(ids_of(everything(u32::MAX)).await.len(), 4);
    store.close().await;
}

#[tokio::test]
async fn a_big_limit_returns_at_most_one_page() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&db(&dir)).await;
    let page = usize::try_from(MAX_AUDIT_PAGE).unwrap();
    for i in 0..=page {
        write(
            &store,
            put("contact", &format!("c{i}"), "w", json!({}), Expect::Any),
        )
        .await
        .unwrap();
    }
    assert_eq!(
        store.audit(&everything(u32::MAX)).await.unwrap().len(),
        page
    );
    store.close().await;
}

#[tokio::test]
async fn the_audit_log_keeps_only_the_newest_records() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        audit_keep: 5,
        ..Options::default()
    };
    let store = Store::open_with(&db(&dir), options).await.unwrap();
    let mut ids = Vec::new();
    for i in 0..8 {
        let w = write(
            &store,
            put("group", "g", "w", json!({ "i": i }), Expect::Any),
        )
        .await
        .unwrap();
        ids.push(w.audit_id);
    }
    let kept: Vec<_> = store
        .audit(&everything(100))
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    let newest: Vec<_> = ids.iter().rev().take(5).copied().collect();
    assert_eq!(kept, newest);
    store.close().await;

    // A lower cap at the next open prunes at the next write.
    let options = Options {
        audit_keep: 2,
        ..Options::default()
    };
    let store = Store::open_with(&db(&dir), options).await.unwrap();
    let last = write(&store, delete("group", "g", Expect::Any))
        .await
        .unwrap()
        .audit_id;
    let kept: Vec<_> = store
        .audit(&everything(100))
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(kept, [last, ids[7]]);
    store.close().await;
}

#[tokio::test]
async fn a_create_beyond_max_objects_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        max_objects: 2,
        ..Options::default()
    };
    let store = Store::open_with(&db(&dir), options).await.unwrap();
    write(&store, put("route", "a", "w", json!({}), Expect::Absent))
        .await
        .unwrap();
    write(&store, put("route", "b", "w", json!({}), Expect::Absent))
        .await
        .unwrap();
    let full = write(&store, put("route", "c", "w", json!({}), Expect::Any)).await;
    assert!(
        matches!(full, Err(StoreError::Full { limit: 2 })),
        "{full:?}"
    );
    assert_eq!(store.get("route", "c").await.unwrap(), None);
    // Updates are not creates.
    write(&store, put("route", "a", "w", json!({"x": 1}), Expect::Any))
        .await
        .unwrap();
    write(&store, delete("route", "b", Expect::Any))
        .await
        .unwrap();
    write(&store, put("route", "c", "w", json!({}), Expect::Absent))
        .await
        .unwrap();
    store.close().await;

    // The count survives a reopen.
    let store = Store::open_with(&db(&dir), options).await.unwrap();
    let full = write(&store, put("route", "d", "w", json!({}), Expect::Absent)).await;
    assert!(
        matches!(full, Err(StoreError::Full { limit: 2 })),
        "{full:?}"
    );
    store.close().await;
}

#[tokio::test]
async fn objects_and_audit_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let store = open(&path).await;
    let a = write(
        &store,
        put(
            "channels",
            "acme",
            "acme",
            json!({"slack": {}}),
            Expect::Absent,
        ),
    )
    .await
    .unwrap();
    let b = write(
        &store,
        put("route", "r", "acme", json!({"to": ["d"]}), Expect::Absent),
    )
    .await
    .unwrap();
    write(
        &store,
        put("route", "r", "acme", json!({"to": []}), Expect::Version(1)),
    )
    .await
    .unwrap();
    let objects = store.objects().await.unwrap();
    let audit = store.audit(&everything(100)).await.unwrap();
    store.close().await;
    assert!(store.get("route", "r").await.is_err(), "closed");
    drop(store);

    // Twice: the second open finds every migration applied and runs none.
    for _ in 0..2 {
        let store = open(&path).await;
        assert_eq!(store.objects().await.unwrap(), objects);
        assert_eq!(store.audit(&everything(100)).await.unwrap(), audit);
        store.close().await;
    }

    // Seq and audit ids carry on after a reopen; neither is reused.
    let store = open(&path).await;
    write(&store, delete("route", "r", Expect::Version(2)))
        .await
        .unwrap();
    let c = write(
        &store,
        put("route", "r2", "acme", json!({}), Expect::Absent),
    )
    .await
    .unwrap();
    let c_obj = c.object.unwrap();
    assert!(c_obj.seq > b.object.unwrap().seq);
    assert!(c_obj.seq > a.object.unwrap().seq);
    assert_eq!(c.audit_id, audit[0].id + 2);
    store.close().await;
}

#[tokio::test]
async fn opening_a_missing_directory_fails_without_panicking() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no-such-dir").join("store.db");
    assert!(matches!(
        Store::open(&path).await,
        Err(StoreError::Database(_))
    ));
}

#[tokio::test]
async fn a_body_that_is_not_an_object_reads_as_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let store = open(&path).await;
    write(&store, put("template", "t", "w", json!({}), Expect::Absent))
        .await
        .unwrap();
    // Something other than the store edits the file.
    let raw =
        sqlx::SqlitePool::connect_with(sqlx::sqlite::SqliteConnectOptions::new().filename(&path))
            .await
            .unwrap();
    sqlx::query("UPDATE objects SET body = '[1, 2]' WHERE name = 't'")
        .execute(&raw)
        .await
        .unwrap();
    raw.close().await;

    for result in [
        store.get("template", "t").await.map(|_| ()),
        store.objects().await.map(|_| ()),
    ] {
        match result {
            Err(StoreError::Corrupt { kind, name, reason }) => {
                assert_eq!((kind.as_str(), name.as_str()), ("template", "t"));
                assert!(reason.contains("not a JSON object"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }
    store.close().await;
}

#[tokio::test]
async fn pending_many_methods_at_once_records_only_the_new_ones() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&db(&dir)).await;
    assert!(store.pend("li", "k1", "t1", 100, 1).await.unwrap());
    let new = store
        .pend_all(
            &[("li", "k1", "t9"), ("li", "k2", "t2"), ("wu", "k1", "t3")],
            200,
            2,
        )
        .await
        .unwrap();
    assert_eq!(new, [false, true, true]);
    let rows = store.activations().await.unwrap();
    assert_eq!(rows.len(), 3);
    let kept = rows
        .iter()
        .find(|a| a.contact == "li" && a.method_key == "k1")
        .unwrap();
    assert_eq!(kept.sent_at_ms, 1, "a known method keeps its link");
    assert!(rows.iter().all(|a| !a.active));
    assert_eq!(store.pend_all(&[], 0, 0).await.unwrap(), Vec::<bool>::new());
}
