//! An axum app on 127.0.0.1:0 served by its own tokio runtime on its own
//! threads, so that a load generator saturating the suite's runtime cannot
//! delay the server's answers or its arrival timestamps (a separate process
//! would behave the same way).

use std::net::SocketAddr;
use std::thread::JoinHandle;

use anyhow::Context as _;
use tokio::sync::oneshot;

/// A running server; stopped when dropped.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Binds 127.0.0.1:0 and serves `app` on a runtime with `workers`
    /// threads named after `name`.
    pub fn spawn(name: &str, app: axum::Router, workers: usize) -> anyhow::Result<Server> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .with_context(|| format!("cannot bind the {name} server to 127.0.0.1"))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers.max(1))
            .thread_name(format!("bench-{name}"))
            .enable_all()
            .build()
            .with_context(|| format!("cannot start the {name} server's runtime"))?;
        let (stop, stopped) = oneshot::channel::<()>();
        let label = name.to_owned();
        let thread = std::thread::Builder::new()
            .name(format!("bench-{name}-main"))
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => l,
                        Err(e) => {
                            eprintln!("{label} server: cannot listen: {e}");
                            return;
                        }
                    };
                    tokio::select! {
                        served = axum::serve(listener, app) => {
                            if let Err(e) = served {
                                eprintln!("{label} server stopped: {e}");
                            }
                        }
                        _ = stopped => {}
                    }
                });
                // Dropping the runtime here ends the connections still open.
            })
            .context("cannot start a server thread")?;
        Ok(Server {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
