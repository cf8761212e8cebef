//! `DELETE` and `UPDATE` on the Iceberg tables of attached catalogs, merge-on-read (as Trino
//! writes them, whatever `write.delete.mode` says): the statement's own scan of the table reads
//! each matching row's data file and position (`_file`, `_pos`, see
//! `osprey_iceberg::IcebergTable::with_row_ids`), the executors write them as position delete
//! files (one per data file, sorted by position, staged like every write), an UPDATE's new
//! rows are written as data files, and the coordinator commits all of them as one snapshot on
//! top of the snapshot the scan read ([`osprey_iceberg::commit_row_delta`]). A change that
//! matches no row commits nothing.

use super::removal::{RemovalMode, RowIdScan, remove_rows};
use super::writes::{
    CatalogTarget, OpenedTable, WriteTable, commit_detached, internal, open, snapshot_read, stage,
    write_data,
};
use crate::error::QueryError;
use crate::lakehouse::committed::CommittedCatalog;
use crate::lakehouse::writes::StagedWrite;
use datafusion::common::ScalarValue;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::datasource::{provider_as_source, source_as_provider};
use datafusion::execution::SessionState;
use datafusion::functions_aggregate::count::count_all;
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder, TableScanBuilder};
use datafusion::physical_plan::collect;
use osprey_iceberg::IcebergTable;
use std::sync::Arc;

/// A row-level change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RowChange {
    /// `DELETE`: the DML input is the table's scan, filtered.
    Delete,
    /// `DELETE` without `WHERE`, or `TRUNCATE TABLE`: the DML input is the table's scan.
    /// Every file goes, metadata only.
    DeleteAll,
    /// `UPDATE`: the DML input is the new values of every column of the rows the filtered
    /// scan selects.
    Update,
}

impl RowChange {
    /// The statement, for messages and the command tag.
    pub(crate) fn statement(self) -> &'static str {
        match self {
            RowChange::Delete | RowChange::DeleteAll => "DELETE",
            RowChange::Update => "UPDATE",
        }
    }

    /// The table property that chooses how rows are removed.
    fn mode_property(self) -> &'static str {
        match self {
            RowChange::Delete | RowChange::DeleteAll => "write.delete.mode",
            RowChange::Update => "write.update.mode",
        }
    }

    /// The table property that sets the change's isolation level.
    fn isolation_property(self) -> &'static str {
        match self {
            RowChange::Delete | RowChange::DeleteAll => "write.delete.isolation-level",
            RowChange::Update => "write.update.isolation-level",
        }
    }
}

/// Applies `change` to `namespace.table`, `input` being the DML plan's input: the changed
/// rows' positions are deleted and, for UPDATE, their new values written, in one snapshot;
/// returns how many rows changed.
pub(super) async fn apply(
    target: &CatalogTarget<'_>,
    name: WriteTable<'_>,
    state: &SessionState,
    committed: &CommittedCatalog,
    input: LogicalPlan,
    change: RowChange,
) -> Result<u64, QueryError> {
    let opened = open(target, name.namespace, name.table).await?;
    if change == RowChange::DeleteAll {
        return delete_all(target, name, state, &opened, input).await;
    }
    let mode = RemovalMode::of(&opened, change.mode_property())?;
    let (input, scan) = with_row_ids(input, change.statement())?;
    // A table with no snapshot has no rows to change.
    let Some(base) = scan.table.snapshot().map(|s| s.snapshot_id) else {
        return Ok(0);
    };
    // An UPDATE's rows are read twice, from the same snapshot: once for their positions,
    // once for their new values.
    let (selected, new_rows) = match (change, input) {
        (RowChange::Delete | RowChange::DeleteAll, input) => (input, None),
        (RowChange::Update, LogicalPlan::Projection(new_values)) => (
            new_values.input.as_ref().clone(),
            Some(LogicalPlan::Projection(new_values)),
        ),
        (RowChange::Update, _) => {
            return Err(internal(
                "an UPDATE whose plan is not a projection of new values",
            ));
        }
    };
    let write = stage(target, committed, &opened).await?;
    let removed = remove_rows(&write, state, &opened, &scan, selected, mode).await?;
    if removed.rows == 0 {
        // Dropping the write deletes whatever it staged.
        return Ok(0);
    }
    let mut data = removed.kept;
    if let Some(new_rows) = new_rows {
        data.extend(write_data(&write, state, &opened, new_rows).await?.0);
    }
    let rows = removed.rows;
    let delta = osprey_iceberg::RowDelta {
        base: Some(base),
        deletes: removed.deletes,
        data,
        data_spec_id: opened.metadata.default_spec_id,
        removed: removed.rewritten,
        branch: name.branch.to_string(),
        isolation_property: change.isolation_property(),
    };
    commit(target, name, &opened, write, delta).await?;
    Ok(rows)
}

