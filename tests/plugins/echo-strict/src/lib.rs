//! Test fixture: the `echo` plugin, version 3.0.0, whose schema requires a `channel_id` older configs lack.
//!
//! The `echo-v1`, `echo-v2` and `echo-strict` fixtures are builds of one
//! plugin, `echo`, that differ visibly: each marks what it sends with its
//! version, so a test sees which build delivered a message.

use carillon_sdk::{
    Channel, Context, DeliverError, HttpRequest, Manifest, Message, Outgoing, export_channel,
};
use serde::Deserialize;

/// The marker in front of every body this build sends.
const MARK: &str = "v3";

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
        Manifest::new("echo", "3.0.0", "Test fixture: posts the title with a version marker.")
            .schema(r#"{"type":"object","required":["url","channel_id"],"properties":{"url":{"type":"string"},"channel_id":{"type":"string"}}}"#)
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
