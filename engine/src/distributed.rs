//! Osprey's wrapper around `datafusion-distributed` (pinned `=4.0.0`).
//!
//! Everything Osprey needs from the library goes through here:
//!
//! - [`coordinator_session_state`]: a DataFusion session whose physical planner splits plans into
//!   stages and runs them on executors;
//! - [`executor_grpc_service`]: the gRPC service an executor serves, with the cluster credential
//!   checked on every request;
//! - [`ClusterChannels`]: outgoing gRPC channels that carry the cluster credential, shared by the
//!   coordinator and by executors (which fetch shuffle data from each other);
//! - [`probe_executor`]: the health check discovery uses;
//! - [`render_distributed_plan`]: EXPLAIN output with stages and tasks;
//! - [`planned_scan_bytes`]: the bytes of data files a planned query reads;
//! - [`measure_exchange_stream`]: one exchange stream from an executor, for the benchmarks;
//! - the task bookkeeping behind [`crate::progress`]: a header naming each task for its executor,
//!   the executor's progress service, and the coordinator's questions to it.

use crate::progress::{
    ExecutorStatusRequest, ExecutorStatusResponse, PROGRESS_METHOD, PROGRESS_SERVICE,
    QueryProgress, QueryProgressRequest, QueryProgressResponse, RunningTasks, STATUS_METHOD,
};
use crate::runtime::{QueryMemoryLimit, QueryMemoryPool, runtime_with_pool};
use async_trait::async_trait;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::DataFusionError;
use datafusion::error::Result;
use datafusion::execution::context::SessionState;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::execution::{SessionStateBuilder, TaskContext};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::metrics::ExecutionPlanMetricsSet;
use datafusion::prelude::SessionConfig;
use datafusion_distributed::grpc::{BoxCloneSyncChannel, create_worker_client};
use datafusion_distributed::{
    ChannelResolver, CoordinatorToWorkerMsg, DistributedExt, DistributedLeafExec,
    ExecuteTaskRequest, GetWorkerInfoRequest, GetWorkerInfoResponse, NetworkBoundaryExt,
    SessionStateBuilderExt, SetPlanRequest, Worker, WorkerChannel, WorkerPlanRewriteEvent,
    WorkerPlanRewriteEventResponse, WorkerQueryContext, WorkerResolver, WorkerToCoordinatorMsg,
    display_plan_ascii,
};
use futures::stream::BoxStream;
use http::HeaderMap;
use osprey_proto::{CLUSTER_SECRET_HEADER, ClusterSecret};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tonic::transport::{Channel, Endpoint};
use url::Url;

/// How long a new connection to an executor may take before the attempt fails.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Keep-alive pings detect an executor that vanished without closing its connections.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);

/// HTTP/2 flow-control windows and frame size for cluster traffic. Exchange streams carry
/// record batches of hundreds of kilobytes; with HTTP/2's 64 KiB default window and 16 KiB
/// frames, a stream stalls on window updates and pays per-frame costs many times per batch.
const EXCHANGE_STREAM_WINDOW: u32 = 8 << 20;
const EXCHANGE_CONNECTION_WINDOW: u32 = 32 << 20;
const EXCHANGE_MAX_FRAME: u32 = 1 << 20;

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

/// Counts the tasks the coordinator has handed to each executor since it started.
///
/// One task is one stage fragment sent to one executor; the counts show where work ran.
#[derive(Clone, Default, Debug)]
pub struct ExecutorDispatchCounter {
    counts: Arc<Mutex<HashMap<Url, Arc<AtomicU64>>>>,
}

impl ExecutorDispatchCounter {
    fn counter_for(&self, url: &Url) -> Arc<AtomicU64> {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        Arc::clone(counts.entry(url.clone()).or_default())
    }

    /// Tasks dispatched to `url` so far.
    pub fn tasks_dispatched(&self, url: &Url) -> u64 {
        self.counter_for(url).load(Ordering::Relaxed)
    }
}

/// Outgoing gRPC channels to executors. Every request carries the cluster credential.
///
/// Channels are created lazily, cached per URL and reconnect on their own, so an executor that
/// restarts on the same address is used again without any action here.
#[derive(Clone)]
pub struct ClusterChannels {
    secret: ClusterSecret,
    channels: Arc<Mutex<HashMap<Url, BoxCloneSyncChannel>>>,
    dispatch: Option<ExecutorDispatchCounter>,
}

