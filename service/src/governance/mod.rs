//! Governance: who may see and change what (issue 24's first part: roles, privileges and
//! owners). [`Governance`] is the service's [`StatementPolicy`]:
//!
//! - the catalogs a principal plans against and lists hold only what it may see
//!   (`visible`);
//! - every plan it runs is checked for the privileges it needs (`enforce`);
//! - the statements DataFusion does not plan (schemas, `ALTER TABLE`, maintenance) are
//!   checked by [`Governance::authorize`];
//! - its SQL (`statements`) changes the roles, privileges and owners in the catalog
//!   database, and the decisions (`model`) are taken from them in memory, reloaded after each
//!   change, so a grant takes effect at the next statement of every open session.
//!
//! Admins are superusers, and the coordinator itself (no principal) has every right.

mod audit;
mod data_filters;
mod enforce;
mod filter_admin;
mod filter_statements;
mod grants;
mod model;
mod policy_impl;
mod policy_table;
mod show;
mod statements;
mod visible;

pub use crate::policy::NameDefaults;
pub use crate::policy::RoleSelection;
pub use enforce::describe;
pub use model::{AccessModel, PUBLIC_ROLE, Privilege, Subject};

pub use statements::{
    DataFilterStatement, GovernanceStatement, NamedObject, parse_governance_statement,
};

use crate::auth::Principal;
use crate::error::QueryError;
use crate::policy::PolicySubject;
use datafusion::catalog::CatalogProviderList;
use datafusion::logical_expr::{DdlStatement, LogicalPlan};
use osprey_catalog::{CatalogError, CatalogStore, Grantee, PrivilegeGrant, SecuredObject, now_ms};
use std::sync::{Arc, RwLock};

/// Roles, privileges and owners, and the policy they make (see the module documentation).
#[derive(Clone)]
pub struct Governance {
    inner: Arc<Inner>,
}

struct Inner {
    store: CatalogStore,
    model: RwLock<Arc<AccessModel>>,
    /// Osprey's own catalog.
    own_catalog: String,
    /// Plans row filters' and masks' expressions.
    planner: data_filters::ExpressionPlanner,
    /// Where decisions are recorded.
    audit: audit::AuditTrail,
}

impl std::fmt::Debug for Governance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Governance").finish_non_exhaustive()
    }
}

/// What a statement that changed the catalog means for owners.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnershipChange {
    /// The principal created it, and owns it.
    Created(SecuredObject),
    /// It was dropped: its owner and privileges go with it.
    Dropped(SecuredObject),
    /// A table renamed: its owner and privileges move with it.
    Renamed(SecuredObject, SecuredObject),
}

/// What a governance statement produced.
pub enum GovernanceResult {
    /// It changed roles, privileges or the session's role (the statement's tag).
    Done(&'static str),
    /// A `SHOW ...` listing.
    Listing(LogicalPlan),
}

fn failed(err: CatalogError) -> QueryError {
    match err {
        CatalogError::AlreadyExists { kind, name } => {
            QueryError::InvalidStatement(format!("{kind} {name} already exists"))
        }
        CatalogError::NotFound { kind, name } => {
            QueryError::NotFound(format!("{kind} {name} does not exist"))
        }
        other => QueryError::CatalogUnavailable(other.to_string()),
    }
}

impl Governance {
    /// The governance of the catalog in `store`, Osprey's own catalog being `own_catalog`.
    pub async fn load(store: CatalogStore, own_catalog: &str) -> Result<Self, QueryError> {
        let records = store.access_records().await.map_err(failed)?;
        Ok(Self {
            inner: Arc::new(Inner {
                audit: audit::AuditTrail::new(store.clone()),
                store,
                model: RwLock::new(Arc::new(AccessModel::new(records, own_catalog))),
                own_catalog: own_catalog.to_string(),
                planner: data_filters::ExpressionPlanner::new(),
            }),
        })
    }

    /// The decisions as of now.
    pub fn model(&self) -> Arc<AccessModel> {
        Arc::clone(&self.inner.model.read().unwrap_or_else(|e| e.into_inner()))
    }

