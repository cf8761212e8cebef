//! The Osprey executor: a stateless worker that runs plan fragments (tasks) sent by its
//! coordinator and streams Arrow record batches to the coordinator and to peer executors.
//!
//! It keeps no state beyond its spill directory; any executor can be killed and replaced. Every
//! request must carry the cluster credential (see [`osprey_proto::cluster_auth`]).
//!
//! ```no_run
//! # async fn run() -> Result<(), osprey_executor::ExecutorError> {
//! use osprey_executor::{ExecutorConfig, run_executor};
//! use osprey_proto::ClusterSecret;
//!
//! let mut config = ExecutorConfig::new(ClusterSecret::new("an-example-secret-16+chars").unwrap());
//! config.listen = "127.0.0.1:50061".parse().unwrap();
//! // Runs until Ctrl-C / SIGTERM, then drains running tasks.
//! run_executor(config, |addr| println!("listening on {addr}"), osprey_executor::shutdown_signal())
//!     .await?;
//! # Ok(()) }
//! ```

use osprey_engine::StorageRegistry;
use osprey_engine::{RuntimeLimits, build_runtime_env_with_storage, serve_executor};
use osprey_proto::ClusterSecret;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Everything an executor needs to run.
#[derive(Debug, Clone)]
pub struct ExecutorConfig {
    /// Address for the gRPC service. Port 0 picks a free port.
    pub listen: SocketAddr,
    /// The secret every request must present.
    pub cluster_secret: ClusterSecret,
    /// Bytes of memory query operators may use before they spill or fail.
    pub memory_limit_bytes: usize,
    /// Directory for spill files; the operating system's temporary directory when unset.
    pub spill_dir: Option<PathBuf>,
    /// How long running tasks may take to finish after a shutdown request.
    pub shutdown_grace: Duration,
    /// How long a draining executor waits, at the least, before it may stop: time for the
    /// coordinator's discovery to see it draining and stop planning work on it.
    pub drain_notice: Duration,
    /// Object store options and credentials, per bucket (resolved here, never sent in plans).
    pub storage: Vec<osprey_engine::StorageLocation>,
    /// Address for plain-HTTP health checks (`/healthz`, `/readyz`), for an orchestrator's
    /// probes; `None` serves none. They need no credential and tell nothing but alive/ready.
    pub health_listen: Option<SocketAddr>,
    /// Listen on a non-loopback address. Executors speak plaintext gRPC (the cluster secret
    /// authenticates but does not encrypt), so this is for a network that encrypts or that is
    /// private to the cluster (a service mesh with mutual TLS, a Kubernetes network policy).
    /// Not needed with [`Self::cluster_tls`].
    pub allow_insecure_remote: bool,
    /// Mutual TLS with the coordinator and the other executors: this executor's certificate
    /// and key, and the CA that signed the cluster's certificates.
    pub cluster_tls: Option<osprey_engine::ClusterTlsFiles>,
}

impl ExecutorConfig {
    /// Defaults for everything but the secret, which has no safe default: loopback port 50061,
    /// 4 GiB of memory, the OS temporary directory for spills, 30 s to drain on shutdown.
    pub fn new(cluster_secret: ClusterSecret) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 50061)),
            cluster_secret,
            memory_limit_bytes: RuntimeLimits::default().memory_limit_bytes,
            spill_dir: None,
            shutdown_grace: Duration::from_secs(30),
            drain_notice: osprey_engine::DRAIN_NOTICE,
            storage: Vec::new(),
            health_listen: None,
            allow_insecure_remote: false,
            cluster_tls: None,
        }
    }
}

