//! `POST /v1/statement:stream?format=arrow|csv|ndjson`: a one-shot streaming answer for scripts,
//! in the spirit of ClickHouse's HTTP interface. The body is the SQL text; the result streams
//! back as it is produced (chunked), so its size is not bounded by the coordinator's memory.
//! The answer starts once the first batch is ready, so a failure before it is an HTTP error
//! status with the JSON error; a failure after the first bytes were sent aborts the response
//! (the client sees a truncated transfer, never a silently short result).
//!
//! The endpoint keeps no session (each request names its `catalog` and `schema`); a `USE`
//! answers the context it chose in `X-Osprey-Set-Catalog` and `X-Osprey-Set-Schema` headers.

use super::encode::ARROW_STREAM;
use super::{ApiError, Authenticated, HttpState};
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::ipc::writer::StreamWriter;
use futures::StreamExt;
use osprey_service::{QueryError, SessionSettings, StatementRequest};
use serde::Deserialize;

/// Query parameters of the streaming endpoint.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamParams {
    /// `arrow` (default), `csv` or `ndjson`.
    #[serde(default)]
    pub format: Option<String>,
    /// The catalog unqualified names resolve in.
    #[serde(default)]
    pub catalog: Option<String>,
    /// The schema unqualified names resolve in.
    #[serde(default)]
    pub schema: Option<String>,
}

#[derive(Clone, Copy)]
enum Format {
    Arrow,
    Csv,
    NdJson,
}

/// `POST /v1/statement:stream`.
pub async fn statement_stream(
    State(state): State<HttpState>,
    Authenticated(principal): Authenticated,
    params: Result<Query<StreamParams>, axum::extract::rejection::QueryRejection>,
    headers: axum::http::HeaderMap,
    sql: Result<String, axum::extract::rejection::StringRejection>,
) -> Result<Response, ApiError> {
    // A form or text/plain POST is what any web page can send without asking (no CORS
    // preflight); SQL comes as application/sql.
    let sent_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    if sent_type.as_deref() != Some("application/sql") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            "send the SQL with Content-Type: application/sql (curl: -H 'Content-Type: \
             application/sql' --data-binary @query.sql)",
        ));
    }
    let Query(params) = params
        .map_err(|rejection| super::bad_parameters(rejection, "format, catalog and schema"))?;
    let sql = super::sql_body(sql)?;
    let format = match params.format.as_deref().unwrap_or("arrow") {
        "arrow" => Format::Arrow,
        "csv" => Format::Csv,
        "ndjson" => Format::NdJson,
        other => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "INVALID_ARGUMENT",
                format!("unknown format {other:?}: use arrow, csv or ndjson"),
            ));
        }
    };
    let statement = state.service.statement(
        &principal,
        StatementRequest::new(super::queries::FRONT_DOOR, sql),
    );
    let mut session = SessionSettings {
        catalog: params.catalog.clone(),
        schema: params.schema.clone(),
        principal: Some(principal),
        ..SessionSettings::default()
    };
    let query_id = statement.id();
    let failed = |err: QueryError| super::query_error(err).for_query(query_id.clone());
    let mut stream = statement.run(&mut session).await.map_err(failed)?.stream;
    // Wait for the first batch before answering, so a statement that fails before producing
    // anything (most do: planning and execution errors come first) gets an error status with
    // its JSON error rather than a stream cut short.
    let first = match stream.next().await {
        Some(Ok(batch)) => Some(batch),
        Some(Err(err)) => return Err(failed(QueryError::from(err))),
        None => None,
    };
    // The endpoint keeps no session: a `USE` answers the context it chose, for the client to
    // send as `catalog` and `schema` from then on (as Trino's X-Trino-Set-* headers do).
    let mut context = Vec::new();
    if session.catalog != params.catalog
        && let Some(catalog) = session.catalog.as_deref()
    {
        context.push((SET_CATALOG, header_value(catalog)?));
    }
    if session.schema != params.schema
        && let Some(schema) = session.schema.as_deref()
    {
        context.push((SET_SCHEMA, header_value(schema)?));
    }
    // A task encodes batches as they come and hands the bytes over a small channel: the
    // channel's bound is the backpressure, and a client that goes away closes it, which ends
    // the task and drops the query's streams (its executor tasks stop).
    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(2);
    tokio::spawn(async move {
        let mut encoder = Encoder::new(format, stream.schema());
        let head = encoder.head();
        if !head.is_empty() && sender.send(Ok(head)).await.is_err() {
            return;
        }
        if let Some(batch) = first {
            let chunk = encoder.batch(&batch);
            let failed = chunk.is_err();
            if sender.send(chunk).await.is_err() || failed {
                return;
            }
        }
        loop {
            // A client that goes away while the query computes (an aggregate sends nothing
            // until its end) closes the channel: stop the query then, not at the next send.
            let batch = tokio::select! {
                batch = stream.next() => batch,
                _ = sender.closed() => return,
            };
            let Some(batch) = batch else { break };
            let chunk = batch
                .map_err(|err| std::io::Error::other(err.to_string()))
                .and_then(|batch| encoder.batch(&batch));
            let failed = chunk.is_err();
            if sender.send(chunk).await.is_err() || failed {
                return;
            }
        }
        let _ = sender.send(encoder.finish()).await;
    });
    let body = Body::from_stream(tokio_stream_from(receiver));
    let mut response = ([(header::CONTENT_TYPE, content_type(format))], body).into_response();
    if let Ok(id) = HeaderValue::from_str(&query_id) {
        response.headers_mut().insert(super::QUERY_ID_HEADER, id);
    }
    for (name, value) in context {
        response
            .headers_mut()
            .insert(header::HeaderName::from_static(name), value);
    }
    Ok(response)
}

