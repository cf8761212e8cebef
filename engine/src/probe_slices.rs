//! Feeds a nested-loop join its probe side a few rows at a time, yielding between slices.
//!
//! DataFusion's `NestedLoopJoinExec` joins each probe batch against the whole buffered build
//! side inside one poll, and returns only once an output batch is full. With a selective
//! filter (`a.x + b.y = 7`) output batches rarely fill, so one poll can compare a 8,192-row
//! probe batch with millions of build rows: seconds in which the thread serves nothing else and
//! a cancelled query cannot stop. [`ProbeSliceExec`] cuts the probe batches into slices and
//! makes the task yield before each next slice. The slice size adapts to how long the join
//! took over the last one, aiming at [`SLICE_TARGET`]: a large build side gets slices of a few
//! rows, a small one whole batches (so the yields cost nothing that matters).

use datafusion::arrow::array::RecordBatch;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DataFusionError, Result};
use datafusion::execution::{RecordBatchStream, SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
use futures::Stream;
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// How long the join should compute on one slice before the task yields.
pub const SLICE_TARGET: Duration = Duration::from_millis(10);

/// Rows in the first slice of a stream; later slices grow or shrink towards [`SLICE_TARGET`].
const FIRST_SLICE_ROWS: usize = 16;

/// Passes its input's batches on in slices of at most `rows` rows, sized to the time the join
/// takes over them, yielding to the runtime before every next slice (see the module docs).
#[derive(Debug)]
pub struct ProbeSliceExec {
    input: Arc<dyn ExecutionPlan>,
    rows: usize,
}

impl ProbeSliceExec {
    /// Slices of at most `rows` rows (at least 1) of `input`.
    pub fn new(input: Arc<dyn ExecutionPlan>, rows: usize) -> Self {
        Self {
            input,
            rows: rows.max(1),
        }
    }

    /// The most rows per slice.
    pub fn rows(&self) -> usize {
        self.rows
    }
}

impl DisplayAs for ProbeSliceExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "ProbeSliceExec: rows={}", self.rows)
    }
}

impl ExecutionPlan for ProbeSliceExec {
    fn name(&self) -> &str {
        "ProbeSliceExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        // Slicing changes neither partitioning nor order.
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
                "ProbeSliceExec takes exactly one input".to_string(),
            ));
        }
        Ok(Arc::new(Self::new(children.remove(0), self.rows)))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        Ok(Box::pin(SliceStream {
            input: self.input.execute(partition, context)?,
            max_rows: self.rows,
            rows: FIRST_SLICE_ROWS.min(self.rows),
            current: None,
            handed_out: None,
        }))
    }
}

struct SliceStream {
    input: SendableRecordBatchStream,
    max_rows: usize,
    /// Rows in the next slice.
    rows: usize,
    /// The batch being sliced and the offset of its next slice.
    current: Option<(RecordBatch, usize)>,
    /// When the last slice was handed out, until the join asks for the next: then the task
    /// yields first.
    handed_out: Option<Instant>,
}

impl Stream for SliceStream {
    type Item = Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Some(handed_out) = self.handed_out.take() {
            // The join is done with the last slice: size the next by how long that took, and
            // let the runtime run others (and notice a cancel) first.
            let spent = handed_out.elapsed();
            if spent < SLICE_TARGET / 2 {
                self.rows = (self.rows * 2).min(self.max_rows);
            } else if spent > SLICE_TARGET * 2 {
                self.rows = (self.rows / 2).max(1);
            }
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let rows = self.rows;
        loop {
            if let Some((batch, offset)) = &mut self.current {
                if *offset < batch.num_rows() {
                    let length = rows.min(batch.num_rows() - *offset);
                    let slice = batch.slice(*offset, length);
                    *offset += length;
                    self.handed_out = Some(Instant::now());
                    return Poll::Ready(Some(Ok(slice)));
                }
                self.current = None;
            }
            match self.input.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(batch))) => self.current = Some((batch, 0)),
                other => return other,
            }
        }
    }
}

impl RecordBatchStream for SliceStream {
    fn schema(&self) -> datafusion::arrow::datatypes::SchemaRef {
        self.input.schema()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::SessionContext;
    use futures::StreamExt;

    #[tokio::test]
    async fn slices_keep_every_row_in_order() {
        let ctx = SessionContext::new_with_config(
            datafusion::prelude::SessionConfig::new().with_target_partitions(1),
        );
        let plan = ctx
            .sql("SELECT value FROM range(1000)")
            .await
            .unwrap()
            .create_physical_plan()
            .await
            .unwrap();
        let sliced = Arc::new(ProbeSliceExec::new(plan, 7));
        let mut stream = sliced.execute(0, ctx.task_ctx()).unwrap();
        let mut values = Vec::new();
        while let Some(batch) = stream.next().await {
            let batch = batch.unwrap();
            assert!(batch.num_rows() <= 7);
            let column = batch
                .column(0)
                .as_any()
                .downcast_ref::<datafusion::arrow::array::Int64Array>()
                .unwrap();
            values.extend(column.values().iter().copied());
        }
        assert_eq!(values, (0..1000).collect::<Vec<i64>>());
    }
}
