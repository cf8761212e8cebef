//! The DataFusion runtime every Osprey process runs with: a bounded, fair memory pool and a
//! spill directory, so that sorts, aggregations and repartitions spill to disk rather than grow
//! without bound.

use crate::storage::StorageRegistry;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::context::SessionState;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::{
    FairSpillPool, MemoryConsumer, MemoryLimit, MemoryPool, MemoryReservation,
};
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use std::path::PathBuf;
use std::sync::Arc;

/// Memory and disk limits for one process.
#[derive(Debug, Clone)]
pub struct RuntimeLimits {
    /// Bytes of memory that query operators may reserve in this process, shared fairly between
    /// the operators that can spill.
    pub memory_limit_bytes: usize,
    /// Directory for spill files. `None` uses the operating system's temporary directory.
    pub spill_dir: Option<PathBuf>,
    /// The most disk that spill files may take, in bytes.
    pub max_spill_bytes: u64,
}

impl Default for RuntimeLimits {
    fn default() -> Self {
        Self {
            memory_limit_bytes: 4 << 30,
            spill_dir: None,
            max_spill_bytes: 100 << 30,
        }
    }
}

/// Builds the runtime environment for the given limits, creating the spill directory if needed.
///
/// ```
/// use osprey_engine::{RuntimeLimits, build_runtime_env};
///
/// let runtime = build_runtime_env(&RuntimeLimits::default()).unwrap();
/// assert!(runtime.disk_manager.tmp_files_enabled());
/// ```
pub fn build_runtime_env(limits: &RuntimeLimits) -> Result<Arc<RuntimeEnv>> {
    let storage = StorageRegistry::new(vec![])
        .map_err(|err| datafusion::error::DataFusionError::External(Box::new(err)))?;
    build_runtime_env_with_storage(limits, Arc::new(storage))
}

/// [`build_runtime_env`], with object stores (and their credentials) from `storage`.
pub fn build_runtime_env_with_storage(
    limits: &RuntimeLimits,
    storage: Arc<StorageRegistry>,
) -> Result<Arc<RuntimeEnv>> {
    let mode = match &limits.spill_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            DiskManagerMode::Directories(vec![dir.clone()])
        }
        None => DiskManagerMode::OsTmpDirectory,
    };
    let disk = DiskManagerBuilder::default()
        .with_mode(mode)
        .with_max_temp_directory_size(limits.max_spill_bytes);
    let runtime = RuntimeEnvBuilder::new()
        .with_memory_pool(Arc::new(FairSpillPool::new(limits.memory_limit_bytes)))
        .with_disk_manager_builder(disk)
        .with_object_store_registry(storage)
        // DataFusion caches directory listings forever by default, which would hide files
        // added to an external table's location until a restart. Lakes change under us (as
        // Athena's users expect), so every scan lists afresh.
        .with_object_list_cache_limit(0)
        .build()?;
    Ok(Arc::new(runtime))
}

/// The most memory one query may reserve in each process, carried in its session config (set
/// with [`limit_query_memory`]) and sent with every task to the executors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryMemoryLimit(pub u64);

/// A memory pool for one query: every reservation also counts against the query's own limit,
/// then against the process's pool underneath. Within the limit, the query's operators share
/// as DataFusion's [`FairSpillPool`] shares a process: each operator that can spill gets an
/// equal part of what the others cannot give back, so one sort does not starve its siblings.
/// Operators that can spill get the limit's refusal like any other and spill; the rest fail the
/// query with `ResourcesExhausted`, and the process and its other queries go on.
///
/// DataFusion's pools bound a whole process; a cap for one query among many sharing that pool
/// is what workgroups need, and no pool offers it, hence this wrapper (the per-query share is
/// DataFusion's own `FairSpillPool`).
///
/// ```
/// use datafusion::execution::memory_pool::{GreedyMemoryPool, MemoryConsumer, MemoryPool};
/// use osprey_engine::QueryMemoryPool;
/// use std::sync::Arc;
///
/// let process: Arc<dyn MemoryPool> = Arc::new(GreedyMemoryPool::new(1 << 20));
/// let query: Arc<dyn MemoryPool> = Arc::new(QueryMemoryPool::new(Arc::clone(&process), 1000));
/// let mut reservation = MemoryConsumer::new("join").register(&query);
/// assert!(reservation.try_grow(800).is_ok());
/// assert!(reservation.try_grow(800).is_err());
/// assert_eq!(process.reserved(), 800);
/// ```
#[derive(Debug)]
pub struct QueryMemoryPool {
    process: Arc<dyn MemoryPool>,
    query: FairSpillPool,
    limit: usize,
}

