//! The statement service's handle, as every front door sees it: what a statement did (its
//! update kind and the rows it wrote), its result, and its record in the history.

mod in_process;

use futures::TryStreamExt;
use osprey_service::{SessionSettings, StatementRequest, StatementService};

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
}
