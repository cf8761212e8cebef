//! An attached Iceberg catalog as DataFusion sees it: its namespaces are schemas, its tables
//! tables.
//!
//! DataFusion lists schemas and tables synchronously, while a catalog answers over the network,
//! so the names are kept as last listed and listed again before every listing (`SHOW`,
//! `information_schema`, a driver's metadata calls; see [`super::refresh_listings`]). Opening
//! a table always asks the catalog, so a statement reads the table's current snapshot even
//! when the names are older.

use super::places::TablePlaces;
use crate::error::QueryError;
use crate::lakehouse::formats::{MetadataCache, iceberg_query_error, iceberg_suffix_table};
use crate::locations::Locations;
use datafusion::catalog::{CatalogProvider, SchemaProvider, TableProvider};
use datafusion::common::DataFusionError;
use datafusion::common::config::ConfigOptions;
use datafusion::error::Result;
use datafusion::execution::runtime_env::RuntimeEnv;
use futures::{StreamExt, TryStreamExt};
use osprey_engine::StorageRegistry;
use osprey_iceberg::{IcebergCatalog, IcebergError};
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

/// How many namespaces of one catalog are listed at once.
const PARALLEL_LISTINGS: usize = 8;

/// An attached Iceberg catalog (see the module docs).
#[derive(Debug)]
pub(crate) struct IcebergCatalogProvider {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Its name in Osprey.
    name: String,
    client: Arc<dyn IcebergCatalog>,
    metadata: Arc<MetadataCache>,
    config: Arc<ConfigOptions>,
    runtime: Arc<RuntimeEnv>,
    places: TablePlaces,
    storage: Arc<StorageRegistry>,
    /// Namespaces and their tables, as last listed.
    listed: RwLock<BTreeMap<String, Vec<String>>>,
}

/// What an attached catalog is opened with, besides its client.
#[derive(Debug, Clone)]
pub(crate) struct ProviderParts {
    /// Parsed metadata files, shared by every attached catalog.
    pub metadata: Arc<MetadataCache>,
    /// Defaults for reading (view types).
    pub config: Arc<ConfigOptions>,
    /// The coordinator's object stores.
    pub runtime: Arc<RuntimeEnv>,
    /// To keep tables off Osprey's own storage.
    pub locations: Locations,
    /// Where credentials a catalog vends for a table are registered (the coordinator's
    /// object stores, which share them with executors).
    pub storage: Arc<StorageRegistry>,
}

impl IcebergCatalogProvider {
    /// The catalog `name`, read through `client`, its tables' files kept in `places`.
    pub(crate) fn new(
        name: &str,
        client: Arc<dyn IcebergCatalog>,
        parts: ProviderParts,
        places: TablePlaces,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                name: name.to_string(),
                client,
                metadata: parts.metadata,
                config: parts.config,
                runtime: parts.runtime,
                places,
                storage: parts.storage,
                listed: RwLock::new(BTreeMap::new()),
            }),
        }
    }

    /// Lists the namespaces and their tables again.
    pub(crate) async fn refresh(&self) -> Result<(), QueryError> {
        let inner = &self.inner;
        let namespaces = inner
            .client
            .namespaces()
            .await
            .map_err(|err| inner.error(err))?;
        // A few namespaces at a time: a catalog with many is not asked all at once.
        // Owned futures (a client and a name each), so the stream is `Send` for any lifetime.
        let listings = namespaces.clone().into_iter().map(|namespace| {
            let client = Arc::clone(&inner.client);
            async move { client.table_names(&namespace).await }
        });
        let tables: Vec<Vec<String>> = futures::stream::iter(listings)
            .buffered(PARALLEL_LISTINGS)
            .try_collect()
            .await
            .map_err(|err| inner.error(err))?;
        *inner.listed.write().unwrap_or_else(|p| p.into_inner()) =
            namespaces.into_iter().zip(tables).collect();
        Ok(())
    }
}

