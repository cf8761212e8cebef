//! Iceberg catalogs: where the current metadata file of a table is found by its name.
//!
//! A catalog maps `namespace.table` to the location of the table's current metadata file
//! (and, for the REST protocol, often to the metadata itself). Four kinds are read:
//!
//! - [`SqlCatalog`]: the JDBC catalog's tables (`iceberg_tables`,
//!   `iceberg_namespace_properties`) in SQLite or PostgreSQL, as pyiceberg's `SqlCatalog`
//!   and Java's `JdbcCatalog` keep them;
//! - [`RestCatalog`]: the Iceberg REST catalog protocol, with OAuth2 client credentials or a
//!   bearer token;
//! - [`GlueCatalog`]: the AWS Glue Data Catalog, whose tables marked `table_type = ICEBERG`
//!   name their current metadata file;
//! - [`HadoopCatalog`]: a warehouse directory laid out as `<namespace>/<table>/metadata/`.
//!
//! Namespaces are named by their levels joined with `.` (`sales.eu`), as the JDBC catalog
//! stores them.

mod glue;
mod hadoop;
mod rest;
mod sql;
mod vended;

pub use glue::{GlueCatalog, GlueCatalogConfig};
pub use hadoop::HadoopCatalog;
pub use rest::{RestCatalog, RestCatalogConfig};
pub use sql::SqlCatalog;
pub use vended::TableCredentials;

use crate::error::IcebergError;
use crate::metadata::TableMetadata;
use crate::updates::{TableRequirement, TableUpdate};

/// A table as a catalog answers for it.
#[derive(Debug, Clone)]
pub struct LoadedTable {
    /// The location of its current metadata file.
    pub metadata_location: String,
    /// The metadata itself, when the catalog sent it (REST); otherwise it is read from
    /// `metadata_location`.
    pub metadata: Option<TableMetadata>,
    /// Storage credentials the catalog vended for the table's files (REST).
    pub credentials: Option<TableCredentials>,
}

/// A new table as metadata spells its parts: what `CREATE TABLE` asks a catalog to create.
#[derive(Debug, Clone, PartialEq)]
pub struct TableDefinition {
    /// The schema (`{"type": "struct", "schema-id": 0, "fields": [...]}`).
    pub schema: serde_json::Value,
    /// The partition spec (`{"spec-id": 0, "fields": [...]}`).
    pub partition_spec: serde_json::Value,
    /// The highest field id of the schema.
    pub last_column_id: i32,
    /// Table properties.
    pub properties: std::collections::BTreeMap<String, String>,
    /// The sort order (`{"order-id": 1, "fields": [...]}`); `None` for unsorted.
    pub sort_order: Option<serde_json::Value>,
}

/// A catalog of Iceberg tables (see the module docs).
#[async_trait::async_trait]
pub trait IcebergCatalog: std::fmt::Debug + Send + Sync {
    /// The kind, as `CREATE CATALOG ... WITH (type = '...')` names it.
    fn kind(&self) -> &'static str;

    /// Every namespace, levels joined with `.`, sorted.
    async fn namespaces(&self) -> Result<Vec<String>, IcebergError>;

    /// The tables of `namespace`, sorted; an empty list when it does not exist.
    async fn table_names(&self, namespace: &str) -> Result<Vec<String>, IcebergError>;

