//! All 22 TPC-H queries at SF0.1 through a coordinator with two executor processes, compared
//! with single-process DataFusion over the same Parquet files.

use osprey_tests::{TestCluster, canonical_rows, tpch_mismatches, tpch_reference};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tpch_sf01_matches_single_process_datafusion() {
    let cluster = TestCluster::start_tpch(2);
    let mut client = cluster.client().await;

    let reference = tpch_reference(&cluster.tpch_dir()).await;

    let before = client.executor_status().await;
    assert_eq!(before.len(), 2, "both executors are known: {before:?}");
    assert!(
        before.iter().all(|(_, state, _)| state == "up"),
        "{before:?}"
    );

    let mismatches = tpch_mismatches(&mut client, &reference).await;
    assert!(
        mismatches.is_empty(),
        "results differ:\n{}",
        mismatches.join("\n")
    );

    // Work really ran on both executors.
    let after = client.executor_status().await;
    for ((url, _, tasks_before), (_, state, tasks_after)) in before.iter().zip(after.iter()) {
        assert_eq!(state, "up");
        assert!(
            tasks_after > tasks_before,
            "executor {url} ran no task during TPC-H ({tasks_before} -> {tasks_after})"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_shows_stages_and_explain_analyze_shows_metrics() {
    let cluster = TestCluster::start_tpch(2);
    let mut client = cluster.client().await;
    let query = "SELECT l_returnflag, count(*) AS n FROM lineitem GROUP BY l_returnflag";

    let (_, batches) = client.query(&format!("EXPLAIN {query}")).await.unwrap();
    let text = canonical_rows(&batches).join("\n");
    assert!(text.contains("distributed_plan"), "{text}");
    assert!(text.contains("Stage 1"), "no stages in EXPLAIN:\n{text}");
    assert!(
        text.contains("tasks=2"),
        "scan not split into 2 tasks:\n{text}"
    );

    let (_, batches) = client
        .query(&format!("EXPLAIN ANALYZE {query}"))
        .await
        .unwrap();
    let text = canonical_rows(&batches).join("\n");
    assert!(text.contains("Stage 1"), "{text}");
    assert!(text.contains("output_rows="), "no row metrics:\n{text}");
    assert!(
        text.contains("bytes_transferred="),
        "no exchange metrics:\n{text}"
    );
    assert!(
        text.contains("elapsed_compute="),
        "no time metrics:\n{text}"
    );
}
