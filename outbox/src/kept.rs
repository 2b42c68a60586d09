//! Kept records: small values under a caller's key (the `kept` tree),
//! written in the same atomic write as an event, so the record and the
//! event it explains are durable together or not at all.
//!
//! Resource monitors keep their firing state here: the `resource.alert`
//! that starts firing writes the record, the `resource.resolved` that ends
//! it removes it. A restart then finds exactly the rules that are firing,
//! with when they last fired: no duplicate alert, no lost recovery.
//!
//! The outbox does not interpret keys or values. Keys hold no NUL byte
//! (the caller's own separators may be anything else); a value is at most
//! [`MAX_VALUE`] bytes.

/// The largest value kept: these records describe state, not payloads.
pub const MAX_VALUE: usize = 16 * 1024;

/// The largest key.
pub const MAX_KEY: usize = 1024;

/// A kept record to write (or remove) with an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeptWrite {
    /// The record's key.
    pub key: String,
    /// Its new value; `None` removes it.
    pub value: Option<Vec<u8>>,
}
