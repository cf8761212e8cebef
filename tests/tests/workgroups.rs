//! Workgroups (admission control) on a real cluster: a workgroup of one running query and a
//! queue of two takes five submissions as 1 running, 2 queued (in order, with their queued
//! time visible), 2 refused at once; its time limit, scan limit and memory limit fire with
//! clear errors while queries of other workgroups keep running on the same executors.

use arrow_flight::Ticket;
use osprey_tests::{SqlClient, TestCluster, rows, status_code};
use std::time::{Duration, Instant};

/// Runs forever on SF0.1 (a join of every lineitem row with most others); stopped by a
/// cancel or a time limit.
const ENDLESS: &str =
    "SELECT count(*) FROM tpch.lineitem a, tpch.lineitem b WHERE a.l_quantity < b.l_quantity";

async fn login(cluster: &TestCluster, user: &str) -> SqlClient {
    SqlClient::connect(cluster.coordinator.addr, user, "pw")
        .await
        .expect("login")
}

/// Plans `sql` and returns its ticket (nothing runs yet: the workgroup slot is taken by DoGet).
async fn plan(client: &mut SqlClient, sql: &str) -> Ticket {
    let info = client.inner.execute(sql.to_string(), None).await.unwrap();
    info.endpoint[0].ticket.clone().unwrap()
}

/// Fetches a ticket's result in a task: its rows and when it ended, or the error.
fn fetch(
    mut client: SqlClient,
    ticket: Ticket,
) -> tokio::task::JoinHandle<Result<(Vec<String>, Instant), arrow_flight::error::FlightError>> {
    use futures::TryStreamExt;
    tokio::spawn(async move {
        let stream = client.inner.do_get(ticket).await?;
        let batches: Vec<_> = stream.try_collect().await?;
        Ok((osprey_tests::canonical_rows(&batches), Instant::now()))
    })
}

/// The workgroup's running and queued queries, as `SHOW WORKGROUPS` reports them.
async fn load_of(admin: &mut SqlClient, workgroup: &str) -> (u64, u64) {
    let (_, batches) = admin.query("SHOW WORKGROUPS").await.unwrap();
    for line in osprey_tests::canonical_rows(&batches) {
        let fields: Vec<&str> = line.split(" | ").collect();
        if fields[0] == workgroup {
            return (fields[8].parse().unwrap(), fields[9].parse().unwrap());
        }
    }
    panic!("workgroup {workgroup} not listed");
}