impl QueryMemoryPool {
    /// A pool of `limit_bytes` for one query, drawing from `process`.
    pub fn new(process: Arc<dyn MemoryPool>, limit_bytes: u64) -> Self {
        let limit = usize::try_from(limit_bytes).unwrap_or(usize::MAX);
        Self {
            process,
            query: FairSpillPool::new(limit),
            limit,
        }
    }
}

impl std::fmt::Display for QueryMemoryPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "query memory pool ({} of {} bytes reserved, inside {})",
            self.query.reserved(),
            self.limit,
            self.process
        )
    }
}

impl MemoryPool for QueryMemoryPool {
    fn name(&self) -> &str {
        "osprey-query"
    }

    fn register(&self, consumer: &MemoryConsumer) {
        self.query.register(consumer);
        self.process.register(consumer);
    }

    fn unregister(&self, consumer: &MemoryConsumer) {
        self.query.unregister(consumer);
        self.process.unregister(consumer);
    }

    fn grow(&self, reservation: &MemoryReservation, additional: usize) {
        self.query.grow(reservation, additional);
        self.process.grow(reservation, additional);
    }

    fn shrink(&self, reservation: &MemoryReservation, shrink: usize) {
        self.query.shrink(reservation, shrink);
        self.process.shrink(reservation, shrink);
    }

    fn try_grow(&self, reservation: &MemoryReservation, additional: usize) -> Result<()> {
        if let Err(refused) = self.query.try_grow(reservation, additional) {
            let refused = refused.strip_backtrace();
            let refused = refused
                .strip_prefix("Resources exhausted: ")
                .unwrap_or(&refused);
            return Err(DataFusionError::ResourcesExhausted(format!(
                "the query's memory limit of {} bytes per process is reached ({}). Raise the \
                 workgroup's query_memory_bytes (ALTER WORKGROUP ... SET (query_memory_bytes = \
                 ...)), or read less: filter earlier, select fewer columns, or join the larger \
                 table on the probe side",
                self.limit, refused
            )));
        }
        if let Err(err) = self.process.try_grow(reservation, additional) {
            self.query.shrink(reservation, additional);
            return Err(err);
        }
        Ok(())
    }

    fn reserved(&self) -> usize {
        self.query.reserved()
    }

    fn memory_limit(&self) -> MemoryLimit {
        match self.process.memory_limit() {
            MemoryLimit::Finite(process) => MemoryLimit::Finite(process.min(self.limit)),
            _ => MemoryLimit::Finite(self.limit),
        }
    }
}

/// `runtime` with its memory pool replaced by `pool` (everything else shared: spill files,
/// object stores, caches).
pub fn runtime_with_pool(
    runtime: &RuntimeEnv,
    pool: Arc<dyn MemoryPool>,
) -> Result<Arc<RuntimeEnv>> {
    RuntimeEnvBuilder::from_runtime_env(runtime)
        .with_memory_pool(pool)
        .build_arc()
}

/// Caps the memory of the query planned and run with `state` at `limit_bytes` in this process,
/// and records the cap so that the executors running its tasks apply it too.
pub fn limit_query_memory(state: &mut SessionState, limit_bytes: u64) -> Result<()> {
    let runtime = state.runtime_env();
    let pool = Arc::new(QueryMemoryPool::new(
        Arc::clone(&runtime.memory_pool),
        limit_bytes,
    ));
    let runtime = runtime_with_pool(runtime, pool)?;
    state
        .config_mut()
        .set_extension(Arc::new(QueryMemoryLimit(limit_bytes)));
    *state = SessionStateBuilder::new_from_existing(state.clone())
        .with_runtime_env(runtime)
        .build();
    Ok(())
}
