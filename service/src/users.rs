//! SQL that manages users: `CREATE USER`, `ALTER USER`, `DROP USER` and `SHOW USERS`.
//!
//! DataFusion's parser knows none of these in the form Osprey accepts (PostgreSQL's and
//! Redshift's), so they are recognised here, on the token stream, before DataFusion sees the
//! statement:
//!
//! ```sql
//! CREATE USER [IF NOT EXISTS] name [WITH] PASSWORD 'secret' [ADMIN | NOADMIN] [WORKGROUP wg]
//! ALTER USER [IF EXISTS] name [WITH] [PASSWORD 'secret' [REPLACE 'current']] [ADMIN | NOADMIN]
//! ALTER USER [IF EXISTS] name SET WORKGROUP wg | DEFAULT     (or RESET WORKGROUP)
//! ALTER USER [IF EXISTS] name REVOKE TOKENS
//! DROP USER [IF EXISTS] name [, ...]
//! SHOW USERS
//! ```
//!
//! `SUPERUSER`/`CREATEUSER` are accepted for `ADMIN` (and `NO...` for `NOADMIN`). Unquoted names
//! are folded to lower case, as SQL identifiers are; quote them (`"Ana"` or `'Ana'`) to keep
//! case. Only admins create, drop and change other users; anyone may change their own password
//! (giving the current one with `REPLACE 'current'`, as MySQL spells it, unless an admin) or
//! revoke their own tokens. Users defined in the configuration can only be changed there,
//! except for their workgroup, which is policy rather than a credential.

use crate::admin_sql::{Tokens, listing_plan, syntax};
use crate::auth::{Authenticator, Principal, hash_password};
use crate::error::QueryError;
use crate::workgroups::Workgroups;
use datafusion::arrow::array::{BooleanArray, StringArray, TimestampMillisecondArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::logical_expr::LogicalPlan;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::Token;
use osprey_catalog::{CatalogError, ManagedBy, UserRecord, now_ms};
use std::sync::Arc;

/// The longest user name accepted.
const MAX_NAME_CHARS: usize = 63;
/// The longest password accepted (Argon2 takes any length; this bounds the work per login).
const MAX_PASSWORD_BYTES: usize = 1024;

/// A parsed user-management statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserStatement {
    /// `CREATE USER`.
    Create {
        /// The new user.
        name: String,
        /// `IF NOT EXISTS`.
        if_not_exists: bool,
        /// Its password and admin flag.
        options: UserOptions,
    },
    /// `ALTER USER ... [PASSWORD] [ADMIN|NOADMIN]`.
    Alter {
        /// The user changed.
        name: String,
        /// `IF EXISTS`.
        if_exists: bool,
        /// What changes.
        options: UserOptions,
    },
    /// `ALTER USER ... REVOKE TOKENS`: logs the user out everywhere.
    RevokeTokens {
        /// The user.
        name: String,
        /// `IF EXISTS`.
        if_exists: bool,
    },
    /// `DROP USER`.
    Drop {
        /// The users dropped.
        names: Vec<String>,
        /// `IF EXISTS`.
        if_exists: bool,
    },
    /// `SHOW USERS`.
    Show,
}

/// The settable properties of a user.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct UserOptions {
    /// A new password.
    pub password: Option<String>,
    /// The current password (`REPLACE '...'`), which a user who is not an admin gives to change
    /// their own.
    pub current_password: Option<String>,
    /// A new admin flag.
    pub admin: Option<bool>,
    /// A new workgroup for the user's queries.
    pub workgroup: Option<WorkgroupAssignment>,
}

/// Which workgroup a user's queries run in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkgroupAssignment {
    /// The coordinator's default workgroup (`SET WORKGROUP DEFAULT`, `RESET WORKGROUP`).
    Default,
    /// A named workgroup.
    Named(String),
}

impl WorkgroupAssignment {
    /// The stored form: `None` for the default workgroup.
    pub fn name(&self) -> Option<&str> {
        match self {
            WorkgroupAssignment::Default => None,
            WorkgroupAssignment::Named(name) => Some(name),
        }
    }
}

impl std::fmt::Debug for UserOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserOptions")
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field(
                "current_password",
                &self.current_password.as_ref().map(|_| "<redacted>"),
            )
            .field("admin", &self.admin)
            .field("workgroup", &self.workgroup)
            .finish()
    }
}

