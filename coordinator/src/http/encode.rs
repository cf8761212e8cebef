//! Result encodings of the HTTP API: JSON rows, CSV, newline-delimited JSON and the Arrow IPC
//! stream format.
//!
//! JSON numbers are doubles to most readers (JavaScript, jq, many JSON libraries), so the JSON
//! encodings never send a value a double would change: decimals are strings of their exact
//! digits (`"12345678901234567.89"`, as Trino's JSON does), and integers beyond ±(2^53 − 1)
//! are strings of their digits. Smaller integers and floats stay numbers.

use super::ApiError;
use axum::http::StatusCode;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Schema, SchemaRef};
use serde_json::Value;
use std::sync::Arc;

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

/// One JSON object per row, one per line (nulls written explicitly), with exact decimals and
/// safe integers (see the module docs).
pub fn ndjson(batches: &[RecordBatch]) -> Result<Vec<u8>, ApiError> {
    let mut out = Vec::new();
    for line in arrow_ndjson(batches)?
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
    {
        let mut row = serde_json::from_slice::<Value>(line).map_err(encoding_error)?;
        safe_integers(&mut row);
        serde_json::to_writer(&mut out, &row).map_err(encoding_error)?;
        out.push(b'\n');
    }
    Ok(out)
}

/// Arrow's own newline-delimited JSON of `batches`, decimals cast to their exact text first.
fn arrow_ndjson(batches: &[RecordBatch]) -> Result<Vec<u8>, ApiError> {
    let mut writer = datafusion::arrow::json::WriterBuilder::new()
        .with_explicit_nulls(true)
        .build::<_, datafusion::arrow::json::writer::LineDelimited>(Vec::new());
    for batch in batches {
        writer
            .write(&exact_decimals(batch)?)
            .map_err(encoding_error)?;
    }
    writer.finish().map_err(encoding_error)?;
    Ok(writer.into_inner())
}

/// `batch` with its decimal columns as text: a JSON number would be read as a double.
fn exact_decimals(batch: &RecordBatch) -> Result<RecordBatch, ApiError> {
    let is_decimal = |data_type: &DataType| {
        matches!(
            data_type,
            DataType::Decimal32(..)
                | DataType::Decimal64(..)
                | DataType::Decimal128(..)
                | DataType::Decimal256(..)
        )
    };
    if !batch
        .schema()
        .fields()
        .iter()
        .any(|f| is_decimal(f.data_type()))
    {
        return Ok(batch.clone());
    }
    let mut fields = Vec::with_capacity(batch.num_columns());
    let mut columns = Vec::with_capacity(batch.num_columns());
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        if is_decimal(field.data_type()) {
            columns.push(cast(column, &DataType::Utf8).map_err(encoding_error)?);
            fields.push(field.as_ref().clone().with_data_type(DataType::Utf8));
        } else {
            columns.push(column.clone());
            fields.push(field.as_ref().clone());
        }
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(encoding_error)
}

/// The largest integer every JSON reader holds exactly (a double's 53-bit mantissa).
const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// Integers a double would round, as strings of their digits, anywhere in `value`.
fn safe_integers(value: &mut Value) {
    match value {
        Value::Number(number) => {
            let unsafe_integer = number
                .as_i64()
                .map(|n| n.unsigned_abs() > MAX_SAFE_INTEGER)
                .or_else(|| number.as_u64().map(|n| n > MAX_SAFE_INTEGER))
                .unwrap_or(false);
            if unsafe_integer {
                *value = Value::String(number.to_string());
            }
        }
        Value::Array(items) => items.iter_mut().for_each(safe_integers),
        Value::Object(fields) => fields.values_mut().for_each(safe_integers),
        _ => {}
    }
}

/// The rows of `batches` as JSON arrays of values, in column order, with exact decimals and
/// safe integers (see the module docs).
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
        let lines = arrow_ndjson(std::slice::from_ref(&positional))?;
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
            let mut row = Value::Array(row);
            safe_integers(&mut row);
            rows.push(row);
        }
    }
    Ok(Value::Array(rows))
}
