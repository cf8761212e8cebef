//! The Osprey coordinator process: its front doors as thin adapters over the statement service
//! ([`osprey_service`]), which owns the catalog, the users and every statement's run.
//!
//! - [`FlightSqlFrontDoor`]: the Flight SQL door (ADBC, JDBC, the shell), its
//!   [`session_options`] messages and the layer that answers oversized requests;
//! - [`http_router`] over an [`HttpState`], served by [`serve_http`] (plain or
//!   [`TlsListener`]): the HTTP door: the native query API, the statement stream, the Trino
//!   client protocol, health checks, with Trino's types and metadata tables ([`TrinoMetadata`],
//!   [`trino_type_name`]);
//! - [`Coordinator::start`] builds the service from a [`CoordinatorConfig`]; [`run_coordinator`]
//!   serves the doors until shutdown.
//!
//! ```no_run
//! # async fn run() -> Result<(), osprey_coordinator::CoordinatorError> {
//! use osprey_coordinator::{CoordinatorConfig, run_coordinator};
//! use osprey_service::UserCredential;
//! use osprey_proto::ClusterSecret;
//!
//! let mut config = CoordinatorConfig::new(ClusterSecret::new("an-example-secret-16+chars").unwrap());
//! config.discovery.static_executors = vec!["http://127.0.0.1:50061".parse().unwrap()];
//! config.auth.users.push(UserCredential { name: "admin".into(), password: "pw".into(), admin: true });
//! run_coordinator(config, |addr| println!("Flight SQL on {}", addr.flight), std::future::pending()).await?;
//! # Ok(()) }
//! ```

mod flight_sql;
mod http;
mod trino;

pub use flight_sql::client_errors::OversizedRequestsLayer;
pub use flight_sql::session_options;
pub use flight_sql::{FlightSqlFrontDoor, FlightSqlLimits};
pub use http::serve::serve as serve_http;
pub use http::tls::TlsListener;
pub use http::{HttpState, router as http_router};
pub use trino::TrinoMetadata;
pub use trino::types::{trino_json_values, trino_type_name};

use arrow_flight::flight_service_server::FlightServiceServer;
use datafusion::prelude::{SessionConfig, SessionContext};
use flight_sql::client_errors::ClientErrors;
use osprey_catalog::CatalogStore;
use osprey_engine::{
    ClusterChannels, DistributedPlannerOptions, ExchangeCompression, ExecutorDispatchCounter,
    RuntimeLimits, build_runtime_env_with_storage, coordinator_session_state,
};
use osprey_engine::{StorageLocation, StorageRegistry};
use osprey_proto::ClusterSecret;
use osprey_service::{
    AuthConfig, Authenticator, DiscoveryConfig, ExecutorRegistry, Lakehouse, QueryEngine,
    QueryHistory,
};
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// The catalog name SQL sees by default.
pub const DEFAULT_CATALOG: &str = "osprey";

/// A certificate chain and its private key, as PEM files, for TLS on the client port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The server certificate, followed by any intermediates (PEM).
    pub cert: PathBuf,
    /// The certificate's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// How long a query may run by default before it is stopped (Athena's default is the same).
pub const DEFAULT_QUERY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30 * 60);