/// What a user statement produced.
#[derive(Debug)]
pub enum UserStatementResult {
    /// The change is made.
    Done,
    /// `SHOW USERS`: a plan over the listed users.
    Listing(LogicalPlan),
}

/// Recognises a user-management statement: `None` if `sql` is something else, an error if it
/// starts like one but is malformed.
pub fn parse_user_statement(tokens: &[Token]) -> Result<Option<UserStatement>, QueryError> {
    let mut parser = Tokens::new(tokens);
    let statement = if parser.keywords(&[Keyword::CREATE, Keyword::USER]) {
        let if_not_exists = parser.keywords(&[Keyword::IF, Keyword::NOT, Keyword::EXISTS]);
        let name = parser.name()?;
        let options = parser.options()?;
        if options.password.is_none() {
            return Err(syntax(
                "CREATE USER needs a password: CREATE USER name PASSWORD '...'",
            ));
        }
        UserStatement::Create {
            name,
            if_not_exists,
            options,
        }
    } else if parser.keywords(&[Keyword::ALTER, Keyword::USER]) {
        let if_exists = parser.keywords(&[Keyword::IF, Keyword::EXISTS]);
        let name = parser.name()?;
        if parser.keywords(&[Keyword::REVOKE]) {
            if !parser.word("TOKENS") {
                return Err(syntax("expected REVOKE TOKENS"));
            }
            UserStatement::RevokeTokens { name, if_exists }
        } else {
            let options = parser.options()?;
            if options == UserOptions::default() {
                return Err(syntax(
                    "ALTER USER changes PASSWORD '...', ADMIN or NOADMIN, SET WORKGROUP name, or \
                     does REVOKE TOKENS",
                ));
            }
            UserStatement::Alter {
                name,
                if_exists,
                options,
            }
        }
    } else if parser.keywords(&[Keyword::DROP, Keyword::USER]) {
        let if_exists = parser.keywords(&[Keyword::IF, Keyword::EXISTS]);
        let mut names = vec![parser.name()?];
        while parser.consume(&Token::Comma) {
            names.push(parser.name()?);
        }
        UserStatement::Drop { names, if_exists }
    } else if parser.keywords(&[Keyword::SHOW]) && parser.word("USERS") {
        UserStatement::Show
    } else {
        return Ok(None);
    };
    parser.end("a user statement")?;
    Ok(Some(statement))
}

impl Tokens<'_> {
    fn name(&mut self) -> Result<String, QueryError> {
        let name = self.identifier("a user name")?;
        check_name(&name)?;
        Ok(name)
    }

    fn options(&mut self) -> Result<UserOptions, QueryError> {
        let mut options = UserOptions::default();
        self.keywords(&[Keyword::WITH]);
        loop {
            if self.keywords(&[Keyword::PASSWORD]) {
                let Some(password) = self.string() else {
                    return Err(syntax("PASSWORD takes a quoted string: PASSWORD '...'"));
                };
                check_password(&password)?;
                options.password = Some(password);
                if self.keywords(&[Keyword::REPLACE]) {
                    let Some(current) = self.string() else {
                        return Err(syntax(
                            "REPLACE takes the current password: PASSWORD 'new' REPLACE 'current'",
                        ));
                    };
                    options.current_password = Some(current);
                }
            } else if self.words(&["SET", "WORKGROUP"]) || self.word("WORKGROUP") {
                options.workgroup = Some(if self.keywords(&[Keyword::DEFAULT]) {
                    WorkgroupAssignment::Default
                } else {
                    WorkgroupAssignment::Named(self.identifier("a workgroup name or DEFAULT")?)
                });
            } else if self.words(&["RESET", "WORKGROUP"]) {
                options.workgroup = Some(WorkgroupAssignment::Default);
            } else if ["ADMIN", "SUPERUSER", "CREATEUSER"]
                .iter()
                .any(|w| self.word(w))
            {
                options.admin = Some(true);
            } else if ["NOADMIN", "NOSUPERUSER", "NOCREATEUSER"]
                .iter()
                .any(|w| self.word(w))
            {
                options.admin = Some(false);
            } else {
                return Ok(options);
            }
        }
    }
}

fn check_name(name: &str) -> Result<(), QueryError> {
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(syntax(&format!(
            "a user name has 1 to {MAX_NAME_CHARS} characters"
        )));
    }
    // Basic authentication splits `user:password` at the first colon.
    if name.contains(':') || name.chars().any(char::is_control) {
        return Err(syntax(
            "a user name may not contain ':' or control characters",
        ));
    }
    Ok(())
}

