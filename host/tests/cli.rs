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

#[test]
fn inspect_works_for_every_builtin_channel() {
    let cases = [
        ("webhook", None),
        ("dingtalk", Some("rate limits:    20 per 60000 ms")),
        (
            "lark",
            Some("rate limits:    5 per 1000 ms, 100 per 60000 ms"),
        ),
        ("wecom", Some("rate limits:    20 per 60000 ms")),
        ("teams", Some("rate limits:    4 per 1000 ms")),
    ];
    for (name, limits) in cases {
        let crate_name = format!("carillon-plugin-{name}");
        let path = carillon_builtin::path(&crate_name)
            .unwrap_or_else(|| panic!("the {name} plugin is built"));
        let (code, out, err) = carillon(&["plugin", "inspect", path]);
        assert_eq!(code, 0, "{name}: {err}");
        assert!(out.contains(&format!("name:           {name}\n")), "{out}");
        assert!(out.contains("rate limits:    "), "{out}");
        if let Some(limits) = limits {
            assert!(out.contains(limits), "{name}: {out}");
        }
        assert!(out.contains("\"webhook\"") || name == "webhook", "{out}");

        let (code, out, _) = carillon(&["plugin", "inspect", path, "--json"]);
        assert_eq!(code, 0, "{name}");
        let json: serde_json::Value = serde_json::from_str(&out).expect("JSON output");
        assert_eq!(json["manifest"]["name"], name);
    }
}

#[test]
fn inspect_and_check_take_a_builtin_plugins_name() {
    let (code, out, err) = carillon(&["plugin", "inspect", "dingtalk"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("name:           dingtalk\n"), "{out}");
    assert!(out.contains("rate limits:    20 per 60000 ms"), "{out}");

    let (code, out, err) = carillon(&[
        "plugin",
        "check",
        "webhook",
        "--config",
        r#"{"url":"https://hooks.example.com/in"}"#,
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("ok: the config is valid for webhook"),
        "{out}"
    );

    // A name that is neither a file nor built in: said so, with the names.
    let (code, _, err) = carillon(&["plugin", "inspect", "no-such-channel"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("no-such-channel is neither a file nor a built-in plugin"),
        "{err}"
    );
    for name in ["dingtalk", "email", "lark", "teams", "webhook", "wecom"] {
        assert!(err.contains(name), "{name} missing from {err}");
    }

    // A file of a built-in plugin's name wins over the built-in plugin.
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("webhook"), "not wasm").expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_carillon"))
        .args(["plugin", "inspect", "webhook"])
        .current_dir(dir.path())
        .env("RUST_LOG", "warn")
        .output()
        .expect("the carillon binary runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("not a WebAssembly file"), "{err}");
}

/// `carillon config check` on a valid and an invalid file.
#[test]
fn config_check_reports_every_problem_or_ok() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        "[auth]\nadmin_token = \"${file:admin.token}\"\n\n[destinations.ops]\nplugin = \"webhook\"\nconfig = { url = \"https://hooks.example.com/in\" }\n\n[[routes]]\nname = \"all\"\ndestinations = [\"ops\"]\n",
    )
    .expect("write");
    std::fs::write(dir.path().join("admin.token"), "cli-file-secret\n").expect("write");
    let (code, out, err) = carillon(&["config", "check", good.to_str().expect("utf-8")]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("ok: "), "{out}");
    assert!(!out.contains("cli-file-secret") && !err.contains("cli-file-secret"));

    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[server]\nlisten = \"nowhere\"\n\n[destinations.ops]\nplugin = \"webhook\"\nconfig = { url = \"ftp://x/?token=cli-literal-secret\" }\n\n[[routes]]\nname = \"all\"\ndestinations = [\"missing\"]\n",
    )
    .expect("write");
    let (code, out, err) = carillon(&["config", "check", bad.to_str().expect("utf-8")]);
    assert_eq!(code, 1, "{out}{err}");
    let lines: Vec<&str> = out.lines().collect();
    // Every phase in one run: the plugin's verdict on the URL too, although
    // the file has other problems.
    assert_eq!(lines.len(), 3, "{out}");
    assert!(
        lines[0].starts_with("server.listen (line 2, column 10): "),
        "{out}"
    );
    assert!(
        lines[1].starts_with("destinations.ops.config/url (line 6, column 18): "),
        "{out}"
    );
    assert!(
        lines[2].starts_with("routes[0].destinations[0] (line 10, column 17): "),
        "{out}"
    );
    assert!(!out.contains("cli-literal-secret"), "{out}");

    // The file is valid on its own; the plugin's schema refuses the URL.
    let schema = dir.path().join("schema.toml");
    std::fs::write(
        &schema,
        "[destinations.ops]\nplugin = \"webhook\"\nconfig = { url = \"ftp://x/?token=cli-literal-secret\" }\n",
    )
    .expect("write");
    let (code, out, _) = carillon(&["config", "check", schema.to_str().expect("utf-8")]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.starts_with("destinations.ops.config/url (line 3, column 18): "),
        "{out}"
    );
    assert!(!out.contains("cli-literal-secret"), "{out}");

    let (code, out, err) = carillon(&["config", "check"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.starts_with("ok: the embedded defaults are valid"),
        "{out}"
    );
}

/// `carillon config check` reports every phase's problems in one run: an
/// unknown key in `[server]` and a route naming a missing destination do
/// not hide what the webhook plugin says of a destination's config.
#[test]
fn config_check_reports_every_phase_in_one_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("mixed.toml");
    std::fs::write(
        &file,
        "[server]\nlisten = \"127.0.0.1:8080\"\ncolour = \"blue\"\n\n[destinations.ops]\nplugin = \"webhook\"\nconfig = { url = \"ftp://hooks.example.com/in\", colour = \"red\" }\n\n[[routes]]\nname = \"all\"\ndestinations = [\"ops\", \"missing\"]\n",
    )
    .expect("write");
    let (code, out, err) = carillon(&["config", "check", file.to_str().expect("utf-8")]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("server.colour (line 3, column 10): unknown field `colour`"),
        "{out}"
    );
    assert!(
        out.contains("destinations.ops.config/url (line 7, column 18): "),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("destinations.ops.config") && l.contains("colour")),
        "the unknown config field: {out}"
    );
    assert!(
        out.contains(
            "routes[0].destinations[1] (line 11, column 24): no destination is named \"missing\""
        ),
        "{out}"
    );
}

