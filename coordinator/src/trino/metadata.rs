//! The metadata tables Trino clients query, with Trino's columns and type names.
//!
//! Sessions of the Trino endpoint see the catalogs through [`TrinoCatalogList`]:
//!
//! - each catalog gains an `information_schema` with `schemata`, `tables`, `columns` and
//!   `views` shaped as Trino's (`data_type` holds Trino type names such as `decimal(12,2)`,
//!   `columns.comment` exists, `is_nullable` is `YES`/`NO`); DataFusion's other
//!   information_schema tables (`df_settings`, `routines`, `parameters`) remain;
//! - a `system` catalog offers `system.jdbc.catalogs` and `system.metadata.table_comments`,
//!   which the Trino SQLAlchemy dialect reads.
//!
//! Equality filters on the catalog, schema and table columns (`WHERE table_schema = 'x'`) are
//! used to look at only the tables asked for, so SQLAlchemy's many `has_table` checks stay
//! cheap however many tables there are.

use super::types::trino_type_name;
use datafusion::arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::information_schema::InformationSchemaProvider;
use datafusion::catalog::{
    CatalogProvider, CatalogProviderList, SchemaProvider, Session, TableProvider,
};
use datafusion::common::{DataFusionError, ScalarValue};
use datafusion::datasource::{MemTable, TableType};
use datafusion::logical_expr::{BinaryExpr, Expr, Operator, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use osprey_service::MetadataTables;
use std::sync::Arc;

/// The name of the information schema in every catalog.
const INFORMATION_SCHEMA: &str = "information_schema";
/// The name of the catalog with `jdbc` and `metadata` schemas.
const SYSTEM_CATALOG: &str = "system";

/// A catalog list that adds Trino's metadata tables to another (see the module docs).
///
/// ```
/// use datafusion::catalog::CatalogProviderList;
/// use datafusion::prelude::SessionContext;
/// use osprey_coordinator::TrinoCatalogList;
///
/// let ctx = SessionContext::new();
/// let trino = TrinoCatalogList::new(ctx.state().catalog_list().clone());
/// assert!(trino.catalog_names().contains(&"system".to_string()));
/// let catalog = trino.catalog("datafusion").unwrap();
/// assert!(catalog.schema("information_schema").unwrap().table_exist("columns"));
/// ```
#[derive(Debug)]
pub struct TrinoCatalogList {
    inner: Arc<dyn CatalogProviderList>,
}

impl TrinoCatalogList {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn CatalogProviderList>) -> Self {
        Self { inner }
    }

    fn has_own_system_catalog(&self) -> bool {
        self.inner.catalog(SYSTEM_CATALOG).is_some()
    }
}

/// Trino's metadata tables, as a session's [`MetadataTables`] flavor.
#[derive(Debug)]
pub struct TrinoMetadata;

impl MetadataTables for TrinoMetadata {
    fn name(&self) -> &'static str {
        "trino"
    }

    fn wrap(&self, catalogs: Arc<dyn CatalogProviderList>) -> Arc<dyn CatalogProviderList> {
        Arc::new(TrinoCatalogList::new(catalogs))
    }
}

impl CatalogProviderList for TrinoCatalogList {
    fn register_catalog(
        &self,
        name: String,
        catalog: Arc<dyn CatalogProvider>,
    ) -> Option<Arc<dyn CatalogProvider>> {
        self.inner.register_catalog(name, catalog)
    }

    fn catalog_names(&self) -> Vec<String> {
        let mut names = self.inner.catalog_names();
        if !self.has_own_system_catalog() {
            names.push(SYSTEM_CATALOG.to_string());
        }
        names
    }

    fn catalog(&self, name: &str) -> Option<Arc<dyn CatalogProvider>> {
        if name == SYSTEM_CATALOG && !self.has_own_system_catalog() {
            return Some(Arc::new(SystemCatalog {
                catalogs: Arc::clone(&self.inner),
            }));
        }
        let catalog = self.inner.catalog(name)?;
        Some(Arc::new(TrinoCatalog {
            name: name.to_string(),
            inner: catalog,
            catalogs: Arc::clone(&self.inner),
        }))
    }
}

/// A catalog with Trino's `information_schema` added.
#[derive(Debug)]
struct TrinoCatalog {
    name: String,
    inner: Arc<dyn CatalogProvider>,
    /// For DataFusion's own information_schema tables.
    catalogs: Arc<dyn CatalogProviderList>,
}

