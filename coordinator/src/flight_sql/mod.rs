//! The Flight SQL front door.
//!
//! Supported so far: username/password Handshake returning a bearer token (one login, one
//! session: `USE` and `SET` persist for it); statement queries (GetFlightInfo on
//! `CommandStatementQuery`, then DoGet); prepared statements for queries and updates, with
//! their dataset and parameter schemas, parameters (`$1` or `?`) bound with DoPut over one or
//! more rows (a query gets one endpoint per row; an update runs per row and the counts add
//! up); statement updates through DoPut; GetSqlInfo and the metadata calls (catalogs, schemas, tables with `include_schema`,
//! table types; keys, cross reference and XdbcTypeInfo answer empty with their schemas; see
//! [`metadata`]). Every call but Handshake requires the bearer token (or Basic credentials).
//!
//! Results are streamed: DoGet encodes record batches as they come off the executors.
//!
//! Every statement is recorded in the query history (`system.queries`). Clients learn its
//! figures from app metadata, as JSON: GetFlightInfo's `FlightInfo.app_metadata` carries the
//! query id (and, for statements that already ran, such as INSERT or DDL, their rows and bytes
//! scanned); the last message of a DoGet stream carries only app metadata with the final
//! `{"query_id", "rows", "bytes_scanned", "elapsed_ms"}`.
//! Tickets and prepared-statement handles are opaque random handles bound to the user who
//! created them, and they expire; a ticket is good for one DoGet.
//!
//! Here: the front door's state and how it submits statements; `service`: each call of the
//! protocol; `encode`: result streams and metadata answers; [`metadata`], [`cancel`],
//! [`session_options`] and [`client_errors`]: the calls' parts that stand alone.

pub mod cancel;
pub mod client_errors;
mod encode;
mod errors;
pub mod metadata;
mod service;
pub mod session_options;

use encode::*;

use errors::flight_error_status;
pub use errors::query_status;

use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::FlightService;
use arrow_flight::sql::metadata::{SqlInfoData, XdbcTypeInfoData, XdbcTypeInfoDataBuilder};
use arrow_flight::sql::server::{FlightSqlService, PeekableFlightDataStream};
use arrow_flight::sql::{
    ActionCancelQueryRequest, ActionCancelQueryResult, ActionClosePreparedStatementRequest,
    ActionCreatePreparedStatementRequest, ActionCreatePreparedStatementResult, Any,
    CommandGetCatalogs, CommandGetCrossReference, CommandGetDbSchemas, CommandGetExportedKeys,
    CommandGetImportedKeys, CommandGetPrimaryKeys, CommandGetSqlInfo, CommandGetTableTypes,
    CommandGetTables, CommandGetXdbcTypeInfo, CommandPreparedStatementQuery,
    CommandPreparedStatementUpdate, CommandStatementQuery, CommandStatementUpdate, ProstMessageExt,
    SqlInfo, TicketStatementQuery,
};
use arrow_flight::sql::{CommandStatementSubstraitPlan, DoPutPreparedStatementResult};
use arrow_flight::{
    Action, FlightData, FlightDescriptor, FlightEndpoint, FlightInfo, HandshakeRequest,
    HandshakeResponse, IpcMessage, SchemaAsIpc, Ticket,
};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch, UInt64Array};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::ipc::writer::IpcWriteOptions;
use datafusion::catalog::CatalogProviderList;
use datafusion::common::ScalarValue;
use futures::future::Abortable;
use futures::{Stream, StreamExt, TryStreamExt};
use osprey_service::{
    AuthError, Authenticator, ExpiringStore, OpenStatement, Principal, QueryError, SessionSettings,
    SessionStore, StatementRecord, StatementRequest, StatementService, Submitted,
    basic_credentials,
};
use prost::Message as _;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tonic::{Request, Response, Status, Streaming};

/// Limits on what Flight SQL clients may leave open on the server (how many statements they
/// hold is the service's bound, [`osprey_service::StatementLimits`]).
#[derive(Debug, Clone)]
pub struct FlightSqlLimits {
    /// How long a result ticket stays valid after GetFlightInfo (it is used up by one DoGet).
    pub ticket_ttl: Duration,
    /// How long a prepared statement stays valid after it was created.
    pub prepared_statement_ttl: Duration,
    /// The largest request message accepted (a statement's SQL text, a DoPut batch).
    pub max_request_bytes: usize,
    /// The most bytes (as Arrow in memory) one DoPut may bind in all its batches.
    pub max_put_bytes: usize,
}

