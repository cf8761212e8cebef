//! DataFusion plumbing shared by the Osprey coordinator and executors. Its modules are
//! private; what the other crates use is re-exported here, below.
//!
//! - `runtime`: the bounded memory pool and spill directory every process runs with.
//! - `storage`: object stores (local, S3, GCS, Azure) with credentials per bucket, resolved by
//!   each process from its own configuration.
//! - `write`: distributed writes, where each task writes its own files under a staging prefix.
//! - `progress`: live progress of running queries (rows and bytes read, stages done), measured
//!   by executors from their tasks' metrics and gathered by the coordinator when a client asks.
//! - `cluster_tls`: mutual TLS between the cluster's processes, its files reloaded on change.
//! - `distributed`: the one module in Osprey that touches `datafusion-distributed`. The library
//!   changes its API often; keeping every call behind this folder keeps an upgrade to it.

mod cluster_tls;
mod codec;
mod cooperative;
mod csv_errors;
mod distributed;
mod functions;
mod policy_boundary;
mod probe_slices;
mod progress;
mod runtime;
mod storage;
mod write;

pub use cluster_tls::{ClusterTls, ClusterTlsError, ClusterTlsFiles, RELOAD_INTERVAL};
pub use cooperative::yield_inside_joins;
pub use csv_errors::with_named_csv_errors;
pub use distributed::{
    ClusterChannels, DRAIN_NOTICE, DRAINING, DistributedPlannerOptions, ExchangeCompression,
    ExchangeStreamFigures, ExecutorDispatchCounter, ExecutorProbeError, ExecutorReport,
    ExecutorResolver, NoLiveExecutors, coordinator_session_state, is_executor_loss,
    measure_exchange_stream, planned_scan_bytes, probe_executor, render_distributed_plan,
    serve_executor, tcp_incoming, with_metrics_collection,
};
pub use functions::with_osprey_functions;
pub use osprey_proto::progress::ExecutorStatusResponse;
pub use policy_boundary::PolicyBoundaryExec;
pub use progress::{ProgressSnapshot, QueryProgress, ReadFigures, read_figures};
pub use runtime::{
    QueryMemoryPool, RuntimeLimits, build_runtime_env, build_runtime_env_with_storage,
    limit_query_memory,
};
pub use storage::{
    StorageError, StorageLocation, StorageRegistry, VENDED_SCHEME, VendedCredentials, VendedStore,
};
pub use write::{StagedWriteNode, WriteFormat, WriteTarget, decode_partition_key};
