//! Finding and reading a table's metadata file from storage.
//!
//! A table registered by its metadata file reads that file. A table registered by its directory
//! reads the newest metadata file under `metadata/`: the one `version-hint.text` names (Hadoop
//! tables), else the highest version among `v<N>.metadata.json` and
//! `<NNNNN>-<uuid>.metadata.json` (the names Java, pyiceberg and Osprey write).

use crate::error::IcebergError;
use crate::metadata::TableMetadata;
use crate::scan::location::StoreLocation;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

/// The suffix of metadata files.
const METADATA_SUFFIX: &str = ".metadata.json";

/// Whether `location` names a metadata file rather than a table directory.
pub fn is_metadata_file(location: &str) -> bool {
    location.ends_with(METADATA_SUFFIX)
}

/// The table directory of `location`: the location itself, or for a metadata file the
/// directory above its `metadata/` directory.
pub fn table_root(location: &str) -> String {
    if !is_metadata_file(location) {
        return location.trim_end_matches('/').to_string();
    }
    let dir = location.rsplit_once('/').map_or("", |(dir, _)| dir);
    dir.strip_suffix("/metadata").unwrap_or(dir).to_string()
}

/// The metadata file to read for `location`: itself when it is one, else the newest under the
/// directory's `metadata/` (see the module docs).
pub async fn metadata_location(
    store: &dyn ObjectStore,
    location: &str,
) -> Result<String, IcebergError> {
    if is_metadata_file(location) {
        return Ok(location.to_string());
    }
    let dir = format!("{}/metadata", location.trim_end_matches('/'));
    let store_location = StoreLocation::parse(location)?;
    let dir_path = store_location.path_of(&format!("{dir}/"))?;
    let hint = dir_path.clone().join("version-hint.text");
    if let Ok(result) = store.get(&hint).await
        && let Ok(bytes) = result.bytes().await
        && let Ok(version) = std::str::from_utf8(&bytes)
            .unwrap_or("")
            .trim()
            .parse::<u64>()
    {
        return Ok(format!("{dir}/v{version}{METADATA_SUFFIX}"));
    }
    let files: Vec<_> = store
        .list(Some(&dir_path))
        .try_collect()
        .await
        .map_err(|err| IcebergError::Invalid(format!("cannot list {dir}: {err}")))?;
    let newest = files
        .iter()
        .filter_map(|file| {
            let name = file.location.filename()?;
            Some((metadata_version(name)?, name.to_string()))
        })
        .max()
        .ok_or_else(|| {
            IcebergError::Invalid(format!(
                "no Iceberg metadata file (*{METADATA_SUFFIX}) under {dir}/: is {location} an \
                 Iceberg table's directory?"
            ))
        })?;
    Ok(format!("{dir}/{}", newest.1))
}

/// The version of a metadata file name: `v3.metadata.json` is 3, `00003-<uuid>.metadata.json` 3.
pub(crate) fn metadata_version(name: &str) -> Option<u64> {
    let stem = name.strip_suffix(METADATA_SUFFIX)?;
    let stem = stem.strip_suffix(".gz").unwrap_or(stem);
    if let Some(version) = stem.strip_prefix('v') {
        return version.parse().ok();
    }
    stem.split_once('-')?.0.parse().ok()
}

/// Reads and parses the metadata file at `location`.
pub async fn read_metadata(
    store: &dyn ObjectStore,
    location: &str,
) -> Result<TableMetadata, IcebergError> {
    let path: Path = StoreLocation::parse(location)?.path_of(location)?;
    let bytes = store
        .get(&path)
        .await
        .map_err(|err| IcebergError::Invalid(format!("cannot read {location}: {err}")))?
        .bytes()
        .await
        .map_err(|err| IcebergError::Invalid(format!("cannot read {location}: {err}")))?;
    TableMetadata::from_json(&bytes).map_err(|err| match err {
        IcebergError::Invalid(message) => IcebergError::Invalid(format!("{location}: {message}")),
        IcebergError::Unsupported(message) => {
            IcebergError::Unsupported(format!("{message} (in {location})"))
        }
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_names_give_their_versions_and_tables_their_roots() {
        assert_eq!(metadata_version("v12.metadata.json"), Some(12));
        assert_eq!(
            metadata_version("00007-1b2c3d4e-aaaa-bbbb-cccc-000000000000.metadata.json"),
            Some(7)
        );
        assert_eq!(metadata_version("snap-1.avro"), None);
        assert_eq!(
            table_root("s3://b/db/t/metadata/v3.metadata.json"),
            "s3://b/db/t"
        );
        assert_eq!(table_root("/data/t/"), "/data/t");
    }
}