/// The header naming the catalog a `USE` chose.
const SET_CATALOG: &str = "x-osprey-set-catalog";
/// The header naming the schema a `USE` chose.
const SET_SCHEMA: &str = "x-osprey-set-schema";

fn header_value(name: &str) -> Result<HeaderValue, ApiError> {
    HeaderValue::from_str(name).map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            format!("the name {name:?} cannot be sent in an HTTP header; quote a plainer name"),
        )
    })
}

/// The receiving end of a channel as a stream.
fn tokio_stream_from<T: Send + 'static>(
    mut receiver: tokio::sync::mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> + Send + 'static {
    futures::stream::poll_fn(move |cx| receiver.poll_recv(cx))
}

/// Encodes a result batch by batch in one format.
struct Encoder {
    format: Format,
    arrow: Option<StreamWriter<Vec<u8>>>,
    header_pending: bool,
}

impl Encoder {
    fn new(format: Format, schema: datafusion::arrow::datatypes::SchemaRef) -> Self {
        let arrow = match format {
            Format::Arrow => StreamWriter::try_new(Vec::new(), &schema).ok(),
            _ => None,
        };
        Self {
            format,
            arrow,
            header_pending: true,
        }
    }

    /// What precedes the first batch: the Arrow schema message, so an empty result is still a
    /// valid stream.
    fn head(&mut self) -> Bytes {
        match self.arrow.as_mut() {
            Some(writer) => Bytes::from(std::mem::take(writer.get_mut())),
            None => Bytes::new(),
        }
    }

    fn batch(&mut self, batch: &RecordBatch) -> Result<Bytes, std::io::Error> {
        let api = |err: ApiError| std::io::Error::other(err.message().to_string());
        let bytes = match self.format {
            Format::Arrow => {
                let writer = self
                    .arrow
                    .as_mut()
                    .ok_or_else(|| std::io::Error::other("cannot start the Arrow stream"))?;
                writer.write(batch).map_err(std::io::Error::other)?;
                std::mem::take(writer.get_mut())
            }
            Format::Csv => {
                let header = std::mem::replace(&mut self.header_pending, false);
                super::encode::csv(std::slice::from_ref(batch), header).map_err(api)?
            }
            Format::NdJson => super::encode::ndjson(std::slice::from_ref(batch)).map_err(api)?,
        };
        Ok(Bytes::from(bytes))
    }

    /// What follows the last batch: the Arrow end-of-stream marker.
    fn finish(&mut self) -> Result<Bytes, std::io::Error> {
        match self.arrow.as_mut() {
            Some(writer) => {
                writer.finish().map_err(std::io::Error::other)?;
                Ok(Bytes::from(std::mem::take(writer.get_mut())))
            }
            None => Ok(Bytes::new()),
        }
    }
}

fn content_type(format: Format) -> HeaderValue {
    HeaderValue::from_static(match format {
        Format::Arrow => ARROW_STREAM,
        Format::Csv => "text/csv; charset=utf-8",
        Format::NdJson => "application/x-ndjson",
    })
}
