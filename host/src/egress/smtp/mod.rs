//! The host side of the plugins' `smtp` import: lettre over tokio and rustls,
//! with the same egress policy as HTTP.
//!
//! Every mail goes through these steps, in order, before a byte is sent:
//! 1. the **grant**: the server's host and port must be granted to the
//!    destination (the email plugin names `/server/host` as an endpoint
//!    field, so the admin's configured server is granted);
//! 2. the **envelope and credentials** are checked (addresses parse, at most
//!    [`SmtpSettings::max_recipients`], credentials come in pairs and never
//!    travel in clear text except to a loopback relay);
//! 3. the host is **resolved once** and every address is checked against the
//!    [`EgressPolicy`]; the connection goes to a permitted *address* (the TLS
//!    certificate is still verified against the host name), so a second DNS
//!    answer cannot point the connection somewhere else (no rebinding gap).
//!    `security = none` is refused unless the address is a private one the
//!    policy allows explicitly: plain SMTP is for local relays only.
//!
//! Connections are pooled per (host, address, port, security, credentials),
//! each pool keeping at most [`SmtpSettings::max_idle_per_server`] idle
//! connections for [`SmtpSettings::idle_timeout`]; at most
//! [`SmtpSettings::max_servers`] pools exist at once (the least recently used
//! is dropped). STARTTLS is required when asked for (lettre's
//! `Tls::Required`): if the server does not offer it or the upgrade fails,
//! neither credentials nor the message are sent.
//!
//! SMTP replies map to [`SmtpError`]: 4xx → `Transient`, 5xx → `Permanent`
//! (both carry the server's code and text); connection, TLS and protocol
//! failures → `Connect`; no answer in time → `Timeout`.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lettre::address::{Address, Envelope};
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

mod classify;

use self::classify::{classify, code_number, connection_never_opened};
use super::{EgressPolicy, Grant, is_public};

/// How the gateway talks to SMTP servers.
#[derive(Clone)]
pub struct SmtpSettings {
    /// Time allowed for resolving the host and opening the TCP connection.
    pub connect_timeout: Duration,
    /// Time allowed for one whole mail: connection, TLS, AUTH and every
    /// command up to the final reply.
    pub send_timeout: Duration,
    /// Idle connections kept per server (0 disables reuse).
    pub max_idle_per_server: u32,
    /// How long an idle connection is kept.
    pub idle_timeout: Duration,
    /// Connection pools kept at once; the least recently used is dropped.
    pub max_servers: usize,
    /// Envelope recipients allowed per mail.
    pub max_recipients: usize,
    /// The largest message accepted from a plugin, in bytes.
    pub max_message_bytes: usize,
    /// Extra root certificates (PEM text, each may hold several) trusted for
    /// SMTP TLS in addition to the system's roots, e.g. a company CA or a
    /// test server's self-signed certificate. Verification is never
    /// disabled: a server must present a certificate that chains to a
    /// trusted root and names the configured host.
    pub extra_roots_pem: Vec<String>,
    /// The name sent with EHLO; the machine's host name when `None`.
    pub hello_name: Option<String>,
}

impl Default for SmtpSettings {
    fn default() -> Self {
        SmtpSettings {
            connect_timeout: Duration::from_secs(10),
            send_timeout: Duration::from_secs(60),
            max_idle_per_server: 4,
            idle_timeout: Duration::from_secs(60),
            max_servers: 64,
            max_recipients: 100,
            max_message_bytes: 10 << 20,
            extra_roots_pem: Vec::new(),
            hello_name: None,
        }
    }
}

impl std::fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("connect_timeout", &self.connect_timeout)
            .field("send_timeout", &self.send_timeout)
            .field("max_idle_per_server", &self.max_idle_per_server)
            .field("idle_timeout", &self.idle_timeout)
            .field("max_servers", &self.max_servers)
            .field("max_recipients", &self.max_recipients)
            .field("max_message_bytes", &self.max_message_bytes)
            .field("extra_roots", &self.extra_roots_pem.len())
            .field("hello_name", &self.hello_name)
            .finish()
    }
}

/// Transport security, as in the WIT `smtp-security`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SmtpSecurity {
    /// TLS from the first byte (usually port 465).
    ImplicitTls,
    /// Plain connection upgraded with STARTTLS, which must succeed.
    StartTls,
    /// No TLS: only to private relays the egress policy allows.
    None,
}

/// The server a mail goes through.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpServer {
    /// Host name or IP address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Transport security.
    pub security: SmtpSecurity,
    /// User name for AUTH PLAIN or LOGIN.
    pub username: Option<String>,
    /// Password for AUTH.
    pub password: Option<String>,
}

