//! The metadata tables every session sees: `information_schema` in each catalog, with SQL
//! type names from the one mapping ([`crate::sql_type_name`]).
//!
//! - Each catalog gains an `information_schema` with `schemata`, `tables`, `columns` and
//!   `views` shaped as Trino's (`data_type` holds SQL type names such as `DECIMAL(12,2)`,
//!   `columns.comment` exists, `is_nullable` is `YES`/`NO`); DataFusion's other
//!   information_schema tables (`df_settings`, `routines`, `parameters`) remain.
//! - A [`MetadataStyle`] says how a front door's clients want them: Osprey's doors name types
//!   in upper case ([`SqlMetadata`]); Trino's clients read lower case names and a `system`
//!   catalog with `system.jdbc.catalogs` and `system.metadata.table_comments`, which the Trino
//!   SQLAlchemy dialect reads.
//!
//! Equality filters on the catalog, schema and table columns (`WHERE table_schema = 'x'`) are
//! used to look at only the tables asked for, so SQLAlchemy's many `has_table` checks stay
//! cheap however many tables there are.

mod listing;

use crate::sql_types::TypeNameCase;
use datafusion::catalog::information_schema::InformationSchemaProvider;
use datafusion::catalog::{CatalogProvider, CatalogProviderList, SchemaProvider, TableProvider};
use listing::{Kind, MetadataTable, Source};
use std::sync::Arc;

/// The name of the information schema in every catalog.
const INFORMATION_SCHEMA: &str = "information_schema";
/// The name of the catalog with `jdbc` and `metadata` schemas.
const SYSTEM_CATALOG: &str = "system";

/// The metadata tables a front door's clients expect: the Trino door's clients read Trino's
/// `information_schema` and `system.jdbc` tables. A session
/// with a flavor sees the catalogs through it, and DataFusion's own `information_schema` is
/// off (the flavor answers it).
pub trait MetadataTables: std::fmt::Debug + Send + Sync {
    /// The flavor's name; sessions with the same name see the same tables.
    fn name(&self) -> &'static str;
    /// The catalogs as the session sees them, given the server's.
    fn wrap(&self, catalogs: Arc<dyn CatalogProviderList>) -> Arc<dyn CatalogProviderList>;
}

/// A session's [`MetadataTables`].
#[derive(Debug, Clone)]
pub struct MetadataFlavor(pub Arc<dyn MetadataTables>);

impl PartialEq for MetadataFlavor {
    fn eq(&self, other: &Self) -> bool {
        self.0.name() == other.0.name()
    }
}

impl Eq for MetadataFlavor {}

/// How a front door's clients want the metadata tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetadataStyle {
    /// How `information_schema.columns.data_type` spells types.
    pub type_names: TypeNameCase,
    /// Whether a `system` catalog with `jdbc.catalogs` and `metadata.table_comments` is added
    /// (when the server has no `system` catalog of its own).
    pub jdbc_system_catalog: bool,
}

impl MetadataStyle {
    /// Osprey's own doors: upper case SQL type names, no JDBC system tables.
    pub const SQL: MetadataStyle = MetadataStyle {
        type_names: TypeNameCase::Upper,
        jdbc_system_catalog: false,
    };
    /// Trino's clients: lower case type names and the `system` catalog they read.
    pub const TRINO: MetadataStyle = MetadataStyle {
        type_names: TypeNameCase::Lower,
        jdbc_system_catalog: true,
    };
}

/// The metadata tables of sessions whose door asks for no other flavor: [`MetadataStyle::SQL`].
#[derive(Debug)]
pub struct SqlMetadata;

impl MetadataTables for SqlMetadata {
    fn name(&self) -> &'static str {
        "sql"
    }

    fn wrap(&self, catalogs: Arc<dyn CatalogProviderList>) -> Arc<dyn CatalogProviderList> {
        Arc::new(MetadataCatalogList::new(catalogs, MetadataStyle::SQL))
    }
}

