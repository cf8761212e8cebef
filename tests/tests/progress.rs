//! The `QueryProgress` Flight action: a running statement reports rows and bytes read so far
//! and its stages done out of the total, measured on the executors; an unfetched statement is
//! `waiting`, one whose fetch started is `planning` until its physical plan exists; a finished,
//! cancelled or unknown one is `NOT_FOUND`.

use arrow_flight::CancelFlightInfoRequest;
use futures::TryStreamExt;
use osprey_tests::{SqlClient, TestCluster, rows};
use prost::Message;
use serde_json::Value;
use std::time::{Duration, Instant};

/// Asks for the progress of the statement behind `info`.
async fn progress(
    client: &mut SqlClient,
    info: &arrow_flight::FlightInfo,
) -> Result<Value, tonic::Status> {
    let ticket = info.endpoint[0].ticket.clone().unwrap();
    let body = client
        .action("QueryProgress", ticket.ticket.to_vec())
        .await?;
    Ok(serde_json::from_slice(&body).expect("JSON"))
}

fn figure(progress: &Value, name: &str) -> u64 {
    progress[name]
        .as_u64()
        .unwrap_or_else(|| panic!("no {name} in {progress}"))
}

/// A nested-loop join of lineitem with itself: it runs for a very long time, and the stage
/// that scans the build side finishes early.
const LONG: &str =
    "SELECT count(*) FROM tpch.lineitem a, tpch.lineitem b WHERE a.l_quantity < b.l_quantity";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_statements_report_their_progress() {
    let cluster = TestCluster::start_tpch(2);
    let mut c = cluster.client().await;

    // Planned but not fetched: nothing runs yet.
    let info = c.inner.execute(LONG.to_string(), None).await.unwrap();
    let waiting = progress(&mut c, &info).await.unwrap();
    assert_eq!(waiting["state"], "waiting", "{waiting}");

    // Fetch it from another connection and watch it run.
    let ticket = info.endpoint[0].ticket.clone().unwrap();
    let mut reader = cluster.client().await;
    let fetch = tokio::spawn(async move {
        let stream = reader.inner.do_get(ticket).await?;
        stream.try_collect::<Vec<_>>().await
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last_rows = 0;
    let mut seen = Vec::new();
    let last = loop {
        let now = match progress(&mut c, &info).await {
            Ok(now) => now,
            // It finished before every figure was seen.
            Err(status) => panic!("{status} after {seen:#?}"),
        };
        if now["state"] == "waiting" || now["state"] == "planning" {
            // The other connection has not fetched it yet, or it is being planned.
            assert!(Instant::now() < deadline, "never fetched");
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        assert_eq!(now["state"], "running", "{now}");
        let rows_read = figure(&now, "rows_read");
        assert!(
            rows_read >= last_rows,
            "rows read went backwards: {seen:#?} then {now}"
        );
        last_rows = rows_read;
        let total = figure(&now, "stages_total");
        let done = figure(&now, "stages_done");
        assert!(total >= 2, "the plan has several executor stages: {now}");
        assert!(done <= total, "{now}");
        assert!(figure(&now, "tasks_total") >= total, "{now}");
        assert!(figure(&now, "bytes_planned") > 0, "{now}");
        seen.push(now.clone());
        if rows_read > 0 && figure(&now, "bytes_read") > 0 && done >= 1 {
            break now;
        }
        assert!(Instant::now() < deadline, "no progress seen: {seen:#?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    println!("progress: {last}");
    // What asking costs while the query runs (each answer gathers every executor's figures;
    // answers younger than 200 ms are reused, so these are spaced out).
    let mut round_trips = Vec::new();
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let asked = Instant::now();
        let now = progress(&mut c, &info).await.unwrap();
        round_trips.push(asked.elapsed());
        assert_eq!(now["state"], "running", "{now}");
    }
    round_trips.sort();
    println!(
        "QueryProgress round trip: median {:?}, max {:?}",
        round_trips[round_trips.len() / 2],
        round_trips[round_trips.len() - 1]
    );
    assert!(
        figure(&last, "stages_done") < figure(&last, "stages_total"),
        "still running, so not every stage is done: {last}"
    );

    // Cancelled: nothing to report any more.
    let body = CancelFlightInfoRequest {
        info: Some(info.clone()),
    }
    .encode_to_vec();
    c.action("CancelFlightInfo", body).await.ok();
    let _ = fetch.await.unwrap();
    let gone = progress(&mut c, &info).await.expect_err("cancelled");
    assert_eq!(gone.code(), tonic::Code::NotFound, "{gone}");

    // A statement that finished is not found either, and a body that is no ticket is refused.
    let info = c.inner.execute("SELECT 1".to_string(), None).await.unwrap();
    let ticket = info.endpoint[0].ticket.clone().unwrap();
    let _ = c
        .inner
        .do_get(ticket)
        .await
        .unwrap()
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    let gone = progress(&mut c, &info).await.expect_err("finished");
    assert_eq!(gone.code(), tonic::Code::NotFound, "{gone}");
    let bad = c
        .action("QueryProgress", b"not a ticket".to_vec())
        .await
        .expect_err("not a ticket");
    assert_eq!(bad.code(), tonic::Code::InvalidArgument, "{bad}");

    // The cluster carries on.
    assert_eq!(
        rows(&mut c, "SELECT count(*) FROM tpch.nation").await,
        vec!["25"]
    );
}
