//! The plugin runtime: loads channel components and runs each call in a
//! fresh sandbox.
//!
//! One [`Runtime`] per process owns the wasmtime `Engine` (pooling allocator,
//! epoch interruption), the `Linker` with WASI and Carillon's imports, the
//! outbound HTTP client and the compiled-artifact cache. A loaded [`Plugin`]
//! is a pre-instantiated component plus its checked manifest. Every call
//! (`describe`, `validate`, `render`, `deliver`) gets a new `Store` with a
//! memory cap, a CPU budget (epoch ticks) and a wall-clock timeout, so a
//! plugin's trap, loop or leak costs that one call and nothing else.

mod bindings;
mod cache;
mod call;
mod convert;
mod host;
mod load;
mod runtime;
pub mod types;
pub mod workload;

pub use call::CallError;
pub use load::{LoadError, Plugin, SUPPORTED_WIT};
pub use runtime::{
    DEFAULT_KEEP_RESIDENT, Destination, Limits, Runtime, RuntimeConfig, RuntimeError,
};
