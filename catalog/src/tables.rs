//! Schemas, tables and views in the store: reading them all at start-up, and creating,
//! dropping and renaming them, each change in one transaction.

use crate::entries::{CatalogContents, DataFile, SchemaEntry, TableEntry, TableKind};
use crate::error::{CatalogError, db};
use crate::names::check_name;
use crate::store::{CatalogStore, Tx, now_ms};
use crate::writes::{finish_pending, insert_files};
use sqlx::Row;
use sqlx::any::AnyRow;
use std::collections::HashMap;

impl CatalogStore {
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
        let mut tx = self.pool.begin().await.map_err(db("creating a table"))?;
        let replaced = insert_entry(&mut tx, entry, replace).await?;
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
}

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

/// Inserts `entry` (its name checked, its definition as JSON), after the entry of the same
/// kind and name it replaces (`replace`), which is returned.
pub(crate) async fn insert_entry(
    tx: &mut Tx<'_>,
    entry: &TableEntry,
    replace: bool,
) -> Result<Option<TableEntry>, CatalogError> {
    check_name(entry.kind.noun(), &entry.name)?;
    let definition = serde_json::to_string(&entry.definition).map_err(|source| {
        CatalogError::CorruptDefinition {
            name: entry.qualified_name(),
            source,
        }
    })?;
    let schema_exists =
        sqlx::query("SELECT 1 FROM osprey_schemas WHERE catalog_name = $1 AND schema_name = $2")
            .bind(&entry.catalog)
            .bind(&entry.schema)
            .fetch_optional(&mut **tx)
            .await
            .map_err(db("creating a table"))?;
    if schema_exists.is_none() {
        return Err(CatalogError::NotFound {
            kind: "schema",
            name: format!("{}.{}", entry.catalog, entry.schema),
        });
    }
    let existing = find_table(tx, &entry.catalog, &entry.schema, &entry.name).await?;
    let replaced = match existing {
        Some(old) if replace && old.kind == entry.kind => {
            delete_table(tx, &old.id).await?;
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
    .execute(&mut **tx)
    .await
    .map_err(db("creating a table"))?;
    Ok(replaced)
}

async fn delete_table(tx: &mut Tx<'_>, table_id: &str) -> Result<(), CatalogError> {
    sqlx::query("DELETE FROM osprey_iceberg_tables WHERE table_id = $1")
        .bind(table_id)
        .execute(&mut **tx)
        .await
        .map_err(db("dropping a table"))?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entries::TableDefinition;

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
