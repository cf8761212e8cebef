//! External locations: the URL prefixes admins grant to users (see migration 0006).

use super::{CatalogError, CatalogStore, ManagedBy, db};
use sqlx::Row;
use sqlx::any::AnyRow;

/// A stored location grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocationRecord {
    /// Its name (lower case unless quoted when created).
    pub name: String,
    /// The URL prefix it covers, ending in `/`.
    pub url: String,
    /// The users it is granted to; `["*"]` for every user.
    pub users: Vec<String>,
    /// Whether it takes only external tables (reads), no UNLOAD.
    pub read_only: bool,
    /// Who defines it.
    pub managed_by: ManagedBy,
    /// When it was created (milliseconds since the Unix epoch).
    pub created_at_ms: i64,
}

const COLUMNS: &str = "location_name, url, users, read_only, managed_by, created_at_ms";

fn location_from_row(row: &AnyRow) -> Result<LocationRecord, CatalogError> {
    let read = || db("reading a location");
    let name: String = row.try_get(0).map_err(read())?;
    let users: String = row.try_get(2).map_err(read())?;
    let managed_by: String = row.try_get(4).map_err(read())?;
    Ok(LocationRecord {
        users: serde_json::from_str(&users).map_err(|source| CatalogError::CorruptDefinition {
            name: format!("location {name}"),
            source,
        })?,
        url: row.try_get(1).map_err(read())?,
        read_only: row.try_get::<i64, _>(3).map_err(read())? != 0,
        managed_by: ManagedBy::parse(&managed_by),
        created_at_ms: row.try_get(5).map_err(read())?,
        name,
    })
}

impl CatalogStore {
    /// Every location, by name.
    pub async fn locations(&self) -> Result<Vec<LocationRecord>, CatalogError> {
        sqlx::query(&format!(
            "SELECT {COLUMNS} FROM osprey_locations ORDER BY location_name"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(db("reading locations"))?
        .iter()
        .map(location_from_row)
        .collect()
    }

    /// Stores a new location, or replaces the one of the same name when `replace` is set;
    /// [`CatalogError::AlreadyExists`] if the name is taken and `replace` is not set.
    pub async fn create_location(
        &self,
        location: &LocationRecord,
        replace: bool,
    ) -> Result<(), CatalogError> {
        let users = serde_json::to_string(&location.users).map_err(|source| {
            CatalogError::CorruptDefinition {
                name: format!("location {}", location.name),
                source,
            }
        })?;
        let mut tx = self.pool.begin().await.map_err(db("creating a location"))?;
        if replace {
            sqlx::query("DELETE FROM osprey_locations WHERE location_name = $1")
                .bind(&location.name)
                .execute(&mut *tx)
                .await
                .map_err(db("creating a location"))?;
        }
        sqlx::query(&format!(
            "INSERT INTO osprey_locations ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)"
        ))
        .bind(&location.name)
        .bind(&location.url)
        .bind(users)
        .bind(i64::from(location.read_only))
        .bind(location.managed_by.as_str())
        .bind(location.created_at_ms)
        .execute(&mut *tx)
        .await
        .map_err(|err| match err {
            sqlx::Error::Database(ref db_err) if db_err.is_unique_violation() => {
                CatalogError::AlreadyExists {
                    kind: "location",
                    name: location.name.clone(),
                }
            }
            other => db("creating a location")(other),
        })?;
        tx.commit().await.map_err(db("creating a location"))
    }

    /// Removes a location; [`CatalogError::NotFound`] if absent. Tables already created under
    /// it keep their definitions.
    pub async fn drop_location(&self, name: &str) -> Result<(), CatalogError> {
        let result = sqlx::query("DELETE FROM osprey_locations WHERE location_name = $1")
            .bind(name)
            .execute(&self.pool)
            .await
            .map_err(db("dropping a location"))?;
        if result.rows_affected() == 0 {
            return Err(CatalogError::NotFound {
                kind: "location",
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
    async fn locations_are_stored_replaced_and_dropped() {
        let store = CatalogStore::open("sqlite::memory:").await.unwrap();
        let raw = LocationRecord {
            name: "raw".into(),
            url: "s3://lake/raw/".into(),
            users: vec!["ana".into(), "ben".into()],
            read_only: true,
            managed_by: ManagedBy::Sql,
            created_at_ms: now_ms(),
        };
        store.create_location(&raw, false).await.unwrap();
        assert!(matches!(
            store.create_location(&raw, false).await,
            Err(CatalogError::AlreadyExists { .. })
        ));
        let everyone = LocationRecord {
            users: vec!["*".into()],
            read_only: false,
            ..raw.clone()
        };
        store.create_location(&everyone, true).await.unwrap();
        assert_eq!(store.locations().await.unwrap(), vec![everyone]);
        store.drop_location("raw").await.unwrap();
        assert!(store.locations().await.unwrap().is_empty());
        assert!(matches!(
            store.drop_location("raw").await,
            Err(CatalogError::NotFound { .. })
        ));
    }
}
