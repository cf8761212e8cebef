//! Live progress of running queries: rows and bytes read so far, and stages and tasks done.
//!
//! The distributed library reports task metrics only when a query ends, so Osprey measures
//! progress itself, from the live metrics of the plans that are running:
//!
//! - each executor keeps a weak reference to the plan of every task it runs
//!   ([`RunningTasks`], filled when the task's plan is set up) and answers
//!   `GetQueryProgress` with per-task figures read from those plans' metrics;
//! - the coordinator records which task of which stage went to which executor
//!   ([`QueryProgress`], filled as tasks are dispatched) and, when a client asks, gathers the
//!   executors' answers into one [`ProgressSnapshot`].
//!
//! Nothing is polled unless a client asks, so a query nobody watches costs nothing extra.
//!
//! Figures come from DataFusion's own operator metrics: rows read are the rows leaf operators
//! (scans) produced, bytes read are the Parquet readers' `bytes_scanned`, and a task is done
//! when the topmost operator that records its end time has ended every output partition.

use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::metrics::MetricValue;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use url::Url;

/// How long the coordinator waits for one executor's progress answer.
const EXECUTOR_ANSWER_TIMEOUT: Duration = Duration::from_secs(1);

/// Snapshots younger than this are served again rather than asking the executors anew, so that
/// many watchers of one query cost the executors no more than one.
const SNAPSHOT_REUSE: Duration = Duration::from_millis(200);

use osprey_proto::progress::{QueryProgressResponse, TaskProgressReport};

/// Rows and bytes read by the scans of a plan so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadFigures {
    /// Rows produced by leaf operators (scans and in-memory sources).
    pub rows: u64,
    /// Bytes fetched by Parquet readers.
    pub bytes: u64,
}

/// Sums the live read figures of `plan`'s leaves. Operators that receive data from another
/// stage are not leaves of this plan: their rows were read (and counted) elsewhere.
///
/// ```
/// use datafusion::physical_plan::empty::EmptyExec;
/// use datafusion::arrow::datatypes::Schema;
/// use osprey_engine::{ReadFigures, read_figures};
/// use std::sync::Arc;
///
/// let plan = EmptyExec::new(Arc::new(Schema::empty()));
/// assert_eq!(read_figures(&plan), ReadFigures::default());
/// ```
pub fn read_figures(plan: &dyn ExecutionPlan) -> ReadFigures {
    let mut figures = ReadFigures::default();
    add_read_figures(plan, &mut figures);
    figures
}

fn add_read_figures(plan: &dyn ExecutionPlan, figures: &mut ReadFigures) {
    if crate::distributed::shape::receives_from_other_stage(plan) {
        return;
    }
    if let Some(variants) = crate::distributed::shape::leaf_variants(plan) {
        for variant in variants {
            add_read_figures(variant.as_ref(), figures);
        }
        return;
    }
    let children = plan.children();
    let metrics = plan.metrics();
    if let Some(metrics) = &metrics {
        figures.bytes += metrics
            .sum_by_name("bytes_scanned")
            .map_or(0, |value| value.as_usize() as u64);
    }
    if children.is_empty() {
        figures.rows += metrics
            .and_then(|metrics| metrics.output_rows())
            .unwrap_or(0) as u64;
    }
    for child in children {
        add_read_figures(child.as_ref(), figures);
    }
}

/// Whether `plan` has produced all its output: the topmost operator that records end times
/// (following single children down) has ended every one of its output partitions. A plan with
/// no such operator is never reported finished.
pub fn plan_finished(plan: &dyn ExecutionPlan) -> bool {
    let mut node = plan;
    loop {
        if let Some(metrics) = node.metrics() {
            let mut tracked = 0usize;
            let mut ended = 0usize;
            for metric in metrics.iter() {
                if let MetricValue::EndTimestamp(timestamp) = metric.value() {
                    tracked += 1;
                    if timestamp.value().is_some() {
                        ended += 1;
                    }
                }
            }
            if tracked > 0 {
                let partitions = node.properties().partitioning.partition_count();
                return ended >= partitions.max(1);
            }
        }
        let children = node.children();
        match children[..] {
            [only] => node = only.as_ref(),
            _ => return false,
        }
    }
}

/// How long an executor remembers the final figures of a task whose plan the library released,
/// so that the coordinator's last question after the query ends still gets them.
const ENDED_TASK_MEMORY: Duration = Duration::from_secs(60);

