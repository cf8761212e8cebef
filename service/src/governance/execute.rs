//! Running governance statements, each recorded in the audit trail with what it decided.

use super::model::{AccessModel, PUBLIC_ROLE, Subject};
use super::statements::{self, DataFilterStatement, GovernanceStatement};
use super::{Governance, GovernanceResult, audit, failed, grants, show};
use crate::auth::Principal;
use crate::error::QueryError;
use crate::policy::{NameDefaults, PolicySubject, RoleSelection};
use datafusion::catalog::CatalogProviderList;
use osprey_catalog::{CatalogError, Grantee, now_ms};

impl Governance {
    /// Runs a governance statement for `subject`'s principal, and records in the audit trail
    /// what it changed, or why it was refused (listings, which show only what the principal
    /// may see, are not recorded).
    pub async fn execute(
        &self,
        subject: &PolicySubject<'_>,
        defaults: &NameDefaults,
        catalogs: &dyn CatalogProviderList,
        statement: GovernanceStatement,
    ) -> Result<GovernanceResult, QueryError> {
        let is_listing = statement.listing_schema().is_some();
        let action = statement.kind();
        let facts = audit::AccessFacts {
            objects: vec![statements::summary(&statement)],
            ..Default::default()
        };
        let model = self.model();
        let who = match subject.principal {
            Some(principal) => model.subject(principal, subject.role),
            None => Subject {
                user: "osprey".into(),
                roles: Default::default(),
                admin: true,
                role: None,
            },
        };
        let outcome = self.run(&model, &who, defaults, catalogs, statement).await;
        if is_listing {
            return outcome;
        }
        let recorded = self
            .inner
            .audit
            .record(
                subject,
                roles_of(&who),
                action,
                facts,
                outcome.as_ref().map(|_| ()),
            )
            .await;
        match (outcome, recorded) {
            (Ok(_), Err(unrecorded)) => Err(unrecorded),
            (outcome, _) => outcome,
        }
    }

    /// Runs `statement` for `who` (see [`Self::execute`]).
    async fn run(
        &self,
        model: &AccessModel,
        who: &Subject,
        defaults: &NameDefaults,
        catalogs: &dyn CatalogProviderList,
        statement: GovernanceStatement,
    ) -> Result<GovernanceResult, QueryError> {
        let store = &self.inner.store;
        let require_admin = |statement: &str| require_admin(who, statement);
        let tag = match statement {
            GovernanceStatement::ShowGrants { on, holder } => {
                let on = on.map(|o| grants::resolve(&o, defaults));
                return show::grants(model, who, on.as_ref(), holder.as_deref())
                    .map(GovernanceResult::Listing);
            }
            GovernanceStatement::ShowRoles => {
                return show::roles(model, who).map(GovernanceResult::Listing);
            }
            GovernanceStatement::ShowCurrentRoles => {
                return show::current_roles(who).map(GovernanceResult::Listing);
            }
            GovernanceStatement::SetRole(_) => {
                return Err(QueryError::Execution(
                    "internal: SET ROLE is the session's".into(),
                ));
            }
            GovernanceStatement::CreateRole(name) => {
                require_admin("CREATE ROLE")?;
                refuse_public(&name)?;
                store
                    .create_role(&name, &who.user, now_ms())
                    .await
                    .map_err(failed)?;
                "CREATE ROLE"
            }
            GovernanceStatement::DropRole { name, if_exists } => {
                require_admin("DROP ROLE")?;
                refuse_public(&name)?;
                match store.drop_role(&name).await {
                    Err(CatalogError::NotFound { .. }) if if_exists => {}
                    other => other.map_err(failed)?,
                }
                "DROP ROLE"
            }
            GovernanceStatement::GrantRoles(roles, grantees) => {
                require_admin("GRANT role")?;
                for role in &roles {
                    refuse_public(role)?;
                    self.check_role(model, role)?;
                    for grantee in &grantees {
                        self.check_grantee(model, grantee).await?;
                        if let Grantee::Role(holder) = grantee
                            && (holder == role || model.role_holds(role, holder))
                        {
                            return Err(QueryError::InvalidStatement(format!(
                                "granting role {role} to role {holder} would make a cycle: \
                                 {role} already holds {holder}"
                            )));
                        }
                        store
                            .grant_role(role, grantee, &who.user, now_ms())
                            .await
                            .map_err(failed)?;
                    }
                }
                "GRANT ROLE"
            }
            GovernanceStatement::RevokeRoles(roles, grantees) => {
                require_admin("REVOKE role")?;
                for role in &roles {
                    for grantee in &grantees {
                        if !store.revoke_role(role, grantee).await.map_err(failed)? {
                            return Err(QueryError::InvalidStatement(format!(
                                "{} does not hold role {role}",
                                show::grantee_text(grantee)
                            )));
                        }
                    }
                }
                "REVOKE ROLE"
            }
            GovernanceStatement::Grant(change) => {
                self.grant(model, who, defaults, catalogs, change).await?;
                "GRANT"
            }
            GovernanceStatement::Revoke(change) => {
                self.revoke(model, who, defaults, change).await?;
                "REVOKE"
            }
            GovernanceStatement::DataFilter(statement) => {
                let tag = statement.tag();
                match statement {
                    DataFilterStatement::Show { kind, on } => {
                        let on = on
                            .map(|t| grants::resolve(&statements::NamedObject::Table(t), defaults));
                        return show::data_filters(model, who, kind, on.as_ref())
                            .map(GovernanceResult::Listing);
                    }
                    DataFilterStatement::Create(definition) => {
                        self.create_data_filter(model, who, defaults, catalogs, definition)
                            .await?
                    }
                    DataFilterStatement::Drop {
                        kind,
                        name,
                        table,
                        if_exists,
                    } => {
                        self.drop_data_filter(model, who, defaults, (kind, name, table, if_exists))
                            .await?
                    }
                }
                tag
            }
            GovernanceStatement::Tag(statement) => {
                let tag = statement.tag();
                let listing = self
                    .tag_statement(model, who, defaults, catalogs, statement)
                    .await?;
                if let Some(listing) = listing {
                    return Ok(GovernanceResult::Listing(listing));
                }
                tag
            }
        };
        self.reload().await?;
        Ok(GovernanceResult::Done(tag))
    }

