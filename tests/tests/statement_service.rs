//! The statement service as every front door sees it, driven in process:
//!
//! - its handle: what a statement did (its update kind and the rows it wrote), its result,
//!   and its record in the history;
//! - its policy hook: every plan a statement runs or describes passes it for its principal,
//!   whatever the statement (queries, subqueries, EXPLAIN, INSERT, CTAS, UNLOAD, views,
//!   describes); a rewrite it makes is what runs on the executors; and the catalogs it shows a
//!   principal are the ones planning and listings see.
//!
//! The policies here are test policies; Osprey's own is `AllowAll` until governance lands.
//! Both tests live in one file so that the suite links one binary for them.

mod in_process;

use datafusion::arrow::array::{Array, Int64Array};
use datafusion::catalog::{CatalogProviderList, MemoryCatalogProvider, MemoryCatalogProviderList};
use datafusion::common::DataFusionError;
use datafusion::common::tree_node::{Transformed, TreeNodeRecursion};
use datafusion::logical_expr::{LogicalPlan, LogicalPlanBuilder, col, lit};
use futures::TryStreamExt;
use osprey_coordinator::TrinoMetadata;
use osprey_service::{
    MetadataFlavor, PolicySubject, Principal, QueryError, QueryRecord, SessionSettings,
    StatementListener, StatementPolicy, StatementRequest, StatementService,
};
use std::sync::{Arc, Mutex};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_reports_what_it_did_and_is_recorded() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let unload_dir = tempfile::tempdir().expect("temp dir");
    let (coordinator, _executors) = in_process::start_coordinator(data_dir.path()).await;
    let service = StatementService::new(coordinator.engine.clone());
    let admin = in_process::admin(&service).await;
    let mut session = SessionSettings {
        principal: Some(admin.clone()),
        ..SessionSettings::default()
    };
    let unload = format!(
        "UNLOAD (SELECT * FROM handle.copy) TO '{}/out' WITH (format = 'PARQUET')",
        unload_dir.path().display()
    );
    // (statement, update kind, rows written); a query has neither.
    let cases: Vec<(&str, Option<&str>, Option<u64>)> = vec![
        ("CREATE SCHEMA handle", Some("CREATE SCHEMA"), Some(0)),
        ("USE handle", Some("USE"), Some(0)),
        ("CREATE TABLE t (a INT)", Some("CREATE TABLE"), Some(0)),
        ("INSERT INTO t VALUES (1), (2)", Some("INSERT"), Some(2)),
        (
            "CREATE TABLE copy AS SELECT a FROM t",
            Some("CREATE TABLE"),
            Some(2),
        ),
        (
            "CREATE VIEW v AS SELECT a FROM t",
            Some("CREATE VIEW"),
            Some(0),
        ),
        ("DROP VIEW v", Some("DROP VIEW"), Some(0)),
        (
            "ALTER TABLE copy RENAME TO copied",
            Some("RENAME TABLE"),
            Some(0),
        ),
        (
            "ALTER TABLE copied RENAME TO copy",
            Some("RENAME TABLE"),
            Some(0),
        ),
        (unload.as_str(), Some("UNLOAD"), Some(2)),
        (
            "SET datafusion.execution.batch_size = 1024",
            Some("SET SESSION"),
            Some(0),
        ),
        (
            "RESET datafusion.execution.batch_size",
            Some("RESET SESSION"),
            Some(0),
        ),
        (
            "CREATE USER handle_user WITH PASSWORD 'a-long-password'",
            Some("CREATE USER"),
            Some(0),
        ),
        ("DROP USER handle_user", Some("DROP USER"), Some(0)),
        ("DROP TABLE t", Some("DROP TABLE"), Some(0)),
        ("SELECT count(*) FROM copy", None, None),
        (
            "EXECUTE IMMEDIATE 'INSERT INTO copy VALUES (?)' USING 7",
            Some("INSERT"),
            Some(1),
        ),
    ];
    // A subscriber to statement events sees every change of every statement.
    let events = Arc::new(EventLog::default());
    service.events().subscribe(events.clone());
    let mut ids = Vec::new();
    for (sql, kind, rows) in cases {
        let statement = service.statement(&admin, StatementRequest::new("test", sql));
        let id = statement.id();
        let submitted = statement
            .submit(&mut session)
            .await
            .unwrap_or_else(|err| panic!("{sql}: {err}"));
        assert_eq!(submitted.update_kind(), kind, "{sql}");
        assert_eq!(submitted.rows_written(), rows, "{sql}");
        assert_eq!(submitted.record().id(), id, "{sql}");
        let running = submitted.start().await.expect(sql);
        assert_eq!(running.update_kind, kind, "{sql}");
        let batches: Vec<_> = running.stream.try_collect().await.expect(sql);
        let returned: usize = batches.iter().map(|b| b.num_rows()).sum();
        // A write answers one `count` row, DDL none, the query its one row.
        let expected_rows = match (kind, rows) {
            (None, _) => 1,
            (Some(_), Some(0)) if !sql.starts_with("INSERT") => 0,
            _ => 1,
        };
        assert_eq!(returned, expected_rows, "{sql}");
        let summary = running.record.summary();
        assert_eq!(summary.query_id, id, "{sql}");
        if let Some(written) = rows {
            assert_eq!(summary.rows, written, "{sql}");
        }
        ids.push(id);
    }
    assert_eq!(
        session.schema.as_deref(),
        Some("handle"),
        "USE changed the session"
    );
    assert!(session.options.is_empty(), "RESET undid SET");

    // Every statement is in the history, succeeded, under its id.
    let records = service
        .engine()
        .history()
        .recent(None, None, 100)
        .await
        .expect("history");
    for id in &ids {
        let record = records
            .iter()
            .find(|record| &record.query_id == id)
            .unwrap_or_else(|| panic!("{id} is in the history"));
        assert_eq!(record.state.as_str(), "SUCCEEDED", "{}", record.sql);
        assert_eq!(record.front_door, "test");
    }

    // A statement that fails is recorded as failed, with its kind's code.
    let failing = service.statement(
        &admin,
        StatementRequest::new("test", "SELECT * FROM nowhere"),
    );
    let failed_id = failing.id();
    let err = failing.run(&mut session).await.err().expect("fails");
    let records = service
        .engine()
        .history()
        .recent(None, None, 10)
        .await
        .expect("history");
    let record = records
        .iter()
        .find(|record| record.query_id == failed_id)
        .expect("the failure is recorded");
    assert_eq!(record.state.as_str(), "FAILED");
    assert_eq!(record.error_code.as_deref(), Some(err.code()));

    // Each statement's events: RUNNING when registered, then exactly one end state.
    for id in &ids {
        let states = events.states_of(id);
        assert_eq!(
            states.first().map(String::as_str),
            Some("RUNNING"),
            "{id}: {states:?}"
        );
        assert_eq!(
            states.last().map(String::as_str),
            Some("SUCCEEDED"),
            "{id}: {states:?}"
        );
        let ends = states.iter().filter(|s| s.as_str() != "RUNNING").count();
        assert_eq!(ends, 1, "{id}: {states:?}");
    }
    assert_eq!(events.states_of(&failed_id), vec!["RUNNING", "FAILED"]);
}

