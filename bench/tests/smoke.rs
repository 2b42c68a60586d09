//! The whole suite, tiny (`--smoke`), against the debug `carillon` binary:
//! every scenario and ceiling runs, events are accepted and delivered, and
//! the report is written. No figure is asserted: timing is measured by the
//! suite, never asserted in tests (nor is the soak's flatness verdict).
//! Peers are not run; the soak, which is not in the default list, is
//! named so that its seconds-long variant runs too.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// The `carillon` binary next to this test's profile directory
/// (`target/debug/deps/smoke-…` → `target/debug/carillon`), built if missing.
fn carillon_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test runs from target/<profile>/deps");
    let binary = profile_dir.join("carillon");
    if !binary.is_file() {
        let target_dir = profile_dir.parent().expect("target dir");
        let mut build = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        build
            .args([
                "build",
                "-p",
                "carillon",
                "--bin",
                "carillon",
                "--target-dir",
            ])
            .arg(target_dir)
            .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."));
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            build.arg("--release");
        }
        let status = build.status().expect("run cargo build");
        assert!(status.success(), "cargo build -p carillon failed");
    }
    binary
}

#[test]
fn the_smoke_suite_accepts_delivers_and_reports() {
    let carillon = carillon_binary();
    let out = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_carillon-bench"))
        .arg("--smoke")
        .args([
            "startup", "steady", "burst", "failing", "backlog", "peers", "soak",
        ])
        .arg("--carillon")
        .arg(&carillon)
        .arg("--out")
        .arg(out.path())
        .arg("--work-dir")
        .arg(work.path())
        .output()
        .expect("run carillon-bench");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "carillon-bench failed:\n{stderr}");

    let md = std::fs::read_to_string(out.path().join("report.md")).expect("report.md");
    assert!(md.contains("| metric | value | ceiling | ratio |"), "{md}");
    assert!(
        String::from_utf8_lossy(&run.stdout).contains("| metric | value |"),
        "the table is printed"
    );
    let report: Value =
        serde_json::from_slice(&std::fs::read(out.path().join("report.json")).unwrap()).unwrap();
    let r = &report["results"];
    let n = |v: &Value| v.as_u64().unwrap_or(0);

    for flow in ["steady", "burst"] {
        let f = &r[flow];
        assert!(
            n(&f["load"]["accepted"]) > 0,
            "{flow}: nothing accepted: {f}"
        );
        assert_eq!(f["complete"], true, "{flow}: not all delivered: {f}");
        assert!(
            n(&f["delivered"]) >= n(&f["load"]["accepted"]),
            "{flow}: {f}"
        );
    }
    assert_eq!(n(&r["burst"]["load"]["sent"]), 200);

    let failing = &r["failing"]["with_failure"];
    assert_eq!(failing["complete"], true, "{failing}");
    let healthy = failing["destinations"].as_array().unwrap();
    assert_eq!(healthy.len(), 10);
    assert!(
        healthy[..9].iter().all(|d| n(&d["delivered"]) > 0),
        "{failing}"
    );
    assert_eq!(
        n(&healthy[9]["delivered"]),
        0,
        "the failing destination got nothing"
    );

    let backlog = &r["backlog"];
    assert!(n(&backlog["load"]["accepted"]) > 0, "{backlog}");
    assert_eq!(backlog["complete"], true, "{backlog}");

    assert!(r["startup"]["cold_ms"].as_f64().unwrap() > 0.0);
    for ceiling in ["ingest", "storage", "egress", "sandbox", "deliver"] {
        assert!(
            r["ceilings"][ceiling].is_object(),
            "ceiling {ceiling} missing: {}",
            r["ceilings"]
        );
    }
    let deliver = &r["ceilings"]["deliver"];
    assert!(n(&deliver["delivered"]) > 0, "{deliver}");
    assert_eq!(n(&deliver["failed"]), 0, "{deliver}");
    assert!(report["machine"]["nproc"].as_u64().unwrap() > 0);
    assert!(r["peers"].is_null(), "--smoke runs no peer: {}", r["peers"]);

    let soak = &r["soak"];
    assert!(n(&soak["load"]["accepted"]) > 0, "{soak}");
    assert!(
        soak["samples"].as_array().is_some_and(|s| s.len() >= 3),
        "a baseline and a sample per second: {soak}"
    );
    // Negative when the outbox still holds a delivery the receiver got
    // after the plugin had timed out: a duplicate to come, not a loss.
    assert!(
        soak["drained"]["unaccounted"]
            .as_i64()
            .is_some_and(|u| u <= 0),
        "every accepted event delivered or still queued: {soak}"
    );
    assert!(
        soak["reloads"].as_array().is_some_and(|r| !r.is_empty()),
        "a plugin reload ran: {soak}"
    );
    assert!(md.contains("## Soak"), "{md}");
    let svg = std::fs::read_to_string(out.path().join("soak.svg")).expect("soak.svg");
    assert!(
        svg.starts_with("<svg") && svg.contains("<polyline"),
        "{svg}"
    );
    assert!(
        md.contains("peers: skipped (--smoke)"),
        "the skip is in the report"
    );
}
