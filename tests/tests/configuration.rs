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