/// Keeps the statement events it is given.
#[derive(Debug, Default)]
struct EventLog {
    records: Mutex<Vec<QueryRecord>>,
}

impl EventLog {
    fn states_of(&self, id: &str) -> Vec<String> {
        self.records
            .lock()
            .unwrap()
            .iter()
            .filter(|record| record.query_id == id)
            .map(|record| record.state.as_str().to_string())
            .collect()
    }
}

impl StatementListener for EventLog {
    fn on_statement(&self, record: &QueryRecord) {
        self.records.lock().unwrap().push(record.clone());
    }
}

/// Refuses plans that read a table named `secret`, shows only rows with `a > 1` of a table
/// named `masked`, and shows the principal `nobody` no catalog but an empty one.
#[derive(Debug, Default)]
struct TestPolicy {
    /// The principals of the plans checked, in order.
    principals: Mutex<Vec<Option<String>>>,
}

#[async_trait::async_trait]
impl StatementPolicy for TestPolicy {
    async fn check_plan(
        &self,
        subject: &PolicySubject<'_>,
        plan: LogicalPlan,
    ) -> Result<LogicalPlan, QueryError> {
        self.principals
            .lock()
            .unwrap()
            .push(subject.principal.map(|p| p.user.clone()));
        let mut reads_secret = false;
        plan.apply_with_subqueries(|node| {
            if let LogicalPlan::TableScan(scan) = node
                && scan.table_name.table() == "secret"
            {
                reads_secret = true;
            }
            Ok(TreeNodeRecursion::Continue)
        })?;
        if reads_secret {
            return Err(QueryError::PermissionDenied(
                "the test policy refuses reading secret".to_string(),
            ));
        }
        let rewritten = plan.transform_up_with_subqueries(|node| match node {
            LogicalPlan::TableScan(scan) if scan.table_name.table() == "masked" => {
                let filtered = LogicalPlanBuilder::from(LogicalPlan::TableScan(scan))
                    .filter(col("a").gt(lit(1)))?
                    .build()?;
                Ok(Transformed::new(filtered, true, TreeNodeRecursion::Jump))
            }
            other => Ok(Transformed::no(other)),
        })?;
        Ok(rewritten.data)
    }

