//! Where a table's files are: the object store of its location, and each file's path in it.
//!
//! A table's files must lie under the location it was registered with (the location the user
//! was granted): metadata written by someone else must not make Osprey read other files of the
//! same store.

use crate::error::IcebergError;
use datafusion::datasource::listing::ListingTableUrl;
use datafusion::execution::object_store::ObjectStoreUrl;
use object_store::path::Path;

/// The object store of a table's location (`file://`, `s3://bucket`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreLocation {
    store: ObjectStoreUrl,
    /// The store files are read through when it is not `store` itself: one that stands for
    /// credentials a catalog vended for the table.
    serving: Option<ObjectStoreUrl>,
    /// The path every file of the table lies under.
    root: Path,
    /// The location, for errors.
    shown: String,
}

impl StoreLocation {
    /// The store of `location` (a URL, or an absolute local path).
    pub fn parse(location: &str) -> Result<Self, IcebergError> {
        let url = ListingTableUrl::parse(location)
            .map_err(|err| IcebergError::Invalid(format!("location {location}: {err}")))?;
        Ok(Self {
            store: url.object_store(),
            serving: None,
            root: url.prefix().clone(),
            shown: location.to_string(),
        })
    }

    /// The URL of the store files are read through, as DataFusion registers stores: the
    /// location's own (`s3://bucket`), or the one it is [`served_by`](Self::served_by).
    pub fn store_url(&self) -> ObjectStoreUrl {
        self.serving.clone().unwrap_or_else(|| self.store.clone())
    }

    /// The URL of the location's own store (`s3://bucket`, `file://`).
    pub fn own_store_url(&self) -> ObjectStoreUrl {
        self.store.clone()
    }

    /// The same location, its files read through the store registered as `store` (which
    /// stands for credentials a catalog vended); files' paths are unchanged.
    pub fn served_by(mut self, store: ObjectStoreUrl) -> Self {
        self.serving = Some(store);
        self
    }

    /// The path in this store of the file at `location`, which must be in the same store (a
    /// table's metadata may not point into another bucket: its credentials are the table's).
    pub fn path_of(&self, location: &str) -> Result<Path, IcebergError> {
        let url = ListingTableUrl::parse(location)
            .map_err(|err| IcebergError::Invalid(format!("file location {location}: {err}")))?;
        if url.object_store() != self.store {
            return Err(IcebergError::Invalid(format!(
                "file {location} is outside the table's store ({})",
                self.shown
            )));
        }
        let path = url.prefix();
        if !path.prefix_matches(&self.root) {
            return Err(IcebergError::Invalid(format!(
                "file {location} is outside the table's location {}: Osprey reads only the files \
                 under the location a table was registered with",
                self.shown
            )));
        }
        Ok(path.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_resolve_inside_their_tables_store_only() {
        let table = StoreLocation::parse("s3://lake/warehouse/db/t").unwrap();
        assert_eq!(table.store_url().as_str(), "s3://lake/");
        assert_eq!(
            table
                .path_of("s3://lake/warehouse/db/t/data/a.parquet")
                .unwrap()
                .as_ref(),
            "warehouse/db/t/data/a.parquet"
        );
        let err = table.path_of("s3://other/x.parquet").unwrap_err();
        assert!(err.to_string().contains("outside"), "{err}");
        let err = table
            .path_of("s3://lake/warehouse/db/other/a.parquet")
            .unwrap_err();
        assert!(err.to_string().contains("outside"), "{err}");
        let local = StoreLocation::parse("file:///tmp/t").unwrap();
        assert_eq!(
            local.path_of("/tmp/t/data/a.parquet").unwrap().as_ref(),
            "tmp/t/data/a.parquet"
        );
    }
}
