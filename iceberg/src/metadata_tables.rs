//! A table's metadata as tables, with Trino's names and columns: `"t$snapshots"`,
//! `"t$history"`, `"t$refs"`, `"t$manifests"`, `"t$files"` and `"t$partitions"` (the last
//! three of the snapshot the table reads).

use crate::manifest::FileContent;
use crate::metadata::SnapshotRefKind;
use crate::plan::{snapshot_files, snapshot_manifests};
use crate::scan::table::IcebergTable;
use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Int32Array, Int64Array, MapBuilder, StringArray, StringBuilder,
    TimestampMillisecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::Result;
use datafusion::datasource::MemTable;
use object_store::ObjectStore;
use std::collections::HashSet;
use std::sync::Arc;

/// The metadata tables an Iceberg table has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataTable {
    /// Every snapshot: when, its parent, operation, manifest list and summary.
    Snapshots,
    /// When each snapshot became current, and whether it is an ancestor of the current one.
    History,
    /// Branches and tags.
    Refs,
    /// The manifests of the snapshot read, with their file and row counts.
    Manifests,
    /// The live data and delete files of the snapshot read.
    Files,
    /// The partitions of the snapshot read, with their rows, files and bytes.
    Partitions,
}

impl MetadataTable {
    /// The metadata tables' names, as they follow `$`.
    pub const NAMES: [&'static str; 6] = [
        "snapshots",
        "history",
        "refs",
        "manifests",
        "files",
        "partitions",
    ];

    /// The metadata table `name` (what follows `$`, any case), if there is one.
    pub fn parse(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "snapshots" => Some(Self::Snapshots),
            "history" => Some(Self::History),
            "refs" => Some(Self::Refs),
            "manifests" => Some(Self::Manifests),
            "files" => Some(Self::Files),
            "partitions" => Some(Self::Partitions),
            _ => None,
        }
    }

    /// This metadata table of `table`, read now; `store` holds the table's files.
    pub async fn read(self, table: &IcebergTable, store: &dyn ObjectStore) -> Result<MemTable> {
        let batch = match self {
            Self::Snapshots => snapshots(table)?,
            Self::History => history(table)?,
            Self::Refs => refs(table)?,
            Self::Manifests => manifests(table, store).await?,
            Self::Files => files(table, store).await?,
            Self::Partitions => crate::partitions_table::partitions(table, store).await?,
        };
        MemTable::try_new(batch.schema(), vec![vec![batch]])
    }
}

fn utc_ms(name: &str) -> Field {
    Field::new(
        name,
        DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
        false,
    )
}

fn batch(fields: Vec<Field>, columns: Vec<ArrayRef>) -> Result<RecordBatch> {
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns,
    )?)
}

fn snapshots(table: &IcebergTable) -> Result<RecordBatch> {
    let metadata = table.metadata();
    let mut summary = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
    for snapshot in &metadata.snapshots {
        // The operation has a column of its own.
        for (key, value) in snapshot
            .summary
            .iter()
            .filter(|(key, _)| *key != "operation")
        {
            summary.keys().append_value(key);
            summary.values().append_value(value);
        }
        summary.append(true)?;
    }
    let snapshots = &metadata.snapshots;
    let summary = Arc::new(summary.finish()) as ArrayRef;
    batch(
        vec![
            utc_ms("committed_at"),
            Field::new("snapshot_id", DataType::Int64, false),
            Field::new("parent_id", DataType::Int64, true),
            Field::new("operation", DataType::Utf8, true),
            Field::new("manifest_list", DataType::Utf8, true),
            Field::new("summary", summary.data_type().clone(), true),
        ],
        vec![
            Arc::new(
                TimestampMillisecondArray::from_iter_values(
                    snapshots.iter().map(|s| s.timestamp_ms),
                )
                .with_timezone("UTC"),
            ),
            Arc::new(Int64Array::from_iter_values(
                snapshots.iter().map(|s| s.snapshot_id),
            )),
            Arc::new(Int64Array::from_iter(
                snapshots.iter().map(|s| s.parent_snapshot_id),
            )),
            Arc::new(StringArray::from_iter(
                snapshots.iter().map(|s| s.summary.get("operation")),
            )),
            Arc::new(StringArray::from_iter(
                snapshots.iter().map(|s| s.manifest_list.as_deref()),
            )),
            summary,
        ],
    )
}

fn history(table: &IcebergTable) -> Result<RecordBatch> {
    let metadata = table.metadata();
    // The current snapshot and its ancestors.
    let mut ancestors = HashSet::new();
    let mut next = metadata.current_snapshot_id;
    while let Some(id) = next {
        if !ancestors.insert(id) {
            break;
        }
        next = metadata.snapshot(id).and_then(|s| s.parent_snapshot_id);
    }
    let log: Vec<(i64, i64)> = if metadata.snapshot_log.is_empty() {
        // Metadata without a log: the snapshots in commit order.
        metadata
            .snapshots
            .iter()
            .map(|s| (s.timestamp_ms, s.snapshot_id))
            .collect()
    } else {
        metadata.snapshot_log.clone()
    };
    batch(
        vec![
            utc_ms("made_current_at"),
            Field::new("snapshot_id", DataType::Int64, false),
            Field::new("parent_id", DataType::Int64, true),
            Field::new("is_current_ancestor", DataType::Boolean, false),
        ],
        vec![
            Arc::new(
                TimestampMillisecondArray::from_iter_values(log.iter().map(|(at, _)| *at))
                    .with_timezone("UTC"),
            ),
            Arc::new(Int64Array::from_iter_values(log.iter().map(|(_, id)| *id))),
            Arc::new(Int64Array::from_iter(log.iter().map(|(_, id)| {
                metadata.snapshot(*id).and_then(|s| s.parent_snapshot_id)
            }))),
            Arc::new(BooleanArray::from_iter(
                log.iter().map(|(_, id)| Some(ancestors.contains(id))),
            )),
        ],
    )
}

