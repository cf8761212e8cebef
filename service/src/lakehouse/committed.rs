//! The catalog as committed: schemas, tables and managed tables' files, kept in the persistent
//! [`osprey_catalog::CatalogStore`] with an in-memory copy for planning.
//!
//! Every change goes to the database first, in one transaction, and only then to the memory
//! copy, so what queries see is always something the database has committed. The coordinator
//! is the only writer of its catalog database.

use datafusion::catalog::SchemaProvider;
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

/// The coordinator's catalog as committed: the store plus its in-memory copy. It knows no
/// table format: it keeps entries and files, and the formats give them meaning.
#[derive(Clone)]
pub struct CommittedCatalog {
    inner: Arc<Inner>,
}

struct Inner {
    store: CatalogStore,
    catalog_name: String,
    warehouse: String,
    metadata: RwLock<Metadata>,
    /// Schemas that live only in memory: `system` and the built-in datasets.
    builtin: RwLock<BTreeMap<String, Arc<dyn SchemaProvider>>>,
}

impl std::fmt::Debug for CommittedCatalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommittedCatalog")
            .field("catalog", &self.inner.catalog_name)
            .field("warehouse", &self.inner.warehouse)
            .finish()
    }
}

impl CommittedCatalog {
    /// Loads the catalog `catalog_name` from `store`. Managed tables go under `warehouse` (a
    /// URL ending in `/`).
    pub async fn load(
        store: CatalogStore,
        catalog_name: &str,
        warehouse: &str,
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

    /// Creates the Iceberg table `entry`, whose first metadata file is at `metadata_location`.
    pub async fn create_iceberg_table(
        &self,
        entry: TableEntry,
        metadata_location: &str,
    ) -> Result<(), CatalogError> {
        if self.is_builtin_schema(&entry.schema) {
            return Err(CatalogError::NotFound {
                kind: "user schema",
                name: format!("{} (built-in schemas are read-only)", entry.schema),
            });
        }
        self.inner
            .store
            .create_iceberg_table(&entry, metadata_location)
            .await?;
        self.write()
            .tables
            .insert((entry.schema.clone(), entry.name.clone()), entry);
        Ok(())
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

    /// A table's entry and its committed files (empty for all but managed tables).
    pub fn table_with_files(
        &self,
        schema: &str,
        name: &str,
    ) -> Option<(TableEntry, Vec<DataFile>)> {
        let metadata = self.read();
        let entry = metadata
            .tables
            .get(&(schema.to_string(), name.to_string()))
            .cloned()?;
        let files = metadata.files.get(&entry.id).cloned().unwrap_or_default();
        Some((entry, files))
    }

    /// Every schema: the persistent ones and the built-in ones.
    pub fn schema_names(&self) -> Vec<String> {
        let mut names: BTreeSet<String> = self.read().schemas.clone();
        names.extend(self.builtin().keys().cloned());
        names.into_iter().collect()
    }

    /// The built-in schema `name`, if there is one.
    pub fn builtin_schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        self.builtin().get(name).cloned()
    }

    /// Whether the persistent schema `name` exists.
    pub fn persistent_schema_exists(&self, name: &str) -> bool {
        self.read().schemas.contains(name)
    }

    /// Registers an in-memory, built-in schema (`system`, the TPC-H dataset), refused where a
    /// persistent schema has the name. Returns the one it replaced.
    pub fn register_builtin_schema(
        &self,
        name: &str,
        schema: Arc<dyn SchemaProvider>,
    ) -> Result<Option<Arc<dyn SchemaProvider>>, CatalogError> {
        if self.read().schemas.contains(name) {
            return Err(CatalogError::AlreadyExists {
                kind: "schema",
                name: format!(
                    "{}.{name} (a built-in schema cannot replace it)",
                    self.inner.catalog_name
                ),
            });
        }
        Ok(self
            .inner
            .builtin
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(name.to_string(), schema))
    }

    /// The names of the tables and views in `schema`.
    pub fn table_names(&self, schema: &str) -> Vec<String> {
        self.read()
            .tables
            .keys()
            .filter(|(owner, _)| owner == schema)
            .map(|(_, name)| name.clone())
            .collect()
    }

    /// Whether `schema.name` exists.
    pub fn table_exists(&self, schema: &str, name: &str) -> bool {
        self.read()
            .tables
            .contains_key(&(schema.to_string(), name.to_string()))
    }
}
