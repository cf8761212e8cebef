//! A bounded map from random opaque handles to values that expire.
//!
//! Bearer tokens, result tickets and prepared-statement handles all need the same thing: a key
//! nobody can guess, a lifetime, and a cap on how many are held at once so a client cannot grow
//! the coordinator's memory without bound.

use base64::Engine as _;
use rand::RngCore;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct Entry<V> {
    value: V,
    expires: Instant,
}

/// A bounded store of values under random 256-bit handles, each valid for a fixed time.
///
/// ```
/// use osprey_coordinator::expiring::ExpiringStore;
/// use std::time::Duration;
///
/// let store = ExpiringStore::new(Duration::from_secs(60), 2);
/// let handle = store.insert("value");
/// assert_eq!(store.get(&handle), Some("value"));
/// assert_eq!(store.remove(&handle), Some("value"));
/// assert_eq!(store.get(&handle), None);
/// ```
#[derive(Clone)]
pub struct ExpiringStore<V> {
    entries: Arc<Mutex<HashMap<String, Entry<V>>>>,
    ttl: Duration,
    capacity: usize,
}

impl<V: Clone> ExpiringStore<V> {
    /// A store whose entries live for `ttl` and which holds at most `capacity` of them; when
    /// full, the entries closest to expiry are dropped first.
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            entries: Arc::default(),
            ttl,
            capacity: capacity.max(1),
        }
    }

    /// Stores `value` under a new random handle and returns the handle.
    pub fn insert(&self, value: V) -> String {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let handle = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let now = Instant::now();
        let mut entries = self.lock();
        entries.retain(|_, entry| entry.expires > now);
        if entries.len() >= self.capacity {
            let mut by_expiry: Vec<_> = entries
                .iter()
                .map(|(key, entry)| (entry.expires, key.clone()))
                .collect();
            by_expiry.sort();
            let excess = entries.len() + 1 - self.capacity;
            for (_, key) in by_expiry.into_iter().take(excess) {
                entries.remove(&key);
            }
        }
        entries.insert(
            handle.clone(),
            Entry {
                value,
                expires: now + self.ttl,
            },
        );
        handle
    }

    /// The value under `handle`, unless it is unknown or expired.
    pub fn get(&self, handle: &str) -> Option<V> {
        let entries = self.lock();
        entries
            .get(handle)
            .filter(|entry| entry.expires > Instant::now())
            .map(|entry| entry.value.clone())
    }

    /// Changes the value under `handle` in place (its expiry unchanged); false if the handle is
    /// unknown or expired.
    pub fn update(&self, handle: &str, change: impl FnOnce(&mut V)) -> bool {
        let mut entries = self.lock();
        match entries
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
        let mut entries = self.lock();
        entries
            .remove(handle)
            .filter(|entry| entry.expires > Instant::now())
            .map(|entry| entry.value)
    }

    /// Removes every entry whose value matches `condition` except the one under `keep`; returns
    /// how many were removed.
    pub fn remove_where(&self, keep: Option<&str>, condition: impl Fn(&V) -> bool) -> usize {
        let mut entries = self.lock();
        let before = entries.len();
        entries.retain(|handle, entry| Some(handle.as_str()) == keep || !condition(&entry.value));
        before - entries.len()
    }

    /// How many entries are held (including expired ones not yet purged).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether the store holds no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry<V>>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expired_entries_are_not_returned() {
        let store = ExpiringStore::new(Duration::ZERO, 10);
        let handle = store.insert(1);
        assert_eq!(store.get(&handle), None);
    }

    #[test]
    fn capacity_drops_the_oldest() {
        let store = ExpiringStore::new(Duration::from_secs(60), 2);
        let first = store.insert(1);
        let second = store.insert(2);
        let third = store.insert(3);
        assert_eq!(store.len(), 2);
        assert_eq!(store.get(&first), None);
        assert_eq!(store.get(&second), Some(2));
        assert_eq!(store.get(&third), Some(3));
    }

    #[test]
    fn handles_are_unguessable_and_distinct() {
        let store = ExpiringStore::new(Duration::from_secs(60), 10);
        let a = store.insert(());
        let b = store.insert(());
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
    }
}
