//! Osprey's own statements (users, workgroups, locations, attached catalogs), each run by the
//! module that owns it; each answers a DDL count or a listing.

use super::*;
use crate::auth::Principal;

impl QueryEngine {
    /// Runs a governance statement (roles, privileges, `SET ROLE`) for `session`.
    pub(super) async fn run_governance_statement(
        &self,
        state: &SessionState,
        session: &mut SessionSettings,
        statement: crate::governance::GovernanceStatement,
    ) -> Result<PreparedStatement, QueryError> {
        use crate::governance::{GovernanceResult, GovernanceStatement, NameDefaults};
        if let GovernanceStatement::SetRole(selection) = statement {
            self.governance
                .check_role_selection(session.principal.as_ref(), &selection)?;
            session.role = selection;
            return Ok(PreparedStatement::ddl_done("SET ROLE"));
        }
        let (catalog, schema) = self.current_schema(session);
        let subject = super::policy_subject(session, &catalog, &schema);
        let defaults = NameDefaults {
            catalog: catalog.clone(),
            schema: schema.clone(),
        };
        let kind = statement.kind();
        match self
            .governance
            .execute(
                &subject,
                &defaults,
                state.catalog_list().as_ref(),
                statement,
            )
            .await?
        {
            GovernanceResult::Done(_) => Ok(PreparedStatement::ddl_done(kind)),
            GovernanceResult::Listing(plan) => Ok(PreparedStatement::Listing(plan)),
        }
    }

    /// Runs one of Osprey's own statements for `principal`.
    pub(super) async fn run_own_statement(
        &self,
        state: &SessionState,
        principal: Option<&Principal>,
        statement: ParsedStatement,
    ) -> Result<PreparedStatement, QueryError> {
        match statement {
            ParsedStatement::User(statement) => {
                let kind = user_statement_kind(&statement);
                // A dropped user's privileges and ownerships go with it.
                let dropped = match &statement {
                    UserStatement::Drop { names, .. } => names.clone(),
                    _ => Vec::new(),
                };
                Ok(
                    match execute_user_statement(&self.auth, &self.workgroups, principal, statement)
                        .await?
                    {
                        UserStatementResult::Done => {
                            for user in &dropped {
                                self.governance.forget_user(user).await?;
                            }
                            PreparedStatement::ddl_done(kind)
                        }
                        UserStatementResult::Listing(plan) => PreparedStatement::Listing(plan),
                    },
                )
            }
            ParsedStatement::Workgroup(statement) => {
                let is_admin = principal.is_none_or(|p| p.is_admin);
                let kind = workgroup_statement_kind(&statement);
                Ok(
                    match execute_workgroup_statement(&self.workgroups, is_admin, statement).await?
                    {
                        WorkgroupStatementResult::Done => PreparedStatement::ddl_done(kind),
                        WorkgroupStatementResult::Listing(plan) => PreparedStatement::Listing(plan),
                    },
                )
            }
            ParsedStatement::Location(statement) => {
                let kind = location_statement_kind(&statement);
                Ok(
                    match execute_location_statement(&self.locations, principal, statement).await? {
                        LocationStatementResult::Done => PreparedStatement::ddl_done(kind),
                        LocationStatementResult::Listing(plan) => PreparedStatement::Listing(plan),
                    },
                )
            }
            ParsedStatement::Catalog(statement) => {
                let kind = statement.kind();
                Ok(
                    match execute_catalog_statement(
                        &self.catalogs,
                        state.catalog_list().as_ref(),
                        principal,
                        statement,
                    )
                    .await?
                    {
                        CatalogStatementResult::Done => PreparedStatement::ddl_done(kind),
                        CatalogStatementResult::Listing(plan) => PreparedStatement::Listing(plan),
                    },
                )
            }
            ParsedStatement::Immediate(_)
            | ParsedStatement::Governance(_)
            | ParsedStatement::Sql(_)
            | ParsedStatement::TableProcedure(_) => Err(QueryError::Execution(
                "internal: SQL routed as one of Osprey's own statements".to_string(),
            )),
        }
    }
}
