//! The listener: accepts connections up to `server.max_connections` and
//! serves each with HTTP/1.1, closing the ones that stall.
//!
//! `axum::serve` has no header timeout, no connection cap and waits for
//! every connection on shutdown, so a few hundred half-sent requests used
//! every file descriptor and one stalled body kept the process from
//! stopping. Here each connection has a watchdog:
//! - a request head (line and headers) must be complete within
//!   `header_timeout` of its first byte (of the connection's start for the
//!   first request);
//! - a connection with no request in flight and no bytes moving for
//!   `idle_timeout` is closed;
//! - a body must arrive within `body_timeout` once a handler reads it
//!   (`body.rs`, which answers 408).
//!
//! On shutdown the listener closes, idle connections close at once, and
//! requests in flight get `shutdown_grace` before their connections are
//! dropped.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;

use crate::config::ServerLimits;

/// At most one "connection limit reached" line per this interval.
const FULL_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// Serves `app` on `listener` until `stop` turns true, then drains.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ServerLimits,
    mut stop: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let mut connections = JoinSet::new();
    let mut last_full_log: Option<Instant> = None;
    let limits = Arc::new(limits);
    loop {
        while connections.try_join_next().is_some() {}
        let permit = match permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                if last_full_log.is_none_or(|t| t.elapsed() >= FULL_LOG_INTERVAL) {
                    tracing::warn!(
                        max_connections = limits.max_connections,
                        "connection limit reached: new connections wait in the listen backlog \
                         until one closes (server.max_connections; logged once a minute)"
                    );
                    last_full_log = Some(Instant::now());
                }
                tokio::select! {
                    permit = permits.clone().acquire_owned() => match permit {
                        Ok(permit) => permit,
                        Err(_) => break,
                    },
                    _ = stopped(&mut stop) => break,
                }
            }
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Out of file descriptors and the like: wait rather
                    // than spin; a refused handshake is the client's.
                    tracing::debug!(%error, "accept failed");
                    if !is_per_connection(&error) {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    continue;
                }
            },
            _ = stopped(&mut stop) => break,
        };
        let _ = stream.set_nodelay(true);
        connections.spawn(connection(
            stream,
            app.clone(),
            limits.clone(),
            stop.clone(),
            permit,
        ));
    }
    drop(listener);
    let drained = tokio::time::timeout(limits.shutdown_grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            open = connections.len(),
            grace_secs = limits.shutdown_grace.as_secs(),
            "closing connections still open after the shutdown grace period"
        );
        connections.abort_all();
        while connections.join_next().await.is_some() {}
    }
}

/// Resolves once `stop` is true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Errors of one connection's handshake, after which accepting goes on.
fn is_per_connection(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// Serves one connection until it ends, stalls or the grace period ends.
async fn connection(
    stream: TcpStream,
    app: Router,
    limits: Arc<ServerLimits>,
    mut stop: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
) {
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Watched {
        inner: stream,
        activity: activity.clone(),
    });
    let tower = TowerToHyperService::new(app);
    let tracked = activity.clone();
    let service = hyper::service::service_fn(move |request| {
        let guard = tracked.request_started();
        let response = hyper::service::Service::call(&tower, request);
        async move {
            let response = response.await;
            drop(guard);
            response
        }
    });
    let conn = http1::Builder::new().serve_connection(io, service);
    tokio::pin!(conn);
    let tick = (limits.header_timeout.min(limits.idle_timeout) / 4)
        .clamp(Duration::from_millis(50), Duration::from_secs(1));
    let mut ticks = tokio::time::interval(tick);
    let mut stopping = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%error, "connection ended with an error");
                }
                return;
            }
            _ = ticks.tick() => match activity.verdict(&limits) {
                Verdict::Serving => {}
                Verdict::HeaderTimeout => {
                    tracing::debug!("closing a connection: its request head did not arrive in time");
                    return;
                }
                Verdict::Idle => return,
            },
            _ = stopped(&mut stop), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// What the watchdog sees on a connection.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// A request is in flight, or the connection is within its timeouts.
    Serving,
    /// A request head is arriving too slowly.
    HeaderTimeout,
    /// No request and no bytes for the idle timeout.
    Idle,
}

