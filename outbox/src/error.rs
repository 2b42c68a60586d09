//! The outbox's errors. Storage failures and corrupt records are `Err`s an
//! operator must look at; outcomes a caller is expected to branch on (a
//! duplicate, a lost lease, a delivery that is not dead) are values in the
//! `Ok` side (`Enqueued`, `Completion`, `Requeue`).

use std::time::Duration;

/// A storage failure or a corrupt record.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// sled failed (I/O, its own corruption checks).
    #[error("outbox storage failed")]
    Storage(#[from] sled::Error),
    /// A stored record or key could not be decoded.
    #[error("corrupt record in tree `{tree}` at key `{key}`: {reason}")]
    Corrupt {
        /// The tree holding it.
        tree: &'static str,
        /// The key, escaped.
        key: String,
        /// What was wrong.
        reason: String,
    },
    /// The outbox is closing (or its committer stopped): nothing was
    /// written.
    #[error("the outbox is closed: {0}")]
    Closed(String),
    /// A caller's value is out of the outbox's bounds: nothing was written.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// What was wrong.
        field: &'static str,
        /// Why.
        reason: &'static str,
    },
}

/// Why [`Outbox::open`](crate::Outbox::open) failed.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The database could not be opened or read.
    #[error("cannot open the outbox at {path}")]
    Storage {
        /// The database directory.
        path: String,
        /// The cause.
        #[source]
        source: OutboxError,
    },
    /// The database was written by a newer Carillon.
    #[error(
        "the outbox schema is version {found}, but this build knows up to version {supported}; \
         upgrade Carillon or restore a backup"
    )]
    SchemaTooNew {
        /// The version on disk.
        found: u32,
        /// The newest version this build knows.
        supported: u32,
    },
    /// The schema version key holds something that is not a version.
    #[error("the outbox schema version key is corrupt: {0}")]
    BadSchemaVersion(String),
    /// The configuration is out of range.
    #[error("invalid outbox configuration: {0}")]
    Config(String),
}

/// Why [`Outbox::enqueue`](crate::Outbox::enqueue) wrote nothing or could
/// not confirm durability.
#[derive(Debug, thiserror::Error)]
pub enum EnqueueError {
    /// Too many unfinished deliveries: nothing was written; try again later.
    #[error("the outbox is full; retry after {retry_after:?}")]
    Backpressure {
        /// A hint for the client (`Retry-After`).
        retry_after: Duration,
    },
    /// The outbox's file system has less free space than the reserve
    /// (`min_free_bytes`) would keep after this event: nothing was
    /// written; try again once space is freed.
    #[error(
        "the outbox's disk is nearly full ({available} bytes free, {reserve} kept in reserve); \
         retry after {retry_after:?}"
    )]
    StorageFull {
        /// Free bytes on the file system when the batch was checked.
        available: u64,
        /// The reserve (`min_free_bytes`).
        reserve: u64,
        /// A hint for the client (`Retry-After`).
        retry_after: Duration,
    },
    /// A field cannot be stored (e.g. contains a NUL byte); nothing was
    /// written.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// Which field.
        field: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// Writing failed; nothing was written.
    #[error(transparent)]
    Outbox(#[from] OutboxError),
    /// The write was made but the flush covering it failed: it may or may
    /// not survive a crash, so the event must not be acknowledged.
    #[error("the flush covering the write failed: {0}")]
    Flush(String),
    /// The outbox is shutting down.
    #[error("the outbox is closed")]
    Closed,
}
