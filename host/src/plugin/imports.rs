//! The per-call store data and the host side of the plugin imports:
//! `http` and `smtp` (through the egress clients, which check grants and
//! addresses) and `log` (into `tracing`).

use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::carillon::plugin::{http, log, smtp, types};
use super::convert;
use super::secrets::Secrets;
use crate::egress::Grant;
use crate::egress::http::HttpEgress;
use crate::egress::smtp::{self as egress_smtp, SmtpEgress};

/// Guest stdout/stderr kept per call; enough for a panic message.
pub(crate) const OUTPUT_CAPTURE_BYTES: usize = 16 * 1024;

/// What a call's store holds.
pub(crate) struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) memory: MemoryLimiter,
    pub(crate) cpu_ticks: u64,
    http: HttpEgress,
    smtp: SmtpEgress,
    grant: Arc<Grant>,
    plugin: Arc<str>,
    destination: Arc<str>,
    /// Scrubbed from the plugin's log lines and the imports' error logs.
    secrets: Arc<Secrets>,
    log_lines: u32,
    max_log_lines: u32,
    pub(crate) dropped_log_lines: u32,
}

/// Whose call a sandbox serves: named in its log lines, and the secrets
/// scrubbed from them.
pub(crate) struct CallSite {
    pub(crate) plugin: Arc<str>,
    pub(crate) destination: Arc<str>,
    pub(crate) secrets: Arc<Secrets>,
}

impl HostState {
    /// A sandbox with nothing granted: no files, env, args or sockets; the
    /// guest's stdout and stderr go to bounded in-memory pipes.
    pub(crate) fn new(
        http: HttpEgress,
        smtp: SmtpEgress,
        grant: Arc<Grant>,
        site: CallSite,
        memory_bytes: usize,
        max_log_lines: u32,
    ) -> (Self, MemoryOutputPipe) {
        let CallSite {
            plugin,
            destination,
            secrets,
        } = site;
        let output = MemoryOutputPipe::new(OUTPUT_CAPTURE_BYTES);
        let wasi = WasiCtx::builder()
            .stdout(output.clone())
            .stderr(output.clone())
            .build();
        let state = HostState {
            wasi,
            table: ResourceTable::new(),
            memory: MemoryLimiter::new(memory_bytes),
            cpu_ticks: 0,
            http,
            smtp,
            grant,
            plugin,
            destination,
            secrets,
            log_lines: 0,
            max_log_lines,
            dropped_log_lines: 0,
        };
        (state, output)
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Caps a call's linear memory in total (wasmtime's `StoreLimits` caps each
/// memory separately). Exceeding it traps with [`MemoryLimitExceeded`].
pub(crate) struct MemoryLimiter {
    max_total: usize,
    used: usize,
    pub(crate) peak: usize,
}

impl MemoryLimiter {
    fn new(max_total: usize) -> Self {
        MemoryLimiter {
            max_total,
            used: 0,
            peak: 0,
        }
    }
}

/// The trap raised when a plugin outgrows its memory limit.
#[derive(Debug, thiserror::Error)]
#[error("plugin memory limit of {limit} bytes exceeded (it asked for {wanted} bytes)")]
pub(crate) struct MemoryLimitExceeded {
    pub(crate) limit: usize,
    pub(crate) wanted: usize,
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let next = self.used.saturating_sub(current).saturating_add(desired);
        if next > self.max_total {
            return Err(wasmtime::Error::new(MemoryLimitExceeded {
                limit: self.max_total,
                wanted: next,
            }));
        }
        self.used = next;
        self.peak = self.peak.max(next);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }

    fn instances(&self) -> usize {
        32
    }

    fn tables(&self) -> usize {
        16
    }

    fn memories(&self) -> usize {
        4
    }
}

impl types::Host for HostState {}

impl http::Host for HostState {
    async fn send(
        &mut self,
        request: types::HttpRequest,
    ) -> Result<types::HttpResponse, http::HttpError> {
        let request = convert::http_request_from_wit(request);
        let started = std::time::Instant::now();
        // Parsing the URL again only for a debug line cost ≈ 2 % of a
        // dispatcher's time at full load (BENCHMARKS.md): only when logged.
        let url_host = tracing::enabled!(tracing::Level::DEBUG).then(|| request_host(&request.url));
        let url_host = url_host.as_deref().unwrap_or_default();
        let result = self.http.send(&self.grant, request).await;
        match &result {
            Ok(response) => tracing::debug!(
                plugin = %self.plugin, destination = %self.destination, host = %url_host,
                status = response.status, elapsed_ms = started.elapsed().as_millis() as u64,
                "plugin HTTP request"
            ),
            Err(error) => tracing::debug!(
                plugin = %self.plugin, destination = %self.destination, host = %url_host,
                error = %self.secrets.scrub(&error.to_string()), "plugin HTTP request failed"
            ),
        }
        result
            .map(convert::http_response_to_wit)
            .map_err(convert::http_error_to_wit)
    }
}

/// The host of a URL, for logs (never the path or query, which may hold tokens).
fn request_host(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| "<invalid url>".to_owned())
}

