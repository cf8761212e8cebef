//! The query engine behind every front door: plans SQL against the shared catalog and runs it on
//! the executors.
//!
//! A statement goes through two steps, matching the Flight SQL flow:
//!
//! 1. [`QueryEngine::prepare`] parses and plans it. Statements with side effects on the catalog
//!    (DDL such as `CREATE EXTERNAL TABLE`, `CREATE VIEW`, `DROP TABLE`) run right here, exactly
//!    once, and leave an empty result. Queries are only planned.
//! 2. [`QueryEngine::execute`] runs a planned query on the executors and returns a stream; the
//!    coordinator never holds a whole result.

use crate::auth::Authenticator;
use crate::discovery::ExecutorRegistry;
pub use crate::error::QueryError;
use crate::history::{QueriesTable, QueryHistory, TrackedQuery};
use crate::lakehouse::Lakehouse;
use crate::lakehouse::ddl::name_parts;
use crate::lakehouse::unload::unload_format;
use crate::locations::{Access, Locations};
use crate::locations_sql::{
    LocationStatement, LocationStatementResult, execute_location_statement,
    parse_location_statement,
};
use crate::nesting::{
    MAX_PARSER_RECURSION, MAX_STATEMENT_DEPTH, TooDeeplyNested, check_nesting,
    is_parser_recursion_limit, token_nesting,
};
use crate::policy::{AllowAll, StatementPolicy};
use crate::query_runtime::{plan_on, stream_on};
use crate::retry::{QueryTimedOut, Rerun, RetryLog, RetryPolicy, retry_on_executor_loss};
use crate::session::SessionSettings;
use crate::statement_stats::StatementStats;
use crate::system_tables::{ExecutorsTable, SystemTable};
use crate::users::{
    self, UserStatement, UserStatementResult, execute_user_statement, parse_user_statement,
};
use crate::workgroups::{
    Slot, WorkgroupLimits, WorkgroupStatement, WorkgroupStatementResult, Workgroups,
    execute_workgroup_statement, parse_workgroup_statement,
};
use datafusion::arrow::array::{RecordBatch, StringArray, UInt64Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{MemorySchemaProvider, SchemaProvider, TableProvider};
use datafusion::common::TableReference;
use datafusion::common::metadata::ScalarAndMetadata;
use datafusion::common::{DataFusionError, ParamValues, ScalarValue};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::context::SessionState;
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::{DdlStatement, LogicalPlan, Statement, WriteOp};
use datafusion::physical_plan::memory::MemoryStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{ExecutionPlan, execute_stream};
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::sqlparser::ast;
use futures::StreamExt;
use osprey_engine::QueryProgress;
use osprey_engine::limit_query_memory;
use osprey_engine::{planned_scan_bytes, render_distributed_plan, with_metrics_collection};
use std::sync::Arc;
use tokio::runtime::Handle;

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
    fn ddl_done(kind: &'static str) -> Self {
        PreparedStatement::Done {
            schema: ddl_schema(),
            rows: 0,
            bytes_scanned: 0,
            kind,
        }
    }

    /// A write of `kind` that ran and wrote `rows`: one `count` row.
    fn done(kind: &'static str, rows: u64) -> Self {
        PreparedStatement::Done {
            schema: count_schema(),
            rows,
            bytes_scanned: 0,
            kind,
        }
    }
}

/// The result schema of DDL: no columns.
fn ddl_schema() -> SchemaRef {
    Arc::new(Schema::empty())
}

/// The result schema of a write: the rows it wrote, as `count`.
fn count_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new(
        "count",
        DataType::UInt64,
        false,
    )]))
}

/// A user statement's kind, as an update type.
fn user_statement_kind(statement: &UserStatement) -> &'static str {
    match statement {
        UserStatement::Create { .. } => "CREATE USER",
        UserStatement::Alter { .. } | UserStatement::RevokeTokens { .. } => "ALTER USER",
        UserStatement::Drop { .. } => "DROP USER",
        UserStatement::Show => "SHOW USERS",
    }
}

/// A workgroup statement's kind, as an update type.
fn workgroup_statement_kind(statement: &WorkgroupStatement) -> &'static str {
    match statement {
        WorkgroupStatement::Create { .. } => "CREATE WORKGROUP",
        WorkgroupStatement::Alter { .. } => "ALTER WORKGROUP",
        WorkgroupStatement::Drop { .. } => "DROP WORKGROUP",
        WorkgroupStatement::Show => "SHOW WORKGROUPS",
    }
}

/// A location statement's kind, as an update type.
fn location_statement_kind(statement: &LocationStatement) -> &'static str {
    match statement {
        LocationStatement::Create { .. } => "CREATE LOCATION",
        LocationStatement::Drop { .. } => "DROP LOCATION",
        LocationStatement::Show => "SHOW LOCATIONS",
    }
}

/// Plans and runs statements against the coordinator's catalog.
#[derive(Clone)]
/// What a [`QueryEngine`] is built from, besides the shared session.
pub struct EngineParts {
    /// Where statements are planned and run (see [`crate::query_runtime`]).
    pub query_runtime: tokio::runtime::Handle,
    /// The catalog.
    pub lakehouse: Lakehouse,
    /// The live executors.
    pub registry: ExecutorRegistry,
    /// The query history.
    pub history: QueryHistory,
    /// Users and tokens.
    pub auth: Authenticator,
    /// Admission control.
    pub workgroups: Workgroups,
    /// The locations users may reach.
    pub locations: Locations,
}

