//! The registry of the Trino endpoint's statements, by id: its limits, finding a caller's
//! statement, and forgetting finished or abandoned statements.

use super::statement::TrinoQuery;
use crate::http::ApiError;
use axum::http::StatusCode;
use osprey_service::Principal;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// Limits of the Trino endpoint.
#[derive(Debug, Clone)]
pub struct TrinoLimits {
    /// The most rows in one page.
    pub page_rows: usize,
    /// A page stops growing once its rows hold this many bytes (as Arrow).
    pub page_bytes: usize,
    /// How long one poll waits for the statement to make progress.
    pub max_wait: Duration,
    /// A running statement nobody polled for this long is cancelled.
    pub abandoned_after: Duration,
    /// A finished statement's last page is kept this long for a retried request.
    pub finished_kept: Duration,
}

impl Default for TrinoLimits {
    fn default() -> Self {
        Self {
            page_rows: 10_000,
            page_bytes: 4 << 20,
            max_wait: Duration::from_secs(1),
            abandoned_after: Duration::from_secs(5 * 60),
            finished_kept: Duration::from_secs(60),
        }
    }
}

/// The statements of the Trino endpoint, by id.
#[derive(Clone, Default)]
pub struct TrinoQueries {
    queries: Arc<Mutex<HashMap<String, Arc<TrinoQuery>>>>,
    pub(super) limits: Arc<TrinoLimits>,
}

impl TrinoQueries {
    /// An empty registry with `limits`, and a task (ending with the registry) that cancels
    /// abandoned statements.
    pub fn new(limits: TrinoLimits) -> Self {
        let queries = Self {
            queries: Arc::default(),
            limits: Arc::new(limits),
        };
        let registry = Arc::downgrade(&queries.queries);
        let limits = Arc::clone(&queries.limits);
        tokio::spawn(reap_abandoned(registry, limits));
        queries
    }

    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<TrinoQuery>>> {
        self.queries.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn get(
        &self,
        id: &str,
        slug: &str,
        owner: &Principal,
    ) -> Result<Arc<TrinoQuery>, ApiError> {
        let removed = purge(&mut self.lock(), &self.limits);
        drop(removed);
        match self.lock().get(id) {
            Some(query) if query.slug == slug && query.open.is_owned_by(owner) => {
                *query.last_seen.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
                Ok(Arc::clone(query))
            }
            _ => Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                format!(
                    "no statement {id} at this URI: it is unknown, another user's, finished a \
                     while ago, or was cancelled after nobody polled it"
                ),
            )),
        }
    }
}

/// Forgets finished statements kept long enough, and cancels abandoned ones. Returns them, to
/// be dropped once the registry is unlocked (dropping a statement drops its streams, which
/// stops its executor tasks).
#[must_use]
pub(super) fn purge(
    queries: &mut HashMap<String, Arc<TrinoQuery>>,
    limits: &TrinoLimits,
) -> Vec<Arc<TrinoQuery>> {
    queries
        .extract_if(|_, query| {
            let idle = query
                .last_seen
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .elapsed();
            let finished = query.finished.load(std::sync::atomic::Ordering::Relaxed);
            idle >= if finished {
                limits.finished_kept
            } else {
                limits.abandoned_after
            }
        })
        .map(|(_, query)| query)
        .collect()
}

async fn reap_abandoned(
    queries: Weak<Mutex<HashMap<String, Arc<TrinoQuery>>>>,
    limits: Arc<TrinoLimits>,
) {
    let mut every = tokio::time::interval(Duration::from_secs(10));
    loop {
        every.tick().await;
        let Some(queries) = queries.upgrade() else {
            return;
        };
        let removed = purge(
            &mut queries.lock().unwrap_or_else(|p| p.into_inner()),
            &limits,
        );
        drop(removed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::trino::statement::{Phase, Run, random_slug};
    use osprey_service::SessionSettings;

    fn statement(id: &str, idle: Duration, finished: bool) -> Arc<TrinoQuery> {
        Arc::new(TrinoQuery {
            id: id.to_string(),
            slug: random_slug(),
            open: osprey_service::OpenStatements::default()
                .open(&Principal {
                    user: "u".to_string(),
                    user_id: "u".to_string(),
                    is_admin: false,
                    session_id: None,
                })
                .unwrap(),
            started: Instant::now(),
            last_seen: Mutex::new(Instant::now() - idle),
            finished: std::sync::atomic::AtomicBool::new(finished),
            queue: osprey_service::QueueClock::default(),
            run: tokio::sync::Mutex::new(Run::new(Phase::Finished, SessionSettings::default())),
            cancel_requested: tokio::sync::Notify::new(),
        })
    }

    #[test]
    fn abandoned_and_long_finished_statements_are_purged() {
        let limits = TrinoLimits {
            abandoned_after: Duration::from_secs(60),
            finished_kept: Duration::from_secs(5),
            ..TrinoLimits::default()
        };
        let mut queries: HashMap<String, Arc<TrinoQuery>> = [
            statement("polled", Duration::from_secs(1), false),
            statement("abandoned", Duration::from_secs(61), false),
            statement("just-finished", Duration::from_secs(1), true),
            statement("long-finished", Duration::from_secs(6), true),
        ]
        .into_iter()
        .map(|query| (query.id.clone(), query))
        .collect();
        let mut removed: Vec<String> = purge(&mut queries, &limits)
            .iter()
            .map(|query| query.id.clone())
            .collect();
        removed.sort();
        assert_eq!(removed, ["abandoned", "long-finished"]);
        let mut kept: Vec<&String> = queries.keys().collect();
        kept.sort();
        assert_eq!(kept, ["just-finished", "polled"]);
    }
}
