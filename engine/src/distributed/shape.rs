//! What a distributed plan looks like: its stages and tasks (EXPLAIN), the bytes of data files
//! it reads, and which of its leaves read from another stage or were split between tasks.

use datafusion::physical_plan::ExecutionPlan;
use datafusion_distributed::{DistributedLeafExec, NetworkBoundaryExt, display_plan_ascii};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Whether `plan` receives its input from another stage over the network.
pub(crate) fn receives_from_other_stage(plan: &dyn ExecutionPlan) -> bool {
    plan.as_network_boundary().is_some()
}

/// The per-task variants of a leaf the distributed planner split between tasks.
pub(crate) fn leaf_variants(plan: &dyn ExecutionPlan) -> Option<&[Arc<dyn ExecutionPlan>]> {
    plan.downcast_ref::<DistributedLeafExec>()
        .map(DistributedLeafExec::variants)
}

/// Adds the task count of every executor stage below `plan` to `stages`, by stage number.
pub(crate) fn stage_task_counts(plan: &dyn ExecutionPlan, stages: &mut BTreeMap<u64, u64>) {
    if let Some(boundary) = plan.as_network_boundary() {
        let stage = boundary.input_stage();
        stages.insert(stage.num() as u64, stage.task_count() as u64);
        if let Some(input) = stage.local_plan() {
            stage_task_counts(input.as_ref(), stages);
        }
        return;
    }
    for child in plan.children() {
        stage_task_counts(child.as_ref(), stages);
    }
}

/// Renders a physical plan with its stages and tasks, and with per-task metrics when
/// `with_metrics` is set and the plan has run.
pub fn render_distributed_plan(plan: &dyn ExecutionPlan, with_metrics: bool) -> String {
    display_plan_ascii(plan, with_metrics)
}

/// The bytes of data files a physical plan reads, across all its stages: the files left after
/// partition and file pruning, counting a file split between tasks once. Parquet readers may
/// fetch less (only the projected columns and the row groups statistics cannot rule out), so
/// this is an upper bound on what is fetched from storage, known before the query runs.
///
/// ```
/// use datafusion::physical_plan::empty::EmptyExec;
/// use datafusion::arrow::datatypes::Schema;
/// use std::sync::Arc;
///
/// let plan = EmptyExec::new(Arc::new(Schema::empty()));
/// assert_eq!(osprey_engine::planned_scan_bytes(&plan), 0);
/// ```
pub fn planned_scan_bytes(plan: &dyn ExecutionPlan) -> u64 {
    use datafusion::datasource::physical_plan::FileScanConfig;
    use datafusion::datasource::source::DataSourceExec;
    if let Some(leaf) = plan.downcast_ref::<DistributedLeafExec>() {
        // The per-task variants split the original scan; count it once.
        return planned_scan_bytes(leaf.original().as_ref());
    }
    if let Some(boundary) = plan.as_network_boundary() {
        return boundary
            .input_stage()
            .local_plan()
            .map_or(0, |input| planned_scan_bytes(input.as_ref()));
    }
    if let Some(source) = plan.downcast_ref::<DataSourceExec>() {
        return source
            .data_source()
            .downcast_ref::<FileScanConfig>()
            .map_or(0, |config| {
                config
                    .file_groups
                    .iter()
                    .flat_map(|group| group.iter())
                    .map(|file| match &file.range {
                        Some(range) => (range.end - range.start).max(0) as u64,
                        None => file.object_meta.size,
                    })
                    .sum()
            });
    }
    plan.children()
        .iter()
        .map(|child| planned_scan_bytes(child.as_ref()))
        .sum()
}

/// Whether `plan` is where a stage run by other processes starts (a network boundary): a
/// rewrite of one process's part of a plan stops there.
pub fn is_stage_boundary(plan: &dyn ExecutionPlan) -> bool {
    plan.is_network_boundary()
}
