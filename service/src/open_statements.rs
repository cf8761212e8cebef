//! One bound on the statements users hold open, shared by every front door.
//!
//! Each door keeps its own handles, shaped by its protocol: Flight SQL result tickets and
//! prepared statements, HTTP API queries with their kept results, Trino statements being paged.
//! Every such handle holds an [`OpenStatement`] claimed from the service's one
//! [`OpenStatements`]: the claim names its owner (the one owner check every door makes) and
//! counts against the owner's bound and the coordinator's, across all doors, until the door
//! forgets the handle (fetched, closed, expired or cancelled) and drops it. A user at the bound
//! is refused a new statement on any door; nobody else is affected.

use crate::auth::Principal;
use crate::expiring::HandleLimitReached;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// How many statements may be open at once: `[limits]` in the coordinator's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatementLimits {
    /// The most one user holds, across every front door (`open_statements_per_user`).
    pub open_per_user: usize,
    /// The most the coordinator holds, all users together (`open_statements`).
    pub open_total: usize,
}

impl Default for StatementLimits {
    /// 1,000 per user (a JDBC pool caching prepared statements holds hundreds), 100,000 in all.
    fn default() -> Self {
        Self {
            open_per_user: 1_000,
            open_total: 100_000,
        }
    }
}

/// The open statements of every door, counted per owner.
#[derive(Debug, Clone, Default)]
pub struct OpenStatements {
    counts: Arc<Mutex<Counts>>,
    limits: StatementLimits,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    by_owner: HashMap<Arc<str>, usize>,
}

impl OpenStatements {
    /// No statement open yet, with `limits`.
    pub fn new(limits: StatementLimits) -> Self {
        Self {
            counts: Arc::default(),
            limits,
        }
    }

    /// The bounds.
    pub fn limits(&self) -> StatementLimits {
        self.limits
    }

    /// Opens a statement for `principal`, refused when they (or the coordinator) hold as many
    /// as they may.
    pub fn open(&self, principal: &Principal) -> Result<OpenStatement, HandleLimitReached> {
        let owner: Arc<str> = Arc::from(principal.user_id.as_str());
        let mut counts = self.lock();
        let held = counts.by_owner.get(&owner).copied().unwrap_or(0);
        if held >= self.limits.open_per_user {
            return Err(HandleLimitReached::PerOwner {
                limit: self.limits.open_per_user,
            });
        }
        if counts.total >= self.limits.open_total {
            return Err(HandleLimitReached::Total {
                limit: self.limits.open_total,
            });
        }
        counts.total += 1;
        *counts.by_owner.entry(Arc::clone(&owner)).or_default() += 1;
        Ok(OpenStatement {
            statements: self.clone(),
            owner,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One open statement's place in its owner's bound; the place is given back when dropped.
#[derive(Debug)]
pub struct OpenStatement {
    statements: OpenStatements,
    owner: Arc<str>,
}

impl OpenStatement {
    /// Whether `principal` owns it: the check every door makes before it hands a statement's
    /// results or state to a caller. A user dropped and created again under the same name is
    /// someone else (ownership follows [`Principal::user_id`]).
    pub fn is_owned_by(&self, principal: &Principal) -> bool {
        *self.owner == *principal.user_id
    }

    /// The owner's identity ([`Principal::user_id`]).
    pub fn owner(&self) -> &str {
        &self.owner
    }
}

impl Drop for OpenStatement {
    fn drop(&mut self) {
        let mut counts = self.statements.lock();
        counts.total = counts.total.saturating_sub(1);
        if let Some(held) = counts.by_owner.get_mut(&self.owner) {
            *held -= 1;
            if *held == 0 {
                counts.by_owner.remove(&self.owner);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(user_id: &str) -> Principal {
        Principal {
            user: user_id.to_string(),
            user_id: user_id.to_string(),
            is_admin: false,
            session_id: None,
        }
    }

    #[test]
    fn the_bound_is_per_owner_and_places_come_back_when_dropped() {
        let statements = OpenStatements::new(StatementLimits {
            open_per_user: 2,
            open_total: 3,
        });
        let (ana, ben, cy) = (principal("ana"), principal("ben"), principal("cy"));
        let first = statements.open(&ana).unwrap();
        let _second = statements.open(&ana).unwrap();
        assert!(matches!(
            statements.open(&ana),
            Err(HandleLimitReached::PerOwner { limit: 2 })
        ));
        let _bens = statements.open(&ben).unwrap();
        assert!(matches!(
            statements.open(&cy),
            Err(HandleLimitReached::Total { limit: 3 })
        ));
        assert!(first.is_owned_by(&ana) && !first.is_owned_by(&ben));
        drop(first);
        let _third = statements.open(&ana).expect("ana's place came back");
        assert!(matches!(
            statements.open(&ana),
            Err(HandleLimitReached::PerOwner { limit: 2 })
        ));
    }
}
