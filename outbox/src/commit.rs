//! Group commit: many enqueues share one sled write (an atomic batch for
//! enqueues, a transaction for completions) *and* one flush.
//!
//! Why one write per batch and not per enqueue: in sled 0.34 every
//! multi-key transaction and `apply_batch` seals the current log buffer
//! twice (`pin_log`), and each sealed buffer is written with a waiting
//! `sync_file_range`: one costs about two device writes even without
//! `flush`, which capped one-transaction-per-enqueue at the disk's write
//! rate (~3 k/s here), whatever the flush policy. One per batch pays that
//! once for the whole batch.
//!
//! Writers push a job on a queue and await a oneshot reply (one wake-up
//! per writer, no broadcast). A dedicated thread takes the queued jobs,
//! runs `apply` over all of them (the caller's single transaction), then
//! flushes if any job wrote or must be answered durably, then replies to
//! each job. The flush starts after the transaction committed, so a reply
//! marked [`Durability::AfterFlush`] means the job's write is on disk.
//!
//! Batching policy ([`Policy`]): a lone writer is served at once; under
//! load the thread lingers briefly until about as many jobs are queued as
//! the previous batch held (writers woken by the previous flush are still
//! arriving), so batches stay large instead of splitting into an eager
//! small one and a straggler one (eager flushing never grows batches past
//! ~17 on 2 cores: BENCHMARKS.md, "Machine ceilings").

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

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

/// When a job's reply may be sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Durability {
    /// Nothing of the job's needs to be on disk (it wrote nothing).
    Now,
    /// Only after a flush that started after the batch committed.
    AfterFlush,
}

/// What the committer should do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Commit what is queued now.
    Go,
    /// Wait at most this long for more jobs, then decide again.
    Wait(Duration),
}

/// The batching policy: go at once when the queue holds at least half of
/// what the previous batch held and at least `min_batch` (so with
/// `min_batch` 1 a lone writer never waits), else linger up to `linger`
/// since the oldest queued job arrived.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Policy {
    /// The most jobs committed together (bounds transaction size and the
    /// time sled's global transaction lock is held).
    pub max_batch: usize,
    /// The longest a queued job waits for company.
    pub linger: Duration,
    /// Fewer queued jobs than this wait for company (up to `linger`) even
    /// after small batches: for jobs whose callers are not held up by a
    /// flush, so that they never pile up on their own.
    pub min_batch: usize,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            max_batch: 1024,
            linger: Duration::from_millis(1),
            min_batch: 1,
        }
    }
}

impl Policy {
    /// `queued` jobs are waiting, the oldest for `waited`; the previous
    /// batch held `last` jobs.
    pub(crate) fn decide(&self, queued: usize, last: usize, waited: Duration) -> Decision {
        let want = (last.min(self.max_batch) / 2)
            .max(self.min_batch)
            .clamp(1, self.max_batch);
        if queued == 0 {
            Decision::Wait(self.linger)
        } else if queued >= want || waited >= self.linger {
            Decision::Go
        } else {
            Decision::Wait(self.linger - waited)
        }
    }
}

/// Why a job got no answer of its own.
#[derive(Clone, Debug)]
pub(crate) enum WaitError {
    /// The flush covering it (or an earlier one) failed.
    Failed(Arc<str>),
    /// The committer stopped.
    Closed,
}

type Reply<R> = oneshot::Sender<Result<R, WaitError>>;

/// Applies one batch of jobs (as one transaction) and says, per job, its
/// answer and whether that answer must wait for a flush.
pub(crate) type Apply<J, R> = Box<dyn FnMut(&[J]) -> Vec<(R, Durability)> + Send>;

struct Queue<J, R> {
    jobs: Vec<(J, Reply<R>)>,
    /// When the oldest queued job arrived.
    first_at: Option<Instant>,
    stop: bool,
    /// Set once a flush fails; sled treats I/O errors as fail-stop, so
    /// nothing is acknowledged afterwards.
    failed: Option<Arc<str>>,
}

