//! A snapshot's files: its manifest list and manifests read from storage (the manifests in
//! parallel), the live data files with the delete files that may apply to them.
//!
//! Delete files apply to a data file by sequence number, as the spec says: a position delete
//! (or deletion vector) to data files with a sequence number at or below its own, an equality
//! delete to data files with a lower one. Matching deletes to files by partition and path
//! comes with the scan that applies them.

use crate::error::IcebergError;
use crate::manifest::{
    DataFile, EntryStatus, FileContent, ManifestFile, read_manifest, read_manifest_list,
};
use crate::metadata::Snapshot;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use std::sync::Arc;

/// How many manifests are read at once.
const PARALLEL_MANIFEST_READS: usize = 8;

/// How many file entries a [`ManifestCache`] keeps; past it, it starts again.
const CACHED_MANIFEST_ENTRIES: usize = 1_000_000;

/// Manifests already read, by location: a manifest never changes once written, so a table
/// scanned again reads only the manifests its new commits added.
#[derive(Debug, Default)]
pub struct ManifestCache {
    manifests: std::sync::Mutex<CachedManifests>,
}

#[derive(Debug, Default)]
struct CachedManifests {
    /// File entries kept, over all manifests.
    entries: usize,
    by_path: std::collections::HashMap<String, Arc<Vec<LiveFile>>>,
}

impl ManifestCache {
    fn get(&self, path: &str) -> Option<Arc<Vec<LiveFile>>> {
        self.lock().by_path.get(path).cloned()
    }

