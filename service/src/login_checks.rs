//! The turn a password check waits for: a small bound on checks running and waiting, and a
//! growing delay after repeated failures, per user name and per peer address.
//!
//! Argon2 costs memory and a core by design, so unbounded concurrent checks are a memory bomb,
//! and unthrottled failures let an attacker guess at full speed. Failures slow down (never lock
//! out, so an attacker cannot keep a real user out):
//!
//! - one user name after [`FREE_USER_FAILURES`] failures, whoever tries it;
//! - one peer address after [`FREE_PEER_FAILURES`] failures, whichever names it tries
//!   (spraying many names from one place). The bound is higher because many users may share an
//!   address behind a NAT or a proxy, and a user who logged in from that address recently is
//!   not held back by it: only their own name's failures slow them.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// At most this many password checks run at once: each Argon2 check holds 19 MiB and a core
/// for tens of milliseconds.
pub const MAX_CONCURRENT_PASSWORD_CHECKS: usize = 4;
/// Password checks that may wait for one of those; past this a login is refused at once
/// ([`NoTurn::Busy`]).
pub const MAX_WAITING_PASSWORD_CHECKS: usize = 128;
/// Failed logins for one user name before further attempts for it are slowed down.
pub const FREE_USER_FAILURES: u32 = 3;
/// Failed logins from one peer address (any names) before further attempts from it are
/// slowed down.
pub const FREE_PEER_FAILURES: u32 = 30;
/// The longest a login is held back.
pub const MAX_FAILURE_DELAY: Duration = Duration::from_secs(4);
/// The first delay past the free failures; each further failure doubles it.
const FIRST_DELAY: Duration = Duration::from_millis(250);
/// Failures older than this are forgotten.
const FAILURE_MEMORY: Duration = Duration::from_secs(15 * 60);
/// How long a user who logged in from an address is exempt from that address's slowdown.
const TRUSTED_MEMORY: Duration = Duration::from_secs(24 * 3600);
/// Entries remembered at once in each map; a full map forgets its stale entries, then all.
const CAPACITY: usize = 10_000;

/// Why a password check got no turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoTurn {
    /// Too many checks are waiting already.
    Busy,
    /// The checks are shutting down.
    Closed,
}

/// Recent failures per key, with the time of the latest.
struct Failures<K> {
    entries: HashMap<K, (u32, Instant)>,
}

impl<K: Hash + Eq + Clone> Failures<K> {
    fn new() -> Self {
        Self {
            entries: HashMap::new(),
        }
    }

    /// The delay `key` has earned with more than `free` recent failures.
    fn delay(&self, key: &K, free: u32) -> Duration {
        match self.entries.get(key) {
            Some((failures, last)) if *failures > free && last.elapsed() < FAILURE_MEMORY => {
                let doublings = (*failures - free - 1).min(16);
                (FIRST_DELAY * 2u32.pow(doublings)).min(MAX_FAILURE_DELAY)
            }
            _ => Duration::ZERO,
        }
    }

    fn failed(&mut self, key: &K) {
        make_room(&mut self.entries, key, |(_, last)| {
            last.elapsed() < FAILURE_MEMORY
        });
        let entry = self
            .entries
            .entry(key.clone())
            .or_insert((0, Instant::now()));
        if entry.1.elapsed() >= FAILURE_MEMORY {
            entry.0 = 0;
        }
        entry.0 = entry.0.saturating_add(1);
        entry.1 = Instant::now();
    }

    fn forget(&mut self, key: &K) {
        self.entries.remove(key);
    }
}

/// Makes room for `key` in `map` at [`CAPACITY`]: drops the entries `live` says are stale,
/// and everything if that is not enough (forgetting failures costs a delay, never access).
fn make_room<K: Hash + Eq, V>(map: &mut HashMap<K, V>, key: &K, live: impl Fn(&V) -> bool) {
    if map.len() >= CAPACITY && !map.contains_key(key) {
        map.retain(|_, value| live(value));
        if map.len() >= CAPACITY {
            map.clear();
        }
    }
}

/// What the checks remember.
struct Memory {
    users: Failures<String>,
    peers: Failures<IpAddr>,
    /// User and address pairs that logged in successfully, and when.
    trusted: HashMap<(String, IpAddr), Instant>,
}

/// Bounds the password checks running and waiting, and slows repeated failures.
#[derive(Clone)]
pub struct PasswordChecks {
    running: Arc<tokio::sync::Semaphore>,
    waiting: Arc<AtomicUsize>,
    memory: Arc<Mutex<Memory>>,
}

