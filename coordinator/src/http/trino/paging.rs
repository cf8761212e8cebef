//! Moving a statement on by one page: waiting for it to start, then pulling result batches
//! from the executors until the page is full, the wait is over, or the rows end.

use super::encode::{batch_rows, column_json, page_body};
use super::headers::session_changes;
use super::registry::TrinoLimits;
use super::statement::{Page, Phase, Run, Started, TrinoQuery};
use datafusion::arrow::array::RecordBatch;
use datafusion::execution::SendableRecordBatchStream;
use futures::StreamExt;
use osprey_service::QueryError;
use serde_json::{Value, json};
use std::sync::Arc;

/// Moves the statement on by one page: waits up to `max_wait` for it to start, then gathers
/// rows until the page is full, the wait is over (with at least one row), or the rows end.
pub(super) async fn advance(
    query: &TrinoQuery,
    run: &mut Run,
    base: &str,
    limits: &TrinoLimits,
) -> Page {
    let deadline = tokio::time::Instant::now() + limits.max_wait;
    let mut rows: Vec<Value> = Vec::new();
    let mut page_bytes = 0usize;
    loop {
        match &mut run.phase {
            Phase::Starting(task) => {
                let joined = tokio::select! {
                    joined = task => Ok(joined),
                    _ = tokio::time::sleep_until(deadline) => Err(()),
                    _ = query.cancel_requested.notified() => Err(()),
                };
                let started = match joined {
                    Err(()) => {
                        // Still waiting for a slot in its workgroup, or planning.
                        let state = match query.queue.is_queued() {
                            true => "QUEUED",
                            false => "RUNNING",
                        };
                        let body = page_body(query, run, base, state, Some(run.next_token), None);
                        return Page {
                            body,
                            headers: Vec::new(),
                        };
                    }
                    Ok(Err(join)) => Err(QueryError::Execution(format!(
                        "the statement stopped unexpectedly: {join}"
                    ))),
                    Ok(Ok(started)) => started,
                };
                match started {
                    Ok(started) => start_streaming(run, started),
                    Err(err) => run.phase = Phase::Failed(err),
                }
            }
            Phase::Streaming { stream, leftover } => {
                let batch = match leftover.take() {
                    Some(batch) => Some(Ok(batch)),
                    None => tokio::select! {
                        next = stream.next() => next,
                        _ = tokio::time::sleep_until(deadline) => break,
                        _ = query.cancel_requested.notified() => break,
                    },
                };
                match batch {
                    None => {
                        run.phase = Phase::Finished;
                    }
                    Some(Err(err)) => {
                        run.phase = Phase::Failed(QueryError::from(err));
                    }
                    Some(Ok(batch)) => {
                        let room = limits.page_rows - rows.len();
                        let (now, later) = if batch.num_rows() > room {
                            (
                                batch.slice(0, room),
                                Some(batch.slice(room, batch.num_rows() - room)),
                            )
                        } else {
                            (batch, None)
                        };
                        page_bytes += now.get_array_memory_size();
                        match batch_rows(&now) {
                            Ok(mut more) => {
                                run.rows += more.len() as u64;
                                rows.append(&mut more);
                            }
                            Err(err) => {
                                run.phase = Phase::Failed(QueryError::Execution(format!(
                                    "cannot encode the result for Trino: {err}"
                                )));
                                continue;
                            }
                        }
                        if let Phase::Streaming { leftover, .. } = &mut run.phase {
                            *leftover = later;
                        }
                        if rows.len() >= limits.page_rows || page_bytes >= limits.page_bytes {
                            break;
                        }
                    }
                }
            }
            Phase::Finished => {
                query
                    .finished
                    .store(true, std::sync::atomic::Ordering::Relaxed);
                if let Some(progress) = run.progress.take() {
                    run.figures = Some(progress.final_snapshot().await);
                }
                let data = (!rows.is_empty()).then_some(rows);
                let body = page_body(query, run, base, "FINISHED", None, data);
                return Page {
                    body,
                    headers: std::mem::take(&mut run.session_headers),
                };
            }
            Phase::Failed(err) => {
                query
                    .finished
                    .store(true, std::sync::atomic::Ordering::Relaxed);
                let error = crate::trino::errors::trino_error(err);
                let mut body = page_body(query, run, base, "FAILED", None, None);
                body["error"] = error;
                return Page {
                    body,
                    headers: Vec::new(),
                };
            }
        }
    }
    run.refresh_figures().await;
    let data = (!rows.is_empty()).then_some(rows);
    let body = page_body(query, run, base, "RUNNING", Some(run.next_token), data);
    Page {
        body,
        headers: std::mem::take(&mut run.session_headers),
    }
}

/// The statement started: records its columns (or its update) and the session changes.
fn start_streaming(run: &mut Run, started: Started) {
    let Started { execution, session } = started;
    run.bytes_scanned = execution.bytes_scanned;
    run.progress = execution.progress.clone();
    run.session_headers = session_changes(&run.session, &session);
    match execution.rows_written {
        Some(rows) => {
            let update_type = execution.update_kind.unwrap_or_default().to_string();
            if execution.stream.schema().fields().is_empty() {
                run.phase = Phase::Finished;
            } else {
                // Writes answer Trino's one `rows` column.
                run.columns = Some(json!([column_json(
                    "rows",
                    &datafusion::arrow::datatypes::DataType::Int64
                )]));
                run.phase = Phase::Streaming {
                    stream: rows_stream(rows),
                    leftover: None,
                };
            }
            run.update = Some((update_type, rows));
        }
        None => {
            let schema = execution.stream.schema();
            let columns: Vec<Value> = schema
                .fields()
                .iter()
                .map(|field| column_json(field.name(), field.data_type()))
                .collect();
            run.columns = Some(Value::Array(columns));
            run.phase = Phase::Streaming {
                stream: execution.stream,
                leftover: None,
            };
        }
    }
    run.session = session;
}

/// A one-row `rows BIGINT` result.
fn rows_stream(rows: u64) -> SendableRecordBatchStream {
    use datafusion::arrow::array::Int64Array;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    let schema = Arc::new(Schema::new(vec![Field::new(
        "rows",
        DataType::Int64,
        false,
    )]));
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![Arc::new(Int64Array::from(vec![rows as i64]))],
    );
    Box::pin(
        datafusion::physical_plan::stream::RecordBatchStreamAdapter::new(
            schema,
            futures::stream::iter([batch.map_err(Into::into)]),
        ),
    )
}
