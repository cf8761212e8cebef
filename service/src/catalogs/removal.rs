//! How DELETE, UPDATE and MERGE take rows out of the data files that hold them, as the table's
//! `write.delete.mode`, `write.update.mode` and `write.merge.mode` say:
//!
//! - `merge-on-read` (the default, as Trino and Spark): the rows' positions are written as
//!   position delete files, and readers skip them;
//! - `copy-on-write`: every data file with a changed row is rewritten without it. The files
//!   are found first (one pass over the changed rows, grouped by file); then the rows of those
//!   files that the change does not touch are read (a scan of only those files, anti-joined
//!   with the changed rows' positions) and written as new data files; the old files leave the
//!   table in the statement's one snapshot. Reads pay nothing afterwards; the write pays for
//!   every untouched row of a touched file. On a format 3 table the untouched rows keep their
//!   row ids and last-updated sequence numbers (written into the new files); changed rows
//!   are written as new rows, with new ids, as the spec allows.

use super::writes::{
    OpenedTable, file_location, internal, keeps_lineage, partition_values, write_copied_data,
};
use crate::error::QueryError;
use crate::lakehouse::writes::StagedWrite;
use datafusion::catalog::TableProvider;
use datafusion::common::{JoinType, ScalarValue, TableReference};
use datafusion::datasource::provider_as_source;
use datafusion::execution::SessionState;
use datafusion::functions_aggregate::count::count_all;
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder, col};
use datafusion::physical_plan::collect;
use osprey_engine::WriteFormat;
use osprey_iceberg::{
    FILE_COLUMN, IcebergTable, NewDataFile, POSITION_COLUMN, PositionDeleteFile, row_lineage_values,
};
use std::collections::BTreeSet;
use std::sync::Arc;

/// The changed rows' file and position, renamed apart from the scan they are joined to.
const CHANGED_FILE: &str = "__osprey_changed_file";
const CHANGED_POSITION: &str = "__osprey_changed_pos";

/// How a change removes rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RemovalMode {
    /// Position delete files.
    MergeOnRead,
    /// Data files rewritten.
    CopyOnWrite,
}

impl RemovalMode {
    /// The mode the table property `property` (`write.delete.mode`, ...) chooses.
    pub(super) fn of(opened: &OpenedTable, property: &str) -> Result<Self, QueryError> {
        match opened.metadata.properties.get(property).map(String::as_str) {
            None | Some("merge-on-read") => Ok(RemovalMode::MergeOnRead),
            Some("copy-on-write") => Ok(RemovalMode::CopyOnWrite),
            Some(other) => Err(QueryError::InvalidData(format!(
                "{}: the table property {property} is {other:?}; it takes 'merge-on-read' or \
                 'copy-on-write' (ALTER TABLE ... SET PROPERTIES \"{property}\" = '...')",
                opened.subject
            ))),
        }
    }
}

/// The table a change reads, with row ids, and the name its scan goes by.
pub(super) struct RowIdScan {
    /// The name.
    pub name: TableReference,
    /// The table, at the snapshot the statement read, with `_file` and `_pos`.
    pub table: IcebergTable,
}

/// What taking the rows out wrote.
#[derive(Default)]
pub(super) struct RemovedRows {
    /// Position delete files (merge-on-read).
    pub deletes: Vec<PositionDeleteFile>,
    /// The untouched rows of rewritten files, as new data files (copy-on-write).
    pub kept: Vec<NewDataFile>,
    /// The data files rewritten (copy-on-write).
    pub rewritten: Vec<String>,
    /// The rows taken out.
    pub rows: u64,
}