impl CatalogProvider for TrinoCatalog {
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
                catalog: Arc::new(TrinoCatalog {
                    name: self.name.clone(),
                    inner: Arc::clone(&self.inner),
                    catalogs: Arc::clone(&self.catalogs),
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

/// Which metadata table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Schemata,
    Tables,
    Columns,
    Views,
    JdbcCatalogs,
    TableComments,
}

impl Kind {
    fn schema(self) -> SchemaRef {
        let text = |name: &str| Field::new(name, DataType::Utf8, true);
        let fields = match self {
            Kind::Schemata => vec![text("catalog_name"), text("schema_name")],
            Kind::Tables => vec![
                text("table_catalog"),
                text("table_schema"),
                text("table_name"),
                text("table_type"),
            ],
            Kind::Columns => vec![
                text("table_catalog"),
                text("table_schema"),
                text("table_name"),
                text("column_name"),
                Field::new("ordinal_position", DataType::Int64, true),
                text("column_default"),
                text("is_nullable"),
                text("data_type"),
                text("comment"),
                text("extra_info"),
            ],
            Kind::Views => vec![
                text("table_catalog"),
                text("table_schema"),
                text("table_name"),
                text("view_owner"),
                text("view_definition"),
            ],
            Kind::JdbcCatalogs => vec![text("table_cat")],
            Kind::TableComments => vec![
                text("catalog_name"),
                text("schema_name"),
                text("table_name"),
                text("comment"),
            ],
        };
        Arc::new(Schema::new(fields))
    }

    /// The columns naming the catalog, schema and table, whose equality filters narrow
    /// the listing.
    fn key_columns(self) -> [&'static str; 3] {
        match self {
            Kind::Schemata => ["catalog_name", "schema_name", ""],
            Kind::TableComments => ["catalog_name", "schema_name", "table_name"],
            Kind::JdbcCatalogs => ["table_cat", "", ""],
            _ => ["table_catalog", "table_schema", "table_name"],
        }
    }
}

/// `information_schema` of one catalog, Trino's tables first.
#[derive(Debug)]
struct InformationSchema {
    catalog: Arc<TrinoCatalog>,
    datafusion: InformationSchemaProvider,
}

const TRINO_TABLES: [(&str, Kind); 4] = [
    ("schemata", Kind::Schemata),
    ("tables", Kind::Tables),
    ("columns", Kind::Columns),
    ("views", Kind::Views),
];

#[async_trait::async_trait]
impl SchemaProvider for InformationSchema {
    fn table_names(&self) -> Vec<String> {
        let mut names: Vec<String> = TRINO_TABLES.iter().map(|(n, _)| n.to_string()).collect();
        for name in self.datafusion.table_names() {
            if !names.contains(&name) {
                names.push(name);
            }
        }
        names
    }

    async fn table(&self, name: &str) -> datafusion::error::Result<Option<Arc<dyn TableProvider>>> {
        if let Some((_, kind)) = TRINO_TABLES.iter().find(|(n, _)| *n == name) {
            let source = Source::Catalog(Arc::clone(&self.catalog) as Arc<dyn CatalogProvider>);
            return Ok(Some(Arc::new(MetadataTable {
                kind: *kind,
                catalog_name: self.catalog.name.clone(),
                source,
            })));
        }
        self.datafusion.table(name).await
    }

    fn table_exist(&self, name: &str) -> bool {
        TRINO_TABLES.iter().any(|(n, _)| *n == name) || self.datafusion.table_exist(name)
    }
}

/// The `system` catalog: `jdbc.catalogs` and `metadata.table_comments`.
#[derive(Debug)]
struct SystemCatalog {
    catalogs: Arc<dyn CatalogProviderList>,
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
        }))
    }
}

#[derive(Debug)]
struct SystemSchema {
    tables: Vec<(&'static str, Kind)>,
    catalogs: Arc<dyn CatalogProviderList>,
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
                }) as Arc<dyn TableProvider>
            }))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.tables.iter().any(|(n, _)| *n == name)
    }
}

/// Where a metadata table looks.
#[derive(Debug, Clone)]
enum Source {
    /// One catalog (its information_schema).
    Catalog(Arc<dyn CatalogProvider>),
    /// Every catalog (the `system` tables).
    AllCatalogs(Arc<dyn CatalogProviderList>),
}

/// One metadata table, listed afresh on every scan.
#[derive(Debug)]
struct MetadataTable {
    kind: Kind,
    /// The catalog the table lives in (for `information_schema`, the one it describes).
    catalog_name: String,
    source: Source,
}

/// Equality filters on the key columns: `[catalog, schema, table]`.
type Keys = [Option<String>; 3];

impl MetadataTable {
    fn keys(&self, filters: &[Expr]) -> Keys {
        let mut keys: Keys = [None, None, None];
        let columns = self.kind.key_columns();
        for filter in filters {
            if let Some((column, value)) = equality(filter)
                && let Some(index) = columns.iter().position(|c| !c.is_empty() && *c == column)
            {
                keys[index] = Some(value);
            }
        }
        keys
    }

    fn catalogs(&self, wanted: &Option<String>) -> Vec<(String, Arc<dyn CatalogProvider>)> {
        let all: Vec<(String, Arc<dyn CatalogProvider>)> = match &self.source {
            Source::Catalog(catalog) => vec![(self.catalog_name.clone(), Arc::clone(catalog))],
            Source::AllCatalogs(list) => {
                let trino = TrinoCatalogList::new(Arc::clone(list));
                trino
                    .catalog_names()
                    .into_iter()
                    .filter_map(|name| trino.catalog(&name).map(|catalog| (name, catalog)))
                    .collect()
            }
        };
        all.into_iter()
            .filter(|(name, _)| wanted.as_ref().is_none_or(|w| w == name))
            .collect()
    }

