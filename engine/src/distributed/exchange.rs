//! One exchange stream from an executor, measured: the exchange micro-benchmark.

use super::channels::ClusterChannels;
use super::session::ExchangeCompression;
use datafusion::error::Result;
use datafusion::execution::SessionStateBuilder;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::metrics::ExecutionPlanMetricsSet;
use datafusion_distributed::{
    ChannelResolver, CoordinatorToWorkerMsg, DistributedExt, ExecuteTaskRequest, SetPlanRequest,
};
use http::HeaderMap;
use std::sync::Arc;
use std::time::Duration;
use url::Url;

/// What [`measure_exchange_stream`] saw on one exchange stream.
#[derive(Debug, Clone, Copy)]
pub struct ExchangeStreamFigures {
    /// Encoded bytes received (Arrow IPC bodies and headers, as the library counts them).
    pub bytes: u64,
    /// Rows received.
    pub rows: u64,
    /// From asking for the stream until its last batch arrived.
    pub elapsed: Duration,
}

/// Runs `plan` as a one-task stage on the executor at `url` and pulls all its output partitions
/// back over one exchange stream, the way a consuming stage does: the same worker protocol,
/// Arrow IPC encoding and gRPC transport, with the given exchange compression.
///
/// Used by the exchange micro-benchmark. `plan` must be serializable by DataFusion's codec and
/// cheap to produce, so that the stream, not the producer, is what gets measured.
///
/// ```no_run
/// # async fn example(channels: osprey_engine::ClusterChannels,
/// #     plan: std::sync::Arc<dyn datafusion::physical_plan::ExecutionPlan>) -> datafusion::error::Result<()> {
/// use osprey_engine::{ExchangeCompression, measure_exchange_stream};
/// let url = url::Url::parse("http://127.0.0.1:50051").unwrap();
/// let figures = measure_exchange_stream(&channels, &url, plan, ExchangeCompression::None).await?;
/// println!("{:.2} GB/s", figures.bytes as f64 / figures.elapsed.as_secs_f64() / 1e9);
/// # Ok(()) }
/// ```
pub async fn measure_exchange_stream(
    channels: &ClusterChannels,
    url: &Url,
    plan: Arc<dyn ExecutionPlan>,
    compression: ExchangeCompression,
) -> Result<ExchangeStreamFigures> {
    use datafusion::physical_plan::ExecutionPlanProperties;
    use futures::{StreamExt, TryStreamExt};

    let partitions = plan.output_partitioning().partition_count();
    let task_key = datafusion_distributed::TaskKey {
        query_id: uuid::Uuid::from_u128(rand::random()),
        stage_id: 1,
        task_number: 0,
    };
    // The worker reads the producer's settings (here: compression) from request headers.
    let mut headers = HeaderMap::new();
    headers.insert(
        "x-datafusion-distributed-config-distributed.compression",
        http::HeaderValue::from_static(compression.name()),
    );
    // The consumer side reads its buffering settings from the library's config extension.
    let task_ctx = SessionStateBuilder::new()
        .with_default_features()
        .with_distributed_channel_resolver(channels.clone())
        .with_distributed_compression(None)?
        .build()
        .task_ctx();
    let mut worker = channels.get_worker_client_for_url(url).await?;
    // The task lives as long as its coordinator stream stays open: keep it open until the end.
    let (close_task, task_closed) = tokio::sync::oneshot::channel::<()>();
    let coordinator_stream = futures::stream::once(task_closed)
        .filter_map(|_| futures::future::ready(None::<CoordinatorToWorkerMsg>))
        .boxed();
    let started = std::time::Instant::now();
    let _worker_messages = worker
        .coordinator_channel(
            headers.clone(),
            SetPlanRequest {
                task_key,
                task_count: 1,
                plan: datafusion_distributed::MaybeEncoded::Decoded(plan),
                work_unit_feed_declarations: vec![],
                target_worker_url: url.clone(),
                query_start_time_ns: 0,
            },
            coordinator_stream,
            ExecutionPlanMetricsSet::new(),
            &task_ctx,
        )
        .await?;
    let metrics = ExecutionPlanMetricsSet::new();
    let streams = worker
        .execute_task(
            headers,
            ExecuteTaskRequest {
                task_key,
                target_partition_start: 0,
                target_partition_end: partitions,
                producer_head: datafusion_distributed::ProducerHead::None,
            },
            metrics.clone(),
            &task_ctx,
        )
        .await?;
    let mut rows = 0u64;
    let mut merged = futures::stream::select_all(streams);
    while let Some(batch) = merged.try_next().await? {
        rows += batch.num_rows() as u64;
    }
    let elapsed = started.elapsed();
    let _ = close_task.send(());
    let bytes = metrics
        .clone_inner()
        .iter()
        .filter_map(|metric| match metric.value() {
            datafusion::physical_plan::metrics::MetricValue::Custom { name, value }
                if name == "bytes_transferred" =>
            {
                Some(value.as_usize() as u64)
            }
            _ => None,
        })
        .sum();
    Ok(ExchangeStreamFigures {
        bytes,
        rows,
        elapsed,
    })
}
