//! The policy hook: the one place where every statement's logical plan is checked, and may be
//! rewritten, for the principal who runs it, after planning and before physical planning; and
//! where the catalogs a session sees are chosen, for its statements and its listings alike.
//!
//! The service calls it for every plan it runs or describes, whatever the front door:
//! queries, EXPLAIN, writes (the INSERT or CTAS plan, UNLOAD's query), views and DDL that
//! DataFusion plans. Osprey's own statements (users, workgroups, locations) check their
//! rights themselves, and the listings they answer are built by the service.
//!
//! The service's policy is [`crate::Governance`] (roles, privileges, owners); [`AllowAll`]
//! allows everything. A view's query is planned when the view is scanned (`lakehouse::tables`):
//! it is planned and checked there, for the principal it runs as, with the policy the
//! statement's planning state carries ([`PolicyContext`]).

use crate::auth::Principal;
use crate::error::QueryError;
use datafusion::catalog::CatalogProviderList;
use datafusion::common::TableReference;
use datafusion::logical_expr::LogicalPlan;
use osprey_catalog::SecuredObject;
use std::sync::Arc;

/// The catalog and schema unqualified names resolve in.
#[derive(Debug, Clone)]
pub struct NameDefaults {
    /// The current catalog.
    pub catalog: String,
    /// The current schema.
    pub schema: String,
}

impl NameDefaults {
    /// The table `name` stands for.
    pub fn table(&self, name: &TableReference) -> SecuredObject {
        let (catalog, schema) = (
            name.catalog().unwrap_or(&self.catalog),
            name.schema().unwrap_or(&self.schema),
        );
        SecuredObject::Table(catalog.into(), schema.into(), name.table().into())
    }

    /// The schema `name` (`s` or `c.s`, as DataFusion writes a schema's name) stands for. A
    /// name whose dots do not make two plain parts is one schema's (and is refused by name
    /// later if it cannot be one).
    pub fn schema(&self, name: &str) -> SecuredObject {
        let plain = |part: &str| !part.is_empty() && !part.contains(['/', '\\', '.']);
        match name.split_once('.') {
            Some((catalog, schema)) if plain(catalog) && plain(schema) => {
                SecuredObject::Schema(catalog.into(), schema.into())
            }
            _ => SecuredObject::Schema(self.catalog.clone(), name.into()),
        }
    }
}

/// Which of its roles a session acts with (`SET ROLE`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum RoleSelection {
    /// Every role the user holds (`SET ROLE ALL`, the default).
    #[default]
    All,
    /// One role, and the roles it holds (`SET ROLE r`).
    One(String),
    /// None but `public` (`SET ROLE NONE`).
    None,
}

/// Who runs a statement, as a policy sees it.
#[derive(Debug, Clone, Copy)]
pub struct PolicySubject<'a> {
    /// The principal; `None` for the coordinator itself, which has every right.
    pub principal: Option<&'a Principal>,
    /// The roles its session acts with (`SET ROLE`).
    pub role: &'a RoleSelection,
    /// The session's current catalog, where unqualified names resolve.
    pub catalog: &'a str,
    /// The session's current schema.
    pub schema: &'a str,
    /// The statement's query id, for the audit trail; `None` outside a tracked statement.
    pub statement_id: Option<&'a str>,
}

impl PolicySubject<'_> {
    /// Where unqualified names resolve.
    pub fn defaults(&self) -> NameDefaults {
        NameDefaults {
            catalog: self.catalog.to_string(),
            schema: self.schema.to_string(),
        }
    }
}

/// Decides what a principal may run and see (see the [crate documentation](crate)).
#[async_trait::async_trait]
pub trait StatementPolicy: std::fmt::Debug + Send + Sync {
    /// The plan to run for `subject`: `plan` unchanged, or rewritten (a row filter over a
    /// scan, a masked column). An error refuses the statement, typically
    /// [`QueryError::PermissionDenied`]. A policy that audits records its decision before it
    /// answers, and refuses a statement whose decision it cannot record.
    async fn check_plan(
        &self,
        subject: &PolicySubject<'_>,
        plan: LogicalPlan,
    ) -> Result<LogicalPlan, QueryError>;

