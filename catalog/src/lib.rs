//! Osprey's persistent catalog: the metadata a coordinator keeps across restarts.
//!
//! One code path, through sqlx's `Any` driver, serves both backends:
//!
//! - embedded SQLite (`sqlite:///path/catalog.db`), the default, in the coordinator's data
//!   directory;
//! - PostgreSQL (`postgres://user:pass@host/db`) for production.
//!
//! Migrations are embedded in the binary and run at [`CatalogStore::open`]. The store holds
//! schemas, tables and views (with their definitions as JSON), the data files of managed tables,
//! writes in progress (so a restarted coordinator can clean up after a crash), and the query
//! history ([`QueryRecord`]) and the users who may log in ([`UserRecord`]). Every change
//! that must be atomic (publishing a write, creating a table with its data) is one database
//! transaction.
//!
//! ```no_run
//! # async fn run() -> Result<(), osprey_catalog::CatalogError> {
//! use osprey_catalog::CatalogStore;
//!
//! let store = CatalogStore::open("sqlite:///tmp/osprey-catalog.db").await?;
//! store.create_schema("osprey", "sales").await?;
//! let contents = store.load().await?;
//! assert!(contents.schemas.iter().any(|s| s.schema == "sales"));
//! # Ok(()) }
//! ```

mod history;
mod locations;
mod names;
mod users;
mod workgroups;

pub use history::{HistoryCursor, QueryRecord, QueryState};
pub use locations::LocationRecord;
pub use names::{MAX_NAME_BYTES, check_name};
use serde::{Deserialize, Serialize};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AnyPool, Row};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
pub use users::{ManagedBy, UserRecord, new_user_id};
pub use workgroups::WorkgroupRecord;

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
    /// A name that cannot be stored (see [`check_name`]).
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

fn db(action: &'static str) -> impl FnOnce(sqlx::Error) -> CatalogError {
    move |source| CatalogError::Database { action, source }
}

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

    fn parse(text: &str) -> Option<Self> {
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

/// A write that started and was never published or cleaned up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingWrite {
    /// The write's id.
    pub write_id: String,
    /// The URL prefix everything the write produced lives under.
    pub staging_prefix: String,
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis() as i64
}

/// The embedded migrations. Built by hand rather than with `sqlx::migrate!` so the crate needs
/// no proc-macro build of sqlx; the SQL files are still the single source.
fn migrator() -> Migrator {
    Migrator {
        migrations: Cow::Owned(vec![
            Migration::new(
                1,
                Cow::Borrowed("catalog"),
                MigrationType::Simple,
                Cow::Borrowed(include_str!("../migrations/0001_catalog.sql")),
                false,
            ),
            Migration::new(
                2,
                Cow::Borrowed("query history"),
                MigrationType::Simple,
                Cow::Borrowed(include_str!("../migrations/0002_query_history.sql")),
                false,
            ),
            Migration::new(
                3,
                Cow::Borrowed("users"),
                MigrationType::Simple,
                Cow::Borrowed(include_str!("../migrations/0003_users.sql")),
                false,
            ),
            Migration::new(
                4,
                Cow::Borrowed("query attempts"),
                MigrationType::Simple,
                Cow::Borrowed(include_str!("../migrations/0004_query_attempts.sql")),
                false,
            ),
            Migration::new(
                5,
                Cow::Borrowed("workgroups"),
                MigrationType::Simple,
                Cow::Borrowed(include_str!("../migrations/0005_workgroups.sql")),
                false,
            ),
            Migration::new(
                6,
                Cow::Borrowed("locations"),
                MigrationType::Simple,
                Cow::Borrowed(include_str!("../migrations/0006_locations.sql")),
                false,
            ),
            Migration::new(
                7,
                Cow::Borrowed("user ids"),
                MigrationType::Simple,
                Cow::Borrowed(include_str!("../migrations/0007_user_ids.sql")),
                false,
            ),
        ]),
        ..Migrator::DEFAULT
    }
}

/// The catalog database.
#[derive(Debug, Clone)]
pub struct CatalogStore {
    pool: AnyPool,
}

