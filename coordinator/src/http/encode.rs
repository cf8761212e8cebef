//! Result encodings of the HTTP API: JSON rows, CSV, newline-delimited JSON and the Arrow IPC
//! stream format.

use super::ApiError;
use axum::http::StatusCode;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use serde_json::Value;

/// The media type of the Arrow IPC stream format.
pub const ARROW_STREAM: &str = "application/vnd.apache.arrow.stream";

fn encoding_error(err: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "ENCODING_FAILED",
        format!("cannot encode the result: {err}"),
    )
}

/// CSV text of `batches`, with a header line when `header`.
pub fn csv(batches: &[RecordBatch], header: bool) -> Result<Vec<u8>, ApiError> {
    let mut writer = datafusion::arrow::csv::WriterBuilder::new()
        .with_header(header)
        .build(Vec::new());
    for batch in batches {
        writer.write(batch).map_err(encoding_error)?;
    }
    Ok(writer.into_inner())
}

/// An Arrow IPC stream (schema, batches, end marker).
pub fn arrow_ipc(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<Vec<u8>, ApiError> {
    let mut writer = datafusion::arrow::ipc::writer::StreamWriter::try_new(Vec::new(), schema)
        .map_err(encoding_error)?;
    for batch in batches {
        writer.write(batch).map_err(encoding_error)?;
    }
    writer.finish().map_err(encoding_error)?;
    writer.into_inner().map_err(encoding_error)
}

/// One JSON object per row, one per line (nulls written explicitly).
pub fn ndjson(batches: &[RecordBatch]) -> Result<Vec<u8>, ApiError> {
    let mut writer = datafusion::arrow::json::WriterBuilder::new()
        .with_explicit_nulls(true)
        .build::<_, datafusion::arrow::json::writer::LineDelimited>(Vec::new());
    for batch in batches {
        writer.write(batch).map_err(encoding_error)?;
    }
    writer.finish().map_err(encoding_error)?;
    Ok(writer.into_inner())
}

/// The rows of `batches` as JSON arrays of values, in column order.
pub fn json_rows(batches: &[RecordBatch]) -> Result<Value, ApiError> {
    let mut rows = Vec::new();
    for batch in batches {
        // Encoded under positional names, so duplicate column names keep their own values.
        let names: Vec<String> = (0..batch.num_columns()).map(|i| format!("c{i}")).collect();
        let fields: Vec<_> = batch
            .schema()
            .fields()
            .iter()
            .zip(&names)
            .map(|(field, name)| field.as_ref().clone().with_name(name))
            .collect();
        let positional = RecordBatch::try_new(
            std::sync::Arc::new(datafusion::arrow::datatypes::Schema::new(fields)),
            batch.columns().to_vec(),
        )
        .map_err(encoding_error)?;
        let lines = ndjson(std::slice::from_ref(&positional))?;
        for line in lines.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let Value::Object(mut object) =
                serde_json::from_slice::<Value>(line).map_err(encoding_error)?
            else {
                return Err(encoding_error("a row did not encode as an object"));
            };
            let row: Vec<Value> = names
                .iter()
                .map(|name| object.get(name).cloned().unwrap_or(Value::Null))
                .collect();
            object.clear();
            rows.push(Value::Array(row));
        }
    }
    Ok(Value::Array(rows))
}
