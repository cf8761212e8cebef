//! `GRANT` and `REVOKE` of privileges: who may, what is stored (column grants merged, the
//! grant option kept), and what a revoke leaves.

use super::enforce::describe;
use super::model::{AccessModel, Privilege, Subject};
use super::statements::{NamedObject, PrivilegeChange};
use super::{Governance, failed, show};
use crate::error::QueryError;
use crate::policy::NameDefaults;
use datafusion::catalog::CatalogProviderList;
use osprey_catalog::{Grantee, PrivilegeGrant, SecuredObject, now_ms};

impl Governance {
    pub(super) async fn grant(
        &self,
        model: &AccessModel,
        who: &Subject,
        defaults: &NameDefaults,
        catalogs: &dyn CatalogProviderList,
        change: PrivilegeChange,
    ) -> Result<(), QueryError> {
        let (object, change) = checked(model, who, defaults, change, "granting")?;
        for privilege in &change.privileges {
            if *privilege == Privilege::Create && matches!(object, SecuredObject::Table(..)) {
                return Err(QueryError::InvalidStatement(
                    "CREATE is granted on a schema or a catalog, not on a table".into(),
                ));
            }
            let on_location = matches!(object, SecuredObject::Location(_));
            if on_location != (*privilege == Privilege::Usage) {
                return Err(QueryError::InvalidStatement(
                    "USAGE is granted on a location (GRANT USAGE ON LOCATION name TO ...), and \
                     a location takes USAGE only"
                        .into(),
                ));
            }
        }
        if let SecuredObject::Tagged(expression) = &object {
            model.tags().check(expression)?;
            if !change.columns.is_empty() {
                return Err(QueryError::InvalidStatement(
                    "a grant on tags covers the columns that carry them: tag the columns \
                     (ALTER TABLE t ALTER COLUMN c SET TAG ...) instead of listing them"
                        .into(),
                ));
            }
        }
        exists(catalogs, &object).await?;
        for grantee in &change.grantees {
            self.check_grantee(model, grantee).await?;
        }
        for grantee in &change.grantees {
            for privilege in &change.privileges {
                let columns = match privilege {
                    Privilege::Select => merged_columns(model, grantee, &object, &change.columns),
                    _ => Vec::new(),
                };
                let held_option = model
                    .held_grant(grantee, &object, *privilege)
                    .is_some_and(|g| g.grant_option);
                let grant = PrivilegeGrant {
                    grantee: grantee.clone(),
                    object: object.clone(),
                    privilege: privilege.name().to_string(),
                    columns,
                    grant_option: change.grant_option || held_option,
                    granted_by: who.user.clone(),
                    granted_at_ms: now_ms(),
                };
                self.inner
                    .store
                    .put_privilege(&grant)
                    .await
                    .map_err(failed)?;
            }
        }
        Ok(())
    }

    pub(super) async fn revoke(
        &self,
        model: &AccessModel,
        who: &Subject,
        defaults: &NameDefaults,
        change: PrivilegeChange,
    ) -> Result<(), QueryError> {
        let (object, change) = checked(model, who, defaults, change, "revoking")?;
        let store = &self.inner.store;
        for grantee in &change.grantees {
            for privilege in &change.privileges {
                let held = model.held_grant(grantee, &object, *privilege);
                let Some(held) = held else {
                    // `ALL PRIVILEGES` revokes what is there.
                    if change.privileges.len() == 1 {
                        return Err(QueryError::InvalidStatement(format!(
                            "{} holds no {} on {}",
                            show::grantee_text(grantee),
                            privilege.name(),
                            describe(&object)
                        )));
                    }
                    continue;
                };
                let mut kept = held.clone();
                if change.grant_option {
                    kept.grant_option = false;
                } else if !change.columns.is_empty() && *privilege == Privilege::Select {
                    if held.columns.is_empty() {
                        return Err(QueryError::InvalidStatement(format!(
                            "{} holds SELECT on all of {}: revoke it, then grant the columns \
                             to keep",
                            show::grantee_text(grantee),
                            describe(&object)
                        )));
                    }
                    kept.columns.retain(|c| !change.columns.contains(c));
                    if kept.columns.is_empty() {
                        store
                            .remove_privilege(grantee, &object, privilege.name())
                            .await
                            .map_err(failed)?;
                        continue;
                    }
                } else {
                    store
                        .remove_privilege(grantee, &object, privilege.name())
                        .await
                        .map_err(failed)?;
                    continue;
                }
                store.put_privilege(&kept).await.map_err(failed)?;
            }
        }
        Ok(())
    }
}