impl Default for FlightSqlLimits {
    fn default() -> Self {
        Self {
            ticket_ttl: Duration::from_secs(15 * 60),
            prepared_statement_ttl: Duration::from_secs(3600),
            max_request_bytes: 16 << 20,
            max_put_bytes: 64 << 20,
        }
    }
}

#[derive(Clone)]
struct TicketEntry {
    /// Its place among its owner's open statements; says who may fetch it.
    open: Arc<OpenStatement>,
    /// The submitted statement; dropping an unfetched ticket records it as cancelled.
    statement: Submitted,
}

/// The front door's name in the query history.
const FRONT_DOOR: &str = "flight_sql";

#[derive(Clone)]
struct PreparedEntry {
    /// Its place among its owner's open statements; says who may use it.
    open: Arc<OpenStatement>,
    sql: String,
    /// Parameter rows bound with DoPut; each row runs the statement once.
    parameters: Vec<Vec<ScalarValue>>,
}

/// The most parameter rows one DoPut may bind.
const MAX_PARAMETER_ROWS: usize = 10_000;

/// The Flight SQL service; mount it with
/// `arrow_flight::flight_service_server::FlightServiceServer::new(front_door)`.
#[derive(Clone)]
pub struct FlightSqlFrontDoor {
    service: StatementService,
    auth: Authenticator,
    tickets: ExpiringStore<TicketEntry>,
    prepared: ExpiringStore<PreparedEntry>,
    sql_info: std::sync::Arc<SqlInfoData>,
    xdbc_type_info: std::sync::Arc<XdbcTypeInfoData>,
    sessions: SessionStore,
    running: cancel::RunningResults,
    limits: FlightSqlLimits,
}

impl FlightSqlFrontDoor {
    /// A front door running statements on `service` for users `auth` accepts.
    pub fn new(service: StatementService, auth: Authenticator, limits: &FlightSqlLimits) -> Self {
        let sql_info = metadata::build_sql_info(service.engine().session());
        // The service's open statements bound each user (across every door); these stores only
        // keep the handles, up to the service's total.
        let total = service.statement_limits().open_total;
        Self {
            tickets: ExpiringStore::new(limits.ticket_ttl, total, total),
            prepared: ExpiringStore::new(limits.prepared_statement_ttl, total, total),
            service,
            auth,
            sessions: SessionStore::default(),
            running: cancel::RunningResults::default(),
            limits: limits.clone(),
            sql_info: std::sync::Arc::new(sql_info),
            xdbc_type_info: std::sync::Arc::new(
                XdbcTypeInfoDataBuilder::new()
                    .build()
                    .expect("an empty type list is valid"),
            ),
        }
    }

    /// The user `request` authenticates as (bearer token, or Basic credentials checked with
    /// the client's address for the failure slowdown).
    async fn authenticate<T>(&self, request: &Request<T>) -> Result<Principal, Status> {
        let header = request
            .metadata()
            .get("authorization")
            .map(|value| value.to_str())
            .transpose()
            .map_err(|_| auth_status(AuthError::Malformed))?;
        let peer = request.remote_addr().map(|addr| addr.ip());
        self.auth
            .check_authorization(header, peer)
            .await
            .map_err(auth_status)
    }

    /// The settings of the session `user`'s request belongs to.
    fn session_of(&self, user: &Principal) -> SessionSettings {
        let mut session: SessionSettings = user
            .session_id
            .as_deref()
            .map(|id| self.sessions.get(id))
            .unwrap_or_default();
        session.principal = Some(user.clone());
        session
    }

    /// The catalogs as `user`'s session sees them, for the metadata calls.
    async fn catalogs_of(&self, user: &Principal) -> Result<Arc<dyn CatalogProviderList>, Status> {
        self.service
            .catalogs(&self.session_of(user))
            .await
            .map_err(query_status)
    }

    /// Submits `sql` in the caller's session (running DDL and writes, and `USE`/`SET`, which
    /// change the session).
    async fn submit_in_session(
        &self,
        user: &Principal,
        sql: &str,
        parameters: Option<Vec<ScalarValue>>,
    ) -> Result<Submitted, QueryError> {
        let before = self.session_of(user);
        let mut session = before.clone();
        let request = StatementRequest::new(FRONT_DOOR, sql).with_parameters(parameters);
        let submitted = self
            .service
            .statement(user, request)
            .submit(&mut session)
            .await?;
        if session != before {
            let Some(id) = &user.session_id else {
                return Err(QueryError::InvalidStatement(
                    "USE, SET and RESET change a session, and this request has none: log in \
                     with the Flight SQL Handshake and send its bearer token"
                        .to_string(),
                ));
            };
            let auth = self.auth.clone();
            self.sessions
                .put(id, session, |token| auth.check_token(token).is_ok());
        }
        Ok(submitted)
    }

