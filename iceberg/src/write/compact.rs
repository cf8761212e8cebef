//! Compaction (`ALTER TABLE ... EXECUTE optimize`): which data files to rewrite, and the
//! `replace` snapshot that swaps them for the rewritten ones (spec: snapshot operation
//! `replace`, "data and delete files were added and removed without changing table data").
//!
//! A file is rewritten when it is smaller than the threshold, or when delete files apply to
//! it (the rewrite reads its live rows, so the deletes are folded in). A partition whose only
//! candidate is one small file without deletes is left alone: rewriting it would gain nothing.
//! The rewritten rows are written by the executors with the current spec, one partition per
//! file; delete files scoped to a removed file leave with it.

use super::commit::{self, Change};
use super::metadata_commit::load;
use super::snapshot::AppendSummary;
use super::{AppendOutcome, NewDataFile, WriteMode, check_writable, data_group};
use crate::catalog::IcebergCatalog;
use crate::error::IcebergError;
use crate::manifest::FileContent;
use crate::plan::{LiveFile, SnapshotFiles};
use object_store::ObjectStore;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// The data files a compaction rewrites.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactionPlan {
    /// Their paths, as the metadata names them.
    pub files: BTreeSet<String>,
    /// Their bytes.
    pub bytes: i64,
    /// The delete files that apply to them.
    pub delete_files: usize,
}

/// The files of `live` that compaction with `threshold` bytes rewrites.
pub fn plan_compaction(live: &SnapshotFiles, threshold: u64) -> CompactionPlan {
    // Candidates by partition: (spec, partition) -> [(file, has deletes)].
    let mut partitions: BTreeMap<(i32, &str), Vec<(&LiveFile, usize)>> = BTreeMap::new();
    for data in &live.data {
        let deletes = live
            .deletes_for(data)
            .filter(|delete| applies(delete, data))
            .count();
        let small = (data.file.file_size_in_bytes.max(0) as u64) < threshold;
        if small || deletes > 0 {
            partitions
                .entry((data.partition_spec_id, data.file.partition_key.as_str()))
                .or_default()
                .push((data, deletes));
        }
    }
    let mut plan = CompactionPlan::default();
    for candidates in partitions.into_values() {
        let worth_it = candidates.len() > 1 || candidates.iter().any(|(_, deletes)| *deletes > 0);
        if !worth_it {
            continue;
        }
        for (data, deletes) in candidates {
            plan.files.insert(data.file.file_path.clone());
            plan.bytes += data.file.file_size_in_bytes;
            plan.delete_files += deletes;
        }
    }
    plan
}

/// Whether the delete file `delete` (already known to be new enough) may delete rows of
/// `data`: same partition (or a delete in an unpartitioned spec), and for a file-scoped
/// position delete, that very file.
fn applies(delete: &LiveFile, data: &LiveFile) -> bool {
    let partition = delete.file.partition_key.is_empty()
        || (delete.partition_spec_id == data.partition_spec_id
            && delete.file.partition_key == data.file.partition_key);
    let scoped = match delete.file.content {
        FileContent::EqualityDeletes => true,
        _ => delete
            .file
            .referenced_data_file
            .as_deref()
            .is_none_or(|path| path == data.file.file_path),
    };
    partition && scoped
}

/// A rewrite of data files: `removed` (of the snapshot `base`) replaced by `data`, which hold
/// the same rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Rewrite {
    /// The snapshot the rewrite read.
    pub base: Option<i64>,
    /// The data files rewritten.
    pub removed: Vec<String>,
    /// The files that replace them, written with the default spec `data_spec_id`.
    pub data: Vec<NewDataFile>,
    /// That spec.
    pub data_spec_id: i32,
}

/// Commits `rewrite` to `namespace.name` as one `replace` snapshot. Appends since `base` do
/// not conflict with it; any other commit does (it may have deleted rows the rewrite kept).
pub async fn commit_rewrite(
    catalog: &dyn IcebergCatalog,
    namespace: &str,
    name: &str,
    store: Arc<dyn ObjectStore>,
    rewrite: Rewrite,
) -> Result<AppendOutcome, IcebergError> {
    let current = load(catalog, namespace, name, store.as_ref()).await?;
    check_writable(&current.metadata)?;
    let mut summary = AppendSummary {
        rewrite: true,
        ..AppendSummary::default()
    };
    let mut groups = Vec::new();
    if !rewrite.data.is_empty() {
        let data = data_group(
            &store,
            &current.metadata,
            rewrite.data,
            rewrite.data_spec_id,
        )
        .await?;
        summary.add_data(&data.files);
        groups.push(data);
    }
    let change = Change {
        groups,
        mode: WriteMode::RowDelta {
            base: rewrite.base,
            serializable: false,
        },
        summary,
        schema_id: current.metadata.current_schema().schema_id,
        removed: rewrite.removed.into_iter().collect(),
        merge_manifests: false,
        branch: "main".to_string(),
        superseded: Default::default(),
        replacement: None,
    };
    commit::commit(catalog, namespace, name, store, current, change).await
}

/// Merges the current snapshot's manifests of `namespace.name`, one per partition spec and
/// content, in one `replace` snapshot that changes no file. Nothing is committed when no two
/// manifests merge.
pub async fn rewrite_manifests(
    catalog: &dyn IcebergCatalog,
    namespace: &str,
    name: &str,
    store: Arc<dyn ObjectStore>,
) -> Result<AppendOutcome, IcebergError> {
    let current = load(catalog, namespace, name, store.as_ref()).await?;
    check_writable(&current.metadata)?;
    let Some(snapshot) = current.metadata.current_snapshot() else {
        return Ok(AppendOutcome::default());
    };
    let table = crate::scan::location::StoreLocation::parse(&current.metadata.location)?;
    let manifests =
        crate::plan::snapshot_manifests(store.as_ref(), snapshot, |f| table.path_of(f)).await?;
    let mut kinds = BTreeSet::new();
    let mergeable = manifests.iter().any(|m| {
        !kinds.insert((
            m.content == crate::manifest::ManifestContent::Deletes,
            m.partition_spec_id,
        ))
    });
    if !mergeable {
        return Ok(AppendOutcome::default());
    }
    let change = Change {
        groups: Vec::new(),
        // It carries whatever the table holds when it commits: nothing conflicts with it.
        mode: WriteMode::Append,
        summary: AppendSummary {
            rewrite: true,
            ..AppendSummary::default()
        },
        schema_id: current.metadata.current_schema().schema_id,
        removed: BTreeSet::new(),
        merge_manifests: true,
        branch: "main".to_string(),
        superseded: Default::default(),
        replacement: None,
    };
    commit::commit(catalog, namespace, name, store, current, change).await
}