/// Removes every file of the snapshot `scan` reads, in one snapshot that lists no file (Java's
/// and Trino's metadata-only delete); returns the rows the snapshot held. Any commit since
/// that snapshot conflicts with it.
async fn delete_all(
    target: &CatalogTarget<'_>,
    name: WriteTable<'_>,
    state: &SessionState,
    opened: &OpenedTable,
    scan: LogicalPlan,
) -> Result<u64, QueryError> {
    let scanned_as = name.scanned_as();
    let Some(Some(base)) = snapshot_read(
        &scan,
        target.catalog_name,
        name.namespace,
        &scanned_as,
        state,
    ) else {
        return Ok(0);
    };
    let count = LogicalPlanBuilder::from(scan)
        .aggregate(Vec::<Expr>::new(), vec![count_all()])?
        .build()?;
    let batches = collect(state.create_physical_plan(&count).await?, state.task_ctx()).await?;
    let rows = match batches
        .first()
        .map(|b| ScalarValue::try_from_array(b.column(0), 0))
    {
        Some(Ok(ScalarValue::Int64(Some(rows)))) => rows.max(0) as u64,
        _ => return Err(internal("a row count that is not a number")),
    };
    if rows == 0 {
        return Ok(0);
    }
    let client = Arc::clone(target.client);
    let (namespace, table, branch) = (
        name.namespace.to_string(),
        name.table.to_string(),
        name.branch.to_string(),
    );
    let store = Arc::clone(&opened.store);
    let spec_id = opened.metadata.default_spec_id;
    // Only metadata is written: the commit deletes what it wrote when it fails.
    let commit = async move {
        let mode = osprey_iceberg::WriteMode::Overwrite { base: Some(base) };
        let target = osprey_iceberg::BranchRef {
            namespace: &namespace,
            name: &table,
            branch: &branch,
        };
        osprey_iceberg::append_files(client.as_ref(), target, store, vec![], spec_id, mode).await
    };
    commit_detached(opened, None, commit).await?;
    Ok(rows)
}

/// Commits `delta` in a task of its own (see `commit_detached`).
pub(super) async fn commit(
    target: &CatalogTarget<'_>,
    name: WriteTable<'_>,
    opened: &OpenedTable,
    write: StagedWrite,
    delta: osprey_iceberg::RowDelta,
) -> Result<(), QueryError> {
    let client = Arc::clone(target.client);
    let (namespace, table) = (name.namespace.to_string(), name.table.to_string());
    let store = Arc::clone(&opened.store);
    let commit = async move {
        osprey_iceberg::commit_row_delta(client.as_ref(), &namespace, &table, store, delta).await
    };
    commit_detached(opened, Some(write), commit).await
}

/// `input` with its scan of the Iceberg table reading `_file` and `_pos` too, and that scan. The DML input is the table's scan under a filter (and, for UPDATE, a
/// projection of the new values); scans inside the filter's subqueries are left alone. A
/// join (`UPDATE ... FROM`) is refused: `statement` names the statement in the message.
fn with_row_ids(
    input: LogicalPlan,
    statement: &str,
) -> Result<(LogicalPlan, RowIdScan), QueryError> {
    let mut joined = false;
    input.apply(|node| {
        joined |= matches!(node, LogicalPlan::Join(_));
        Ok(TreeNodeRecursion::Continue)
    })?;
    if joined {
        return Err(QueryError::NotSupported(format!(
            "{statement} ... FROM other tables on an Iceberg table: write the condition on \
             them as a subquery in WHERE (id IN (SELECT ...), EXISTS (...))"
        )));
    }
    let mut found: Option<RowIdScan> = None;
    let mut refused = None;
    let plan = input
        .transform_up(|node| {
            let LogicalPlan::TableScan(scan) = &node else {
                return Ok(Transformed::no(node.recompute_schema()?));
            };
            let provider = source_as_provider(&scan.source)?;
            let Some(table) = provider.as_ref().downcast_ref::<IcebergTable>() else {
                return Ok(Transformed::no(node));
            };
            let with_ids = match table.clone().with_row_ids() {
                Ok(with_ids) => with_ids,
                Err(err) => {
                    refused = Some(err);
                    return Ok(Transformed::no(node));
                }
            };
            found.get_or_insert_with(|| RowIdScan {
                name: scan.table_name.clone(),
                table: with_ids.clone(),
            });
            let with_ids = Arc::new(with_ids);
            let scan = TableScanBuilder::new(scan.table_name.clone(), provider_as_source(with_ids))
                .with_filters(scan.filters.clone())
                .with_fetch(scan.fetch)
                .build()?;
            Ok(Transformed::yes(LogicalPlan::TableScan(scan)))
        })?
        .data;
    if let Some(err) = refused {
        return Err(QueryError::NotSupported(err.to_string()));
    }
    match found {
        Some(scan) => Ok((plan, scan)),
        None => Err(internal(&format!(
            "a {statement} that does not scan its Iceberg table"
        ))),
    }
}