/// A catalog list that adds the metadata tables to another (see the module docs).
///
/// ```
/// use datafusion::catalog::CatalogProviderList;
/// use datafusion::prelude::SessionContext;
/// use osprey_service::{MetadataCatalogList, MetadataStyle};
///
/// let ctx = SessionContext::new();
/// let trino = MetadataCatalogList::new(ctx.state().catalog_list().clone(), MetadataStyle::TRINO);
/// assert!(trino.catalog_names().contains(&"system".to_string()));
/// let catalog = trino.catalog("datafusion").unwrap();
/// assert!(catalog.schema("information_schema").unwrap().table_exist("columns"));
/// ```
#[derive(Debug)]
pub struct MetadataCatalogList {
    inner: Arc<dyn CatalogProviderList>,
    style: MetadataStyle,
}

impl MetadataCatalogList {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn CatalogProviderList>, style: MetadataStyle) -> Self {
        Self { inner, style }
    }

    fn adds_system_catalog(&self) -> bool {
        self.style.jdbc_system_catalog && self.inner.catalog(SYSTEM_CATALOG).is_none()
    }
}

impl CatalogProviderList for MetadataCatalogList {
    fn register_catalog(
        &self,
        name: String,
        catalog: Arc<dyn CatalogProvider>,
    ) -> Option<Arc<dyn CatalogProvider>> {
        self.inner.register_catalog(name, catalog)
    }

    fn catalog_names(&self) -> Vec<String> {
        let mut names = self.inner.catalog_names();
        if self.adds_system_catalog() {
            names.push(SYSTEM_CATALOG.to_string());
        }
        names
    }

    fn catalog(&self, name: &str) -> Option<Arc<dyn CatalogProvider>> {
        if name == SYSTEM_CATALOG && self.adds_system_catalog() {
            return Some(Arc::new(SystemCatalog {
                catalogs: Arc::clone(&self.inner),
                style: self.style,
            }));
        }
        let catalog = self.inner.catalog(name)?;
        Some(Arc::new(MetadataCatalog {
            name: name.to_string(),
            inner: catalog,
            catalogs: Arc::clone(&self.inner),
            style: self.style,
        }))
    }
}

/// A catalog with the metadata tables' `information_schema` added.
#[derive(Debug)]
struct MetadataCatalog {
    name: String,
    inner: Arc<dyn CatalogProvider>,
    /// For DataFusion's own information_schema tables.
    catalogs: Arc<dyn CatalogProviderList>,
    style: MetadataStyle,
}

impl CatalogProvider for MetadataCatalog {
    fn schema_names(&self) -> Vec<String> {
        let mut names = self.inner.schema_names();
        if !names.iter().any(|name| name == INFORMATION_SCHEMA) {
            names.push(INFORMATION_SCHEMA.to_string());
        }
        names
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        if name == INFORMATION_SCHEMA {
            return Some(Arc::new(InformationSchema {
                catalog: Arc::new(MetadataCatalog {
                    name: self.name.clone(),
                    inner: Arc::clone(&self.inner),
                    catalogs: Arc::clone(&self.catalogs),
                    style: self.style,
                }),
                datafusion: InformationSchemaProvider::new(Arc::clone(&self.catalogs)),
            }));
        }
        self.inner.schema(name)
    }

    fn register_schema(
        &self,
        name: &str,
        schema: Arc<dyn SchemaProvider>,
    ) -> datafusion::error::Result<Option<Arc<dyn SchemaProvider>>> {
        self.inner.register_schema(name, schema)
    }

    fn deregister_schema(
        &self,
        name: &str,
        cascade: bool,
    ) -> datafusion::error::Result<Option<Arc<dyn SchemaProvider>>> {
        self.inner.deregister_schema(name, cascade)
    }
}

/// `information_schema` of one catalog, the metadata tables first.
#[derive(Debug)]
struct InformationSchema {
    catalog: Arc<MetadataCatalog>,
    datafusion: InformationSchemaProvider,
}

const METADATA_TABLES: [(&str, Kind); 4] = [
    ("schemata", Kind::Schemata),
    ("tables", Kind::Tables),
    ("columns", Kind::Columns),
    ("views", Kind::Views),
];

#[async_trait::async_trait]
impl SchemaProvider for InformationSchema {
    fn table_names(&self) -> Vec<String> {
        let mut names: Vec<String> = METADATA_TABLES.iter().map(|(n, _)| n.to_string()).collect();
        for name in self.datafusion.table_names() {
            if !names.contains(&name) {
                names.push(name);
            }
        }
        names
    }

