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
//!
//! The files import one another in one direction only (each uses only
//! those before it): `imports` (a call's store data and the host side of
//! the imports), `runtime` (the engine and its settings), `exports` (each
//! export's signature, checked and called as one type), `loaded` (a
//! [`Plugin`] and what its manifest grants), `call` (running an export),
//! `load` (a `.wasm` into a [`Plugin`]). `secrets` is a leaf: a
//! destination's secret strings, scrubbed from everything a call says.

mod bindings;
mod cache;
mod call;
mod convert;
mod exports;
mod imports;
mod load;
mod loaded;
mod runtime;
mod secrets;
pub mod types;
pub mod workload;

pub use call::CallError;
pub use load::{LoadError, SUPPORTED_WIT};
pub use loaded::{Destination, Plugin};
pub use runtime::{DEFAULT_KEEP_RESIDENT, Limits, Runtime, RuntimeConfig, RuntimeError};
pub use secrets::Secrets;
