//! The audit trail: every access decision governance takes for a user, allowed or denied,
//! written to the catalog database (`system.audit`, admins only) and to the log under the
//! target `audit`, before the statement it decides runs. A decision that cannot be recorded
//! stops its statement.

use crate::error::QueryError;
use crate::policy::PolicySubject;
use osprey_catalog::{AuditRecord, CatalogStore, now_ms};
use std::sync::atomic::{AtomicU64, Ordering};

/// Records are trimmed to the retention once every this many writes.
const TRIM_EVERY: u64 = 1000;

/// What one decision was about (`enforce` and `Governance::authorize` gather it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessFacts {
    /// Each privilege on each object the statement needed.
    pub objects: Vec<String>,
    /// The row filters applied.
    pub filters: Vec<String>,
    /// The masks applied.
    pub masks: Vec<String>,
}

/// Writes the decisions.
#[derive(Debug)]
pub(super) struct AuditTrail {
    store: CatalogStore,
    written: AtomicU64,
}

impl AuditTrail {
    pub fn new(store: CatalogStore) -> Self {
        Self {
            store,
            written: AtomicU64::new(0),
        }
    }

    /// Records that `subject` (acting with `roles`) was allowed (`Ok`) or refused (`Err`)
    /// `action`. An `Err` of this call means it is not recorded.
    pub async fn record(
        &self,
        subject: &PolicySubject<'_>,
        roles: Vec<String>,
        action: &str,
        facts: AccessFacts,
        outcome: Result<(), &QueryError>,
    ) -> Result<(), QueryError> {
        let Some(principal) = subject.principal else {
            return Ok(());
        };
        let count = self.written.fetch_add(1, Ordering::Relaxed);
        let at_ms = now_ms();
        let record = AuditRecord {
            audit_id: format!("{at_ms:013}-{}", uuid::Uuid::new_v4().simple()),
            at_ms,
            statement_id: subject.statement_id.unwrap_or_default().to_string(),
            user_name: principal.user.clone(),
            roles,
            allowed: outcome.is_ok(),
            action: action.to_string(),
            objects: facts.objects,
            filters: facts.filters,
            masks: facts.masks,
            message: outcome.err().map(ToString::to_string).unwrap_or_default(),
        };
        tracing::info!(
            target: "audit",
            statement_id = %record.statement_id,
            user = %record.user_name,
            roles = %record.roles.join(","),
            decision = if record.allowed { "ALLOWED" } else { "DENIED" },
            action = %record.action,
            objects = ?record.objects,
            filters = ?record.filters,
            masks = ?record.masks,
            message = %record.message,
            "access decision"
        );
        let trim = count % TRIM_EVERY == TRIM_EVERY - 1;
        self.store.record_audit(&record, trim).await.map_err(|err| {
            QueryError::CatalogUnavailable(format!(
                "the audit record of this statement could not be written, so it did not \
                     run: {err}"
            ))
        })
    }
}
