//! Users in the catalog: admins manage them with SQL, passwords are stored only as Argon2id
//! hashes, tokens are revoked when a user changes or is dropped (or on demand), non-admins see
//! only their own queries, and everything survives a coordinator restart.

use osprey_tests::{
    ADMIN_PASSWORD, CoordinatorOptions, Process, SqlClient, TEST_SECRET, error_of, rows,
    spawn_coordinator, spawn_executor, status_code,
};
use std::path::Path;

fn start_coordinator(data_dir: &Path, executor: &Process) -> Process {
    spawn_coordinator(CoordinatorOptions {
        executors: vec![format!("http://{}", executor.addr)],
        data_dir,
        tpch_scale: None,
        default_schema: "public",
        extra_args: &[],
    })
}

async fn login(coordinator: &Process, user: &str, password: &str) -> SqlClient {
    SqlClient::connect(coordinator.addr, user, password)
        .await
        .unwrap_or_else(|err| panic!("{user} logs in: {err}"))
}

async fn login_error(coordinator: &Process, user: &str, password: &str) -> String {
    SqlClient::connect(coordinator.addr, user, password)
        .await
        .err()
        .unwrap_or_else(|| panic!("{user} with {password:?} was let in"))
        .to_string()
}

/// Every byte of the SQLite catalog (database and write-ahead log).
fn catalog_bytes(data_dir: &Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    for name in ["catalog.db", "catalog.db-wal"] {
        if let Ok(content) = std::fs::read(data_dir.join(name)) {
            bytes.extend(content);
        }
    }
    bytes
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_manage_users_and_tokens_follow_their_changes() {
    let executor = spawn_executor("127.0.0.1:0", TEST_SECRET);
    let data_dir = tempfile::tempdir().unwrap();
    let coordinator = start_coordinator(data_dir.path(), &executor);
    let mut admin = login(&coordinator, "admin", ADMIN_PASSWORD).await;

    rows(&mut admin, "CREATE USER ana PASSWORD 'first-pass'").await;
    rows(
        &mut admin,
        "CREATE USER IF NOT EXISTS ana PASSWORD 'ignored'",
    )
    .await;
    let (code, message) = error_of(&mut admin, "CREATE USER ana PASSWORD 'again'").await;
    assert_eq!(code, Some(tonic::Code::InvalidArgument), "{message}");
    assert!(message.contains("user ana already exists"), "{message}");

    // The password is stored only as an Argon2id hash.
    let stored = catalog_bytes(data_dir.path());
    assert!(contains(&stored, "$argon2id$"));
    assert!(!contains(&stored, "first-pass"));
    assert!(!contains(&stored, ADMIN_PASSWORD));

    // Ana works, but may not manage users or see others' queries.
    let mut ana = login(&coordinator, "ana", "first-pass").await;
    assert_eq!(rows(&mut ana, "SELECT 40 + 2").await, vec!["42"]);
    let (code, message) = error_of(&mut ana, "CREATE USER eve PASSWORD 'x'").await;
    assert_eq!(code, Some(tonic::Code::PermissionDenied), "{message}");
    let (code, _) = error_of(&mut ana, "ALTER USER admin PASSWORD 'mine-now'").await;
    assert_eq!(code, Some(tonic::Code::PermissionDenied));
    let (code, _) = error_of(&mut ana, "ALTER USER ana ADMIN").await;
    assert_eq!(code, Some(tonic::Code::PermissionDenied));
    let seen_by_ana = rows(
        &mut ana,
        "SELECT DISTINCT user_name FROM system.queries ORDER BY 1",
    )
    .await;
    assert_eq!(seen_by_ana, vec!["ana"]);
    let seen_by_admin = rows(
        &mut admin,
        "SELECT DISTINCT user_name FROM system.queries ORDER BY 1",
    )
    .await;
    assert_eq!(seen_by_admin, vec!["admin", "ana"]);
    // The history keeps the statement, with the password masked.
    let recorded = rows(
        &mut admin,
        "SELECT query FROM system.queries WHERE query LIKE 'CREATE USER ana%' ORDER BY 1 LIMIT 1",
    )
    .await;
    assert_eq!(recorded, vec!["CREATE USER ana PASSWORD '***'"]);
    assert_eq!(
        rows(&mut ana, "SHOW USERS").await[0]
            .split(" | ")
            .take(3)
            .collect::<Vec<_>>(),
        vec!["ana", "false", "sql"]
    );

    // Ana changes her own password, giving the current one: her other sessions end, this one
    // goes on. Without it, or with a wrong one, nothing changes.
    let mut ana_elsewhere = login(&coordinator, "ana", "first-pass").await;
    let (code, message) = error_of(&mut ana, "ALTER USER ana PASSWORD 'second-pass'").await;
    assert_eq!(code, Some(tonic::Code::PermissionDenied), "{message}");
    assert!(message.contains("REPLACE 'current'"), "{message}");
    let (code, message) = error_of(
        &mut ana,
        "ALTER USER ana PASSWORD 'second-pass' REPLACE 'not-it'",
    )
    .await;
    assert_eq!(code, Some(tonic::Code::PermissionDenied), "{message}");
    rows(
        &mut ana,
        "ALTER USER ana PASSWORD 'second-pass' REPLACE 'first-pass'",
    )
    .await;
    let recorded = rows(
        &mut admin,
        "SELECT query FROM system.queries WHERE query LIKE 'ALTER USER ana PASSWORD%' ORDER BY 1",
    )
    .await;
    assert!(
        recorded
            .iter()
            .all(|q| !q.contains("pass'") && !q.contains("not-it")),
        "{recorded:?}"
    );
    assert_eq!(rows(&mut ana, "SELECT 1").await, vec!["1"]);
    let err = ana_elsewhere.query("SELECT 1").await.unwrap_err();
    assert_eq!(
        status_code(&err),
        Some(tonic::Code::Unauthenticated),
        "{err}"
    );
    assert!(
        login_error(&coordinator, "ana", "first-pass")
            .await
            .contains("invalid username or password")
    );
    let mut ana_elsewhere = login(&coordinator, "ana", "second-pass").await;

    // An admin revokes every token of hers on demand.
    rows(&mut admin, "ALTER USER ana REVOKE TOKENS").await;
    for client in [&mut ana, &mut ana_elsewhere] {
        let err = client.query("SELECT 1").await.unwrap_err();
        assert_eq!(
            status_code(&err),
            Some(tonic::Code::Unauthenticated),
            "{err}"
        );
        assert!(err.to_string().contains("revoked"), "{err}");
    }

    // Promoted, she manages users; the configured admin stays the configuration's to change.
    rows(&mut admin, "ALTER USER ana WITH ADMIN").await;
    let mut ana = login(&coordinator, "ana", "second-pass").await;
    rows(&mut ana, "CREATE USER \"Bob\" PASSWORD 'bob-pass'").await;
    let (code, message) = error_of(&mut ana, "ALTER USER admin PASSWORD 'x'").await;
    assert_eq!(code, Some(tonic::Code::InvalidArgument), "{message}");
    assert!(
        message.contains("defined in the coordinator's configuration"),
        "{message}"
    );
    let (_, message) = error_of(&mut ana, "DROP USER ana").await;
    assert!(message.contains("current user"), "{message}");

    // Everything persists across a restart; tokens do not.
    let old_token = ana.inner.token().cloned().expect("logged in");
    drop(coordinator);
    let coordinator = start_coordinator(data_dir.path(), &executor);
    let mut ana = login(&coordinator, "ana", "second-pass").await;
    let mut stale = login(&coordinator, "ana", "second-pass").await;
    stale.inner.set_token(old_token);
    let err = stale.query("SELECT 1").await.unwrap_err();
    assert_eq!(
        status_code(&err),
        Some(tonic::Code::Unauthenticated),
        "{err}"
    );
    let mut bob = login(&coordinator, "Bob", "bob-pass").await;
    assert_eq!(rows(&mut bob, "SELECT 2").await, vec!["2"]);
    let users: Vec<String> = rows(&mut ana, "SHOW USERS")
        .await
        .iter()
        .map(|row| row.split(" | ").take(3).collect::<Vec<_>>().join(" | "))
        .collect();
    assert_eq!(
        users,
        vec![
            "Bob | false | sql",
            "admin | true | config",
            "ana | true | sql"
        ]
    );

    // Dropping a user ends its sessions and its logins.
    rows(&mut ana, "DROP USER \"Bob\"").await;
    let err = bob.query("SELECT 1").await.unwrap_err();
    assert_eq!(
        status_code(&err),
        Some(tonic::Code::Unauthenticated),
        "{err}"
    );
    assert!(
        login_error(&coordinator, "Bob", "bob-pass")
            .await
            .contains("invalid username or password")
    );
    rows(&mut ana, "DROP USER IF EXISTS \"Bob\"").await;
    let (_, message) = error_of(&mut ana, "DROP USER \"Bob\"").await;
    assert!(message.contains("does not exist"), "{message}");

    // Malformed user statements are refused clearly, and nothing changes.
    for (sql, expected) in [
        ("CREATE USER carl", "needs a password"),
        ("CREATE USER 'a:b' PASSWORD 'x'", "may not contain ':'"),
        ("ALTER USER ana", "ALTER USER changes"),
    ] {
        let (code, message) = error_of(&mut ana, sql).await;
        assert_eq!(code, Some(tonic::Code::InvalidArgument), "{sql}: {message}");
        assert!(message.contains(expected), "{sql}: {message}");
    }
}
