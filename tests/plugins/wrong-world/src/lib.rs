//! A component of the wrong world, to prove the gateway refuses it clearly.

#![allow(unsafe_code, missing_docs)]
// Built for the host, nothing is exported, so nothing is used.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

wit_bindgen::generate!({ path: "wit", world: "greeter" });

struct Greeter;

impl Guest for Greeter {
    fn greet() -> String {
        "hello".to_owned()
    }
}

// Exported only in the component, like the `wrong-types` fixture and the
// SDK's `export_channel!`: the exports are WebAssembly's, and a host build
// (`cargo build --workspace`) needs none.
#[cfg(target_arch = "wasm32")]
export!(Greeter);
