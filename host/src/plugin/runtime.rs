//! The process-wide runtime: engine, linker, limits, outbound HTTP and SMTP,
//! cache.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use wasmtime::component::{HasSelf, Linker};
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, ProfilingStrategy,
};

use super::bindings;
use super::cache::ArtifactCache;
use super::imports::HostState;
use crate::egress::EgressPolicy;
use crate::egress::http::{ClientError, HttpEgress, HttpLimits};
use crate::egress::smtp::{SmtpEgress, SmtpSettings, SmtpSetupError};

/// How often the epoch advances; the CPU budget is counted in these ticks.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Per-call limits.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Linear memory a call may use in total, across the component's memories.
    pub memory_bytes: usize,
    /// CPU time a call may spend running wasm (host calls excluded).
    pub cpu_time: Duration,
    /// Wall-clock time for the whole call, host calls included.
    pub wall_time: Duration,
    /// Largest payload `render` may return.
    pub max_output_bytes: usize,
    /// Log lines a call may emit; more are dropped and counted.
    pub max_log_lines: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 64 << 20,
            cpu_time: Duration::from_secs(10),
            wall_time: Duration::from_secs(30),
            max_output_bytes: 4 << 20,
            max_log_lines: 100,
        }
    }
}

/// How to build a [`Runtime`].
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Per-call limits.
    pub limits: Limits,
    /// Calls that may run at once; sizes the instance pool. More wait.
    pub max_concurrent_calls: u32,
    /// Where compiled components are cached; `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
    /// Addresses allowed although private.
    pub egress: EgressPolicy,
    /// Limits on plugin HTTP requests.
    pub http: HttpLimits,
    /// Plugin SMTP: timeouts, pooling, and the extra root certificates
    /// (PEM) trusted for SMTP TLS besides the system's
    /// ([`SmtpSettings::extra_roots_pem`]).
    pub smtp: SmtpSettings,
    /// Bytes of each linear memory the pool keeps mapped (and zeroes with
    /// `memset`) between instances, instead of returning them to the kernel.
    /// Larger saves page faults in the next instance; it costs a `memset` of
    /// up to this much per call.
    pub keep_resident_bytes: usize,
    /// Writes `/tmp/perf-<pid>.map` naming every compiled plugin function,
    /// so `perf report` shows where a plugin's own time goes instead of
    /// bare addresses. For profiling only: the file grows with each load.
    pub perf_map: bool,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            limits: Limits::default(),
            max_concurrent_calls: 128,
            cache_dir: None,
            egress: EgressPolicy::strict(),
            http: HttpLimits::default(),
            smtp: SmtpSettings::default(),
            keep_resident_bytes: DEFAULT_KEEP_RESIDENT,
            perf_map: false,
        }
    }
}

/// See [`RuntimeConfig::keep_resident_bytes`]; chosen with
/// `cargo bench -p carillon --bench plugin_call` (BENCHMARKS.md).
pub const DEFAULT_KEEP_RESIDENT: usize = 4 << 20;

