//! The boundary above the rows and values a principal may see of a table.
//!
//! Governance (in `osprey-service`) puts a table's row filters and column masks directly over
//! its scan, and [`PolicyBoundaryExec`] above them. DataFusion's physical optimizer moves a
//! query's own predicates down into the filters and scans below them (a `FilterExec` absorbs
//! the predicates of its parents), where they would run on rows the principal may not see, and
//! their errors (a failed cast names its value) would tell what those rows hold. This node
//! passes its input on unchanged and takes almost nothing from above: no predicate of the
//! query, projection or limit is pushed through it.
//!
//! The one exception is the filters DataFusion derives while a query runs (the keys a hash
//! join's build side holds, a TopK's threshold; `DynamicFilterPhysicalExpr`), over columns the
//! table gives unmasked. They only compare values, so they cannot fail; they drop only rows
//! the operator above would drop; and their values come from what the principal sees. Let
//! through, the table skips files, row groups and rows no join would keep, as it does
//! without a policy.

use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DataFusionError, Result, Statistics};
use datafusion::config::ConfigOptions;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::expressions::DynamicFilterPhysicalExpr;
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::filter_pushdown::{
    ChildFilterDescription, FilterDescription, FilterPushdownPhase,
};
use datafusion::physical_plan::{
    ChildStats, DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties, StatisticsArgs,
};
use std::fmt;
use std::sync::Arc;

/// Passes its input on; nothing of the query above it is pushed below it (see the module
/// docs).
#[derive(Debug)]
pub struct PolicyBoundaryExec {
    input: Arc<dyn ExecutionPlan>,
    /// The input's partitioning and ordering, without what the optimizer derived from the
    /// filters below (constants, equivalences): see [`boundary_properties`].
    properties: Arc<PlanProperties>,
    /// The output columns that are the table's own values (not masked), over which runtime
    /// filters may pass.
    unmasked: Vec<usize>,
}

impl PolicyBoundaryExec {
    /// The boundary over `input`, whose columns at `unmasked` are the table's own values.
    pub fn new(input: Arc<dyn ExecutionPlan>, unmasked: Vec<usize>) -> Self {
        let properties = boundary_properties(&input);
        Self {
            input,
            properties,
            unmasked,
        }
    }

    /// The output columns that are the table's own values.
    pub fn unmasked(&self) -> &[usize] {
        &self.unmasked
    }
}

/// The input's partitioning, ordering and execution properties, but none of the constants and
/// equivalences its filters imply (`region = 'eu'` makes `region` constant below). The query
/// above is planned as if it knew nothing of the policy's filters; and DataFusion's sort
/// enforcement, which took a row filter's constant as the order a query needed and then lost
/// it through a join's projection, leaves its sort in place.
fn boundary_properties(input: &Arc<dyn ExecutionPlan>) -> Arc<PlanProperties> {
    let inner = input.properties();
    let ordering = inner.output_ordering().cloned();
    let equivalences = EquivalenceProperties::new_with_orderings(input.schema(), ordering);
    let mut properties = PlanProperties::new(
        equivalences,
        inner.output_partitioning().clone(),
        inner.emission_type,
        inner.boundedness,
    );
    properties.evaluation_type = inner.evaluation_type;
    properties.scheduling_type = inner.scheduling_type;
    Arc::new(properties)
}

impl DisplayAs for PolicyBoundaryExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "PolicyBoundaryExec")
    }
}

