//! The shell's Flight SQL connection: log in, run a statement as a stream, cancel it, and read
//! the catalog for completion and `\d`.

use crate::connect::Target;
use arrow_flight::sql::CommandGetTables;
use arrow_flight::sql::client::FlightSqlServiceClient;
use arrow_flight::{Action, CancelFlightInfoRequest, FlightInfo};
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use futures::{Stream, StreamExt};
use prost::Message;
use std::pin::Pin;
use std::sync::Arc;
use tonic::transport::{Certificate, Channel, ClientTlsConfig};

/// Why talking to the server failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No connection could be made.
    #[error("cannot connect to {uri}: {reason}")]
    Connect {
        /// Where.
        uri: String,
        /// Why.
        reason: String,
    },
    /// The server refused the credentials.
    #[error("login as {user} failed: {reason}")]
    Login {
        /// Who.
        user: String,
        /// The server's answer.
        reason: String,
    },
    /// The server answered a statement with an error.
    #[error("{0}")]
    Server(String),
}

impl From<arrow_flight::error::FlightError> for ClientError {
    fn from(err: arrow_flight::error::FlightError) -> Self {
        ClientError::Server(flight_message(&err))
    }
}

/// Why a login failed, and what to do about it, for people: no gRPC status dump.
fn login_message(err: &arrow_flight::error::FlightError) -> String {
    // The Flight SQL client reports a refused handshake as an Arrow IPC error around the
    // status, so the status is recognised in the text too.
    let text = err.to_string();
    let refused = matches!(
        err,
        arrow_flight::error::FlightError::Tonic(status)
            if status.code() == tonic::Code::Unauthenticated
    ) || text.contains("valid authentication credentials");
    if refused {
        return "wrong user name or password. Check the user (-U or OSPREY_USER) and the \
                password (OSPREY_PASSWORD, or the prompt); an admin can set a new one with \
                ALTER USER name PASSWORD '...'"
            .to_string();
    }
    match err {
        arrow_flight::error::FlightError::Tonic(status) => status.message().to_string(),
        _ => match text.split_once("message: \"") {
            Some((_, message)) => message.trim_end_matches('"').to_string(),
            None => text,
        },
    }
}

/// The server's message without gRPC framing.
fn flight_message(err: &arrow_flight::error::FlightError) -> String {
    match err {
        arrow_flight::error::FlightError::Tonic(status) => {
            // Osprey names the kind of failure from its taxonomy; other servers by gRPC code.
            match status
                .metadata()
                .get("x-osprey-error-code")
                .and_then(|code| code.to_str().ok())
            {
                Some(code) => format!("{} ({code})", status.message()),
                None => format!("{}: {}", code_name(status.code()), status.message()),
            }
        }
        other => other.to_string(),
    }
}

fn code_name(code: tonic::Code) -> &'static str {
    match code {
        tonic::Code::InvalidArgument => "invalid",
        tonic::Code::NotFound => "not found",
        tonic::Code::PermissionDenied => "permission denied",
        tonic::Code::Unauthenticated => "unauthenticated",
        tonic::Code::ResourceExhausted => "resources exhausted",
        tonic::Code::Cancelled => "cancelled",
        tonic::Code::Unavailable => "unavailable",
        tonic::Code::Unimplemented => "not supported",
        _ => "error",
    }
}

/// Flight.proto's `GetSessionOptionsResult`, reading only string values (the `oneof`'s
/// `string_value` has tag 1; other kinds are skipped). arrow-flight 59 does not ship it.
#[derive(Clone, PartialEq, prost::Message)]
struct SessionOptions {
    #[prost(map = "string, message", tag = "1")]
    session_options: std::collections::HashMap<String, SessionOptionText>,
}

/// A `SessionOptionValue` whose value is a string.
#[derive(Clone, PartialEq, prost::Message)]
struct SessionOptionText {
    #[prost(string, optional, tag = "1")]
    string_value: Option<String>,
}

/// How the shell proves who it is.
#[derive(Clone)]
pub enum Credentials {
    /// A password, exchanged for a token by the Flight SQL Handshake.
    Password(String),
    /// A bearer token (from an earlier login).
    Token(String),
}

/// A result arriving batch by batch.
pub type BatchStream = Pin<Box<dyn Stream<Item = Result<RecordBatch, ClientError>> + Send>>;

