//! The cost of one plugin call: a fresh store from the pre-instantiated
//! component plus `render` of a typical message, next to the same render in
//! native Rust (the webhook plugin's code called directly), measured in the
//! same run so the ratio survives a noisy machine.
//!
//! Run: `cargo bench -p carillon --bench plugin_call` (add `-- --quick` for a
//! short run). Prints medians, p99 and the ratio; BENCHMARKS.md records them.
//!
//! For profiling, `PLUGIN_CALL_ONLY=signed|unsigned|trivial|floor|floor-trivial`
//! runs that one path alone in a loop (`PLUGIN_CALL_SECS`, default 10) and
//! prints its rate, so `perf record`/`perf stat` see nothing else.

#![allow(clippy::print_stdout)] // a benchmark reports on stdout

use std::time::{Duration, Instant};

use carillon::message::Message;
use carillon::plugin::workload::{BareArgs, RenderWorkload, bare_render};
use carillon::plugin::{Runtime, RuntimeConfig};
use carillon_plugin_webhook::Webhook;
use carillon_sdk::testing::Harness;

/// The gateway binary's allocator, so the call costs what it costs there.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn sdk_message(m: &Message) -> carillon_sdk::Message {
    carillon_sdk::Message {
        title: m.title.clone(),
        markdown: m.markdown.clone(),
        text: m.text.clone(),
        table: None,
        link: m.link.as_ref().map(|l| carillon_sdk::Link {
            url: l.url.clone(),
            label: l.label.clone(),
        }),
        mentions: Vec::new(),
        severity: carillon_sdk::Severity::Error,
        locale: m.locale.clone(),
        fields: m
            .fields
            .iter()
            .map(|f| carillon_sdk::Field {
                name: f.name.clone(),
                value: f.value.clone(),
            })
            .collect(),
    }
}

struct Stats {
    median: Duration,
    p99: Duration,
    n: usize,
}

fn stats(mut samples: Vec<Duration>) -> Stats {
    samples.sort();
    let n = samples.len();
    Stats {
        median: samples[n / 2],
        p99: samples[(n * 99 / 100).min(n - 1)],
        n,
    }
}

