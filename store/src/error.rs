//! The store's errors. The first five are answers about the caller's
//! write (nothing was written); `Corrupt`, `Database` and `Migrate` are
//! failures an operator must look at.

/// Why a read or write failed. A failed write wrote nothing: neither the
/// object nor its audit record.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The stored version is not the one the writer expected
    /// ([`Expect`](crate::Expect)).
    #[error("{}", conflict_message(*current))]
    Conflict {
        /// The version stored now; `None` if the object does not exist.
        current: Option<u64>,
    },
    /// The object to delete does not exist.
    #[error("the object does not exist")]
    NotFound,
    /// The name is already used by an object of the same kind in another
    /// workspace (the configuration namespace is global).
    #[error("the name is already taken in workspace `{workspace}`")]
    NameTaken {
        /// The workspace that holds it; the caller decides whether to reveal it.
        workspace: String,
    },
    /// The store holds its maximum number of objects; a create is refused
    /// until some are deleted.
    #[error("the store is full: it holds at most {limit} objects")]
    Full {
        /// The limit ([`Options::max_objects`](crate::Options::max_objects)).
        limit: usize,
    },
    /// The caller's value cannot be stored (e.g. a body that is not a JSON
    /// object).
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// Which field.
        field: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// A stored row could not be read back (e.g. a body that is not a JSON
    /// object): the database was changed by something else than this crate.
    #[error("the stored {kind} `{name}` is corrupt: {reason}")]
    Corrupt {
        /// The object's kind (`audit` for an audit record).
        kind: String,
        /// The object's name (the record id for an audit record).
        name: String,
        /// What was wrong.
        reason: String,
    },
    /// SQLite failed (I/O, a locked database past the busy timeout, …).
    #[error("the store's database failed: {0}")]
    Database(#[from] sqlx::Error),
    /// The schema could not be brought up to date at open (or the database
    /// was migrated by a newer Carillon).
    #[error("the store's schema migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

fn conflict_message(current: Option<u64>) -> String {
    match current {
        Some(v) => {
            format!("the object is not at the version the writer expected: it is at version {v}")
        }
        None => {
            "the object is not at the version the writer expected: it does not exist".to_owned()
        }
    }
}
