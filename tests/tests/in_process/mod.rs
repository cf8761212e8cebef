//! A coordinator in the test's process (its statement service, no front door) over two
//! executor processes, for tests that drive the service directly.

use osprey_coordinator::{Coordinator, CoordinatorConfig};
use osprey_proto::ClusterSecret;
use osprey_service::{ExecutorHealth, Principal, QueryError, StatementService, UserCredential};
use osprey_tests::{ADMIN_PASSWORD, Process, TEST_SECRET, spawn_executor};
use std::path::Path;
use std::time::Duration;

/// Starts the coordinator with its files in `data_dir` and waits until both executors are up.
/// The executors stop when the returned processes are dropped.
pub async fn start_coordinator(data_dir: &Path) -> (Coordinator, Vec<Process>) {
    let executors: Vec<Process> = (0..2)
        .map(|_| spawn_executor("127.0.0.1:0", TEST_SECRET))
        .collect();
    let mut config = CoordinatorConfig::new(ClusterSecret::new(TEST_SECRET).expect("secret"));
    config.data_dir = data_dir.to_path_buf();
    config.discovery.static_executors = executors
        .iter()
        .map(|executor| {
            url::Url::parse(&format!("http://{}", executor.addr)).expect("executor URL")
        })
        .collect();
    config.auth.users = vec![UserCredential {
        name: "admin".into(),
        password: ADMIN_PASSWORD.into(),
        admin: true,
    }];
    let coordinator = Coordinator::start(&config)
        .await
        .expect("the coordinator starts");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let live = |coordinator: &Coordinator| {
        coordinator
            .registry
            .statuses()
            .iter()
            .filter(|status| matches!(status.health, ExecutorHealth::Up))
            .count()
    };
    while live(&coordinator) < executors.len() {
        assert!(
            std::time::Instant::now() < deadline,
            "the executors did not come up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (coordinator, executors)
}

/// The admin, as a front door would authenticate it (the coordinator's own internal
/// statements, with no principal, skip the checks a user's pass).
pub async fn admin(service: &StatementService) -> Principal {
    log_in(service, "admin", ADMIN_PASSWORD)
        .await
        .expect("the admin logs in")
}

/// `user`, as a front door would authenticate it.
pub async fn log_in(
    service: &StatementService,
    user: &str,
    password: &str,
) -> Result<Principal, QueryError> {
    service
        .engine()
        .auth()
        .check_password(user, password, None)
        .await
        .map_err(|err| QueryError::PermissionDenied(err.to_string()))
}
