//! Executors: the cluster credential, losing one between queries, and graceful shutdown.

use osprey_engine::{ClusterChannels, ExecutorProbeError, probe_executor};
use osprey_proto::{CLUSTER_SECRET_HEADER, ClusterSecret};
use osprey_tests::{TEST_SECRET, TestCluster, canonical_rows, spawn_executor};
use std::time::Duration;
use url::Url;

/// Calls `GetWorkerInfo` on `addr` with exactly the given cluster-secret header (or none).
async fn raw_get_worker_info(
    addr: std::net::SocketAddr,
    secret: Option<&str>,
) -> Result<(), tonic::Status> {
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let mut request = tonic::Request::new(());
    if let Some(secret) = secret {
        request
            .metadata_mut()
            .insert(CLUSTER_SECRET_HEADER, secret.parse().unwrap());
    }
    let path = http::uri::PathAndQuery::from_static("/worker.WorkerService/GetWorkerInfo");
    let codec = tonic_prost::ProstCodec::<(), ()>::default();
    grpc.unary(request, path, codec).await.map(|_| ())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn executor_refuses_requests_without_the_right_credential() {
    let executor = spawn_executor("127.0.0.1:0", TEST_SECRET);

    let missing = raw_get_worker_info(executor.addr, None).await.unwrap_err();
    assert_eq!(missing.code(), tonic::Code::Unauthenticated);
    assert!(
        missing.message().contains("missing cluster credential"),
        "{missing:?}"
    );

    let wrong = raw_get_worker_info(executor.addr, Some("a-wrong-secret-of-enough-length"))
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), tonic::Code::Unauthenticated);
    assert!(
        wrong.message().contains("wrong cluster credential"),
        "{wrong:?}"
    );

    // The right one is accepted, through the same raw path and through the coordinator's probe.
    raw_get_worker_info(executor.addr, Some(TEST_SECRET))
        .await
        .unwrap();
    let url = Url::parse(&format!("http://{}", executor.addr)).unwrap();
    let good = ClusterChannels::new(ClusterSecret::new(TEST_SECRET).unwrap());
    let report = probe_executor(&good, &url, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(report.version, env!("CARGO_PKG_VERSION"));
    // An idle executor: no task, nothing reserved.
    let load = report.load.expect("the executor reports its load");
    assert_eq!((load.running_tasks, load.memory_reserved_bytes), (0, 0));
    let bad = ClusterChannels::new(ClusterSecret::new("another-secret-0123456789").unwrap());
    assert!(matches!(
        probe_executor(&bad, &url, Duration::from_secs(5)).await,
        Err(ExecutorProbeError::Rejected)
    ));
}

