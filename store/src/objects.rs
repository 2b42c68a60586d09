//! Objects: the reads, and the one write path (lock, check, change, audit,
//! commit).

use serde_json::Value;
use sqlx::SqliteConnection;

use crate::audit::{self, Action, Actor, Entry};
use crate::{Store, StoreError, now_ms};

/// One stored object: a configuration object created through the API.
#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    /// `destination`, `route`, `template`, `channels`; later `contact`, `group`.
    pub kind: String,
    /// Unique per kind across all workspaces (the configuration namespace
    /// is global).
    pub name: String,
    /// The workspace that owns it.
    pub workspace: String,
    /// The object as the API received it; always a JSON object.
    pub body: Value,
    /// 1 on create, +1 on every update; the ETag is derived from it.
    pub version: u64,
    /// Creation order, kept on update and never reused (routes are ordered
    /// by it).
    pub seq: i64,
    /// When it was created, unix milliseconds.
    pub created_at_ms: i64,
    /// When it was last written, unix milliseconds.
    pub updated_at_ms: i64,
}

/// What the writer expects to find (optimistic concurrency).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Anything: create or update, last writer wins.
    Any,
    /// No object of that kind and name (a create).
    Absent,
    /// The object, at any version (`If-Match: *`).
    Exists,
    /// The object at exactly this version (the API's `If-Match`).
    Version(u64),
}

/// One write.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Create or replace an object.
    Put {
        /// The object's kind.
        kind: String,
        /// Its name.
        name: String,
        /// The workspace that owns it; an update must name the same one.
        workspace: String,
        /// The new body; must be a JSON object.
        body: Value,
        /// What the writer expects to find.
        expect: Expect,
    },
    /// Remove an object.
    Delete {
        /// The object's kind.
        kind: String,
        /// Its name.
        name: String,
        /// What the writer expects to find.
        expect: Expect,
    },
}

/// What a write committed.
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    /// The object as stored now; `None` after a delete.
    pub object: Option<Object>,
    /// The id of the write's audit record.
    pub audit_id: i64,
}

/// `kind, name, workspace, body, version, seq, created_at_ms, updated_at_ms`.
type Row = (String, String, String, String, i64, i64, i64, i64);

impl Store {
    /// Every object, ordered by kind, then creation order.
    pub async fn objects(&self) -> Result<Vec<Object>, StoreError> {
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT kind, name, workspace, body, version, seq, created_at_ms, updated_at_ms
             FROM objects ORDER BY kind, seq",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(object_from_row).collect()
    }

    /// The objects of `kind` (of `workspace` when given), in creation
    /// order: what one listing reads, through the `(workspace, kind)` and
    /// `(kind, seq)` indexes.
    pub async fn objects_of(
        &self,
        kind: &str,
        workspace: Option<&str>,
    ) -> Result<Vec<Object>, StoreError> {
        let rows: Vec<Row> =
            match workspace {
                Some(ws) => sqlx::query_as(
                    "SELECT kind, name, workspace, body, version, seq, created_at_ms, updated_at_ms
                     FROM objects WHERE workspace = ? AND kind = ? ORDER BY seq",
                )
                .bind(ws)
                .bind(kind)
                .fetch_all(&self.pool)
                .await?,
                None => sqlx::query_as(
                    "SELECT kind, name, workspace, body, version, seq, created_at_ms, updated_at_ms
                     FROM objects WHERE kind = ? ORDER BY seq",
                )
                .bind(kind)
                .fetch_all(&self.pool)
                .await?,
            };
        rows.into_iter().map(object_from_row).collect()
    }

    /// The object of this kind and name, if there is one.
    pub async fn get(&self, kind: &str, name: &str) -> Result<Option<Object>, StoreError> {
        let row: Option<Row> = sqlx::query_as(
            "SELECT kind, name, workspace, body, version, seq, created_at_ms, updated_at_ms
             FROM objects WHERE kind = ? AND name = ?",
        )
        .bind(kind)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.map(object_from_row).transpose()
    }

    /// Applies `change` and appends its audit record in one transaction,
    /// after checking what it expects: on `Ok` both are committed (and
    /// fsynced), on `Err` neither was written.
    ///
    /// `audit_before` and `audit_after` are the bodies the audit record
    /// shows, given by the caller already redacted, so the store never
    /// sees which fields are secret.
    pub async fn write(
        &self,
        change: Change,
        actor: &Actor,
        audit_before: Option<Value>,
        audit_after: Option<Value>,
    ) -> Result<Written, StoreError> {
        let mut written = self
            .write_batch(vec![(change, audit_before, audit_after)], actor)
            .await?;
        Ok(written.remove(0))
    }

