//! A component of the wrong world, to prove the gateway refuses it clearly.

#![allow(unsafe_code, missing_docs)]

wit_bindgen::generate!({ path: "wit", world: "greeter" });

struct Greeter;

impl Guest for Greeter {
    fn greet() -> String {
        "hello".to_owned()
    }
}

export!(Greeter);
