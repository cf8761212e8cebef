//! The access model: every decision governance makes, taken in memory from the stored roles,
//! privileges and owners ([`osprey_catalog::AccessRecords`]).
//!
//! - A principal acts with its user's privileges, those of the roles its session has enabled
//!   (`SET ROLE`; all the roles it holds by default, nested roles included) and those of
//!   `public`, which every user holds. Admins are superusers.
//! - A privilege on a catalog covers its schemas and tables; on a schema, its tables.
//! - The owner of a schema (its creator) holds every privilege on it and on its tables, and
//!   may drop and alter them; the owner of a table likewise on the table. Objects with no
//!   owner are the admins'.
//! - A column-level `SELECT` covers a read of those columns only; a read of no column at all
//!   (`count(*)`) needs `SELECT` on at least one.
//! - What a principal sees (listings) is what it holds any privilege on, owns, or may create
//!   in, and the schemas and catalogs that hold such objects.

use crate::auth::Principal;
use crate::policy::RoleSelection;
use osprey_catalog::{AccessRecords, DataFilter, Grantee, PrivilegeGrant, SecuredObject};
use std::collections::{BTreeSet, HashMap};

/// The role every user holds.
pub const PUBLIC_ROLE: &str = "public";

/// The schema every catalog's listings are in, every user's to read: it lists what each user
/// may see.
const INFORMATION_SCHEMA: &str = "information_schema";

/// Osprey's `system` schema (in its own catalog), every user's to read: its tables show each
/// user what it may see (`system.queries`: its own statements).
const SYSTEM_SCHEMA: &str = "system";

/// `system.audit`, the one table of `system` only admins read.
const AUDIT_TABLE: &str = "audit";

/// A privilege on a table, schema or catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Privilege {
    /// Read rows.
    Select,
    /// Add rows.
    Insert,
    /// Change rows.
    Update,
    /// Remove rows.
    Delete,
    /// Create tables in a schema, or schemas in a catalog.
    Create,
    /// Use a storage location: external tables over it, `UNLOAD` into it.
    Usage,
}

impl Privilege {
    /// Every privilege on catalogs, schemas and tables: what `ALL PRIVILEGES` grants
    /// (`USAGE` is a location's alone).
    pub const ALL: [Privilege; 5] = [
        Privilege::Select,
        Privilege::Insert,
        Privilege::Update,
        Privilege::Delete,
        Privilege::Create,
    ];

    /// Its SQL name.
    pub fn name(self) -> &'static str {
        match self {
            Privilege::Select => "SELECT",
            Privilege::Insert => "INSERT",
            Privilege::Update => "UPDATE",
            Privilege::Delete => "DELETE",
            Privilege::Create => "CREATE",
            Privilege::Usage => "USAGE",
        }
    }

    /// The privilege of SQL name `name` (any case).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .chain([Privilege::Usage])
            .find(|p| p.name().eq_ignore_ascii_case(name))
    }
}

/// A principal as governance sees it: its user, its enabled roles, whether it is an admin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// The user name.
    pub user: String,
    /// The roles it acts with, `public` included.
    pub roles: BTreeSet<String>,
    /// Admins hold every privilege.
    pub admin: bool,
    /// The role chosen with `SET ROLE r` (`current_role` in row filters and masks); `None`
    /// when the session acts with all its roles, or none.
    pub role: Option<String>,
}

/// The decisions (see the module documentation).
#[derive(Debug, Default)]
pub struct AccessModel {
    roles: BTreeSet<String>,
    /// The roles each user holds directly.
    user_roles: HashMap<String, BTreeSet<String>>,
    /// The roles each role holds directly.
    role_roles: HashMap<String, BTreeSet<String>>,
    grants: Vec<PrivilegeGrant>,
    owners: HashMap<SecuredObject, String>,
    /// The row filters and column masks.
    data_filters: Vec<DataFilter>,
    /// Osprey's own catalog, whose `system` schema is open.
    own_catalog: String,
}

impl AccessModel {
    /// The model of `records`, for the catalog named `own_catalog` and those attached to it.
    pub fn new(records: AccessRecords, own_catalog: &str) -> Self {
        let mut user_roles: HashMap<String, BTreeSet<String>> = HashMap::new();
        let mut role_roles: HashMap<String, BTreeSet<String>> = HashMap::new();
        for membership in records.memberships {
            let held = match membership.member {
                Grantee::User(user) => user_roles.entry(user).or_default(),
                Grantee::Role(role) => role_roles.entry(role).or_default(),
            };
            held.insert(membership.role);
        }
        Self {
            roles: records.roles.into_iter().collect(),
            user_roles,
            role_roles,
            grants: records.grants,
            owners: records.owners.into_iter().collect(),
            data_filters: records.data_filters,
            own_catalog: own_catalog.to_string(),
        }
    }

