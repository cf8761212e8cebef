//! The executor progress service's messages: the coordinator asks an executor for the figures
//! of one query's tasks (`GetQueryProgress`), or for its own load (`GetExecutorStatus`).
//!
//! Written as `prost` structs rather than generated from a `.proto` file: two unary methods do
//! not justify a build script and `protoc` on every build machine. The field tags are the wire
//! contract between coordinator and executors of one release.

/// The gRPC method executors serve progress on.
pub const PROGRESS_METHOD: &str = "/osprey.ExecutorProgress/GetQueryProgress";

/// The gRPC service name of [`PROGRESS_METHOD`].
pub const PROGRESS_SERVICE: &str = "osprey.ExecutorProgress";

/// Coordinator to executor: which query's tasks to report.
#[derive(Clone, PartialEq, prost::Message)]
pub struct QueryProgressRequest {
    /// The distributed query id (16 bytes).
    #[prost(bytes = "vec", tag = "1")]
    pub query_id: Vec<u8>,
}

/// Executor to coordinator: the figures of the query's tasks this executor runs.
#[derive(Clone, PartialEq, prost::Message)]
pub struct QueryProgressResponse {
    /// One entry per task of the query on this executor.
    #[prost(message, repeated, tag = "1")]
    pub tasks: Vec<TaskProgressReport>,
}

/// The progress of one task, as its executor measures it.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct TaskProgressReport {
    /// The stage the task belongs to.
    #[prost(uint64, tag = "1")]
    pub stage: u64,
    /// The task's number within its stage.
    #[prost(uint64, tag = "2")]
    pub task: u64,
    /// Rows the task's scans have produced.
    #[prost(uint64, tag = "3")]
    pub rows_read: u64,
    /// Bytes the task's Parquet readers have fetched.
    #[prost(uint64, tag = "4")]
    pub bytes_read: u64,
    /// Whether the task has produced all its output.
    #[prost(bool, tag = "5")]
    pub finished: bool,
}

/// The gRPC method executors report their own load on.
pub const STATUS_METHOD: &str = "/osprey.ExecutorProgress/GetExecutorStatus";

/// Coordinator to executor: how busy are you?
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct ExecutorStatusRequest {}

/// Executor to coordinator: its load right now.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct ExecutorStatusResponse {
    /// Tasks of any query the executor holds (a task stays until its query ends).
    #[prost(uint64, tag = "1")]
    pub running_tasks: u64,
    /// Bytes reserved in the executor's memory pool by running operators.
    #[prost(uint64, tag = "2")]
    pub memory_reserved_bytes: u64,
}