/// Everything the coordinator needs to run.
#[derive(Debug, Clone)]
pub struct CoordinatorConfig {
    /// Address of the Flight SQL front door.
    pub flight_listen: SocketAddr,
    /// Address of the HTTP front door (query API, Trino protocol, health checks); `None`
    /// turns it off.
    pub http_listen: Option<SocketAddr>,
    /// TLS for both client ports (Flight SQL and HTTPS); `None` serves plaintext, which is
    /// allowed only on loopback unless [`CoordinatorConfig::allow_insecure_remote`] is set.
    pub tls: Option<TlsFiles>,
    /// Serve plaintext on a non-loopback address (for a TLS-terminating proxy in front, or a
    /// trusted private network). Off by default.
    pub allow_insecure_remote: bool,
    /// Where executors are found.
    pub discovery: DiscoveryConfig,
    /// The secret presented to executors.
    pub cluster_secret: ClusterSecret,
    /// Mutual TLS with the executors: the coordinator's certificate and key, and the CA that
    /// signed the cluster's certificates; `None` speaks plaintext gRPC to them.
    pub cluster_tls: Option<osprey_engine::ClusterTlsFiles>,
    /// Users and token lifetimes.
    pub auth: AuthConfig,
    /// How many statements users hold open, across every front door (`[limits]`).
    pub statement_limits: osprey_service::StatementLimits,
    /// Flight SQL's own limits: ticket lifetimes and request sizes.
    pub flight_limits: FlightSqlLimits,
    /// Directory for the coordinator's files (the built-in TPC-H data, spill files).
    pub data_dir: PathBuf,
    /// When set, the TPC-H dataset at this scale factor is generated (once) and registered as
    /// schema `tpch`.
    pub tpch_scale_factor: Option<f64>,
    /// The schema unqualified table names resolve in.
    pub default_schema: String,
    /// Memory the coordinator's share of each query (the final stage) may use.
    pub memory_limit_bytes: usize,
    /// Partitions per stage task; defaults to the number of cores.
    pub target_partitions: Option<usize>,
    /// Input bytes one scan task reads; smaller values spread scans over more tasks.
    pub bytes_per_task: usize,
    /// Compression of data exchanged between stages.
    pub exchange_compression: ExchangeCompression,
    /// The catalog database: `sqlite:///path/catalog.db` or `postgres://...`. Defaults to
    /// `catalog.db` in the data directory.
    pub catalog_url: Option<String>,
    /// Where managed tables are created (a URL or an absolute path). Defaults to `warehouse/`
    /// in the data directory.
    pub warehouse: Option<String>,
    /// Object store options and credentials, per bucket.
    pub storage: Vec<StorageLocation>,
    /// How often a query may run when executors are lost before any row was sent.
    pub retry: osprey_service::RetryPolicy,
    /// How long a query may run before it is stopped (`None`: no limit), unless its workgroup
    /// sets its own limit.
    pub query_timeout: Option<std::time::Duration>,
    /// Workgroups defined by the configuration, and the default workgroup.
    pub workgroups: osprey_service::WorkgroupsConfig,
    /// Locations defined by the configuration (`[[locations]]`): the storage prefixes users
    /// who are not admins may reach (see `osprey_service::Locations`).
    pub locations: Vec<osprey_service::LocationConfig>,
    /// Catalogs attached by the configuration (`[[catalogs]]`; see
    /// `osprey_service::AttachedCatalogs`).
    pub catalogs: Vec<osprey_service::CatalogConfig>,
}

impl CoordinatorConfig {
    /// Defaults for everything but the secret: loopback, no executors, no users.
    pub fn new(cluster_secret: ClusterSecret) -> Self {
        Self {
            flight_listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            http_listen: Some(SocketAddr::from(([127, 0, 0, 1], 8080))),
            tls: None,
            allow_insecure_remote: false,
            discovery: DiscoveryConfig::default(),
            cluster_secret,
            cluster_tls: None,
            auth: AuthConfig::default(),
            statement_limits: osprey_service::StatementLimits::default(),
            flight_limits: FlightSqlLimits::default(),
            data_dir: PathBuf::from("osprey-data"),
            tpch_scale_factor: None,
            default_schema: "public".to_string(),
            memory_limit_bytes: RuntimeLimits::default().memory_limit_bytes,
            target_partitions: None,
            bytes_per_task: DistributedPlannerOptions::default().bytes_per_task,
            exchange_compression: ExchangeCompression::default(),
            catalog_url: None,
            warehouse: None,
            storage: Vec::new(),
            retry: osprey_service::RetryPolicy::default(),
            query_timeout: Some(DEFAULT_QUERY_TIMEOUT),
            workgroups: osprey_service::WorkgroupsConfig::default(),
            locations: Vec::new(),
            catalogs: Vec::new(),
        }
    }
}

