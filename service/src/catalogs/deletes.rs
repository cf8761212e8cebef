//! `DELETE FROM catalog.namespace.table [WHERE ...]` on the Iceberg tables of attached
//! catalogs, merge-on-read: the statement's own scan of the table reads each matching row's
//! data file and position (`_file`, `_pos`, see `osprey_iceberg::IcebergTable::with_row_ids`),
//! the executors write them as position delete files (one per data file, sorted by position,
//! staged like every write), and the coordinator commits them as one `delete` snapshot on top
//! of the snapshot the scan read ([`osprey_iceberg::delete_rows`]). A delete that matches no
//! row commits nothing.

use super::writes::{CatalogTarget, commit_detached, file_location, open, partition_values, stage};
use crate::error::QueryError;
use crate::lakehouse::committed::CommittedCatalog;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DataFusionError, ScalarValue};
use datafusion::datasource::{provider_as_source, source_as_provider};
use datafusion::execution::SessionState;
use datafusion::logical_expr::{LogicalPlan, LogicalPlanBuilder, TableScanBuilder, col};
use osprey_engine::WriteFormat;
use osprey_iceberg::{FILE_COLUMN, IcebergTable, POSITION_COLUMN};
use std::sync::Arc;

/// Deletes the rows `input` (the DML plan's input: the table's scan, filtered) selects from
/// `namespace.table`; returns how many.
pub(super) async fn delete(
    target: &CatalogTarget<'_>,
    namespace: &str,
    table: &str,
    state: &SessionState,
    committed: &CommittedCatalog,
    input: LogicalPlan,
) -> Result<u64, QueryError> {
    let opened = open(target, namespace, table).await?;
    let (input, base) = with_row_ids(input)?;
    // A table with no snapshot has no rows to delete.
    let Some(base) = base else {
        return Ok(0);
    };
    let positions = LogicalPlanBuilder::from(input)
        .project(vec![
            col(FILE_COLUMN).alias("file_path"),
            col(POSITION_COLUMN).alias("pos"),
            // The partition key of the write: one delete file per data file.
            col(FILE_COLUMN).alias("__osprey_partition_0"),
        ])?
        .build()?;
    let write = stage(target, committed, &opened).await?;
    let file_schema = osprey_iceberg::position_delete_schema();
    let files = write
        .run_as(
            state,
            positions,
            WriteFormat::Parquet,
            Some(&file_schema),
            1,
            vec![1],
        )
        .await?;
    let rows: u64 = files.iter().map(|(file, _)| file.row_count).sum();
    if rows == 0 {
        // Dropping the write deletes whatever it staged.
        return Ok(0);
    }
    let deletes = files
        .iter()
        .map(|(file, key)| {
            let data_file = match key.as_deref().map(partition_values).transpose()? {
                Some(values) => match values.as_slice() {
                    [ScalarValue::Utf8(Some(path))] => path.clone(),
                    _ => return Err(internal("a position delete file's key is not a path")),
                },
                None => return Err(internal("a position delete file came without its key")),
            };
            Ok(osprey_iceberg::PositionDeleteFile {
                location: file_location(&opened.location, &file.path),
                size: file.size_bytes,
                data_file,
            })
        })
        .collect::<Result<Vec<_>, QueryError>>()?;
    let client = Arc::clone(target.client);
    let (namespace, table) = (namespace.to_string(), table.to_string());
    let store = Arc::clone(&opened.store);
    let commit = async move {
        osprey_iceberg::delete_rows(client.as_ref(), &namespace, &table, store, deletes, base).await
    };
    commit_detached(&opened, write, commit).await?;
    Ok(rows)
}

fn internal(message: &str) -> QueryError {
    QueryError::from(DataFusionError::Internal(message.to_string()))
}

/// `input` with its scan of the Iceberg table reading `_file` and `_pos` too, and the snapshot
/// that scan reads. The DML input is the table's scan under a filter (and a limit); scans
/// inside the filter's subqueries are left alone.
fn with_row_ids(input: LogicalPlan) -> Result<(LogicalPlan, Option<i64>), QueryError> {
    let mut base: Option<Option<i64>> = None;
    let plan = input
        .transform_up(|node| {
            let LogicalPlan::TableScan(scan) = &node else {
                return Ok(Transformed::no(node.recompute_schema()?));
            };
            let provider = source_as_provider(&scan.source)?;
            let Some(table) = provider.as_ref().downcast_ref::<IcebergTable>() else {
                return Ok(Transformed::no(node));
            };
            base = Some(table.snapshot().map(|s| s.snapshot_id));
            let with_ids = Arc::new(table.clone().with_row_ids());
            let scan = TableScanBuilder::new(scan.table_name.clone(), provider_as_source(with_ids))
                .with_filters(scan.filters.clone())
                .with_fetch(scan.fetch)
                .build()?;
            Ok(Transformed::yes(LogicalPlan::TableScan(scan)))
        })?
        .data;
    match base {
        Some(base) => Ok((plan, base)),
        None => Err(internal("a DELETE that does not scan its Iceberg table")),
    }
}
