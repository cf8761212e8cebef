//! The lakehouse catalog end to end, on SQLite and on PostgreSQL: schemas, external tables with
//! Hive partitions, managed tables (CREATE TABLE, CTAS, INSERT), views, renames, SHOW and
//! information_schema; definitions and data survive a coordinator restart; a failed write leaves
//! nothing visible; bad input gets clear errors.
//!
//! The PostgreSQL run needs `OSPREY_TEST_POSTGRES_URL` (scripts/test.sh starts a throwaway
//! server and sets it).

use osprey_tests::{
    CoordinatorOptions, Process, SqlClient, TEST_SECRET, error_of, rows, spawn_coordinator,
    spawn_executor,
};
use std::path::Path;
use std::time::{Duration, Instant};

const ADMIN_PASSWORD: &str = osprey_tests::ADMIN_PASSWORD;

struct Cluster {
    executors: Vec<Process>,
    coordinator: Process,
}

fn start(data_dir: &Path, catalog_url: Option<&str>, executors: Option<Vec<Process>>) -> Cluster {
    let executors = executors.unwrap_or_else(|| {
        (0..2)
            .map(|_| spawn_executor("127.0.0.1:0", TEST_SECRET))
            .collect()
    });
    let mut extra = vec![];
    if let Some(url) = catalog_url {
        extra.extend(["--catalog-url", url]);
    }
    let coordinator = spawn_coordinator(CoordinatorOptions {
        executors: executors
            .iter()
            .map(|e| format!("http://{}", e.addr))
            .collect(),
        data_dir,
        tpch_scale: Some("0.01"),
        default_schema: "public",
        extra_args: &extra,
    });
    Cluster {
        executors,
        coordinator,
    }
}

async fn client(cluster: &Cluster) -> SqlClient {
    SqlClient::connect(cluster.coordinator.addr, "admin", ADMIN_PASSWORD)
        .await
        .expect("login")
}

/// Writes a Hive-partitioned Parquet dataset (`year=2023/`, `year=2024/`) with DataFusion.
async fn write_partitioned_events(dir: &Path) {
    let ctx = datafusion::prelude::SessionContext::new();
    let sql = format!(
        "COPY (SELECT v AS id, v * 10 AS amount, CASE WHEN v % 2 = 0 THEN '2024' ELSE '2023' END AS year \
         FROM generate_series(1, 1000) AS t(v)) TO '{}/' STORED AS PARQUET PARTITIONED BY (year)",
        dir.display()
    );
    ctx.sql(&sql).await.unwrap().collect().await.unwrap();
}

/// Write ids (directories) under a managed table's data directory.
fn write_dirs(warehouse: &Path, schema: &str, table: &str) -> Vec<String> {
    let mut found = vec![];
    for entry in std::fs::read_dir(warehouse.join(schema)).unwrap() {
        let entry = entry.unwrap();
        if entry
            .file_name()
            .to_string_lossy()
            .starts_with(&format!("{table}-"))
        {
            let data = entry.path().join("data");
            if let Ok(dirs) = std::fs::read_dir(&data) {
                for dir in dirs {
                    found.push(dir.unwrap().file_name().to_string_lossy().to_string());
                }
            }
        }
    }
    found.sort();
    found
}

fn table_dir(warehouse: &Path, schema: &str, table: &str) -> std::path::PathBuf {
    std::fs::read_dir(warehouse.join(schema))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&format!("{table}-"))
        })
        .expect("table directory")
}

