//! The catalogs as a principal who is not an admin sees them: listings show only what it may
//! see, and every table it names is resolved here, so none is reached around the checks.
//!
//! - Listings (`catalog_names`, `schema_names`, `table_names`, and so `information_schema`,
//!   `SHOW`, the drivers' metadata calls) hold only what [`AccessModel::sees`] allows.
//! - A table the principal may see resolves to a [`GovernedTable`]: the table, marked with
//!   its name, so that the policy checks each use of it in a plan and then unwraps it
//!   (`governance::enforce`).
//! - One rule for names the principal may not see: whether the table exists or not, and in
//!   a schema that may not exist (of a catalog that does), naming it is `PERMISSION_DENIED`
//!   ([`super::Governance::refusal`] turns the planner's "not found" into it), so an error
//!   never tells whether something hidden exists. Within what a principal sees, a missing
//!   table is "not found" as usual.

use super::model::{AccessModel, Subject};
use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{
    CatalogProvider, CatalogProviderList, MemorySchemaProvider, SchemaProvider, Session,
    TableProvider,
};
use datafusion::common::{Constraints, DFSchemaRef, Statistics};
use datafusion::datasource::TableType;
use datafusion::error::Result;
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::{Expr, LogicalPlan, MergeIntoClause, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use osprey_catalog::SecuredObject;
use std::borrow::Cow;
use std::sync::Arc;

/// What every level of the filtered catalogs shares.
#[derive(Debug, Clone)]
struct Viewer {
    model: Arc<AccessModel>,
    subject: Arc<Subject>,
}

/// The server's catalogs as `subject` sees them.
pub(super) fn visible_catalogs(
    inner: Arc<dyn CatalogProviderList>,
    model: Arc<AccessModel>,
    subject: Subject,
) -> Arc<dyn CatalogProviderList> {
    Arc::new(VisibleCatalogs {
        inner,
        viewer: Viewer {
            model,
            subject: Arc::new(subject),
        },
    })
}

#[derive(Debug)]
struct VisibleCatalogs {
    inner: Arc<dyn CatalogProviderList>,
    viewer: Viewer,
}

impl CatalogProviderList for VisibleCatalogs {
    fn register_catalog(
        &self,
        name: String,
        catalog: Arc<dyn CatalogProvider>,
    ) -> Option<Arc<dyn CatalogProvider>> {
        self.inner.register_catalog(name, catalog)
    }

    fn catalog_names(&self) -> Vec<String> {
        let viewer = &self.viewer;
        self.inner
            .catalog_names()
            .into_iter()
            .filter(|name| {
                viewer
                    .model
                    .sees(&viewer.subject, &SecuredObject::Catalog(name.clone()))
            })
            .collect()
    }

    fn catalog(&self, name: &str) -> Option<Arc<dyn CatalogProvider>> {
        // Catalogs are few and named by admins: a missing one is missing to everyone (names
        // decide statement routing, `USE` and Spark's branch names). What is in them is not
        // shown.
        let inner = self.inner.catalog(name)?;
        Some(Arc::new(VisibleCatalog {
            inner,
            name: name.to_string(),
            viewer: self.viewer.clone(),
        }))
    }
}

#[derive(Debug)]
struct VisibleCatalog {
    inner: Arc<dyn CatalogProvider>,
    name: String,
    viewer: Viewer,
}

impl CatalogProvider for VisibleCatalog {
    fn schema_names(&self) -> Vec<String> {
        let viewer = &self.viewer;
        self.inner
            .schema_names()
            .into_iter()
            .filter(|schema| {
                viewer.model.sees(
                    &viewer.subject,
                    &SecuredObject::Schema(self.name.clone(), schema.clone()),
                )
            })
            .collect()
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        let object = SecuredObject::Schema(self.name.clone(), name.to_string());
        let seen = self.viewer.model.sees(&self.viewer.subject, &object);
        let inner = self.inner.schema(name);
        match (inner, seen) {
            (None, true) => None,
            (inner, _) => Some(Arc::new(VisibleSchema {
                inner: inner.unwrap_or_else(|| Arc::new(MemorySchemaProvider::new())),
                catalog: self.name.clone(),
                schema: name.to_string(),
                viewer: self.viewer.clone(),
            })),
        }
    }

    fn register_schema(
        &self,
        name: &str,
        schema: Arc<dyn SchemaProvider>,
    ) -> Result<Option<Arc<dyn SchemaProvider>>> {
        self.inner.register_schema(name, schema)
    }

    fn deregister_schema(
        &self,
        name: &str,
        cascade: bool,
    ) -> Result<Option<Arc<dyn SchemaProvider>>> {
        self.inner.deregister_schema(name, cascade)
    }
}

#[derive(Debug)]
struct VisibleSchema {
    inner: Arc<dyn SchemaProvider>,
    catalog: String,
    schema: String,
    viewer: Viewer,
}

impl VisibleSchema {
    fn object(&self, table: &str) -> SecuredObject {
        SecuredObject::Table(self.catalog.clone(), self.schema.clone(), table.to_string())
    }

    fn sees(&self, table: &str) -> bool {
        self.viewer
            .model
            .sees(&self.viewer.subject, &self.object(table))
    }
}

#[async_trait]
impl SchemaProvider for VisibleSchema {
    fn table_names(&self) -> Vec<String> {
        self.inner
            .table_names()
            .into_iter()
            .filter(|table| self.sees(table))
            .collect()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        // A metadata table (`t$snapshots`) is its table's.
        let base = name.split('$').next().unwrap_or(name);
        // Not found here; the statement's error says it is denied (`Governance::refusal`),
        // whether it exists or not. Planning asks for every name a statement holds, a table
        // function's too, so an error here would refuse `FROM range(10)`.
        if !self.sees(base) {
            return Ok(None);
        }
        // `t$version=...` is the table's data at a version; `t$files` describes it.
        let metadata = name.split_once('$').is_some_and(|(_, suffix)| {
            !["version=", "ref=", "timestamp="]
                .iter()
                .any(|version| suffix.starts_with(version))
        });
        let object = self.object(base);
        let owned = self.viewer.model.owns(&self.viewer.subject, &object);
        Ok(self.inner.table(name).await?.map(|table| {
            // A view's text names what it reads: its owner's to see, not its readers'.
            let definition_shown = owned || table.table_type() != TableType::View;
            Arc::new(GovernedTable {
                object,
                metadata,
                definition_shown,
                inner: table,
            }) as Arc<dyn TableProvider>
        }))
    }

    fn register_table(
        &self,
        name: String,
        table: Arc<dyn TableProvider>,
    ) -> Result<Option<Arc<dyn TableProvider>>> {
        self.inner.register_table(name, table)
    }

    fn deregister_table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        self.inner.deregister_table(name)
    }

    fn table_exist(&self, name: &str) -> bool {
        self.sees(name.split('$').next().unwrap_or(name)) && self.inner.table_exist(name)
    }
}

