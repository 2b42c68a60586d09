//! Carillon, the notification gateway: the library behind the `carillon`
//! binary. See ARCHITECTURE.md for the map; in short:
//!
//! - [`plugin`]: the sandboxed WebAssembly runtime for channel plugins;
//! - [`config`]: `carillon.toml`, parsed, validated and with secrets resolved;
//! - [`dispatch`]: delivering what the outbox holds, with retries, rate
//!   limits and fallbacks;
//! - [`egress`]: which hosts and addresses plugins may reach;
//! - [`event`]: the normalized event every input format becomes;
//! - [`message`]: the channel-neutral message.

pub mod config;
pub mod dispatch;
pub mod egress;
pub mod event;
pub mod message;
pub mod plugin;
pub mod tls;