const JOIN_QUERY: &str = "SELECT c_mktsegment, count(*) AS orders, sum(o_totalprice) AS total \
     FROM customer JOIN orders ON c_custkey = o_custkey GROUP BY c_mktsegment";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_an_executor_between_queries_and_getting_it_back() {
    let mut cluster = TestCluster::start_tpch(2);
    let mut client = cluster.client().await;
    let (_, batches) = client.query(JOIN_QUERY).await.unwrap();
    let expected = canonical_rows(&batches);
    assert_eq!(expected.len(), 5);

    let victim_addr = cluster.executors[1].addr;
    let victim_url = format!("http://{victim_addr}/");
    let survivor_url = format!("http://{}/", cluster.executors[0].addr);

    cluster.executors[1].signal(libc::SIGKILL);
    cluster.executors[1]
        .wait_exit(Duration::from_secs(5))
        .expect("killed");
    let detected = client
        .wait_for_executor_state(&victim_url, "down", Duration::from_secs(10))
        .await;
    assert!(
        detected.is_some(),
        "dead executor still listed as up after 10 s"
    );

    let tasks = |status: &[(String, String, u64)], url: &str| {
        status
            .iter()
            .find(|(u, _, _)| u == url)
            .map(|(_, _, t)| *t)
            .unwrap()
    };
    let before = client.executor_status().await;
    for _ in 0..3 {
        let (_, batches) = client
            .query(JOIN_QUERY)
            .await
            .expect("query on the survivor");
        assert_eq!(canonical_rows(&batches), expected);
    }
    let after = client.executor_status().await;
    assert!(tasks(&after, &survivor_url) > tasks(&before, &survivor_url));
    assert_eq!(tasks(&after, &victim_url), tasks(&before, &victim_url));

    // Restart it on the same address: it is picked up without restarting the coordinator.
    cluster.executors[1] = spawn_executor(&victim_addr.to_string(), TEST_SECRET);
    let back = client
        .wait_for_executor_state(&victim_url, "up", Duration::from_secs(10))
        .await;
    assert!(
        back.is_some(),
        "restarted executor not seen as up within 10 s"
    );
    let before = client.executor_status().await;
    let (_, batches) = client.query(JOIN_QUERY).await.unwrap();
    assert_eq!(canonical_rows(&batches), expected);
    let after = client.executor_status().await;
    assert!(
        tasks(&after, &victim_url) > tasks(&before, &victim_url),
        "restarted executor got no work: {after:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn executor_exits_cleanly_on_sigterm() {
    let mut executor = spawn_executor("127.0.0.1:0", TEST_SECRET);
    executor.signal(libc::SIGTERM);
    let status = executor
        .wait_exit(Duration::from_secs(10))
        .expect("executor exits after SIGTERM");
    assert!(status.success(), "{status:?}");
    assert!(
        std::net::TcpStream::connect(executor.addr).is_err(),
        "port still accepting after shutdown"
    );
}

/// The status line and body of a plain HTTP GET of `path` on `addr`.
fn http_get(addr: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("health port");
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

/// The health port for probes: alive and ready while serving, not ready (503) from the moment
/// a drain starts, gone when the executor has stopped.
#[test]
fn health_checks_report_ready_then_draining() {
    let health = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().to_string()
    };
    let mut executor = osprey_tests::spawn_osprey(
        &[
            "executor",
            "--listen",
            "127.0.0.1:0",
            "--health-listen",
            &health,
            "--drain-notice-ms",
            "3000",
        ],
        &[("OSPREY_CLUSTER_SECRET", TEST_SECRET)],
        "OSPREY_EXECUTOR_LISTENING ",
    );
    assert_eq!(http_get(&health, "/healthz"), (200, "alive\n".to_string()));
    assert_eq!(http_get(&health, "/readyz"), (200, "ready\n".to_string()));
    executor.signal(libc::SIGTERM);
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    loop {
        let (status, body) = http_get(&health, "/readyz");
        if status == 503 {
            assert_eq!(body, "draining\n");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still ready: {status}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Still alive while it drains.
    assert_eq!(http_get(&health, "/healthz").0, 200);
    let status = executor
        .wait_exit(Duration::from_secs(10))
        .expect("executor exits after its drain");
    assert!(status.success(), "{status:?}");
}

/// An executor that answers its health checks late (here: stopped with SIGSTOP, as if every core
/// were busy) is kept through the grace period, then dropped; when it answers again it is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_executor_is_kept_through_the_grace_period_then_dropped() {
    let cluster = TestCluster::start_tpch(2);
    let mut client = cluster.client().await;
    let url = format!("http://{}/", cluster.executors[1].addr);
    assert!(
        client
            .wait_for_executor_state(&url, "up", Duration::from_secs(10))
            .await
            .is_some()
    );

    cluster.executors[1].signal(libc::SIGSTOP);
    let dropped_after = client
        .wait_for_executor_state(&url, "down", Duration::from_secs(60))
        .await;
    cluster.executors[1].signal(libc::SIGCONT);
    let dropped_after = dropped_after.expect("a hung executor must be dropped within 60 s");
    // A stopped process is dropped when HTTP/2 keep-alive gives up on its connection (about
    // 20 s) or after 30 s of late answers (LATE_ANSWER_GRACE), whichever comes first; never at
    // the first late answers, as a busy executor gives them.
    assert!(
        dropped_after >= Duration::from_secs(10),
        "dropped after {dropped_after:?}: a late answer within the grace period must not drop it"
    );
    assert!(
        client
            .wait_for_executor_state(&url, "up", Duration::from_secs(10))
            .await
            .is_some(),
        "the executor answers again and must be used again"
    );
}