    fn keep(&self, path: &str, files: Arc<Vec<LiveFile>>) {
        let mut cache = self.lock();
        if cache.entries + files.len() > CACHED_MANIFEST_ENTRIES {
            *cache = CachedManifests::default();
        }
        cache.entries += files.len();
        cache.by_path.insert(path.to_string(), files);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CachedManifests> {
        self.manifests
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A live file of a snapshot, with its data sequence number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveFile {
    /// The file.
    pub file: DataFile,
    /// Its data sequence number.
    pub sequence_number: i64,
    /// The partition spec it was written with.
    pub partition_spec_id: i32,
}

/// The files a read of one snapshot needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SnapshotFiles {
    /// The live data files.
    pub data: Vec<LiveFile>,
    /// The live delete files (position deletes, deletion vectors, equality deletes).
    pub deletes: Vec<LiveFile>,
}

impl SnapshotFiles {
    /// The delete files that may apply to `data` by sequence number (see the module docs).
    pub fn deletes_for<'a>(&'a self, data: &'a LiveFile) -> impl Iterator<Item = &'a LiveFile> {
        self.deletes
            .iter()
            .filter(move |delete| match delete.file.content {
                FileContent::EqualityDeletes => delete.sequence_number > data.sequence_number,
                _ => delete.sequence_number >= data.sequence_number,
            })
    }
}

/// Reads the files of `snapshot` from `store`, where `path_of` turns a file location of the
/// metadata (a URL or an absolute path) into the store's path.
pub async fn snapshot_files(
    store: &dyn ObjectStore,
    snapshot: &Snapshot,
    path_of: impl Fn(&str) -> Result<Path, IcebergError>,
) -> Result<SnapshotFiles, IcebergError> {
    let manifests = snapshot_manifests(store, snapshot, &path_of).await?;
    manifest_files(store, manifests, path_of, None).await
}

/// Reads the live files of `manifests` (some of a snapshot's, after pruning) from `store`,
/// or from `cache` for the manifests read before.
pub async fn manifest_files(
    store: &dyn ObjectStore,
    manifests: Vec<ManifestFile>,
    path_of: impl Fn(&str) -> Result<Path, IcebergError>,
    cache: Option<&ManifestCache>,
) -> Result<SnapshotFiles, IcebergError> {
    let entries: Vec<Arc<Vec<LiveFile>>> =
        futures::stream::iter(manifests.into_iter().map(|manifest| {
            let path = path_of(&manifest.path);
            async move {
                if let Some(cached) = cache.and_then(|c| c.get(&manifest.path)) {
                    return Ok(cached);
                }
                let bytes = read(store, &path?, &manifest.path).await?;
                let entries = read_manifest(&bytes, &manifest)?;
                let live: Arc<Vec<LiveFile>> = Arc::new(
                    entries
                        .into_iter()
                        .filter(|entry| entry.status != EntryStatus::Deleted)
                        .map(|entry| LiveFile {
                            file: entry.file,
                            sequence_number: entry.sequence_number,
                            partition_spec_id: manifest.partition_spec_id,
                        })
                        .collect(),
                );
                if let Some(cache) = cache {
                    cache.keep(&manifest.path, Arc::clone(&live));
                }
                Ok::<_, IcebergError>(live)
            }
        }))
        .buffer_unordered(PARALLEL_MANIFEST_READS)
        .try_collect()
        .await?;
    let mut files = SnapshotFiles::default();
    for file in entries.iter().flat_map(|files| files.iter().cloned()) {
        match file.file.content {
            FileContent::Data => files.data.push(file),
            _ => files.deletes.push(file),
        }
    }
    // The same order whatever order the manifests arrived in.
    files
        .data
        .sort_by(|a, b| a.file.file_path.cmp(&b.file.file_path));
    files
        .deletes
        .sort_by(|a, b| a.file.file_path.cmp(&b.file.file_path));
    Ok(files)
}

/// The manifests of `snapshot`, from its manifest list.
pub async fn snapshot_manifests(
    store: &dyn ObjectStore,
    snapshot: &Snapshot,
    path_of: impl Fn(&str) -> Result<Path, IcebergError>,
) -> Result<Vec<ManifestFile>, IcebergError> {
    match &snapshot.manifest_list {
        Some(list) => read_manifest_list(&read(store, &path_of(list)?, list).await?),
        None if snapshot.manifests.is_empty() => Ok(Vec::new()),
        None => Err(IcebergError::Unsupported(
            "v1 snapshots that list manifests without a manifest list".into(),
        )),
    }
}

async fn read(store: &dyn ObjectStore, path: &Path, shown: &str) -> Result<Vec<u8>, IcebergError> {
    let result = store
        .get(path)
        .await
        .map_err(|err| IcebergError::Invalid(format!("cannot read {shown}: {err}")))?;
    let bytes = result
        .bytes()
        .await
        .map_err(|err| IcebergError::Invalid(format!("cannot read {shown}: {err}")))?;
    Ok(bytes.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{MANIFEST_LIST_SCHEMA, MANIFEST_SCHEMA, avro, record};
    use apache_avro::types::Value;
    use object_store::local::LocalFileSystem;

    fn entry(status: i32, sequence: Option<i64>, path: &str, content: i32) -> Value {
        record(vec![
            ("status", Value::Int(status)),
            ("snapshot_id", Value::Union(1, Box::new(Value::Long(2)))),
            (
                "sequence_number",
                match sequence {
                    Some(n) => Value::Union(1, Box::new(Value::Long(n))),
                    None => Value::Union(0, Box::new(Value::Null)),
                },
            ),
            (
                "data_file",
                record(vec![
                    ("content", Value::Int(content)),
                    ("file_path", Value::String(path.into())),
                    ("file_format", Value::String("PARQUET".into())),
                    ("record_count", Value::Long(5)),
                    ("file_size_in_bytes", Value::Long(500)),
                    ("equality_ids", Value::Union(0, Box::new(Value::Null))),
                ]),
            ),
        ])
    }

    fn manifest(path: &str, content: i32, sequence: i64) -> Value {
        record(vec![
            ("manifest_path", Value::String(path.into())),
            ("manifest_length", Value::Long(100)),
            ("partition_spec_id", Value::Int(0)),
            ("content", Value::Int(content)),
            ("sequence_number", Value::Long(sequence)),
            ("min_sequence_number", Value::Long(1)),
            ("added_snapshot_id", Value::Long(2)),
            ("added_files_count", Value::Int(1)),
        ])
    }

    #[tokio::test]
    async fn a_snapshot_lists_its_live_data_files_and_the_deletes_that_apply() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_str().unwrap().to_string();
        let write = |name: &str, bytes: Vec<u8>| {
            std::fs::write(dir.path().join(name), bytes).unwrap();
            format!("{root}/{name}")
        };
        let data_manifest = write(
            "data.avro",
            avro(
                MANIFEST_SCHEMA,
                vec![
                    entry(0, Some(1), "/t/data/old.parquet", 0),
                    entry(1, None, "/t/data/new.parquet", 0),
                    entry(2, Some(1), "/t/data/gone.parquet", 0),
                ],
            ),
        );
        let delete_manifest = write(
            "deletes.avro",
            avro(
                MANIFEST_SCHEMA,
                vec![entry(1, None, "/t/data/pos-deletes.parquet", 1)],
            ),
        );
        let list = write(
            "snap.avro",
            avro(
                MANIFEST_LIST_SCHEMA,
                vec![
                    manifest(&data_manifest, 0, 2),
                    manifest(&delete_manifest, 1, 2),
                ],
            ),
        );
        let snapshot = Snapshot {
            snapshot_id: 2,
            parent_snapshot_id: Some(1),
            sequence_number: 2,
            timestamp_ms: 0,
            manifest_list: Some(list),
            manifests: Vec::new(),
            summary: Default::default(),
            schema_id: Some(0),
        };
        let store = LocalFileSystem::new();
        let path_of = |location: &str| {
            Path::from_filesystem_path(location)
                .map_err(|err| IcebergError::Invalid(err.to_string()))
        };
        let files = snapshot_files(&store, &snapshot, path_of).await.unwrap();
        let data: Vec<(&str, i64)> = files
            .data
            .iter()
            .map(|f| (f.file.file_path.as_str(), f.sequence_number))
            .collect();
        // The deleted entry is gone; the added one inherits its manifest's sequence number.
        assert_eq!(
            data,
            vec![("/t/data/new.parquet", 2), ("/t/data/old.parquet", 1)]
        );
        assert_eq!(files.deletes.len(), 1);
        // A position delete of sequence 2 applies to both data files (at or below it).
        assert_eq!(files.deletes_for(&files.data[0]).count(), 1);
        assert_eq!(files.deletes_for(&files.data[1]).count(), 1);

        let missing = Snapshot {
            manifest_list: Some(format!("{root}/missing.avro")),
            ..snapshot
        };
        let err = snapshot_files(&store, &missing, path_of).await.unwrap_err();
        assert!(err.to_string().contains("missing.avro"), "{err}");
    }
}