/// No head is being read (the marker in `Activity::head_since`).
const NONE: u64 = u64::MAX;

/// One connection's progress, in milliseconds since it was accepted. On
/// tokio's clock, so a test can pause and advance it.
#[derive(Debug)]
struct Activity {
    start: tokio::time::Instant,
    /// Last byte read or written.
    last_io: AtomicU64,
    /// First byte of the request head being read, or `NONE`.
    head_since: AtomicU64,
    /// Requests handed to the router and not answered yet.
    in_flight: AtomicUsize,
}

impl Activity {
    fn new() -> Self {
        Activity {
            start: tokio::time::Instant::now(),
            last_io: AtomicU64::new(0),
            // The first request's head is due from the connection's start.
            head_since: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(NONE - 1)
    }

    fn read(&self) {
        let now = self.now();
        self.last_io.store(now, Ordering::Relaxed);
        if self.in_flight.load(Ordering::Relaxed) == 0 {
            let _ =
                self.head_since
                    .compare_exchange(NONE, now, Ordering::Relaxed, Ordering::Relaxed);
        }
    }

    fn wrote(&self) {
        self.last_io.store(self.now(), Ordering::Relaxed);
    }

    fn request_started(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.head_since.store(NONE, Ordering::Relaxed);
        InFlight(self.clone())
    }

    fn verdict(&self, limits: &ServerLimits) -> Verdict {
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return Verdict::Serving;
        }
        let now = self.now();
        let since = |ms: u64| Duration::from_millis(now.saturating_sub(ms));
        match self.head_since.load(Ordering::Relaxed) {
            NONE if since(self.last_io.load(Ordering::Relaxed)) >= limits.idle_timeout => {
                Verdict::Idle
            }
            NONE => Verdict::Serving,
            head if since(head) >= limits.header_timeout => Verdict::HeaderTimeout,
            _ => Verdict::Serving,
        }
    }
}

/// A request in flight; answered when dropped.
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.wrote();
    }
}

/// A stream that reports its reads and writes to its [`Activity`].
struct Watched<T> {
    inner: T,
    activity: Arc<Activity>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.read();
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.wrote();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.wrote();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ServerLimits {
        ServerLimits {
            header_timeout: Duration::from_millis(100),
            idle_timeout: Duration::from_millis(200),
            ..ServerLimits::default()
        }
    }

    /// On tokio's paused clock: time moves only by `advance`, so a loaded
    /// machine cannot push a check past a timeout.
    #[tokio::test(start_paused = true)]
    async fn the_watchdog_times_heads_and_idle_connections_but_not_requests() {
        let limits = limits();
        let wait = |ms: u64| tokio::time::advance(Duration::from_millis(ms));
        let a = Arc::new(Activity::new());
        assert_eq!(a.verdict(&limits), Verdict::Serving);
        wait(99).await;
        assert_eq!(a.verdict(&limits), Verdict::Serving);
        wait(1).await;
        // The first head is due from the connection's start.
        assert_eq!(a.verdict(&limits), Verdict::HeaderTimeout);
        let request = a.request_started();
        wait(250).await;
        assert_eq!(a.verdict(&limits), Verdict::Serving, "a slow handler");
        drop(request);
        // Between requests: the idle timeout, from the answer.
        wait(199).await;
        assert_eq!(a.verdict(&limits), Verdict::Serving);
        wait(1).await;
        assert_eq!(a.verdict(&limits), Verdict::Idle);
        // A byte of the next head starts the header timeout.
        a.read();
        assert_eq!(a.verdict(&limits), Verdict::Serving);
        wait(99).await;
        assert_eq!(a.verdict(&limits), Verdict::Serving);
        wait(1).await;
        assert_eq!(a.verdict(&limits), Verdict::HeaderTimeout);
    }
}