/// How often an executor looks for tasks the library has released (see
/// [`RunningTasks::sweep`]); a released task's plan (and any join table it holds) is freed at
/// most this much later.
pub const SWEEP_INTERVAL: Duration = Duration::from_millis(200);

/// The tasks an executor runs, by distributed query id, with their plans while the library
/// runs them and their final figures for a while after.
#[derive(Clone, Default)]
pub struct RunningTasks {
    queries: Arc<Mutex<HashMap<[u8; 16], Vec<RunningTask>>>>,
}

struct RunningTask {
    stage: u64,
    task: u64,
    /// The task's plan until the library releases it (when this is its only holder).
    plan: Option<Arc<dyn ExecutionPlan>>,
    /// The figures measured when the plan was released, and when that was.
    ended: Option<(TaskProgressReport, Instant)>,
}

fn measure(stage: u64, task: u64, plan: &dyn ExecutionPlan) -> TaskProgressReport {
    let read = read_figures(plan);
    TaskProgressReport {
        stage,
        task,
        rows_read: read.rows,
        bytes_read: read.bytes,
        finished: plan_finished(plan),
    }
}

impl RunningTasks {
    /// Records that this executor runs task `task` of stage `stage` of query `query_id`.
    pub fn register(
        &self,
        query_id: [u8; 16],
        stage: u64,
        task: u64,
        plan: &Arc<dyn ExecutionPlan>,
    ) {
        self.lock().entry(query_id).or_default().push(RunningTask {
            stage,
            task,
            plan: Some(Arc::clone(plan)),
            ended: None,
        });
    }

    /// Measures and lets go of the plans the library has released, and forgets tasks that
    /// ended long ago. Call it every [`SWEEP_INTERVAL`].
    pub fn sweep(&self) {
        let mut queries = self.lock();
        let now = Instant::now();
        for tasks in queries.values_mut() {
            for task in tasks.iter_mut() {
                if let Some(plan) = task.plan.take_if(|plan| Arc::strong_count(plan) == 1) {
                    task.ended = Some((measure(task.stage, task.task, plan.as_ref()), now));
                }
            }
            tasks.retain(|task| {
                task.ended
                    .is_none_or(|(_, ended)| now.duration_since(ended) < ENDED_TASK_MEMORY)
            });
        }
        queries.retain(|_, tasks| !tasks.is_empty());
    }

    /// The figures of every task of query `query_id`: measured now for running ones, as they
    /// ended for the others.
    pub fn report(&self, query_id: &[u8]) -> QueryProgressResponse {
        self.sweep();
        let mut ended = Vec::new();
        let mut running: Vec<(u64, u64, Arc<dyn ExecutionPlan>)> = Vec::new();
        {
            let queries = self.lock();
            let Some(tasks) = <[u8; 16]>::try_from(query_id)
                .ok()
                .and_then(|id| queries.get(&id))
            else {
                return QueryProgressResponse::default();
            };
            for task in tasks {
                match (&task.plan, task.ended) {
                    (Some(plan), _) => running.push((task.stage, task.task, Arc::clone(plan))),
                    (None, Some((report, _))) => ended.push(report),
                    (None, None) => {}
                }
            }
        }
        // Metrics are read outside the lock: walking a big plan takes a moment.
        let mut tasks = ended;
        tasks.extend(
            running
                .into_iter()
                .map(|(stage, task, plan)| measure(stage, task, plan.as_ref())),
        );
        QueryProgressResponse { tasks }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 16], Vec<RunningTask>>> {
        self.queries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// What a client sees of a running query's progress.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ProgressSnapshot {
    /// Rows read by scans so far, on the executors and the coordinator.
    pub rows_read: u64,
    /// Bytes fetched by Parquet readers so far.
    pub bytes_read: u64,
    /// Executor stages whose every task has produced all its output.
    pub stages_done: u64,
    /// Executor stages in the plan (0 when the whole plan runs on the coordinator).
    pub stages_total: u64,
    /// Executor tasks that have produced all their output.
    pub tasks_done: u64,
    /// Executor tasks in the plan.
    pub tasks_total: u64,
}

/// How the coordinator asks an executor for the figures of one query's tasks: implemented by
/// the cluster's channels (`crate::distributed::ClusterChannels`), so that progress need not
/// know them.
#[async_trait::async_trait]
pub trait ProgressSource: Send + Sync + 'static {
    /// The figures of the tasks of query `query_id` on the executor at `url`.
    async fn query_progress(
        &self,
        url: &Url,
        query_id: &[u8; 16],
    ) -> Result<QueryProgressResponse, tonic::Status>;
}