impl smtp::Host for HostState {
    async fn send(&mut self, mail: types::Mail) -> Result<smtp::SmtpReply, smtp::SmtpError> {
        let mail = mail_from_wit(mail);
        let (host, port, recipients) = (
            mail.server.host.clone(),
            mail.server.port,
            mail.envelope_to.len(),
        );
        let started = std::time::Instant::now();
        let result = self.smtp.send(&self.grant, mail).await;
        // Hosts and counts only: never credentials, addresses or content.
        match &result {
            Ok(reply) => tracing::debug!(
                plugin = %self.plugin, destination = %self.destination, host = %host, port,
                recipients, code = reply.code, elapsed_ms = started.elapsed().as_millis() as u64,
                "plugin SMTP mail"
            ),
            Err(error) => tracing::debug!(
                plugin = %self.plugin, destination = %self.destination, host = %host, port,
                recipients, error = %self.secrets.scrub(&error.to_string()),
                "plugin SMTP mail failed"
            ),
        }
        result
            .map(|r| smtp::SmtpReply {
                code: r.code,
                message: r.message,
            })
            .map_err(smtp_error_to_wit)
    }
}

fn mail_from_wit(mail: types::Mail) -> egress_smtp::OutgoingMail {
    let server = mail.server;
    egress_smtp::OutgoingMail {
        server: egress_smtp::SmtpServer {
            host: server.host,
            port: server.port,
            security: match server.security {
                types::SmtpSecurity::ImplicitTls => egress_smtp::SmtpSecurity::ImplicitTls,
                types::SmtpSecurity::Starttls => egress_smtp::SmtpSecurity::StartTls,
                types::SmtpSecurity::None => egress_smtp::SmtpSecurity::None,
            },
            username: server.username,
            password: server.password,
        },
        envelope_from: mail.envelope_from,
        envelope_to: mail.envelope_to,
        message: mail.message,
    }
}

fn smtp_error_to_wit(error: egress_smtp::SmtpError) -> smtp::SmtpError {
    use egress_smtp::SmtpError as E;
    let reply = |r: egress_smtp::SmtpReply| smtp::SmtpReply {
        code: r.code,
        message: r.message,
    };
    match error {
        E::Denied(what) => smtp::SmtpError::Denied(what),
        E::PrivateAddress(what) => smtp::SmtpError::PrivateAddress(what),
        E::InvalidMail(why) => smtp::SmtpError::InvalidMail(why),
        E::Connect(why) => smtp::SmtpError::Connect(why),
        E::Timeout => smtp::SmtpError::Timeout,
        E::Transient(r) => smtp::SmtpError::Transient(reply(r)),
        E::Permanent(r) => smtp::SmtpError::Permanent(reply(r)),
    }
}

impl log::Host for HostState {
    fn log(&mut self, level: log::Level, message: String) {
        if self.log_lines >= self.max_log_lines {
            self.dropped_log_lines += 1;
            return;
        }
        self.log_lines += 1;
        // Scrubbed whole, then cut: a cut could split a secret.
        let message: String = self.secrets.scrub(&message).chars().take(2048).collect();
        let (plugin, destination) = (&*self.plugin, &*self.destination);
        match level {
            log::Level::Trace => {
                tracing::trace!(target: "carillon::plugin", plugin, destination, "{message}")
            }
            log::Level::Debug => {
                tracing::debug!(target: "carillon::plugin", plugin, destination, "{message}")
            }
            log::Level::Info => {
                tracing::info!(target: "carillon::plugin", plugin, destination, "{message}")
            }
            log::Level::Warn => {
                tracing::warn!(target: "carillon::plugin", plugin, destination, "{message}")
            }
            log::Level::Error => {
                tracing::error!(target: "carillon::plugin", plugin, destination, "{message}")
            }
        }
    }
}
