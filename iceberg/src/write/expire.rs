//! Snapshot expiry (`ALTER TABLE ... EXECUTE expire_snapshots`) and orphan file removal
//! (`remove_orphan_files`).
//!
//! Expiry removes from the metadata every snapshot older than the cutoff, except the current
//! one and the heads of branches and tags, in one metadata commit; then it deletes the files
//! only the removed snapshots needed: their manifest lists, the manifests no kept snapshot
//! lists, and the data and delete files no kept snapshot holds live. Files are deleted only
//! after the commit, so a failed commit deletes nothing.
//!
//! Orphan removal deletes the files under the table's location that nothing in the current
//! metadata names (metadata files and their log, manifest lists, manifests, data and delete
//! files of every snapshot, statistics files), if they are older than the cutoff: files of a
//! write still in flight are young, and stay.

use super::metadata_commit::{Current, commit_metadata, load};
use super::storage::read;
use crate::catalog::IcebergCatalog;
use crate::error::IcebergError;
use crate::manifest::{EntryStatus, FileContent, ManifestContent, read_manifest};
use crate::metadata::{Snapshot, TableMetadata};
use crate::plan::snapshot_manifests;
use crate::scan::location::StoreLocation;
use crate::updates::{TableRequirement, TableUpdate};
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use std::collections::BTreeSet;
use std::sync::Arc;

/// What an expiry did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExpiryOutcome {
    /// Snapshots removed from the metadata.
    pub expired_snapshots: u64,
    /// Data files deleted.
    pub deleted_data_files: u64,
    /// Delete files deleted.
    pub deleted_delete_files: u64,
    /// Manifests deleted.
    pub deleted_manifests: u64,
    /// Manifest lists deleted.
    pub deleted_manifest_lists: u64,
}

/// Expires the snapshots of `namespace.name` committed before `older_than_ms` (see the
/// module docs).
pub async fn expire_snapshots(
    catalog: &dyn IcebergCatalog,
    namespace: &str,
    name: &str,
    store: Arc<dyn ObjectStore>,
    older_than_ms: i64,
) -> Result<ExpiryOutcome, IcebergError> {
    let build = |current: &Current| {
        let (_, expired) = split(&current.metadata, older_than_ms);
        if expired.is_empty() {
            return Ok(None);
        }
        let requirements = vec![TableRequirement::AssertRefSnapshotId {
            reference: "main".to_string(),
            snapshot_id: current.metadata.current_snapshot_id,
        }];
        let updates = vec![TableUpdate::RemoveSnapshots {
            snapshot_ids: expired.iter().map(|s| s.snapshot_id).collect(),
        }];
        Ok(Some((requirements, updates)))
    };
    let Some((current, _)) = commit_metadata(catalog, (namespace, name), &store, build).await?
    else {
        return Ok(ExpiryOutcome::default());
    };
    let (kept, expired) = split(&current.metadata, older_than_ms);
    let mut outcome = ExpiryOutcome {
        expired_snapshots: expired.len() as u64,
        ..ExpiryOutcome::default()
    };
    let table = StoreLocation::parse(&current.metadata.location)?;
    let path_of = |file: &str| table.path_of(file);
    let reachable = Reachable::of(store.as_ref(), &kept, &path_of).await?;
    let mut gone_manifests = BTreeSet::new();
    let mut gone_files = BTreeSet::new();
    for snapshot in &expired {
        for manifest in snapshot_manifests(store.as_ref(), snapshot, &path_of).await? {
            if reachable.manifests.contains(&manifest.path)
                || !gone_manifests.insert(manifest.path.clone())
            {
                continue;
            }
            let bytes = read(store.as_ref(), &path_of(&manifest.path)?).await?;
            for entry in read_manifest(&bytes, &manifest)? {
                if !reachable.files.contains(&entry.file.file_path) {
                    let is_data = entry.file.content == FileContent::Data
                        && manifest.content == ManifestContent::Data;
                    gone_files.insert((entry.file.file_path, is_data));
                }
            }
        }
    }
    for (file, is_data) in gone_files {
        if delete(store.as_ref(), &path_of(&file)?).await {
            match is_data {
                true => outcome.deleted_data_files += 1,
                false => outcome.deleted_delete_files += 1,
            }
        }
    }
    for manifest in gone_manifests {
        if delete(store.as_ref(), &path_of(&manifest)?).await {
            outcome.deleted_manifests += 1;
        }
    }
    for snapshot in &expired {
        if let Some(list) = &snapshot.manifest_list
            && delete(store.as_ref(), &path_of(list)?).await
        {
            outcome.deleted_manifest_lists += 1;
        }
    }
    Ok(outcome)
}

