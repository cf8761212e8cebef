//! Clear errors for bad queries and bad logins, and the service keeps answering afterwards.

use futures::TryStreamExt;
use osprey_tests::{
    ADMIN_PASSWORD, CoordinatorOptions, SqlClient, TestCluster, canonical_rows, spawn_coordinator,
    status_code,
};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_queries_get_clear_errors_and_the_service_stays_up() {
    let cluster = TestCluster::start_tpch(2);
    let mut client = cluster.client().await;

    let cases = [
        (
            "SELEC 1",
            "syntax error: expected an SQL statement, found SELEC at line 1, column 1",
        ),
        (
            "SELECT * FROM no_such_table",
            "no_such_table does not exist",
        ),
        ("SELECT 1 + 'a'", "Cannot coerce"),
        (
            "SELECT n_name + 1 FROM nation",
            "Cannot coerce arithmetic expression",
        ),
    ];
    for (sql, message) in cases {
        let err = client.query(sql).await.expect_err(sql);
        assert_eq!(
            status_code(&err),
            Some(tonic::Code::InvalidArgument),
            "{sql}: {err}"
        );
        assert!(
            err.to_string().contains(message),
            "{sql}: expected {message:?}, got {err}"
        );
        // In Osprey's words: no engine prefix reaches the user.
        for prefix in [
            "SQL error",
            "ParserError",
            "Error during planning",
            "Arrow error",
            "Schema error",
            "External error",
        ] {
            assert!(!err.to_string().contains(prefix), "{sql}: {err}");
        }
        // The next query is answered.
        let (_, batches) = client.query("SELECT count(*) FROM region").await.unwrap();
        assert_eq!(canonical_rows(&batches), vec!["5".to_string()]);
    }

    // SET applies to this client's session only, never to every user.
    let setting = "SELECT value FROM information_schema.df_settings \
                   WHERE name = 'datafusion.execution.target_partitions'";
    let (_, before) = client.query(setting).await.unwrap();
    assert_ne!(canonical_rows(&before), vec!["7".to_string()]);
    client
        .query("SET datafusion.execution.target_partitions = 7")
        .await
        .unwrap();
    let (_, mine) = client.query(setting).await.unwrap();
    assert_eq!(canonical_rows(&mine), vec!["7".to_string()]);
    let mut other = cluster.client().await;
    let (_, theirs) = other.query(setting).await.unwrap();
    assert_eq!(canonical_rows(&theirs), canonical_rows(&before));
    // SQL-level transactions are refused.
    let err = client.query("BEGIN").await.expect_err("BEGIN is refused");
    assert_eq!(status_code(&err), Some(tonic::Code::Unimplemented), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_and_tokens_are_checked() {
    let cluster = TestCluster::start_tpch(1);
    let addr = cluster.coordinator.addr;

    let err = SqlClient::connect(addr, "admin", "wrong")
        .await
        .err()
        .expect("bad password refused");
    assert!(
        err.to_string().contains("invalid username or password"),
        "{err}"
    );
    let err = SqlClient::connect(addr, "nobody", ADMIN_PASSWORD)
        .await
        .err()
        .expect("unknown user refused");
    assert!(
        err.to_string().contains("invalid username or password"),
        "{err}"
    );

    // A client that never logged in is refused too.
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut anonymous = arrow_flight::sql::client::FlightSqlServiceClient::new(channel);
    let err = anonymous
        .execute("SELECT 1".into(), None)
        .await
        .unwrap_err();
    assert_eq!(
        status_code(&err),
        Some(tonic::Code::Unauthenticated),
        "{err}"
    );
    assert!(err.to_string().contains("authentication required"), "{err}");

    // A forged token is refused.
    anonymous.set_token("not-a-real-token".into());
    let err = anonymous
        .execute("SELECT 1".into(), None)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("invalid, expired or revoked bearer token"),
        "{err}"
    );

    // And a real login works.
    let mut client = cluster.client().await;
    assert!(client.query("SELECT 1").await.is_ok());

    // A result ticket is good for one DoGet.
    let info = client.inner.execute("SELECT 1".into(), None).await.unwrap();
    let ticket = info.endpoint[0].ticket.clone().expect("ticket");
    let batches: Vec<_> = client
        .inner
        .do_get(ticket.clone())
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(canonical_rows(&batches), vec!["1".to_string()]);
    let Err(err) = client.inner.do_get(ticket).await else {
        panic!("second DoGet with the same ticket was accepted");
    };
    assert_eq!(status_code(&err), Some(tonic::Code::NotFound), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_without_live_executors_fails_fast_with_a_clear_message() {
    let data_dir = tempfile::tempdir().unwrap();
    // Nothing listens on this port: reserve one, then release it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let coordinator = spawn_coordinator(CoordinatorOptions {
        executors: vec![format!("http://127.0.0.1:{port}")],
        data_dir: data_dir.path(),
        tpch_scale: Some("0.01"),
        default_schema: "tpch",
        extra_args: &[],
    });
    let mut client = SqlClient::connect(coordinator.addr, "admin", ADMIN_PASSWORD)
        .await
        .unwrap();
    let started = Instant::now();
    let err = client
        .query("SELECT l_returnflag, count(*) FROM lineitem GROUP BY l_returnflag")
        .await
        .expect_err("no executor");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(status_code(&err), Some(tonic::Code::Unavailable), "{err}");
    assert!(err.to_string().contains("no live executor"), "{err}");
}
