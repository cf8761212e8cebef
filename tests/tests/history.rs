//! Cost and observability: every statement lands in `system.queries` (who, SQL, state, timings,
//! rows, bytes scanned, error), clients see the same figures in Flight SQL app metadata, bytes
//! scanned follow partition pruning, secrets are masked, and a coordinator restart closes the
//! queries it left running.

use osprey_tests::{
    CoordinatorOptions, Process, SqlClient, TEST_SECRET, canonical_rows, rows, spawn_coordinator,
    spawn_executor,
};
use std::path::Path;
use std::time::{Duration, Instant};

fn start_coordinator(data_dir: &Path, executors: &[Process]) -> Process {
    spawn_coordinator(CoordinatorOptions {
        executors: executors
            .iter()
            .map(|e| format!("http://{}", e.addr))
            .collect(),
        data_dir,
        tpch_scale: Some("0.01"),
        default_schema: "public",
        extra_args: &[],
    })
}

async fn client(coordinator: &Process) -> SqlClient {
    SqlClient::connect(coordinator.addr, "admin", osprey_tests::ADMIN_PASSWORD)
        .await
        .expect("login")
}

/// The history row of the query with `id`: state | user | error_code | rows | bytes_scanned.
async fn history_row(client: &mut SqlClient, id: &str) -> String {
    let found = rows(
        client,
        &format!(
            "SELECT state, user_name, coalesce(error_code, '-'), rows, bytes_scanned \
             FROM system.queries WHERE query_id = '{id}'"
        ),
    )
    .await;
    assert_eq!(found.len(), 1, "query {id}: {found:?}");
    found[0].clone()
}

