//! Users who may log in, with their password hashes and whether they administer the service.

use super::{CatalogError, CatalogStore, db, now_ms};
use sqlx::Row;
use sqlx::any::AnyRow;

/// Who defines a user or a workgroup, and so who may change it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManagedBy {
    /// The coordinator's configuration (`[[users]]`, `OSPREY_ADMIN_PASSWORD`, `[[workgroups]]`):
    /// re-synchronised at every start, so SQL may not change it.
    Config,
    /// `CREATE USER` or `CREATE WORKGROUP`: SQL manages it.
    Sql,
}

impl ManagedBy {
    /// The name stored in the `managed_by` column.
    pub fn as_str(self) -> &'static str {
        match self {
            ManagedBy::Config => "config",
            ManagedBy::Sql => "sql",
        }
    }

    pub(crate) fn parse(text: &str) -> Self {
        // Anything but "config" is SQL's to manage: the safer reading of an unexpected value.
        if text == "config" {
            ManagedBy::Config
        } else {
            ManagedBy::Sql
        }
    }
}

/// A new user identity: 128 random bits in hex. Random rather than a sequence so that ids
/// never repeat across catalogs, restores or a name used again.
pub fn new_user_id() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A stored user.
#[derive(Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// The login name.
    pub name: String,
    /// The user's identity: set when the user is created and never changed, so a user dropped
    /// and created again under the same name is a different user (see [`new_user_id`]).
    pub id: String,
    /// The password as an Argon2id PHC string (`$argon2id$v=19$...`); never the password.
    pub password_hash: String,
    /// Whether the user may manage users and see everyone's queries.
    pub is_admin: bool,
    /// Who defines the user.
    pub managed_by: ManagedBy,
    /// When the user was created (milliseconds since the Unix epoch).
    pub created_at_ms: i64,
    /// When the user was last changed.
    pub updated_at_ms: i64,
    /// The workgroup the user's queries run in; `None` for the default workgroup.
    pub workgroup: Option<String>,
}

impl std::fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRecord")
            .field("name", &self.name)
            .field("id", &self.id)
            .field("password_hash", &"<redacted>")
            .field("is_admin", &self.is_admin)
            .field("managed_by", &self.managed_by)
            .field("workgroup", &self.workgroup)
            .finish()
    }
}

const COLUMNS: &str = "user_name, password_hash, is_admin, managed_by, created_at_ms, \
                       updated_at_ms, workgroup, user_id";

fn user_from_row(row: &AnyRow) -> Result<UserRecord, CatalogError> {
    let read = || db("reading a user");
    let managed_by: String = row.try_get(3).map_err(read())?;
    Ok(UserRecord {
        name: row.try_get(0).map_err(read())?,
        password_hash: row.try_get(1).map_err(read())?,
        is_admin: row.try_get::<i64, _>(2).map_err(read())? != 0,
        managed_by: ManagedBy::parse(&managed_by),
        created_at_ms: row.try_get(4).map_err(read())?,
        updated_at_ms: row.try_get(5).map_err(read())?,
        workgroup: row.try_get(6).map_err(read())?,
        id: row.try_get(7).map_err(read())?,
    })
}

fn user_not_found(name: &str) -> CatalogError {
    CatalogError::NotFound {
        kind: "user",
        name: name.to_string(),
    }
}

impl CatalogStore {
    /// The user called `name`, if any.
    pub async fn user(&self, name: &str) -> Result<Option<UserRecord>, CatalogError> {
        sqlx::query(&format!(
            "SELECT {COLUMNS} FROM osprey_users WHERE user_name = $1"
        ))
        .bind(name)
        .fetch_optional(&self.pool)
        .await
        .map_err(db("reading a user"))?
        .as_ref()
        .map(user_from_row)
        .transpose()
    }

