//! Attached catalogs: other catalogs (Iceberg REST, SQL, Hadoop) whose tables read as
//! `name.namespace.table` (see migration 0008).

use super::{CatalogError, CatalogStore, db};
use sqlx::Row;
use sqlx::any::AnyRow;
use std::collections::BTreeMap;

/// A stored `CREATE CATALOG`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachedCatalogRecord {
    /// Its name (the first part of three-part names).
    pub name: String,
    /// The connector it uses (`iceberg`).
    pub connector: String,
    /// Its WITH clause, secrets included.
    pub properties: BTreeMap<String, String>,
    /// The user who attached it.
    pub created_by: String,
    /// When it was attached (milliseconds since the Unix epoch).
    pub created_at_ms: i64,
}

const COLUMNS: &str = "catalog_name, connector, properties, created_by, created_at_ms";

fn catalog_from_row(row: &AnyRow) -> Result<AttachedCatalogRecord, CatalogError> {
    let read = || db("reading an attached catalog");
    let name: String = row.try_get(0).map_err(read())?;
    let properties: String = row.try_get(2).map_err(read())?;
    Ok(AttachedCatalogRecord {
        properties: serde_json::from_str(&properties).map_err(|source| {
            CatalogError::CorruptDefinition {
                name: format!("catalog {name}"),
                source,
            }
        })?,
        connector: row.try_get(1).map_err(read())?,
        created_by: row.try_get(3).map_err(read())?,
        created_at_ms: row.try_get(4).map_err(read())?,
        name,
    })
}

impl CatalogStore {
    /// Every attached catalog, by name.
    pub async fn attached_catalogs(&self) -> Result<Vec<AttachedCatalogRecord>, CatalogError> {
        sqlx::query(&format!(
            "SELECT {COLUMNS} FROM osprey_attached_catalogs ORDER BY catalog_name"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(db("reading attached catalogs"))?
        .iter()
        .map(catalog_from_row)
        .collect()
    }

    /// Stores an attached catalog, or replaces the one of the same name when `replace` is set;
    /// [`CatalogError::AlreadyExists`] if the name is taken and `replace` is not set.
    pub async fn attach_catalog(
        &self,
        catalog: &AttachedCatalogRecord,
        replace: bool,
    ) -> Result<(), CatalogError> {
        let what = "attaching a catalog";
        let properties = serde_json::to_string(&catalog.properties).map_err(|source| {
            CatalogError::CorruptDefinition {
                name: format!("catalog {}", catalog.name),
                source,
            }
        })?;
        let mut tx = self.pool.begin().await.map_err(db(what))?;
        if replace {
            sqlx::query("DELETE FROM osprey_attached_catalogs WHERE catalog_name = $1")
                .bind(&catalog.name)
                .execute(&mut *tx)
                .await
                .map_err(db(what))?;
        }
        sqlx::query(&format!(
            "INSERT INTO osprey_attached_catalogs ({COLUMNS}) VALUES ($1, $2, $3, $4, $5)"
        ))
        .bind(&catalog.name)
        .bind(&catalog.connector)
        .bind(properties)
        .bind(&catalog.created_by)
        .bind(catalog.created_at_ms)
        .execute(&mut *tx)
        .await
        .map_err(|err| match err {
            sqlx::Error::Database(ref db_err) if db_err.is_unique_violation() => {
                CatalogError::AlreadyExists {
                    kind: "catalog",
                    name: catalog.name.clone(),
                }
            }
            other => db(what)(other),
        })?;
        tx.commit().await.map_err(db(what))
    }

    /// Detaches a catalog; [`CatalogError::NotFound`] if absent. Its tables are untouched.
    pub async fn detach_catalog(&self, name: &str) -> Result<(), CatalogError> {
        let result = sqlx::query("DELETE FROM osprey_attached_catalogs WHERE catalog_name = $1")
            .bind(name)
            .execute(&self.pool)
            .await
            .map_err(db("detaching a catalog"))?;
        if result.rows_affected() == 0 {
            return Err(CatalogError::NotFound {
                kind: "catalog",
                name: name.to_string(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::now_ms;

    #[tokio::test]
    async fn catalogs_are_attached_replaced_and_detached() {
        let store = CatalogStore::open("sqlite::memory:").await.unwrap();
        let lake = AttachedCatalogRecord {
            name: "lake".into(),
            connector: "iceberg".into(),
            properties: BTreeMap::from([
                ("type".to_string(), "rest".to_string()),
                ("credential".to_string(), "id:secret".to_string()),
            ]),
            created_by: "admin".into(),
            created_at_ms: now_ms(),
        };
        store.attach_catalog(&lake, false).await.unwrap();
        assert!(matches!(
            store.attach_catalog(&lake, false).await,
            Err(CatalogError::AlreadyExists { .. })
        ));
        let moved = AttachedCatalogRecord {
            properties: BTreeMap::from([("type".to_string(), "hadoop".to_string())]),
            ..lake.clone()
        };
        store.attach_catalog(&moved, true).await.unwrap();
        assert_eq!(store.attached_catalogs().await.unwrap(), vec![moved]);
        store.detach_catalog("lake").await.unwrap();
        assert!(store.attached_catalogs().await.unwrap().is_empty());
        assert!(matches!(
            store.detach_catalog("lake").await,
            Err(CatalogError::NotFound { .. })
        ));
    }
}
