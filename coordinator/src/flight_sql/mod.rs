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

pub mod cancel;
pub mod client_errors;
mod errors;
pub mod metadata;
pub mod session_options;

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
    AuthError, Authenticator, ExpiringStore, Principal, QueryError, SessionSettings, SessionStore,
    StatementRecord, StatementRequest, StatementService, Submitted, basic_credentials,
};
use prost::Message as _;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tonic::{Request, Response, Status, Streaming};

/// Limits on what clients may leave open on the server.
#[derive(Debug, Clone)]
pub struct FlightSqlLimits {
    /// How long a result ticket stays valid after GetFlightInfo (it is used up by one DoGet).
    pub ticket_ttl: Duration,
    /// How long a prepared statement stays valid after it was created.
    pub prepared_statement_ttl: Duration,
    /// The most tickets and prepared statements held at once (each, all users together).
    pub max_open_handles: usize,
    /// The most tickets and prepared statements one user holds at once (each); past it the
    /// user's new ones are refused with `RESOURCE_EXHAUSTED`.
    pub max_handles_per_user: usize,
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
            max_open_handles: 100_000,
            max_handles_per_user: 1_000,
            max_request_bytes: 16 << 20,
            max_put_bytes: 64 << 20,
        }
    }
}

#[derive(Clone)]
struct TicketEntry {
    /// The identity of the user who planned it ([`Principal::user_id`]).
    owner: String,
    /// The submitted statement; dropping an unfetched ticket records it as cancelled.
    statement: Submitted,
}

/// The front door's name in the query history.
const FRONT_DOOR: &str = "flight_sql";