/// Takes the rows of `changed` (a plan over `scan` with row ids) out of the table as `mode`
/// says, writing through `write`.
pub(super) async fn remove_rows(
    write: &StagedWrite,
    state: &SessionState,
    opened: &OpenedTable,
    scan: &RowIdScan,
    changed: LogicalPlan,
    mode: RemovalMode,
) -> Result<RemovedRows, QueryError> {
    if mode == RemovalMode::MergeOnRead {
        let (deletes, rows) = write_positions(write, state, opened, changed).await?;
        return Ok(RemovedRows {
            deletes,
            rows,
            ..RemovedRows::default()
        });
    }
    // Pass 1: the files with changed rows, and how many rows change.
    let per_file = LogicalPlanBuilder::from(changed.clone())
        .aggregate(vec![col(FILE_COLUMN)], vec![count_all()])?
        .build()?;
    let batches = collect(
        state.create_physical_plan(&per_file).await?,
        state.task_ctx(),
    )
    .await?;
    let mut files = BTreeSet::new();
    let mut rows = 0u64;
    for batch in &batches {
        for row in 0..batch.num_rows() {
            match (
                ScalarValue::try_from_array(batch.column(0), row)?,
                ScalarValue::try_from_array(batch.column(1), row)?,
            ) {
                (ScalarValue::Utf8(Some(file)), ScalarValue::Int64(Some(count))) => {
                    files.insert(file);
                    rows += count.max(0) as u64;
                }
                _ => return Err(internal("a changed row without its data file")),
            }
        }
    }
    if files.is_empty() {
        return Ok(RemovedRows::default());
    }
    // Pass 2: the other rows of those files, written again; on a format 3 table with the ids
    // they had.
    let lineage = keeps_lineage(opened);
    let mut only = scan.table.clone().with_only_files(files.clone());
    if lineage {
        only = only.with_row_lineage().map_err(|err| opened.failed(err))?;
    }
    let mut own_columns: Vec<Expr> = TableProvider::schema(&scan.table)
        .fields()
        .iter()
        .map(|field| field.name())
        .filter(|name| *name != FILE_COLUMN && *name != POSITION_COLUMN)
        .map(|name| {
            Expr::Column(datafusion::common::Column::new(
                Some(scan.name.clone()),
                name,
            ))
        })
        .collect();
    if lineage {
        own_columns.extend(row_lineage_values());
    }
    let changed_positions = LogicalPlanBuilder::from(changed)
        .project(vec![
            col(FILE_COLUMN).alias(CHANGED_FILE),
            col(POSITION_COLUMN).alias(CHANGED_POSITION),
        ])?
        .build()?;
    let kept =
        LogicalPlanBuilder::scan(scan.name.clone(), provider_as_source(Arc::new(only)), None)?
            .join(
                changed_positions,
                JoinType::LeftAnti,
                (
                    vec![FILE_COLUMN, POSITION_COLUMN],
                    vec![CHANGED_FILE, CHANGED_POSITION],
                ),
                None,
            )?
            .project(own_columns)?
            .build()?;
    let (kept, _) = write_copied_data(write, state, opened, kept).await?;
    Ok(RemovedRows {
        kept,
        rewritten: files.into_iter().collect(),
        rows,
        ..RemovedRows::default()
    })
}

/// Writes the positions of the rows `selected` (a plan over the table's scan with row ids)
/// as position delete files, one per data file, sorted by position; returns them and the
/// rows they delete.
pub(super) async fn write_positions(
    write: &StagedWrite,
    state: &SessionState,
    opened: &OpenedTable,
    selected: LogicalPlan,
) -> Result<(Vec<osprey_iceberg::PositionDeleteFile>, u64), QueryError> {
    let positions = LogicalPlanBuilder::from(selected)
        .project(vec![
            col(FILE_COLUMN).alias("file_path"),
            col(POSITION_COLUMN).alias("pos"),
            // The partition key of the write: one delete file per data file.
            col(FILE_COLUMN).alias("__osprey_partition_0"),
        ])?
        .build()?;
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
    let rows = files.iter().map(|(file, _)| file.row_count).sum();
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
    Ok((deletes, rows))
}
