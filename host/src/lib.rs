//! Carillon, the notification gateway: the library behind the `carillon`
//! binary. See ARCHITECTURE.md for the map; in short:
//!
//! - [`gateway`]: the running gateway (`carillon serve`), composed of:
//! - [`api`]: the HTTP API (ingest, admin, metrics, health);
//! - [`event`]: every accepted input format, normalized to one `Event`;
//! - [`route`] and [`render`]: routing rules and templates;
//! - [`plugin`]: the sandboxed WebAssembly runtime for channel plugins, and
//!   [`catalog`], the installed plugins;
//! - [`config`]: `carillon.toml`, parsed, validated and with secrets resolved;
//! - [`dispatch`]: delivering what the outbox holds, with retries, rate
//!   limits and fallbacks;
//! - [`egress`]: which hosts and addresses plugins may reach;
//! - [`message`]: the channel-neutral message;
//! - [`receive`]: `carillon receive`, a local webhook receiver.

pub mod access;
pub mod api;
pub mod catalog;
pub mod config;
pub mod dispatch;
pub mod egress;
pub mod event;
pub mod gateway;
pub mod message;
pub mod monitor;
pub mod plugin;
pub mod problem;
pub mod quota;
pub mod receive;
pub mod render;
pub mod route;
pub mod timeout;
pub mod timestamp;
pub mod tls;
