//! The audit log: one record per write, appended in the write's
//! transaction, pruned to the newest `audit_keep` records.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use crate::{Store, StoreError};

/// The most records one [`Store::audit`] call returns.
pub const MAX_AUDIT_PAGE: u32 = 1000;

/// Who wrote, for the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The API token's name (never its secret).
    pub token: String,
    /// The token's role.
    pub role: String,
}

/// What a write did to its object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// The object did not exist.
    Create,
    /// The object existed and was replaced.
    Update,
    /// The object was removed.
    Delete,
}

impl Action {
    /// The stored (and serialized) name.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
        }
    }

    fn parse(s: &str) -> Option<Action> {
        match s {
            "create" => Some(Action::Create),
            "update" => Some(Action::Update),
            "delete" => Some(Action::Delete),
            _ => None,
        }
    }
}

/// One write, as the audit log shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditRecord {
    /// Increasing with every write, never reused.
    pub id: i64,
    /// When, unix milliseconds.
    pub at_ms: i64,
    /// The token's name ([`Actor::token`]).
    pub actor: String,
    /// The token's role.
    pub role: String,
    /// The workspace of the object written.
    pub workspace: String,
    /// Create, update or delete.
    pub action: Action,
    /// The object's kind.
    pub kind: String,
    /// The object's name.
    pub name: String,
    /// The body before the write, as the writer gave it (redacted).
    pub before: Option<Value>,
    /// The body after the write, as the writer gave it (redacted).
    pub after: Option<Value>,
}

/// Which audit records to read: every filter that is `Some` must match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditQuery {
    /// Only this workspace's records.
    pub workspace: Option<String>,
    /// Only records about objects of this kind.
    pub kind: Option<String>,
    /// Only records about objects of this name.
    pub name: Option<String>,
    /// The next page: only records with an id below this one.
    pub before_id: Option<i64>,
    /// At most this many records, clamped to `1..=`[`MAX_AUDIT_PAGE`].
    pub limit: u32,
}

/// A record to append (the store's side of [`AuditRecord`]).
pub(crate) struct Entry<'a> {
    pub at_ms: i64,
    pub actor: &'a Actor,
    pub workspace: &'a str,
    pub action: Action,
    pub kind: &'a str,
    pub name: &'a str,
    pub before: Option<&'a str>,
    pub after: Option<&'a str>,
}

/// Appends `entry` inside the caller's transaction and prunes the log to
/// the newest `keep` records; returns the new record's id.
///
/// Ids are contiguous (AUTOINCREMENT, and a rolled-back insert rolls its
/// id back too), so the newest `keep` records are those above
/// `id - keep`: the prune is one range delete of what fell out, with no
/// count.
pub(crate) async fn append(
    conn: &mut SqliteConnection,
    entry: &Entry<'_>,
    keep: usize,
) -> Result<i64, StoreError> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO audit (at_ms, actor, role, workspace, action, kind, name, before, after)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(entry.at_ms)
    .bind(&entry.actor.token)
    .bind(&entry.actor.role)
    .bind(entry.workspace)
    .bind(entry.action.as_str())
    .bind(entry.kind)
    .bind(entry.name)
    .bind(entry.before)
    .bind(entry.after)
    .fetch_one(&mut *conn)
    .await?;
    let cutoff = id.saturating_sub(i64::try_from(keep).unwrap_or(i64::MAX));
    if cutoff > 0 {
        sqlx::query("DELETE FROM audit WHERE id <= ?")
            .bind(cutoff)
            .execute(&mut *conn)
            .await?;
    }
    Ok(id)
}

/// `id, at_ms, actor, role, workspace, action, kind, name, before, after`.
type Row = (
    i64,
    i64,
    String,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
);

impl Store {
    /// The audit records matching `query`, newest first.
    pub async fn audit(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError> {
        // Only the filters given are in the SQL, so SQLite can use the
        // (workspace, id) or (kind, name, id) index for the ones that are.
        let mut sql = QueryBuilder::<Sqlite>::new(
            "SELECT id, at_ms, actor, role, workspace, action, kind, name, before, after
             FROM audit WHERE 1 = 1",
        );
        if let Some(workspace) = &query.workspace {
            sql.push(" AND workspace = ").push_bind(workspace.clone());
        }
        if let Some(kind) = &query.kind {
            sql.push(" AND kind = ").push_bind(kind.clone());
        }
        if let Some(name) = &query.name {
            sql.push(" AND name = ").push_bind(name.clone());
        }
        if let Some(before_id) = query.before_id {
            sql.push(" AND id < ").push_bind(before_id);
        }
        sql.push(" ORDER BY id DESC LIMIT ")
            .push_bind(i64::from(query.limit.clamp(1, MAX_AUDIT_PAGE)));
        let rows: Vec<Row> = sql.build_query_as().fetch_all(&self.pool).await?;
        rows.into_iter().map(record_from_row).collect()
    }
}

fn record_from_row(row: Row) -> Result<AuditRecord, StoreError> {
    let (id, at_ms, actor, role, workspace, action, kind, name, before, after) = row;
    let corrupt = |reason: String| StoreError::Corrupt {
        kind: "audit".to_owned(),
        name: id.to_string(),
        reason,
    };
    let action =
        Action::parse(&action).ok_or_else(|| corrupt(format!("unknown action `{action}`")))?;
    let parse = |text: Option<String>, which: &str| {
        text.map(|t| serde_json::from_str::<Value>(&t))
            .transpose()
            .map_err(|e| corrupt(format!("`{which}` is not JSON: {e}")))
    };
    Ok(AuditRecord {
        id,
        at_ms,
        actor,
        role,
        workspace,
        action,
        kind,
        name,
        before: parse(before, "before")?,
        after: parse(after, "after")?,
    })
}