impl ClusterChannels {
    /// Channels that present `secret` to executors.
    pub fn new(secret: ClusterSecret) -> Self {
        Self {
            secret,
            channels: Arc::default(),
            dispatch: None,
        }
    }

    /// Counts the tasks sent through these channels in `counter`.
    pub fn with_dispatch_counter(mut self, counter: ExecutorDispatchCounter) -> Self {
        self.dispatch = Some(counter);
        self
    }

    fn channel(&self, url: &Url) -> Result<BoxCloneSyncChannel> {
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(channel) = channels.get(url) {
            return Ok(channel.clone());
        }
        let endpoint = Endpoint::from_shared(url.to_string())
            .map_err(|err| {
                DataFusionError::Configuration(format!("invalid executor URL '{url}': {err}"))
            })?
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
            .keep_alive_timeout(KEEPALIVE_INTERVAL)
            .keep_alive_while_idle(true)
            .initial_stream_window_size(EXCHANGE_STREAM_WINDOW)
            .initial_connection_window_size(EXCHANGE_CONNECTION_WINDOW)
            .max_frame_size(EXCHANGE_MAX_FRAME);
        let channel: Channel = endpoint.connect_lazy();
        let header_value = self.secret.header_value();
        let with_secret = tower::ServiceBuilder::new()
            .map_request(move |mut request: http::Request<tonic::body::Body>| {
                request
                    .headers_mut()
                    .insert(CLUSTER_SECRET_HEADER, header_value.clone());
                request
            })
            .service(channel);
        let boxed = BoxCloneSyncChannel::new(with_secret);
        channels.insert(url.clone(), boxed.clone());
        Ok(boxed)
    }
}

#[async_trait]
impl ChannelResolver for ClusterChannels {
    async fn get_worker_client_for_url(&self, url: &Url) -> Result<Box<dyn WorkerChannel>> {
        Ok(Box::new(TrackingWorkerChannel {
            inner: create_worker_client(self.channel(url)?),
            url: url.clone(),
            channels: self.clone(),
            tasks: self
                .dispatch
                .as_ref()
                .map(|counter| counter.counter_for(url)),
        }))
    }
}

/// The header that tells an executor which task of which query a plan is:
/// `<query id, 32 hex digits>/<stage>/<task>`. The library's own request does not reach the
/// executor's session builder, where Osprey registers the task for progress reports.
const TASK_HEADER: &str = "x-osprey-task";

/// The header that carries a query's memory limit per process ([`QueryMemoryLimit`]) in bytes,
/// so that the executor caps the task's memory in the query's own pool.
const QUERY_MEMORY_HEADER: &str = "x-osprey-query-memory";

/// A worker client that records the tasks (coordinator channels) opened through it: in the
/// dispatch counter, in the query's [`QueryProgress`] when it has one, and in a header for the
/// executor.
struct TrackingWorkerChannel {
    inner: Box<dyn WorkerChannel>,
    url: Url,
    channels: ClusterChannels,
    tasks: Option<Arc<AtomicU64>>,
}

#[async_trait]
impl WorkerChannel for TrackingWorkerChannel {
    async fn coordinator_channel(
        &mut self,
        mut headers: HeaderMap,
        set_plan_request: SetPlanRequest,
        c2w_stream: BoxStream<'static, CoordinatorToWorkerMsg>,
        metrics: ExecutionPlanMetricsSet,
        task_ctx: &Arc<TaskContext>,
    ) -> Result<BoxStream<'static, Result<WorkerToCoordinatorMsg>>> {
        let key = set_plan_request.task_key;
        let query_id = *key.query_id.as_bytes();
        let identity = format!(
            "{}/{}/{}",
            key.query_id.simple(),
            key.stage_id,
            key.task_number
        );
        if let Ok(value) = http::HeaderValue::from_str(&identity) {
            headers.insert(TASK_HEADER, value);
        }
        if let Some(limit) = task_ctx
            .session_config()
            .get_extension::<QueryMemoryLimit>()
        {
            headers.insert(QUERY_MEMORY_HEADER, http::HeaderValue::from(limit.0));
        }
        let stream = self
            .inner
            .coordinator_channel(headers, set_plan_request, c2w_stream, metrics, task_ctx)
            .await?;
        if let Some(tasks) = &self.tasks {
            tasks.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(progress) = task_ctx.session_config().get_extension::<QueryProgress>() {
            progress.task_dispatched(query_id, &self.url, &self.channels);
        }
        Ok(stream)
    }