impl std::fmt::Debug for SmtpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpServer")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// A mail as a plugin hands it over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMail {
    /// The server to send through.
    pub server: SmtpServer,
    /// MAIL FROM.
    pub envelope_from: String,
    /// RCPT TO, every recipient (to, cc and bcc).
    pub envelope_to: Vec<String>,
    /// The RFC 5322 message.
    pub message: Vec<u8>,
}

/// An SMTP reply: code and text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpReply {
    /// The reply code, e.g. 250.
    pub code: u16,
    /// The server's text, lines joined with spaces.
    pub message: String,
}

impl std::fmt::Display for SmtpReply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.code, self.message)
    }
}

/// Why a mail was not accepted; mirrors the WIT `smtp-error`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SmtpError {
    /// The server's host and port are not granted to this destination, or
    /// plain SMTP was asked for a public server.
    #[error("{0} is not granted to this destination")]
    Denied(String),
    /// The server resolves only to addresses the policy refuses.
    #[error("{0} is a private address that the egress policy does not allow")]
    PrivateAddress(String),
    /// The envelope, credentials or message are malformed.
    #[error("invalid mail: {0}")]
    InvalidMail(String),
    /// Connecting, TLS, AUTH or the protocol failed, or the connection broke.
    #[error("connection failed: {0}")]
    Connect(String),
    /// No answer in time.
    #[error("timed out")]
    Timeout,
    /// A 4xx reply.
    #[error("transient failure: {0}")]
    Transient(SmtpReply),
    /// A 5xx reply.
    #[error("permanent failure: {0}")]
    Permanent(SmtpReply),
}

/// The SMTP settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SmtpSetupError {
    /// An extra root is not a PEM certificate.
    #[error("extra SMTP root certificate #{index} is not usable PEM: {reason}")]
    Root {
        /// Its position in [`SmtpSettings::extra_roots_pem`], from 0.
        index: usize,
        /// Why.
        reason: String,
    },
    /// The EHLO name is empty or has spaces or control characters.
    #[error("the SMTP hello name {0:?} is not a host name")]
    HelloName(String),
}

/// Which pool serves a mail. Not `Debug`: it holds the password.
#[derive(Clone, PartialEq, Eq, Hash)]
struct PoolKey {
    host: String,
    address: SocketAddr,
    security: SmtpSecurity,
    username: Option<String>,
    password: Option<String>,
}

struct PoolEntry {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    last_used: Instant,
}

/// The gateway's one outbound SMTP client for plugins. Cheap to clone;
/// clones share the pools.
#[derive(Clone)]
pub struct SmtpEgress {
    inner: Arc<Inner>,
}

struct Inner {
    policy: Arc<EgressPolicy>,
    settings: SmtpSettings,
    roots: Vec<Certificate>,
    hello: ClientId,
    pools: Mutex<HashMap<PoolKey, PoolEntry>>,
}

impl std::fmt::Debug for SmtpEgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpEgress")
            .field("policy", &self.inner.policy)
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