/// A catalog table as a principal's plan names it: the table, and which it is. The policy
/// checks the plan's uses of it and replaces it with the table itself before anything runs;
/// every call is passed on for the uses that come later (a view's query, planned when the
/// view is scanned).
#[derive(Debug)]
pub(super) struct GovernedTable {
    /// Which table.
    pub object: SecuredObject,
    /// Whether this is one of its metadata tables (`t$files`), which row filters and masks
    /// cannot narrow.
    pub metadata: bool,
    /// Whether its definition (`SHOW CREATE`, `information_schema.views`) is shown.
    pub definition_shown: bool,
    /// The table.
    pub inner: Arc<dyn TableProvider>,
}

#[async_trait]
impl TableProvider for GovernedTable {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }

    fn constraints(&self) -> Option<&Constraints> {
        self.inner.constraints()
    }

    fn table_type(&self) -> TableType {
        self.inner.table_type()
    }

    fn get_table_definition(&self) -> Option<&str> {
        match self.definition_shown {
            true => self.inner.get_table_definition(),
            false => None,
        }
    }

    fn get_logical_plan(&'_ self) -> Option<Cow<'_, LogicalPlan>> {
        self.inner.get_logical_plan()
    }

    fn get_column_default(&self, column: &str) -> Option<&Expr> {
        self.inner.get_column_default(column)
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.inner.scan(state, projection, filters, limit).await
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        self.inner.supports_filters_pushdown(filters)
    }

    fn statistics(&self) -> Option<Statistics> {
        self.inner.statistics()
    }

    async fn insert_into(
        &self,
        state: &dyn Session,
        input: Arc<dyn ExecutionPlan>,
        insert_op: InsertOp,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.inner.insert_into(state, input, insert_op).await
    }

    async fn delete_from(
        &self,
        state: &dyn Session,
        filters: Vec<Expr>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.inner.delete_from(state, filters).await
    }

    async fn update(
        &self,
        state: &dyn Session,
        assignments: Vec<(String, Expr)>,
        filters: Vec<Expr>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.inner.update(state, assignments, filters).await
    }

    async fn truncate(&self, state: &dyn Session) -> Result<Arc<dyn ExecutionPlan>> {
        self.inner.truncate(state).await
    }

    async fn merge_into(
        &self,
        state: &dyn Session,
        source: Arc<dyn ExecutionPlan>,
        merge_schema: DFSchemaRef,
        on: Expr,
        clauses: Vec<MergeIntoClause>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.inner
            .merge_into(state, source, merge_schema, on, clauses)
            .await
    }
}
