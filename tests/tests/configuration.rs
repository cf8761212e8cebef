//! The TOML configuration file drives a coordinator; mistakes in it are reported clearly.

use osprey_tests::{SqlClient, TEST_SECRET, osprey_bin, spawn_executor, spawn_osprey};
use std::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coordinator_runs_from_a_config_file() {
    let executor = spawn_executor("127.0.0.1:0", TEST_SECRET);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("osprey.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[cluster]
secret = "{TEST_SECRET}"

[coordinator]
flight_listen = "127.0.0.1:0"
http_listen = "127.0.0.1:0"
executors = ["http://{}"]
data_dir = "{}"
tpch_scale_factor = 0.01
default_schema = "tpch"

[[users]]
name = "ana"
password = "from-the-file"
"#,
            executor.addr,
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let config_arg = config.display().to_string();
    let coordinator = spawn_osprey(
        &["--config", &config_arg, "coordinator"],
        &[],
        "OSPREY_FLIGHT_SQL_LISTENING ",
    );
    let mut client = SqlClient::connect(coordinator.addr, "ana", "from-the-file")
        .await
        .expect("user from [[users]] logs in");
    let (_, batches) = client.query("SELECT count(*) FROM nation").await.unwrap();
    assert_eq!(
        osprey_tests::canonical_rows(&batches),
        vec!["25".to_string()]
    );
    let status = client.executor_status().await;
    assert_eq!(status.len(), 1);
    assert_eq!(
        status[0].1, "up",
        "executor from the file is used: {status:?}"
    );
}

#[test]
fn config_mistakes_are_reported_with_the_key_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    std::fs::write(&config, "[coordinator]\nflight_lisen = \"127.0.0.1:1\"\n").unwrap();
    let output = Command::new(osprey_bin())
        .arg("--config")
        .arg(&config)
        .arg("coordinator")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("bad.toml"), "{stderr}");
    assert!(stderr.contains("flight_lisen"), "{stderr}");

    // A coordinator without a cluster secret says how to set one.
    let output = Command::new(osprey_bin())
        .args(["coordinator", "--executor", "http://127.0.0.1:1"])
        .env_remove("OSPREY_CLUSTER_SECRET")
        .env_remove("OSPREY_CONFIG")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("OSPREY_CLUSTER_SECRET"), "{stderr}");
}

/// `[limits] open_statements_per_user` bounds what one user holds open across every front
/// door together: Flight SQL prepared statements and HTTP API queries count against one bound,
/// a place comes back when a handle is closed, and other users are unaffected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_statements_are_bounded_per_user_across_front_doors() {
    let executor = spawn_executor("127.0.0.1:0", TEST_SECRET);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("osprey.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[cluster]
secret = "{TEST_SECRET}"

[coordinator]
flight_listen = "127.0.0.1:0"
http_listen = "127.0.0.1:0"
executors = ["http://{}"]
data_dir = "{}"

[limits]
open_statements_per_user = 2

[[users]]
name = "ana"
password = "ana-password"

[[users]]
name = "ben"
password = "ben-password"
"#,
            executor.addr,
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let config_arg = config.display().to_string();
    let coordinator = spawn_osprey(
        &["--config", &config_arg, "coordinator"],
        &[],
        "OSPREY_FLIGHT_SQL_LISTENING ",
    );
    let http = coordinator.http_addr();
    let submit = |user: &'static str, password: &'static str| {
        osprey_tests::http_json(
            http,
            "POST",
            "/v1/queries",
            (user, password),
            Some(r#"{"sql": "SELECT 1", "wait_timeout": "10s"}"#),
        )
    };
    let mut ana = SqlClient::connect(coordinator.addr, "ana", "ana-password")
        .await
        .unwrap();
    let first = ana
        .inner
        .prepare("SELECT 1".to_string(), None)
        .await
        .unwrap();
    let _second = ana
        .inner
        .prepare("SELECT 2".to_string(), None)
        .await
        .unwrap();

    // Two prepared statements over Flight SQL fill ana's bound for the HTTP API too.
    let (status, body) = submit("ana", "ana-password");
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "TOO_MANY_QUERIES", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("you hold 2 open statements")),
        "{body}"
    );
    // Ben is not affected.
    let (status, body) = submit("ben", "ben-password");
    assert_eq!(status, 200, "{body}");

    // Closing a prepared statement gives its place back, to any door.
    first.close().await.unwrap();
    let (status, body) = submit("ana", "ana-password");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "SUCCEEDED", "{body}");
    // The HTTP query's kept result now holds that place: Flight SQL is refused.
    let refused = ana
        .inner
        .prepare("SELECT 3".to_string(), None)
        .await
        .expect_err("ana is at her bound");
    assert_eq!(
        osprey_tests::status_code(&refused),
        Some(tonic::Code::ResourceExhausted),
        "{refused}"
    );
}