    /// Whether `role` exists (`public` always does).
    pub fn role_exists(&self, role: &str) -> bool {
        role == PUBLIC_ROLE || self.roles.contains(role)
    }

    /// Every role made with `CREATE ROLE`.
    pub fn roles(&self) -> impl Iterator<Item = &String> {
        self.roles.iter()
    }

    /// Every grant, as stored.
    pub fn grants(&self) -> &[PrivilegeGrant] {
        &self.grants
    }

    /// `grantee`'s grant of `privilege` on exactly `object`, if it holds one.
    pub fn held_grant(
        &self,
        grantee: &Grantee,
        object: &SecuredObject,
        privilege: Privilege,
    ) -> Option<&PrivilegeGrant> {
        self.grants.iter().find(|g| {
            g.grantee == *grantee && g.object == *object && g.privilege == privilege.name()
        })
    }

    /// The owner of `object`, if it has one.
    pub fn owner(&self, object: &SecuredObject) -> Option<&str> {
        self.owners.get(object).map(String::as_str)
    }

    /// Who holds `role` directly: its users and roles.
    pub fn holders(&self, role: &str) -> Vec<Grantee> {
        let users = self
            .user_roles
            .iter()
            .filter(|(_, roles)| roles.contains(role))
            .map(|(user, _)| Grantee::User(user.clone()));
        let roles = self
            .role_roles
            .iter()
            .filter(|(_, roles)| roles.contains(role))
            .map(|(holder, _)| Grantee::Role(holder.clone()));
        let mut holders: Vec<Grantee> = users.chain(roles).collect();
        holders.sort();
        holders
    }

    /// The roles `user` holds, directly or through other roles (`public` included).
    pub fn roles_of_user(&self, user: &str) -> BTreeSet<String> {
        let direct = self.user_roles.get(user).cloned().unwrap_or_default();
        self.closure(direct)
    }

    /// `start` and every role its roles hold, and `public`.
    fn closure(&self, start: BTreeSet<String>) -> BTreeSet<String> {
        let mut all = BTreeSet::from([PUBLIC_ROLE.to_string()]);
        let mut pending: Vec<String> = start.into_iter().collect();
        while let Some(role) = pending.pop() {
            if all.insert(role.clone())
                && let Some(held) = self.role_roles.get(&role)
            {
                pending.extend(held.iter().cloned());
            }
        }
        all
    }

    /// Whether `role` holds `other`, directly or through roles (a grant that would make a
    /// cycle is refused with this).
    pub fn role_holds(&self, role: &str, other: &str) -> bool {
        self.closure(BTreeSet::from([role.to_string()]))
            .contains(other)
    }

    /// The subject `principal` acts as, with the roles `selection` enables. A selected role
    /// the user no longer holds enables nothing.
    pub fn subject(&self, principal: &Principal, selection: &RoleSelection) -> Subject {
        let held = self.roles_of_user(&principal.user);
        let roles = match selection {
            RoleSelection::All => held.clone(),
            RoleSelection::None => BTreeSet::from([PUBLIC_ROLE.to_string()]),
            RoleSelection::One(role) if held.contains(role) => {
                self.closure(BTreeSet::from([role.clone()]))
            }
            RoleSelection::One(_) => BTreeSet::from([PUBLIC_ROLE.to_string()]),
        };
        let role = match selection {
            RoleSelection::One(role) if held.contains(role) => Some(role.clone()),
            _ => None,
        };
        Subject {
            user: principal.user.clone(),
            roles,
            admin: principal.is_admin,
            role,
        }
    }

    fn holds(subject: &Subject, grant: &PrivilegeGrant) -> bool {
        match &grant.grantee {
            Grantee::User(user) => *user == subject.user,
            Grantee::Role(role) => subject.roles.contains(role),
        }
    }

