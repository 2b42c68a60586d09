//! The per-call store data and the host side of the plugin imports:
//! `http` (through the egress client), `smtp` (grant and address checks;
//! delivery arrives with the email plugin) and `log` (into `tracing`).

use std::net::IpAddr;
use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::carillon::plugin::{http, log, smtp, types};
use super::convert;
use crate::egress::Grant;
use crate::egress::http::HttpEgress;

/// Guest stdout/stderr kept per call; enough for a panic message.
pub(crate) const OUTPUT_CAPTURE_BYTES: usize = 16 * 1024;

/// What a call's store holds.
pub(crate) struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) memory: MemoryLimiter,
    pub(crate) cpu_ticks: u64,
    http: HttpEgress,
    grant: Arc<Grant>,
    plugin: Arc<str>,
    destination: Arc<str>,
    log_lines: u32,
    max_log_lines: u32,
    pub(crate) dropped_log_lines: u32,
}

impl HostState {
    /// A sandbox with nothing granted: no files, env, args or sockets; the
    /// guest's stdout and stderr go to bounded in-memory pipes.
    pub(crate) fn new(
        http: HttpEgress,
        grant: Arc<Grant>,
        plugin: Arc<str>,
        destination: Arc<str>,
        memory_bytes: usize,
        max_log_lines: u32,
    ) -> (Self, MemoryOutputPipe) {
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
            grant,
            plugin,
            destination,
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
        let url_host = request_host(&request.url);
        let result = self.http.send(&self.grant, request).await;
        match &result {
            Ok(response) => tracing::debug!(
                plugin = %self.plugin, destination = %self.destination, host = %url_host,
                status = response.status, elapsed_ms = started.elapsed().as_millis() as u64,
                "plugin HTTP request"
            ),
            Err(error) => tracing::debug!(
                plugin = %self.plugin, destination = %self.destination, host = %url_host,
                %error, "plugin HTTP request failed"
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
        let host = mail.server.host.clone();
        if !self.grant.allows(&host, mail.server.port) {
            return Err(smtp::SmtpError::Denied(format!(
                "{host}:{}",
                mail.server.port
            )));
        }
        if let Ok(ip) = host.parse::<IpAddr>()
            && !self.http.policy().permits(ip)
        {
            return Err(smtp::SmtpError::PrivateAddress(ip.to_string()));
        }
        // The SMTP transport ships with the email channel; until then the
        // answer is an honest, retryable connection failure.
        Err(smtp::SmtpError::Connect(
            "this gateway has no SMTP transport yet".to_owned(),
        ))
    }
}

impl log::Host for HostState {
    fn log(&mut self, level: log::Level, message: String) {
        if self.log_lines >= self.max_log_lines {
            self.dropped_log_lines += 1;
            return;
        }
        self.log_lines += 1;
        let message: String = message.chars().take(2048).collect();
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