    /// The table `namespace.name`; `None` when there is none.
    async fn load_table(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<LoadedTable>, IcebergError>;

    /// Whether Osprey can commit to this catalog's tables (checked before anything is
    /// written).
    fn check_writable(&self) -> Result<(), IcebergError> {
        Err(not_writable(self.kind()))
    }

    /// Whether the catalog's server writes the table's metadata files itself (REST): then
    /// Osprey sends it the changes, and writes no metadata file of its own.
    fn writes_metadata(&self) -> bool {
        false
    }

    /// Whether the catalog finds a table's metadata by version number (Hadoop:
    /// `metadata/v<N>.metadata.json`): then the next file is named `v<N+1>`, and creating it
    /// (never over an existing one) is the commit's compare-and-swap.
    fn versioned_metadata(&self) -> bool {
        false
    }

    /// Commits `commit` to `namespace.name` if the table is still at its base (the catalog's
    /// compare-and-swap) and meets its requirements. `false` when another commit came first.
    async fn commit_table(
        &self,
        namespace: &str,
        name: &str,
        commit: &TableCommit,
    ) -> Result<bool, IcebergError> {
        let _ = (namespace, name, commit);
        Err(not_writable(self.kind()))
    }

    /// Where a new table `namespace.name` goes, for catalogs whose tables Osprey creates by
    /// writing their first metadata file (`<warehouse>/<namespace>.db/<name>`, as pyiceberg).
    fn default_location(&self, namespace: &str, name: &str) -> Option<String> {
        let _ = (namespace, name);
        None
    }

    /// Adds `namespace.name`, whose first metadata file is at `metadata_location`. Fails when
    /// the table exists.
    async fn register_table(
        &self,
        namespace: &str,
        name: &str,
        metadata_location: &str,
    ) -> Result<(), IcebergError> {
        let _ = (namespace, name, metadata_location);
        Err(not_writable(self.kind()))
    }

    /// Creates `namespace.name` as `definition` describes it, for catalogs that [write their
    /// own metadata](IcebergCatalog::writes_metadata).
    async fn create_table(
        &self,
        namespace: &str,
        name: &str,
        definition: &TableDefinition,
    ) -> Result<(), IcebergError> {
        let _ = (namespace, name, definition);
        Err(not_writable(self.kind()))
    }

    /// Creates the namespace `namespace` (levels joined with `.`), which does not exist yet.
    async fn create_namespace(&self, namespace: &str) -> Result<(), IcebergError> {
        let _ = namespace;
        Err(not_writable(self.kind()))
    }

    /// Removes the empty namespace `namespace`; `false` when there was none. A namespace with
    /// tables is refused.
    async fn drop_namespace(&self, namespace: &str) -> Result<bool, IcebergError> {
        let _ = namespace;
        Err(not_writable(self.kind()))
    }

    /// Renames `from` (namespace, name) to `to`, which must not exist; its files stay where
    /// they are.
    async fn rename_table(&self, from: (&str, &str), to: (&str, &str)) -> Result<(), IcebergError> {
        let _ = (from, to);
        Err(IcebergError::Unsupported(format!(
            "renaming a table of a {} catalog",
            self.kind()
        )))
    }

    /// Removes `namespace.name` from the catalog, leaving its files; `false` when there was
    /// none.
    async fn drop_table(&self, namespace: &str, name: &str) -> Result<bool, IcebergError> {
        let _ = (namespace, name);
        Err(not_writable(self.kind()))
    }
}

/// A change to commit on top of a table's current metadata: a new snapshot, a schema, a
/// spec, properties.
#[derive(Debug, Clone, PartialEq)]
pub struct TableCommit {
    /// The metadata file the change was built on.
    pub base_location: String,
    /// What must still hold of the table (for catalogs that [write their own
    /// metadata](IcebergCatalog::writes_metadata); the others compare `base_location`, which
    /// implies every requirement).
    pub requirements: Vec<TableRequirement>,
    /// The change.
    pub updates: Vec<TableUpdate>,
    /// Where Osprey wrote the next metadata file, for catalogs that point at metadata files
    /// (unused when the catalog writes its own).
    pub metadata_location: String,
}

/// Why a catalog of kind `kind` cannot be written through.
fn not_writable(kind: &str) -> IcebergError {
    IcebergError::Unsupported(format!(
        "a {kind} catalog, which Osprey does not commit to yet (it commits through SQL, REST, Glue and Hadoop catalogs)"
    ))
}

/// An error's message with its causes (reqwest's own stops at "error sending request").
pub(super) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