    /// The role a session may select with `SET ROLE`, checked now.
    pub fn check_role_selection(
        &self,
        principal: Option<&Principal>,
        selection: &RoleSelection,
    ) -> Result<(), QueryError> {
        let (RoleSelection::One(role), Some(principal)) = (selection, principal) else {
            return Ok(());
        };
        let model = self.model();
        if !model.role_exists(role) {
            return Err(QueryError::InvalidStatement(format!(
                "role {role} does not exist"
            )));
        }
        match model.roles_of_user(&principal.user).contains(role) {
            true => Ok(()),
            false => Err(QueryError::PermissionDenied(format!(
                "permission denied: {} does not hold role {role}",
                principal.user
            ))),
        }
    }

    pub(super) fn check_role(&self, model: &AccessModel, role: &str) -> Result<(), QueryError> {
        match model.role_exists(role) {
            true => Ok(()),
            false => Err(QueryError::InvalidStatement(format!(
                "role {role} does not exist (CREATE ROLE {role} makes it)"
            ))),
        }
    }

    pub(super) async fn check_grantee(
        &self,
        model: &AccessModel,
        grantee: &Grantee,
    ) -> Result<(), QueryError> {
        match grantee {
            Grantee::Role(role) => self.check_role(model, role),
            Grantee::User(user) => match self.inner.store.user(user).await.map_err(failed)? {
                Some(_) => Ok(()),
                None => Err(QueryError::InvalidStatement(format!(
                    "user {user} does not exist"
                ))),
            },
        }
    }
}

/// Refuses `statement` to `who` unless an admin.
pub(super) fn require_admin(who: &Subject, statement: &str) -> Result<(), QueryError> {
    match who.admin {
        true => Ok(()),
        false => Err(QueryError::PermissionDenied(format!(
            "permission denied: {statement} needs an admin"
        ))),
    }
}

fn roles_of(who: &Subject) -> Vec<String> {
    who.roles.iter().cloned().collect()
}

fn refuse_public(role: &str) -> Result<(), QueryError> {
    match role == PUBLIC_ROLE {
        true => Err(QueryError::InvalidStatement(
            "public is the role every user holds: it is not created, dropped or granted".into(),
        )),
        false => Ok(()),
    }
}