async fn catalog_round_trip(catalog_url: Option<&str>) {
    let data_dir = tempfile::tempdir().unwrap();
    let lake = tempfile::tempdir().unwrap();
    let events = lake.path().join("events");
    write_partitioned_events(&events).await;
    let warehouse = data_dir.path().canonicalize().unwrap().join("warehouse");

    let mut cluster = start(data_dir.path(), catalog_url, None);
    let mut c = client(&cluster).await;
    rows(&mut c, "CREATE SCHEMA lake").await;
    rows(&mut c, "CREATE DATABASE IF NOT EXISTS lake").await;
    rows(
        &mut c,
        &format!(
            "CREATE EXTERNAL TABLE lake.events STORED AS PARQUET PARTITIONED BY (year) LOCATION '{}'",
            events.display()
        ),
    )
    .await;
    assert_eq!(
        rows(
            &mut c,
            "SELECT year, count(*), sum(amount) FROM lake.events GROUP BY year ORDER BY year"
        )
        .await,
        vec!["2023 | 500 | 2500000", "2024 | 500 | 2505000"]
    );
    // Partition pruning: the plan reads only the year=2024 directory.
    let plan = rows(
        &mut c,
        "EXPLAIN SELECT sum(amount) FROM lake.events WHERE year = '2024'",
    )
    .await
    .join("\n");
    assert!(plan.contains("year=2024"), "{plan}");
    assert!(!plan.contains("year=2023"), "{plan}");
    // Statistics pruning: the Parquet scan carries a pruning predicate.
    let plan = rows(
        &mut c,
        "EXPLAIN SELECT sum(id) FROM lake.events WHERE amount > 9000",
    )
    .await
    .join("\n");
    assert!(plan.contains("pruning_predicate"), "{plan}");

    // Managed tables.
    rows(
        &mut c,
        "CREATE TABLE lake.orders (id BIGINT, customer VARCHAR, total DOUBLE)",
    )
    .await;
    assert_eq!(
        rows(
            &mut c,
            "INSERT INTO lake.orders VALUES (1, 'ana', 10.5), (2, 'bo', 20.0)"
        )
        .await,
        vec!["2"]
    );
    assert_eq!(
        rows(
            &mut c,
            "CREATE TABLE lake.big_events AS SELECT * FROM lake.events WHERE amount >= 5000"
        )
        .await,
        vec!["501"]
    );
    assert_eq!(
        rows(&mut c, "INSERT INTO lake.orders SELECT id + 100, 'bulk', amount FROM lake.events WHERE id <= 10").await,
        vec!["10"]
    );
    rows(
        &mut c,
        "CREATE VIEW lake.big_orders AS SELECT id, total FROM lake.orders WHERE total > 15",
    )
    .await;
    assert_eq!(
        rows(&mut c, "SELECT count(*) FROM lake.big_orders").await,
        vec!["10"]
    );
    rows(&mut c, "ALTER TABLE lake.big_events RENAME TO large_events").await;
    let tables = rows(
        &mut c,
        "SELECT table_name, table_type FROM information_schema.tables WHERE table_schema = 'lake' ORDER BY table_name",
    )
    .await;
    assert_eq!(
        tables,
        vec![
            "big_orders | VIEW",
            "events | BASE TABLE",
            "large_events | BASE TABLE",
            "orders | BASE TABLE"
        ]
    );
    let schemas = rows(&mut c, "SHOW SCHEMAS").await;
    assert!(schemas.contains(&"lake".to_string()), "{schemas:?}");
    let columns = rows(&mut c, "DESCRIBE lake.orders").await;
    assert_eq!(columns.len(), 3, "{columns:?}");
    let create = rows(&mut c, "SHOW CREATE TABLE lake.events")
        .await
        .join("\n");
    assert!(create.contains("PARTITIONED BY (year)"), "{create}");

    // A storage failure in the middle of an INSERT: the table's data directory is replaced by
    // a file, so every task fails to create its files.
    let orders_dir = table_dir(&warehouse, "lake", "orders");
    let before = write_dirs(&warehouse, "lake", "orders");
    std::fs::rename(orders_dir.join("data"), orders_dir.join("data.moved")).unwrap();
    std::fs::write(orders_dir.join("data"), b"not a directory").unwrap();
    let (code, message) = error_of(
        &mut c,
        "INSERT INTO lake.orders SELECT id, 'x', amount FROM lake.events",
    )
    .await;
    assert!(code.is_some(), "{message}");
    std::fs::remove_file(orders_dir.join("data")).unwrap();
    std::fs::rename(orders_dir.join("data.moved"), orders_dir.join("data")).unwrap();
    assert_eq!(
        rows(&mut c, "SELECT count(*) FROM lake.orders").await,
        vec!["12"]
    );
    // Unpublished files are deleted in the background, including any a stopping task wrote late.
    let deadline = Instant::now() + Duration::from_secs(15);
    while write_dirs(&warehouse, "lake", "orders") != before {
        assert!(
            Instant::now() < deadline,
            "staging leftovers after a failed INSERT"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A retry succeeds.
    assert_eq!(
        rows(
            &mut c,
            "INSERT INTO lake.orders SELECT id, 'x', amount FROM lake.events WHERE id <= 3"
        )
        .await,
        vec!["3"]
    );

    // Executor killed during a bigger INSERT: either every row lands or none does.
    let count_before: u64 = rows(&mut c, "SELECT count(*) FROM lake.orders").await[0]
        .parse()
        .unwrap();
    let insert = "INSERT INTO lake.orders SELECT a.id * 1000 + b.id, 'cross', a.amount FROM lake.events a, lake.events b WHERE b.id <= 300";
    let victim = cluster.executors[0].pid();
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        // SAFETY: kill(2) on a child process id this test started.
        unsafe { libc::kill(victim as i32, libc::SIGKILL) };
    });
    let outcome = c.query(insert).await;
    killer.join().unwrap();
    let count_after: u64 = rows(&mut c, "SELECT count(*) FROM lake.orders").await[0]
        .parse()
        .unwrap();
    match outcome {
        Ok(_) => assert_eq!(count_after, count_before + 300_000),
        Err(_) => assert_eq!(
            count_after, count_before,
            "a failed INSERT left rows behind"
        ),
    }
    // Unpublished files are removed (cleanup runs in the background).
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let dirs = write_dirs(&warehouse, "lake", "orders");
        let expected = before.len() + 1 + usize::from(count_after != count_before);
        if dirs.len() == expected {
            break;
        }
        assert!(Instant::now() < deadline, "staging leftovers: {dirs:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Restart the coordinator (and replace the killed executor): everything is back.
    cluster.coordinator.signal(libc::SIGTERM);
    cluster.coordinator.wait_exit(Duration::from_secs(20));
    let survivors: Vec<Process> = cluster.executors.drain(1..).collect();
    let mut executors = survivors;
    executors.push(spawn_executor("127.0.0.1:0", TEST_SECRET));
    let cluster = start(data_dir.path(), catalog_url, Some(executors));
    let mut c = client(&cluster).await;
    assert_eq!(
        rows(&mut c, "SELECT count(*) FROM lake.orders").await,
        vec![count_after.to_string()]
    );
    assert_eq!(
        rows(&mut c, "SELECT count(*) FROM lake.large_events").await,
        vec!["501"]
    );
    assert_eq!(
        rows(
            &mut c,
            "SELECT count(*) FROM lake.events WHERE year = '2023'"
        )
        .await,
        vec!["500"]
    );
    assert_eq!(
        rows(
            &mut c,
            "SELECT id, total FROM lake.big_orders WHERE id = 102"
        )
        .await,
        vec!["102 | 20.00"]
    );

    // Drops: external keeps its files, managed loses them.
    rows(&mut c, "DROP TABLE lake.events").await;
    assert!(events.join("year=2024").exists());
    rows(&mut c, "DROP TABLE lake.large_events").await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::fs::read_dir(warehouse.join("lake")).unwrap().any(|e| {
        e.unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with("big_events-")
    }) {
        assert!(Instant::now() < deadline, "managed data not deleted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (code, message) = error_of(&mut c, "DROP SCHEMA lake").await;
    assert_eq!(code, Some(tonic::Code::InvalidArgument), "{message}");
    assert!(message.contains("CASCADE"), "{message}");
    rows(&mut c, "DROP SCHEMA lake CASCADE").await;
    let (_, message) = error_of(&mut c, "SELECT * FROM lake.orders").await;
    assert!(message.contains("lake"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_catalog_round_trip() {
    catalog_round_trip(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_catalog_round_trip() {
    let url = std::env::var("OSPREY_TEST_POSTGRES_URL").expect(
        "OSPREY_TEST_POSTGRES_URL must name a PostgreSQL database for the catalog tests; \
         scripts/test.sh starts one (scripts/with-postgres.sh)",
    );
    // A database of its own, so reruns start empty.
    let db = format!("osprey_test_{}", std::process::id());
    let admin = std::process::Command::new("psql")
        .args([url.as_str(), "-q", "-c", &format!("CREATE DATABASE {db}")])
        .status()
        .expect("psql");
    assert!(admin.success());
    let (base, _) = url.rsplit_once('/').unwrap();
    catalog_round_trip(Some(&format!("{base}/{db}"))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_clear_errors_and_the_service_stays_up() {
    let data_dir = tempfile::tempdir().unwrap();
    let lake = tempfile::tempdir().unwrap();
    let cluster = start(data_dir.path(), None, None);
    let mut c = client(&cluster).await;

    let cases: Vec<(String, &str)> = vec![
        (
            format!(
                "CREATE EXTERNAL TABLE missing STORED AS PARQUET LOCATION '{}/nowhere/'",
                lake.path().display()
            ),
            "No files found",
        ),
        (
            format!(
                "CREATE EXTERNAL TABLE t STORED AS AVRO LOCATION '{}'",
                lake.path().display()
            ),
            "avro",
        ),
        (
            "CREATE TABLE nope.t (a INT)".to_string(),
            "CREATE SCHEMA nope",
        ),
        ("CREATE TABLE (a INT)".to_string(), "syntax error: expected"),
        ("INSERT INTO public.absent VALUES (1)".to_string(), "absent"),
        ("CREATE TABLE system.t (a INT)".to_string(), "read-only"),
        ("DROP VIEW tpch_missing_view".to_string(), "does not exist"),
        ("UPDATE public.x SET a = 1".to_string(), "x"),
    ];
    for (sql, expected) in cases {
        let (code, message) = error_of(&mut c, &sql).await;
        assert!(
            matches!(
                code,
                Some(
                    tonic::Code::InvalidArgument
                        | tonic::Code::Unimplemented
                        | tonic::Code::NotFound
                )
            ),
            "{sql}: {code:?} {message}"
        );
        assert!(message.contains(expected), "{sql}: {message}");
    }

    // A file that is not Parquet under a Parquet table's location: a clear error naming it.
    let bogus = lake.path().join("bogus");
    std::fs::create_dir_all(&bogus).unwrap();
    std::fs::write(bogus.join("part-0.parquet"), b"id,name\n1,a\n").unwrap();
    let (code, message) = error_of(
        &mut c,
        &format!(
            "CREATE EXTERNAL TABLE bogus STORED AS PARQUET LOCATION '{}'",
            bogus.display()
        ),
    )
    .await;
    assert_eq!(code, Some(tonic::Code::InvalidArgument), "{message}");
    assert!(message.contains("bogus"), "{message}");

    // A file added later whose column type conflicts with the stored schema: the query that
    // reads that column is refused, naming the file, the column and both types; other columns
    // still read.
    let typed = lake.path().join("typed");
    let typed_dir = typed.display().to_string();
    rows(
        &mut c,
        &format!("UNLOAD (SELECT 1::BIGINT AS id, 10::INT AS amount) TO '{typed_dir}/a'"),
    )
    .await;
    rows(
        &mut c,
        &format!("CREATE EXTERNAL TABLE typed STORED AS PARQUET LOCATION '{typed_dir}/a'"),
    )
    .await;
    rows(
        &mut c,
        &format!("UNLOAD (SELECT 2::BIGINT AS id, 'abc' AS amount) TO '{typed_dir}/b'"),
    )
    .await;
    let conflicting = std::fs::read_dir(typed.join("b"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "parquet"))
        .unwrap();
    std::fs::copy(&conflicting, typed.join("a/conflicting.parquet")).unwrap();
    let (code, message) = error_of(&mut c, "SELECT sum(amount) FROM typed").await;
    assert_eq!(code, Some(tonic::Code::InvalidArgument), "{message}");
    for expected in ["conflicting.parquet", "column amount", "VARCHAR", "INTEGER"] {
        assert!(message.contains(expected), "{expected}: {message}");
    }
    assert_eq!(
        rows(&mut c, "SELECT id FROM typed ORDER BY id").await,
        vec!["1", "2"]
    );

    // External tables are read-only.
    let csv = lake.path().join("csv");
    std::fs::create_dir_all(&csv).unwrap();
    std::fs::write(csv.join("a.csv"), b"id;name\n1;ana\n2;bo\n").unwrap();
    rows(
        &mut c,
        &format!(
            "CREATE EXTERNAL TABLE people STORED AS CSV LOCATION '{}' OPTIONS ('format.has_header' 'true', 'format.delimiter' ';')",
            csv.display()
        ),
    )
    .await;
    assert_eq!(
        rows(&mut c, "SELECT name FROM people ORDER BY id").await,
        vec!["ana", "bo"]
    );
    let (code, message) = error_of(&mut c, "INSERT INTO people VALUES (3, 'cy')").await;
    assert_eq!(code, Some(tonic::Code::Unimplemented), "{message}");
    assert!(message.contains("external"), "{message}");

    // The service answers the next request.
    assert_eq!(rows(&mut c, "SELECT 1 + 1").await, vec!["2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unload_exports_files_and_a_manifest() {
    let data_dir = tempfile::tempdir().unwrap();
    let lake = tempfile::tempdir().unwrap();
    let lake_dir = lake.path().canonicalize().unwrap();
    let cluster = start(data_dir.path(), None, None);
    let mut c = client(&cluster).await;
    let expected = rows(
        &mut c,
        "SELECT count(*), sum(l_quantity) FROM tpch.lineitem WHERE l_shipmode = 'AIR'",
    )
    .await;

    // Parquet (the default): files written by the executors, then a manifest listing them.
    let parquet = lake_dir.join("air");
    let written = rows(
        &mut c,
        &format!(
            "UNLOAD (SELECT * FROM tpch.lineitem WHERE l_shipmode = 'AIR') TO '{}'",
            parquet.display()
        ),
    )
    .await;
    assert_eq!(written[0], expected[0].split(" | ").next().unwrap());
    let manifest = std::fs::read_to_string(parquet.join("_manifest.txt")).unwrap();
    let mut listed: Vec<String> = manifest.lines().map(str::to_string).collect();
    listed.sort();
    let mut on_disk: Vec<String> = std::fs::read_dir(&parquet)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name != "_manifest.txt")
        .map(|name| format!("file://{}/{name}", parquet.display()))
        .collect();
    on_disk.sort();
    assert!(!listed.is_empty());
    assert_eq!(listed, on_disk);
    // Nothing is left beside the target (the staging prefix is gone).
    let beside: Vec<String> = std::fs::read_dir(&lake_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(beside, vec!["air"]);
    rows(
        &mut c,
        &format!(
            "CREATE EXTERNAL TABLE air STORED AS PARQUET LOCATION '{}'",
            parquet.display()
        ),
    )
    .await;
    assert_eq!(
        rows(&mut c, "SELECT count(*), sum(l_quantity) FROM air").await,
        expected
    );

    // The target must be empty: UNLOAD never overwrites.
    let (code, message) = error_of(
        &mut c,
        &format!("UNLOAD (SELECT 1 AS x) TO '{}'", parquet.display()),
    )
    .await;
    assert_eq!(code, Some(tonic::Code::InvalidArgument), "{message}");
    assert!(message.contains("not empty"), "{message}");

    // Files added under an external table's location are seen by the next query.
    let extra = lake_dir.join("extra");
    rows(
        &mut c,
        &format!(
            "UNLOAD (SELECT * FROM air LIMIT 10) TO '{}'",
            extra.display()
        ),
    )
    .await;
    for entry in std::fs::read_dir(&extra).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|x| x == "parquet") {
            std::fs::rename(&path, parquet.join(path.file_name().unwrap())).unwrap();
        }
    }
    std::fs::remove_dir_all(&extra).unwrap();
    let count: u64 = rows(&mut c, "SELECT count(*) FROM air").await[0]
        .parse()
        .unwrap();
    let before: u64 = expected[0].split(" | ").next().unwrap().parse().unwrap();
    assert_eq!(count, before + 10);

    // CSV with its options, read back with the same options.
    let csv = lake_dir.join("nations_csv");
    rows(
        &mut c,
        &format!(
            "UNLOAD (SELECT n_nationkey, n_name FROM tpch.nation WHERE n_regionkey = 1) TO '{}' \
             WITH (format = 'CSV', field_delimiter = '|', header = true)",
            csv.display()
        ),
    )
    .await;
    rows(
        &mut c,
        &format!(
            "CREATE EXTERNAL TABLE nations_csv STORED AS CSV LOCATION '{}' \
             OPTIONS ('format.has_header' 'true', 'format.delimiter' '|')",
            csv.display()
        ),
    )
    .await;
    assert_eq!(
        rows(
            &mut c,
            "SELECT n_name FROM nations_csv ORDER BY n_nationkey"
        )
        .await,
        vec!["ARGENTINA", "BRAZIL", "CANADA", "PERU", "UNITED STATES"]
    );

    // JSON, from Redshift's string form.
    let json = lake_dir.join("json");
    rows(
        &mut c,
        &format!(
            "UNLOAD ('SELECT r_name FROM tpch.region') TO '{}' WITH (format = 'JSON')",
            json.display()
        ),
    )
    .await;
    let text: String = std::fs::read_dir(&json)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    assert_eq!(text.lines().count(), 5, "{text}");
    assert!(text.contains(r#"{"r_name":"ASIA"}"#), "{text}");

    // A query that fails midway leaves neither the target nor a staging prefix.
    let failed = lake_dir.join("failed");
    let (_, message) = error_of(
        &mut c,
        &format!(
            "UNLOAD (SELECT l_orderkey / (l_linenumber - l_linenumber) FROM tpch.lineitem) TO '{}'",
            failed.display()
        ),
    )
    .await;
    assert!(message.contains("division by zero"), "{message}");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let leftovers: Vec<String> = std::fs::read_dir(&lake_dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|name| name.starts_with(".osprey-staging") || name == "failed")
            .collect();
        if leftovers.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "left behind: {leftovers:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Bad options get clear errors.
    for (sql, expected) in [
        (
            "UNLOAD (SELECT 1) TO '/tmp/x' WITH (format = 'ORC')",
            "'orc'",
        ),
        (
            "UNLOAD (SELECT 1) TO '/tmp/x' WITH (colour = 'red')",
            "format",
        ),
        ("UNLOAD ('DROP TABLE air') TO '/tmp/x'", "query"),
    ] {
        let (code, message) = error_of(&mut c, sql).await;
        assert_eq!(code, Some(tonic::Code::InvalidArgument), "{sql}: {message}");
        assert!(message.contains(expected), "{sql}: {message}");
    }
    assert_eq!(rows(&mut c, "SELECT count(*) FROM air").await.len(), 1);
}
