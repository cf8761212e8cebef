//! The lakehouse catalog as DataFusion sees it: schemas, tables and views kept in the
//! persistent [`osprey_catalog::CatalogStore`], each table read and written by its format.
//!
//! - [`committed`]: the catalog as committed, in the database and its in-memory copy.
//! - [`formats`]: one implementation per table format (Parquet, CSV, JSON, views), by name.
//! - [`tables`]: the providers the built-in formats open.
//! - [`writes`]: INSERT, CTAS and UNLOAD: distributed, staged, published atomically.
//! - [`ddl`]: the statements that change the catalog, dispatched to the formats.

pub mod committed;
pub mod ddl;
pub mod formats;
pub mod schema_check;
pub mod tables;
pub mod unload;
pub mod writes;

use committed::CommittedCatalog;
use datafusion::catalog::{CatalogProvider, SchemaProvider, TableProvider};
use datafusion::common::DataFusionError;
use datafusion::common::config::ConfigOptions;
use datafusion::error::Result;
use datafusion::execution::runtime_env::RuntimeEnv;
use formats::{TableFormat, TableFormats};
use osprey_catalog::{CatalogError, CatalogStore, TableEntry};
use std::sync::Arc;

/// The coordinator's catalog: what is committed, and the table formats that read and write it.
#[derive(Clone)]
pub struct Lakehouse {
    catalog: CommittedCatalog,
    formats: Arc<TableFormats>,
    /// Defaults for file format options.
    config: Arc<ConfigOptions>,
    /// The coordinator's object stores, for formats that read metadata from storage.
    runtime: Arc<RuntimeEnv>,
}

impl std::fmt::Debug for Lakehouse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lakehouse")
            .field("catalog", &self.catalog)
            .field("formats", &self.formats)
            .finish()
    }
}

impl Lakehouse {
    /// Loads the catalog `catalog_name` from `store`, with the built-in table formats. Managed
    /// tables go under `warehouse` (a URL ending in `/`). `config` supplies defaults for file
    /// format options; `runtime` has the object stores formats read metadata from.
    pub async fn load(
        store: CatalogStore,
        catalog_name: &str,
        warehouse: &str,
        config: ConfigOptions,
        runtime: Arc<RuntimeEnv>,
    ) -> Result<Self, CatalogError> {
        let mut formats = TableFormats::default();
        // Osprey's own Iceberg tables find their current metadata in the catalog database.
        formats.register(Arc::new(formats::IcebergFormat::owned_in(store.clone())));
        Ok(Self {
            catalog: CommittedCatalog::load(store, catalog_name, warehouse).await?,
            formats: Arc::new(formats),
            config: Arc::new(config),
            runtime,
        })
    }

    /// This lakehouse with one more table format (or one replaced, by name).
    pub fn with_format(mut self, format: Arc<dyn TableFormat>) -> Self {
        Arc::make_mut(&mut self.formats).register(format);
        self
    }

    /// The persistent store.
    /// The catalog as committed, for writes that record their pending files in it.
    pub(crate) fn committed(&self) -> &CommittedCatalog {
        &self.catalog
    }

    pub fn store(&self) -> &CatalogStore {
        self.catalog.store()
    }

    /// The catalog's name (the first part of three-part names).
    pub fn catalog_name(&self) -> &str {
        self.catalog.catalog_name()
    }

    /// The defaults tables are read with (file format options, view types).
    pub fn config(&self) -> Arc<ConfigOptions> {
        Arc::clone(&self.config)
    }

    /// The URL managed tables are created under.
    pub fn warehouse(&self) -> &str {
        self.catalog.warehouse()
    }

    /// Whether `schema` exists (persistent or built-in).
    pub fn schema_exists(&self, schema: &str) -> bool {
        self.catalog.schema_exists(schema)
    }

    /// Whether `schema` is built in (read-only, not persistent).
    pub fn is_builtin_schema(&self, schema: &str) -> bool {
        self.catalog.is_builtin_schema(schema)
    }

    /// The entry for `schema.name`, if any.
    pub fn table(&self, schema: &str, name: &str) -> Option<TableEntry> {
        self.catalog.table(schema, name)
    }

