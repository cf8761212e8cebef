//! Tags (see migration 0013): keys with allowed values, carried by catalogs, schemas, tables
//! and columns, and the expressions grants are made on (`GRANT SELECT ON TAGGED domain =
//! 'sales' TO ...`). The store keeps them; what they mean is `osprey-service`'s.

use super::{CatalogError, CatalogStore, SecuredObject, db};
use sqlx::Row;
use std::collections::{BTreeMap, BTreeSet};

/// A tag: a key and the values it may take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagDefinition {
    /// Its key (`domain`).
    pub key: String,
    /// The values it may take (`sales`, `hr`).
    pub values: BTreeSet<String>,
    /// The user who created it.
    pub created_by: String,
    /// When (milliseconds since the Unix epoch).
    pub created_at_ms: i64,
}

/// A tag set on an object, or on one column of a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagAssignment {
    /// The catalog, schema or table.
    pub object: SecuredObject,
    /// For a column's tag: the column.
    pub column: Option<String>,
    /// The tag's key.
    pub key: String,
    /// Its value here.
    pub value: String,
}

/// What a grant on tags covers: the objects whose tag `key` has one of the values listed, for
/// every key listed (`domain = 'sales' AND pii IN ('false', 'low')`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TagExpression {
    terms: BTreeMap<String, BTreeSet<String>>,
    /// The canonical JSON of `terms`, as stored: one expression, one spelling, whatever order
    /// a statement wrote it in.
    stored: String,
}

impl TagExpression {
    /// The expression of `terms`: each key with the values it may have. `None` when empty, or
    /// a key has no value.
    pub fn new(terms: BTreeMap<String, BTreeSet<String>>) -> Option<Self> {
        if terms.is_empty() || terms.values().any(BTreeSet::is_empty) {
            return None;
        }
        // A map of strings to sets of strings always serializes.
        let stored = serde_json::to_string(&terms).ok()?;
        Some(Self { terms, stored })
    }

    /// Each key with the values it may have.
    pub fn terms(&self) -> &BTreeMap<String, BTreeSet<String>> {
        &self.terms
    }

    /// Whether an object whose tags are `tags` (key to value) is covered.
    pub fn matches(&self, tags: &BTreeMap<String, String>) -> bool {
        self.terms
            .iter()
            .all(|(key, values)| tags.get(key).is_some_and(|v| values.contains(v)))
    }

    pub(crate) fn stored(&self) -> &str {
        &self.stored
    }

    pub(crate) fn from_stored(stored: &str) -> Result<Self, CatalogError> {
        let corrupt = |source| CatalogError::CorruptDefinition {
            name: format!("the tag expression {stored}"),
            source,
        };
        let terms: BTreeMap<String, BTreeSet<String>> =
            serde_json::from_str(stored).map_err(corrupt)?;
        Self::new(terms).ok_or_else(|| {
            corrupt(<serde_json::Error as serde::de::Error>::custom(
                "an empty expression",
            ))
        })
    }
}

impl std::fmt::Display for TagExpression {
    /// As SQL writes it: `domain = 'sales' AND pii IN ('false', 'low')`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let quoted = |v: &String| format!("'{}'", v.replace('\'', "''"));
        for (i, (key, values)) in self.terms.iter().enumerate() {
            if i > 0 {
                f.write_str(" AND ")?;
            }
            match values.len() {
                1 => write!(f, "{key} = {}", quoted(values.first().expect("one value")))?,
                _ => {
                    let list: Vec<String> = values.iter().map(quoted).collect();
                    write!(f, "{key} IN ({})", list.join(", "))?
                }
            }
        }
        Ok(())
    }
}

