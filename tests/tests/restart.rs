//! A coordinator killed under load: its restart keeps the catalog, users, workgroups and
//! history, marks the queries it left running or queued as failed with the reason, and takes
//! the clients' resubmissions.

use osprey_tests::{ADMIN_PASSWORD, SqlClient, TestCluster, canonical_rows, rows};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ENDLESS: &str =
    "SELECT count(*) FROM tpch.lineitem a, tpch.lineitem b WHERE a.l_quantity < b.l_quantity";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn coordinator_restart_under_load() {
    let mut cluster = TestCluster::start_tpch(2);
    let mut admin = cluster.client().await;
    for statement in [
        "CREATE WORKGROUP single WITH (max_concurrent_queries = 1, max_queued_queries = 5)",
        "CREATE USER sam PASSWORD 'pw' WORKGROUP single",
        "CREATE SCHEMA kept",
        "CREATE TABLE kept.nations AS SELECT n_nationkey, n_name FROM tpch.nation",
    ] {
        rows(&mut admin, statement).await;
    }
    let addr: Arc<Mutex<SocketAddr>> = Arc::new(Mutex::new(cluster.coordinator.addr));

    // Eight clients submit small queries in a loop and resubmit after failures, reconnecting
    // to wherever the coordinator listens.
    let stop = Arc::new(AtomicBool::new(false));
    let restarted = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for id in 0..8u64 {
        let addr = Arc::clone(&addr);
        let stop = Arc::clone(&stop);
        let restarted = Arc::clone(&restarted);
        clients.push(tokio::spawn(async move {
            let mut successes_after_restart = 0u64;
            let mut failures = 0u64;
            let mut client: Option<SqlClient> = None;
            while !stop.load(Ordering::SeqCst) {
                if client.is_none() {
                    let target = *addr.lock().unwrap();
                    client = SqlClient::connect(target, "admin", ADMIN_PASSWORD)
                        .await
                        .ok();
                    if client.is_none() {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                }
                let sql = format!("SELECT count(*) + {id} FROM tpch.orders");
                let was_restarted = restarted.load(Ordering::SeqCst);
                match client.as_mut().unwrap().query(&sql).await {
                    Ok((_, batches)) => {
                        assert_eq!(canonical_rows(&batches), vec![(150_000 + id).to_string()]);
                        if was_restarted {
                            successes_after_restart += 1;
                        }
                    }
                    Err(_) => {
                        failures += 1;
                        client = None;
                    }
                }
            }
            (successes_after_restart, failures)
        }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;

    // In flight when it dies: one query running and one queued behind it in a workgroup.
    let mut sam = SqlClient::connect(cluster.coordinator.addr, "sam", "pw")
        .await
        .unwrap();
    let mut sam_too = SqlClient::connect(cluster.coordinator.addr, "sam", "pw")
        .await
        .unwrap();
    let running = tokio::spawn(async move { sam.query(ENDLESS).await.map(|_| ()) });
    let deadline = Instant::now() + Duration::from_secs(30);
    while rows(
        &mut admin,
        "SELECT count(*) FROM system.queries WHERE user_name = 'sam' AND state = 'RUNNING'",
    )
    .await
        != vec!["1"]
    {
        assert!(Instant::now() < deadline, "sam's query never ran");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let queued = tokio::spawn(async move {
        sam_too
            .query("SELECT count(*) FROM tpch.region")
            .await
            .map(|_| ())
    });
    while rows(
        &mut admin,
        "SELECT count(*) FROM system.queries WHERE user_name = 'sam' AND state = 'QUEUED'",
    )
    .await
        != vec!["1"]
    {
        assert!(Instant::now() < deadline, "sam's second query never queued");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    cluster.coordinator.signal(libc::SIGKILL);
    cluster.coordinator.wait_exit(Duration::from_secs(10));
    assert!(running.await.unwrap().is_err());
    assert!(queued.await.unwrap().is_err());
    cluster.restart_coordinator();
    *addr.lock().unwrap() = cluster.coordinator.addr;
    restarted.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::SeqCst);
    let mut failures = 0;
    for client in clients {
        let (after, failed) = client.await.unwrap();
        assert!(after > 0, "a client could not resubmit after the restart");
        failures += failed;
    }
    println!("client statements cut by the restart: {failures}");

    let mut admin = cluster.client().await;
    // The catalog, users and workgroups persist.
    assert_eq!(
        rows(&mut admin, "SELECT count(*) FROM kept.nations").await,
        vec!["25"]
    );
    let (_, batches) = admin.query("SHOW WORKGROUPS").await.unwrap();
    assert!(
        canonical_rows(&batches)
            .iter()
            .any(|line| line.starts_with("single | false | 1 | 5 |")),
        "{:?}",
        canonical_rows(&batches)
    );
    let mut sam = SqlClient::connect(cluster.coordinator.addr, "sam", "pw")
        .await
        .expect("sam logs in after the restart");
    assert_eq!(
        rows(&mut sam, "SELECT count(*) FROM tpch.region").await,
        vec!["5"]
    );
    // Queries in flight at the kill are failed with the reason; none stays RUNNING or QUEUED.
    assert_eq!(
        rows(
            &mut admin,
            "SELECT error_code || ' ' || error_message FROM system.queries \
             WHERE user_name = 'sam' AND state = 'FAILED'",
        )
        .await,
        vec![
            "COORDINATOR_RESTARTED the coordinator stopped while the query ran",
            "COORDINATOR_RESTARTED the coordinator stopped while the query ran",
        ]
    );
    assert_eq!(
        rows(
            &mut admin,
            "SELECT count(*) FROM system.queries WHERE state IN ('RUNNING', 'QUEUED') \
             AND query NOT LIKE '%system.queries%'",
        )
        .await,
        vec!["0"]
    );
    // The history from before the restart is still there.
    let before: u64 = rows(
        &mut admin,
        "SELECT count(*) FROM system.queries WHERE query LIKE '%FROM tpch.orders%' \
         AND state = 'SUCCEEDED'",
    )
    .await[0]
        .parse()
        .unwrap();
    assert!(before > 8, "{before}");
}