    fn visible_catalogs(
        &self,
        subject: &PolicySubject<'_>,
        catalogs: Arc<dyn CatalogProviderList>,
    ) -> Arc<dyn CatalogProviderList> {
        if subject.principal.is_some_and(|p| p.user == "nobody") {
            let only = MemoryCatalogProviderList::new();
            only.register_catalog("empty".to_string(), Arc::new(MemoryCatalogProvider::new()));
            return Arc::new(only);
        }
        catalogs
    }
}

/// Runs `sql` in `session` as `principal`, returning the first column of the result as i64s.
async fn run(
    service: &StatementService,
    principal: &Principal,
    session: &mut SessionSettings,
    sql: &str,
) -> Result<Vec<i64>, QueryError> {
    let statement = service.statement(principal, StatementRequest::new("test", sql));
    let running = statement.run(session).await?;
    let batches: Vec<_> = running.stream.try_collect().await?;
    let mut values = Vec::new();
    for batch in batches {
        if batch.num_columns() == 0 {
            continue;
        }
        let column = datafusion::arrow::compute::cast(
            batch.column(0),
            &datafusion::arrow::datatypes::DataType::Int64,
        )
        .map_err(DataFusionError::from)?;
        let column = column.as_any().downcast_ref::<Int64Array>().unwrap();
        values.extend((0..column.len()).map(|i| column.value(i)));
    }
    Ok(values)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_statement_passes_the_policy_and_its_rewrite_is_what_runs() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let unload_dir = tempfile::tempdir().expect("temp dir");
    let (coordinator, _executors) = in_process::start_coordinator(data_dir.path()).await;
    let policy = Arc::new(TestPolicy::default());
    let engine = coordinator.engine.clone().with_policy(policy.clone());
    let service = StatementService::new(engine);
    let admin = in_process::admin(&service).await;
    let mut session = SessionSettings {
        principal: Some(admin.clone()),
        ..SessionSettings::default()
    };
    for setup in [
        "CREATE SCHEMA pol",
        "CREATE TABLE pol.secret AS SELECT * FROM (VALUES (1), (2)) AS t(a)",
        "CREATE TABLE pol.open (a INT)",
        "INSERT INTO pol.open VALUES (1), (2), (3)",
        "CREATE TABLE pol.masked AS SELECT * FROM (VALUES (1), (2), (3)) AS t(a)",
    ] {
        run(&service, &admin, &mut session, setup)
            .await
            .unwrap_or_else(|err| panic!("{setup}: {err}"));
    }
    let unload = format!(
        "UNLOAD (SELECT * FROM pol.secret) TO '{}/out' WITH (format = 'PARQUET')",
        unload_dir.path().display()
    );
    let refused = [
        "SELECT * FROM pol.secret",
        "SELECT (SELECT max(a) FROM pol.secret)",
        "SELECT * FROM pol.open WHERE a IN (SELECT a FROM pol.secret)",
        "EXPLAIN SELECT * FROM pol.secret",
        "INSERT INTO pol.open SELECT a FROM pol.secret",
        "CREATE TABLE pol.copy AS SELECT * FROM pol.secret",
        "CREATE VIEW pol.peek AS SELECT * FROM pol.secret",
        unload.as_str(),
    ];
    for sql in refused {
        let err = run(&service, &admin, &mut session, sql)
            .await
            .expect_err(sql);
        assert_eq!(err.code(), "PERMISSION_DENIED", "{sql}: {err}");
    }
    let described = service
        .describe(&session, "SELECT * FROM pol.secret")
        .await
        .expect_err("describing a refused query is refused");
    assert_eq!(described.code(), "PERMISSION_DENIED");

    // Nothing the refused statements would have written exists.
    let reader = session.clone();
    let count = |sql: &'static str| {
        let (service, admin, mut session) = (service.clone(), admin.clone(), reader.clone());
        async move { run(&service, &admin, &mut session, sql).await.unwrap() }
    };
    assert_eq!(count("SELECT count(*) FROM pol.open").await, vec![3]);
    assert_eq!(
        count(
            "SELECT count(*) FROM information_schema.tables \
             WHERE table_schema = 'pol' AND table_name IN ('copy', 'peek')"
        )
        .await,
        vec![0]
    );
    assert_eq!(
        std::fs::read_dir(unload_dir.path()).unwrap().count(),
        0,
        "the refused UNLOAD wrote nothing"
    );

    // The rewrite is what runs: only rows with a > 1 of `masked`, in queries and in writes.
    assert_eq!(count("SELECT count(*) FROM pol.masked").await, vec![2]);
    assert_eq!(count("SELECT sum(a) FROM pol.masked").await, vec![5]);
    run(
        &service,
        &admin,
        &mut session,
        "CREATE TABLE pol.unmasked_copy AS SELECT a FROM pol.masked",
    )
    .await
    .unwrap();
    assert_eq!(count("SELECT min(a) FROM pol.unmasked_copy").await, vec![2]);

    // The principal of the session reached the policy with every plan.
    let principals = policy.principals.lock().unwrap().clone();
    assert!(!principals.is_empty());
    assert!(
        principals.iter().all(|p| p.as_deref() == Some("admin")),
        "{principals:?}"
    );

    // The catalogs the policy shows a principal are what its listings and its planning see.
    let nobody = Principal {
        user: "nobody".to_string(),
        user_id: "nobody-id".to_string(),
        is_admin: false,
        session_id: None,
    };
    let nobody_session = SessionSettings {
        principal: Some(nobody.clone()),
        ..SessionSettings::default()
    };
    let catalogs = service.catalogs(&nobody_session).await.unwrap();
    assert_eq!(catalogs.catalog_names(), vec!["empty".to_string()]);
    let admin_catalogs = service.catalogs(&session).await.unwrap();
    assert!(admin_catalogs.catalog("osprey").is_some());
    let hidden = run(
        &service,
        &nobody,
        &mut nobody_session.clone(),
        "SELECT count(*) FROM osprey.pol.open",
    )
    .await
    .expect_err("a catalog the policy hides cannot be read");
    assert!(
        hidden.to_string().contains("osprey"),
        "the error names what is missing: {hidden}"
    );

    // A metadata flavor (the Trino door's tables) lists what the policy shows, no more.
    let trino = |principal: &Principal| SessionSettings {
        principal: Some(principal.clone()),
        metadata: Some(MetadataFlavor(Arc::new(TrinoMetadata))),
        ..SessionSettings::default()
    };
    let jdbc_catalogs = "SELECT count(*) FROM system.jdbc.catalogs WHERE table_cat = 'osprey'";
    let seen_by_nobody = run(&service, &nobody, &mut trino(&nobody), jdbc_catalogs)
        .await
        .expect("the flavor's tables answer over the policy's catalogs");
    assert_eq!(seen_by_nobody, vec![0], "only the catalog the policy shows");
    let seen_by_admin = run(&service, &admin, &mut trino(&admin), jdbc_catalogs)
        .await
        .unwrap();
    assert_eq!(seen_by_admin, vec![1], "the admin sees the lakehouse");
}
