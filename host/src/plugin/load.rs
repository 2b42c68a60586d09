//! Loading a component: sniff, hash, compile (or take from the cache), check
//! that it implements the `carillon:plugin` world at a supported version and
//! imports nothing beyond what the gateway offers, pre-instantiate, then ask
//! it to `describe` itself and check the manifest into a [`Plugin`].

use std::sync::Arc;

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::component::types::ComponentItem;

use super::bindings::PluginPre;
use super::call::CallError;
use super::exports::Exports;
use super::loaded::{Plugin, Undescribed, check_manifest};
use super::runtime::Runtime;
use crate::egress::Grant;

/// The WIT package versions this gateway loads: `carillon:plugin@0.1.x`.
pub const SUPPORTED_WIT: &str = "0.1";

const CHANNEL_INTERFACE: &str = "carillon:plugin/channel";

/// Imports a plugin may have. Anything else (filesystem, sockets, wasi:http)
/// is refused at load, not discovered at delivery time.
const ALLOWED_IMPORTS: &[&str] = &[
    "carillon:plugin/types@",
    "carillon:plugin/http@",
    "carillon:plugin/smtp@",
    "carillon:plugin/log@",
    "wasi:io/",
    "wasi:cli/environment@",
    "wasi:cli/exit@",
    "wasi:cli/stdin@",
    "wasi:cli/stdout@",
    "wasi:cli/stderr@",
    "wasi:cli/terminal-",
    "wasi:clocks/",
    "wasi:random/",
];

/// Why a file could not be loaded as a plugin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    /// Not WebAssembly at all.
    #[error("not a WebAssembly file (no `\\0asm` header)")]
    NotWasm,
    /// A core module rather than a component.
    #[error(
        "a core WebAssembly module, not a component: build the plugin with `cargo build --target wasm32-wasip2`"
    )]
    CoreModule,
    /// wasmtime could not compile it.
    #[error("not a valid component: {0}")]
    Compile(String),
    /// It does not export Carillon's channel interface.
    #[error(
        "does not implement the carillon:plugin world (no `{CHANNEL_INTERFACE}@{SUPPORTED_WIT}.x` export); it exports: {exports}"
    )]
    WrongWorld {
        /// What it exports instead.
        exports: String,
    },
    /// It targets a contract version this gateway does not support.
    #[error(
        "targets carillon:plugin@{found}; this gateway supports carillon:plugin@{SUPPORTED_WIT}.x — rebuild the plugin against a supported SDK"
    )]
    UnsupportedVersion {
        /// The version it was built against.
        found: String,
    },
    /// It imports something the gateway does not provide.
    #[error(
        "imports `{0}`, which plugins may not use (no filesystem, sockets or other host access)"
    )]
    ForbiddenImport(String),
    /// Linking or export type-checking failed.
    #[error("does not match the carillon:plugin@{SUPPORTED_WIT} contract: {0}")]
    Link(String),
    /// `describe` failed.
    #[error("describe() failed: {0}")]
    Describe(CallError),
    /// The manifest is malformed.
    #[error("malformed manifest: {}", .0.join("; "))]
    Manifest(Vec<String>),
}

impl Runtime {
    /// Loads a plugin from its `.wasm` bytes. Compilation runs on the
    /// blocking pool; a cached artifact is used when present.
    pub async fn load(&self, wasm: Vec<u8>) -> Result<Arc<Plugin>, LoadError> {
        sniff(&wasm)?;
        let sha256 = hex::encode(Sha256::digest(&wasm));
        let size = wasm.len();
        let runtime = self.clone();
        let hash = sha256.clone();
        let component = tokio::task::spawn_blocking(move || runtime.compile(&wasm, &hash))
            .await
            .map_err(|e| LoadError::Compile(format!("the compile task failed: {e}")))??;
        let wit_version = self.check_world(&component)?;
        let pre = self
            .inner
            .linker
            .instantiate_pre(&component)
            .map_err(|e| LoadError::Link(format!("{e:#}")))?;
        // The generated wrapper; calls look up only the export they run
        // (`Exports`), all four type-checked once when `describe` runs below.
        let pre = PluginPre::new(pre).map_err(|e| LoadError::Link(format!("{e:#}")))?;
        let exports = Exports::find(&component, &format!("{CHANNEL_INTERFACE}@{wit_version}"))
            .map_err(LoadError::Link)?;
        let probe = Plugin::undescribed(Undescribed {
            pre,
            exports,
            sha256,
            wit_version,
            size,
        })
        .map_err(|e| LoadError::Manifest(vec![e]))?;
        let described = self
            .call(
                &probe,
                Arc::new(Grant::default()),
                ("(load)", &Arc::default()),
                |e| e.describe,
                (),
            )
            .await
            .map_err(LoadError::Describe)?;
        let manifest = check_manifest(described).map_err(LoadError::Manifest)?;
        // `describe` ran on the unchecked exports, so all four were
        // type-checked.
        let exports = probe.exports.checked();
        Ok(Arc::new(probe.described(manifest, exports)))
    }

    fn compile(&self, wasm: &[u8], sha256: &str) -> Result<Component, LoadError> {
        let engine = &self.inner.engine;
        if let Some(component) = self
            .inner
            .cache
            .as_ref()
            .and_then(|c| c.get(engine, sha256))
        {
            return Ok(component);
        }
        let component =
            Component::new(engine, wasm).map_err(|e| LoadError::Compile(format!("{e:#}")))?;
        if let Some(cache) = &self.inner.cache {
            cache.put(sha256, &component);
        }
        Ok(component)
    }

    /// Checks exports and imports; returns the contract version.
    fn check_world(&self, component: &Component) -> Result<String, LoadError> {
        let engine = &self.inner.engine;
        let ty = component.component_type();
        let exports: Vec<String> = ty
            .exports(engine)
            .map(|(name, _)| name.to_owned())
            .collect();
        let channel = exports
            .iter()
            .find_map(|name| name.strip_prefix(&format!("{CHANNEL_INTERFACE}@")));
        let version = match channel {
            Some(version) => version.to_owned(),
            None => {
                return Err(LoadError::WrongWorld {
                    exports: if exports.is_empty() {
                        "nothing".to_owned()
                    } else {
                        exports.join(", ")
                    },
                });
            }
        };
        if !version.starts_with(&format!("{SUPPORTED_WIT}.")) || version.contains('-') {
            return Err(LoadError::UnsupportedVersion { found: version });
        }
        for (name, item) in ty.imports(engine) {
            let allowed = ALLOWED_IMPORTS
                .iter()
                .any(|prefix| name.starts_with(prefix));
            if !allowed || !matches!(item.ty, ComponentItem::ComponentInstance(_)) {
                return Err(LoadError::ForbiddenImport(name.to_owned()));
            }
        }
        Ok(version)
    }
}

fn sniff(wasm: &[u8]) -> Result<(), LoadError> {
    if wasm.len() < 8 || &wasm[..4] != b"\0asm" {
        return Err(LoadError::NotWasm);
    }
    // Core modules are version 1 (`01 00 00 00`); components use layer 1.
    if wasm[4..8] == [1, 0, 0, 0] {
        return Err(LoadError::CoreModule);
    }
    Ok(())
}
