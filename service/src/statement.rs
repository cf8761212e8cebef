//! The statement service: the one way a front door runs SQL, whatever its protocol.
//!
//! A statement's life has three steps, and the service keeps its record in the query history
//! through all of them, so no front door tracks anything by hand:
//!
//! 1. [`StatementService::statement`] registers it: it has an id and a queue clock, and shows
//!    in `system.queries` as RUNNING.
//! 2. [`Statement::submit`] runs what runs before a result: `EXECUTE IMMEDIATE` is unwrapped,
//!    DDL, writes (INSERT, CTAS, UNLOAD), `USE` and `SET` run now, exactly once, and change the
//!    session; a query is planned. A failure is recorded.
//! 3. [`Submitted::start`] starts a query: it takes a slot in its workgroup (waiting in the
//!    queue if need be), runs within the workgroup's limits, is run again when executors are
//!    lost, and streams its result. The stream counts its rows and records the outcome at its
//!    end; dropping it early records the statement as CANCELLED.
//!
//! [`Statement::run`] does steps 2 and 3 in one go, for front doors without a separate fetch.
//! [`StatementService::describe`] answers a statement's schema and parameters, running nothing.

use crate::auth::Principal;
use crate::error::QueryError;
use crate::expiring::HandleLimitReached;
use crate::history::{QuerySummary, QueueClock, TrackedQuery};
use crate::open_statements::{OpenStatement, OpenStatements, StatementLimits};
use crate::query::{Description, PreparedStatement, QueryEngine};
use crate::session::SessionSettings;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::CatalogProviderList;
use datafusion::common::ScalarValue;
use datafusion::execution::SendableRecordBatchStream;
use osprey_engine::QueryProgress;
use std::sync::Arc;

/// Runs statements for every front door (see the [crate documentation](crate)).
#[derive(Clone)]
pub struct StatementService {
    engine: QueryEngine,
    open: OpenStatements,
}

/// A statement as a front door hands it over.
#[derive(Debug, Clone)]
pub struct StatementRequest {
    /// The SQL text, as the client sent it (the history keeps it, secrets masked).
    pub sql: String,
    /// Values for the statement's `$n`/`?` placeholders, bound through the protocol.
    pub parameters: Option<Vec<ScalarValue>>,
    /// The front door's name in the query history (`flight_sql`, `http`, `trino`, ...).
    pub front_door: &'static str,
}

impl StatementRequest {
    /// A statement without parameters from `front_door`.
    pub fn new(front_door: &'static str, sql: impl Into<String>) -> Self {
        Self {
            sql: sql.into(),
            parameters: None,
            front_door,
        }
    }

    /// The same statement with `parameters` bound to its placeholders.
    pub fn with_parameters(mut self, parameters: Option<Vec<ScalarValue>>) -> Self {
        self.parameters = parameters;
        self
    }
}

impl StatementService {
    /// The service over `engine`, with the default [`StatementLimits`].
    pub fn new(engine: QueryEngine) -> Self {
        Self {
            engine,
            open: OpenStatements::default(),
        }
    }

    /// The same service with `limits` on the statements users hold open.
    pub fn with_limits(mut self, limits: StatementLimits) -> Self {
        self.open = OpenStatements::new(limits);
        self
    }

    /// The statement events: every statement's record after each change (registered, queued,
    /// admitted, finished), from every front door. Metrics and audit subscribe here.
    pub fn events(&self) -> &crate::events::StatementEvents {
        self.engine.history().events()
    }

    /// The bounds on open statements.
    pub fn statement_limits(&self) -> StatementLimits {
        self.open.limits()
    }

    /// Claims a place for a statement handle a front door is about to give `principal` (a
    /// result ticket, a prepared statement, a query id to poll): refused when the user holds
    /// as many as they may, on all doors together. The door keeps the claim with the handle,
    /// checks ownership with it, and drops it when it forgets the handle.
    pub fn open_statement(
        &self,
        principal: &Principal,
    ) -> Result<OpenStatement, HandleLimitReached> {
        self.open.open(principal)
    }

