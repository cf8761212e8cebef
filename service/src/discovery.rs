//! Executor discovery: which executors exist, and which of them are alive.
//!
//! Candidates come from a static list of URLs and from DNS names that resolve to many addresses
//! (a Kubernetes headless Service). A background task re-resolves the names and health-checks
//! every candidate each [`DiscoveryConfig::refresh_interval`]; the planner only sees executors
//! that answered their last check. A dead executor (connection refused or reset, or a credential
//! refused) drops out at its first failed check; one that merely answers late stays in until
//! its checks have been timing out for [`LATE_ANSWER_GRACE`], because an executor whose cores
//! are all busy with query work can take seconds to answer. A host that vanished without closing
//! its connections surfaces sooner, as a transport error, when HTTP/2 keep-alive gives up on the
//! connection (after about 20 s). A new or restarted executor is used from its first good check.

use osprey_engine::ExecutorStatusResponse;
use osprey_engine::{
    ClusterChannels, ExecutorDispatchCounter, ExecutorProbeError, ExecutorResolver, probe_executor,
};
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};
use tokio::task::JoinHandle;
use url::Url;

/// How long an executor that was up may keep answering its health checks too late before it
/// counts as down.
///
/// Seen on a 2-core machine running TPC-H SF10: executors busy on every core (one worker thread
/// each) went unanswered for up to 20 s, and were dropped between and during queries when three
/// late answers were the limit.
pub const LATE_ANSWER_GRACE: Duration = Duration::from_secs(30);

/// Where executors are found and how often they are checked.
#[derive(Debug, Clone)]
pub struct DiscoveryConfig {
    /// Executor URLs such as `http://10.0.0.5:50061`.
    pub static_executors: Vec<Url>,
    /// `host:port` names whose every DNS address is an executor (a headless Service).
    pub dns_names: Vec<String>,
    /// How often names are re-resolved and executors health-checked.
    pub refresh_interval: Duration,
    /// How long one health check may take.
    pub probe_timeout: Duration,
}

impl Default for DiscoveryConfig {
    fn default() -> Self {
        Self {
            static_executors: Vec::new(),
            dns_names: Vec::new(),
            refresh_interval: Duration::from_secs(1),
            probe_timeout: Duration::from_secs(1),
        }
    }
}

/// The health of one executor, as of its last check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecutorHealth {
    /// Answered its last health check.
    Up,
    /// Did not answer, or refused the cluster credential; the text says which.
    Down(String),
}

/// One known executor.
#[derive(Debug, Clone)]
pub struct ExecutorStatus {
    /// Its base URL.
    pub url: Url,
    /// Health as of the last check.
    pub health: ExecutorHealth,
    /// The version it reported, when it last answered.
    pub version: Option<String>,
    /// When it last answered a health check.
    pub last_seen: Option<SystemTime>,
    /// Tasks the coordinator handed it since the coordinator started.
    pub tasks_dispatched: u64,
    /// Its load as of its last check (tasks it holds, memory reserved), when it reported it.
    pub load: Option<ExecutorStatusResponse>,
}

#[derive(Default)]
struct Snapshot {
    live: Vec<Url>,
    statuses: BTreeMap<Url, ExecutorStatus>,
    /// DNS names whose last lookup failed, so a lasting failure is logged once, not every second.
    failing_names: std::collections::BTreeSet<String>,
    /// Since when health checks have been timing out, per executor still counted as up.
    late_since: BTreeMap<Url, std::time::Instant>,
}

/// The coordinator's view of its executors, kept fresh by a background task.
#[derive(Clone)]
pub struct ExecutorRegistry {
    snapshot: Arc<RwLock<Snapshot>>,
    dispatch: ExecutorDispatchCounter,
    /// What a refresh needs, for [`ExecutorRegistry::refresh_now`].
    refresher: Arc<(DiscoveryConfig, ClusterChannels)>,
}

impl std::fmt::Debug for ExecutorRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecutorRegistry")
            .field("live", &self.read().live)
            .finish()
    }
}

impl ExecutorResolver for ExecutorRegistry {
    fn live_executors(&self) -> Vec<Url> {
        self.read().live.clone()
    }
}

