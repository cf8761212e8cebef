//! Row filters and column masks (see migration 0011): named expressions on one table, each for
//! one grantee, that governance applies over the table's scans. The store keeps them; what
//! they mean is `osprey-service`'s.

use super::{CatalogError, CatalogStore, Grantee, SecuredObject, db};
use sqlx::Row;

/// Which kind a data filter is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DataFilterKind {
    /// A row filter: a boolean expression; rows where it is not true are not seen.
    RowFilter,
    /// A column mask: an expression whose value replaces the column's.
    ColumnMask,
}

impl DataFilterKind {
    /// Its SQL name (`ROW FILTER`, `COLUMN MASK`), as stored.
    pub fn name(self) -> &'static str {
        match self {
            DataFilterKind::RowFilter => "ROW FILTER",
            DataFilterKind::ColumnMask => "COLUMN MASK",
        }
    }

    fn from_name(name: &str) -> Self {
        match name {
            "COLUMN MASK" => DataFilterKind::ColumnMask,
            _ => DataFilterKind::RowFilter,
        }
    }
}

/// A row filter or column mask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataFilter {
    /// Its name, unique per table and kind.
    pub name: String,
    /// The table ([`SecuredObject::Table`]).
    pub table: SecuredObject,
    /// Filter or mask.
    pub kind: DataFilterKind,
    /// For a mask: the column it masks.
    pub column: Option<String>,
    /// Who it applies to: a role, `public` for every user.
    pub grantee: Grantee,
    /// The SQL expression.
    pub expression: String,
    /// The user who created it.
    pub created_by: String,
    /// When (milliseconds since the Unix epoch).
    pub created_at_ms: i64,
}

const FILTER_COLUMNS: &str = "object_kind, catalog_name, schema_name, table_name, filter_kind, \
    filter_name, column_name, grantee_kind, grantee_name, expression, created_by, created_at_ms";

impl CatalogStore {
    /// Every row filter and column mask.
    pub(crate) async fn data_filters(&self) -> Result<Vec<DataFilter>, CatalogError> {
        let failed = || db("reading row filters and column masks");
        sqlx::query(&format!(
            "SELECT {FILTER_COLUMNS} FROM osprey_data_filters \
             ORDER BY catalog_name, schema_name, table_name, filter_kind, filter_name"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(failed())?
        .iter()
        .map(|row| {
            let kind: String = row.try_get(4).map_err(failed())?;
            let column: String = row.try_get(6).map_err(failed())?;
            let grantee_kind: String = row.try_get(7).map_err(failed())?;
            Ok(DataFilter {
                table: SecuredObject::from_row(row, 0)?,
                kind: DataFilterKind::from_name(&kind),
                name: row.try_get(5).map_err(failed())?,
                column: (!column.is_empty()).then_some(column),
                grantee: Grantee::from_parts(&grantee_kind, row.try_get(8).map_err(failed())?),
                expression: row.try_get(9).map_err(failed())?,
                created_by: row.try_get(10).map_err(failed())?,
                created_at_ms: row.try_get(11).map_err(failed())?,
            })
        })
        .collect()
    }

    /// Stores `filter`, replacing one of its name on its table if `replace`;
    /// [`CatalogError::AlreadyExists`] if the name is taken and not `replace`.
    pub async fn put_data_filter(
        &self,
        filter: &DataFilter,
        replace: bool,
    ) -> Result<(), CatalogError> {
        let failed = || db("storing a row filter or column mask");
        let (kind, catalog, schema, table) = filter.table.parts();
        let (grantee_kind, grantee_name) = filter.grantee.parts();
        let mut tx = self.pool.begin().await.map_err(failed())?;
        if replace {
            remove_filter(&mut tx, &filter.table, filter.kind, &filter.name).await?;
        }
        sqlx::query(&format!(
            "INSERT INTO osprey_data_filters ({FILTER_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        ))
        .bind(kind)
        .bind(catalog)
        .bind(schema)
        .bind(table)
        .bind(filter.kind.name())
        .bind(&filter.name)
        .bind(filter.column.as_deref().unwrap_or(""))
        .bind(grantee_kind)
        .bind(grantee_name)
        .bind(&filter.expression)
        .bind(&filter.created_by)
        .bind(filter.created_at_ms)
        .execute(&mut *tx)
        .await
        .map_err(|err| match err {
            sqlx::Error::Database(ref db_err) if db_err.is_unique_violation() => {
                CatalogError::AlreadyExists {
                    kind: filter.kind.name_lowercase(),
                    name: filter.name.clone(),
                }
            }
            other => failed()(other),
        })?;
        tx.commit().await.map_err(failed())
    }

    /// Removes the filter or mask `name` of `table`; whether there was one.
    pub async fn remove_data_filter(
        &self,
        table: &SecuredObject,
        kind: DataFilterKind,
        name: &str,
    ) -> Result<bool, CatalogError> {
        let failed = || db("dropping a row filter or column mask");
        let mut tx = self.pool.begin().await.map_err(failed())?;
        let removed = remove_filter(&mut tx, table, kind, name).await?;
        tx.commit().await.map_err(failed())?;
        Ok(removed)
    }
}

impl DataFilterKind {
    /// Its name in lower case, for messages.
    pub fn name_lowercase(self) -> &'static str {
        match self {
            DataFilterKind::RowFilter => "row filter",
            DataFilterKind::ColumnMask => "column mask",
        }
    }
}

async fn remove_filter(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    table: &SecuredObject,
    kind: DataFilterKind,
    name: &str,
) -> Result<bool, CatalogError> {
    let (_, catalog, schema, table) = table.parts();
    let removed = sqlx::query(
        "DELETE FROM osprey_data_filters WHERE catalog_name = $1 AND schema_name = $2 \
         AND table_name = $3 AND filter_kind = $4 AND filter_name = $5",
    )
    .bind(catalog)
    .bind(schema)
    .bind(table)
    .bind(kind.name())
    .bind(name)
    .execute(&mut **tx)
    .await
    .map_err(db("dropping a row filter or column mask"))?;
    Ok(removed.rows_affected() > 0)
}
