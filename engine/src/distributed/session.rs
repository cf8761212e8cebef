//! The coordinator's distributed session: a DataFusion session whose physical planner splits
//! plans into stages run on the executors a resolver reports live.

use super::channels::ClusterChannels;
use datafusion::common::DataFusionError;
use datafusion::error::Result;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::context::SessionState;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::prelude::SessionConfig;
use datafusion_distributed::{DistributedExt, SessionStateBuilderExt, WorkerResolver};
use std::sync::Arc;
use url::Url;

/// The live executors, as the coordinator's discovery sees them right now.
///
/// The distributed planner asks for this list synchronously while it plans, so implementations
/// keep a snapshot that a background task refreshes.
pub trait ExecutorResolver: Send + Sync + 'static {
    /// The base URLs (`http://host:port`) of executors that answered their last health check.
    fn live_executors(&self) -> Vec<Url>;
}

/// Returned when a query needs executors and none is alive.
#[derive(Debug, thiserror::Error)]
#[error(
    "no live executor: none of the configured executors answered its last health check. \
     Start `osprey executor` processes with the same cluster secret, or check `executors` \
     in the coordinator configuration"
)]
pub struct NoLiveExecutors;

/// Adapts an [`ExecutorResolver`] to the library's `WorkerResolver`.
struct ResolverAdapter(Arc<dyn ExecutorResolver>);

impl WorkerResolver for ResolverAdapter {
    fn get_urls(&self) -> Result<Vec<Url>, DataFusionError> {
        let mut urls = self.0.live_executors();
        match urls.len() {
            0 => Err(DataFusionError::External(Box::new(NoLiveExecutors))),
            // The planner caps each stage at one task per URL and removes stage boundaries
            // between one-task stages, so a lone executor would leave every plan on the
            // coordinator. Listing it twice gives stages two tasks, both on that executor, so
            // table data is still read by executors.
            1 => {
                urls.push(urls[0].clone());
                Ok(urls)
            }
            _ => Ok(urls),
        }
    }
}

/// How record batches are compressed between stages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExchangeCompression {
    /// No compression: fastest where the network is not the bottleneck (loopback, fast LANs).
    None,
    /// LZ4 frames: cheap, for ordinary networks.
    #[default]
    Lz4,
    /// Zstandard: smallest, for slow links.
    Zstd,
}

impl ExchangeCompression {
    /// The name used in configuration: `none`, `lz4` or `zstd`.
    pub fn name(self) -> &'static str {
        match self {
            ExchangeCompression::None => "none",
            ExchangeCompression::Lz4 => "lz4",
            ExchangeCompression::Zstd => "zstd",
        }
    }
}

impl std::fmt::Display for ExchangeCompression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for ExchangeCompression {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text.to_ascii_lowercase().as_str() {
            "none" => Ok(Self::None),
            "lz4" => Ok(Self::Lz4),
            "zstd" => Ok(Self::Zstd),
            other => Err(format!(
                "unknown exchange compression {other:?}: use none, lz4 or zstd"
            )),
        }
    }
}

/// Planner settings for the coordinator's distributed session.
#[derive(Debug, Clone)]
pub struct DistributedPlannerOptions {
    /// Bytes of input files that one scan task reads; smaller values make more tasks.
    pub bytes_per_task: usize,
    /// Compression of data exchanged between stages.
    pub exchange_compression: ExchangeCompression,
}

impl Default for DistributedPlannerOptions {
    fn default() -> Self {
        Self {
            bytes_per_task: 16 << 20,
            exchange_compression: ExchangeCompression::default(),
        }
    }
}

/// Builds the coordinator's session: DataFusion's defaults plus the distributed planner, which
/// turns every physical plan into stages run on the executors `resolver` reports live.
///
/// Metrics collection from executors is off; turn it on per query with
/// [`with_metrics_collection`] (EXPLAIN ANALYZE does).
pub fn coordinator_session_state(
    config: SessionConfig,
    runtime: Arc<RuntimeEnv>,
    resolver: Arc<dyn ExecutorResolver>,
    channels: ClusterChannels,
    options: &DistributedPlannerOptions,
) -> Result<SessionState> {
    let state = crate::functions::with_osprey_functions(
        SessionStateBuilder::new()
            .with_config(config)
            .with_runtime_env(runtime)
            .with_default_features(),
    )
    // The distributed planner wraps whatever query planner is set before it.
    .with_query_planner(Arc::new(crate::write::OspreyQueryPlanner))
    .with_distributed_user_codec(crate::codec::OspreyCodec)
    .with_distributed_worker_resolver(ResolverAdapter(resolver))
    .with_distributed_channel_resolver(channels)
    .with_distributed_planner()
    .with_distributed_file_scan_config_bytes_per_partition(options.bytes_per_task.max(1))?
    .with_distributed_metrics_collection(false)?
    .with_distributed_compression(match options.exchange_compression {
        ExchangeCompression::None => None,
        ExchangeCompression::Lz4 => Some(datafusion_distributed::CompressionType::LZ4_FRAME),
        ExchangeCompression::Zstd => Some(datafusion_distributed::CompressionType::ZSTD),
    })?
    .build();
    // Outermost: CSV errors name their file in the coordinator's own part of each plan.
    let planner = Arc::clone(state.query_planner());
    let state = SessionStateBuilder::new_from_existing(state)
        .with_query_planner(Arc::new(crate::csv_errors::NamedCsvErrorsPlanner(planner)))
        .build();
    Ok(state)
}

/// Turns collection of per-task metrics from executors on or off for one query's session.
pub fn with_metrics_collection(state: &mut SessionState, enabled: bool) -> Result<()> {
    state.set_distributed_metrics_collection(enabled)
}
