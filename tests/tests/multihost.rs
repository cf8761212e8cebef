//! Osprey across hosts over a real network: the coordinator and two executors each in their
//! own Linux network namespace, with their own address on veth links joined by a bridge (a
//! fourth namespace, the "switch"); the test client reaches the coordinator from the root
//! namespace through the same bridge. All 22 TPC-H SF0.1 queries must match single-process
//! DataFusion, and the interface counters must show the work crossing the links: between the
//! coordinator and the executors, and between the executors themselves (shuffles).
//!
//! Needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN) and iproute2, which `.ci/run` provides; where
//! namespaces cannot be made the test says so and does nothing else. These machines lack the
//! netem qdisc, so no latency is added.

use osprey_tests::{
    ADMIN_PASSWORD, Process, SqlClient, TEST_SECRET, spawn_osprey_in_netns, tpch_mismatches,
    tpch_reference,
};
use std::process::Command;

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
    let executors: Vec<Process> = [("e1", "10.77.0.2:50061"), ("e2", "10.77.0.3:50061")]
        .iter()
        .map(|(host, listen)| {
            spawn_osprey_in_netns(
                &network.namespace(host),
                &[
                    "executor",
                    "--listen",
                    listen,
                    "--memory",
                    "1GiB",
                    "--allow-insecure-remote",
                ],
                &secret,
                "OSPREY_EXECUTOR_LISTENING ",
            )
        })
        .collect();
    let data_dir = tempfile::tempdir().unwrap();
    let data_path = data_dir.path().display().to_string();
    let _coordinator = spawn_osprey_in_netns(
        &network.namespace("c"),
        &[
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
            "http://10.77.0.2:50061,http://10.77.0.3:50061",
        ],
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
}
