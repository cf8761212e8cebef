//! A busy cluster: 32 clients at once with small and large queries for about a minute
//! (`OSPREY_LOAD_SECS`), where the only failures are the refusals of a deliberately tiny
//! workgroup and memory stays bounded (sampled RSS).

use osprey_tests::{
    ADMIN_PASSWORD, SqlClient, TestCluster, canonical_rows, rows, rss_bytes, status_code,
};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Small lookups and TPC-H queries that take a while, run in turn by every client.
fn workload() -> Vec<(&'static str, String)> {
    let tpch = |n: usize| {
        let statements = osprey_tests::tpch_statements(n);
        assert_eq!(statements.len(), 1, "TPC-H Q{n} is one statement");
        statements[0].clone()
    };
    vec![
        ("nation count", "SELECT count(*) FROM nation".to_string()),
        (
            "region names",
            "SELECT r_name FROM region ORDER BY r_name".to_string(),
        ),
        ("tpch q1", tpch(1)),
        ("tpch q3", tpch(3)),
        ("tpch q6", tpch(6)),
        ("tpch q18", tpch(18)),
    ]
}

async fn login(addr: SocketAddr, user: &str, password: &str) -> SqlClient {
    SqlClient::connect(addr, user, password)
        .await
        .expect("login")
}

#[derive(Default, Debug)]
struct Outcomes {
    correct: BTreeMap<&'static str, u64>,
    /// Refusals of the tiny workgroup (intended).
    refused: u64,
    /// Anything else: wrong answers and unexpected errors.
    unexpected: Vec<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_two_clients_with_mixed_queries() {
    let seconds: u64 = std::env::var("OSPREY_LOAD_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let cluster = TestCluster::start_tpch(2);
    let addr = cluster.coordinator.addr;
    let mut admin = cluster.client().await;
    for statement in [
        "CREATE WORKGROUP tiny WITH (max_concurrent_queries = 1, max_queued_queries = 0)",
        "CREATE USER tina PASSWORD 'pw' WORKGROUP tiny",
        "CREATE USER lee PASSWORD 'pw'",
    ] {
        rows(&mut admin, statement).await;
    }
    // The answers, from one quiet run.
    let workload = Arc::new(workload());
    let mut expected = Vec::new();
    for (_, sql) in workload.iter() {
        expected.push(rows(&mut admin, sql).await);
    }
    let expected = Arc::new(expected);

    let pids: Vec<(String, u32)> =
        std::iter::once(("coordinator".to_string(), cluster.coordinator.pid()))
            .chain(
                cluster
                    .executors
                    .iter()
                    .enumerate()
                    .map(|(i, e)| (format!("executor {i}"), e.pid())),
            )
            .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let samples: Arc<Mutex<Vec<Vec<u64>>>> = Arc::default();
    let sampler = {
        let stop = Arc::clone(&stop);
        let samples = Arc::clone(&samples);
        let pids: Vec<u32> = pids.iter().map(|(_, pid)| *pid).collect();
        tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let sample = pids.iter().map(|pid| rss_bytes(*pid)).collect();
                samples.lock().unwrap().push(sample);
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        })
    };

    let outcomes: Arc<Mutex<Outcomes>> = Arc::default();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut clients = Vec::new();
    for id in 0..32usize {
        // Four clients share the tiny workgroup: most of their queries are refused at once.
        let (user, password) = match id % 8 {
            0 => ("tina", "pw"),
            1..=3 => ("lee", "pw"),
            _ => ("admin", ADMIN_PASSWORD),
        };
        let workload = Arc::clone(&workload);
        let expected = Arc::clone(&expected);
        let outcomes = Arc::clone(&outcomes);
        clients.push(tokio::spawn(async move {
            let mut client = login(addr, user, password).await;
            let mut turn = id;
            while Instant::now() < deadline {
                let index = turn % workload.len();
                turn += 1;
                let (name, sql) = &workload[index];
                let result = client.query(sql).await;
                let refused = {
                    let mut refused = false;
                    let mut outcomes = outcomes.lock().unwrap();
                    match result {
                        Ok((_, batches)) if canonical_rows(&batches) == expected[index] => {
                            *outcomes.correct.entry(name).or_default() += 1;
                        }
                        Ok(_) => outcomes
                            .unexpected
                            .push(format!("{user}: wrong answer to {name}")),
                        Err(err)
                            if user == "tina"
                                && status_code(&err) == Some(tonic::Code::Unavailable)
                                && err.to_string().contains("workgroup tiny is at its limit") =>
                        {
                            outcomes.refused += 1;
                            refused = true;
                        }
                        Err(err) => outcomes.unexpected.push(format!("{user}: {name}: {err}")),
                    }
                    refused
                };
                if refused {
                    // As a client told to try again shortly would.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }));
    }
    for client in clients {
        client.await.unwrap();
    }
    stop.store(true, Ordering::SeqCst);
    sampler.await.unwrap();

    let outcomes = std::mem::take(&mut *outcomes.lock().unwrap());
    println!("after {seconds} s: {outcomes:?}");
    let samples = std::mem::take(&mut *samples.lock().unwrap());
    for (column, (name, _)) in pids.iter().enumerate() {
        let series: Vec<u64> = samples.iter().map(|s| s[column] >> 20).collect();
        println!(
            "{name} RSS (MiB, one sample a second): max {}, last {}, {series:?}",
            series.iter().max().unwrap_or(&0),
            series.last().unwrap_or(&0)
        );
    }
    assert!(
        outcomes.unexpected.is_empty(),
        "unexpected failures: {:?}",
        outcomes.unexpected
    );
    assert!(outcomes.refused > 0, "the tiny workgroup refused nothing");
    for (name, _) in workload.iter() {
        assert!(
            outcomes.correct.get(name).copied().unwrap_or(0) > 0,
            "{name} never completed"
        );
    }
    // Bounded memory: executors have a 1 GiB pool (spilling beyond it), the coordinator a 4
    // GiB one it never needs for these results; neither may grow past a fixed ceiling.
    for (column, (name, _)) in pids.iter().enumerate() {
        let max = samples.iter().map(|s| s[column]).max().unwrap_or(0);
        assert!(max < 1536 << 20, "{name} reached {} MiB", max >> 20);
    }

    // Nothing is left running or queued.
    let mut admin = cluster.client().await;
    let left = rows(
        &mut admin,
        "SELECT count(*) FROM system.queries WHERE state IN ('RUNNING', 'QUEUED') \
         AND query NOT LIKE '%system.queries%'",
    )
    .await;
    assert_eq!(left, vec!["0"]);
    let (_, batches) = admin.query("SHOW WORKGROUPS").await.unwrap();
    for line in canonical_rows(&batches) {
        assert!(line.ends_with(" | 0 | 0"), "{line}");
    }
}
