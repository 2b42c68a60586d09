//! The query side against real databases: PostgreSQL and MariaDB on the
//! machine (`.ci/run` starts them; `CARILLON_TEST_POSTGRES`,
//! `CARILLON_TEST_MYSQL` point elsewhere) and SQLite files. Each driver:
//! bound parameters (an injection attempt stays data), typed results, the
//! row cap, an empty result's columns, a missing parameter, a slow query
//! stopped at its limit, and a database that cannot be reached.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use carillon_push::{
    Driver, Limits, QueryError, Source, SourceLimits, Statement, Table, Value, run,
};
use serde_json::json;

fn postgres_url() -> String {
    std::env::var("CARILLON_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

fn mysql_url() -> String {
    std::env::var("CARILLON_TEST_MYSQL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into())
}

/// A table name no other run uses (CI runs may share a database).
fn table_name(driver: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("push_orders_{driver}_{}_{nanos}", std::process::id())
}

fn values(pairs: &[(&str, Value)]) -> BTreeMap<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

async fn query(
    source: &Source,
    sql: &str,
    vals: &[(&str, Value)],
    limits: Limits,
) -> Result<Table, QueryError> {
    let statement = Statement::parse(sql, source.driver()).unwrap();
    run(source, &statement, &values(vals), limits).await
}

/// Writes the sample rows with the driver's own pool (the source is
/// read-only).
async fn seed(driver: Driver, url: &str, table: &str) {
    let ddl = match driver {
        Driver::Postgres => format!(
            "CREATE TABLE {table} (region TEXT, amount NUMERIC(10,2), day DATE, at TIMESTAMPTZ, n INT, ok BOOLEAN)"
        ),
        Driver::MySql => format!(
            "CREATE TABLE {table} (region VARCHAR(32), amount DECIMAL(10,2), day DATE, at DATETIME, n INT, ok BOOLEAN)"
        ),
        Driver::Sqlite => format!(
            "CREATE TABLE {table} (region TEXT, amount REAL, day TEXT, at TEXT, n INTEGER, ok INTEGER)"
        ),
    };
    let at = match driver {
        Driver::Postgres => "'2026-12-06 09:00:00+00'",
        _ => "'2026-12-06 09:00:00'",
    };
    let truth = |b: bool| match driver {
        Driver::Sqlite => {
            if b {
                "1"
            } else {
                "0"
            }
        }
        _ => {
            if b {
                "TRUE"
            } else {
                "FALSE"
            }
        }
    };
    let mut statements = vec![ddl];
    for (i, (region, amount)) in [
        ("north", 120.5),
        ("south", 80.0),
        ("east", 99.99),
        ("west", 61.0),
        ("north", 10.25),
    ]
    .into_iter()
    .enumerate()
    {
        statements.push(format!(
            "INSERT INTO {table} VALUES ('{region}', {amount}, '2026-12-06', {at}, {i}, {})",
            truth(i % 2 == 0)
        ));
    }
    exec_all(driver, url, statements).await;
}

/// Runs `statements` with the driver's own pool (writable, unlike a
/// source).
async fn exec_all(driver: Driver, url: &str, statements: Vec<String>) {
    macro_rules! each {
        ($pool:expr) => {{
            let pool = $pool;
            for s in statements {
                sqlx::query(sqlx::AssertSqlSafe(s))
                    .execute(&pool)
                    .await
                    .unwrap();
            }
            pool.close().await;
        }};
    }
    match driver {
        Driver::Postgres => each!(sqlx::PgPool::connect(url).await.unwrap()),
        Driver::MySql => each!(sqlx::MySqlPool::connect(url).await.unwrap()),
        Driver::Sqlite => {
            let options = url
                .parse::<sqlx::sqlite::SqliteConnectOptions>()
                .unwrap()
                .create_if_missing(true);
            each!(sqlx::SqlitePool::connect_with(options).await.unwrap());
        }
    }
}

async fn drop_table(driver: Driver, url: &str, table: &str) {
    exec_all(driver, url, vec![format!("DROP TABLE {table}")]).await;
}

/// Everything every driver must do, on `table` seeded above.
async fn common(source: &Source, table: &str, slow_sql: &str) {
    let fast = Limits::default();
    // Bound parameters: the region and a minimum amount.
    let t = query(
        source,
        &format!("SELECT region, amount, day, n, ok FROM {table} WHERE region = ${{region}} AND amount >= ${{min}} ORDER BY n"),
        &[("region", Value::Text("north".into())), ("min", Value::Float(1.0))],
        fast,
    )
    .await
    .unwrap();
    let names: Vec<&str> = t.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["region", "amount", "day", "n", "ok"]);
    assert_eq!(t.rows.len(), 2, "{t:?}");
    assert_eq!(t.rows[0][0], json!("north"));
    assert_eq!(t.rows[0][1], json!(120.5));
    assert_eq!(t.rows[0][2], json!("2026-12-06"));
    assert_eq!(t.rows[0][3], json!(0));
    assert!(!t.truncated);
    // An injection attempt in a value is data: no region is called that.
    let t = query(
        source,
        &format!("SELECT region FROM {table} WHERE region = ${{region}}"),
        &[("region", Value::Text("north' OR '1'='1".into()))],
        fast,
    )
    .await
    .unwrap();
    assert!(t.rows.is_empty(), "{t:?}");
    // An empty result still names its columns.
    assert_eq!(t.columns.len(), 1);
    assert_eq!(t.columns[0].name, "region");
    // The row cap keeps the first rows and says there were more.
    let t = query(
        source,
        &format!("SELECT n FROM {table} ORDER BY n"),
        &[],
        Limits { row_cap: 2, ..fast },
    )
    .await
    .unwrap();
    assert_eq!(t.rows, [[json!(0)], [json!(1)]]);
    assert!(t.truncated);
    // A parameter without a value.
    let e = query(
        source,
        &format!("SELECT n FROM {table} WHERE n > ${{from}}"),
        &[],
        fast,
    )
    .await
    .unwrap_err();
    assert_eq!(e, QueryError::Missing(vec!["from".into()]));
    // A statement the database refuses, in its own words.
    let e = query(source, "SELECT nope FROM no_such_table_here", &[], fast)
        .await
        .unwrap_err();
    assert!(matches!(e, QueryError::Database(_)), "{e}");
    // Described without running: the columns it would answer.
    let statement = Statement::parse(
        &format!("SELECT region, n AS number FROM {table} WHERE n > ${{x}}"),
        source.driver(),
    )
    .unwrap();
    let columns = carillon_push::describe(source, &statement, Duration::from_secs(10))
        .await
        .unwrap();
    let names: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["region", "number"]);
    // A slow query is stopped at its limit.
    let started = Instant::now();
    let e = query(
        source,
        slow_sql,
        &[],
        Limits {
            timeout: Duration::from_millis(700),
            ..fast
        },
    )
    .await
    .unwrap_err();
    assert_eq!(e, QueryError::Timeout(700), "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(source.health(Duration::from_secs(5)).await.ok);
}

#[tokio::test]
async fn postgresql() {
    let url = postgres_url();
    let table = table_name("pg");
    seed(Driver::Postgres, &url, &table).await;
    let source = Source::new("pg", &url, SourceLimits::default()).unwrap();
    common(&source, &table, "SELECT pg_sleep(5)").await;
    // Dates and instants as ISO 8601, decimals as numbers.
    let t = query(
        &source,
        &format!("SELECT at, amount * 2 AS twice, ${{d}}::date AS d FROM {table} WHERE n = 0"),
        &[("d", Value::Text("2026-12-01".into()))],
        Limits::default(),
    )
    .await
    .unwrap();
    assert_eq!(
        t.rows[0],
        [
            json!("2026-12-06T09:00:00Z"),
            json!(241),
            json!("2026-12-01")
        ]
    );
    // The transaction is read-only: a data-modifying CTE is refused by the
    // server even though it starts with WITH.
    let e = query(
        &source,
        &format!("WITH gone AS (DELETE FROM {table} RETURNING n) SELECT count(*) FROM gone"),
        &[],
        Limits::default(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&e, QueryError::Database(m) if m.contains("read-only")),
        "{e}"
    );
    source.close().await;
    drop_table(Driver::Postgres, &url, &table).await;
}

#[tokio::test]
async fn mariadb() {
    let url = mysql_url();
    let table = table_name("my");
    seed(Driver::MySql, &url, &table).await;
    let source = Source::new(
        "maria",
        &url.replacen("mysql://", "mariadb://", 1),
        SourceLimits::default(),
    )
    .unwrap();
    common(&source, &table, "SELECT SLEEP(5)").await;
    let t = query(
        &source,
        &format!("SELECT at, amount * 2 AS twice, ok FROM {table} WHERE n = 0"),
        &[],
        Limits::default(),
    )
    .await
    .unwrap();
    assert_eq!(
        t.rows[0],
        [json!("2026-12-06T09:00:00"), json!(241), json!(true)]
    );
    source.close().await;
    drop_table(Driver::MySql, &url, &table).await;
}

#[tokio::test]
async fn sqlite_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shop.db");
    let url = format!("sqlite:{}", path.display());
    let table = "orders";
    seed(Driver::Sqlite, &url, table).await;
    // A bare path is a SQLite source too.
    let source = Source::new("shop", &path.display().to_string(), SourceLimits::default()).unwrap();
    let slow = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 50000000) SELECT count(*) FROM c";
    common(&source, table, slow).await;
    source.close().await;
}

#[tokio::test]
async fn a_database_that_cannot_be_reached_is_reported_without_its_url() {
    let limits = SourceLimits {
        acquire_timeout: Duration::from_secs(2),
        ..SourceLimits::default()
    };
    let source = Source::new(
        "down",
        "postgres://postgres:s3cret@127.0.0.1:1/test",
        limits,
    )
    .unwrap();
    let health = source.health(Duration::from_secs(5)).await;
    assert!(!health.ok);
    let e = query(&source, "SELECT 1", &[], Limits::default())
        .await
        .unwrap_err();
    assert!(matches!(e, QueryError::Connect(_)), "{e}");
    assert!(!e.to_string().contains("s3cret"), "{e}");
    assert!(!format!("{health:?}").contains("s3cret"));
}