    /// The grants `subject` holds on `object` or on what holds it.
    fn held_on<'a>(
        &'a self,
        subject: &'a Subject,
        object: &'a SecuredObject,
    ) -> impl Iterator<Item = &'a PrivilegeGrant> + 'a {
        self.grants
            .iter()
            .filter(move |grant| covers(&grant.object, object) && Self::holds(subject, grant))
    }

    /// Whether `object` is in a schema every user reads: any catalog's `information_schema`,
    /// Osprey's `system` (an attached catalog's namespace of that name is not).
    fn is_open(&self, object: &SecuredObject) -> bool {
        match object {
            SecuredObject::Catalog(_) | SecuredObject::Location(_) => false,
            // The audit trail is the admins' alone.
            SecuredObject::Table(c, s, t)
                if s == SYSTEM_SCHEMA && *c == self.own_catalog && t == AUDIT_TABLE =>
            {
                false
            }
            SecuredObject::Schema(c, s) | SecuredObject::Table(c, s, _) => {
                s == INFORMATION_SCHEMA || (s == SYSTEM_SCHEMA && *c == self.own_catalog)
            }
        }
    }

    /// Whether `subject` owns `object` or the schema that holds it.
    pub fn owns(&self, subject: &Subject, object: &SecuredObject) -> bool {
        if subject.admin {
            return true;
        }
        let owned = |o: &SecuredObject| self.owners.get(o).is_some_and(|u| *u == subject.user);
        match object {
            SecuredObject::Catalog(_) | SecuredObject::Location(_) => false,
            SecuredObject::Schema(..) => owned(object),
            SecuredObject::Table(c, s, _) => {
                owned(object) || owned(&SecuredObject::Schema(c.clone(), s.clone()))
            }
        }
    }

    /// Whether `subject` may use `privilege` on `object`; for a `SELECT` on a table, of
    /// `columns` (`Some(&[])`: of no column, as `count(*)`; `None`: of every column).
    pub fn allows(
        &self,
        subject: &Subject,
        privilege: Privilege,
        object: &SecuredObject,
        columns: Option<&[String]>,
    ) -> bool {
        if subject.admin || self.owns(subject, object) || self.is_open(object) {
            return true;
        }
        let mut granted_columns: BTreeSet<&str> = BTreeSet::new();
        for grant in self.held_on(subject, object) {
            if Privilege::parse(&grant.privilege) != Some(privilege) {
                continue;
            }
            if grant.columns.is_empty() {
                return true;
            }
            granted_columns.extend(grant.columns.iter().map(String::as_str));
        }
        match columns {
            _ if granted_columns.is_empty() => false,
            Some(columns) => columns.iter().all(|c| granted_columns.contains(c.as_str())),
            None => false,
        }
    }

    /// Every row filter and column mask, as stored.
    pub fn data_filters(&self) -> &[DataFilter] {
        &self.data_filters
    }

    /// Who among `subject`'s user and roles may read `table`, and which of its columns
    /// (`None`: every column): the user if it owns the table (or its schema), and each grantee
    /// of a `SELECT` that covers it. Row filters and masks narrow what each of them gives.
    pub fn readers(
        &self,
        subject: &Subject,
        table: &SecuredObject,
    ) -> Vec<(Grantee, Option<BTreeSet<String>>)> {
        let mut readers: Vec<(Grantee, Option<BTreeSet<String>>)> = Vec::new();
        if self.owns(subject, table) {
            readers.push((Grantee::User(subject.user.clone()), None));
        }
        for grant in self.held_on(subject, table) {
            if Privilege::parse(&grant.privilege) != Some(Privilege::Select) {
                continue;
            }
            let columns: Option<BTreeSet<String>> =
                (!grant.columns.is_empty()).then(|| grant.columns.iter().cloned().collect());
            match readers.iter_mut().find(|(g, _)| *g == grant.grantee) {
                Some((_, held)) => match (held.as_mut(), columns) {
                    (Some(held), Some(columns)) => held.extend(columns),
                    _ => *held = None,
                },
                None => readers.push((grant.grantee.clone(), columns)),
            }
        }
        readers
    }

    /// Whether `subject` may grant `privilege` on `object` to others: it owns it, or holds the
    /// privilege there with the grant option.
    pub fn may_grant(
        &self,
        subject: &Subject,
        privilege: Privilege,
        object: &SecuredObject,
    ) -> bool {
        subject.admin
            || self.owns(subject, object)
            || self.held_on(subject, object).any(|grant| {
                grant.grant_option
                    && grant.columns.is_empty()
                    && Privilege::parse(&grant.privilege) == Some(privilege)
            })
    }

    /// Whether `subject` sees `object` in listings: it holds a privilege on it (or on what
    /// holds it), owns it, or, for a schema or catalog, sees something in it.
    pub fn sees(&self, subject: &Subject, object: &SecuredObject) -> bool {
        if subject.admin || self.is_open(object) || self.owns(subject, object) {
            return true;
        }
        if self.held_on(subject, object).next().is_some() {
            return true;
        }
        // Something inside: a grant or an ownership below it.
        let inside = |o: &SecuredObject| covers(object, o) && o != object;
        self.grants
            .iter()
            .any(|grant| inside(&grant.object) && Self::holds(subject, grant))
            || self
                .owners
                .iter()
                .any(|(o, owner)| inside(o) && *owner == subject.user)
    }
}

