//! Roles, privileges and owners (see migration 0010): what governance decides from. The store
//! keeps them; `osprey-service` loads them whole ([`CatalogStore::access_records`]) and decides
//! in memory.

use super::{CatalogError, CatalogStore, TagExpression, db};
use sqlx::Row;
use sqlx::any::AnyRow;

/// Who a grant is to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Grantee {
    /// A user, by name.
    User(String),
    /// A role, by name (`public` holds every user).
    Role(String),
}

impl Grantee {
    pub(crate) fn parts(&self) -> (&'static str, &str) {
        match self {
            Grantee::User(name) => ("USER", name),
            Grantee::Role(name) => ("ROLE", name),
        }
    }

    pub(crate) fn from_parts(kind: &str, name: String) -> Self {
        match kind {
            "ROLE" => Grantee::Role(name),
            _ => Grantee::User(name),
        }
    }
}

/// What a privilege is on, or who owns.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SecuredObject {
    /// A catalog.
    Catalog(String),
    /// A schema: catalog, schema.
    Schema(String, String),
    /// A table or view: catalog, schema, table.
    Table(String, String, String),
    /// A storage location (`CREATE LOCATION`), by name.
    Location(String),
    /// Every catalog, schema, table and column whose tags match (`ON TAGGED domain =
    /// 'sales'`); grants only.
    Tagged(TagExpression),
}

impl SecuredObject {
    pub(crate) fn parts(&self) -> (&'static str, &str, &str, &str) {
        match self {
            SecuredObject::Catalog(c) => ("CATALOG", c, "", ""),
            SecuredObject::Schema(c, s) => ("SCHEMA", c, s, ""),
            SecuredObject::Table(c, s, t) => ("TABLE", c, s, t),
            SecuredObject::Location(name) => ("LOCATION", name, "", ""),
            SecuredObject::Tagged(expression) => ("TAGGED", expression.stored(), "", ""),
        }
    }

    /// Whether a privilege on this object covers `inner`: a catalog its schemas and tables, a
    /// schema its tables, anything else itself.
    pub fn covers(&self, inner: &SecuredObject) -> bool {
        use SecuredObject::*;
        match (self, inner) {
            (Catalog(c), Catalog(d)) => c == d,
            (Catalog(c), Schema(d, _)) | (Catalog(c), Table(d, _, _)) => c == d,
            (Schema(c, s), Schema(d, t)) | (Schema(c, s), Table(d, t, _)) => c == d && s == t,
            (Table(..), Table(..)) | (Location(_), Location(_)) | (Tagged(_), Tagged(_)) => {
                self == inner
            }
            _ => false,
        }
    }

    pub(crate) fn from_row(row: &AnyRow, first: usize) -> Result<Self, CatalogError> {
        let read = || db("reading a privilege's object");
        let kind: String = row.try_get(first).map_err(read())?;
        let catalog: String = row.try_get(first + 1).map_err(read())?;
        let schema: String = row.try_get(first + 2).map_err(read())?;
        let table: String = row.try_get(first + 3).map_err(read())?;
        Ok(match kind.as_str() {
            "CATALOG" => SecuredObject::Catalog(catalog),
            "SCHEMA" => SecuredObject::Schema(catalog, schema),
            "LOCATION" => SecuredObject::Location(catalog),
            "TAGGED" => SecuredObject::Tagged(TagExpression::from_stored(&catalog)?),
            _ => SecuredObject::Table(catalog, schema, table),
        })
    }
}

/// A role held by a user or by another role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleMembership {
    /// The role.
    pub role: String,
    /// Who holds it.
    pub member: Grantee,
}