impl Inner {
    fn listed(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Vec<String>>> {
        self.listed.read().unwrap_or_else(|p| p.into_inner())
    }

    /// A catalog's error as a statement error naming the catalog.
    fn error(&self, err: IcebergError) -> QueryError {
        iceberg_query_error(&format!("catalog {}", self.name), err)
    }

    /// Opens `namespace.name`, or one of its versions or metadata tables (`name$suffix`).
    async fn table(&self, namespace: &str, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        let (table_name, suffix) = match name.split_once('$') {
            Some((table, suffix)) => (table, Some(suffix)),
            None => (name, None),
        };
        let qualified = format!("{}.{namespace}.{table_name}", self.name);
        let failed = |err: QueryError| DataFusionError::External(Box::new(err));
        let Some(loaded) = self
            .client
            .load_table(namespace, table_name)
            .await
            .map_err(|err| failed(self.error(err)))?
        else {
            return Ok(None);
        };
        let file = loaded.metadata_location;
        let credentials = loaded.credentials;
        let metadata = match (self.metadata.cached(&file), loaded.metadata) {
            (Some(cached), _) => cached,
            (None, Some(sent)) => self.metadata.keep(file.clone(), sent),
            (None, None) => self
                .metadata
                .load(&self.runtime, &file)
                .await
                .map_err(|err| failed(self.error(err)))?,
        };
        // The table's files stay under its own location, and that is never Osprey's storage.
        self.places.check(&metadata.location).map_err(failed)?;
        let mut table = self
            .metadata
            .table(metadata, &file, &self.config)
            .map_err(|err| failed(self.error(err)))?;
        if let Some(credentials) = credentials {
            // Read with what the catalog vended, through a store URL that names them.
            let bucket = table.location().own_store_url();
            match self
                .storage
                .vend(bucket.as_str(), super::writes::vended(credentials))
            {
                Ok(store) => table = table.with_store_url(store),
                Err(err) => {
                    tracing::debug!(table = %qualified, "vended credentials not used: {err}");
                }
            }
        }
        match suffix {
            None => {
                // Nothing in Osprey creates it: SHOW CREATE TABLE describes it instead.
                let definition = format!(
                    "-- {qualified}: a table of the attached Iceberg catalog {} (SHOW CREATE \
                     CATALOG {}), at {}\n{}",
                    self.name,
                    self.name,
                    osprey_iceberg::table_root(&file),
                    table.layout_comment()
                );
                Ok(Some(Arc::new(table.with_definition(definition))))
            }
            Some(suffix) => iceberg_suffix_table(table, &qualified, suffix, &self.runtime)
                .await
                .map(Some),
        }
    }
}

impl IcebergCatalogProvider {
    /// What writes to this catalog's tables need (see [`super::writes`]).
    pub(super) fn target(&self) -> super::writes::CatalogTarget<'_> {
        let inner = &self.inner;
        super::writes::CatalogTarget {
            catalog_name: &inner.name,
            client: &inner.client,
            runtime: &inner.runtime,
            places: &inner.places,
            storage: &inner.storage,
        }
    }
}

impl CatalogProvider for IcebergCatalogProvider {
    fn schema_names(&self) -> Vec<String> {
        self.inner.listed().keys().cloned().collect()
    }

    /// Every name is a schema: the catalog answers when a table is opened, so a namespace
    /// created since the last listing is readable at once.
    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        Some(Arc::new(Namespace {
            catalog: Arc::clone(&self.inner),
            name: name.to_string(),
        }))
    }
}

/// One namespace of an attached catalog.
#[derive(Debug)]
struct Namespace {
    catalog: Arc<Inner>,
    name: String,
}

#[async_trait::async_trait]
impl SchemaProvider for Namespace {
    fn table_names(&self) -> Vec<String> {
        self.catalog
            .listed()
            .get(&self.name)
            .cloned()
            .unwrap_or_default()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        self.catalog.table(&self.name, name).await
    }

    fn table_exist(&self, name: &str) -> bool {
        self.catalog
            .listed()
            .get(&self.name)
            .is_some_and(|tables| tables.iter().any(|t| t == name))
    }
}
