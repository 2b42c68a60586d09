//! Running a checked [`Statement`] against a [`Source`]: its parameters
//! bound with their types, in a read-only transaction (a read-only
//! connection for SQLite), at most `row_cap` rows kept (one more is read
//! to know that there were more), and a time limit the server enforces
//! where it can (PostgreSQL `statement_timeout`, MariaDB
//! `max_statement_time`, MySQL `max_execution_time`) and the client
//! enforces always: a result that arrives after the limit is a timeout.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures_util::TryStreamExt;
use serde::{Deserialize, Serialize};
use sqlx::{AssertSqlSafe, Column as _, Connection as _, Executor as _, Row as _, TypeInfo as _};

use crate::decode;
use crate::source::{Pool, Source};
use crate::sql::Statement;

/// A parameter's value, bound with its type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// A boolean.
    Bool(bool),
    /// A 64-bit integer.
    Int(i64),
    /// A double.
    Float(f64),
    /// Text (dates too: in PostgreSQL cast it where a date is wanted,
    /// `${day}::date`).
    Text(String),
}

/// How much a run may read, and for how long.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Rows kept; more make the result `truncated`.
    pub row_cap: usize,
    /// The whole run: connection, statement and reading the rows.
    pub timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            row_cap: DEFAULT_ROW_CAP,
            timeout: Duration::from_secs(60),
        }
    }
}

/// Rows kept by default.
pub const DEFAULT_ROW_CAP: usize = 10_000;

/// A result column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Column {
    /// Its name as the statement gives it.
    pub name: String,
    /// The database's type name (`INT8`, `VARCHAR`, `DECIMAL`).
    pub type_name: String,
}

/// What a run read.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Table {
    /// The columns, in order (also when no row came back).
    pub columns: Vec<Column>,
    /// The rows, each a value per column (numbers, text, booleans, null;
    /// dates and times as ISO 8601 text).
    pub rows: Vec<Vec<serde_json::Value>>,
    /// More rows than `row_cap` came back: only the first ones are kept.
    pub truncated: bool,
}

/// Why a run produced no table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// Parameters the statement uses were given no value.
    #[error("no value for the parameter(s) {}", .0.join(", "))]
    Missing(Vec<String>),
    /// The database could not be reached (the URL is never part of this).
    #[error("cannot reach the database: {0}")]
    Connect(String),
    /// The database refused or failed the statement (its own words).
    #[error("the database refused the statement: {0}")]
    Database(String),
    /// Over the time limit.
    #[error("the query ran longer than {0} ms and was stopped")]
    Timeout(u64),
    /// A column of a type Carillon cannot show.
    #[error(
        "column {column:?} has the type {type_name}, which cannot be shown; cast it to text in the query"
    )]
    Undecodable {
        /// The column.
        column: String,
        /// Its type.
        type_name: String,
    },
}

/// Runs `statement` on `source` with `values` for its parameters.
pub async fn run(
    source: &Source,
    statement: &Statement,
    values: &BTreeMap<String, Value>,
    limits: Limits,
) -> Result<Table, QueryError> {
    let missing: Vec<String> = statement
        .params()
        .into_iter()
        .filter(|p| !values.contains_key(*p))
        .map(str::to_owned)
        .collect();
    if !missing.is_empty() {
        return Err(QueryError::Missing(missing));
    }
    let (sql, names) = statement.to_driver();
    let binds: Vec<&Value> = names.iter().filter_map(|n| values.get(n)).collect();
    let ms = u64::try_from(limits.timeout.as_millis()).unwrap_or(u64::MAX);
    let started = Instant::now();
    let work = async {
        match &source.pool {
            Pool::Postgres(p) => postgres(p, sql, &binds, limits, ms).await,
            Pool::MySql(p) => mysql(p, sql, &binds, limits, ms).await,
            Pool::Sqlite(p) => sqlite(p, sql, &binds, limits).await,
        }
    };
    // The server stops the statement at the limit where it can; the
    // grace second lets its error (which says why) arrive first.
    let result = tokio::time::timeout(limits.timeout + Duration::from_secs(1), work).await;
    match result {
        Err(_) => Err(QueryError::Timeout(ms)),
        Ok(Ok(_)) if started.elapsed() > limits.timeout => Err(QueryError::Timeout(ms)),
        Ok(r) => r,
    }
}

