//! Osprey across hosts over a real network: the coordinator and two executors each in their
//! own Linux network namespace, with their own address on veth links joined by a bridge (a
//! fourth namespace, the "switch"); the test client reaches the coordinator from the root
//! namespace through the same bridge. The cluster's processes speak mutual TLS with
//! certificates for their addresses (`scripts/make-cluster-certs.sh`). All 22 TPC-H SF0.1
//! queries must match single-process DataFusion, and the interface counters must show the work
//! crossing the links: between the coordinator and the executors, and between the executors
//! themselves (shuffles). A capture (tcpdump) on an executor's link while a query runs must
//! hold TLS records and none of the query's text, column names or file paths, which the same
//! capture on the client's plaintext link does show.
//!
//! Needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN), iproute2 and tcpdump, which `.ci/run` provides;
//! where namespaces cannot be made the test says so and does nothing else. These machines lack
//! the netem qdisc, so no latency is added.

use osprey_tests::{
    ADMIN_PASSWORD, Process, SqlClient, TEST_SECRET, spawn_osprey_in_netns, tpch_mismatches,
    tpch_reference,
};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The test network: namespaces and the links between them, removed on drop.
struct Network {
    tag: String,
    namespaces: Vec<String>,
}

impl Network {
    fn namespace(&self, name: &str) -> String {
        format!("{}{name}", self.tag)
    }

    /// The switch-side end of host `host`'s link.
    fn switch_port(&self, host: &str) -> String {
        format!("{}{host}s", self.tag)
    }

    /// Bytes through the switch port of `host` (received plus sent).
    fn bytes_through(&self, host: &str) -> u64 {
        let switch = self.namespace("sw");
        let port = self.switch_port(host);
        ["rx_bytes", "tx_bytes"]
            .iter()
            .map(|counter| {
                let output = Command::new("ip")
                    .args(["netns", "exec", &switch, "cat"])
                    .arg(format!("/sys/class/net/{port}/statistics/{counter}"))
                    .output()
                    .expect("read an interface counter");
                String::from_utf8_lossy(&output.stdout)
                    .trim()
                    .parse::<u64>()
                    .unwrap_or_else(|_| panic!("no counter for {port}: {output:?}"))
            })
            .sum()
    }
}

/// A packet capture of one switch port, written to a file by tcpdump.
struct Capture {
    tcpdump: Child,
    file: PathBuf,
}

impl Capture {
    /// Stops the capture and returns its file's bytes (pcap).
    fn finish(mut self) -> Vec<u8> {
        // Time for the last packets to reach tcpdump; then SIGINT: it flushes and closes its
        // file.
        std::thread::sleep(Duration::from_millis(500));
        // SAFETY: plain kill(2) on a child we own and have not reaped.
        unsafe {
            libc::kill(self.tcpdump.id() as libc::pid_t, libc::SIGINT);
        }
        let _ = self.tcpdump.wait();
        std::fs::read(&self.file).expect("read the capture")
    }
}