/// Counts a waiting check until dropped.
struct Waiting(Arc<AtomicUsize>);

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl PasswordChecks {
    /// No check running, nothing remembered.
    pub fn new() -> Self {
        Self {
            running: Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT_PASSWORD_CHECKS)),
            waiting: Arc::default(),
            memory: Arc::new(Mutex::new(Memory {
                users: Failures::new(),
                peers: Failures::new(),
                trusted: HashMap::new(),
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Memory> {
        self.memory.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for a turn to check a password for `user` from `peer`: first out the failure
    /// delay, then for a free check. Refused at once when too many are waiting already.
    pub async fn turn(
        &self,
        user: &str,
        peer: Option<IpAddr>,
    ) -> Result<tokio::sync::OwnedSemaphorePermit, NoTurn> {
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= MAX_WAITING_PASSWORD_CHECKS {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(NoTurn::Busy);
        }
        let _waiting = Waiting(Arc::clone(&self.waiting));
        let delay = self.delay_for(user, peer);
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        Arc::clone(&self.running)
            .acquire_owned()
            .await
            .map_err(|_| NoTurn::Closed)
    }

    /// How long a check for `user` from `peer` is held back now.
    pub fn delay_for(&self, user: &str, peer: Option<IpAddr>) -> Duration {
        let memory = self.lock();
        let by_user = memory.users.delay(&user.to_string(), FREE_USER_FAILURES);
        let by_peer = match peer {
            Some(peer) => {
                let trusted = memory
                    .trusted
                    .get(&(user.to_string(), peer))
                    .is_some_and(|at| at.elapsed() < TRUSTED_MEMORY);
                if trusted {
                    Duration::ZERO
                } else {
                    memory.peers.delay(&peer, FREE_PEER_FAILURES)
                }
            }
            None => Duration::ZERO,
        };
        by_user.max(by_peer)
    }

    /// Counts a failed check.
    pub fn failed(&self, user: &str, peer: Option<IpAddr>) {
        let mut memory = self.lock();
        memory.users.failed(&user.to_string());
        if let Some(peer) = peer {
            memory.peers.failed(&peer);
        }
    }

    /// Forgets `user`'s failures and trusts `peer` for it. The address's own failures stay:
    /// one valid account must not wipe the record of names sprayed from the same place.
    pub fn succeeded(&self, user: &str, peer: Option<IpAddr>) {
        let mut memory = self.lock();
        memory.users.forget(&user.to_string());
        if let Some(peer) = peer {
            let key = (user.to_string(), peer);
            make_room(&mut memory.trusted, &key, |at| {
                at.elapsed() < TRUSTED_MEMORY
            });
            memory.trusted.insert(key, Instant::now());
        }
    }
}

impl Default for PasswordChecks {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_slow_their_user_name_and_their_address() {
        let checks = PasswordChecks::new();
        let attacker: IpAddr = "192.0.2.7".parse().unwrap();
        let elsewhere: IpAddr = "198.51.100.1".parse().unwrap();
        for _ in 0..FREE_USER_FAILURES + 3 {
            checks.failed("admin", Some(attacker));
        }
        assert!(checks.delay_for("admin", Some(elsewhere)) >= Duration::from_secs(1));
        assert!(checks.delay_for("ben", Some(elsewhere)).is_zero());
        // Spraying many names from one address slows that address, for every name.
        for i in 0..FREE_PEER_FAILURES {
            checks.failed(&format!("user{i}"), Some(attacker));
        }
        assert!(checks.delay_for("ben", Some(attacker)) >= MAX_FAILURE_DELAY);
        assert!(checks.delay_for("ben", Some(elsewhere)).is_zero());
        assert!(checks.delay_for("ben", None).is_zero());
    }

    #[test]
    fn a_user_who_logged_in_from_an_address_is_not_held_back_by_it() {
        let checks = PasswordChecks::new();
        let shared: IpAddr = "203.0.113.9".parse().unwrap();
        checks.succeeded("ana", Some(shared));
        for i in 0..FREE_PEER_FAILURES + 5 {
            checks.failed(&format!("guess{i}"), Some(shared));
        }
        assert!(checks.delay_for("ana", Some(shared)).is_zero());
        assert!(!checks.delay_for("ben", Some(shared)).is_zero());
        // A success forgets the name's failures, not the address's.
        checks.succeeded("ben", Some(shared));
        assert!(checks.delay_for("ben", Some(shared)).is_zero());
        assert!(!checks.delay_for("carl", Some(shared)).is_zero());
    }
}
