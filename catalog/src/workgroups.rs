//! Workgroups: the admission-control policies queries run under (see migration 0005).

use super::{CatalogError, CatalogStore, ManagedBy, db, now_ms};
use sqlx::Row;
use sqlx::any::AnyRow;

/// A stored workgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkgroupRecord {
    /// Its name (lower case unless quoted when created).
    pub name: String,
    /// How many of its queries may run at once.
    pub max_concurrent_queries: u64,
    /// How many of its queries may wait for a slot; more are refused at once.
    pub max_queued_queries: u64,
    /// How long each query may run; `None` for the coordinator's `query_timeout_secs`, `Some(0)`
    /// for no limit.
    pub query_timeout_secs: Option<u64>,
    /// The most bytes of data files one query may scan; `None` for no limit.
    pub max_scan_bytes: Option<u64>,
    /// The most memory one query may reserve in each process (executor or coordinator);
    /// `None` for no limit beyond the process's pool.
    pub query_memory_bytes: Option<u64>,
    /// Who defines it.
    pub managed_by: ManagedBy,
    /// When it was created (milliseconds since the Unix epoch).
    pub created_at_ms: i64,
    /// When it was last changed.
    pub updated_at_ms: i64,
}

const COLUMNS: &str = "workgroup_name, max_concurrent_queries, max_queued_queries, \
                       query_timeout_secs, max_scan_bytes, query_memory_bytes, managed_by, \
                       created_at_ms, updated_at_ms";

fn workgroup_from_row(row: &AnyRow) -> Result<WorkgroupRecord, CatalogError> {
    let read = || db("reading a workgroup");
    let count = |i: usize| -> Result<u64, CatalogError> {
        Ok(row.try_get::<i64, _>(i).map_err(read())?.max(0) as u64)
    };
    let optional = |i: usize| -> Result<Option<u64>, CatalogError> {
        Ok(row
            .try_get::<Option<i64>, _>(i)
            .map_err(read())?
            .map(|v| v.max(0) as u64))
    };
    let managed_by: String = row.try_get(6).map_err(read())?;
    Ok(WorkgroupRecord {
        name: row.try_get(0).map_err(read())?,
        max_concurrent_queries: count(1)?,
        max_queued_queries: count(2)?,
        query_timeout_secs: optional(3)?,
        max_scan_bytes: optional(4)?,
        query_memory_bytes: optional(5)?,
        managed_by: ManagedBy::parse(&managed_by),
        created_at_ms: row.try_get(7).map_err(read())?,
        updated_at_ms: row.try_get(8).map_err(read())?,
    })
}

fn clamp(value: Option<u64>) -> Option<i64> {
    value.map(|v| v.min(i64::MAX as u64) as i64)
}

impl CatalogStore {
    /// Every workgroup, by name.
    pub async fn workgroups(&self) -> Result<Vec<WorkgroupRecord>, CatalogError> {
        sqlx::query(&format!(
            "SELECT {COLUMNS} FROM osprey_workgroups ORDER BY workgroup_name"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(db("reading workgroups"))?
        .iter()
        .map(workgroup_from_row)
        .collect()
    }

    /// Stores a new workgroup; [`CatalogError::AlreadyExists`] if the name is taken.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), osprey_catalog::CatalogError> {
    /// use osprey_catalog::{CatalogStore, ManagedBy, WorkgroupRecord, now_ms};
    ///
    /// let store = CatalogStore::open("sqlite:///tmp/osprey-catalog.db").await?;
    /// store.create_workgroup(&WorkgroupRecord {
    ///     name: "etl".into(),
    ///     max_concurrent_queries: 2,
    ///     max_queued_queries: 10,
    ///     query_timeout_secs: Some(600),
    ///     max_scan_bytes: Some(10 << 30),
    ///     query_memory_bytes: None,
    ///     managed_by: ManagedBy::Sql,
    ///     created_at_ms: now_ms(),
    ///     updated_at_ms: now_ms(),
    /// }).await?;
    /// assert_eq!(store.workgroups().await?[0].name, "etl");
    /// # Ok(()) }
    /// ```
    pub async fn create_workgroup(&self, workgroup: &WorkgroupRecord) -> Result<(), CatalogError> {
        sqlx::query(&format!(
            "INSERT INTO osprey_workgroups ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .bind(&workgroup.name)
        .bind(clamp(Some(workgroup.max_concurrent_queries)))
        .bind(clamp(Some(workgroup.max_queued_queries)))
        .bind(clamp(workgroup.query_timeout_secs))
        .bind(clamp(workgroup.max_scan_bytes))
        .bind(clamp(workgroup.query_memory_bytes))
        .bind(workgroup.managed_by.as_str())
        .bind(workgroup.created_at_ms)
        .bind(workgroup.updated_at_ms)
        .execute(&self.pool)
        .await
        .map_err(|err| match err {
            sqlx::Error::Database(ref db_err) if db_err.is_unique_violation() => {
                CatalogError::AlreadyExists {
                    kind: "workgroup",
                    name: workgroup.name.clone(),
                }
            }
            other => db("creating a workgroup")(other),
        })?;
        Ok(())
    }

    /// Replaces a workgroup's limits and manager; [`CatalogError::NotFound`] if absent.
    pub async fn update_workgroup(&self, workgroup: &WorkgroupRecord) -> Result<(), CatalogError> {
        let result = sqlx::query(
            "UPDATE osprey_workgroups SET max_concurrent_queries = $1, max_queued_queries = $2, \
             query_timeout_secs = $3, max_scan_bytes = $4, query_memory_bytes = $5, \
             managed_by = $6, updated_at_ms = $7 WHERE workgroup_name = $8",
        )
        .bind(clamp(Some(workgroup.max_concurrent_queries)))
        .bind(clamp(Some(workgroup.max_queued_queries)))
        .bind(clamp(workgroup.query_timeout_secs))
        .bind(clamp(workgroup.max_scan_bytes))
        .bind(clamp(workgroup.query_memory_bytes))
        .bind(workgroup.managed_by.as_str())
        .bind(now_ms())
        .bind(&workgroup.name)
        .execute(&self.pool)
        .await
        .map_err(db("changing a workgroup"))?;
        if result.rows_affected() == 0 {
            return Err(CatalogError::NotFound {
                kind: "workgroup",
                name: workgroup.name.clone(),
            });
        }
        Ok(())
    }

    /// Removes a workgroup; [`CatalogError::NotFound`] if absent. Users mapped to it go back
    /// to the default workgroup, in the same transaction.
    pub async fn drop_workgroup(&self, name: &str) -> Result<(), CatalogError> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(db("dropping a workgroup"))?;
        sqlx::query("UPDATE osprey_users SET workgroup = NULL WHERE workgroup = $1")
            .bind(name)
            .execute(&mut *tx)
            .await
            .map_err(db("dropping a workgroup"))?;
        let result = sqlx::query("DELETE FROM osprey_workgroups WHERE workgroup_name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await
            .map_err(db("dropping a workgroup"))?;
        if result.rows_affected() == 0 {
            return Err(CatalogError::NotFound {
                kind: "workgroup",
                name: name.to_string(),
            });
        }
        tx.commit().await.map_err(db("dropping a workgroup"))
    }
}
