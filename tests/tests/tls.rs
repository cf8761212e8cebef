//! TLS on the Flight SQL port: clients that trust the certificate get in, plaintext and
//! untrusting clients do not, plaintext beyond loopback is refused unless asked for, and bad
//! certificate files are named in the error.

use osprey_tests::{
    ADMIN_PASSWORD, CoordinatorOptions, SqlClient, TEST_SECRET, make_test_certs, osprey_bin, rows,
    spawn_coordinator, spawn_executor, spawn_osprey,
};
use std::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_trust_the_certificate_are_served_over_tls() {
    let certs = make_test_certs();
    let other_ca = make_test_certs();
    let executor = spawn_executor("127.0.0.1:0", TEST_SECRET);
    let data_dir = tempfile::tempdir().unwrap();
    let cert = certs.cert.display().to_string();
    let key = certs.key.display().to_string();
    let coordinator = spawn_coordinator(CoordinatorOptions {
        executors: vec![format!("http://{}", executor.addr)],
        data_dir: data_dir.path(),
        tpch_scale: None,
        default_schema: "public",
        extra_args: &["--tls-cert", &cert, "--tls-key", &key],
    });
    let ca = std::fs::read(&certs.ca).unwrap();
    let mut client = SqlClient::connect_tls(coordinator.addr, &ca, "admin", ADMIN_PASSWORD)
        .await
        .expect("TLS login");
    assert_eq!(
        rows(&mut client, "SELECT 'over tls'").await,
        vec!["over tls"]
    );

    // Plaintext gRPC to the TLS port fails, and so does a client trusting another CA.
    assert!(
        SqlClient::connect(coordinator.addr, "admin", ADMIN_PASSWORD)
            .await
            .is_err()
    );
    let wrong_ca = std::fs::read(&other_ca.ca).unwrap();
    assert!(
        SqlClient::connect_tls(coordinator.addr, &wrong_ca, "admin", ADMIN_PASSWORD)
            .await
            .is_err()
    );
    // The service is still up for the trusting client.
    assert_eq!(rows(&mut client, "SELECT 1").await, vec!["1"]);
}

/// Runs `osprey coordinator <args>` expecting it to fail; returns its standard error.
fn coordinator_error(args: &[&str]) -> String {
    let http_listen: &[&str] = if args.contains(&"--http-listen") {
        &[]
    } else {
        &["--http-listen", "127.0.0.1:0"]
    };
    let output = Command::new(osprey_bin())
        .arg("coordinator")
        .args(["--executor", "http://127.0.0.1:1"])
        .args(http_listen)
        .args(args)
        .env("OSPREY_CLUSTER_SECRET", TEST_SECRET)
        .env("OSPREY_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env_remove("OSPREY_CONFIG")
        .output()
        .unwrap();
    assert!(
        !output.status.success(),
        "osprey coordinator {args:?} started"
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn plaintext_beyond_loopback_is_refused_and_bad_tls_files_are_named() {
    let data_dir = tempfile::tempdir().unwrap();
    let data = data_dir.path().display().to_string();
    let stderr = coordinator_error(&["--flight-listen", "0.0.0.0:0", "--data-dir", &data]);
    assert!(
        stderr.contains("refusing to serve Flight SQL without TLS on 0.0.0.0"),
        "{stderr}"
    );
    assert!(stderr.contains("--tls-cert"), "{stderr}");
    let stderr = coordinator_error(&["--http-listen", "0.0.0.0:0", "--data-dir", &data]);
    assert!(
        stderr.contains("refusing to serve plain HTTP on 0.0.0.0"),
        "{stderr}"
    );

    // The operator may opt out explicitly (a TLS-terminating proxy in front).
    let coordinator = spawn_osprey(
        &[
            "coordinator",
            "--executor",
            "http://127.0.0.1:1",
            "--flight-listen",
            "0.0.0.0:0",
            "--http-listen",
            "off",
            "--data-dir",
            &data,
            "--allow-insecure-remote",
        ],
        &[
            ("OSPREY_CLUSTER_SECRET", TEST_SECRET),
            ("OSPREY_ADMIN_PASSWORD", ADMIN_PASSWORD),
        ],
        "OSPREY_FLIGHT_SQL_LISTENING ",
    );
    assert!(coordinator.addr.ip().is_unspecified());
    drop(coordinator);

    let certs = make_test_certs();
    let other = make_test_certs();
    let cert = certs.cert.display().to_string();
    let key = certs.key.display().to_string();
    let other_key = other.key.display().to_string();
    let stderr = coordinator_error(&["--data-dir", &data, "--tls-cert", &cert]);
    assert!(stderr.contains("--tls-cert needs --tls-key"), "{stderr}");
    // Files swapped: the certificate flag names a key.
    let stderr = coordinator_error(&["--data-dir", &data, "--tls-cert", &key, "--tls-key", &cert]);
    assert!(stderr.contains(&key), "{stderr}");
    assert!(stderr.contains("BEGIN CERTIFICATE"), "{stderr}");
    // A key that belongs to another certificate.
    let stderr = coordinator_error(&[
        "--data-dir",
        &data,
        "--tls-cert",
        &cert,
        "--tls-key",
        &other_key,
    ]);
    assert!(stderr.contains("does not fit the certificate"), "{stderr}");
    let stderr = coordinator_error(&[
        "--data-dir",
        &data,
        "--tls-cert",
        "/nonexistent/server.pem",
        "--tls-key",
        &key,
    ]);
    assert!(stderr.contains("/nonexistent/server.pem"), "{stderr}");
}
