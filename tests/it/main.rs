//! End-to-end tests, one binary with a module per area (every test binary
//! links wasmtime again, so there is only one).

mod api;
mod api_limits;
mod api_secrets;
mod channels;
mod dispatch;
mod email;
mod limits;
mod loading;
mod monitors;
mod rate;
mod reload;
mod support;
mod timers;
mod webhook;
