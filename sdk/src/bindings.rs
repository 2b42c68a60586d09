//! The bindings generated from `wit/plugin.wit`. Vendors use the re-exports in
//! the crate root and the [`export_channel!`](crate::export_channel) macro;
//! nothing here is meant to be called directly.

#![allow(missing_docs, unsafe_code, clippy::all)]

wit_bindgen::generate!({
    path: "../wit",
    world: "plugin",
    pub_export_macro: true,
    export_macro_name: "__export_plugin_world",
    default_bindings_module: "carillon_sdk::bindings",
    additional_derives: [PartialEq],
});