    /// Plans `sql` (running DDL), and returns a FlightInfo whose single ticket fetches the result.
    async fn flight_info_for(
        &self,
        user: &Principal,
        sql: &str,
        descriptor: FlightDescriptor,
    ) -> Result<Response<FlightInfo>, Status> {
        self.flight_info_for_rows(user, sql, vec![None], descriptor)
            .await
    }

    /// Plans `sql` once per parameter row (`None`: no parameters), each with its own ticket;
    /// the FlightInfo lists one endpoint per row, in order.
    async fn flight_info_for_rows(
        &self,
        user: &Principal,
        sql: &str,
        rows: Vec<Option<Vec<ScalarValue>>>,
        descriptor: FlightDescriptor,
    ) -> Result<Response<FlightInfo>, Status> {
        let started = std::time::Instant::now();
        let mut endpoints = Vec::with_capacity(rows.len());
        let mut schema = None;
        let mut app_metadata = String::new();
        for parameters in rows {
            let (endpoint, row_schema, metadata) = self.plan_ticket(user, sql, parameters).await?;
            endpoints.push(endpoint);
            schema.get_or_insert(row_schema);
            if app_metadata.is_empty() {
                app_metadata = metadata;
            }
        }
        let schema =
            schema.unwrap_or_else(|| Arc::new(datafusion::arrow::datatypes::Schema::empty()));
        let mut info = FlightInfo::new()
            .try_with_schema(&schema)
            .map_err(|err| Status::internal(format!("cannot encode result schema: {err}")))?
            .with_descriptor(descriptor)
            .with_ordered(true)
            .with_app_metadata(app_metadata.into_bytes());
        for endpoint in endpoints {
            info = info.with_endpoint(endpoint);
        }
        tracing::debug!(user = %user.user, elapsed = ?started.elapsed(), "statement planned");
        Ok(Response::new(info))
    }

    /// Plans one statement (with one parameter row) under a new ticket, tracked in the history.
    async fn plan_ticket(
        &self,
        user: &Principal,
        sql: &str,
        parameters: Option<Vec<ScalarValue>>,
    ) -> Result<(FlightEndpoint, SchemaRef, String), Status> {
        // Refused before anything runs: a write would otherwise run without a ticket to show.
        let open = self.service.open_statement(user).map_err(handle_limit)?;
        let statement = self
            .submit_in_session(user, sql, parameters)
            .await
            .map_err(|err| {
                tracing::info!(user = %user.user, error = %err, "statement rejected");
                query_status(err)
            })?;
        let record = statement.record();
        let app_metadata = match statement.rows_written() {
            Some(_) => summary_json(&record),
            None => serde_json::json!({ "query_id": record.id() }).to_string(),
        };
        let schema = statement.schema();
        let handle = self
            .tickets
            .insert(
                &user.user_id,
                TicketEntry {
                    open: Arc::new(open),
                    statement,
                },
            )
            .map_err(handle_limit)?;
        let ticket = TicketStatementQuery {
            statement_handle: handle.into(),
        };
        let endpoint =
            FlightEndpoint::new().with_ticket(Ticket::new(ticket.as_any().encode_to_vec()));
        Ok((endpoint, schema, app_metadata))
    }

