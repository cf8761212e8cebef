//! Outgoing gRPC channels to executors, each request carrying the cluster credential, and the
//! worker client that records every task it dispatches: in the dispatch counter, in the
//! query's live progress, and in a header that names the task for its executor. Before a
//! query's first task reaches an executor, the storage credentials catalogs vended are shared
//! with it (`credentials`).

use super::credentials::CredentialSharing;
use crate::cluster_tls::ClusterTls;
use crate::progress::{ProgressSource, QueryProgress};
use crate::runtime::QueryMemoryLimit;
use crate::storage::StorageRegistry;
use async_trait::async_trait;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::DataFusionError;
use datafusion::error::Result;
use datafusion::execution::TaskContext;
use datafusion::physical_plan::metrics::ExecutionPlanMetricsSet;
use datafusion_distributed::grpc::{BoxCloneSyncChannel, create_worker_client};
use datafusion_distributed::{
    ChannelResolver, CoordinatorToWorkerMsg, ExecuteTaskRequest, GetWorkerInfoRequest,
    GetWorkerInfoResponse, SetPlanRequest, WorkerChannel, WorkerToCoordinatorMsg,
};
use futures::stream::BoxStream;
use http::HeaderMap;
use osprey_proto::progress::{PROGRESS_METHOD, QueryProgressRequest, QueryProgressResponse};
use osprey_proto::{CLUSTER_SECRET_HEADER, ClusterSecret};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tonic::transport::{Channel, Endpoint};
use url::Url;

/// How long a new connection to an executor may take before the attempt fails.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Keep-alive pings detect an executor that vanished without closing its connections.
pub(super) const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);

/// HTTP/2 flow-control windows and frame size for cluster traffic. Exchange streams carry
/// record batches of hundreds of kilobytes; with HTTP/2's 64 KiB default window and 16 KiB
/// frames, a stream stalls on window updates and pays per-frame costs many times per batch.
pub(super) const EXCHANGE_STREAM_WINDOW: u32 = 8 << 20;
pub(super) const EXCHANGE_CONNECTION_WINDOW: u32 = 32 << 20;
pub(super) const EXCHANGE_MAX_FRAME: u32 = 1 << 20;

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
    credentials: Option<CredentialSharing>,
    tls: Option<ClusterTls>,
}

impl ClusterChannels {
    /// Channels that present `secret` to executors.
    pub fn new(secret: ClusterSecret) -> Self {
        Self {
            secret,
            channels: Arc::default(),
            dispatch: None,
            credentials: None,
            tls: None,
        }
    }

    /// Connects over mutual TLS with `tls` (whatever the URL's scheme), presenting this
    /// process's certificate and checking the executor's; `None` connects in plaintext.
    pub fn with_tls(mut self, tls: Option<ClusterTls>) -> Self {
        self.tls = tls;
        self
    }

    /// Shares the storage credentials catalogs vended (kept in the coordinator's `storage`)
    /// with each executor before the first task of each query reaches it.
    pub fn with_vended_credentials(mut self, storage: Arc<StorageRegistry>) -> Self {
        self.credentials = Some(CredentialSharing::new(storage));
        self
    }

    /// Counts the tasks sent through these channels in `counter`.
    pub fn with_dispatch_counter(mut self, counter: ExecutorDispatchCounter) -> Self {
        self.dispatch = Some(counter);
        self
    }

    pub(super) fn channel(&self, url: &Url) -> Result<BoxCloneSyncChannel> {
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(channel) = channels.get(url) {
            return Ok(channel.clone());
        }
        // With cluster TLS the connector makes the TLS connection; tonic, which would refuse an
        // https URL it has no TLS settings for, is given the address only.
        let mut target = url.clone();
        if self.tls.is_some() && target.scheme() == "https" {
            let _ = target.set_scheme("http");
        }
        let endpoint = Endpoint::from_shared(target.to_string())
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
        let channel: Channel = match &self.tls {
            Some(tls) => {
                let tls = tls.clone();
                endpoint.connect_with_connector_lazy(tower::service_fn(move |uri: http::Uri| {
                    let tls = tls.clone();
                    async move {
                        let host = uri.host().unwrap_or_default();
                        let host = host.trim_start_matches('[').trim_end_matches(']');
                        let port = uri.port_u16().unwrap_or(443);
                        tls.connect(host, port)
                            .await
                            .map(hyper_util::rt::TokioIo::new)
                    }
                }))
            }
            None => endpoint.connect_lazy(),
        };
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
pub(super) const TASK_HEADER: &str = "x-osprey-task";

/// The header that carries a query's memory limit per process ([`QueryMemoryLimit`]) in bytes,
/// so that the executor caps the task's memory in the query's own pool.
pub(super) const QUERY_MEMORY_HEADER: &str = "x-osprey-query-memory";

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
        if let Some(sharing) = &self.channels.credentials {
            sharing
                .before_dispatch(|| self.channels.channel(&self.url), &self.url, query_id)
                .await?;
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
            let channels = &self.channels;
            progress.task_dispatched(query_id, &self.url, || Arc::new(channels.clone()));
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

#[async_trait]
impl ProgressSource for ClusterChannels {
    /// Asks the executor at `url` for the figures of its tasks of query `query_id`.
    async fn query_progress(
        &self,
        url: &Url,
        query_id: &[u8; 16],
    ) -> Result<QueryProgressResponse, tonic::Status> {
        let channel = self
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
}

/// Accepted connections from `listener`, with Nagle's algorithm off and TCP keep-alive on.
///
/// Tonic applies its own `tcp_nodelay` setting only to listeners it binds itself; without this,
/// small gRPC messages wait for delayed ACKs (about 40 ms per round trip on Linux).
pub fn tcp_incoming(listener: tokio::net::TcpListener) -> tonic::transport::server::TcpIncoming {
    tonic::transport::server::TcpIncoming::from(listener)
        .with_nodelay(Some(true))
        .with_keepalive(Some(KEEPALIVE_INTERVAL))
}