impl Network {
    /// Starts capturing every packet through the switch port of `host` into `file`.
    fn capture(&self, host: &str, file: &Path) -> Capture {
        let tcpdump = Command::new("ip")
            .args(["netns", "exec", &self.namespace("sw"), "tcpdump", "-i"])
            .arg(self.switch_port(host))
            // Each packet handed over and written at once (not a ring buffer's block at a time),
            // whole packets, no name lookups, and root keeps writing the file.
            .args([
                "--immediate-mode",
                "-U",
                "-s",
                "0",
                "-n",
                "-Z",
                "root",
                "-w",
            ])
            .arg(file)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("tcpdump is needed for the capture (.ci/run installs it)");
        // The file appears, with its pcap header, once tcpdump listens.
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::fs::metadata(file).map(|m| m.len()).unwrap_or(0) < 24 {
            assert!(
                Instant::now() < deadline,
                "tcpdump did not start capturing {host}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(200));
        Capture {
            tcpdump,
            file: file.to_path_buf(),
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The certificate of `name` for mutual TLS, naming `ip`, from the CA in `dir`.
fn cluster_cert(dir: &Path, name: &str, ip: &str) -> [String; 6] {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/make-cluster-certs.sh");
    let status = Command::new("bash")
        .arg(&script)
        .arg(dir)
        .arg(name)
        .arg(format!("IP:{ip}"))
        .status()
        .expect("run make-cluster-certs.sh");
    assert!(status.success(), "{} failed", script.display());
    let path = |file: String| dir.join(file).display().to_string();
    [
        "--cluster-tls-cert".into(),
        path(format!("{name}.pem")),
        "--cluster-tls-key".into(),
        path(format!("{name}.key")),
        "--cluster-tls-ca".into(),
        path("ca.pem".into()),
    ]
}

impl Drop for Network {
    fn drop(&mut self) {
        // Deleting a namespace deletes its veth ends, and with them their peers.
        for namespace in &self.namespaces {
            let _ = Command::new("ip")
                .args(["netns", "del", namespace])
                .status();
        }
    }
}

fn ip(args: &[&str]) -> Result<(), String> {
    let output = Command::new("ip")
        .args(args)
        .output()
        .map_err(|err| format!("cannot run ip: {err}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// Builds the network: hosts `c` (10.77.0.1), `e1` (.2), `e2` (.3) and the root namespace
/// (.254) on one bridge. `Err` when namespaces cannot be made here.
fn build_network() -> Result<Network, String> {
    // Interface names are at most 15 characters: keep the tag short and unique per run.
    let tag = format!("o{}", std::process::id() % 100_000);
    let mut network = Network {
        tag,
        namespaces: Vec::new(),
    };
    for name in ["sw", "c", "e1", "e2"] {
        let namespace = network.namespace(name);
        ip(&["netns", "add", &namespace])?;
        network.namespaces.push(namespace.clone());
        ip(&["-n", &namespace, "link", "set", "lo", "up"])?;
    }
    let switch = network.namespace("sw");
    ip(&["-n", &switch, "link", "add", "br0", "type", "bridge"])?;
    ip(&["-n", &switch, "link", "set", "br0", "up"])?;
    for (host, address) in [
        ("c", "10.77.0.1/24"),
        ("e1", "10.77.0.2/24"),
        ("e2", "10.77.0.3/24"),
        ("r", "10.77.0.254/24"),
    ] {
        let host_end = format!("{}{host}h", network.tag);
        let switch_end = network.switch_port(host);
        ip(&[
            "link",
            "add",
            &host_end,
            "type",
            "veth",
            "peer",
            "name",
            &switch_end,
        ])?;
        ip(&["link", "set", &switch_end, "netns", &switch])?;
        ip(&["-n", &switch, "link", "set", &switch_end, "master", "br0"])?;
        ip(&["-n", &switch, "link", "set", &switch_end, "up"])?;
        if host == "r" {
            // The root namespace's own end: the test client's way in.
            ip(&["addr", "add", address, "dev", &host_end])?;
            ip(&["link", "set", &host_end, "up"])?;
        } else {
            let namespace = network.namespace(host);
            ip(&["link", "set", &host_end, "netns", &namespace])?;
            ip(&["-n", &namespace, "addr", "add", address, "dev", &host_end])?;
            ip(&["-n", &namespace, "link", "set", &host_end, "up"])?;
        }
    }
    Ok(network)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tpch_across_three_network_namespaces() {
    let network = match build_network() {
        Ok(network) => network,
        Err(reason) => {
            println!(
                "SKIPPED: cannot build network namespaces here ({reason}); run as root with \
                 iproute2 (.ci/run does)"
            );
            return;
        }
    };
    let secret = [("OSPREY_CLUSTER_SECRET", TEST_SECRET)];
    let certs = tempfile::tempdir().unwrap();
    let executors: Vec<Process> = [("e1", "10.77.0.2"), ("e2", "10.77.0.3")]
        .iter()
        .map(|(host, ip)| {
            let listen = format!("{ip}:50061");
            let tls = cluster_cert(certs.path(), host, ip);
            let mut args = vec!["executor", "--listen", &listen, "--memory", "1GiB"];
            args.extend(tls.iter().map(String::as_str));
            spawn_osprey_in_netns(
                &network.namespace(host),
                &args,
                &secret,
                "OSPREY_EXECUTOR_LISTENING ",
            )
        })
        .collect();
    let coordinator_tls = cluster_cert(certs.path(), "c", "10.77.0.1");
    let data_dir = tempfile::tempdir().unwrap();
    let data_path = data_dir.path().display().to_string();
    let mut coordinator_args = vec![
        "coordinator",
        "--flight-listen",
        "10.77.0.1:50051",
        "--http-listen",
        "127.0.0.1:0",
        // A private test network: plaintext beyond loopback is asked for explicitly.
        "--allow-insecure-remote",
        "--data-dir",
        &data_path,
        "--tpch-scale",
        "0.1",
        "--default-schema",
        "tpch",
        "--bytes-per-task",
        "1MiB",
        "--executor",
        "https://10.77.0.2:50061,https://10.77.0.3:50061",
    ];
    coordinator_args.extend(coordinator_tls.iter().map(String::as_str));
    let _coordinator = spawn_osprey_in_netns(
        &network.namespace("c"),
        &coordinator_args,
        &[
            ("OSPREY_CLUSTER_SECRET", TEST_SECRET),
            ("OSPREY_ADMIN_PASSWORD", ADMIN_PASSWORD),
        ],
        "OSPREY_FLIGHT_SQL_LISTENING ",
    );
    // From the root namespace, across the bridge.
    let mut client =
        SqlClient::connect("10.77.0.1:50051".parse().unwrap(), "admin", ADMIN_PASSWORD)
            .await
            .expect("the client reaches the coordinator across the network");
    let status = client.executor_status().await;
    println!("executors: {status:?}");
    assert_eq!(status.len(), 2);
    assert!(
        status
            .iter()
            .all(|(url, state, _)| state == "up" && url.contains("10.77.0.")),
        "{status:?}"
    );
    assert!(
        executors
            .iter()
            .all(|e| e.addr.ip().to_string().starts_with("10.77.0."))
    );

    let reference = tpch_reference(&data_dir.path().join("tpch").join("sf0.1")).await;

    let before: Vec<u64> = ["c", "e1", "e2", "r"]
        .iter()
        .map(|host| network.bytes_through(host))
        .collect();
    let mismatches = tpch_mismatches(&mut client, &reference).await;
    assert!(mismatches.is_empty(), "results differ: {mismatches:?}");

    let after: Vec<u64> = ["c", "e1", "e2", "r"]
        .iter()
        .map(|host| network.bytes_through(host))
        .collect();
    let moved: Vec<u64> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
    let [coordinator, executor1, executor2, root] = moved[..] else {
        unreachable!()
    };
    // Every byte between two executors passes both executors' ports; every byte between the
    // coordinator and an executor passes the coordinator's port and one executor's.
    let coordinator_to_executors = coordinator.saturating_sub(root);
    let between_executors = (executor1 + executor2).saturating_sub(coordinator_to_executors) / 2;
    println!(
        "bytes through the links during TPC-H: coordinator {coordinator}, executor 1 \
         {executor1}, executor 2 {executor2}, client {root}; between the executors about \
         {between_executors}"
    );
    assert!(executor1 > 1 << 20 && executor2 > 1 << 20, "{moved:?}");
    assert!(coordinator_to_executors > 1 << 20, "{moved:?}");
    assert!(between_executors > 100 << 10, "{moved:?}");

    // What a capture on the links shows while a query runs: the client's link is plaintext
    // (the test asked for it), so its capture holds the query's text; the link of executor 1,
    // which carries its traffic with the coordinator and with executor 2, holds TLS records
    // and none of the plan's text, column names or file paths.
    const CANARY: &str = "osprey-capture-canary-7f3a9";
    let captures = tempfile::tempdir().unwrap();
    let executor_link = network.capture("e1", &captures.path().join("e1.pcap"));
    let client_link = network.capture("r", &captures.path().join("r.pcap"));
    let sql = format!(
        "SELECT l_returnflag, count(*) FROM lineitem JOIN orders ON l_orderkey = o_orderkey \
         WHERE l_comment <> '{CANARY}' GROUP BY l_returnflag"
    );
    let (_, batches) = client.query(&sql).await.expect("the query over TLS");
    assert!(!batches.is_empty());
    let executor_bytes = executor_link.finish();
    let client_bytes = client_link.finish();
    println!(
        "captured {} bytes on executor 1's link, {} on the client's",
        executor_bytes.len(),
        client_bytes.len()
    );
    assert!(
        contains(&client_bytes, CANARY.as_bytes()),
        "the plaintext client link shows the query: the capture sees what crosses a link"
    );
    assert!(executor_bytes.len() > 10 << 10, "{}", executor_bytes.len());
    // TLS 1.3 application data records (content type 23, legacy version 3.3).
    assert!(contains(&executor_bytes, &[0x17, 0x03, 0x03]));
    for plaintext in [CANARY, "l_comment", "lineitem", ".parquet", TEST_SECRET] {
        assert!(
            !contains(&executor_bytes, plaintext.as_bytes()),
            "{plaintext:?} crossed executor 1's link in the clear"
        );
    }
}
