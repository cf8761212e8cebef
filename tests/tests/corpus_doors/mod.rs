//! The corpus's clients, one per front door, each driving the door with a client nobody on the
//! team wrote (arrow-flight's Flight SQL client, reqwest for the HTTP API, the `trino` Python
//! client), and the one rendering of Arrow values every runner compares.

pub mod flight;
pub mod http;
pub mod login;
pub mod trino;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use sqllogictest::{DBOutput, DefaultColumnType};

/// sqllogictest's column type for an Arrow type.
pub fn column_type(data_type: &DataType) -> DefaultColumnType {
    if data_type.is_integer() {
        DefaultColumnType::Integer
    } else if data_type.is_floating() || matches!(data_type, DataType::Decimal128(..)) {
        DefaultColumnType::FloatingPoint
    } else if matches!(
        data_type,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    ) {
        DefaultColumnType::Text
    } else {
        DefaultColumnType::Any
    }
}

/// Every value as text: `NULL` for nulls, `(empty)` for empty strings (an empty field would
/// not survive the file format).
pub fn text_rows(batches: &[RecordBatch]) -> Result<Vec<Vec<String>>, ArrowError> {
    let options = FormatOptions::default().with_null("NULL");
    let mut rows = Vec::new();
    for batch in batches {
        let formatters = batch
            .columns()
            .iter()
            .map(|column| ArrayFormatter::try_new(column.as_ref(), &options))
            .collect::<Result<Vec<_>, _>>()?;
        for row in 0..batch.num_rows() {
            rows.push(
                formatters
                    .iter()
                    .map(|formatter| match formatter.value(row).to_string() {
                        text if text.is_empty() => "(empty)".to_string(),
                        text => text,
                    })
                    .collect(),
            );
        }
    }
    Ok(rows)
}

/// What a door's Arrow answer means to sqllogictest: a statement that ran while planned (DDL,
/// a write) answers its row count as one UInt64 `count` column, or nothing.
pub fn arrow_output(
    schema: &Schema,
    batches: &[RecordBatch],
) -> Result<DBOutput<DefaultColumnType>, ArrowError> {
    let fields = schema.fields();
    if fields.is_empty() {
        return Ok(DBOutput::StatementComplete(0));
    }
    if fields.len() == 1
        && fields[0].name() == "count"
        && fields[0].data_type() == &DataType::UInt64
    {
        let count = batches
            .first()
            .and_then(|batch| {
                batch
                    .column(0)
                    .as_any()
                    .downcast_ref::<datafusion::arrow::array::UInt64Array>()
                    .map(|counts| counts.value(0))
            })
            .unwrap_or(0);
        return Ok(DBOutput::StatementComplete(count));
    }
    let types = fields
        .iter()
        .map(|field| column_type(field.data_type()))
        .collect();
    Ok(DBOutput::Rows {
        types,
        rows: text_rows(batches)?,
    })
}
