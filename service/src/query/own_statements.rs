//! Osprey's own statements (users, workgroups, locations, attached catalogs), each run by the
//! module that owns it; each answers a DDL count or a listing.

use super::*;
use crate::auth::Principal;

impl QueryEngine {
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
                Ok(
                    match execute_user_statement(&self.auth, &self.workgroups, principal, statement)
                        .await?
                    {
                        UserStatementResult::Done => PreparedStatement::ddl_done(kind),
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
            | ParsedStatement::Sql(_)
            | ParsedStatement::TableProcedure(_) => Err(QueryError::Execution(
                "internal: SQL routed as one of Osprey's own statements".to_string(),
            )),
        }
    }
}
