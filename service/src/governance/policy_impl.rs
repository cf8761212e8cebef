//! Governance as the engine's [`StatementPolicy`]: what a principal's statements see, the
//! check (and rewrite) of each plan with its audit record, whom a view runs as, and the one
//! refusal of a hidden name.

use super::{Governance, audit, describe, enforce, failed, visible};
use crate::auth::Principal;
use crate::error::QueryError;
use crate::policy::{PolicySubject, StatementPolicy, ViewSecurity};
use datafusion::catalog::CatalogProviderList;
use datafusion::logical_expr::LogicalPlan;
use osprey_catalog::SecuredObject;
use std::sync::Arc;

#[async_trait::async_trait]
impl StatementPolicy for Governance {
    async fn check_plan(
        &self,
        subject: &PolicySubject<'_>,
        plan: LogicalPlan,
    ) -> Result<LogicalPlan, QueryError> {
        // The coordinator's own statements are not decisions.
        let Some(principal) = subject.principal else {
            return Ok(plan);
        };
        let model = self.model();
        let who = model.subject(principal, subject.role);
        let roles: Vec<String> = who.roles.iter().cloned().collect();
        let defaults = subject.defaults();
        if principal.is_admin {
            let facts = enforce::admin_facts(&plan, &defaults);
            // A statement that reads no table (`SELECT 1`) decides nothing.
            if !facts.objects.is_empty() {
                self.inner
                    .audit
                    .record(subject, roles, "query", facts, Ok(()))
                    .await?;
            }
            return Ok(plan);
        }
        let (checked, facts) = enforce::check(&model, &self.inner.planner, &who, &defaults, plan);
        if facts.objects.is_empty() && checked.is_ok() {
            return checked;
        }
        match &checked {
            Ok(_) => {
                self.inner
                    .audit
                    .record(subject, roles, "query", facts, Ok(()))
                    .await?
            }
            // The refusal stands whether or not it is recorded (a failure is logged).
            Err(err) => {
                if let Err(unrecorded) = self
                    .inner
                    .audit
                    .record(subject, roles, "query", facts, Err(err))
                    .await
                {
                    tracing::warn!(target: "audit", "a denial was not recorded: {unrecorded}");
                }
            }
        }
        checked
    }

    fn visible_catalogs(
        &self,
        subject: &PolicySubject<'_>,
        catalogs: Arc<dyn CatalogProviderList>,
    ) -> Arc<dyn CatalogProviderList> {
        let Some(principal) = subject.principal.filter(|p| !p.is_admin) else {
            return catalogs;
        };
        let model = self.model();
        let who = model.subject(principal, subject.role);
        visible::visible_catalogs(catalogs, model, who)
    }

    /// A definer view runs as its owner, as the owner is now (an admin, or not); a view with
    /// no owner (made before governance, or its owner dropped) runs as its reader, so it never
    /// lends rights no one holds.
    async fn view_principal(
        &self,
        reader: Option<&Principal>,
        view: &SecuredObject,
        security: ViewSecurity,
    ) -> Result<Option<Principal>, QueryError> {
        if security == ViewSecurity::Invoker {
            return Ok(reader.cloned());
        }
        let Some(owner) = self.model().owner(view).map(str::to_string) else {
            return Ok(reader.cloned());
        };
        if reader.is_some_and(|r| r.user == owner) {
            return Ok(reader.cloned());
        }
        match self.inner.store.user(&owner).await.map_err(failed)? {
            Some(record) => Ok(Some(Principal {
                user: record.name,
                user_id: record.id,
                is_admin: record.is_admin,
                session_id: None,
            })),
            None => Ok(reader.cloned()),
        }
    }

    /// A table `subject` may not see is "not found" to the planner, and `PERMISSION_DENIED`
    /// to the user, whether it exists or not; the denial is recorded.
    async fn refusal(&self, subject: &PolicySubject<'_>, err: QueryError) -> QueryError {
        let Some(principal) = subject.principal.filter(|p| !p.is_admin) else {
            return err;
        };
        let Some(missing) = err.missing_table() else {
            return err;
        };
        let name = datafusion::common::TableReference::from(missing);
        let object = subject.defaults().table(&name);
        let model = self.model();
        let who = model.subject(principal, subject.role);
        if model.sees(&who, &object) {
            return err;
        }
        let denied = QueryError::PermissionDenied(format!(
            "permission denied: no privilege on {}",
            describe(&object)
        ));
        let facts = audit::AccessFacts {
            objects: vec![format!("any privilege on {}", describe(&object))],
            ..Default::default()
        };
        let roles = who.roles.iter().cloned().collect();
        if let Err(unrecorded) = self
            .inner
            .audit
            .record(subject, roles, "query", facts, Err(&denied))
            .await
        {
            tracing::warn!(target: "audit", "a denial was not recorded: {unrecorded}");
        }
        denied
    }
}
