//! Writing Iceberg tables, format version 2: data files appended or replacing the table's
//! (`INSERT`, `INSERT OVERWRITE`, CTAS) and position delete files (`DELETE`), each change
//! committed as one snapshot through the table's catalog ([`commit`]).
//!
//! Osprey's executors write the Parquet files (with the table's field ids, one partition per
//! file, whose values the writer reports); here the coordinator reads their footers for the
//! manifests' metrics and commits them. An append never conflicts with another commit: when
//! another writer came first, the snapshot is rebuilt on top of it, up to
//! `commit.retry.num-retries` times (default 4) with a backoff from
//! `commit.retry.min-wait-ms` (100) to `commit.retry.max-wait-ms` (60 000). The written files
//! are the caller's to delete when a commit fails, except after
//! [`IcebergError::CommitStateUnknown`]: the commit may have happened, so nothing is deleted.
//!
//! Tables partitioned by any spec of top-level columns are written ([`partitioning`]); other
//! tables are refused by name.

mod alter;
mod commit;
mod compact;
mod expire;
mod manifest_rewrite;
mod manifests;
mod metadata_commit;
mod metrics;
mod new_table;
mod partition_values;
mod partitioning;
mod refs;
mod replace_partitions;
mod replace_table;
mod row_delta;
mod schema_evolution;
mod served;
mod snapshot;
mod storage;
mod vectors;

pub use alter::{TableAlteration, alter_table};
pub use compact::{CompactionPlan, Rewrite, commit_rewrite, plan_compaction, rewrite_manifests};
pub use expire::{ExpiryOutcome, OrphanOutcome, expire_snapshots, remove_orphan_files};
pub use manifests::AddedFile;
pub use metrics::{WrittenMetrics, parquet_metrics};
pub use new_table::{NewTable, create_table, schema_from_arrow};
pub use partitioning::{WritePartitionField, write_spec};
pub use refs::{RefChange, drop_ref, fast_forward, set_ref};
pub use replace_partitions::replace_partitions;
pub use replace_table::{Replacement, commit_replacement, prepare_replacement};
pub use row_delta::{PositionDeleteFile, RowDelta, commit_row_delta, position_delete_schema};
pub use schema_evolution::ColumnChange;
pub use served::{CommittedTable, commit_requested, create_requested, requested_definition};
use snapshot::AppendSummary;

pub(crate) use metadata_commit::now_ms;

use crate::catalog::IcebergCatalog;
use crate::error::IcebergError;
use crate::metadata::TableMetadata;
use crate::scan::location::StoreLocation;
use commit::{Change, ManifestGroup};
use datafusion::common::ScalarValue;
use metadata_commit::load;
use object_store::ObjectStore;
use std::sync::Arc;

/// What a commit committed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppendOutcome {
    /// The new snapshot.
    pub snapshot_id: i64,
    /// How many attempts the commit took.
    pub attempts: u32,
    /// Manifests merged into others (`rewrite_manifests`).
    pub manifests_rewritten: u64,
    /// Manifests written for them.
    pub manifests_added: u64,
}

/// Why a table cannot be written yet, if it cannot.
pub fn check_writable(metadata: &TableMetadata) -> Result<(), IcebergError> {
    if !matches!(metadata.format_version, 2 | 3) {
        return Err(IcebergError::Unsupported(format!(
            "format version {}, which Osprey does not write (it writes versions 2 and 3)",
            metadata.format_version
        )));
    }
    write_spec(metadata).map(|_| ())
}

/// A data file a write produced, ready to commit.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDataFile {
    /// Its full location, under the table's location.
    pub location: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its partition values, one per field of the table's default spec (in order; a null
    /// scalar for a null value), as the writer computed them.
    pub partition: Vec<ScalarValue>,
}

