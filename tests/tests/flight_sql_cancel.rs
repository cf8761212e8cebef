//! CancelFlightInfo stops a query whose result is streaming, and drops one whose ticket was not
//! fetched yet; both are recorded as cancelled, and the cluster serves the next query. A cancel
//! and a client that disconnects both stop the work on every executor within a second, and the
//! executors report its tasks gone.

use arrow_flight::{CancelFlightInfoRequest, CancelFlightInfoResult, CancelStatus};
use futures::TryStreamExt;
use osprey_tests::{SqlClient, TestCluster, cpu_used_during, rows, status_code};
use prost::Message;
use std::time::{Duration, Instant};

async fn cancel(
    client: &mut SqlClient,
    info: arrow_flight::FlightInfo,
) -> Result<i32, tonic::Status> {
    let body = CancelFlightInfoRequest { info: Some(info) }.encode_to_vec();
    let result = client.action("CancelFlightInfo", body).await?;
    Ok(CancelFlightInfoResult::decode(result.as_slice())
        .unwrap()
        .status)
}

/// A nested-loop join against all of lineitem that would run for a very long time: each input
/// batch becomes billions of comparisons, the worst case for noticing a cancellation.
const ENDLESS: &str =
    "SELECT count(*) FROM tpch.lineitem a, tpch.lineitem b WHERE a.l_quantity < b.l_quantity";

type Fetch = tokio::task::JoinHandle<
    Result<Vec<datafusion::arrow::array::RecordBatch>, arrow_flight::error::FlightError>,
>;

/// Plans [`ENDLESS`] and fetches its result from a second connection in the background.
async fn start_endless(
    cluster: &TestCluster,
    c: &mut SqlClient,
) -> (arrow_flight::FlightInfo, Fetch) {
    let info = c.inner.execute(ENDLESS.to_string(), None).await.unwrap();
    let ticket = info.endpoint[0].ticket.clone().unwrap();
    let mut reader = cluster.client().await;
    let fetch = tokio::spawn(async move {
        let stream = reader.inner.do_get(ticket).await?;
        stream.try_collect::<Vec<_>>().await
    });
    (info, fetch)
}

