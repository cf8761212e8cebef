//! Workgroup limits: the defaults, the configured workgroups, what a workgroup allows an
//! admitted query, and the checks a workgroup definition must pass.

use crate::error::QueryError;
use osprey_catalog::{CatalogError, ManagedBy, WorkgroupRecord, now_ms};

/// The default workgroup's name unless the configuration names another.
pub const DEFAULT_WORKGROUP: &str = "primary";
/// Queries of one workgroup running at once, unless set.
pub const DEFAULT_MAX_CONCURRENT_QUERIES: u64 = 16;
/// Queries of one workgroup waiting for a slot, unless set.
pub const DEFAULT_MAX_QUEUED_QUERIES: u64 = 1000;
/// The longest workgroup name accepted.
const MAX_NAME_CHARS: usize = 63;

/// A workgroup defined in the coordinator's configuration (`[[workgroups]]`). Unset limits take
/// the defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkgroupConfig {
    /// Its name.
    pub name: String,
    /// Queries running at once (default 16).
    pub max_concurrent_queries: Option<u64>,
    /// Queries waiting (default 1,000).
    pub max_queued_queries: Option<u64>,
    /// Seconds a query may run (default: the coordinator's `query_timeout_secs`; 0: no limit).
    pub query_timeout_secs: Option<u64>,
    /// Bytes of data files a query may scan (default: no limit).
    pub max_scan_bytes: Option<u64>,
    /// Bytes of memory a query may reserve per process (default: no limit).
    pub query_memory_bytes: Option<u64>,
    /// Users whose queries run in it.
    pub users: Vec<String>,
}

/// The workgroups of the configuration, and which one is the default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkgroupsConfig {
    /// The workgroup of users with none set (created with defaults if it does not exist).
    pub default_workgroup: String,
    /// Workgroups defined by the configuration.
    pub workgroups: Vec<WorkgroupConfig>,
}

impl Default for WorkgroupsConfig {
    fn default() -> Self {
        Self {
            default_workgroup: DEFAULT_WORKGROUP.to_string(),
            workgroups: Vec::new(),
        }
    }
}

/// What a workgroup allows the query it admitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkgroupLimits {
    /// The workgroup's name.
    pub workgroup: String,
    /// Seconds the query may run: `None` for the coordinator's limit, `Some(0)` for none.
    pub query_timeout_secs: Option<u64>,
    /// Bytes of data files the query may scan.
    pub max_scan_bytes: Option<u64>,
    /// Bytes of memory the query may reserve in each process.
    pub query_memory_bytes: Option<u64>,
}

impl WorkgroupLimits {
    pub(super) fn of(record: &WorkgroupRecord) -> Self {
        Self {
            workgroup: record.name.clone(),
            query_timeout_secs: record.query_timeout_secs,
            max_scan_bytes: record.max_scan_bytes,
            query_memory_bytes: record.query_memory_bytes,
        }
    }

    /// Checks the bytes a planned query would scan against the limit.
    pub fn check_scan(&self, planned_bytes: u64) -> Result<(), QueryError> {
        match self.max_scan_bytes {
            Some(limit) if planned_bytes > limit => Err(QueryError::ScanLimitExceeded(format!(
                "the query would scan {planned_bytes} bytes of data files, more than the {limit} \
                 bytes workgroup {} allows per query; nothing was run. Read less (filter on \
                 partition columns, select fewer files), or ask an admin to raise it: ALTER \
                 WORKGROUP {} SET (max_scan_bytes = ...)",
                self.workgroup, self.workgroup
            ))),
            _ => Ok(()),
        }
    }
}

pub(super) fn default_record(name: &str, managed_by: ManagedBy) -> WorkgroupRecord {
    WorkgroupRecord {
        name: name.to_string(),
        max_concurrent_queries: DEFAULT_MAX_CONCURRENT_QUERIES,
        max_queued_queries: DEFAULT_MAX_QUEUED_QUERIES,
        query_timeout_secs: None,
        max_scan_bytes: None,
        query_memory_bytes: None,
        managed_by,
        created_at_ms: now_ms(),
        updated_at_ms: now_ms(),
    }
}

/// Why workgroups could not be set up at start.
#[derive(Debug, thiserror::Error)]
pub enum WorkgroupSetupError {
    /// The catalog refused a change.
    #[error("cannot store the configured workgroups: {0}")]
    Catalog(#[from] CatalogError),
    /// A configured workgroup is invalid.
    #[error("invalid workgroup configuration: {0}")]
    Invalid(String),
}

pub(super) fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(format!(
            "a workgroup name has 1 to {MAX_NAME_CHARS} characters"
        ));
    }
    if name.chars().any(char::is_control) {
        return Err("a workgroup name may not contain control characters".to_string());
    }
    Ok(())
}

pub(super) fn check_limits(record: &WorkgroupRecord) -> Result<(), String> {
    if record.max_concurrent_queries == 0 {
        return Err(format!(
            "workgroup {}: max_concurrent_queries must be at least 1",
            record.name
        ));
    }
    if record
        .query_memory_bytes
        .is_some_and(|bytes| bytes < 1 << 20)
    {
        return Err(format!(
            "workgroup {}: query_memory_bytes must be at least 1MiB",
            record.name
        ));
    }
    Ok(())
}
