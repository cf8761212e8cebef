//! The Hadoop catalog: a warehouse directory with one directory per namespace and, under it,
//! one per table (`<warehouse>/<namespace>/<table>/metadata/`). The table's current metadata
//! is the version `version-hint.text` names, else the newest metadata file (see
//! [`crate::metadata_location`]). Namespaces are one level deep.
//!
//! Osprey commits as Java's Hadoop catalog does: the next metadata file is
//! `v<N+1>.metadata.json`, created only if no writer made it first (the compare-and-swap),
//! then `version-hint.text` is rewritten to name it. A namespace is a directory, which object
//! stores hold only with files in it: it appears with its first table. Dropping a table or a
//! namespace would delete its directory, which is the data's owner's to do.

use super::{IcebergCatalog, LoadedTable, TableCommit};
use crate::error::IcebergError;
use crate::load::metadata_location;
use crate::scan::location::StoreLocation;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use std::sync::Arc;

/// A Hadoop catalog (see the module docs).
#[derive(Debug)]
pub struct HadoopCatalog {
    store: Arc<dyn ObjectStore>,
    /// The warehouse, without a trailing `/`.
    warehouse: String,
    location: StoreLocation,
}

impl HadoopCatalog {
    /// The catalog in the directory `warehouse` (a URL or absolute path) of `store`.
    pub fn new(store: Arc<dyn ObjectStore>, warehouse: &str) -> Result<Self, IcebergError> {
        let warehouse = warehouse.trim_end_matches('/').to_string();
        let location = StoreLocation::parse(&warehouse)?;
        Ok(Self {
            store,
            warehouse,
            location,
        })
    }

    /// The directories directly under `dir` (a location under the warehouse); none when `dir`
    /// does not exist, unless it `must_exist`.
    async fn directories(&self, dir: &str, must_exist: bool) -> Result<Vec<String>, IcebergError> {
        let path: Path = self.location.path_of(&format!("{dir}/"))?;
        let listing = match self.store.list_with_delimiter(Some(&path)).await {
            Ok(listing) => listing,
            Err(object_store::Error::NotFound { .. }) if !must_exist => return Ok(Vec::new()),
            Err(object_store::Error::NotFound { .. }) => {
                return Err(IcebergError::Catalog(format!("{dir} does not exist")));
            }
            Err(err) => {
                return Err(IcebergError::CatalogUnavailable(format!(
                    "cannot list {dir}: {err}"
                )));
            }
        };
        let mut names: Vec<String> = listing
            .common_prefixes
            .iter()
            .filter_map(|prefix| prefix.filename().map(str::to_string))
            .collect();
        names.sort();
        Ok(names)
    }

    /// Whether the directory `dir` holds a table (a `metadata/` directory).
    async fn is_table(&self, dir: &str) -> Result<bool, IcebergError> {
        Ok(self
            .directories(dir, false)
            .await?
            .iter()
            .any(|name| name == "metadata"))
    }
}

#[async_trait::async_trait]
impl IcebergCatalog for HadoopCatalog {
    fn kind(&self) -> &'static str {
        "hadoop"
    }

    async fn namespaces(&self) -> Result<Vec<String>, IcebergError> {
        let mut namespaces = Vec::new();
        for name in self.directories(&self.warehouse, true).await? {
            if !self.is_table(&format!("{}/{name}", self.warehouse)).await? {
                namespaces.push(name);
            }
        }
        Ok(namespaces)
    }

    async fn table_names(&self, namespace: &str) -> Result<Vec<String>, IcebergError> {
        let dir = format!("{}/{namespace}", self.warehouse);
        let mut tables = Vec::new();
        for name in self.directories(&dir, false).await? {
            if self.is_table(&format!("{dir}/{name}")).await? {
                tables.push(name);
            }
        }
        Ok(tables)
    }

    async fn load_table(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<LoadedTable>, IcebergError> {
        // Names become path segments: only plain ones.
        if [namespace, name]
            .iter()
            .any(|part| part.is_empty() || part.contains('/') || *part == "." || *part == "..")
        {
            return Ok(None);
        }
        let dir = format!("{}/{namespace}/{name}", self.warehouse);
        if !self.is_table(&dir).await? {
            return Ok(None);
        }
        Ok(Some(LoadedTable {
            metadata_location: metadata_location(self.store.as_ref(), &dir).await?,
            metadata: None,
            credentials: None,
        }))
    }

    fn check_writable(&self) -> Result<(), IcebergError> {
        Ok(())
    }

    fn versioned_metadata(&self) -> bool {
        true
    }

    async fn commit_table(
        &self,
        namespace: &str,
        name: &str,
        commit: &TableCommit,
    ) -> Result<bool, IcebergError> {
        // The new version file exists: the swap is done. The hint follows it.
        self.write_hint(namespace, name, &commit.metadata_location)
            .await?;
        Ok(true)
    }

    fn default_location(&self, namespace: &str, name: &str) -> Option<String> {
        Some(format!("{}/{namespace}/{name}", self.warehouse))
    }

    async fn register_table(
        &self,
        namespace: &str,
        name: &str,
        metadata_location: &str,
    ) -> Result<(), IcebergError> {
        self.write_hint(namespace, name, metadata_location).await
    }

    async fn drop_table(&self, namespace: &str, name: &str) -> Result<bool, IcebergError> {
        Err(IcebergError::Unsupported(format!(
            "DROP TABLE in a Hadoop catalog: {namespace}.{name} is its directory, \
             {}/{namespace}/{name}; delete it with the storage's own tools",
            self.warehouse
        )))
    }

    async fn drop_namespace(&self, namespace: &str) -> Result<bool, IcebergError> {
        Err(IcebergError::Unsupported(format!(
            "DROP SCHEMA in a Hadoop catalog: {namespace} is a directory, {}/{namespace}",
            self.warehouse
        )))
    }

    async fn create_namespace(&self, namespace: &str) -> Result<(), IcebergError> {
        Err(IcebergError::Unsupported(format!(
            "CREATE SCHEMA in a Hadoop catalog: its namespaces are directories, and {namespace} \
             appears with its first table (CREATE TABLE {namespace}.t ...)"
        )))
    }
}

impl HadoopCatalog {
    /// Points `version-hint.text` of `namespace.name` at the metadata file `metadata_location`
    /// (`.../v<N>.metadata.json`).
    async fn write_hint(
        &self,
        namespace: &str,
        name: &str,
        metadata_location: &str,
    ) -> Result<(), IcebergError> {
        let version = metadata_location
            .rsplit('/')
            .next()
            .filter(|file| file.starts_with('v'))
            .and_then(crate::load::metadata_version)
            .ok_or_else(|| {
                IcebergError::Invalid(format!(
                    "{metadata_location} is not a versioned metadata file"
                ))
            })?;
        let hint = format!(
            "{}/{namespace}/{name}/metadata/version-hint.text",
            self.warehouse
        );
        self.store
            .put(
                &self.location.path_of(&hint)?,
                version.to_string().into_bytes().into(),
            )
            .await
            .map(|_| ())
            .map_err(|err| IcebergError::Invalid(format!("cannot write {hint}: {err}")))
    }
}
