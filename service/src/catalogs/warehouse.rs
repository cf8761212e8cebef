//! Osprey's own Iceberg tables, as an Iceberg catalog: the namespaces are the schemas of
//! Osprey's catalog, the tables its managed entries of format `iceberg`, and each table's
//! current metadata file is kept in the catalog database (`osprey_iceberg_tables`), swapped by
//! every commit as the JDBC catalog swaps it. Their files live under the warehouse.
//!
//! Being an [`IcebergCatalog`], these tables are created, written, changed row by row, altered
//! and maintained by the same code as an attached catalog's (`super::writes` and the modules
//! beside it), and the Iceberg REST catalog Osprey serves answers from it too.

use crate::lakehouse::committed::CommittedCatalog;
use crate::lakehouse::tables::encode_schema;
use datafusion::execution::runtime_env::RuntimeEnv;
use osprey_catalog::{CatalogError, TableDefinition, TableEntry, TableKind, now_ms};
use osprey_iceberg::{IcebergCatalog, IcebergError, LoadedTable, StoreLocation, TableCommit};
use std::sync::Arc;

/// The name Iceberg tables are stored under in a catalog entry's definition.
pub(crate) const ICEBERG_FORMAT: &str = "iceberg";

/// Whether `entry` is an Iceberg table Osprey owns.
pub(crate) fn is_owned_iceberg(entry: &TableEntry) -> bool {
    entry.kind == TableKind::Managed
        && entry
            .definition
            .format
            .as_deref()
            .is_some_and(|format| format.eq_ignore_ascii_case(ICEBERG_FORMAT))
}

/// Osprey's own Iceberg tables (see the module docs).
#[derive(Debug, Clone)]
pub(crate) struct WarehouseCatalog {
    committed: CommittedCatalog,
    /// The coordinator's object stores, to read a new table's first metadata.
    runtime: Arc<RuntimeEnv>,
}

impl WarehouseCatalog {
    /// The Iceberg tables of `committed`, read through `runtime`'s stores.
    pub(crate) fn new(committed: CommittedCatalog, runtime: Arc<RuntimeEnv>) -> Self {
        Self { committed, runtime }
    }

    /// The name of Osprey's catalog.
    pub(crate) fn catalog_name(&self) -> &str {
        self.committed.catalog_name()
    }

    /// The warehouse, a URL ending in `/`.
    pub(crate) fn warehouse(&self) -> &str {
        self.committed.warehouse()
    }

    /// The Iceberg table `namespace.name`, if there is one.
    pub(crate) fn entry(&self, namespace: &str, name: &str) -> Option<TableEntry> {
        self.committed
            .table(namespace, name)
            .filter(is_owned_iceberg)
    }
}

/// A catalog database error as a catalog error.
fn catalog_error(err: CatalogError) -> IcebergError {
    match err {
        CatalogError::Database { .. } => IcebergError::CatalogUnavailable(err.to_string()),
        other => IcebergError::Catalog(other.to_string()),
    }
}

#[async_trait::async_trait]
impl IcebergCatalog for WarehouseCatalog {
    fn kind(&self) -> &'static str {
        "osprey"
    }

    async fn namespaces(&self) -> Result<Vec<String>, IcebergError> {
        Ok(self
            .committed
            .schema_names()
            .into_iter()
            .filter(|name| self.committed.persistent_schema_exists(name))
            .collect())
    }

    async fn table_names(&self, namespace: &str) -> Result<Vec<String>, IcebergError> {
        let mut names: Vec<String> = self
            .committed
            .table_names(namespace)
            .into_iter()
            .filter(|name| self.entry(namespace, name).is_some())
            .collect();
        names.sort();
        Ok(names)
    }

    async fn load_table(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<LoadedTable>, IcebergError> {
        let Some(entry) = self.entry(namespace, name) else {
            return Ok(None);
        };
        let location = self
            .committed
            .store()
            .iceberg_metadata_location(&entry.id)
            .await
            .map_err(catalog_error)?;
        Ok(location.map(|metadata_location| LoadedTable {
            metadata_location,
            metadata: None,
            credentials: None,
        }))
    }

    fn check_writable(&self) -> Result<(), IcebergError> {
        Ok(())
    }

    async fn commit_table(
        &self,
        namespace: &str,
        name: &str,
        commit: &TableCommit,
    ) -> Result<bool, IcebergError> {
        let entry = self.entry(namespace, name).ok_or_else(|| {
            IcebergError::Catalog(format!("table {namespace}.{name} does not exist"))
        })?;
        self.committed
            .store()
            .swap_iceberg_metadata(&entry.id, &commit.base_location, &commit.metadata_location)
            .await
            .map_err(catalog_error)
    }

    /// `<warehouse>/<namespace>/<name>-<8 hex digits>`, unique, so a table created again after
    /// a drop never meets the old one's files.
    fn default_location(&self, namespace: &str, name: &str) -> Option<String> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        Some(format!(
            "{}{namespace}/{name}-{}",
            self.committed.warehouse(),
            &id[..8]
        ))
    }

    async fn register_table(
        &self,
        namespace: &str,
        name: &str,
        metadata_location: &str,
    ) -> Result<(), IcebergError> {
        let store = self
            .runtime
            .object_store(StoreLocation::parse(metadata_location)?.store_url())
            .map_err(|err| IcebergError::Invalid(err.to_string()))?;
        let metadata = osprey_iceberg::read_metadata(store.as_ref(), metadata_location).await?;
        let schema = encode_schema(&metadata.current_schema().to_arrow())
            .map_err(|err| IcebergError::Invalid(err.to_string()))?;
        let entry = TableEntry {
            id: uuid::Uuid::new_v4().to_string(),
            catalog: self.committed.catalog_name().to_string(),
            schema: namespace.to_string(),
            name: name.to_string(),
            kind: TableKind::Managed,
            definition: TableDefinition {
                location: Some(metadata.location.trim_end_matches('/').to_string()),
                format: Some(ICEBERG_FORMAT.to_string()),
                arrow_schema: schema,
                ..TableDefinition::default()
            },
            created_at_ms: now_ms(),
        };
        self.committed
            .create_iceberg_table(entry, metadata_location)
            .await
            .map_err(catalog_error)
    }

    async fn create_namespace(&self, namespace: &str) -> Result<(), IcebergError> {
        osprey_catalog::check_name("schema", namespace).map_err(catalog_error)?;
        self.committed
            .create_schema(namespace, false)
            .await
            .map_err(catalog_error)
    }

    async fn drop_namespace(&self, namespace: &str) -> Result<bool, IcebergError> {
        if !self.committed.persistent_schema_exists(namespace) {
            return Ok(false);
        }
        self.committed
            .drop_schema(namespace, false, false)
            .await
            .map_err(catalog_error)?;
        Ok(true)
    }

    async fn rename_table(&self, from: (&str, &str), to: (&str, &str)) -> Result<(), IcebergError> {
        self.committed
            .rename_table(from, to)
            .await
            .map_err(catalog_error)
    }

    /// Forgets the table; its files are the caller's to purge.
    async fn drop_table(&self, namespace: &str, name: &str) -> Result<bool, IcebergError> {
        if self.entry(namespace, name).is_none() {
            return Ok(false);
        }
        self.committed
            .drop_table(namespace, name)
            .await
            .map_err(catalog_error)?;
        Ok(true)
    }
}