/// One privilege on one object to one grantee.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivilegeGrant {
    /// Who holds it.
    pub grantee: Grantee,
    /// What it is on.
    pub object: SecuredObject,
    /// `SELECT`, `INSERT`, `UPDATE`, `DELETE` or `CREATE`.
    pub privilege: String,
    /// For a column-level `SELECT`: the columns; empty for the whole object.
    pub columns: Vec<String>,
    /// Whether the grantee may grant it on.
    pub grant_option: bool,
    /// The user who granted it.
    pub granted_by: String,
    /// When (milliseconds since the Unix epoch).
    pub granted_at_ms: i64,
}

/// Everything governance decides from, as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessRecords {
    /// The roles made with `CREATE ROLE`.
    pub roles: Vec<String>,
    /// Who holds which role.
    pub memberships: Vec<RoleMembership>,
    /// The privileges granted.
    pub grants: Vec<PrivilegeGrant>,
    /// The owner (a user name) of each schema and table that has one.
    pub owners: Vec<(SecuredObject, String)>,
    /// The row filters and column masks.
    pub data_filters: Vec<crate::DataFilter>,
    /// The tags.
    pub tags: Vec<crate::TagDefinition>,
    /// The tags set on objects and columns.
    pub tag_assignments: Vec<crate::TagAssignment>,
}

const GRANT_COLUMNS: &str = "grantee_kind, grantee_name, object_kind, catalog_name, \
    schema_name, table_name, privilege, columns, grant_option, granted_by, granted_at_ms";

const OBJECT_MATCH: &str =
    "object_kind = $1 AND catalog_name = $2 AND schema_name = $3 AND table_name = $4";

fn grant_from_row(row: &AnyRow) -> Result<PrivilegeGrant, CatalogError> {
    let read = || db("reading a privilege");
    let kind: String = row.try_get(0).map_err(read())?;
    let name: String = row.try_get(1).map_err(read())?;
    let columns: String = row.try_get(7).map_err(read())?;
    Ok(PrivilegeGrant {
        object: SecuredObject::from_row(row, 2)?,
        privilege: row.try_get(6).map_err(read())?,
        columns: serde_json::from_str(&columns).map_err(|source| {
            CatalogError::CorruptDefinition {
                name: format!("the columns of a privilege of {name}"),
                source,
            }
        })?,
        grant_option: row.try_get::<i64, _>(8).map_err(read())? != 0,
        granted_by: row.try_get(9).map_err(read())?,
        granted_at_ms: row.try_get(10).map_err(read())?,
        grantee: Grantee::from_parts(&kind, name),
    })
}

