//! A table as a principal under row filters or column masks reads it: the rows the filters
//! pass, the masked values in place of the stored ones.
//!
//! It takes the place of the table in the principal's logical plan (`data_filters::apply`),
//! and its scan is the table's scan under a `FilterExec` (the filters' union) and a
//! `ProjectionExec` (the masks), under an [`osprey_engine::PolicyBoundaryExec`]. It accepts
//! none of the query's predicates: they stay above the boundary and never run on a row the
//! principal may not see. The table's statistics are not passed on either, so no `count(*)`
//! or `min`/`max` is answered from them.

use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::{DFSchema, DataFusionError, Result};
use datafusion::datasource::TableType;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::expressions::Column as PhysicalColumn;
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::projection::ProjectionExec;
use osprey_engine::PolicyBoundaryExec;
use std::collections::BTreeSet;
use std::sync::Arc;

/// A table with its row filter and masks applied (see the module docs).
#[derive(Debug)]
pub(super) struct PolicyTable {
    inner: Arc<dyn TableProvider>,
    /// The table's schema, masked columns nullable (a mask may give NULL) and without the
    /// stored column's metadata.
    schema: SchemaRef,
    /// The rows seen: the union of the filters that apply; `None`: all.
    rows: Option<Expr>,
    /// Each masked column (by index), and its mask over the table's columns.
    masks: Vec<(usize, Expr)>,
}

impl PolicyTable {
    /// `inner` under `rows` and `masks` (expressions over its columns, by name).
    pub fn new(
        inner: Arc<dyn TableProvider>,
        rows: Option<Expr>,
        masks: Vec<(usize, Expr)>,
    ) -> Self {
        let table = inner.schema();
        let fields: Vec<Field> = table
            .fields()
            .iter()
            .enumerate()
            .map(|(i, field)| match masks.iter().any(|(m, _)| *m == i) {
                // Computed, a masked value keeps none of the stored column's metadata.
                true => field
                    .as_ref()
                    .clone()
                    .with_nullable(true)
                    .with_metadata(Default::default()),
                false => field.as_ref().clone(),
            })
            .collect();
        let schema = Arc::new(Schema::new_with_metadata(fields, table.metadata().clone()));
        Self {
            inner,
            schema,
            rows,
            masks,
        }
    }
}

#[async_trait::async_trait]
impl TableProvider for PolicyTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        self.inner.table_type()
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(vec![
            TableProviderFilterPushDown::Unsupported;
            filters.len()
        ])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let table = self.inner.schema();
        let wanted: Vec<usize> = match projection {
            Some(projection) => projection.clone(),
            None => (0..table.fields().len()).collect(),
        };
        // What the table must give: the wanted columns, and those the filter and the wanted
        // columns' masks read.
        let mut needed: BTreeSet<usize> = wanted.iter().copied().collect();
        let mut read = |expr: &Expr| -> Result<()> {
            for column in expr.column_refs() {
                needed.insert(table.index_of(&column.name)?);
            }
            Ok(())
        };
        if let Some(rows) = &self.rows {
            read(rows)?;
        }
        for (index, mask) in &self.masks {
            if wanted.contains(index) {
                read(mask)?;
            }
        }
        let needed: Vec<usize> = needed.into_iter().collect();
        // The filter helps the table prune what it reads, where it can take it.
        let pushed: Vec<Expr> = match &self.rows {
            Some(rows)
                if self.inner.supports_filters_pushdown(&[rows])?
                    != vec![TableProviderFilterPushDown::Unsupported] =>
            {
                vec![rows.clone()]
            }
            _ => Vec::new(),
        };
        let mut plan = self.inner.scan(state, Some(&needed), &pushed, None).await?;
        let read_schema = DFSchema::try_from(plan.schema().as_ref().clone())?;
        if let Some(rows) = &self.rows {
            let predicate = state.create_physical_expr(rows.clone(), &read_schema)?;
            plan = Arc::new(FilterExec::try_new(predicate, plan)?);
        }
        let mut columns = Vec::with_capacity(wanted.len());
        for index in &wanted {
            let name = table.field(*index).name().clone();
            let expr = match self.masks.iter().find(|(m, _)| m == index) {
                Some((_, mask)) => state.create_physical_expr(mask.clone(), &read_schema)?,
                None => {
                    let at = plan.schema().index_of(&name).map_err(|_| {
                        DataFusionError::Internal(format!("column {name} was not read"))
                    })?;
                    Arc::new(PhysicalColumn::new(&name, at))
                }
            };
            columns.push((expr, name));
        }
        let plan = Arc::new(ProjectionExec::try_new(columns, plan)?);
        Ok(Arc::new(PolicyBoundaryExec::new(plan)))
    }
}