/// The object `change` names, and the change with the privileges that apply to it, once
/// `who` may grant (or revoke, `verb`) each of them there.
fn checked(
    model: &AccessModel,
    who: &Subject,
    defaults: &NameDefaults,
    change: PrivilegeChange,
    verb: &str,
) -> Result<(SecuredObject, PrivilegeChange), QueryError> {
    let object = resolve(&change.object, defaults);
    let change = PrivilegeChange {
        privileges: applicable(&change.privileges, &object),
        ..change
    };
    for privilege in &change.privileges {
        if !model.may_grant(who, *privilege, &object) {
            return Err(QueryError::PermissionDenied(format!(
                "permission denied: {verb} {} on {} needs its owner, an admin, or the \
                 privilege WITH GRANT OPTION",
                privilege.name(),
                describe(&object)
            )));
        }
    }
    Ok((object, change))
}

/// The columns a column-level `SELECT` grant holds after granting `columns` too; empty (the
/// whole table) when either is.
fn merged_columns(
    model: &AccessModel,
    grantee: &Grantee,
    object: &SecuredObject,
    columns: &[String],
) -> Vec<String> {
    let held = model.held_grant(grantee, object, Privilege::Select);
    match held {
        Some(held) if held.columns.is_empty() => Vec::new(),
        _ if columns.is_empty() => Vec::new(),
        Some(held) => {
            let mut merged = held.columns.clone();
            merged.extend(
                columns
                    .iter()
                    .filter(|c| !held.columns.contains(c))
                    .cloned(),
            );
            merged
        }
        None => columns.to_vec(),
    }
}

/// `object` as a statement named it, resolved with the session's defaults.
pub(super) fn resolve(object: &NamedObject, defaults: &NameDefaults) -> SecuredObject {
    match object {
        NamedObject::Catalog(c) => SecuredObject::Catalog(c.clone()),
        NamedObject::Location(name) => SecuredObject::Location(name.clone()),
        NamedObject::Tagged(expression) => SecuredObject::Tagged(expression.clone()),
        NamedObject::Schema(parts) => match parts.as_slice() {
            [c, s] => SecuredObject::Schema(c.clone(), s.clone()),
            _ => SecuredObject::Schema(defaults.catalog.clone(), parts.join(".")),
        },
        NamedObject::Table(parts) => match parts.as_slice() {
            [c, s, t] => SecuredObject::Table(c.clone(), s.clone(), t.clone()),
            [s, t] => SecuredObject::Table(defaults.catalog.clone(), s.clone(), t.clone()),
            _ => SecuredObject::Table(
                defaults.catalog.clone(),
                defaults.schema.clone(),
                parts.join("."),
            ),
        },
    }
}

/// Refuses a grant on what does not exist.
pub(super) async fn exists(
    catalogs: &dyn CatalogProviderList,
    object: &SecuredObject,
) -> Result<(), QueryError> {
    let missing = || QueryError::InvalidStatement(format!("{} does not exist", describe(object)));
    let (catalog, schema, table) = match object {
        // The statement's runner resolved the location's name (`QueryEngine`), which is what
        // knows the locations.
        SecuredObject::Location(_) => return Ok(()),
        // Its tags are checked against their definitions (`Governance::grant`).
        SecuredObject::Tagged(_) => return Ok(()),
        SecuredObject::Catalog(c) => (c, None, None),
        SecuredObject::Schema(c, s) => (c, Some(s), None),
        SecuredObject::Table(c, s, t) => (c, Some(s), Some(t)),
    };
    let catalog = catalogs.catalog(catalog).ok_or_else(missing)?;
    let Some(schema) = schema else {
        return Ok(());
    };
    let schema = catalog.schema(schema).ok_or_else(missing)?;
    match table {
        Some(table) if !schema.table_exist(table) => Err(missing()),
        _ => Ok(()),
    }
}

/// `privileges` as they apply to `object`: `ALL PRIVILEGES` on a table is every privilege but
/// `CREATE`, which a table does not take.
fn applicable(privileges: &[Privilege], object: &SecuredObject) -> Vec<Privilege> {
    let is_all = Privilege::ALL.iter().all(|p| privileges.contains(p));
    privileges
        .iter()
        .copied()
        .filter(|p| {
            !(is_all && *p == Privilege::Create && matches!(object, SecuredObject::Table(..)))
        })
        .collect()
}