#[derive(Clone)]
struct PreparedEntry {
    /// The identity of the user who prepared it.
    owner: String,
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
        Self {
            service,
            auth,
            tickets: ExpiringStore::new(
                limits.ticket_ttl,
                limits.max_open_handles,
                limits.max_handles_per_user,
            ),
            prepared: ExpiringStore::new(
                limits.prepared_statement_ttl,
                limits.max_open_handles,
                limits.max_handles_per_user,
            ),
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
    fn catalogs_of(&self, user: &Principal) -> Result<Arc<dyn CatalogProviderList>, Status> {
        self.service
            .catalogs(&self.session_of(user))
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
        self.tickets.has_room(&user.user_id).map_err(handle_limit)?;
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
                    owner: user.user_id.clone(),
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

/// Passes `messages` through, holding one back, and attaches the query's final figures as app
/// metadata to the last message (the schema message when there are no rows). A message of
/// app metadata alone would be simpler, but Arrow Go's reader (under the ADBC drivers) fails on
/// a message without an IPC header.
fn with_final_app_metadata(
    messages: impl Stream<Item = Result<FlightData, Status>> + Send + 'static,
    record: StatementRecord,
) -> FlightDataStream {
    // Fused: after the last message the stream is polled once more to find its end.
    let start = (Box::pin(messages.fuse()), None::<FlightData>, Some(record));
    Box::pin(futures::stream::unfold(
        start,
        |(mut messages, mut held, mut record)| async move {
            loop {
                match messages.next().await {
                    Some(Ok(next)) => {
                        if let Some(previous) = held.replace(next) {
                            return Some((Ok(previous), (messages, held, record)));
                        }
                    }
                    // The failure is what the client needs; the held message goes with it.
                    Some(Err(status)) => return Some((Err(status), (messages, None, None))),
                    None => {
                        let last = held.take()?;
                        let summary = record.take().map(|f| summary_json(&f)).unwrap_or_default();
                        return Some((
                            Ok(last.with_app_metadata(summary.into_bytes())),
                            (messages, None, None),
                        ));
                    }
                }
            }
        },
    ))
}

/// The figures of a statement, as app metadata JSON.
fn summary_json(record: &StatementRecord) -> String {
    serde_json::to_string(&record.summary()).unwrap_or_default()
}

/// A FlightInfo for a metadata command: one endpoint whose ticket is the command itself (it
/// carries no data, and DoGet authenticates again).
fn command_flight_info(
    command: impl ProstMessageExt,
    schema: &SchemaRef,
    descriptor: FlightDescriptor,
) -> Result<Response<FlightInfo>, Status> {
    let endpoint = FlightEndpoint::new().with_ticket(Ticket::new(command.as_any().encode_to_vec()));
    let info = FlightInfo::new()
        .try_with_schema(schema)
        .map_err(|err| Status::internal(format!("cannot encode schema: {err}")))?
        .with_endpoint(endpoint)
        .with_descriptor(descriptor);
    Ok(Response::new(info))
}

/// A one-batch DoGet answer.
fn batch_response<E: std::fmt::Display>(
    schema: SchemaRef,
    batch: Result<RecordBatch, E>,
) -> Result<Response<FlightDataStream>, Status> {
    let batch = batch.map_err(|err| Status::internal(format!("building metadata: {err}")))?;
    let stream = FlightDataEncoderBuilder::new()
        .with_schema(schema)
        .build(futures::stream::once(async { Ok(batch) }))
        .map_err(flight_error_status);
    Ok(Response::new(Box::pin(stream)))
}

/// An empty result with `schema` (keys and cross references: Osprey has no constraints).
fn empty_response(schema: SchemaRef) -> Result<Response<FlightDataStream>, Status> {
    batch_response::<FlightError>(Arc::clone(&schema), Ok(RecordBatch::new_empty(schema)))
}

type FlightDataStream =
    Pin<Box<dyn Stream<Item = Result<arrow_flight::FlightData, Status>> + Send>>;

#[tonic::async_trait]
impl FlightSqlService for FlightSqlFrontDoor {
    type FlightService = FlightSqlFrontDoor;

    async fn do_handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<
        Response<Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>>,
        Status,
    > {
        let header = request
            .metadata()
            .get("authorization")
            .ok_or_else(|| auth_status(AuthError::Missing))?
            .to_str()
            .map_err(|_| auth_status(AuthError::Malformed))?;
        let (user, password) = basic_credentials(header).map_err(auth_status)?;
        let peer = request.remote_addr().map(|addr| addr.ip());
        let token = self
            .auth
            .login(&user, &password, peer)
            .await
            .map_err(|err| {
                tracing::info!(%user, "login refused");
                auth_status(err)
            })?;
        tracing::info!(%user, "login");
        let response = HandshakeResponse {
            protocol_version: 0,
            payload: token.clone().into(),
        };
        let output: Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>> =
            Box::pin(futures::stream::iter([Ok(response)]));
        let mut response = Response::new(output);
        let value = format!("Bearer {token}")
            .parse()
            .map_err(|_| Status::internal("cannot encode bearer token"))?;
        response.metadata_mut().insert("authorization", value);
        Ok(response)
    }

    async fn get_flight_info_statement(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let user = self.authenticate(&request).await?;
        self.flight_info_for(&user, &query.query, request.into_inner())
            .await
    }

    async fn get_flight_info_prepared_statement(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let user = self.authenticate(&request).await?;
        let entry = self.prepared_for(&user, &query.prepared_statement_handle)?;
        let rows = if entry.parameters.is_empty() {
            vec![None]
        } else {
            entry.parameters.into_iter().map(Some).collect()
        };
        self.flight_info_for_rows(&user, &entry.sql, rows, request.into_inner())
            .await
    }

    async fn do_put_prepared_statement_query(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        let user = self.authenticate(&request).await?;
        self.prepared_for(&user, &query.prepared_statement_handle)?;
        let rows = self.read_parameters(request.into_inner()).await?;
        let handle = String::from_utf8_lossy(&query.prepared_statement_handle).to_string();
        if !self
            .prepared
            .update(&handle, |entry| entry.parameters = rows)
        {
            return Err(Status::not_found(
                "unknown or expired prepared statement: create it again",
            ));
        }
        Ok(DoPutPreparedStatementResult {
            prepared_statement_handle: Some(query.prepared_statement_handle),
        })
    }

    async fn do_get_statement(
        &self,
        ticket: TicketStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let user = self.authenticate(&request).await?;
        let handle = String::from_utf8_lossy(&ticket.statement_handle).to_string();
        // Another user's ticket is treated as unknown and left in place for its owner.
        let queue_clock = match self.tickets.get(&handle) {
            Some(entry) if entry.owner == user.user_id => entry.statement.record().queue_clock(),
            _ => return Err(unknown_ticket()),
        };
        // Tickets are single use: the plan is released as soon as its result is fetched.
        // Registered as running before the ticket goes, so that a progress question always
        // finds the statement in one place or the other.
        let (registrations, registered) =
            self.running.register(&handle, &user.user_id, queue_clock);
        let entry = self.tickets.remove(&handle).ok_or_else(unknown_ticket)?;
        let schema: SchemaRef = entry.statement.schema();
        // A cancel while the query waits in its workgroup's queue takes it out of the queue.
        let running = Abortable::new(entry.statement.start(), registrations.start)
            .await
            .map_err(|_| {
                Status::cancelled("the query was cancelled (CancelFlightInfo) before it started")
            })?
            .map_err(query_status)?;
        registered.set_progress(running.bytes_scanned, running.progress);
        let record = running.record;
        let stream = running.stream;
        let batches = stream
            .map_ok(compact_view_arrays)
            .map_err(|err| FlightError::ExternalError(Box::new(err)));
        let encoded = FlightDataEncoderBuilder::new()
            .with_schema(schema)
            .build(batches)
            .map_err(flight_error_status);
        let encoded = cancel::cancellable(encoded, registrations.stream, registered);
        Ok(Response::new(with_final_app_metadata(encoded, record)))
    }

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        let user = self.authenticate(&request).await?;
        // Planning only: DDL runs when the prepared statement is executed.
        let description = self
            .service
            .describe(&self.session_of(&user), &query.query)
            .await
            .map_err(query_status)?;
        let encode = |schema: &SchemaRef| -> Result<_, Status> {
            let IpcMessage(bytes) = SchemaAsIpc::new(schema, &IpcWriteOptions::default())
                .try_into()
                .map_err(|err| Status::internal(format!("cannot encode a schema: {err}")))?;
            Ok(bytes)
        };
        let dataset_schema = encode(&description.schema)?;
        let parameter_schema = if description.parameters.fields().is_empty() {
            Default::default()
        } else {
            encode(&description.parameters)?
        };
        let handle = self
            .prepared
            .insert(
                &user.user_id,
                PreparedEntry {
                    owner: user.user_id.clone(),
                    sql: query.query,
                    parameters: Vec::new(),
                },
            )
            .map_err(handle_limit)?;
        Ok(ActionCreatePreparedStatementResult {
            prepared_statement_handle: handle.into(),
            dataset_schema,
            parameter_schema,
        })
    }

    async fn do_action_close_prepared_statement(
        &self,
        query: ActionClosePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<(), Status> {
        let user = self.authenticate(&request).await?;
        let handle = String::from_utf8_lossy(&query.prepared_statement_handle).to_string();
        if self
            .prepared
            .get(&handle)
            .is_some_and(|e| e.owner == user.user_id)
        {
            self.prepared.remove(&handle);
        }
        Ok(())
    }

    async fn do_put_statement_update(
        &self,
        command: CommandStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let user = self.authenticate(&request).await?;
        self.run_update(&user, &command.query, None).await
    }

    async fn do_put_prepared_statement_update(
        &self,
        command: CommandPreparedStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let user = self.authenticate(&request).await?;
        let entry = self.prepared_for(&user, &command.prepared_statement_handle)?;
        let mut rows = self.read_parameters(request.into_inner()).await?;
        // Parameters come with the update, or were bound before with DoPut on the query command.
        if rows.is_empty() {
            rows = entry.parameters;
        }
        if rows.is_empty() {
            return self.run_update(&user, &entry.sql, None).await;
        }
        // One run per parameter row; the counts add up.
        let mut total = 0i64;
        for row in rows {
            let count = self.run_update(&user, &entry.sql, Some(row)).await?;
            total = total.saturating_add(count.max(0));
        }
        Ok(total)
    }

    async fn get_flight_info_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.authenticate(&request).await?;
        let schema = query.clone().into_builder(&self.sql_info).schema();
        command_flight_info(query, &schema, request.into_inner())
    }

    async fn do_get_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.authenticate(&request).await?;
        let builder = query.into_builder(&self.sql_info);
        batch_response(builder.schema(), builder.build())
    }

    async fn get_flight_info_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.authenticate(&request).await?;
        let schema = query.into_builder().schema();
        command_flight_info(query, &schema, request.into_inner())
    }