fn check_password(password: &str) -> Result<(), QueryError> {
    if password.is_empty() || password.len() > MAX_PASSWORD_BYTES {
        return Err(syntax(&format!(
            "a password has 1 to {MAX_PASSWORD_BYTES} bytes"
        )));
    }
    Ok(())
}

/// Runs a user statement as `actor` (`None`: the coordinator itself, with every right).
/// Workgroup assignments go through `workgroups`.
pub async fn execute_user_statement(
    auth: &Authenticator,
    workgroups: &Workgroups,
    actor: Option<&Principal>,
    statement: UserStatement,
) -> Result<UserStatementResult, QueryError> {
    let is_admin = actor.is_none_or(|actor| actor.is_admin);
    let is_self = |name: &str| actor.is_some_and(|actor| actor.user == name);
    let own_token = actor.and_then(|actor| actor.session_id.as_deref());
    let store = auth.store();
    match statement {
        UserStatement::Create {
            name,
            if_not_exists,
            options,
        } => {
            require_admin(is_admin, "CREATE USER")?;
            if if_not_exists && store.user(&name).await.map_err(catalog)?.is_some() {
                return Ok(UserStatementResult::Done);
            }
            let workgroup = options.workgroup.as_ref().and_then(|w| w.name());
            if let Some(workgroup) = workgroup {
                workgroups.require(workgroup)?;
            }
            let password = options.password.unwrap_or_default();
            let record = UserRecord {
                name: name.clone(),
                id: osprey_catalog::new_user_id(),
                password_hash: hash(&password).await?,
                is_admin: options.admin.unwrap_or(false),
                managed_by: ManagedBy::Sql,
                created_at_ms: now_ms(),
                updated_at_ms: now_ms(),
                workgroup: workgroup.map(str::to_string),
            };
            match store.create_user(&record).await {
                Err(CatalogError::AlreadyExists { .. }) if if_not_exists => {
                    return Ok(UserStatementResult::Done);
                }
                other => other.map_err(catalog)?,
            }
            workgroups.assign_user(&name, workgroup).await?;
            tracing::info!(user = %name, admin = record.is_admin, by = ?actor.map(|a| &a.user), "user created");
        }
        UserStatement::Alter {
            name,
            if_exists,
            options,
        } => {
            if !is_admin
                && (!is_self(&name) || options.admin.is_some() || options.workgroup.is_some())
            {
                return Err(QueryError::PermissionDenied(
                    "only an admin may change other users, anyone's admin flag or workgroup; you \
                     may change your own password"
                        .to_string(),
                ));
            }
            if !is_admin && options.password.is_some() {
                // Someone who found an open session must not be able to take the account over.
                let Some(current) = &options.current_password else {
                    return Err(QueryError::PermissionDenied(
                        "changing your password needs the current one: ALTER USER name PASSWORD \
                         'new' REPLACE 'current'"
                            .to_string(),
                    ));
                };
                auth.check_password(&name, current, None)
                    .await
                    .map_err(|_| {
                        QueryError::PermissionDenied(
                        "the current password given with REPLACE is wrong; the password was not \
                         changed"
                            .to_string(),
                    )
                    })?;
            }
            let Some(mut record) = existing(auth, &name, if_exists).await? else {
                return Ok(UserStatementResult::Done);
            };
            if let Some(workgroup) = &options.workgroup {
                // A workgroup is policy, not a credential: configured users may be assigned too.
                workgroups.assign_user(&name, workgroup.name()).await?;
                tracing::info!(user = %name, workgroup = ?workgroup.name(), by = ?actor.map(|a| &a.user), "user's workgroup changed");
                if options.password.is_none() && options.admin.is_none() {
                    return Ok(UserStatementResult::Done);
                }
            }
            if record.managed_by == ManagedBy::Config {
                return Err(configured(&name));
            }
            if let Some(password) = &options.password {
                record.password_hash = hash(password).await?;
            }
            if let Some(admin) = options.admin {
                if record.is_admin && !admin {
                    require_another_admin(auth, &name).await?;
                }
                record.is_admin = admin;
            }
            store.update_user(&record).await.map_err(catalog)?;
            // Sessions opened with the old password or rights end; the caller's own goes on.
            let keep = if is_self(&name) { own_token } else { None };
            let revoked = auth.revoke_tokens_of(&name, keep);
            if let Some(token) = keep {
                auth.set_token_admin(token, record.is_admin);
            }
            tracing::info!(user = %name, revoked, by = ?actor.map(|a| &a.user), "user changed");
        }
        UserStatement::RevokeTokens { name, if_exists } => {
            if !is_admin && !is_self(&name) {
                return Err(QueryError::PermissionDenied(
                    "only an admin may revoke another user's tokens".to_string(),
                ));
            }
            if existing(auth, &name, if_exists).await?.is_none() {
                return Ok(UserStatementResult::Done);
            }
            let revoked = auth.revoke_tokens_of(&name, None);
            tracing::info!(user = %name, revoked, by = ?actor.map(|a| &a.user), "tokens revoked");
        }
        UserStatement::Drop { names, if_exists } => {
            require_admin(is_admin, "DROP USER")?;
            for name in names {
                if is_self(&name) {
                    return Err(QueryError::InvalidStatement(format!(
                        "cannot drop {name}: it is the current user"
                    )));
                }
                let Some(record) = existing(auth, &name, if_exists).await? else {
                    continue;
                };
                if record.managed_by == ManagedBy::Config {
                    return Err(configured(&name));
                }
                if record.is_admin {
                    require_another_admin(auth, &name).await?;
                }
                store.drop_user(&name).await.map_err(catalog)?;
                workgroups.forget_user(&name);
                let revoked = auth.revoke_tokens_of(&name, None);
                tracing::info!(user = %name, revoked, by = ?actor.map(|a| &a.user), "user dropped");
            }
        }
        UserStatement::Show => {
            let users: Vec<UserRecord> = store
                .users()
                .await
                .map_err(catalog)?
                .into_iter()
                .filter(|user| is_admin || is_self(&user.name))
                .collect();
            return Ok(UserStatementResult::Listing(listing(&users)?));
        }
    }
    Ok(UserStatementResult::Done)
}