impl ExecutionPlan for PolicyBoundaryExec {
    fn name(&self) -> &str {
        "PolicyBoundaryExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    /// `false`, so that no sort of the query is pushed below the boundary either: a sort the
    /// query needs runs above it, on the rows the principal sees.
    fn maintains_input_order(&self) -> Vec<bool> {
        vec![false]
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if children.len() != 1 {
            return Err(DataFusionError::Internal(
                "PolicyBoundaryExec takes exactly one input".to_string(),
            ));
        }
        Ok(Arc::new(Self::new(
            children.remove(0),
            self.unmasked.clone(),
        )))
    }

    /// The input's statistics are needed (DataFusion computes only the children a node asks
    /// for, and gives the others as unknown: without this, joins above a governed table were
    /// planned blind, as if its size were unknown).
    fn child_stats_requests(&self, partition: Option<usize>) -> Vec<ChildStats> {
        vec![ChildStats::At(partition)]
    }

    /// The input's statistics as estimates only (inexact), and none for masked columns: joins
    /// are planned on sizes and bounds as without a policy (which side to build, whether to
    /// broadcast), while no exact figure answers a query (`count(*)`, `min`, `max` from
    /// statistics) and nothing describes the stored values of a masked column. Users cannot
    /// show statistics in `EXPLAIN` (`datafusion.explain.show_statistics` is an admin's).
    fn statistics_from_inputs(
        &self,
        input_stats: &[Arc<Statistics>],
        _args: &StatisticsArgs,
    ) -> Result<Arc<Statistics>> {
        let schema = self.schema();
        let Some(input) = input_stats.first() else {
            return Ok(Arc::new(Statistics::new_unknown(&schema)));
        };
        let unknown = Statistics::unknown_column(&schema);
        let column_statistics = unknown
            .into_iter()
            .enumerate()
            .map(|(i, unknown)| match input.column_statistics.get(i) {
                Some(known) if self.unmasked.contains(&i) => known.clone().to_inexact(),
                _ => unknown,
            })
            .collect();
        Ok(Arc::new(Statistics {
            num_rows: input.num_rows.to_inexact(),
            total_byte_size: input.total_byte_size.to_inexact(),
            column_statistics,
        }))
    }

    /// Runtime filters (only, and only when every filter offered is one) over unmasked
    /// columns go down; everything else stays above.
    fn gather_filters_for_pushdown(
        &self,
        phase: FilterPushdownPhase,
        parent_filters: Vec<Arc<dyn PhysicalExpr>>,
        _config: &ConfigOptions,
    ) -> Result<FilterDescription> {
        let all_runtime = parent_filters
            .iter()
            .all(|f| f.downcast_ref::<DynamicFilterPhysicalExpr>().is_some());
        if phase != FilterPushdownPhase::Post || !all_runtime || self.unmasked.is_empty() {
            return Ok(FilterDescription::all_unsupported(
                &parent_filters,
                &self.children(),
            ));
        }
        let child = ChildFilterDescription::from_child_with_allowed_indices(
            &parent_filters,
            self.unmasked.iter().copied().collect(),
            &self.input,
        )?;
        Ok(FilterDescription::new().with_child(child))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        self.input.execute(partition, context)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::common::ScalarValue;
    use datafusion::common::stats::{ColumnStatistics, Precision};
    use datafusion::physical_plan::StatisticsContext;
    use datafusion::physical_plan::test::exec::StatisticsExec;

    /// Joins above a governed table are planned on its size: the boundary reports its input's
    /// row count and unmasked columns' bounds as estimates, never as exact figures, and says
    /// nothing of a masked column.
    #[test]
    fn estimates_pass_exact_figures_and_masked_columns_do_not() -> Result<()> {
        let schema = Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("ssn", DataType::Utf8, false),
        ]);
        let bounded = |max: ScalarValue| ColumnStatistics {
            max_value: Precision::Exact(max),
            ..ColumnStatistics::new_unknown()
        };
        let exact = Statistics {
            num_rows: Precision::Exact(3),
            total_byte_size: Precision::Exact(96),
            column_statistics: vec![
                bounded(ScalarValue::Int64(Some(3))),
                bounded(ScalarValue::Utf8(Some("333-33-3333".to_string()))),
            ],
        };
        let table = Arc::new(StatisticsExec::new(exact, schema));
        let boundary = PolicyBoundaryExec::new(table, vec![0]);
        let seen = StatisticsContext::new().compute(&boundary, &StatisticsArgs::new())?;
        assert_eq!(seen.num_rows, Precision::Inexact(3));
        assert_eq!(seen.total_byte_size, Precision::Inexact(96));
        assert_eq!(
            seen.column_statistics[0].max_value,
            Precision::Inexact(ScalarValue::Int64(Some(3)))
        );
        assert_eq!(seen.column_statistics[1].max_value, Precision::Absent);
        Ok(())
    }
}
