//! A bounded map from random opaque handles to values that expire, with a bound per owner.
//!
//! Bearer tokens, result tickets and prepared-statement handles all need the same thing: a key
//! nobody can guess, a lifetime, and a cap on how many are held at once so a client cannot grow
//! the coordinator's memory without bound. The cap is per owner (user) as well as in total, and
//! reaching it costs only the owner who reached it: their new handle is refused (or, for
//! [`ExpiringStore::insert_evicting`], their own oldest handle goes); nobody else's is touched.
//!
//! Every lifetime in a store is the same, so insertion order is expiry order: expired handles
//! are purged from the front of a queue, and an insert costs O(1) amortized.

use base64::Engine as _;
use rand::RngCore;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct Entry<V> {
    value: V,
    owner: Arc<str>,
    expires: Instant,
}

/// Why a handle was not created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandleLimitReached {
    /// The owner holds as many live handles as one owner may.
    #[error(
        "you hold {limit} open statements (Flight SQL tickets and prepared statements, HTTP API \
         queries, Trino statements), the most one user may: fetch, close or cancel the ones you \
         have, or wait for them to expire"
    )]
    PerOwner {
        /// The per-owner bound.
        limit: usize,
    },
    /// The store holds as many live handles as it may, across all owners.
    #[error("the coordinator holds {limit} open handles, its limit: try again shortly")]
    Total {
        /// The total bound.
        limit: usize,
    },
}

/// A bounded store of values under random 256-bit handles, each valid for a fixed time.
///
/// ```
/// use osprey_service::ExpiringStore;
/// use std::time::Duration;
///
/// let store = ExpiringStore::new(Duration::from_secs(60), 10, 2);
/// let handle = store.insert("ana", "value").unwrap();
/// assert_eq!(store.get(&handle), Some("value"));
/// store.insert("ana", "second").unwrap();
/// assert!(store.insert("ana", "third").is_err()); // ana's bound
/// assert!(store.insert("ben", "his").is_ok());    // ben is unaffected
/// assert_eq!(store.remove(&handle), Some("value"));
/// assert_eq!(store.get(&handle), None);
/// ```
#[derive(Clone)]
pub struct ExpiringStore<V> {
    state: Arc<Mutex<State<V>>>,
    ttl: Duration,
    capacity: usize,
    per_owner: usize,
}

struct State<V> {
    entries: HashMap<String, Entry<V>>,
    /// Handles in insertion (so expiry) order; removed handles are skipped when reached.
    order: VecDeque<(Instant, String)>,
    /// Live handles per owner, in insertion order (removed ones are skipped when reached).
    by_owner: HashMap<Arc<str>, VecDeque<String>>,
}

impl<V> State<V> {
    /// Drops expired entries from the front of the queue.
    fn purge(&mut self, now: Instant) {
        while let Some((expires, _)) = self.order.front() {
            if *expires > now {
                break;
            }
            if let Some((_, handle)) = self.order.pop_front() {
                self.take(&handle);
            }
        }
        // Keep the queue from growing with handles removed early: rebuild it when mostly stale.
        if self.order.len() > 64 && self.order.len() > 2 * self.entries.len() {
            let entries = &self.entries;
            self.order
                .retain(|(_, handle)| entries.contains_key(handle));
        }
    }

    /// Removes `handle` and its place in its owner's queue.
    fn take(&mut self, handle: &str) -> Option<Entry<V>> {
        let entry = self.entries.remove(handle)?;
        if let Some(handles) = self.by_owner.get_mut(&entry.owner) {
            if let Some(at) = handles.iter().position(|h| h == handle) {
                handles.remove(at);
            }
            if handles.is_empty() {
                self.by_owner.remove(&entry.owner);
            }
        }
        Some(entry)
    }
}

impl<V: Clone> ExpiringStore<V> {
    /// A store whose entries live for `ttl`, holding at most `capacity` of them in total and
    /// `per_owner` for any one owner.
    pub fn new(ttl: Duration, capacity: usize, per_owner: usize) -> Self {
        Self {
            state: Arc::new(Mutex::new(State {
                entries: HashMap::new(),
                order: VecDeque::new(),
                by_owner: HashMap::new(),
            })),
            ttl,
            capacity: capacity.max(1),
            per_owner: per_owner.max(1),
        }
    }

    /// How long an entry lives.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Stores `value` for `owner` under a new random handle and returns the handle; refused
    /// when the owner or the store is at its bound.
    pub fn insert(&self, owner: &str, value: V) -> Result<String, HandleLimitReached> {
        self.insert_with(owner, value, false)
    }

    /// [`ExpiringStore::insert`], making room by dropping the owner's own oldest handles when
    /// the owner is at its bound (for tokens: a user who logs in again and again logs out its
    /// oldest sessions, nobody else's).
    pub fn insert_evicting(&self, owner: &str, value: V) -> Result<String, HandleLimitReached> {
        self.insert_with(owner, value, true)
    }

    fn insert_with(
        &self,
        owner: &str,
        value: V,
        evict_own: bool,
    ) -> Result<String, HandleLimitReached> {
        let now = Instant::now();
        let mut state = self.lock();
        state.purge(now);
        let held = state.by_owner.get(owner).map_or(0, VecDeque::len);
        if held >= self.per_owner {
            if !evict_own {
                return Err(HandleLimitReached::PerOwner {
                    limit: self.per_owner,
                });
            }
            let excess = held + 1 - self.per_owner;
            let oldest: Vec<String> = state.by_owner[owner].iter().take(excess).cloned().collect();
            for handle in oldest {
                state.take(&handle);
            }
        }
        if state.entries.len() >= self.capacity {
            return Err(HandleLimitReached::Total {
                limit: self.capacity,
            });
        }
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let handle = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let expires = now + self.ttl;
        let owner: Arc<str> = match state.by_owner.get_key_value(owner) {
            Some((key, _)) => Arc::clone(key),
            None => Arc::from(owner),
        };
        state
            .by_owner
            .entry(Arc::clone(&owner))
            .or_default()
            .push_back(handle.clone());
        state.order.push_back((expires, handle.clone()));
        state.entries.insert(
            handle.clone(),
            Entry {
                value,
                owner,
                expires,
            },
        );
        Ok(handle)
    }

