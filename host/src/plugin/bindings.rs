//! The one place that runs `bindgen!` over `wit/plugin.wit`. Everything else
//! in the gateway speaks the host's own types (see `plugin::types`); the
//! conversions live in `plugin::convert`.

#![allow(missing_docs, clippy::all)]

wasmtime::component::bindgen!({
    path: "../wit",
    world: "plugin",
    imports: {
        "carillon:plugin/http.send": async,
        "carillon:plugin/smtp.send": async,
    },
    exports: { default: async },
});
