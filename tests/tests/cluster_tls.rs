//! Mutual TLS inside the cluster (`--cluster-tls-cert`, `--cluster-tls-key`,
//! `--cluster-tls-ca`): a coordinator and two executors with certificates from one CA run
//! TPC-H queries; an executor refuses a peer with no certificate, or one another CA signed,
//! even with the cluster secret; the coordinator refuses an executor whose certificate the CA
//! did not sign; the secret is still checked over TLS; a rewritten certificate is used
//! without a restart, and files that do not load leave the last good ones in use.
//! (That the traffic is encrypted is checked with a capture on the multi-host test's links.)

use osprey_engine::{
    ClusterChannels, ClusterTls, ClusterTlsFiles, ExecutorProbeError, probe_executor,
};
use osprey_proto::ClusterSecret;
use osprey_tests::{
    Process, TEST_SECRET, TestCluster, canonical_rows, datafusion_last_result_rows, spawn_osprey,
    tpch_reference,
};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use url::Url;

/// Makes `dir/name.pem` and `dir/name.key`, signed by `dir`'s CA (made on first use).
fn make_cert(dir: &Path, name: &str) -> ClusterTlsFiles {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/make-cluster-certs.sh");
    let status = Command::new("bash")
        .arg(&script)
        .arg(dir)
        .arg(name)
        .status()
        .expect("run make-cluster-certs.sh");
    assert!(status.success(), "{} failed", script.display());
    ClusterTlsFiles {
        cert: dir.join(format!("{name}.pem")),
        key: dir.join(format!("{name}.key")),
        ca: dir.join("ca.pem"),
        server_name: None,
    }
}

fn tls_args(files: &ClusterTlsFiles) -> Vec<String> {
    vec![
        "--cluster-tls-cert".into(),
        files.cert.display().to_string(),
        "--cluster-tls-key".into(),
        files.key.display().to_string(),
        "--cluster-tls-ca".into(),
        files.ca.display().to_string(),
    ]
}

fn spawn_tls_executor(files: &ClusterTlsFiles) -> Process {
    let tls = tls_args(files);
    let mut args = vec!["executor", "--listen", "127.0.0.1:0", "--memory", "1GiB"];
    args.extend(tls.iter().map(String::as_str));
    spawn_osprey(
        &args,
        &[("OSPREY_CLUSTER_SECRET", TEST_SECRET)],
        "OSPREY_EXECUTOR_LISTENING ",
    )
}

fn channels(secret: &str, tls: Option<&ClusterTlsFiles>) -> ClusterChannels {
    let tls = tls.map(|files| ClusterTls::load(files.clone()).expect("certificates load"));
    ClusterChannels::new(ClusterSecret::new(secret).unwrap()).with_tls(tls)
}

async fn probe(channels: &ClusterChannels, executor: &Process) -> Result<(), ExecutorProbeError> {
    let url = Url::parse(&format!("https://{}", executor.addr)).unwrap();
    probe_executor(channels, &url, Duration::from_secs(5))
        .await
        .map(|_| ())
}

/// The subject of the certificate `addr` presents to a client holding `client`'s.
fn presented_subject(addr: std::net::SocketAddr, client: &ClusterTlsFiles) -> String {
    let output = Command::new("openssl")
        .args(["s_client", "-connect", &addr.to_string(), "-alpn", "h2"])
        .arg("-cert")
        .arg(&client.cert)
        .arg("-key")
        .arg(&client.key)
        .arg("-CAfile")
        .arg(&client.ca)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run openssl s_client");
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines()
        .find(|line| line.starts_with("subject="))
        .unwrap_or_default()
        .to_string()
}

