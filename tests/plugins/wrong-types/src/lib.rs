//! Carillon's channel interface with the right export names and `describe`,
//! but `validate`, `render` and `deliver` of other types: the gateway must
//! refuse it at load, naming the export.

#![allow(unsafe_code, missing_docs)]
// Built for the host, nothing is exported, so nothing is used.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

wit_bindgen::generate!({ path: "wit", world: "plugin" });

use exports::carillon::plugin::channel::Guest;
use exports::carillon::plugin::channel::Manifest;

struct WrongTypes;

impl Guest for WrongTypes {
    fn describe() -> Manifest {
        Manifest {
            name: "wrong-types".into(),
            version: "0.1.0".into(),
            description: "Exports of the wrong types.".into(),
            config_schema: "{}".into(),
            secret_fields: Vec::new(),
            endpoint_fields: Vec::new(),
            allowed_hosts: Vec::new(),
            max_payload_bytes: 1024,
            rate_limits: Vec::new(),
        }
    }

    fn validate(_config: u32) -> bool {
        true
    }

    fn render(message: String) -> String {
        message
    }

    fn deliver() {}
}

// Exported only in the component: built for the host (a plain `cargo build
// --workspace`), this cdylib would export symbols named after the WIT
// interface (`cabi_post_carillon:plugin/channel@0.1.0#describe`), which the
// host linker refuses. The SDK's `export_channel!` is gated the same way.
#[cfg(target_arch = "wasm32")]
export!(WrongTypes);
