//! Table formats: what a catalog entry's data is, and how it is created, read, written and
//! dropped. One implementation of [`TableFormat`] per format, kept in a [`TableFormats`]
//! registry keyed by the format's name; the statement router and the front doors never match
//! on a format, so a new one (Iceberg, Delta) is one more implementation, registered once.
//!
//! This is DataFusion's `TableProviderFactory` idea grown to the whole life of a table: a
//! factory only creates providers, while a lakehouse format also owns its writes and its
//! data's removal.

mod files;
mod iceberg;
mod view;

pub use files::FilesFormat;
pub use iceberg::IcebergFormat;
pub(crate) use iceberg::{
    MetadataCache, delete_owned_table_files, iceberg_query_error, iceberg_suffix_table,
};
pub use view::ViewFormat;

use super::committed::CommittedCatalog;
use crate::error::QueryError;
use datafusion::arrow::datatypes::Schema;
use datafusion::catalog::TableProvider;
use datafusion::common::config::ConfigOptions;
use datafusion::error::Result;
use datafusion::execution::context::SessionState;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::logical_expr::{CreateExternalTable, LogicalPlan};
use osprey_catalog::{DataFile, TableDefinition, TableEntry, TableKind};
use std::collections::BTreeMap;
use std::sync::Arc;

/// One table format: how tables of it are created, opened for planning, written and dropped.
///
/// Every method but [`open`](TableFormat::open) has a default that refuses (or, for
/// [`purge`](TableFormat::purge), does nothing), so a read-only format implements only
/// `open`.
#[async_trait::async_trait]
pub trait TableFormat: std::fmt::Debug + Send + Sync {
    /// The name the format is registered and stored under (`parquet`, `csv`, `view`).
    fn name(&self) -> &str;

    /// Opens a table of this format for planning, with its committed `files` (the catalog
    /// keeps file lists for the tables Osprey owns; other formats get none). `runtime` has the
    /// object stores, for formats that read their metadata from storage.
    async fn open(
        &self,
        entry: &TableEntry,
        files: Vec<DataFile>,
        config: &ConfigOptions,
        runtime: &Arc<RuntimeEnv>,
    ) -> Result<Arc<dyn TableProvider>>;

    /// The metadata table `"<table>$<name>"` of `entry` (Iceberg's `$snapshots`, ...):
    /// `None` when the format has no metadata tables; an error naming the ones it has when
    /// `name` is not one of them.
    async fn metadata_table(
        &self,
        entry: &TableEntry,
        name: &str,
        config: &ConfigOptions,
        runtime: &Arc<RuntimeEnv>,
    ) -> Result<Option<Arc<dyn TableProvider>>> {
        let _ = (entry, name, config, runtime);
        Ok(None)
    }

    /// `CREATE EXTERNAL TABLE ... STORED AS <name> LOCATION '...'`: the definition of a table
    /// over data the user owns at `location` (already checked against the user's grants),
    /// reading the location where the columns must be inferred.
    async fn define_external(
        &self,
        state: &SessionState,
        location: &str,
        cmd: &CreateExternalTable,
    ) -> Result<TableDefinition, QueryError> {
        let _ = (state, location, cmd);
        Err(QueryError::NotSupported(format!(
            "external tables STORED AS {}",
            self.name().to_uppercase()
        )))
    }

    /// The definition of a new table Osprey owns at `location` (a URL ending in `/`) with
    /// columns `schema`. Nothing is written yet: [`create_owned`](TableFormat::create_owned)
    /// does that.
    fn define_owned(&self, location: &str, schema: &Schema) -> Result<TableDefinition, QueryError> {
        let _ = (location, schema);
        Err(QueryError::NotSupported(format!(
            "tables that Osprey owns stored as {}",
            self.name().to_uppercase()
        )))
    }