    /// Whether `owner` may hold one more handle now (checked before work whose result would
    /// need one, such as a write that runs while its ticket is made).
    pub fn has_room(&self, owner: &str) -> Result<(), HandleLimitReached> {
        let mut state = self.lock();
        state.purge(Instant::now());
        if state.by_owner.get(owner).map_or(0, VecDeque::len) >= self.per_owner {
            return Err(HandleLimitReached::PerOwner {
                limit: self.per_owner,
            });
        }
        if state.entries.len() >= self.capacity {
            return Err(HandleLimitReached::Total {
                limit: self.capacity,
            });
        }
        Ok(())
    }

    /// The value under `handle`, unless it is unknown or expired.
    pub fn get(&self, handle: &str) -> Option<V> {
        let state = self.lock();
        state
            .entries
            .get(handle)
            .filter(|entry| entry.expires > Instant::now())
            .map(|entry| entry.value.clone())
    }

    /// Changes the value under `handle` in place (its expiry unchanged); false if the handle is
    /// unknown or expired.
    pub fn update(&self, handle: &str, change: impl FnOnce(&mut V)) -> bool {
        let mut state = self.lock();
        match state
            .entries
            .get_mut(handle)
            .filter(|entry| entry.expires > Instant::now())
        {
            Some(entry) => {
                change(&mut entry.value);
                true
            }
            None => false,
        }
    }

    /// Removes and returns the value under `handle`, unless it is unknown or expired.
    pub fn remove(&self, handle: &str) -> Option<V> {
        self.lock()
            .take(handle)
            .filter(|entry| entry.expires > Instant::now())
            .map(|entry| entry.value)
    }

    /// Removes every entry whose value matches `condition` except the one under `keep`; returns
    /// how many were removed.
    pub fn remove_where(&self, keep: Option<&str>, condition: impl Fn(&V) -> bool) -> usize {
        let mut state = self.lock();
        let doomed: Vec<String> = state
            .entries
            .iter()
            .filter(|(handle, entry)| Some(handle.as_str()) != keep && condition(&entry.value))
            .map(|(handle, _)| handle.clone())
            .collect();
        for handle in &doomed {
            state.take(handle);
        }
        doomed.len()
    }

    /// How many entries are held (including expired ones not yet purged).
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether the store holds no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<V>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expired_entries_are_not_returned_and_free_their_owner() {
        let store = ExpiringStore::new(Duration::ZERO, 10, 1);
        let handle = store.insert("ana", 1).unwrap();
        assert_eq!(store.get(&handle), None);
        // The expired handle no longer counts against ana's bound.
        store.insert("ana", 2).unwrap();
    }

    #[test]
    fn one_owner_at_its_bound_costs_nobody_else_anything() {
        let store = ExpiringStore::new(Duration::from_secs(60), 100, 3);
        let bens = store.insert("ben", 0).unwrap();
        let anas: Vec<String> = (0..3).map(|i| store.insert("ana", i).unwrap()).collect();
        assert_eq!(
            store.insert("ana", 9),
            Err(HandleLimitReached::PerOwner { limit: 3 })
        );
        assert_eq!(store.get(&bens), Some(0));
        assert!(anas.iter().all(|h| store.get(h).is_some()));
        // Closing one of hers makes room for her again.
        store.remove(&anas[0]);
        store.insert("ana", 10).unwrap();
    }

    #[test]
    fn evicting_inserts_drop_the_owners_oldest_only() {
        let store = ExpiringStore::new(Duration::from_secs(60), 100, 2);
        let bens = store.insert_evicting("ben", 0).unwrap();
        let first = store.insert_evicting("ana", 1).unwrap();
        let second = store.insert_evicting("ana", 2).unwrap();
        let third = store.insert_evicting("ana", 3).unwrap();
        assert_eq!(store.get(&first), None);
        assert_eq!(store.get(&second), Some(2));
        assert_eq!(store.get(&third), Some(3));
        assert_eq!(store.get(&bens), Some(0));
    }

    #[test]
    fn the_total_bound_refuses_new_handles_and_keeps_old_ones() {
        let store = ExpiringStore::new(Duration::from_secs(60), 2, 10);
        let a = store.insert("a", 1).unwrap();
        let b = store.insert("b", 2).unwrap();
        assert_eq!(
            store.insert("c", 3),
            Err(HandleLimitReached::Total { limit: 2 })
        );
        assert_eq!(store.get(&a), Some(1));
        assert_eq!(store.get(&b), Some(2));
    }

    #[test]
    fn many_inserts_and_removals_stay_bounded() {
        let store = ExpiringStore::new(Duration::from_secs(60), 1_000, 1_000);
        for i in 0..100_000 {
            let handle = store.insert("ana", i).unwrap();
            assert_eq!(store.remove(&handle), Some(i));
        }
        assert!(store.is_empty());
        assert!(store.lock().order.len() <= 130);
    }

    #[test]
    fn handles_are_unguessable_and_distinct() {
        let store = ExpiringStore::new(Duration::from_secs(60), 10, 10);
        let a = store.insert("x", ()).unwrap();
        let b = store.insert("x", ()).unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
    }
}
