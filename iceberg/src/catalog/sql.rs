//! The JDBC catalog's tables, as pyiceberg's `SqlCatalog` and Java's `JdbcCatalog` keep them
//! in SQLite or PostgreSQL:
//!
//! - `iceberg_tables (catalog_name, table_namespace, table_name, metadata_location,
//!   previous_metadata_location)`: one row per table, its namespace's levels joined with `.`;
//! - `iceberg_namespace_properties (catalog_name, namespace, property_key, property_value)`:
//!   namespaces that exist without tables.
//!
//! One database may hold several catalogs, told apart by `catalog_name`.

use super::{IcebergCatalog, LoadedTable, TableCommit};
use crate::error::IcebergError;
use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;
use std::time::Duration;

/// How many connections one attached SQL catalog holds at most.
const MAX_CONNECTIONS: u32 = 4;
/// How long a statement waits for a connection (a database that does not answer).
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// An Iceberg SQL (JDBC) catalog (see the module docs).
pub struct SqlCatalog {
    pool: AnyPool,
    /// The `catalog_name` its rows carry.
    catalog_name: String,
    /// Where new tables go.
    warehouse: Option<String>,
    /// The database kind, for messages (the URI may hold a password).
    database: &'static str,
}

impl std::fmt::Debug for SqlCatalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlCatalog")
            .field("database", &self.database)
            .field("catalog_name", &self.catalog_name)
            .finish()
    }
}

impl SqlCatalog {
    /// The catalog `catalog_name` in the database at `uri` (`sqlite:///path/to.db` or
    /// `postgres://user:password@host/db`, the forms of Osprey's own `--catalog-url`). Nothing
    /// connects until the first call: a database that is down does not stop Osprey starting.
    /// A SQLite file must exist already.
    pub fn new(uri: &str, catalog_name: &str) -> Result<Self, IcebergError> {
        sqlx::any::install_default_drivers();
        let database = if uri.starts_with("sqlite:") {
            "SQLite"
        } else {
            "PostgreSQL"
        };
        let uri = if uri.starts_with("sqlite:") && !uri.contains("mode=") {
            // sqlx would create a missing file: a mistyped path must fail instead.
            format!("{uri}{}mode=rw", if uri.contains('?') { '&' } else { '?' })
        } else {
            uri.to_string()
        };
        if !(uri.starts_with("sqlite:")
            || uri.starts_with("postgres:")
            || uri.starts_with("postgresql:"))
        {
            return Err(IcebergError::Catalog(
                "the SQL catalog's uri must start with sqlite: or postgres:".to_string(),
            ));
        }
        let pool = AnyPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_lazy(&uri)
            .map_err(|err| IcebergError::Catalog(format!("bad SQL catalog uri: {err}")))?;
        Ok(Self {
            pool,
            catalog_name: catalog_name.to_string(),
            database,
            warehouse: None,
        })
    }

    /// Where new tables go: `<warehouse>/<namespace>.db/<table>`, as pyiceberg puts them.
    pub fn with_warehouse(mut self, warehouse: Option<String>) -> Self {
        self.warehouse = warehouse.map(|w| w.trim_end_matches('/').to_string());
        self
    }

    fn failed(&self, what: &str) -> impl Fn(sqlx::Error) -> IcebergError + '_ {
        let what = what.to_string();
        move |err| {
            let message = format!("the {} database failed {what}: {err}", self.database);
            match err {
                sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::Tls(_) => {
                    IcebergError::CatalogUnavailable(message)
                }
                _ => IcebergError::Catalog(message),
            }
        }
    }
}