    async fn do_get_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let user = self.authenticate(&request).await?;
        let catalogs = self.catalogs_of(&user)?;
        let mut builder = query.into_builder();
        metadata::append_catalogs(catalogs.as_ref(), &mut builder);
        batch_response(builder.schema(), builder.build())
    }

    async fn get_flight_info_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.authenticate(&request).await?;
        let schema = query.clone().into_builder().schema();
        command_flight_info(query, &schema, request.into_inner())
    }

    async fn do_get_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let user = self.authenticate(&request).await?;
        let catalogs = self.catalogs_of(&user)?;
        let mut builder = query.into_builder();
        metadata::append_schemas(catalogs.as_ref(), &mut builder);
        batch_response(builder.schema(), builder.build())
    }

    async fn get_flight_info_tables(
        &self,
        query: CommandGetTables,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.authenticate(&request).await?;
        let schema = query.clone().into_builder().schema();
        command_flight_info(query, &schema, request.into_inner())
    }

    async fn do_get_tables(
        &self,
        query: CommandGetTables,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let user = self.authenticate(&request).await?;
        tracing::debug!(?query, "GetTables");
        let catalogs = self.catalogs_of(&user)?;
        let catalog = query.catalog.clone();
        let mut builder = query.into_builder();
        metadata::append_tables(catalogs.as_ref(), catalog.as_deref(), &mut builder)
            .await
            .map_err(|err| query_status(QueryError::from(err)))?;
        batch_response(builder.schema(), builder.build())
    }

    async fn get_flight_info_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.authenticate(&request).await?;
        let schema = query.into_builder().schema();
        command_flight_info(query, &schema, request.into_inner())
    }

    async fn do_get_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.authenticate(&request).await?;
        let mut builder = query.into_builder();
        for table_type in metadata::TABLE_TYPES {
            builder.append(table_type);
        }
        batch_response(builder.schema(), builder.build())
    }

    async fn get_flight_info_primary_keys(
        &self,
        query: CommandGetPrimaryKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.authenticate(&request).await?;
        command_flight_info(
            query,
            &metadata::primary_keys_schema(),
            request.into_inner(),
        )
    }

    async fn do_get_primary_keys(
        &self,
        _query: CommandGetPrimaryKeys,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.authenticate(&request).await?;
        empty_response(metadata::primary_keys_schema())
    }

    async fn get_flight_info_exported_keys(
        &self,
        query: CommandGetExportedKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.authenticate(&request).await?;
        command_flight_info(
            query,
            &metadata::foreign_keys_schema(),
            request.into_inner(),
        )
    }

    async fn do_get_exported_keys(
        &self,
        _query: CommandGetExportedKeys,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.authenticate(&request).await?;
        empty_response(metadata::foreign_keys_schema())
    }

    async fn get_flight_info_imported_keys(
        &self,
        query: CommandGetImportedKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.authenticate(&request).await?;
        command_flight_info(
            query,
            &metadata::foreign_keys_schema(),
            request.into_inner(),
        )
    }

    async fn do_get_imported_keys(
        &self,
        _query: CommandGetImportedKeys,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.authenticate(&request).await?;
        empty_response(metadata::foreign_keys_schema())
    }

    async fn get_flight_info_cross_reference(
        &self,
        query: CommandGetCrossReference,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.authenticate(&request).await?;
        command_flight_info(
            query,
            &metadata::foreign_keys_schema(),
            request.into_inner(),
        )
    }

    async fn do_get_cross_reference(
        &self,
        _query: CommandGetCrossReference,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.authenticate(&request).await?;
        empty_response(metadata::foreign_keys_schema())
    }

    async fn get_flight_info_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.authenticate(&request).await?;
        let schema = query.into_builder(&self.xdbc_type_info).schema();
        command_flight_info(query, &schema, request.into_inner())
    }

    async fn do_get_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.authenticate(&request).await?;
        let builder = query.into_builder(&self.xdbc_type_info);
        batch_response(builder.schema(), builder.build())
    }

    async fn get_flight_info_substrait_plan(
        &self,
        _query: CommandStatementSubstraitPlan,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.authenticate(&request).await?;
        Err(Status::unimplemented(
            "Substrait plans are not supported yet: send SQL (CommandStatementQuery)",
        ))
    }

    async fn do_action_cancel_query(
        &self,
        query: ActionCancelQueryRequest,
        request: Request<Action>,
    ) -> Result<ActionCancelQueryResult, Status> {
        let user = self.authenticate(&request).await?;
        let info = FlightInfo::decode(query.info)
            .map_err(|err| Status::invalid_argument(format!("bad CancelQuery request: {err}")))?;
        self.cancel_flight_info(&user, &info)?;
        Ok(ActionCancelQueryResult {
            // ActionCancelQueryResult.CancelResult.CANCELLED (the enum is not re-exported).
            result: 1,
        })
    }

    async fn do_action_fallback(
        &self,
        request: Request<Action>,
    ) -> Result<Response<<Self as FlightService>::DoActionStream>, Status> {
        let user = self.authenticate(&request).await?;
        let action = request.into_inner();
        let body = match action.r#type.as_str() {
            "SetSessionOptions" => {
                let options = session_options::SetSessionOptionsRequest::decode(action.body)
                    .map_err(|err| {
                        Status::invalid_argument(format!("bad SetSessionOptions request: {err}"))
                    })?;
                let id = user.session_id.as_deref().ok_or_else(|| {
                    Status::failed_precondition(
                        "session options need a session: log in with the Flight SQL Handshake \
                         and send its bearer token",
                    )
                })?;
                let mut session = self.sessions.get(id);
                let result =
                    session_options::set_options(self.service.engine(), &mut session, options);
                let auth = self.auth.clone();
                self.sessions
                    .put(id, session, |token| auth.check_token(token).is_ok());
                result.encode_to_vec()
            }
            "CancelFlightInfo" => {
                let cancel =
                    arrow_flight::CancelFlightInfoRequest::decode(action.body).map_err(|err| {
                        Status::invalid_argument(format!("bad CancelFlightInfo request: {err}"))
                    })?;
                let info = cancel.info.unwrap_or_default();
                self.cancel_flight_info(&user, &info)?;
                arrow_flight::CancelFlightInfoResult {
                    status: arrow_flight::CancelStatus::Cancelled as i32,
                }
                .encode_to_vec()
            }
            "QueryProgress" => {
                let ticket = arrow_flight::Ticket {
                    ticket: action.body,
                };
                let handle = statement_handle(&ticket).ok_or_else(|| {
                    Status::invalid_argument(
                        "QueryProgress takes the ticket of a statement (from its FlightInfo) as \
                         its body",
                    )
                })?;
                // The ticket first: DoGet registers the result as running before it takes
                // the ticket away.
                let waiting = self
                    .tickets
                    .get(&handle)
                    .is_some_and(|entry| entry.owner == user.user_id);
                let progress = match self.running.progress(&handle, &user.user_id).await {
                    // Planned, not fetched yet: nothing runs until DoGet.
                    _ if waiting => Ok(serde_json::json!({"state": "waiting"})),
                    Some(progress) => serde_json::to_value(progress),
                    None => {
                        return Err(Status::not_found(
                            "no query of yours behind this ticket is waiting or running: it \
                             finished, was cancelled, or the ticket is unknown",
                        ));
                    }
                };
                progress
                    .map_err(|err| Status::internal(format!("progress not encodable: {err}")))?
                    .to_string()
                    .into_bytes()
            }
            "GetSessionOptions" => {
                session_options::get_options(self.service.engine(), &self.session_of(&user))
                    .encode_to_vec()
            }
            "CloseSession" => {
                if let Some(id) = &user.session_id {
                    self.sessions.close(id);
                }
                session_options::CloseSessionResult {
                    status: session_options::CLOSED,
                }
                .encode_to_vec()
            }
            other => {
                return Err(Status::invalid_argument(format!(
                    "unknown action {other:?}: ListActions lists the supported ones"
                )));
            }
        };
        let result = arrow_flight::Result { body: body.into() };
        Ok(Response::new(Box::pin(futures::stream::once(async {
            Ok(result)
        }))))
    }

    async fn list_custom_actions(&self) -> Option<Vec<Result<arrow_flight::ActionType, Status>>> {
        let action = |name: &str, description: &str| {
            Ok(arrow_flight::ActionType {
                r#type: name.to_string(),
                description: description.to_string(),
            })
        };
        Some(vec![
            action(
                "SetSessionOptions",
                "Set session options: catalog, schema, or DataFusion settings",
            ),
            action("GetSessionOptions", "The session's options"),
            action(
                "CancelFlightInfo",
                "Cancel the query behind a FlightInfo, fetched or not",
            ),
            action("CloseSession", "Forget the session's options"),
            action(
                "QueryProgress",
                "How far a statement has got: body = its ticket; answer = JSON with state, \
                 elapsed_ms, rows_read, bytes_read, bytes_planned, stages_done, stages_total, \
                 tasks_done, tasks_total",
            ),
        ])
    }

    async fn do_get_fallback(
        &self,
        request: Request<Ticket>,
        message: Any,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.authenticate(&request).await?;
        Err(Status::unimplemented(format!(
            "DoGet for {} is not supported yet",
            message.type_url
        )))
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
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
                .is_some_and(|entry| entry.owner == user.user_id);
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
            .filter(|entry| entry.owner == user.user_id)
            .ok_or_else(|| {
                Status::not_found("unknown or expired prepared statement: create it again")
            })
    }
}

