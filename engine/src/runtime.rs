//! The DataFusion runtime every Osprey process runs with: a bounded, fair memory pool and a
//! spill directory, so that sorts, aggregations and repartitions spill to disk rather than grow
//! without bound.

use crate::storage::StorageRegistry;
use datafusion::error::Result;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::FairSpillPool;
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
