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
        let statement = self.resolve_locations(statement)?;
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

    /// `statement` with a location it names by URL named by its name; a location that does
    /// not exist is refused here, where the locations are known.
    fn resolve_locations(
        &self,
        statement: crate::governance::GovernanceStatement,
    ) -> Result<crate::governance::GovernanceStatement, QueryError> {
        use crate::governance::{GovernanceStatement, NamedObject};
        let resolve = |object: NamedObject| -> Result<NamedObject, QueryError> {
            let NamedObject::Location(given) = object else {
                return Ok(object);
            };
            let url = crate::locations::normalize(&given).ok();
            self.locations
                .list()
                .into_iter()
                .find(|l| l.name == given || url.as_deref() == Some(l.url.as_str()))
                .map(|l| NamedObject::Location(l.name))
                .ok_or_else(|| {
                    QueryError::InvalidStatement(format!(
                        "location {given} does not exist (SHOW LOCATIONS lists them)"
                    ))
                })
        };
        Ok(match statement {
            GovernanceStatement::Grant(mut change) => {
                change.object = resolve(change.object)?;
                GovernanceStatement::Grant(change)
            }
            GovernanceStatement::Revoke(mut change) => {
                change.object = resolve(change.object)?;
                GovernanceStatement::Revoke(change)
            }
            GovernanceStatement::ShowGrants {
                on: Some(on),
                holder,
            } => GovernanceStatement::ShowGrants {
                on: Some(resolve(on)?),
                holder,
            },
            other => other,
        })
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
                // A dropped location's grants go with it.
                if let crate::locations_sql::LocationStatement::Drop { name, .. } = &statement {
                    let dropped = osprey_catalog::SecuredObject::Location(name.clone());
                    let result =
                        execute_location_statement(&self.locations, principal, statement.clone())
                            .await?;
                    self.governance
                        .record(
                            principal,
                            Some(crate::governance::OwnershipChange::Dropped(dropped)),
                        )
                        .await?;
                    return Ok(match result {
                        LocationStatementResult::Done => PreparedStatement::ddl_done(kind),
                        LocationStatementResult::Listing(plan) => PreparedStatement::Listing(plan),
                    });
                }
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
