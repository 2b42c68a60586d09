//! Carillon's store of configuration created through the runtime API
//! (destinations, routes, templates, workspace channel settings; later
//! contacts and groups), and the audit log of every write to it. Objects
//! are opaque JSON bodies keyed by kind and name: the store knows nothing
//! of what a route or a template means. It is not the outbox: events and
//! deliveries stay in sled (`carillon-outbox`).
//!
//! # Why SQLite
//!
//! The store is one file in the data directory, written through `sqlx`
//! with WAL journaling and `synchronous = FULL`: when a write returns
//! `Ok`, its transaction is in the WAL and fsynced, so it survives
//! `kill -9` and power loss. Reads run beside a write (WAL readers see the
//! last commit). The schema is versioned migrations (`migrations/`,
//! embedded at compile time) that [`Store::open`] runs; a migration that
//! already ran is skipped, so every open is idempotent.
//!
//! # Optimistic concurrency
//!
//! Each object has a `version`: 1 when created, +1 on every update (the
//! API's ETag is derived from it). A write says what it expects to find
//! ([`Expect`]): anything, no object, or a given version. The check and
//! the write are one transaction that takes SQLite's write lock first
//! (`BEGIN IMMEDIATE`), so of two writers expecting the same version
//! exactly one succeeds; the other gets [`StoreError::Conflict`] with the
//! version now stored, and nothing is written.
//!
//! # Audit log
//!
//! Every write appends one [`AuditRecord`] in the write's transaction: the
//! object and its record are committed together or not at all. The
//! record's `before`/`after` bodies are given by the caller, already
//! redacted, so the store never learns which fields are secret.
//!
//! # Bounds
//!
//! The log keeps the newest [`AUDIT_KEEP`] records (the oldest are pruned
//! in the write that passes the cap), and the store refuses a create
//! beyond [`MAX_OBJECTS`] objects ([`StoreError::Full`]), so neither grows
//! the disk without bound. Both are [`Options`].

mod activations;
mod audit;
mod error;
mod objects;

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

pub use activations::{Activation, LinkError};
pub use audit::{Action, Actor, AuditQuery, AuditRecord, MAX_AUDIT_PAGE};
pub use error::StoreError;
pub use objects::{Change, Expect, Object, Written};

/// How many audit records are kept by default: the newest ones.
pub const AUDIT_KEEP: usize = 100_000;

/// How many objects the store holds at most by default.
pub const MAX_OBJECTS: usize = 200_000;

/// How long a write waits for another connection's write lock before it
/// fails with a database error.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Connections in the pool: readers run in parallel under WAL, writers
/// take turns on SQLite's lock, and the store's traffic is API calls.
const MAX_CONNECTIONS: u32 = 4;

/// The schema, embedded from `migrations/`.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The store's bounds; [`Default`] is [`AUDIT_KEEP`] and [`MAX_OBJECTS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Audit records kept (the newest); 0 is taken as 1.
    pub audit_keep: usize,
    /// Objects held at most; a create beyond it is refused.
    pub max_objects: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            audit_keep: AUDIT_KEEP,
            max_objects: MAX_OBJECTS,
        }
    }
}

/// The store: a small pool of connections to one SQLite file. Cloning is
/// cheap and shares the pool.
#[derive(Debug, Clone)]
pub struct Store {
    pool: SqlitePool,
    options: Options,
}

impl Store {
    /// Opens (or creates) the database file at `path` with the default
    /// [`Options`] and brings its schema up to date. The parent directory
    /// must exist.
    pub async fn open(path: &Path) -> Result<Store, StoreError> {
        Self::open_with(path, Options::default()).await
    }

    /// [`Store::open`] with explicit bounds.
    pub async fn open_with(path: &Path, options: Options) -> Result<Store, StoreError> {
        let connect = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .connect_with(connect)
            .await?;
        let options = Options {
            audit_keep: options.audit_keep.max(1),
            ..options
        };
        let store = Store { pool, options };
        if let Err(e) = store.prepare().await {
            store.close().await;
            return Err(e);
        }
        Ok(store)
    }

    /// Runs the migrations, then recounts the objects: the stored count is
    /// what the `max_objects` check reads, and a hand edit of the file
    /// must not leave it wrong for longer than until the next open.
    async fn prepare(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.pool).await?;
        sqlx::query(
            "UPDATE counters SET
                 objects = (SELECT COUNT(*) FROM objects),
                 next_seq = MAX(next_seq, (SELECT COALESCE(MAX(seq), 0) + 1 FROM objects))
             WHERE id = 1",
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Closes every connection, waiting for those in use to be returned.
    /// Later calls fail with a database error.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Now, in unix milliseconds (0 before 1970, which a sane clock never is).
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The durability contract rests on these settings, on every pooled
    /// connection.
    #[tokio::test]
    async fn connections_use_wal_full_sync_and_foreign_keys() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store.db")).await.unwrap();
        let mut conns = Vec::new();
        for _ in 0..MAX_CONNECTIONS {
            conns.push(store.pool.acquire().await.unwrap());
        }
        for conn in &mut conns {
            let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
                .fetch_one(&mut **conn)
                .await
                .unwrap();
            let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
                .fetch_one(&mut **conn)
                .await
                .unwrap();
            let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
                .fetch_one(&mut **conn)
                .await
                .unwrap();
            let busy: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
                .fetch_one(&mut **conn)
                .await
                .unwrap();
            assert_eq!((mode.as_str(), sync, fk, busy), ("wal", 2, 1, 5000));
        }
        drop(conns);
        store.close().await;
    }
}
