//! Slow and numerous clients against a running gateway on 127.0.0.1, with
//! raw sockets: half-sent heads and stalled bodies are cut off by their
//! deadlines, and past `server.max_connections` new connections wait
//! while the ones being served keep answering.

use std::path::Path;
use std::time::{Duration, Instant};

use carillon::config::{Config, Resolver};
use carillon::gateway::{Gateway, Options};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

const ADMIN: &str = "adm-conn-0123456789";
const INGEST: &str = "ing-conn-0123456789";

async fn start(server_extra: &str, dir: &Path) -> Gateway {
    let text = format!(
        r#"
[server]
listen = "127.0.0.1:0"
data_dir = "{data}"
plugin_dir = "{data}/plugins"
watch_plugins = false
{server_extra}

[auth]
admin_token = "{ADMIN}"

[[auth.ingest]]
name = "app"
token = "{INGEST}"
"#,
        data = dir.display(),
    );
    let env = |_: &str| None;
    let resolver = Resolver {
        env: &env,
        base_dir: dir,
    };
    let config = Config::from_toml(&text, &resolver).unwrap_or_else(|p| panic!("config: {p}"));
    Gateway::start(config, Options::default())
        .await
        .expect("gateway starts")
}

/// Reads until the peer closes (or `limit` passes); what was read and
/// whether it closed.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (String, bool) {
    let mut got = Vec::new();
    let deadline = Instant::now() + limit;
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&got).into_owned(), true),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => return (String::from_utf8_lossy(&got).into_owned(), false),
        }
    }
}

/// Sends one `GET /healthz` on `stream` and reads the answer's status line.
async fn healthz(stream: &mut TcpStream) -> Option<String> {
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .ok()?;
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&got).contains("\"ok\"") {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&got)
        .lines()
        .next()
        .map(str::to_owned)
}

#[tokio::test]
async fn a_half_sent_request_head_is_cut_off_after_the_header_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let gateway = start("header_timeout_secs = 1", dir.path()).await;
    let mut stream = TcpStream::connect(gateway.local_addr()).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: ")
        .await
        .unwrap();
    let started = Instant::now();
    let (_, closed) = read_until_closed(&mut stream, Duration::from_secs(8)).await;
    assert!(closed, "the connection stayed open");
    let after = started.elapsed();
    assert!(
        after >= Duration::from_millis(900),
        "closed after {after:?}"
    );
    // A connection that says nothing at all is closed too.
    let mut silent = TcpStream::connect(gateway.local_addr()).await.unwrap();
    let (_, closed) = read_until_closed(&mut silent, Duration::from_secs(8)).await;
    assert!(closed, "a silent connection stayed open");
    gateway.shutdown().await;
}

#[tokio::test]
async fn a_kept_alive_connection_is_closed_after_the_idle_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let gateway = start(
        "idle_timeout_secs = 1\nheader_timeout_secs = 30",
        dir.path(),
    )
    .await;
    let mut stream = TcpStream::connect(gateway.local_addr()).await.unwrap();
    assert_eq!(
        healthz(&mut stream).await.as_deref(),
        Some("HTTP/1.1 200 OK")
    );
    let started = Instant::now();
    let (_, closed) = read_until_closed(&mut stream, Duration::from_secs(8)).await;
    assert!(closed, "the idle connection stayed open");
    assert!(started.elapsed() >= Duration::from_millis(900));
    gateway.shutdown().await;
}

#[tokio::test]
async fn a_stalled_body_gets_408_after_the_body_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let gateway = start("body_timeout_secs = 1", dir.path()).await;
    let mut stream = TcpStream::connect(gateway.local_addr()).await.unwrap();
    let head = format!(
        "POST /v1/events HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {INGEST}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"type\":"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let (answer, _) = read_until_closed(&mut stream, Duration::from_secs(8)).await;
    assert!(
        answer.starts_with("HTTP/1.1 408"),
        "after {:?}: {answer}",
        started.elapsed()
    );
    assert!(answer.contains("request_timeout"), "{answer}");
    assert!(started.elapsed() >= Duration::from_millis(900));
    gateway.shutdown().await;
}

#[tokio::test]
async fn past_the_connection_limit_new_connections_wait_and_served_ones_answer() {
    let dir = tempfile::tempdir().unwrap();
    let gateway = start("max_connections = 3\nheader_timeout_secs = 2", dir.path()).await;
    let addr = gateway.local_addr();
    // One client keeps its connection alive; two others stall their heads.
    let mut kept = TcpStream::connect(addr).await.unwrap();
    assert_eq!(healthz(&mut kept).await.as_deref(), Some("HTTP/1.1 200 OK"));
    let mut stalled = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
        stalled.push(s);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    // A fourth connection is not served while the three are open …
    let waiting = tokio::spawn(async move {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let started = Instant::now();
        let status = healthz(&mut s).await;
        (status, started.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!waiting.is_finished(), "served past the connection limit");
    // … while the served connection still answers.
    assert_eq!(healthz(&mut kept).await.as_deref(), Some("HTTP/1.1 200 OK"));
    // Once the stalled heads time out, the waiting connection is served.
    let (status, waited) = waiting.await.unwrap();
    assert_eq!(status.as_deref(), Some("HTTP/1.1 200 OK"));
    assert!(waited >= Duration::from_millis(500), "{waited:?}");
    drop(stalled);
    gateway.shutdown().await;
}

#[tokio::test]
async fn shutdown_ends_a_stalled_request_after_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let gateway = start(
        "shutdown_grace_secs = 1\nbody_timeout_secs = 300",
        dir.path(),
    )
    .await;
    let mut stream = TcpStream::connect(gateway.local_addr()).await.unwrap();
    let head = format!(
        "POST /v1/events HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {INGEST}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(10), gateway.shutdown())
        .await
        .expect("shutdown finishes despite the stalled request");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let (_, closed) = read_until_closed(&mut stream, Duration::from_secs(2)).await;
    assert!(closed);
}
