//! The host side of the plugins' `http` import: one pooled reqwest client
//! whose resolver drops refused addresses, plus the per-request checks
//! (grant, IP literals, size caps, timeouts). Redirects are never
//! followed: a 3xx is the plugin's to classify.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::redirect;

use super::wire::{HttpRequest, HttpResponse};
use super::{EgressPolicy, Grant};

/// Limits applied to every plugin HTTP request.
#[derive(Debug, Clone)]
pub struct HttpLimits {
    /// Used when the plugin gives no timeout.
    pub default_timeout: Duration,
    /// The longest timeout a plugin may ask for.
    pub max_timeout: Duration,
    /// Largest request body accepted from a plugin.
    pub max_request_bytes: usize,
    /// Largest response body returned to a plugin.
    pub max_response_bytes: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            default_timeout: Duration::from_secs(15),
            max_timeout: Duration::from_secs(60),
            max_request_bytes: 4 << 20,
            max_response_bytes: 1 << 20,
        }
    }
}

/// Why no response was returned; mirrors the WIT `http-error`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// Host not granted.
    #[error("host {0} is not granted to this destination")]
    Denied(String),
    /// Address refused by policy.
    #[error("{0} is a private address that the egress policy does not allow")]
    PrivateAddress(String),
    /// Malformed request.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// Timed out.
    #[error("timed out")]
    Timeout,
    /// Could not connect.
    #[error("connection failed: {0}")]
    Connect(String),
    /// Response over the cap.
    #[error("response larger than {0} bytes")]
    ResponseTooLarge(u64),
    /// Other transport failure.
    #[error("transport error: {0}")]
    Transport(String),
}

/// Raised by the resolver when every address of a name is refused; found
/// again in reqwest's error chain to report `PrivateAddress`.
#[derive(Debug, thiserror::Error)]
#[error("{host} resolves only to addresses the egress policy refuses ({addrs})")]
struct AddressRefused {
    host: String,
    addrs: String,
}

/// Resolves with the system resolver, then keeps only permitted addresses.
struct PolicyResolver {
    policy: Arc<EgressPolicy>,
}