/// The runtime could not start.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// wasmtime refused the engine configuration.
    #[error("cannot create the WebAssembly engine: {0}")]
    Engine(String),
    /// The linker could not be set up.
    #[error("cannot link the host imports: {0}")]
    Linker(String),
    /// The cache directory is unusable.
    #[error("cannot use the plugin cache directory {path}: {source}")]
    Cache {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The HTTP client could not be built.
    #[error(transparent)]
    Http(#[from] ClientError),
    /// The SMTP settings are unusable (e.g. an extra root is not PEM).
    #[error(transparent)]
    Smtp(#[from] SmtpSetupError),
}

/// The plugin runtime. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct Runtime {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<HostState>,
    pub(crate) limits: Limits,
    pub(crate) http: HttpEgress,
    pub(crate) smtp: SmtpEgress,
    pub(crate) calls: Semaphore,
    pub(crate) cache: Option<ArtifactCache>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("limits", &self.inner.limits)
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// Builds the engine, linker, HTTP and SMTP clients, and starts the
    /// epoch ticker.
    pub fn new(config: RuntimeConfig) -> Result<Self, RuntimeError> {
        let slots = config.max_concurrent_calls.max(1);
        // One extra slot per call in flight for `describe` at load time.
        let instances = slots + 4;
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(instances)
            .total_core_instances(8 * instances)
            .total_memories(2 * instances)
            .total_tables(8 * instances)
            .total_stacks(instances)
            .max_memory_size(config.limits.memory_bytes)
            .max_memories_per_component(4)
            .max_tables_per_component(16)
            .max_core_instances_per_component(32)
            // Keeping a little memory resident makes a fresh instance's first
            // touches cheap (32.6 µs → 19.5 µs per call; BENCHMARKS.md,
            // "Machine ceilings").
            .linear_memory_keep_resident(config.keep_resident_bytes)
            .table_keep_resident(64 << 10)
            // With PAGEMAP_SCAN (Linux 6.7+) only the pages a call wrote are
            // reset and they stay resident; without it the lowest
            // `keep_resident` bytes are reset whether touched or not, which
            // for a Rust guest (1 MiB stack first) is mostly untouched stack.
            .pagemap_scan(Enabled::Auto)
            // The async fiber stack is reused per call too: keeping its top
            // resident avoids page faults on every call.
            .async_stack_keep_resident(128 << 10)
            // A freed memory slot stays warm (up to `keep_resident` bytes
            // resident) for the component that used it. With room for warm
            // slots beyond those in use, every new component (each plugin
            // build loaded) took a never-used slot, so installing and
            // removing builds kept adding resident slots until the pool was
            // exhausted (60 builds: RSS 124 → 209 MiB). With none, a slot
            // that no component has an affinity for is reused first: the
            // slots ever touched are at most the peak of concurrent calls.
            .max_unused_warm_slots(0);
        let mut wasm = Config::new();
        wasm.epoch_interruption(true)
            .concurrency_support(false)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        if config.perf_map {
            wasm.profiler(ProfilingStrategy::PerfMap);
        }
        let engine = Engine::new(&wasm).map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;

        let mut linker = Linker::<HostState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| RuntimeError::Linker(format!("{e:#}")))?;
        bindings::Plugin::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)
            .map_err(|e| RuntimeError::Linker(format!("{e:#}")))?;

        let cache = match &config.cache_dir {
            Some(dir) => {
                ArtifactCache::new(dir, &engine).map_err(|source| RuntimeError::Cache {
                    path: dir.clone(),
                    source,
                })?
            }
            None => None,
        };
        let smtp = SmtpEgress::new(Arc::new(config.egress.clone()), config.smtp)?;
        let http = HttpEgress::new(config.egress, config.http)?;
        start_epoch_ticker(&engine)
            .map_err(|e| RuntimeError::Engine(format!("cannot start the epoch ticker: {e}")))?;
        Ok(Runtime {
            inner: Arc::new(Inner {
                engine,
                linker,
                limits: config.limits,
                http,
                smtp,
                calls: Semaphore::new(slots as usize),
                cache,
            }),
        })
    }

    /// The per-call limits.
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// Memory slots of the instance pool not in use but still warm (with
    /// memory kept resident).
    #[cfg(test)]
    pub(crate) fn warm_memory_slots(&self) -> u32 {
        self.inner
            .engine
            .pooling_allocator_metrics()
            .map_or(0, |m| m.unused_warm_memories())
    }

    /// Removes cached artifacts that belong to other engines or to content
    /// not listed in `keep` (SHA-256 hex). Returns how many were removed.
    pub fn prune_cache(&self, keep: &[String]) -> usize {
        self.inner.cache.as_ref().map_or(0, |c| c.prune(keep))
    }
}

/// Advances the engine's epoch every tick until the engine is dropped.
/// Without it no running plugin could be interrupted.
fn start_epoch_ticker(engine: &Engine) -> std::io::Result<()> {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("carillon-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .map(drop)
}
