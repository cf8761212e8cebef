//! All 22 TPC-H queries at SF0.1 through a coordinator with two executor processes, compared
//! with single-process DataFusion over the same Parquet files.

use osprey_tests::{TestCluster, canonical_rows, tpch_mismatches, tpch_reference};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tpch_sf01_matches_single_process_datafusion() {
    // Partitions pinned, so the plans' snapshots do not depend on the machine's cores.
    let cluster = TestCluster::start_tpch_with(2, &["--target-partitions", "2"]);
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
    let data_dir = cluster.data_dir.path().display().to_string();
    assert_plans_match_their_snapshots(&mut client, &data_dir).await;

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

/// The distributed plan of each of the 22 TPC-H queries at SF0.1 over two executors, kept as
/// snapshots (`tests/tests/snapshots/`) so that a planning change shows up in review. After a
/// deliberate change, `INSTA_UPDATE=always cargo test -p osprey-tests --test tpch_distributed`
/// (or `cargo insta review`) rewrites them; read the diff before committing it.
async fn assert_plans_match_their_snapshots(client: &mut osprey_tests::SqlClient, data_dir: &str) {
    // Plans show file paths without their leading `/`.
    let data_dir = regex_escape(data_dir.trim_start_matches('/'));
    for query in 1..=22 {
        let mut plans = Vec::new();
        for statement in osprey_tests::tpch_statements(query) {
            if !statement.trim_start().to_lowercase().starts_with("select") {
                client.query(&statement).await.unwrap();
                continue;
            }
            let (_, batches) = client
                .query(&format!("EXPLAIN {statement}"))
                .await
                .unwrap_or_else(|err| panic!("EXPLAIN of q{query}: {err}"));
            plans.push(physical_plan(&batches));
        }
        insta::with_settings!({
            snapshot_suffix => format!("q{query:02}"),
            description => format!("EXPLAIN of TPC-H q{query} (SF0.1, two executors)"),
            omit_expression => true,
            filters => vec![(data_dir.as_str(), "[DATA]")],
        }, {
            insta::assert_snapshot!("tpch_plan", plans.join("\n\n"));
        });
    }
}

/// The distributed plan of an EXPLAIN answer (the physical plan when it has no stages).
fn physical_plan(batches: &[datafusion::arrow::array::RecordBatch]) -> String {
    use datafusion::arrow::array::AsArray;
    let mut physical = None;
    for batch in batches {
        let kinds = batch.column(0).as_string::<i32>();
        let plans = batch.column(1).as_string::<i32>();
        for row in 0..batch.num_rows() {
            match kinds.value(row) {
                "distributed_plan" => return plans.value(row).trim_end().to_string(),
                "physical_plan" => physical = Some(plans.value(row).trim_end().to_string()),
                _ => {}
            }
        }
    }
    physical.expect("EXPLAIN answers a physical plan")
}

/// `text` as a regular expression that matches it literally.
fn regex_escape(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            let special = "\\.+*?()|[]{}^$#&-~".contains(c);
            special
                .then_some('\\')
                .into_iter()
                .chain(std::iter::once(c))
        })
        .collect()
}
