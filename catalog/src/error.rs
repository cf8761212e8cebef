//! The catalog's error type, and the mapping of database driver errors into it.

/// Why a catalog operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The catalog URL is neither `sqlite://...` nor `postgres://...`.
    #[error(
        "unsupported catalog URL {0:?}: use sqlite:///path/to/catalog.db or postgres://user:password@host/database"
    )]
    UnsupportedUrl(String),
    /// The database could not be reached or refused a statement.
    #[error("catalog database error while {action}: {source}")]
    Database {
        /// What the store was doing.
        action: &'static str,
        /// The driver's error.
        source: sqlx::Error,
    },
    /// The embedded migrations could not be applied.
    #[error("cannot migrate the catalog database: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// An object with that name exists already.
    #[error("{kind} {name} already exists")]
    AlreadyExists {
        /// "schema", "table", "view" or "user".
        kind: &'static str,
        /// The qualified name.
        name: String,
    },
    /// No object with that name exists.
    #[error("{kind} {name} does not exist")]
    NotFound {
        /// "schema", "table", "view" or "user".
        kind: &'static str,
        /// The qualified name.
        name: String,
    },
    /// A schema still holds tables and the drop did not ask for CASCADE.
    #[error(
        "schema {0} is not empty: drop its tables and views first, or use DROP SCHEMA ... CASCADE"
    )]
    SchemaNotEmpty(String),
    /// A stored definition could not be read back.
    #[error("the stored definition of {name} is unreadable: {source}")]
    CorruptDefinition {
        /// The qualified name.
        name: String,
        /// The JSON error.
        source: serde_json::Error,
    },
    /// A name that cannot be stored (see [`check_name`](crate::check_name)).
    #[error(
        "{kind} name {name:?} is not allowed: {reason}. Names may not be empty, `.` or `..`, or hold `/`, `\\` or control characters"
    )]
    InvalidName {
        /// "schema", "table" or "view".
        kind: &'static str,
        /// The name, escaped for display.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

pub(crate) fn db(action: &'static str) -> impl FnOnce(sqlx::Error) -> CatalogError {
    move |source| CatalogError::Database { action, source }
}