impl Resolve for PolicyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|e| -> Box<dyn std::error::Error + Send + Sync> { Box::new(e) })?
                .collect();
            let (allowed, refused): (Vec<SocketAddr>, Vec<SocketAddr>) =
                resolved.into_iter().partition(|a| policy.permits(a.ip()));
            if allowed.is_empty() {
                let addrs = refused
                    .iter()
                    .map(|a| a.ip().to_string())
                    .collect::<Vec<_>>()
                    .join(", ");
                return Err(Box::new(AddressRefused { host, addrs })
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            let addrs: Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

/// The gateway's one outbound HTTP client for plugins.
#[derive(Clone)]
pub struct HttpEgress {
    client: reqwest::Client,
    policy: Arc<EgressPolicy>,
    limits: HttpLimits,
}

impl std::fmt::Debug for HttpEgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpEgress")
            .field("policy", &self.policy)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// The client could not be built (TLS roots unavailable, for instance).
#[derive(Debug, thiserror::Error)]
#[error("cannot build the outbound HTTP client: {0}")]
pub struct ClientError(#[source] reqwest::Error);

impl HttpEgress {
    /// Builds the client. Redirects are not followed: the 3xx answer goes
    /// back to the plugin. A followed 301/302/303 turns the POST into a GET,
    /// so a receiver redirecting to its login page would answer 200 to a
    /// request that carried no message, and the delivery would be recorded
    /// as delivered (Standard Webhooks: a 3xx is a failure). Not following
    /// also keeps every request within its grant.
    pub fn new(policy: EgressPolicy, limits: HttpLimits) -> Result<Self, ClientError> {
        crate::tls::install_crypto_provider();
        let policy = Arc::new(policy);
        let redirects = redirect::Policy::none();
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(PolicyResolver {
                policy: policy.clone(),
            }))
            .redirect(redirects)
            .no_proxy()
            .tcp_nodelay(true)
            .pool_max_idle_per_host(256)
            .pool_idle_timeout(Duration::from_secs(90))
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("carillon/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(ClientError)?;
        Ok(HttpEgress {
            client,
            policy,
            limits,
        })
    }

    /// The address policy in force.
    pub fn policy(&self) -> &EgressPolicy {
        &self.policy
    }

    /// Sends one plugin request under `grant`.
    pub async fn send(
        &self,
        grant: &Grant,
        request: HttpRequest,
    ) -> Result<HttpResponse, HttpError> {
        let url = reqwest::Url::parse(&request.url)
            .map_err(|e| HttpError::InvalidRequest(format!("URL {:?}: {e}", request.url)))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(HttpError::InvalidRequest(format!(
                "scheme {:?} is not http or https",
                url.scheme()
            )));
        }
        let host = url
            .host_str()
            .ok_or_else(|| HttpError::InvalidRequest("the URL has no host".into()))?
            .to_owned();
        let port = url.port_or_known_default().unwrap_or(443);
        if !grant.allows(&host, port) {
            return Err(HttpError::Denied(format!("{host}:{port}")));
        }
        // The connector skips DNS for IP literals, so check them here.
        if let Ok(ip) = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            && !self.policy.permits(ip)
        {
            return Err(HttpError::PrivateAddress(ip.to_string()));
        }
        if request.body.len() > self.limits.max_request_bytes {
            return Err(HttpError::InvalidRequest(format!(
                "the body is {} bytes; the limit is {}",
                request.body.len(),
                self.limits.max_request_bytes
            )));
        }
        let method = reqwest::Method::from_bytes(request.method.as_bytes())
            .map_err(|_| HttpError::InvalidRequest(format!("method {:?}", request.method)))?;
        let timeout = request
            .timeout_ms
            .map(|ms| Duration::from_millis(u64::from(ms)))
            .unwrap_or(self.limits.default_timeout)
            .min(self.limits.max_timeout);
        let mut builder = self.client.request(method, url).timeout(timeout);
        for (name, value) in &request.headers {
            let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| HttpError::InvalidRequest(format!("header name {name:?}")))?;
            let value = reqwest::header::HeaderValue::from_str(value)
                .map_err(|_| HttpError::InvalidRequest(format!("value of header {name}")))?;
            builder = builder.header(name, value);
        }
        let mut response = builder.body(request.body).send().await.map_err(classify)?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let cap = self.limits.max_response_bytes;
        if response
            .content_length()
            .is_some_and(|len| len > cap as u64)
        {
            return Err(HttpError::ResponseTooLarge(cap as u64));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(classify)? {
            if body.len() + chunk.len() > cap {
                return Err(HttpError::ResponseTooLarge(cap as u64));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(HttpResponse {
            status,
            headers,
            body,
        })
    }
}

fn classify(error: reqwest::Error) -> HttpError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    while let Some(e) = source {
        if let Some(refused) = e.downcast_ref::<AddressRefused>() {
            return HttpError::PrivateAddress(format!("{} ({})", refused.host, refused.addrs));
        }
        source = e.source();
    }
    let text = error_chain(&error);
    if error.is_timeout() {
        HttpError::Timeout
    } else if error.is_connect() {
        HttpError::Connect(text)
    } else if error.is_builder() || error.is_request() && error.url().is_none() {
        HttpError::InvalidRequest(text)
    } else {
        HttpError::Transport(text)
    }
}

/// The error and its causes on one line, without repeating the URL (which
/// may carry a token in its query).
fn error_chain(error: &reqwest::Error) -> String {
    let mut parts = Vec::new();
    let mut source = std::error::Error::source(error);
    while let Some(e) = source {
        parts.push(e.to_string());
        source = e.source();
    }
    if parts.is_empty() {
        parts.push(error.without_url_string());
    }
    parts.join(": ")
}

trait WithoutUrl {
    fn without_url_string(&self) -> String;
}

impl WithoutUrl for reqwest::Error {
    fn without_url_string(&self) -> String {
        let mut shown = String::from(if self.is_timeout() {
            "timed out"
        } else if self.is_connect() {
            "could not connect"
        } else if self.is_body() {
            "body error"
        } else if self.is_decode() {
            "decode error"
        } else {
            "request failed"
        });
        if let Some(status) = self.status() {
            shown.push_str(&format!(" (status {status})"));
        }
        shown
    }
}
