//! The policy hook: the one place where every statement's logical plan is checked, and may be
//! rewritten, for the principal who runs it, after planning and before physical planning; and
//! where the catalogs a session sees are chosen, for its statements and its listings alike.
//!
//! The service calls it for every plan it runs or describes, whatever the front door:
//! queries, EXPLAIN, writes (the INSERT or CTAS plan, UNLOAD's query), views and DDL that
//! DataFusion plans. Osprey's own statements (users, workgroups, locations) check their
//! rights themselves, and the listings they answer are built by the service.
//!
//! Today's policy, [`AllowAll`], allows everything. Governance (privileges, row filters and
//! column masks) is a policy of its own. Note for it: a view's query is planned when the view
//! is scanned (`lakehouse::tables`), so a rewrite that must reach inside views has to inline
//! them first.

use crate::auth::Principal;
use crate::error::QueryError;
use datafusion::catalog::CatalogProviderList;
use datafusion::logical_expr::LogicalPlan;
use std::sync::Arc;

/// Decides what a principal may run and see (see the [crate documentation](crate)).
pub trait StatementPolicy: std::fmt::Debug + Send + Sync {
    /// The plan to run for `principal` (`None`: the coordinator itself, which has every
    /// right): `plan` unchanged, or rewritten (a row filter over a scan, a masked column).
    /// An error refuses the statement, typically [`QueryError::PermissionDenied`].
    fn check_plan(
        &self,
        principal: Option<&Principal>,
        plan: LogicalPlan,
    ) -> Result<LogicalPlan, QueryError>;

    /// The catalogs `principal` sees, for planning and listings alike, given the server's.
    /// Returning `catalogs` itself (the default) costs a statement nothing.
    fn visible_catalogs(
        &self,
        principal: Option<&Principal>,
        catalogs: Arc<dyn CatalogProviderList>,
    ) -> Arc<dyn CatalogProviderList> {
        let _ = principal;
        catalogs
    }
}

/// The policy until governance lands: every authenticated principal may run everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct AllowAll;

impl StatementPolicy for AllowAll {
    fn check_plan(
        &self,
        _principal: Option<&Principal>,
        plan: LogicalPlan,
    ) -> Result<LogicalPlan, QueryError> {
        Ok(plan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::SessionContext;

    /// A policy that refuses plans reading a table named `secret`, as governance will.
    #[derive(Debug)]
    struct NoSecrets;

    impl StatementPolicy for NoSecrets {
        fn check_plan(
            &self,
            _principal: Option<&Principal>,
            plan: LogicalPlan,
        ) -> Result<LogicalPlan, QueryError> {
            let text = plan.display_indent().to_string();
            if text.contains("TableScan: secret") {
                return Err(QueryError::PermissionDenied("secret is not granted".into()));
            }
            Ok(plan)
        }
    }

    #[tokio::test]
    async fn a_policy_sees_the_logical_plan_and_may_refuse_it() {
        let ctx = SessionContext::new();
        ctx.sql("CREATE TABLE secret (a INT)").await.unwrap();
        ctx.sql("CREATE TABLE open (a INT)").await.unwrap();
        let plan = |sql: &'static str| {
            let ctx = ctx.clone();
            async move { ctx.state().create_logical_plan(sql).await.unwrap() }
        };
        let allowed = NoSecrets.check_plan(None, plan("SELECT a FROM open").await);
        assert!(allowed.is_ok());
        let refused = NoSecrets
            .check_plan(None, plan("SELECT a FROM open JOIN secret USING (a)").await)
            .unwrap_err();
        assert_eq!(refused.code(), "PERMISSION_DENIED");
        let everything = AllowAll.check_plan(None, plan("SELECT a FROM secret").await);
        assert!(everything.is_ok());
    }
}
