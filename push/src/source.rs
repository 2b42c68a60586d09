//! Data sources: a name, a driver and a connection URL (a secret: it is
//! never shown, and errors that might echo it are reported without it),
//! each with its own bounded pool.
//!
//! Pools connect lazily: a database that is down when the gateway starts
//! does not stop it; the first run (or [`Source::health`]) says so. SQLite
//! sources are opened read-only, so even a statement the checks let
//! through cannot write.

use std::str::FromStr;
use std::time::{Duration, Instant};

use serde::Serialize;
use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};

/// A source's database engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Driver {
    /// A SQLite file (`sqlite:PATH` or a bare path).
    Sqlite,
    /// `postgres://` or `postgresql://`.
    Postgres,
    /// `mysql://` or `mariadb://`.
    MySql,
}

impl Driver {
    /// The driver a URL names; a bare path is a SQLite file.
    pub fn of_url(url: &str) -> Result<Driver, SourceError> {
        let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
        match scheme.as_deref() {
            Some("postgres" | "postgresql") => Ok(Driver::Postgres),
            Some("mysql" | "mariadb") => Ok(Driver::MySql),
            Some("sqlite") => Ok(Driver::Sqlite),
            Some(other) => Err(SourceError::Url(format!(
                "the scheme {other:?} is not a supported database (sqlite, postgres, mysql, mariadb)"
            ))),
            None if url.starts_with("sqlite:") => Ok(Driver::Sqlite),
            None if !url.is_empty() => Ok(Driver::Sqlite),
            None => Err(SourceError::Url("the URL is empty".into())),
        }
    }
}

/// How many connections and how long to wait for one.
#[derive(Debug, Clone, Copy)]
pub struct SourceLimits {
    /// Connections open at once, at most.
    pub max_connections: u32,
    /// Waiting for a connection (from the pool or a new one), at most.
    pub acquire_timeout: Duration,
}

impl Default for SourceLimits {
    fn default() -> Self {
        SourceLimits {
            max_connections: 4,
            acquire_timeout: Duration::from_secs(10),
        }
    }
}

/// Why a source cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// The URL is not one (never echoed: it holds the password).
    #[error("the connection URL is not usable: {0}")]
    Url(String),
}

/// The pool of each driver.
#[derive(Debug, Clone)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
    MySql(MySqlPool),
}

/// A named data source and its pool.
#[derive(Debug, Clone)]
pub struct Source {
    name: String,
    driver: Driver,
    pub(crate) pool: Pool,
}

/// What a health check found.
#[derive(Debug, Clone, Serialize)]
pub struct Health {
    /// It answered `SELECT 1`.
    pub ok: bool,
    /// How long that took, in ms.
    pub latency_ms: u64,
    /// Why not, when not (the database's words, never the URL).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Checks `url` as [`Source::new`] would, without making a pool (the
/// config check): its driver, or why it is not usable.
pub fn check_url(url: &str) -> Result<Driver, SourceError> {
    let driver = Driver::of_url(url)?;
    let bad = |what: &str| SourceError::Url(format!("not a valid {what} URL"));
    match driver {
        Driver::Sqlite => {
            let url = if url.starts_with("sqlite:") {
                url.to_owned()
            } else {
                format!("sqlite:{url}")
            };
            SqliteConnectOptions::from_str(&url).map_err(|_| bad("SQLite"))?;
        }
        Driver::Postgres => {
            PgConnectOptions::from_str(url).map_err(|_| bad("PostgreSQL"))?;
        }
        Driver::MySql => {
            let url = match url.split_once("://") {
                Some((_, rest)) => format!("mysql://{rest}"),
                None => url.to_owned(),
            };
            MySqlConnectOptions::from_str(&url).map_err(|_| bad("MySQL"))?;
        }
    }
    Ok(driver)
}

impl Source {
    /// A source named `name` for `url`, connecting lazily (call it within
    /// a tokio runtime).
    pub fn new(name: &str, url: &str, limits: SourceLimits) -> Result<Source, SourceError> {
        let driver = Driver::of_url(url)?;
        // The parsers' messages may quote the URL: they are not passed on.
        let bad = |what: &str| SourceError::Url(format!("not a valid {what} URL"));
        let pool = match driver {
            Driver::Sqlite => {
                let url = if url.starts_with("sqlite:") {
                    url.to_owned()
                } else {
                    format!("sqlite:{url}")
                };
                let options = SqliteConnectOptions::from_str(&url)
                    .map_err(|_| bad("SQLite"))?
                    .read_only(true);
                Pool::Sqlite(
                    SqlitePoolOptions::new()
                        .max_connections(limits.max_connections)
                        .acquire_timeout(limits.acquire_timeout)
                        .connect_lazy_with(options),
                )
            }
            Driver::Postgres => {
                let options = PgConnectOptions::from_str(url).map_err(|_| bad("PostgreSQL"))?;
                Pool::Postgres(
                    PgPoolOptions::new()
                        .max_connections(limits.max_connections)
                        .acquire_timeout(limits.acquire_timeout)
                        .connect_lazy_with(options),
                )
            }
            Driver::MySql => {
                let url = match url.split_once("://") {
                    Some((_, rest)) => format!("mysql://{rest}"),
                    None => url.to_owned(),
                };
                let options = MySqlConnectOptions::from_str(&url).map_err(|_| bad("MySQL"))?;
                Pool::MySql(
                    MySqlPoolOptions::new()
                        .max_connections(limits.max_connections)
                        .acquire_timeout(limits.acquire_timeout)
                        .connect_lazy_with(options),
                )
            }
        };
        Ok(Source {
            name: name.to_owned(),
            driver,
            pool,
        })
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its driver.
    pub fn driver(&self) -> Driver {
        self.driver
    }

    /// Runs `SELECT 1`, waiting at most `timeout`.
    pub async fn health(&self, timeout: Duration) -> Health {
        let started = Instant::now();
        let ping = async {
            match &self.pool {
                Pool::Sqlite(p) => sqlx::query("SELECT 1").execute(p).await.map(|_| ()),
                Pool::Postgres(p) => sqlx::query("SELECT 1").execute(p).await.map(|_| ()),
                Pool::MySql(p) => sqlx::query("SELECT 1").execute(p).await.map(|_| ()),
            }
        };
        let error = match tokio::time::timeout(timeout, ping).await {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(crate::query::database_words(&e)),
            Err(_) => Some(format!("no answer within {} ms", timeout.as_millis())),
        };
        Health {
            ok: error.is_none(),
            latency_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            error,
        }
    }

    /// Closes its connections.
    pub async fn close(&self) {
        match &self.pool {
            Pool::Sqlite(p) => p.close().await,
            Pool::Postgres(p) => p.close().await,
            Pool::MySql(p) => p.close().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_names_the_driver_and_a_bad_one_is_not_echoed() {
        assert_eq!(Driver::of_url("postgres://u@h/db"), Ok(Driver::Postgres));
        assert_eq!(Driver::of_url("postgresql://h/db"), Ok(Driver::Postgres));
        assert_eq!(Driver::of_url("mariadb://root@h/test"), Ok(Driver::MySql));
        assert_eq!(Driver::of_url("sqlite:data.db"), Ok(Driver::Sqlite));
        assert_eq!(Driver::of_url("/var/lib/x.db"), Ok(Driver::Sqlite));
        assert!(Driver::of_url("oracle://scott:tiger@h").is_err());
        let e = Source::new(
            "s",
            "postgres://u:s3cret@h:notaport/db",
            SourceLimits::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(!e.contains("s3cret"), "{e}");
    }
}