    async fn execute_task(
        &mut self,
        headers: HeaderMap,
        request: ExecuteTaskRequest,
        metrics: ExecutionPlanMetricsSet,
        task_ctx: &Arc<TaskContext>,
    ) -> Result<Vec<BoxStream<'static, Result<RecordBatch>>>> {
        self.inner
            .execute_task(headers, request, metrics, task_ctx)
            .await
    }

    async fn get_worker_info(
        &mut self,
        request: GetWorkerInfoRequest,
    ) -> Result<GetWorkerInfoResponse> {
        self.inner.get_worker_info(request).await
    }
}

/// The task an executor is asked to set up, from [`TASK_HEADER`].
fn task_identity(headers: &HeaderMap) -> Option<([u8; 16], u64, u64)> {
    let value = headers.get(TASK_HEADER)?.to_str().ok()?;
    let mut parts = value.split('/');
    let query_id = uuid::Uuid::try_parse(parts.next()?).ok()?;
    let stage = parts.next()?.parse().ok()?;
    let task = parts.next()?.parse().ok()?;
    Some((*query_id.as_bytes(), stage, task))
}

async fn ask_status(channel: BoxCloneSyncChannel) -> Result<ExecutorStatusResponse, tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|err| tonic::Status::unavailable(err.to_string()))?;
    grpc.unary(
        tonic::Request::new(ExecutorStatusRequest {}),
        http::uri::PathAndQuery::from_static(STATUS_METHOD),
        tonic_prost::ProstCodec::default(),
    )
    .await
    .map(tonic::Response::into_inner)
}

/// Asks the executor at `url` for the figures of its tasks of query `query_id`.
pub(crate) async fn ask_progress(
    channels: &ClusterChannels,
    url: &Url,
    query_id: &[u8; 16],
) -> Result<QueryProgressResponse, tonic::Status> {
    let channel = channels
        .channel(url)
        .map_err(|err| tonic::Status::unavailable(err.to_string()))?;
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|err| tonic::Status::unavailable(err.to_string()))?;
    let request = tonic::Request::new(QueryProgressRequest {
        query_id: query_id.to_vec(),
    });
    grpc.unary(
        request,
        http::uri::PathAndQuery::from_static(PROGRESS_METHOD),
        tonic_prost::ProstCodec::default(),
    )
    .await
    .map(tonic::Response::into_inner)
}

/// The executor's progress service: answers [`PROGRESS_METHOD`] from its [`RunningTasks`].
///
/// Written by hand rather than generated: one unary method does not justify a build script and
/// `protoc` on every build machine.
#[derive(Clone)]
struct ProgressService {
    tasks: RunningTasks,
    load: ExecutorLoad,
}

/// What an executor knows of its own load: the library's task list (asked in-process) and the
/// memory pool.
#[derive(Clone)]
struct ExecutorLoad {
    tasks_view: TasksView,
    runtime: Arc<RuntimeEnv>,
}

type TasksView = datafusion_distributed::grpc::ObservabilityServiceClient<
    datafusion_distributed::grpc::ObservabilityServiceServer<
        datafusion_distributed::grpc::ObservabilityServiceImpl,
    >,
>;

impl ExecutorLoad {
    /// Tasks the library holds, of every query (each stays until its query ends).
    async fn running_tasks(&self) -> Result<u64, tonic::Status> {
        let answer = self
            .tasks_view
            .clone()
            .get_task_progress(datafusion_distributed::grpc::GetTaskProgressRequest {})
            .await?;
        Ok(answer.into_inner().tasks.len() as u64)
    }

