//! DataFusion plumbing shared by the Osprey coordinator and executors.
//!
//! - [`runtime`]: the bounded memory pool and spill directory every process runs with.
//! - [`storage`]: object stores (local, S3, GCS, Azure) with credentials per bucket, resolved by
//!   each process from its own configuration.
//! - [`write`]: distributed writes, where each task writes its own files under a staging prefix.
//! - [`progress`]: live progress of running queries (rows and bytes read, stages done), measured
//!   by executors from their tasks' metrics and gathered by the coordinator when a client asks.
//! - [`distributed`]: the one module in Osprey that touches `datafusion-distributed`. The library
//!   changes its API often; keeping every call behind this folder keeps an upgrade to it.

pub mod codec;
pub mod cooperative;
pub mod distributed;
pub mod probe_slices;
pub mod progress;
pub mod runtime;
pub mod storage;
pub mod write;

pub use distributed::{
    ClusterChannels, DistributedPlannerOptions, ExchangeCompression, ExecutorDispatchCounter,
    ExecutorProbeError, ExecutorResolver, NoLiveExecutors, coordinator_session_state,
    probe_executor, render_distributed_plan, serve_executor, tcp_incoming, with_metrics_collection,
};
pub use runtime::{RuntimeLimits, build_runtime_env, build_runtime_env_with_storage};