/// Why an executor could not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum ExecutorError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source} (is another process using the port?)")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The runtime (memory pool, spill directory) could not be set up.
    #[error("cannot set up the executor runtime: {0}")]
    Runtime(#[from] datafusion::error::DataFusionError),
    /// The storage configuration is invalid.
    #[error("storage configuration: {0}")]
    Storage(#[from] osprey_engine::StorageError),
    /// The gRPC server failed.
    #[error("gRPC server failed: {0}")]
    Server(#[from] tonic::transport::Error),
    /// A non-loopback listen address without `allow_insecure_remote`.
    #[error(
        "refusing to serve plaintext gRPC on {0}, which other hosts can reach. Give the \
         executor its cluster certificate (--cluster-tls-cert, --cluster-tls-key, \
         --cluster-tls-ca), keep --listen on loopback, or, on a network that encrypts or is \
         private to the cluster (a service mesh with mutual TLS, a network policy that admits \
         only the coordinator and executors), pass --allow-insecure-remote"
    )]
    InsecureRemote(SocketAddr),
    /// The cluster TLS files are missing or invalid.
    #[error(transparent)]
    ClusterTls(#[from] osprey_engine::ClusterTlsError),
    /// Running tasks did not finish within the grace period after shutdown was requested.
    #[error("running tasks did not finish within {0:?} of the shutdown request")]
    ShutdownTimedOut(Duration),
}

/// Runs an executor until `shutdown` completes, then stops accepting work, lets running tasks
/// finish (up to [`ExecutorConfig::shutdown_grace`]) and returns.
///
/// `on_listening` is called once with the bound address, which differs from the configured one
/// when the configured port is 0.
pub async fn run_executor(
    config: ExecutorConfig,
    on_listening: impl FnOnce(SocketAddr),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ExecutorError> {
    let tls = match &config.cluster_tls {
        Some(files) => Some(osprey_engine::ClusterTls::load(files.clone())?),
        None => None,
    };
    if !config.listen.ip().is_loopback() && !config.allow_insecure_remote && tls.is_none() {
        return Err(ExecutorError::InsecureRemote(config.listen));
    }
    if let Some(tls) = &tls {
        tls.spawn_reloader();
    }
    let storage = Arc::new(StorageRegistry::new(config.storage.clone())?);
    let runtime = build_runtime_env_with_storage(
        &RuntimeLimits {
            memory_limit_bytes: config.memory_limit_bytes,
            spill_dir: config.spill_dir.clone(),
            ..RuntimeLimits::default()
        },
        Arc::clone(&storage),
    )?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| ExecutorError::Bind {
            addr: config.listen,
            source,
        })?;
    let local_addr = listener
        .local_addr()
        .map_err(|source| ExecutorError::Bind {
            addr: config.listen,
            source,
        })?;
    let draining = Arc::new(AtomicBool::new(false));
    let health = match config.health_listen {
        Some(addr) => Some(serve_health(addr, Arc::clone(&draining)).await?),
        None => None,
    };
    on_listening(local_addr);
    tracing::info!(%local_addr, memory_limit_bytes = config.memory_limit_bytes, "executor listening");

    // Once shutdown is requested, the server stops accepting and drains; bound the drain.
    let (drain_started_tx, drain_started_rx) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async move {
        shutdown.await;
        tracing::info!("shutdown requested: draining (no new work; running tasks finish)");
        draining.store(true, Ordering::SeqCst);
        let _ = drain_started_tx.send(());
    };
    // The health port lives as long as this function.
    let _health = health.map(AbortOnDrop);
    let server = serve_executor(
        listener,
        (&config.cluster_secret, tls),
        runtime,
        storage,
        env!("CARGO_PKG_VERSION"),
        config.drain_notice,
        shutdown,
    );
    tokio::pin!(server);
    tokio::select! {
        result = &mut server => return result.map_err(ExecutorError::from),
        _ = drain_started_rx => {}
    }
    match tokio::time::timeout(config.shutdown_grace, server).await {
        Ok(result) => {
            tracing::info!("executor stopped");
            result.map_err(ExecutorError::from)
        }
        Err(_) => Err(ExecutorError::ShutdownTimedOut(config.shutdown_grace)),
    }
}

/// Aborts a background task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Serves `GET /healthz` (200 while the process serves) and `GET /readyz` (200, or 503 once
/// the executor drains) on `addr`, for Kubernetes probes and load balancers. Plain HTTP
/// without credentials, by design: they reveal nothing but the executor's state.
async fn serve_health(
    addr: SocketAddr,
    draining: Arc<AtomicBool>,
) -> Result<tokio::task::JoinHandle<()>, ExecutorError> {
    use axum::http::StatusCode;
    use axum::routing::get;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ExecutorError::Bind { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| ExecutorError::Bind { addr, source })?;
    let router = axum::Router::new()
        .route("/healthz", get(|| async { (StatusCode::OK, "alive\n") }))
        .route(
            "/readyz",
            get(move || {
                let draining = draining.load(Ordering::SeqCst);
                async move {
                    if draining {
                        (StatusCode::SERVICE_UNAVAILABLE, "draining\n")
                    } else {
                        (StatusCode::OK, "ready\n")
                    }
                }
            }),
        );
    tracing::info!(%bound, "executor health checks listening");
    Ok(tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, router).await {
            tracing::warn!(error = %err, "the health port stopped");
        }
    }))
}

/// A future that completes on Ctrl-C (SIGINT) or SIGTERM.
///
/// The handlers are installed when this function is called, not when the future is first
/// polled, so a signal that arrives between start-up and serving is not lost (and does not
/// kill the process with the default action).
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let interrupt = signal(SignalKind::interrupt()).ok();
        let terminate = signal(SignalKind::terminate()).ok();
        async move {
            let wait = |stream: Option<tokio::signal::unix::Signal>| async move {
                match stream {
                    Some(mut stream) => {
                        stream.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = wait(interrupt) => {}
                _ = wait(terminate) => {}
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}
