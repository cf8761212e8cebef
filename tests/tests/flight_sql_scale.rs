//! Scale through the Flight SQL front door: a 10-million-row result streams with the
//! coordinator's memory bounded (it never holds the result), and neither a large plan nor a
//! wide row hits a gRPC message limit.

use datafusion::arrow::array::Array;
use datafusion::arrow::datatypes::DataType;
use futures::StreamExt;
use osprey_tests::{TestCluster, rows, rss_bytes, status_code};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_million_rows_stream_with_bounded_coordinator_memory() {
    let cluster = TestCluster::start_tpch(2);
    let mut client = cluster.client().await;
    let coordinator_pid = cluster.coordinator.pid();
    let baseline = rss_bytes(coordinator_pid);

    // Sample the coordinator's resident memory while the result streams.
    let peak = Arc::new(AtomicU64::new(baseline));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (Arc::clone(&peak), Arc::clone(&done));
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(rss_bytes(coordinator_pid), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };

    // 600,572 lineitem rows × 17 = 10,209,724 rows.
    let sql = "SELECT l_orderkey, l_comment, value FROM lineitem CROSS JOIN range(17)";
    let info = client.inner.execute(sql.into(), None).await.unwrap();
    let (mut rows_seen, mut result_bytes, mut value_sum) = (0u64, 0u64, 0i64);
    for endpoint in info.endpoint {
        let mut stream = client
            .inner
            .do_get(endpoint.ticket.expect("ticket"))
            .await
            .unwrap();
        while let Some(batch) = stream.next().await {
            let batch = batch.unwrap();
            rows_seen += batch.num_rows() as u64;
            result_bytes += batch.get_array_memory_size() as u64;
            let values = batch
                .column(2)
                .as_any()
                .downcast_ref::<datafusion::arrow::array::Int64Array>()
                .expect("value is Int64");
            value_sum += values.iter().flatten().sum::<i64>();
        }
    }
    done.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    let growth = peak.load(Ordering::Relaxed).saturating_sub(baseline);
    println!(
        "{rows_seen} rows, {} MiB as Arrow; coordinator RSS {} MiB before, grew by {} MiB",
        result_bytes >> 20,
        baseline >> 20,
        growth >> 20
    );
    assert_eq!(rows_seen, 600_572 * 17);
    assert_eq!(value_sum, 600_572 * (0..17).sum::<i64>());
    // The coordinator streams: its memory grows by a fraction of the result, not the result.
    assert!(
        growth < result_bytes / 4,
        "coordinator grew by {growth} bytes for a {result_bytes}-byte result"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_plans_and_wide_rows_pass_and_oversized_requests_are_refused() {
    let cluster = TestCluster::start_tpch(2);
    let mut client = cluster.client().await;

    // A 6 MiB literal makes the plan shipped to every executor larger than gRPC's usual 4 MiB.
    let literal = "x".repeat(6 << 20);
    let sql = format!("SELECT count(*) FROM lineitem WHERE l_comment <> '{literal}'");
    assert_eq!(rows(&mut client, &sql).await, vec!["600572"]);

    // Rows of 5 MiB each cross the exchange and reach the client, one message per row.
    let (_, batches) = client
        .query(
            "SELECT l_orderkey, l_linenumber, repeat(l_shipmode, 1 << 20) AS wide FROM lineitem \
             WHERE l_orderkey = 1 ORDER BY l_linenumber",
        )
        .await
        .unwrap();
    let lengths: Vec<usize> = batches
        .iter()
        .flat_map(|batch| {
            let wide = datafusion::arrow::compute::cast(batch.column(2), &DataType::LargeUtf8)
                .expect("wide is a string");
            let wide = wide
                .as_any()
                .downcast_ref::<datafusion::arrow::array::LargeStringArray>()
                .expect("cast to LargeUtf8")
                .clone();
            (0..wide.len()).map(move |i| wide.value(i).len())
        })
        .collect();
    assert_eq!(lengths.len(), 6);
    assert!(lengths.iter().all(|&len| len >= 3 << 20), "{lengths:?}");

    // A request above the coordinator's limit (16 MiB) is refused, and the service stays up.
    let huge = format!("SELECT '{}'", "y".repeat(17 << 20));
    let err = client.inner.execute(huge, None).await.unwrap_err();
    assert_eq!(
        status_code(&err),
        Some(tonic::Code::ResourceExhausted),
        "{err}"
    );
    assert_eq!(rows(&mut client, "SELECT 1").await, vec!["1"]);
}
