//! The query engine under the statement service: plans SQL against the shared catalog and runs
//! it on the executors. Front doors reach it through [`crate::statement`].
//!
//! A statement goes through two steps:
//!
//! 1. [`QueryEngine::prepare_bound`] parses ([`parse`]) and plans it in a session. Statements
//!    with side effects (DDL, writes, `USE`, `SET`) run right here, exactly once, and leave a
//!    [`PreparedStatement::Done`] ([`prepared`]); statements DataFusion does not plan are
//!    handled on the parsed statement ([`catalog_statements`]). Queries are only planned.
//! 2. [`QueryEngine::execute`] ([`run`]) admits a planned query through its workgroup, runs it
//!    on the executors and returns a stream; the coordinator never holds a whole result.
//!
//! [`QueryEngine::describe`] ([`describe`]) answers the schemas without running anything.

mod attached_writes;
mod catalog_statements;
mod describe;
mod file_queries;
mod listings;
mod own_statements;
mod parse;
mod planned;
mod prepared;
mod run;
mod table_alter;
mod table_procedure;
mod table_properties;

use parse::*;
use prepared::*;
pub use prepared::{Description, Execution, PreparedStatement};

use crate::auth::Authenticator;
use crate::catalogs::AttachedCatalogs;
use crate::catalogs::sql::{CatalogStatementResult, execute_catalog_statement};
use crate::discovery::ExecutorRegistry;
pub use crate::error::QueryError;
use crate::history::{QueriesTable, QueryHistory, TrackedQuery};
use crate::immediate::evaluate_parameters;
use crate::lakehouse::Lakehouse;
use crate::lakehouse::ddl::name_parts;
use crate::lakehouse::unload::unload_format;
use crate::locations::{Access, Locations};
use crate::locations_sql::{
    LocationStatement, LocationStatementResult, execute_location_statement,
};
use crate::nesting::TooDeeplyNested;
use crate::parser::{ParsedStatement, parse_statement};
use crate::policy::StatementPolicy;
use crate::query_runtime::{plan_on, stream_on};
use crate::retry::{QueryTimedOut, Rerun, RetryLog, RetryPolicy, retry_on_executor_loss};
use crate::session::SessionSettings;
use crate::statement_stats::StatementStats;
use crate::system_tables::{ExecutorsTable, SystemTable};
use crate::users::{self, UserStatement, UserStatementResult, execute_user_statement};
use crate::workgroups::{
    Slot, WorkgroupLimits, WorkgroupStatement, WorkgroupStatementResult, Workgroups,
    execute_workgroup_statement,
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

/// What a [`QueryEngine`] is built from, besides the shared session.
#[derive(Clone)]
pub struct EngineParts {
    /// Where statements are planned and run (see `query_runtime`).
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
    /// The attached catalogs (`CREATE CATALOG`, `[[catalogs]]`).
    pub catalogs: AttachedCatalogs,
    /// Roles, privileges and owners: the policy every statement passes.
    pub governance: crate::governance::Governance,
}

/// Plans and runs statements against the coordinator's catalog.
#[derive(Clone)]
pub struct QueryEngine {
    ctx: SessionContext,
    /// Where statements are planned and run, apart from the front doors' runtime.
    query_runtime: tokio::runtime::Handle,
    locations: Locations,
    lakehouse: Lakehouse,
    catalogs: AttachedCatalogs,
    history: QueryHistory,
    auth: Authenticator,
    workgroups: Workgroups,
    registry: ExecutorRegistry,
    retry_policy: RetryPolicy,
    query_timeout: Option<std::time::Duration>,
    /// What each principal may run and see (see [`StatementPolicy`]).
    policy: Arc<dyn StatementPolicy>,
    /// Roles, privileges and owners (the policy, unless another is set).
    governance: crate::governance::Governance,
}

impl QueryEngine {
    /// Wraps a session whose state carries the distributed planner, installs the lakehouse
    /// catalog as its default catalog, and registers the `system` schema (with
    /// `system.executors` and `system.queries`) in it. Queries and writes are admitted through
    /// `workgroups`. Statements are planned and run on `query_runtime` (see
    /// `query_runtime`).
    pub fn new(ctx: SessionContext, parts: EngineParts) -> Result<Self, QueryError> {
        let EngineParts {
            query_runtime,
            lakehouse,
            registry,
            history,
            auth,
            workgroups,
            locations,
            catalogs,
            governance,
        } = parts;
        catalogs.serve_warehouse(lakehouse.committed().clone());
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
        system.register_table(
            "audit".to_string(),
            Arc::new(SystemTable(crate::system_tables::AuditTable::new(
                governance.clone(),
            ))) as Arc<dyn TableProvider>,
        )?;
        catalog.register_schema("system", Arc::new(system))?;
        Ok(Self {
            ctx,
            query_runtime,
            locations,
            lakehouse,
            catalogs,
            history,
            auth,
            workgroups,
            registry,
            retry_policy: RetryPolicy::default(),
            query_timeout: None,
            policy: Arc::new(governance.clone()),
            governance,
        })
    }

    /// How long a query may run (from when its result starts) before it is stopped; `None`
    /// for no limit.
    pub fn with_query_timeout(mut self, limit: Option<std::time::Duration>) -> Self {
        self.query_timeout = limit;
        self
    }

    /// How often a query may run when executors are lost (see `retry`).
    pub fn with_retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry_policy = policy;
        self
    }

    /// The policy every statement's plan passes (see [`StatementPolicy`]); the engine's
    /// [`crate::Governance`] until another is set ([`AllowAll`] allows everything).
    pub fn with_policy(mut self, policy: Arc<dyn StatementPolicy>) -> Self {
        self.policy = policy;
        self
    }

    /// The plan to run for `session`'s principal, as the policy decides, for the statement
    /// `state` plans.
    async fn check_plan(
        &self,
        state: &SessionState,
        session: &SessionSettings,
        plan: LogicalPlan,
    ) -> Result<LogicalPlan, QueryError> {
        let (catalog, schema) = self.current_schema(session);
        let id = statement_id(state);
        let mut subject = policy_subject(session, &catalog, &schema);
        subject.statement_id = id.as_deref();
        self.policy.check_plan(&subject, plan).await
    }

    /// `shared` (the coordinator's catalogs) with the attached catalogs added: every catalog,
    /// before the policy chooses what a principal sees.
    fn server_catalogs(
        &self,
        shared: Arc<dyn datafusion::catalog::CatalogProviderList>,
    ) -> Arc<dyn datafusion::catalog::CatalogProviderList> {
        match self.catalogs.is_empty() {
            true => shared,
            false => self.catalogs.overlay(shared),
        }
    }

    /// Whether the table `catalog.schema.table` exists, whoever may see it.
    fn table_exists(&self, catalog: &str, schema: &str, table: &str) -> bool {
        self.server_catalogs(Arc::clone(self.ctx.state().catalog_list()))
            .catalog(catalog)
            .and_then(|c| c.schema(schema))
            .is_some_and(|s| s.table_exist(table))
    }

    /// Roles, privileges and owners.
    pub fn governance(&self) -> &crate::governance::Governance {
        &self.governance
    }

    /// Checks that `session`'s principal holds `needed` on `object`, or owns it when `needed`
    /// is `None` (`action` names what it does, for the error), and records the decision.
    async fn authorize(
        &self,
        session: &SessionSettings,
        action: &str,
        needed: Option<crate::governance::Privilege>,
        object: &osprey_catalog::SecuredObject,
    ) -> Result<(), QueryError> {
        let (catalog, schema) = self.current_schema(session);
        let subject = policy_subject(session, &catalog, &schema);
        self.governance
            .authorize(&subject, action, needed, object)
            .await
    }

    /// Whether `session`'s principal holds `USAGE` on a location, by name, for
    /// [`crate::locations::Locations::check`].
    fn location_usage<'a>(&'a self, session: &'a SessionSettings) -> impl Fn(&str) -> bool + 'a {
        move |name| {
            let (catalog, schema) = self.current_schema(session);
            let subject = policy_subject(session, &catalog, &schema);
            self.governance.holds_usage(&subject, name)
        }
    }

    /// The session shared by every query (its catalog holds every registered table).
    pub fn session(&self) -> &SessionContext {
        &self.ctx
    }

    /// The lakehouse catalog.
    pub fn lakehouse(&self) -> &Lakehouse {
        &self.lakehouse
    }

    /// The attached catalogs.
    pub fn attached_catalogs(&self) -> &AttachedCatalogs {
        &self.catalogs
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
        // The views the statement reads record their decisions under its id too.
        if let (Some(tracked), Some(context)) = (
            tracked,
            state
                .config()
                .get_extension::<crate::policy::PolicyContext>(),
        ) {
            let context = crate::policy::PolicyContext {
                statement_id: Some(tracked.id()),
                ..context.as_ref().clone()
            };
            state.config_mut().set_extension(Arc::new(context));
        }
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
        // The attached catalogs join the shared ones; then the policy's choice: a metadata
        // flavor the session applies next (Trino's information_schema) lists only what the
        // policy shows.
        let shared = Arc::clone(state.catalog_list());
        let catalogs = self.server_catalogs(Arc::clone(&shared));
        let catalogs_for_views = Arc::clone(&catalogs);
        // Listings ask the attached catalogs for their names again (metadata_tables).
        state
            .config_mut()
            .set_extension(Arc::new(self.catalogs.clone()));
        let (catalog, schema) = self.current_schema(session);
        let visible = self
            .policy
            .visible_catalogs(&policy_subject(session, &catalog, &schema), catalogs);
        // Only a changed list costs a rebuild of the state.
        if !Arc::ptr_eq(&shared, &visible) {
            state = datafusion::execution::SessionStateBuilder::new_from_existing(state)
                .with_catalog_list(visible)
                .build();
        }
        session.apply(&mut state)?;
        // Every report of a missing table asks the policy first (`listings::suggest_table`).
        state
            .config_mut()
            .set_extension(Arc::new(crate::policy::PolicyContext {
                policy: Arc::clone(&self.policy),
                principal: session.principal.clone(),
                role: session.role.clone(),
                server_catalogs: catalogs_for_views,
                statement_id: None,
            }));
        Ok(state)
    }

    async fn prepare_in(
        &self,
        mut state: SessionState,
        session: &mut SessionSettings,
        sql: &str,
        parameters: Option<Vec<ScalarValue>>,
    ) -> Result<PreparedStatement, QueryError> {
        let principal = session.principal.as_ref();
        let statement = match parse_statement(&state, sql)? {
            ParsedStatement::Immediate(wrapped) => {
                let parameters = match (wrapped.using, parameters) {
                    (Some(_), Some(_)) => {
                        return Err(QueryError::InvalidStatement(
                            "EXECUTE IMMEDIATE ... USING and parameters bound through the \
                             driver: bind the values one way only"
                                .to_string(),
                        ));
                    }
                    (Some(using), None) => Some(evaluate_parameters(&using)?),
                    (None, bound) => bound,
                };
                return Box::pin(self.prepare_in(state, session, &wrapped.statement, parameters))
                    .await;
            }
            ParsedStatement::Sql(statement) => *statement,
            ParsedStatement::TableProcedure(call) => {
                return self.run_table_procedure(&state, session, call).await;
            }
            ParsedStatement::Governance(statement) => {
                return self
                    .run_governance_statement(&state, session, statement)
                    .await;
            }
            own => return self.run_own_statement(&state, principal, own).await,
        };
        let mut statement = statement;
        self.resolve_file_references(&mut state, session, &mut statement)
            .await?;
        let properties = table_properties::TableProperties::take(&mut statement)?;
        if let DFStatement::Statement(ast_statement) = &statement
            && let ast::Statement::Use(target) = ast_statement.as_ref()
        {
            // An attached catalog's namespaces are listed again for the check.
            let catalog = self.use_catalog(session, target);
            self.catalogs.refresh(Some(&catalog)).await?;
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
        // Whose rights its query runs with (`SECURITY INVOKER | DEFINER`, Trino's spelling,
        // moved where sqlparser reads MySQL's `SQL SECURITY` by `crate::parser`).
        let view = view_query.map(|query| {
            let security = match ast_statement {
                Some(ast::Statement::CreateView(view)) => {
                    view.params.as_ref().and_then(|p| p.security.as_ref())
                }
                _ => None,
            };
            let security = match security {
                Some(ast::CreateViewSecurity::Invoker) => crate::policy::ViewSecurity::Invoker,
                _ => crate::policy::ViewSecurity::Definer,
            };
            (query, security)
        });
        let plan = match state.statement_to_plan(statement).await {
            Ok(plan) => plan,
            Err(err) => return Err(listings::suggest_table(&state, err.into()).await),
        };
        let plan = bind_parameters(plan, parameters)?;
        let plan = self.check_plan(&state, session, plan).await?;
        let (catalog, schema) = self.current_schema(session);
        let change = crate::governance::ownership_change(
            &plan,
            &crate::governance::NameDefaults { catalog, schema },
        );
        // A table that is there already keeps its owner, or its lack of one (an admins'
        // table): a `CREATE ... IF NOT EXISTS` that finds it creates nothing.
        let change = match change {
            Some(crate::governance::OwnershipChange::Created(
                osprey_catalog::SecuredObject::Table(c, s, t),
            )) if self.table_exists(&c, &s, &t) => None,
            other => other,
        };
        // Boxed: the statement's future stays small wherever it is moved (a thread's stack).
        let prepared = Box::pin(self.run_planned(
            plan,
            state,
            session,
            sql,
            create_has_query,
            properties,
            view,
        ))
        .await?;
        self.governance
            .record(session.principal.as_ref(), change)
            .await?;
        Ok(prepared)
    }
}

/// Who runs `session`'s statements, as the policy sees them.
fn policy_subject<'a>(
    session: &'a SessionSettings,
    catalog: &'a str,
    schema: &'a str,
) -> crate::policy::PolicySubject<'a> {
    crate::policy::PolicySubject {
        principal: session.principal.as_ref(),
        role: &session.role,
        catalog,
        schema,
        statement_id: None,
    }
}

/// The query id of the statement `state` plans, if it is tracked.
fn statement_id(state: &SessionState) -> Option<String> {
    state
        .config()
        .get_extension::<StatementStats>()
        .and_then(|stats| stats.tracked())
        .map(|tracked| tracked.id())
}