async fn wait_for_load(admin: &mut SqlClient, workgroup: &str, expected: (u64, u64)) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let load = load_of(admin, workgroup).await;
        if load == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "workgroup {workgroup}: {load:?}, waiting for {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_workgroup_queues_in_order_and_refuses_the_rest_at_once() {
    let cluster = TestCluster::start_tpch(2);
    let mut admin = cluster.client().await;
    rows(
        &mut admin,
        "CREATE WORKGROUP narrow WITH (max_concurrent_queries = 1, max_queued_queries = 2)",
    )
    .await;
    rows(&mut admin, "CREATE USER ana PASSWORD 'pw' WORKGROUP narrow").await;

    // 1 runs (and keeps running until cancelled).
    let mut first = login(&cluster, "ana").await;
    let ticket = plan(&mut first, ENDLESS).await;
    let running = fetch(first, ticket);
    wait_for_load(&mut admin, "narrow", (1, 0)).await;

    // 2 queue, in order; their state says so.
    let mut waiting = Vec::new();
    let mut queued_tickets = Vec::new();
    // The first to queue runs for a long time too, so that the order of admission shows.
    let second_endless = ENDLESS.replace('<', ">");
    for (expected_queue, sql) in [
        (1, second_endless.as_str()),
        (2, "SELECT count(*) FROM tpch.nation"),
    ] {
        let mut client = login(&cluster, "ana").await;
        let ticket = plan(&mut client, sql).await;
        queued_tickets.push(ticket.clone());
        waiting.push(fetch(client, ticket));
        wait_for_load(&mut admin, "narrow", (1, expected_queue)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut watcher = login(&cluster, "ana").await;
    let progress: serde_json::Value = serde_json::from_slice(
        &watcher
            .action("QueryProgress", queued_tickets[0].ticket.to_vec())
            .await
            .unwrap(),
    )
    .unwrap();
    println!("a queued query's progress: {progress}");
    assert_eq!(progress["state"], "queued", "{progress}");
    assert!(progress["queued_ms"].as_u64().unwrap() >= 300, "{progress}");
    assert_eq!(
        rows(
            &mut admin,
            "SELECT state || ' ' || coalesce(workgroup, '-') FROM system.queries \
             WHERE user_name = 'ana' AND state = 'QUEUED'",
        )
        .await,
        vec!["QUEUED -", "QUEUED -"]
    );

    // 2 more are refused at once, with a retryable status that says what to do.
    for _ in 0..2 {
        let mut client = login(&cluster, "ana").await;
        let started = Instant::now();
        let err = client
            .query("SELECT count(*) FROM tpch.region")
            .await
            .expect_err("the queue is full");
        let took = started.elapsed();
        println!("refused after {took:?}: {err}");
        assert_eq!(status_code(&err), Some(tonic::Code::Unavailable), "{err}");
        assert!(
            err.to_string().contains("workgroup narrow is at its limit")
                && err.to_string().contains("Try again shortly"),
            "{err}"
        );
        assert!(took < Duration::from_secs(2), "{took:?}");
    }
    assert_eq!(load_of(&mut admin, "narrow").await, (1, 2));

    // Cancelling the running one (its client goes away) lets the queued ones run, first come
    // first served: the first to queue runs while the second still waits.
    running.abort();
    wait_for_load(&mut admin, "narrow", (1, 1)).await;
    assert_eq!(
        rows(
            &mut admin,
            &format!(
                "SELECT state FROM system.queries WHERE query = '{}'",
                second_endless.replace('\'', "''")
            ),
        )
        .await,
        vec!["RUNNING"]
    );
    let first = waiting.remove(0);
    first.abort();
    let (second_rows, _) = waiting.remove(0).await.unwrap().expect("second queued");
    assert_eq!(second_rows, vec!["25"]);
    wait_for_load(&mut admin, "narrow", (0, 0)).await;

    // (rows() sorts its lines.)
    let history = rows(
        &mut admin,
        "SELECT state || ' ' || coalesce(error_code, '-') || ' ' || coalesce(workgroup, '-') || \
         ' ' || CAST(queued_ms > 0 AS VARCHAR) FROM system.queries WHERE user_name = 'ana'",
    )
    .await;
    println!("history: {history:?}");
    assert_eq!(
        history,
        vec![
            "CANCELLED CANCELLED narrow false",
            "CANCELLED CANCELLED narrow true",
            "FAILED QUEUE_FULL - false",
            "FAILED QUEUE_FULL - false",
            "SUCCEEDED - narrow true",
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workgroup_limits_fire_and_other_queries_keep_running() {
    let cluster = TestCluster::start_tpch(2);
    let mut admin = cluster.client().await;
    for statement in [
        "CREATE WORKGROUP brief WITH (query_timeout_secs = 2)",
        "CREATE WORKGROUP frugal WITH (max_scan_bytes = '1MiB')",
        "CREATE WORKGROUP tight WITH (query_memory_bytes = '4MiB')",
        "CREATE USER bea PASSWORD 'pw' WORKGROUP brief",
        "CREATE USER fred PASSWORD 'pw'",
        "ALTER USER fred SET WORKGROUP frugal",
        "CREATE USER tom PASSWORD 'pw' WORKGROUP tight",
        "CREATE SCHEMA scratch",
        // fred writes there (a user may create tables only where it is granted).
        "GRANT CREATE ON SCHEMA scratch TO fred",
    ] {
        rows(&mut admin, statement).await;
    }
    let (_, batches) = admin.query("SHOW USERS").await.unwrap();
    let users = osprey_tests::canonical_rows(&batches);
    println!("users: {users:?}");
    assert!(
        users
            .iter()
            .any(|u| u.starts_with("fred | ") && u.ends_with(" | frugal"))
    );

    // The time limit: the workgroup's, not the coordinator's (30 minutes).
    let mut bea = login(&cluster, "bea").await;
    let started = Instant::now();
    let err = bea.query(ENDLESS).await.expect_err("stopped by the limit");
    println!("brief: stopped after {:?}: {err}", started.elapsed());
    assert_eq!(
        status_code(&err),
        Some(tonic::Code::DeadlineExceeded),
        "{err}"
    );
    assert!(
        err.to_string().contains("time limit of 2s")
            && err.to_string().contains("ALTER WORKGROUP brief"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));

    // The scan limit: refused before anything runs; small reads pass.
    let mut fred = login(&cluster, "fred").await;
    let err = fred
        .query("SELECT sum(l_quantity) FROM tpch.lineitem")
        .await
        .expect_err("over the scan limit");
    println!("frugal: {err}");
    assert_eq!(
        status_code(&err),
        Some(tonic::Code::ResourceExhausted),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("more than the 1048576 bytes workgroup frugal allows"),
        "{err}"
    );
    assert_eq!(
        rows(&mut fred, "SELECT count(*) FROM tpch.nation").await,
        vec!["25"]
    );
    // A write over the limit writes nothing.
    let err = fred
        .query("CREATE TABLE scratch.big AS SELECT * FROM tpch.lineitem")
        .await
        .expect_err("over the scan limit");
    assert_eq!(
        status_code(&err),
        Some(tonic::Code::ResourceExhausted),
        "{err}"
    );
    assert_eq!(
        rows(
            &mut admin,
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'big'"
        )
        .await,
        vec!["0"]
    );

    // The memory limit: a join whose build side outgrows it fails cleanly, while a query of
    // another workgroup on the same executors keeps running and the executors stay up.
    let mut other = cluster.client().await;
    let ticket = plan(&mut other, ENDLESS).await;
    let bystander = fetch(other, ticket);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut tom = login(&cluster, "tom").await;
    let err = tom
        .query(
            "SELECT count(*) FROM tpch.lineitem a JOIN tpch.lineitem b ON a.l_comment = b.l_comment",
        )
        .await
        .expect_err("over the memory limit");
    println!("tight: {err}");
    assert_eq!(
        status_code(&err),
        Some(tonic::Code::ResourceExhausted),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("the query's memory limit of 4194304 bytes per process"),
        "{err}"
    );
    assert!(!bystander.is_finished(), "the other query was stopped");
    bystander.abort();
    for executor in &cluster.executors {
        assert!(
            std::path::Path::new(&format!("/proc/{}", executor.pid())).exists(),
            "an executor died"
        );
    }
    assert_eq!(
        rows(&mut tom, "SELECT count(*) FROM tpch.orders").await,
        vec!["150000"]
    );
    let failures = rows(
        &mut admin,
        "SELECT user_name || ' ' || error_code || ' ' || workgroup FROM system.queries \
         WHERE state = 'FAILED'",
    )
    .await;
    assert_eq!(
        failures,
        vec![
            "bea QUERY_TIMEOUT brief",
            "fred SCAN_LIMIT_EXCEEDED frugal",
            "fred SCAN_LIMIT_EXCEEDED frugal",
            "tom RESOURCES_EXHAUSTED tight",
        ]
    );
}

/// Regular files under `dir`, at any depth.
fn files_under(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|entry| {
                    let path = entry.path();
                    if path.is_dir() { files_under(&path) } else { 1 }
                })
                .sum()
        })
        .unwrap_or(0)
}

/// A sort over its workgroup's memory limit spills to the executors' spill directories, and
/// its spill files are gone once it ends, or once it is cancelled while spilling.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spill_files_go_when_the_query_ends_or_is_cancelled() {
    let data_dir = tempfile::tempdir().unwrap();
    let spill_dirs: Vec<std::path::PathBuf> = (0..2)
        .map(|i| data_dir.path().join(format!("spill-{i}")))
        .collect();
    let executors: Vec<osprey_tests::Process> = spill_dirs
        .iter()
        .map(|dir| {
            osprey_tests::spawn_osprey(
                &[
                    "executor",
                    "--listen",
                    "127.0.0.1:0",
                    "--memory",
                    "1GiB",
                    "--spill-dir",
                    &dir.display().to_string(),
                ],
                &[("OSPREY_CLUSTER_SECRET", osprey_tests::TEST_SECRET)],
                "OSPREY_EXECUTOR_LISTENING ",
            )
        })
        .collect();
    let cluster = TestCluster::start_tpch_over(executors, data_dir, &[]);
    let coordinator = &cluster.coordinator;
    let mut admin = cluster.client().await;
    for statement in [
        "CREATE WORKGROUP tight WITH (query_memory_bytes = '32MiB')",
        "CREATE USER tom PASSWORD 'pw' WORKGROUP tight",
    ] {
        rows(&mut admin, statement).await;
    }
    let spilled = || spill_dirs.iter().map(|dir| files_under(dir)).sum::<usize>();
    let sort = "SELECT l_comment, l_orderkey FROM tpch.lineitem ORDER BY l_comment, l_orderkey";

    // Run to the end, watching the spill directories meanwhile.
    let mut tom = SqlClient::connect(coordinator.addr, "tom", "pw")
        .await
        .unwrap();
    let ticket = plan(&mut tom, sort).await;
    let run = fetch(tom, ticket);
    let mut most = 0;
    while !run.is_finished() {
        most = most.max(spilled());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (sorted, _) = run.await.unwrap().expect("the sort spills and completes");
    assert_eq!(sorted.len(), 600_572);
    println!("spill files seen while sorting: at most {most}");
    assert!(most > 0, "the sort never spilled");
    let deadline = Instant::now() + Duration::from_secs(5);
    while spilled() > 0 {
        assert!(Instant::now() < deadline, "{} spill files left", spilled());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Cancelled while spilling.
    let mut tom = SqlClient::connect(coordinator.addr, "tom", "pw")
        .await
        .unwrap();
    let ticket = plan(&mut tom, sort).await;
    let run = fetch(tom, ticket);
    let deadline = Instant::now() + Duration::from_secs(30);
    while spilled() == 0 {
        assert!(Instant::now() < deadline, "no spill file appeared");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    run.abort();
    let stopped = Instant::now();
    while spilled() > 0 {
        assert!(
            stopped.elapsed() < Duration::from_secs(5),
            "{} spill files left after the cancel",
            spilled()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!("spill files gone {:?} after the cancel", stopped.elapsed());
}