    /// The DataFusion catalog provider for this catalog.
    pub fn catalog_provider(&self) -> Arc<dyn CatalogProvider> {
        Arc::new(LakeCatalog {
            lakehouse: self.clone(),
        })
    }

    /// Opens `schema.name` with its format, if it exists.
    async fn provider(&self, schema: &str, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        let Some((entry, files)) = self.catalog.table_with_files(schema, name) else {
            return self.metadata_table(schema, name).await;
        };
        let format = self
            .formats
            .of(&entry)
            .map_err(|err| DataFusionError::Plan(err.to_string()))?;
        format
            .open(&entry, files, &self.config, &self.runtime)
            .await
            .map(Some)
            .map_err(|err| {
                DataFusionError::Plan(format!(
                    "cannot open {}: {}",
                    entry.qualified_name(),
                    crate::error_text::plain_message(&err)
                ))
            })
    }
}

impl Lakehouse {
    /// `"<table>$<name>"`: a metadata table (`$snapshots`) or a version (`$version=<id>`,
    /// written by [`crate::time_travel`]) of `schema.<table>`, when its format has them.
    async fn metadata_table(
        &self,
        schema: &str,
        name: &str,
    ) -> Result<Option<Arc<dyn TableProvider>>> {
        let Some((table, kind)) = name.rsplit_once('$') else {
            return Ok(None);
        };
        let Some(entry) = self.catalog.table(schema, table) else {
            return Ok(None);
        };
        let format = self
            .formats
            .of(&entry)
            .map_err(|err| DataFusionError::Plan(err.to_string()))?;
        let table = format
            .metadata_table(&entry, kind, &self.config, &self.runtime)
            .await?;
        // A version clause is never dropped: a format without versions refuses it.
        if table.is_none() && crate::time_travel::TableVersion::from_suffix(kind).is_some() {
            return Err(DataFusionError::NotImplemented(format!(
                "time travel (FOR VERSION | TIMESTAMP AS OF) on {}, which is stored as {}: \
                 only Iceberg tables keep versions",
                entry.qualified_name(),
                format.name().to_uppercase()
            )));
        }
        Ok(table)
    }
}

/// The DataFusion view of the catalog.
#[derive(Debug)]
struct LakeCatalog {
    lakehouse: Lakehouse,
}

impl CatalogProvider for LakeCatalog {
    fn schema_names(&self) -> Vec<String> {
        self.lakehouse.catalog.schema_names()
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        if let Some(builtin) = self.lakehouse.catalog.builtin_schema(name) {
            return Some(builtin);
        }
        let catalog = &self.lakehouse.catalog;
        catalog.persistent_schema_exists(name).then(|| {
            Arc::new(LakeSchema {
                lakehouse: self.lakehouse.clone(),
                schema: name.to_string(),
            }) as Arc<dyn SchemaProvider>
        })
    }

    /// Registers an in-memory, built-in schema (`system`, the TPC-H dataset). User schemas are
    /// created with CREATE SCHEMA, which persists them.
    fn register_schema(
        &self,
        name: &str,
        schema: Arc<dyn SchemaProvider>,
    ) -> Result<Option<Arc<dyn SchemaProvider>>> {
        self.lakehouse
            .catalog
            .register_builtin_schema(name, schema)
            .map_err(|err| DataFusionError::Plan(err.to_string()))
    }
}

/// One persistent schema.
#[derive(Debug)]
struct LakeSchema {
    lakehouse: Lakehouse,
    schema: String,
}

#[async_trait::async_trait]
impl SchemaProvider for LakeSchema {
    fn table_names(&self) -> Vec<String> {
        self.lakehouse.catalog.table_names(&self.schema)
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        self.lakehouse.provider(&self.schema, name).await
    }

    fn table_exist(&self, name: &str) -> bool {
        self.lakehouse.catalog.table_exists(&self.schema, name)
    }

    fn register_table(
        &self,
        name: String,
        _table: Arc<dyn TableProvider>,
    ) -> Result<Option<Arc<dyn TableProvider>>> {
        Err(DataFusionError::Plan(format!(
            "cannot register {name} directly: tables in schema {} are created with SQL DDL",
            self.schema
        )))
    }
}