impl ExecutorRegistry {
    /// Starts discovery: checks every candidate once before returning (so the first query sees
    /// the executors that are already up), then keeps refreshing in the background until the
    /// returned handle is aborted or dropped with the runtime.
    pub async fn start(
        config: DiscoveryConfig,
        channels: ClusterChannels,
        dispatch: ExecutorDispatchCounter,
    ) -> (Self, JoinHandle<()>) {
        let registry = Self {
            snapshot: Arc::default(),
            dispatch,
            refresher: Arc::new((config.clone(), channels.clone())),
        };
        registry.refresh(&config, &channels).await;
        let background = registry.clone();
        let handle = tokio::spawn(async move {
            let mut ticker = tokio::time::interval(config.refresh_interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticker.tick().await;
            loop {
                ticker.tick().await;
                background.refresh(&config, &channels).await;
            }
        });
        (registry, handle)
    }

    /// Every executor known so far, live or not, ordered by URL.
    pub fn statuses(&self) -> Vec<ExecutorStatus> {
        let snapshot = self.read();
        snapshot
            .statuses
            .values()
            .cloned()
            .map(|mut status| {
                status.tasks_dispatched = self.dispatch.tasks_dispatched(&status.url);
                status
            })
            .collect()
    }

    /// Checks every executor now rather than at the next tick: after a query saw an executor
    /// fail, so that a dead one is out before the query is planned again.
    pub async fn refresh_now(&self) {
        let (config, channels) = &*self.refresher;
        self.refresh(config, channels).await;
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Snapshot> {
        self.snapshot.read().unwrap_or_else(|p| p.into_inner())
    }

    async fn refresh(&self, config: &DiscoveryConfig, channels: &ClusterChannels) {
        let (candidates, failed_names) = resolve_candidates(config).await;
        self.log_dns_changes(failed_names);
        let probes = candidates.iter().map(|url| async move {
            (
                url.clone(),
                probe_executor(channels, url, config.probe_timeout).await,
            )
        });
        let results = futures::future::join_all(probes).await;

        let mut snapshot = self.snapshot.write().unwrap_or_else(|p| p.into_inner());
        let mut live = Vec::new();
        for (url, result) in results {
            let previous = snapshot.statuses.get(&url).cloned();
            let was_up = previous
                .as_ref()
                .is_some_and(|s| s.health == ExecutorHealth::Up);
            let late_since = snapshot.late_since.get(&url).copied();
            let result = match result {
                Err(ExecutorProbeError::Timeout(timeout))
                    if was_up
                        && late_since.is_none_or(|since| since.elapsed() < LATE_ANSWER_GRACE) =>
                {
                    // Busy rather than gone: keep it, unchanged, for now.
                    tracing::debug!(%url, ?timeout, "executor answered its health check late");
                    snapshot
                        .late_since
                        .entry(url.clone())
                        .or_insert_with(std::time::Instant::now);
                    live.push(url.clone());
                    continue;
                }
                other => other,
            };
            snapshot.late_since.remove(&url);
            let status = match result {
                Ok(report) => {
                    if !was_up {
                        tracing::info!(%url, version = %report.version, "executor is up");
                    }
                    live.push(url.clone());
                    ExecutorStatus {
                        url: url.clone(),
                        health: ExecutorHealth::Up,
                        version: Some(report.version),
                        last_seen: Some(SystemTime::now()),
                        tasks_dispatched: 0,
                        load: report.load,
                    }
                }
                Err(err) => {
                    let reason = err.to_string();
                    let changed = previous
                        .as_ref()
                        .is_none_or(|s| s.health != ExecutorHealth::Down(reason.clone()));
                    if changed {
                        tracing::warn!(%url, %reason, "executor is down");
                    }
                    ExecutorStatus {
                        url: url.clone(),
                        health: ExecutorHealth::Down(reason),
                        version: previous.as_ref().and_then(|s| s.version.clone()),
                        last_seen: previous.as_ref().and_then(|s| s.last_seen),
                        tasks_dispatched: 0,
                        load: None,
                    }
                }
            };
            snapshot.statuses.insert(url, status);
        }
        // Executors that vanished from DNS are forgotten.
        snapshot.statuses.retain(|url, _| candidates.contains(url));
        snapshot
            .late_since
            .retain(|url, _| candidates.contains(url));
        live.sort();
        snapshot.live = live;
    }
}

impl ExecutorRegistry {
    /// Logs DNS names that started or stopped failing since the last refresh.
    fn log_dns_changes(&self, failed: Vec<(String, String)>) {
        let mut snapshot = self.snapshot.write().unwrap_or_else(|p| p.into_inner());
        let now_failing: std::collections::BTreeSet<String> =
            failed.iter().map(|(name, _)| name.clone()).collect();
        for (name, error) in &failed {
            if !snapshot.failing_names.contains(name) {
                tracing::warn!(%name, %error, "cannot resolve executor DNS name");
            }
        }
        for name in snapshot.failing_names.difference(&now_failing) {
            tracing::info!(%name, "executor DNS name resolves again");
        }
        snapshot.failing_names = now_failing;
    }
}

/// The static URLs plus every address each DNS name resolves to, without duplicates; and the
/// names that failed to resolve, with the reason.
async fn resolve_candidates(config: &DiscoveryConfig) -> (Vec<Url>, Vec<(String, String)>) {
    let mut candidates: Vec<Url> = config.static_executors.clone();
    let mut failed = Vec::new();
    for name in &config.dns_names {
        match tokio::net::lookup_host(name.as_str()).await {
            Ok(addrs) => {
                for addr in addrs {
                    // A SocketAddr always formats as a valid URL authority.
                    if let Ok(url) = Url::parse(&format!("http://{addr}")) {
                        candidates.push(url);
                    }
                }
            }
            Err(err) => failed.push((name.clone(), err.to_string())),
        }
    }
    candidates.sort();
    candidates.dedup();
    (candidates, failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn dns_names_expand_to_every_address() {
        let config = DiscoveryConfig {
            static_executors: vec![Url::parse("http://127.0.0.1:1").unwrap()],
            dns_names: vec!["localhost:7000".to_string()],
            ..DiscoveryConfig::default()
        };
        let (candidates, failed) = resolve_candidates(&config).await;
        assert!(failed.is_empty(), "{failed:?}");
        assert!(candidates.contains(&Url::parse("http://127.0.0.1:1").unwrap()));
        assert!(
            candidates
                .iter()
                .any(|url| url.port() == Some(7000) && url.host_str().is_some()),
            "{candidates:?}"
        );
    }

    #[tokio::test]
    async fn unresolvable_names_are_reported_not_fatal() {
        let config = DiscoveryConfig {
            static_executors: vec![Url::parse("http://127.0.0.1:1").unwrap()],
            dns_names: vec!["no-such-host.invalid:7000".to_string()],
            ..DiscoveryConfig::default()
        };
        let (candidates, failed) = resolve_candidates(&config).await;
        assert_eq!(candidates.len(), 1);
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].0, "no-such-host.invalid:7000");
    }
}