fn refs(table: &IcebergTable) -> Result<RecordBatch> {
    let refs = &table.metadata().refs;
    batch(
        vec![
            Field::new("name", DataType::Utf8, false),
            Field::new("type", DataType::Utf8, false),
            Field::new("snapshot_id", DataType::Int64, false),
        ],
        vec![
            Arc::new(StringArray::from_iter_values(refs.keys())),
            Arc::new(StringArray::from_iter_values(refs.values().map(
                |r| match r.kind {
                    SnapshotRefKind::Branch => "BRANCH",
                    SnapshotRefKind::Tag => "TAG",
                },
            ))),
            Arc::new(Int64Array::from_iter_values(
                refs.values().map(|r| r.snapshot_id),
            )),
        ],
    )
}

async fn manifests(table: &IcebergTable, store: &dyn ObjectStore) -> Result<RecordBatch> {
    let manifests = match table.snapshot() {
        Some(snapshot) => {
            snapshot_manifests(store, snapshot, |f| table.location().path_of(f)).await?
        }
        None => Vec::new(),
    };
    let long = |name: &str| Field::new(name, DataType::Int64, true);
    let column = |f: fn(&crate::manifest::ManifestCounts) -> Option<i64>| -> ArrayRef {
        Arc::new(Int64Array::from_iter(
            manifests.iter().map(|m| f(&m.counts)),
        ))
    };
    batch(
        vec![
            Field::new("path", DataType::Utf8, false),
            Field::new("length", DataType::Int64, false),
            Field::new("partition_spec_id", DataType::Int32, false),
            Field::new("added_snapshot_id", DataType::Int64, false),
            Field::new("content", DataType::Int32, false),
            long("added_data_files_count"),
            long("added_rows_count"),
            long("existing_data_files_count"),
            long("existing_rows_count"),
            long("deleted_data_files_count"),
            long("deleted_rows_count"),
        ],
        vec![
            Arc::new(StringArray::from_iter_values(
                manifests.iter().map(|m| m.path.as_str()),
            )),
            Arc::new(Int64Array::from_iter_values(
                manifests.iter().map(|m| m.length),
            )),
            Arc::new(Int32Array::from_iter_values(
                manifests.iter().map(|m| m.partition_spec_id),
            )),
            Arc::new(Int64Array::from_iter_values(
                manifests.iter().map(|m| m.added_snapshot_id),
            )),
            Arc::new(Int32Array::from_iter_values(manifests.iter().map(
                |m| match m.content {
                    crate::manifest::ManifestContent::Data => 0,
                    crate::manifest::ManifestContent::Deletes => 1,
                },
            ))),
            column(|c| c.added_files),
            column(|c| c.added_rows),
            column(|c| c.existing_files),
            column(|c| c.existing_rows),
            column(|c| c.deleted_files),
            column(|c| c.deleted_rows),
        ],
    )
}

async fn files(table: &IcebergTable, store: &dyn ObjectStore) -> Result<RecordBatch> {
    let files = match table.snapshot() {
        Some(snapshot) => snapshot_files(store, snapshot, |f| table.location().path_of(f)).await?,
        None => Default::default(),
    };
    let all: Vec<_> = files.data.iter().chain(&files.deletes).collect();
    batch(
        vec![
            Field::new("content", DataType::Int32, false),
            Field::new("file_path", DataType::Utf8, false),
            Field::new("file_format", DataType::Utf8, false),
            Field::new("spec_id", DataType::Int32, false),
            Field::new("record_count", DataType::Int64, false),
            Field::new("file_size_in_bytes", DataType::Int64, false),
        ],
        vec![
            Arc::new(Int32Array::from_iter_values(all.iter().map(
                |f| match f.file.content {
                    FileContent::Data => 0,
                    FileContent::PositionDeletes => 1,
                    FileContent::EqualityDeletes => 2,
                },
            ))),
            Arc::new(StringArray::from_iter_values(
                all.iter().map(|f| f.file.file_path.as_str()),
            )),
            Arc::new(StringArray::from_iter_values(
                all.iter().map(|f| f.file.file_format.as_str()),
            )),
            Arc::new(Int32Array::from_iter_values(
                all.iter().map(|f| f.partition_spec_id),
            )),
            Arc::new(Int64Array::from_iter_values(
                all.iter().map(|f| f.file.record_count),
            )),
            Arc::new(Int64Array::from_iter_values(
                all.iter().map(|f| f.file.file_size_in_bytes),
            )),
        ],
    )
}