/// A statement that started: its schema, its batches, and what cancels it.
pub struct Running {
    /// The result's columns.
    pub schema: SchemaRef,
    /// The result.
    pub batches: BatchStream,
    /// The server's handle on the statement, for CancelFlightInfo.
    pub info: FlightInfo,
}

/// A running statement's progress, as the server reports it.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default)]
pub struct ServerProgress {
    /// `waiting`, `queued` (for a slot in the user's workgroup), `planning` or `running`.
    pub state: String,
    /// How long the statement has waited in its workgroup's queue.
    pub queued_ms: u64,
    /// Rows read by scans so far.
    pub rows_read: u64,
    /// Bytes fetched from Parquet files so far.
    pub bytes_read: u64,
    /// Bytes of data files the plan reads at most.
    pub bytes_planned: u64,
    /// Stages on executors that have finished.
    pub stages_done: u64,
    /// Stages on executors (0 when the coordinator runs the whole plan).
    pub stages_total: u64,
}

/// A logged-in connection.
#[derive(Clone)]
pub struct Client {
    inner: FlightSqlServiceClient<Channel>,
    /// Where it is connected, as `grpc://host:port`.
    pub uri: String,
    /// Who it is logged in as.
    pub user: String,
}

impl Client {
    /// Connects to `target` and logs in.
    pub async fn connect(target: &Target, credentials: &Credentials) -> Result<Self, ClientError> {
        let uri = target.uri();
        let connect_error = |reason: String| ClientError::Connect {
            uri: uri.clone(),
            reason,
        };
        let scheme = if target.tls { "https" } else { "http" };
        let mut endpoint =
            Channel::from_shared(format!("{scheme}://{}:{}", target.host, target.port))
                .map_err(|err| connect_error(err.to_string()))?
                .connect_timeout(std::time::Duration::from_secs(10));
        if target.tls {
            let mut tls = ClientTlsConfig::new().domain_name(target.host.clone());
            tls = match &target.tls_ca {
                Some(path) => {
                    let pem = std::fs::read(path).map_err(|err| {
                        connect_error(format!("cannot read the CA file {}: {err}", path.display()))
                    })?;
                    tls.ca_certificate(Certificate::from_pem(pem))
                }
                None => tls.with_native_roots(),
            };
            endpoint = endpoint
                .tls_config(tls)
                .map_err(|err| connect_error(err.to_string()))?;
        }
        let channel = endpoint.connect().await.map_err(|err| {
            let mut reason = err.to_string();
            let mut source = std::error::Error::source(&err);
            while let Some(cause) = source {
                reason = format!("{reason}: {cause}");
                source = cause.source();
            }
            connect_error(format!(
                "{reason}. Is a coordinator running there (`osprey local` starts one)? Is it TLS (--tls)?"
            ))
        })?;
        // Results may hold large rows: accept messages of any size.
        let mut inner = FlightSqlServiceClient::new_from_inner(
            arrow_flight::flight_service_client::FlightServiceClient::new(channel)
                .max_decoding_message_size(usize::MAX)
                .max_encoding_message_size(usize::MAX),
        );
        match credentials {
            Credentials::Password(password) => {
                inner
                    .handshake(&target.user, password)
                    .await
                    .map_err(|err| ClientError::Login {
                        user: target.user.clone(),
                        reason: login_message(&err),
                    })?;
            }
            Credentials::Token(token) => inner.set_token(token.clone()),
        }
        Ok(Self {
            inner,
            uri,
            user: target.user.clone(),
        })
    }

    /// Starts `sql` and returns its result stream.
    pub async fn run(&mut self, sql: &str) -> Result<Running, ClientError> {
        let info = self.inner.execute(sql.to_string(), None).await?;
        let schema = Arc::new(
            info.clone()
                .try_decode_schema()
                .unwrap_or_else(|_| Schema::empty()),
        );
        let client = self.inner.clone();
        let tickets: Vec<_> = info
            .endpoint
            .iter()
            .filter_map(|endpoint| endpoint.ticket.clone())
            .collect();
        let batches = futures::stream::iter(tickets)
            .then(move |ticket| {
                let mut client = client.clone();
                async move { client.do_get(ticket).await }
            })
            .flat_map(|stream| match stream {
                Ok(stream) => stream.map(|batch| batch.map_err(ClientError::from)).boxed(),
                Err(err) => {
                    futures::stream::once(async move { Err(ClientError::from(err)) }).boxed()
                }
            });
        Ok(Running {
            schema,
            batches: Box::pin(batches),
            info,
        })
    }