fn main() {
    // As the gateway binary does (`host/src/main.rs`): without it, mimalloc's
    // heap pages fault in as zeroed 2 MiB huge pages here (≈ 15 % of a
    // call's samples in `clear_page_erms`), a cost the gateway never pays.
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::thread::disable_transparent_huge_pages(true) {
        println!("note: could not opt out of transparent huge pages: {e}");
    }
    let quick = std::env::args().any(|a| a == "--quick");
    let iterations = if quick { 2_000 } else { 20_000 };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio");
    // `KEEP_RESIDENT_KIB=…` sweeps the pool's resident-memory setting.
    let keep_resident_bytes = std::env::var("KEEP_RESIDENT_KIB")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .map_or(carillon::plugin::DEFAULT_KEEP_RESIDENT, |kib| kib << 10);
    let runtime = Runtime::new(RuntimeConfig {
        max_concurrent_calls: 16,
        keep_resident_bytes,
        // `PERF_MAP=1` names plugin functions for `perf record`.
        perf_map: std::env::var_os("PERF_MAP").is_some(),
        ..RuntimeConfig::default()
    })
    .expect("runtime");
    let wasm =
        std::fs::read(carillon_builtin::path("carillon-plugin-webhook").expect("webhook built"))
            .expect("read");
    let probe = rt
        .block_on(RenderWorkload::webhook(&runtime, wasm))
        .expect("load");
    let config = RenderWorkload::config();
    let (msg, ctx) = (&probe.message, &probe.context);
    // The same destination without a signing secret: what signing costs.
    let mut unsigned_config = RenderWorkload::config();
    unsigned_config
        .as_object_mut()
        .expect("an object")
        .remove("signing_secret");
    let unsigned_dest = runtime.destination(&probe.plugin, "bench", unsigned_config, &[]);

    // Native: the same plugin code, called directly (no sandbox).
    let harness = Harness::<Webhook>::new().with_context(carillon_sdk::Context {
        delivery_id: ctx.delivery_id.clone(),
        event_id: ctx.event_id.clone(),
        attempt: ctx.attempt,
        now_ms: ctx.now_ms,
    });
    let native_msg = sdk_message(msg);
    let native_body = match harness.render(&config, &native_msg).expect("native render") {
        carillon_sdk::Outgoing::Http(r) => r.body,
        carillon_sdk::Outgoing::Mail(_) => unreachable!("webhook renders HTTP"),
    };
    let wasm_body = match rt
        .block_on(probe.render(&runtime))
        .expect("call")
        .expect("render")
    {
        carillon::plugin::types::Outgoing::Http(r) => r.body,
        carillon::plugin::types::Outgoing::Mail(_) => unreachable!("webhook renders HTTP"),
    };
    assert_eq!(
        native_body, wasm_body,
        "wasm and native render the same bytes"
    );

    // The fixed cost of a fresh sandbox: a fixture plugin whose render does
    // almost nothing, so what is left is store + instantiate + call overhead.
    let fixture =
        std::fs::read(carillon_builtin::path("carillon-fixture-misbehave").expect("fixture built"))
            .expect("read");
    let trivial = rt.block_on(runtime.load(fixture)).expect("load fixture");
    let trivial_dest =
        runtime.destination(&trivial, "bench", serde_json::json!({ "mode": "ok" }), &[]);

    // The floor: the same two renders with only wasmtime around them.
    let bare_webhook = BareArgs::new(&probe.destination, ctx, msg);
    let bare_trivial = BareArgs::new(&trivial_dest, ctx, msg);
    rt.block_on(bare_render(&runtime, &probe.plugin, &bare_webhook))
        .expect("bare webhook render");
    rt.block_on(bare_render(&runtime, &trivial, &bare_trivial))
        .expect("bare trivial render");

    if let Ok(only) = std::env::var("PLUGIN_CALL_ONLY") {
        let secs = std::env::var("PLUGIN_CALL_SECS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(10);
        let until = Instant::now() + Duration::from_secs(secs);
        let started = Instant::now();
        let mut calls = 0u64;
        while Instant::now() < until {
            for _ in 0..100 {
                let ok = match only.as_str() {
                    "signed" => rt.block_on(probe.render(&runtime)).is_ok(),
                    "unsigned" => rt
                        .block_on(runtime.render(&probe.plugin, &unsigned_dest, ctx, msg))
                        .is_ok(),
                    "trivial" => rt
                        .block_on(runtime.render(&trivial, &trivial_dest, ctx, msg))
                        .is_ok(),
                    "floor" => rt
                        .block_on(bare_render(&runtime, &probe.plugin, &bare_webhook))
                        .is_ok(),
                    "floor-trivial" => rt
                        .block_on(bare_render(&runtime, &trivial, &bare_trivial))
                        .is_ok(),
                    other => panic!("PLUGIN_CALL_ONLY={other}: not a path"),
                };
                assert!(ok, "the {only} call failed");
            }
            calls += 100;
        }
        let per_call = started.elapsed().as_secs_f64() * 1e6 / calls as f64;
        println!("plugin_call {only} alone: {calls} calls, {per_call:.2} µs per call (mean)");
        return;
    }

    // Warm up every path.
    for _ in 0..iterations / 10 {
        let _ = harness.render(&config, &native_msg);
        let _ = rt.block_on(probe.render(&runtime));
        let _ = rt.block_on(bare_render(&runtime, &probe.plugin, &bare_webhook));
    }
    let mut native = Vec::with_capacity(iterations);
    let mut sandboxed = Vec::with_capacity(iterations);
    let mut fixed = Vec::with_capacity(iterations);
    let mut floor = Vec::with_capacity(iterations);
    let mut floor_fixed = Vec::with_capacity(iterations);
    let mut unsigned = Vec::with_capacity(iterations);
    // Interleave them all so machine noise hits each alike.
    for _ in 0..iterations {
        let t = Instant::now();
        let out = harness.render(&config, &native_msg);
        native.push(t.elapsed());
        std::hint::black_box(out).ok();
        let t = Instant::now();
        let out = rt.block_on(probe.render(&runtime));
        sandboxed.push(t.elapsed());
        std::hint::black_box(out).ok();
        let t = Instant::now();
        let out = rt.block_on(runtime.render(&probe.plugin, &unsigned_dest, ctx, msg));
        unsigned.push(t.elapsed());
        std::hint::black_box(out).ok();
        let t = Instant::now();
        let out = rt.block_on(runtime.render(&trivial, &trivial_dest, ctx, msg));
        fixed.push(t.elapsed());
        std::hint::black_box(out).ok();
        let t = Instant::now();
        let out = rt.block_on(bare_render(&runtime, &probe.plugin, &bare_webhook));
        floor.push(t.elapsed());
        std::hint::black_box(out).ok();
        let t = Instant::now();
        let out = rt.block_on(bare_render(&runtime, &trivial, &bare_trivial));
        floor_fixed.push(t.elapsed());
        std::hint::black_box(out).ok();
    }
    let native = stats(native);
    let sandboxed = stats(sandboxed);
    let fixed = stats(fixed);
    let floor = stats(floor);
    let floor_fixed = stats(floor_fixed);
    let unsigned = stats(unsigned);
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "plugin_call: webhook render of a typical message ({} bytes), {} iterations each, keep_resident {} KiB",
        wasm_body.len(),
        sandboxed.n,
        keep_resident_bytes >> 10
    );
    println!(
        "  native render           median {:8.2} µs   p99 {:8.2} µs",
        us(native.median),
        us(native.p99)
    );
    println!(
        "  fresh sandbox + render  median {:8.2} µs   p99 {:8.2} µs",
        us(sandboxed.median),
        us(sandboxed.p99)
    );
    println!(
        "  same render, unsigned   median {:8.2} µs   p99 {:8.2} µs   (no Standard Webhooks signature)",
        us(unsigned.median),
        us(unsigned.p99)
    );
    println!(
        "  fresh sandbox, trivial  median {:8.2} µs   p99 {:8.2} µs   (fixed per-call cost)",
        us(fixed.median),
        us(fixed.p99)
    );
    println!(
        "  wasmtime floor, render  median {:8.2} µs   p99 {:8.2} µs   (same render, nothing but wasmtime)",
        us(floor.median),
        us(floor.p99)
    );
    println!(
        "  wasmtime floor, trivial median {:8.2} µs   p99 {:8.2} µs",
        us(floor_fixed.median),
        us(floor_fixed.p99)
    );
    println!(
        "  ratio sandbox/native    {:.1}x (median)",
        us(sandboxed.median) / us(native.median)
    );
    println!(
        "  ratio sandbox/floor     {:.2}x render, {:.2}x trivial (the runtime's own overhead)",
        us(sandboxed.median) / us(floor.median),
        us(fixed.median) / us(floor_fixed.median)
    );
    println!(
        "  target: ≤ 25 µs median per fresh-sandbox call → {}",
        if us(sandboxed.median) <= 25.0 {
            "met"
        } else {
            "missed"
        }
    );
}