impl SmtpEgress {
    /// Checks the settings (every extra root must parse) and builds the
    /// client. Pools are created on first use.
    pub fn new(policy: Arc<EgressPolicy>, settings: SmtpSettings) -> Result<Self, SmtpSetupError> {
        crate::tls::install_crypto_provider();
        let mut roots = Vec::new();
        for (index, pem) in settings.extra_roots_pem.iter().enumerate() {
            if !pem.contains("-----BEGIN CERTIFICATE-----") {
                return Err(SmtpSetupError::Root {
                    index,
                    reason: "no CERTIFICATE block".into(),
                });
            }
            let certificate =
                Certificate::from_pem(pem.as_bytes()).map_err(|e| SmtpSetupError::Root {
                    index,
                    reason: e.to_string(),
                })?;
            roots.push(certificate);
        }
        let hello = match &settings.hello_name {
            Some(name) => {
                if name.is_empty() || name.len() > 255 || !name.chars().all(is_hostname_char) {
                    return Err(SmtpSetupError::HelloName(name.clone()));
                }
                ClientId::Domain(name.clone())
            }
            None => ClientId::default(),
        };
        Ok(SmtpEgress {
            inner: Arc::new(Inner {
                policy,
                settings,
                roots,
                hello,
                pools: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The address policy in force.
    pub fn policy(&self) -> &EgressPolicy {
        &self.inner.policy
    }

    /// Sends one plugin mail under `grant` and returns the server's final
    /// reply.
    pub async fn send(&self, grant: &Grant, mail: OutgoingMail) -> Result<SmtpReply, SmtpError> {
        let settings = &self.inner.settings;
        let server = &mail.server;
        let host = server
            .host
            .trim()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .trim_end_matches('.')
            .to_ascii_lowercase();
        if host.is_empty() || !host.chars().all(is_hostname_char) {
            return Err(SmtpError::InvalidMail(format!(
                "server host {:?} is not a host name or IP address",
                server.host
            )));
        }
        if server.port == 0 {
            return Err(SmtpError::InvalidMail("server port 0".into()));
        }
        if !grant.allows(&host, server.port) {
            return Err(SmtpError::Denied(format!("{host}:{}", server.port)));
        }
        let envelope = envelope(&mail.envelope_from, &mail.envelope_to, settings)?;
        if mail.message.is_empty() {
            return Err(SmtpError::InvalidMail("the message is empty".into()));
        }
        if mail.message.len() > settings.max_message_bytes {
            return Err(SmtpError::InvalidMail(format!(
                "the message is {} bytes; the limit is {}",
                mail.message.len(),
                settings.max_message_bytes
            )));
        }
        let credentials = match (&server.username, &server.password) {
            (Some(user), Some(password)) if !user.is_empty() => {
                Some((user.clone(), password.clone()))
            }
            (None, None) => None,
            _ => {
                return Err(SmtpError::InvalidMail(
                    "AUTH needs both a username and a password".into(),
                ));
            }
        };

        let addresses = self.permitted_addresses(&host, server).await?;
        check_clear_text_credentials(&addresses, credentials.is_some(), server.security)?;

        let mut last = None;
        for address in addresses.iter().take(MAX_ADDRESSES_TRIED) {
            let key = PoolKey {
                host: host.clone(),
                address: *address,
                security: server.security,
                username: credentials.as_ref().map(|(u, _)| u.clone()),
                password: credentials.as_ref().map(|(_, p)| p.clone()),
            };
            let transport = self.transport(&key)?;
            let sent = tokio::time::timeout(
                settings.send_timeout,
                transport.send_raw(&envelope, &mail.message),
            )
            .await;
            match sent {
                Ok(Ok(response)) => {
                    return Ok(SmtpReply {
                        code: code_number(&response.code().to_string()),
                        message: response.message().collect::<Vec<_>>().join(" "),
                    });
                }
                Ok(Err(error)) => {
                    let next_address = connection_never_opened(&error);
                    let error = classify(&error);
                    if !next_address {
                        return Err(error);
                    }
                    last = Some(error);
                }
                Err(_) => {
                    // The abandoned exchange may have left a connection in
                    // the middle of a transaction: drop the whole pool.
                    self.forget(&key);
                    return Err(SmtpError::Timeout);
                }
            }
        }
        Err(last.unwrap_or_else(|| SmtpError::Connect(format!("{host} has no usable address"))))
    }

    /// The addresses of `host` this mail may connect to, in resolver order.
    async fn permitted_addresses(
        &self,
        host: &str,
        server: &SmtpServer,
    ) -> Result<Vec<SocketAddr>, SmtpError> {
        let resolved: Vec<SocketAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, server.port)],
            Err(_) => tokio::time::timeout(
                self.inner.settings.connect_timeout,
                tokio::net::lookup_host((host, server.port)),
            )
            .await
            .map_err(|_| SmtpError::Timeout)?
            .map_err(|e| SmtpError::Connect(format!("cannot resolve {host}: {e}")))?
            .collect(),
        };
        let (allowed, refused): (Vec<SocketAddr>, Vec<SocketAddr>) = resolved
            .into_iter()
            .partition(|a| self.inner.policy.permits(a.ip()));
        if allowed.is_empty() {
            let addrs = refused
                .iter()
                .map(|a| a.ip().to_string())
                .collect::<Vec<_>>()
                .join(", ");
            return Err(SmtpError::PrivateAddress(
                if host.parse::<IpAddr>().is_ok() {
                    addrs
                } else {
                    format!("{host} ({addrs})")
                },
            ));
        }
        if server.security != SmtpSecurity::None {
            return Ok(allowed);
        }
        let (relays, public): (Vec<SocketAddr>, Vec<SocketAddr>) =
            allowed.into_iter().partition(|a| !is_public(a.ip()));
        if relays.is_empty() {
            let addrs = public
                .iter()
                .map(|a| a.ip().to_string())
                .collect::<Vec<_>>()
                .join(", ");
            return Err(SmtpError::Denied(format!(
                "{host}:{} without TLS (security \"none\" is only for relays on private addresses allowed by the egress policy; {host} is {addrs})",
                server.port
            )));
        }
        Ok(relays)
    }

    /// The pooled transport for `key`, created on first use.
    fn transport(&self, key: &PoolKey) -> Result<AsyncSmtpTransport<Tokio1Executor>, SmtpError> {
        let mut pools = self
            .inner
            .pools
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(entry) = pools.get_mut(key) {
            entry.last_used = Instant::now();
            return Ok(entry.transport.clone());
        }
        let transport = self.build_transport(key)?;
        if pools.len() >= self.inner.settings.max_servers.max(1) {
            let oldest = pools
                .iter()
                .min_by_key(|(_, entry)| entry.last_used)
                .map(|(key, _)| key.clone());
            if let Some(oldest) = oldest {
                pools.remove(&oldest);
            }
        }
        pools.insert(
            key.clone(),
            PoolEntry {
                transport: transport.clone(),
                last_used: Instant::now(),
            },
        );
        Ok(transport)
    }

    fn forget(&self, key: &PoolKey) {
        self.inner
            .pools
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(key);
    }

    fn build_transport(
        &self,
        key: &PoolKey,
    ) -> Result<AsyncSmtpTransport<Tokio1Executor>, SmtpError> {
        let settings = &self.inner.settings;
        let tls = match key.security {
            SmtpSecurity::None => Tls::None,
            SmtpSecurity::ImplicitTls => Tls::Wrapper(self.tls_parameters(&key.host)?),
            SmtpSecurity::StartTls => Tls::Required(self.tls_parameters(&key.host)?),
        };
        let pool = PoolConfig::new()
            .min_idle(0)
            .max_size(settings.max_idle_per_server)
            .idle_timeout(settings.idle_timeout);
        // The connection goes to the checked address; the host name is used
        // only to verify the certificate.
        let mut builder =
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(key.address.ip().to_string())
                .port(key.address.port())
                .tls(tls)
                .timeout(Some(settings.connect_timeout))
                .hello_name(self.inner.hello.clone())
                .pool_config(pool);
        if let (Some(user), Some(password)) = (&key.username, &key.password) {
            builder = builder
                .credentials(Credentials::new(user.clone(), password.clone()))
                .authentication(vec![Mechanism::Plain, Mechanism::Login]);
        }
        Ok(builder.build())
    }

    fn tls_parameters(&self, host: &str) -> Result<TlsParameters, SmtpError> {
        let mut builder = TlsParameters::builder(host.to_owned());
        for root in &self.inner.roots {
            builder = builder.add_root_certificate(root.clone());
        }
        builder
            .build_rustls()
            .map_err(|e| SmtpError::Connect(format!("TLS setup for {host}: {e}")))
    }
}

/// Credentials travel in clear text only to a relay on this machine.
fn check_clear_text_credentials(
    addresses: &[SocketAddr],
    has_credentials: bool,
    security: SmtpSecurity,
) -> Result<(), SmtpError> {
    if has_credentials
        && security == SmtpSecurity::None
        && addresses.iter().any(|a| !a.ip().is_loopback())
    {
        return Err(SmtpError::InvalidMail(
            "credentials are sent only over TLS (or to a relay on this machine); use security starttls or implicit-tls".into(),
        ));
    }
    Ok(())
}

/// At most this many addresses of one host are tried when connecting fails.
const MAX_ADDRESSES_TRIED: usize = 3;

fn is_hostname_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':')
}

/// Parses and checks the envelope.
fn envelope(from: &str, to: &[String], settings: &SmtpSettings) -> Result<Envelope, SmtpError> {
    let parse = |what: &str, value: &str| {
        value.trim().parse::<Address>().map_err(|e| {
            SmtpError::InvalidMail(format!("{what} address {value:?} is not valid: {e}"))
        })
    };
    let from = parse("sender", from)?;
    if to.is_empty() {
        return Err(SmtpError::InvalidMail("the mail has no recipients".into()));
    }
    if to.len() > settings.max_recipients {
        return Err(SmtpError::InvalidMail(format!(
            "{} recipients; the limit is {}",
            to.len(),
            settings.max_recipients
        )));
    }
    let to = to
        .iter()
        .map(|r| parse("recipient", r))
        .collect::<Result<Vec<_>, _>>()?;
    Envelope::new(Some(from), to).map_err(|e| SmtpError::InvalidMail(e.to_string()))
}

#[cfg(test)]
mod tests;
