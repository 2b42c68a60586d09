//! Loading: real plugins load and describe themselves; corrupt files, core
//! modules and components of another world are refused with clear messages;
//! compiled artifacts are cached.

use std::time::Duration;

use carillon::plugin::{LoadError, Runtime, RuntimeConfig};
use serde_json::json;

use crate::support::{load, runtime, wasm};

#[tokio::test]
async fn the_webhook_plugin_describes_itself() {
    let runtime = runtime(&[]);
    let plugin = load(&runtime, "carillon-plugin-webhook").await;
    let m = plugin.manifest();
    assert_eq!(m.name, "webhook");
    assert_eq!(plugin.wit_version(), "0.1.0");
    assert_eq!(plugin.sha256().len(), 64);
    assert_eq!(m.endpoint_fields, ["/url"]);
    assert!(m.config_schema["properties"]["url"].is_object());
}

#[tokio::test]
async fn configs_are_checked_by_schema_and_by_the_plugin() {
    let runtime = runtime(&[]);
    let plugin = load(&runtime, "carillon-plugin-webhook").await;
    let schema = runtime
        .validate(&plugin, &json!({ "method": "GET" }))
        .await
        .expect("runs");
    let messages: Vec<String> = schema
        .iter()
        .map(|i| format!("{} {}", i.path, i.message))
        .collect();
    assert!(messages.iter().any(|m| m.contains("url")), "{messages:?}");
    assert!(
        messages.iter().any(|m| m.starts_with("/method")),
        "{messages:?}"
    );
    let semantic = runtime
        .validate(
            &plugin,
            &json!({ "url": "https://x.example", "signing_secret": "whsec_c2hvcnQ=" }),
        )
        .await
        .expect("runs");
    assert_eq!(semantic.len(), 1);
    assert_eq!(semantic[0].path, "/signing_secret");
    assert!(
        runtime
            .validate(&plugin, &json!({ "url": "https://x.example/in" }))
            .await
            .expect("runs")
            .is_empty()
    );
}

#[tokio::test]
async fn grants_come_from_the_manifest_and_the_endpoint_fields() {
    let runtime = runtime(&[]);
    let plugin = load(&runtime, "carillon-plugin-webhook").await;
    let grant = plugin.grant_for(&json!({ "url": "https://hooks.example.com:8443/in" }), &[]);
    assert!(grant.allows("hooks.example.com", 8443));
    assert!(!grant.allows("hooks.example.com", 443));
    assert!(!grant.allows("other.example.com", 8443));
}

#[tokio::test]
async fn broken_files_are_refused_clearly() {
    let runtime = runtime(&[]);
    let not_wasm = runtime
        .load(b"#!/bin/sh\necho hi\n".to_vec())
        .await
        .unwrap_err();
    assert_eq!(not_wasm, LoadError::NotWasm);
    assert!(not_wasm.to_string().contains("not a WebAssembly file"));

    let core = runtime.load(b"\0asm\x01\0\0\0".to_vec()).await.unwrap_err();
    assert_eq!(core, LoadError::CoreModule);
    assert!(core.to_string().contains("wasm32-wasip2"));

    let mut truncated = wasm("carillon-plugin-webhook");
    truncated.truncate(truncated.len() / 2);
    let error = runtime.load(truncated).await.unwrap_err();
    assert!(matches!(error, LoadError::Compile(_)), "{error:?}");
    assert!(
        error.to_string().starts_with("not a valid component"),
        "{error}"
    );
}

#[tokio::test]
async fn a_component_of_another_world_is_refused() {
    let runtime = runtime(&[]);
    let error = runtime
        .load(wasm("carillon-fixture-wrong-world"))
        .await
        .unwrap_err();
    match &error {
        LoadError::WrongWorld { exports } => assert!(exports.contains("greet"), "{exports}"),
        other => panic!("expected WrongWorld, got {other:?}"),
    }
    assert!(error.to_string().contains("carillon:plugin"), "{error}");
}

/// The exports are type-checked once, at load (later calls skip the check),
/// so a plugin whose `describe` fits but whose other exports do not is
/// refused then, naming the export, instead of failing every delivery.
#[tokio::test]
async fn exports_of_the_wrong_types_are_refused_at_load() {
    let runtime = runtime(&[]);
    let error = runtime
        .load(wasm("carillon-fixture-wrong-types"))
        .await
        .unwrap_err();
    assert!(matches!(error, LoadError::Describe(_)), "{error:?}");
    let text = error.to_string();
    assert!(
        text.contains("the `validate` export does not have the contract's types"),
        "{text}"
    );
}

#[tokio::test]
async fn compiled_artifacts_are_cached_and_pruned() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = || RuntimeConfig {
        cache_dir: Some(dir.path().to_path_buf()),
        max_concurrent_calls: 4,
        ..RuntimeConfig::default()
    };
    let bytes = wasm("carillon-plugin-webhook");
    let first = Runtime::new(config()).expect("runtime");
    let started = std::time::Instant::now();
    let plugin = first.load(bytes.clone()).await.expect("loads");
    let cold = started.elapsed();
    let cached: Vec<_> = std::fs::read_dir(dir.path())
        .expect("dir")
        .flatten()
        .collect();
    assert_eq!(cached.len(), 1, "one artifact written");
    let name = cached[0].file_name().to_string_lossy().into_owned();
    assert!(
        name.starts_with(plugin.sha256()) && name.ends_with(".cwasm"),
        "{name}"
    );

    let artifact = cached[0].path();
    let written = std::fs::metadata(&artifact)
        .and_then(|m| m.modified())
        .expect("mtime");

    // A new runtime (as after a restart) loads from the cache: the artifact
    // is read, not rewritten.
    std::thread::sleep(Duration::from_millis(20));
    let second = Runtime::new(config()).expect("runtime");
    let started = std::time::Instant::now();
    let again = second.load(bytes.clone()).await.expect("loads from cache");
    let warm = started.elapsed();
    assert_eq!(again.sha256(), plugin.sha256());
    let after = std::fs::metadata(&artifact)
        .and_then(|m| m.modified())
        .expect("mtime");
    assert_eq!(after, written, "a cache hit does not rewrite the artifact");
    eprintln!("cold load {cold:?}, warm load {warm:?}");

    // A corrupt artifact is discarded and the plugin recompiled.
    std::fs::write(&artifact, b"garbage").expect("corrupt the artifact");
    let third = Runtime::new(config()).expect("runtime");
    third
        .load(bytes)
        .await
        .expect("recompiles over a corrupt artifact");
    assert!(std::fs::metadata(&artifact).expect("artifact").len() > 1000);

    std::fs::write(
        dir.path()
            .join(format!("{}-0000000000000000.cwasm", "ab".repeat(32))),
        b"stale",
    )
    .expect("write");
    assert_eq!(second.prune_cache(&[plugin.sha256().to_owned()]), 1);
    assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 1);
}