    async fn rows(&self, keys: &Keys) -> datafusion::error::Result<RecordBatch> {
        let mut columns: Vec<Vec<Option<String>>> =
            vec![Vec::new(); self.kind.schema().fields().len()];
        let mut positions: Vec<i64> = Vec::new();
        let mut push = |values: Vec<Option<String>>| {
            for (column, value) in columns.iter_mut().zip(values) {
                column.push(value);
            }
        };
        for (catalog_name, catalog) in self.catalogs(&keys[0]) {
            if self.kind == Kind::JdbcCatalogs {
                push(vec![Some(catalog_name)]);
                continue;
            }
            let mut schema_names = catalog.schema_names();
            schema_names.sort();
            for schema_name in schema_names {
                if keys[1]
                    .as_ref()
                    .is_some_and(|wanted| *wanted != schema_name)
                {
                    continue;
                }
                if self.kind == Kind::Schemata {
                    push(vec![Some(catalog_name.clone()), Some(schema_name)]);
                    continue;
                }
                let Some(schema) = catalog.schema(&schema_name) else {
                    continue;
                };
                let mut table_names = match &keys[2] {
                    Some(name) if schema.table_exist(name) => vec![name.clone()],
                    Some(_) => vec![],
                    None => schema.table_names(),
                };
                table_names.sort();
                for table_name in table_names {
                    let Some(table) = schema.table(&table_name).await? else {
                        continue;
                    };
                    let names = || {
                        vec![
                            Some(catalog_name.clone()),
                            Some(schema_name.clone()),
                            Some(table_name.clone()),
                        ]
                    };
                    match self.kind {
                        Kind::Tables => {
                            let kind = match table.table_type() {
                                TableType::Base => "BASE TABLE",
                                TableType::View => "VIEW",
                                TableType::Temporary => "LOCAL TEMPORARY",
                            };
                            push([names(), vec![Some(kind.to_string())]].concat());
                        }
                        Kind::Views => {
                            if table.table_type() == TableType::View {
                                let definition = table.get_table_definition().map(str::to_string);
                                push([names(), vec![None, definition]].concat());
                            }
                        }
                        Kind::TableComments => push([names(), vec![None]].concat()),
                        Kind::Columns => {
                            for (index, field) in table.schema().fields().iter().enumerate() {
                                positions.push(index as i64 + 1);
                                push(
                                    [
                                        names(),
                                        vec![
                                            Some(field.name().clone()),
                                            None, // ordinal_position, filled from `positions`
                                            None,
                                            Some(
                                                if field.is_nullable() { "YES" } else { "NO" }
                                                    .to_string(),
                                            ),
                                            Some(trino_type_name(field.data_type())),
                                            None,
                                            None,
                                        ],
                                    ]
                                    .concat(),
                                );
                            }
                        }
                        Kind::Schemata | Kind::JdbcCatalogs => {}
                    }
                }
            }
        }
        let schema = self.kind.schema();
        let arrays: Vec<ArrayRef> = schema
            .fields()
            .iter()
            .zip(columns)
            .map(|(field, values)| -> ArrayRef {
                if field.data_type() == &DataType::Int64 {
                    Arc::new(Int64Array::from(positions.clone()))
                } else {
                    Arc::new(StringArray::from(values))
                }
            })
            .collect();
        Ok(RecordBatch::try_new(schema, arrays)?)
    }
}

/// `column = 'literal'` (either way round) as the column's name and the text.
fn equality(filter: &Expr) -> Option<(String, String)> {
    let Expr::BinaryExpr(BinaryExpr { left, op, right }) = filter else {
        return None;
    };
    if *op != Operator::Eq {
        return None;
    }
    let text = |expr: &Expr| match expr {
        Expr::Literal(
            ScalarValue::Utf8(Some(text))
            | ScalarValue::Utf8View(Some(text))
            | ScalarValue::LargeUtf8(Some(text)),
            _,
        ) => Some(text.clone()),
        _ => None,
    };
    match (left.as_ref(), right.as_ref()) {
        (Expr::Column(column), value) | (value, Expr::Column(column)) => {
            Some((column.name.clone(), text(value)?))
        }
        _ => None,
    }
}

#[async_trait::async_trait]
impl TableProvider for MetadataTable {
    fn schema(&self) -> SchemaRef {
        self.kind.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> datafusion::error::Result<Vec<TableProviderFilterPushDown>> {
        // Used to narrow the listing; the filter itself is still applied after the scan.
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        let batch = self
            .rows(&self.keys(filters))
            .await
            .map_err(|err| DataFusionError::Context("listing metadata".into(), Box::new(err)))?;
        let table = MemTable::try_new(self.kind.schema(), vec![vec![batch]])?;
        table.scan(state, projection, &[], limit).await
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
            .with_catalog_list(Arc::new(TrinoCatalogList::new(
                ctx.state().catalog_list().clone(),
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