    /// The catalogs `subject` sees, for planning and listings alike, given the server's.
    /// Returning `catalogs` itself (the default) costs a statement nothing.
    fn visible_catalogs(
        &self,
        subject: &PolicySubject<'_>,
        catalogs: Arc<dyn CatalogProviderList>,
    ) -> Arc<dyn CatalogProviderList> {
        let _ = subject;
        catalogs
    }

    /// The error `subject` gets for a statement that failed to plan with `err`: a policy that
    /// hides tables may answer a hidden name's "not found" with the refusal a visible one
    /// gets, so errors never tell what exists. `err` itself by default.
    async fn refusal(&self, subject: &PolicySubject<'_>, err: QueryError) -> QueryError {
        let _ = subject;
        err
    }

    /// The principal the query of `view` runs as when `reader` reads it: its owner for a
    /// `SECURITY DEFINER` view (the default), `reader` for `SECURITY INVOKER`. `reader` itself
    /// by default.
    async fn view_principal(
        &self,
        reader: Option<&Principal>,
        view: &SecuredObject,
        security: ViewSecurity,
    ) -> Result<Option<Principal>, QueryError> {
        let _ = (view, security);
        Ok(reader.cloned())
    }
}

/// Whose rights a view's query runs with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ViewSecurity {
    /// Its owner's (`SECURITY DEFINER`, the default, as in Trino): a view can show a slice of
    /// a table its readers may not read.
    #[default]
    Definer,
    /// The reader's (`SECURITY INVOKER`).
    Invoker,
}

/// A session's policy and subject, carried in its planning state, so that every place a
/// statement's missing table is reported asks the policy ([`StatementPolicy::refusal`]), and
/// a view's query, planned when the view is scanned, is planned and checked for the principal
/// it runs as ([`StatementPolicy::view_principal`]).
#[derive(Clone)]
pub(crate) struct PolicyContext {
    /// The policy.
    pub policy: Arc<dyn StatementPolicy>,
    /// Who runs the statement (or, inside a view, its query).
    pub principal: Option<Principal>,
    /// Its session's roles.
    pub role: RoleSelection,
    /// Every catalog of the server, before the policy chose what the principal sees.
    pub server_catalogs: Arc<dyn CatalogProviderList>,
    /// The statement's query id.
    pub statement_id: Option<String>,
}

impl PolicyContext {
    /// `err` as the policy answers it, names resolved in `catalog.schema`.
    pub async fn refuse(&self, catalog: &str, schema: &str, err: QueryError) -> QueryError {
        let subject = PolicySubject {
            principal: self.principal.as_ref(),
            role: &self.role,
            catalog,
            schema,
            statement_id: self.statement_id.as_deref(),
        };
        self.policy.refusal(&subject, err).await
    }
}

/// The policy until governance lands: every authenticated principal may run everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct AllowAll;

#[async_trait::async_trait]
impl StatementPolicy for AllowAll {
    async fn check_plan(
        &self,
        _subject: &PolicySubject<'_>,
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

    #[async_trait::async_trait]
    impl StatementPolicy for NoSecrets {
        async fn check_plan(
            &self,
            _subject: &PolicySubject<'_>,
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
        let role = RoleSelection::All;
        let coordinator = PolicySubject {
            principal: None,
            role: &role,
            catalog: "datafusion",
            schema: "public",
            statement_id: None,
        };
        let allowed = NoSecrets
            .check_plan(&coordinator, plan("SELECT a FROM open").await)
            .await;
        assert!(allowed.is_ok());
        let refused = NoSecrets
            .check_plan(
                &coordinator,
                plan("SELECT a FROM open JOIN secret USING (a)").await,
            )
            .await
            .unwrap_err();
        assert_eq!(refused.code(), "PERMISSION_DENIED");
        let everything = AllowAll
            .check_plan(&coordinator, plan("SELECT a FROM secret").await)
            .await;
        assert!(everything.is_ok());
    }
}