/// Why the coordinator could not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum CoordinatorError {
    /// A listen address could not be bound.
    #[error("cannot listen on {addr}: {source} (is another process using the port?)")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// Setting up DataFusion failed.
    #[error("cannot set up the query engine: {0}")]
    Engine(#[from] datafusion::error::DataFusionError),
    /// Setting up the catalog failed.
    #[error("cannot set up the catalog: {0}")]
    Catalog(#[from] osprey_service::QueryError),
    /// The catalog database could not be opened.
    #[error("cannot open the catalog database: {0}")]
    CatalogStore(#[from] osprey_catalog::CatalogError),
    /// The storage configuration is invalid.
    #[error("storage configuration: {0}")]
    Storage(#[from] osprey_engine::StorageError),
    /// The cluster TLS files are missing or invalid.
    #[error(transparent)]
    ClusterTls(#[from] osprey_engine::ClusterTlsError),
    /// The data directory is unusable.
    #[error("data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The runtime that plans and runs statements could not start.
    #[error("cannot start the query runtime: {0}")]
    QueryRuntime(std::io::Error),
    /// The built-in TPC-H dataset could not be generated or registered.
    #[error(transparent)]
    Tpch(#[from] osprey_service::TpchError),
    /// The gRPC server failed.
    #[error("Flight SQL server failed: {0}")]
    Server(#[from] tonic::transport::Error),
    /// The HTTP port was asked to listen beyond loopback without TLS.
    #[error(
        "refusing to serve plain HTTP on {addr}, which other hosts can reach: pass --tls-cert \
         and --tls-key for HTTPS (the same files serve Flight SQL), keep --http-listen on \
         loopback, or, behind a TLS-terminating proxy, set allow_insecure_remote = true"
    )]
    InsecureHttp {
        /// The listen address.
        addr: SocketAddr,
    },
    /// Plaintext was asked for on an address other hosts can reach.
    #[error(
        "refusing to serve Flight SQL without TLS on {addr}, which other hosts can reach: pass \
         --tls-cert and --tls-key (or OSPREY_TLS_CERT/OSPREY_TLS_KEY, or tls_cert/tls_key under \
         [coordinator]), or, behind a TLS-terminating proxy, set allow_insecure_remote = true"
    )]
    InsecureRemote {
        /// The listen address.
        addr: SocketAddr,
    },
    /// The TLS certificate or key could not be used.
    #[error("TLS: cannot use {path}: {reason}")]
    Tls {
        /// The certificate or key file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The users could not be set up (or no admin would remain).
    #[error(transparent)]
    Auth(#[from] osprey_service::AuthSetupError),
    /// The configured workgroups could not be set up.
    #[error(transparent)]
    Workgroups(#[from] osprey_service::WorkgroupSetupError),
}

/// The coordinator's query engine and discovery, ready to serve front doors.
pub struct Coordinator {
    /// Plans and runs SQL.
    pub engine: QueryEngine,
    /// Live executors.
    pub registry: ExecutorRegistry,
    discovery_task: tokio::task::JoinHandle<()>,
    /// Plans and runs statements apart from the front doors; kept here, its owner, so that it
    /// lives as long as the coordinator.
    _query_runtime: osprey_service::QueryRuntime,
}

impl Drop for Coordinator {
    fn drop(&mut self) {
        self.discovery_task.abort();
    }
}

impl Coordinator {
    /// Starts discovery, builds the session and registers the built-in datasets.
    pub async fn start(config: &CoordinatorConfig) -> Result<Self, CoordinatorError> {
        let dispatch = ExecutorDispatchCounter::default();
        let storage = Arc::new(StorageRegistry::new(config.storage.clone())?);
        let tls = match &config.cluster_tls {
            Some(files) => Some(osprey_engine::ClusterTls::load(files.clone())?),
            None => None,
        };
        if let Some(tls) = &tls {
            tls.spawn_reloader();
        }
        let channels = ClusterChannels::new(config.cluster_secret.clone())
            .with_tls(tls)
            .with_dispatch_counter(dispatch.clone())
            .with_vended_credentials(Arc::clone(&storage));
        let (registry, discovery_task) =
            ExecutorRegistry::start(config.discovery.clone(), channels.clone(), dispatch).await;

        std::fs::create_dir_all(&config.data_dir).map_err(|source| CoordinatorError::DataDir {
            path: config.data_dir.clone(),
            source,
        })?;
        let data_dir =
            config
                .data_dir
                .canonicalize()
                .map_err(|source| CoordinatorError::DataDir {
                    path: config.data_dir.clone(),
                    source,
                })?;
        let runtime = build_runtime_env_with_storage(
            &RuntimeLimits {
                memory_limit_bytes: config.memory_limit_bytes,
                spill_dir: Some(data_dir.join("spill")),
                ..RuntimeLimits::default()
            },
            Arc::clone(&storage),
        )?;
        let mut session_config = SessionConfig::new()
            .with_information_schema(true)
            .with_default_catalog_and_schema(DEFAULT_CATALOG, &config.default_schema)
            .with_create_default_catalog_and_schema(true);
        // `12345678901234567.89` is a decimal, as in PostgreSQL, Trino and DuckDB, not a float.
        session_config
            .options_mut()
            .sql_parser
            .parse_float_as_decimal = true;
        session_config.options_mut().sql_parser.recursion_limit =
            datafusion::config::ConfigNonZeroUsize::try_new(osprey_service::MAX_PARSER_RECURSION)?;
        if let Some(partitions) = config.target_partitions {
            session_config = session_config.with_target_partitions(partitions.max(1));
        }
        let state = coordinator_session_state(
            session_config,
            runtime,
            Arc::new(registry.clone()),
            channels,
            &DistributedPlannerOptions {
                bytes_per_task: config.bytes_per_task,
                exchange_compression: config.exchange_compression,
            },
        )?;
        let config_options = state.config_options().as_ref().clone();
        let ctx = SessionContext::new_with_state(state);
        let catalog_url = match &config.catalog_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", data_dir.join("catalog.db").display()),
        };
        let store = CatalogStore::open(&catalog_url).await?;
        let warehouse = match &config.warehouse {
            Some(location) if location.contains("://") => location.clone(),
            Some(path) => {
                let absolute =
                    std::path::absolute(path).map_err(|source| CoordinatorError::DataDir {
                        path: PathBuf::from(path),
                        source,
                    })?;
                format!("file://{}/", absolute.display())
            }
            None => {
                let dir = data_dir.join("warehouse");
                std::fs::create_dir_all(&dir).map_err(|source| CoordinatorError::DataDir {
                    path: dir.clone(),
                    source,
                })?;
                format!("file://{}/", dir.display())
            }
        };
        let lakehouse = Lakehouse::load(
            store,
            DEFAULT_CATALOG,
            &warehouse,
            config_options,
            ctx.runtime_env(),
        )
        .await?;
        osprey_service::clean_abandoned_writes(lakehouse.store(), ctx.runtime_env().as_ref()).await;
        let auth = Authenticator::open(lakehouse.store().clone(), &config.auth).await?;
        let history = QueryHistory::start(lakehouse.store().clone()).await;
        let workgroups =
            osprey_service::Workgroups::load(lakehouse.store().clone(), &config.workgroups).await?;
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let query_runtime =
            osprey_service::QueryRuntime::start(cores).map_err(CoordinatorError::QueryRuntime)?;
        let locations = osprey_service::Locations::load(
            lakehouse.store().clone(),
            &config.locations,
            &[&warehouse, &format!("{}/", data_dir.display())],
        )
        .await?;
        let catalogs = osprey_service::AttachedCatalogs::load(
            lakehouse.store().clone(),
            &config.catalogs,
            DEFAULT_CATALOG,
            lakehouse.config(),
            ctx.runtime_env(),
            storage,
            locations.clone(),
        )
        .await?;
        let governance =
            osprey_service::Governance::load(lakehouse.store().clone(), DEFAULT_CATALOG).await?;
        let engine = QueryEngine::new(
            ctx,
            osprey_service::EngineParts {
                query_runtime: query_runtime.handle(),
                lakehouse,
                registry: registry.clone(),
                history,
                auth,
                workgroups,
                locations,
                catalogs,
                governance,
            },
        )?
        .with_retry_policy(config.retry)
        .with_query_timeout(config.query_timeout);

        if let Some(scale_factor) = config.tpch_scale_factor {
            let dir = osprey_service::ensure_dataset(&config.data_dir, scale_factor, 4).await?;
            osprey_service::register_dataset(&engine, &dir, "tpch").await?;
            // The demo data is every user's to read.
            engine
                .governance()
                .grant_to_everyone(DEFAULT_CATALOG, "tpch")
                .await?;
        }
        // The default schema must exist so unqualified CREATE TABLE has somewhere to go.
        if !engine.lakehouse().schema_exists(&config.default_schema) {
            engine
                .lakehouse()
                .create_schema(&config.default_schema, true)
                .await?;
        }
        Ok(Self {
            engine,
            registry,
            discovery_task,
            _query_runtime: query_runtime,
        })
    }
}

/// The addresses a running coordinator listens on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listening {
    /// The Flight SQL front door.
    pub flight: SocketAddr,
    /// The HTTP front door, when on.
    pub http: Option<SocketAddr>,
}

/// Binds `addr`, returning the listener and the address it really got (for port 0).
async fn bind(addr: SocketAddr) -> Result<(tokio::net::TcpListener, SocketAddr), CoordinatorError> {
    let bind_error = |source| CoordinatorError::Bind { addr, source };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(bind_error)?;
    let local = listener.local_addr().map_err(bind_error)?;
    Ok((listener, local))
}

/// Runs the coordinator until `shutdown` completes. `on_ready` is called once with the bound
/// addresses, after the catalog is ready.
pub async fn run_coordinator(
    config: CoordinatorConfig,
    on_ready: impl FnOnce(Listening),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), CoordinatorError> {
    let tls = tls_config(&config)?;
    let tls_enabled = tls.is_some();
    let mut server = tonic::transport::Server::builder().layer(OversizedRequestsLayer);
    let mut https = None;
    if let (Some(tls), Some(files)) = (tls, &config.tls) {
        https = Some(tls.https);
        server = server
            .tls_config(tls.flight)
            .map_err(|err| CoordinatorError::Tls {
                path: files.key.clone(),
                reason: format!("the key does not fit the certificate or is unusable: {err}"),
            })?;
    }
    let (listener, local_addr) = bind(config.flight_listen).await?;
    let http = match config.http_listen {
        Some(addr) => Some(bind(addr).await?),
        None => None,
    };
    let coordinator = Coordinator::start(&config).await?;
    let service = osprey_service::StatementService::new(coordinator.engine.clone())
        .with_limits(config.statement_limits);
    let front_door = FlightSqlFrontDoor::new(
        service.clone(),
        coordinator.engine.auth().clone(),
        &config.flight_limits,
    );
    tracing::info!(%local_addr, tls = tls_enabled, "Flight SQL listening");
    // Both servers stop on the same signal.
    let shutdown = futures::FutureExt::shared(Box::pin(shutdown));
    let http_server = http.map(|(listener, addr)| {
        tracing::info!(%addr, tls = https.is_some(), "HTTP listening");
        let app = http::router(http::HttpState {
            service: service.clone(),
            registry: coordinator.registry.clone(),
            queries: http::queries::ApiQueries::new(http::queries::QueryApiLimits::default()),
            trino: http::trino::TrinoQueries::new(http::trino::TrinoLimits::default()),
            tls: https.is_some(),
        });
        let stop = shutdown.clone();
        (
            addr,
            tokio::spawn(async move {
                match https {
                    Some(config) => {
                        let listener = http::tls::TlsListener::new(listener, config);
                        http::serve::serve(listener, app, stop).await
                    }
                    None => http::serve::serve(listener, app, stop).await,
                }
            }),
        )
    });
    on_ready(Listening {
        flight: local_addr,
        http: http_server.as_ref().map(|(addr, _)| *addr),
    });
    let flight = server
        .add_service(
            FlightServiceServer::new(ClientErrors(front_door))
                .max_decoding_message_size(config.flight_limits.max_request_bytes),
        )
        .serve_with_incoming_shutdown(osprey_engine::tcp_incoming(listener), shutdown)
        .await;
    if let Some((_, task)) = http_server {
        match task.await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => tracing::warn!(error = %err, "HTTP server failed"),
            Err(err) => tracing::warn!(error = %err, "HTTP server task failed"),
        }
    }
    flight?;
    tracing::info!("coordinator stopped");
    Ok(())
}

/// TLS for both client ports, loaded once from the same certificate and key.
struct ServerTls {
    /// For Flight SQL (tonic).
    flight: tonic::transport::ServerTlsConfig,
    /// For the HTTP port.
    https: Arc<tokio_rustls::rustls::ServerConfig>,
}

/// The TLS settings for the client ports, after checking that plaintext is acceptable when no
/// certificate is configured.
fn tls_config(config: &CoordinatorConfig) -> Result<Option<ServerTls>, CoordinatorError> {
    let Some(files) = &config.tls else {
        if !config.flight_listen.ip().is_loopback() && !config.allow_insecure_remote {
            return Err(CoordinatorError::InsecureRemote {
                addr: config.flight_listen,
            });
        }
        if let Some(addr) = config.http_listen
            && !addr.ip().is_loopback()
            && !config.allow_insecure_remote
        {
            return Err(CoordinatorError::InsecureHttp { addr });
        }
        return Ok(None);
    };
    let tls_error = |path: &PathBuf, reason: String| CoordinatorError::Tls {
        path: path.clone(),
        reason,
    };
    let read = |path: &PathBuf, what: &str| -> Result<Vec<u8>, CoordinatorError> {
        let pem = std::fs::read(path).map_err(|err| tls_error(path, err.to_string()))?;
        // Checked here so a wrong file is named, rather than failing inside the TLS stack.
        if !String::from_utf8_lossy(&pem).contains(&format!("-----BEGIN {what}")) {
            return Err(tls_error(
                path,
                format!("no PEM block `-----BEGIN {what}...` found"),
            ));
        }
        Ok(pem)
    };
    let cert = read(&files.cert, "CERTIFICATE")?;
    let key = read(&files.key, "")?;
    if !String::from_utf8_lossy(&key).contains("PRIVATE KEY-----") {
        return Err(tls_error(
            &files.key,
            "not a PEM private key (expected `-----BEGIN PRIVATE KEY-----`, \
             `RSA PRIVATE KEY` or `EC PRIVATE KEY`)"
                .to_string(),
        ));
    }
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain = CertificateDer::pem_slice_iter(&cert)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| tls_error(&files.cert, format!("unreadable certificate: {err}")))?;
    let private_key = PrivateKeyDer::from_pem_slice(&key)
        .map_err(|err| tls_error(&files.key, format!("unreadable private key: {err}")))?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut https = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|err| tls_error(&files.cert, err.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, private_key)
        .map_err(|err| {
            tls_error(
                &files.key,
                format!("the key does not fit the certificate or is unusable: {err}"),
            )
        })?;
    // The HTTP server speaks HTTP/1.1 only.
    https.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(ServerTls {
        flight: tonic::transport::ServerTlsConfig::new()
            .identity(tonic::transport::Identity::from_pem(cert, key)),
        https: Arc::new(https),
    }))
}
