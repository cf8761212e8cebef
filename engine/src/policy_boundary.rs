//! The boundary above the rows and values a principal may see of a table.
//!
//! Governance (in `osprey-service`) puts a table's row filters and column masks directly over
//! its scan, and [`PolicyBoundaryExec`] above them. DataFusion's physical optimizer moves a
//! query's own predicates down into the filters and scans below them (a `FilterExec` absorbs
//! the predicates of its parents), where they would run on rows the principal may not see, and
//! their errors (a failed cast names its value) would tell what those rows hold. This node
//! passes its input on unchanged and takes nothing from above: no predicate, projection or
//! limit is pushed through it.

use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
use std::fmt;
use std::sync::Arc;

/// Passes its input on; nothing above it is pushed below it (see the module docs).
#[derive(Debug)]
pub struct PolicyBoundaryExec {
    input: Arc<dyn ExecutionPlan>,
}

impl PolicyBoundaryExec {
    /// The boundary over `input`.
    pub fn new(input: Arc<dyn ExecutionPlan>) -> Self {
        Self { input }
    }
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
        self.input.properties()
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

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
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
        Ok(Arc::new(Self::new(children.remove(0))))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        self.input.execute(partition, context)
    }
}
