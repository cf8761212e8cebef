//! The memory held by results kept for paging (`POST /v1/queries`): counted in the process's
//! memory pool, as a running query's is, and bounded per user.
//!
//! Without this, 32 kept results of 256 MiB each per user lay outside every limit: enough for
//! one user to push the coordinator out of memory while the pool believed it was empty.

use datafusion::execution::memory_pool::{MemoryConsumer, MemoryPool, MemoryReservation};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The result bytes each user keeps, all their queries together.
#[derive(Clone, Default)]
pub struct RetainedResults {
    by_user: Arc<Mutex<HashMap<String, usize>>>,
}

/// Why a result could not keep another batch.
#[derive(Debug, thiserror::Error)]
pub enum RetentionRefused {
    /// The user's kept results reached their bound.
    #[error(
        "your kept query results reached {limit} bytes, the most one user keeps for paging: \
         fetch or DELETE finished queries, stream this one with POST /v1/statement:stream, or \
         UNLOAD it"
    )]
    UserLimit {
        /// The per-user bound.
        limit: usize,
    },
    /// The coordinator's memory pool is full.
    #[error(
        "the coordinator has no memory left to keep this result for paging ({0}): stream it \
         with POST /v1/statement:stream, or UNLOAD it"
    )]
    Memory(String),
}

/// The memory one query's kept result holds; given back when dropped.
pub struct Retention {
    reservation: MemoryReservation,
    results: RetainedResults,
    owner: String,
    bytes: usize,
}

impl RetainedResults {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.by_user.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts counting the result of query `query_id` of the user with identity `owner`, in
    /// `pool`.
    pub fn start(&self, owner: &str, query_id: &str, pool: &Arc<dyn MemoryPool>) -> Retention {
        Retention {
            reservation: MemoryConsumer::new(format!("HTTP API result of {query_id}"))
                .register(pool),
            results: self.clone(),
            owner: owner.to_string(),
            bytes: 0,
        }
    }

    /// The bytes the user with identity `owner` keeps.
    #[cfg(test)]
    pub fn held_by(&self, owner: &str) -> usize {
        self.lock().get(owner).copied().unwrap_or(0)
    }
}

impl Retention {
    /// Counts `bytes` more, unless that takes the user past `max_per_user` or the pool is full.
    pub fn grow(&mut self, bytes: usize, max_per_user: usize) -> Result<(), RetentionRefused> {
        let mut by_user = self.results.lock();
        let held = by_user.entry(self.owner.clone()).or_insert(0);
        if held.saturating_add(bytes) > max_per_user {
            return Err(RetentionRefused::UserLimit {
                limit: max_per_user,
            });
        }
        self.reservation
            .try_grow(bytes)
            .map_err(|err| RetentionRefused::Memory(err.to_string()))?;
        *held += bytes;
        self.bytes += bytes;
        Ok(())
    }
}

impl Drop for Retention {
    fn drop(&mut self) {
        let mut by_user = self.results.lock();
        if let Some(held) = by_user.get_mut(&self.owner) {
            *held = held.saturating_sub(self.bytes);
            if *held == 0 {
                by_user.remove(&self.owner);
            }
        }
        // The reservation gives its bytes back to the pool as it drops.
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::execution::memory_pool::GreedyMemoryPool;

    #[test]
    fn kept_results_count_in_the_pool_and_per_user() {
        let pool: Arc<dyn MemoryPool> = Arc::new(GreedyMemoryPool::new(1000));
        let results = RetainedResults::default();
        let mut first = results.start("ana-id", "q1", &pool);
        first.grow(300, 500).unwrap();
        let mut second = results.start("ana-id", "q2", &pool);
        assert!(matches!(
            second.grow(300, 500),
            Err(RetentionRefused::UserLimit { limit: 500 })
        ));
        assert_eq!(results.held_by("ana-id"), 300);
        // Another user is bounded by the pool, not by ana's bound.
        let mut other = results.start("ben-id", "q3", &pool);
        assert!(matches!(
            other.grow(800, 5000),
            Err(RetentionRefused::Memory(_))
        ));
        other.grow(700, 5000).unwrap();
        assert_eq!(pool.reserved(), 1000);
        drop(first);
        drop(second);
        assert_eq!(results.held_by("ana-id"), 0);
        assert_eq!(pool.reserved(), 700);
    }
}
