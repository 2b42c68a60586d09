//! The first-party plugins compiled to `wasm32-wasip2` components by this
//! crate's build script, embedded in the gateway so it works with an empty
//! plugin directory; plus the file paths of the test fixture plugins.

/// One compiled plugin.
#[derive(Debug, Clone, Copy)]
pub struct Artifact {
    /// The crate it was built from, e.g. `carillon-plugin-webhook`.
    pub crate_name: &'static str,
    /// The component's bytes.
    pub wasm: &'static [u8],
}

include!(concat!(env!("OUT_DIR"), "/artifacts.rs"));

/// The embedded bytes of the first-party plugin built from `crate_name`.
pub fn builtin(crate_name: &str) -> Option<&'static [u8]> {
    BUILTIN
        .iter()
        .find(|a| a.crate_name == crate_name)
        .map(|a| a.wasm)
}

/// The file path of a plugin (first-party or fixture) built from `crate_name`.
pub fn path(crate_name: &str) -> Option<&'static str> {
    BUILTIN_PATHS
        .iter()
        .chain(FIXTURE_PATHS)
        .find(|(name, _)| *name == crate_name)
        .map(|(_, path)| *path)
}
