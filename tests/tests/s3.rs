//! The lakehouse on a real S3 API: a moto server (an S3-compatible server that runs offline)
//! started here, reached with a custom endpoint, path-style requests and credentials from the
//! configuration file that the coordinator and each executor read for themselves.
//!
//! Covers external tables with Hive partitions and pruning, UNLOAD with its manifest, CTAS and
//! INSERT into managed tables whose warehouse is on S3, DROP deleting managed data, and a
//! bucket that refuses our credentials (moto with IAM checks on).
//!
//! Needs `OSPREY_TEST_MOTO_SERVER`: the path of moto's `moto_server` (scripts/test.sh installs
//! it in the test virtualenv from PyPI, pinned in tests/python/requirements.txt).

use datafusion::execution::object_store::ObjectStoreRegistry;
use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use osprey_engine::{StorageLocation, StorageRegistry};
use osprey_tests::{
    CoordinatorOptions, Process, SqlClient, TEST_SECRET, error_of, rows, spawn_coordinator,
    spawn_osprey,
};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

const BUCKET: &str = "lake";

/// A moto server on a free loopback port, killed when dropped.
struct Moto {
    child: std::process::Child,
    endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts moto with `bucket` created. With `enforce_auth`, every later request must carry
/// credentials moto's IAM knows (ours are unknown), as a bucket we may not read.
fn start_moto(bucket: &str, enforce_auth: bool) -> Moto {
    let binary = std::env::var("OSPREY_TEST_MOTO_SERVER").expect(
        "OSPREY_TEST_MOTO_SERVER must name moto's `moto_server` executable for the S3 tests; \
         scripts/test.sh installs it (pip install -r tests/python/requirements.txt)",
    );
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut command = std::process::Command::new(binary);
    if enforce_auth {
        // moto's switch for IAM checks: the first N requests are free (here: creating the
        // bucket), every later one is authenticated and authorized.
        command.env("INITIAL_NO_AUTH_ACTION_COUNT", "1");
    }
    let child = command
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start moto_server");
    let moto = Moto {
        child,
        endpoint: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "moto_server did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Create the bucket (path-style PUT; moto accepts any credentials).
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "PUT /{bucket} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    moto
}

/// The storage options every process gets from its own configuration file.
fn storage_options(endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("aws_endpoint", endpoint.to_string()),
        ("aws_allow_http", "true".into()),
        ("aws_virtual_hosted_style_request", "false".into()),
        ("aws_region", "us-east-1".into()),
        ("aws_access_key_id", "osprey-test-key".into()),
        ("aws_secret_access_key", "osprey-test-secret".into()),
    ]
}

/// A configuration file with one `[[storage]]` entry per (bucket, endpoint).
fn write_config(dir: &std::path::Path, buckets: &[(&str, &str)]) -> std::path::PathBuf {
    let mut text = String::new();
    for (bucket, endpoint) in buckets {
        let options: Vec<String> = storage_options(endpoint)
            .into_iter()
            .map(|(k, v)| format!("{k} = \"{v}\""))
            .collect();
        text.push_str(&format!(
            "[[storage]]\nprefix = \"s3://{bucket}\"\noptions = {{ {} }}\n",
            options.join(", ")
        ));
    }
    let path = dir.join("osprey.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The bucket, straight through the S3 API (with the same options the processes get).
fn bucket(endpoint: &str) -> std::sync::Arc<dyn object_store::ObjectStore> {
    let mut location = StorageLocation::new(&format!("s3://{BUCKET}")).unwrap();
    for (key, value) in storage_options(endpoint) {
        location = location.with_option(key, value);
    }
    let registry = StorageRegistry::new(vec![location]).unwrap();
    registry
        .get_store(&url::Url::parse(&format!("s3://{BUCKET}/")).unwrap())
        .unwrap()
}

/// Object keys under `prefix` in the bucket, sorted.
async fn list_keys(endpoint: &str, prefix: &str) -> Vec<String> {
    let mut keys: Vec<String> = bucket(endpoint)
        .list(Some(&object_store::path::Path::from(prefix)))
        .map_ok(|meta| meta.location.to_string())
        .try_collect()
        .await
        .unwrap();
    keys.sort();
    keys
}

async fn get_text(endpoint: &str, key: &str) -> String {
    let bytes = bucket(endpoint)
        .get(&object_store::path::Path::from(key))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lakehouse_on_s3() {
    let moto = start_moto(BUCKET, false);
    let denied = start_moto("locked", true);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &[(BUCKET, &moto.endpoint), ("locked", &denied.endpoint)],
    );
    let config_arg = config.display().to_string();
    // Each executor reads the storage configuration itself.
    let executors: Vec<Process> = (0..2)
        .map(|_| {
            spawn_osprey(
                &[
                    "executor",
                    "--listen",
                    "127.0.0.1:0",
                    "--memory",
                    "1GiB",
                    "--config",
                    &config_arg,
                ],
                &[("OSPREY_CLUSTER_SECRET", TEST_SECRET)],
                "OSPREY_EXECUTOR_LISTENING ",
            )
        })
        .collect();
    let warehouse = format!("s3://{BUCKET}/warehouse/");
    let coordinator = spawn_coordinator(CoordinatorOptions {
        executors: executors
            .iter()
            .map(|e| format!("http://{}", e.addr))
            .collect(),
        data_dir: &dir.path().join("data"),
        tpch_scale: Some("0.01"),
        default_schema: "public",
        extra_args: &["--config", &config_arg, "--warehouse", &warehouse],
    });
    let mut c = SqlClient::connect(coordinator.addr, "admin", osprey_tests::ADMIN_PASSWORD)
        .await
        .expect("login");

    // UNLOAD writes Hive-style partitions to S3, each with a manifest.
    for (year, filter) in [("2023", "l_linenumber <= 2"), ("2024", "l_linenumber > 2")] {
        rows(
            &mut c,
            &format!(
                "UNLOAD (SELECT l_orderkey, l_quantity, l_shipmode FROM tpch.lineitem WHERE {filter}) \
                 TO 's3://{BUCKET}/events/year={year}/'"
            ),
        )
        .await;
    }
    let keys = list_keys(&moto.endpoint, "events/year=2023").await;
    let data: Vec<String> = keys
        .iter()
        .filter(|k| k.ends_with(".parquet"))
        .map(|k| format!("s3://{BUCKET}/{k}"))
        .collect();
    assert!(!data.is_empty(), "{keys:?}");
    let mut manifest: Vec<String> = get_text(&moto.endpoint, "events/year=2023/_manifest.txt")
        .await
        .lines()
        .map(str::to_string)
        .collect();
    manifest.sort();
    assert_eq!(manifest, data);
    // Nothing is left in staging beside the targets.
    let all = list_keys(&moto.endpoint, "events").await;
    assert!(
        all.iter().all(|k| !k.contains(".osprey-staging")),
        "{all:?}"
    );

    // An external table over the partitions: same answers as the source, and pruning.
    rows(
        &mut c,
        &format!(
            "CREATE EXTERNAL TABLE events STORED AS PARQUET PARTITIONED BY (year) \
             LOCATION 's3://{BUCKET}/events/'"
        ),
    )
    .await;
    assert_eq!(
        rows(
            &mut c,
            "SELECT year, count(*), sum(l_quantity) FROM events GROUP BY year ORDER BY year"
        )
        .await,
        rows(
            &mut c,
            "SELECT CASE WHEN l_linenumber <= 2 THEN '2023' ELSE '2024' END AS year, count(*), \
             sum(l_quantity) FROM tpch.lineitem GROUP BY 1 ORDER BY 1"
        )
        .await
    );
    let plan = rows(
        &mut c,
        "EXPLAIN SELECT sum(l_quantity) FROM events WHERE year = '2024'",
    )
    .await
    .join("\n");
    assert!(plan.contains("year=2024"), "{plan}");
    assert!(!plan.contains("year=2023"), "{plan}");

    // Files queried directly on object storage: a glob, as a name and through read_parquet.
    let source = rows(
        &mut c,
        "SELECT count(*), sum(l_quantity) FROM tpch.lineitem WHERE l_linenumber <= 2",
    )
    .await;
    for sql in [
        format!("SELECT count(*), sum(l_quantity) FROM 's3://{BUCKET}/events/year=2023/*.parquet'"),
        format!(
            "SELECT count(*), sum(l_quantity) FROM \
             read_parquet('s3://{BUCKET}/events/year=2023/*.parquet')"
        ),
    ] {
        assert_eq!(rows(&mut c, &sql).await, source, "{sql}");
    }

    // Managed tables in an S3 warehouse: CTAS, INSERT, read back, DROP deletes the data.
    assert_eq!(
        rows(
            &mut c,
            "CREATE TABLE air AS SELECT l_orderkey, l_quantity FROM events WHERE l_shipmode = 'AIR'"
        )
        .await,
        rows(
            &mut c,
            "SELECT count(*) FROM tpch.lineitem WHERE l_shipmode = 'AIR'"
        )
        .await
    );
    assert_eq!(
        rows(&mut c, "INSERT INTO air VALUES (1, 5), (2, 6)").await,
        vec!["2"]
    );
    assert_eq!(
        rows(&mut c, "SELECT sum(l_quantity) FROM air").await,
        rows(
            &mut c,
            "SELECT sum(l_quantity) + 11 FROM tpch.lineitem WHERE l_shipmode = 'AIR'"
        )
        .await
    );
    assert!(
        !list_keys(&moto.endpoint, "warehouse/public")
            .await
            .is_empty()
    );
    rows(&mut c, "DROP TABLE air").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = list_keys(&moto.endpoint, "warehouse/public").await;
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "managed data left: {left:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Storage that refuses our credentials: clear errors naming the location, and the service
    // answers the next request.
    for (sql, expected) in [
        (
            "CREATE EXTERNAL TABLE denied STORED AS PARQUET LOCATION 's3://locked/data/'",
            "s3://locked/data/",
        ),
        (
            "UNLOAD (SELECT 1 AS x) TO 's3://locked/out/'",
            "s3://locked/out/",
        ),
    ] {
        let (code, message) = error_of(&mut c, sql).await;
        assert_eq!(
            code,
            Some(tonic::Code::PermissionDenied),
            "{sql}: {message}"
        );
        assert!(message.contains("[[storage]]"), "{sql}: {message}");
        assert!(message.contains(expected), "{sql}: {message}");
        assert!(message.contains("403"), "{sql}: {message}");
    }
    assert_eq!(rows(&mut c, "SELECT 1").await, vec!["1"]);

    // The credentials are not in any plan the coordinator shows.
    let plan = rows(&mut c, "EXPLAIN SELECT * FROM events")
        .await
        .join("\n");
    assert!(!plan.contains("osprey-test-secret"), "{plan}");
}
