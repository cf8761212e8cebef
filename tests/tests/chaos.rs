//! Queries survive executor loss. Three executors run TPC-H SF0.1 Q9, Q18 and Q21 in turn;
//! during each of 21 runs one executor, chosen at random, is killed with SIGKILL at a random
//! moment of the query. Every query must return exactly the answer it gives on a healthy
//! cluster; the killed executor is restarted on the same address between runs. The history
//! shows the runs that were repeated, and why.
//!
//! Random choices come from a fixed seed (`OSPREY_CHAOS_SEED` to vary it), so a failure can be
//! replayed.

use futures::TryStreamExt;
use osprey_tests::{
    SqlClient, TEST_SECRET, TestCluster, canonical_rows, rows, spawn_executor, tpch_statements,
};
use std::time::{Duration, Instant};

/// A small deterministic generator (xorshift): enough to pick victims and moments.
struct Dice(u64);

impl Dice {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 32) % n.max(1)
    }
}

async fn run_query(client: &mut SqlClient, sql: &str) -> Result<Vec<String>, String> {
    client
        .query(sql)
        .await
        .map(|(_, batches)| canonical_rows(&batches))
        .map_err(|err| err.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_survive_executors_killed_mid_query() {
    let seed: u64 = std::env::var("OSPREY_CHAOS_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or(0x05b7_e1c4_a05f);
    let mut dice = Dice(seed | 1);
    let mut cluster = TestCluster::start_tpch(3);
    let addresses: Vec<String> = cluster
        .executors
        .iter()
        .map(|e| e.addr.to_string())
        .collect();
    let mut client = cluster.client().await;

    // The answers, and how long each query takes, on a healthy cluster.
    let queries = [9, 18, 21];
    let mut expected = Vec::new();
    for query in queries {
        let sql = tpch_statements(query).remove(0);
        let started = Instant::now();
        let answer = run_query(&mut client, &sql).await.unwrap();
        assert!(!answer.is_empty(), "Q{query} returned nothing");
        expected.push((query, sql, answer, started.elapsed()));
    }

    let rounds = 21;
    for round in 0..rounds {
        let (query, sql, answer, healthy) = &expected[round % expected.len()];
        let victim = dice.below(addresses.len() as u64) as usize;
        let delay = Duration::from_millis(dice.below(healthy.as_millis() as u64 * 9 / 10));
        let mut runner = cluster.client().await;
        let sql_text = sql.clone();
        let running = tokio::spawn(async move { run_query(&mut runner, &sql_text).await });
        tokio::time::sleep(delay).await;
        cluster.executors[victim].signal(libc::SIGKILL);
        cluster.executors[victim].wait_exit(Duration::from_secs(10));
        let started = Instant::now();
        let result = running.await.unwrap();
        println!(
            "round {round}: Q{query}, executor {victim} killed after {delay:?}, answered \
             {:?} later",
            started.elapsed()
        );
        match result {
            Ok(rows) => assert_eq!(&rows, answer, "round {round}: Q{query} answered wrongly"),
            Err(err) => panic!("round {round}: Q{query} failed: {err}"),
        }
        // Back on its old address, and in use again before the next round.
        cluster.executors[victim] = spawn_executor(&addresses[victim], TEST_SECRET);
        // As system.executors shows it.
        let url = format!("http://{}/", addresses[victim]);
        assert!(
            client
                .wait_for_executor_state(&url, "up", Duration::from_secs(20))
                .await
                .is_some(),
            "round {round}: the restarted executor never came back"
        );
    }

    // The history shows the repeated runs and why.
    let retried = rows(
        &mut client,
        "SELECT count(*) FROM system.queries WHERE attempts > 1 AND retries LIKE '%lost an executor%'",
    )
    .await;
    println!("queries that ran again: {retried:?}");
    assert_ne!(retried, vec!["0"], "no query was ever run again");
    let failed = rows(
        &mut client,
        "SELECT count(*) FROM system.queries WHERE state <> 'SUCCEEDED' AND query NOT LIKE '%system.queries%'",
    )
    .await;
    assert_eq!(failed, vec!["0"], "some query did not succeed");
}

/// Once rows have reached the client, a lost executor ends the result with a clear, retryable
/// error rather than a rerun that could duplicate or miss rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_executor_after_rows_were_sent_is_a_retryable_error() {
    let cluster = TestCluster::start_tpch(3);
    let executors = &cluster.executors;
    let mut client = cluster.client().await;
    let info = client
        .inner
        .execute("SELECT * FROM tpch.lineitem".to_string(), None)
        .await
        .unwrap();
    let ticket = info.endpoint[0].ticket.clone().unwrap();
    let mut stream = client.inner.do_get(ticket).await.unwrap();
    let first = stream.try_next().await.unwrap().expect("a first batch");
    assert!(first.num_rows() > 0);
    // The client has rows; now every executor but one goes away.
    for executor in &executors[1..] {
        executor.signal(libc::SIGKILL);
    }
    let mut received = first.num_rows();
    let err = loop {
        match stream.try_next().await {
            Ok(Some(batch)) => received += batch.num_rows(),
            Ok(None) => {
                panic!("the result ended normally after losing executors ({received} rows)")
            }
            Err(err) => break err,
        }
    };
    assert!(received < 600_572, "{received} rows");
    assert_eq!(
        osprey_tests::status_code(&err),
        Some(tonic::Code::Unavailable),
        "{err}"
    );
    assert!(err.to_string().contains("run the query again"), "{err}");
    let recorded = rows(
        &mut client,
        "SELECT error_code FROM system.queries WHERE query = 'SELECT * FROM tpch.lineitem'",
    )
    .await;
    assert_eq!(recorded, vec!["EXECUTOR_LOST"]);
}
