//! End-to-end tests, one binary with a module per area (every test binary
//! links wasmtime again, so there is only one).

mod access;
mod activation;
mod api;
mod api_limits;
mod api_pause;
mod api_secrets;
mod channels;
mod channels_dialects;
mod config_reload;
mod contacts;
mod dispatch;
mod email;
mod limits;
mod loading;
mod monitors;
mod objects;
mod pause;
mod quota;
mod rate;
mod reload;
mod retry_policy;
mod sources;
mod support;
mod timers;
mod webhook;
