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

use crate::admin_sql::{Tokens, listing_plan, syntax};
use crate::error::QueryError;
use crate::units::{parse_byte_size, parse_seconds};
use datafusion::arrow::array::{BooleanArray, StringArray, UInt64Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::logical_expr::LogicalPlan;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::Token;
use osprey_catalog::{CatalogError, CatalogStore, ManagedBy, WorkgroupRecord, now_ms};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::oneshot;

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
    fn of(record: &WorkgroupRecord) -> Self {
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

/// The workgroups and which users belong to them, with each workgroup's queue.
#[derive(Clone)]
pub struct Workgroups {
    shared: Arc<Shared>,
}

struct Shared {
    store: CatalogStore,
    default_name: String,
    registry: Mutex<Registry>,
}

#[derive(Default)]
struct Registry {
    groups: HashMap<String, Arc<Group>>,
    /// User name to workgroup name, for users not in the default workgroup.
    users: HashMap<String, String>,
}

/// One workgroup's limits and queue, shared with the queries it admitted (a dropped workgroup
/// lives on until they end).
struct Group {
    state: Mutex<GroupState>,
}

struct GroupState {
    record: WorkgroupRecord,
    running: u64,
    waiting: VecDeque<Waiter>,
    next_waiter: u64,
}

struct Waiter {
    id: u64,
    admit: oneshot::Sender<()>,
}

impl Group {
    fn new(record: WorkgroupRecord) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(GroupState {
                record,
                running: 0,
                waiting: VecDeque::new(),
                next_waiter: 0,
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, GroupState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn release(&self) {
        let mut state = self.lock();
        state.running = state.running.saturating_sub(1);
        state.admit_waiting();
    }
}

impl GroupState {
    /// Gives free slots to the longest-waiting queries still waiting.
    fn admit_waiting(&mut self) {
        while self.running < self.record.max_concurrent_queries {
            let Some(waiter) = self.waiting.pop_front() else {
                return;
            };
            // A waiter whose query is gone no longer listens; its slot goes to the next one.
            if waiter.admit.send(()).is_ok() {
                self.running += 1;
            }
        }
    }
}

/// A query's place in its workgroup: the slot is given back when this is dropped (the query's
/// result stream ended or was dropped).
pub struct Slot {
    group: Arc<Group>,
    limits: WorkgroupLimits,
}

impl Slot {
    /// What the workgroup allows the query.
    pub fn limits(&self) -> &WorkgroupLimits {
        &self.limits
    }
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slot")
            .field("limits", &self.limits)
            .finish()
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.group.release();
    }
}

/// A query waiting in a queue. Dropped before it was admitted (the client cancelled or went
/// away), it leaves the queue; admitted but dropped before it noticed, it gives the slot back.
struct QueuedQuery {
    group: Arc<Group>,
    id: u64,
    admitted: oneshot::Receiver<()>,
    done: bool,
}

impl Drop for QueuedQuery {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut state = self.group.lock();
        if let Some(position) = state.waiting.iter().position(|w| w.id == self.id) {
            state.waiting.remove(position);
        } else if self.admitted.try_recv().is_ok() {
            state.running = state.running.saturating_sub(1);
            state.admit_waiting();
        }
    }
}

/// A workgroup as `SHOW WORKGROUPS` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkgroupStatus {
    /// Its definition.
    pub record: WorkgroupRecord,
    /// Whether it is the default workgroup.
    pub is_default: bool,
    /// Its queries running now.
    pub running: u64,
    /// Its queries waiting now.
    pub queued: u64,
}

fn default_record(name: &str, managed_by: ManagedBy) -> WorkgroupRecord {
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

impl Workgroups {
    /// Stores the configured workgroups (creating, updating, and dropping those removed from
    /// the configuration), makes sure the default workgroup exists, and loads every workgroup
    /// and user assignment.
    pub async fn load(
        store: CatalogStore,
        config: &WorkgroupsConfig,
    ) -> Result<Self, WorkgroupSetupError> {
        check_name(&config.default_workgroup).map_err(WorkgroupSetupError::Invalid)?;
        let stored = store.workgroups().await?;
        for configured in &config.workgroups {
            check_name(&configured.name).map_err(WorkgroupSetupError::Invalid)?;
            let mut record = default_record(&configured.name, ManagedBy::Config);
            record.max_concurrent_queries = configured
                .max_concurrent_queries
                .unwrap_or(DEFAULT_MAX_CONCURRENT_QUERIES);
            record.max_queued_queries = configured
                .max_queued_queries
                .unwrap_or(DEFAULT_MAX_QUEUED_QUERIES);
            record.query_timeout_secs = configured.query_timeout_secs;
            record.max_scan_bytes = configured.max_scan_bytes;
            record.query_memory_bytes = configured.query_memory_bytes;
            check_limits(&record).map_err(WorkgroupSetupError::Invalid)?;
            match stored.iter().find(|s| s.name == record.name) {
                Some(existing) => {
                    record.created_at_ms = existing.created_at_ms;
                    record.updated_at_ms = existing.updated_at_ms;
                    if *existing != record {
                        store.update_workgroup(&record).await?;
                    }
                }
                None => store.create_workgroup(&record).await?,
            }
            for user in &configured.users {
                match store.set_user_workgroup(user, Some(&record.name)).await {
                    Ok(()) => {}
                    Err(CatalogError::NotFound { .. }) => {
                        tracing::warn!(user = %user, workgroup = %record.name, "a user listed in [[workgroups]] does not exist")
                    }
                    Err(err) => return Err(err.into()),
                }
            }
        }
        for existing in &stored {
            if existing.managed_by == ManagedBy::Config
                && !config.workgroups.iter().any(|c| c.name == existing.name)
            {
                store.drop_workgroup(&existing.name).await?;
                tracing::info!(workgroup = %existing.name, "workgroup removed from the configuration: dropped");
            }
        }
        if !store
            .workgroups()
            .await?
            .iter()
            .any(|w| w.name == config.default_workgroup)
        {
            store
                .create_workgroup(&default_record(&config.default_workgroup, ManagedBy::Sql))
                .await?;
        }
        let workgroups = Self {
            shared: Arc::new(Shared {
                store,
                default_name: config.default_workgroup.clone(),
                registry: Mutex::new(Registry::default()),
            }),
        };
        workgroups.reload().await?;
        Ok(workgroups)
    }

    /// Reads every workgroup and assignment from the catalog (limits of existing workgroups are
    /// updated in place, so queries waiting in them follow).
    async fn reload(&self) -> Result<(), CatalogError> {
        let records = self.shared.store.workgroups().await?;
        let users = self.shared.store.users().await?;
        let mut registry = self.registry();
        let mut groups = HashMap::new();
        for record in records {
            let group = match registry.groups.remove(&record.name) {
                Some(group) => {
                    let mut state = group.lock();
                    state.record = record.clone();
                    state.admit_waiting();
                    drop(state);
                    group
                }
                None => Group::new(record.clone()),
            };
            groups.insert(record.name, group);
        }
        registry.groups = groups;
        registry.users = users
            .into_iter()
            .filter_map(|user| user.workgroup.map(|workgroup| (user.name, workgroup)))
            .collect();
        Ok(())
    }

    fn registry(&self) -> MutexGuard<'_, Registry> {
        self.shared
            .registry
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The default workgroup's name.
    pub fn default_name(&self) -> &str {
        &self.shared.default_name
    }

    /// Whether a workgroup called `name` exists.
    pub fn exists(&self, name: &str) -> bool {
        self.registry().groups.contains_key(name)
    }

    /// The name of the workgroup `user`'s queries run in.
    pub fn workgroup_of(&self, user: &str) -> String {
        self.group_of(user).lock().record.name.clone()
    }

    fn group_of(&self, user: &str) -> Arc<Group> {
        let registry = self.registry();
        let named = registry
            .users
            .get(user)
            .and_then(|name| registry.groups.get(name));
        match named.or_else(|| registry.groups.get(&self.shared.default_name)) {
            Some(group) => Arc::clone(group),
            // The default workgroup is made at start and cannot be dropped; should it be
            // missing anyway, queries run under the defaults rather than fail.
            None => Group::new(default_record(&self.shared.default_name, ManagedBy::Sql)),
        }
    }

    /// Takes a slot in `user`'s workgroup: at once if one is free and nobody waits, after the
    /// queries ahead in the queue otherwise (`on_queued` is called when the query starts to
    /// wait). A full queue refuses the query at once with [`QueryError::QueueFull`]. Dropping
    /// the future leaves the queue.
    pub async fn admit(&self, user: &str, on_queued: impl FnOnce()) -> Result<Slot, QueryError> {
        let group = self.group_of(user);
        let (id, admitted) = {
            let mut state = group.lock();
            if state.waiting.is_empty() && state.running < state.record.max_concurrent_queries {
                state.running += 1;
                let limits = WorkgroupLimits::of(&state.record);
                drop(state);
                return Ok(Slot { group, limits });
            }
            let record = &state.record;
            if state.waiting.len() as u64 >= record.max_queued_queries {
                return Err(QueryError::QueueFull(format!(
                    "workgroup {name} is at its limit: {running} queries running (at most {max}) \
                     and {queued} waiting (at most {max_queued}); the query was not run. Try \
                     again shortly, or ask an admin to raise the limits: ALTER WORKGROUP {name} \
                     SET (max_queued_queries = ...)",
                    name = record.name,
                    running = state.running,
                    max = record.max_concurrent_queries,
                    queued = state.waiting.len(),
                    max_queued = record.max_queued_queries,
                )));
            }
            let id = state.next_waiter;
            state.next_waiter += 1;
            let (admit, admitted) = oneshot::channel();
            state.waiting.push_back(Waiter { id, admit });
            (id, admitted)
        };
        on_queued();
        let mut queued = QueuedQuery {
            group: Arc::clone(&group),
            id,
            admitted,
            done: false,
        };
        let outcome = (&mut queued.admitted).await;
        queued.done = true;
        match outcome {
            Ok(()) => {
                let limits = WorkgroupLimits::of(&group.lock().record);
                Ok(Slot { group, limits })
            }
            // Senders are dropped only with the queue entry, which only this query removes.
            Err(_) => Err(QueryError::Execution(
                "the workgroup's queue was dropped while the query waited".to_string(),
            )),
        }
    }

    /// Every workgroup with its queue, by name.
    pub fn status(&self) -> Vec<WorkgroupStatus> {
        let groups: Vec<Arc<Group>> = self.registry().groups.values().cloned().collect();
        let mut status: Vec<WorkgroupStatus> = groups
            .iter()
            .map(|group| {
                let state = group.lock();
                WorkgroupStatus {
                    is_default: state.record.name == self.shared.default_name,
                    record: state.record.clone(),
                    running: state.running,
                    queued: state.waiting.len() as u64,
                }
            })
            .collect();
        status.sort_by(|a, b| a.record.name.cmp(&b.record.name));
        status
    }

    /// Puts `user`'s queries in `workgroup` (`None`: the default), in the catalog and here.
    pub async fn assign_user(&self, user: &str, workgroup: Option<&str>) -> Result<(), QueryError> {
        if let Some(name) = workgroup {
            self.require(name)?;
        }
        self.shared
            .store
            .set_user_workgroup(user, workgroup)
            .await
            .map_err(catalog)?;
        let mut registry = self.registry();
        match workgroup {
            Some(name) => registry.users.insert(user.to_string(), name.to_string()),
            None => registry.users.remove(user),
        };
        Ok(())
    }

    /// Forgets a dropped user's assignment.
    pub fn forget_user(&self, user: &str) {
        self.registry().users.remove(user);
    }

    /// An error unless workgroup `name` exists.
    pub fn require(&self, name: &str) -> Result<(), QueryError> {
        if self.exists(name) {
            Ok(())
        } else {
            Err(QueryError::InvalidStatement(format!(
                "workgroup {name} does not exist; SHOW WORKGROUPS lists them"
            )))
        }
    }

    fn record(&self, name: &str) -> Option<WorkgroupRecord> {
        let group = self.registry().groups.get(name).cloned()?;
        let record = group.lock().record.clone();
        Some(record)
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

fn check_name(name: &str) -> Result<(), String> {
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

fn check_limits(record: &WorkgroupRecord) -> Result<(), String> {
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

/// A workgroup setting in SQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkgroupSetting {
    /// `max_concurrent_queries`.
    MaxConcurrentQueries,
    /// `max_queued_queries`.
    MaxQueuedQueries,
    /// `query_timeout_secs`.
    QueryTimeoutSecs,
    /// `max_scan_bytes`.
    MaxScanBytes,
    /// `query_memory_bytes`.
    QueryMemoryBytes,
}

impl WorkgroupSetting {
    const ALL: [(&'static str, WorkgroupSetting); 5] = [
        (
            "max_concurrent_queries",
            WorkgroupSetting::MaxConcurrentQueries,
        ),
        ("max_queued_queries", WorkgroupSetting::MaxQueuedQueries),
        ("query_timeout_secs", WorkgroupSetting::QueryTimeoutSecs),
        ("max_scan_bytes", WorkgroupSetting::MaxScanBytes),
        ("query_memory_bytes", WorkgroupSetting::QueryMemoryBytes),
    ];

    fn parse(name: &str) -> Result<Self, QueryError> {
        Self::ALL
            .iter()
            .find(|(known, _)| known.eq_ignore_ascii_case(name))
            .map(|(_, setting)| *setting)
            .ok_or_else(|| {
                syntax(&format!(
                    "unknown workgroup setting {name}: use {}",
                    Self::ALL.map(|(known, _)| known).join(", ")
                ))
            })
    }

    /// Applies `value` to `record`.
    fn apply(self, record: &mut WorkgroupRecord, value: SettingValue) -> Result<(), QueryError> {
        let number = |what: &str| match value {
            SettingValue::Number(n) => Ok(n),
            SettingValue::Default | SettingValue::None => Err(syntax(&format!(
                "{what} takes a number (DEFAULT resets it)"
            ))),
        };
        match self {
            WorkgroupSetting::MaxConcurrentQueries => {
                record.max_concurrent_queries = match value {
                    SettingValue::Default => DEFAULT_MAX_CONCURRENT_QUERIES,
                    _ => number("max_concurrent_queries")?,
                }
            }
            WorkgroupSetting::MaxQueuedQueries => {
                record.max_queued_queries = match value {
                    SettingValue::Default => DEFAULT_MAX_QUEUED_QUERIES,
                    _ => number("max_queued_queries")?,
                }
            }
            WorkgroupSetting::QueryTimeoutSecs => {
                record.query_timeout_secs = match value {
                    SettingValue::Default => None,
                    SettingValue::None => Some(0),
                    SettingValue::Number(n) => Some(n),
                }
            }
            WorkgroupSetting::MaxScanBytes => {
                record.max_scan_bytes = match value {
                    SettingValue::Number(n) => Some(n),
                    _ => None,
                }
            }
            WorkgroupSetting::QueryMemoryBytes => {
                record.query_memory_bytes = match value {
                    SettingValue::Number(n) => Some(n),
                    _ => None,
                }
            }
        }
        Ok(())
    }
}

/// A value given to a workgroup setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingValue {
    /// `DEFAULT` (and `RESET`): the built-in default.
    Default,
    /// `NONE`: no limit.
    None,
    /// A number (sizes and durations already converted to bytes and seconds).
    Number(u64),
}

/// A parsed workgroup statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkgroupStatement {
    /// `CREATE WORKGROUP`.
    Create {
        /// Its name.
        name: String,
        /// `IF NOT EXISTS`.
        if_not_exists: bool,
        /// Settings other than the defaults.
        settings: Vec<(WorkgroupSetting, SettingValue)>,
    },
    /// `ALTER WORKGROUP ... SET (...)` or `RESET (...)`.
    Alter {
        /// Its name.
        name: String,
        /// `IF EXISTS`.
        if_exists: bool,
        /// The changes, in order.
        settings: Vec<(WorkgroupSetting, SettingValue)>,
    },
    /// `DROP WORKGROUP`.
    Drop {
        /// The workgroups dropped.
        names: Vec<String>,
        /// `IF EXISTS`.
        if_exists: bool,
    },
    /// `SHOW WORKGROUPS`.
    Show,
}

/// Recognises a workgroup statement: `None` if `sql` is something else, an error if it starts
/// like one but is malformed.
pub fn parse_workgroup_statement(
    tokens: &[Token],
) -> Result<Option<WorkgroupStatement>, QueryError> {
    let mut parser = Tokens::new(tokens);
    let statement = if parser.words(&["CREATE", "WORKGROUP"]) {
        let if_not_exists = parser.keywords(&[Keyword::IF, Keyword::NOT, Keyword::EXISTS]);
        let name = workgroup_name(&mut parser)?;
        let settings = if parser.keywords(&[Keyword::WITH]) {
            settings(&mut parser, true)?
        } else {
            Vec::new()
        };
        WorkgroupStatement::Create {
            name,
            if_not_exists,
            settings,
        }
    } else if parser.words(&["ALTER", "WORKGROUP"]) {
        let if_exists = parser.keywords(&[Keyword::IF, Keyword::EXISTS]);
        let name = workgroup_name(&mut parser)?;
        let settings = if parser.keywords(&[Keyword::SET]) {
            settings(&mut parser, true)?
        } else if parser.keywords(&[Keyword::RESET]) {
            settings(&mut parser, false)?
        } else {
            return Err(syntax(
                "ALTER WORKGROUP name SET (setting = value, ...) or RESET (setting, ...)",
            ));
        };
        WorkgroupStatement::Alter {
            name,
            if_exists,
            settings,
        }
    } else if parser.words(&["DROP", "WORKGROUP"]) {
        let if_exists = parser.keywords(&[Keyword::IF, Keyword::EXISTS]);
        let mut names = vec![workgroup_name(&mut parser)?];
        while parser.consume(&Token::Comma) {
            names.push(workgroup_name(&mut parser)?);
        }
        WorkgroupStatement::Drop { names, if_exists }
    } else if parser.words(&["SHOW", "WORKGROUPS"]) {
        WorkgroupStatement::Show
    } else {
        return Ok(None);
    };
    parser.end("a workgroup statement")?;
    Ok(Some(statement))
}

fn workgroup_name(parser: &mut Tokens<'_>) -> Result<String, QueryError> {
    let name = parser.identifier("a workgroup name")?;
    check_name(&name).map_err(|message| syntax(&message))?;
    Ok(name)
}

/// `(setting = value, ...)` when `with_values`, `(setting, ...)` (reset to defaults) otherwise.
fn settings(
    parser: &mut Tokens<'_>,
    with_values: bool,
) -> Result<Vec<(WorkgroupSetting, SettingValue)>, QueryError> {
    let shape = if with_values {
        "(setting = value, ...)"
    } else {
        "(setting, ...)"
    };
    if !parser.consume(&Token::LParen) {
        return Err(syntax(&format!("expected {shape}")));
    }
    let mut settings = Vec::new();
    loop {
        let setting = WorkgroupSetting::parse(&parser.identifier("a setting name")?)?;
        let value = if with_values {
            if !parser.consume(&Token::Eq) {
                return Err(syntax(&format!("expected {shape}")));
            }
            setting_value(parser, setting)?
        } else {
            SettingValue::Default
        };
        settings.push((setting, value));
        if parser.consume(&Token::RParen) {
            return Ok(settings);
        }
        if !parser.consume(&Token::Comma) {
            return Err(syntax(&format!("expected , or ) in {shape}")));
        }
    }
}

fn setting_value(
    parser: &mut Tokens<'_>,
    setting: WorkgroupSetting,
) -> Result<SettingValue, QueryError> {
    if parser.keywords(&[Keyword::DEFAULT]) {
        return Ok(SettingValue::Default);
    }
    if parser.keywords(&[Keyword::NONE]) || parser.keywords(&[Keyword::NULL]) {
        return Ok(SettingValue::None);
    }
    let text = parser.number().or_else(|| parser.string()).ok_or_else(|| {
        syntax("a workgroup setting takes a number, a quoted size or duration, DEFAULT or NONE")
    })?;
    let parsed = match setting {
        WorkgroupSetting::QueryTimeoutSecs => parse_seconds(&text),
        WorkgroupSetting::MaxScanBytes | WorkgroupSetting::QueryMemoryBytes => {
            parse_byte_size(&text)
        }
        WorkgroupSetting::MaxConcurrentQueries | WorkgroupSetting::MaxQueuedQueries => text
            .trim()
            .parse::<u64>()
            .map_err(|_| format!("{text:?} is not a whole number")),
    };
    parsed
        .map(SettingValue::Number)
        .map_err(|message| syntax(&message))
}

/// What a workgroup statement produced.
#[derive(Debug)]
pub enum WorkgroupStatementResult {
    /// The change is made.
    Done,
    /// `SHOW WORKGROUPS`: a plan over the listed workgroups.
    Listing(LogicalPlan),
}

/// Runs a workgroup statement; `is_admin` says whether the caller may change workgroups.
pub async fn execute_workgroup_statement(
    workgroups: &Workgroups,
    is_admin: bool,
    statement: WorkgroupStatement,
) -> Result<WorkgroupStatementResult, QueryError> {
    let store = &workgroups.shared.store;
    let require_admin = |what: &str| {
        if is_admin {
            Ok(())
        } else {
            Err(QueryError::PermissionDenied(format!(
                "{what} needs an admin; ask one to run it"
            )))
        }
    };
    match statement {
        WorkgroupStatement::Show => {
            return Ok(WorkgroupStatementResult::Listing(listing(
                &workgroups.status(),
            )?));
        }
        WorkgroupStatement::Create {
            name,
            if_not_exists,
            settings,
        } => {
            require_admin("CREATE WORKGROUP")?;
            if workgroups.exists(&name) {
                if if_not_exists {
                    return Ok(WorkgroupStatementResult::Done);
                }
                return Err(QueryError::InvalidStatement(format!(
                    "workgroup {name} already exists; ALTER WORKGROUP changes it"
                )));
            }
            let mut record = default_record(&name, ManagedBy::Sql);
            for (setting, value) in settings {
                setting.apply(&mut record, value)?;
            }
            check_limits(&record).map_err(QueryError::InvalidStatement)?;
            store.create_workgroup(&record).await.map_err(catalog)?;
            tracing::info!(workgroup = %name, "workgroup created");
        }
        WorkgroupStatement::Alter {
            name,
            if_exists,
            settings,
        } => {
            require_admin("ALTER WORKGROUP")?;
            let Some(mut record) = workgroups.record(&name) else {
                if if_exists {
                    return Ok(WorkgroupStatementResult::Done);
                }
                return Err(not_found(&name));
            };
            if record.managed_by == ManagedBy::Config {
                return Err(configured(&name));
            }
            for (setting, value) in settings {
                setting.apply(&mut record, value)?;
            }
            check_limits(&record).map_err(QueryError::InvalidStatement)?;
            store.update_workgroup(&record).await.map_err(catalog)?;
            tracing::info!(workgroup = %name, "workgroup changed");
        }
        WorkgroupStatement::Drop { names, if_exists } => {
            require_admin("DROP WORKGROUP")?;
            for name in names {
                let Some(record) = workgroups.record(&name) else {
                    if if_exists {
                        continue;
                    }
                    return Err(not_found(&name));
                };
                if name == workgroups.default_name() {
                    return Err(QueryError::InvalidStatement(format!(
                        "{name} is the default workgroup and cannot be dropped (the \
                         coordinator's default_workgroup names it)"
                    )));
                }
                if record.managed_by == ManagedBy::Config {
                    return Err(configured(&name));
                }
                store.drop_workgroup(&name).await.map_err(catalog)?;
                tracing::info!(workgroup = %name, "workgroup dropped; its users went to the default workgroup");
            }
        }
    }
    workgroups.reload().await.map_err(catalog)?;
    Ok(WorkgroupStatementResult::Done)
}

fn not_found(name: &str) -> QueryError {
    QueryError::InvalidStatement(format!(
        "workgroup {name} does not exist; SHOW WORKGROUPS lists them"
    ))
}

fn configured(name: &str) -> QueryError {
    QueryError::InvalidStatement(format!(
        "workgroup {name} is defined in the coordinator's configuration ([[workgroups]]): \
         change it there and restart"
    ))
}

fn catalog(err: CatalogError) -> QueryError {
    match err {
        CatalogError::AlreadyExists { .. } | CatalogError::NotFound { .. } => {
            QueryError::InvalidStatement(err.to_string())
        }
        other => QueryError::Execution(other.to_string()),
    }
}

/// The columns of `SHOW WORKGROUPS`.
pub fn listing_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("workgroup_name", DataType::Utf8, false),
        Field::new("is_default", DataType::Boolean, false),
        Field::new("max_concurrent_queries", DataType::UInt64, false),
        Field::new("max_queued_queries", DataType::UInt64, false),
        Field::new("query_timeout_secs", DataType::UInt64, true),
        Field::new("max_scan_bytes", DataType::UInt64, true),
        Field::new("query_memory_bytes", DataType::UInt64, true),
        Field::new("managed_by", DataType::Utf8, false),
        Field::new("running_queries", DataType::UInt64, false),
        Field::new("queued_queries", DataType::UInt64, false),
    ]))
}