    /// Reads a DoPut stream of parameter rows (bounded in number).
    async fn read_parameters(
        &self,
        stream: PeekableFlightDataStream,
    ) -> Result<Vec<Vec<ScalarValue>>, Status> {
        // A message carrying only the command descriptor (as the Rust client's update sends)
        // holds no IPC data: skip it.
        let messages = stream
            .try_filter(|message| futures::future::ready(!message.data_header.is_empty()))
            .map_err(FlightError::from);
        let mut batches = FlightRecordBatchStream::new_from_flight_data(messages);
        let mut rows = Vec::new();
        let mut bytes = 0usize;
        while let Some(batch) = batches.next().await {
            let batch = batch.map_err(|err| match err {
                // A message over the size limit: ClientErrors reports it as ResourceExhausted.
                arrow_flight::error::FlightError::Tonic(status) => *status,
                other => {
                    Status::invalid_argument(format!("cannot read the parameter batch: {other}"))
                }
            })?;
            bytes = bytes.saturating_add(batch.get_array_memory_size());
            if bytes > self.limits.max_put_bytes {
                return Err(Status::resource_exhausted(format!(
                    "the parameter batches hold more than {} MiB: bind them in several \
                     executions (max_put_bytes under [coordinator])",
                    self.limits.max_put_bytes >> 20
                )));
            }
            if rows.len() + batch.num_rows() > MAX_PARAMETER_ROWS {
                return Err(Status::resource_exhausted(format!(
                    "too many parameter rows: at most {MAX_PARAMETER_ROWS} per statement; \
                     bind them in several executions"
                )));
            }
            for row in 0..batch.num_rows() {
                let values = batch
                    .columns()
                    .iter()
                    .map(|column| ScalarValue::try_from_array(column, row))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|err| {
                        Status::invalid_argument(format!("bad parameter value: {err}"))
                    })?;
                rows.push(values);
            }
        }
        Ok(rows)
    }

    /// Runs `sql` to completion and returns the number of rows it changed (-1 when unknown).
    async fn run_update(
        &self,
        user: &Principal,
        sql: &str,
        parameters: Option<Vec<ScalarValue>>,
    ) -> Result<i64, Status> {
        self.run_update_counting(user, sql, parameters)
            .await
            .map_err(query_status)
    }

    async fn run_update_counting(
        &self,
        user: &Principal,
        sql: &str,
        parameters: Option<Vec<ScalarValue>>,
    ) -> Result<i64, QueryError> {
        let statement = self.submit_in_session(user, sql, parameters).await?;
        if let Some(rows) = statement.rows_written() {
            return Ok(rows.min(i64::MAX as u64) as i64);
        }
        let mut stream = statement.start().await?.stream;
        let mut count: Option<i64> = None;
        while let Some(batch) = stream.next().await {
            let batch = batch?;
            // DML reports a single `count` column.
            if batch.num_columns() == 1
                && let Some(rows) = batch.column(0).as_any().downcast_ref::<UInt64Array>()
            {
                let sum: u64 = rows.iter().flatten().sum();
                count = Some(count.unwrap_or(0) + sum as i64);
            }
        }
        Ok(count.unwrap_or(-1))
    }
}

impl FlightSqlFrontDoor {
    /// Cancels every statement behind `info`'s tickets that `user` owns: an unfetched ticket
    /// is dropped (the query is recorded as cancelled), a streaming result is stopped.
    fn cancel_flight_info(&self, user: &Principal, info: &FlightInfo) -> Result<(), Status> {
        let mut cancelled = 0;
        for endpoint in &info.endpoint {
            let Some(ticket) = &endpoint.ticket else {
                continue;
            };
            let Some(handle) = statement_handle(ticket) else {
                continue;
            };
            let owned = self
                .tickets
                .get(&handle)
                .is_some_and(|entry| entry.open.is_owned_by(user));
            let dropped = owned && self.tickets.remove(&handle).is_some();
            if dropped || self.running.cancel(&handle, &user.user_id) {
                cancelled += 1;
            }
        }
        if cancelled == 0 {
            return Err(Status::not_found(
                "no query of yours behind this FlightInfo is waiting or running: it finished, \
                 was cancelled already, or its tickets are unknown",
            ));
        }
        tracing::info!(user = %user.user, cancelled, "queries cancelled");
        Ok(())
    }

    fn prepared_for(&self, user: &Principal, handle: &[u8]) -> Result<PreparedEntry, Status> {
        let handle = String::from_utf8_lossy(handle).to_string();
        self.prepared
            .get(&handle)
            .filter(|entry| entry.open.is_owned_by(user))
            .ok_or_else(|| {
                Status::not_found("unknown or expired prepared statement: create it again")
            })
    }
}

fn handle_limit(err: osprey_service::HandleLimitReached) -> Status {
    Status::resource_exhausted(err.to_string())
}

fn unknown_ticket() -> Status {
    Status::not_found(
        "unknown, expired or already used ticket: call GetFlightInfo again to get a fresh one",
    )
}

fn auth_status(err: AuthError) -> Status {
    match err {
        AuthError::Unavailable | AuthError::Busy => Status::unavailable(err.to_string()),
        _ => Status::unauthenticated(err.to_string()),
    }
}

/// The statement handle inside a Flight SQL statement ticket.
fn statement_handle(ticket: &Ticket) -> Option<String> {
    Any::decode(ticket.ticket.clone())
        .ok()
        .and_then(|any| any.unpack::<TicketStatementQuery>().ok().flatten())
        .map(|t| String::from_utf8_lossy(&t.statement_handle).to_string())
}
