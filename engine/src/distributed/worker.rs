//! The gRPC service an executor serves: the library's worker and Osprey's progress service,
//! behind a check of the cluster credential on every request, with draining on shutdown.

use super::channels::{
    ClusterChannels, EXCHANGE_CONNECTION_WINDOW, EXCHANGE_MAX_FRAME, EXCHANGE_STREAM_WINDOW,
    QUERY_MEMORY_HEADER, TASK_HEADER, tcp_incoming,
};
use crate::cluster_tls::ClusterTls;
use crate::progress::RunningTasks;
use crate::runtime::{QueryMemoryPool, runtime_with_pool};
use crate::storage::StorageRegistry;
use datafusion::common::DataFusionError;
use datafusion::error::Result;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion_distributed::{
    DistributedExt, Worker, WorkerPlanRewriteEvent, WorkerPlanRewriteEventResponse,
    WorkerQueryContext, WorkerResolver,
};
use http::HeaderMap;
use osprey_proto::ClusterSecret;
use osprey_proto::credentials::{
    SHARE_CREDENTIALS_METHOD, ShareCredentialsRequest, ShareCredentialsResponse,
};
use osprey_proto::progress::{
    ExecutorStatusRequest, ExecutorStatusResponse, PROGRESS_METHOD, PROGRESS_SERVICE,
    QueryProgressRequest, QueryProgressResponse, STATUS_METHOD,
};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use url::Url;

/// The task an executor is asked to set up, from [`TASK_HEADER`].
fn task_identity(headers: &HeaderMap) -> Option<([u8; 16], u64, u64)> {
    let value = headers.get(TASK_HEADER)?.to_str().ok()?;
    let mut parts = value.split('/');
    let query_id = uuid::Uuid::try_parse(parts.next()?).ok()?;
    let stage = parts.next()?.parse().ok()?;
    let task = parts.next()?.parse().ok()?;
    Some((*query_id.as_bytes(), stage, task))
}

/// The executor's progress service: answers [`PROGRESS_METHOD`] from its [`RunningTasks`].
///
/// Written by hand rather than generated: one unary method does not justify a build script and
/// `protoc` on every build machine.
#[derive(Clone)]
struct ProgressService {
    tasks: RunningTasks,
    load: ExecutorLoad,
    /// Where vended storage credentials the coordinator shares are kept.
    storage: Arc<StorageRegistry>,
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
        let storage = Arc::clone(&self.storage);
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
                SHARE_CREDENTIALS_METHOD => {
                    let mut grpc = tonic::server::Grpc::new(tonic_prost::ProstCodec::default());
                    grpc.unary(ShareCredentialsMethod(storage), request).await
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

struct ShareCredentialsMethod(Arc<StorageRegistry>);

impl tonic::server::UnaryService<ShareCredentialsRequest> for ShareCredentialsMethod {
    type Response = ShareCredentialsResponse;
    type Future = futures::future::Ready<Result<tonic::Response<Self::Response>, tonic::Status>>;

    fn call(&mut self, request: tonic::Request<ShareCredentialsRequest>) -> Self::Future {
        self.0
            .accept_vended(super::credentials::from_wire(request.into_inner()));
        futures::future::ready(Ok(tonic::Response::new(ShareCredentialsResponse {})))
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

/// How long a draining executor keeps answering before it may stop, at the least, by default:
/// long enough for the coordinator's discovery (which checks every second) to see it draining
/// and stop planning work on it.
pub const DRAIN_NOTICE: Duration = Duration::from_secs(2);

/// Serves the executor's gRPC service on `listener`: the library's worker service and Osprey's
/// progress service (which also accepts the storage credentials the coordinator shares, kept in
/// `storage`, the registry of `runtime`), behind a check of the cluster credential on every
/// request.
///
/// When `drain` completes the executor drains: its health checks answer `UNAVAILABLE`
/// ("draining"), so discovery stops giving it new work, while everything else is served as
/// before, since tasks already planned on it must run and their output must be fetched. Once
/// `drain_notice` (see [`DRAIN_NOTICE`]) has passed and no task of any query is left, the listener closes, open
/// requests finish, and this returns. Callers bound the whole drain with a timeout. The
/// executor's own outgoing calls (shuffle reads from peer executors) present the same secret
/// through [`ClusterChannels`]. With `tls`, every connection, in and out, is mutual TLS (see
/// [`ClusterTls`]).
pub async fn serve_executor(
    listener: tokio::net::TcpListener,
    (secret, tls): (&ClusterSecret, Option<ClusterTls>),
    runtime: Arc<RuntimeEnv>,
    storage: Arc<StorageRegistry>,
    version: &str,
    drain_notice: Duration,
    drain: impl std::future::Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    let channels = ClusterChannels::new(secret.clone()).with_tls(tls.clone());
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
            let mut builder = crate::functions::with_osprey_functions(ctx.builder)
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
            // Keep the task's plan for progress reports; its CSV scans name their files in
            // their errors.
            let identity = task_identity(&ctx.headers);
            builder = builder.with_distributed_worker_plan_rewrite_handler(
                move |event: WorkerPlanRewriteEvent<'_>| {
                    let plan = crate::csv_errors::with_named_csv_errors(event.plan)?;
                    if let Some((query_id, stage, task)) = identity {
                        running.register(query_id, stage, task, &plan);
                    }
                    Ok(WorkerPlanRewriteEventResponse::new(plan))
                },
            );
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
    let router = tonic::transport::Server::builder()
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
                storage,
            },
            secret.interceptor(),
        ));
    let served = match tls {
        Some(tls) => {
            router
                .serve_with_incoming_shutdown(tls.accept(tcp_incoming(listener)), stop)
                .await
        }
        None => {
            router
                .serve_with_incoming_shutdown(tcp_incoming(listener), stop)
                .await
        }
    };
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