    /// Applies every change, each with its audit record, in one
    /// transaction: all are committed, or none (the first refusal is
    /// returned). A bulk import writes through this.
    pub async fn write_batch(
        &self,
        changes: Vec<(Change, Option<Value>, Option<Value>)>,
        actor: &Actor,
    ) -> Result<Vec<Written>, StoreError> {
        // Everything that can be refused without the database is, before
        // the write lock is taken.
        let mut prepared = Vec::with_capacity(changes.len());
        for (change, audit_before, audit_after) in changes {
            if let Change::Put { body, .. } = &change
                && !body.is_object()
            {
                return Err(StoreError::Invalid {
                    field: "body",
                    reason: "must be a JSON object",
                });
            }
            let before = audit_before.as_ref().map(to_text).transpose()?;
            let after = audit_after.as_ref().map(to_text).transpose()?;
            prepared.push((change, before, after));
        }

        // BEGIN IMMEDIATE takes the write lock before the first read, so
        // the check below sees the last commit and nobody writes between
        // the check and the change (a deferred transaction would fail with
        // SQLITE_BUSY_SNAPSHOT on upgrade instead of waiting).
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let now = now_ms();
        let mut out = Vec::with_capacity(prepared.len());
        for (change, before, after) in prepared {
            let (object, workspace, action, kind, name) = match change {
                Change::Put {
                    kind,
                    name,
                    workspace,
                    body,
                    expect,
                } => {
                    let put = Put {
                        kind,
                        name,
                        workspace,
                        body,
                        expect,
                    };
                    let (object, action) =
                        put.apply(&mut tx, now, self.options.max_objects).await?;
                    let (workspace, kind, name) = (
                        object.workspace.clone(),
                        object.kind.clone(),
                        object.name.clone(),
                    );
                    (Some(object), workspace, action, kind, name)
                }
                Change::Delete { kind, name, expect } => {
                    let workspace = delete(&mut tx, &kind, &name, expect).await?;
                    (None, workspace, Action::Delete, kind, name)
                }
            };
            let entry = Entry {
                at_ms: now,
                actor,
                workspace: &workspace,
                action,
                kind: &kind,
                name: &name,
                before: before.as_deref(),
                after: after.as_deref(),
            };
            let audit_id = audit::append(&mut tx, &entry, self.options.audit_keep).await?;
            out.push(Written { object, audit_id });
        }
        tx.commit().await?;
        Ok(out)
    }
}

/// A [`Change::Put`], taken apart.
struct Put {
    kind: String,
    name: String,
    workspace: String,
    body: Value,
    expect: Expect,
}

impl Put {
    /// Creates or updates the object inside the caller's transaction.
    async fn apply(
        self,
        conn: &mut SqliteConnection,
        now: i64,
        max_objects: usize,
    ) -> Result<(Object, Action), StoreError> {
        let stored: Option<(String, i64, i64, i64)> = sqlx::query_as(
            "SELECT workspace, version, seq, created_at_ms FROM objects WHERE kind = ? AND name = ?",
        )
        .bind(&self.kind)
        .bind(&self.name)
        .fetch_optional(&mut *conn)
        .await?;
        let text = to_text(&self.body)?;
        let Some((workspace, version, seq, created_at_ms)) = stored else {
            check(self.expect, None)?;
            let seq = allocate(conn, max_objects).await?;
            sqlx::query(
                "INSERT INTO objects
                     (kind, name, workspace, body, version, seq, created_at_ms, updated_at_ms)
                 VALUES (?, ?, ?, ?, 1, ?, ?, ?)",
            )
            .bind(&self.kind)
            .bind(&self.name)
            .bind(&self.workspace)
            .bind(&text)
            .bind(seq)
            .bind(now)
            .bind(now)
            .execute(&mut *conn)
            .await?;
            return Ok((self.into_object(1, seq, now, now), Action::Create));
        };
        if workspace != self.workspace {
            return Err(StoreError::NameTaken { workspace });
        }
        let current = stored_version(version, &self.kind, &self.name)?;
        check(self.expect, Some(current))?;
        let next = version
            .checked_add(1)
            .ok_or_else(|| corrupt(&self.kind, &self.name, "the version is at its maximum"))?;
        sqlx::query(
            "UPDATE objects SET body = ?, version = ?, updated_at_ms = ? WHERE kind = ? AND name = ?",
        )
        .bind(&text)
        .bind(next)
        .bind(now)
        .bind(&self.kind)
        .bind(&self.name)
        .execute(&mut *conn)
        .await?;
        Ok((
            self.into_object(current + 1, seq, created_at_ms, now),
            Action::Update,
        ))
    }