impl CatalogStore {
    /// Connects (creating an SQLite file if needed) and applies pending migrations.
    pub async fn open(url: &str) -> Result<Self, CatalogError> {
        sqlx::any::install_default_drivers();
        let is_sqlite = url.starts_with("sqlite:");
        if !is_sqlite && !url.starts_with("postgres://") && !url.starts_with("postgresql://") {
            return Err(CatalogError::UnsupportedUrl(redact_url(url)));
        }
        let url = if is_sqlite && !url.contains("mode=") {
            // Create the database file on first start.
            let separator = if url.contains('?') { '&' } else { '?' };
            format!("{url}{separator}mode=rwc")
        } else {
            url.to_string()
        };
        let pool = AnyPoolOptions::new()
            // SQLite serializes writers anyway; one connection avoids "database is locked".
            .max_connections(if is_sqlite { 1 } else { 8 })
            .acquire_timeout(Duration::from_secs(10))
            .connect(&url)
            .await
            .map_err(db("connecting"))?;
        if is_sqlite {
            sqlx::query("PRAGMA journal_mode=WAL")
                .execute(&pool)
                .await
                .map_err(db("enabling the SQLite write-ahead log"))?;
        }
        migrator().run(&pool).await?;
        Ok(Self { pool })
    }

    /// Reads every schema, table, view and managed data file.
    pub async fn load(&self) -> Result<CatalogContents, CatalogError> {
        let schemas = sqlx::query(
            "SELECT catalog_name, schema_name FROM osprey_schemas ORDER BY catalog_name, schema_name",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db("reading schemas"))?
        .into_iter()
        .map(|row| -> Result<SchemaEntry, sqlx::Error> {
            Ok(SchemaEntry {
                catalog: row.try_get(0)?,
                schema: row.try_get(1)?,
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(db("reading schemas"))?;
        let rows = sqlx::query(
            "SELECT table_id, catalog_name, schema_name, table_name, kind, definition, created_at_ms \
             FROM osprey_tables",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db("reading tables"))?;
        let tables = rows
            .iter()
            .map(table_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let mut files: HashMap<String, Vec<DataFile>> = HashMap::new();
        for row in sqlx::query(
            "SELECT table_id, path, size_bytes, row_count FROM osprey_table_files ORDER BY path",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db("reading data files"))?
        {
            let table_id: String = row.try_get(0).map_err(db("reading data files"))?;
            files.entry(table_id).or_default().push(DataFile {
                path: row.try_get(1).map_err(db("reading data files"))?,
                size_bytes: row
                    .try_get::<i64, _>(2)
                    .map_err(db("reading data files"))?
                    .max(0) as u64,
                row_count: row
                    .try_get::<i64, _>(3)
                    .map_err(db("reading data files"))?
                    .max(0) as u64,
            });
        }
        Ok(CatalogContents {
            schemas,
            tables,
            files,
        })
    }

    /// Creates a schema; [`CatalogError::AlreadyExists`] if it exists.
    pub async fn create_schema(&self, catalog: &str, schema: &str) -> Result<(), CatalogError> {
        check_name("schema", schema)?;
        sqlx::query(
            "INSERT INTO osprey_schemas (catalog_name, schema_name, created_at_ms) VALUES ($1, $2, $3)",
        )
        .bind(catalog)
        .bind(schema)
        .bind(now_ms())
        .execute(&self.pool)
        .await
        .map_err(|err| match err {
            sqlx::Error::Database(ref db_err) if db_err.is_unique_violation() => {
                CatalogError::AlreadyExists {
                    kind: "schema",
                    name: format!("{catalog}.{schema}"),
                }
            }
            other => db("creating a schema")(other),
        })?;
        Ok(())
    }

    /// Drops a schema. Without `cascade` it must be empty; with it, its tables and views go too
    /// and are returned (so the caller can delete managed data).
    pub async fn drop_schema(
        &self,
        catalog: &str,
        schema: &str,
        cascade: bool,
    ) -> Result<Vec<TableEntry>, CatalogError> {
        let mut tx = self.pool.begin().await.map_err(db("dropping a schema"))?;
        let rows = sqlx::query(
            "SELECT table_id, catalog_name, schema_name, table_name, kind, definition, created_at_ms \
             FROM osprey_tables WHERE catalog_name = $1 AND schema_name = $2",
        )
        .bind(catalog)
        .bind(schema)
        .fetch_all(&mut *tx)
        .await
        .map_err(db("dropping a schema"))?;
        let tables = rows
            .iter()
            .map(table_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        if !tables.is_empty() && !cascade {
            return Err(CatalogError::SchemaNotEmpty(format!("{catalog}.{schema}")));
        }
        for table in &tables {
            sqlx::query("DELETE FROM osprey_table_files WHERE table_id = $1")
                .bind(&table.id)
                .execute(&mut *tx)
                .await
                .map_err(db("dropping a schema"))?;
        }
        sqlx::query("DELETE FROM osprey_tables WHERE catalog_name = $1 AND schema_name = $2")
            .bind(catalog)
            .bind(schema)
            .execute(&mut *tx)
            .await
            .map_err(db("dropping a schema"))?;
        let deleted =
            sqlx::query("DELETE FROM osprey_schemas WHERE catalog_name = $1 AND schema_name = $2")
                .bind(catalog)
                .bind(schema)
                .execute(&mut *tx)
                .await
                .map_err(db("dropping a schema"))?;
        if deleted.rows_affected() == 0 {
            return Err(CatalogError::NotFound {
                kind: "schema",
                name: format!("{catalog}.{schema}"),
            });
        }
        tx.commit().await.map_err(db("dropping a schema"))?;
        Ok(tables)
    }

    /// Creates a table or view with its initial data files, in one transaction. With `replace`,
    /// an existing object of the same kind and name is replaced (and returned). When `write_id`
    /// is given, that pending write is published by the same transaction.
    pub async fn create_table(
        &self,
        entry: &TableEntry,
        files: &[DataFile],
        replace: bool,
        write_id: Option<&str>,
    ) -> Result<Option<TableEntry>, CatalogError> {
        check_name(entry.kind.noun(), &entry.name)?;
        let definition = serde_json::to_string(&entry.definition).map_err(|source| {
            CatalogError::CorruptDefinition {
                name: entry.qualified_name(),
                source,
            }
        })?;
        let mut tx = self.pool.begin().await.map_err(db("creating a table"))?;
        let schema_exists = sqlx::query(
            "SELECT 1 FROM osprey_schemas WHERE catalog_name = $1 AND schema_name = $2",
        )
        .bind(&entry.catalog)
        .bind(&entry.schema)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db("creating a table"))?;
        if schema_exists.is_none() {
            return Err(CatalogError::NotFound {
                kind: "schema",
                name: format!("{}.{}", entry.catalog, entry.schema),
            });
        }
        let existing = find_table(&mut tx, &entry.catalog, &entry.schema, &entry.name).await?;
        let replaced = match existing {
            Some(old) if replace && old.kind == entry.kind => {
                delete_table(&mut tx, &old.id).await?;
                Some(old)
            }
            Some(old) => {
                return Err(CatalogError::AlreadyExists {
                    kind: old.kind.noun(),
                    name: old.qualified_name(),
                });
            }
            None => None,
        };
        sqlx::query(
            "INSERT INTO osprey_tables \
             (table_id, catalog_name, schema_name, table_name, kind, definition, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&entry.id)
        .bind(&entry.catalog)
        .bind(&entry.schema)
        .bind(&entry.name)
        .bind(entry.kind.as_str())
        .bind(definition)
        .bind(entry.created_at_ms)
        .execute(&mut *tx)
        .await
        .map_err(db("creating a table"))?;
        insert_files(&mut tx, &entry.id, files, write_id.unwrap_or("")).await?;
        if let Some(write_id) = write_id {
            finish_pending(&mut tx, write_id).await?;
        }
        tx.commit().await.map_err(db("creating a table"))?;
        Ok(replaced)
    }

    /// Drops a table or view and forgets its data files; returns what was dropped.
    pub async fn drop_table(
        &self,
        catalog: &str,
        schema: &str,
        name: &str,
    ) -> Result<TableEntry, CatalogError> {
        let mut tx = self.pool.begin().await.map_err(db("dropping a table"))?;
        let entry = find_table(&mut tx, catalog, schema, name)
            .await?
            .ok_or_else(|| CatalogError::NotFound {
                kind: "table",
                name: format!("{catalog}.{schema}.{name}"),
            })?;
        delete_table(&mut tx, &entry.id).await?;
        tx.commit().await.map_err(db("dropping a table"))?;
        Ok(entry)
    }

    /// Renames a table or view, possibly into another schema of the same catalog.
    pub async fn rename_table(
        &self,
        from: (&str, &str, &str),
        to: (&str, &str, &str),
    ) -> Result<(), CatalogError> {
        check_name("table", to.2)?;
        let mut tx = self.pool.begin().await.map_err(db("renaming a table"))?;
        let entry = find_table(&mut tx, from.0, from.1, from.2)
            .await?
            .ok_or_else(|| CatalogError::NotFound {
                kind: "table",
                name: format!("{}.{}.{}", from.0, from.1, from.2),
            })?;
        if sqlx::query("SELECT 1 FROM osprey_schemas WHERE catalog_name = $1 AND schema_name = $2")
            .bind(to.0)
            .bind(to.1)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db("renaming a table"))?
            .is_none()
        {
            return Err(CatalogError::NotFound {
                kind: "schema",
                name: format!("{}.{}", to.0, to.1),
            });
        }
        if let Some(other) = find_table(&mut tx, to.0, to.1, to.2).await? {
            return Err(CatalogError::AlreadyExists {
                kind: other.kind.noun(),
                name: other.qualified_name(),
            });
        }
        sqlx::query(
            "UPDATE osprey_tables SET catalog_name = $1, schema_name = $2, table_name = $3 \
             WHERE table_id = $4",
        )
        .bind(to.0)
        .bind(to.1)
        .bind(to.2)
        .bind(&entry.id)
        .execute(&mut *tx)
        .await
        .map_err(db("renaming a table"))?;
        tx.commit().await.map_err(db("renaming a table"))?;
        Ok(())
    }

    /// Records that a write is about to put files under `staging_prefix`.
    pub async fn begin_write(
        &self,
        write_id: &str,
        staging_prefix: &str,
    ) -> Result<(), CatalogError> {
        sqlx::query(
            "INSERT INTO osprey_pending_writes (write_id, staging_prefix, started_at_ms) VALUES ($1, $2, $3)",
        )
        .bind(write_id)
        .bind(staging_prefix)
        .bind(now_ms())
        .execute(&self.pool)
        .await
        .map_err(db("recording a write"))?;
        Ok(())
    }

    /// Publishes a write's files into a managed table, in one transaction. Fails with
    /// [`CatalogError::NotFound`] if the table was dropped meanwhile.
    pub async fn append_files(
        &self,
        table_id: &str,
        files: &[DataFile],
        write_id: &str,
    ) -> Result<(), CatalogError> {
        let mut tx = self.pool.begin().await.map_err(db("publishing a write"))?;
        if sqlx::query("SELECT 1 FROM osprey_tables WHERE table_id = $1")
            .bind(table_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db("publishing a write"))?
            .is_none()
        {
            return Err(CatalogError::NotFound {
                kind: "table",
                name: format!("with id {table_id} (it was dropped while the write ran)"),
            });
        }
        insert_files(&mut tx, table_id, files, write_id).await?;
        finish_pending(&mut tx, write_id).await?;
        tx.commit().await.map_err(db("publishing a write"))?;
        Ok(())
    }

    /// Forgets a pending write whose files were cleaned up (or published elsewhere).
    pub async fn end_write(&self, write_id: &str) -> Result<(), CatalogError> {
        sqlx::query("DELETE FROM osprey_pending_writes WHERE write_id = $1")
            .bind(write_id)
            .execute(&self.pool)
            .await
            .map_err(db("forgetting a write"))?;
        Ok(())
    }

    /// Writes that were never published nor cleaned up (a coordinator crashed meanwhile).
    pub async fn pending_writes(&self) -> Result<Vec<PendingWrite>, CatalogError> {
        sqlx::query("SELECT write_id, staging_prefix FROM osprey_pending_writes")
            .fetch_all(&self.pool)
            .await
            .map_err(db("reading pending writes"))?
            .into_iter()
            .map(|row| {
                Ok(PendingWrite {
                    write_id: row.try_get(0).map_err(db("reading pending writes"))?,
                    staging_prefix: row.try_get(1).map_err(db("reading pending writes"))?,
                })
            })
            .collect()
    }
}

type Tx<'a> = sqlx::Transaction<'a, sqlx::Any>;

async fn find_table(
    tx: &mut Tx<'_>,
    catalog: &str,
    schema: &str,
    name: &str,
) -> Result<Option<TableEntry>, CatalogError> {
    let row = sqlx::query(
        "SELECT table_id, catalog_name, schema_name, table_name, kind, definition, created_at_ms \
         FROM osprey_tables WHERE catalog_name = $1 AND schema_name = $2 AND table_name = $3",
    )
    .bind(catalog)
    .bind(schema)
    .bind(name)
    .fetch_optional(&mut **tx)
    .await
    .map_err(db("looking up a table"))?;
    row.as_ref().map(table_from_row).transpose()
}

async fn delete_table(tx: &mut Tx<'_>, table_id: &str) -> Result<(), CatalogError> {
    sqlx::query("DELETE FROM osprey_table_files WHERE table_id = $1")
        .bind(table_id)
        .execute(&mut **tx)
        .await
        .map_err(db("dropping a table"))?;
    sqlx::query("DELETE FROM osprey_tables WHERE table_id = $1")
        .bind(table_id)
        .execute(&mut **tx)
        .await
        .map_err(db("dropping a table"))?;
    Ok(())
}

async fn insert_files(
    tx: &mut Tx<'_>,
    table_id: &str,
    files: &[DataFile],
    write_id: &str,
) -> Result<(), CatalogError> {
    for file in files {
        sqlx::query(
            "INSERT INTO osprey_table_files (table_id, path, size_bytes, row_count, write_id) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(table_id)
        .bind(&file.path)
        .bind(file.size_bytes.min(i64::MAX as u64) as i64)
        .bind(file.row_count.min(i64::MAX as u64) as i64)
        .bind(write_id)
        .execute(&mut **tx)
        .await
        .map_err(db("publishing data files"))?;
    }
    Ok(())
}

async fn finish_pending(tx: &mut Tx<'_>, write_id: &str) -> Result<(), CatalogError> {
    sqlx::query("DELETE FROM osprey_pending_writes WHERE write_id = $1")
        .bind(write_id)
        .execute(&mut **tx)
        .await
        .map_err(db("publishing a write"))?;
    Ok(())
}

fn table_from_row(row: &AnyRow) -> Result<TableEntry, CatalogError> {
    let columns = || -> Result<_, sqlx::Error> {
        Ok((
            row.try_get::<String, _>(0)?,
            row.try_get::<String, _>(1)?,
            row.try_get::<String, _>(2)?,
            row.try_get::<String, _>(3)?,
            row.try_get::<String, _>(4)?,
            row.try_get::<String, _>(5)?,
            row.try_get::<i64, _>(6)?,
        ))
    };
    let (id, catalog, schema, name, kind, definition, created_at_ms) =
        columns().map_err(db("reading a table definition"))?;
    let qualified = format!("{catalog}.{schema}.{name}");
    let kind = TableKind::parse(&kind).ok_or_else(|| CatalogError::CorruptDefinition {
        name: qualified.clone(),
        source: serde::de::Error::custom(format!("unknown table kind {kind:?}")),
    })?;
    let definition =
        serde_json::from_str(&definition).map_err(|source| CatalogError::CorruptDefinition {
            name: qualified,
            source,
        })?;
    Ok(TableEntry {
        id,
        catalog,
        schema,
        name,
        kind,
        definition,
        created_at_ms,
    })
}

/// The URL with any password replaced, for error messages and logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://osprey:hunter2@db:5432/catalog"),
            "postgres://osprey:***@db:5432/catalog"
        );
        assert_eq!(
            redact_url("sqlite:///x/catalog.db"),
            "sqlite:///x/catalog.db"
        );
    }

    fn entry(name: &str, kind: TableKind) -> TableEntry {
        TableEntry {
            id: format!("id-{name}"),
            catalog: "osprey".into(),
            schema: "s".into(),
            name: name.into(),
            kind,
            definition: TableDefinition {
                location: Some("file:///data/t/".into()),
                format: Some("parquet".into()),
                arrow_schema: "AAAA".into(),
                ..TableDefinition::default()
            },
            created_at_ms: 1,
        }
    }

    #[tokio::test]
    async fn tables_files_and_writes_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/catalog.db", dir.path().display());
        let store = CatalogStore::open(&url).await.unwrap();
        store.create_schema("osprey", "s").await.unwrap();
        assert!(matches!(
            store.create_schema("osprey", "s").await,
            Err(CatalogError::AlreadyExists { kind: "schema", .. })
        ));
        store.begin_write("w1", "file:///data/t/w1/").await.unwrap();
        let file = DataFile {
            path: "data/t/w1/part-0.parquet".into(),
            size_bytes: 10,
            row_count: 3,
        };
        store
            .create_table(
                &entry("t", TableKind::Managed),
                std::slice::from_ref(&file),
                false,
                Some("w1"),
            )
            .await
            .unwrap();
        assert!(matches!(
            store
                .create_table(&entry("t", TableKind::Managed), &[], false, None)
                .await,
            Err(CatalogError::AlreadyExists { kind: "table", .. })
        ));
        store
            .rename_table(("osprey", "s", "t"), ("osprey", "s", "u"))
            .await
            .unwrap();
        drop(store);

        let store = CatalogStore::open(&url).await.unwrap();
        let contents = store.load().await.unwrap();
        assert_eq!(contents.tables.len(), 1);
        assert_eq!(contents.tables[0].name, "u");
        assert_eq!(contents.files["id-t"], vec![file]);
        assert!(store.pending_writes().await.unwrap().is_empty());
        assert!(matches!(
            store.drop_schema("osprey", "s", false).await,
            Err(CatalogError::SchemaNotEmpty(_))
        ));
        let dropped = store.drop_schema("osprey", "s", true).await.unwrap();
        assert_eq!(dropped.len(), 1);
        assert!(store.load().await.unwrap().files.is_empty());
    }
}
