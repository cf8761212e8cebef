//! Apache Iceberg tables (`osprey_iceberg`), registered by their metadata file or their table
//! directory:
//!
//! ```sql
//! CREATE EXTERNAL TABLE t STORED AS ICEBERG LOCATION 's3://lake/db/t/metadata/v3.metadata.json';
//! CREATE EXTERNAL TABLE t STORED AS ICEBERG LOCATION 's3://lake/db/t';
//! ```
//!
//! A table registered by its directory reads the newest metadata there at each query, so
//! commits by other engines show at the next query; one registered by a metadata file stays at
//! that version. Metadata files never change once written, so they are cached by location.
//!
//! Osprey's own Iceberg tables (the default kind of `CREATE TABLE` in its catalog) are managed
//! entries of this format whose current metadata file the catalog database keeps
//! (`crate::catalogs::WarehouseCatalog` commits to them); DROP deletes their files.
//!
//! Its metadata reads as tables, as in Trino: `SELECT * FROM "t$snapshots"` (also `$history`,
//! `$refs`, `$manifests`, `$files` and `$partitions`); its earlier versions with
//! `FOR VERSION AS OF` and
//! `FOR TIMESTAMP AS OF` ([`crate::time_travel`]).

use super::TableFormat;
use crate::error::QueryError;
use crate::lakehouse::tables::{encode_schema, show_create};
use crate::time_travel::TableVersion;
use datafusion::catalog::TableProvider;
use datafusion::common::DataFusionError;
use datafusion::common::config::ConfigOptions;
use datafusion::error::Result;
use datafusion::execution::context::SessionState;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::logical_expr::CreateExternalTable;
use osprey_catalog::{DataFile, TableDefinition, TableEntry, TableKind};
use osprey_iceberg::{
    IcebergError, IcebergTable, ManifestCache, MetadataTable, StoreLocation, TableMetadata,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// How many metadata files the cache keeps; past it, it starts again.
const CACHED_METADATA_FILES: usize = 256;

/// Apache Iceberg tables, read (see the module docs).
#[derive(Debug, Default)]
pub struct IcebergFormat {
    metadata: MetadataCache,
    /// The catalog database, which keeps the current metadata file of the Iceberg tables
    /// Osprey owns (without it, only external Iceberg tables are read).
    owned: Option<osprey_catalog::CatalogStore>,
}

/// Parsed Iceberg metadata files, by location: a metadata file never changes once written.
#[derive(Debug, Default)]
pub(crate) struct MetadataCache {
    files: Mutex<HashMap<String, Arc<TableMetadata>>>,
    /// Manifests already read: immutable too.
    manifests: Arc<ManifestCache>,
}

impl MetadataCache {
    /// The metadata to read for the table at `location` (a metadata file or a table
    /// directory), from the cache when that file was read before.
    pub(crate) async fn load(
        &self,
        runtime: &RuntimeEnv,
        location: &str,
    ) -> Result<Arc<TableMetadata>, IcebergError> {
        let store_url = StoreLocation::parse(location)?.store_url();
        let store = runtime
            .object_store(&store_url)
            .map_err(|err| IcebergError::Invalid(format!("cannot reach {location}: {err}")))?;
        let file = osprey_iceberg::metadata_location(store.as_ref(), location).await?;
        if let Some(cached) = self.cached(&file) {
            return Ok(cached);
        }
        let metadata = osprey_iceberg::read_metadata(store.as_ref(), &file).await?;
        Ok(self.keep(file, metadata))
    }

    /// The metadata file at `file`, as cached.
    pub(crate) fn cached(&self, file: &str) -> Option<Arc<TableMetadata>> {
        self.files().get(file).cloned()
    }

    /// Keeps `metadata`, read from `file` (or sent by a catalog), and returns it.
    pub(crate) fn keep(&self, file: String, metadata: TableMetadata) -> Arc<TableMetadata> {
        let metadata = Arc::new(metadata);
        let mut files = self.files();
        if files.len() >= CACHED_METADATA_FILES {
            files.clear();
        }
        files.insert(file, Arc::clone(&metadata));
        metadata
    }

    fn files(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<TableMetadata>>> {
        self.files
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl MetadataCache {
    /// The table provider for an Iceberg table's `metadata`, found at `location` (its
    /// directory or metadata file), reading manifests through this cache.
    pub(crate) fn table(
        &self,
        metadata: Arc<TableMetadata>,
        location: &str,
        config: &ConfigOptions,
    ) -> Result<IcebergTable, IcebergError> {
        Ok(IcebergTable::new(
            metadata,
            &osprey_iceberg::table_root(location),
            config.execution.parquet.schema_force_view_types,
        )?
        .with_manifest_cache(Arc::clone(&self.manifests)))
    }
}

/// `"<table>$<suffix>"` of the Iceberg table `table` (named `name` in messages): a version
/// (`$version=<id>`, `$ref=<name>`, `$timestamp=<ms>`, written by [`crate::time_travel`]) or
/// a metadata table (`$snapshots`, ...).
pub(crate) async fn iceberg_suffix_table(
    table: IcebergTable,
    name: &str,
    suffix: &str,
    runtime: &RuntimeEnv,
) -> Result<Arc<dyn TableProvider>> {
    if let Some(version) = TableVersion::from_suffix(suffix) {
        let table = match version {
            TableVersion::Snapshot(id) => table.at_snapshot(id),
            TableVersion::Ref(name) => table.at_ref(&name),
            TableVersion::AsOfTime(ms) => table.as_of(ms),
        }
        .map_err(|err| {
            DataFusionError::Plan(format!(
                "{name}: {}",
                crate::error_text::plain_message(&err.into())
            ))
        })?;
        return Ok(Arc::new(table));
    }
    let Some(kind) = MetadataTable::parse(suffix) else {
        return Err(DataFusionError::Plan(format!(
            "{name} has no metadata table ${suffix}: Iceberg tables have {}",
            MetadataTable::NAMES.map(|n| format!("${n}")).join(", ")
        )));
    };
    let store = runtime.object_store(table.location().store_url())?;
    Ok(Arc::new(kind.read(&table, store.as_ref()).await?))
}

impl IcebergFormat {
    /// The name the format is registered under.
    pub const NAME: &'static str = "iceberg";

    /// Iceberg tables, external ones and those Osprey owns, whose current metadata file
    /// `store` keeps.
    pub fn owned_in(store: osprey_catalog::CatalogStore) -> Self {
        Self {
            metadata: MetadataCache::default(),
            owned: Some(store),
        }
    }

    /// The current state of the Iceberg table `entry` registers.
    async fn open_table(
        &self,
        entry: &TableEntry,
        config: &ConfigOptions,
        runtime: &RuntimeEnv,
    ) -> Result<IcebergTable> {
        let location = match (&entry.kind, &entry.definition.location, &self.owned) {
            (TableKind::External, Some(location), _) => location.clone(),
            (TableKind::Managed, Some(_), Some(store)) => store
                .iceberg_metadata_location(&entry.id)
                .await
                .map_err(|err| DataFusionError::External(Box::new(err)))?
                .ok_or_else(|| {
                    DataFusionError::Plan(format!(
                        "{} was dropped meanwhile",
                        entry.qualified_name()
                    ))
                })?,
            _ => {
                return Err(DataFusionError::Plan(format!(
                    "{} is an Iceberg entry without a location",
                    entry.qualified_name()
                )));
            }
        };
        let metadata = self.metadata.load(runtime, &location).await?;
        Ok(self.metadata.table(metadata, &location, config)?)
    }
}

/// Deletes everything under `root`, the directory of the Iceberg table `table` that Osprey
/// owned, once the catalog no longer lists it: a failure leaves only garbage, and is logged.
pub(crate) async fn delete_owned_table_files(runtime: &RuntimeEnv, table: &str, root: &str) {
    let prefix = format!("{}/", root.trim_end_matches('/'));
    if let Err(err) = crate::lakehouse::writes::delete_prefix(runtime, &prefix).await {
        tracing::warn!(%table, location = %root, error = %err, "cannot delete a dropped table's files");
    }
}

/// An Iceberg error as a statement error about `subject` ("the Iceberg table at ...",
/// "catalog lake"): refused features as not supported, an unreachable catalog as retryable,
/// refused credentials as denied, the rest as something that cannot be read.
pub(crate) fn iceberg_query_error(subject: &str, err: IcebergError) -> QueryError {
    match err {
        IcebergError::Unsupported(message) => {
            QueryError::NotSupported(format!("{subject} uses {message}"))
        }
        IcebergError::Invalid(message) => {
            QueryError::InvalidStatement(format!("cannot read {subject}: {message}"))
        }
        IcebergError::CatalogUnavailable(message) => QueryError::CatalogUnavailable(format!(
            "{subject} is unavailable: {message}. Try again later"
        )),
        IcebergError::CatalogDenied(message) => QueryError::PermissionDenied(format!(
            "{subject} refused Osprey's credentials: {message}. An admin attaches it again \
             with CREATE OR REPLACE CATALOG"
        )),
        IcebergError::Catalog(message) => {
            QueryError::InvalidStatement(format!("{subject}: {message}"))
        }
        IcebergError::CommitConflict(message) => {
            QueryError::CommitConflict(format!("{subject}: {message}"))
        }
        IcebergError::ConstraintViolation(message) => {
            QueryError::InvalidData(format!("{subject}: {message}"))
        }
        IcebergError::CommitStateUnknown(message) => QueryError::CatalogUnavailable(format!(
            "{subject}: the commit's outcome is unknown ({message}); look at the table's \
             snapshots before running the statement again"
        )),
    }
}

#[async_trait::async_trait]
impl TableFormat for IcebergFormat {
    fn name(&self) -> &str {
        Self::NAME
    }

    async fn open(
        &self,
        entry: &TableEntry,
        _files: Vec<DataFile>,
        config: &ConfigOptions,
        runtime: &Arc<RuntimeEnv>,
    ) -> Result<Arc<dyn TableProvider>> {
        let table = self.open_table(entry, config, runtime).await?;
        // An owned table's columns change with ALTER TABLE: shown as they are now, `NOT NULL`
        // where the metadata requires a value (scans read every column as nullable).
        let mut shown = entry.clone();
        shown.definition.arrow_schema =
            encode_schema(&table.metadata().current_schema().to_arrow())?;
        let layout = match entry.kind {
            TableKind::Managed => table.create_clause(),
            _ => table.layout_comment(),
        };
        let definition = format!("{}\n{layout}", show_create(&shown));
        Ok(Arc::new(table.with_definition(definition)))
    }

    async fn metadata_table(
        &self,
        entry: &TableEntry,
        name: &str,
        config: &ConfigOptions,
        runtime: &Arc<RuntimeEnv>,
    ) -> Result<Option<Arc<dyn TableProvider>>> {
        let table = self.open_table(entry, config, runtime).await?;
        iceberg_suffix_table(table, &entry.qualified_name(), name, runtime)
            .await
            .map(Some)
    }

    /// An owned table's files go with it: everything under its location.
    async fn purge(&self, state: &SessionState, entry: &TableEntry) {
        if entry.kind != TableKind::Managed {
            return;
        }
        if let Some(location) = &entry.definition.location {
            delete_owned_table_files(state.runtime_env(), &entry.qualified_name(), location).await;
        }
    }

    async fn define_external(
        &self,
        state: &SessionState,
        location: &str,
        cmd: &CreateExternalTable,
    ) -> Result<TableDefinition, QueryError> {
        if !cmd.schema.fields().is_empty() {
            return Err(QueryError::InvalidStatement(
                "an Iceberg table's columns come from its metadata: leave out the column list"
                    .to_string(),
            ));
        }
        if !cmd.table_partition_cols.is_empty() {
            return Err(QueryError::InvalidStatement(
                "an Iceberg table's partitioning comes from its metadata: leave out PARTITIONED BY"
                    .to_string(),
            ));
        }
        if let Some(option) = cmd.options.iter().next() {
            return Err(QueryError::InvalidStatement(format!(
                "Iceberg tables take no OPTIONS (got {:?})",
                option.0
            )));
        }
        // A directory keeps no trailing slash: its metadata is found under `metadata/`.
        let location = location.trim_end_matches('/');
        let metadata = self
            .metadata
            .load(state.runtime_env(), location)
            .await
            .map_err(|err| iceberg_query_error(&format!("the Iceberg table at {location}"), err))?;
        let table = self
            .metadata
            .table(metadata, location, state.config_options())
            .map_err(|err| iceberg_query_error(&format!("the Iceberg table at {location}"), err))?;
        Ok(TableDefinition {
            location: Some(location.to_string()),
            format: Some(Self::NAME.to_string()),
            arrow_schema: encode_schema(&table.schema())?,
            ..TableDefinition::default()
        })
    }
}
