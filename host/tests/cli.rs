//! The `carillon plugin` commands, run as the built binary.

use std::process::Command;

fn carillon(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_carillon"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("the carillon binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn webhook() -> &'static str {
    carillon_builtin::path("carillon-plugin-webhook").expect("the webhook plugin is built")
}

#[test]
fn inspect_prints_the_manifest_and_schema() {
    let (code, out, err) = carillon(&["plugin", "inspect", webhook()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("name:           webhook"), "{out}");
    assert!(
        out.contains("contract:       carillon:plugin@0.1.0"),
        "{out}"
    );
    assert!(out.contains("endpoints:      /url"), "{out}");
    assert!(
        out.contains("\"signing_secret\""),
        "the schema is printed: {out}"
    );

    let (code, out, _) = carillon(&["plugin", "inspect", webhook(), "--json"]);
    assert_eq!(code, 0);
    let json: serde_json::Value = serde_json::from_str(&out).expect("JSON output");
    assert_eq!(json["manifest"]["name"], "webhook");
    assert_eq!(json["sha256"].as_str().map(str::len), Some(64));
}

#[test]
fn check_reports_every_problem_with_its_path() {
    let (code, out, err) = carillon(&[
        "plugin",
        "check",
        webhook(),
        "--config",
        r#"{"url":"https://hooks.example.com/in"}"#,
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("ok: the config is valid for webhook"),
        "{out}"
    );

    let (code, out, _) = carillon(&[
        "plugin",
        "check",
        webhook(),
        "--config",
        r#"{"url":"ftp://x","method":"GET"}"#,
    ]);
    assert_eq!(code, 1);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines.iter().any(|l| l.starts_with("/url: ")), "{out}");
    assert!(lines.iter().any(|l| l.starts_with("/method: ")), "{out}");
}

#[test]
fn a_file_that_is_not_a_plugin_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("notes.wasm");
    std::fs::write(&path, "not wasm").expect("write");
    let (code, _, err) = carillon(&["plugin", "inspect", path.to_str().expect("utf-8 path")]);
    assert_eq!(code, 2);
    assert!(
        err.contains("cannot load") && err.contains("not a WebAssembly file"),
        "{err}"
    );
    let wrong = carillon_builtin::path("carillon-fixture-wrong-world").expect("fixture built");
    let (code, _, err) = carillon(&["plugin", "inspect", wrong]);
    assert_eq!(code, 2);
    assert!(
        err.contains("does not implement the carillon:plugin world"),
        "{err}"
    );
}