struct Shared<J, R> {
    queue: Mutex<Queue<J, R>>,
    wake: Condvar,
    stats: Mutex<FlushStats>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The committer thread and the writers' side of it.
pub(crate) struct GroupCommit<J, R> {
    shared: Arc<Shared<J, R>>,
    thread: Option<JoinHandle<()>>,
}

impl<J: Send + 'static, R: Send + 'static> GroupCommit<J, R> {
    /// Starts the committer thread `name`: `apply` runs batches, `db` is
    /// flushed after each batch with an answer that must wait for it.
    pub(crate) fn start(
        name: &str,
        db: sled::Db,
        policy: Policy,
        apply: Apply<J, R>,
    ) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                jobs: Vec::new(),
                first_at: None,
                stop: false,
                failed: None,
            }),
            wake: Condvar::new(),
            stats: Mutex::new(FlushStats::default()),
        });
        let s = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || committer(&s, &db, policy, apply))?;
        Ok(Self {
            shared,
            thread: Some(thread),
        })
    }

    /// Queues `job` and waits for its answer: for a job answered
    /// [`Durability::AfterFlush`], only once a flush covering its write has
    /// completed.
    pub(crate) async fn submit(&self, job: J) -> Result<R, WaitError> {
        let (tx, rx) = oneshot::channel();
        {
            let mut q = lock(&self.shared.queue);
            if q.stop {
                return Err(WaitError::Closed);
            }
            if q.jobs.is_empty() {
                q.first_at = Some(Instant::now());
                self.shared.wake.notify_one();
            }
            q.jobs.push((job, tx));
        }
        // The committer wakes on its own at the linger deadline; a notify
        // per job would only cost futex calls.
        rx.await.map_err(|_| WaitError::Closed)?
    }
}

impl<J, R> GroupCommit<J, R> {
    /// Why the committer refuses to acknowledge anything, once a flush
    /// failed.
    pub(crate) fn failure(&self) -> Option<Arc<str>> {
        lock(&self.shared.queue).failed.clone()
    }

    pub(crate) fn stats(&self) -> FlushStats {
        lock(&self.shared.stats).clone()
    }

    /// Commits and flushes what is queued, then stops the thread.
    pub(crate) fn stop(&mut self) {
        lock(&self.shared.queue).stop = true;
        self.shared.wake.notify_one();
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            tracing::error!("the outbox commit thread panicked");
        }
    }
}

impl<J, R> Drop for GroupCommit<J, R> {
    fn drop(&mut self) {
        self.stop();
    }
}