    /// Asks the server to stop a statement (CancelFlightInfo); errors are ignored, since the
    /// statement may have ended meanwhile.
    pub async fn cancel(&mut self, info: FlightInfo) {
        let body = CancelFlightInfoRequest { info: Some(info) }.encode_to_vec();
        if let Ok(mut results) = self
            .inner
            .do_action(Action::new("CancelFlightInfo", body))
            .await
        {
            while let Some(Ok(_)) = results.next().await {}
        }
    }

    /// How far the statement behind `info` has got, as the server measures it (the
    /// `QueryProgress` action). `None` when the server cannot tell: an older server, or the
    /// statement has ended.
    pub async fn progress(&mut self, info: &FlightInfo) -> Option<ServerProgress> {
        let ticket = info.endpoint.first()?.ticket.clone()?;
        let mut results = self
            .inner
            .do_action(Action::new("QueryProgress", ticket.ticket))
            .await
            .ok()?;
        let body = results.next().await?.ok()?;
        let progress: ServerProgress = serde_json::from_slice(&body.body).ok()?;
        // Before it runs (waiting for its fetch, being planned) there is nothing to show but
        // a wait in its workgroup's queue.
        matches!(progress.state.as_str(), "running" | "queued").then_some(progress)
    }

    /// The session's current schema on the server (Flight's `GetSessionOptions` action), or
    /// `None` when the server does not say.
    pub async fn current_schema(&mut self) -> Option<String> {
        let action = Action {
            r#type: "GetSessionOptions".to_string(),
            body: Default::default(),
        };
        let mut results = self.inner.do_action(action).await.ok()?;
        let body = results.next().await?.ok()?;
        let options = SessionOptions::decode(body.body).ok()?;
        options.session_options.get("schema")?.string_value.clone()
    }

    /// Every table the user can see with its columns: `(schema, table, columns)`.
    pub async fn tables(&mut self) -> Result<Vec<TableInfo>, ClientError> {
        let info = self
            .inner
            .get_tables(CommandGetTables {
                catalog: None,
                db_schema_filter_pattern: None,
                table_name_filter_pattern: None,
                table_types: vec![],
                include_schema: true,
            })
            .await?;
        let mut tables = Vec::new();
        for endpoint in info.endpoint {
            let Some(ticket) = endpoint.ticket else {
                continue;
            };
            let mut stream = self.inner.do_get(ticket).await?;
            while let Some(batch) = stream.next().await {
                let batch = batch?;
                let text = |name: &str| {
                    batch
                        .column_by_name(name)
                        .and_then(|c| c.as_string_opt::<i32>().cloned())
                };
                // Columns of another type than the spec's are skipped, not trusted.
                let (Some(schemas), Some(names), Some(types)) = (
                    text("db_schema_name"),
                    text("table_name"),
                    text("table_type"),
                ) else {
                    continue;
                };
                let encoded = batch
                    .column_by_name("table_schema")
                    .and_then(|c| c.as_binary_opt::<i32>().cloned());
                for row in 0..batch.num_rows() {
                    let columns = encoded
                        .as_ref()
                        .filter(|column| !column.is_null(row))
                        .and_then(|column| decode_schema(column.value(row)))
                        .map(|schema| {
                            schema
                                .fields()
                                .iter()
                                .map(|f| {
                                    (f.name().clone(), f.data_type().to_string(), f.is_nullable())
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    tables.push(TableInfo {
                        schema: schemas.value(row).to_string(),
                        name: names.value(row).to_string(),
                        kind: types.value(row).to_string(),
                        columns,
                    });
                }
            }
        }
        Ok(tables)
    }
}

/// A table as the catalog describes it.
#[derive(Debug, Clone)]
pub struct TableInfo {
    /// Its schema.
    pub schema: String,
    /// Its name.
    pub name: String,
    /// `BASE TABLE` or `VIEW`.
    pub kind: String,
    /// `(name, type, nullable)` per column.
    pub columns: Vec<(String, String, bool)>,
}

/// An Arrow IPC-encoded schema, as GetTables sends it.
fn decode_schema(bytes: &[u8]) -> Option<Schema> {
    Schema::try_from(arrow_flight::IpcMessage(bytes.to_vec().into())).ok()
}