#[async_trait::async_trait]
impl IcebergCatalog for SqlCatalog {
    fn kind(&self) -> &'static str {
        "sql"
    }

    async fn namespaces(&self) -> Result<Vec<String>, IcebergError> {
        let mut names: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT table_namespace FROM iceberg_tables WHERE catalog_name = $1",
        )
        .bind(&self.catalog_name)
        .fetch_all(&self.pool)
        .await
        .map_err(self.failed("listing namespaces"))?;
        // Namespaces without tables live only in the properties table.
        let empty: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT namespace FROM iceberg_namespace_properties WHERE catalog_name = $1",
        )
        .bind(&self.catalog_name)
        .fetch_all(&self.pool)
        .await
        .map_err(self.failed("listing namespaces"))?;
        names.extend(empty);
        names.sort();
        names.dedup();
        Ok(names)
    }

    async fn table_names(&self, namespace: &str) -> Result<Vec<String>, IcebergError> {
        sqlx::query_scalar(
            "SELECT table_name FROM iceberg_tables WHERE catalog_name = $1 AND table_namespace = $2 \
             ORDER BY table_name",
        )
        .bind(&self.catalog_name)
        .bind(namespace)
        .fetch_all(&self.pool)
        .await
        .map_err(self.failed("listing tables"))
    }

    async fn load_table(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<LoadedTable>, IcebergError> {
        let location: Option<Option<String>> = sqlx::query_scalar(
            "SELECT metadata_location FROM iceberg_tables \
             WHERE catalog_name = $1 AND table_namespace = $2 AND table_name = $3",
        )
        .bind(&self.catalog_name)
        .bind(namespace)
        .bind(name)
        .fetch_optional(&self.pool)
        .await
        .map_err(self.failed("loading a table"))?;
        match location {
            None => Ok(None),
            Some(None) => Err(IcebergError::Catalog(format!(
                "{namespace}.{name} has no metadata location in the SQL catalog"
            ))),
            Some(Some(metadata_location)) => Ok(Some(LoadedTable {
                metadata_location,
                metadata: None,
                credentials: None,
            })),
        }
    }

    fn check_writable(&self) -> Result<(), IcebergError> {
        Ok(())
    }

    async fn commit_table(
        &self,
        namespace: &str,
        name: &str,
        commit: &TableCommit,
    ) -> Result<bool, IcebergError> {
        let (expected, new_location) = (&commit.base_location, &commit.metadata_location);
        // The JDBC catalog's own commit: one conditional update (pyiceberg and Java do the
        // same), so two writers never both win.
        let updated = sqlx::query(
            "UPDATE iceberg_tables SET metadata_location = $1, previous_metadata_location = $2 \
             WHERE catalog_name = $3 AND table_namespace = $4 AND table_name = $5 \
             AND metadata_location = $2",
        )
        .bind(new_location)
        .bind(expected)
        .bind(&self.catalog_name)
        .bind(namespace)
        .bind(name)
        .execute(&self.pool)
        .await
        .map_err(self.failed("a commit"))?;
        Ok(updated.rows_affected() == 1)
    }

    fn default_location(&self, namespace: &str, name: &str) -> Option<String> {
        Some(format!(
            "{}/{namespace}.db/{name}",
            self.warehouse.as_ref()?
        ))
    }

    async fn register_table(
        &self,
        namespace: &str,
        name: &str,
        metadata_location: &str,
    ) -> Result<(), IcebergError> {
        if !self.namespaces().await?.iter().any(|n| n == namespace) {
            return Err(IcebergError::Catalog(format!(
                "namespace {namespace} does not exist in the catalog"
            )));
        }
        // The table's key is the primary key: a second writer's insert fails.
        sqlx::query(
            "INSERT INTO iceberg_tables (catalog_name, table_namespace, table_name, \
             metadata_location, previous_metadata_location) VALUES ($1, $2, $3, $4, NULL)",
        )
        .bind(&self.catalog_name)
        .bind(namespace)
        .bind(name)
        .bind(metadata_location)
        .execute(&self.pool)
        .await
        .map_err(|err| match &err {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                IcebergError::Catalog(format!("table {namespace}.{name} already exists"))
            }
            _ => self.failed("creating a table")(err),
        })?;
        Ok(())
    }

    async fn create_namespace(&self, namespace: &str) -> Result<(), IcebergError> {
        // As pyiceberg and Java record a namespace without tables: one property row.
        sqlx::query(
            "INSERT INTO iceberg_namespace_properties \
             (catalog_name, namespace, property_key, property_value) VALUES ($1, $2, $3, $4)",
        )
        .bind(&self.catalog_name)
        .bind(namespace)
        .bind("exists")
        .bind("true")
        .execute(&self.pool)
        .await
        .map_err(self.failed("creating a namespace"))?;
        Ok(())
    }

    async fn drop_namespace(&self, namespace: &str) -> Result<bool, IcebergError> {
        if !self.table_names(namespace).await?.is_empty() {
            return Err(IcebergError::Catalog(format!(
                "namespace {namespace} holds tables: drop them first"
            )));
        }
        let deleted = sqlx::query(
            "DELETE FROM iceberg_namespace_properties WHERE catalog_name = $1 AND namespace = $2",
        )
        .bind(&self.catalog_name)
        .bind(namespace)
        .execute(&self.pool)
        .await
        .map_err(self.failed("dropping a namespace"))?;
        Ok(deleted.rows_affected() > 0)
    }

    async fn rename_table(&self, from: (&str, &str), to: (&str, &str)) -> Result<(), IcebergError> {
        if !self.namespaces().await?.iter().any(|n| n == to.0) {
            return Err(IcebergError::Catalog(format!(
                "namespace {} does not exist in the catalog",
                to.0
            )));
        }
        if self.load_table(to.0, to.1).await?.is_some() {
            return Err(IcebergError::Catalog(format!(
                "{}.{} exists already",
                to.0, to.1
            )));
        }
        // The row moves; the unique key refuses a table created under the new name meanwhile.
        let renamed = sqlx::query(
            "UPDATE iceberg_tables SET table_namespace = $1, table_name = $2 \
             WHERE catalog_name = $3 AND table_namespace = $4 AND table_name = $5",
        )
        .bind(to.0)
        .bind(to.1)
        .bind(&self.catalog_name)
        .bind(from.0)
        .bind(from.1)
        .execute(&self.pool)
        .await
        .map_err(self.failed("renaming a table"))?;
        match renamed.rows_affected() {
            1 => Ok(()),
            _ => Err(IcebergError::Catalog(format!(
                "{}.{} does not exist",
                from.0, from.1
            ))),
        }
    }

    async fn drop_table(&self, namespace: &str, name: &str) -> Result<bool, IcebergError> {
        let deleted = sqlx::query(
            "DELETE FROM iceberg_tables WHERE catalog_name = $1 AND table_namespace = $2 \
             AND table_name = $3",
        )
        .bind(&self.catalog_name)
        .bind(namespace)
        .bind(name)
        .execute(&self.pool)
        .await
        .map_err(self.failed("dropping a table"))?;
        Ok(deleted.rows_affected() > 0)
    }
}