/// The database's own words for `e`, never a connection URL.
pub(crate) fn database_words(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(db) => db.message().to_owned(),
        sqlx::Error::Io(io) => format!("connection failed ({})", io.kind()),
        sqlx::Error::Tls(_) => "the TLS handshake failed".into(),
        sqlx::Error::PoolTimedOut => "no connection became free in time".into(),
        sqlx::Error::PoolClosed => "the source is closed".into(),
        sqlx::Error::Protocol(p) => format!("protocol error: {p}"),
        sqlx::Error::Configuration(_) => "the connection settings are not usable".into(),
        other => other.to_string(),
    }
}

/// `e` as a [`QueryError`]: a server-side timeout, a refusal, or no
/// connection.
fn classify(e: &sqlx::Error, ms: u64) -> QueryError {
    match e {
        sqlx::Error::Database(db) => {
            // PostgreSQL query_canceled; MariaDB max_statement_time;
            // MySQL max_execution_time.
            let timeout = matches!(db.code().as_deref(), Some("57014" | "70100"))
                || db.message().contains("max_statement_time")
                || db.message().contains("maximum statement execution time");
            if timeout {
                QueryError::Timeout(ms)
            } else {
                QueryError::Database(database_words(e))
            }
        }
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => {
            QueryError::Database(database_words(e))
        }
        _ => QueryError::Connect(database_words(e)),
    }
}

macro_rules! bind_all {
    ($query:expr, $binds:expr) => {{
        let mut q = $query;
        for v in $binds {
            q = match v {
                Value::Null => q.bind(None::<String>),
                Value::Bool(b) => q.bind(*b),
                Value::Int(i) => q.bind(*i),
                Value::Float(f) => q.bind(*f),
                Value::Text(t) => q.bind(t.clone()),
            };
        }
        q
    }};
}

/// Reads up to `cap` rows from `stream` (one more tells truncation),
/// decoding each with `decode_row`; the columns from the first row.
macro_rules! collect_rows {
    ($stream:expr, $cap:expr, $decode:path, $ms:expr) => {{
        let mut stream = $stream;
        let mut rows = Vec::new();
        let mut columns: Option<Vec<Column>> = None;
        let mut truncated = false;
        while let Some(row) = stream.try_next().await.map_err(|e| classify(&e, $ms))? {
            if columns.is_none() {
                columns = Some(
                    row.columns()
                        .iter()
                        .map(|c| Column {
                            name: c.name().to_owned(),
                            type_name: c.type_info().name().to_owned(),
                        })
                        .collect(),
                );
            }
            if rows.len() == $cap {
                truncated = true;
                break;
            }
            rows.push($decode(&row)?);
        }
        (columns, rows, truncated)
    }};
}

/// The columns a statement would return, for a result with no row.
macro_rules! described {
    ($conn:expr, $sql:expr, $ms:expr) => {{
        let prepared = $conn
            .prepare(AssertSqlSafe($sql.to_owned()).into_sql_str())
            .await
            .map_err(|e| classify(&e, $ms))?;
        use sqlx::Statement as _;
        prepared
            .columns()
            .iter()
            .map(|c| Column {
                name: c.name().to_owned(),
                type_name: c.type_info().name().to_owned(),
            })
            .collect::<Vec<Column>>()
    }};
}

