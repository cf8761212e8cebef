//! What the catalog stores about schemas, tables and views: their entries, definitions and
//! data files, and everything read back at start-up.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// What kind of relation a table entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TableKind {
    /// Data the user owns at a location; DROP removes only the definition.
    External,
    /// Parquet data Osprey owns under the warehouse; DROP removes the data too.
    Managed,
    /// A stored query.
    View,
}

impl TableKind {
    /// The name stored in the `kind` column.
    pub fn as_str(self) -> &'static str {
        match self {
            TableKind::External => "EXTERNAL",
            TableKind::Managed => "MANAGED",
            TableKind::View => "VIEW",
        }
    }

    pub(crate) fn parse(text: &str) -> Option<Self> {
        match text {
            "EXTERNAL" => Some(TableKind::External),
            "MANAGED" => Some(TableKind::Managed),
            "VIEW" => Some(TableKind::View),
            _ => None,
        }
    }

    /// "table" or "view", for messages.
    pub fn noun(self) -> &'static str {
        match self {
            TableKind::View => "view",
            _ => "table",
        }
    }
}

/// Everything needed to rebuild a table or view after a restart, stored as JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableDefinition {
    /// Where the data lives (a URL or an absolute path); `None` for views.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// `parquet`, `csv` or `json`; `None` for views.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// Format options as given at CREATE time (for example `format.has_header`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, String>,
    /// Hive-style partition columns (`key=value` directories), in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub partition_columns: Vec<String>,
    /// The Arrow schema fixed at CREATE time (an Arrow IPC schema message, base64).
    pub arrow_schema: String,
    /// A view's query.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub view_sql: Option<String>,
    /// The catalog and schema unqualified names in a view's query resolve in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub view_search_path: Option<(String, String)>,
    /// `INVOKER` for a view whose query runs with its reader's rights; absent for one that
    /// runs with its owner's (`SECURITY DEFINER`, the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub view_security: Option<String>,
}

/// A schema (DATABASE is a synonym).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaEntry {
    /// Its catalog.
    pub catalog: String,
    /// Its name.
    pub schema: String,
}

/// A table or view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableEntry {
    /// A stable id; files of managed tables hang off it, so a rename moves nothing.
    pub id: String,
    /// Its catalog.
    pub catalog: String,
    /// Its schema.
    pub schema: String,
    /// Its name.
    pub name: String,
    /// External, managed or view.
    pub kind: TableKind,
    /// How to rebuild it.
    pub definition: TableDefinition,
    /// When it was created.
    pub created_at_ms: i64,
}

impl TableEntry {
    /// `catalog.schema.name`.
    pub fn qualified_name(&self) -> String {
        format!("{}.{}.{}", self.catalog, self.schema, self.name)
    }
}

/// One data file of a managed table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataFile {
    /// The object's path inside its store (no scheme or bucket).
    pub path: String,
    /// Size in bytes.
    pub size_bytes: u64,
    /// Rows in the file.
    pub row_count: u64,
}

/// Everything the catalog holds, read at start-up.
#[derive(Debug, Clone, Default)]
pub struct CatalogContents {
    /// Every schema.
    pub schemas: Vec<SchemaEntry>,
    /// Every table and view.
    pub tables: Vec<TableEntry>,
    /// The data files of managed tables, by table id.
    pub files: HashMap<String, Vec<DataFile>>,
}
