//! The lakehouse catalog as DataFusion sees it: schemas, tables and views kept in the
//! persistent [`osprey_catalog::CatalogStore`], with an in-memory copy for planning.
//!
//! Every change goes to the database first, in one transaction, and only then to the memory
//! copy, so what queries see is always something the database has committed. The coordinator
//! is the only writer of its catalog database.
//!
//! - [`tables`]: providers rebuilt from catalog entries (external, managed, view).
//! - [`writes`]: INSERT, CTAS and UNLOAD: distributed, staged, published atomically.

pub mod ddl;
pub mod schema_check;
pub mod tables;
pub mod unload;
pub mod writes;

use datafusion::catalog::{CatalogProvider, SchemaProvider, TableProvider};
use datafusion::common::DataFusionError;
use datafusion::common::config::ConfigOptions;
use datafusion::error::Result;
use osprey_catalog::{CatalogError, CatalogStore, DataFile, TableEntry, TableKind};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, RwLock};

/// The committed metadata, as last read from or written to the database.
#[derive(Debug, Default)]
struct Metadata {
    schemas: BTreeSet<String>,
    /// By (schema, name).
    tables: BTreeMap<(String, String), TableEntry>,
    /// Managed tables' files, by table id.
    files: HashMap<String, Vec<DataFile>>,
}

/// The coordinator's catalog: the store plus its in-memory copy.
#[derive(Clone)]
pub struct Lakehouse {
    inner: Arc<Inner>,
}

struct Inner {
    store: CatalogStore,
    catalog_name: String,
    warehouse: String,
    config: ConfigOptions,
    metadata: RwLock<Metadata>,
    /// Schemas that live only in memory: `system` and the built-in datasets.
    builtin: RwLock<BTreeMap<String, Arc<dyn SchemaProvider>>>,
}

impl std::fmt::Debug for Lakehouse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lakehouse")
            .field("catalog", &self.inner.catalog_name)
            .field("warehouse", &self.inner.warehouse)
            .finish()
    }
}