#[derive(Clone)]
pub struct QueryEngine {
    ctx: SessionContext,
    /// Where statements are planned and run, apart from the front doors' runtime.
    query_runtime: tokio::runtime::Handle,
    locations: Locations,
    lakehouse: Lakehouse,
    history: QueryHistory,
    auth: Authenticator,
    workgroups: Workgroups,
    registry: ExecutorRegistry,
    retry_policy: RetryPolicy,
    query_timeout: Option<std::time::Duration>,
    /// What each principal may run and see (see [`crate::policy`]).
    policy: Arc<dyn StatementPolicy>,
}

impl QueryEngine {
    /// Wraps a session whose state carries the distributed planner, installs the lakehouse
    /// catalog as its default catalog, and registers the `system` schema (with
    /// `system.executors` and `system.queries`) in it. Queries and writes are admitted through
    /// `workgroups`. Statements are planned and run on `query_runtime` (see
    /// [`crate::query_runtime`]).
    pub fn new(ctx: SessionContext, parts: EngineParts) -> Result<Self, QueryError> {
        let EngineParts {
            query_runtime,
            lakehouse,
            registry,
            history,
            auth,
            workgroups,
            locations,
        } = parts;
        let catalog = lakehouse.catalog_provider();
        ctx.register_catalog(lakehouse.catalog_name(), Arc::clone(&catalog));
        let system = MemorySchemaProvider::new();
        system.register_table(
            "executors".to_string(),
            Arc::new(SystemTable(ExecutorsTable::new(registry.clone()))) as Arc<dyn TableProvider>,
        )?;
        system.register_table(
            "queries".to_string(),
            Arc::new(SystemTable(QueriesTable::new(history.clone()))) as Arc<dyn TableProvider>,
        )?;
        catalog.register_schema("system", Arc::new(system))?;
        Ok(Self {
            ctx,
            query_runtime,
            locations,
            lakehouse,
            history,
            auth,
            workgroups,
            registry,
            retry_policy: RetryPolicy::default(),
            query_timeout: None,
            policy: Arc::new(AllowAll),
        })
    }

    /// How long a query may run (from when its result starts) before it is stopped; `None`
    /// for no limit.
    pub fn with_query_timeout(mut self, limit: Option<std::time::Duration>) -> Self {
        self.query_timeout = limit;
        self
    }

