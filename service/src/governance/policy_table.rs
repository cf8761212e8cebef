//! A table as a principal under row filters or column masks reads it: the rows the filters
//! pass, the masked values in place of the stored ones.
//!
//! It takes the place of the table in the principal's logical plan (`data_filters::apply`),
//! and its scan is the table's scan under a `FilterExec` (the filters' union) and a
//! `ProjectionExec` (the masks), under an [`osprey_engine::PolicyBoundaryExec`]. The query's
//! predicates stay above the boundary and never run on a row the principal may not see; the
//! table gets them for pruning only. The boundary passes the table's statistics on as
//! estimates only, so no `count(*)` or `min`/`max` is answered from them. The filters and
//! masks are simplified as DataFusion simplifies a query's expressions (constants folded,
//! casts moved off columns), so they prune and estimate as well as the same predicate would
//! in a query, and cost less per row.

use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::{DFSchema, DataFusionError, Result};
use datafusion::datasource::TableType;
use datafusion::execution::context::SessionState;
use datafusion::logical_expr::simplify::SimplifyContext;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::optimizer::simplify_expressions::ExprSimplifier;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::expressions::Column as PhysicalColumn;
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::projection::ProjectionExec;
use osprey_engine::PolicyBoundaryExec;
use std::collections::BTreeSet;
use std::sync::Arc;

/// The percentage of rows a row filter DataFusion cannot bound is estimated to keep.
const UNBOUNDED_FILTER_SELECTIVITY: u8 = 100;

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

impl PolicyTable {
    /// Adds to `pushed` the query's `filters` the table may use to skip files and row groups:
    /// those over unmasked columns only (a predicate on a masked column means the masked
    /// value, which the table's statistics do not describe), that the table takes as
    /// `Inexact`. They are
    /// used for pruning only, never evaluated on rows: the state the table is scanned with
    /// (returned) has Parquet's row-level filter pushdown off, so a predicate that fails on a
    /// row never runs below the boundary. Statistics pruning tells nothing to the query: it
    /// only skips data. `None` (and nothing added) when the session is not a full state.
    fn pruning_filters(
        &self,
        state: &dyn Session,
        filters: &[Expr],
        pushed: &mut Vec<Expr>,
    ) -> Result<Option<SessionState>> {
        let Some(full) = state.as_any().downcast_ref::<SessionState>() else {
            return Ok(None);
        };
        let table = self.inner.schema();
        let masked: Vec<&str> = self
            .masks
            .iter()
            .map(|(i, _)| table.field(*i).name().as_str())
            .collect();
        let candidates: Vec<&Expr> = filters
            .iter()
            .filter(|f| {
                f.column_refs()
                    .iter()
                    .all(|c| !masked.contains(&c.name.as_str()))
            })
            .collect();
        if candidates.is_empty() {
            return Ok(None);
        }
        let support = self.inner.supports_filters_pushdown(&candidates)?;
        let taken: Vec<Expr> = candidates
            .into_iter()
            .zip(support)
            // `Exact` ones the table answers itself (a listing table's partition columns,
            // evaluated on every partition's values): not for pruning only.
            .filter(|(_, s)| *s == TableProviderFilterPushDown::Inexact)
            .map(|(f, _)| f.clone())
            .collect();
        if taken.is_empty() {
            return Ok(None);
        }
        pushed.extend(taken);
        let mut pruning = full.clone();
        pruning
            .config_mut()
            .options_mut()
            .execution
            .parquet
            .pushdown_filters = false;
        Ok(Some(pruning))
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

    /// The query's predicates stay above the boundary (`Inexact`), and are also offered to the
    /// table for pruning only (see [`PolicyTable::pruning_filters`]).
    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let table = self.inner.schema();
        let table_schema = Arc::new(DFSchema::try_from(table.as_ref().clone())?);
        let simplifier = ExprSimplifier::new(
            SimplifyContext::builder()
                .with_schema(Arc::clone(&table_schema))
                .build(),
        );
        // Coerced first (as the planner would), so that the simplifier sees the casts it can
        // take off columns.
        let simplified = |expr: Expr| -> Result<Expr> {
            simplifier.simplify(simplifier.coerce(expr, &table_schema)?)
        };
        let rows = self.rows.clone().map(simplified).transpose()?;
        let masks = self
            .masks
            .iter()
            .map(|(index, mask)| Ok((*index, simplified(mask.clone())?)))
            .collect::<Result<Vec<(usize, Expr)>>>()?;
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
        if let Some(rows) = &rows {
            read(rows)?;
        }
        for (index, mask) in &masks {
            if wanted.contains(index) {
                read(mask)?;
            }
        }
        let needed: Vec<usize> = needed.into_iter().collect();
        // The filter helps the table prune what it reads, where it can take it; so do the
        // query's predicates, for pruning only.
        let mut pushed: Vec<Expr> = Vec::new();
        if let Some(rows) = &rows
            && self.inner.supports_filters_pushdown(&[rows])?
                != vec![TableProviderFilterPushDown::Unsupported]
        {
            pushed.push(rows.clone());
        }
        let pruning_state = self.pruning_filters(state, filters, &mut pushed)?;
        let scan_state: &dyn Session = match &pruning_state {
            Some(pruning) => pruning,
            None => state,
        };
        let mut plan = self
            .inner
            .scan(scan_state, Some(&needed), &pushed, None)
            .await?;
        let read_schema = DFSchema::try_from(plan.schema().as_ref().clone())?;
        if let Some(rows) = &rows {
            let predicate = state.create_physical_expr(rows.clone(), &read_schema)?;
            // A filter DataFusion cannot bound (a `DECIMAL` or text comparison, a function) is
            // estimated to keep every row, not DataFusion's default fifth: the query above is
            // planned on the table's size, as without a policy, and never broadcasts a large
            // table taken for a small one.
            plan = Arc::new(
                FilterExec::try_new(predicate, plan)?
                    .with_default_selectivity(UNBOUNDED_FILTER_SELECTIVITY)?,
            );
        }
        let mut columns = Vec::with_capacity(wanted.len());
        let mut unmasked = Vec::new();
        for (at_output, index) in wanted.iter().enumerate() {
            let name = table.field(*index).name().clone();
            let expr = match masks.iter().find(|(m, _)| m == index) {
                Some((_, mask)) => state.create_physical_expr(mask.clone(), &read_schema)?,
                None => {
                    unmasked.push(at_output);
                    let at = plan.schema().index_of(&name).map_err(|_| {
                        DataFusionError::Internal(format!("column {name} was not read"))
                    })?;
                    Arc::new(PhysicalColumn::new(&name, at))
                }
            };
            columns.push((expr, name));
        }
        let plan = Arc::new(ProjectionExec::try_new(columns, plan)?);
        Ok(Arc::new(PolicyBoundaryExec::new(plan, unmasked)))
    }
}