impl CatalogStore {
    /// Every role, membership, privilege and owner.
    pub async fn access_records(&self) -> Result<AccessRecords, CatalogError> {
        let failed = || db("reading roles and privileges");
        let roles = sqlx::query("SELECT role_name FROM osprey_roles ORDER BY role_name")
            .fetch_all(&self.pool)
            .await
            .map_err(failed())?
            .iter()
            .map(|row| row.try_get::<String, _>(0).map_err(failed()))
            .collect::<Result<_, _>>()?;
        let memberships = sqlx::query(
            "SELECT role_name, grantee_kind, grantee_name FROM osprey_role_grants \
             ORDER BY role_name, grantee_kind, grantee_name",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(failed())?
        .iter()
        .map(|row| {
            let kind: String = row.try_get(1).map_err(failed())?;
            Ok(RoleMembership {
                role: row.try_get(0).map_err(failed())?,
                member: Grantee::from_parts(&kind, row.try_get(2).map_err(failed())?),
            })
        })
        .collect::<Result<_, CatalogError>>()?;
        let grants = sqlx::query(&format!(
            "SELECT {GRANT_COLUMNS} FROM osprey_privileges ORDER BY grantee_kind, \
             grantee_name, object_kind, catalog_name, schema_name, table_name, privilege"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(failed())?
        .iter()
        .map(grant_from_row)
        .collect::<Result<_, _>>()?;
        let owners = sqlx::query(
            "SELECT object_kind, catalog_name, schema_name, table_name, owner_name \
             FROM osprey_owners",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(failed())?
        .iter()
        .map(|row| {
            Ok((
                SecuredObject::from_row(row, 0)?,
                row.try_get::<String, _>(4).map_err(failed())?,
            ))
        })
        .collect::<Result<_, CatalogError>>()?;
        Ok(AccessRecords {
            roles,
            memberships,
            grants,
            owners,
            data_filters: self.data_filters().await?,
            tags: self.tags().await?,
            tag_assignments: self.tag_assignments().await?,
        })
    }

    /// Stores a new role; [`CatalogError::AlreadyExists`] if the name is taken.
    pub async fn create_role(
        &self,
        name: &str,
        created_by: &str,
        at_ms: i64,
    ) -> Result<(), CatalogError> {
        sqlx::query(
            "INSERT INTO osprey_roles (role_name, created_by, created_at_ms) VALUES ($1, $2, $3)",
        )
        .bind(name)
        .bind(created_by)
        .bind(at_ms)
        .execute(&self.pool)
        .await
        .map_err(|err| match err {
            sqlx::Error::Database(ref db_err) if db_err.is_unique_violation() => {
                CatalogError::AlreadyExists {
                    kind: "role",
                    name: name.to_string(),
                }
            }
            other => db("creating a role")(other),
        })?;
        Ok(())
    }

    /// Removes a role with its memberships (held and holding) and its privileges, in one
    /// transaction; [`CatalogError::NotFound`] if absent.
    pub async fn drop_role(&self, name: &str) -> Result<(), CatalogError> {
        let failed = || db("dropping a role");
        let mut tx = self.pool.begin().await.map_err(failed())?;
        let removed = sqlx::query("DELETE FROM osprey_roles WHERE role_name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await
            .map_err(failed())?;
        if removed.rows_affected() == 0 {
            return Err(CatalogError::NotFound {
                kind: "role",
                name: name.to_string(),
            });
        }
        for statement in [
            "DELETE FROM osprey_role_grants WHERE role_name = $1",
            "DELETE FROM osprey_role_grants WHERE grantee_kind = 'ROLE' AND grantee_name = $1",
            "DELETE FROM osprey_privileges WHERE grantee_kind = 'ROLE' AND grantee_name = $1",
            "DELETE FROM osprey_data_filters WHERE grantee_kind = 'ROLE' AND grantee_name = $1",
        ] {
            sqlx::query(statement)
                .bind(name)
                .execute(&mut *tx)
                .await
                .map_err(failed())?;
        }
        tx.commit().await.map_err(failed())
    }

    /// Grants `role` to `member` (a no-op if it already holds it).
    pub async fn grant_role(
        &self,
        role: &str,
        member: &Grantee,
        granted_by: &str,
        at_ms: i64,
    ) -> Result<(), CatalogError> {
        let (kind, name) = member.parts();
        let failed = || db("granting a role");
        let mut tx = self.pool.begin().await.map_err(failed())?;
        sqlx::query(
            "DELETE FROM osprey_role_grants WHERE role_name = $1 AND grantee_kind = $2 \
             AND grantee_name = $3",
        )
        .bind(role)
        .bind(kind)
        .bind(name)
        .execute(&mut *tx)
        .await
        .map_err(failed())?;
        sqlx::query(
            "INSERT INTO osprey_role_grants (role_name, grantee_kind, grantee_name, granted_by, \
             granted_at_ms) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(role)
        .bind(kind)
        .bind(name)
        .bind(granted_by)
        .bind(at_ms)
        .execute(&mut *tx)
        .await
        .map_err(failed())?;
        tx.commit().await.map_err(failed())
    }

    /// Takes `role` from `member`; whether it held it.
    pub async fn revoke_role(&self, role: &str, member: &Grantee) -> Result<bool, CatalogError> {
        let (kind, name) = member.parts();
        let removed = sqlx::query(
            "DELETE FROM osprey_role_grants WHERE role_name = $1 AND grantee_kind = $2 \
             AND grantee_name = $3",
        )
        .bind(role)
        .bind(kind)
        .bind(name)
        .execute(&self.pool)
        .await
        .map_err(db("revoking a role"))?;
        Ok(removed.rows_affected() > 0)
    }

    /// Stores `grant`, replacing the grantee's earlier grant of the same privilege on the same
    /// object.
    pub async fn put_privilege(&self, grant: &PrivilegeGrant) -> Result<(), CatalogError> {
        let failed = || db("granting a privilege");
        let columns = serde_json::to_string(&grant.columns).map_err(|source| {
            CatalogError::CorruptDefinition {
                name: format!("the columns of a privilege on {:?}", grant.object),
                source,
            }
        })?;
        let mut tx = self.pool.begin().await.map_err(failed())?;
        delete_privilege(&mut tx, &grant.grantee, &grant.object, &grant.privilege).await?;
        let (grantee_kind, grantee_name) = grant.grantee.parts();
        let (kind, catalog, schema, table) = grant.object.parts();
        sqlx::query(&format!(
            "INSERT INTO osprey_privileges ({GRANT_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        ))
        .bind(grantee_kind)
        .bind(grantee_name)
        .bind(kind)
        .bind(catalog)
        .bind(schema)
        .bind(table)
        .bind(&grant.privilege)
        .bind(columns)
        .bind(i64::from(grant.grant_option))
        .bind(&grant.granted_by)
        .bind(grant.granted_at_ms)
        .execute(&mut *tx)
        .await
        .map_err(failed())?;
        tx.commit().await.map_err(failed())
    }

    /// Removes `grantee`'s `privilege` on `object`; whether it held it.
    pub async fn remove_privilege(
        &self,
        grantee: &Grantee,
        object: &SecuredObject,
        privilege: &str,
    ) -> Result<bool, CatalogError> {
        let failed = || db("revoking a privilege");
        let mut tx = self.pool.begin().await.map_err(failed())?;
        let removed = delete_privilege(&mut tx, grantee, object, privilege).await?;
        tx.commit().await.map_err(failed())?;
        Ok(removed)
    }

    /// Makes `owner` the owner of `object`, unless it has one already (a `CREATE ... IF NOT
    /// EXISTS` of an existing table changes nothing).
    pub async fn set_owner(&self, object: &SecuredObject, owner: &str) -> Result<(), CatalogError> {
        let failed = || db("recording an owner");
        let (kind, catalog, schema, table) = object.parts();
        let mut tx = self.pool.begin().await.map_err(failed())?;
        let existing = sqlx::query(&format!(
            "SELECT owner_name FROM osprey_owners WHERE {OBJECT_MATCH}"
        ))
        .bind(kind)
        .bind(catalog)
        .bind(schema)
        .bind(table)
        .fetch_optional(&mut *tx)
        .await
        .map_err(failed())?;
        if existing.is_some() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO osprey_owners (object_kind, catalog_name, schema_name, table_name, \
             owner_name) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(kind)
        .bind(catalog)
        .bind(schema)
        .bind(table)
        .bind(owner)
        .execute(&mut *tx)
        .await
        .map_err(failed())?;
        tx.commit().await.map_err(failed())
    }

    /// Forgets the owner of `object` and every privilege on it, and, for a schema or a
    /// catalog, on everything in it: a dropped object's grants never pass to a new object of
    /// the same name.
    pub async fn forget_object(&self, object: &SecuredObject) -> Result<(), CatalogError> {
        let failed = || db("forgetting a dropped object's privileges");
        let (kind, catalog, schema, table) = object.parts();
        let condition = match object {
            SecuredObject::Location(_) | SecuredObject::Tagged(_) => {
                "catalog_name = $1 AND object_kind = $2"
            }
            SecuredObject::Catalog(_) => {
                "catalog_name = $1 AND object_kind NOT IN ('LOCATION', 'TAGGED')"
            }
            SecuredObject::Schema(..) => {
                "catalog_name = $1 AND schema_name = $2 \
                 AND object_kind NOT IN ('CATALOG', 'LOCATION', 'TAGGED')"
            }
            SecuredObject::Table(..) => {
                "catalog_name = $1 AND schema_name = $2 AND table_name = $3 \
                 AND object_kind = 'TABLE'"
            }
        };
        let mut tx = self.pool.begin().await.map_err(failed())?;
        for from in [
            "osprey_owners",
            "osprey_privileges",
            "osprey_data_filters",
            "osprey_tag_assignments",
        ] {
            let sql = format!("DELETE FROM {from} WHERE {condition}");
            let mut query = sqlx::query(&sql).bind(catalog);
            match object {
                SecuredObject::Catalog(_) => {}
                SecuredObject::Location(_) | SecuredObject::Tagged(_) => query = query.bind(kind),
                _ => query = query.bind(schema),
            }
            if matches!(object, SecuredObject::Table(..)) {
                query = query.bind(table);
            }
            query.execute(&mut *tx).await.map_err(failed())?;
        }
        tx.commit().await.map_err(failed())
    }

    /// Moves the owner and privileges of a table renamed from `from` to `to`.
    pub async fn rename_object(
        &self,
        from: &SecuredObject,
        to: &SecuredObject,
    ) -> Result<(), CatalogError> {
        let failed = || db("moving a renamed table's privileges");
        let (_, catalog, schema, table) = to.parts();
        let (kind, old_catalog, old_schema, old_table) = from.parts();
        let mut tx = self.pool.begin().await.map_err(failed())?;
        for within in [
            "osprey_owners",
            "osprey_privileges",
            "osprey_data_filters",
            "osprey_tag_assignments",
        ] {
            sqlx::query(&format!(
                "UPDATE {within} SET catalog_name = $5, schema_name = $6, table_name = $7 \
                 WHERE {OBJECT_MATCH}"
            ))
            .bind(kind)
            .bind(old_catalog)
            .bind(old_schema)
            .bind(old_table)
            .bind(catalog)
            .bind(schema)
            .bind(table)
            .execute(&mut *tx)
            .await
            .map_err(failed())?;
        }
        tx.commit().await.map_err(failed())
    }

    /// Forgets a dropped user's roles, privileges and ownerships: a user created again under
    /// the name starts with none of them.
    pub async fn forget_user(&self, name: &str) -> Result<(), CatalogError> {
        let failed = || db("forgetting a dropped user's privileges");
        let mut tx = self.pool.begin().await.map_err(failed())?;
        for statement in [
            "DELETE FROM osprey_role_grants WHERE grantee_kind = 'USER' AND grantee_name = $1",
            "DELETE FROM osprey_privileges WHERE grantee_kind = 'USER' AND grantee_name = $1",
            "DELETE FROM osprey_owners WHERE owner_name = $1",
        ] {
            sqlx::query(statement)
                .bind(name)
                .execute(&mut *tx)
                .await
                .map_err(failed())?;
        }
        tx.commit().await.map_err(failed())
    }
}

async fn delete_privilege(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    grantee: &Grantee,
    object: &SecuredObject,
    privilege: &str,
) -> Result<bool, CatalogError> {
    let (grantee_kind, grantee_name) = grantee.parts();
    let (kind, catalog, schema, table) = object.parts();
    let removed = sqlx::query(&format!(
        "DELETE FROM osprey_privileges WHERE {OBJECT_MATCH} AND grantee_kind = $5 \
         AND grantee_name = $6 AND privilege = $7"
    ))
    .bind(kind)
    .bind(catalog)
    .bind(schema)
    .bind(table)
    .bind(grantee_kind)
    .bind(grantee_name)
    .bind(privilege)
    .execute(&mut **tx)
    .await
    .map_err(db("revoking a privilege"))?;
    Ok(removed.rows_affected() > 0)
}