const JOIN_QUERY: &str = "SELECT c_mktsegment, count(*) AS orders, sum(o_totalprice) AS total \
     FROM customer JOIN orders ON c_custkey = o_custkey GROUP BY c_mktsegment \
     ORDER BY c_mktsegment";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_speaks_mutual_tls_and_rotates_certificates() {
    let certs = tempfile::tempdir().unwrap();
    let coordinator_files = make_cert(certs.path(), "coordinator");
    let executor_files = [
        make_cert(certs.path(), "executor-1"),
        make_cert(certs.path(), "executor-2"),
    ];
    let rogue_dir = tempfile::tempdir().unwrap();
    let rogue_files = make_cert(rogue_dir.path(), "intruder");

    let executors: Vec<Process> = executor_files.iter().map(spawn_tls_executor).collect();
    let coordinator_tls = tls_args(&coordinator_files);
    let coordinator_args: Vec<&str> = coordinator_tls.iter().map(String::as_str).collect();
    let cluster =
        TestCluster::start_tpch_over(executors, tempfile::tempdir().unwrap(), &coordinator_args);
    let mut client = cluster.client().await;
    let reference = tpch_reference(&cluster.tpch_dir()).await;
    let expected = datafusion_last_result_rows(&reference, &[JOIN_QUERY.to_string()])
        .await
        .unwrap();
    let (_, batches) = client.query(JOIN_QUERY).await.unwrap();
    assert_eq!(canonical_rows(&batches), expected);
    let status = client.executor_status().await;
    assert!(
        status
            .iter()
            .all(|(_, state, tasks)| state == "up" && *tasks > 0),
        "both executors took tasks over TLS: {status:?}"
    );

    // Who an executor lets in: a certificate of the cluster's CA and the secret, both.
    let executor = &cluster.executors[0];
    probe(&channels(TEST_SECRET, Some(&coordinator_files)), executor)
        .await
        .expect("a peer with the CA's certificate and the secret is accepted");
    for (what, refused) in [
        ("plaintext with the secret", channels(TEST_SECRET, None)),
        (
            "another CA's certificate with the secret",
            channels(TEST_SECRET, Some(&rogue_files)),
        ),
        (
            "the CA's certificate with a wrong secret",
            channels("a-wrong-secret-of-enough-length", Some(&coordinator_files)),
        ),
    ] {
        assert!(
            probe(&refused, executor).await.is_err(),
            "{what} must be refused"
        );
    }
    // Who the coordinator's side trusts: an executor with another CA's certificate is not.
    let rogue_executor = spawn_tls_executor(&rogue_files);
    assert!(
        probe(
            &channels(TEST_SECRET, Some(&coordinator_files)),
            &rogue_executor
        )
        .await
        .is_err(),
        "an executor whose certificate the cluster CA did not sign must be refused"
    );

    // Rotation: executor-1's files are rewritten with a new certificate of the same CA; the
    // running executor presents it within a few reload intervals, and queries go on.
    let before = presented_subject(executor.addr, &coordinator_files);
    assert!(before.contains("executor-1"), "{before}");
    let next = make_cert(certs.path(), "executor-1-next");
    std::fs::rename(&next.key, &executor_files[0].key).unwrap();
    std::fs::rename(&next.cert, &executor_files[0].cert).unwrap();
    let deadline = Instant::now() + osprey_engine::RELOAD_INTERVAL * 4;
    loop {
        let subject = presented_subject(executor.addr, &coordinator_files);
        if subject.contains("executor-1-next") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the executor still presents {subject} after its files changed"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    probe(&channels(TEST_SECRET, Some(&coordinator_files)), executor)
        .await
        .expect("the rotated certificate is accepted");
    let (_, batches) = client.query(JOIN_QUERY).await.unwrap();
    assert_eq!(canonical_rows(&batches), expected);

    // Files that do not load are refused, and the last good ones stay in use.
    let copy = tempfile::tempdir().unwrap();
    let copied = ClusterTlsFiles {
        cert: copy.path().join("cert.pem"),
        key: copy.path().join("key.pem"),
        ca: copy.path().join("ca.pem"),
        server_name: None,
    };
    for (from, to) in [
        (&coordinator_files.cert, &copied.cert),
        (&coordinator_files.key, &copied.key),
        (&coordinator_files.ca, &copied.ca),
    ] {
        std::fs::copy(from, to).unwrap();
    }
    let tls = ClusterTls::load(copied.clone()).unwrap();
    assert!(!tls.reload().unwrap(), "unchanged files are not reloaded");
    std::fs::copy(&rogue_files.key, &copied.key).unwrap();
    let err = tls.reload().unwrap_err().to_string();
    assert!(err.contains("key.pem"), "{err}");
    let kept = ClusterChannels::new(ClusterSecret::new(TEST_SECRET).unwrap()).with_tls(Some(tls));
    probe(&kept, executor)
        .await
        .expect("the last good certificate stays in use");
}
