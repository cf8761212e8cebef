//! The query time limit: a query running past `--query-timeout-secs` is stopped on every
//! executor with a clear `DEADLINE_EXCEEDED`, recorded as `QUERY_TIMEOUT`, and the cluster
//! serves the next query.

use osprey_tests::{TestCluster, cpu_used_during, rows, status_code};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_stop_at_their_time_limit() {
    let cluster = TestCluster::start_tpch_with(2, &["--query-timeout-secs", "2"]);
    let executors = &cluster.executors;
    let mut client = cluster.client().await;
    let endless = "SELECT count(*) FROM lineitem a, lineitem b WHERE a.l_quantity < b.l_quantity";
    let started = Instant::now();
    let err = client
        .query(endless)
        .await
        .expect_err("stopped by the limit");
    let took = started.elapsed();
    println!("stopped after {took:?}: {err}");
    assert_eq!(
        status_code(&err),
        Some(tonic::Code::DeadlineExceeded),
        "{err}"
    );
    assert!(err.to_string().contains("time limit of 2s"), "{err}");
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(10),
        "{took:?}"
    );

    // Every executor stops working on it.
    let pids: Vec<u32> = executors.iter().map(|e| e.pid()).collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let used = tokio::task::spawn_blocking(move || cpu_used_during(&pids, Duration::from_secs(1)))
        .await
        .unwrap();
    assert!(
        used < Duration::from_millis(100),
        "executors still busy: {used:?}"
    );

    let recorded = rows(
        &mut client,
        "SELECT state || ' ' || error_code FROM system.queries WHERE query LIKE '%a.l_quantity < b.l_quantity%' AND query NOT LIKE '%system.queries%'",
    )
    .await;
    assert_eq!(recorded, vec!["FAILED QUERY_TIMEOUT"]);
    assert_eq!(
        rows(&mut client, "SELECT count(*) FROM nation").await,
        vec!["25"]
    );
}
