//! Builds every plugin crate to a `wasm32-wasip2` component with a nested
//! `cargo build` in its own target directory, so `cargo build` of the gateway
//! needs no manual step and no `.wasm` is ever committed.
//!
//! Plugins are discovered, not listed: every crate under `plugins/` (except
//! this one) is a first-party plugin and is embedded; every crate under
//! `tests/plugins/` is a test fixture whose path is exported.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";
const PROFILE: &str = "plugin";

/// Environment the outer cargo sets that must not leak into the nested build:
/// host rustflags (coverage, sanitizers), clippy's wrapper, the outer target.
const SCRUB: &[&str] = &[
    "CARGO_ENCODED_RUSTFLAGS",
    "RUSTFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
    "RUSTC_WORKSPACE_WRAPPER",
    "RUSTC_WRAPPER",
    "CARGO_BUILD_TARGET",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET_DIR",
    "CARGO_MAKEFLAGS",
    "MAKEFLAGS",
    "MFLAGS",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_LLVM_COV",
    "__CARGO_FIX_PLZ",
    "CLIPPY_ARGS",
    "CLIPPY_CONF_DIR",
];

struct Crate {
    package: String,
    dir: PathBuf,
}

fn main() {
    let manifest_dir =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest_dir
        .parent()
        .and_then(Path::parent)
        .expect("plugins/builtin sits two levels below the workspace root")
        .to_path_buf();
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));

    let builtin = discover(&root.join("plugins"), &manifest_dir);
    let fixtures = discover(&root.join("tests/plugins"), &manifest_dir);

    // The root manifest holds `[profile.plugin]` and the shared dependency
    // versions; the toolchain file picks the compiler.
    for path in [
        "wit",
        "sdk",
        "Cargo.toml",
        "Cargo.lock",
        "rust-toolchain.toml",
        "plugins",
        "tests/plugins",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(path).display());
    }
    println!("cargo:rerun-if-env-changed=CARILLON_SKIP_WASM_TARGET_INSTALL");

    ensure_target_installed();

    let target_dir = env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("wasm-plugins");
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut command = Command::new(cargo);
    command
        .current_dir(&root)
        .arg("build")
        .args(["--target", TARGET, "--profile", PROFILE])
        .arg("--target-dir")
        .arg(&target_dir)
        .arg("--manifest-path")
        .arg(root.join("Cargo.toml"));
    for krate in builtin.iter().chain(&fixtures) {
        command.args(["-p", &krate.package]);
    }
    for var in SCRUB {
        command.env_remove(var);
    }
    let status = command
        .status()
        .unwrap_or_else(|e| panic!("cannot run cargo for the plugins: {e}"));
    if !status.success() {
        panic!(
            "building the plugins for {TARGET} failed (see the output above). \
             If the target is missing, run `rustup target add {TARGET}`."
        );
    }

    let wasm_dir = target_dir.join(TARGET).join(PROFILE);
    let mut code = String::new();
    code.push_str("/// The first-party plugins, embedded.\npub const BUILTIN: &[Artifact] = &[\n");
    for krate in &builtin {
        let wasm = copy_artifact(&wasm_dir, &out_dir, krate);
        writeln!(
            code,
            "    Artifact {{ crate_name: {:?}, wasm: include_bytes!({:?}) }},",
            krate.package,
            wasm.display().to_string()
        )
        .expect("writing to a String cannot fail");
    }
    code.push_str("];\n\n");
    let builtin_paths: Vec<PathBuf> = builtin
        .iter()
        .map(|krate| out_dir.join(file_name(krate)))
        .collect();
    write_paths(
        &mut code,
        "/// Paths of the first-party plugin files, for tests and tools that load from disk.",
        "BUILTIN_PATHS",
        &builtin,
        &builtin_paths,
    );
    code.push('\n');
    let fixture_paths: Vec<PathBuf> = fixtures
        .iter()
        .map(|krate| copy_artifact(&wasm_dir, &out_dir, krate))
        .collect();
    write_paths(
        &mut code,
        "/// Paths of the test fixture plugins (never embedded).",
        "FIXTURE_PATHS",
        &fixtures,
        &fixture_paths,
    );
    fs::write(out_dir.join("artifacts.rs"), code).expect("cannot write artifacts.rs");
}

/// Writes `const NAME: &[(&str, &str)]`, each crate's package and file path.
fn write_paths(code: &mut String, doc: &str, name: &str, crates: &[Crate], paths: &[PathBuf]) {
    writeln!(code, "{doc}\npub const {name}: &[(&str, &str)] = &[")
        .expect("writing to a String cannot fail");
    for (krate, path) in crates.iter().zip(paths) {
        writeln!(
            code,
            "    ({:?}, {:?}),",
            krate.package,
            path.display().to_string()
        )
        .expect("writing to a String cannot fail");
    }
    code.push_str("];\n");
}

/// Installs the wasm target through rustup when the toolchain lacks it, so a
/// fresh machine builds with no manual step (rust-toolchain.toml lists it, but
/// rustup only installs listed targets together with a new toolchain).
fn ensure_target_installed() {
    if env::var_os("CARILLON_SKIP_WASM_TARGET_INSTALL").is_some() {
        return;
    }
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let sysroot = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    let Some(sysroot) = sysroot else { return };
    if sysroot.join("lib/rustlib").join(TARGET).exists() {
        return;
    }
    println!("cargo:warning=installing the {TARGET} target with rustup (first build only)");
    let toolchain = sysroot
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut rustup = Command::new("rustup");
    rustup.args(["target", "add", TARGET]);
    if !toolchain.is_empty() {
        rustup.args(["--toolchain", &toolchain]);
    }
    match rustup.status() {
        Ok(s) if s.success() => {}
        _ => println!("cargo:warning=could not install {TARGET}; run `rustup target add {TARGET}`"),
    }
}

fn file_name(krate: &Crate) -> String {
    format!("{}.wasm", krate.package.replace('-', "_"))
}

fn copy_artifact(wasm_dir: &Path, out_dir: &Path, krate: &Crate) -> PathBuf {
    let name = file_name(krate);
    let from = wasm_dir.join(&name);
    let to = out_dir.join(&name);
    fs::copy(&from, &to).unwrap_or_else(|e| {
        panic!(
            "plugin crate {} (in {}) produced no {} ({e}); is it a cdylib?",
            krate.package,
            krate.dir.display(),
            from.display()
        )
    });
    to
}

/// Every crate directly under `dir` with a `[package] name`, sorted by name.
fn discover(dir: &Path, skip: &Path) -> Vec<Crate> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut crates: Vec<Crate> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p != skip && p.join("Cargo.toml").is_file())
        .filter_map(|p| {
            let manifest = fs::read_to_string(p.join("Cargo.toml")).ok()?;
            let package = package_name(&manifest)?;
            Some(Crate { package, dir: p })
        })
        .collect();
    crates.sort_by(|a, b| a.package.cmp(&b.package));
    crates
}

/// The `name` under `[package]` of a Cargo manifest.
fn package_name(manifest: &str) -> Option<String> {
    let mut in_package = false;
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_package = line == "[package]";
        } else if in_package && let Some(value) = line.strip_prefix("name") {
            let value = value.trim_start().strip_prefix('=')?.trim();
            return Some(value.trim_matches('"').to_owned());
        }
    }
    None
}