    async fn reload(&self) -> Result<(), QueryError> {
        let records = self.inner.store.access_records().await.map_err(failed)?;
        *self.inner.model.write().unwrap_or_else(|e| e.into_inner()) =
            Arc::new(AccessModel::new(records, &self.inner.own_catalog));
        Ok(())
    }

    /// Grants `SELECT` on the schema `catalog.schema` to every user (`public`), as
    /// `osprey local` does for its TPC-H demo schema. Idempotent.
    pub async fn grant_to_everyone(&self, catalog: &str, schema: &str) -> Result<(), QueryError> {
        let grant = PrivilegeGrant {
            grantee: Grantee::Role(PUBLIC_ROLE.to_string()),
            object: SecuredObject::Schema(catalog.to_string(), schema.to_string()),
            privilege: Privilege::Select.name().to_string(),
            columns: Vec::new(),
            grant_option: false,
            granted_by: "osprey".to_string(),
            granted_at_ms: now_ms(),
        };
        self.inner
            .store
            .put_privilege(&grant)
            .await
            .map_err(failed)?;
        self.reload().await
    }

    /// Records what a statement `principal` ran changed for owners.
    pub async fn record(
        &self,
        principal: Option<&Principal>,
        change: Option<OwnershipChange>,
    ) -> Result<(), QueryError> {
        let store = &self.inner.store;
        match change {
            None => return Ok(()),
            Some(OwnershipChange::Created(object)) => match principal {
                Some(principal) => store.set_owner(&object, &principal.user).await,
                None => return Ok(()),
            },
            Some(OwnershipChange::Dropped(object)) => store.forget_object(&object).await,
            Some(OwnershipChange::Renamed(from, to)) => store.rename_object(&from, &to).await,
        }
        .map_err(failed)?;
        self.reload().await
    }

    /// Whether `subject` holds `USAGE` on the location `name` (an admin always does).
    pub fn holds_usage(&self, subject: &PolicySubject<'_>, name: &str) -> bool {
        let Some(principal) = subject.principal else {
            return true;
        };
        let model = self.model();
        let who = model.subject(principal, subject.role);
        model.allows(
            &who,
            Privilege::Usage,
            &SecuredObject::Location(name.to_string()),
            None,
        )
    }

    /// The latest `limit` access decisions, newest first (`system.audit`).
    pub async fn recent_audit(
        &self,
        limit: usize,
    ) -> Result<Vec<osprey_catalog::AuditRecord>, QueryError> {
        self.inner.store.recent_audit(limit).await.map_err(failed)
    }

    /// Forgets a dropped user's roles, privileges and ownerships.
    pub async fn forget_user(&self, user: &str) -> Result<(), QueryError> {
        self.inner.store.forget_user(user).await.map_err(failed)?;
        self.reload().await
    }

    /// Checks a statement DataFusion does not plan: `needs` ownership (`DROP SCHEMA`,
    /// `ALTER TABLE`, maintenance) or a privilege on `object`, and records the decision.
    pub async fn authorize(
        &self,
        subject: &PolicySubject<'_>,
        action: &str,
        needed: Option<Privilege>,
        object: &SecuredObject,
    ) -> Result<(), QueryError> {
        let Some(principal) = subject.principal else {
            return Ok(());
        };
        let model = self.model();
        let who = model.subject(principal, subject.role);
        let allowed = principal.is_admin
            || match needed {
                Some(privilege) => model.allows(&who, privilege, object, None),
                None => model.owns(&who, object),
            };
        let (outcome, fact) = match needed {
            Some(privilege) => (
                QueryError::PermissionDenied(format!(
                    "permission denied: {} on {}",
                    privilege.name(),
                    describe(object)
                )),
                format!("{} on {}", privilege.name(), describe(object)),
            ),
            None => (
                QueryError::PermissionDenied(format!(
                    "permission denied: {action} {} needs its owner or an admin",
                    describe(object)
                )),
                format!("{action}: owner of {}", describe(object)),
            ),
        };
        let facts = audit::AccessFacts {
            objects: vec![fact],
            ..Default::default()
        };
        let roles = who.roles.iter().cloned().collect();
        match allowed {
            true => {
                self.inner
                    .audit
                    .record(subject, roles, action, facts, Ok(()))
                    .await
            }
            false => {
                let _ = self
                    .inner
                    .audit
                    .record(subject, roles, action, facts, Err(&outcome))
                    .await;
                Err(outcome)
            }
        }
    }

