//! Attached catalogs: other catalogs whose namespaces and tables read as
//! `catalog.namespace.table`, next to Osprey's own (Trino's dynamic catalogs).
//!
//! - `CREATE CATALOG lake USING iceberg WITH (type = 'rest', uri = '...', ...)` attaches an
//!   Iceberg REST, SQL (JDBC) or Hadoop catalog ([`properties`] lists what each kind takes);
//!   `DROP CATALOG`, `SHOW CATALOGS`, `SHOW CREATE CATALOG` ([`sql`]). They are kept in the
//!   catalog database and come back at the next start.
//! - `[[catalogs]]` in the configuration file attaches catalogs for the life of the process;
//!   SQL cannot replace or drop those.
//!
//! Secrets in the WITH clause (`credential`, `token`, a password in `uri`) are stored once and
//! never shown back: `SHOW CREATE CATALOG` masks them, and nothing logs them. Reading storage
//! uses the coordinator's and executors' own storage configuration (`[[storage]]`); plans carry
//! locations, never credentials.
//!
//! Every statement sees the attached catalogs through [`AttachedCatalogs::overlay`], which adds
//! them to the session's catalogs before the policy chooses what the session sees.

mod maintenance;
mod merge;
mod places;
mod properties;
mod provider;
mod removal;
mod routed;
mod row_changes;
pub(crate) mod sql;
mod table_ddl;
mod warehouse;
mod writes;

use crate::error::QueryError;
use crate::lakehouse::committed::CommittedCatalog;
use crate::lakehouse::formats::MetadataCache;
use crate::locations::Locations;
use datafusion::catalog::{CatalogProvider, CatalogProviderList};
use datafusion::common::ResolvedTableReference;
use datafusion::common::config::ConfigOptions;
use datafusion::execution::runtime_env::RuntimeEnv;
pub(crate) use merge::MergeStatement;
use osprey_catalog::{AttachedCatalogRecord, CatalogStore, ManagedBy};
use places::TablePlaces;
use properties::{check, client, masked, property_name};
use provider::{IcebergCatalogProvider, ProviderParts};
pub(crate) use row_changes::RowChange;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
pub(crate) use table_ddl::CreateRequest;
pub(crate) use warehouse::{WarehouseCatalog, is_owned_iceberg};

/// How long a listing of every attached catalog waits for each one.
const LISTING_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// A catalog from the configuration file (`[[catalogs]]`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CatalogConfig {
    /// Its name.
    pub name: String,
    /// The connector (`iceberg`).
    pub connector: String,
    /// Its properties, as a WITH clause would give them.
    pub properties: BTreeMap<String, String>,
}

/// One attached catalog, as `SHOW CREATE CATALOG` describes it.
#[derive(Debug, Clone)]
pub struct AttachedCatalog {
    /// Its name.
    pub name: String,
    /// The connector.
    pub connector: String,
    /// Its properties, secrets masked.
    pub properties: BTreeMap<String, String>,
    /// Who defines it: the configuration or SQL.
    pub managed_by: ManagedBy,
}

#[derive(Clone)]
struct Entry {
    shown: AttachedCatalog,
    provider: Arc<IcebergCatalogProvider>,
}

/// The attached catalogs, shared by the coordinator (see the module docs).
#[derive(Clone)]
pub struct AttachedCatalogs {
    inner: Arc<Inner>,
}

struct Inner {
    store: CatalogStore,
    parts: ProviderParts,
    /// Names no attached catalog may take: Osprey's own catalog and `system`.
    reserved: Vec<String>,
    entries: RwLock<BTreeMap<String, Entry>>,
    /// Osprey's own Iceberg tables, written as an attached catalog's are (see
    /// [`AttachedCatalogs::serve_warehouse`]).
    warehouse: std::sync::OnceLock<(WarehouseCatalog, Arc<IcebergCatalogProvider>)>,
}