/// The snapshots kept and those expired: a snapshot older than `older_than_ms` expires unless
/// it is current or a branch's or tag's head.
fn split(metadata: &TableMetadata, older_than_ms: i64) -> (Vec<Snapshot>, Vec<Snapshot>) {
    let heads: BTreeSet<i64> = metadata
        .refs
        .values()
        .map(|r| r.snapshot_id)
        .chain(metadata.current_snapshot_id)
        .collect();
    metadata
        .snapshots
        .iter()
        .cloned()
        .partition(|s| s.timestamp_ms >= older_than_ms || heads.contains(&s.snapshot_id))
}

/// What the kept snapshots need: their manifests, and the files live in them.
struct Reachable {
    manifests: BTreeSet<String>,
    files: BTreeSet<String>,
}

impl Reachable {
    async fn of(
        store: &dyn ObjectStore,
        snapshots: &[Snapshot],
        path_of: &impl Fn(&str) -> Result<Path, IcebergError>,
    ) -> Result<Self, IcebergError> {
        let mut reachable = Reachable {
            manifests: BTreeSet::new(),
            files: BTreeSet::new(),
        };
        for snapshot in snapshots {
            for manifest in snapshot_manifests(store, snapshot, path_of).await? {
                if !reachable.manifests.insert(manifest.path.clone()) {
                    continue;
                }
                let bytes = read(store, &path_of(&manifest.path)?).await?;
                for entry in read_manifest(&bytes, &manifest)? {
                    if entry.status != EntryStatus::Deleted {
                        reachable.files.insert(entry.file.file_path);
                    }
                }
            }
        }
        Ok(reachable)
    }
}

/// What an orphan file removal did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrphanOutcome {
    /// Files found under the table's location.
    pub scanned_files: u64,
    /// Files deleted.
    pub deleted_files: u64,
}

/// Deletes the files under the location of `namespace.name` that its metadata does not name,
/// last modified before `older_than_ms` (see the module docs).
pub async fn remove_orphan_files(
    catalog: &dyn IcebergCatalog,
    namespace: &str,
    name: &str,
    store: Arc<dyn ObjectStore>,
    older_than_ms: i64,
) -> Result<OrphanOutcome, IcebergError> {
    catalog.check_writable()?;
    let current = load(catalog, namespace, name, store.as_ref()).await?;
    let table = StoreLocation::parse(&current.metadata.location)?;
    let path_of = |file: &str| table.path_of(file);
    let mut named: BTreeSet<Path> = BTreeSet::new();
    for file in metadata_files(&current) {
        named.insert(path_of(&file)?);
    }
    let snapshots = current.metadata.snapshots.clone();
    for snapshot in &snapshots {
        if let Some(list) = &snapshot.manifest_list {
            named.insert(path_of(list)?);
        }
        for manifest in snapshot_manifests(store.as_ref(), snapshot, &path_of).await? {
            if !named.insert(path_of(&manifest.path)?) {
                continue;
            }
            let bytes = read(store.as_ref(), &path_of(&manifest.path)?).await?;
            for entry in read_manifest(&bytes, &manifest)? {
                named.insert(path_of(&entry.file.file_path)?);
            }
        }
    }
    let root = path_of(&current.metadata.location)?;
    let listed: Vec<object_store::ObjectMeta> = store
        .list(Some(&root))
        .try_collect()
        .await
        .map_err(|err| IcebergError::Invalid(format!("cannot list {root}: {err}")))?;
    let mut outcome = OrphanOutcome::default();
    for object in listed {
        outcome.scanned_files += 1;
        let young = object.last_modified.timestamp_millis() >= older_than_ms;
        // A Hadoop table's pointer to its current metadata is named by no metadata.
        let pointer = object.location.filename() == Some("version-hint.text");
        if named.contains(&object.location) || young || pointer {
            continue;
        }
        if delete(store.as_ref(), &object.location).await {
            outcome.deleted_files += 1;
        }
    }
    Ok(outcome)
}

/// The files the current metadata names outside its snapshots: itself, the earlier metadata
/// files of its log, and statistics files.
fn metadata_files(current: &Current) -> Vec<String> {
    let mut files = vec![current.location.clone()];
    let listed = |key: &str, field: &str| -> Vec<String> {
        current.json[key]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|item| item[field].as_str().map(str::to_string))
            .collect()
    };
    files.extend(listed("metadata-log", "metadata-file"));
    files.extend(listed("statistics", "statistics-path"));
    files.extend(listed("partition-statistics", "statistics-path"));
    files
}

/// Deletes `path`; whether it was deleted (a file already gone counts as not deleted, and a
/// failure is logged: maintenance goes on).
async fn delete(store: &dyn ObjectStore, path: &Path) -> bool {
    match store.delete(path).await {
        Ok(()) => true,
        Err(object_store::Error::NotFound { .. }) => false,
        Err(err) => {
            tracing::warn!(%path, error = %err, "Iceberg maintenance cannot delete a file");
            false
        }
    }
}