impl Lakehouse {
    /// Loads the catalog `catalog_name` from `store`. Managed tables go under `warehouse` (a
    /// URL ending in `/`). `config` supplies defaults for file format options.
    pub async fn load(
        store: CatalogStore,
        catalog_name: &str,
        warehouse: &str,
        config: ConfigOptions,
    ) -> Result<Self, CatalogError> {
        let contents = store.load().await?;
        let mut metadata = Metadata::default();
        for schema in contents.schemas {
            if schema.catalog == catalog_name {
                metadata.schemas.insert(schema.schema);
            }
        }
        for table in contents.tables {
            if table.catalog == catalog_name {
                metadata
                    .tables
                    .insert((table.schema.clone(), table.name.clone()), table);
            }
        }
        metadata.files = contents.files;
        let warehouse = if warehouse.ends_with('/') {
            warehouse.to_string()
        } else {
            format!("{warehouse}/")
        };
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                catalog_name: catalog_name.to_string(),
                warehouse,
                config,
                metadata: RwLock::new(metadata),
                builtin: RwLock::new(BTreeMap::new()),
            }),
        })
    }

    /// The persistent store.
    pub fn store(&self) -> &CatalogStore {
        &self.inner.store
    }

    /// The catalog's name (the first part of three-part names).
    pub fn catalog_name(&self) -> &str {
        &self.inner.catalog_name
    }

    /// The URL managed tables are created under.
    pub fn warehouse(&self) -> &str {
        &self.inner.warehouse
    }

    /// The DataFusion catalog provider for this catalog.
    pub fn catalog_provider(&self) -> Arc<dyn CatalogProvider> {
        Arc::new(LakeCatalog {
            lakehouse: self.clone(),
        })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Metadata> {
        self.inner
            .metadata
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Metadata> {
        self.inner
            .metadata
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether `schema` exists (persistent or built-in).
    pub fn schema_exists(&self, schema: &str) -> bool {
        self.read().schemas.contains(schema) || self.builtin().contains_key(schema)
    }

    fn builtin(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Arc<dyn SchemaProvider>>> {
        self.inner
            .builtin
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether `schema` is built in (read-only, not persistent).
    pub fn is_builtin_schema(&self, schema: &str) -> bool {
        self.builtin().contains_key(schema)
    }

    /// The entry for `schema.name`, if any.
    pub fn table(&self, schema: &str, name: &str) -> Option<TableEntry> {
        self.read()
            .tables
            .get(&(schema.to_string(), name.to_string()))
            .cloned()
    }

    /// CREATE SCHEMA.
    pub async fn create_schema(
        &self,
        schema: &str,
        if_not_exists: bool,
    ) -> Result<(), CatalogError> {
        if self.is_builtin_schema(schema) {
            return if if_not_exists {
                Ok(())
            } else {
                Err(CatalogError::AlreadyExists {
                    kind: "schema",
                    name: format!("{}.{schema}", self.inner.catalog_name),
                })
            };
        }
        match self
            .inner
            .store
            .create_schema(&self.inner.catalog_name, schema)
            .await
        {
            Ok(()) => {}
            Err(CatalogError::AlreadyExists { .. }) if if_not_exists => {}
            Err(err) => return Err(err),
        }
        self.write().schemas.insert(schema.to_string());
        Ok(())
    }

    /// DROP SCHEMA; returns the tables dropped with it (CASCADE).
    pub async fn drop_schema(
        &self,
        schema: &str,
        if_exists: bool,
        cascade: bool,
    ) -> Result<Vec<TableEntry>, CatalogError> {
        if self.is_builtin_schema(schema) {
            return Err(CatalogError::NotFound {
                kind: "user schema",
                name: format!("{schema} (it is built in and cannot be dropped)"),
            });
        }
        let dropped = match self
            .inner
            .store
            .drop_schema(&self.inner.catalog_name, schema, cascade)
            .await
        {
            Ok(dropped) => dropped,
            Err(CatalogError::NotFound { .. }) if if_exists => return Ok(vec![]),
            Err(err) => return Err(err),
        };
        let mut metadata = self.write();
        metadata.schemas.remove(schema);
        for table in &dropped {
            metadata
                .tables
                .remove(&(table.schema.clone(), table.name.clone()));
            metadata.files.remove(&table.id);
        }
        Ok(dropped)
    }

    /// Creates a table or view with its first files; `replace` replaces one of the same kind.
    /// Returns the replaced entry, whose managed data the caller deletes.
    pub async fn create_table(
        &self,
        entry: TableEntry,
        files: Vec<DataFile>,
        replace: bool,
        write_id: Option<&str>,
    ) -> Result<Option<TableEntry>, CatalogError> {
        if self.is_builtin_schema(&entry.schema) {
            return Err(CatalogError::NotFound {
                kind: "user schema",
                name: format!("{} (built-in schemas are read-only)", entry.schema),
            });
        }
        let replaced = self
            .inner
            .store
            .create_table(&entry, &files, replace, write_id)
            .await?;
        let mut metadata = self.write();
        if let Some(old) = &replaced {
            metadata.files.remove(&old.id);
        }
        if entry.kind == TableKind::Managed {
            metadata.files.insert(entry.id.clone(), files);
        }
        metadata
            .tables
            .insert((entry.schema.clone(), entry.name.clone()), entry);
        Ok(replaced)
    }

    /// DROP TABLE / DROP VIEW; returns the dropped entry.
    pub async fn drop_table(&self, schema: &str, name: &str) -> Result<TableEntry, CatalogError> {
        let entry = self
            .inner
            .store
            .drop_table(&self.inner.catalog_name, schema, name)
            .await?;
        let mut metadata = self.write();
        metadata
            .tables
            .remove(&(schema.to_string(), name.to_string()));
        metadata.files.remove(&entry.id);
        Ok(entry)
    }

    /// ALTER TABLE ... RENAME TO.
    pub async fn rename_table(
        &self,
        from: (&str, &str),
        to: (&str, &str),
    ) -> Result<(), CatalogError> {
        let catalog = self.inner.catalog_name.as_str();
        self.inner
            .store
            .rename_table((catalog, from.0, from.1), (catalog, to.0, to.1))
            .await?;
        let mut metadata = self.write();
        if let Some(mut entry) = metadata
            .tables
            .remove(&(from.0.to_string(), from.1.to_string()))
        {
            entry.schema = to.0.to_string();
            entry.name = to.1.to_string();
            metadata
                .tables
                .insert((to.0.to_string(), to.1.to_string()), entry);
        }
        Ok(())
    }

    /// Publishes a finished write's files into a managed table.
    pub async fn append_files(
        &self,
        table_id: &str,
        files: Vec<DataFile>,
        write_id: &str,
    ) -> Result<(), CatalogError> {
        self.inner
            .store
            .append_files(table_id, &files, write_id)
            .await?;
        self.write()
            .files
            .entry(table_id.to_string())
            .or_default()
            .extend(files);
        Ok(())
    }

    fn provider(&self, schema: &str, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        let (entry, files) = {
            let metadata = self.read();
            let Some(entry) = metadata
                .tables
                .get(&(schema.to_string(), name.to_string()))
                .cloned()
            else {
                return Ok(None);
            };
            let files = metadata.files.get(&entry.id).cloned().unwrap_or_default();
            (entry, files)
        };
        tables::provider_for(&entry, files, &self.inner.config)
            .map(Some)
            .map_err(|err| {
                DataFusionError::Plan(format!(
                    "cannot open {}: {}",
                    entry.qualified_name(),
                    err.strip_backtrace()
                ))
            })
    }
}

/// The DataFusion view of the catalog.
#[derive(Debug)]
struct LakeCatalog {
    lakehouse: Lakehouse,
}

impl CatalogProvider for LakeCatalog {
    fn schema_names(&self) -> Vec<String> {
        let mut names: BTreeSet<String> = self.lakehouse.read().schemas.clone();
        names.extend(self.lakehouse.builtin().keys().cloned());
        names.into_iter().collect()
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        if let Some(builtin) = self.lakehouse.builtin().get(name) {
            return Some(Arc::clone(builtin));
        }
        self.lakehouse.read().schemas.contains(name).then(|| {
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
        if self.lakehouse.read().schemas.contains(name) {
            return Err(DataFusionError::Plan(format!(
                "schema {name} exists in the catalog; a built-in schema cannot replace it"
            )));
        }
        Ok(self
            .lakehouse
            .inner
            .builtin
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(name.to_string(), schema))
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
        self.lakehouse
            .read()
            .tables
            .keys()
            .filter(|(schema, _)| schema == &self.schema)
            .map(|(_, name)| name.clone())
            .collect()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        self.lakehouse.provider(&self.schema, name)
    }

    fn table_exist(&self, name: &str) -> bool {
        self.lakehouse
            .read()
            .tables
            .contains_key(&(self.schema.clone(), name.to_string()))
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