/// Whether a privilege on `outer` covers `inner`.
pub(super) fn covers(outer: &SecuredObject, inner: &SecuredObject) -> bool {
    use SecuredObject::*;
    match (outer, inner) {
        (Catalog(c), Catalog(d)) => c == d,
        (Catalog(c), Schema(d, _)) | (Catalog(c), Table(d, _, _)) => c == d,
        (Schema(c, s), Schema(d, t)) | (Schema(c, s), Table(d, t, _)) => c == d && s == t,
        (Table(..), Table(..)) | (Location(_), Location(_)) => outer == inner,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use osprey_catalog::RoleMembership;

    fn table(t: &str) -> SecuredObject {
        SecuredObject::Table("osprey".into(), "sales".into(), t.into())
    }

    fn grant(
        grantee: Grantee,
        object: SecuredObject,
        privilege: &str,
        columns: &[&str],
    ) -> PrivilegeGrant {
        PrivilegeGrant {
            grantee,
            object,
            privilege: privilege.into(),
            columns: columns.iter().map(|c| c.to_string()).collect(),
            grant_option: false,
            granted_by: "admin".into(),
            granted_at_ms: 0,
        }
    }

    fn principal(user: &str) -> Principal {
        Principal {
            user: user.into(),
            user_id: user.into(),
            is_admin: false,
            session_id: None,
        }
    }

    fn model() -> AccessModel {
        AccessModel::new(
            AccessRecords {
                roles: vec!["analysts".into(), "readers".into()],
                memberships: vec![
                    RoleMembership {
                        role: "analysts".into(),
                        member: Grantee::User("ana".into()),
                    },
                    RoleMembership {
                        role: "readers".into(),
                        member: Grantee::Role("analysts".into()),
                    },
                ],
                grants: vec![
                    grant(
                        Grantee::Role("readers".into()),
                        SecuredObject::Schema("osprey".into(), "sales".into()),
                        "SELECT",
                        &[],
                    ),
                    grant(
                        Grantee::User("ben".into()),
                        table("orders"),
                        "SELECT",
                        &["id", "region"],
                    ),
                ],
                owners: vec![(table("mine"), "ben".into())],
                data_filters: Vec::new(),
            },
            "osprey",
        )
    }

    #[test]
    fn nested_roles_and_schema_grants_cover_tables() {
        let model = model();
        let ana = model.subject(&principal("ana"), &RoleSelection::All);
        assert!(ana.roles.contains("readers") && ana.roles.contains(PUBLIC_ROLE));
        assert!(model.allows(&ana, Privilege::Select, &table("orders"), None));
        assert!(!model.allows(&ana, Privilege::Insert, &table("orders"), None));
        // SET ROLE NONE leaves public only.
        let none = model.subject(&principal("ana"), &RoleSelection::None);
        assert!(!model.allows(&none, Privilege::Select, &table("orders"), None));
        // A role the user does not hold enables nothing.
        let other = model.subject(&principal("ben"), &RoleSelection::One("analysts".into()));
        assert!(!other.roles.contains("analysts"));
    }

    #[test]
    fn column_grants_cover_their_columns_only() {
        let model = model();
        let ben = model.subject(&principal("ben"), &RoleSelection::All);
        let cols = |c: &[&str]| c.iter().map(|c| c.to_string()).collect::<Vec<_>>();
        assert!(model.allows(
            &ben,
            Privilege::Select,
            &table("orders"),
            Some(&cols(&["id"]))
        ));
        assert!(model.allows(&ben, Privilege::Select, &table("orders"), Some(&[])));
        assert!(!model.allows(
            &ben,
            Privilege::Select,
            &table("orders"),
            Some(&cols(&["id", "ssn"]))
        ));
        assert!(!model.allows(&ben, Privilege::Select, &table("orders"), None));
        // Owners hold everything on what they own; listings show what is held.
        assert!(model.allows(&ben, Privilege::Delete, &table("mine"), None));
        assert!(model.sees(
            &ben,
            &SecuredObject::Schema("osprey".into(), "sales".into())
        ));
        assert!(!model.sees(&ben, &table("other")));
        assert!(model.sees(
            &ben,
            &SecuredObject::Table("osprey".into(), "system".into(), "queries".into())
        ));
    }
}
