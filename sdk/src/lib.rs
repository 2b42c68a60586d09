//! The Carillon plugin SDK: write a channel plugin as a plain Rust type.
//!
//! A plugin implements [`Channel`] and exports it with [`export_channel!`].
//! The SDK owns the WebAssembly bindings (generated from the `carillon:plugin`
//! WIT package), parses the destination configuration into your own type, and
//! offers what every channel needs: HTTP helpers over the host import
//! ([`http`]), signing ([`sign`]), each vendor's Markdown dialect
//! ([`dialect`]), Markdown-to-text and byte-budget trimming
//! ([`text`]), table rendering ([`table`]), fitting a whole payload into a
//! channel's byte limit ([`fit`]), checking endpoint URLs ([`endpoint`]) and
//! locales ([`locale`]), mentions ([`mention`]), security keywords
//! ([`keywords`]), vendors' body error codes ([`error_code`]) and logging
//! ([`log`]).
//!
//! Built for `wasm32-wasip2`, the plugin is a component the gateway loads.
//! Built natively (as in `cargo test`), the same code runs against the
//! [`testing::Harness`], which answers HTTP requests from a script.
//!
//! # Example
//!
//! ```
//! use carillon_sdk::{
//!     export_channel, Channel, Context, DeliverError, HttpRequest, Manifest, Message, Outgoing,
//! };
//! use serde::Deserialize;
//!
//! /// Posts the message title to an endpoint as JSON.
//! pub struct Echo;
//!
//! #[derive(Deserialize)]
//! pub struct EchoConfig {
//!     url: String,
//! }
//!
//! impl Channel for Echo {
//!     type Config = EchoConfig;
//!
//!     fn manifest() -> Manifest {
//!         Manifest::new("echo", env!("CARGO_PKG_VERSION"), "Posts the title as JSON.")
//!             .schema(r#"{"type":"object","required":["url"],"properties":{"url":{"type":"string"}}}"#)
//!             .endpoint_field("/url")
//!     }
//!
//!     fn render(_: &Context, config: &EchoConfig, msg: &Message) -> Result<Outgoing, DeliverError> {
//!         let body = serde_json::json!({ "title": msg.title });
//!         Ok(Outgoing::Http(HttpRequest::post_json(&config.url, &body)?))
//!     }
//! }
//!
//! export_channel!(Echo);
//!
//! # fn main() {
//! // In a test, run it natively against a scripted responder:
//! use carillon_sdk::testing::{Harness, sample_message};
//! use carillon_sdk::HttpResponse;
//! let harness = Harness::<Echo>::new().respond(|_| Ok(HttpResponse::text(200, "ok")));
//! let config = serde_json::json!({ "url": "https://example.com/hook" });
//! let receipt = harness.deliver(&config, &sample_message()).unwrap();
//! assert_eq!(receipt.detail, "200 ok");
//! assert_eq!(harness.requests()[0].url, "https://example.com/hook");
//! # }
//! ```

#[doc(hidden)]
pub mod bindings;
pub mod classify;
mod convert;
pub mod dialect;
pub mod endpoint;
pub mod error_code;
pub mod fit;
pub mod http;
pub mod keywords;
pub mod locale;
pub mod log;
pub mod mention;
pub mod sign;
pub mod smtp;
pub mod table;
pub mod text;

#[cfg(not(target_arch = "wasm32"))]
pub mod testing;

pub use bindings::carillon::plugin::http::HttpError;
pub use bindings::carillon::plugin::log::Level;
pub use bindings::carillon::plugin::smtp::{SmtpError, SmtpReply};
pub use bindings::carillon::plugin::types::{
    Column, Comparison, Condition, ConfigIssue, Context, DeliverError, Destination, Field,
    HttpRequest, HttpResponse, Link, Mail, Manifest, Mention, Message, Outgoing, RateLimit,
    Receipt, RetryLater, Severity, SmtpSecurity, SmtpServer, Table,
};

/// The version of the `carillon:plugin` WIT package this SDK builds against.
pub const WIT_VERSION: &str = "0.1.0";

/// A channel plugin.
///
/// Implement [`manifest`](Channel::manifest) and [`render`](Channel::render);
/// the provided [`deliver`](Channel::deliver) sends exactly what `render`
/// returns and hands the answer to [`classify`](Channel::classify), so the
/// preview an admin sees is the request that goes out. Override `classify`
/// when the channel reports errors in the body (most chat vendors answer HTTP
/// 200 with an error code).
pub trait Channel {
    /// A destination's configuration, parsed from the JSON object the gateway
    /// passes. A parse failure becomes a [`ConfigIssue`] naming the path.
    type Config: serde::de::DeserializeOwned;

    /// Describes the plugin: name, version, config schema, limits and hosts.
    fn manifest() -> Manifest;

    /// Checks a parsed configuration beyond its JSON Schema. Returns every
    /// problem found; the default finds none.
    fn check(config: &Self::Config) -> Vec<ConfigIssue> {
        let _ = config;
        Vec::new()
    }

    /// Builds the exact request for this message, without side effects.
    fn render(
        ctx: &Context,
        config: &Self::Config,
        message: &Message,
    ) -> Result<Outgoing, DeliverError>;

