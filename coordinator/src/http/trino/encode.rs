//! The JSON of the Trino protocol: columns with Trino's type names, rows as JSON arrays, and
//! the body of one answer with its URIs and stats.

use super::statement::{Run, TrinoQuery};
use crate::trino::types::{trino_json_values, trino_type_name, trino_type_signature};
use datafusion::arrow::array::RecordBatch;
use serde_json::{Value, json};

pub(super) fn column_json(name: &str, data_type: &datafusion::arrow::datatypes::DataType) -> Value {
    json!({
        "name": name,
        "type": trino_type_name(data_type),
        "typeSignature": trino_type_signature(data_type),
    })
}

/// A batch as Trino's `data`: one JSON array per row.
pub(super) fn batch_rows(
    batch: &RecordBatch,
) -> Result<Vec<Value>, datafusion::arrow::error::ArrowError> {
    let mut columns = batch
        .columns()
        .iter()
        .map(|column| trino_json_values(column).map(Vec::into_iter))
        .collect::<Result<Vec<_>, _>>()?;
    // Values move from the columns into the rows (no copies).
    Ok((0..batch.num_rows())
        .map(|_| {
            Value::Array(
                columns
                    .iter_mut()
                    .map(|column| column.next().unwrap_or(Value::Null))
                    .collect(),
            )
        })
        .collect())
}

/// The JSON of one answer: id, URIs, columns, data, stats.
pub(super) fn page_body(
    query: &TrinoQuery,
    run: &Run,
    base: &str,
    state: &str,
    next_token: Option<u64>,
    data: Option<Vec<Value>>,
) -> Value {
    let elapsed = query.started.elapsed().as_millis() as u64;
    let splits_total = run.figures.map_or(0, |f| f.tasks_total);
    let splits_done = match state {
        "FINISHED" => splits_total,
        _ => run.figures.map_or(0, |f| f.tasks_done.min(splits_total)),
    };
    let mut body = json!({
        "id": query.id,
        "infoUri": format!("{base}/v1/queries?limit=100"),
        "stats": {
            "state": state,
            "queued": state == "QUEUED",
            "scheduled": state != "QUEUED",
            "wallTimeMillis": elapsed,
            "elapsedTimeMillis": elapsed,
            "queuedTimeMillis": query.queue.queued_ms(),
            // Rows and bytes read by scans so far, measured on the executors; before the
            // plan runs, what is known: rows returned and bytes planned.
            "processedRows": run.figures.map_or(run.rows, |f| f.rows_read),
            "processedBytes": run.figures.map_or(run.bytes_scanned, |f| f.bytes_read),
            "physicalInputBytes": run.figures.map_or(run.bytes_scanned, |f| f.bytes_read),
            // Osprey's executor tasks stand in for Trino's splits (the Trino CLI's progress
            // bar is drawn from these).
            "totalSplits": splits_total,
            "completedSplits": splits_done,
            "runningSplits": splits_total.saturating_sub(splits_done),
            "queuedSplits": 0,
        },
        "warnings": [],
    });
    if let Some(token) = next_token {
        body["nextUri"] = json!(format!(
            "{base}/v1/statement/executing/{}/{}/{token}",
            query.id, query.slug
        ));
    }
    if let Some(columns) = &run.columns {
        body["columns"] = columns.clone();
    }
    if let Some(data) = data {
        body["data"] = Value::Array(data);
    }
    if let Some((update_type, count)) = &run.update {
        body["updateType"] = json!(update_type);
        body["updateCount"] = json!(count);
    }
    body
}