    async fn status(&self) -> Result<ExecutorStatusResponse, tonic::Status> {
        Ok(ExecutorStatusResponse {
            running_tasks: self.running_tasks().await?,
            memory_reserved_bytes: self.runtime.memory_pool.reserved() as u64,
        })
    }
}

impl tonic::server::NamedService for ProgressService {
    const NAME: &'static str = PROGRESS_SERVICE;
}

impl tower::Service<http::Request<tonic::body::Body>> for ProgressService {
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = futures::future::BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let tasks = self.tasks.clone();
        let load = self.load.clone();
        Box::pin(async move {
            Ok(match request.uri().path() {
                PROGRESS_METHOD => {
                    let mut grpc = tonic::server::Grpc::new(tonic_prost::ProstCodec::default());
                    grpc.unary(ProgressMethod(tasks), request).await
                }
                STATUS_METHOD => {
                    let mut grpc = tonic::server::Grpc::new(tonic_prost::ProstCodec::default());
                    grpc.unary(StatusMethod(load), request).await
                }
                other => {
                    tonic::Status::unimplemented(format!("unknown method {other}")).into_http()
                }
            })
        })
    }
}

struct StatusMethod(ExecutorLoad);

impl tonic::server::UnaryService<ExecutorStatusRequest> for StatusMethod {
    type Response = ExecutorStatusResponse;
    type Future =
        futures::future::BoxFuture<'static, Result<tonic::Response<Self::Response>, tonic::Status>>;

    fn call(&mut self, _: tonic::Request<ExecutorStatusRequest>) -> Self::Future {
        let load = self.0.clone();
        Box::pin(async move { load.status().await.map(tonic::Response::new) })
    }
}

struct ProgressMethod(RunningTasks);

impl tonic::server::UnaryService<QueryProgressRequest> for ProgressMethod {
    type Response = QueryProgressResponse;
    type Future = futures::future::Ready<Result<tonic::Response<Self::Response>, tonic::Status>>;

    fn call(&mut self, request: tonic::Request<QueryProgressRequest>) -> Self::Future {
        let report = self.0.report(&request.get_ref().query_id);
        futures::future::ready(Ok(tonic::Response::new(report)))
    }
}

/// Whether `plan` receives its input from another stage over the network.
pub(crate) fn receives_from_other_stage(plan: &dyn ExecutionPlan) -> bool {
    plan.as_network_boundary().is_some()
}

/// The per-task variants of a leaf the distributed planner split between tasks.
pub(crate) fn leaf_variants(plan: &dyn ExecutionPlan) -> Option<&[Arc<dyn ExecutionPlan>]> {
    plan.downcast_ref::<DistributedLeafExec>()
        .map(DistributedLeafExec::variants)
}

/// Adds the task count of every executor stage below `plan` to `stages`, by stage number.
pub(crate) fn stage_task_counts(plan: &dyn ExecutionPlan, stages: &mut BTreeMap<u64, u64>) {
    if let Some(boundary) = plan.as_network_boundary() {
        let stage = boundary.input_stage();
        stages.insert(stage.num() as u64, stage.task_count() as u64);
        if let Some(input) = stage.local_plan() {
            stage_task_counts(input.as_ref(), stages);
        }
        return;
    }
    for child in plan.children() {
        stage_task_counts(child.as_ref(), stages);
    }
}

/// Why a health check of an executor failed.
#[derive(Debug, thiserror::Error)]
pub enum ExecutorProbeError {
    /// Nothing answered at the address, or the connection broke.
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// The executor answered but refused our cluster credential.
    #[error(
        "refused our cluster credential: the coordinator and the executor must be started \
         with the same cluster secret"
    )]
    Rejected,
    /// No answer within the deadline.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The executor is shutting down: it finishes its tasks but takes no new ones.
    #[error("draining: finishing its running tasks before it stops")]
    Draining,
}

/// What a health check learns of a live executor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutorReport {
    /// The version it runs.
    pub version: String,
    /// Its load, when it reported it (an executor of an older version does not).
    pub load: Option<ExecutorStatusResponse>,
}