/// Refuses `statement` unless the caller is an admin.
pub(crate) fn require_admin(is_admin: bool, statement: &str) -> Result<(), QueryError> {
    if is_admin {
        Ok(())
    } else {
        Err(QueryError::PermissionDenied(format!(
            "{statement} needs an admin; ask one to run it"
        )))
    }
}

/// The user `name`; `None` with `if_exists` when it does not exist, an error without.
async fn existing(
    auth: &Authenticator,
    name: &str,
    if_exists: bool,
) -> Result<Option<UserRecord>, QueryError> {
    match auth.store().user(name).await.map_err(catalog)? {
        Some(record) => Ok(Some(record)),
        None if if_exists => Ok(None),
        None => Err(QueryError::InvalidStatement(format!(
            "user {name} does not exist; SHOW USERS lists them"
        ))),
    }
}

async fn require_another_admin(auth: &Authenticator, name: &str) -> Result<(), QueryError> {
    let users = auth.store().users().await.map_err(catalog)?;
    if users.iter().any(|user| user.is_admin && user.name != name) {
        Ok(())
    } else {
        Err(QueryError::InvalidStatement(format!(
            "{name} is the last admin: make another user ADMIN first"
        )))
    }
}

fn configured(name: &str) -> QueryError {
    QueryError::InvalidStatement(format!(
        "user {name} is defined in the coordinator's configuration (`[[users]]` or \
         OSPREY_ADMIN_PASSWORD): change it there and restart"
    ))
}

async fn hash(password: &str) -> Result<String, QueryError> {
    hash_password(password)
        .await
        .map_err(|reason| QueryError::Execution(format!("cannot hash the password: {reason}")))
}

fn catalog(err: CatalogError) -> QueryError {
    match err {
        CatalogError::AlreadyExists { .. } => QueryError::InvalidStatement(err.to_string()),
        other => QueryError::Execution(other.to_string()),
    }
}

/// The columns of `SHOW USERS`.
pub fn listing_schema() -> SchemaRef {
    let timestamp = DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
    Arc::new(Schema::new(vec![
        Field::new("user_name", DataType::Utf8, false),
        Field::new("is_admin", DataType::Boolean, false),
        Field::new("managed_by", DataType::Utf8, false),
        Field::new("created_at", timestamp.clone(), false),
        Field::new("updated_at", timestamp, false),
        Field::new("workgroup", DataType::Utf8, true),
    ]))
}

