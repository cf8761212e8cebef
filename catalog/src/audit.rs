//! The audit trail (see migration 0012): one record per access decision. The service writes a
//! record before the statement it decides runs, and reads the latest for `system.audit`.

use super::{CatalogError, CatalogStore, db};
use sqlx::Row;

/// How long records are kept: older ones are removed as new ones are written.
pub const AUDIT_RETENTION_MS: i64 = 90 * 24 * 3600 * 1000;

/// One access decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// Its id (unique).
    pub audit_id: String,
    /// When (milliseconds since the Unix epoch).
    pub at_ms: i64,
    /// The statement's query id; empty outside a tracked statement.
    pub statement_id: String,
    /// Who.
    pub user_name: String,
    /// The roles its session acted with.
    pub roles: Vec<String>,
    /// Whether it was allowed.
    pub allowed: bool,
    /// What was decided: `query` for a planned statement, or the statement's kind.
    pub action: String,
    /// Each privilege on each object (`SELECT (a, b) on table c.s.t`).
    pub objects: Vec<String>,
    /// The row filters applied (`eu_only on table c.s.t`).
    pub filters: Vec<String>,
    /// The masks applied (`ssn_tail on table c.s.t (ssn)`).
    pub masks: Vec<String>,
    /// The refusal, for a denial; empty otherwise.
    pub message: String,
}

const AUDIT_COLUMNS: &str = "audit_id, at_ms, statement_id, user_name, roles, decision, action, \
    objects, filters, masks, message";

fn json(values: &[String]) -> String {
    serde_json::to_string(values).unwrap_or_else(|_| "[]".to_string())
}

impl CatalogStore {
    /// Writes `record`; an error means it is not recorded (and its statement must not run).
    /// With `trim`, also removes the records older than [`AUDIT_RETENTION_MS`].
    pub async fn record_audit(&self, record: &AuditRecord, trim: bool) -> Result<(), CatalogError> {
        sqlx::query(&format!(
            "INSERT INTO osprey_audit ({AUDIT_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        ))
        .bind(&record.audit_id)
        .bind(record.at_ms)
        .bind(&record.statement_id)
        .bind(&record.user_name)
        .bind(record.roles.join(","))
        .bind(if record.allowed { "ALLOWED" } else { "DENIED" })
        .bind(&record.action)
        .bind(json(&record.objects))
        .bind(json(&record.filters))
        .bind(json(&record.masks))
        .bind(&record.message)
        .execute(&self.pool)
        .await
        .map_err(db("writing an audit record"))?;
        if trim {
            sqlx::query("DELETE FROM osprey_audit WHERE at_ms < $1")
                .bind(record.at_ms - AUDIT_RETENTION_MS)
                .execute(&self.pool)
                .await
                .map_err(db("removing old audit records"))?;
        }
        Ok(())
    }

    /// The latest `limit` records, newest first.
    pub async fn recent_audit(&self, limit: usize) -> Result<Vec<AuditRecord>, CatalogError> {
        let failed = || db("reading the audit trail");
        let list =
            |text: String| -> Vec<String> { serde_json::from_str(&text).unwrap_or_default() };
        sqlx::query(&format!(
            "SELECT {AUDIT_COLUMNS} FROM osprey_audit ORDER BY at_ms DESC, audit_id DESC LIMIT $1"
        ))
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(failed())?
        .iter()
        .map(|row| {
            let roles: String = row.try_get(4).map_err(failed())?;
            let decision: String = row.try_get(5).map_err(failed())?;
            Ok(AuditRecord {
                audit_id: row.try_get(0).map_err(failed())?,
                at_ms: row.try_get(1).map_err(failed())?,
                statement_id: row.try_get(2).map_err(failed())?,
                user_name: row.try_get(3).map_err(failed())?,
                roles: roles
                    .split(',')
                    .filter(|r| !r.is_empty())
                    .map(str::to_string)
                    .collect(),
                allowed: decision == "ALLOWED",
                action: row.try_get(6).map_err(failed())?,
                objects: list(row.try_get(7).map_err(failed())?),
                filters: list(row.try_get(8).map_err(failed())?),
                masks: list(row.try_get(9).map_err(failed())?),
                message: row.try_get(10).map_err(failed())?,
            })
        })
        .collect()
    }
}
