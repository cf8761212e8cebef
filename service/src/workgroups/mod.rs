//! Workgroups: admission control, as Athena workgroups and Trino resource groups do it.
//!
//! Every user belongs to one workgroup (the default one, `primary` unless configured, when none
//! is set). A workgroup bounds how many of its queries run at once; the next ones wait in a
//! FIFO queue of bounded length, and a query that finds the queue full is refused at once with
//! the retryable [`QueryError::QueueFull`]. It also sets per query a time limit, the most bytes
//! of data files it may scan (checked on the plan, before anything runs) and the most memory it
//! may reserve in each process.
//!
//! Workgroups live in the catalog; the coordinator keeps them and the users' assignments in
//! memory (it is the catalog's only writer) and changes both together. They are managed with
//! SQL, recognised here before DataFusion sees the statement:
//!
//! ```sql
//! CREATE WORKGROUP [IF NOT EXISTS] name [WITH (setting = value, ...)]
//! ALTER WORKGROUP [IF EXISTS] name SET (setting = value, ...)
//! ALTER WORKGROUP [IF EXISTS] name RESET (setting, ...)
//! DROP WORKGROUP [IF EXISTS] name [, ...]
//! SHOW WORKGROUPS
//! ALTER USER name SET WORKGROUP name | DEFAULT
//! ```
//!
//! Settings: `max_concurrent_queries` (at least 1), `max_queued_queries`, `query_timeout_secs`
//! (a number of seconds or `'10m'`; `NONE` for no limit, `DEFAULT` for the coordinator's
//! `query_timeout_secs`), `max_scan_bytes` and `query_memory_bytes` (a number of bytes or
//! `'10GiB'`; `NONE` or `DEFAULT` for no limit). Only admins change workgroups; workgroups of the
//! configuration (`[[workgroups]]`) can only be changed there.
//!
//! The queue is Osprey's own rather than a semaphore's: it must be bounded, report its length
//! and order, and follow limits changed while queries wait.
//!
//! [`QueryError::QueueFull`]: crate::QueryError::QueueFull

mod admission;
mod execute;
mod limits;
mod listing;
mod queue;
mod statement;

pub use admission::Workgroups;
pub use execute::{WorkgroupStatementResult, execute_workgroup_statement};
pub use limits::{WorkgroupConfig, WorkgroupLimits, WorkgroupSetupError, WorkgroupsConfig};
pub use listing::listing_schema;
pub use queue::Slot;
pub use statement::{WorkgroupStatement, parse_workgroup_statement};
