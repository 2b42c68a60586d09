//! Golden tests of `carillon.toml` error messages: each `tests/config/*.toml`
//! is parsed, validated and checked against the built-in plugins (every
//! phase, as `carillon config check` runs them), and the
//! output is compared with the `.err` file beside it (`ok` for a valid
//! file). `UPDATE_EXPECT=1 cargo test -p carillon --test config` rewrites
//! the `.err` files.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use carillon::config::{Checked, Resolver};
use carillon::plugin::{Plugin, Runtime, RuntimeConfig};

/// The environment the golden files see (never the process's).
fn env(name: &str) -> Option<String> {
    match name {
        "CARILLON_GOLDEN_CI" => Some("ci-golden-env-secret".to_owned()),
        _ => None,
    }
}

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/config")
}

async fn plugins() -> HashMap<String, Arc<Plugin>> {
    let runtime = Runtime::new(RuntimeConfig {
        max_concurrent_calls: 2,
        ..RuntimeConfig::default()
    })
    .expect("runtime");
    let mut plugins = HashMap::new();
    for artifact in carillon_builtin::BUILTIN {
        let plugin = runtime
            .load(artifact.wasm.to_vec())
            .await
            .expect("a built-in plugin loads");
        plugins.insert(plugin.name().to_owned(), plugin);
    }
    plugins
}

/// What `carillon config check` would print for `text`.
fn report(text: &str, plugins: &HashMap<String, Arc<Plugin>>) -> String {
    let base = dir();
    let resolver = Resolver {
        env: &env,
        base_dir: &base,
    };
    let mut checked = Checked::text(text, &resolver);
    checked.check_plugins(plugins);
    let problems = checked.problems();
    if problems.is_empty() {
        "ok\n".to_owned()
    } else {
        format!("{problems}\n")
    }
}

/// Compares `actual` with the file `expected`, or rewrites it under
/// `UPDATE_EXPECT=1`.
fn check(input: &Path, actual: &str, expected: &Path) {
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        std::fs::write(expected, actual).expect("write the expectation");
        return;
    }
    let want = std::fs::read_to_string(expected).unwrap_or_else(|_| {
        panic!(
            "{} is missing; run with UPDATE_EXPECT=1 to create it",
            expected.display()
        )
    });
    assert_eq!(
        actual,
        want,
        "{} differs from {} (UPDATE_EXPECT=1 rewrites it)",
        input.display(),
        expected.display()
    );
}

#[tokio::test]
async fn config_errors_match_their_golden_files() {
    let plugins = plugins().await;
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(dir())
        .expect("tests/config exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    inputs.sort();
    assert!(inputs.len() >= 5, "{inputs:?}");
    for input in inputs {
        let text = std::fs::read_to_string(&input).expect("read");
        let actual = report(&text, &plugins);
        for secret in [
            "s3cr3t-value",
            "ci-golden-env-secret",
            "adm-golden-file-secret",
        ] {
            assert!(!actual.contains(secret), "{}: {actual}", input.display());
        }
        check(&input, &actual, &input.with_extension("err"));
    }
}