/// The coordinator's view of one running query, from which [`QueryProgress::snapshot`] builds
/// what clients see. Attach it to the query's session before planning
/// ([`QueryProgress::attach`]); the distributed layer fills it as tasks are dispatched.
#[derive(Default)]
pub struct QueryProgress {
    /// Task count of each executor stage, from the physical plan.
    stages: Mutex<BTreeMap<u64, u64>>,
    /// The physical plan, for the figures of the part that runs on the coordinator.
    plan: Mutex<Option<Arc<dyn ExecutionPlan>>>,
    /// The executors running tasks of the query, with the distributed query id they know it by.
    executors: Mutex<BTreeMap<(String, [u8; 16]), Url>>,
    /// How to ask the executors the tasks went to (the channels they went through).
    source: OnceLock<Arc<dyn ProgressSource>>,
    /// The last answer of each task, so that figures never go backwards when an executor is
    /// slow to answer.
    last_reports: Mutex<HashMap<(u64, u64), TaskProgressReport>>,
    last_snapshot: tokio::sync::Mutex<Option<(Instant, ProgressSnapshot)>>,
}

impl std::fmt::Debug for QueryProgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryProgress").finish_non_exhaustive()
    }
}

impl QueryProgress {
    /// A new tracker, attached to `config` so that the tasks of the query planned with it are
    /// recorded.
    ///
    /// ```
    /// use datafusion::prelude::SessionConfig;
    /// use osprey_engine::QueryProgress;
    ///
    /// let mut config = SessionConfig::new();
    /// let progress = QueryProgress::attach(&mut config);
    /// assert!(config.get_extension::<QueryProgress>().is_some());
    /// # drop(progress);
    /// ```
    pub fn attach(config: &mut datafusion::prelude::SessionConfig) -> Arc<Self> {
        let progress = Arc::new(Self::default());
        config.set_extension(Arc::clone(&progress));
        progress
    }

    /// Forgets everything about an earlier run of the query, before it runs again.
    pub fn reset(&self) {
        lock(&self.stages).clear();
        *lock(&self.plan) = None;
        lock(&self.executors).clear();
        lock(&self.last_reports).clear();
        if let Ok(mut last) = self.last_snapshot.try_lock() {
            *last = None;
        }
    }

    /// Records the physical plan about to run: its executor stages and their task counts.
    pub fn set_plan(&self, plan: &Arc<dyn ExecutionPlan>) {
        let mut stages = BTreeMap::new();
        crate::distributed::shape::stage_task_counts(plan.as_ref(), &mut stages);
        *lock(&self.stages) = stages;
        *lock(&self.plan) = Some(Arc::clone(plan));
    }

    /// Called by the distributed layer for each task it hands to an executor, with the way to
    /// ask that executor later.
    pub(crate) fn task_dispatched(
        &self,
        query_id: [u8; 16],
        url: &Url,
        source: impl FnOnce() -> Arc<dyn ProgressSource>,
    ) {
        let _ = self.source.get_or_init(source);
        lock(&self.executors)
            .entry((url.to_string(), query_id))
            .or_insert_with(|| url.clone());
    }

    /// The query's figures after it ended, asked anew (executors remember ended tasks' final
    /// figures for a minute).
    pub async fn final_snapshot(&self) -> ProgressSnapshot {
        self.snapshot_within(Duration::ZERO).await
    }

    /// The query's progress now: asks each executor running one of its tasks (at most one
    /// second each; a silent executor's tasks keep their last figures).
    pub async fn snapshot(&self) -> ProgressSnapshot {
        self.snapshot_within(SNAPSHOT_REUSE).await
    }

    /// A snapshot no older than `reuse`.
    async fn snapshot_within(&self, reuse: Duration) -> ProgressSnapshot {
        let mut last = self.last_snapshot.lock().await;
        if let Some((taken, snapshot)) = *last
            && taken.elapsed() < reuse
        {
            return snapshot;
        }
        let snapshot = self.gather().await;
        *last = Some((Instant::now(), snapshot));
        snapshot
    }