impl std::fmt::Debug for AttachedCatalogs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttachedCatalogs")
            .field("names", &self.entries().keys().collect::<Vec<_>>())
            .finish()
    }
}

impl AttachedCatalogs {
    /// Attaches the catalogs of the configuration (`configured`; a bad one stops the start)
    /// and those stored in `store` (a bad one is logged and left out). `own_catalog` is the
    /// name of Osprey's catalog; `config` and `runtime` are what tables are read with, and
    /// `storage` (`runtime`'s object stores) keeps the credentials catalogs vend.
    pub async fn load(
        store: CatalogStore,
        configured: &[CatalogConfig],
        own_catalog: &str,
        config: Arc<ConfigOptions>,
        runtime: Arc<RuntimeEnv>,
        storage: Arc<osprey_engine::StorageRegistry>,
        locations: Locations,
    ) -> Result<Self, QueryError> {
        let attached = Self {
            inner: Arc::new(Inner {
                store: store.clone(),
                parts: ProviderParts {
                    metadata: Arc::new(MetadataCache::default()),
                    config,
                    runtime,
                    locations,
                    storage,
                },
                reserved: vec![own_catalog.to_string(), "system".to_string()],
                entries: RwLock::new(BTreeMap::new()),
                warehouse: std::sync::OnceLock::new(),
            }),
        };
        for catalog in configured {
            let properties = catalog
                .properties
                .iter()
                .map(|(name, value)| (property_name(name), value.clone()))
                .collect();
            let connector = match catalog.connector.as_str() {
                "" => "iceberg",
                connector => connector,
            };
            let entry = attached.entry(&catalog.name, connector, properties, ManagedBy::Config)?;
            attached.entries_mut().insert(catalog.name.clone(), entry);
        }
        for record in store.attached_catalogs().await? {
            if attached.entries().contains_key(&record.name) {
                tracing::warn!(catalog = %record.name, "an attached catalog of the same name is in the configuration, which wins");
                continue;
            }
            match attached.entry(
                &record.name,
                &record.connector,
                record.properties,
                ManagedBy::Sql,
            ) {
                Ok(entry) => {
                    attached.entries_mut().insert(record.name, entry);
                }
                Err(err) => {
                    tracing::warn!(catalog = %record.name, error = %err, "attached catalog left out")
                }
            }
        }
        Ok(attached)
    }