    /// Every user, by name.
    pub async fn users(&self) -> Result<Vec<UserRecord>, CatalogError> {
        sqlx::query(&format!(
            "SELECT {COLUMNS} FROM osprey_users ORDER BY user_name"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(db("reading users"))?
        .iter()
        .map(user_from_row)
        .collect()
    }

    /// Stores a new user; [`CatalogError::AlreadyExists`] if the name is taken.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), osprey_catalog::CatalogError> {
    /// use osprey_catalog::{CatalogStore, ManagedBy, UserRecord, now_ms};
    ///
    /// let store = CatalogStore::open("sqlite:///tmp/osprey-catalog.db").await?;
    /// store.create_user(&UserRecord {
    ///     name: "ana".into(),
    ///     id: osprey_catalog::new_user_id(),
    ///     password_hash: "$argon2id$v=19$m=19456,t=2,p=1$...".into(),
    ///     is_admin: false,
    ///     managed_by: ManagedBy::Sql,
    ///     created_at_ms: now_ms(),
    ///     updated_at_ms: now_ms(),
    ///     workgroup: None,
    /// }).await?;
    /// assert!(store.user("ana").await?.is_some());
    /// # Ok(()) }
    /// ```
    pub async fn create_user(&self, user: &UserRecord) -> Result<(), CatalogError> {
        sqlx::query(&format!(
            "INSERT INTO osprey_users ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        ))
        .bind(&user.name)
        .bind(&user.password_hash)
        .bind(i64::from(user.is_admin))
        .bind(user.managed_by.as_str())
        .bind(user.created_at_ms)
        .bind(user.updated_at_ms)
        .bind(&user.workgroup)
        .bind(&user.id)
        .execute(&self.pool)
        .await
        .map_err(|err| match err {
            sqlx::Error::Database(ref db_err) if db_err.is_unique_violation() => {
                CatalogError::AlreadyExists {
                    kind: "user",
                    name: user.name.clone(),
                }
            }
            other => db("creating a user")(other),
        })?;
        Ok(())
    }

    /// Replaces a user's hash, admin flag and manager (not its workgroup: see
    /// [`CatalogStore::set_user_workgroup`]); [`CatalogError::NotFound`] if absent.
    pub async fn update_user(&self, user: &UserRecord) -> Result<(), CatalogError> {
        let result = sqlx::query(
            "UPDATE osprey_users SET password_hash = $1, is_admin = $2, managed_by = $3, \
             updated_at_ms = $4 WHERE user_name = $5",
        )
        .bind(&user.password_hash)
        .bind(i64::from(user.is_admin))
        .bind(user.managed_by.as_str())
        .bind(now_ms())
        .bind(&user.name)
        .execute(&self.pool)
        .await
        .map_err(db("changing a user"))?;
        if result.rows_affected() == 0 {
            return Err(user_not_found(&user.name));
        }
        Ok(())
    }

    /// Puts a user's queries in `workgroup` (`None`: the default workgroup);
    /// [`CatalogError::NotFound`] if the user is absent.
    pub async fn set_user_workgroup(
        &self,
        name: &str,
        workgroup: Option<&str>,
    ) -> Result<(), CatalogError> {
        let result = sqlx::query(
            "UPDATE osprey_users SET workgroup = $1, updated_at_ms = $2 WHERE user_name = $3",
        )
        .bind(workgroup)
        .bind(now_ms())
        .bind(name)
        .execute(&self.pool)
        .await
        .map_err(db("changing a user's workgroup"))?;
        if result.rows_affected() == 0 {
            return Err(user_not_found(name));
        }
        Ok(())
    }

    /// Removes a user; [`CatalogError::NotFound`] if absent.
    pub async fn drop_user(&self, name: &str) -> Result<(), CatalogError> {
        let result = sqlx::query("DELETE FROM osprey_users WHERE user_name = $1")
            .bind(name)
            .execute(&self.pool)
            .await
            .map_err(db("dropping a user"))?;
        if result.rows_affected() == 0 {
            return Err(user_not_found(name));
        }
        Ok(())
    }
}