    /// Classifies the channel's HTTP answer. The default follows HTTP status
    /// semantics ([`classify::by_status`]).
    fn classify(ctx: &Context, response: &HttpResponse) -> Result<Receipt, DeliverError> {
        classify::by_status(ctx, response)
    }

    /// Sends what [`render`](Channel::render) returns and classifies the answer.
    fn deliver(
        ctx: &Context,
        config: &Self::Config,
        message: &Message,
    ) -> Result<Receipt, DeliverError> {
        match Self::render(ctx, config, message)? {
            Outgoing::Http(request) => {
                let response = http::send(&request).map_err(classify::transport_error)?;
                Self::classify(ctx, &response)
            }
            Outgoing::Mail(mail) => smtp::send(&mail)
                .map(|reply| Receipt {
                    remote_id: None,
                    detail: format!("{} {}", reply.code, reply.message),
                })
                .map_err(classify::smtp_error),
        }
    }
}

/// Parses a destination's configuration for `C`, reporting a failure with the
/// JSON path of the offending property.
pub fn parse_config<C: Channel>(config: &str) -> Result<C::Config, ConfigIssue> {
    let mut de = serde_json::Deserializer::from_str(config);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        ConfigIssue {
            path: json_pointer_from_serde_path(&path),
            message: e.into_inner().to_string(),
        }
    })
}

/// Turns serde_path_to_error's `a.b[0]` into the JSON pointer `/a/b/0`.
fn json_pointer_from_serde_path(path: &str) -> String {
    if path == "." {
        return String::new();
    }
    let mut out = String::new();
    for segment in path.split('.') {
        let mut rest = segment;
        let name_end = rest.find('[').unwrap_or(rest.len());
        if name_end > 0 {
            out.push('/');
            out.push_str(&rest[..name_end].replace('~', "~0").replace('/', "~1"));
        }
        rest = &rest[name_end..];
        while let Some(close) = rest.find(']') {
            out.push('/');
            out.push_str(&rest[1..close]);
            rest = &rest[close + 1..];
        }
    }
    out
}

/// Glue between the generated bindings and [`Channel`]; used by
/// [`export_channel!`] and the test harness.
#[doc(hidden)]
pub mod __private {
    use super::*;

    pub fn describe<C: Channel>() -> Manifest {
        C::manifest()
    }

    pub fn validate<C: Channel>(config: String) -> Result<(), Vec<ConfigIssue>> {
        let parsed = parse_config::<C>(&config).map_err(|issue| vec![issue])?;
        let issues = C::check(&parsed);
        if issues.is_empty() {
            Ok(())
        } else {
            Err(issues)
        }
    }

    fn config<C: Channel>(destination: &Destination) -> Result<C::Config, DeliverError> {
        parse_config::<C>(&destination.config).map_err(|issue| {
            DeliverError::InvalidConfig(format!(
                "destination {:?}: {} at {:?}",
                destination.name, issue.message, issue.path
            ))
        })
    }

    pub fn render<C: Channel>(
        ctx: Context,
        destination: Destination,
        message: Message,
    ) -> Result<Outgoing, DeliverError> {
        C::render(&ctx, &config::<C>(&destination)?, &message)
    }

    pub fn deliver<C: Channel>(
        ctx: Context,
        destination: Destination,
        message: Message,
    ) -> Result<Receipt, DeliverError> {
        C::deliver(&ctx, &config::<C>(&destination)?, &message)
    }
}

/// Exports a [`Channel`] implementation as the plugin's `channel` interface.
///
/// Use it once per plugin crate, at the top level. When the crate is built
/// natively (for tests) the macro expands to nothing, and the
/// [`testing::Harness`] calls the type directly.
#[macro_export]
macro_rules! export_channel {
    ($channel:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct CarillonExport;

            impl $crate::bindings::exports::carillon::plugin::channel::Guest for CarillonExport {
                fn describe() -> $crate::Manifest {
                    $crate::__private::describe::<$channel>()
                }
                fn validate(
                    config: ::std::string::String,
                ) -> ::std::result::Result<(), ::std::vec::Vec<$crate::ConfigIssue>> {
                    $crate::__private::validate::<$channel>(config)
                }
                fn render(
                    context: $crate::Context,
                    destination: $crate::Destination,
                    message: $crate::Message,
                ) -> ::std::result::Result<$crate::Outgoing, $crate::DeliverError> {
                    $crate::__private::render::<$channel>(context, destination, message)
                }
                fn deliver(
                    context: $crate::Context,
                    destination: $crate::Destination,
                    message: $crate::Message,
                ) -> ::std::result::Result<$crate::Receipt, $crate::DeliverError> {
                    $crate::__private::deliver::<$channel>(context, destination, message)
                }
            }

    $crate::bindings::__export_plugin_world!(CarillonExport with_types_in $crate::bindings);
        };
    };
}

#[cfg(test)]
mod tests {
    use super::json_pointer_from_serde_path;

    #[test]
    fn serde_paths_become_json_pointers() {
        assert_eq!(json_pointer_from_serde_path("."), "");
        assert_eq!(json_pointer_from_serde_path("url"), "/url");
        assert_eq!(json_pointer_from_serde_path("headers.x-a"), "/headers/x-a");
        assert_eq!(json_pointer_from_serde_path("keywords[2]"), "/keywords/2");
        assert_eq!(json_pointer_from_serde_path("a[0].b/c"), "/a/0/b~1c");
    }
}
