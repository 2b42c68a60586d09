//! Throughput probes of the storage path: a bare sled loop and durable
//! enqueues from concurrent writers. They live here, not in a benchmark,
//! because two measurers share them (`benches/enqueue.rs` and the benchmark
//! suite's storage ceiling in `carillon-bench`) and because this crate is
//! the only code that touches sled.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::{EnqueueError, NewDelivery, NewEvent, OpenError, Outbox, OutboxConfig};

/// What one probe measured.
#[derive(Debug, Clone)]
pub struct Measurement {
    /// Operations completed.
    pub ops: u64,
    /// Wall-clock time they took.
    pub elapsed: Duration,
    /// Every operation's latency, sorted ascending.
    pub latencies: Vec<Duration>,
    /// Writes per flush (group commit), for outbox probes.
    pub mean_batch: Option<f64>,
}

impl Measurement {
    /// Operations per second.
    pub fn rate(&self) -> f64 {
        // Precision loss past 2^52 operations is irrelevant for a rate.
        #[allow(clippy::cast_precision_loss)]
        let ops = self.ops as f64;
        ops / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }

    /// The latency at quantile `q` in `[0, 1]` (zero without samples).
    pub fn quantile(&self, q: f64) -> Duration {
        let Some(last) = self.latencies.len().checked_sub(1) else {
            return Duration::ZERO;
        };
        #[allow(
            clippy::cast_precision_loss,
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss
        )]
        let i = ((last as f64) * q.clamp(0.0, 1.0)) as usize;
        self.latencies[i.min(last)]
    }
}

/// Why a probe stopped.
#[derive(Debug, thiserror::Error)]
pub enum ThroughputError {
    /// sled failed.
    #[error("sled failed")]
    Sled(#[from] sled::Error),
    /// The outbox could not be opened.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// An enqueue failed.
    #[error(transparent)]
    Enqueue(#[from] EnqueueError),
    /// A writer task panicked or was cancelled.
    #[error("a writer task failed: {0}")]
    Task(String),
}

/// A typical delivery payload's size.
fn payload() -> Vec<u8> {
    vec![b'x'; 600]
}

/// Inserts 600-byte values into a bare sled database at `dir` for
/// `duration` (at most 5 million), flushing after each insert when `flush`:
/// the floor (flush each) and the roof (no flush) that group commit sits
/// between.
pub fn bare_sled(
    dir: &Path,
    flush: bool,
    duration: Duration,
) -> Result<Measurement, ThroughputError> {
    let db = sled::open(dir)?;
    let start = Instant::now();
    let mut latencies = Vec::new();
    let mut n: u64 = 0;
    while start.elapsed() < duration && n < 5_000_000 {
        let t = Instant::now();
        db.insert(n.to_be_bytes(), payload())?;
        if flush {
            db.flush()?;
        }
        latencies.push(t.elapsed());
        n += 1;
    }
    let elapsed = start.elapsed();
    latencies.sort_unstable();
    Ok(Measurement {
        ops: n,
        elapsed,
        latencies,
        mean_batch: None,
    })
}

/// The outbox's write pattern with nothing of the outbox around it: one
/// thread commits rounds of `batch` enqueues, each round one atomic batch
/// on the events tree (per enqueue one event record at the outbox's
/// record size: body and payload inside; deliveries get their records
/// later, the indexes are in memory), then flushes. This is what sled itself allows for an enqueue:
/// the ceiling the outbox's group commit (which batches the same way) can
/// approach.
pub fn bare_sled_enqueue_shape(
    dir: &Path,
    batch: usize,
    duration: Duration,
) -> Result<Measurement, ThroughputError> {
    let db = sled::open(dir)?;
    let events = db.open_tree("events")?;
    let event = vec![b'e'; 1000];
    let start = Instant::now();
    let mut latencies = Vec::new();
    let mut n: u64 = 0;
    while start.elapsed() < duration && n < 5_000_000 {
        let t = Instant::now();
        let first = n;
        n += batch as u64;
        let mut round = sled::Batch::default();
        for i in first..n {
            round.insert(format!("evt_{i:026}").as_bytes(), event.as_slice());
        }
        events.apply_batch(round)?;
        db.flush()?;
        latencies.extend(std::iter::repeat_n(t.elapsed(), batch));
    }
    let elapsed = start.elapsed();
    latencies.sort_unstable();
    #[allow(clippy::cast_precision_loss)]
    let mean_batch = Some(batch as f64);
    Ok(Measurement {
        ops: n,
        elapsed,
        latencies,
        mean_batch,
    })
}

/// `writers` tasks on the current tokio runtime, each enqueueing one event
/// (300-byte body) with one delivery (600-byte payload) after another into
/// a fresh outbox at `dir` for `duration`: durable enqueues under group
/// commit, as the ingest API makes them.
pub async fn enqueue(
    dir: &Path,
    writers: usize,
    duration: Duration,
) -> Result<Measurement, ThroughputError> {
    let outbox = Arc::new(Outbox::open(OutboxConfig {
        max_pending: u64::MAX,
        ..OutboxConfig::new(dir)
    })?);
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..writers {
        let outbox = Arc::clone(&outbox);
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            let mut i = 0u64;
            while Instant::now() < deadline && i < 2_000_000 {
                let t = Instant::now();
                let event = NewEvent {
                    source: format!("app{w}"),
                    idempotency_key: Some(format!("k{i}")),
                    body: vec![b'e'; 300],
                };
                let deliveries = vec![NewDelivery {
                    destination: "hook".into(),
                    payload: payload(),
                }];
                outbox.enqueue(event, deliveries).await?;
                latencies.push(t.elapsed());
                i += 1;
            }
            Ok::<_, EnqueueError>(latencies)
        });
    }
    let mut latencies = Vec::new();
    while let Some(done) = tasks.join_next().await {
        latencies.extend(done.map_err(|e| ThroughputError::Task(e.to_string()))??);
    }
    let elapsed = start.elapsed();
    latencies.sort_unstable();
    Ok(Measurement {
        ops: latencies.len() as u64,
        elapsed,
        latencies,
        mean_batch: Some(outbox.flush_stats().mean_batch()),
    })
}
