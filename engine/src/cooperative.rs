//! Prompt cancellation inside joins.
//!
//! DataFusion stops a query when its stream is dropped, but a task can only notice that between
//! polls. Leaves (file scans) spend Tokio's cooperative budget, so a task yields every hundred or
//! so input batches; a join, however, can turn one input batch into thousands of output batches
//! (a nested-loop join against a large build side, a many-to-many hash join), and its parent
//! (an aggregate, say) drains them all within one poll. An executor then keeps computing for
//! seconds or minutes after the query was cancelled or its client went away.
//!
//! Wrapping every join in DataFusion's [`CooperativeExec`] makes each output batch spend budget
//! too, so the task yields at least every 128 join output batches and sees the cancellation.
//! A nested-loop join can also compute for seconds without producing a batch (a selective
//! filter over a large build side): its probe side is fed in small slices with a yield between
//! them ([`ProbeSliceExec`]). Both wrappers are serialized with the plan, so they take effect on
//! the executors too.

use crate::probe_slices::ProbeSliceExec;
use datafusion::common::Result;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::coop::CooperativeExec;
use datafusion::physical_plan::execution_plan::{ChildrenPropertiesMode, ReplaceChildrenOptions};
use datafusion::physical_plan::joins::{
    CrossJoinExec, HashJoinExec, NestedLoopJoinExec, SortMergeJoinExec, SymmetricHashJoinExec,
};
use std::sync::Arc;

/// The most rows in one probe slice (DataFusion's default batch size).
const MAX_SLICE_ROWS: usize = 8192;

/// Wraps each join operator in the plan in a [`CooperativeExec`] (see the module docs).
///
/// ```
/// use datafusion::prelude::SessionContext;
/// use osprey_engine::yield_inside_joins;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> datafusion::error::Result<()> {
/// let ctx = SessionContext::new();
/// let plan = ctx
///     .sql("SELECT * FROM (VALUES (1), (2)) a(x) CROSS JOIN (VALUES (3)) b(y)")
///     .await?
///     .create_physical_plan()
///     .await?;
/// let plan = yield_inside_joins(plan)?;
/// let text = datafusion::physical_plan::displayable(plan.as_ref()).indent(false).to_string();
/// assert!(text.contains("CooperativeExec"), "{text}");
/// # Ok(()) }
/// ```
pub fn yield_inside_joins(plan: Arc<dyn ExecutionPlan>) -> Result<Arc<dyn ExecutionPlan>> {
    plan.transform_up(|node| {
        let node_ref: &dyn ExecutionPlan = node.as_ref();
        let is_join = node_ref.downcast_ref::<NestedLoopJoinExec>().is_some()
            || node_ref.downcast_ref::<HashJoinExec>().is_some()
            || node_ref.downcast_ref::<CrossJoinExec>().is_some()
            || node_ref.downcast_ref::<SortMergeJoinExec>().is_some()
            || node_ref.downcast_ref::<SymmetricHashJoinExec>().is_some();
        let sliced = node_ref.downcast_ref::<NestedLoopJoinExec>().map(|join| {
            let probe = Arc::new(ProbeSliceExec::new(
                Arc::clone(join.right()),
                MAX_SLICE_ROWS,
            ));
            // Slicing keeps the probe side's partitioning and order: the join's are unchanged.
            Arc::clone(&node).replace_children(
                vec![Arc::clone(join.left()), probe],
                ReplaceChildrenOptions::new(ChildrenPropertiesMode::Keep),
            )
        });
        let node = match sliced {
            Some(sliced) => sliced?,
            None => node,
        };
        if is_join {
            Ok(Transformed::yes(
                Arc::new(CooperativeExec::new(node)) as Arc<dyn ExecutionPlan>
            ))
        } else {
            Ok(Transformed::no(node))
        }
    })
    .map(|transformed| transformed.data)
}