    async fn gather(&self) -> ProgressSnapshot {
        let by_executor = lock(&self.executors).clone();
        if let Some(source) = self.source.get() {
            let asks = by_executor
                .into_iter()
                .map(|((_, query_id), url)| async move {
                    tokio::time::timeout(
                        EXECUTOR_ANSWER_TIMEOUT,
                        source.query_progress(&url, &query_id),
                    )
                    .await
                    .ok()
                    .and_then(Result::ok)
                });
            let answers = futures::future::join_all(asks).await;
            let mut last_reports = lock(&self.last_reports);
            for report in answers
                .into_iter()
                .flatten()
                .flat_map(|answer| answer.tasks)
            {
                let entry = last_reports
                    .entry((report.stage, report.task))
                    .or_insert(report);
                entry.rows_read = entry.rows_read.max(report.rows_read);
                entry.bytes_read = entry.bytes_read.max(report.bytes_read);
                entry.finished |= report.finished;
            }
        }

        let stages = lock(&self.stages).clone();
        let reports = lock(&self.last_reports).clone();
        let local = lock(&self.plan)
            .as_ref()
            .map(|plan| read_figures(plan.as_ref()))
            .unwrap_or_default();
        let mut snapshot = ProgressSnapshot {
            rows_read: local.rows,
            bytes_read: local.bytes,
            stages_total: stages.len() as u64,
            tasks_total: stages.values().sum(),
            ..ProgressSnapshot::default()
        };
        for report in reports.values() {
            snapshot.rows_read += report.rows_read;
            snapshot.bytes_read += report.bytes_read;
            snapshot.tasks_done += u64::from(report.finished);
        }
        snapshot.stages_done = stages
            .iter()
            .filter(|&(&stage, &tasks)| {
                (0..tasks).all(|task| reports.get(&(stage, task)).is_some_and(|r| r.finished))
            })
            .count() as u64;
        snapshot
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::Int64Array;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::arrow::record_batch::RecordBatch;
    use datafusion::physical_plan::{collect, displayable};
    use datafusion::prelude::SessionContext;

    #[tokio::test]
    async fn figures_follow_a_plan_as_it_runs() {
        let dir = std::env::temp_dir().join(format!("osprey-progress-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.parquet");
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![Arc::new(Int64Array::from_iter_values(0..1000))],
        )
        .unwrap();
        let mut writer = parquet::arrow::ArrowWriter::try_new(
            std::fs::File::create(&path).unwrap(),
            schema,
            None,
        )
        .unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();

        let ctx = SessionContext::new();
        ctx.register_parquet("t", path.to_str().unwrap(), Default::default())
            .await
            .unwrap();
        let plan = ctx
            .sql("SELECT x % 7 AS k, count(*) FROM t WHERE x >= 0 GROUP BY 1")
            .await
            .unwrap()
            .create_physical_plan()
            .await
            .unwrap();
        assert_eq!(read_figures(plan.as_ref()), ReadFigures::default());
        assert!(!plan_finished(plan.as_ref()));

        let rows = collect(Arc::clone(&plan), ctx.task_ctx()).await.unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(rows.iter().map(|b| b.num_rows()).sum::<usize>(), 7);
        let figures = read_figures(plan.as_ref());
        let shown = displayable(plan.as_ref()).indent(true).to_string();
        assert_eq!(figures.rows, 1000, "{shown}");
        assert!(figures.bytes > 0, "{shown}");
        assert!(plan_finished(plan.as_ref()), "{shown}");
    }

    #[tokio::test]
    async fn executors_report_running_tasks_and_remember_ended_ones() {
        let tasks = RunningTasks::default();
        let plan = || -> Arc<dyn ExecutionPlan> {
            Arc::new(datafusion::physical_plan::empty::EmptyExec::new(Arc::new(
                Schema::empty(),
            )))
        };
        let (first, second) = (plan(), plan());
        tasks.register([1; 16], 2, 0, &first);
        tasks.register([1; 16], 2, 1, &second);
        let report = tasks.report(&[1; 16]);
        assert_eq!(report.tasks.len(), 2);
        assert_eq!(report.tasks[1].stage, 2);
        assert!(tasks.report(&[2; 16]).tasks.is_empty());
        assert!(tasks.report(b"short").tasks.is_empty());

        // The library lets go of the plan: the executor does too, and keeps the figures.
        drop(first);
        tasks.sweep();
        let held: Vec<bool> = tasks.lock()[&[1; 16]]
            .iter()
            .map(|task| task.plan.is_some())
            .collect();
        assert_eq!(held, [false, true]);
        assert_eq!(tasks.report(&[1; 16]).tasks.len(), 2);
    }
}
