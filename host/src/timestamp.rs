//! The outbox's timestamps as the rest of the host reads them: a leaf, so
//! the API's views and the timers that build events share one conversion.

use carillon_outbox::Timestamp;

/// The outbox's millisecond timestamp as a `jiff` one (the Unix epoch if
/// it is out of jiff's range, which no real clock reaches).
pub fn to_jiff(t: Timestamp) -> jiff::Timestamp {
    i64::try_from(t.as_millis())
        .ok()
        .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
}
