//! End-to-end tests, one binary with a module per area (every test binary
//! links wasmtime again, so there is only one).

mod channels;
mod dispatch;
mod limits;
mod loading;
mod support;
mod webhook;