/// The whole read on one connection or transaction: the rows, and the
/// columns (described when no row came back).
macro_rules! read_table {
    ($conn:expr, $sql:expr, $binds:expr, $cap:expr, $decode:path, $ms:expr) => {{
        let (columns, rows, truncated) = {
            let q = bind_all!(sqlx::query(AssertSqlSafe($sql.clone())), $binds);
            collect_rows!(q.fetch(&mut *$conn), $cap, $decode, $ms)
        };
        let columns = match columns {
            Some(c) => c,
            None => described!((&mut *$conn), $sql, $ms),
        };
        Table {
            columns,
            rows,
            truncated,
        }
    }};
}

use sqlx::SqlSafeStr as _;

async fn postgres(
    pool: &sqlx::PgPool,
    sql: String,
    binds: &[&Value],
    limits: Limits,
    ms: u64,
) -> Result<Table, QueryError> {
    let mut tx = pool
        .begin_with("BEGIN READ ONLY")
        .await
        .map_err(|e| classify(&e, ms))?;
    sqlx::query(AssertSqlSafe(format!("SET LOCAL statement_timeout = {ms}")))
        .execute(&mut *tx)
        .await
        .map_err(|e| classify(&e, ms))?;
    let table = read_table!(tx, sql, binds, limits.row_cap, decode::postgres, ms);
    // Nothing was written; ending the transaction frees the connection.
    let _ = tx.rollback().await;
    Ok(table)
}

async fn mysql(
    pool: &sqlx::MySqlPool,
    sql: String,
    binds: &[&Value],
    limits: Limits,
    ms: u64,
) -> Result<Table, QueryError> {
    let mut conn = pool.acquire().await.map_err(|e| classify(&e, ms))?;
    // MariaDB names its limit in seconds, MySQL in ms; each refuses the
    // other's name, which is then left unset.
    let secs = (ms as f64) / 1000.0;
    let _ = conn
        .execute(AssertSqlSafe(format!(
            "SET SESSION max_statement_time = {secs}"
        )))
        .await;
    let _ = conn
        .execute(AssertSqlSafe(format!(
            "SET SESSION max_execution_time = {ms}"
        )))
        .await;
    let mut tx = conn
        .begin_with("START TRANSACTION READ ONLY")
        .await
        .map_err(|e| classify(&e, ms))?;
    let table = read_table!(tx, sql, binds, limits.row_cap, decode::mysql, ms);
    let _ = tx.rollback().await;
    Ok(table)
}

async fn sqlite(
    pool: &sqlx::SqlitePool,
    sql: String,
    binds: &[&Value],
    limits: Limits,
) -> Result<Table, QueryError> {
    // The connection is read-only; SQLite has no server-side limit, so the
    // client's stops waiting (the statement ends on its worker thread).
    let ms = u64::try_from(limits.timeout.as_millis()).unwrap_or(u64::MAX);
    let mut conn = pool.acquire().await.map_err(|e| classify(&e, ms))?;
    Ok(read_table!(
        conn,
        sql,
        binds,
        limits.row_cap,
        decode::sqlite,
        ms
    ))
}

/// The columns `statement` would answer, from the database's description
/// of it (prepared, not run): a task's output parameters.
pub async fn describe(
    source: &Source,
    statement: &Statement,
    timeout: Duration,
) -> Result<Vec<Column>, QueryError> {
    let (sql, _) = statement.to_driver();
    let ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
    let work = async {
        match &source.pool {
            Pool::Postgres(p) => {
                let mut conn = p.acquire().await.map_err(|e| classify(&e, ms))?;
                Ok(described!((&mut *conn), sql, ms))
            }
            Pool::MySql(p) => {
                let mut conn = p.acquire().await.map_err(|e| classify(&e, ms))?;
                Ok(described!((&mut *conn), sql, ms))
            }
            Pool::Sqlite(p) => {
                let mut conn = p.acquire().await.map_err(|e| classify(&e, ms))?;
                Ok(described!((&mut *conn), sql, ms))
            }
        }
    };
    tokio::time::timeout(timeout, work)
        .await
        .unwrap_or(Err(QueryError::Timeout(ms)))
}