    /// The engine underneath: its catalog, users and workgroups.
    pub fn engine(&self) -> &QueryEngine {
        &self.engine
    }

    /// Osprey's own catalog as an Iceberg REST catalog (for the door that serves
    /// `/iceberg/v1/...`); `None` when the engine serves no Iceberg tables of its own.
    pub fn served_catalog(&self) -> Option<crate::served_catalog::ServedCatalog> {
        crate::served_catalog::ServedCatalog::new(
            self.engine.attached_catalogs(),
            self.engine.lakehouse().committed().clone(),
            self.engine.session().runtime_env(),
            self.engine.governance().clone(),
            self.engine.lakehouse().catalog_name().to_string(),
        )
    }

    /// The schema of a statement's result and of its parameters, without running anything.
    /// An `EXECUTE IMMEDIATE` describes the statement it wraps.
    pub async fn describe(
        &self,
        session: &SessionSettings,
        sql: &str,
    ) -> Result<Description, QueryError> {
        self.engine.describe(session, sql).await
    }

    /// The catalogs as `session` sees them: the one place metadata listings (a driver's
    /// catalogs, schemas and tables calls) go through, so that what applies to the session's
    /// statements applies to its listings too. Attached catalogs are listed again first (one
    /// that does not answer keeps its last listing).
    pub async fn catalogs(
        &self,
        session: &SessionSettings,
    ) -> Result<Arc<dyn CatalogProviderList>, QueryError> {
        self.engine.attached_catalogs().refresh(None).await?;
        self.engine.catalogs_for(session)
    }

    /// Registers a statement from `principal`: from here it has an id and a history record.
    /// Nothing runs until [`Statement::submit`] or [`Statement::run`].
    pub fn statement(&self, principal: &Principal, request: StatementRequest) -> Statement {
        let tracked =
            self.engine
                .history()
                .begin(&principal.user, request.front_door, &request.sql);
        Statement {
            engine: self.engine.clone(),
            tracked,
            request,
        }
    }
}

/// A registered statement that has not run yet. Dropping it records it as CANCELLED.
pub struct Statement {
    engine: QueryEngine,
    tracked: TrackedQuery,
    request: StatementRequest,
}

impl Statement {
    /// The statement's id (in `system.queries`).
    pub fn id(&self) -> String {
        self.tracked.id()
    }

    /// The statement's time in its workgroup's queue, for front doors that report its state.
    pub fn queue_clock(&self) -> QueueClock {
        self.tracked.queue_clock()
    }

    /// The statement's record in the history.
    pub fn record(&self) -> StatementRecord {
        StatementRecord(self.tracked.clone())
    }

    /// Runs what runs before a result (see the [crate documentation](crate)) in `session`,
    /// which `USE`, `SET` and `RESET` change. A failure is recorded before it is returned.
    pub async fn submit(self, session: &mut SessionSettings) -> Result<Submitted, QueryError> {
        let tracked = self.tracked.clone();
        self.submit_here(session)
            .await
            .inspect_err(|err| tracked.fail(err))
    }

    async fn submit_here(self, session: &mut SessionSettings) -> Result<Submitted, QueryError> {
        let Statement {
            engine,
            tracked,
            request,
        } = self;
        let prepared = engine
            .prepare_bound(session, &request.sql, request.parameters, Some(&tracked))
            .await?;
        if let PreparedStatement::Done {
            rows,
            bytes_scanned,
            ..
        } = &prepared
        {
            tracked.add_rows(*rows);
            tracked.add_bytes_scanned(*bytes_scanned);
            tracked.succeed();
        }
        Ok(Submitted {
            engine,
            tracked,
            prepared,
            session: session.clone(),
        })
    }

    /// [`Statement::submit`], then [`Submitted::start`].
    pub async fn run(self, session: &mut SessionSettings) -> Result<Running, QueryError> {
        self.submit(session).await?.start().await
    }
}

