//! One metadata table (`information_schema.tables`, `.columns`, ...), listed afresh from the
//! catalogs on every scan.

use super::{MetadataCatalogList, MetadataStyle};
use crate::catalogs::AttachedCatalogs;
use crate::sql_types::sql_type_name;
use datafusion::arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{CatalogProvider, CatalogProviderList, Session, TableProvider};
use datafusion::common::{DataFusionError, ScalarValue};
use datafusion::datasource::{MemTable, TableType};
use datafusion::logical_expr::{BinaryExpr, Expr, Operator, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use std::sync::Arc;

/// Which metadata table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
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

/// Where a metadata table looks.
#[derive(Debug, Clone)]
pub(super) enum Source {
    /// One catalog (its information_schema).
    Catalog(Arc<dyn CatalogProvider>),
    /// Every catalog (the `system` tables).
    AllCatalogs(Arc<dyn CatalogProviderList>),
}

/// One metadata table, listed afresh on every scan.
#[derive(Debug)]
pub(super) struct MetadataTable {
    pub(super) kind: Kind,
    /// The catalog the table lives in (for `information_schema`, the one it describes).
    pub(super) catalog_name: String,
    pub(super) source: Source,
    pub(super) style: MetadataStyle,
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
                let listed = MetadataCatalogList::new(Arc::clone(list), self.style);
                listed
                    .catalog_names()
                    .into_iter()
                    .filter_map(|name| listed.catalog(&name).map(|catalog| (name, catalog)))
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
                                            Some(sql_type_name(
                                                field.data_type(),
                                                self.style.type_names,
                                            )),
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
        let keys = self.keys(filters);
        // Attached catalogs answer over the network: their names are listed again now. A
        // listing of one catalog fails when it does not answer; one of all of them goes on.
        if let Some(attached) = state.config().get_extension::<AttachedCatalogs>()
            && self.kind != Kind::JdbcCatalogs
        {
            let wanted = match &self.source {
                Source::Catalog(_) => Some(self.catalog_name.as_str()),
                Source::AllCatalogs(_) => keys[0].as_deref(),
            };
            attached
                .refresh(wanted)
                .await
                .map_err(|err| DataFusionError::External(Box::new(err)))?;
        }
        let batch = self
            .rows(&keys)
            .await
            .map_err(|err| DataFusionError::Context("listing metadata".into(), Box::new(err)))?;
        let table = MemTable::try_new(self.kind.schema(), vec![vec![batch]])?;
        table.scan(state, projection, &[], limit).await
    }
}
