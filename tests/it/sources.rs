//! Data sources through the API, against a SQLite file and the machine's
//! PostgreSQL (`.ci/run` starts them; `CARILLON_TEST_POSTGRES` points
//! elsewhere): each source's health without its URL, a query with bound
//! parameters (an injection attempt stays data), every refusal at its
//! pointer, a slow query stopped, and who may query which source.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{config_file, gateway_from_file as start};

const ADMIN: &str = "adm-sources-0123456789";
const INGEST: &str = "ing-sources-0123456789";
const VIEWER: &str = "vwr-sources-0123456789";
const TEAM: &str = "wsa-team-sources-0123456789";

fn postgres_url() -> String {
    std::env::var("CARILLON_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

async fn seed_sqlite(path: &std::path::Path) {
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true);
    let pool = sqlx::SqlitePool::connect_with(options)
        .await
        .expect("sqlite");
    for sql in [
        "CREATE TABLE orders (region TEXT, amount REAL)",
        "INSERT INTO orders VALUES ('north', 120.5), ('south', 80), ('east', 42), ('west', 61)",
    ] {
        sqlx::query(sql).execute(&pool).await.expect("seed");
    }
    pool.close().await;
}

async fn call(
    http: &reqwest::Client,
    method: &str,
    url: String,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut r = http
        .request(method.parse().expect("method"), url)
        .bearer_auth(token);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.expect("request");
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn error_path(body: &Value) -> &str {
    body["error"]["errors"][0]["path"]
        .as_str()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sources_are_listed_without_their_urls_and_queried_with_bound_parameters() {
    let dir = tempfile::tempdir().expect("tempdir");
    let shop = dir.path().join("shop.db");
    seed_sqlite(&shop).await;
    // The PostgreSQL URL is a secret read from a file.
    std::fs::write(dir.path().join("pg-url"), postgres_url()).expect("write");
    let file = config_file(
        dir.path(),
        ADMIN,
        INGEST,
        &format!(
            r#"
[[auth.tokens]]
name = "viewer"
role = "viewer"
workspace = "default"
token = "{VIEWER}"
[[auth.tokens]]
name = "team-admin"
role = "workspace-admin"
workspace = "team"
token = "{TEAM}"
[workspaces.team]
[sources.shop]
url = "sqlite:{shop}"
[sources.warehouse]
url = "${{file:pg-url}}"
dev_url = "${{file:pg-url}}"
max_connections = 2
[sources.team-db]
workspace = "team"
url = "{shop}"
"#,
            shop = shop.display(),
        ),
    );
    let gateway = start(&file).await;
    let base = format!("http://{}/v1/workspaces", gateway.local_addr());
    let http = reqwest::Client::new();

    // The list: drivers and health, never a URL.
    let (s, list) = call(
        &http,
        "GET",
        format!("{base}/default/sources"),
        VIEWER,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{list}");
    let text = list.to_string();
    assert!(
        !text.contains("postgres://") && !text.contains("shop.db"),
        "{text}"
    );
    let items = list["items"].as_array().expect("items");
    assert_eq!(items.len(), 2, "{list}");
    let warehouse = items
        .iter()
        .find(|i| i["name"] == "warehouse")
        .expect("warehouse");
    assert_eq!(warehouse["driver"], "postgres");
    let envs = warehouse["environments"].as_array().expect("environments");
    assert_eq!(envs.len(), 2, "{warehouse}");
    assert!(envs.iter().all(|e| e["ok"] == true), "{warehouse}");

    // A query with a bound parameter.
    let query = |source: &str, body: Value, token: &'static str| {
        let (http, url) = (
            http.clone(),
            format!("{base}/default/sources/{source}/query"),
        );
        async move { call(&http, "POST", url, token, Some(body)).await }
    };
    let sql = "SELECT region, amount FROM orders WHERE amount >= ${min} ORDER BY amount DESC";
    let (s, t) = query(
        "shop",
        json!({ "sql": sql, "params": { "min": 60 } }),
        ADMIN,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{t}");
    assert_eq!(t["params"], json!(["min"]));
    assert_eq!(t["env"], "prod");
    assert_eq!(
        t["rows"],
        json!([["north", 120.5], ["south", 80.0], ["west", 61.0]])
    );
    assert_eq!(t["columns"][0]["name"], "region");
    assert_eq!(t["truncated"], false);
    // The row cap.
    let (s, t) = query(
        "shop",
        json!({ "sql": sql, "params": { "min": 0 }, "row_cap": 2 }),
        ADMIN,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{t}");
    assert_eq!(t["rows"].as_array().map(Vec::len), Some(2));
    assert_eq!(t["truncated"], true);
    // An injection attempt is a value.
    let (s, t) = query(
        "shop",
        json!({ "sql": "SELECT region FROM orders WHERE region = ${r}", "params": { "r": "x' OR '1'='1" } }),
        ADMIN,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{t}");
    assert_eq!(t["rows"], json!([]));

    // A parameter named like a time expression is evaluated at `at` in
    // `time_zone` (a task's fire time and zone); a given value wins.
    let (s, t) = query(
        "shop",
        json!({ "sql": "SELECT ${yyyymmdd-1} AS day, ${hh24:mi} AS at, ${x} AS x",
                "params": { "x": 1 }, "at": "2026-12-07T00:30:00Z", "time_zone": "Asia/Shanghai" }),
        ADMIN,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{t}");
    assert_eq!(t["rows"], json!([["20261206", "08:30", 1]]), "{t}");
    assert_eq!(t["time_params"], json!(["yyyymmdd-1", "hh24:mi"]));

    // Describing a statement: its parameters and the columns it would
    // answer, without running it.
    let (s, d) = call(
        &http,
        "POST",
        format!("{base}/default/sources/warehouse/describe"),
        ADMIN,
        Some(json!({ "sql": "SELECT ${n}::int AS next, now() AS at, ${yyyymmdd} AS day" })),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{d}");
    assert_eq!(d["params"], json!(["n", "yyyymmdd"]));
    assert_eq!(d["time_params"], json!(["yyyymmdd"]));
    let columns: Vec<&str> = d["columns"]
        .as_array()
        .expect("columns")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(columns, ["next", "at", "day"], "{d}");
    assert_eq!(d["columns"][0]["type_name"], "INT4", "{d}");

    // Each refusal at its pointer, nothing run.
    for (body, path) in [
        (json!({ "sql": "DELETE FROM orders" }), "/sql"),
        (json!({ "sql": "SELECT 1; SELECT 2" }), "/sql"),
        (
            json!({ "sql": "SELECT * FROM orders WHERE region = '${r}'" }),
            "/sql",
        ),
        (json!({ "sql": "SELECT * FROM nowhere" }), "/sql"),
        (json!({ "sql": sql }), "/params/min"),
        (json!({ "sql": "SELECT 1", "env": "dev" }), "/env"),
        (json!({ "sql": "SELECT 1", "row_cap": 0 }), "/row_cap"),
        (
            json!({ "sql": "SELECT ${yyyymmdd}", "time_zone": "Mars/Base" }),
            "/time_zone",
        ),
        (
            json!({ "sql": "SELECT ${yyyymmdd}", "at": "yesterday" }),
            "/at",
        ),
    ] {
        let (s, e) = query("shop", body.clone(), ADMIN).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {e}");
        assert_eq!(e["error"]["code"], "invalid_query", "{e}");
        assert_eq!(error_path(&e), path, "{body}: {e}");
    }
    let (s, t) = query(
        "shop",
        json!({ "sql": "SELECT count(*) AS n FROM orders" }),
        ADMIN,
    )
    .await;
    assert_eq!(
        (s, &t["rows"]),
        (StatusCode::OK, &json!([[4]])),
        "the table is untouched"
    );

    // PostgreSQL, on the dev database by default; a slow query is stopped.
    let (s, t) = query(
        "warehouse",
        json!({ "sql": "SELECT ${n}::int + 1 AS next", "params": { "n": 41 } }),
        ADMIN,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{t}");
    assert_eq!(
        (t["env"].as_str(), &t["rows"]),
        (Some("dev"), &json!([[42]]))
    );
    let (s, e) = query(
        "warehouse",
        json!({ "sql": "SELECT pg_sleep(5)", "timeout_secs": 1 }),
        ADMIN,
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert_eq!(error_path(&e), "/timeout_secs", "{e}");

    // Who may: a viewer reads the list but may not query; another
    // workspace's admin sees neither, and queries its own.
    let (s, _) = query("shop", json!({ "sql": "SELECT 1" }), VIEWER).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = query("shop", json!({ "sql": "SELECT 1" }), TEAM).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = call(&http, "GET", format!("{base}/default/sources"), TEAM, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, t) = call(
        &http,
        "POST",
        format!("{base}/team/sources/team-db/query"),
        TEAM,
        Some(json!({ "sql": "SELECT count(*) FROM orders" })),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{t}");
    gateway.shutdown().await;
}