    async fn table(&self, name: &str) -> datafusion::error::Result<Option<Arc<dyn TableProvider>>> {
        if let Some((_, kind)) = METADATA_TABLES.iter().find(|(n, _)| *n == name) {
            let source = Source::Catalog(Arc::clone(&self.catalog) as Arc<dyn CatalogProvider>);
            return Ok(Some(Arc::new(MetadataTable {
                kind: *kind,
                catalog_name: self.catalog.name.clone(),
                source,
                style: self.catalog.style,
            })));
        }
        self.datafusion.table(name).await
    }

    fn table_exist(&self, name: &str) -> bool {
        METADATA_TABLES.iter().any(|(n, _)| *n == name) || self.datafusion.table_exist(name)
    }
}

/// The `system` catalog: `jdbc.catalogs` and `metadata.table_comments`.
#[derive(Debug)]
struct SystemCatalog {
    catalogs: Arc<dyn CatalogProviderList>,
    style: MetadataStyle,
}

impl CatalogProvider for SystemCatalog {
    fn schema_names(&self) -> Vec<String> {
        vec!["jdbc".to_string(), "metadata".to_string()]
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        let tables: &[(&str, Kind)] = match name {
            "jdbc" => &[("catalogs", Kind::JdbcCatalogs)],
            "metadata" => &[("table_comments", Kind::TableComments)],
            _ => return None,
        };
        Some(Arc::new(SystemSchema {
            tables: tables.to_vec(),
            catalogs: Arc::clone(&self.catalogs),
            style: self.style,
        }))
    }
}

#[derive(Debug)]
struct SystemSchema {
    tables: Vec<(&'static str, Kind)>,
    catalogs: Arc<dyn CatalogProviderList>,
    style: MetadataStyle,
}

#[async_trait::async_trait]
impl SchemaProvider for SystemSchema {
    fn table_names(&self) -> Vec<String> {
        self.tables.iter().map(|(n, _)| n.to_string()).collect()
    }

    async fn table(&self, name: &str) -> datafusion::error::Result<Option<Arc<dyn TableProvider>>> {
        Ok(self
            .tables
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, kind)| {
                Arc::new(MetadataTable {
                    kind: *kind,
                    catalog_name: SYSTEM_CATALOG.to_string(),
                    source: Source::AllCatalogs(Arc::clone(&self.catalogs)),
                    style: self.style,
                }) as Arc<dyn TableProvider>
            }))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.tables.iter().any(|(n, _)| *n == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::SessionContext;

    #[tokio::test]
    async fn trino_metadata_lists_tables_and_columns_with_trino_types() {
        let ctx = SessionContext::new();
        ctx.sql("CREATE TABLE t (id BIGINT NOT NULL, price DECIMAL(12,2), name VARCHAR)")
            .await
            .unwrap();
        let state = datafusion::execution::SessionStateBuilder::new_from_existing(ctx.state())
            .with_catalog_list(Arc::new(MetadataCatalogList::new(
                ctx.state().catalog_list().clone(),
                MetadataStyle::TRINO,
            )))
            .build();
        let mut state = state;
        state.config_mut().options_mut().catalog.information_schema = false;
        let ctx = SessionContext::new_with_state(state);
        let columns = ctx
            .sql(
                "SELECT column_name, data_type, is_nullable FROM information_schema.columns \
                 WHERE table_schema = 'public' AND table_name = 't' ORDER BY ordinal_position",
            )
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let text = datafusion::arrow::util::pretty::pretty_format_batches(&columns)
            .unwrap()
            .to_string();
        assert!(
            text.contains("| id          | bigint        | NO          |"),
            "{text}"
        );
        assert!(
            text.contains("| price       | decimal(12,2) | YES         |"),
            "{text}"
        );
        assert!(
            text.contains("| name        | varchar       | YES         |"),
            "{text}"
        );
        let catalogs = ctx
            .sql("SELECT table_cat FROM system.jdbc.catalogs ORDER BY 1")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let names = datafusion::arrow::util::pretty::pretty_format_batches(&catalogs)
            .unwrap()
            .to_string();
        assert!(
            names.contains("| datafusion |") && names.contains("| system     |"),
            "{names}"
        );
    }
}
