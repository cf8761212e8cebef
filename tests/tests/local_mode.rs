//! `osprey local`: one command, a working cluster, a generated admin password, and Ctrl-C that
//! leaves nothing behind.

use osprey_tests::{SqlClient, canonical_rows, osprey_bin};
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Process ids whose parent is `parent`, from /proc.
fn children_of(parent: u32) -> Vec<u32> {
    let mut children = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // Fields after the parenthesised command name: state, ppid, ...
        let after_name = &stat[stat.rfind(')').unwrap() + 2..];
        let ppid: u32 = after_name.split(' ').nth(1).unwrap().parse().unwrap();
        if ppid == parent {
            children.push(pid);
        }
    }
    children
}

fn alive(pid: u32) -> bool {
    // A zombie still has a /proc entry; treat state Z as gone.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat[stat.rfind(')').unwrap() + 2..].starts_with('Z'),
        Err(_) => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_starts_a_cluster_with_tpch_and_ctrl_c_stops_everything() {
    let data_dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(osprey_bin())
        .args([
            "local",
            "--executors",
            "2",
            "--flight-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(data_dir.path())
        .env_remove("OSPREY_ADMIN_PASSWORD")
        .env_remove("OSPREY_CONFIG")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(addr) = line.strip_prefix("OSPREY_FLIGHT_SQL_LISTENING ") {
                let _ = tx.send(addr.to_string());
            }
        }
    });
    let (banner_tx, banner_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = banner_tx.send(line);
        }
    });
    let addr: std::net::SocketAddr = rx
        .recv_timeout(Duration::from_secs(120))
        .expect("osprey local announced its address")
        .parse()
        .unwrap();

    // The generated password is printed once and stored with mode 0600.
    let password_file = data_dir.path().join("admin-password");
    let mode = std::fs::metadata(&password_file)
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "admin-password mode is {mode:o}");
    let password = std::fs::read_to_string(&password_file)
        .unwrap()
        .trim()
        .to_string();
    assert!(password.len() >= 24, "weak generated password");
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut banner = String::new();
    while Instant::now() < deadline && !banner.contains("Ctrl-C") {
        if let Ok(line) = banner_rx.recv_timeout(Duration::from_millis(200)) {
            banner.push_str(&line);
            banner.push('\n');
        }
    }
    assert!(
        banner.contains(&password),
        "password not shown on first start:\n{banner}"
    );

    let executors = children_of(child.id());
    assert_eq!(
        executors.len(),
        2,
        "expected 2 executor processes: {executors:?}"
    );

    let mut client = SqlClient::connect(addr, "admin", &password).await.unwrap();
    let (_, batches) = client
        .query("SELECT count(*) FROM tpch.lineitem")
        .await
        .unwrap();
    assert_eq!(canonical_rows(&batches), vec!["600572".to_string()]);
    let (_, batches) = client
        .query("SELECT count(*) FROM tpch.orders WHERE o_orderstatus = 'F'")
        .await
        .unwrap();
    assert_eq!(canonical_rows(&batches).len(), 1);

    // Ctrl-C.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGINT);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "osprey local did not exit after Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    for pid in executors {
        assert!(!alive(pid), "executor {pid} survived Ctrl-C");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn executors_die_with_a_killed_local_supervisor() {
    let data_dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(osprey_bin())
        .args([
            "local",
            "--executors",
            "1",
            "--tpch-scale",
            "0",
            "--flight-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(data_dir.path())
        .env("OSPREY_ADMIN_PASSWORD", "pw")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let ready = lines.next().expect("a line").unwrap();
    assert!(ready.starts_with("OSPREY_FLIGHT_SQL_LISTENING "), "{ready}");
    assert!(
        !data_dir.path().join("admin-password").exists(),
        "password from env is not stored"
    );
    let executors = children_of(child.id());
    assert_eq!(executors.len(), 1);

    child.kill().unwrap(); // SIGKILL: no chance to clean up.
    child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while executors.iter().any(|pid| alive(*pid)) {
        assert!(
            Instant::now() < deadline,
            "executor outlived its killed supervisor"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
