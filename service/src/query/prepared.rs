//! What a statement is after it was submitted ([`PreparedStatement`]), described or started,
//! and the update kinds of the statements that run at submit.

use super::*;

/// A statement after [`QueryEngine::prepare`].
#[derive(Debug, Clone)]
pub enum PreparedStatement {
    /// A query to run with [`QueryEngine::execute`].
    Query(LogicalPlan),
    /// A listing the coordinator answers from what it holds (`SHOW USERS`, `SHOW WORKGROUPS`,
    /// `SHOW SCHEMAS`): run like a query, but without taking a workgroup slot, so that an admin
    /// can look at a full workgroup.
    Listing(LogicalPlan),
    /// A statement that already ran while being prepared. Writes (INSERT, CTAS, UNLOAD)
    /// report the rows they wrote in a one-row `count` result; DDL has no result columns.
    Done {
        /// The result's schema: `count`, or no columns for DDL.
        schema: SchemaRef,
        /// Rows written (0 for DDL).
        rows: u64,
        /// Bytes of data files the statement read.
        bytes_scanned: u64,
        /// What the statement did, as Trino names update types: `CREATE TABLE`, `INSERT`,
        /// `USE`, `SET SESSION`, ...
        kind: &'static str,
    },
}

/// What a statement returns and takes, without running it.
#[derive(Debug, Clone)]
pub struct Description {
    /// The result's schema.
    pub schema: SchemaRef,
    /// The placeholders' schema: `$1`, `$2`, ... in order (type `Null` where unknown).
    pub parameters: SchemaRef,
}

/// A running query's result, and what it reads.
pub struct Execution {
    /// The result, streamed from the executors.
    pub stream: SendableRecordBatchStream,
    /// Bytes of data files the plan reads (see [`planned_scan_bytes`]).
    pub bytes_scanned: u64,
    /// `Some(rows)` when the statement already ran while being prepared: DDL (0) and writes
    /// (the rows written, also the stream's one `count` row). `None` for queries.
    pub completed_rows: Option<u64>,
    /// Live progress of the running plan (`None` for statements that already ran, and EXPLAIN).
    pub progress: Option<Arc<QueryProgress>>,
    /// Why earlier runs failed, when executors were lost and the query ran again.
    pub retries: Arc<RetryLog>,
}

impl PreparedStatement {
    /// The schema of the statement's result.
    pub fn schema(&self) -> SchemaRef {
        match self {
            PreparedStatement::Query(plan) | PreparedStatement::Listing(plan) => {
                Arc::new(plan.schema().as_arrow().clone())
            }
            PreparedStatement::Done { schema, .. } => Arc::clone(schema),
        }
    }

    /// DDL of `kind` that ran: no result columns.
    pub(super) fn ddl_done(kind: &'static str) -> Self {
        PreparedStatement::Done {
            schema: ddl_schema(),
            rows: 0,
            bytes_scanned: 0,
            kind,
        }
    }

    /// A write of `kind` that ran and wrote `rows`: one `count` row.
    pub(super) fn done(kind: &'static str, rows: u64) -> Self {
        PreparedStatement::Done {
            schema: count_schema(),
            rows,
            bytes_scanned: 0,
            kind,
        }
    }
}

/// The result schema of DDL: no columns.
pub(super) fn ddl_schema() -> SchemaRef {
    Arc::new(Schema::empty())
}

/// The result schema of a write: the rows it wrote, as `count`.
pub(super) fn count_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new(
        "count",
        DataType::UInt64,
        false,
    )]))
}

/// A user statement's kind, as an update type.
pub(super) fn user_statement_kind(statement: &UserStatement) -> &'static str {
    match statement {
        UserStatement::Create { .. } => "CREATE USER",
        UserStatement::Alter { .. } | UserStatement::RevokeTokens { .. } => "ALTER USER",
        UserStatement::Drop { .. } => "DROP USER",
        UserStatement::Show => "SHOW USERS",
    }
}

/// A workgroup statement's kind, as an update type.
pub(super) fn workgroup_statement_kind(statement: &WorkgroupStatement) -> &'static str {
    match statement {
        WorkgroupStatement::Create { .. } => "CREATE WORKGROUP",
        WorkgroupStatement::Alter { .. } => "ALTER WORKGROUP",
        WorkgroupStatement::Drop { .. } => "DROP WORKGROUP",
        WorkgroupStatement::Show => "SHOW WORKGROUPS",
    }
}

/// A location statement's kind, as an update type.
pub(super) fn location_statement_kind(statement: &LocationStatement) -> &'static str {
    match statement {
        LocationStatement::Create { .. } => "CREATE LOCATION",
        LocationStatement::Drop { .. } => "DROP LOCATION",
        LocationStatement::Show => "SHOW LOCATIONS",
    }
}
