// The `echo` fixture's code, shared by the `echo-v1` and `echo-v2` builds
// (included by each crate's lib.rs; the version comes from its Cargo.toml).

use carillon_sdk::{
    Channel, Context, DeliverError, HttpRequest, Manifest, Message, Outgoing, export_channel,
};
use serde::Deserialize;

/// The marker in front of every body this build sends: `v` + the crate's
/// major version.
const MARK: &str = concat!("v", env!("CARGO_PKG_VERSION_MAJOR"));

/// The echo channel.
pub struct Echo;

/// Where to post.
#[derive(Debug, Deserialize)]
pub struct Config {
    url: String,
}

impl Channel for Echo {
    type Config = Config;

    fn manifest() -> Manifest {
        Manifest::new(
            "echo",
            env!("CARGO_PKG_VERSION"),
            "Test fixture: posts the title with a version marker.",
        )
        .schema(r#"{"type":"object","required":["url"],"properties":{"url":{"type":"string"}}}"#)
        .endpoint_field("/url")
    }

    fn render(_: &Context, config: &Config, message: &Message) -> Result<Outgoing, DeliverError> {
        Ok(Outgoing::Http(HttpRequest {
            method: "POST".into(),
            url: config.url.clone(),
            headers: vec![("content-type".into(), "text/plain".into())],
            body: format!("{MARK}|{}", message.title).into_bytes(),
            timeout_ms: None,
        }))
    }
}

export_channel!(Echo);
