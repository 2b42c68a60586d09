//! Group commit: many writers share one `fsync`. A dedicated thread flushes
//! whenever writes are pending; a writer takes a ticket *after* its write
//! is committed to sled's log and waits until a flush that *started after*
//! the ticket was taken has finished. The flusher reads the highest ticket
//! before calling `flush`, so every ticket up to it is covered.
//!
//! This is pattern (b) "eager" of `limits.md` §2: no linger, so a lone
//! writer pays one flush and a crowd amortizes it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use tokio::sync::watch;

/// Flush statistics for metrics: how many writes each flush covered.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FlushStats {
    /// Flushes performed (successful or not).
    pub flushes: u64,
    /// Writes covered by those flushes.
    pub writes: u64,
    /// The largest batch seen.
    pub max_batch: u64,
    /// `buckets[i]` counts flushes whose batch size was in
    /// `[2^i, 2^(i+1))`; the last bucket also holds everything larger.
    pub buckets: [u64; 12],
    /// Flushes that failed.
    pub failures: u64,
}

impl FlushStats {
    fn record(&mut self, batch: u64) {
        self.flushes += 1;
        self.writes += batch;
        self.max_batch = self.max_batch.max(batch);
        let i = usize::try_from(batch.max(1).ilog2()).unwrap_or(usize::MAX);
        let last = self.buckets.len() - 1;
        self.buckets[i.min(last)] += 1;
    }

    /// Mean writes per flush.
    pub fn mean_batch(&self) -> f64 {
        if self.flushes == 0 {
            0.0
        } else {
            // Precision loss past 2^52 writes is irrelevant for a mean.
            #[allow(clippy::cast_precision_loss)]
            let m = self.writes as f64 / self.flushes as f64;
            m
        }
    }
}

#[derive(Clone, Debug, Default)]
struct Durable {
    /// Every ticket up to this one is on disk.
    upto: u64,
    /// Set once a flush fails; sled treats I/O errors as fail-stop.
    failed: Option<Arc<str>>,
}

#[derive(Default)]
struct Control {
    stop: bool,
}

struct Shared {
    db: sled::Db,
    issued: AtomicU64,
    control: Mutex<Control>,
    wake: Condvar,
    durable: watch::Sender<Durable>,
    stats: Mutex<FlushStats>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The flusher thread and the writers' side of it.
pub(crate) struct GroupCommit {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// Why a writer's durability wait failed.
pub(crate) enum WaitError {
    Failed(Arc<str>),
    Closed,
}

impl GroupCommit {
    pub(crate) fn start(db: sled::Db) -> std::io::Result<Self> {
        let (durable, _) = watch::channel(Durable::default());
        let shared = Arc::new(Shared {
            db,
            issued: AtomicU64::new(0),
            control: Mutex::new(Control::default()),
            wake: Condvar::new(),
            durable,
            stats: Mutex::new(FlushStats::default()),
        });
        let s = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("outbox-flusher".into())
            .spawn(move || flusher(&s))?;
        Ok(Self {
            shared,
            thread: Some(thread),
        })
    }

    /// Waits until a flush covers every write this task committed before
    /// calling. Call only after the write's transaction returned.
    pub(crate) async fn wait_durable(&self) -> Result<(), WaitError> {
        let mut rx = self.shared.durable.subscribe();
        let ticket = self.shared.issued.fetch_add(1, Ordering::SeqCst) + 1;
        {
            let _g = lock(&self.shared.control);
            self.shared.wake.notify_one();
        }
        let state = rx
            .wait_for(|d| d.upto >= ticket || d.failed.is_some())
            .await
            .map_err(|_| WaitError::Closed)?;
        if state.upto >= ticket {
            Ok(())
        } else {
            Err(WaitError::Failed(
                state.failed.clone().unwrap_or_else(|| Arc::from("")),
            ))
        }
    }

    pub(crate) fn stats(&self) -> FlushStats {
        lock(&self.shared.stats).clone()
    }

    /// Flushes what is pending and stops the thread.
    pub(crate) fn stop(&mut self) {
        lock(&self.shared.control).stop = true;
        self.shared.wake.notify_one();
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            tracing::error!("the outbox flusher thread panicked");
        }
    }
}

impl Drop for GroupCommit {
    fn drop(&mut self) {
        self.stop();
    }
}

fn flusher(s: &Shared) {
    let mut flushed = 0u64;
    loop {
        let target = {
            let mut c = lock(&s.control);
            loop {
                let issued = s.issued.load(Ordering::SeqCst);
                if issued > flushed {
                    break issued;
                }
                if c.stop {
                    return;
                }
                c = s.wake.wait(c).unwrap_or_else(PoisonError::into_inner);
            }
        };
        let result = s.db.flush();
        {
            let mut st = lock(&s.stats);
            st.record(target - flushed);
            if result.is_err() {
                st.failures += 1;
            }
        }
        match result {
            Ok(_) => s.durable.send_modify(|d| d.upto = target),
            Err(e) => {
                tracing::error!(error = %e, "outbox flush failed; refusing further acknowledgements");
                let msg: Arc<str> = Arc::from(e.to_string());
                s.durable.send_modify(|d| d.failed = Some(msg));
            }
        }
        flushed = target;
    }
}