/// Asks the executor at `url` for its version and its load, within `timeout`. Used as the
/// health check.
pub async fn probe_executor(
    channels: &ClusterChannels,
    url: &Url,
    timeout: Duration,
) -> Result<ExecutorReport, ExecutorProbeError> {
    let started = std::time::Instant::now();
    let channel = channels
        .channel(url)
        .map_err(|err| ExecutorProbeError::Unreachable(err.to_string()))?;
    let mut client = create_worker_client(channel.clone());
    match tokio::time::timeout(timeout, client.get_worker_info(GetWorkerInfoRequest {})).await {
        Err(_) => Err(ExecutorProbeError::Timeout(timeout)),
        Ok(Ok(info)) => {
            let left = timeout.saturating_sub(started.elapsed());
            let load = tokio::time::timeout(left, ask_status(channel))
                .await
                .ok()
                .and_then(Result::ok);
            Ok(ExecutorReport {
                version: info.version,
                load,
            })
        }
        Ok(Err(err)) => {
            let message = err.to_string();
            if message.contains("cluster credential") {
                Err(ExecutorProbeError::Rejected)
            } else if message.contains(DRAINING) {
                Err(ExecutorProbeError::Draining)
            } else {
                Err(ExecutorProbeError::Unreachable(root_cause(&err)))
            }
        }
    }
}

/// The innermost error's message: "Connection refused (os error 111)" rather than four layers
/// of wrapping.
fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut current = err;
    while let Some(source) = current.source() {
        current = source;
    }
    current.to_string()
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

