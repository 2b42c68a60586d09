//! Scheduled data push, the query side: named data sources (SQLite,
//! PostgreSQL, MySQL and MariaDB, through sqlx) and one read-only
//! statement run on them with `${name}` parameters bound as values, a row
//! cap and a time limit, answering a table of JSON values.
//!
//! - [`sql`]: [`Statement::parse`], the checks a task's SQL passes before
//!   it may run (one statement, reading, parameters named and outside
//!   literals) and its text for each driver's placeholders.
//! - [`source`]: [`Source`], a driver and a bounded, lazily connected pool
//!   per source (read-only for SQLite), and its health.
//! - [`query`]: [`run`], in a read-only transaction, with the server's
//!   time limit where it has one and the client's always.
//!
//! Nothing here knows of schedules, messages or the gateway: the host
//! turns a [`Table`] into a message and delivers it like any event.

mod decode;
pub mod query;
pub mod schedule;
pub mod source;
pub mod sql;

pub use self::query::{Column, Limits, QueryError, Table, Value, describe, run};
pub use self::schedule::{Compiled, MonthDay, Schedule, ScheduleError, compile};
pub use self::source::{Driver, Health, Source, SourceError, SourceLimits, check_url};
pub use self::sql::{SqlError, Statement};