    /// `CREATE TABLE` (no `input`) or `CREATE TABLE ... AS` (its rows written first) of the
    /// owned table `entry`, committed to `catalog` in one step. Returns the entry replaced
    /// (`replace`), whose data the caller purges, and the rows written. A failure leaves
    /// nothing visible.
    async fn create_owned(
        &self,
        catalog: &CommittedCatalog,
        state: &SessionState,
        entry: TableEntry,
        input: Option<LogicalPlan>,
        replace: bool,
    ) -> Result<(Option<TableEntry>, u64), QueryError> {
        let _ = (catalog, state, input, replace);
        Err(QueryError::NotSupported(format!(
            "creating {} tables stored as {}",
            entry.kind.noun(),
            self.name().to_uppercase()
        )))
    }

    /// `INSERT INTO` the table `entry`: writes `input` and commits it as one change. Returns
    /// the rows written. A failure leaves nothing visible.
    async fn insert(
        &self,
        catalog: &CommittedCatalog,
        state: &SessionState,
        entry: &TableEntry,
        input: LogicalPlan,
    ) -> Result<u64, QueryError> {
        let _ = (catalog, state, input);
        Err(QueryError::NotSupported(format!(
            "INSERT into {} (stored as {})",
            entry.qualified_name(),
            self.name().to_uppercase()
        )))
    }

    /// Called once `entry` is dropped from the catalog: deletes the data Osprey owned for it.
    /// The catalog no longer lists it, so a failure leaves only garbage; it is logged.
    async fn purge(&self, state: &SessionState, entry: &TableEntry) {
        let _ = (state, entry);
    }
}

/// The table formats a lakehouse knows, by name.
#[derive(Debug, Clone)]
pub struct TableFormats {
    by_name: BTreeMap<String, Arc<dyn TableFormat>>,
    /// The format `CREATE TABLE` gives tables Osprey owns.
    owned_default: String,
}

impl Default for TableFormats {
    /// The built-in formats: `parquet`, `csv`, `json` (files at a location; Osprey owns
    /// Parquet tables it creates), `iceberg` (Apache Iceberg tables, read) and `view`. Owned
    /// tables default to Parquet.
    fn default() -> Self {
        let mut formats = Self {
            by_name: BTreeMap::new(),
            owned_default: "parquet".to_string(),
        };
        for format in [
            FilesFormat::parquet(),
            FilesFormat::csv(),
            FilesFormat::json(),
        ] {
            formats.register(Arc::new(format));
        }
        formats.register(Arc::new(IcebergFormat::default()));
        formats.register(Arc::new(ViewFormat));
        formats
    }
}

impl TableFormats {
    /// Adds (or replaces) a format under its name.
    pub fn register(&mut self, format: Arc<dyn TableFormat>) {
        self.by_name
            .insert(format.name().to_ascii_lowercase(), format);
    }

    /// The format named `name` (any case), or an error that lists the known ones.
    pub fn get(&self, name: &str) -> Result<&Arc<dyn TableFormat>, QueryError> {
        self.by_name.get(&name.to_ascii_lowercase()).ok_or_else(|| {
            let known: Vec<String> = self
                .by_name
                .keys()
                .filter(|known| known.as_str() != ViewFormat::NAME)
                .map(|known| known.to_uppercase())
                .collect();
            QueryError::NotSupported(format!(
                "unsupported format {:?}: use STORED AS {}",
                name.to_ascii_lowercase(),
                known.join(", ")
            ))
        })
    }

    /// The format of a catalog entry: views are `view`; tables name theirs in their definition
    /// (Parquet for entries written before formats were recorded).
    pub fn of(&self, entry: &TableEntry) -> Result<&Arc<dyn TableFormat>, QueryError> {
        self.get(&format_name(entry))
    }

    /// The format `CREATE TABLE` gives the tables Osprey owns.
    pub fn owned_default(&self) -> Result<&Arc<dyn TableFormat>, QueryError> {
        self.get(&self.owned_default)
    }
}

/// The registry key of `entry`'s format.
fn format_name(entry: &TableEntry) -> String {
    match (&entry.kind, &entry.definition.format) {
        (TableKind::View, _) => ViewFormat::NAME.to_string(),
        (_, Some(format)) => format.to_ascii_lowercase(),
        (_, None) => "parquet".to_string(),
    }
}