/// `config export` writes the file plus the store's objects as one TOML
/// file that `config check` accepts; `--workspace` keeps one workspace.
#[test]
fn config_export_prints_the_file_and_the_api_objects_as_a_valid_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).expect("data dir");
    let file = dir.path().join("carillon.toml");
    std::fs::write(
        &file,
        format!(
            "[server]\ndata_dir = \"{}\"\n\n[workspaces.team]\n\n\
             [destinations.file-hook]\nplugin = \"webhook\"\nconfig = {{ url = \"https://hooks.example.com/f\" }}\n",
            data.display()
        ),
    )
    .expect("write");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let store = carillon_store::Store::open(&data.join("config.db"))
            .await
            .expect("store");
        let actor = carillon_store::Actor {
            token: "t".into(),
            role: "instance-admin".into(),
        };
        for (kind, name, body) in [
            (
                "destination",
                "api-hook",
                serde_json::json!({"plugin": "webhook", "config": {"url": "https://hooks.example.com/a"}}),
            ),
            (
                "route",
                "api-route",
                serde_json::json!({"match": {"event": "x.*"}, "destinations": ["api-hook"]}),
            ),
        ] {
            let change = carillon_store::Change::Put {
                kind: kind.into(),
                name: name.into(),
                workspace: "team".into(),
                body,
                expect: carillon_store::Expect::Absent,
            };
            store.write(change, &actor, None, None).await.expect("write");
        }
        store.close().await;
    });
    let file_arg = file.display().to_string();
    let (code, out, err) = carillon(&["config", "export", &file_arg]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("[destinations.api-hook]") && out.contains("[destinations.file-hook]"),
        "{out}"
    );
    let exported = dir.path().join("exported.toml");
    std::fs::write(&exported, &out).expect("write");
    // The export names the same data directory: checked alone, since its
    // objects are the store's.
    let exported_arg = exported.display().to_string();
    let (code, check, err) = carillon(&["config", "check", "--no-store", &exported_arg]);
    assert_eq!(code, 0, "{check}{err}\n{out}");
    assert!(check.contains("2 destinations, 1 routes"), "{check}");

    // `config check` reads the store as `serve` starts: the file with its
    // objects passes; a file that declares an API object's name, or drops
    // what an API object names, fails naming it.
    let (code, check, err) = carillon(&["config", "check", &file_arg]);
    assert_eq!(code, 0, "{check}{err}");
    assert!(
        check.contains("with the 2 object(s) created through the API"),
        "{check}"
    );
    let (code, check, _) = carillon(&["config", "check", &exported_arg]);
    assert_eq!(code, 1, "{check}");
    assert!(
        check.contains("config.db") && check.contains("api-hook"),
        "{check}"
    );

    let (code, out, err) = carillon(&["config", "export", &file_arg, "--workspace", "team"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("api-hook") && !out.contains("file-hook"),
        "{out}"
    );
    let (code, _, err) = carillon(&["config", "export", &file_arg, "--workspace", "nope"]);
    assert_ne!(code, 0, "an unknown workspace is an error");
    assert!(err.contains("no workspace \"nope\""), "{err}");
}
