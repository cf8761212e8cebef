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
//! - A privilege on a tag expression covers what carries matching tags (see
//!   [`super::tagging`]), down to the columns.
//! - What a principal sees (listings) is what it holds any privilege on, owns, or may create
//!   in, and the schemas and catalogs that hold such objects.

use super::tagging::{ColumnScope, TagIndex};
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
    /// The tags and where they are set.
    tags: TagIndex,
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
            tags: TagIndex::new(records.tags, records.tag_assignments),
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

    /// The tags and where they are set.
    pub fn tags(&self) -> &TagIndex {
        &self.tags
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

    /// The grants `subject` holds that cover `object` (on it, on what holds it, or on tags it
    /// carries), each with the columns it covers there.
    fn held_on<'a>(
        &'a self,
        subject: &'a Subject,
        object: &'a SecuredObject,
    ) -> impl Iterator<Item = (&'a PrivilegeGrant, ColumnScope)> + 'a {
        self.grants
            .iter()
            .filter(move |grant| Self::holds(subject, grant))
            .filter_map(move |grant| {
                let scope = match &grant.object {
                    SecuredObject::Tagged(expression) if grant.object != *object => {
                        self.tags.coverage(expression, object)
                    }
                    _ if grant.object.covers(object) => ColumnScope::of_grant(&grant.columns),
                    _ => return None,
                };
                (!scope.is_nothing()).then_some((grant, scope))
            })
    }

    /// Whether `object` is in a schema every user reads: any catalog's `information_schema`,
    /// Osprey's `system` (an attached catalog's namespace of that name is not).
    fn is_open(&self, object: &SecuredObject) -> bool {
        match object {
            SecuredObject::Catalog(_) | SecuredObject::Location(_) | SecuredObject::Tagged(_) => {
                false
            }
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
            SecuredObject::Catalog(_) | SecuredObject::Location(_) | SecuredObject::Tagged(_) => {
                false
            }
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
        let granted = self
            .held_on(subject, object)
            .filter(|(grant, _)| Privilege::parse(&grant.privilege) == Some(privilege))
            .fold(ColumnScope::nothing(), |held, (_, scope)| held.union(scope));
        match columns {
            _ if granted.is_nothing() => false,
            Some(columns) => columns.iter().all(|c| granted.contains(c)),
            None => granted == ColumnScope::All,
        }
    }

    /// Every row filter and column mask, as stored.
    pub fn data_filters(&self) -> &[DataFilter] {
        &self.data_filters
    }

    /// Who among `subject`'s user and roles may read `table`, and which of its columns: the
    /// user if it owns the table (or its schema), and each grantee of a `SELECT` that covers
    /// it. Row filters and masks narrow what each of them gives.
    pub fn readers(&self, subject: &Subject, table: &SecuredObject) -> Vec<(Grantee, ColumnScope)> {
        let mut readers: Vec<(Grantee, ColumnScope)> = Vec::new();
        if self.owns(subject, table) {
            readers.push((Grantee::User(subject.user.clone()), ColumnScope::All));
        }
        for (grant, scope) in self.held_on(subject, table) {
            if Privilege::parse(&grant.privilege) != Some(Privilege::Select) {
                continue;
            }
            match readers.iter_mut().find(|(g, _)| *g == grant.grantee) {
                Some((_, held)) => *held = std::mem::replace(held, ColumnScope::All).union(scope),
                None => readers.push((grant.grantee.clone(), scope)),
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
            || self.held_on(subject, object).any(|(grant, scope)| {
                grant.grant_option
                    && scope == ColumnScope::All
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
        let inside = |o: &SecuredObject| object.covers(o) && o != object;
        let covers_inside = |grant: &PrivilegeGrant| match &grant.object {
            SecuredObject::Tagged(expression) => self.tags.covers_inside(expression, object),
            other => inside(other),
        };
        self.grants
            .iter()
            .any(|grant| covers_inside(grant) && Self::holds(subject, grant))
            || self
                .owners
                .iter()
                .any(|(o, owner)| inside(o) && *owner == subject.user)
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
                ..Default::default()
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

    #[test]
    fn grants_on_tags_cover_what_carries_them_down_to_columns() {
        use osprey_catalog::{TagAssignment, TagExpression};
        let sales = SecuredObject::Schema("osprey".into(), "sales".into());
        let tag =
            |object: SecuredObject, column: Option<&str>, key: &str, value: &str| TagAssignment {
                object,
                column: column.map(str::to_string),
                key: key.into(),
                value: value.into(),
            };
        let expression = TagExpression::new(
            [
                ("domain".to_string(), ["sales".to_string()].into()),
                ("pii".to_string(), ["false".to_string()].into()),
            ]
            .into(),
        )
        .unwrap();
        let model = AccessModel::new(
            AccessRecords {
                grants: vec![grant(
                    Grantee::User("ana".into()),
                    SecuredObject::Tagged(expression),
                    "SELECT",
                    &[],
                )],
                tag_assignments: vec![
                    tag(sales.clone(), None, "domain", "sales"),
                    tag(sales.clone(), None, "pii", "false"),
                    tag(table("orders"), Some("ssn"), "pii", "true"),
                    tag(
                        SecuredObject::Table("osprey".into(), "hr".into(), "staff".into()),
                        Some("dept"),
                        "domain",
                        "sales",
                    ),
                    tag(
                        SecuredObject::Table("osprey".into(), "hr".into(), "staff".into()),
                        Some("dept"),
                        "pii",
                        "false",
                    ),
                ],
                ..Default::default()
            },
            "osprey",
        );
        let ana = model.subject(&principal("ana"), &RoleSelection::All);
        let cols = |c: &[&str]| c.iter().map(|c| c.to_string()).collect::<Vec<_>>();
        // A table with no tags of its own is covered through its schema's.
        assert!(model.allows(&ana, Privilege::Select, &table("new_table"), None));
        assert!(!model.allows(&ana, Privilege::Insert, &table("new_table"), None));
        // The column tagged pii = 'true' is not.
        assert!(model.allows(
            &ana,
            Privilege::Select,
            &table("orders"),
            Some(&cols(&["id"]))
        ));
        assert!(!model.allows(
            &ana,
            Privilege::Select,
            &table("orders"),
            Some(&cols(&["ssn"]))
        ));
        assert!(!model.allows(&ana, Privilege::Select, &table("orders"), None));
        // Elsewhere only the column tagged to match, which makes its schema visible.
        let staff = SecuredObject::Table("osprey".into(), "hr".into(), "staff".into());
        assert!(model.allows(&ana, Privilege::Select, &staff, Some(&cols(&["dept"]))));
        assert!(!model.allows(&ana, Privilege::Select, &staff, Some(&cols(&["name"]))));
        assert!(model.sees(&ana, &SecuredObject::Schema("osprey".into(), "hr".into())));
        assert!(!model.sees(&ana, &SecuredObject::Schema("osprey".into(), "ops".into())));
        let readers = model.readers(&ana, &table("orders"));
        assert_eq!(readers.len(), 1);
        assert!(!readers[0].1.contains("ssn") && readers[0].1.contains("id"));
    }
}
