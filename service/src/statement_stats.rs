//! What one statement carries in its session state while it is prepared, so that writes deep in
//! the lakehouse code can report what they read and respect their workgroup's scan limit
//! without knowing the statement router.

use crate::history::TrackedQuery;
use crate::workgroups::WorkgroupLimits;
use datafusion::common::DataFusionError;
use datafusion::execution::context::SessionState;
use datafusion::physical_plan::ExecutionPlan;
use osprey_engine::planned_scan_bytes;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The bytes a statement's plans read so far, its history record and its workgroup's limits.
#[derive(Debug, Default)]
pub struct StatementStats {
    bytes_scanned: AtomicU64,
    /// The statement's history record, told when the statement waits in a queue.
    tracked: Option<TrackedQuery>,
    /// What the statement's workgroup allows, once it took a slot.
    limits: OnceLock<WorkgroupLimits>,
}

impl StatementStats {
    /// Nothing read yet, for the statement recorded as `tracked`.
    pub fn new(tracked: Option<TrackedQuery>) -> Self {
        Self {
            tracked,
            ..Self::default()
        }
    }

    /// Adds the bytes a plan of this statement reads; an error (before anything runs) when
    /// the statement would scan more than its workgroup allows.
    pub fn add_plan(state: &SessionState, plan: &dyn ExecutionPlan) -> Result<(), DataFusionError> {
        if let Some(stats) = state.config().get_extension::<StatementStats>() {
            let bytes = planned_scan_bytes(plan);
            let total = stats.bytes_scanned.fetch_add(bytes, Ordering::Relaxed) + bytes;
            if let Some(limits) = stats.limits.get() {
                limits
                    .check_scan(total)
                    .map_err(|refusal| DataFusionError::External(Box::new(refusal)))?;
            }
        }
        Ok(())
    }

    /// The bytes the statement's plans read.
    pub fn bytes_scanned(&self) -> u64 {
        self.bytes_scanned.load(Ordering::Relaxed)
    }

    /// The statement's history record.
    pub fn tracked(&self) -> Option<TrackedQuery> {
        self.tracked.clone()
    }

    /// Arms the scan limit with the limits of the slot the statement took (once).
    pub fn set_limits(&self, limits: &WorkgroupLimits) {
        let _ = self.limits.set(limits.clone());
    }
}
