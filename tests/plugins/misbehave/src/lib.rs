//! A deliberately misbehaving plugin. The destination config's `mode` picks
//! the misbehaviour, and each has a well-behaved counterpart so every limit
//! gets an "obeyed" and a "violated" test:
//!
//! | mode | does |
//! | --- | --- |
//! | `ok` | renders a small request; `deliver` posts it to `url` if given |
//! | `spin` | burns `iterations` loop iterations, then behaves |
//! | `loop` | loops forever |
//! | `alloc` | allocates and touches `bytes` bytes, then behaves |
//! | `alloc-forever` | allocates 1 MiB chunks until stopped |
//! | `trap` | aborts (an `unreachable` trap, no message) |
//! | `panic` | panics with a message |
//! | `fetch` | `deliver` GETs `fetch_url` (or `url`) and reports the host's answer |
//! | `big` | renders a body of `bytes` bytes |
//! | `log` | logs one line at each level, then behaves |

use carillon_sdk::{
    Channel, Context, DeliverError, HttpRequest, Manifest, Message, Outgoing, Receipt, classify,
    export_channel, http, log,
};
use serde::Deserialize;

/// The misbehaving channel.
pub struct Misbehave;

/// What to do.
#[derive(Debug, Deserialize)]
pub struct Config {
    mode: String,
    #[serde(default)]
    bytes: usize,
    #[serde(default)]
    iterations: u64,
    #[serde(default)]
    url: Option<String>,
    /// For `fetch`: a URL to GET instead of `url`. Not an endpoint field,
    /// so its host is not granted: this is how the fixture reaches for a
    /// host it was never given.
    #[serde(default)]
    fetch_url: Option<String>,
}

impl Channel for Misbehave {
    type Config = Config;

    fn manifest() -> Manifest {
        Manifest::new(
            "misbehave",
            "0.1.0",
            "Test fixture that misbehaves on request.",
        )
        .schema(r#"{"type":"object","required":["mode"],"properties":{"mode":{"type":"string"}}}"#)
        .endpoint_field("/url")
        .max_payload_bytes(64 * 1024 * 1024)
    }

    fn render(ctx: &Context, config: &Config, message: &Message) -> Result<Outgoing, DeliverError> {
        misbehave(config);
        let body = match config.mode.as_str() {
            "big" => vec![b'x'; config.bytes],
            _ => format!("{}|{}|{}", ctx.delivery_id, message.title, config.mode).into_bytes(),
        };
        Ok(Outgoing::Http(HttpRequest {
            method: "POST".into(),
            url: config
                .url
                .clone()
                .unwrap_or_else(|| "https://example.invalid/".into()),
            headers: vec![("content-type".into(), "text/plain".into())],
            body,
            timeout_ms: None,
        }))
    }

    fn deliver(ctx: &Context, config: &Config, message: &Message) -> Result<Receipt, DeliverError> {
        match (config.mode.as_str(), &config.url) {
            ("fetch", Some(url)) => {
                let request = HttpRequest {
                    method: "GET".into(),
                    url: config.fetch_url.clone().unwrap_or_else(|| url.clone()),
                    headers: Vec::new(),
                    body: Vec::new(),
                    timeout_ms: None,
                };
                let response = http::send(&request).map_err(classify::transport_error)?;
                Ok(Receipt {
                    remote_id: None,
                    detail: classify::summary(&response),
                })
            }
            (_, Some(_)) => match Self::render(ctx, config, message)? {
                Outgoing::Http(request) => {
                    let response = http::send(&request).map_err(classify::transport_error)?;
                    classify::by_status(ctx, &response)
                }
                Outgoing::Mail(_) => Err(DeliverError::rejected("no mail here")),
            },
            (_, None) => {
                Self::render(ctx, config, message)?;
                Ok(Receipt {
                    remote_id: Some(ctx.delivery_id.clone()),
                    detail: format!("{} done", config.mode),
                })
            }
        }
    }
}

fn misbehave(config: &Config) {
    match config.mode.as_str() {
        "spin" => {
            let mut x = 0u64;
            for i in 0..config.iterations {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
            }
            std::hint::black_box(x);
        }
        "loop" => {
            let mut x = 0u64;
            loop {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        }
        "alloc" => {
            let block = vec![1u8; config.bytes];
            std::hint::black_box(&block);
        }
        "alloc-forever" => {
            let mut blocks = Vec::new();
            loop {
                blocks.push(vec![1u8; 1 << 20]);
                std::hint::black_box(&blocks);
            }
        }
        "trap" => std::process::abort(),
        "panic" => panic!("misbehave: deliberate panic for the test"),
        "log" => {
            log::debug("misbehave debug line");
            log::info("misbehave info line");
            log::warn("misbehave warn line");
            log::error("misbehave error line");
        }
        _ => {}
    }
}

export_channel!(Misbehave);
