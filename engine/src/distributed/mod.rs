//! Osprey's wrapper around `datafusion-distributed` (pinned `=4.0.0`): the only place in Osprey
//! that names the library's types, so an upgrade is a change to this folder.
//!
//! - [`session`]: the coordinator's DataFusion session, whose physical planner splits plans into
//!   stages run on the executors a resolver reports live;
//! - [`channels`]: outgoing gRPC channels that carry the cluster credential, shared by the
//!   coordinator and by executors (which fetch shuffle data from each other), and the record
//!   of which task went where (for progress and the dispatch counts);
//! - [`worker`]: the gRPC service an executor serves (the library's worker and Osprey's
//!   progress service), with the cluster credential checked on every request and draining;
//! - [`probe`]: the health check discovery uses;
//! - [`shape`]: what a distributed plan looks like: EXPLAIN output with stages and tasks, the
//!   bytes it scans, which leaves read from another stage;
//! - [`exchange`]: one exchange stream from an executor, measured, for the benchmarks;
//! - [`loss`]: whether a failure is the loss of an executor (a transport error), which a query
//!   survives by running again.
//!
//! Live progress ([`crate::progress`]) sits beside this folder: it uses [`shape`] and asks
//! executors through [`channels`], and [`worker`] serves it; nothing here is imported back by
//! it but those two.

pub(crate) mod channels;
mod credentials;
mod exchange;
mod loss;
mod probe;
mod session;
pub(crate) mod shape;
mod worker;

pub use channels::{ClusterChannels, ExecutorDispatchCounter, tcp_incoming};
pub use exchange::{ExchangeStreamFigures, measure_exchange_stream};
pub use loss::is_executor_loss;
pub use probe::{ExecutorProbeError, ExecutorReport, probe_executor};
pub use session::{
    DistributedPlannerOptions, ExchangeCompression, ExecutorResolver, NoLiveExecutors,
    coordinator_session_state, with_metrics_collection,
};
pub use shape::{is_stage_boundary, planned_scan_bytes, render_distributed_plan};
pub use worker::{DRAIN_NOTICE, DRAINING, serve_executor};