async fn state_of(client: &mut SqlClient, sql: &str) -> Vec<String> {
    rows(
        client,
        &format!(
            "SELECT state FROM system.queries WHERE query = '{}'",
            sql.replace('\'', "''")
        ),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_flight_info_stops_queries() {
    let cluster = TestCluster::start_tpch(2);
    let mut c = cluster.client().await;

    let endless = ENDLESS;
    let (info, fetch) = start_endless(&cluster, &mut c).await;
    // Wait until it is really running, then cancel it.
    let deadline = Instant::now() + Duration::from_secs(30);
    while state_of(&mut c, endless).await != vec!["RUNNING"] {
        assert!(Instant::now() < deadline, "the query never started");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        cancel(&mut c, info.clone()).await.unwrap(),
        CancelStatus::Cancelled as i32
    );
    let err = fetch
        .await
        .unwrap()
        .expect_err("the stream ends with an error");
    assert_eq!(status_code(&err), Some(tonic::Code::Cancelled), "{err}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while state_of(&mut c, endless).await != vec!["CANCELLED"] {
        assert!(Instant::now() < deadline, "not recorded as cancelled");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Cancelling again: nothing left to cancel.
    let status = cancel(&mut c, info).await.expect_err("already cancelled");
    assert_eq!(status.code(), tonic::Code::NotFound, "{status}");

    // A ticket cancelled before it is fetched cannot be fetched.
    let waiting = "SELECT 7 AS waiting";
    let info = c.inner.execute(waiting.to_string(), None).await.unwrap();
    let ticket = info.endpoint[0].ticket.clone().unwrap();
    cancel(&mut c, info).await.unwrap();
    let err = c.inner.do_get(ticket).await.expect_err("cancelled ticket");
    assert_eq!(status_code(&err), Some(tonic::Code::NotFound), "{err}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while state_of(&mut c, waiting).await != vec!["CANCELLED"] {
        assert!(Instant::now() < deadline, "not recorded as cancelled");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The executors serve the next query.
    assert_eq!(
        rows(&mut c, "SELECT count(*) FROM tpch.orders").await,
        vec!["150000"]
    );
}

/// Each executor's URL, tasks held and memory reserved, from `system.executors`; `None` while
/// an executor has no current load report (its last health check went unanswered, which a
/// saturated two-core machine can cause: the figures are unknown, not zero).
async fn executor_loads(client: &mut SqlClient) -> Option<Loads> {
    rows(
        client,
        "SELECT url || ' ' || CAST(running_tasks AS VARCHAR) || ' ' || \
         CAST(memory_reserved_bytes AS VARCHAR) FROM system.executors ORDER BY url",
    )
    .await
    .iter()
    .map(|row| {
        let parts: Vec<&str> = row.split(' ').collect();
        match parts.as_slice() {
            [url, tasks, memory] => Some((
                url.to_string(),
                tasks.parse().expect("a task count"),
                memory.parse().expect("a byte count"),
            )),
            _ => None,
        }
    })
    .collect()
}

type Loads = Vec<(String, u64, u64)>;

/// Polls [`executor_loads`] until every executor reports and `done` holds (the loads then), or
/// `deadline` passes (the loads then; none if an executor had no report).
async fn wait_for_loads(
    client: &mut SqlClient,
    deadline: Instant,
    done: impl Fn(&Loads) -> bool,
) -> Result<Loads, Loads> {
    loop {
        let loads = executor_loads(client).await;
        if let Some(loads) = &loads
            && done(loads)
        {
            return Ok(loads.clone());
        }
        if Instant::now() >= deadline {
            return Err(loads.unwrap_or_default());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// How a client stops a running query.
#[derive(Debug, Clone, Copy)]
enum Stop {
    Cancel,
    Disconnect,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_and_disconnect_stop_executor_work_within_a_second() {
    let cluster = TestCluster::start_tpch(2);
    let executors: Vec<u32> = cluster.executors.iter().map(|e| e.pid()).collect();
    let mut c = cluster.client().await;
    for stop in [Stop::Cancel, Stop::Disconnect] {
        let (info, fetch) = start_endless(&cluster, &mut c).await;
        // Wait until the executors are busy with it (more than half a core between them).
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let pids = executors.clone();
            let used = tokio::task::spawn_blocking(move || {
                cpu_used_during(&pids, Duration::from_millis(300))
            })
            .await
            .unwrap();
            if used > Duration::from_millis(150) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{stop:?}: executors never got busy"
            );
        }
        // The executors report holding its tasks (at their next health check).
        let busy = wait_for_loads(&mut c, Instant::now() + Duration::from_secs(5), |loads| {
            loads.iter().any(|(_, tasks, _)| *tasks > 0)
        })
        .await
        .unwrap_or_else(|loads| panic!("{stop:?}: no task seen: {loads:?}"));
        println!("{stop:?}: while running: {busy:?}");
        let stopped_at = Instant::now();
        match stop {
            Stop::Cancel => {
                cancel(&mut c, info).await.unwrap();
            }
            // Dropping the task drops the reader's connection mid-stream.
            Stop::Disconnect => fetch.abort(),
        }
        // How long the executors took to go quiet (informational; the assertion follows).
        let quiet_after = loop {
            let pids = executors.clone();
            let used = tokio::task::spawn_blocking(move || {
                cpu_used_during(&pids, Duration::from_millis(50))
            })
            .await
            .unwrap();
            if used < Duration::from_millis(10) || stopped_at.elapsed() > Duration::from_secs(1) {
                break stopped_at.elapsed();
            }
        };
        println!("{stop:?}: executors quiet {quiet_after:?} after the stop");
        // From one second after the stop, the executors are idle: under 5% of a core each.
        tokio::time::sleep_until((stopped_at + Duration::from_secs(1)).into()).await;
        let pids = executors.clone();
        let used =
            tokio::task::spawn_blocking(move || cpu_used_during(&pids, Duration::from_secs(1)))
                .await
                .unwrap();
        println!("{stop:?}: executors used {used:?} of CPU in the second after the first");
        assert!(
            used < Duration::from_millis(50) * executors.len() as u32,
            "{stop:?}: executors still used {used:?} of CPU 1-2 s after the stop"
        );
        // Their tasks are gone, as the executors report it at their next health checks (each
        // second).
        let gone = wait_for_loads(&mut c, stopped_at + Duration::from_secs(4), |loads| {
            loads.iter().all(|(_, tasks, _)| *tasks == 0)
        })
        .await
        .unwrap_or_else(|loads| panic!("{stop:?}: tasks still held: {loads:?}"));
        println!("{stop:?}: tasks gone: {gone:?}");
    }
    // The executors serve the next query, and their memory is all returned: a stopped join's
    // build side lives as long as its plan, which the library's task cache releases at its
    // next housekeeping (the next query's tasks), not at once.
    assert_eq!(
        rows(&mut c, "SELECT sum(o_totalprice) > 0 FROM tpch.orders").await,
        vec!["true"]
    );
    let returned = wait_for_loads(&mut c, Instant::now() + Duration::from_secs(5), |loads| {
        loads
            .iter()
            .all(|(_, tasks, memory)| *tasks == 0 && *memory == 0)
    })
    .await
    .unwrap_or_else(|loads| panic!("memory still reserved: {loads:?}"));
    println!("after the next query: {returned:?}");
}