    /// Runs a governance statement for `session`'s principal.
    pub async fn execute(
        &self,
        subject: &PolicySubject<'_>,
        defaults: &NameDefaults,
        catalogs: &dyn CatalogProviderList,
        statement: GovernanceStatement,
    ) -> Result<GovernanceResult, QueryError> {
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
        let store = &self.inner.store;
        let require_admin = |statement: &str| match who.admin {
            true => Ok(()),
            false => Err(QueryError::PermissionDenied(format!(
                "permission denied: {statement} needs an admin"
            ))),
        };
        let tag = match statement {
            GovernanceStatement::ShowGrants { on, holder } => {
                let on = on.map(|o| grants::resolve(&o, defaults));
                return show::grants(&model, &who, on.as_ref(), holder.as_deref())
                    .map(GovernanceResult::Listing);
            }
            GovernanceStatement::ShowRoles => {
                return show::roles(&model, &who).map(GovernanceResult::Listing);
            }
            GovernanceStatement::ShowCurrentRoles => {
                return show::current_roles(&who).map(GovernanceResult::Listing);
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
                    self.check_role(&model, role)?;
                    for grantee in &grantees {
                        self.check_grantee(&model, grantee).await?;
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
                self.grant(&model, &who, defaults, catalogs, change).await?;
                "GRANT"
            }
            GovernanceStatement::Revoke(change) => {
                self.revoke(&model, &who, defaults, change).await?;
                "REVOKE"
            }
            GovernanceStatement::DataFilter(statement) => {
                let tag = statement.tag();
                match statement {
                    DataFilterStatement::Show { kind, on } => {
                        let on = on
                            .map(|t| grants::resolve(&statements::NamedObject::Table(t), defaults));
                        return show::data_filters(&model, &who, kind, on.as_ref())
                            .map(GovernanceResult::Listing);
                    }
                    DataFilterStatement::Create(definition) => {
                        self.create_data_filter(&model, &who, defaults, catalogs, definition)
                            .await?
                    }
                    DataFilterStatement::Drop {
                        kind,
                        name,
                        table,
                        if_exists,
                    } => {
                        self.drop_data_filter(
                            &model,
                            &who,
                            defaults,
                            (kind, name, table, if_exists),
                        )
                        .await?
                    }
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

    fn check_role(&self, model: &AccessModel, role: &str) -> Result<(), QueryError> {
        match model.role_exists(role) {
            true => Ok(()),
            false => Err(QueryError::InvalidStatement(format!(
                "role {role} does not exist (CREATE ROLE {role} makes it)"
            ))),
        }
    }

    async fn check_grantee(
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

fn refuse_public(role: &str) -> Result<(), QueryError> {
    match role == PUBLIC_ROLE {
        true => Err(QueryError::InvalidStatement(
            "public is the role every user holds: it is not created, dropped or granted".into(),
        )),
        false => Ok(()),
    }
}

/// What `plan` (checked, about to run) changes for owners: a table or view it creates, or one
/// it drops.
pub fn ownership_change(plan: &LogicalPlan, defaults: &NameDefaults) -> Option<OwnershipChange> {
    match plan {
        LogicalPlan::Ddl(DdlStatement::CreateExternalTable(cmd)) => {
            Some(OwnershipChange::Created(defaults.table(&cmd.name)))
        }
        LogicalPlan::Ddl(DdlStatement::CreateMemoryTable(cmd)) => {
            Some(OwnershipChange::Created(defaults.table(&cmd.name)))
        }
        LogicalPlan::Ddl(DdlStatement::CreateView(cmd)) => {
            Some(OwnershipChange::Created(defaults.table(&cmd.name)))
        }
        LogicalPlan::Ddl(DdlStatement::DropTable(cmd)) => {
            Some(OwnershipChange::Dropped(defaults.table(&cmd.name)))
        }
        LogicalPlan::Ddl(DdlStatement::DropView(cmd)) => {
            Some(OwnershipChange::Dropped(defaults.table(&cmd.name)))
        }
        _ => None,
    }
}
