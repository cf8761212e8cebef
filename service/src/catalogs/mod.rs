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
mod properties;
mod provider;
mod removal;
mod row_changes;
pub(crate) mod sql;
mod writes;

use crate::error::QueryError;
use crate::lakehouse::committed::CommittedCatalog;
use crate::lakehouse::formats::{MetadataCache, iceberg_query_error};
use crate::locations::Locations;
use datafusion::catalog::{CatalogProvider, CatalogProviderList};
use datafusion::common::ResolvedTableReference;
use datafusion::common::config::ConfigOptions;
use datafusion::execution::SessionState;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::logical_expr::LogicalPlan;
pub(crate) use merge::MergeStatement;
use osprey_catalog::{AttachedCatalogRecord, CatalogStore, ManagedBy};
use properties::{check, client, masked, property_name};
use provider::{IcebergCatalogProvider, ProviderParts};
pub(crate) use row_changes::RowChange;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
pub(crate) use writes::CreateRequest;

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

    /// The provider of the attached catalog `catalog`.
    fn provider(&self, catalog: &str) -> Result<Arc<IcebergCatalogProvider>, QueryError> {
        self.entries()
            .get(catalog)
            .map(|entry| Arc::clone(&entry.provider))
            .ok_or_else(|| QueryError::NotFound(format!("catalog {catalog} is not attached")))
    }

    /// Whether `catalog` is attached.
    pub(crate) fn is_attached(&self, catalog: &str) -> bool {
        self.entries().contains_key(catalog)
    }

    /// `INSERT INTO` (or, with `overwrite`, `INSERT OVERWRITE`) a table of an attached
    /// catalog; the rows written.
    pub(crate) async fn insert(
        &self,
        name: &ResolvedTableReference,
        state: &SessionState,
        committed: &CommittedCatalog,
        input: LogicalPlan,
        overwrite: bool,
    ) -> Result<u64, QueryError> {
        let provider = self.provider(&name.catalog)?;
        let target = provider.target();
        let (table, branch) = write_branch(name)?;
        let name = writes::WriteTable {
            namespace: &name.schema,
            table,
            branch: &branch,
        };
        writes::insert(&target, name, state, committed, input, overwrite).await
    }

    /// `DELETE` or `UPDATE` (`change`) on a table of an attached catalog, `input` being the
    /// DML plan's input; the rows changed.
    pub(crate) async fn change_rows(
        &self,
        name: &ResolvedTableReference,
        change: RowChange,
        state: &SessionState,
        committed: &CommittedCatalog,
        input: LogicalPlan,
    ) -> Result<u64, QueryError> {
        let provider = self.provider(&name.catalog)?;
        let target = provider.target();
        let (table, branch) = write_branch(name)?;
        let name = writes::WriteTable {
            namespace: &name.schema,
            table,
            branch: &branch,
        };
        row_changes::apply(&target, name, state, committed, input, change).await
    }

    /// `MERGE INTO` a table of an attached catalog; the rows inserted, updated and deleted.
    pub(crate) async fn merge(
        &self,
        name: &ResolvedTableReference,
        state: &SessionState,
        committed: &CommittedCatalog,
        statement: MergeStatement<'_>,
    ) -> Result<u64, QueryError> {
        let provider = self.provider(&name.catalog)?;
        let target = provider.target();
        let (table, branch) = write_branch(name)?;
        let name = writes::WriteTable {
            namespace: &name.schema,
            table,
            branch: &branch,
        };
        merge::merge(&target, name, state, committed, statement).await
    }

    /// `CREATE TABLE [IF NOT EXISTS] ... [WITH (...)] [AS SELECT]` in an attached catalog; the
    /// rows written.
    pub(crate) async fn create_table(
        &self,
        name: &ResolvedTableReference,
        request: &CreateRequest<'_>,
        input: Option<LogicalPlan>,
        state: &SessionState,
        committed: &CommittedCatalog,
    ) -> Result<u64, QueryError> {
        let provider = self.provider(&name.catalog)?;
        let target = provider.target();
        if request.or_replace && writes::exists(&target, &name.schema, &name.table).await? {
            let (namespace, table) = (&name.schema, &name.table);
            return writes::replace(
                &target,
                (namespace, table),
                request,
                input,
                state,
                committed,
            )
            .await;
        }
        let created = writes::create(&target, &name.schema, &name.table, request).await?;
        match (created, input) {
            (true, Some(input)) => self.insert(name, state, committed, input, false).await,
            _ => Ok(0),
        }
    }

    /// `ALTER TABLE [IF EXISTS]` of an attached catalog's table: one metadata change.
    pub(crate) async fn alter_table(
        &self,
        name: &ResolvedTableReference,
        alteration: &osprey_iceberg::TableAlteration,
        if_exists: bool,
    ) -> Result<(), QueryError> {
        let provider = self.provider(&name.catalog)?;
        let target = provider.target();
        writes::alter(&target, &name.schema, &name.table, alteration, if_exists).await
    }

    /// `ALTER TABLE ... EXECUTE procedure` on a table of an attached catalog; the figures of
    /// its result row.
    pub(crate) async fn run_procedure(
        &self,
        name: &ResolvedTableReference,
        procedure: crate::table_procedures::Procedure,
        state: &SessionState,
        committed: &CommittedCatalog,
    ) -> Result<Vec<u64>, QueryError> {
        let provider = self.provider(&name.catalog)?;
        let missing = || QueryError::TableNotFound(format!("table {name} does not exist"));
        let opened = provider
            .schema(&name.schema)
            .ok_or_else(missing)?
            .table(&name.table)
            .await?
            .ok_or_else(missing)?;
        let table = opened
            .as_ref()
            .downcast_ref::<osprey_iceberg::IcebergTable>()
            .cloned()
            .ok_or_else(|| {
                QueryError::NotSupported(format!(
                    "{} on {name}, which is not an Iceberg table",
                    procedure.name()
                ))
            })?;
        let target = provider.target();
        maintenance::run(&target, name, table, state, committed, procedure).await
    }

    /// `ALTER TABLE [IF EXISTS] ... RENAME TO` of an attached catalog's table, to `to`
    /// (namespace, name) in the same catalog.
    pub(crate) async fn rename_table(
        &self,
        name: &ResolvedTableReference,
        to: (&str, &str),
        if_exists: bool,
    ) -> Result<(), QueryError> {
        let provider = self.provider(&name.catalog)?;
        let target = provider.target();
        let failed = |err| iceberg_query_error(&name.to_string(), err);
        target.client.check_writable().map_err(failed)?;
        if !writes::exists(&target, &name.schema, &name.table).await? {
            return match if_exists {
                true => Ok(()),
                false => Err(QueryError::TableNotFound(format!(
                    "table {name} does not exist"
                ))),
            };
        }
        target
            .client
            .rename_table((&name.schema, &name.table), to)
            .await
            .map_err(failed)
    }

    /// `DROP TABLE [IF EXISTS]` of an attached catalog's table (its files stay).
    pub(crate) async fn drop_table(
        &self,
        name: &ResolvedTableReference,
        if_exists: bool,
    ) -> Result<(), QueryError> {
        let provider = self.provider(&name.catalog)?;
        writes::drop(&provider.target(), &name.schema, &name.table, if_exists).await
    }

    /// `CREATE SCHEMA [IF NOT EXISTS] catalog.namespace` in an attached catalog.
    pub(crate) async fn create_namespace(
        &self,
        catalog: &str,
        namespace: &str,
        if_not_exists: bool,
    ) -> Result<(), QueryError> {
        let provider = self.provider(catalog)?;
        let target = provider.target();
        let failed = |err| iceberg_query_error(&format!("{catalog}.{namespace}"), err);
        let client = target.client;
        client.check_writable().map_err(failed)?;
        let exists = client
            .namespaces()
            .await
            .map_err(failed)?
            .iter()
            .any(|n| n == namespace);
        match (exists, if_not_exists) {
            (true, true) => Ok(()),
            (true, false) => Err(QueryError::InvalidStatement(format!(
                "schema {catalog}.{namespace} already exists"
            ))),
            (false, _) => client.create_namespace(namespace).await.map_err(failed),
        }
    }

    /// `DROP SCHEMA [IF EXISTS] catalog.namespace` of an attached catalog: only an empty one.
    pub(crate) async fn drop_namespace(
        &self,
        catalog: &str,
        namespace: &str,
        if_exists: bool,
    ) -> Result<(), QueryError> {
        let provider = self.provider(catalog)?;
        let target = provider.target();
        let failed = |err| iceberg_query_error(&format!("{catalog}.{namespace}"), err);
        target.client.check_writable().map_err(failed)?;
        match target
            .client
            .drop_namespace(namespace)
            .await
            .map_err(failed)?
            || if_exists
        {
            true => Ok(()),
            false => Err(QueryError::NotFound(format!(
                "schema {catalog}.{namespace} does not exist"
            ))),
        }
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

/// The table a write names and the branch it goes on: `t` writes `main`; `t$ref=audit` (how
/// `t.branch_audit` and `FOR VERSION AS OF 'audit'` reach the planner) writes `audit`. A
/// snapshot id or a point in time cannot be written.
fn write_branch(name: &ResolvedTableReference) -> Result<(&str, String), QueryError> {
    let Some((table, suffix)) = name.table.split_once(crate::time_travel::VERSION_SEPARATOR) else {
        return Ok((&name.table, "main".to_string()));
    };
    match crate::time_travel::TableVersion::from_suffix(suffix) {
        Some(crate::time_travel::TableVersion::Ref(branch)) => Ok((table, branch)),
        _ => Err(QueryError::InvalidStatement(format!(
            "{}.{}.{table}: a write goes to the table's current snapshot or to a branch \
             ({table}.branch_<name>), not to a snapshot id or a point in time",
            name.catalog, name.schema
        ))),
    }
}
