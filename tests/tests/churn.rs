//! Discovery under churn: an executor started mid-run on a configured address receives tasks
//! within seconds, and an executor sent SIGTERM mid-query drains: the query finishes on its
//! first run, the executor takes no new work, and exits by itself once its tasks are done.

use osprey_tests::{
    ADMIN_PASSWORD, CoordinatorOptions, SqlClient, TEST_SECRET, canonical_rows, rows,
    spawn_coordinator, spawn_executor, tpch_statements,
};
use std::time::{Duration, Instant};

/// A loopback address nobody listens on yet.
fn free_address() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_executors_get_work_and_draining_ones_finish_theirs() {
    let data_dir = tempfile::tempdir().unwrap();
    let mut executors: Vec<_> = (0..2)
        .map(|_| spawn_executor("127.0.0.1:0", TEST_SECRET))
        .collect();
    let late = free_address();
    let mut urls: Vec<String> = executors
        .iter()
        .map(|e| format!("http://{}", e.addr))
        .collect();
    urls.push(format!("http://{late}"));
    let coordinator = spawn_coordinator(CoordinatorOptions {
        executors: urls.clone(),

        data_dir: data_dir.path(),
        tpch_scale: Some("0.1"),
        default_schema: "tpch",
        extra_args: &[],
    });
    // As system.executors shows them.
    let urls: Vec<String> = urls.iter().map(|url| format!("{url}/")).collect();
    let mut client = SqlClient::connect(coordinator.addr, "admin", ADMIN_PASSWORD)
        .await
        .unwrap();
    let q9 = tpch_statements(9).remove(0);
    let (_, batches) = client.query(&q9).await.unwrap();
    let expected = canonical_rows(&batches);

    // Scale out: the third executor starts now and is used within seconds.
    let _third = spawn_executor(&late, TEST_SECRET);
    let noticed = client
        .wait_for_executor_state(&urls[2], "up", Duration::from_secs(10))
        .await
        .expect("the new executor was never seen up");
    println!("new executor up after {noticed:?}");
    let (_, batches) = client.query(&q9).await.unwrap();
    assert_eq!(canonical_rows(&batches), expected);
    let status = client.executor_status().await;
    let third = status.iter().find(|(url, ..)| url == &urls[2]).unwrap();
    assert!(third.2 > 0, "the new executor received no task: {status:?}");

    // Drain: SIGTERM the first executor a third of the way through a query that runs on all
    // three for a few seconds.
    let join =
        "SELECT count(*) AS pairs FROM lineitem a JOIN lineitem b ON a.l_suppkey = b.l_suppkey";
    let started = Instant::now();
    let (_, batches) = client.query(join).await.unwrap();
    let (join_answer, join_time) = (canonical_rows(&batches), started.elapsed());
    println!("the join takes {join_time:?}");
    let mut runner = SqlClient::connect(coordinator.addr, "admin", ADMIN_PASSWORD)
        .await
        .unwrap();
    let running = tokio::spawn(async move { runner.query(join).await });
    tokio::time::sleep(join_time / 3).await;
    assert!(
        !running.is_finished(),
        "the query ended before the drain began"
    );
    let drained = &mut executors[0];
    drained.signal(libc::SIGTERM);
    let signalled = Instant::now();
    // Discovery sees it draining (its health check says so) while it finishes its tasks.
    assert!(
        client
            .wait_for_executor_state(&urls[0], "draining", Duration::from_secs(5))
            .await
            .is_some(),
        "{:?}",
        client.executor_status().await
    );
    let (_, batches) = running
        .await
        .unwrap()
        .expect("the query finished despite the drain");
    assert_eq!(canonical_rows(&batches), join_answer);
    let exit = tokio::task::block_in_place(|| drained.wait_exit(Duration::from_secs(30)))
        .expect("the draining executor never exited");
    assert!(exit.success(), "draining executor exit: {exit:?}");
    println!(
        "drained executor exited {:?} after SIGTERM",
        signalled.elapsed()
    );

    // Both runs of the join ran once (no rerun was needed), and the cluster serves the next
    // query without the drained executor.
    let attempts = rows(
        &mut client,
        "SELECT max(attempts) FROM system.queries WHERE query LIKE '%l_suppkey = b.l_suppkey%'",
    )
    .await;
    assert_eq!(attempts, vec!["1"]);
    let (_, batches) = client.query(&q9).await.unwrap();
    assert_eq!(canonical_rows(&batches), expected);
}