fn committer<J, R>(s: &Shared<J, R>, db: &sled::Db, policy: Policy, mut apply: Apply<J, R>) {
    let mut last = 1usize;
    loop {
        let (batch, failed) = {
            let mut q = lock(&s.queue);
            loop {
                let waited = q.first_at.map_or(Duration::ZERO, |t| t.elapsed());
                let decision = if q.stop && !q.jobs.is_empty() {
                    Decision::Go
                } else {
                    policy.decide(q.jobs.len(), last, waited)
                };
                match decision {
                    Decision::Go => break,
                    Decision::Wait(_) if q.stop => return,
                    Decision::Wait(_) if q.jobs.is_empty() => {
                        q = s.wake.wait(q).unwrap_or_else(PoisonError::into_inner);
                    }
                    Decision::Wait(d) => {
                        q = s
                            .wake
                            .wait_timeout(q, d)
                            .unwrap_or_else(PoisonError::into_inner)
                            .0;
                    }
                }
            }
            let take = q.jobs.len().min(policy.max_batch);
            let batch: Vec<_> = q.jobs.drain(..take).collect();
            q.first_at = if q.jobs.is_empty() {
                None
            } else {
                Some(Instant::now())
            };
            (batch, q.failed.clone())
        };
        last = batch.len();
        if let Some(msg) = failed {
            for (_, reply) in batch {
                let _ = reply.send(Err(WaitError::Failed(Arc::clone(&msg))));
            }
            continue;
        }
        let (jobs, replies): (Vec<J>, Vec<Reply<R>>) = batch.into_iter().unzip();
        let answers = apply(&jobs);
        drop(jobs);
        let mut now = Vec::new();
        let mut later = Vec::new();
        for (reply, (answer, when)) in replies.into_iter().zip(answers) {
            match when {
                Durability::Now => now.push((reply, answer)),
                Durability::AfterFlush => later.push((reply, answer)),
            }
        }
        for (reply, answer) in now {
            let _ = reply.send(Ok(answer));
        }
        if later.is_empty() {
            continue;
        }
        let result = db.flush();
        {
            let mut st = lock(&s.stats);
            st.record(u64::try_from(later.len()).unwrap_or(u64::MAX));
            if result.is_err() {
                st.failures += 1;
            }
        }
        match result {
            Ok(_) => {
                for (reply, answer) in later {
                    let _ = reply.send(Ok(answer));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "outbox flush failed; refusing further acknowledgements");
                let msg: Arc<str> = Arc::from(e.to_string());
                lock(&s.queue).failed = Some(Arc::clone(&msg));
                for (reply, _) in later {
                    let _ = reply.send(Err(WaitError::Failed(Arc::clone(&msg))));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn policy() -> Policy {
        Policy {
            max_batch: 256,
            linger: MS,
            min_batch: 1,
        }
    }

    #[test]
    fn a_lone_writer_never_waits() {
        assert_eq!(policy().decide(1, 1, Duration::ZERO), Decision::Go);
        assert_eq!(policy().decide(1, 0, Duration::ZERO), Decision::Go);
    }

    #[test]
    fn under_load_it_lingers_for_half_the_last_batch() {
        let p = policy();
        assert_eq!(
            p.decide(10, 128, Duration::from_micros(200)),
            Decision::Wait(Duration::from_micros(800))
        );
        assert_eq!(p.decide(64, 128, Duration::ZERO), Decision::Go);
    }

    #[test]
    fn the_linger_is_bounded() {
        assert_eq!(policy().decide(3, 128, MS), Decision::Go);
    }

    #[test]
    fn the_target_is_capped_by_max_batch() {
        // Half of max_batch (128) is enough even after a huge batch.
        assert_eq!(policy().decide(128, 10_000, Duration::ZERO), Decision::Go);
    }

    #[test]
    fn a_minimum_batch_waits_for_company_up_to_the_linger() {
        let p = Policy {
            min_batch: 16,
            ..policy()
        };
        assert_eq!(
            p.decide(1, 1, Duration::from_micros(300)),
            Decision::Wait(Duration::from_micros(700))
        );
        assert_eq!(p.decide(16, 1, Duration::ZERO), Decision::Go);
        assert_eq!(p.decide(1, 1, MS), Decision::Go);
    }

    #[test]
    fn an_empty_queue_waits() {
        assert_eq!(policy().decide(0, 5, MS), Decision::Wait(MS));
    }

    #[tokio::test]
    async fn batches_share_a_flush_and_answer_each_writer() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = sled::open(dir.path()).expect("sled");
        let tree = db.open_tree("t").expect("tree");
        let apply: Apply<u32, u32> = Box::new(move |jobs: &[u32]| {
            jobs.iter()
                .map(|j| {
                    if j % 2 == 0 {
                        tree.insert(j.to_be_bytes(), &[][..]).expect("insert");
                        (j * 10, Durability::AfterFlush)
                    } else {
                        (j * 10 + 1, Durability::Now)
                    }
                })
                .collect()
        });
        let gc = Arc::new(GroupCommit::start("test-commit", db, policy(), apply).expect("start"));
        let mut tasks = Vec::new();
        for j in 0..64u32 {
            let gc = Arc::clone(&gc);
            tasks.push(tokio::spawn(async move { (j, gc.submit(j).await) }));
        }
        for t in tasks {
            let (j, r) = t.await.expect("task");
            let want = if j % 2 == 0 { j * 10 } else { j * 10 + 1 };
            assert!(matches!(r, Ok(v) if v == want));
        }
        let st = gc.stats();
        assert_eq!(st.writes, 32, "only durable answers count as writes");
        assert!(st.flushes >= 1 && st.flushes <= 32);
    }
}