/// How a write's files join the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// Added to the table's files (`INSERT INTO`).
    Append,
    /// Replace every file of the table (`INSERT OVERWRITE`), whose current snapshot was
    /// `base` (`None`: no snapshot) when the statement read it. It conflicts with any commit
    /// since: replacing that commit's rows unseen would lose them.
    Overwrite {
        /// The snapshot the statement read.
        base: Option<i64>,
    },
    /// Delete rows of the files of `base`, the snapshot the statement read (`DELETE`). It
    /// conflicts with any commit since that is not an append, and, with `serializable`
    /// isolation (`write.delete.isolation-level`, the default), with appends too.
    RowDelta {
        /// The snapshot the statement read.
        base: Option<i64>,
        /// Whether rows appended since `base` conflict.
        serializable: bool,
    },
}

impl WriteMode {
    fn replaces_all(self) -> bool {
        matches!(self, WriteMode::Overwrite { .. })
    }
}

/// A table and the branch a commit goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BranchRef<'a> {
    /// The table's namespace.
    pub namespace: &'a str,
    /// The table's name.
    pub name: &'a str,
    /// The branch: `main`, or one `ALTER TABLE ... CREATE BRANCH` made.
    pub branch: &'a str,
}

/// Commits `files` (Parquet files already written under the table's location, each holding
/// rows of one partition of the default spec `spec_id`) to the branch `target` of `catalog`
/// as one snapshot; `store` is the table's object store.
pub async fn append(
    catalog: &dyn IcebergCatalog,
    target: BranchRef<'_>,
    store: Arc<dyn ObjectStore>,
    files: Vec<NewDataFile>,
    spec_id: i32,
    mode: WriteMode,
) -> Result<AppendOutcome, IcebergError> {
    let BranchRef {
        namespace,
        name,
        branch,
    } = target;
    let current = load(catalog, namespace, name, store.as_ref()).await?;
    check_writable(&current.metadata)?;
    let group = data_group(&store, &current.metadata, files, spec_id).await?;
    let mut summary = AppendSummary {
        replaces_all: mode.replaces_all(),
        ..AppendSummary::default()
    };
    summary.add_data(&group.files);
    let change = Change {
        groups: vec![group],
        mode,
        summary,
        schema_id: current.metadata.current_schema().schema_id,
        removed: Default::default(),
        merge_manifests: false,
        branch: branch.to_string(),
        superseded: Default::default(),
        replacement: None,
    };
    commit::commit(catalog, namespace, name, store, current, change).await
}

/// The new manifest's data files `files` (written with the default spec `spec_id`), with
/// their metrics read from their footers. A required column must hold no null: the files say
/// whether it does (top-level columns; a null inside a required nested field is not caught
/// yet).
async fn data_group(
    store: &Arc<dyn ObjectStore>,
    metadata: &TableMetadata,
    files: Vec<NewDataFile>,
    spec_id: i32,
) -> Result<ManifestGroup, IcebergError> {
    let spec = write_spec(metadata)?;
    let table = StoreLocation::parse(&metadata.location)?;
    let schema = metadata.current_schema();
    let mut added = Vec::with_capacity(files.len());
    for file in files {
        let path = table.path_of(&file.location)?;
        let metrics = parquet_metrics(Arc::clone(store), &path, file.size, schema).await?;
        added.push(AddedFile {
            location: file.location,
            size: file.size as i64,
            metrics,
            partition: file.partition,
            referenced_data_file: None,
            vector: None,
        });
    }
    for field in schema.fields.iter().filter(|field| field.required) {
        let nulls: i64 = added
            .iter()
            .filter_map(|file| file.metrics.null_value_counts.get(&field.id))
            .sum();
        if nulls > 0 {
            return Err(IcebergError::ConstraintViolation(format!(
                "column {} is required (NOT NULL), and the write gave it {nulls} null value{}; \
                 nothing was committed",
                field.name,
                if nulls == 1 { "" } else { "s" }
            )));
        }
    }
    Ok(ManifestGroup {
        deletes: false,
        spec_id,
        spec,
        files: added,
    })
}