impl CatalogStore {
    /// Every tag.
    pub(crate) async fn tags(&self) -> Result<Vec<TagDefinition>, CatalogError> {
        let failed = || db("reading tags");
        sqlx::query(
            "SELECT tag_key, allowed_values, created_by, created_at_ms FROM osprey_tags \
             ORDER BY tag_key",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(failed())?
        .iter()
        .map(|row| {
            let key: String = row.try_get(0).map_err(failed())?;
            let values: String = row.try_get(1).map_err(failed())?;
            Ok(TagDefinition {
                values: serde_json::from_str(&values).map_err(|source| {
                    CatalogError::CorruptDefinition {
                        name: format!("the values of tag {key}"),
                        source,
                    }
                })?,
                key,
                created_by: row.try_get(2).map_err(failed())?,
                created_at_ms: row.try_get(3).map_err(failed())?,
            })
        })
        .collect()
    }

    /// Every tag set on an object or column.
    pub(crate) async fn tag_assignments(&self) -> Result<Vec<TagAssignment>, CatalogError> {
        let failed = || db("reading tag assignments");
        sqlx::query(
            "SELECT object_kind, catalog_name, schema_name, table_name, column_name, tag_key, \
             tag_value FROM osprey_tag_assignments ORDER BY catalog_name, schema_name, \
             table_name, column_name, tag_key",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(failed())?
        .iter()
        .map(|row| {
            let column: String = row.try_get(4).map_err(failed())?;
            Ok(TagAssignment {
                object: SecuredObject::from_row(row, 0)?,
                column: (!column.is_empty()).then_some(column),
                key: row.try_get(5).map_err(failed())?,
                value: row.try_get(6).map_err(failed())?,
            })
        })
        .collect()
    }

    /// Stores tag `key` with `values`: a new tag, or, if `replace`, the values of an existing
    /// one. [`CatalogError::AlreadyExists`] if it exists and not `replace`.
    pub async fn put_tag(&self, tag: &TagDefinition, replace: bool) -> Result<(), CatalogError> {
        let failed = || db("storing a tag");
        let values = serde_json::to_string(&tag.values).map_err(|source| {
            CatalogError::CorruptDefinition {
                name: format!("the values of tag {}", tag.key),
                source,
            }
        })?;
        let mut tx = self.pool.begin().await.map_err(failed())?;
        if replace {
            sqlx::query("DELETE FROM osprey_tags WHERE tag_key = $1")
                .bind(&tag.key)
                .execute(&mut *tx)
                .await
                .map_err(failed())?;
        }
        sqlx::query(
            "INSERT INTO osprey_tags (tag_key, allowed_values, created_by, created_at_ms) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(&tag.key)
        .bind(values)
        .bind(&tag.created_by)
        .bind(tag.created_at_ms)
        .execute(&mut *tx)
        .await
        .map_err(|err| match err {
            sqlx::Error::Database(ref db_err) if db_err.is_unique_violation() => {
                CatalogError::AlreadyExists {
                    kind: "tag",
                    name: tag.key.clone(),
                }
            }
            other => failed()(other),
        })?;
        tx.commit().await.map_err(failed())
    }

    /// Removes tag `key` and every assignment of it, in one transaction;
    /// [`CatalogError::NotFound`] if absent.
    pub async fn drop_tag(&self, key: &str) -> Result<(), CatalogError> {
        let failed = || db("dropping a tag");
        let mut tx = self.pool.begin().await.map_err(failed())?;
        let removed = sqlx::query("DELETE FROM osprey_tags WHERE tag_key = $1")
            .bind(key)
            .execute(&mut *tx)
            .await
            .map_err(failed())?;
        if removed.rows_affected() == 0 {
            return Err(CatalogError::NotFound {
                kind: "tag",
                name: key.to_string(),
            });
        }
        sqlx::query("DELETE FROM osprey_tag_assignments WHERE tag_key = $1")
            .bind(key)
            .execute(&mut *tx)
            .await
            .map_err(failed())?;
        tx.commit().await.map_err(failed())
    }

    /// Sets tag `assignment.key` on its object or column to its value (`None`: removes it
    /// there); whether something changed.
    pub async fn assign_tag(
        &self,
        assignment: &TagAssignment,
        value: Option<(&str, i64)>,
    ) -> Result<bool, CatalogError> {
        let failed = || db("setting a tag");
        let (kind, catalog, schema, table) = assignment.object.parts();
        let column = assignment.column.as_deref().unwrap_or("");
        let mut tx = self.pool.begin().await.map_err(failed())?;
        let removed = sqlx::query(
            "DELETE FROM osprey_tag_assignments WHERE object_kind = $1 AND catalog_name = $2 \
             AND schema_name = $3 AND table_name = $4 AND column_name = $5 AND tag_key = $6",
        )
        .bind(kind)
        .bind(catalog)
        .bind(schema)
        .bind(table)
        .bind(column)
        .bind(&assignment.key)
        .execute(&mut *tx)
        .await
        .map_err(failed())?;
        if let Some((by, at_ms)) = value {
            sqlx::query(
                "INSERT INTO osprey_tag_assignments (object_kind, catalog_name, schema_name, \
                 table_name, column_name, tag_key, tag_value, assigned_by, assigned_at_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(kind)
            .bind(catalog)
            .bind(schema)
            .bind(table)
            .bind(column)
            .bind(&assignment.key)
            .bind(&assignment.value)
            .bind(by)
            .bind(at_ms)
            .execute(&mut *tx)
            .await
            .map_err(failed())?;
        }
        tx.commit().await.map_err(failed())?;
        Ok(value.is_some() || removed.rows_affected() > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expression(terms: &[(&str, &[&str])]) -> TagExpression {
        TagExpression::new(
            terms
                .iter()
                .map(|(k, vs)| (k.to_string(), vs.iter().map(|v| v.to_string()).collect()))
                .collect(),
        )
        .expect("an expression")
    }

    #[test]
    fn an_expression_has_one_spelling_and_matches_every_key() {
        let one = expression(&[("pii", &["false"]), ("domain", &["sales", "hr"])]);
        let other = expression(&[("domain", &["hr", "sales"]), ("pii", &["false"])]);
        assert_eq!(one, other);
        assert_eq!(one.stored(), r#"{"domain":["hr","sales"],"pii":["false"]}"#);
        assert_eq!(
            one.to_string(),
            "domain IN ('hr', 'sales') AND pii = 'false'"
        );
        assert_eq!(TagExpression::from_stored(one.stored()).unwrap(), one);
        let tags = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert!(one.matches(&tags(&[("domain", "hr"), ("pii", "false"), ("x", "y")])));
        assert!(!one.matches(&tags(&[("domain", "hr")])));
        assert!(!one.matches(&tags(&[("domain", "ops"), ("pii", "false")])));
        assert!(TagExpression::new(BTreeMap::new()).is_none());
        assert!(TagExpression::from_stored("[1]").is_err());
    }
}
