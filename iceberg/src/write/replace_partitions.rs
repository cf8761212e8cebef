//! Dynamic partition overwrite (`INSERT OVERWRITE` with `osprey.partition_overwrite_mode =
//! 'dynamic'`, Spark's `partitionOverwriteMode`): the new data files replace the files of the
//! partitions they fall in, and every other partition stays. Partitions are compared under the
//! default spec the files were written with; files of earlier specs stay (as in Spark).

use super::commit::{self, Change};
use super::metadata_commit::load;
use super::partition_values::serialize;
use super::snapshot::AppendSummary;
use super::{AppendOutcome, BranchRef, NewDataFile, WriteMode, check_writable, data_group};
use crate::catalog::IcebergCatalog;
use crate::error::IcebergError;
use crate::plan::snapshot_files;
use crate::scan::location::StoreLocation;
use object_store::ObjectStore;
use std::collections::BTreeSet;
use std::sync::Arc;

/// Commits `files` (written with the default spec `spec_id`) to the branch `target`,
/// replacing the files of the snapshot `base` (the one the statement read) in the partitions
/// the new files fall in, as one `overwrite` snapshot. Any commit since `base` conflicts with
/// it: rows it did not see could be replaced unseen.
pub async fn replace_partitions(
    catalog: &dyn IcebergCatalog,
    target: BranchRef<'_>,
    store: Arc<dyn ObjectStore>,
    files: Vec<NewDataFile>,
    spec_id: i32,
    base: Option<i64>,
) -> Result<AppendOutcome, IcebergError> {
    let BranchRef {
        namespace,
        name,
        branch,
    } = target;
    let current = load(catalog, namespace, name, store.as_ref()).await?;
    check_writable(&current.metadata)?;
    let metadata = &current.metadata;
    let touched: BTreeSet<Vec<Option<Vec<u8>>>> = files
        .iter()
        .map(|file| file.partition.iter().map(serialize).collect())
        .collect();
    let removed: BTreeSet<String> = match base.and_then(|id| metadata.snapshot(id)) {
        Some(snapshot) => {
            let table = StoreLocation::parse(&metadata.location)?;
            let live = snapshot_files(store.as_ref(), snapshot, |file| table.path_of(file)).await?;
            live.data
                .into_iter()
                .filter(|file| {
                    file.partition_spec_id == spec_id
                        && touched.contains(&file.file.metrics.partition)
                })
                .map(|file| file.file.file_path)
                .collect()
        }
        None => BTreeSet::new(),
    };
    let group = data_group(&store, metadata, files, spec_id).await?;
    let mut summary = AppendSummary::default();
    summary.add_data(&group.files);
    let change = Change {
        groups: vec![group],
        mode: WriteMode::RowDelta {
            base,
            serializable: true,
        },
        summary,
        schema_id: metadata.current_schema().schema_id,
        removed,
        merge_manifests: false,
        branch: branch.to_string(),
        superseded: Default::default(),
        replacement: None,
    };
    commit::commit(catalog, namespace, name, store, current, change).await
}
