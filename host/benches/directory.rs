//! A large directory: 100 workspaces, 1,000 routes, 10,000 contacts (half
//! with a personal robot, so 5,000 contact destinations, each checked
//! against its plugin's schema), against the same gateway with 10 routes
//! and no contacts. Measures, in one run so the ratio holds on a noisy
//! machine: ingest throughput (events posted over HTTP by 16 clients,
//! routed into a disabled destination so that delivery does not compete),
//! the time one API edit takes to apply (a contact changed with PUT, the
//! median of 21), and the start.
//!
//! `cargo bench -p carillon --bench directory` (`DIRECTORY_EVENTS=N` to
//! change the 4,000 events per configuration). Results: BENCHMARKS.md.

#![allow(clippy::print_stdout)] // a benchmark reports on stdout

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use carillon::config::{Config, Resolver};
use carillon::gateway::{Gateway, Options};

const ADMIN: &str = "adm-directory-bench-0000";
const INGEST: &str = "ing-directory-bench-0000";

fn config_text(
    dir: &std::path::Path,
    workspaces: usize,
    routes_per: usize,
    contacts_per: usize,
) -> String {
    let mut t = String::new();
    let _ = write!(
        t,
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{}\"\nplugin_dir = \"{}/plugins\"\nwatch_plugins = false\n\
         [auth]\nadmin_token = \"{ADMIN}\"\n[[auth.ingest]]\nname = \"app\"\ntoken = \"{INGEST}\"\n\
         [outbox]\nmax_pending = 10000000\n",
        dir.display(),
        dir.display()
    );
    for w in 0..workspaces {
        let ws = if w == 0 {
            "default".to_owned()
        } else {
            format!("ws{w}")
        };
        if w > 0 {
            let _ = writeln!(t, "[workspaces.{ws}]");
        }
        let _ = writeln!(
            t,
            "[destinations.sink-{w}]\nplugin = \"webhook\"\nenabled = false\nworkspace = \"{ws}\"\n\
             config = {{ url = \"https://hooks.example.com/{w}\" }}"
        );
        for c in 0..contacts_per {
            let robot = if c % 2 == 0 {
                format!(
                    ", {{ type = \"robot\", plugin = \"webhook\", config = {{ url = \"https://hooks.example.com/p/{w}/{c}\" }} }}"
                )
            } else {
                String::new()
            };
            let _ = writeln!(
                t,
                "[contacts.p{w}-{c}]\nworkspace = \"{ws}\"\nexternal_id = \"E{w}-{c}\"\nlocale = \"en\"\n\
                 methods = [{{ type = \"mobile\", number = \"+86 138 {w:04} {c:04}\" }}{robot}]"
            );
        }
        for r in 0..routes_per {
            let _ = writeln!(
                t,
                "[[routes]]\nname = \"r{w}-{r}\"\nworkspace = \"{ws}\"\nmatch = {{ event = \"bench.r{r}\" }}\n\
                 destinations = [\"sink-{w}\"]\ncontinue = true"
            );
        }
    }
    t
}

struct Measured {
    start: Duration,
    events_per_sec: f64,
    edit_median: Duration,
    edit_max: Duration,
}

async fn measure(label: &str, text: &str, dir: &std::path::Path, events: usize) -> Measured {
    let env = |_: &str| None;
    let resolver = Resolver {
        env: &env,
        base_dir: dir,
    };
    let t0 = Instant::now();
    let config = Config::from_toml(text, &resolver).unwrap_or_else(|p| panic!("{label}: {p}"));
    let gateway = Gateway::start(config, Options::default())
        .await
        .unwrap_or_else(|e| panic!("{label}: {e}"));
    let start = t0.elapsed();
    let base = format!("http://{}", gateway.local_addr());
    let http = reqwest::Client::new();

    // Ingest: 16 clients, events matching the first route of `default`.
    let t0 = Instant::now();
    let per = events / 16;
    let mut tasks = Vec::new();
    for client in 0..16 {
        let (http, base) = (http.clone(), base.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..per {
                let body = serde_json::json!({
                    "type": "bench.r0", "source": "bench", "title": format!("{client}-{i}"),
                });
                let r = http
                    .post(format!("{base}/v1/events"))
                    .bearer_auth(INGEST)
                    .header("content-type", "application/json")
                    .body(body.to_string())
                    .send()
                    .await
                    .expect("post");
                assert_eq!(r.status(), 202);
            }
        }));
    }
    for t in tasks {
        t.await.expect("client");
    }
    let events_per_sec = (per * 16) as f64 / t0.elapsed().as_secs_f64();

    // One API edit at a time: a contact created, then changed.
    let mut times = Vec::new();
    for i in 0..21 {
        let body = serde_json::json!({
            "locale": "en",
            "methods": [{ "type": "mobile", "number": format!("+44 20 7946 {:04}", i) }],
        });
        let t0 = Instant::now();
        let r = http
            .put(format!("{base}/v1/workspaces/default/contacts/bench-edit"))
            .bearer_auth(ADMIN)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .expect("put");
        times.push(t0.elapsed());
        assert!(
            r.status().is_success(),
            "{label}: {}",
            r.text().await.unwrap_or_default()
        );
    }
    times.sort();
    gateway.shutdown().await;
    Measured {
        start,
        events_per_sec,
        edit_median: times[times.len() / 2],
        edit_max: times[times.len() - 1],
    }
}

fn main() {
    carillon::tls::install_crypto_provider();
    let events: usize = std::env::var("DIRECTORY_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        // Alternate the two so that drift on a shared machine hits both;
        // each run starts on an empty data directory.
        let mut rows = Vec::new();
        for round in 0..2 {
            let small_dir = tempfile::tempdir().expect("tempdir");
            let large_dir = tempfile::tempdir().expect("tempdir");
            let small = config_text(small_dir.path(), 1, 10, 0);
            let large = config_text(large_dir.path(), 100, 10, 100);
            let s = measure("10 routes", &small, small_dir.path(), events).await;
            let l = measure("directory", &large, large_dir.path(), events).await;
            rows.push((round, s, l));
        }
        println!("| round | config | start | ingest events/s | API edit median / max |");
        println!("|---|---|---|---|---|");
        for (round, s, l) in &rows {
            for (name, m) in [
                ("10 routes, no contacts", s),
                ("100 ws, 1,000 routes, 10,000 contacts", l),
            ] {
                println!(
                    "| {round} | {name} | {:.2} s | {:.0} | {:.1} / {:.1} ms |",
                    m.start.as_secs_f64(),
                    m.events_per_sec,
                    m.edit_median.as_secs_f64() * 1e3,
                    m.edit_max.as_secs_f64() * 1e3
                );
            }
            println!(
                "| {round} | ratio directory ÷ small | | {:.3} | |",
                l.events_per_sec / s.events_per_sec
            );
        }
    });
}