/// Copies string and binary view columns whose buffers are mostly unreferenced.
///
/// A view array sliced or filtered from a larger one (a LIMIT, a selective filter) still points
/// at the original data buffers, and Arrow IPC sends every buffer it points at: twenty rows can
/// cost tens of megabytes on the wire, past clients' message limits. Compacting bounds each
/// message by the data it actually carries.
fn compact_view_arrays(batch: RecordBatch) -> RecordBatch {
    fn wasteful(referenced: usize, buffers: &[datafusion::arrow::buffer::Buffer]) -> bool {
        let held: usize = buffers.iter().map(|b| b.len()).sum();
        held > 2 * referenced + 64 * 1024
    }
    let needs_compaction = batch.columns().iter().any(|column| {
        if let Some(views) = column.as_string_view_opt() {
            wasteful(views.total_buffer_bytes_used(), views.data_buffers())
        } else if let Some(views) = column.as_binary_view_opt() {
            wasteful(views.total_buffer_bytes_used(), views.data_buffers())
        } else {
            false
        }
    });
    if !needs_compaction {
        return batch;
    }
    let columns: Vec<ArrayRef> = batch
        .columns()
        .iter()
        .map(|column| -> ArrayRef {
            if let Some(views) = column.as_string_view_opt() {
                Arc::new(views.gc())
            } else if let Some(views) = column.as_binary_view_opt() {
                Arc::new(views.gc())
            } else {
                Arc::clone(column)
            }
        })
        .collect();
    RecordBatch::try_new(batch.schema(), columns).unwrap_or(batch)
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

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::StringViewArray;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    #[test]
    fn sliced_view_arrays_are_compacted() {
        let long: Vec<String> = (0..10_000).map(|i| format!("{i:0>100}")).collect();
        let array = StringViewArray::from_iter_values(long.iter());
        let schema = Arc::new(Schema::new(vec![Field::new(
            "s",
            DataType::Utf8View,
            false,
        )]));
        let batch = RecordBatch::try_new(schema, vec![Arc::new(array)]).unwrap();
        let slice = batch.slice(10, 2);
        let held = |b: &RecordBatch| -> usize {
            b.column(0)
                .as_string_view()
                .data_buffers()
                .iter()
                .map(|b| b.len())
                .sum()
        };
        assert!(held(&slice) > 900_000);
        let compacted = compact_view_arrays(slice.clone());
        assert!(held(&compacted) < 1_000, "{}", held(&compacted));
        assert_eq!(compacted, slice);
    }

    #[test]
    fn small_batches_are_left_alone() {
        let array = StringViewArray::from_iter_values(["a", "b"]);
        let schema = Arc::new(Schema::new(vec![Field::new(
            "s",
            DataType::Utf8View,
            false,
        )]));
        let batch = RecordBatch::try_new(schema, vec![Arc::new(array)]).unwrap();
        assert_eq!(compact_view_arrays(batch.clone()), batch);
    }
}