/// The memory limit per process of the query a task belongs to, from [`QUERY_MEMORY_HEADER`].
fn query_memory_limit(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(QUERY_MEMORY_HEADER)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// The memory pools of the queries with a memory limit that have tasks on this executor: the
/// tasks of one query share one pool, so the limit holds for the query, not for each task.
#[derive(Clone, Default)]
struct QueryPools {
    pools: Arc<std::sync::Mutex<HashMap<[u8; 16], std::sync::Weak<QueryMemoryPool>>>>,
}

impl QueryPools {
    /// The pool of `query_id` (made on its first task), drawing from `runtime`'s pool.
    fn pool_for(
        &self,
        query_id: [u8; 16],
        limit_bytes: u64,
        runtime: &RuntimeEnv,
    ) -> Arc<QueryMemoryPool> {
        let mut pools = self
            .pools
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // Pools live as long as their tasks' runtimes; forget the ended ones.
        pools.retain(|_, pool| pool.strong_count() > 0);
        if let Some(pool) = pools.get(&query_id).and_then(std::sync::Weak::upgrade) {
            return pool;
        }
        let pool = Arc::new(QueryMemoryPool::new(
            Arc::clone(&runtime.memory_pool),
            limit_bytes,
        ));
        pools.insert(query_id, Arc::downgrade(&pool));
        pool
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
    let state = SessionStateBuilder::new()
        .with_config(config)
        .with_runtime_env(runtime)
        .with_default_features()
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
    Ok(state)
}

/// Turns collection of per-task metrics from executors on or off for one query's session.
pub fn with_metrics_collection(state: &mut SessionState, enabled: bool) -> Result<()> {
    state.set_distributed_metrics_collection(enabled)
}

/// Renders a physical plan with its stages and tasks, and with per-task metrics when
/// `with_metrics` is set and the plan has run.
pub fn render_distributed_plan(plan: &dyn ExecutionPlan, with_metrics: bool) -> String {
    display_plan_ascii(plan, with_metrics)
}

/// The bytes of data files a physical plan reads, across all its stages: the files left after
/// partition and file pruning, counting a file split between tasks once. Parquet readers may
/// fetch less (only the projected columns and the row groups statistics cannot rule out), so
/// this is an upper bound on what is fetched from storage, known before the query runs.
///
/// ```
/// use datafusion::physical_plan::empty::EmptyExec;
/// use datafusion::arrow::datatypes::Schema;
/// use std::sync::Arc;
///
/// let plan = EmptyExec::new(Arc::new(Schema::empty()));
/// assert_eq!(osprey_engine::distributed::planned_scan_bytes(&plan), 0);
/// ```
pub fn planned_scan_bytes(plan: &dyn ExecutionPlan) -> u64 {
    use datafusion::datasource::physical_plan::FileScanConfig;
    use datafusion::datasource::source::DataSourceExec;
    if let Some(leaf) = plan.downcast_ref::<DistributedLeafExec>() {
        // The per-task variants split the original scan; count it once.
        return planned_scan_bytes(leaf.original().as_ref());
    }
    if let Some(boundary) = plan.as_network_boundary() {
        return boundary
            .input_stage()
            .local_plan()
            .map_or(0, |input| planned_scan_bytes(input.as_ref()));
    }
    if let Some(source) = plan.downcast_ref::<DataSourceExec>() {
        return source
            .data_source()
            .downcast_ref::<FileScanConfig>()
            .map_or(0, |config| {
                config
                    .file_groups
                    .iter()
                    .flat_map(|group| group.iter())
                    .map(|file| match &file.range {
                        Some(range) => (range.end - range.start).max(0) as u64,
                        None => file.object_meta.size,
                    })
                    .sum()
            });
    }
    plan.children()
        .iter()
        .map(|child| planned_scan_bytes(child.as_ref()))
        .sum()
}

/// How long a draining executor keeps answering before it may stop, at the least, by default:
/// long enough for the coordinator's discovery (which checks every second) to see it draining
/// and stop planning work on it.
pub const DRAIN_NOTICE: Duration = Duration::from_secs(2);

/// Serves the executor's gRPC service on `listener`: the library's worker service and Osprey's
/// progress service, behind a check of the cluster credential on every request.
///
/// When `drain` completes the executor drains: its health checks answer `UNAVAILABLE`
/// ("draining"), so discovery stops giving it new work, while everything else is served as
/// before, since tasks already planned on it must run and their output must be fetched. Once
/// `drain_notice` (see [`DRAIN_NOTICE`]) has passed and no task of any query is left, the listener closes, open
/// requests finish, and this returns. Callers bound the whole drain with a timeout. The
/// executor's own outgoing calls (shuffle reads from peer executors) present the same secret
/// through [`ClusterChannels`].
pub async fn serve_executor(
    listener: tokio::net::TcpListener,
    secret: &ClusterSecret,
    runtime: Arc<RuntimeEnv>,
    version: &str,
    drain_notice: Duration,
    drain: impl std::future::Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    let channels = ClusterChannels::new(secret.clone());
    let running = RunningTasks::default();
    let running_for_sessions = running.clone();
    let query_pools = QueryPools::default();
    let process_runtime = Arc::clone(&runtime);
    let worker = Worker::from_session_builder(move |ctx: WorkerQueryContext| {
        let channels = channels.clone();
        let running = running_for_sessions.clone();
        let query_pools = query_pools.clone();
        let process_runtime = Arc::clone(&process_runtime);
        async move {
            let mut builder = ctx
                .builder
                .with_distributed_user_codec(crate::codec::OspreyCodec)
                .with_distributed_channel_resolver(channels);
            // A query with a memory limit runs its tasks here in its own pool.
            if let (Some(limit), Some((query_id, _, _))) = (
                query_memory_limit(&ctx.headers),
                task_identity(&ctx.headers),
            ) {
                let pool = query_pools.pool_for(query_id, limit, &process_runtime);
                builder = builder.with_runtime_env(runtime_with_pool(&process_runtime, pool)?);
            }
            // Keep the task's plan (unchanged) for progress reports.
            if let Some((query_id, stage, task)) = task_identity(&ctx.headers) {
                builder = builder.with_distributed_worker_plan_rewrite_handler(
                    move |event: WorkerPlanRewriteEvent<'_>| {
                        running.register(query_id, stage, task, &event.plan);
                        Ok(WorkerPlanRewriteEventResponse::new(event.plan))
                    },
                );
            }
            Ok(builder.build())
        }
    })
    .with_runtime_env(Arc::clone(&runtime))
    .with_version(version.to_string());
    // The library's task list is asked in-process (never served on the network).
    let load = ExecutorLoad {
        tasks_view: datafusion_distributed::grpc::ObservabilityServiceClient::new(
            worker.with_observability_service(Arc::new(NoPeers)),
        ),
        runtime: Arc::clone(&runtime),
    };
    let service = tonic::service::interceptor::InterceptedService::new(
        worker.into_worker_server(),
        secret.interceptor(),
    );
    let sweeper = {
        let running = running.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(crate::progress::SWEEP_INTERVAL);
            loop {
                ticks.tick().await;
                running.sweep();
            }
        })
    };
    let draining = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop = {
        let draining = Arc::clone(&draining);
        let drain_load = load.clone();
        async move {
            drain.await;
            draining.store(true, Ordering::SeqCst);
            tracing::info!("draining: refusing health checks, finishing the running tasks");
            tokio::time::sleep(drain_notice).await;
            let mut waiting = tokio::time::interval(Duration::from_millis(100));
            loop {
                waiting.tick().await;
                // The library's own view: a task stays until its query ends.
                let left = match drain_load.running_tasks().await {
                    Ok(tasks) => tasks,
                    Err(err) => {
                        tracing::warn!(error = %err, "draining: cannot list tasks; stopping");
                        0
                    }
                };
                if left == 0 {
                    break;
                }
                tracing::debug!(tasks = left, "draining: tasks still running");
            }
            tracing::info!("drained: no task left");
        }
    };
    let served = tonic::transport::Server::builder()
        .layer(tower::layer::layer_fn(move |inner| DrainGate {
            inner,
            draining: Arc::clone(&draining),
        }))
        .initial_stream_window_size(EXCHANGE_STREAM_WINDOW)
        .initial_connection_window_size(EXCHANGE_CONNECTION_WINDOW)
        .max_frame_size(EXCHANGE_MAX_FRAME)
        .add_service(service)
        .add_service(tonic::service::interceptor::InterceptedService::new(
            ProgressService {
                tasks: running,
                load,
            },
            secret.interceptor(),
        ))
        .serve_with_incoming_shutdown(tcp_incoming(listener), stop)
        .await;
    sweeper.abort();
    served
}