    fn into_object(self, version: u64, seq: i64, created_at_ms: i64, now: i64) -> Object {
        Object {
            kind: self.kind,
            name: self.name,
            workspace: self.workspace,
            body: self.body,
            version,
            seq,
            created_at_ms,
            updated_at_ms: now,
        }
    }
}

/// Counts a new object in, refusing it past `max_objects`, and returns its
/// `seq`.
async fn allocate(conn: &mut SqliteConnection, max_objects: usize) -> Result<i64, StoreError> {
    let count: i64 = sqlx::query_scalar("SELECT objects FROM counters WHERE id = 1")
        .fetch_one(&mut *conn)
        .await?;
    if usize::try_from(count).unwrap_or(0) >= max_objects {
        return Err(StoreError::Full { limit: max_objects });
    }
    let seq: i64 = sqlx::query_scalar(
        "UPDATE counters SET next_seq = next_seq + 1, objects = objects + 1 WHERE id = 1
         RETURNING next_seq - 1",
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok(seq)
}

/// Deletes the object inside the caller's transaction; returns the
/// workspace that owned it.
async fn delete(
    conn: &mut SqliteConnection,
    kind: &str,
    name: &str,
    expect: Expect,
) -> Result<String, StoreError> {
    let stored: Option<(String, i64)> =
        sqlx::query_as("SELECT workspace, version FROM objects WHERE kind = ? AND name = ?")
            .bind(kind)
            .bind(name)
            .fetch_optional(&mut *conn)
            .await?;
    let Some((workspace, version)) = stored else {
        return Err(StoreError::NotFound);
    };
    check(expect, Some(stored_version(version, kind, name)?))?;
    sqlx::query("DELETE FROM objects WHERE kind = ? AND name = ?")
        .bind(kind)
        .bind(name)
        .execute(&mut *conn)
        .await?;
    sqlx::query("UPDATE counters SET objects = objects - 1 WHERE id = 1")
        .execute(&mut *conn)
        .await?;
    Ok(workspace)
}

/// The optimistic-concurrency check: `current` is the stored version, or
/// `None` for no object.
fn check(expect: Expect, current: Option<u64>) -> Result<(), StoreError> {
    match (expect, current) {
        (Expect::Any, _) | (Expect::Absent, None) | (Expect::Exists, Some(_)) => Ok(()),
        (Expect::Version(want), Some(have)) if want == have => Ok(()),
        _ => Err(StoreError::Conflict { current }),
    }
}

fn object_from_row(row: Row) -> Result<Object, StoreError> {
    let (kind, name, workspace, text, version, seq, created_at_ms, updated_at_ms) = row;
    let body: Value = serde_json::from_str(&text)
        .map_err(|e| corrupt(&kind, &name, &format!("the body is not JSON: {e}")))?;
    if !body.is_object() {
        return Err(corrupt(&kind, &name, "the body is not a JSON object"));
    }
    let version = stored_version(version, &kind, &name)?;
    Ok(Object {
        kind,
        name,
        workspace,
        body,
        version,
        seq,
        created_at_ms,
        updated_at_ms,
    })
}

fn stored_version(version: i64, kind: &str, name: &str) -> Result<u64, StoreError> {
    u64::try_from(version)
        .ok()
        .filter(|v| *v >= 1)
        .ok_or_else(|| {
            corrupt(
                kind,
                name,
                &format!("the version {version} is not positive"),
            )
        })
}

fn corrupt(kind: &str, name: &str, reason: &str) -> StoreError {
    StoreError::Corrupt {
        kind: kind.to_owned(),
        name: name.to_owned(),
        reason: reason.to_owned(),
    }
}

/// A body as stored: compact JSON text.
fn to_text(value: &Value) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|_| StoreError::Invalid {
        field: "body",
        reason: "cannot be written as JSON",
    })
}