    /// The attached catalogs, to change.
    fn entries_mut(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Entry>> {
        self.inner
            .entries
            .write()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// The attached catalogs, to read (every table a statement names looks here).
    fn entries(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Entry>> {
        self.inner.entries.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The provider of the attached catalog `catalog`, or of Osprey's own Iceberg tables
    /// when `catalog` is Osprey's catalog.
    fn provider(&self, catalog: &str) -> Result<Arc<IcebergCatalogProvider>, QueryError> {
        if let Some(entry) = self.entries().get(catalog) {
            return Ok(Arc::clone(&entry.provider));
        }
        match self.inner.warehouse.get() {
            Some((warehouse, provider)) if warehouse.catalog_name() == catalog => {
                Ok(Arc::clone(provider))
            }
            _ => Err(QueryError::NotFound(format!(
                "catalog {catalog} is not attached"
            ))),
        }
    }

    /// Serves the Iceberg tables of Osprey's own catalog `committed` through the same writes
    /// as an attached catalog's, their files kept under its warehouse. Called once, when the
    /// engine is built; later calls change nothing.
    pub(crate) fn serve_warehouse(&self, committed: CommittedCatalog) {
        let warehouse = WarehouseCatalog::new(committed, Arc::clone(&self.inner.parts.runtime));
        let places = TablePlaces::warehouse(warehouse.warehouse());
        let provider = Arc::new(IcebergCatalogProvider::new(
            warehouse.catalog_name(),
            Arc::new(warehouse.clone()),
            self.inner.parts.clone(),
            places,
        ));
        let _ = self.inner.warehouse.set((warehouse, provider));
    }

    /// Osprey's own Iceberg tables, as a catalog.
    pub(crate) fn warehouse(&self) -> Option<&WarehouseCatalog> {
        self.inner.warehouse.get().map(|(warehouse, _)| warehouse)
    }

    /// Whether `name` is an Iceberg table of Osprey's own catalog (or a branch of one,
    /// `t$ref=<branch>`).
    pub(crate) fn is_owned_iceberg(&self, name: &ResolvedTableReference) -> bool {
        let table = name
            .table
            .split_once(crate::time_travel::VERSION_SEPARATOR)
            .map_or(name.table.as_ref(), |(table, _)| table);
        self.warehouse().is_some_and(|warehouse| {
            warehouse.catalog_name() == name.catalog.as_ref()
                && warehouse.entry(&name.schema, table).is_some()
        })
    }

    /// Whether `name`'s catalog is Osprey's own, whose new tables are Iceberg tables.
    pub(crate) fn is_own_catalog(&self, catalog: &str) -> bool {
        self.warehouse()
            .is_some_and(|warehouse| warehouse.catalog_name() == catalog)
    }

    /// Whether `catalog` is attached.
    pub(crate) fn is_attached(&self, catalog: &str) -> bool {
        self.entries().contains_key(catalog)
    }

    /// Whether no catalog is attached.
    pub(crate) fn is_empty(&self) -> bool {
        self.entries().is_empty()
    }

    /// Builds (without contacting it) the catalog `name`.
    fn entry(
        &self,
        name: &str,
        connector: &str,
        properties: BTreeMap<String, String>,
        managed_by: ManagedBy,
    ) -> Result<Entry, QueryError> {
        if self.inner.reserved.iter().any(|reserved| reserved == name) {
            return Err(QueryError::InvalidStatement(format!(
                "{name} is the name of a built-in catalog: choose another"
            )));
        }
        osprey_catalog::check_name("catalog", name)
            .map_err(|err| QueryError::InvalidStatement(err.to_string()))?;
        check(connector, &properties)?;
        let client = client(name, &properties, &self.inner.parts.runtime)?;
        Ok(Entry {
            shown: AttachedCatalog {
                name: name.to_string(),
                connector: connector.to_string(),
                properties: masked(&properties),
                managed_by,
            },
            provider: Arc::new(IcebergCatalogProvider::new(
                name,
                client,
                self.inner.parts.clone(),
                TablePlaces::OutsideOspreyStorage(self.inner.parts.locations.clone()),
            )),
        })
    }

    /// Every attached catalog, by name, secrets masked.
    pub fn list(&self) -> Vec<AttachedCatalog> {
        self.entries().values().map(|e| e.shown.clone()).collect()
    }

    /// `CREATE [OR REPLACE] CATALOG`: checks the catalog answers (it lists its namespaces),
    /// then stores it. `IF NOT EXISTS` leaves an existing one alone.
    pub(crate) async fn attach(
        &self,
        record: AttachedCatalogRecord,
        replace: bool,
        if_not_exists: bool,
    ) -> Result<(), QueryError> {
        let name = record.name.clone();
        if let Some(existing) = self.entries().get(&name) {
            if existing.shown.managed_by == ManagedBy::Config {
                return Err(QueryError::InvalidStatement(format!(
                    "catalog {name} is defined by the configuration file; change it there"
                )));
            }
            if if_not_exists {
                return Ok(());
            }
            if !replace {
                return Err(QueryError::InvalidStatement(format!(
                    "catalog {name} already exists: use CREATE OR REPLACE CATALOG, or DROP \
                     CATALOG first"
                )));
            }
        }
        let entry = self.entry(
            &name,
            &record.connector,
            record.properties.clone(),
            ManagedBy::Sql,
        )?;
        entry.provider.refresh().await?;
        self.inner.store.attach_catalog(&record, replace).await?;
        self.entries_mut().insert(name, entry);
        Ok(())
    }

    /// `DROP CATALOG [IF EXISTS]`: detaches it; its tables are untouched.
    pub(crate) async fn detach(&self, name: &str, if_exists: bool) -> Result<(), QueryError> {
        match self.entries().get(name).map(|e| e.shown.managed_by) {
            None if if_exists => return Ok(()),
            None => {
                return Err(QueryError::NotFound(format!(
                    "catalog {name} does not exist: SHOW CATALOGS lists them"
                )));
            }
            Some(ManagedBy::Config) => {
                return Err(QueryError::InvalidStatement(format!(
                    "catalog {name} is defined by the configuration file; remove it there"
                )));
            }
            Some(ManagedBy::Sql) => {}
        }
        self.inner.store.detach_catalog(name).await?;
        self.entries_mut().remove(name);
        Ok(())
    }

    /// Whether `name` is an attached catalog.
    pub(crate) fn contains(&self, name: &str) -> bool {
        self.entries().contains_key(name)
    }

    /// Whether the attached catalog `catalog` had the namespace `namespace` when last listed.
    pub(crate) fn has_namespace(&self, catalog: &str, namespace: &str) -> bool {
        let provider = self.entries().get(catalog).map(|e| Arc::clone(&e.provider));
        provider.is_some_and(|p| p.schema_names().iter().any(|n| n == namespace))
    }

    /// `catalogs` with the attached catalogs added.
    pub(crate) fn overlay(
        &self,
        catalogs: Arc<dyn CatalogProviderList>,
    ) -> Arc<dyn CatalogProviderList> {
        Arc::new(WithAttached {
            inner: catalogs,
            attached: self.clone(),
        })
    }

    /// Lists the namespaces and tables of the attached catalog `name` again, or of every one
    /// (`None`; then a catalog that does not answer keeps its last listing, and is logged).
    pub async fn refresh(&self, name: Option<&str>) -> Result<(), QueryError> {
        let providers: Vec<(String, Arc<IcebergCatalogProvider>)> = self
            .entries()
            .iter()
            .filter(|(catalog, _)| name.is_none_or(|wanted| wanted == catalog.as_str()))
            .map(|(catalog, entry)| (catalog.clone(), Arc::clone(&entry.provider)))
            .collect();
        // Listing every catalog waits a bounded time for each: a slow one keeps its last
        // listing rather than holding up the others.
        let results = futures::future::join_all(providers.iter().map(|(_, provider)| async move {
            match name {
                Some(_) => provider.refresh().await,
                None => tokio::time::timeout(LISTING_WAIT, provider.refresh())
                    .await
                    .unwrap_or_else(|_| {
                        Err(QueryError::CatalogUnavailable(format!(
                            "no answer within {} s",
                            LISTING_WAIT.as_secs()
                        )))
                    }),
            }
        }))
        .await;
        for ((catalog, _), result) in providers.iter().zip(results) {
            match result {
                Err(err) if name.is_some() => return Err(err),
                Err(err) => tracing::warn!(%catalog, error = %err, "cannot list catalog"),
                Ok(()) => {}
            }
        }
        Ok(())
    }
}

/// A session's catalogs with the attached ones added.
#[derive(Debug)]
struct WithAttached {
    inner: Arc<dyn CatalogProviderList>,
    attached: AttachedCatalogs,
}

impl CatalogProviderList for WithAttached {
    fn register_catalog(
        &self,
        name: String,
        catalog: Arc<dyn CatalogProvider>,
    ) -> Option<Arc<dyn CatalogProvider>> {
        self.inner.register_catalog(name, catalog)
    }

    fn catalog_names(&self) -> Vec<String> {
        let mut names = self.inner.catalog_names();
        names.extend(self.attached.entries().keys().cloned());
        names
    }

    fn catalog(&self, name: &str) -> Option<Arc<dyn CatalogProvider>> {
        if let Some(entry) = self.attached.entries().get(name) {
            return Some(Arc::clone(&entry.provider) as Arc<dyn CatalogProvider>);
        }
        self.inner.catalog(name)
    }
}