/// `SHOW WORKGROUPS`: each workgroup's limits (NULL: none, or for the time limit the
/// coordinator's) and its queries running and waiting now.
fn listing(status: &[WorkgroupStatus]) -> Result<LogicalPlan, QueryError> {
    let schema = listing_schema();
    let numbers = |value: fn(&WorkgroupStatus) -> Option<u64>| {
        Arc::new(UInt64Array::from_iter(status.iter().map(value)))
    };
    listing_plan(
        "workgroups",
        schema,
        vec![
            Arc::new(StringArray::from_iter_values(
                status.iter().map(|s| &s.record.name),
            )),
            Arc::new(BooleanArray::from_iter(
                status.iter().map(|s| Some(s.is_default)),
            )),
            numbers(|s| Some(s.record.max_concurrent_queries)),
            numbers(|s| Some(s.record.max_queued_queries)),
            numbers(|s| s.record.query_timeout_secs),
            numbers(|s| s.record.max_scan_bytes),
            numbers(|s| s.record.query_memory_bytes),
            Arc::new(StringArray::from_iter_values(
                status.iter().map(|s| s.record.managed_by.as_str()),
            )),
            numbers(|s| Some(s.running)),
            numbers(|s| Some(s.queued)),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_accepted_forms() {
        let parse = |sql| {
            parse_workgroup_statement(&crate::parser::tokens_of(sql))
                .unwrap()
                .unwrap()
        };
        assert_eq!(
            parse(
                "create workgroup if not exists ETL with (max_concurrent_queries = 2, \
                 query_timeout_secs = '10m', max_scan_bytes = '1GiB', query_memory_bytes = NONE)"
            ),
            WorkgroupStatement::Create {
                name: "etl".into(),
                if_not_exists: true,
                settings: vec![
                    (
                        WorkgroupSetting::MaxConcurrentQueries,
                        SettingValue::Number(2)
                    ),
                    (
                        WorkgroupSetting::QueryTimeoutSecs,
                        SettingValue::Number(600)
                    ),
                    (
                        WorkgroupSetting::MaxScanBytes,
                        SettingValue::Number(1 << 30)
                    ),
                    (WorkgroupSetting::QueryMemoryBytes, SettingValue::None),
                ],
            }
        );
        assert_eq!(
            parse("ALTER WORKGROUP \"Etl\" RESET (max_scan_bytes);"),
            WorkgroupStatement::Alter {
                name: "Etl".into(),
                if_exists: false,
                settings: vec![(WorkgroupSetting::MaxScanBytes, SettingValue::Default)],
            }
        );
        assert_eq!(
            parse("drop workgroup if exists a, b"),
            WorkgroupStatement::Drop {
                names: vec!["a".into(), "b".into()],
                if_exists: true
            }
        );
        assert_eq!(parse("SHOW WORKGROUPS"), WorkgroupStatement::Show);
    }

    #[test]
    fn refuses_malformed_statements() {
        for sql in [
            "CREATE WORKGROUP",
            "CREATE WORKGROUP a WITH max_concurrent_queries = 1",
            "CREATE WORKGROUP a WITH (speed = 1)",
            "CREATE WORKGROUP a WITH (max_scan_bytes = 'lots')",
            "ALTER WORKGROUP a",
            "ALTER WORKGROUP a SET (max_concurrent_queries 1)",
            "DROP WORKGROUP a b",
        ] {
            assert!(
                parse_workgroup_statement(&crate::parser::tokens_of(sql)).is_err(),
                "{sql}"
            );
        }
        for sql in ["SELECT 1", "SHOW TABLES", "CREATE TABLE workgroup (a int)"] {
            assert!(
                parse_workgroup_statement(&crate::parser::tokens_of(sql))
                    .unwrap()
                    .is_none(),
                "{sql}"
            );
        }
    }

    fn group(max_concurrent: u64, max_queued: u64) -> Arc<Group> {
        let mut record = default_record("test", ManagedBy::Sql);
        record.max_concurrent_queries = max_concurrent;
        record.max_queued_queries = max_queued;
        Group::new(record)
    }

    #[tokio::test]
    async fn queues_are_fifo_bounded_and_leave_on_drop() {
        let store = CatalogStore::open("sqlite::memory:").await.unwrap();
        let workgroups = Workgroups {
            shared: Arc::new(Shared {
                store,
                default_name: "test".into(),
                registry: Mutex::new(Registry::default()),
            }),
        };
        let test_group = group(1, 2);
        workgroups
            .registry()
            .groups
            .insert("test".into(), Arc::clone(&test_group));
        let first = workgroups.admit("a", || {}).await.unwrap();
        let queued = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let waiter = |order: u64| {
            let workgroups = workgroups.clone();
            let queued = Arc::clone(&queued);
            tokio::spawn(async move {
                let slot = workgroups
                    .admit("a", || {
                        queued.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    })
                    .await
                    .unwrap();
                (order, slot)
            })
        };
        let second = waiter(2);
        while queued.load(std::sync::atomic::Ordering::SeqCst) < 1 {
            tokio::task::yield_now().await;
        }
        let third = waiter(3);
        while queued.load(std::sync::atomic::Ordering::SeqCst) < 2 {
            tokio::task::yield_now().await;
        }
        assert!(matches!(
            workgroups.admit("a", || {}).await,
            Err(QueryError::QueueFull(_))
        ));
        drop(first);
        let (order, slot) = second.await.unwrap();
        assert_eq!(order, 2);
        assert_eq!(test_group.lock().waiting.len(), 1);
        drop(slot);
        let (order, slot) = third.await.unwrap();
        assert_eq!(order, 3);
        // A waiter that goes away leaves the queue and takes no slot.
        let abandoned = waiter(4);
        while queued.load(std::sync::atomic::Ordering::SeqCst) < 3 {
            tokio::task::yield_now().await;
        }
        abandoned.abort();
        let _ = abandoned.await;
        assert_eq!(test_group.lock().waiting.len(), 0);
        drop(slot);
        assert_eq!(test_group.lock().running, 0);
    }
}

#[cfg(test)]
mod recognizer_example {
    use super::*;

    #[test]
    fn recognizes_its_statements_and_nothing_else() {
        let statement = parse_workgroup_statement(&crate::parser::tokens_of(
            "CREATE WORKGROUP etl WITH (max_concurrent_queries = 2, max_scan_bytes = '10GiB')",
        ))
        .unwrap()
        .unwrap();
        assert!(matches!(statement, WorkgroupStatement::Create { ref name, .. } if name == "etl"));
        assert!(
            parse_workgroup_statement(&crate::parser::tokens_of("SELECT 1"))
                .unwrap()
                .is_none()
        );
        assert!(parse_workgroup_statement(&crate::parser::tokens_of("DROP WORKGROUP")).is_err());
    }
}