/// A worker resolver with no workers, for the in-process task listing of a draining executor
/// (its other question, the cluster's workers, is never asked).
struct NoPeers;

impl WorkerResolver for NoPeers {
    fn get_urls(&self) -> Result<Vec<Url>, DataFusionError> {
        Ok(Vec::new())
    }
}

/// Answers health checks (`GetWorkerInfo`) with `UNAVAILABLE` while the executor drains, and
/// passes every other request through.
#[derive(Clone)]
struct DrainGate<S> {
    inner: S,
    draining: Arc<std::sync::atomic::AtomicBool>,
}

impl<S, RequestBody, ResponseBody> tower::Service<http::Request<RequestBody>> for DrainGate<S>
where
    S: tower::Service<http::Request<RequestBody>, Response = http::Response<ResponseBody>>,
    S::Future: Send + 'static,
    ResponseBody: Default + Send + 'static,
    S::Error: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = futures::future::BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<RequestBody>) -> Self::Future {
        if self.draining.load(Ordering::SeqCst) && request.uri().path().ends_with("/GetWorkerInfo")
        {
            let refusal = tonic::Status::unavailable(format!(
                "{DRAINING}: it finishes its running tasks and takes no new ones"
            ));
            return Box::pin(futures::future::ready(Ok(refusal.into_http())));
        }
        Box::pin(self.inner.call(request))
    }
}

/// What a draining executor answers health checks with.
pub const DRAINING: &str = "executor is draining";

/// Accepted connections from `listener`, with Nagle's algorithm off and TCP keep-alive on.
///
/// Tonic applies its own `tcp_nodelay` setting only to listeners it binds itself; without this,
/// small gRPC messages wait for delayed ACKs (about 40 ms per round trip on Linux).
pub fn tcp_incoming(listener: tokio::net::TcpListener) -> tonic::transport::server::TcpIncoming {
    tonic::transport::server::TcpIncoming::from(listener)
        .with_nodelay(Some(true))
        .with_keepalive(Some(KEEPALIVE_INTERVAL))
}

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
/// # async fn example(channels: osprey_engine::distributed::ClusterChannels,
/// #     plan: std::sync::Arc<dyn datafusion::physical_plan::ExecutionPlan>) -> datafusion::error::Result<()> {
/// use osprey_engine::distributed::{ExchangeCompression, measure_exchange_stream};
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