/// `SHOW USERS`: name, admin flag, who manages the user, when it was created and changed, and
/// its workgroup (NULL: the default).
fn listing(users: &[UserRecord]) -> Result<LogicalPlan, QueryError> {
    let schema = listing_schema();
    listing_plan(
        "users",
        schema,
        vec![
            Arc::new(StringArray::from_iter_values(users.iter().map(|u| &u.name))),
            Arc::new(BooleanArray::from_iter(
                users.iter().map(|u| Some(u.is_admin)),
            )),
            Arc::new(StringArray::from_iter_values(
                users.iter().map(|u| u.managed_by.as_str()),
            )),
            Arc::new(
                TimestampMillisecondArray::from_iter_values(users.iter().map(|u| u.created_at_ms))
                    .with_timezone("UTC"),
            ),
            Arc::new(
                TimestampMillisecondArray::from_iter_values(users.iter().map(|u| u.updated_at_ms))
                    .with_timezone("UTC"),
            ),
            Arc::new(StringArray::from_iter(
                users.iter().map(|u| u.workgroup.as_deref()),
            )),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_accepted_forms() {
        let parse = |sql| {
            parse_user_statement(&crate::parser::tokens_of(sql))
                .unwrap()
                .unwrap()
        };
        assert_eq!(
            parse("create user if not exists \"Ana\" with password 'p''w' superuser workgroup ETL"),
            UserStatement::Create {
                name: "Ana".into(),
                if_not_exists: true,
                options: UserOptions {
                    password: Some("p'w".into()),
                    admin: Some(true),
                    workgroup: Some(WorkgroupAssignment::Named("etl".into())),
                    ..UserOptions::default()
                },
            }
        );
        assert_eq!(
            parse("ALTER USER Bob NOADMIN"),
            UserStatement::Alter {
                name: "bob".into(),
                if_exists: false,
                options: UserOptions {
                    password: None,
                    admin: Some(false),
                    workgroup: None,
                    ..UserOptions::default()
                },
            }
        );
        assert_eq!(
            parse("ALTER USER bob SET WORKGROUP DEFAULT"),
            UserStatement::Alter {
                name: "bob".into(),
                if_exists: false,
                options: UserOptions {
                    workgroup: Some(WorkgroupAssignment::Default),
                    ..UserOptions::default()
                },
            }
        );
        assert_eq!(
            parse("alter user if exists bob revoke tokens"),
            UserStatement::RevokeTokens {
                name: "bob".into(),
                if_exists: true
            }
        );
        assert_eq!(
            parse("DROP USER IF EXISTS a, 'B';"),
            UserStatement::Drop {
                names: vec!["a".into(), "B".into()],
                if_exists: true
            }
        );
        assert_eq!(parse("show users"), UserStatement::Show);
    }

    #[test]
    fn refuses_malformed_statements() {
        for sql in [
            "CREATE USER ana",
            "CREATE USER ana PASSWORD ''",
            "CREATE USER ana PASSWORD pw",
            "CREATE USER 'a:b' PASSWORD 'x'",
            "ALTER USER ana",
            "ALTER USER ana REVOKE",
            "DROP USER",
            "DROP USER a b",
        ] {
            assert!(
                parse_user_statement(&crate::parser::tokens_of(sql)).is_err(),
                "{sql}"
            );
        }
        for sql in [
            "SELECT 1",
            "SHOW TABLES",
            "DROP TABLE users",
            "CREATE TABLE user (a int)",
        ] {
            assert!(
                parse_user_statement(&crate::parser::tokens_of(sql))
                    .unwrap()
                    .is_none(),
                "{sql}"
            );
        }
    }
}

#[cfg(test)]
mod recognizer_example {
    use super::*;

    #[test]
    fn recognizes_its_statements_and_nothing_else() {
        let statement = parse_user_statement(&crate::parser::tokens_of(
            "CREATE USER ana WITH PASSWORD 'x' ADMIN;",
        ))
        .unwrap()
        .unwrap();
        assert!(matches!(statement, UserStatement::Create { ref name, .. } if name == "ana"));
        assert!(
            parse_user_statement(&crate::parser::tokens_of("SELECT 1"))
                .unwrap()
                .is_none()
        );
        assert!(parse_user_statement(&crate::parser::tokens_of("DROP USER")).is_err());
    }
}