    /// How often a query may run when executors are lost (see [`crate::retry`]).
    pub fn with_retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry_policy = policy;
        self
    }

    /// The policy every statement's plan passes (see [`crate::policy`]); [`AllowAll`] until
    /// one is set.
    pub fn with_policy(mut self, policy: Arc<dyn StatementPolicy>) -> Self {
        self.policy = policy;
        self
    }

    /// The plan to run for `session`'s principal, as the policy decides.
    fn check_plan(
        &self,
        session: &SessionSettings,
        plan: LogicalPlan,
    ) -> Result<LogicalPlan, QueryError> {
        self.policy.check_plan(session.principal.as_ref(), plan)
    }

    /// The session shared by every query (its catalog holds every registered table).
    pub fn session(&self) -> &SessionContext {
        &self.ctx
    }

    /// The lakehouse catalog.
    pub fn lakehouse(&self) -> &Lakehouse {
        &self.lakehouse
    }

    /// The query history.
    pub fn history(&self) -> &QueryHistory {
        &self.history
    }

    /// The users and their tokens.
    pub fn auth(&self) -> &Authenticator {
        &self.auth
    }

    /// The workgroups queries are admitted through.
    pub fn workgroups(&self) -> &Workgroups {
        &self.workgroups
    }

    /// Takes a slot in the workgroup of `session`'s user (the default workgroup without one),
    /// telling `tracked` when the statement waits and when it is admitted.
    async fn admit(
        &self,
        session: &SessionSettings,
        tracked: Option<&TrackedQuery>,
    ) -> Result<Slot, QueryError> {
        let user = session.principal.as_ref().map_or("", |p| p.user.as_str());
        let waiting_since = std::time::Instant::now();
        let slot = self
            .workgroups
            .admit(user, || {
                if let Some(tracked) = tracked {
                    tracked.queued();
                }
            })
            .await?;
        if let Some(tracked) = tracked {
            tracked.admitted(&slot.limits().workgroup, waiting_since.elapsed());
        }
        Ok(slot)
    }

    /// How long a query admitted with `limits` may run (its workgroup's time limit, or the
    /// coordinator's), as the error it gets past it.
    fn time_limit(&self, limits: &WorkgroupLimits) -> Option<QueryTimedOut> {
        let limit = match limits.query_timeout_secs {
            None => self.query_timeout?,
            Some(0) => return None,
            Some(secs) => std::time::Duration::from_secs(secs),
        };
        Some(QueryTimedOut {
            limit,
            // Named only when the workgroup set the limit, so the advice points at it.
            workgroup: limits.query_timeout_secs.map(|_| limits.workgroup.clone()),
        })
    }

    /// Admits a write (INSERT, CTAS, UNLOAD) planned in `state`: takes its workgroup slot,
    /// applies the memory limit to `state` and arms the scan limit.
    async fn admit_write(
        &self,
        state: &mut SessionState,
        session: &SessionSettings,
    ) -> Result<Slot, QueryError> {
        let stats = state.config().get_extension::<StatementStats>();
        let tracked = stats.as_ref().and_then(|stats| stats.tracked());
        let slot = self.admit(session, tracked.as_ref()).await?;
        if let Some(stats) = &stats {
            stats.set_limits(slot.limits());
        }
        if let Some(bytes) = slot.limits().query_memory_bytes {
            limit_query_memory(state, bytes)?;
        }
        Ok(slot)
    }

    /// Runs a write admitted with `slot` within its time limit. Past the limit the write is
    /// dropped, which deletes what it staged.
    async fn within_time_limit<T>(
        &self,
        slot: &Slot,
        write: impl std::future::Future<Output = Result<T, QueryError>>,
    ) -> Result<T, QueryError> {
        match self.time_limit(slot.limits()) {
            Some(timed_out) => tokio::time::timeout(timed_out.limit, write)
                .await
                .map_err(|_| QueryError::TimedOut(timed_out.to_string()))?,
            None => write.await,
        }
    }

    /// Parses and plans one SQL statement. DDL and writes (INSERT, CTAS, UNLOAD) run now,
    /// exactly once.
    pub async fn prepare(&self, sql: &str) -> Result<PreparedStatement, QueryError> {
        self.prepare_with(&mut SessionSettings::default(), sql)
            .await
    }

    /// [`QueryEngine::prepare`] in a client session: names resolve against its current schema,
    /// its `SET` options apply, and `USE`, `SET` and `RESET` change `session`.
    pub async fn prepare_with(
        &self,
        session: &mut SessionSettings,
        sql: &str,
    ) -> Result<PreparedStatement, QueryError> {
        self.prepare_bound(session, sql, None, None).await
    }

    /// [`QueryEngine::prepare_with`], with values for the statement's placeholders (`$1`, `$2`,
    /// ... or `?` in order). A write waiting for its workgroup's slot tells `tracked`.
    pub async fn prepare_bound(
        &self,
        session: &mut SessionSettings,
        sql: &str,
        parameters: Option<Vec<ScalarValue>>,
        tracked: Option<&TrackedQuery>,
    ) -> Result<PreparedStatement, QueryError> {
        let engine = self.clone();
        let mut settings = session.clone();
        let sql = sql.to_string();
        let tracked = tracked.cloned();
        let (prepared, settings) = plan_on(&self.query_runtime, async move {
            let prepared = engine
                .prepare_here(&mut settings, &sql, parameters, tracked.as_ref())
                .await;
            Ok((prepared, settings))
        })
        .await?;
        *session = settings;
        prepared
    }

    /// [`QueryEngine::prepare_bound`] on the runtime it is called on.
    async fn prepare_here(
        &self,
        session: &mut SessionSettings,
        sql: &str,
        parameters: Option<Vec<ScalarValue>>,
        tracked: Option<&TrackedQuery>,
    ) -> Result<PreparedStatement, QueryError> {
        let mut state = self.state_for(session)?;
        let stats = Arc::new(StatementStats::new(tracked.cloned()));
        state.config_mut().set_extension(Arc::clone(&stats));
        let mut prepared = self.prepare_in(state, session, sql, parameters).await?;
        if let PreparedStatement::Done { bytes_scanned, .. } = &mut prepared {
            *bytes_scanned = stats.bytes_scanned();
        }
        Ok(prepared)
    }

    /// The catalogs as `session` sees them (see [`crate::statement::StatementService::catalogs`]).
    pub(crate) fn catalogs_for(
        &self,
        session: &SessionSettings,
    ) -> Result<Arc<dyn datafusion::catalog::CatalogProviderList>, QueryError> {
        Ok(Arc::clone(self.state_for(session)?.catalog_list()))
    }

    /// The shared state with a session's settings applied, seeing the catalogs the policy
    /// shows the session's principal.
    fn state_for(&self, session: &SessionSettings) -> Result<SessionState, QueryError> {
        let mut state = self.ctx.state();
        session.apply(&mut state)?;
        let catalogs = Arc::clone(state.catalog_list());
        let visible = self
            .policy
            .visible_catalogs(session.principal.as_ref(), Arc::clone(&catalogs));
        if !Arc::ptr_eq(&catalogs, &visible) {
            state = datafusion::execution::SessionStateBuilder::new_from_existing(state)
                .with_catalog_list(visible)
                .build();
        }
        Ok(state)
    }

    async fn prepare_in(
        &self,
        mut state: SessionState,
        session: &mut SessionSettings,
        sql: &str,
        parameters: Option<Vec<ScalarValue>>,
    ) -> Result<PreparedStatement, QueryError> {
        if let Some(statement) = parse_user_statement(sql)? {
            let principal = session.principal.as_ref();
            let kind = user_statement_kind(&statement);
            return Ok(
                match execute_user_statement(&self.auth, &self.workgroups, principal, statement)
                    .await?
                {
                    UserStatementResult::Done => PreparedStatement::ddl_done(kind),
                    UserStatementResult::Listing(plan) => PreparedStatement::Listing(plan),
                },
            );
        }
        if let Some(statement) = parse_workgroup_statement(sql)? {
            let is_admin = session.principal.as_ref().is_none_or(|p| p.is_admin);
            let kind = workgroup_statement_kind(&statement);
            return Ok(
                match execute_workgroup_statement(&self.workgroups, is_admin, statement).await? {
                    WorkgroupStatementResult::Done => PreparedStatement::ddl_done(kind),
                    WorkgroupStatementResult::Listing(plan) => PreparedStatement::Listing(plan),
                },
            );
        }
        if let Some(statement) = parse_location_statement(sql)? {
            let principal = session.principal.as_ref();
            let kind = location_statement_kind(&statement);
            return Ok(
                match execute_location_statement(&self.locations, principal, statement).await? {
                    LocationStatementResult::Done => PreparedStatement::ddl_done(kind),
                    LocationStatementResult::Listing(plan) => PreparedStatement::Listing(plan),
                },
            );
        }
        let statement = parse(&state, sql)?;
        if let DFStatement::Statement(ast_statement) = &statement
            && let ast::Statement::Use(target) = ast_statement.as_ref()
        {
            self.use_schema(session, target)?;
            return Ok(PreparedStatement::ddl_done("USE"));
        }
        if let Some(prepared) = self
            .run_catalog_statement(&mut state, session, &statement)
            .await?
        {
            return Ok(prepared);
        }
        let ast_statement = match &statement {
            DFStatement::Statement(s) => Some(s.as_ref()),
            _ => None,
        };
        let create_has_query = matches!(
            ast_statement,
            Some(ast::Statement::CreateTable(c)) if c.query.is_some()
        );
        // A view stores its query (re-printed from the parsed statement); a column list
        // becomes the query's derived column names.
        let view_query = match ast_statement {
            Some(ast::Statement::CreateView(view)) if view.columns.is_empty() => {
                Some(view.query.to_string())
            }
            Some(ast::Statement::CreateView(view)) => {
                let columns: Vec<String> =
                    view.columns.iter().map(|c| c.name.to_string()).collect();
                Some(format!(
                    "SELECT * FROM ({}) AS view_query ({})",
                    view.query,
                    columns.join(", ")
                ))
            }
            _ => None,
        };
        let plan = state.statement_to_plan(statement).await?;
        let plan = match parameters {
            Some(values) => plan.with_param_values(ParamValues::List(
                values.into_iter().map(ScalarAndMetadata::from).collect(),
            ))?,
            None => {
                let placeholders = plan.get_parameter_fields()?;
                if !placeholders.is_empty() {
                    let mut names: Vec<&String> = placeholders.keys().collect();
                    names.sort();
                    return Err(QueryError::InvalidStatement(format!(
                        "the statement has placeholders ({}) but no parameter values: bind \
                         them through the driver (a prepared statement with parameters)",
                        names
                            .iter()
                            .map(|n| n.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                }
                plan
            }
        };
        let plan = self.check_plan(session, plan)?;
        match &plan {
            LogicalPlan::Statement(Statement::SetVariable(set)) => {
                session.set(self.ctx.state().config_options(), &set.variable, &set.value)?;
                return Ok(PreparedStatement::ddl_done("SET SESSION"));
            }
            LogicalPlan::Statement(Statement::ResetVariable(reset)) => {
                session.reset(&reset.variable);
                return Ok(PreparedStatement::ddl_done("RESET SESSION"));
            }
            _ => {}
        }
        refuse_session_statements(&plan)?;
        let lakehouse = &self.lakehouse;
        match plan {
            LogicalPlan::Ddl(DdlStatement::CreateExternalTable(cmd)) => {
                for location in &cmd.locations {
                    self.locations
                        .check(session.principal.as_ref(), location, Access::Read)?;
                }
                lakehouse.create_external_table(&state, &cmd).await?;
                Ok(PreparedStatement::ddl_done("CREATE TABLE"))
            }
            LogicalPlan::Ddl(DdlStatement::CreateMemoryTable(cmd)) => {
                if cmd.temporary {
                    return Err(QueryError::NotSupported("TEMPORARY tables".to_string()));
                }
                let schema = cmd.input.schema().as_arrow().clone();
                let input = create_has_query.then(|| cmd.input.as_ref().clone());
                let slot = match create_has_query {
                    true => Some(self.admit_write(&mut state, session).await?),
                    false => None,
                };
                let create = async {
                    lakehouse
                        .create_managed_table(
                            &state,
                            &cmd.name,
                            input,
                            &schema,
                            cmd.if_not_exists,
                            cmd.or_replace,
                        )
                        .await
                };
                let rows = match &slot {
                    Some(slot) => self.within_time_limit(slot, create).await?,
                    None => create.await?,
                };
                Ok(if create_has_query {
                    PreparedStatement::done("CREATE TABLE", rows)
                } else {
                    PreparedStatement::ddl_done("CREATE TABLE")
                })
            }
            LogicalPlan::Ddl(DdlStatement::CreateView(cmd)) => {
                if cmd.temporary {
                    return Err(QueryError::NotSupported("TEMPORARY views".to_string()));
                }
                let view_sql = view_query.unwrap_or_else(|| sql.to_string());
                lakehouse
                    .create_view(&state, &cmd.name, &cmd.input, &view_sql, cmd.or_replace)
                    .await?;
                Ok(PreparedStatement::ddl_done("CREATE VIEW"))
            }
            LogicalPlan::Ddl(DdlStatement::DropTable(cmd)) => {
                lakehouse
                    .drop_relation(&state, &cmd.name, cmd.if_exists, false)
                    .await?;
                Ok(PreparedStatement::ddl_done("DROP TABLE"))
            }
            LogicalPlan::Ddl(DdlStatement::DropView(cmd)) => {
                lakehouse
                    .drop_relation(&state, &cmd.name, cmd.if_exists, true)
                    .await?;
                Ok(PreparedStatement::ddl_done("DROP VIEW"))
            }
            LogicalPlan::Ddl(other) => Err(QueryError::NotSupported(format!(
                "{}: Osprey does not support this statement",
                other.name()
            ))),
            LogicalPlan::Dml(dml) => match dml.op {
                WriteOp::Insert(InsertOp::Append) => {
                    let slot = self.admit_write(&mut state, session).await?;
                    let insert = async {
                        lakehouse
                            .insert(&state, &dml.table_name, dml.input.as_ref().clone())
                            .await
                    };
                    let rows = self.within_time_limit(&slot, insert).await?;
                    Ok(PreparedStatement::done("INSERT", rows))
                }
                other => Err(QueryError::NotSupported(format!(
                    "{other}: managed tables take INSERT INTO ... SELECT / VALUES; \
                     to rewrite a table use CREATE OR REPLACE TABLE ... AS SELECT"
                ))),
            },
            LogicalPlan::Copy(_) => Err(QueryError::NotSupported(
                "COPY: export query results with UNLOAD (SELECT ...) TO 'location' WITH (format = 'PARQUET')"
                    .to_string(),
            )),
            plan => Ok(PreparedStatement::Query(plan)),
        }
    }

    /// Statements DataFusion does not plan, handled on the AST: schemas, renames, SHOW SCHEMAS.
    async fn run_catalog_statement(
        &self,
        state: &mut SessionState,
        session: &SessionSettings,
        statement: &DFStatement,
    ) -> Result<Option<PreparedStatement>, QueryError> {
        let DFStatement::Statement(statement) = statement else {
            return Ok(None);
        };
        let lakehouse = &self.lakehouse;
        match statement.as_ref() {
            ast::Statement::CreateSchema {
                schema_name,
                if_not_exists,
                ..
            } => {
                let ast::SchemaName::Simple(name) = schema_name else {
                    return Err(QueryError::NotSupported(
                        "CREATE SCHEMA ... AUTHORIZATION".to_string(),
                    ));
                };
                let schema = lakehouse.resolve_schema(&name_parts(name))?;
                lakehouse.create_schema(&schema, *if_not_exists).await?;
                Ok(Some(PreparedStatement::ddl_done("CREATE SCHEMA")))
            }
            ast::Statement::CreateDatabase {
                db_name,
                if_not_exists,
                ..
            } => {
                let schema = lakehouse.resolve_schema(&name_parts(db_name))?;
                lakehouse.create_schema(&schema, *if_not_exists).await?;
                Ok(Some(PreparedStatement::ddl_done("CREATE SCHEMA")))
            }
            ast::Statement::Drop {
                object_type: ast::ObjectType::Schema | ast::ObjectType::Database,
                if_exists,
                names,
                cascade,
                ..
            } => {
                for name in names {
                    let schema = lakehouse.resolve_schema(&name_parts(name))?;
                    let dropped = lakehouse.drop_schema(&schema, *if_exists, *cascade).await?;
                    for entry in dropped {
                        lakehouse.delete_managed_data(state, &entry).await;
                    }
                }
                Ok(Some(PreparedStatement::ddl_done("DROP SCHEMA")))
            }
            ast::Statement::AlterTable(alter) => {
                let [ast::AlterTableOperation::RenameTable { table_name }] =
                    alter.operations.as_slice()
                else {
                    return Err(QueryError::NotSupported(
                        "ALTER TABLE supports RENAME TO only".to_string(),
                    ));
                };
                let new_name = match table_name {
                    ast::RenameTableNameKind::As(name) | ast::RenameTableNameKind::To(name) => name,
                };
                let from = lakehouse.resolve(&table_reference(&alter.name)?, state)?;
                let mut to_parts = name_parts(new_name);
                // An unqualified new name stays in the table's schema.
                if to_parts.len() == 1 {
                    to_parts.insert(0, from.schema.to_string());
                }
                let to = lakehouse.resolve(&table_reference_from_parts(&to_parts)?, state)?;
                if lakehouse.table(&from.schema, &from.table).is_none() {
                    if alter.if_exists {
                        return Ok(Some(PreparedStatement::ddl_done("RENAME TABLE")));
                    }
                    return Err(QueryError::InvalidStatement(format!(
                        "table {from} does not exist"
                    )));
                }
                lakehouse
                    .rename_table((&from.schema, &from.table), (&to.schema, &to.table))
                    .await?;
                Ok(Some(PreparedStatement::ddl_done("RENAME TABLE")))
            }
            ast::Statement::Unload {
                query,
                query_text,
                to,
                auth,
                with,
                options,
            } => {
                if auth.is_some() || !options.is_empty() {
                    return Err(QueryError::NotSupported(
                        "UNLOAD with IAM_ROLE or Redshift-style options: write UNLOAD (SELECT ...) \
                         TO 'location' WITH (format = 'PARQUET'); credentials come from the \
                         storage configuration"
                            .to_string(),
                    ));
                }
                let format = unload_format(with)?;
                self.locations
                    .check(session.principal.as_ref(), &to.value, Access::Write)?;
                // Redshift's string form, UNLOAD ('SELECT ...'), is parsed here; either way
                // only a query is accepted.
                let parsed;
                let query = match (query, query_text) {
                    (Some(query), _) => query,
                    (None, Some(text)) => {
                        parsed = parse_bounded(state, text)?;
                        match &parsed {
                            DFStatement::Statement(s) => match s.as_ref() {
                                ast::Statement::Query(query) => query,
                                _ => return Err(unload_needs_query()),
                            },
                            _ => return Err(unload_needs_query()),
                        }
                    }
                    (None, None) => return Err(unload_needs_query()),
                };
                let statement = ast::Statement::Query(query.clone());
                let input = state
                    .statement_to_plan(DFStatement::Statement(Box::new(statement)))
                    .await?;
                let input = self.check_plan(session, input)?;
                let slot = self.admit_write(state, session).await?;
                let state = &*state;
                let unload = async { lakehouse.unload(state, input, &to.value, format).await };
                let unloaded = self.within_time_limit(&slot, unload).await?;
                tracing::info!(rows = unloaded.rows, files = unloaded.files, manifest = %unloaded.manifest, "unloaded");
                Ok(Some(PreparedStatement::done("UNLOAD", unloaded.rows)))
            }
            ast::Statement::ShowSchemas { .. } | ast::Statement::ShowDatabases { .. } => {
                let sql = format!(
                    "SELECT schema_name FROM information_schema.schemata WHERE catalog_name = '{}' \
                     ORDER BY schema_name",
                    lakehouse.catalog_name().replace('\'', "''")
                );
                let plan = state.create_logical_plan(&sql).await?;
                Ok(Some(PreparedStatement::Listing(plan)))
            }
            _ => Ok(None),
        }
    }

    /// `USE [SCHEMA|DATABASE] [catalog.]schema` and `USE CATALOG catalog`: changes the
    /// session's current schema (or catalog), which must exist.
    fn use_schema(
        &self,
        session: &mut SessionSettings,
        target: &ast::Use,
    ) -> Result<(), QueryError> {
        match target {
            ast::Use::Object(name) | ast::Use::Schema(name) | ast::Use::Database(name) => {
                match name_parts(name).as_slice() {
                    [schema] => self.switch_schema(session, None, schema),
                    [catalog, schema] => self.switch_schema(session, Some(catalog), schema),
                    _ => Err(QueryError::InvalidStatement(format!(
                        "USE {name}: name a schema, as USE schema or USE catalog.schema"
                    ))),
                }
            }
            ast::Use::Catalog(name) => self.switch_catalog(session, &name_parts(name).join(".")),
            ast::Use::Default => {
                session.catalog = None;
                session.schema = None;
                Ok(())
            }
            other => Err(QueryError::NotSupported(format!(
                "{other}: Osprey switches schemas and catalogs only"
            ))),
        }
    }

    /// Makes `[catalog.]schema` the session's current schema; it must exist.
    pub fn switch_schema(
        &self,
        session: &mut SessionSettings,
        catalog: Option<&str>,
        schema: &str,
    ) -> Result<(), QueryError> {
        if let Some(catalog) = catalog {
            self.check_catalog(catalog)?;
        }
        if !self.lakehouse.schema_exists(schema) {
            return Err(QueryError::InvalidStatement(format!(
                "schema {schema} does not exist: SHOW SCHEMAS lists them, CREATE SCHEMA {schema} \
                 makes it"
            )));
        }
        session.catalog = catalog.map(str::to_string);
        session.schema = Some(schema.to_string());
        Ok(())
    }

    /// Makes `catalog` the session's current catalog; it must exist.
    pub fn switch_catalog(
        &self,
        session: &mut SessionSettings,
        catalog: &str,
    ) -> Result<(), QueryError> {
        self.check_catalog(catalog)?;
        session.catalog = Some(catalog.to_string());
        Ok(())
    }

    fn check_catalog(&self, catalog: &str) -> Result<(), QueryError> {
        if catalog != self.lakehouse.catalog_name() {
            return Err(QueryError::InvalidStatement(format!(
                "catalog {catalog} does not exist (the catalog is {})",
                self.lakehouse.catalog_name()
            )));
        }
        Ok(())
    }

    /// The current catalog and schema of `session`.
    pub fn current_schema(&self, session: &SessionSettings) -> (String, String) {
        let defaults = &self.ctx.state().config_options().catalog.clone();
        (
            session
                .catalog
                .clone()
                .unwrap_or_else(|| defaults.default_catalog.clone()),
            session
                .schema
                .clone()
                .unwrap_or_else(|| defaults.default_schema.clone()),
        )
    }

    /// The schema of the statement's result, without running anything.
    pub async fn describe(
        &self,
        session: &SessionSettings,
        sql: &str,
    ) -> Result<Description, QueryError> {
        let engine = self.clone();
        let session = session.clone();
        let sql = sql.to_string();
        plan_on(&self.query_runtime, async move {
            engine.describe_here(&session, &sql).await
        })
        .await
    }

    /// [`QueryEngine::describe`] on the runtime it is called on.
    async fn describe_here(
        &self,
        session: &SessionSettings,
        sql: &str,
    ) -> Result<Description, QueryError> {
        let state = self.state_for(session)?;
        let no_parameters = Arc::new(Schema::empty());
        if let Some(statement) = parse_user_statement(sql)? {
            return Ok(Description {
                schema: match statement {
                    UserStatement::Show => users::listing_schema(),
                    _ => ddl_schema(),
                },
                parameters: no_parameters,
            });
        }
        if let Some(statement) = parse_workgroup_statement(sql)? {
            return Ok(Description {
                schema: match statement {
                    WorkgroupStatement::Show => crate::workgroups::listing_schema(),
                    _ => ddl_schema(),
                },
                parameters: no_parameters,
            });
        }
        if let Some(statement) = parse_location_statement(sql)? {
            return Ok(Description {
                schema: match statement {
                    LocationStatement::Show => crate::locations_sql::listing_schema(),
                    _ => ddl_schema(),
                },
                parameters: no_parameters,
            });
        }
        let statement = parse(&state, sql)?;
        // Statements Osprey runs itself, which DataFusion cannot plan.
        if let DFStatement::Statement(ast_statement) = &statement {
            let schema = match ast_statement.as_ref() {
                ast::Statement::Use(_) => Some(ddl_schema()),
                ast::Statement::Unload { .. } => Some(count_schema()),
                _ => None,
            };
            if let Some(schema) = schema {
                return Ok(Description {
                    schema,
                    parameters: no_parameters,
                });
            }
        }
        let plan = state.statement_to_plan(statement).await?;
        let plan = self.check_plan(session, plan)?;
        let mut fields: Vec<(usize, Field)> = Vec::new();
        for (name, field) in plan.get_parameter_fields()? {
            let position = name
                .strip_prefix('$')
                .and_then(|n| n.parse::<usize>().ok())
                .ok_or_else(|| {
                    QueryError::InvalidStatement(format!(
                        "placeholder {name}: use $1, $2, ... or ?"
                    ))
                })?;
            let data_type = field.map_or(DataType::Null, |f| f.data_type().clone());
            fields.push((position, Field::new(name, data_type, true)));
        }
        fields.sort_by_key(|(position, _)| *position);
        Ok(Description {
            schema: Arc::new(plan.schema().as_arrow().clone()),
            parameters: Arc::new(Schema::new(
                fields.into_iter().map(|(_, f)| f).collect::<Vec<_>>(),
            )),
        })
    }

    /// Runs a prepared statement and streams its result. A query first takes a slot in its
    /// workgroup (waiting in its queue if need be, which `tracked` is told), runs within the
    /// workgroup's limits, and gives the slot back when its stream ends or is dropped.
    ///
    /// Waiting for the slot costs the calling runtime nothing; planning and the stream run on
    /// the query runtime (one trip there and back), and the returned stream forwards batches
    /// from there. Dropping it stops the query.
    pub async fn execute(
        &self,
        session: &SessionSettings,
        statement: PreparedStatement,
        tracked: Option<&TrackedQuery>,
    ) -> Result<Execution, QueryError> {
        let plan = match statement {
            PreparedStatement::Done {
                schema,
                rows,
                bytes_scanned,
                ..
            } => return done_execution(schema, rows, bytes_scanned),
            PreparedStatement::Listing(plan) => {
                let state = self.state_for(session)?;
                let stream = plan_on(&self.query_runtime, async move {
                    let physical = state.create_physical_plan(&plan).await?;
                    let stream = execute_stream(physical, state.task_ctx())?;
                    Ok(stream_on(&Handle::current(), stream, None, None))
                })
                .await?;
                return Ok(Execution {
                    stream,
                    bytes_scanned: 0,
                    completed_rows: None,
                    progress: None,
                    retries: Arc::default(),
                });
            }
            PreparedStatement::Query(plan) => plan,
        };
        let mut state = self.state_for(session)?;
        match &plan {
            LogicalPlan::Explain(explain) => {
                let explain = explain.clone();
                return Ok(Execution {
                    stream: plan_on(&self.query_runtime, explain_distributed(state, explain))
                        .await?,
                    bytes_scanned: 0,
                    completed_rows: None,
                    progress: None,
                    retries: Arc::default(),
                });
            }
            LogicalPlan::Analyze(_) => with_metrics_collection(&mut state, true)?,
            _ => {}
        }
        let slot = self.admit(session, tracked).await?;
        if let Some(bytes) = slot.limits().query_memory_bytes {
            limit_query_memory(&mut state, bytes)?;
        }
        let progress = QueryProgress::attach(state.config_mut());
        let time_limit = self.time_limit(slot.limits());
        let registry = self.registry.clone();
        let policy = self.retry_policy;
        let record = tracked.cloned();
        let running = Arc::clone(&progress);
        // Planning, starting the plan and driving its stream all happen on the query runtime,
        // in one trip: every hop between runtimes costs a thread wake-up on the way to the
        // first row.
        let (stream, bytes_scanned, retries) = plan_on(&self.query_runtime, async move {
            let physical = state.create_physical_plan(&plan).await?;
            let bytes_scanned = planned_scan_bytes(physical.as_ref());
            slot.limits().check_scan(bytes_scanned)?;
            running.set_plan(&physical);
            let first = execute_stream(physical, state.task_ctx())?;
            let retries = Arc::new(RetryLog::default());
            let stream = if matches!(plan, LogicalPlan::Analyze(_)) {
                // EXPLAIN ANALYZE reports on the one run it watched.
                first
            } else {
                retry_on_executor_loss(
                    first,
                    Rerun {
                        state,
                        plan,
                        progress: running,
                        registry,
                        policy,
                        log: Arc::clone(&retries),
                    },
                )
            };
            let stream = stream_on(
                &Handle::current(),
                holding_slot(stream, slot),
                time_limit,
                record,
            );
            Ok((stream, bytes_scanned, retries))
        })
        .await?;
        Ok(Execution {
            stream,
            bytes_scanned,
            completed_rows: None,
            progress: Some(progress),
            retries,
        })
    }
}

/// The result of a statement that already ran while it was prepared: its row count, as one
/// `count` row (none for DDL, whose schema is empty).
fn done_execution(
    schema: SchemaRef,
    rows: u64,
    bytes_scanned: u64,
) -> Result<Execution, QueryError> {
    let batches = if schema.fields().is_empty() {
        vec![]
    } else {
        vec![
            RecordBatch::try_new(
                Arc::clone(&schema),
                vec![Arc::new(UInt64Array::from(vec![rows]))],
            )
            .map_err(DataFusionError::from)?,
        ]
    };
    Ok(Execution {
        stream: Box::pin(MemoryStream::try_new(batches, schema, None)?),
        bytes_scanned,
        completed_rows: Some(rows),
        progress: None,
        retries: Arc::default(),
    })
}

/// EXPLAIN: the logical plan, and the physical plan split into stages and tasks.
async fn explain_distributed(
    state: SessionState,
    explain: datafusion::logical_expr::Explain,
) -> Result<SendableRecordBatchStream, QueryError> {
    let optimized = state.optimize(&explain.plan)?;
    // Plan the already-optimized plan directly rather than optimizing it a second time.
    let physical: Arc<dyn ExecutionPlan> = state
        .query_planner()
        .create_physical_plan(&optimized, &state)
        .await?;
    let logical = optimized.display_indent().to_string();
    let distributed = render_distributed_plan(physical.as_ref(), false);
    let schema = Arc::new(Schema::new(vec![
        Field::new("plan_type", DataType::Utf8, false),
        Field::new("plan", DataType::Utf8, false),
    ]));
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![
            Arc::new(StringArray::from(vec!["logical_plan", "distributed_plan"])),
            Arc::new(StringArray::from(vec![logical, distributed])),
        ],
    )
    .map_err(DataFusionError::from)?;
    Ok(Box::pin(MemoryStream::try_new(vec![batch], schema, None)?))
}

/// `stream`, giving the workgroup `slot` back when it ends or is dropped.
fn holding_slot(stream: SendableRecordBatchStream, slot: Slot) -> SendableRecordBatchStream {
    let schema = stream.schema();
    let mut slot = Some(slot);
    let released = futures::stream::poll_fn(move |_| {
        slot.take();
        std::task::Poll::Ready(None)
    });
    Box::pin(RecordBatchStreamAdapter::new(
        schema,
        stream.chain(released),
    ))
}

/// Parses one statement, numbering `?` placeholders as `$1`, `$2`, ... in order (DataFusion
/// plans numbered placeholders; drivers such as ADBC's send `?`).
fn parse(state: &SessionState, sql: &str) -> Result<DFStatement, QueryError> {
    let mut statement = parse_bounded(state, sql)?;
    if let DFStatement::Statement(ast_statement) = &mut statement {
        let mut next = 0;
        let _ = ast::visit_expressions_mut(ast_statement.as_mut(), |expr| {
            if let ast::Expr::Value(value) = expr
                && matches!(&value.value, ast::Value::Placeholder(p) if p == "?")
            {
                next += 1;
                value.value = ast::Value::Placeholder(format!("${next}"));
            }
            std::ops::ControlFlow::<()>::Continue(())
        });
    }
    Ok(statement)
}

/// Token nesting past which a failed parse is tried again with a higher recursion limit.
const MIN_NESTING_TO_RECHECK: usize = 32;
/// The recursion limit of that second parse.
const RECHECK_PARSER_RECURSION: usize = 16 * MAX_PARSER_RECURSION;

/// Parses one statement, refusing it when it nests too deeply to plan (see [`crate::nesting`]).
pub(crate) fn parse_bounded(state: &SessionState, sql: &str) -> Result<DFStatement, QueryError> {
    let dialect = state.config_options().sql_parser.dialect;
    let mut statement = match state.sql_to_statement(sql, &dialect) {
        Ok(statement) => statement,
        Err(err) if is_parser_recursion_limit(&err) => {
            return Err(TooDeeplyNested::parser().into());
        }
        // The parser reports its limit inside CASE as the alternative it tried last: a
        // statement that nests deeply and parses with a higher limit was refused for its depth.
        // (sqlparser grows its stack as it recurses, so the second parse is safe.)
        Err(err) if token_nesting(sql) >= MIN_NESTING_TO_RECHECK => {
            let mut deeper = state.clone();
            deeper.config_mut().options_mut().sql_parser.recursion_limit =
                datafusion::config::ConfigNonZeroUsize::try_new(RECHECK_PARSER_RECURSION)?;
            return Err(match deeper.sql_to_statement(sql, &dialect) {
                Ok(mut parsed) => {
                    // Cut before dropping: the tree may be deep.
                    let _ = check_nesting(&mut parsed, MAX_STATEMENT_DEPTH);
                    TooDeeplyNested::parser().into()
                }
                Err(_) => err.into(),
            });
        }
        Err(err) => return Err(err.into()),
    };
    check_nesting(&mut statement, MAX_STATEMENT_DEPTH)?;
    Ok(statement)
}

impl From<TooDeeplyNested> for QueryError {
    fn from(err: TooDeeplyNested) -> Self {
        QueryError::InvalidStatement(err.to_string())
    }
}

fn unload_needs_query() -> QueryError {
    QueryError::InvalidStatement(
        "UNLOAD exports the result of a query: UNLOAD (SELECT ...) TO 'location'".to_string(),
    )
}

fn table_reference(name: &ast::ObjectName) -> Result<TableReference, QueryError> {
    table_reference_from_parts(&name_parts(name))
}

fn table_reference_from_parts(parts: &[String]) -> Result<TableReference, QueryError> {
    Ok(match parts {
        [table] => TableReference::bare(table.as_str()),
        [schema, table] => TableReference::partial(schema.as_str(), table.as_str()),
        [catalog, schema, table] => {
            TableReference::full(catalog.as_str(), schema.as_str(), table.as_str())
        }
        _ => {
            return Err(QueryError::InvalidStatement(format!(
                "{} is not a table name: use [catalog.][schema.]table",
                parts.join(".")
            )));
        }
    })
}

/// SQL `PREPARE`/`EXECUTE`/`DEALLOCATE` and transactions are refused: clients prepare through
/// their protocol (Flight SQL prepared statements), and Osprey has no transactions.
fn refuse_session_statements(plan: &LogicalPlan) -> Result<(), QueryError> {
    if let LogicalPlan::Statement(statement) = plan {
        return Err(QueryError::NotSupported(format!(
            "{}: Osprey has no SQL-level prepared statements or transactions; prepare through \
             the client driver instead. The statement was not run",
            statement.name()
        )));
    }
    Ok(())
}