/// A statement that was submitted: what runs before a result ran, and a query is planned.
/// Dropping it before [`Submitted::start`] records a query as CANCELLED.
#[derive(Clone)]
pub struct Submitted {
    engine: QueryEngine,
    tracked: TrackedQuery,
    prepared: PreparedStatement,
    /// The session's settings after the statement changed them; the query runs with them.
    session: SessionSettings,
}

impl Submitted {
    /// The schema of the statement's result.
    pub fn schema(&self) -> SchemaRef {
        self.prepared.schema()
    }

    /// The statement's record in the history.
    pub fn record(&self) -> StatementRecord {
        StatementRecord(self.tracked.clone())
    }

    /// `Some(rows)` when the statement already ran: DDL (0) and writes (the rows written).
    /// `None` for a query, which runs at [`Submitted::start`].
    pub fn rows_written(&self) -> Option<u64> {
        match &self.prepared {
            PreparedStatement::Done { rows, .. } => Some(*rows),
            PreparedStatement::Query(_) | PreparedStatement::Listing(_) => None,
        }
    }

    /// What a statement that already ran did, as Trino names update types (`CREATE TABLE`,
    /// `INSERT`, `USE`, `SET SESSION`, ...); `None` for a query.
    pub fn update_kind(&self) -> Option<&'static str> {
        match &self.prepared {
            PreparedStatement::Done { kind, .. } => Some(kind),
            PreparedStatement::Query(_) | PreparedStatement::Listing(_) => None,
        }
    }

    /// Starts a query (admission, limits, reruns after executor loss) and streams its result;
    /// a statement that already ran streams its row count. A failure is recorded.
    pub async fn start(self) -> Result<Running, QueryError> {
        let update_kind = self.update_kind();
        let Submitted {
            engine,
            tracked,
            prepared,
            session,
            ..
        } = self;
        let already_ran = matches!(prepared, PreparedStatement::Done { .. });
        let execution = engine
            .execute(&session, prepared, Some(&tracked))
            .await
            .inspect_err(|err| tracked.fail(err))?;
        tracked.attach_retries(&execution.retries);
        let stream = if already_ran {
            // Its rows (written) and bytes were counted when it ran.
            execution.stream
        } else {
            tracked.add_bytes_scanned(execution.bytes_scanned);
            tracked.track_stream(execution.stream)
        };
        Ok(Running {
            stream,
            bytes_scanned: execution.bytes_scanned,
            rows_written: execution.completed_rows,
            progress: execution.progress,
            record: StatementRecord(tracked),
            update_kind,
        })
    }
}

/// A statement whose result streams.
pub struct Running {
    /// The result. It counts its rows and records the outcome at its end; dropping it stops
    /// the query and records it as CANCELLED.
    pub stream: SendableRecordBatchStream,
    /// Bytes of data files the plan reads.
    pub bytes_scanned: u64,
    /// `Some(rows)` when the statement already ran at submit: DDL (0) and writes.
    pub rows_written: Option<u64>,
    /// Live progress of the running plan (`None` for statements that already ran, EXPLAIN and
    /// listings).
    pub progress: Option<Arc<QueryProgress>>,
    /// The statement's record in the history.
    pub record: StatementRecord,
    /// What a statement that already ran did, as Trino names update types (see
    /// [`Submitted::update_kind`]); `None` for a query.
    pub update_kind: Option<&'static str>,
}

/// A statement's record in the history, for front doors that report its figures.
#[derive(Clone, Debug)]
pub struct StatementRecord(TrackedQuery);

impl StatementRecord {
    /// The statement's id (in `system.queries`).
    pub fn id(&self) -> String {
        self.0.id()
    }

    /// Rows, bytes and times so far.
    pub fn summary(&self) -> QuerySummary {
        self.0.summary()
    }

    /// The statement's time in its workgroup's queue.
    pub fn queue_clock(&self) -> QueueClock {
        self.0.queue_clock()
    }

    /// Records that the front door stopped the statement with `err` (its result outgrew what
    /// the door keeps, say). Ignored once the statement has an outcome.
    pub fn fail(&self, err: &QueryError) {
        self.0.fail(err)
    }
}
