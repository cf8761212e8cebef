//! Cancelling over HTTP stops the work on every executor within a second: `DELETE` on a query
//! of the native API, and `DELETE` on a Trino statement's `nextUri`. Both are recorded as
//! cancelled, and the cluster serves the next query.

use osprey_tests::{ADMIN_PASSWORD, TestCluster, cpu_used_during, http_json, rows};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// A nested-loop join against all of lineitem that would run for a very long time.
const ENDLESS: &str =
    "SELECT count(*) FROM tpch.lineitem a, tpch.lineitem b WHERE a.l_quantity < b.l_quantity";

const ADMIN: (&str, &str) = ("admin", ADMIN_PASSWORD);

async fn call(
    http: SocketAddr,
    method: &'static str,
    path: String,
    body: Option<String>,
) -> (u16, Value) {
    tokio::task::spawn_blocking(move || http_json(http, method, &path, ADMIN, body.as_deref()))
        .await
        .unwrap()
}

async fn cpu(executors: &[u32], window: Duration) -> Duration {
    let pids = executors.to_vec();
    tokio::task::spawn_blocking(move || cpu_used_during(&pids, window))
        .await
        .unwrap()
}

/// Waits until the executors are busy (more than half a core between them).
async fn wait_until_busy(executors: &[u32], what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while cpu(executors, Duration::from_millis(300)).await <= Duration::from_millis(150) {
        assert!(
            Instant::now() < deadline,
            "{what}: executors never got busy"
        );
    }
}

/// Asserts that from one second after `stopped_at` the executors are idle.
async fn assert_quiet(executors: &[u32], stopped_at: Instant, what: &str) {
    tokio::time::sleep_until((stopped_at + Duration::from_secs(1)).into()).await;
    let used = cpu(executors, Duration::from_secs(1)).await;
    println!("{what}: executors used {used:?} of CPU in the second after the first");
    assert!(
        used < Duration::from_millis(50) * executors.len() as u32,
        "{what}: executors still used {used:?} of CPU 1-2 s after the cancel"
    );
}

/// The path of a URI the server gave out (`https://host:port/path` → `/path`).
fn path_of(uri: &Value) -> String {
    let uri = uri.as_str().expect("a URI");
    let after_scheme = uri.split_once("://").expect("absolute URI").1;
    format!("/{}", after_scheme.split_once('/').expect("a path").1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_and_trino_cancels_stop_executor_work_within_a_second() {
    let cluster = TestCluster::start_tpch(2);
    let http = cluster.coordinator.http_addr();
    let executors: Vec<u32> = cluster.executors.iter().map(|e| e.pid()).collect();

    // The native API: submitted without waiting, cancelled with DELETE.
    let body = json!({"sql": ENDLESS, "wait_timeout": "0s"}).to_string();
    let (status, answer) = call(http, "POST", "/v1/queries".into(), Some(body)).await;
    assert_eq!(status, 200, "{answer}");
    let id = answer["query_id"].as_str().unwrap().to_string();
    wait_until_busy(&executors, "native API").await;
    let stopped_at = Instant::now();
    let (status, cancelled) = call(http, "DELETE", format!("/v1/queries/{id}"), None).await;
    assert_eq!(
        (status, cancelled["state"].as_str()),
        (200, Some("CANCELLED"))
    );
    assert_quiet(&executors, stopped_at, "native API").await;

    // The Trino protocol: a client polling nextUri, cancelled with DELETE nextUri.
    let (status, first) = call(http, "POST", "/v1/statement".into(), Some(ENDLESS.into())).await;
    assert_eq!(status, 200, "{first}");
    let statement_uri = path_of(&first["nextUri"]);
    let cancelled = Arc::new(AtomicBool::new(false));
    let poller = {
        let cancelled = Arc::clone(&cancelled);
        let mut next = statement_uri.clone();
        tokio::spawn(async move {
            // Follows nextUri like a client until the statement is gone.
            let mut pages = 0;
            loop {
                let (status, page) = call(http, "GET", next.clone(), None).await;
                if status != 200 {
                    assert!(
                        cancelled.load(Ordering::SeqCst),
                        "{status} before the cancel: {page}"
                    );
                    return (status, pages);
                }
                assert!(
                    page.get("data").is_none(),
                    "the endless query answered rows: {page}"
                );
                pages += 1;
                next = path_of(&page["nextUri"]);
            }
        })
    };
    wait_until_busy(&executors, "Trino protocol").await;
    let stopped_at = Instant::now();
    cancelled.store(true, Ordering::SeqCst);
    let (status, _) = call(http, "DELETE", statement_uri, None).await;
    assert_eq!(status, 204);
    assert_quiet(&executors, stopped_at, "Trino protocol").await;
    let (status, pages) = poller.await.unwrap();
    assert_eq!(status, 404, "the cancelled statement's URIs are gone");
    assert!(pages >= 1);

    // Both are in the history as cancelled, and the cluster serves the next query.
    let mut client = cluster.client().await;
    let history = format!(
        "SELECT front_door, state FROM system.queries WHERE query = '{}'",
        ENDLESS.replace('\'', "''")
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let states = rows(&mut client, &history).await;
        if states == ["http | CANCELLED", "trino | CANCELLED"] {
            break;
        }
        assert!(Instant::now() < deadline, "history: {states:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        rows(&mut client, "SELECT count(*) FROM tpch.nation").await,
        vec!["25"]
    );
}