fn total_size(dir: &Path, extension: &str) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            total += total_size(&path, extension);
        } else if path.extension().is_some_and(|x| x == extension) {
            total += path.metadata().unwrap().len();
        }
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statements_are_recorded_with_rows_bytes_and_errors() {
    let data_dir = tempfile::tempdir().unwrap();
    let lake = tempfile::tempdir().unwrap();
    let executors: Vec<Process> = (0..2)
        .map(|_| spawn_executor("127.0.0.1:0", TEST_SECRET))
        .collect();
    let mut coordinator = start_coordinator(data_dir.path(), &executors);
    let mut c = client(&coordinator).await;

    // A query: the FlightInfo names it, and the stream's last message carries its figures.
    let (batches, info, last) = c
        .query_with_metadata("SELECT sum(l_quantity) FROM tpch.lineitem")
        .await
        .unwrap();
    let id = info["query_id"].as_str().expect("query id in FlightInfo");
    assert_eq!(last["query_id"], id);
    assert_eq!(last["rows"], 1);
    let lineitem_bytes = total_size(&data_dir.path().join("tpch/sf0.01/lineitem"), "parquet");
    assert!(lineitem_bytes > 0);
    assert_eq!(last["bytes_scanned"], lineitem_bytes);
    assert_eq!(canonical_rows(&batches).len(), 1);
    assert_eq!(
        history_row(&mut c, id).await,
        format!("SUCCEEDED | admin | - | 1 | {lineitem_bytes}")
    );

    // Partition pruning shows in bytes scanned: only the year=2024 files count.
    let events = lake.path().join("events");
    for year in ["2023", "2024"] {
        rows(
            &mut c,
            &format!(
                "UNLOAD (SELECT l_orderkey, l_quantity FROM tpch.lineitem WHERE l_linenumber <= {}) \
                 TO '{}/year={year}'",
                if year == "2023" { 2 } else { 4 },
                events.display()
            ),
        )
        .await;
    }
    rows(
        &mut c,
        &format!(
            "CREATE EXTERNAL TABLE events STORED AS PARQUET PARTITIONED BY (year) LOCATION '{}'",
            events.display()
        ),
    )
    .await;
    let (_, _, last) = c
        .query_with_metadata("SELECT sum(l_quantity) FROM events WHERE year = '2024'")
        .await
        .unwrap();
    assert_eq!(
        last["bytes_scanned"],
        total_size(&events.join("year=2024"), "parquet")
    );

    // A write: rows written and bytes read, known when GetFlightInfo returns.
    let (batches, info, _) = c
        .query_with_metadata(
            "CREATE TABLE copy AS SELECT * FROM tpch.lineitem WHERE l_linenumber = 1",
        )
        .await
        .unwrap();
    let written: u64 = canonical_rows(&batches)[0].parse().unwrap();
    assert!(written > 0);
    assert_eq!(info["rows"], written);
    assert_eq!(info["bytes_scanned"], lineitem_bytes);
    let id = info["query_id"].as_str().unwrap();
    assert_eq!(
        history_row(&mut c, id).await,
        format!("SUCCEEDED | admin | - | {written} | {lineitem_bytes}")
    );

    // Failures carry their code and message.
    c.query("SELECT no_such_column FROM tpch.nation")
        .await
        .expect_err("bad column");
    assert_eq!(
        rows(
            &mut c,
            "SELECT state, error_code, error_message LIKE '%no_such_column%' FROM system.queries \
             WHERE query LIKE 'SELECT no_such_column%'"
        )
        .await,
        vec!["FAILED | COLUMN_NOT_FOUND | true"]
    );

    // Data errors are the client's: InvalidArgument, recorded as INVALID_DATA.
    let err = c
        .query("SELECT l_orderkey / (l_linenumber - l_linenumber) FROM tpch.lineitem")
        .await
        .expect_err("division by zero");
    assert_eq!(
        osprey_tests::status_code(&err),
        Some(tonic::Code::InvalidArgument),
        "{err}"
    );
    assert_eq!(
        rows(
            &mut c,
            "SELECT state, error_code FROM system.queries WHERE query LIKE '%l_linenumber - l_linenumber%' \
             AND query NOT LIKE '%system.queries%'"
        )
        .await,
        vec!["FAILED | INVALID_DATA"]
    );

    // Secrets never reach the history.
    let _ = c
        .query("CREATE EXTERNAL TABLE s STORED AS CSV LOCATION '/nowhere' OPTIONS ('aws.secret_access_key' 'hunter2')")
        .await;
    let stored = rows(
        &mut c,
        "SELECT query FROM system.queries WHERE query LIKE 'CREATE EXTERNAL TABLE s %'",
    )
    .await;
    assert_eq!(stored.len(), 1);
    assert!(!stored[0].contains("hunter2"), "{stored:?}");
    assert!(stored[0].contains("'***'"), "{stored:?}");

    // A client that stops reading: the query is recorded as cancelled.
    let info = c
        .inner
        .execute("SELECT * FROM tpch.lineitem".to_string(), None)
        .await
        .unwrap();
    let ticket = info.endpoint[0].ticket.clone().unwrap();
    let mut stream = c.inner.do_get(ticket).await.unwrap();
    use futures::StreamExt;
    stream.next().await.unwrap().unwrap();
    drop(stream);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let state = rows(
            &mut c,
            "SELECT state FROM system.queries WHERE query = 'SELECT * FROM tpch.lineitem'",
        )
        .await;
        if state == vec!["CANCELLED"] {
            break;
        }
        assert!(Instant::now() < deadline, "{state:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A statement planned but never fetched when the coordinator dies stays RUNNING in the
    // catalog; the next start marks it failed with a clear reason.
    let info = c
        .inner
        .execute("SELECT 42 AS never_fetched".to_string(), None)
        .await
        .unwrap();
    let id: serde_json::Value = serde_json::from_slice(&info.app_metadata).unwrap();
    let id = id["query_id"].as_str().unwrap().to_string();
    // Reading the history flushes pending records, so the RUNNING row is on disk.
    assert!(history_row(&mut c, &id).await.starts_with("RUNNING"));
    coordinator.signal(libc::SIGKILL);
    coordinator.wait_exit(Duration::from_secs(10));
    let coordinator = start_coordinator(data_dir.path(), &executors);
    let mut c = client(&coordinator).await;
    assert_eq!(
        rows(
            &mut c,
            &format!(
                "SELECT state, error_code, error_message FROM system.queries WHERE query_id = '{id}'"
            )
        )
        .await,
        vec!["FAILED | COORDINATOR_RESTARTED | the coordinator stopped while the query ran"]
    );
    // Earlier history survives the restart.
    let count: u64 = rows(&mut c, "SELECT count(*) FROM system.queries").await[0]
        .parse()
        .unwrap();
    assert!(count >= 10, "{count}");
}
